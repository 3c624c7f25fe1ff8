//! `openapi.json` against the handler: every documented route answers, every documented
//! parameter is accepted and its documented constraints are enforced, undocumented
//! parameters are refused, and every document the handler returns fits its documented schema
//! (with `additionalProperties: false`, so an undocumented field fails).

use cochl_aws::dynamo::DynamoStore;
use cochl_core::time::parse_millis;
use lambda_http::http::StatusCode;
use serde_json::Value;

use crate::seed::{self, encode, get, request, send, Reply};

fn document() -> Value {
    serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json is JSON")
}

/// Checks `value` against `schema`, for the subset of JSON Schema the document uses. Any
/// keyword it does not know fails, so the document cannot use one this test ignores.
fn validate(schema: &Value, value: &Value, root: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Err(format!("{at}: schema is not an object"));
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .ok_or(format!("{at}: external $ref"))?;
        let target = root
            .pointer(pointer)
            .ok_or(format!("{at}: dangling $ref {reference}"))?;
        return validate(target, value, root, at);
    }
    for keyword in schema.keys() {
        let known = [
            "type",
            "nullable",
            "enum",
            "required",
            "properties",
            "additionalProperties",
            "items",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "format",
            "description",
            "default",
            "example",
        ];
        if !known.contains(&keyword.as_str()) {
            return Err(format!(
                "{at}: keyword {keyword} is not supported by this validator"
            ));
        }
    }
    if value.is_null() {
        return if schema.get("nullable") == Some(&Value::Bool(true)) {
            Ok(())
        } else {
            Err(format!("{at}: null but not nullable"))
        };
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .ok_or(format!("{at}: no type"))?;
    let fits = match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        other => return Err(format!("{at}: unknown type {other}")),
    };
    if !fits {
        return Err(format!("{at}: {value} is not of type {kind}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if number < min {
                return Err(format!("{at}: {number} < minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if number > max {
                return Err(format!("{at}: {number} > maximum {max}"));
            }
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| len < min)
        {
            return Err(format!("{at}: shorter than minLength"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|max| len > max)
        {
            return Err(format!("{at}: longer than maxLength"));
        }
        match schema.get("format").and_then(Value::as_str) {
            None => {}
            Some("date-time") => {
                parse_millis(text).map_err(|e| format!("{at}: {e}"))?;
            }
            Some(other) => return Err(format!("{at}: unknown format {other}")),
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required property {name} is missing"));
            }
        }
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => validate(field_schema, field, root, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: property {name} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(items, item, root, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Checks a reply against the documented response of `template` for its status.
fn check_reply(doc: &Value, template: &str, reply: &Reply, context: &str) {
    let status = reply.status.as_str().to_string();
    let response = doc["paths"][template]["get"]["responses"]
        .get(&status)
        .unwrap_or_else(|| panic!("{context}: status {status} is not documented for {template}"));
    if let Some(svg) = response["content"].get("image/svg+xml") {
        assert_eq!(svg["schema"]["type"], "string", "{context}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("image/svg+xml"),
            "{context}"
        );
        assert!(
            reply.text.starts_with("<svg ") && reply.text.ends_with("</svg>"),
            "{context}: {}",
            reply.text
        );
        return;
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{context}: {status} documents no JSON body"
    );
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{context}"
    );
    if let Err(problem) = validate(schema, &reply.body, doc, "$") {
        panic!("{context}: {problem}\n{}", reply.body);
    }
}

/// The documented parameters of a path's GET.
fn parameters(doc: &Value, template: &str) -> Vec<Value> {
    doc["paths"][template]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn example(parameter: &Value) -> String {
    match &parameter["example"] {
        Value::String(text) => text.clone(),
        Value::Null => panic!("parameter {} has no example", parameter["name"]),
        other => other.to_string(),
    }
}

/// The path with path parameters replaced by their examples, and the required query
/// parameters from their examples.
fn base_request(doc: &Value, template: &str) -> (String, Vec<(String, String)>) {
    let mut path = template.to_string();
    let mut query = Vec::new();
    for parameter in parameters(doc, template) {
        let name = parameter["name"].as_str().unwrap_or_default().to_string();
        match parameter["in"].as_str() {
            Some("path") => {
                path = path.replace(&format!("{{{name}}}"), &encode(&example(&parameter)))
            }
            Some("query") if parameter["required"] == Value::Bool(true) => {
                query.push((name, example(&parameter)))
            }
            Some("query") => {}
            other => panic!("{template}: parameter {name} in {other:?}"),
        }
    }
    (path, query)
}

fn target(path: &str, query: &[(String, String)]) -> String {
    let pairs: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn templates(doc: &Value) -> Vec<String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_documented_route_and_parameter_is_served() {
    let doc = document();
    let store = seed::store().await;
    assert_eq!(templates(&doc).len(), 4);
    for template in templates(&doc) {
        let methods: Vec<&String> = doc["paths"][&template]
            .as_object()
            .expect("path item")
            .keys()
            .collect();
        assert_eq!(methods, vec!["get"], "{template}: only GET is documented");
        let (path, required) = base_request(&doc, &template);
        let base = get(&store, &target(&path, &required)).await;
        assert_eq!(base.status, StatusCode::OK, "{template}: {base:?}");

        for parameter in parameters(&doc, &template) {
            let name = parameter["name"].as_str().unwrap_or_default().to_string();
            if parameter["in"] != "query" || parameter["required"] == Value::Bool(true) {
                continue;
            }
            let value = if name == "cursor" {
                let first = get(
                    &store,
                    &target(
                        &path,
                        &[required.clone(), vec![("limit".into(), "1".into())]].concat(),
                    ),
                )
                .await;
                first.body["next_cursor"]
                    .as_str()
                    .expect("a cursor to try")
                    .to_string()
            } else {
                example(&parameter)
            };
            let mut query = required.clone();
            query.push((name.clone(), value));
            let reply = get(&store, &target(&path, &query)).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{template} with {name}: {reply:?}"
            );
            check_reply(&doc, &template, &reply, &format!("{template} with {name}"));
        }

        let mut query = required.clone();
        query.push(("undocumented".into(), "1".into()));
        let reply = get(&store, &target(&path, &query)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{template} with an undocumented parameter"
        );
        check_reply(&doc, &template, &reply, "undocumented parameter");
    }
}

#[tokio::test]
async fn documented_constraints_are_enforced() {
    let doc = document();
    let store = seed::store().await;
    for template in templates(&doc) {
        let (path, required) = base_request(&doc, &template);
        for parameter in parameters(&doc, &template) {
            let name = parameter["name"].as_str().unwrap_or_default().to_string();
            let schema = &parameter["schema"];
            if parameter["in"] == "path" {
                continue; // The name's constraints are covered by the tag tests.
            }
            let mut bad_values: Vec<String> = Vec::new();
            if let Some(min) = schema["minimum"].as_f64() {
                bad_values.push(if schema["type"] == "integer" {
                    format!("{}", min as i64 - 1)
                } else {
                    format!("{}", min - 0.01)
                });
            }
            if let Some(max) = schema["maximum"].as_f64() {
                bad_values.push(if schema["type"] == "integer" {
                    format!("{}", max as i64 + 1)
                } else {
                    format!("{}", max + 0.01)
                });
            }
            if matches!(schema["type"].as_str(), Some("integer" | "number")) {
                bad_values.push("not-a-number".into());
            }
            if schema["type"] == "integer" {
                bad_values.push("1.5".into());
            }
            if schema["enum"].is_array() {
                bad_values.push("NOT_A_VALUE".into());
            }
            if schema["format"] == "date-time" {
                bad_values.push("2026-13-01T00:00:00Z".into());
            }
            if schema["minLength"].as_u64() == Some(1) {
                bad_values.push(String::new());
            }
            if name == "cursor" || name == "uri" {
                bad_values.push("x".into());
            }
            assert!(
                !bad_values.is_empty(),
                "{template} {name}: no constraint to check"
            );
            for bad in bad_values {
                let mut query: Vec<(String, String)> = required
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .cloned()
                    .collect();
                query.push((name.clone(), bad.clone()));
                let reply = get(&store, &target(&path, &query)).await;
                seed::assert_bad_request(&reply, &name, &format!("{template} {name}={bad}"));
                check_reply(&doc, &template, &reply, &format!("{template} {name}={bad}"));
            }
            if parameter["required"] == Value::Bool(true) {
                let query: Vec<(String, String)> = required
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .cloned()
                    .collect();
                let reply = get(&store, &target(&path, &query)).await;
                seed::assert_bad_request(&reply, &name, &format!("{template} without {name}"));
            }
        }
    }
}

#[tokio::test]
async fn every_response_fits_its_documented_schema() {
    let doc = document();
    let store = seed::store().await;
    let mut cases: Vec<(&str, String)> = Vec::new();
    for job in seed::jobs() {
        cases.push((
            "/files",
            format!("/files?uri={}", encode(&job.file.to_string())),
        ));
    }
    cases.push((
        "/files",
        format!("/files?uri={}", encode("s3://audio-bucket/none.wav")),
    ));
    for job in seed::jobs() {
        cases.push((
            "/files/timeline.svg",
            format!("/files/timeline.svg?uri={}", encode(&job.file.to_string())),
        ));
    }
    cases.push((
        "/files/timeline.svg",
        format!(
            "/files/timeline.svg?uri={}",
            encode("s3://audio-bucket/none.wav")
        ),
    ));
    cases.push(("/files", "/files".into()));
    for query in [
        "",
        "?limit=1",
        "?min_probability=0.9&limit=2",
        "?since=2026-11-24&until=2026-11-25",
        "?limit=0",
    ] {
        for tag in ["Siren", "Speech", "Dog_bark", "Emergency_vehicle"] {
            cases.push(("/tags/{name}/files", format!("/tags/{tag}/files{query}")));
        }
    }
    for status in ["SUBMITTED", "COMPLETED", "FAILED", "REJECTED", "nope"] {
        for limit in [1, 100] {
            cases.push(("/jobs", format!("/jobs?status={status}&limit={limit}")));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (template, target) in &cases {
        let reply = get(&store, target).await;
        seen.insert(reply.status.as_u16());
        check_reply(&doc, template, &reply, target);
        let reply = send(&store, request("POST", target)).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        check_reply(&doc, template, &reply, &format!("POST {target}"));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![200, 400, 404]);

    let broken: DynamoStore = seed::broken_store().await;
    for (template, target) in [
        ("/files", format!("/files?uri={}", encode(seed::STREET))),
        ("/tags/{name}/files", "/tags/Siren/files".to_string()),
        ("/jobs", "/jobs?status=FAILED".to_string()),
        (
            "/files/timeline.svg",
            format!("/files/timeline.svg?uri={}", encode(seed::STREET)),
        ),
    ] {
        let reply = get(&broken, &target).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        check_reply(&doc, template, &reply, &target);
    }
}

#[test]
fn the_validator_refuses_undocumented_fields_and_wrong_types() {
    let doc = document();
    let schema = serde_json::json!({"$ref": "#/components/schemas/Job"});
    let good = serde_json::json!({
        "file": "s3://b/k", "status": "FAILED", "inference_id": null,
        "submitted_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"
    });
    assert_eq!(validate(&schema, &good, &doc, "$"), Ok(()));
    let mut extra = good.clone();
    extra["revision"] = 3.into();
    assert!(validate(&schema, &extra, &doc, "$").is_err());
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("updated_at");
    assert!(validate(&schema, &missing, &doc, "$").is_err());
    let mut wrong = good.clone();
    wrong["status"] = "DONE".into();
    assert!(validate(&schema, &wrong, &doc, "$").is_err());
    let mut not_a_time = good;
    not_a_time["submitted_at"] = "yesterday".into();
    assert!(validate(&schema, &not_a_time, &doc, "$").is_err());
    let segment = serde_json::json!({"$ref": "#/components/schemas/Segment"});
    let bad_probability =
        serde_json::json!({"start": 0, "end": 2, "max_probability": 1.5, "mean_probability": 0.5});
    assert!(validate(&segment, &bad_probability, &doc, "$").is_err());
}

//! The sample events in `events/` deserialise with `lambda_http` as a Function URL / HTTP API
//! (payload 2.0) request and are answered from the seeded table.

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde_json::Value;

use crate::seed::{self, encode, get, send};

fn event_text(name: &str) -> String {
    let path = testkit::workspace_root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(reply: &seed::Reply) -> Vec<String> {
    reply.body["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["file"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn get_file_event() {
    let store = seed::store().await;
    let request = lambda_http::request::from_str(&event_text("http-get-file.json"))
        .expect("payload 2.0 event");
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        panic!("an HTTP API / Function URL request context");
    };
    let iam = context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .expect("IAM authorizer");
    assert!(iam
        .user_arn
        .as_deref()
        .is_some_and(|arn| arn.starts_with("arn:aws:sts::")));
    let reply = send(&store, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let direct = get(&store, &format!("/files?uri={}", encode(seed::STREET))).await;
    assert_eq!(reply.body, direct.body);
    assert_eq!(reply.body["file"], seed::STREET);
}

#[tokio::test]
async fn tag_files_event() {
    let store = seed::store().await;
    let request = lambda_http::request::from_str(&event_text("http-tag-files.json"))
        .expect("payload 2.0 event");
    let reply = send(&store, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["tag"], "Siren");
    let direct = get(
        &store,
        "/tags/Siren/files?since=2026-11-23T00:00:00Z&min_probability=0.5&limit=10",
    )
    .await;
    assert_eq!(reply.body, direct.body);
    let mut listed = files(&reply);
    listed.sort();
    let mut want: Vec<String> = [
        seed::STREET,
        seed::ODD,
        seed::SIRENS[0],
        seed::SIRENS[1],
        seed::SIRENS[2],
    ]
    .iter()
    .map(|f| f.to_string())
    .collect();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(reply.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn jobs_failed_event_and_a_named_stage() {
    let store = seed::store().await;
    let text = event_text("http-jobs-failed.json");
    let reply = send(
        &store,
        lambda_http::request::from_str(&text).expect("payload 2.0 event"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let listed: Vec<&str> = reply.body["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["file"].as_str())
        .collect();
    assert_eq!(listed, seed::FAILED.to_vec());

    // The same request through an HTTP API stage named `prod`.
    let mut event: Value = serde_json::from_str(&text).expect("json");
    event["requestContext"]["stage"] = "prod".into();
    event["rawPath"] = "/prod/jobs".into();
    event["requestContext"]["http"]["path"] = "/prod/jobs".into();
    let request = lambda_http::request::from_str(&event.to_string()).expect("payload 2.0 event");
    let staged = send(&store, request).await;
    assert_eq!(staged.status, StatusCode::OK, "{staged:?}");
    assert_eq!(staged.body, reply.body);

    // A repeated parameter in the raw query string is refused even though the parsed map
    // API Gateway sends would have joined the values with a comma.
    event["rawQueryString"] = "status=FAILED&status=REJECTED".into();
    event["queryStringParameters"] = serde_json::json!({"status": "FAILED,REJECTED"});
    let request = lambda_http::request::from_str(&event.to_string()).expect("payload 2.0 event");
    seed::assert_bad_request(
        &send(&store, request).await,
        "status",
        "repeated in an event",
    );
}

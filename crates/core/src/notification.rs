//! SageMaker asynchronous-inference notifications.
//!
//! When an async invocation ends, SageMaker publishes a JSON message to the
//! success or the error SNS topic. The notification handler receives that
//! message (the `Sns.Message` string) and needs three things from it: which
//! inference it is about (`inferenceId`), whether it succeeded, and where the
//! result or the failure lives in S3. [`parse_notification`] turns the message
//! into an [`AsyncNotification`] and refuses messages it cannot act on.
//!
//! Rules (docs/cochl-contract.md, "Notifications"):
//! - Only the exact status `Completed` is a success. Every other status,
//!   including `Failed`, `Stopped`, the empty string and even `completed` in
//!   lower case, is a failure: a result is only fetched when SageMaker said, in
//!   its documented spelling, that there is one.
//! - `failureLocation` may sit in `responseParameters` or at the top level; the
//!   one in `responseParameters` wins when both are present.
//! - Unknown fields are ignored; optional fields may be absent or `null`.
//! - With `IncludeInferenceResponseIn`, SageMaker may put a small result (up to
//!   128 KB) into the message. The field name is not documented, so a
//!   `responseBody` in `responseParameters` (preferred) or at the top level is
//!   kept as the `inline_body` of [`InferenceOutcome::Succeeded`]. The object in
//!   S3 stays the source of truth; the inline body is only a hint.

use serde::Deserialize;

use crate::keys::{KeyError, S3Uri};

/// The only invocation status that means the inference produced a result.
pub const STATUS_COMPLETED: &str = "Completed";

/// Why a notification message was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The message is not JSON at all.
    #[error("notification is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The message is JSON but not an object.
    #[error("notification must be a JSON object, found {found}")]
    NotAnObject {
        /// The kind of JSON value found instead (`array`, `string`, ...).
        found: &'static str,
    },
    /// A known field has the wrong JSON type (for example a number where a
    /// string belongs).
    #[error("notification has a field of the wrong type: {0}")]
    Malformed(#[source] serde_json::Error),
    /// A required field is absent or `null`.
    #[error("notification is missing the required field `{0}`")]
    MissingField(&'static str),
    /// `inferenceId` is present but empty, so it cannot identify a job.
    #[error("notification has an empty `inferenceId`")]
    EmptyInferenceId,
    /// A location field holds something that is not a valid `s3://` URI.
    #[error("notification field `{field}` is not a valid S3 URI: {source}")]
    InvalidLocation {
        /// The field, as a dotted path (`responseParameters.outputLocation`).
        field: &'static str,
        /// What is wrong with the URI.
        #[source]
        source: KeyError,
    },
}

/// The request SageMaker echoes back in a notification.
///
/// Every field is optional because SageMaker omits some of them (`accept`,
/// `customAttributes`) and the handler must not fail on a missing echo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParameters {
    /// The `Accept` the invocation asked for.
    pub accept: Option<String>,
    /// The content type the audio was sent with.
    pub content_type: Option<String>,
    /// The custom attributes (sensitivity JSON) forwarded to the model.
    pub custom_attributes: Option<String>,
    /// The endpoint that ran the inference.
    pub endpoint_name: Option<String>,
    /// The S3 object that was analysed.
    pub input_location: Option<S3Uri>,
}

/// How the invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferenceOutcome {
    /// The status was exactly `Completed`: the result can be fetched.
    Succeeded {
        /// Where SageMaker wrote the result (`responseParameters.outputLocation`).
        output_location: Option<S3Uri>,
        /// Content type of the result (`responseParameters.contentType`).
        response_content_type: Option<String>,
        /// The result carried inside the message, when the endpoint is
        /// configured with `IncludeInferenceResponseIn`. A hint only: S3 is the
        /// source of truth. A non-string JSON value is kept as compact JSON text.
        inline_body: Option<String>,
    },
    /// Any other status.
    Failed {
        /// The status as SageMaker sent it (`Failed`, `Stopped`, ...).
        status: String,
        /// `failureReason`, or a text saying the status came without one.
        reason: String,
        /// Where SageMaker wrote the failure details, if it said.
        failure_location: Option<S3Uri>,
    },
}

/// Whether a failure reason says the request expired in the endpoint's queue (it waited
/// longer than its `RequestTTLSeconds` and never ran). SageMaker does not retry those, and
/// their wording is not part of the API: any reason naming an expiry or the TTL counts.
pub fn failure_is_expiry(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("expired") || reason.contains("requestttl")
}

/// A parsed SageMaker async notification.
///
/// Exists so the handler works with checked values (a non-empty inference id,
/// validated S3 locations, an explicit outcome) rather than loose JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncNotification {
    /// The inference id the invocation was sent with: the link to the job.
    pub inference_id: String,
    /// When SageMaker emitted the event (`eventTime`).
    pub event_time: Option<String>,
    /// When SageMaker received the request (`receivedTime`).
    pub received_time: Option<String>,
    /// The region of the endpoint (`awsRegion`).
    pub aws_region: Option<String>,
    /// `eventName`, normally `InferenceResult`.
    pub event_name: Option<String>,
    /// `eventSource`, normally `aws:sagemaker`.
    pub event_source: Option<String>,
    /// `eventVersion`, normally `1.0`.
    pub event_version: Option<String>,
    /// The request SageMaker echoes back.
    pub request: RequestParameters,
    /// Success with its output location, or failure with its reason.
    pub outcome: InferenceOutcome,
}

impl AsyncNotification {
    /// Whether the inference completed, i.e. a result can be fetched.
    pub fn is_success(&self) -> bool {
        matches!(self.outcome, InferenceOutcome::Succeeded { .. })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNotification {
    inference_id: Option<String>,
    invocation_status: Option<String>,
    aws_region: Option<String>,
    event_time: Option<String>,
    received_time: Option<String>,
    event_version: Option<String>,
    event_source: Option<String>,
    event_name: Option<String>,
    request_parameters: Option<RawRequest>,
    response_parameters: Option<RawResponse>,
    failure_reason: Option<String>,
    failure_location: Option<String>,
    response_body: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    accept: Option<String>,
    content_type: Option<String>,
    custom_attributes: Option<String>,
    endpoint_name: Option<String>,
    input_location: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponse {
    content_type: Option<String>,
    output_location: Option<String>,
    failure_location: Option<String>,
    response_body: Option<serde_json::Value>,
}

/// Parses the SNS message body of a SageMaker async notification.
///
/// `inferenceId` (non-empty) and `invocationStatus` are required. S3 locations
/// are validated with [`S3Uri::parse`]; an empty location string counts as
/// absent. Only the locations the outcome keeps are checked: the output
/// location on success, the failure location on failure, and the input
/// location always.
///
/// # Errors
/// See [`NotificationError`]: not JSON, not an object, a field of the wrong
/// type, a missing required field, an empty inference id, or an invalid S3 URI
/// (naming the field).
pub fn parse_notification(message: &str) -> Result<AsyncNotification, NotificationError> {
    let value: serde_json::Value =
        serde_json::from_str(message).map_err(NotificationError::InvalidJson)?;
    let found = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Null => Some("null"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Array(_) => Some("an array"),
    };
    if let Some(found) = found {
        return Err(NotificationError::NotAnObject { found });
    }
    let raw: RawNotification =
        serde_json::from_value(value).map_err(NotificationError::Malformed)?;

    let inference_id = raw
        .inference_id
        .ok_or(NotificationError::MissingField("inferenceId"))?;
    if inference_id.is_empty() {
        return Err(NotificationError::EmptyInferenceId);
    }
    let status = raw
        .invocation_status
        .ok_or(NotificationError::MissingField("invocationStatus"))?;

    let request = match raw.request_parameters {
        Some(r) => RequestParameters {
            accept: r.accept,
            content_type: r.content_type,
            custom_attributes: r.custom_attributes,
            endpoint_name: r.endpoint_name,
            input_location: location(r.input_location, "requestParameters.inputLocation")?,
        },
        None => RequestParameters::default(),
    };

    let (response_content_type, output_location, response_failure_location, nested_body) =
        match raw.response_parameters {
            Some(r) => (
                r.content_type,
                r.output_location,
                r.failure_location,
                r.response_body,
            ),
            None => (None, None, None, None),
        };

    let outcome = if status == STATUS_COMPLETED {
        InferenceOutcome::Succeeded {
            output_location: location(output_location, "responseParameters.outputLocation")?,
            response_content_type,
            inline_body: body_text(nested_body).or_else(|| body_text(raw.response_body)),
        }
    } else {
        let failure_location = match non_empty(response_failure_location) {
            Some(uri) => Some(parse_uri(&uri, "responseParameters.failureLocation")?),
            None => location(raw.failure_location, "failureLocation")?,
        };
        let reason = match raw.failure_reason {
            Some(reason) if !reason.trim().is_empty() => reason,
            _ => format!("invocation status {status:?} without a failure reason"),
        };
        InferenceOutcome::Failed {
            status,
            reason,
            failure_location,
        }
    };

    Ok(AsyncNotification {
        inference_id,
        event_time: raw.event_time,
        received_time: raw.received_time,
        aws_region: raw.aws_region,
        event_name: raw.event_name,
        event_source: raw.event_source,
        event_version: raw.event_version,
        request,
        outcome,
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn parse_uri(uri: &str, field: &'static str) -> Result<S3Uri, NotificationError> {
    S3Uri::parse(uri).map_err(|source| NotificationError::InvalidLocation { field, source })
}

fn location(uri: Option<String>, field: &'static str) -> Result<Option<S3Uri>, NotificationError> {
    non_empty(uri).map(|u| parse_uri(&u, field)).transpose()
}

fn body_text(body: Option<serde_json::Value>) -> Option<String> {
    match body? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_told_from_other_failures() {
        assert!(failure_is_expiry(
            "ClientError: Request expired: it waited in the queue longer than its RequestTTLSeconds (60 s)."
        ));
        assert!(failure_is_expiry("Request has exceeded RequestTTLSeconds"));
        assert!(!failure_is_expiry(
            "ClientError: Received server error (500) from model."
        ));
    }
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const SUCCESS: &str = r#"{"awsRegion": "us-east-1", "eventTime": "2022-01-25T22:46:00.608Z", "receivedTime": "2022-01-25T22:46:00.455Z",
 "invocationStatus": "Completed",
 "requestParameters": {"accept": "application/json", "contentType": "audio/wav", "customAttributes": "{}",
   "endpointName": "cochl-sense", "inputLocation": "s3://bucket/incoming/a.wav"},
 "responseParameters": {"contentType": "application/json", "outputLocation": "s3://bucket/results/5f0c6d1e-....out"},
 "inferenceId": "...", "eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "InferenceResult"}"#;

    const FAILURE_REASON: &str =
        "ClientError: Received server error (500) from model. See the SageMaker Endpoint logs...";

    fn failure_json() -> Value {
        json!({
            "awsRegion": "us-east-1",
            "eventTime": "2022-01-25T22:46:00.608Z",
            "receivedTime": "2022-01-25T22:46:00.455Z",
            "invocationStatus": "Failed",
            "failureReason": FAILURE_REASON,
            "requestParameters": {
                "contentType": "audio/wav",
                "endpointName": "cochl-sense",
                "inputLocation": "s3://bucket/incoming/a.wav"
            },
            "inferenceId": "job-1",
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult"
        })
    }

    fn parse_value(v: &Value) -> Result<AsyncNotification, NotificationError> {
        parse_notification(&v.to_string())
    }

    fn uri(s: &str) -> S3Uri {
        S3Uri::parse(s).unwrap()
    }

    #[test]
    fn reference_success_example() {
        let n = parse_notification(SUCCESS).unwrap();
        assert!(n.is_success());
        assert_eq!(n.inference_id, "...");
        assert_eq!(n.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(n.event_time.as_deref(), Some("2022-01-25T22:46:00.608Z"));
        assert_eq!(n.received_time.as_deref(), Some("2022-01-25T22:46:00.455Z"));
        assert_eq!(n.event_name.as_deref(), Some("InferenceResult"));
        assert_eq!(n.event_source.as_deref(), Some("aws:sagemaker"));
        assert_eq!(n.event_version.as_deref(), Some("1.0"));
        assert_eq!(
            n.request,
            RequestParameters {
                accept: Some("application/json".into()),
                content_type: Some("audio/wav".into()),
                custom_attributes: Some("{}".into()),
                endpoint_name: Some("cochl-sense".into()),
                input_location: Some(uri("s3://bucket/incoming/a.wav")),
            }
        );
        assert_eq!(
            n.outcome,
            InferenceOutcome::Succeeded {
                output_location: Some(uri("s3://bucket/results/5f0c6d1e-....out")),
                response_content_type: Some("application/json".into()),
                inline_body: None,
            }
        );
    }

    #[test]
    fn reference_failure_example() {
        let n = parse_value(&failure_json()).unwrap();
        assert!(!n.is_success());
        assert_eq!(n.inference_id, "job-1");
        assert_eq!(n.request.accept, None);
        assert_eq!(n.request.custom_attributes, None);
        assert_eq!(
            n.request.input_location,
            Some(uri("s3://bucket/incoming/a.wav"))
        );
        assert_eq!(
            n.outcome,
            InferenceOutcome::Failed {
                status: "Failed".into(),
                reason: FAILURE_REASON.into(),
                failure_location: None,
            }
        );
    }

    /// The key of the failure location the failure notification `v` names.
    fn failure_key(v: &Value) -> Option<String> {
        match parse_value(v).unwrap().outcome {
            InferenceOutcome::Failed {
                failure_location, ..
            } => failure_location.map(|l| l.key().to_string()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn failure_location_in_response_parameters() {
        let mut v = failure_json();
        v["responseParameters"] = json!({"failureLocation": "s3://bucket/failures/x.out"});
        assert_eq!(failure_key(&v).as_deref(), Some("failures/x.out"));
    }

    #[test]
    fn failure_location_at_top_level() {
        let mut v = failure_json();
        v["failureLocation"] = json!("s3://bucket/failures/top.out");
        assert_eq!(failure_key(&v).as_deref(), Some("failures/top.out"));
    }

    #[test]
    fn failure_location_prefers_response_parameters() {
        let mut v = failure_json();
        v["failureLocation"] = json!("s3://bucket/failures/top.out");
        v["responseParameters"] = json!({"failureLocation": "s3://bucket/failures/nested.out"});
        assert_eq!(failure_key(&v).as_deref(), Some("failures/nested.out"));
        // A null nested location falls back to the top-level one.
        v["responseParameters"] = json!({"failureLocation": null});
        assert_eq!(failure_key(&v).as_deref(), Some("failures/top.out"));
    }

    #[test]
    fn missing_response_parameters_on_success() {
        let mut v: Value = serde_json::from_str(SUCCESS).unwrap();
        v.as_object_mut().unwrap().remove("responseParameters");
        v.as_object_mut().unwrap().remove("requestParameters");
        let n = parse_value(&v).unwrap();
        assert_eq!(n.request, RequestParameters::default());
        assert_eq!(
            n.outcome,
            InferenceOutcome::Succeeded {
                output_location: None,
                response_content_type: None,
                inline_body: None
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut v: Value = serde_json::from_str(SUCCESS).unwrap();
        v["somethingNew"] = json!({"deep": [1, 2, 3]});
        v["requestParameters"]["extra"] = json!(42);
        v["responseParameters"]["extra"] = json!(null);
        let n = parse_value(&v).unwrap();
        assert_eq!(n, parse_notification(SUCCESS).unwrap());
    }

    #[test]
    fn null_optional_fields() {
        let v = json!({
            "inferenceId": "id",
            "invocationStatus": "Completed",
            "awsRegion": null, "eventTime": null, "receivedTime": null, "eventVersion": null,
            "eventSource": null, "eventName": null, "Subject": null, "failureReason": null,
            "failureLocation": null, "responseBody": null,
            "requestParameters": {"accept": null, "contentType": null, "customAttributes": null,
                "endpointName": null, "inputLocation": null},
            "responseParameters": {"contentType": null, "outputLocation": null, "failureLocation": null}
        });
        let n = parse_value(&v).unwrap();
        assert_eq!(n.aws_region, None);
        assert_eq!(n.request, RequestParameters::default());
        assert!(n.is_success());
        let v = json!({"inferenceId": "id", "invocationStatus": "Failed",
            "requestParameters": null, "responseParameters": null});
        let n = parse_value(&v).unwrap();
        assert!(!n.is_success());
    }

    #[test]
    fn non_completed_statuses_are_failures() {
        for status in [
            "Failed",
            "Stopped",
            "",
            "completed",
            "COMPLETED",
            " Completed",
        ] {
            let v = json!({"inferenceId": "id", "invocationStatus": status});
            let n = parse_value(&v).unwrap();
            assert!(!n.is_success(), "{status:?}");
            match n.outcome {
                InferenceOutcome::Failed {
                    status: s,
                    reason,
                    failure_location,
                } => {
                    assert_eq!(s, status);
                    assert_eq!(
                        reason,
                        format!("invocation status {status:?} without a failure reason")
                    );
                    assert_eq!(failure_location, None);
                }
                other => panic!("{status:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn empty_failure_reason_gets_fallback_text() {
        let v = json!({"inferenceId": "id", "invocationStatus": "Stopped", "failureReason": " "});
        match parse_value(&v).unwrap().outcome {
            InferenceOutcome::Failed { reason, .. } => {
                assert_eq!(
                    reason,
                    "invocation status \"Stopped\" without a failure reason"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn required_fields() {
        let without = |field: &str| {
            let mut v = failure_json();
            v.as_object_mut().unwrap().remove(field);
            parse_value(&v).unwrap_err()
        };
        let with_id = |id: Value| {
            let mut v = failure_json();
            v["inferenceId"] = id;
            parse_value(&v).unwrap_err()
        };
        for field in ["inferenceId", "invocationStatus"] {
            let err = without(field);
            assert!(
                matches!(err, NotificationError::MissingField(f) if f == field),
                "{err:?}"
            );
            assert!(err.to_string().contains(field));
        }
        assert!(matches!(
            with_id(Value::Null),
            NotificationError::MissingField("inferenceId")
        ));
        assert!(matches!(
            with_id(json!("")),
            NotificationError::EmptyInferenceId
        ));
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(
            parse_notification("not json"),
            Err(NotificationError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_notification(r#"{"inferenceId": "x""#),
            Err(NotificationError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_notification(""),
            Err(NotificationError::InvalidJson(_))
        ));
        for (text, found) in [
            ("[]", "an array"),
            ("\"Completed\"", "a string"),
            ("null", "null"),
            ("3", "a number"),
            ("true", "a boolean"),
        ] {
            let err = parse_notification(text).unwrap_err();
            assert!(
                matches!(err, NotificationError::NotAnObject { found: f } if f == found),
                "{text}"
            );
        }
        let v = json!({"inferenceId": 5, "invocationStatus": "Completed"});
        assert!(matches!(
            parse_value(&v),
            Err(NotificationError::Malformed(_))
        ));
        let v = json!({"inferenceId": "x", "invocationStatus": "Completed", "requestParameters": "s3://b/k"});
        assert!(matches!(
            parse_value(&v),
            Err(NotificationError::Malformed(_))
        ));
    }

    #[test]
    fn invalid_locations_name_the_field() {
        let cases = [
            (
                "requestParameters",
                "inputLocation",
                "requestParameters.inputLocation",
                "Completed",
            ),
            (
                "responseParameters",
                "outputLocation",
                "responseParameters.outputLocation",
                "Completed",
            ),
            (
                "responseParameters",
                "failureLocation",
                "responseParameters.failureLocation",
                "Failed",
            ),
        ];
        for (object, key, path, status) in cases {
            let v = json!({"inferenceId": "id", "invocationStatus": status,
                object: {key: "https://bucket/k"}});
            let err = parse_value(&v).unwrap_err();
            assert!(
                matches!(err, NotificationError::InvalidLocation { field, .. } if field == path),
                "{path}: {err:?}"
            );
            assert!(err.to_string().contains(path));
        }
        let v = json!({"inferenceId": "id", "invocationStatus": "Failed",
            "failureLocation": "s3://B/k"});
        assert!(matches!(
            parse_value(&v),
            Err(NotificationError::InvalidLocation {
                field: "failureLocation",
                ..
            })
        ));
    }

    #[test]
    fn empty_location_counts_as_absent() {
        let v = json!({"inferenceId": "id", "invocationStatus": "Completed",
            "responseParameters": {"outputLocation": ""}});
        assert!(matches!(
            parse_value(&v).unwrap().outcome,
            InferenceOutcome::Succeeded {
                output_location: None,
                ..
            }
        ));
    }

    #[test]
    fn inline_body_is_kept() {
        let mut v: Value = serde_json::from_str(SUCCESS).unwrap();
        v["responseBody"] = json!("{\"data\": []}");
        match parse_value(&v).unwrap().outcome {
            InferenceOutcome::Succeeded {
                inline_body,
                output_location,
                ..
            } => {
                assert_eq!(inline_body.as_deref(), Some("{\"data\": []}"));
                assert!(output_location.is_some());
            }
            other => panic!("{other:?}"),
        }
        // Nested wins over top level; a JSON value is kept as compact text.
        v["responseParameters"]["responseBody"] = json!({"data": []});
        match parse_value(&v).unwrap().outcome {
            InferenceOutcome::Succeeded { inline_body, .. } => {
                assert_eq!(inline_body.as_deref(), Some(r#"{"data":[]}"#))
            }
            other => panic!("{other:?}"),
        }
    }

    // ---- properties ---------------------------------------------------------

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            prop::sample::select(vec![
                "Completed",
                "Failed",
                "",
                "s3://bucket/k",
                "s3://bucket",
                "s3://Bad/k",
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(arb_field_name(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "inferenceId",
                "invocationStatus",
                "failureReason",
                "failureLocation",
                "requestParameters",
                "responseParameters",
                "inputLocation",
                "outputLocation",
                "contentType",
                "responseBody",
                "awsRegion",
            ])
            .prop_map(str::to_owned),
            any::<String>(),
        ]
    }

    fn arb_notification_like() -> impl Strategy<Value = Value> {
        let location = prop_oneof![
            Just(Value::Null),
            Just(json!("s3://bucket/results/x.out")),
            Just(json!("")),
            any::<String>().prop_map(Value::String),
            arb_json(),
        ];
        let text = prop_oneof![
            Just(Value::Null),
            Just(json!("Completed")),
            Just(json!("Failed")),
            any::<String>().prop_map(Value::String),
            arb_json(),
        ];
        (
            prop::option::of(text.clone()),
            prop::option::of(text.clone()),
            prop::option::of(text),
            prop::option::of(location.clone()),
            prop::option::of(location.clone()),
            prop::option::of(location),
        )
            .prop_map(|(id, status, reason, input, output, failure)| {
                let mut m = serde_json::Map::new();
                let put = |m: &mut serde_json::Map<String, Value>, k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                };
                put(&mut m, "inferenceId", id);
                put(&mut m, "invocationStatus", status);
                put(&mut m, "failureReason", reason);
                let mut req = serde_json::Map::new();
                put(&mut req, "inputLocation", input);
                let mut resp = serde_json::Map::new();
                put(&mut resp, "outputLocation", output);
                put(&mut resp, "failureLocation", failure.clone());
                put(&mut m, "failureLocation", failure);
                m.insert("requestParameters".into(), Value::Object(req));
                m.insert("responseParameters".into(), Value::Object(resp));
                Value::Object(m)
            })
    }

    fn check_invariants(v: &Value, result: Result<AsyncNotification, NotificationError>) {
        if let Ok(n) = result {
            assert!(!n.inference_id.is_empty());
            assert_eq!(Some(n.inference_id.as_str()), v["inferenceId"].as_str());
            let status = v["invocationStatus"].as_str();
            assert_eq!(n.is_success(), status == Some("Completed"));
            if let InferenceOutcome::Failed {
                status: s, reason, ..
            } = &n.outcome
            {
                assert_eq!(Some(s.as_str()), status);
                assert!(!reason.trim().is_empty());
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_refused_for_what_it_is(s in any::<String>()) {
            let result = parse_notification(&s);
            match serde_json::from_str::<Value>(&s) {
                Err(_) => {
                    let invalid_json = matches!(result, Err(NotificationError::InvalidJson(_)));
                    prop_assert!(invalid_json);
                }
                Ok(v) if !v.is_object() => {
                    let not_an_object = matches!(result, Err(NotificationError::NotAnObject { .. }));
                    prop_assert!(not_an_object);
                }
                Ok(v) => check_invariants(&v, result),
            }
        }

        #[test]
        fn never_panics_on_arbitrary_json(v in arb_json()) {
            let result = parse_notification(&v.to_string());
            if !v.is_object() {
                let is_not_object = matches!(result, Err(NotificationError::NotAnObject { .. }));
                prop_assert!(is_not_object);
            } else {
                check_invariants(&v, result);
            }
        }

        #[test]
        fn never_panics_on_notification_like_json(v in arb_notification_like()) {
            let result = parse_notification(&v.to_string());
            check_invariants(&v, result);
        }

        #[test]
        fn valid_minimal_notifications_parse(
            id in "[A-Za-z0-9-]{1,64}",
            status in prop_oneof![Just("Completed".to_owned()), any::<String>()],
        ) {
            let v = json!({"inferenceId": id, "invocationStatus": status});
            let n = parse_value(&v).unwrap();
            prop_assert_eq!(&n.inference_id, &id);
            prop_assert_eq!(n.is_success(), status == "Completed");
        }
    }
}

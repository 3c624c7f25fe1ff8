//! SageMaker's SNS messages when an async inference ends (docs/cochl-contract.md, "Notifications").
//!
//! Field names, order and constants are SageMaker's. `accept`, `contentType` and
//! `customAttributes` are omitted when the request had none. Times are UTC with
//! millisecond precision (`2022-01-25T22:46:00.608Z`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::protocol::AsyncInvocation;

/// `invocationStatus` of a success.
pub const STATUS_COMPLETED: &str = "Completed";
/// `invocationStatus` of a failure.
pub const STATUS_FAILED: &str = "Failed";
/// `responseParameters.contentType` of a success.
pub const RESULT_CONTENT_TYPE: &str = "application/json";
/// `responseParameters.contentType` of a failure (and of the failure object).
pub const FAILURE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// How an inference ended, with where its output went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The result was written to `output_location`.
    Completed {
        /// `s3://...` of the result.
        output_location: String,
    },
    /// The inference failed; the reason was written to `failure_location`.
    Failed {
        /// The full `failureReason` (`ClientError: ...`).
        reason: String,
        /// `s3://...` of the failure object.
        failure_location: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    aws_region: &'a str,
    event_time: String,
    received_time: String,
    invocation_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    request_parameters: RequestParameters<'a>,
    response_parameters: ResponseParameters<'a>,
    inference_id: &'a str,
    event_version: &'static str,
    event_source: &'static str,
    event_name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestParameters<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    accept: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<&'a str>,
    endpoint_name: &'a str,
    input_location: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponseParameters<'a> {
    #[serde(rename_all = "camelCase")]
    Completed {
        content_type: &'static str,
        output_location: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        content_type: &'static str,
        failure_location: &'a str,
    },
}

/// Renders the notification for `request`, received at `received` and ended at `ended`.
pub fn render(
    region: &str,
    request: &AsyncInvocation,
    outcome: &Outcome,
    received: SystemTime,
    ended: SystemTime,
) -> String {
    let (status, failure_reason, response_parameters) = match outcome {
        Outcome::Completed { output_location } => (
            STATUS_COMPLETED,
            None,
            ResponseParameters::Completed {
                content_type: RESULT_CONTENT_TYPE,
                output_location,
            },
        ),
        Outcome::Failed {
            reason,
            failure_location,
        } => (
            STATUS_FAILED,
            Some(reason.as_str()),
            ResponseParameters::Failed {
                content_type: FAILURE_CONTENT_TYPE,
                failure_location,
            },
        ),
    };
    let message = Message {
        aws_region: region,
        event_time: format_time(ended),
        received_time: format_time(received),
        invocation_status: status,
        failure_reason,
        request_parameters: RequestParameters {
            accept: request.accept.as_deref(),
            content_type: request.content_type.as_deref(),
            custom_attributes: request.custom_attributes.as_deref(),
            endpoint_name: &request.endpoint_name,
            input_location: request.input_location.to_string(),
        },
        response_parameters,
        inference_id: &request.inference_id,
        event_version: "1.0",
        event_source: "aws:sagemaker",
        event_name: "InferenceResult",
    };
    // Only strings: serialisation cannot fail.
    serde_json::to_string(&message).unwrap_or_default()
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds truncated), the form
/// SageMaker's notifications use.
pub fn format_time(time: SystemTime) -> String {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    cochl_core::time::format_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::keys::S3Uri;
    use cochl_core::notification::{parse_notification, InferenceOutcome};
    use std::time::Duration;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    fn request(full: bool) -> AsyncInvocation {
        AsyncInvocation {
            endpoint_name: "cochl-sense".into(),
            content_type: Some("audio/wav".into()),
            accept: full.then(|| "application/json".into()),
            custom_attributes: full.then(|| r#"{"default_sensitivity":1}"#.into()),
            inference_id: "cochl-abc".into(),
            input_location: S3Uri::parse("s3://bucket/incoming/a.wav").unwrap(),
            request_ttl_seconds: 21_600,
            invocation_timeout_seconds: 900,
        }
    }

    #[test]
    fn formats_times_like_sagemaker() {
        assert_eq!(format_time(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time(at(1_643_150_760_608)),
            "2022-01-25T22:46:00.608Z"
        );
        assert_eq!(format_time(at(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_time(at(4_102_444_799_999)),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn success_has_the_exact_shape() {
        let outcome = Outcome::Completed {
            output_location: "s3://out/results/5f0c.out".into(),
        };
        let text = render(
            "us-east-1",
            &request(true),
            &outcome,
            at(1_643_150_760_455),
            at(1_643_150_760_608),
        );
        assert_eq!(
            text,
            concat!(
                r#"{"awsRegion":"us-east-1","eventTime":"2022-01-25T22:46:00.608Z","receivedTime":"2022-01-25T22:46:00.455Z","#,
                r#""invocationStatus":"Completed","requestParameters":{"accept":"application/json","contentType":"audio/wav","#,
                r#""customAttributes":"{\"default_sensitivity\":1}","endpointName":"cochl-sense","inputLocation":"s3://bucket/incoming/a.wav"},"#,
                r#""responseParameters":{"contentType":"application/json","outputLocation":"s3://out/results/5f0c.out"},"#,
                r#""inferenceId":"cochl-abc","eventVersion":"1.0","eventSource":"aws:sagemaker","eventName":"InferenceResult"}"#
            )
        );
        let parsed = parse_notification(&text).unwrap();
        assert!(parsed.is_success());
        assert_eq!(parsed.inference_id, "cochl-abc");
        assert_eq!(parsed.request.accept.as_deref(), Some("application/json"));
        match parsed.outcome {
            InferenceOutcome::Succeeded {
                output_location,
                response_content_type,
                inline_body,
            } => {
                assert_eq!(
                    output_location.unwrap().to_string(),
                    "s3://out/results/5f0c.out"
                );
                assert_eq!(response_content_type.as_deref(), Some("application/json"));
                assert_eq!(inline_body, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failure_has_the_exact_shape_and_omits_absent_parameters() {
        let outcome = Outcome::Failed {
            reason: "ClientError: bad audio".into(),
            failure_location: "s3://out/failures/5f0c-error.out".into(),
        };
        let text = render("eu-west-1", &request(false), &outcome, at(0), at(1));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "awsRegion": "eu-west-1",
                "eventTime": "1970-01-01T00:00:00.001Z",
                "receivedTime": "1970-01-01T00:00:00.000Z",
                "invocationStatus": "Failed",
                "failureReason": "ClientError: bad audio",
                "requestParameters": {
                    "contentType": "audio/wav",
                    "endpointName": "cochl-sense",
                    "inputLocation": "s3://bucket/incoming/a.wav"
                },
                "responseParameters": {
                    "contentType": "text/plain; charset=utf-8",
                    "failureLocation": "s3://out/failures/5f0c-error.out"
                },
                "inferenceId": "cochl-abc",
                "eventVersion": "1.0",
                "eventSource": "aws:sagemaker",
                "eventName": "InferenceResult"
            })
        );
        let parsed = parse_notification(&text).unwrap();
        assert!(!parsed.is_success());
        assert_eq!(parsed.request.accept, None);
        assert_eq!(parsed.request.custom_attributes, None);
        match parsed.outcome {
            InferenceOutcome::Failed {
                status,
                reason,
                failure_location,
            } => {
                assert_eq!(status, "Failed");
                assert_eq!(reason, "ClientError: bad audio");
                assert_eq!(failure_location.unwrap().key(), "failures/5f0c-error.out");
            }
            other => panic!("{other:?}"),
        }
    }
}

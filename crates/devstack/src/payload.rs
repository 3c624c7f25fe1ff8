//! The payload a function would get if SNS or S3 invoked it directly, built from a queued
//! message body: what tests use to hand one captured message to a handler's per-message
//! entry point (`cochl_submit::handle`, `cochl_on_result::handle`) and see its outcome. The
//! deployed functions are fed by SQS event sources instead (`crate::event_source`).

use serde_json::{json, Value};

/// How a queued message becomes a function's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The body is an S3 notification, passed as is.
    S3,
    /// The body is an SNS envelope (non-raw SQS subscription); Lambda's SNS event wraps it
    /// as `{"Records": [{"EventSource": "aws:sns", "Sns": <envelope>}]}`.
    SnsToLambda,
}

/// Builds the payload Lambda would pass for one queued message.
pub fn to_payload(delivery: Delivery, body: &str) -> Value {
    let parsed: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
    match delivery {
        Delivery::S3 => parsed,
        Delivery::SnsToLambda => {
            let subscription = parsed
                .get("TopicArn")
                .and_then(Value::as_str)
                .map(|arn| format!("{arn}:devstack"))
                .unwrap_or_default();
            json!({"Records": [{
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription,
                "Sns": parsed,
            }]})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_envelopes_become_lambda_sns_events() {
        let envelope = r#"{"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "{\"a\": 1}"}"#;
        let payload = to_payload(Delivery::SnsToLambda, envelope);
        assert_eq!(payload["Records"][0]["EventSource"], "aws:sns");
        assert_eq!(payload["Records"][0]["Sns"]["MessageId"], "m-1");
        assert_eq!(payload["Records"][0]["Sns"]["Message"], "{\"a\": 1}");
    }

    #[test]
    fn s3_bodies_pass_through_and_garbage_is_kept_as_text() {
        assert_eq!(
            to_payload(Delivery::S3, r#"{"Records": []}"#),
            json!({"Records": []})
        );
        assert_eq!(to_payload(Delivery::S3, "garbage"), json!("garbage"));
    }
}

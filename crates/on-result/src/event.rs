//! Reading the SNS payload, one record at a time.
//!
//! Each record's `Sns.Message` is the SageMaker notification as a JSON string (parsed a
//! second time by `cochl_core::notification`). A record that cannot be read is reported
//! with its content and fails the invocation into the dead-letter path; the others are
//! still processed.

use cochl_core::notification::{parse_notification, AsyncNotification};
use serde_json::Value;

/// A record as read from the payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedRecord {
    /// A readable SageMaker async notification.
    Notification {
        /// SNS message id, for the logs.
        message_id: String,
        /// The topic that delivered it (success or error), for the logs; empty for a raw
        /// notification.
        topic_arn: String,
        /// The raw message, kept for orphans.
        raw: String,
        /// What SageMaker reported (boxed: it is much larger than the other variant).
        notification: Box<AsyncNotification>,
    },
    /// A record that could not be read.
    Malformed {
        /// Position in `Records`.
        index: usize,
        /// What is wrong.
        reason: String,
        /// The record as received.
        raw: String,
    },
}

/// The payload is not an SNS event at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an SNS event: {0}")]
pub struct EventError(pub String);

/// A payload that is not the event this function takes never will be: permanent.
impl cochl_aws::batch::RecordFailure for EventError {
    fn class(&self) -> &'static str {
        "NotAnSnsEvent"
    }

    fn is_retryable(&self) -> bool {
        false
    }
}

/// Reads the payload.
pub fn parse_event(payload: &Value) -> Result<Vec<ParsedRecord>, EventError> {
    let records = payload
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| EventError("no Records array".to_string()))?;
    Ok(records
        .iter()
        .enumerate()
        .map(|(index, record)| parse_record(index, record))
        .collect())
}

/// Reads one message of the results queue: the SNS envelope SageMaker's topics deliver
/// (`Type: Notification`, the SageMaker notification in `Message`), or, from a subscription
/// with raw message delivery, the SageMaker notification itself. `message_id` names the
/// message in the logs when the body has no SNS id.
pub fn parse_queued(message_id: &str, body: &str) -> ParsedRecord {
    let malformed = |reason: String| ParsedRecord::Malformed {
        index: 0,
        reason,
        raw: body.to_string(),
    };
    let parsed: Value = match serde_json::from_str(body) {
        Ok(parsed) => parsed,
        Err(error) => return malformed(format!("the message body is not JSON: {error}")),
    };
    if parsed.get("Message").is_some() || parsed.get("Type").is_some() {
        // An SNS envelope: exactly what an SNS event record carries under `Sns`.
        return parse_record(0, &serde_json::json!({ "Sns": parsed }));
    }
    match parse_notification(body) {
        Ok(notification) => ParsedRecord::Notification {
            message_id: message_id.to_string(),
            topic_arn: String::new(),
            raw: body.to_string(),
            notification: Box::new(notification),
        },
        Err(error) => malformed(format!("SageMaker notification: {error}")),
    }
}

fn parse_record(index: usize, record: &Value) -> ParsedRecord {
    let malformed = |reason: String| ParsedRecord::Malformed {
        index,
        reason,
        raw: record.to_string(),
    };
    let sns = record.get("Sns").or_else(|| record.get("sns"));
    let Some(message) = sns.and_then(|s| s.get("Message")).and_then(Value::as_str) else {
        return malformed("no Sns.Message string".to_string());
    };
    let field = |name: &str| {
        sns.and_then(|s| s.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (message_id, topic_arn) = (field("MessageId"), field("TopicArn"));
    match parse_notification(message) {
        Ok(notification) => ParsedRecord::Notification {
            message_id,
            topic_arn,
            raw: message.to_string(),
            notification: Box::new(notification),
        },
        Err(error) => malformed(format!("SageMaker notification: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use testkit::samples::event as sample;

    #[test]
    fn reads_both_sample_notifications() {
        for (name, success) in [("sns-success.json", true), ("sns-failure.json", false)] {
            let records = parse_event(&sample(name)).expect("event");
            let ParsedRecord::Notification {
                notification,
                message_id,
                ..
            } = &records[0]
            else {
                panic!("{name}: {records:?}");
            };
            assert_eq!(notification.is_success(), success, "{name}");
            assert!(!message_id.is_empty());
        }
    }

    #[test]
    fn queued_envelopes_and_raw_notifications_are_both_read() {
        let envelope = sample("sns-success.json")["Records"][0]["Sns"].clone();
        let raw = envelope["Message"].as_str().unwrap().to_string();
        for (body, id) in [(envelope.to_string(), None), (raw, Some("sqs-1"))] {
            let ParsedRecord::Notification {
                notification,
                message_id,
                ..
            } = parse_queued("sqs-1", &body)
            else {
                panic!("{body}");
            };
            assert!(notification.is_success());
            if let Some(id) = id {
                assert_eq!(message_id, id);
            } else {
                assert_eq!(message_id, envelope["MessageId"].as_str().unwrap());
            }
        }
        for garbage in ["not json", r#"{"Type": "Notification"}"#, r#"{"hello": 1}"#] {
            assert!(
                matches!(parse_queued("m", garbage), ParsedRecord::Malformed { .. }),
                "{garbage}"
            );
        }
    }

    #[test]
    fn malformed_records_are_reported_individually() {
        let good = sample("sns-success.json")["Records"][0].clone();
        let payload = json!({"Records": [
            {"Sns": {"Message": "not json"}},
            good,
            {"Sns": {"Message": "{\"invocationStatus\": \"Completed\"}"}},
            {"EventSource": "aws:sns"},
        ]});
        let records = parse_event(&payload).expect("event");
        assert!(matches!(
            &records[0],
            ParsedRecord::Malformed { index: 0, .. }
        ));
        assert!(matches!(&records[1], ParsedRecord::Notification { .. }));
        assert!(
            matches!(&records[2], ParsedRecord::Malformed { index: 2, reason, .. } if reason.contains("inferenceId"))
        );
        assert!(matches!(
            &records[3],
            ParsedRecord::Malformed { index: 3, .. }
        ));
        assert!(parse_event(&json!({"nope": 1})).is_err());
    }
}

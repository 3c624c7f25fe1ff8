//! Delivering queued events to a function the way Lambda does.
//!
//! Lambda invokes a function asynchronously for S3 and SNS events, retries twice on error,
//! then sends the event to the on-failure destination. A pump does the same from an SQS
//! queue: it long-polls, turns each message into the payload Lambda would pass, calls the
//! handler (several messages at once), retries a failing payload twice, and on the third
//! failure sends `{"event": <payload>, "errorType": <class>, "error": <last error>}` to a
//! dead-letter queue (the class is the `errorType` Lambda would record). A
//! message is deleted only after it was handled or dead-lettered: nothing is dropped.

use std::future::Future;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Attempts per event, as Lambda's asynchronous invocation makes (1 + 2 retries).
pub const ATTEMPTS: usize = 3;
/// Messages handled at once per pump.
pub const CONCURRENCY: usize = 8;

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

/// Why an invocation failed, as Lambda records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The function's `errorType`: `Retryable.<class>` or `Permanent.<class>`.
    pub error_type: String,
    /// The error's message.
    pub message: String,
}

/// Starts a pump; it stops when `stop` turns true.
pub fn pump<F, Fut>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    dead_letter_url: String,
    delivery: Delivery,
    handler: F,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            let receive = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send();
            let received = tokio::select! {
                received = receive => received,
                _ = stop.changed() => break,
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(queue = %queue_url, error = %cochl_aws::error_chain(&error), "receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            stream::iter(messages)
                .for_each_concurrent(CONCURRENCY, |message| {
                    let (sqs, queue_url, dead_letter_url, handler) =
                        (&sqs, &queue_url, &dead_letter_url, &handler);
                    async move {
                        let payload = to_payload(delivery, message.body().unwrap_or_default());
                        let mut last_error = Failure {
                            error_type: String::new(),
                            message: String::new(),
                        };
                        let mut handled = false;
                        for attempt in 1..=ATTEMPTS {
                            match handler(payload.clone()).await {
                                Ok(()) => {
                                    handled = true;
                                    break;
                                }
                                Err(error) => {
                                    tracing::warn!(attempt, error_type = %error.error_type, error = %error.message, "invocation failed");
                                    last_error = error;
                                }
                            }
                        }
                        if !handled {
                            let dead = json!({
                                "event": payload,
                                "errorType": last_error.error_type,
                                "error": last_error.message,
                            });
                            if let Err(error) = sqs
                                .send_message()
                                .queue_url(dead_letter_url)
                                .message_body(dead.to_string())
                                .send()
                                .await
                            {
                                // Keep the message: it becomes visible again and is retried.
                                tracing::error!(error = %cochl_aws::error_chain(&error), "dead-lettering failed");
                                return;
                            }
                        }
                        if let Some(receipt) = message.receipt_handle() {
                            let _ = sqs
                                .delete_message()
                                .queue_url(queue_url)
                                .receipt_handle(receipt)
                                .send()
                                .await;
                        }
                    }
                })
                .await;
        }
    })
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

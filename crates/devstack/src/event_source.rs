//! Delivering a queue to a function the way Lambda's SQS event source does.
//!
//! `max_concurrency` pollers (the mapping's `ScalingConfig.MaximumConcurrency`) each
//! long-poll the queue for up to `batch_size` messages, hand them to the function as one
//! `SqsEvent` and read its `SqsBatchResponse` (`ReportBatchItemFailures`): the messages it
//! did not name are deleted, the named ones are left alone, so they return when their
//! visibility timeout ends (or when the function changed it). An invocation that fails as a
//! whole leaves every message of its batch. Nothing else is done to a message: after the
//! queue's `maxReceiveCount` receives, moto's own redrive policy moves it to the dead-letter
//! queue, exactly as SQS does. As in AWS, a response naming a message that was not in the
//! batch counts as the whole batch failing.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a move waits for dead letters someone else is reading (hidden) to come back.
pub const MOVE_WAITS: Duration = Duration::from_secs(60);

/// The Region of every ARN the local stack makes (moto's default).
pub const REGION: &str = "us-east-1";

/// An event source mapping's settings.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Messages per invocation (1 to 10).
    pub batch_size: i32,
    /// Invocations at once.
    pub max_concurrency: usize,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            batch_size: 10,
            max_concurrency: 4,
        }
    }
}

/// The event Lambda would pass for these received messages of the queue `queue_arn`.
pub fn sqs_event(queue_arn: &str, messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|message| {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.md5_of_body = message.md5_of_body.clone();
            record.attributes = message
                .attributes()
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, value)| (name.as_str().to_string(), value.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record.message_attributes = message
                .message_attributes()
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, value)| {
                            let mut attribute = SqsMessageAttribute::default();
                            attribute.string_value = value.string_value.clone();
                            attribute.data_type = Some(value.data_type.clone());
                            (name.clone(), attribute)
                        })
                        .collect()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_string());
            record.aws_region = Some(REGION.into());
            record
        })
        .collect();
    event
}

/// An `SqsEvent` of bodies that were never on a queue (tests replaying captured messages
/// straight to a handler): each gets a made-up id and receive count 1.
pub fn sqs_event_of_bodies(queue_arn: &str, bodies: &[String]) -> SqsEvent {
    let messages: Vec<Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            Message::builder()
                .message_id(format!("replayed-{i}"))
                .receipt_handle(format!("replayed-{i}"))
                .body(body)
                .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
                .build()
        })
        .collect();
    sqs_event(queue_arn, &messages)
}

/// The messages of a batch to delete: those the response does not name. `None` when the
/// response names a message that is not in the batch (the whole batch then failed).
pub fn to_delete<'a>(
    batch: &'a [Message],
    response: &SqsBatchResponse,
) -> Option<Vec<&'a Message>> {
    let ids: HashSet<&str> = batch.iter().filter_map(|m| m.message_id()).collect();
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    if failed.iter().any(|id| !ids.contains(id)) {
        return None;
    }
    Some(
        batch
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
            .collect(),
    )
}

/// Starts a mapping from `queue_url` to `function`; it stops when `stop` turns true.
/// `function` is invoked with each batch; `Err` is an invocation that failed as a whole.
pub fn start<F, Fut>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    mapping: Mapping,
    function: F,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>>
where
    F: Fn(SqsEvent) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, String>> + Send + 'static,
{
    (0..mapping.max_concurrency.max(1))
        .map(|_| {
            let (sqs, queue_url, queue_arn, function, mut stop) = (
                sqs.clone(),
                queue_url.clone(),
                queue_arn.clone(),
                function.clone(),
                stop.clone(),
            );
            let batch_size = mapping.batch_size.clamp(1, 10);
            tokio::spawn(async move {
                loop {
                    if *stop.borrow() {
                        break;
                    }
                    let receive = sqs
                        .receive_message()
                        .queue_url(&queue_url)
                        .max_number_of_messages(batch_size)
                        .wait_time_seconds(1)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .message_attribute_names("All")
                        .send();
                    let received = tokio::select! {
                        received = receive => received,
                        _ = stop.changed() => break,
                    };
                    let batch = match received {
                        Ok(output) => output.messages.unwrap_or_default(),
                        Err(error) => {
                            tracing::warn!(queue = %queue_url, error = %cochl_aws::error_chain(&error), "receive failed");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    if batch.is_empty() {
                        continue;
                    }
                    let response = function(sqs_event(&queue_arn, &batch)).await;
                    let deletions = match &response {
                        Ok(response) => to_delete(&batch, response),
                        Err(error) => {
                            tracing::warn!(queue = %queue_url, error = %error, "invocation failed; the whole batch returns to the queue");
                            None
                        }
                    };
                    match deletions {
                        Some(done) if !done.is_empty() => delete(&sqs, &queue_url, &done).await,
                        Some(_) => {}
                        None if response.is_ok() => tracing::warn!(queue = %queue_url, "the response names a message outside the batch; the whole batch returns to the queue"),
                        None => {}
                    }
                }
            })
        })
        .collect()
}

async fn delete(sqs: &aws_sdk_sqs::Client, queue_url: &str, done: &[&Message]) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = done
        .iter()
        .enumerate()
        .filter_map(|(i, message)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(message.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    match sqs
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(output) if !output.failed().is_empty() => {
            // They return after their visibility timeout and are handled again (idempotent).
            tracing::warn!(
                failed = output.failed().len(),
                "some handled messages could not be deleted"
            );
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(error = %cochl_aws::error_chain(&error), "deleting handled messages failed")
        }
    }
}

/// Moves every message of `dead_letter_url` back to `source_url`, as
/// `aws sqs start-message-move-task` does in AWS (moto has no move task): each message is
/// sent again with its body and attributes, then deleted from the dead-letter queue. A
/// message someone is reading (hidden) is waited for, up to `MOVE_WAITS`; returns how many
/// moved.
pub async fn move_messages(
    sqs: &aws_sdk_sqs::Client,
    dead_letter_url: &str,
    source_url: &str,
) -> anyhow::Result<usize> {
    use anyhow::Context;
    let give_up = std::time::Instant::now() + MOVE_WAITS;
    let mut moved = 0;
    loop {
        let output = sqs
            .receive_message()
            .queue_url(dead_letter_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            let left = testkit::messaging::queue_depth(sqs, dead_letter_url).await?;
            if left == 0 {
                return Ok(moved);
            }
            anyhow::ensure!(
                std::time::Instant::now() < give_up,
                "{left} messages stayed hidden in the dead-letter queue"
            );
            continue;
        }
        for message in &messages {
            let attributes: HashMap<String, aws_sdk_sqs::types::MessageAttributeValue> =
                message.message_attributes().cloned().unwrap_or_default();
            sqs.send_message()
                .queue_url(source_url)
                .message_body(message.body().unwrap_or_default())
                .set_message_attributes((!attributes.is_empty()).then_some(attributes))
                .send()
                .await
                .context("sending back to the source queue")?;
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dead_letter_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .context("deleting from the dead-letter queue")?;
            }
            moved += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::BatchItemFailure;

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("r-{id}"))
            .body("{}")
            .build()
    }

    fn response(failed: &[&str]) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.to_string();
                failure
            })
            .collect();
        response
    }

    #[test]
    fn only_the_messages_the_response_does_not_name_are_deleted() {
        let batch = [message("a"), message("b"), message("c")];
        let ids = |done: Vec<&Message>| -> Vec<String> {
            done.iter()
                .map(|m| m.message_id().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            ids(to_delete(&batch, &response(&[])).unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(
            ids(to_delete(&batch, &response(&["b"])).unwrap()),
            ["a", "c"]
        );
        assert!(
            to_delete(&batch, &response(&["z"])).is_none(),
            "an unknown id fails the batch"
        );
    }

    #[test]
    fn events_carry_what_the_event_source_sends() {
        let received = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{\"a\": 1}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .build();
        let event = sqs_event("arn:aws:sqs:us-east-1:123456789012:q", &[received]);
        let json = serde_json::to_value(&event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["receiptHandle"], "r-1");
        assert_eq!(record["body"], "{\"a\": 1}");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "3");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:us-east-1:123456789012:q"
        );
    }
}

//! The submit queue, as the functions use it besides the event source: deferring a message
//! while the endpoint is full, and enqueuing a message (a deferred message's fresh copy, a
//! resubmission of an expired request).

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// Why a queue call failed (after the SDK's retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SQS {operation} on {queue}: {message}")]
pub struct QueueError {
    /// The API operation, e.g. `SendMessage`.
    pub operation: &'static str,
    /// The queue's URL.
    pub queue: String,
    /// The error as the SDK reports it.
    pub message: String,
}

/// One SQS queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    /// Wraps a client for one queue URL.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, operation: &'static str, error: impl std::error::Error) -> QueueError {
        QueueError {
            operation,
            queue: self.url.clone(),
            message: crate::error_chain(&error),
        }
    }

    /// Hides a received message for `hidden` more (from now), up to SQS's 12 hours.
    pub async fn change_visibility(
        &self,
        receipt_handle: &str,
        hidden: Duration,
    ) -> Result<(), QueueError> {
        let seconds = hidden.min(MAX_VISIBILITY).as_secs() as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("ChangeMessageVisibility", e))
    }

    /// Sends a message, delivered after `delay` (at most SQS's 15 minutes), with string
    /// attributes; returns the message id.
    pub async fn send(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(String, String)],
    ) -> Result<String, QueueError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| self.error("SendMessage", e))?;
            request = request.message_attributes(name, value);
        }
        let output = request
            .send()
            .await
            .map_err(|e| self.error("SendMessage", e))?;
        Ok(output.message_id().unwrap_or_default().to_string())
    }
}

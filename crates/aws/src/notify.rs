//! Publishing detection notifications to SNS.
//!
//! Subscribers filter on message attributes (`tags` as `String.Array`, `status`, `bucket`),
//! so the attributes are part of the contract, not decoration.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

/// A message attribute value as SNS types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `String`.
    String(String),
    /// `String.Array`: a JSON array of strings, matchable by filter policies.
    StringArray(Vec<String>),
}

/// A detection notification as SNS takes it: body and the attributes filters match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The JSON document subscribers read.
    pub body: String,
    /// Message attributes by name.
    pub attributes: Vec<(String, Attribute)>,
}

/// Why a publish failed (after the SDK's retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SNS Publish to {topic}: {message}")]
pub struct PublishError {
    /// ARN of the topic that refused the message.
    pub topic: String,
    /// The error as the SDK reports it.
    pub message: String,
}

/// One SNS topic.
#[derive(Debug, Clone)]
pub struct Topic {
    client: Client,
    arn: String,
}

impl Topic {
    /// Wraps a client for one topic ARN.
    pub fn new(client: Client, arn: impl Into<String>) -> Self {
        Topic {
            client,
            arn: arn.into(),
        }
    }

    /// Where messages go, for logs and for tests that subscribe to it.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Publishes a message; returns the SNS message id.
    pub async fn publish(&self, message: &Message) -> Result<String, PublishError> {
        let error = |message: String| PublishError {
            topic: self.arn.clone(),
            message,
        };
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.arn)
            .message(&message.body);
        for (name, value) in &message.attributes {
            let (data_type, text) = match value {
                Attribute::String(text) => ("String", text.clone()),
                Attribute::StringArray(items) => (
                    "String.Array",
                    serde_json::to_string(items).unwrap_or_else(|_| "[]".into()),
                ),
            };
            let attribute = MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(text)
                .build()
                .map_err(|e| error(e.to_string()))?;
            request = request.message_attributes(name, attribute);
        }
        let output = request
            .send()
            .await
            .map_err(|e| error(crate::error_chain(&e)))?;
        Ok(output.message_id().unwrap_or_default().to_string())
    }
}

//! A topic that keeps every message published to it.

use std::sync::Mutex;

use cochl_aws::notify::{Message, PublishError};
use cochl_aws::ports::NotificationTopic;

use super::lock;

/// Records published messages; can be told to fail the next publishes.
#[derive(Debug, Default)]
pub struct RecordingTopic {
    published: Mutex<Vec<Message>>,
    failures: Mutex<usize>,
    attempts: Mutex<usize>,
}

impl RecordingTopic {
    /// A topic that accepts everything.
    pub fn new() -> Self {
        RecordingTopic::default()
    }

    /// The next `times` publishes fail as an unreachable SNS would.
    pub fn fail_next(&self, times: usize) {
        *lock(&self.failures) += times;
    }

    /// Messages published, in order.
    pub fn messages(&self) -> Vec<Message> {
        lock(&self.published).clone()
    }

    /// Bodies of the messages published, parsed.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.messages()
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// Publishes attempted, failed ones included.
    pub fn attempts(&self) -> usize {
        *lock(&self.attempts)
    }
}

impl NotificationTopic for RecordingTopic {
    async fn publish(&self, message: &Message) -> Result<String, PublishError> {
        *lock(&self.attempts) += 1;
        {
            let mut failures = lock(&self.failures);
            if *failures > 0 {
                *failures -= 1;
                return Err(PublishError {
                    topic: "memory".into(),
                    message: "injected publish failure".into(),
                });
            }
        }
        let mut published = lock(&self.published);
        published.push(message.clone());
        Ok(format!("message-{}", published.len()))
    }
}

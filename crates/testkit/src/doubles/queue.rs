//! A queue that keeps what a function did to it: deferrals and messages sent.

use std::sync::Mutex;
use std::time::Duration;

use cochl_aws::ports::MessageQueue;
use cochl_aws::queue::QueueError;

use super::lock;

/// A message sent to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Its body.
    pub body: String,
    /// Its `DelaySeconds`.
    pub delay: Duration,
    /// Its string attributes.
    pub attributes: Vec<(String, String)>,
}

/// Records visibility changes and sends; can be told to fail the next calls.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    hidden: Mutex<Vec<(String, Duration)>>,
    sent: Mutex<Vec<SentMessage>>,
    failures: Mutex<usize>,
}

impl MemoryQueue {
    /// A queue that accepts everything.
    pub fn new() -> Self {
        MemoryQueue::default()
    }

    /// The next `times` calls (of either kind) fail as an unreachable SQS would.
    pub fn fail_next(&self, times: usize) {
        *lock(&self.failures) += times;
    }

    /// Visibility changes made: receipt handle and how long it was hidden.
    pub fn hidden(&self) -> Vec<(String, Duration)> {
        lock(&self.hidden).clone()
    }

    /// Messages sent, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        lock(&self.sent).clone()
    }

    fn fail(&self, operation: &'static str) -> Result<(), QueueError> {
        let mut failures = lock(&self.failures);
        if *failures > 0 {
            *failures -= 1;
            return Err(QueueError {
                operation,
                queue: "memory".into(),
                message: "injected queue failure".into(),
            });
        }
        Ok(())
    }
}

impl MessageQueue for MemoryQueue {
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        hidden: Duration,
    ) -> Result<(), QueueError> {
        self.fail("ChangeMessageVisibility")?;
        lock(&self.hidden).push((receipt_handle.to_string(), hidden));
        Ok(())
    }

    async fn send(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(String, String)],
    ) -> Result<String, QueueError> {
        self.fail("SendMessage")?;
        let mut sent = lock(&self.sent);
        sent.push(SentMessage {
            body: body.to_string(),
            delay,
            attributes: attributes.to_vec(),
        });
        Ok(format!("sent-{}", sent.len()))
    }
}

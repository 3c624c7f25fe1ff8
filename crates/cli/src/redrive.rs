//! `cochl redrive`: moves dead letters back to the queue they came from, after the cause of
//! their failure is fixed.
//!
//! Done with plain SQS calls rather than `StartMessageMoveTask` so it works the same in AWS
//! and against `make up` (moto has no move tasks): receive up to 10, send them to the source
//! queue with their attributes, delete from the dead-letter queue only what was sent. A
//! message whose send failed stays in the dead-letter queue (visible again after its
//! visibility timeout) and is reported; nothing is deleted that was not delivered.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use crate::args::QueueChoice;
use crate::commands::{sdk_error, Session};
use crate::resources::Resource;

/// The pairs (dead-letter queue, source queue) a choice covers.
fn pairs(choice: QueueChoice) -> Vec<(Resource, Resource)> {
    let submit = (Resource::SubmitDeadLetterQueue, Resource::SubmitQueue);
    let results = (Resource::ResultsDeadLetterQueue, Resource::ResultsQueue);
    match choice {
        QueueChoice::Submit => vec![submit],
        QueueChoice::Results => vec![results],
        QueueChoice::All => vec![submit, results],
    }
}

/// What one dead-letter queue's redrive did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Sent to the source queue and deleted from the dead-letter queue.
    pub moved: usize,
    /// Left in the dead-letter queue because the send failed.
    pub failed: usize,
}

/// Redrives every chosen dead-letter queue; one line each.
pub async fn run(session: &Session, choice: QueueChoice) -> Result<ExitCode> {
    let sqs = Client::new(&session.config);
    let mut failed = 0;
    for (dead_letters, source) in pairs(choice) {
        let dead_letters = session.resources.require(dead_letters)?;
        let source = session.resources.require(source)?;
        let result = move_all(&sqs, dead_letters, source).await?;
        println!(
            "{dead_letters} -> {source}: {} moved, {} left after a failed send",
            result.moved, result.failed
        );
        failed += result.failed;
    }
    if failed > 0 {
        bail!("{failed} messages could not be sent back and stay in their dead-letter queues");
    }
    Ok(ExitCode::SUCCESS)
}

/// Moves messages until a receive finds none.
pub async fn move_all(sqs: &Client, dead_letters: &str, source: &str) -> Result<Moved> {
    let mut total = Moved::default();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("receiving from {dead_letters}"))?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(total);
        }
        let batch = move_batch(sqs, dead_letters, source, messages).await?;
        total.moved += batch.moved;
        total.failed += batch.failed;
    }
}

/// Sends one received batch to `source`, then deletes from `dead_letters` what was sent.
async fn move_batch(
    sqs: &Client,
    dead_letters: &str,
    source: &str,
    messages: &[Message],
) -> Result<Moved> {
    let mut entries = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        entries.push(
            SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(message.body().unwrap_or_default())
                .set_message_attributes(message.message_attributes().cloned())
                .build()
                .context("a send entry")?,
        );
    }
    let sent = sqs
        .send_message_batch()
        .queue_url(source)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("sending to {source}"))?;
    for failure in sent.failed() {
        eprintln!(
            "cochl: a message stays in {dead_letters}: {} ({})",
            failure.message().unwrap_or("no message"),
            failure.code()
        );
    }
    let mut deletes = Vec::new();
    for success in sent.successful() {
        let index: usize = success.id().parse().context("an entry id we sent")?;
        let Some(handle) = messages.get(index).and_then(Message::receipt_handle) else {
            continue;
        };
        deletes.push(
            DeleteMessageBatchRequestEntry::builder()
                .id(success.id())
                .receipt_handle(handle)
                .build()
                .context("a delete entry")?,
        );
    }
    let moved = deletes.len();
    if !deletes.is_empty() {
        let deleted = sqs
            .delete_message_batch()
            .queue_url(dead_letters)
            .set_entries(Some(deletes))
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("deleting moved messages from {dead_letters}"))?;
        if let Some(failure) = deleted.failed().first() {
            bail!(
                "{} moved messages could not be deleted from {dead_letters} and will be \
                 delivered twice: {}",
                deleted.failed().len(),
                failure.message().unwrap_or(failure.code())
            );
        }
    }
    Ok(Moved {
        moved,
        failed: sent.failed().len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_pairs_dead_letters_with_their_source() {
        assert_eq!(
            pairs(QueueChoice::Results),
            [(Resource::ResultsDeadLetterQueue, Resource::ResultsQueue)]
        );
        assert_eq!(
            pairs(QueueChoice::Submit),
            [(Resource::SubmitDeadLetterQueue, Resource::SubmitQueue)]
        );
        assert_eq!(pairs(QueueChoice::All).len(), 2);
    }
}

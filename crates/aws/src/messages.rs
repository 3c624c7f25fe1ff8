//! The SQS event source's side of both queue-fed functions.
//!
//! Lambda's SQS event source hands a function a batch of messages (`SqsEvent`); with
//! `ReportBatchItemFailures` the function answers which of them failed (`SqsBatchResponse`).
//! Those return to the queue when their visibility timeout ends, the others are deleted;
//! after the queue's `maxReceiveCount` receives a failing message moves to the dead-letter
//! queue. [`run_messages`] handles each message on its own, a bounded number at a time, so
//! one bad message never blocks the others and is the only one reported.
//!
//! A message may also be **deferred**: it is fine but cannot be handled yet (the endpoint is
//! full). It is then hidden for a while ([`DeferPolicy`]: exponential backoff with jitter)
//! and reported as failed so it comes back. Each receive counts towards `maxReceiveCount`,
//! so before a deferred message could reach it, a fresh copy is enqueued (with the same
//! delay) and the original reported handled: waiting for room never sends a message to the
//! dead-letter queue, however long the backlog lasts.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use crate::batch::RecordFailure;
use crate::queue::QueueError;

/// Message attribute counting the deferrals of earlier copies of a message, so a fresh copy
/// continues the backoff where the original stopped.
pub const DEFERRALS_ATTRIBUTE: &str = "cochl-deferrals";

/// One received message, as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// SQS's message id: what a batch item failure names.
    pub message_id: String,
    /// The body as sent.
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first receive.
    pub receive_count: u32,
    /// Deferrals of earlier copies of this message ([`DEFERRALS_ATTRIBUTE`]).
    pub earlier_deferrals: u32,
    receipt_handle: Option<String>,
}

impl QueuedMessage {
    /// Reads what the runner needs from an event source record; `None` without a message id
    /// (it could not be reported, so the caller fails the whole batch).
    fn from_record(record: &SqsMessage) -> Option<QueuedMessage> {
        let message_id = record.message_id.clone().filter(|id| !id.is_empty())?;
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let earlier_deferrals = record
            .message_attributes
            .get(DEFERRALS_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Some(QueuedMessage {
            message_id,
            body: record.body.clone().unwrap_or_default(),
            receive_count,
            earlier_deferrals,
            receipt_handle: record.receipt_handle.clone(),
        })
    }
}

/// What handling a message came to, besides failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled<O> {
    /// Done: the message may be deleted.
    Done(O),
    /// Fine, but it must wait (the endpoint is full): defer it.
    Defer(O),
}

/// How deferred messages wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferPolicy {
    /// First delay ceiling.
    pub base: Duration,
    /// Largest delay ceiling.
    pub max: Duration,
    /// The queue's `maxReceiveCount`.
    pub max_receive_count: u32,
}

impl DeferPolicy {
    /// The delay of a message's next deferral: `base × 2^(deferrals so far)`, capped at
    /// `max`, then a uniformly random point of its upper half ("equal jitter": spread out,
    /// yet never much shorter than the backoff intends). `entropy` seeds the jitter.
    pub fn delay(&self, message: &QueuedMessage, entropy: u64) -> Duration {
        let deferrals = message.receive_count.saturating_sub(1) + message.earlier_deferrals;
        let ceiling = self
            .base
            .saturating_mul(1u32 << deferrals.min(20))
            .min(self.max);
        let unit = (splitmix(entropy) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling / 2 + (ceiling / 2).mul_f64(unit)
    }

    /// True when hiding the message again would bring it within one receive of the
    /// dead-letter queue (a message goes there once received more than `maxReceiveCount`
    /// times; one receive of margin because the count is approximate), so the deferral must
    /// enqueue a fresh copy instead.
    pub fn must_requeue(&self, message: &QueuedMessage) -> bool {
        message.receive_count + 1 >= self.max_receive_count
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn entropy(message_id: &str) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    message_id
        .bytes()
        .fold(now, |acc, b| acc.rotate_left(5) ^ u64::from(b))
}

/// How to defer one message: [`DeferPolicy::plan`] decides, the function's queue acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferPlan {
    /// Hide the message for `delay` (`ChangeMessageVisibility`); it is reported failed so
    /// it returns.
    Hide {
        /// The receive's handle.
        receipt_handle: String,
        /// How long it stays hidden.
        delay: Duration,
    },
    /// Enqueue a fresh copy of the body, visible after `delay`, with `attributes`; the
    /// original is reported handled (deleted).
    Requeue {
        /// The body to send again.
        body: String,
        /// Its `DelaySeconds`.
        delay: Duration,
        /// Carries the deferral count ([`DEFERRALS_ATTRIBUTE`]).
        attributes: Vec<(String, String)>,
    },
}

impl DeferPlan {
    /// True when the original must be reported failed (it was hidden, not replaced).
    fn original_returns(&self) -> bool {
        matches!(self, DeferPlan::Hide { .. })
    }
}

impl DeferPolicy {
    /// Decides how to defer `message`: hide it, or, when it nears `maxReceiveCount` (or
    /// came without a receipt handle), enqueue a fresh copy.
    pub fn plan(&self, message: &QueuedMessage) -> DeferPlan {
        let delay = self.delay(message, entropy(&message.message_id));
        match (&message.receipt_handle, self.must_requeue(message)) {
            (Some(receipt), false) => DeferPlan::Hide {
                receipt_handle: receipt.clone(),
                delay,
            },
            _ => {
                let deferrals = message.receive_count + message.earlier_deferrals;
                DeferPlan::Requeue {
                    body: message.body.clone(),
                    delay,
                    attributes: vec![(DEFERRALS_ATTRIBUTE.to_string(), deferrals.to_string())],
                }
            }
        }
    }
}

/// Handles every message of `event`, at most `concurrency` at once; a message the handler
/// defers is deferred as `policy` plans, by `act` (the function's own queue calls);
/// answers which messages must come back.
pub async fn run_messages<O, E, F, Fut, A, AFut>(
    event: &SqsEvent,
    concurrency: usize,
    policy: &DeferPolicy,
    handle: F,
    act: A,
) -> SqsBatchResponse
where
    O: Debug,
    E: RecordFailure,
    F: Fn(QueuedMessage) -> Fut,
    Fut: Future<Output = Result<Handled<O>, E>>,
    A: Fn(DeferPlan) -> AFut,
    AFut: Future<Output = Result<(), QueueError>>,
{
    let mut messages = Vec::with_capacity(event.records.len());
    for record in &event.records {
        match QueuedMessage::from_record(record) {
            Some(message) => messages.push(message),
            None => {
                // Without an id it cannot be reported alone; Lambda treats an empty
                // identifier as the whole batch failing, and every step is idempotent.
                tracing::error!(record = ?record, "a message without a message id: the whole batch returns to the queue");
                let mut response = SqsBatchResponse::default();
                response.batch_item_failures = event
                    .records
                    .iter()
                    .map(|record| failure(record.message_id.clone().unwrap_or_default()))
                    .collect();
                return response;
            }
        }
    }
    let failed: Vec<Option<String>> = stream::iter(messages)
        .map(|message| {
            let (handle, act) = (&handle, &act);
            async move {
                let id = message.message_id.clone();
                let span = tracing::info_span!(
                    "message",
                    message_id = %id,
                    receive_count = message.receive_count
                );
                match handle(message.clone()).instrument(span).await {
                    Ok(Handled::Done(outcome)) => {
                        tracing::info!(message_id = %id, outcome = ?outcome, "message handled");
                        None
                    }
                    Ok(Handled::Defer(outcome)) => {
                        let plan = policy.plan(&message);
                        let returns = plan.original_returns();
                        match act(plan.clone()).await {
                        Ok(()) => {
                            tracing::info!(message_id = %id, outcome = ?outcome, deferral = ?plan, "message deferred");
                            returns.then_some(id)
                        }
                        Err(error) => {
                            tracing::error!(message_id = %id, error = %error, "deferring failed; the message returns after its visibility timeout");
                            Some(id)
                        }
                    }
                    }
                    Err(error) => {
                        tracing::error!(
                            message_id = %id,
                            receive_count = message.receive_count,
                            error = %crate::error_chain(&error),
                            class = error.class(),
                            retryable = error.is_retryable(),
                            "message failed; it returns to the queue (the dead-letter queue after maxReceiveCount)"
                        );
                        Some(id)
                    }
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed.into_iter().flatten().map(failure).collect();
    response
}

fn failure(message_id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id;
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(receive_count: u32, earlier: u32) -> QueuedMessage {
        QueuedMessage {
            message_id: "m".into(),
            body: "{}".into(),
            receive_count,
            earlier_deferrals: earlier,
            receipt_handle: Some("r".into()),
        }
    }

    #[test]
    fn delays_double_per_deferral_within_their_ceiling() {
        let policy = DeferPolicy {
            base: Duration::from_secs(10),
            max: Duration::from_secs(100),
            max_receive_count: 5,
        };
        for (receives, earlier, ceiling) in
            [(1, 0, 10), (2, 0, 20), (3, 0, 40), (1, 3, 80), (4, 4, 100)]
        {
            for seed in 0..50 {
                let delay = policy.delay(&message(receives, earlier), seed);
                let ceiling = Duration::from_secs(ceiling);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} for {ceiling:?}"
                );
            }
        }
    }

    #[test]
    fn a_message_is_requeued_before_one_more_receive_could_dead_letter_it() {
        let policy = DeferPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
            max_receive_count: 4,
        };
        assert!(!policy.must_requeue(&message(1, 0)));
        assert!(!policy.must_requeue(&message(2, 0)));
        assert!(policy.must_requeue(&message(3, 0)));
        assert!(policy.must_requeue(&message(4, 0)));
    }
}

//! The record runner both event-driven functions share.
//!
//! A Lambda event carries a batch of records. Each record is handled on its own, a bounded
//! number at a time; one bad record never stops the others. When every record was handled
//! the outcomes are the invocation's answer; when some failed, the invocation fails with a
//! [`BatchError`] that keeps the outcomes of the others and says, through the `errorType`
//! of the Lambda runtime's `Diagnostic`, which class of failure it was and
//! whether a retry can help. Every step of both functions is idempotent, so retrying the
//! whole event redoes nothing that was done.

use std::fmt::{Debug, Display};
use std::future::Future;

use futures_util::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;

use crate::dynamo::StoreError;

/// What a record-level error must tell the runner and the runtime.
pub trait RecordFailure: std::error::Error {
    /// A stable, CamelCase name of the failure class (`StoreUnavailable`, `MalformedRecord`,
    /// ...): the `errorType` Lambda records, so on-failure records can be sorted by cause.
    fn class(&self) -> &'static str;

    /// True when the same record may succeed later (throttling, an outage, a conflicting
    /// writer); false when only a change of the input or the code can help.
    fn is_retryable(&self) -> bool;
}

/// Some records of a batch could not be handled; the others were.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} records could not be handled: {}", failures.len(), first_failure(failures))]
pub struct BatchError<O, E: RecordFailure> {
    /// Records in the batch.
    pub total: usize,
    /// The failed records: their position in the batch and why.
    pub failures: Vec<(usize, E)>,
    /// The outcomes of the records that were handled, in batch order.
    pub handled: Vec<O>,
}

fn first_failure<E: Display>(failures: &[(usize, E)]) -> String {
    failures
        .first()
        .map_or_else(String::new, |(_, error)| error.to_string())
}

impl<O, E: RecordFailure> BatchError<O, E> {
    /// True when at least one failure may succeed on a retry.
    pub fn is_retryable(&self) -> bool {
        self.failures.iter().any(|(_, error)| error.is_retryable())
    }

    /// The `errorType` of the invocation: `Retryable.<class>` or `Permanent.<class>` of the
    /// first failure, retryable if any failure is (a retry is then worth making).
    pub fn error_type(&self) -> String {
        let class = self
            .failures
            .first()
            .map_or("Unknown", |(_, error)| error.class());
        error_type(self.is_retryable(), class)
    }
}

/// Why a whole invocation failed: the payload is not the event the function expects, or some
/// of its records could not be handled (the others were).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError<P: RecordFailure, O, E: RecordFailure> {
    /// The payload is not the expected event at all; nothing was handled.
    #[error(transparent)]
    NotAnEvent(P),
    /// Some records could not be handled; the others were.
    #[error(transparent)]
    Records(BatchError<O, E>),
}

impl<P: RecordFailure, O, E: RecordFailure> InvocationError<P, O, E> {
    /// The `errorType` Lambda records: `Retryable.<class>` or `Permanent.<class>`.
    pub fn error_type(&self) -> String {
        match self {
            InvocationError::NotAnEvent(error) => error_type(error.is_retryable(), error.class()),
            InvocationError::Records(batch) => batch.error_type(),
        }
    }
}

/// A whole message of a queue-fed function failed: its class is the invocation's.
impl<P: RecordFailure, O: Debug, E: RecordFailure> RecordFailure for InvocationError<P, O, E> {
    fn class(&self) -> &'static str {
        match self {
            InvocationError::NotAnEvent(error) => error.class(),
            InvocationError::Records(batch) => batch
                .failures
                .first()
                .map_or("Unknown", |(_, error)| error.class()),
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            InvocationError::NotAnEvent(error) => error.is_retryable(),
            InvocationError::Records(batch) => batch.is_retryable(),
        }
    }
}

impl<P: RecordFailure, O, E: RecordFailure> From<BatchError<O, E>> for InvocationError<P, O, E> {
    fn from(batch: BatchError<O, E>) -> Self {
        InvocationError::Records(batch)
    }
}

/// What the runtime reports for a failed invocation, so `errorType` names the failure class.
impl<P, O, E> From<InvocationError<P, O, E>> for Diagnostic
where
    P: RecordFailure,
    O: Debug,
    E: RecordFailure,
{
    fn from(error: InvocationError<P, O, E>) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type(),
            error_message: crate::error_chain(&error),
        }
    }
}

/// A table operation that failed, with what the handler was doing: both functions' record
/// errors carry it, so its class is decided in one place.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct StoreFailure {
    /// What the handler was doing, e.g. `claiming the job`.
    pub step: &'static str,
    /// The table's error.
    pub source: StoreError,
}

impl StoreFailure {
    /// Wraps a table error with the step, for `map_err`.
    pub fn at(step: &'static str) -> impl FnOnce(StoreError) -> StoreFailure {
        move |source| StoreFailure { step, source }
    }

    /// `CorruptItem` for an item that cannot be decoded, else `StoreUnavailable`.
    pub fn class(&self) -> &'static str {
        match self.source {
            StoreError::Item(_) => "CorruptItem",
            _ => "StoreUnavailable",
        }
    }

    /// An undecodable item stays undecodable; anything else may pass on a retry.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.source, StoreError::Item(_))
    }
}

/// `Retryable.<class>` or `Permanent.<class>`: the shape of every `errorType` we report.
fn error_type(retryable: bool, class: &str) -> String {
    let kind = if retryable { "Retryable" } else { "Permanent" };
    format!("{kind}.{class}")
}

/// Handles `records` with at most `concurrency` in flight, keeping batch order, and logs
/// each record's outcome or failure as one JSON line.
pub async fn run_batch<R, O, E, F, Fut>(
    records: Vec<R>,
    concurrency: usize,
    handle: F,
) -> Result<Vec<O>, BatchError<O, E>>
where
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Debug,
    E: RecordFailure,
{
    let total = records.len();
    let results: Vec<Result<O, E>> = stream::iter(records)
        .map(handle)
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut handled = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(outcome) => {
                tracing::info!(index, outcome = ?outcome, "record handled");
                handled.push(outcome);
            }
            Err(error) => {
                tracing::error!(
                    index,
                    error = %crate::error_chain(&error),
                    class = error.class(),
                    retryable = error.is_retryable(),
                    "record failed"
                );
                failures.push((index, error));
            }
        }
    }
    if failures.is_empty() {
        Ok(handled)
    } else {
        Err(BatchError {
            total,
            failures,
            handled,
        })
    }
}

/// Logs a payload that is not the event the function expects, with its content, before the
/// invocation fails into the dead-letter path.
pub fn log_unreadable(payload: &serde_json::Value, error: &dyn std::error::Error) {
    tracing::error!(payload = %payload, error = %error, "not the expected event; failing into the dead-letter path");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error("record {0} failed")]
    struct Failed(usize, bool);

    impl RecordFailure for Failed {
        fn class(&self) -> &'static str {
            "Failed"
        }
        fn is_retryable(&self) -> bool {
            self.1
        }
    }

    #[tokio::test]
    async fn keeps_order_and_bounds_concurrency() {
        let in_flight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let outcomes = run_batch((0..20).collect(), 3, |i: usize| {
            let (in_flight, peak) = (&in_flight, &peak);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Failed>(i * 2)
            }
        })
        .await
        .expect("all handled");
        assert_eq!(outcomes, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
    }

    #[tokio::test]
    async fn one_failure_never_stops_the_others() {
        let error = run_batch(vec![0, 1, 2, 3], 2, |i: usize| async move {
            if i == 1 {
                Err(Failed(i, false))
            } else {
                Ok(i)
            }
        })
        .await
        .expect_err("record 1 fails");
        assert_eq!(error.total, 4);
        assert_eq!(error.handled, vec![0, 2, 3]);
        assert_eq!(error.failures.len(), 1);
        assert_eq!(error.failures[0].0, 1);
        assert_eq!(error.error_type(), "Permanent.Failed");
        assert_eq!(
            error.to_string(),
            "1 of 4 records could not be handled: record 1 failed"
        );
    }

    #[tokio::test]
    async fn any_retryable_failure_makes_the_batch_retryable() {
        let error = run_batch(vec![0, 1, 2], 1, |i: usize| async move {
            Err::<usize, _>(Failed(i, i == 2))
        })
        .await
        .expect_err("all fail");
        assert!(error.is_retryable());
        assert_eq!(error.error_type(), "Retryable.Failed");
    }
}

//! Why a notification or an invocation of the on-result function failed.
//!
//! Whether a retry can help is a property of the error's variant, not of its message: the
//! runtime's `errorType` names the class, e.g. `Retryable.ResultUnavailable` or
//! `Permanent.MalformedRecord`. An inference failure or an unusable result is not an error
//! at all: it is recorded (job FAILED) and notified.

use cochl_aws::batch::{InvocationError, RecordFailure, StoreFailure};
use cochl_aws::notify::PublishError;
use cochl_aws::objects::ObjectError;
use cochl_aws::queue::QueueError;

use crate::event::EventError;
use crate::outcome::NotificationOutcome;

/// Why one notification could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The SNS record or the SageMaker message in it cannot be read.
    #[error("record {index} is malformed: {reason}")]
    Malformed {
        /// Position in `Records`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A table operation failed.
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// The result object could not be read (not yet visible, or S3 unreachable).
    #[error(transparent)]
    ResultUnavailable(ObjectError),
    /// The detection notification could not be published; the job is left as it was, so a
    /// retry publishes it before settling.
    #[error(transparent)]
    Publish(PublishError),
    /// The resubmission of an expired request could not be enqueued.
    #[error("the request expired; enqueuing its resubmission failed: {0}")]
    Resubmit(#[source] QueueError),
    /// Conflicting writers changed the job every time the outcome was recorded.
    #[error("the job kept changing underneath ({attempts} conflicting writes)")]
    Contended {
        /// Attempts made.
        attempts: usize,
    },
}

impl RecordFailure for RecordError {
    fn class(&self) -> &'static str {
        match self {
            RecordError::Malformed { .. } => "MalformedRecord",
            RecordError::Store(failure) => failure.class(),
            RecordError::ResultUnavailable(_) => "ResultUnavailable",
            RecordError::Publish(_) => "PublishFailed",
            RecordError::Contended { .. } => "Contended",
            RecordError::Resubmit(_) => "ResubmitFailed",
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            RecordError::Malformed { .. } => false,
            RecordError::Store(failure) => failure.is_retryable(),
            RecordError::ResultUnavailable(_)
            | RecordError::Publish(_)
            | RecordError::Contended { .. }
            | RecordError::Resubmit(_) => true,
        }
    }
}

/// Why an invocation failed (Lambda retries it, then the on-failure destination keeps it).
/// Converts to the runtime's `Diagnostic` with `errorType` `Retryable.<class>` or
/// `Permanent.<class>`.
pub type ResultError = InvocationError<EventError, NotificationOutcome, RecordError>;

//! Why a notification or an invocation of the on-result function failed.
//!
//! Whether a retry can help is a property of the error's variant, not of its message: the
//! runtime's `errorType` names the class, e.g. `Retryable.ResultUnavailable` or
//! `Permanent.MalformedRecord`. An inference failure or an unusable result is not an error
//! at all: it is recorded (job FAILED) and notified.

use cochl_aws::batch::{error_type, BatchError, RecordFailure};
use cochl_aws::dynamo::StoreError;
use cochl_aws::error_chain;
use cochl_aws::notify::PublishError;
use cochl_aws::objects::ObjectError;
use lambda_runtime::Diagnostic;

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
    /// A table operation failed; `step` says which.
    #[error("{step}: {source}")]
    Store {
        /// What the handler was doing.
        step: &'static str,
        /// The table's error.
        source: StoreError,
    },
    /// The result object could not be read (not yet visible, or S3 unreachable).
    #[error(transparent)]
    ResultUnavailable(ObjectError),
    /// The detection notification could not be published; the job is left as it was, so a
    /// retry publishes it before settling.
    #[error(transparent)]
    Publish(PublishError),
    /// Conflicting writers changed the job every time the outcome was recorded.
    #[error("the job kept changing underneath ({attempts} conflicting writes)")]
    Contended {
        /// Attempts made.
        attempts: usize,
    },
}

impl RecordError {
    /// Wraps a table error with what the handler was doing.
    pub(crate) fn store(step: &'static str) -> impl FnOnce(StoreError) -> RecordError {
        move |source| RecordError::Store { step, source }
    }
}

impl RecordFailure for RecordError {
    fn class(&self) -> &'static str {
        match self {
            RecordError::Malformed { .. } => "MalformedRecord",
            RecordError::Store {
                source: StoreError::Item(_),
                ..
            } => "CorruptItem",
            RecordError::Store { .. } => "StoreUnavailable",
            RecordError::ResultUnavailable(_) => "ResultUnavailable",
            RecordError::Publish(_) => "PublishFailed",
            RecordError::Contended { .. } => "Contended",
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            RecordError::Malformed { .. } => false,
            RecordError::Store { source, .. } => !matches!(source, StoreError::Item(_)),
            RecordError::ResultUnavailable(_)
            | RecordError::Publish(_)
            | RecordError::Contended { .. } => true,
        }
    }
}

/// Why an invocation failed (Lambda retries it, then the on-failure destination keeps it).
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The payload is not an SNS event.
    #[error(transparent)]
    NotAnEvent(#[from] EventError),
    /// Some notifications could not be handled; the others were.
    #[error(transparent)]
    Records(#[from] BatchError<NotificationOutcome, RecordError>),
}

impl ResultError {
    /// The `errorType` Lambda records: `Retryable.<class>` or `Permanent.<class>`.
    pub fn error_type(&self) -> String {
        match self {
            ResultError::NotAnEvent(_) => error_type(false, "NotAnSnsEvent"),
            ResultError::Records(batch) => batch.error_type(),
        }
    }
}

impl From<ResultError> for Diagnostic {
    fn from(error: ResultError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type(),
            error_message: error_chain(&error),
        }
    }
}

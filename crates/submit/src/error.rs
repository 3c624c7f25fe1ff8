//! Why a record or an invocation of the submit function failed.
//!
//! Whether a retry can help is a property of the error's variant, not of its message: the
//! runtime's `errorType` (kept in the on-failure record) names the class, e.g.
//! `Retryable.EndpointUnavailable` or `Permanent.MalformedRecord`.

use cochl_aws::batch::{InvocationError, RecordFailure, StoreFailure};
use cochl_aws::endpoint::EndpointError;
use cochl_aws::notify::PublishError;
use cochl_aws::objects::ObjectError;
use cochl_core::keys::KeyError;

use crate::event::EventError;
use crate::outcome::RecordOutcome;

/// Why one record could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record is not a readable S3 record.
    #[error("record {index} is malformed: {reason}")]
    Malformed {
        /// Position in `Records`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The bucket or key cannot name an S3 object.
    #[error("bucket or key not valid: {0}")]
    InvalidLocation(#[source] KeyError),
    /// HeadObject failed (after the SDK's retries).
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// A table operation failed.
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// Conflicting writers changed the job every time it was claimed.
    #[error("the job kept changing underneath ({attempts} conflicting writes)")]
    Contended {
        /// Claims attempted.
        attempts: usize,
    },
    /// Throttling or server errors outlasted the attempts or the time budget; the job
    /// stays SUBMITTED and not accepted, so a retry resubmits it.
    #[error(transparent)]
    Endpoint(EndpointError),
    /// The FAILED notification of a refused request could not be published; the job says
    /// not notified, so a retry publishes it.
    #[error("recorded FAILED, but publishing its notification failed: {0}")]
    Publish(#[source] PublishError),
    /// A job that was sent to the endpoint has no inference id: a corrupt item.
    #[error("the job of {file} was sent to the endpoint but holds no inference id")]
    NoInferenceId {
        /// `s3://bucket/key` of the job.
        file: String,
    },
}

impl RecordFailure for RecordError {
    fn class(&self) -> &'static str {
        match self {
            RecordError::Malformed { .. } => "MalformedRecord",
            RecordError::InvalidLocation(_) => "InvalidLocation",
            RecordError::Objects(_) => "ObjectsUnavailable",
            RecordError::Store(failure) => failure.class(),
            RecordError::Contended { .. } => "Contended",
            RecordError::Endpoint(_) => "EndpointUnavailable",
            RecordError::Publish(_) => "PublishFailed",
            RecordError::NoInferenceId { .. } => "CorruptItem",
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            RecordError::Malformed { .. }
            | RecordError::InvalidLocation(_)
            | RecordError::NoInferenceId { .. } => false,
            RecordError::Store(failure) => failure.is_retryable(),
            RecordError::Objects(_)
            | RecordError::Contended { .. }
            | RecordError::Endpoint(_)
            | RecordError::Publish(_) => true,
        }
    }
}

/// Why an invocation failed: Lambda retries it, then the on-failure destination keeps it.
/// Converts to the runtime's `Diagnostic` with `errorType` `Retryable.<class>` or
/// `Permanent.<class>`.
pub type SubmitError = InvocationError<EventError, RecordOutcome, RecordError>;

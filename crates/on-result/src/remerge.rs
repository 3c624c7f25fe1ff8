//! Remerge: the post-processing run again on a file's stored result, with the margins and
//! minimum probability configured now. No inference: the result SageMaker wrote is read
//! again, merged, and recorded exactly as a fresh success is (tag items replaced, detection
//! notification published, then the job written), so subscribers see the new detections.

use std::time::Instant;

use cochl_aws::batch::StoreFailure;
use cochl_aws::objects::ObjectError;
use cochl_aws::ports::{JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;

use crate::error::RecordError;
use crate::handler::{ResultHandler, ResultRead, MAX_CONFLICTS};
use crate::outcome::NotificationOutcome;

/// What a remerge of one file came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Remerge {
    /// The detections were merged again and recorded.
    Remerged {
        /// Tags detected under the current settings.
        tags: usize,
    },
    /// There is nothing to merge, and retrying will not change that: the reason says why
    /// (never analysed, not COMPLETED, the result object gone or unusable).
    Refused {
        /// For the completion report.
        reason: String,
    },
}

impl<S, O, T, Q> ResultHandler<S, O, T, Q>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    /// Merges the file's stored result again. `Err`: a failure worth retrying (the table,
    /// S3 or SNS unreachable); a file that cannot be remerged is `Ok(Refused)`.
    pub async fn remerge(
        &self,
        file: &S3Uri,
        deadline: Option<Instant>,
    ) -> Result<Remerge, RecordError> {
        let refused = |reason: String| Ok(Remerge::Refused { reason });
        for _ in 0..MAX_CONFLICTS {
            let job = self
                .store
                .get_job(file)
                .await
                .map_err(StoreFailure::at("reading the job"))?;
            let Some(job) = job.filter(|j| j.status != JobStatus::Deleted) else {
                return refused("never analysed: no job for the file".into());
            };
            if job.status != JobStatus::Completed {
                return refused(format!(
                    "its analysis is {}, not COMPLETED: nothing to merge again",
                    job.status
                ));
            }
            let (Some(location), Some(inference_id)) =
                (job.output_location.clone(), job.inference_id.clone())
            else {
                return refused("the job names no result object".into());
            };
            let analysis = match self.read_analysis(&location).await {
                Ok((analysis, _)) => analysis,
                Err(ResultRead::Unavailable(ObjectError::NotFound(_))) => {
                    return refused(format!("the result object {location} is gone"))
                }
                Err(ResultRead::Unavailable(error)) => {
                    return Err(RecordError::ResultUnavailable(error))
                }
                Err(ResultRead::Unusable(failure)) => {
                    return refused(format!("{}: {}", failure.code, failure.reason))
                }
            };
            match self
                .record_completion(job, inference_id, location, analysis, deadline)
                .await?
            {
                Some(NotificationOutcome::Completed { tags, .. }) => {
                    tracing::info!(tags, "remerged");
                    return Ok(Remerge::Remerged { tags });
                }
                Some(other) => {
                    return refused(format!("not remerged: {other:?}"));
                }
                None => tracing::info!("job changed while remerging; deciding again"),
            }
        }
        Err(RecordError::Contended {
            attempts: MAX_CONFLICTS,
        })
    }
}

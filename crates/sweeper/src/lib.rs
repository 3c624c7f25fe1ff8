//! The sweeper: settles the jobs whose SageMaker notification never came.
//!
//! SNS, SQS and the functions deliver at least once, but a notification can still be lost
//! for good (a topic policy changed, a subscription deleted, a message expired in a queue
//! nobody redrove). Without it a job would stay SUBMITTED forever and its in-flight slot
//! would stay taken. On a schedule, the sweeper lists the jobs SUBMITTED and unchanged for
//! longer than a request can live in SageMaker (`COCHL_SWEEP_AFTER_SECONDS`) and settles
//! each from what SageMaker left in S3, through on-result's own handler, exactly as the
//! notification would have:
//!
//! - the output object exists: a success (detections, COMPLETED, notified);
//! - the failure object exists: FAILED with its text as the reason (an expiry is resubmitted
//!   per `COCHL_MAX_EXPIRY_RESUBMITS`, as on-result does);
//! - neither: `no_outcome`, treated as an expiry (resubmitted while the policy allows, then
//!   FAILED `no_outcome`, notified).
//!
//! A job the endpoint never accepted is not the sweeper's: its submit message still owns it
//! (deferred while the endpoint is full, or back in its queue). Every step is conditional on
//! the job's revision, so a sweep racing a late notification settles the job once, and a
//! second sweep finds nothing to do. Each run also gives back in-flight slots whose lease
//! ran out.

use std::time::{Duration, Instant};

use cochl_aws::admission::reclaim_leaked_slots;
use cochl_aws::clock::{now_millis, now_seconds};
use cochl_aws::dynamo::StoreError;
use cochl_aws::objects::ObjectError;
use cochl_aws::ports::{JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_aws::records::JobRecord;
use cochl_core::notification::{AsyncNotification, InferenceOutcome, RequestParameters};
use cochl_core::time::format_millis;
use cochl_on_result::handler::NO_OUTCOME_STATUS;
use cochl_on_result::{NotificationOutcome, ResultHandler};
use serde::Serialize;
use tracing::Instrument;

/// Jobs examined per run at most; the next run takes the rest (oldest first).
pub const MAX_JOBS_PER_RUN: usize = 500;
/// In-flight slots reclaimed per run at most.
const MAX_SLOTS_PER_RUN: usize = 500;
/// The most of a failure object read as the job's reason.
const FAILURE_READ_LIMIT: u64 = 64 << 10;
/// The most characters of a failure object kept as the reason.
const REASON_CHARS: usize = 1_000;
/// What an orphan record of a swept job says it came from.
const ORIGIN: &str = r#"{"source":"cochl-sweeper"}"#;

/// Why a sweep stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The job table could not be listed or the slots reclaimed.
    #[error("the job table: {0}")]
    Store(#[from] StoreError),
}

/// What one sweep did: the run's log line and the Lambda's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepReport {
    /// SUBMITTED jobs older than the cutoff that were looked at.
    pub examined: usize,
    /// How each accepted job was settled (or found already settled).
    pub settled: Vec<NotificationOutcome>,
    /// Jobs the endpoint never accepted: their submit message still owns them.
    pub not_sent: usize,
    /// Jobs that could not be settled this time (the next run tries again), with why.
    pub errors: Vec<SweepFailure>,
    /// In-flight slots given back because their lease ran out.
    pub slots_reclaimed: usize,
}

impl SweepReport {
    /// The run's EMF line: jobs examined, settled (a lost notification made up for), left
    /// to their submit message, failed this run, and slots reclaimed.
    pub fn metrics_line(&self, timestamp_ms: i64) -> serde_json::Value {
        use cochl_aws::metrics::{line, Metric, Unit};
        let count = |name, value: usize| Metric {
            name,
            value: value as f64,
            unit: Unit::Count,
        };
        line(
            &[],
            &[
                count("SweepExamined", self.examined),
                count("SweepSettled", self.settled.len()),
                count("SweepNotSent", self.not_sent),
                count("SweepErrors", self.errors.len()),
                count("SweepSlotsReclaimed", self.slots_reclaimed),
            ],
            timestamp_ms,
        )
    }
}

/// A job the sweep could not settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepFailure {
    /// `s3://bucket/key` of the job.
    pub file: String,
    /// What went wrong.
    pub error: String,
}

/// The cutoff of a sweep at `now_ms`: jobs unchanged since before it are swept.
pub fn cutoff(now_ms: i64, sweep_after: Duration) -> String {
    let after_ms = i64::try_from(sweep_after.as_millis()).unwrap_or(i64::MAX);
    format_millis(now_ms.saturating_sub(after_ms))
}

/// One scheduled run: sweeps the jobs unchanged for longer than `sweep_after`.
pub async fn sweep<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    sweep_after: Duration,
    deadline: Option<Instant>,
) -> Result<SweepReport, SweepError>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    sweep_before(
        handler,
        &cutoff(now_millis(), sweep_after),
        MAX_JOBS_PER_RUN,
        deadline,
    )
    .await
}

/// Sweeps up to `max` SUBMITTED jobs whose last change is older than `changed_before`
/// (RFC 3339, as the table stores it), oldest first, and reclaims expired slots. A job that
/// cannot be settled is reported and left to the next run; the others go on.
pub async fn sweep_before<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    changed_before: &str,
    max: usize,
    deadline: Option<Instant>,
) -> Result<SweepReport, SweepError>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let mut report = SweepReport::default();
    let waiting = handler.store.submitted_before(changed_before, max).await?;
    report.examined = waiting.len();
    for job in waiting {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!("out of time; the next run sweeps the rest");
            break;
        }
        if !job.accepted {
            report.not_sent += 1;
            continue;
        }
        let file = job.file.to_string();
        let span = tracing::info_span!("sweep", file = %file);
        match settle(handler, &job, deadline).instrument(span).await {
            Ok(Some(outcome)) => {
                tracing::warn!(outcome = ?outcome, "settled a job whose notification never came");
                report.settled.push(outcome);
            }
            Ok(None) => report.not_sent += 1,
            Err(error) => {
                tracing::error!(error = %error, "could not settle the job; the next run tries again");
                report.errors.push(SweepFailure { file, error });
            }
        }
    }
    report.slots_reclaimed = reclaim_leaked_slots(&handler.store, now_seconds(), MAX_SLOTS_PER_RUN)
        .await?
        .len();
    tracing::info!(
        examined = report.examined,
        settled = report.settled.len(),
        not_sent = report.not_sent,
        errors = report.errors.len(),
        slots_reclaimed = report.slots_reclaimed,
        "sweep done"
    );
    cochl_aws::metrics::emit(&report.metrics_line(now_millis()));
    Ok(report)
}

/// Settles one accepted job from what S3 holds; `Ok(None)` when it has no inference id.
async fn settle<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    job: &JobRecord,
    deadline: Option<Instant>,
) -> Result<Option<NotificationOutcome>, String>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let Some(inference_id) = &job.inference_id else {
        return Ok(None);
    };
    let outcome = evidence(&handler.objects, job)
        .await
        .map_err(|e| e.to_string())?;
    let notification = AsyncNotification {
        inference_id: inference_id.to_string(),
        event_time: None,
        received_time: None,
        aws_region: None,
        event_name: Some("InferenceResult".into()),
        event_source: Some("cochl-sweeper".into()),
        event_version: None,
        request: RequestParameters {
            content_type: job.content_type.clone(),
            custom_attributes: job.custom_attributes.clone(),
            input_location: Some(job.file.clone()),
            ..RequestParameters::default()
        },
        outcome,
    };
    handler
        .settle(&notification, ORIGIN, deadline)
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

/// What SageMaker left in S3 for the job's inference, as the notification would have said.
async fn evidence<O: ObjectStore>(
    objects: &O,
    job: &JobRecord,
) -> Result<InferenceOutcome, ObjectError> {
    if let Some(output) = &job.output_location {
        if objects.head(output, None).await?.is_some() {
            return Ok(InferenceOutcome::Succeeded {
                output_location: Some(output.clone()),
                response_content_type: None,
                inline_body: None,
            });
        }
    }
    if let Some(failure) = &job.failure_location {
        let reason = match objects.get(failure, FAILURE_READ_LIMIT).await {
            Ok(bytes) => Some(failure_reason(&bytes)),
            Err(ObjectError::NotFound(_)) => None,
            Err(ObjectError::TooLarge { size, .. }) => Some(format!(
                "the inference failed; its failure object ({size} bytes) is too large to quote"
            )),
            Err(error) => return Err(error),
        };
        if let Some(reason) = reason {
            return Ok(InferenceOutcome::Failed {
                status: "Failed".into(),
                reason,
                failure_location: Some(failure.clone()),
            });
        }
    }
    Ok(InferenceOutcome::Failed {
        status: NO_OUTCOME_STATUS.into(),
        reason: format!(
            "no notification, result or failure object for inference {} since {}",
            job.inference_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            job.updated_at
        ),
        failure_location: None,
    })
}

/// A failure object's text as a one-line reason: what the model container answered.
fn failure_reason(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line: String = line.chars().take(REASON_CHARS).collect();
    if line.is_empty() {
        "the inference failed (its failure object is empty)".to_string()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_sweep_delay_before_now() {
        // 2026-01-01T00:10:00.000Z is 1_767_226_200_000 ms; ten minutes earlier is midnight.
        assert_eq!(
            cutoff(1_767_226_200_000, Duration::from_secs(600)),
            "2026-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn the_metrics_line_counts_each_part_of_the_report() {
        let report = SweepReport {
            examined: 7,
            settled: Vec::new(),
            not_sent: 2,
            errors: vec![SweepFailure {
                file: "s3://b/k.wav".into(),
                error: "S3 unreachable".into(),
            }],
            slots_reclaimed: 3,
        };
        let line = report.metrics_line(1_767_226_200_000);
        for (name, value) in [
            ("SweepExamined", 7.0),
            ("SweepSettled", 0.0),
            ("SweepNotSent", 2.0),
            ("SweepErrors", 1.0),
            ("SweepSlotsReclaimed", 3.0),
        ] {
            assert_eq!(line[name].as_f64(), Some(value), "{name}: {line}");
        }
        assert_eq!(line["_aws"]["Timestamp"], 1_767_226_200_000_i64, "{line}");
    }

    #[test]
    fn a_failure_object_becomes_a_one_line_reason() {
        assert_eq!(
            failure_reason(b"  ModelError:\n  bad\taudio  "),
            "ModelError: bad audio"
        );
        assert_eq!(
            failure_reason(b" \n"),
            "the inference failed (its failure object is empty)"
        );
        let long = "x".repeat(5_000);
        assert_eq!(failure_reason(long.as_bytes()).len(), REASON_CHARS);
    }
}

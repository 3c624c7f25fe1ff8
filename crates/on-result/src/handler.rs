//! The on-result function: SageMaker notification → detections → job COMPLETED or FAILED.
//!
//! Per notification: find the job through the notification's input location, decide (pure,
//! `cochl_core::job::decide_result`) whether it applies, is a duplicate, belongs to a
//! superseded upload or to no job at all (an orphan, recorded). On success the result is
//! read from S3, merged into per-tag detections, the tag items are written in batches
//! (stale items of an older analysis deleted in the same batches), the detection
//! notification is published, and only then the job flips to COMPLETED with a conditional
//! write. A failure notification is a normal outcome: the job becomes FAILED, with its
//! reason, and is notified too.
//!
//! DynamoDB requests per analysed file: one read, `ceil(items / 25)` batch writes and one
//! conditional write.

use std::time::Instant;

use cochl_aws::clock::now;
use cochl_aws::dynamo::schema::{self, file_pk};
use cochl_aws::dynamo::{DynamoStore, Expect, StoreError};
use cochl_aws::message::{detection_message, Outcome};
use cochl_aws::notify::Topic;
use cochl_aws::objects::{ObjectError, Objects};
use cochl_aws::records::{JobRecord, OrphanRecord, TagSummary};
use cochl_aws::settings::ResultSettings;
use cochl_core::detections::merge_windows;
use cochl_core::job::{decide_result, JobStatus, ResultDecision};
use cochl_core::keys::S3Uri;
use cochl_core::notification::{AsyncNotification, InferenceOutcome};
use cochl_core::result::CochlResult;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::event::{parse_event, EventError, ParsedRecord};

/// Conditional-write conflicts tolerated per notification before failing to Lambda's retry.
const MAX_CONFLICTS: usize = 5;
/// Notifications of one event handled in parallel.
const CONCURRENCY: usize = 4;

/// Everything the handler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct ResultHandler {
    /// The bucket holding results.
    pub objects: Objects,
    /// The job table.
    pub store: DynamoStore,
    /// The detections topic.
    pub detections: Topic,
    /// Configuration.
    pub settings: ResultSettings,
}

/// What happened to one notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// Detections recorded, job COMPLETED, notification published.
    Completed {
        /// The file.
        file: String,
        /// The inference.
        inference_id: String,
        /// Tags detected.
        tags: usize,
        /// DynamoDB requests made.
        dynamodb_requests: u32,
    },
    /// Job FAILED (inference failure or unusable result), notification published.
    Failed {
        /// The file.
        file: String,
        /// The inference.
        inference_id: String,
        /// Stable reason code.
        reason_code: String,
    },
    /// The job already holds this inference's outcome.
    Duplicate {
        /// The file.
        file: String,
    },
    /// The job now belongs to a newer upload.
    Superseded {
        /// The file.
        file: String,
        /// The inference of the notification.
        inference_id: String,
    },
    /// No job knows the inference; recorded as an orphan.
    Orphan {
        /// The inference.
        inference_id: String,
    },
    /// Could not be handled now; the invocation fails so Lambda retries.
    Error {
        /// What went wrong.
        error: String,
    },
}

/// Why an invocation failed (Lambda retries it, then the subscription's dead-letter queue
/// or the on-failure destination keeps it).
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The payload is not an SNS event.
    #[error(transparent)]
    NotAnEvent(#[from] EventError),
    /// Some notifications could not be handled; the others were.
    #[error("{failed} of {total} notifications could not be handled: {first_error}")]
    Records {
        /// Notifications that failed.
        failed: usize,
        /// Notifications in the event.
        total: usize,
        /// The first failure.
        first_error: String,
        /// Every notification's outcome.
        outcomes: Vec<NotificationOutcome>,
    },
}

/// Handles one SNS payload.
pub async fn handle(
    handler: &ResultHandler,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Vec<NotificationOutcome>, ResultError> {
    let records = match parse_event(payload) {
        Ok(records) => records,
        Err(error) => {
            tracing::error!(payload = %payload, error = %error, "not an SNS event; failing into the dead-letter path");
            return Err(error.into());
        }
    };
    let outcomes: Vec<NotificationOutcome> = stream::iter(records)
        .map(|record| handle_record(handler, record, deadline))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let failures: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            NotificationOutcome::Error { error } => Some(error),
            _ => None,
        })
        .collect();
    if let Some(first) = failures.first() {
        return Err(ResultError::Records {
            failed: failures.len(),
            total: outcomes.len(),
            first_error: (*first).clone(),
            outcomes: outcomes.clone(),
        });
    }
    Ok(outcomes)
}

async fn handle_record(
    handler: &ResultHandler,
    record: ParsedRecord,
    deadline: Option<Instant>,
) -> NotificationOutcome {
    let outcome = match record {
        ParsedRecord::Malformed { index, reason, raw } => {
            tracing::error!(index, reason = %reason, record = %raw, "malformed SNS record");
            NotificationOutcome::Error {
                error: format!("record {index} is malformed: {reason}"),
            }
        }
        ParsedRecord::Notification {
            message_id,
            raw,
            notification,
        } => {
            let file = notification
                .request
                .input_location
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let span = tracing::info_span!(
                "notification",
                file = %file,
                inference_id = %notification.inference_id,
                message_id = %message_id
            );
            handle_notification(handler, &notification, &raw, deadline)
                .instrument(span)
                .await
                .unwrap_or_else(|error| NotificationOutcome::Error { error })
        }
    };
    match &outcome {
        NotificationOutcome::Error { .. } => {
            tracing::error!(outcome = ?outcome, "notification failed")
        }
        _ => tracing::info!(outcome = ?outcome, "notification handled"),
    }
    outcome
}

async fn record_orphan(
    handler: &ResultHandler,
    notification: &AsyncNotification,
    raw: &str,
) -> Result<NotificationOutcome, String> {
    let status = match &notification.outcome {
        InferenceOutcome::Succeeded { .. } => "Completed".to_string(),
        InferenceOutcome::Failed { status, .. } => status.clone(),
    };
    handler
        .store
        .record_orphan(&OrphanRecord {
            inference_id: notification.inference_id.clone(),
            status,
            input_location: notification.request.input_location.clone(),
            received_at: now(),
            message: raw.to_string(),
        })
        .await
        .map_err(|e| e.to_string())?;
    tracing::warn!("notification for an unknown inference recorded as an orphan");
    Ok(NotificationOutcome::Orphan {
        inference_id: notification.inference_id.clone(),
    })
}

async fn handle_notification(
    handler: &ResultHandler,
    notification: &AsyncNotification,
    raw: &str,
    deadline: Option<Instant>,
) -> Result<NotificationOutcome, String> {
    let Some(file) = notification.request.input_location.clone() else {
        return record_orphan(handler, notification, raw).await;
    };
    let inference_id = notification.inference_id.as_str();
    for _ in 0..MAX_CONFLICTS {
        let job = handler
            .store
            .get_job(&file)
            .await
            .map_err(|e| e.to_string())?;
        let decision = decide_result(job.as_ref().map(JobRecord::snapshot).as_ref(), inference_id);
        let job = match (decision, job) {
            (ResultDecision::Orphan, _) | (_, None) => {
                return record_orphan(handler, notification, raw).await
            }
            (ResultDecision::Duplicate, _) => {
                return Ok(NotificationOutcome::Duplicate {
                    file: file.to_string(),
                })
            }
            (ResultDecision::Superseded, _) => {
                return Ok(NotificationOutcome::Superseded {
                    file: file.to_string(),
                    inference_id: inference_id.to_string(),
                })
            }
            (ResultDecision::Apply, Some(job)) => job,
        };
        let applied = match &notification.outcome {
            InferenceOutcome::Succeeded {
                output_location, ..
            } => {
                let location = job
                    .output_location
                    .clone()
                    .or_else(|| output_location.clone());
                apply_success(handler, job, location, deadline).await?
            }
            InferenceOutcome::Failed {
                reason,
                failure_location,
                ..
            } => {
                let location = failure_location
                    .clone()
                    .or_else(|| job.failure_location.clone());
                let failure = Failure {
                    code: "inference_failed",
                    reason: reason.clone(),
                    location,
                };
                apply_failure(handler, job, failure).await?
            }
        };
        match applied {
            Some(outcome) => return Ok(outcome),
            None => tracing::info!("job changed while recording the outcome; deciding again"),
        }
    }
    Err(format!(
        "the job kept changing underneath ({MAX_CONFLICTS} conflicting writes)"
    ))
}

/// A failure to record.
struct Failure {
    code: &'static str,
    reason: String,
    location: Option<S3Uri>,
}

/// Reads, merges and records a successful inference. `Ok(None)`: the job changed under us.
async fn apply_success(
    handler: &ResultHandler,
    job: JobRecord,
    location: Option<S3Uri>,
    deadline: Option<Instant>,
) -> Result<Option<NotificationOutcome>, String> {
    let Some(location) = location else {
        let failure = Failure {
            code: "no_output_location",
            reason: "the success notification names no output location and none was stored".into(),
            location: None,
        };
        return apply_failure(handler, job, failure).await;
    };
    let bytes = match handler
        .objects
        .get(&location, handler.settings.max_result_bytes)
        .await
    {
        Ok(bytes) => bytes,
        Err(error @ ObjectError::TooLarge { .. }) => {
            let failure = Failure {
                code: "result_too_large",
                reason: error.to_string(),
                location: Some(location),
            };
            return apply_failure(handler, job, failure).await;
        }
        // Missing (not yet visible) or unreachable: retry later.
        Err(error) => return Err(error.to_string()),
    };
    let result = match CochlResult::parse(&bytes) {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(result = %location, error = %error, "the result document is unusable");
            let failure = Failure {
                code: "malformed_result",
                reason: format!("{location}: {error}"),
                location: Some(location),
            };
            return apply_failure(handler, job, failure).await;
        }
    };
    let detections = merge_windows(&result.data, &handler.settings.merge);
    let inference_id = job.inference_id.clone().unwrap_or_default();
    let completed_at = now();

    let mut puts = Vec::new();
    let mut new_items = Vec::new();
    for detection in &detections {
        for record in schema::tag_records(&job.file, &inference_id, &completed_at, detection) {
            new_items.push(schema::tag_sk(&inference_id, &record.name, record.part));
            puts.push(schema::tag_item(&record));
        }
    }
    let pk = file_pk(&job.file);
    let deletes: Vec<(String, String)> = job
        .tag_items
        .iter()
        .filter(|sk| !new_items.contains(sk))
        .map(|sk| (pk.clone(), sk.clone()))
        .collect();
    let stats = handler
        .store
        .write_batch(puts, deletes, deadline)
        .await
        .map_err(|e| e.to_string())?;

    let file = job.file.to_string();
    let length_sec = result.length_sec();
    let message = detection_message(
        &Outcome {
            file: &job.file,
            status: JobStatus::Completed.as_str(),
            inference_id: &inference_id,
            length_sec,
            reason_code: None,
            reason: None,
            detections: &detections,
        },
        handler.settings.query_url.as_deref(),
    );
    handler
        .detections
        .publish(&message)
        .await
        .map_err(|e| e.to_string())?;

    let expected = job.revision;
    let completed = JobRecord {
        status: JobStatus::Completed,
        revision: job.revision + 1,
        notified: true,
        completed_at: Some(completed_at.clone()),
        updated_at: completed_at,
        length_sec,
        tags: detections.iter().map(TagSummary::from).collect(),
        tag_items: new_items.clone(),
        reason: None,
        reason_code: None,
        output_location: Some(location),
        ..job
    };
    match handler
        .store
        .put_job(&completed, Expect::Revision(expected))
        .await
    {
        Ok(()) => Ok(Some(NotificationOutcome::Completed {
            file,
            inference_id,
            tags: detections.len(),
            dynamodb_requests: stats.requests + 2,
        })),
        Err(StoreError::Conflict) => {
            // Our items carry our inference id in their keys; if the job moved on to a newer
            // upload they are garbage, otherwise the next attempt rewrites them identically.
            remove_if_superseded(handler, &completed, new_items, deadline).await?;
            Ok(None)
        }
        Err(error) => Err(error.to_string()),
    }
}

async fn remove_if_superseded(
    handler: &ResultHandler,
    ours: &JobRecord,
    items: Vec<String>,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let current = handler
        .store
        .get_job(&ours.file)
        .await
        .map_err(|e| e.to_string())?;
    let still_ours = current
        .as_ref()
        .is_some_and(|c| c.inference_id == ours.inference_id);
    if still_ours || items.is_empty() {
        return Ok(());
    }
    let pk = file_pk(&ours.file);
    let deletes = items.into_iter().map(|sk| (pk.clone(), sk)).collect();
    handler
        .store
        .write_batch(Vec::new(), deletes, deadline)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Records a failed inference (or an unusable result). `Ok(None)`: the job changed under us.
async fn apply_failure(
    handler: &ResultHandler,
    job: JobRecord,
    failure: Failure,
) -> Result<Option<NotificationOutcome>, String> {
    let inference_id = job.inference_id.clone().unwrap_or_default();
    let message = detection_message(
        &Outcome::failed(&job.file, &inference_id, failure.code, &failure.reason),
        handler.settings.query_url.as_deref(),
    );
    handler
        .detections
        .publish(&message)
        .await
        .map_err(|e| e.to_string())?;
    let expected = job.revision;
    let at = now();
    let failed = JobRecord {
        status: JobStatus::Failed,
        revision: job.revision + 1,
        notified: true,
        reason_code: Some(failure.code.to_string()),
        reason: Some(failure.reason),
        failure_location: failure.location.or(job.failure_location.clone()),
        completed_at: Some(at.clone()),
        updated_at: at,
        ..job
    };
    match handler
        .store
        .put_job(&failed, Expect::Revision(expected))
        .await
    {
        Ok(()) => Ok(Some(NotificationOutcome::Failed {
            file: failed.file.to_string(),
            inference_id,
            reason_code: failure.code.to_string(),
        })),
        Err(StoreError::Conflict) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

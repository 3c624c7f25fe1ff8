//! The submit function: S3 event → job record → InvokeEndpointAsync.
//!
//! Per record: read the object's metadata, decide (pure, `cochl_core::job::decide_upload`)
//! whether the event is new, a duplicate, stale or a newer upload, claim the job with a
//! conditional write, then submit. Records run concurrently; one bad record never stops the
//! others, but any record that could not be handled makes the invocation fail so Lambda
//! retries it (every step is idempotent) and, in the end, the on-failure destination keeps it.
//!
//! A request the endpoint refuses outright (a 400 such as a ValidationError) will never
//! produce a SageMaker notification, so submit itself ends the job: it records it FAILED
//! (`endpoint_refused`), publishes the FAILED detection notification on-result would have
//! published, and only then marks the job notified. A retry that finds the job FAILED but not
//! notified publishes the missing notification.

use std::time::Instant;

use cochl_aws::clock::now;
use cochl_aws::dynamo::{DynamoStore, Expect, StoreError};
use cochl_aws::endpoint::{AsyncEndpoint, EndpointError, InvocationRequest};
use cochl_aws::message::{detection_message, Outcome};
use cochl_aws::notify::Topic;
use cochl_aws::objects::Objects;
use cochl_aws::records::JobRecord;
use cochl_aws::settings::SubmitSettings;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{decide_upload, JobStatus, ObjectVersion, UploadDecision};
use cochl_core::keys::S3Uri;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::event::{parse_event, EventError, ParsedRecord, SubmitEvent, UploadRecord};
use crate::inspect::{inspect, Plan, Rejection};

/// Conditional-write conflicts tolerated per record before giving up (to Lambda's retry).
const MAX_CONFLICTS: usize = 5;
/// Reason code of a request the endpoint refused.
const ENDPOINT_REFUSED: &str = "endpoint_refused";

/// Everything the handler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Submitter {
    /// The audio bucket.
    pub objects: Objects,
    /// The job table.
    pub store: DynamoStore,
    /// The Cochl endpoint.
    pub endpoint: AsyncEndpoint,
    /// The detections topic, for requests the endpoint refuses.
    pub detections: Topic,
    /// Configuration.
    pub settings: SubmitSettings,
}

/// What happened to one record; the list is the invocation's result and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Sent to the endpoint and accepted.
    Submitted {
        /// The file.
        file: String,
        /// Its inference.
        inference_id: String,
        /// InvokeEndpointAsync calls made.
        attempts: u32,
    },
    /// Recorded as REJECTED.
    Rejected {
        /// The file.
        file: String,
        /// Stable reason code.
        code: String,
        /// The reason.
        reason: String,
    },
    /// The endpoint refused the request; recorded as FAILED and notified.
    Refused {
        /// The file.
        file: String,
        /// Its inference.
        inference_id: String,
        /// The endpoint's reason.
        reason: String,
    },
    /// The same upload was already handled.
    Duplicate {
        /// The file.
        file: String,
    },
    /// An older upload than the one the job holds.
    Stale {
        /// The file.
        file: String,
    },
    /// Not ours to analyse (outside the input prefix, not a creation, a test event).
    Ignored {
        /// The file, when known.
        file: Option<String>,
        /// Why.
        reason: String,
    },
    /// Could not be handled now; the invocation fails so Lambda retries.
    Failed {
        /// The file, when known.
        file: Option<String>,
        /// What went wrong.
        error: String,
    },
}

impl RecordOutcome {
    fn is_failure(&self) -> bool {
        matches!(self, RecordOutcome::Failed { .. })
    }
}

/// Why an invocation failed (Lambda retries it, then the on-failure destination keeps it).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The payload is not an S3 event.
    #[error(transparent)]
    NotAnEvent(#[from] EventError),
    /// Some records could not be handled; the others were.
    #[error("{failed} of {total} records could not be handled: {first_error}")]
    Records {
        /// Records that failed.
        failed: usize,
        /// Records in the event.
        total: usize,
        /// The first failure, for the error message.
        first_error: String,
        /// Every record's outcome.
        outcomes: Vec<RecordOutcome>,
    },
}

/// Handles one S3 notification payload.
pub async fn handle(
    submitter: &Submitter,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Vec<RecordOutcome>, SubmitError> {
    let event = match parse_event(payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(payload = %payload, error = %error, "not an S3 event; failing into the dead-letter path");
            return Err(error.into());
        }
    };
    let records = match event {
        SubmitEvent::TestEvent => {
            tracing::info!("s3:TestEvent acknowledged");
            return Ok(vec![RecordOutcome::Ignored {
                file: None,
                reason: "s3:TestEvent".into(),
            }]);
        }
        SubmitEvent::Records(records) => records,
    };
    let outcomes: Vec<RecordOutcome> = stream::iter(records)
        .map(|record| handle_record(submitter, record, deadline))
        .buffered(submitter.settings.concurrency)
        .collect()
        .await;
    let failed: Vec<&RecordOutcome> = outcomes.iter().filter(|o| o.is_failure()).collect();
    if let Some(RecordOutcome::Failed { error, .. }) = failed.first() {
        return Err(SubmitError::Records {
            failed: failed.len(),
            total: outcomes.len(),
            first_error: error.clone(),
            outcomes: outcomes.clone(),
        });
    }
    Ok(outcomes)
}

async fn handle_record(
    submitter: &Submitter,
    record: ParsedRecord,
    deadline: Option<Instant>,
) -> RecordOutcome {
    let outcome = match record {
        ParsedRecord::Upload(upload) => {
            let span = tracing::info_span!(
                "record",
                file = %format!("s3://{}/{}", upload.bucket, upload.key),
                inference_id = tracing::field::Empty
            );
            handle_upload(submitter, upload, deadline)
                .instrument(span.clone())
                .await
        }
        ParsedRecord::Other { event_name } => RecordOutcome::Ignored {
            file: None,
            reason: format!("event {event_name} is not an object creation"),
        },
        ParsedRecord::Malformed { index, reason, raw } => {
            tracing::error!(index, reason = %reason, record = %raw, "malformed S3 record");
            RecordOutcome::Failed {
                file: None,
                error: format!("record {index} is malformed: {reason}"),
            }
        }
    };
    match &outcome {
        RecordOutcome::Failed { .. } => tracing::error!(outcome = ?outcome, "record failed"),
        _ => tracing::info!(outcome = ?outcome, "record handled"),
    }
    outcome
}

async fn handle_upload(
    submitter: &Submitter,
    upload: UploadRecord,
    deadline: Option<Instant>,
) -> RecordOutcome {
    let file = match S3Uri::new(&upload.bucket, &upload.key) {
        Ok(file) => file,
        Err(error) => {
            return RecordOutcome::Failed {
                file: None,
                error: format!("bucket or key not valid: {error}"),
            }
        }
    };
    let name = file.to_string();
    if !upload.key.starts_with(&submitter.settings.input_prefix) {
        return RecordOutcome::Ignored {
            file: Some(name),
            reason: format!(
                "outside the input prefix {:?}",
                submitter.settings.input_prefix
            ),
        };
    }
    match submit_upload(submitter, &file, &upload, deadline).await {
        Ok(outcome) => outcome,
        Err(error) => RecordOutcome::Failed {
            file: Some(name),
            error,
        },
    }
}

/// Claims the job (retrying on conflicting writers) and submits. `Err` means "retry later".
async fn submit_upload(
    submitter: &Submitter,
    file: &S3Uri,
    upload: &UploadRecord,
    deadline: Option<Instant>,
) -> Result<RecordOutcome, String> {
    let head = submitter
        .objects
        .head(file)
        .await
        .map_err(|e| e.to_string())?;
    let version = ObjectVersion {
        version_id: upload.version_id.clone(),
        etag: upload
            .etag
            .clone()
            .or_else(|| head.as_ref().and_then(|h| h.etag.clone())),
        sequencer: upload.sequencer.clone(),
        event_time_ms: upload.event_time_ms,
    };
    let inference_id = InferenceId::for_object(file.bucket(), file.key(), &version);
    tracing::Span::current().record("inference_id", inference_id.as_str());

    for _ in 0..MAX_CONFLICTS {
        let existing = submitter
            .store
            .get_job(file)
            .await
            .map_err(|e| e.to_string())?;
        let decision = decide_upload(existing.as_ref().map(|j| j.snapshot()).as_ref(), &version);
        let name = file.to_string();
        match decision {
            UploadDecision::Duplicate => {
                // A refusal recorded FAILED whose notification did not go out: publish it now.
                if let Some(job) = existing.filter(|j| j.status == JobStatus::Failed && !j.notified)
                {
                    return notify_failure(submitter, job).await;
                }
                return Ok(RecordOutcome::Duplicate { file: name });
            }
            UploadDecision::Stale => return Ok(RecordOutcome::Stale { file: name }),
            UploadDecision::Claim | UploadDecision::Supersede | UploadDecision::Retry => {}
        }
        if decision == UploadDecision::Supersede {
            clean_old_tags(submitter, existing.as_ref(), deadline).await?;
        }
        let plan = inspect(
            head.as_ref(),
            file.key(),
            &submitter.settings.default_sensitivity,
            submitter.settings.max_object_bytes,
        );
        let job = new_job(
            file,
            &version,
            &inference_id,
            existing.as_ref(),
            &plan,
            upload,
        );
        let expect = existing
            .as_ref()
            .map_or(Expect::Absent, |j| Expect::Revision(j.revision));
        match submitter.store.put_job(&job, expect).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                tracing::info!("job changed while claiming; deciding again");
                continue;
            }
            Err(error) => return Err(error.to_string()),
        }
        return match plan {
            Err(rejection) => Ok(RecordOutcome::Rejected {
                file: name,
                code: rejection.code.to_string(),
                reason: rejection.reason,
            }),
            Ok(plan) => invoke(submitter, job, &plan, deadline).await,
        };
    }
    Err(format!(
        "the job kept changing underneath ({MAX_CONFLICTS} conflicting writes)"
    ))
}

/// Deletes the tag items of the analysis a newer upload replaces, so "files with tag X"
/// no longer lists the file for tags only the old audio had.
async fn clean_old_tags(
    submitter: &Submitter,
    existing: Option<&JobRecord>,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let Some(job) = existing.filter(|j| !j.tag_items.is_empty()) else {
        return Ok(());
    };
    let pk = cochl_aws::dynamo::schema::file_pk(&job.file);
    let deletes = job
        .tag_items
        .iter()
        .map(|sk| (pk.clone(), sk.clone()))
        .collect();
    submitter
        .store
        .write_batch(Vec::new(), deletes, deadline)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The job as it is claimed: SUBMITTED (not yet accepted) or REJECTED with its reason.
fn new_job(
    file: &S3Uri,
    version: &ObjectVersion,
    inference_id: &InferenceId,
    existing: Option<&JobRecord>,
    plan: &Result<Plan, Rejection>,
    upload: &UploadRecord,
) -> JobRecord {
    let now = now();
    let (status, content_type, custom_attributes, size, reason_code, reason) = match plan {
        Ok(plan) => (
            JobStatus::Submitted,
            Some(plan.content_type.clone()),
            plan.custom_attributes.clone(),
            Some(plan.size),
            None,
            None,
        ),
        Err(rejection) => (
            JobStatus::Rejected,
            rejection.content_type.clone(),
            None,
            rejection.size.or(upload.size),
            Some(rejection.code.to_string()),
            Some(rejection.reason.clone()),
        ),
    };
    let rejected = status == JobStatus::Rejected;
    JobRecord {
        file: file.clone(),
        status,
        version: version.clone(),
        revision: existing.map_or(0, |j| j.revision + 1),
        inference_id: (!rejected).then(|| inference_id.to_string()),
        accepted: false,
        notified: false,
        content_type,
        size_bytes: size,
        custom_attributes,
        output_location: None,
        failure_location: None,
        reason_code,
        reason,
        submitted_at: now.clone(),
        completed_at: rejected.then(|| now.clone()),
        updated_at: now,
        length_sec: None,
        tags: Vec::new(),
        // A superseded analysis' items were deleted; a retried claim keeps none either.
        tag_items: Vec::new(),
    }
}

async fn invoke(
    submitter: &Submitter,
    mut job: JobRecord,
    plan: &Plan,
    deadline: Option<Instant>,
) -> Result<RecordOutcome, String> {
    let inference_id = job.inference_id.clone().unwrap_or_default();
    let request = InvocationRequest {
        inference_id: inference_id.clone(),
        input: job.file.clone(),
        content_type: plan.content_type.clone(),
        custom_attributes: plan.custom_attributes.clone(),
        request_ttl_seconds: submitter.settings.request_ttl_seconds,
        invocation_timeout_seconds: submitter.settings.invocation_timeout_seconds,
    };
    let expected = job.revision;
    job.revision += 1;
    job.updated_at = now();
    let outcome = match submitter.endpoint.invoke_async(&request, deadline).await {
        Ok(accepted) => {
            job.accepted = true;
            job.output_location = accepted.output_location;
            job.failure_location = accepted.failure_location;
            RecordOutcome::Submitted {
                file: job.file.to_string(),
                inference_id,
                attempts: accepted.attempts,
            }
        }
        Err(EndpointError::Refused { code, message }) => {
            let reason = format!("the endpoint refused the request ({code}): {message}");
            job.status = JobStatus::Failed;
            job.reason_code = Some(ENDPOINT_REFUSED.into());
            job.reason = Some(reason.clone());
            job.completed_at = Some(job.updated_at.clone());
            RecordOutcome::Refused {
                file: job.file.to_string(),
                inference_id,
                reason,
            }
        }
        // The job stays SUBMITTED and not accepted: Lambda's retry resumes it.
        Err(error @ EndpointError::GaveUp { .. }) => return Err(error.to_string()),
    };
    match submitter
        .store
        .put_job(&job, Expect::Revision(expected))
        .await
    {
        Ok(()) if job.status == JobStatus::Failed => notify_failure(submitter, job).await,
        Ok(()) => Ok(outcome),
        // A notification (or a newer upload) overtook our bookkeeping: the job already
        // says more than we would.
        Err(StoreError::Conflict) => {
            tracing::info!("job changed after submission; leaving the newer state");
            Ok(outcome)
        }
        Err(error) => Err(format!("submitted, but recording it failed: {error}")),
    }
}

/// Publishes the FAILED detection notification of a job recorded FAILED, then marks it
/// notified: on-result's order, so a notification is never marked sent before it was. A
/// failed publish fails the record; Lambda's retry finds the job FAILED and not notified
/// (a duplicate of the same upload) and publishes again.
async fn notify_failure(submitter: &Submitter, job: JobRecord) -> Result<RecordOutcome, String> {
    let inference_id = job.inference_id.clone().unwrap_or_default();
    let code = job
        .reason_code
        .clone()
        .unwrap_or_else(|| ENDPOINT_REFUSED.into());
    let reason = job.reason.clone().unwrap_or_default();
    let message = detection_message(
        &Outcome::failed(&job.file, &inference_id, &code, &reason),
        None,
    );
    submitter
        .detections
        .publish(&message)
        .await
        .map_err(|e| format!("recorded FAILED, but publishing its notification failed: {e}"))?;
    let expected = job.revision;
    let notified = JobRecord {
        revision: job.revision + 1,
        notified: true,
        updated_at: now(),
        ..job
    };
    let outcome = RecordOutcome::Refused {
        file: notified.file.to_string(),
        inference_id,
        reason,
    };
    match submitter
        .store
        .put_job(&notified, Expect::Revision(expected))
        .await
    {
        Ok(()) => Ok(outcome),
        // A newer upload took the job over; the notification went out all the same.
        Err(StoreError::Conflict) => {
            tracing::info!("job changed after notifying; leaving the newer state");
            Ok(outcome)
        }
        Err(error) => Err(format!("notified, but recording it failed: {error}")),
    }
}

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

use cochl_aws::batch::{log_unreadable, run_batch, InvocationError, StoreFailure};
use cochl_aws::clock::now;
use cochl_aws::dynamo::{DynamoStore, Expect, StoreError};
use cochl_aws::endpoint::{AsyncEndpoint, EndpointError, InvocationRequest};
use cochl_aws::message::{detection_message, Outcome};
use cochl_aws::notify::Topic;
use cochl_aws::objects::Objects;
use cochl_aws::ports::{InferenceEndpoint, JobStore, NotificationTopic, ObjectStore};
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings::SubmitSettings;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{decide_upload, JobStatus, ObjectVersion, UploadDecision};
use cochl_core::keys::S3Uri;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{RecordError, SubmitError};
use crate::event::{parse_event, ParsedRecord, SubmitEvent, UploadRecord};
use crate::inspect::{inspect, Plan, Rejection};
use crate::outcome::RecordOutcome;

/// Conditional-write conflicts tolerated per record before giving up (to Lambda's retry).
pub const MAX_CONFLICTS: usize = 5;
/// Reason code of a request the endpoint refused.
pub const ENDPOINT_REFUSED: &str = "endpoint_refused";

/// Everything the handler needs, built once per cold start. The type parameters are the
/// ports; the defaults are the AWS adapters the Lambda runs with, tests plug in-memory
/// doubles (`testkit::doubles`).
#[derive(Debug, Clone)]
pub struct Submitter<S = DynamoStore, O = Objects, E = AsyncEndpoint, T = Topic> {
    /// Where uploads are read (HeadObject).
    pub objects: O,
    /// Where jobs are claimed and settled.
    pub store: S,
    /// Where inferences are queued.
    pub endpoint: E,
    /// Where a request the endpoint refuses is notified, as on-result notifies failures.
    pub detections: T,
    /// The function's configuration.
    pub settings: SubmitSettings,
}

/// Handles one S3 notification payload: every record is handled; the invocation fails if
/// any could not be (Lambda retries it; every step is idempotent).
pub async fn handle<S, O, E, T>(
    submitter: &Submitter<S, O, E, T>,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Vec<RecordOutcome>, SubmitError>
where
    S: JobStore,
    O: ObjectStore,
    E: InferenceEndpoint,
    T: NotificationTopic,
{
    let event = parse_event(payload)
        .inspect_err(|error| log_unreadable(payload, error))
        .map_err(InvocationError::NotAnEvent)?;
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
    let outcomes = run_batch(records, submitter.settings.concurrency, |record| {
        submitter.handle_record(record, deadline)
    })
    .await?;
    Ok(outcomes)
}

impl<S, O, E, T> Submitter<S, O, E, T>
where
    S: JobStore,
    O: ObjectStore,
    E: InferenceEndpoint,
    T: NotificationTopic,
{
    async fn handle_record(
        &self,
        record: ParsedRecord,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        match record {
            ParsedRecord::Upload(upload) => {
                let span = tracing::info_span!(
                    "record",
                    file = %format!("s3://{}/{}", upload.bucket, upload.key),
                    inference_id = tracing::field::Empty
                );
                self.handle_upload(upload, deadline).instrument(span).await
            }
            ParsedRecord::Other { event_name } => Ok(RecordOutcome::Ignored {
                file: None,
                reason: format!("event {event_name} is not an object creation"),
            }),
            ParsedRecord::Malformed { index, reason, raw } => {
                tracing::error!(index, reason = %reason, record = %raw, "malformed S3 record");
                Err(RecordError::Malformed { index, reason })
            }
        }
    }

    async fn handle_upload(
        &self,
        upload: UploadRecord,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let file = S3Uri::new(&upload.bucket, &upload.key).map_err(RecordError::InvalidLocation)?;
        if !upload.key.starts_with(&self.settings.input_prefix) {
            return Ok(RecordOutcome::Ignored {
                file: Some(file.to_string()),
                reason: format!("outside the input prefix {:?}", self.settings.input_prefix),
            });
        }
        self.submit_upload(&file, &upload, deadline).await
    }

    /// Claims the job (deciding again when a conflicting writer got there first) and submits.
    async fn submit_upload(
        &self,
        file: &S3Uri,
        upload: &UploadRecord,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let head = self.objects.head(file).await?;
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
            let existing = self
                .store
                .get_job(file)
                .await
                .map_err(StoreFailure::at("reading the job"))?;
            let decision = decide_upload(
                existing.as_ref().map(JobRecord::snapshot).as_ref(),
                &version,
            );
            match decision {
                UploadDecision::Duplicate => {
                    // A refusal recorded FAILED whose notification did not go out: publish it now.
                    if let Some(job) =
                        existing.filter(|j| j.status == JobStatus::Failed && !j.notified)
                    {
                        return self.notify_failure(job).await;
                    }
                    return Ok(RecordOutcome::Duplicate {
                        file: file.to_string(),
                    });
                }
                UploadDecision::Stale => {
                    return Ok(RecordOutcome::Stale {
                        file: file.to_string(),
                    })
                }
                UploadDecision::Claim | UploadDecision::Retry => {}
                UploadDecision::Supersede => {
                    // The replaced analysis' tag items go first, so "files with tag X" no longer
                    // lists the file for tags only the old audio had.
                    if let Some(old) = &existing {
                        self.store
                            .delete_tags(file, &old.tag_items, deadline)
                            .await
                            .map_err(StoreFailure::at("deleting the superseded tags"))?;
                    }
                }
            }
            let plan = inspect(
                head.as_ref(),
                file.key(),
                &self.settings.default_sensitivity,
                self.settings.max_object_bytes,
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
            match self.store.put_job(&job, expect).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    tracing::info!("job changed while claiming; deciding again");
                    continue;
                }
                Err(error) => return Err(StoreFailure::at("claiming the job")(error).into()),
            }
            return match plan {
                Err(rejection) => Ok(RecordOutcome::Rejected {
                    file: file.to_string(),
                    code: rejection.code.to_string(),
                    reason: rejection.reason,
                }),
                Ok(plan) => self.invoke(job, inference_id, &plan, deadline).await,
            };
        }
        Err(RecordError::Contended {
            attempts: MAX_CONFLICTS,
        })
    }

    async fn invoke(
        &self,
        mut job: JobRecord,
        inference_id: InferenceId,
        plan: &Plan,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let request = InvocationRequest {
            inference_id: inference_id.clone(),
            input: job.file.clone(),
            content_type: plan.content_type.clone(),
            custom_attributes: plan.custom_attributes.clone(),
            request_ttl_seconds: self.settings.request_ttl_seconds,
            invocation_timeout_seconds: self.settings.invocation_timeout_seconds,
        };
        let expected = job.revision;
        job.revision += 1;
        job.updated_at = now();
        let outcome = match self.endpoint.invoke_async(&request, deadline).await {
            Ok(accepted) => {
                job.accepted = true;
                job.output_location = accepted.output_location;
                job.failure_location = accepted.failure_location;
                RecordOutcome::Submitted {
                    file: job.file.to_string(),
                    inference_id: inference_id.to_string(),
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
                    inference_id: inference_id.to_string(),
                    reason,
                }
            }
            // The job stays SUBMITTED and not accepted: Lambda's retry resumes it.
            Err(error @ EndpointError::GaveUp { .. }) => return Err(RecordError::Endpoint(error)),
        };
        match self.store.put_job(&job, Expect::Revision(expected)).await {
            Ok(()) if job.status == JobStatus::Failed => self.notify_failure(job).await,
            Ok(()) => Ok(outcome),
            // A notification (or a newer upload) overtook our bookkeeping: the job already
            // says more than we would.
            Err(StoreError::Conflict) => {
                tracing::info!("job changed after submission; leaving the newer state");
                Ok(outcome)
            }
            Err(error) => Err(StoreFailure::at("submitted, but recording it failed")(error).into()),
        }
    }

    /// Publishes the FAILED detection notification of a job recorded FAILED, then marks it
    /// notified: on-result's order, so a notification is never marked sent before it was. A
    /// failed publish fails the record; Lambda's retry finds the job FAILED and not notified
    /// (a duplicate of the same upload) and publishes again.
    async fn notify_failure(&self, job: JobRecord) -> Result<RecordOutcome, RecordError> {
        let inference_id = job
            .inference_id
            .clone()
            .ok_or_else(|| RecordError::NoInferenceId {
                file: job.file.to_string(),
            })?;
        let code = job.reason_code.as_deref().unwrap_or(ENDPOINT_REFUSED);
        let reason = job
            .reason
            .clone()
            .unwrap_or_else(|| "the endpoint refused the request".to_string());
        let message = detection_message(
            &Outcome::failed(&job.file, inference_id.as_str(), code, &reason),
            None,
        );
        self.detections
            .publish(&message)
            .await
            .map_err(RecordError::Publish)?;
        let expected = job.revision;
        let notified = JobRecord {
            revision: job.revision + 1,
            notified: true,
            updated_at: now(),
            ..job
        };
        let outcome = RecordOutcome::Refused {
            file: notified.file.to_string(),
            inference_id: inference_id.to_string(),
            reason,
        };
        match self
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
            Err(error) => Err(StoreFailure::at("notified, but recording it failed")(error).into()),
        }
    }
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
        inference_id: (!rejected).then(|| inference_id.clone()),
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
        tag_items: StoredTags::default(),
    }
}

//! The submit function: queued S3 event → job record → admission → InvokeEndpointAsync.
//!
//! [`handle_queue`] takes a batch from the submit queue; each message is one S3 notification
//! (or a resubmission request from on-result) and is handled on its own by [`handle`]: per
//! record, read the object's metadata, decide (pure, `cochl_core::job::decide_upload`)
//! whether the event is new, a duplicate, stale or a newer upload, claim the job with a
//! conditional write, take an in-flight slot, then submit. A message that could not be
//! handled returns to the queue (every step is idempotent) and, after `maxReceiveCount`
//! receives, rests in the dead-letter queue. A message whose upload finds the endpoint full
//! (`COCHL_MAX_IN_FLIGHT` inferences accepted and unfinished) is deferred: it comes back
//! after a backoff, and waiting never sends it to the dead-letter queue.
//!
//! A request the endpoint refuses outright (a 400 such as a ValidationError) will never
//! produce a SageMaker notification, so submit itself ends the job: it records it FAILED
//! (`endpoint_refused`), publishes the FAILED detection notification on-result would have
//! published, and only then marks the job notified. A retry that finds the job FAILED but not
//! notified publishes the missing notification.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};

use cochl_aws::batch::{log_unreadable, run_batch, InvocationError, StoreFailure};
use cochl_aws::clock::{now, now_seconds};
use cochl_aws::dynamo::{DynamoStore, Expect, SlotGrant, StoreError};
use cochl_aws::endpoint::{AsyncEndpoint, EndpointError, InvocationRequest};
use cochl_aws::message::{detection_message, Outcome};
use cochl_aws::messages::{run_messages, DeferPlan, DeferPolicy, Handled, QueuedMessage};
use cochl_aws::notify::Topic;
use cochl_aws::objects::ObjectHead;
use cochl_aws::objects::Objects;
use cochl_aws::ports::{InferenceEndpoint, JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_aws::queue::{Queue, QueueError};
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings::SubmitSettings;
use cochl_core::backfill::{decide_backfill, wanted_inference, BackfillMode, BackfillRequest};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{
    decide_removal, decide_upload, JobStatus, ObjectVersion, Removal, RemovalDecision,
    UploadDecision,
};
use cochl_core::keys::S3Uri;
use cochl_core::resubmit::ResubmitRequest;
use cochl_core::sensitivity::SensitivityConfig;
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

/// How often one instance looks for leaked in-flight slots while the endpoint is full.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// Leaked slots reclaimed per look.
const RECONCILE_BATCH: usize = 100;
/// Added to the claiming invocation's remaining time: a claim outlives its claimant by this
/// much, so clocks a few seconds apart never let two deliveries send one upload.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);
/// A claim's lease when the invocation has no deadline: Lambda's longest invocation.
const CLAIM_WITHOUT_DEADLINE: Duration = Duration::from_secs(900);
/// Days a deleted upload's tombstone is kept: longer than any event of the removed upload
/// can still arrive (SQS keeps a message 14 days at most).
const TOMBSTONE_DAYS: i64 = 30;

/// When this instance last looked for leaked in-flight slots, so a full endpoint costs one
/// query a minute per instance, not one per deferred message.
#[derive(Debug, Clone)]
pub struct Reconcile {
    /// Least time between two looks.
    pub every: Duration,
    last: Arc<Mutex<Option<Instant>>>,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile::every(RECONCILE_EVERY)
    }
}

impl Reconcile {
    /// Looks at most once per `every`.
    pub fn every(every: Duration) -> Self {
        Reconcile {
            every,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// True (and remembered) when a look is due now.
    fn due(&self) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Everything the handler needs, built once per cold start. The type parameters are the
/// ports; the defaults are the AWS adapters the Lambda runs with, tests plug in-memory
/// doubles (`testkit::doubles`).
#[derive(Debug, Clone)]
pub struct Submitter<S = DynamoStore, O = Objects, E = AsyncEndpoint, T = Topic, Q = Queue> {
    /// Where uploads are read (HeadObject).
    pub objects: O,
    /// Where jobs are claimed and settled.
    pub store: S,
    /// Where inferences are queued.
    pub endpoint: E,
    /// Where a request the endpoint refuses is notified, as on-result notifies failures.
    pub detections: T,
    /// The submit queue, where messages wait while the endpoint is full.
    pub queue: Q,
    /// The function's configuration.
    pub settings: SubmitSettings,
    /// Throttles the search for leaked in-flight slots.
    pub reconcile: Reconcile,
}

/// Handles a batch from the submit queue: each message on its own ([`handle`]), deferring
/// those that must wait for room at the endpoint; answers the messages that must return.
pub async fn handle_queue<S, O, E, T, Q>(
    submitter: &Submitter<S, O, E, T, Q>,
    event: &SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse
where
    S: JobStore,
    O: ObjectStore,
    E: InferenceEndpoint,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let policy = DeferPolicy {
        base: submitter.settings.defer.base,
        max: submitter.settings.defer.max,
        max_receive_count: submitter.settings.defer.max_receive_count,
    };
    // COCHL_SUBMIT_CONCURRENCY bounds the messages of a batch handled at once, and the
    // records of each message (S3 sends one record per message).
    run_messages(
        event,
        submitter.settings.concurrency,
        &policy,
        |message: QueuedMessage| async move {
            let payload: Value = serde_json::from_str(&message.body)
                .unwrap_or_else(|_| Value::String(message.body.clone()));
            let outcomes = handle(submitter, &payload, deadline).await?;
            Ok::<_, SubmitError>(if outcomes.iter().any(RecordOutcome::is_deferred) {
                Handled::Defer(outcomes)
            } else {
                Handled::Done(outcomes)
            })
        },
        |plan: DeferPlan| submitter.defer(plan),
    )
    .await
}

/// Handles one message body (an S3 notification or a resubmission request): every record is
/// handled; it fails if any could not be (the message returns to its queue; every step is
/// idempotent).
pub async fn handle<S, O, E, T, Q>(
    submitter: &Submitter<S, O, E, T, Q>,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Vec<RecordOutcome>, SubmitError>
where
    S: JobStore,
    O: ObjectStore,
    E: InferenceEndpoint,
    T: NotificationTopic,
    Q: MessageQueue,
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
        SubmitEvent::Backfill(request) => {
            let outcome = submitter.backfill(&request, deadline).await;
            return single_record("backfill request", outcome);
        }
        SubmitEvent::Resubmit(request) => {
            let outcome = submitter.resubmit(&request, deadline).await;
            return single_record("resubmission", outcome);
        }
    };
    let outcomes = run_batch(records, submitter.settings.concurrency, |record| async {
        let outcome = submitter.handle_record(record, deadline).await?;
        outcome.emit_metric();
        Ok(outcome)
    })
    .await?;
    Ok(outcomes)
}

impl<S, O, E, T, Q> Submitter<S, O, E, T, Q>
where
    S: JobStore,
    O: ObjectStore,
    E: InferenceEndpoint,
    T: NotificationTopic,
    Q: MessageQueue,
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
            ParsedRecord::Removal(removal) => {
                let span = tracing::info_span!(
                    "removal",
                    file = %format!("s3://{}/{}", removal.bucket, removal.key)
                );
                self.handle_removal(removal, deadline)
                    .instrument(span)
                    .await
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
        if let Some(reason) = self.not_ours(&upload.key) {
            return Ok(RecordOutcome::Ignored {
                file: Some(file.to_string()),
                reason,
            });
        }
        self.submit_upload(&file, &upload, deadline).await
    }

    /// Why a key's events are none of submit's business: outside the input prefix, or a
    /// staged copy submit made itself (under the staging prefix, which may sit inside the
    /// input prefix, e.g. when the input prefix is the whole bucket).
    fn not_ours(&self, key: &str) -> Option<String> {
        if !key.starts_with(&self.settings.input_prefix) {
            return Some(format!(
                "outside the input prefix {:?}",
                self.settings.input_prefix
            ));
        }
        key.starts_with(&self.settings.staging_prefix).then(|| {
            format!(
                "a staged copy (under {:?}), not an upload",
                self.settings.staging_prefix
            )
        })
    }

    /// An upload under the input prefix was deleted: its tag items go (so tag listings stop
    /// returning it) and its job becomes a tombstone (so the query API answers 404, and a
    /// late event of the removed upload is stale). An analysis still running is settled as
    /// superseded when its notification arrives. A deletion older than the job's upload
    /// changes nothing.
    async fn handle_removal(
        &self,
        removal: UploadRecord,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let file =
            S3Uri::new(&removal.bucket, &removal.key).map_err(RecordError::InvalidLocation)?;
        if let Some(reason) = self.not_ours(&removal.key) {
            return Ok(RecordOutcome::Ignored {
                file: Some(file.to_string()),
                reason,
            });
        }
        let event = Removal {
            hides_current: removal.version_id.is_none()
                || removal.event_name == "ObjectRemoved:DeleteMarkerCreated",
            version: ObjectVersion {
                version_id: removal.version_id,
                etag: None,
                sequencer: removal.sequencer,
                event_time_ms: removal.event_time_ms,
            },
        };
        for _ in 0..MAX_CONFLICTS {
            let existing = self
                .store
                .get_job(&file)
                .await
                .map_err(StoreFailure::at("reading the job"))?;
            match decide_removal(existing.as_ref().map(JobRecord::snapshot).as_ref(), &event) {
                RemovalDecision::Ignore => {
                    return Ok(RecordOutcome::Stale {
                        file: file.to_string(),
                    })
                }
                RemovalDecision::Delete | RemovalDecision::Tombstone => {}
            }
            let tag_items = existing
                .as_ref()
                .map(|job| job.tag_items.clone())
                .unwrap_or_default();
            // The detections go first: if the tombstone's write fails, the retry finds the
            // job as it was and deletes (nothing more) again.
            self.store
                .delete_tags(&file, &tag_items, deadline)
                .await
                .map_err(StoreFailure::at("deleting the deleted upload's tags"))?;
            let tombstone = tombstone(&file, &event.version, existing.as_ref());
            let expect = existing
                .as_ref()
                .map_or(Expect::Absent, |j| Expect::Revision(j.revision));
            match self.store.put_job(&tombstone, expect).await {
                Ok(()) => {
                    tracing::info!(
                        tag_items = tag_items.names().len(),
                        "the upload was deleted; its analysis is gone"
                    );
                    return Ok(RecordOutcome::Deleted {
                        file: file.to_string(),
                        tag_items: tag_items.names().len(),
                    });
                }
                Err(StoreError::Conflict) => {
                    tracing::info!("job changed while recording the deletion; deciding again");
                }
                Err(error) => return Err(StoreFailure::at("recording the deletion")(error).into()),
            }
        }
        Err(RecordError::Contended {
            attempts: MAX_CONFLICTS,
        })
    }

    /// An upload event: the job is claimed for the version the event names and submitted.
    async fn submit_upload(
        &self,
        file: &S3Uri,
        upload: &UploadRecord,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let head = self.objects.head(file, None).await?;
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
        let intake = Intake {
            version,
            inference_id,
            source: Source::Event { size: upload.size },
        };
        self.claim_and_submit(file, head.as_ref(), &intake, deadline)
            .await
    }

    /// A backfill request: the object as it is now (or the version the manifest names) is
    /// analysed, or reanalysed under the run's own inference id, unless [`decide_backfill`]
    /// finds nothing to do. Keys outside the input prefix are welcome (an archive); staged
    /// copies are not uploads.
    async fn backfill(
        &self,
        request: &BackfillRequest,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let file = S3Uri::parse(&request.file).map_err(RecordError::InvalidLocation)?;
        let span = tracing::info_span!(
            "backfill",
            file = %file,
            mode = %request.mode,
            run = %request.run,
            inference_id = tracing::field::Empty
        );
        async {
            if file.key().starts_with(&self.settings.staging_prefix) {
                return Ok(RecordOutcome::Ignored {
                    file: Some(file.to_string()),
                    reason: format!(
                        "a staged copy (under {:?}), not an upload",
                        self.settings.staging_prefix
                    ),
                });
            }
            let malformed = |reason: String| RecordError::Malformed { index: 0, reason };
            if request.mode == BackfillMode::Remerge {
                return Err(malformed(
                    "remerge runs in the backfill function and is never queued".into(),
                ));
            }
            let sensitivity =
                SensitivityConfig::parse(request.sensitivity.as_deref().unwrap_or_default())
                    .map_err(|error| malformed(format!("sensitivity: {error}")))?;
            let Some(head) = self
                .objects
                .head(&file, request.version_id.as_deref())
                .await?
            else {
                return Ok(RecordOutcome::Ignored {
                    file: Some(file.to_string()),
                    reason: "the object no longer exists".into(),
                });
            };
            let version = ObjectVersion {
                version_id: head.version_id.clone().or(request.version_id.clone()),
                etag: head.etag.clone(),
                sequencer: None,
                event_time_ms: head.last_modified_ms.unwrap_or_default(),
            };
            let upload_id = InferenceId::for_object(file.bucket(), file.key(), &version);
            let inference_id = wanted_inference(&upload_id, request.mode, &request.run);
            tracing::Span::current().record("inference_id", inference_id.as_str());
            let intake = Intake {
                version,
                inference_id,
                source: Source::Backfill {
                    mode: request.mode,
                    sensitivity,
                },
            };
            self.claim_and_submit(&file, Some(&head), &intake, deadline)
                .await
        }
        .instrument(span)
        .await
    }

    /// Claims the job (deciding again when a conflicting writer got there first) and submits.
    async fn claim_and_submit(
        &self,
        file: &S3Uri,
        head: Option<&ObjectHead>,
        intake: &Intake,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let inference_id = &intake.inference_id;
        for _ in 0..MAX_CONFLICTS {
            let existing = self
                .store
                .get_job(file)
                .await
                .map_err(StoreFailure::at("reading the job"))?;
            let decision = intake.decide(existing.as_ref(), now_seconds());
            // A retry of the same upload keeps the id the job holds: after an expiry it is a
            // resubmission's, which the endpoint has not seen yet.
            let inference_id = match (&decision, &existing) {
                (UploadDecision::Retry, Some(job)) => job
                    .inference_id
                    .clone()
                    .unwrap_or_else(|| inference_id.clone()),
                _ => inference_id.clone(),
            };
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
                UploadDecision::InProgress => {
                    let claimed_until = existing.and_then(|j| j.claimed_until).unwrap_or_default();
                    tracing::info!(
                        claimed_until,
                        "another delivery holds the claim and is sending the upload"
                    );
                    return Ok(RecordOutcome::InProgress {
                        file: file.to_string(),
                        claimed_until,
                    });
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
                head,
                file.key(),
                &self.settings.default_sensitivity,
                intake.sensitivity(),
                self.settings.max_object_bytes,
            );
            // An upload already claimed and waiting (a deferred message's return) waits for
            // room before writing anything: while the endpoint is full a deferral then costs
            // two reads and one refused transaction, however often the message comes back.
            let admitted = decision == UploadDecision::Retry && plan.is_ok();
            if admitted {
                if let Some(in_flight) = self.admit(&inference_id).await? {
                    return Ok(self.deferred(file, &inference_id, in_flight));
                }
            }
            let job = new_job(
                file,
                intake.version_for(existing.as_ref()),
                &inference_id,
                existing.as_ref(),
                &plan,
                intake.size(),
                self.lease_until(deadline),
            );
            let expect = existing
                .as_ref()
                .map_or(Expect::Absent, |j| Expect::Revision(j.revision));
            match self.store.put_job(&job, expect).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    tracing::info!("job changed while claiming; deciding again");
                    if admitted {
                        self.give_back_unless_claimed(file, &inference_id).await?;
                    }
                    continue;
                }
                Err(error) => {
                    if admitted {
                        // The slot expires if this fails too; the retry takes it again.
                        let _ = self.give_back(&inference_id).await;
                    }
                    return Err(StoreFailure::at("claiming the job")(error).into());
                }
            }
            return match plan {
                Err(rejection) => Ok(RecordOutcome::Rejected {
                    file: file.to_string(),
                    code: rejection.code.to_string(),
                    reason: rejection.reason,
                }),
                Ok(plan) => {
                    self.invoke(job, inference_id, &plan, admitted, deadline)
                        .await
                }
            };
        }
        Err(RecordError::Contended {
            attempts: MAX_CONFLICTS,
        })
    }

    /// Takes an in-flight slot (unless `admitted` already), then sends the request. A full
    /// endpoint defers the record; a request that was not accepted gives its slot back.
    async fn invoke(
        &self,
        mut job: JobRecord,
        inference_id: InferenceId,
        plan: &Plan,
        admitted: bool,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        if !admitted {
            if let Some(in_flight) = self.admit(&inference_id).await? {
                let outcome = self.deferred(&job.file, &inference_id, in_flight);
                self.release_claim(job).await;
                return Ok(outcome);
            }
        }
        let input = match self.input_location(&job, &inference_id).await {
            Ok(input) => input,
            Err(error) => {
                if let Err(release) = self.give_back(&inference_id).await {
                    tracing::warn!(error = %release, "could not give back the slot of a request that was not sent");
                }
                self.release_claim(job).await;
                return Err(error);
            }
        };
        let request = InvocationRequest {
            inference_id: inference_id.clone(),
            input,
            content_type: plan.content_type.clone(),
            custom_attributes: plan.custom_attributes.clone(),
            request_ttl_seconds: self.settings.request_ttl_seconds,
            invocation_timeout_seconds: self.settings.invocation_timeout_seconds,
        };
        let expected = job.revision;
        job.revision += 1;
        job.updated_at = now();
        // Accepted or refused, the request is no longer being sent: the claim ends.
        job.claimed_until = None;
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
                self.give_back(&inference_id).await?;
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
            // The job stays SUBMITTED and not accepted: the message's retry (or another
            // delivery of the upload, now that the claim is given up) resumes it.
            Err(error @ EndpointError::GaveUp { .. }) => {
                if let Err(release) = self.give_back(&inference_id).await {
                    // The retry takes the same slot again, or it expires: nothing leaks.
                    tracing::warn!(error = %release, "could not give back the slot of a request the endpoint did not take");
                }
                self.release_claim(JobRecord {
                    revision: expected,
                    ..job
                })
                .await;
                return Err(RecordError::Endpoint(error));
            }
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

    /// When a claim made now expires: the claiming invocation cannot outlive its deadline,
    /// so the lease is the time it has left plus [`CLAIM_MARGIN`] (or the fixed
    /// `COCHL_CLAIM_LEASE_SECONDS`).
    fn lease_until(&self, deadline: Option<Instant>) -> i64 {
        let hold = match (self.settings.claim_lease, deadline) {
            (Some(fixed), _) => fixed,
            (None, Some(deadline)) => {
                deadline.saturating_duration_since(Instant::now()) + CLAIM_MARGIN
            }
            (None, None) => CLAIM_WITHOUT_DEADLINE,
        };
        now_seconds() + hold.as_secs_f64().ceil() as i64
    }

    /// Gives up the claim of a job that waits for room (deferred), so its message's return
    /// need not wait for the lease. Best effort: a claim left in place expires.
    async fn release_claim(&self, job: JobRecord) {
        let expected = job.revision;
        let released = JobRecord {
            claimed_until: None,
            revision: job.revision + 1,
            updated_at: now(),
            ..job
        };
        match self
            .store
            .put_job(&released, Expect::Revision(expected))
            .await
        {
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(error) => {
                tracing::warn!(error = %error, "could not give up the claim of a deferred upload; it expires")
            }
        }
    }

    /// Where the endpoint reads the upload. A key that is not printable ASCII cannot be
    /// trusted to an HTTP header (`X-Amzn-SageMaker-InputLocation`): the upload is copied
    /// server-side to `<staging prefix><inference id>` in the same bucket and that is sent;
    /// the job, its notification and every query still name the original file.
    async fn input_location(
        &self,
        job: &JobRecord,
        inference_id: &InferenceId,
    ) -> Result<S3Uri, RecordError> {
        if header_safe(&job.file.to_string()) {
            return Ok(job.file.clone());
        }
        let staged = S3Uri::new(
            job.file.bucket(),
            format!("{}{}", self.settings.staging_prefix, inference_id),
        )
        .map_err(RecordError::InvalidLocation)?;
        self.objects
            .copy(&job.file, job.version.version_id.as_deref(), &staged)
            .await?;
        tracing::info!(staged = %staged, "the key is not printable ASCII; submitting a staged copy");
        Ok(staged)
    }

    /// The outcome of a record that waits for room at the endpoint.
    fn deferred(&self, file: &S3Uri, inference_id: &InferenceId, in_flight: u64) -> RecordOutcome {
        RecordOutcome::Deferred {
            file: file.to_string(),
            inference_id: inference_id.to_string(),
            in_flight,
            limit: self.settings.max_in_flight,
        }
    }

    /// Carries out a deferral on the submit queue: hide the message, or enqueue its copy.
    async fn defer(&self, plan: DeferPlan) -> Result<(), QueueError> {
        match plan {
            DeferPlan::Hide {
                receipt_handle,
                delay,
            } => self.queue.change_visibility(&receipt_handle, delay).await,
            DeferPlan::Requeue {
                body,
                delay,
                attributes,
            } => self.queue.send(&body, delay, &attributes).await.map(|_| ()),
        }
    }

    /// Admission control: `Ok(None)` when the inference holds a slot (taken now or by an
    /// earlier attempt), `Ok(Some(in_flight))` when the endpoint is full. A full endpoint
    /// first reclaims slots presumed leaked (at most once per [`Reconcile::every`]).
    async fn admit(&self, inference_id: &InferenceId) -> Result<Option<u64>, RecordError> {
        let limit = self.settings.max_in_flight;
        let expires_at = now_seconds() + self.settings.slot_lease().as_secs() as i64;
        let acquire = || async {
            self.store
                .acquire_slot(inference_id, limit, expires_at)
                .await
                .map_err(StoreFailure::at("taking an in-flight slot"))
        };
        let mut grant = acquire().await?;
        if matches!(grant, SlotGrant::Full { .. })
            && self.reconcile.due()
            && self.reclaim_leaked_slots().await? > 0
        {
            grant = acquire().await?;
        }
        let in_flight = match grant {
            SlotGrant::Full { in_flight } => Some(in_flight),
            SlotGrant::Acquired | SlotGrant::AlreadyHeld => None,
        };
        cochl_aws::metrics::emit(&cochl_aws::metrics::in_flight_line(
            &self.settings.endpoint_name,
            in_flight.is_some(),
            in_flight,
            now_seconds() * 1000,
        ));
        if let Some(in_flight) = in_flight {
            tracing::info!(in_flight, limit, "the endpoint is full; deferring");
        }
        Ok(in_flight)
    }

    /// Gives back the slots whose inference can no longer be waiting or running (its
    /// notification was lost, or its job was abandoned); returns how many.
    async fn reclaim_leaked_slots(&self) -> Result<usize, RecordError> {
        let reclaimed =
            cochl_aws::admission::reclaim_leaked_slots(&self.store, now_seconds(), RECONCILE_BATCH)
                .await
                .map_err(StoreFailure::at("reclaiming leaked in-flight slots"))?;
        Ok(reclaimed.len())
    }

    /// After losing a claim race with the slot already taken: gives the slot back unless
    /// the job still waits for this very inference (another delivery of the same upload
    /// won, and will send it under this slot).
    async fn give_back_unless_claimed(
        &self,
        file: &S3Uri,
        inference_id: &InferenceId,
    ) -> Result<(), RecordError> {
        let job = self
            .store
            .get_job(file)
            .await
            .map_err(StoreFailure::at("reading the job"))?;
        let still_wanted = job.is_some_and(|job| {
            job.status == JobStatus::Submitted && job.inference_id.as_ref() == Some(inference_id)
        });
        if !still_wanted {
            self.give_back(inference_id).await?;
        }
        Ok(())
    }

    /// Gives back the slot of a request the endpoint did not take.
    async fn give_back(&self, inference_id: &InferenceId) -> Result<(), RecordError> {
        self.store
            .release_slot(inference_id)
            .await
            .map_err(StoreFailure::at("giving back the in-flight slot"))?;
        Ok(())
    }

    /// Sends again a request that expired in the endpoint's queue, under the next
    /// resubmission id, if the job still waits for the expired inference (or already moved
    /// to the next id and was not sent yet); anything else makes the request a duplicate.
    async fn resubmit(
        &self,
        request: &ResubmitRequest,
        deadline: Option<Instant>,
    ) -> Result<RecordOutcome, RecordError> {
        let file = S3Uri::parse(&request.file).map_err(RecordError::InvalidLocation)?;
        let expired = InferenceId::parse(&request.expired_inference_id).map_err(|error| {
            RecordError::Malformed {
                index: 0,
                reason: format!("expiredInferenceId: {error}"),
            }
        })?;
        let span = tracing::info_span!("resubmission", file = %file, expired = %expired);
        async {
            for _ in 0..MAX_CONFLICTS {
                let Some(job) = self
                    .store
                    .get_job(&file)
                    .await
                    .map_err(StoreFailure::at("reading the job"))?
                else {
                    return Ok(RecordOutcome::Ignored {
                        file: Some(file.to_string()),
                        reason: "no job for the file".into(),
                    });
                };
                let waiting = job.status == JobStatus::Submitted;
                let current = job.inference_id.clone();
                let pending = expired.resubmission(job.expiry_resubmits);
                let plan = Plan {
                    content_type: job.content_type.clone().unwrap_or_default(),
                    custom_attributes: job.custom_attributes.clone(),
                    size: job.size_bytes.unwrap_or_default(),
                };
                if waiting && current.as_ref() == Some(&expired) {
                    let next = expired.resubmission(job.expiry_resubmits + 1);
                    let expected = job.revision;
                    let moved = JobRecord {
                        inference_id: Some(next.clone()),
                        accepted: false,
                        claimed_until: Some(self.lease_until(deadline)),
                        expiry_resubmits: job.expiry_resubmits + 1,
                        output_location: None,
                        failure_location: None,
                        revision: job.revision + 1,
                        updated_at: now(),
                        ..job
                    };
                    match self.store.put_job(&moved, Expect::Revision(expected)).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => continue,
                        Err(error) => {
                            return Err(StoreFailure::at("moving the job to its resubmission")(
                                error,
                            )
                            .into())
                        }
                    }
                    tracing::info!(inference_id = %next, attempt = moved.expiry_resubmits, "resubmitting an expired request");
                    return self.invoke(moved, next, &plan, false, deadline).await;
                }
                let moved_not_sent = waiting
                    && !job.accepted
                    && job.expiry_resubmits > 0
                    && current.as_ref() == Some(&pending);
                if moved_not_sent {
                    // Another copy of this request may be sending it: the claim decides.
                    if let Some(claimed_until) =
                        job.claimed_until.filter(|until| *until > now_seconds())
                    {
                        return Ok(RecordOutcome::InProgress {
                            file: file.to_string(),
                            claimed_until,
                        });
                    }
                    let expected = job.revision;
                    let claimed = JobRecord {
                        claimed_until: Some(self.lease_until(deadline)),
                        revision: job.revision + 1,
                        updated_at: now(),
                        ..job
                    };
                    match self.store.put_job(&claimed, Expect::Revision(expected)).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => continue,
                        Err(error) => {
                            return Err(StoreFailure::at("claiming the resubmission")(error).into())
                        }
                    }
                    return self.invoke(claimed, pending, &plan, false, deadline).await;
                }
                return Ok(RecordOutcome::Duplicate {
                    file: file.to_string(),
                });
            }
            Err(RecordError::Contended {
                attempts: MAX_CONFLICTS,
            })
        }
        .instrument(span)
        .await
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

/// The answer for a message holding one request of our own (a resubmission, a backfill
/// request): its outcome, or its failure as the one failed record of the message.
fn single_record(
    what: &str,
    outcome: Result<RecordOutcome, RecordError>,
) -> Result<Vec<RecordOutcome>, SubmitError> {
    let outcome = outcome.map_err(|error| {
        InvocationError::Records(cochl_aws::batch::BatchError {
            total: 1,
            failures: vec![(0, error)],
            handled: Vec::new(),
        })
    })?;
    tracing::info!(outcome = ?outcome, "{what} handled");
    outcome.emit_metric();
    Ok(vec![outcome])
}

/// True when a location can travel in an HTTP header as it is: printable ASCII only.
fn header_safe(location: &str) -> bool {
    location.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// What is left of a deleted upload's job: the deletion's order, purged after
/// [`TOMBSTONE_DAYS`].
fn tombstone(file: &S3Uri, deletion: &ObjectVersion, existing: Option<&JobRecord>) -> JobRecord {
    let now = now();
    JobRecord {
        file: file.clone(),
        status: JobStatus::Deleted,
        version: deletion.clone(),
        revision: existing.map_or(0, |j| j.revision + 1),
        inference_id: None,
        accepted: false,
        claimed_until: None,
        expiry_resubmits: 0,
        notified: false,
        content_type: None,
        size_bytes: None,
        custom_attributes: None,
        output_location: None,
        failure_location: None,
        reason_code: Some("deleted".into()),
        reason: Some("the upload was deleted from the bucket".into()),
        submitted_at: existing.map_or_else(|| now.clone(), |j| j.submitted_at.clone()),
        completed_at: Some(now.clone()),
        updated_at: now,
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: Some(now_seconds() + TOMBSTONE_DAYS * 86_400),
    }
}

/// What a claim is for: the upload's version, the inference to send, and where the request
/// came from.
struct Intake {
    version: ObjectVersion,
    inference_id: InferenceId,
    source: Source,
}

/// Where a claim comes from.
enum Source {
    /// An S3 upload event (its object size, if the event gave one).
    Event { size: Option<u64> },
    /// A backfill request, with its mode and its run's sensitivity.
    Backfill {
        mode: BackfillMode,
        sensitivity: SensitivityConfig,
    },
}

/// No sensitivity beyond the stack default and the object's metadata.
static NO_SENSITIVITY: std::sync::LazyLock<SensitivityConfig> =
    std::sync::LazyLock::new(SensitivityConfig::default);

impl Intake {
    /// What the claim means given the file's job: `decide_upload` for an event,
    /// `decide_backfill` for a backfill request.
    fn decide(&self, existing: Option<&JobRecord>, now: i64) -> UploadDecision {
        let snapshot = existing.map(JobRecord::snapshot);
        match &self.source {
            Source::Event { .. } => decide_upload(snapshot.as_ref(), &self.version, now),
            Source::Backfill { mode, .. } => decide_backfill(
                snapshot.as_ref(),
                &self.version,
                &self.inference_id,
                *mode,
                now,
            ),
        }
    }

    /// The version the claimed job records. A reanalysis of the analysed content keeps the
    /// job's version (with its event's order), so a late duplicate of that upload's event
    /// is still recognised as one.
    fn version_for<'a>(&'a self, existing: Option<&'a JobRecord>) -> &'a ObjectVersion {
        match (&self.source, existing) {
            (Source::Backfill { .. }, Some(job))
                if job.status != JobStatus::Deleted && job.version.same_content(&self.version) =>
            {
                &job.version
            }
            _ => &self.version,
        }
    }

    /// The sensitivity that overrides the stack default and the object's metadata.
    fn sensitivity(&self) -> &SensitivityConfig {
        match &self.source {
            Source::Event { .. } => &NO_SENSITIVITY,
            Source::Backfill { sensitivity, .. } => sensitivity,
        }
    }

    /// The object's size as the event gave it (a rejection keeps it when HeadObject did not).
    fn size(&self) -> Option<u64> {
        match &self.source {
            Source::Event { size } => *size,
            Source::Backfill { .. } => None,
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
    event_size: Option<u64>,
    claimed_until: i64,
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
            rejection.size.or(event_size),
            Some(rejection.code.to_string()),
            Some(rejection.reason.clone()),
        ),
    };
    let rejected = status == JobStatus::Rejected;
    // A retry of the same inference keeps how often it was resubmitted.
    let expiry_resubmits = existing
        .filter(|job| job.inference_id.as_ref() == Some(inference_id))
        .map_or(0, |job| job.expiry_resubmits);
    JobRecord {
        file: file.clone(),
        status,
        version: version.clone(),
        revision: existing.map_or(0, |j| j.revision + 1),
        inference_id: (!rejected).then(|| inference_id.clone()),
        accepted: false,
        claimed_until: (!rejected).then_some(claimed_until),
        expiry_resubmits,
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
        purge_at: None,
    }
}

//! The on-result function: SageMaker notification → detections → job COMPLETED or FAILED.
//!
//! [`handle_queue`] takes a batch from the results queue (SNS envelopes of both SageMaker
//! topics); each message is handled on its own and only failed ones are reported back. Every
//! notification first gives back its inference's in-flight slot (the endpoint is done with
//! it, whatever the job makes of it). A request that expired in the endpoint's queue is
//! sent back to the submit queue, up to `COCHL_MAX_EXPIRY_RESUBMITS` times, without a
//! detection notification: one goes out for the final outcome only.
//!
//! Per notification: find the job through the notification's input location (or, when the
//! location does not name it, through the inference index: a staged copy of an upload whose
//! key cannot travel in a header, or a location echoed differently), decide (pure,
//! `cochl_core::job::decide_result`) whether it applies, is a duplicate, belongs to a
//! superseded upload or to no job at all (an orphan, recorded). On success the result is
//! read from S3, merged into per-tag detections, the tag items are written in batches
//! (stale items of an older analysis deleted in the same batches), the detection
//! notification is published, and only then the job flips to COMPLETED with a conditional
//! write. A failure notification is a normal outcome: the job becomes FAILED, with its
//! reason, and is notified too.
//!
//! DynamoDB requests per analysed file: one transaction giving back the in-flight slot, one
//! read, `ceil(items / 25)` batch writes and one conditional write. The handler sees the table only through the `JobStore` port, so it
//! never builds an item or a key.

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};

use cochl_aws::batch::{log_unreadable, run_batch, InvocationError, StoreFailure};
use cochl_aws::clock::now;
use cochl_aws::dynamo::{DynamoStore, Expect, StoreError};
use cochl_aws::message::{detection_message, Outcome};
use cochl_aws::messages::{run_messages, DeferPlan, DeferPolicy, Handled, QueuedMessage};
use cochl_aws::metrics::{Metric, Unit};
use cochl_aws::notify::{Message, Topic};
use cochl_aws::objects::{ObjectError, Objects};
use cochl_aws::ports::{AnalysisTags, JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_aws::queue::Queue;
use cochl_aws::records::{JobRecord, OrphanRecord, StoredTags, TagSummary};
use cochl_aws::settings::ResultSettings;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{decide_result, JobStatus, ResultDecision};
use cochl_core::keys::S3Uri;
use cochl_core::notification::{failure_is_expiry, AsyncNotification, InferenceOutcome};
use cochl_core::resubmit::ResubmitRequest;
use cochl_core::result::{analyse, Analysis};
use serde_json::Value;
use tracing::Instrument;

use crate::error::{RecordError, ResultError};
use crate::event::{parse_event, parse_queued, ParsedRecord};
use crate::outcome::NotificationOutcome;

/// Conditional-write conflicts tolerated per notification before failing to Lambda's retry.
pub const MAX_CONFLICTS: usize = 5;

/// Everything the handler needs, built once per cold start. The type parameters are the
/// ports; the defaults are the AWS adapters the Lambda runs with, tests plug in-memory
/// doubles (`testkit::doubles`).
#[derive(Debug, Clone)]
pub struct ResultHandler<S = DynamoStore, O = Objects, T = Topic, Q = Queue> {
    /// Where result documents are read.
    pub objects: O,
    /// Where jobs are settled and detections stored.
    pub store: S,
    /// Where detection notifications go.
    pub detections: T,
    /// The submit queue, where expired requests are resubmitted.
    pub submit_queue: Q,
    /// The function's configuration.
    pub settings: ResultSettings,
}

/// Handles a batch from the results queue, each message on its own; answers the messages
/// that must return to the queue (the dead-letter queue after `maxReceiveCount`).
pub async fn handle_queue<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    event: &SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    // on-result never defers; the policy is for the runner's signature only.
    let never = DeferPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(1),
        max_receive_count: u32::MAX,
    };
    run_messages(
        event,
        handler.settings.concurrency,
        &never,
        |message: QueuedMessage| async move {
            handle_message(handler, &message.message_id, &message.body, deadline)
                .await
                .map(Handled::Done)
        },
        |_: DeferPlan| async { Ok(()) },
    )
    .await
}

/// Handles one message of the results queue: an SNS envelope, or (from a subscription with
/// raw message delivery) the SageMaker notification itself.
pub async fn handle_message<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    message_id: &str,
    body: &str,
    deadline: Option<Instant>,
) -> Result<NotificationOutcome, RecordError>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    handler
        .handle_record(parse_queued(message_id, body), deadline)
        .await
}

/// Handles one SNS event payload (`Records[].Sns`): every notification is handled; it fails
/// if any could not be (every step is idempotent, so a retry redoes nothing done).
pub async fn handle<S, O, T, Q>(
    handler: &ResultHandler<S, O, T, Q>,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Vec<NotificationOutcome>, ResultError>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let records = parse_event(payload)
        .inspect_err(|error| log_unreadable(payload, error))
        .map_err(InvocationError::NotAnEvent)?;
    let outcomes = run_batch(records, handler.settings.concurrency, |record| {
        handler.handle_record(record, deadline)
    })
    .await?;
    Ok(outcomes)
}

impl<S, O, T, Q> ResultHandler<S, O, T, Q>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    async fn handle_record(
        &self,
        record: ParsedRecord,
        deadline: Option<Instant>,
    ) -> Result<NotificationOutcome, RecordError> {
        match record {
            ParsedRecord::Malformed { index, reason, raw } => {
                tracing::error!(index, reason = %reason, record = %raw, "malformed SNS record");
                Err(RecordError::Malformed { index, reason })
            }
            ParsedRecord::Notification {
                message_id,
                topic_arn,
                raw,
                notification,
            } => {
                let file = notification
                    .request
                    .input_location
                    .as_ref()
                    .map(ToString::to_string);
                let span = tracing::info_span!(
                    "notification",
                    file = file.as_deref(),
                    inference_id = %notification.inference_id,
                    message_id = %message_id,
                    topic = %topic_arn
                );
                self.handle_notification(&notification, &raw, deadline)
                    .instrument(span)
                    .await
            }
        }
    }

    /// Settles a job from a notification the caller built rather than received (the
    /// sweeper, from the objects SageMaker left in S3), exactly as a delivered one would:
    /// the same decisions, writes and detection notification. `origin` is kept as the
    /// message of an orphan.
    pub async fn settle(
        &self,
        notification: &AsyncNotification,
        origin: &str,
        deadline: Option<Instant>,
    ) -> Result<NotificationOutcome, RecordError> {
        self.handle_notification(notification, origin, deadline)
            .await
    }

    async fn record_orphan(
        &self,
        notification: &AsyncNotification,
        raw: &str,
    ) -> Result<NotificationOutcome, RecordError> {
        let status = match &notification.outcome {
            InferenceOutcome::Succeeded { .. } => "Completed".to_string(),
            InferenceOutcome::Failed { status, .. } => status.clone(),
        };
        self.store
            .record_orphan(&OrphanRecord {
                inference_id: notification.inference_id.clone(),
                status,
                input_location: notification.request.input_location.clone(),
                received_at: now(),
                message: raw.to_string(),
            })
            .await
            .map_err(StoreFailure::at("recording the orphan"))?;
        tracing::warn!("notification for an unknown inference recorded as an orphan");
        Ok(NotificationOutcome::Orphan {
            inference_id: notification.inference_id.clone(),
        })
    }

    async fn handle_notification(
        &self,
        notification: &AsyncNotification,
        raw: &str,
        deadline: Option<Instant>,
    ) -> Result<NotificationOutcome, RecordError> {
        // The endpoint is done with this inference: its slot is free, whatever the job
        // makes of the notification (idempotent; an id we never sent held no slot).
        if let Ok(finished) = InferenceId::parse(&notification.inference_id) {
            self.store
                .release_slot(&finished)
                .await
                .map_err(StoreFailure::at("giving back the in-flight slot"))?;
        }
        for _ in 0..MAX_CONFLICTS {
            let Some((file, job)) = self.find_job(notification).await? else {
                return self.record_orphan(notification, raw).await;
            };
            let decision = decide_result(
                job.as_ref().map(JobRecord::snapshot).as_ref(),
                &notification.inference_id,
            );
            let (job, inference_id) = match (decision, job) {
                (ResultDecision::Duplicate, _) => {
                    return Ok(NotificationOutcome::Duplicate {
                        file: file.to_string(),
                    })
                }
                (ResultDecision::Superseded, _) => {
                    return Ok(NotificationOutcome::Superseded {
                        file: file.to_string(),
                        inference_id: notification.inference_id.clone(),
                    })
                }
                // `Apply` means the job waits for exactly this inference, so it has its id.
                (ResultDecision::Apply, Some(job)) => match job.inference_id.clone() {
                    Some(inference_id) => (job, inference_id),
                    None => return self.record_orphan(notification, raw).await,
                },
                (ResultDecision::Orphan, _) | (ResultDecision::Apply, None) => {
                    return self.record_orphan(notification, raw).await
                }
            };
            let settled = match &notification.outcome {
                InferenceOutcome::Succeeded {
                    output_location, ..
                } => {
                    let location = job
                        .output_location
                        .clone()
                        .or_else(|| output_location.clone());
                    self.apply_success(job, inference_id, location, deadline)
                        .await?
                }
                InferenceOutcome::Failed {
                    status,
                    reason,
                    failure_location,
                } => {
                    let (code, resubmittable) = failure_code(status, reason);
                    if resubmittable && job.expiry_resubmits < self.settings.max_expiry_resubmits {
                        return self.resubmit(&job, &inference_id).await;
                    }
                    let failure = Failure {
                        code,
                        reason: reason.clone(),
                        location: failure_location
                            .clone()
                            .or_else(|| job.failure_location.clone()),
                    };
                    self.apply_failure(job, inference_id, failure).await?
                }
            };
            match settled {
                Some(outcome) => return Ok(outcome),
                None => tracing::info!("job changed while recording the outcome; deciding again"),
            }
        }
        Err(RecordError::Contended {
            attempts: MAX_CONFLICTS,
        })
    }

    /// The job a notification is about, and the file it belongs to. Normally its input
    /// location names the file. When it does not (a staged copy of an upload whose key
    /// cannot travel in a header, or a location SageMaker echoed differently, or none at
    /// all) the inference index names it: one more query, only on that path. `None`: no
    /// file to look at (an orphan).
    async fn find_job(
        &self,
        notification: &AsyncNotification,
    ) -> Result<Option<(S3Uri, Option<JobRecord>)>, RecordError> {
        let located = match &notification.request.input_location {
            Some(file) => {
                let job = self
                    .store
                    .get_job(file)
                    .await
                    .map_err(StoreFailure::at("reading the job"))?;
                let matches = job.as_ref().is_some_and(|j| {
                    j.inference_id.as_ref().map(InferenceId::as_str)
                        == Some(notification.inference_id.as_str())
                });
                if matches {
                    return Ok(Some((file.clone(), job)));
                }
                Some((file.clone(), job))
            }
            None => None,
        };
        let Ok(inference_id) = InferenceId::parse(&notification.inference_id) else {
            return Ok(located);
        };
        let indexed = self
            .store
            .file_of_inference(&inference_id)
            .await
            .map_err(StoreFailure::at("finding the job of the inference"))?;
        match indexed {
            Some(file) if located.as_ref().is_none_or(|(at, _)| *at != file) => {
                tracing::info!(job_file = %file, "the input location does not name the job; found it by inference id");
                let job = self
                    .store
                    .get_job(&file)
                    .await
                    .map_err(StoreFailure::at("reading the job"))?;
                Ok(Some((file, job)))
            }
            _ => Ok(located),
        }
    }

    /// Sends the file's expired request back to the submit queue; submit moves the job to
    /// the next resubmission id and queues it again when the endpoint has room.
    async fn resubmit(
        &self,
        job: &JobRecord,
        expired: &InferenceId,
    ) -> Result<NotificationOutcome, RecordError> {
        let request = ResubmitRequest {
            file: job.file.to_string(),
            expired_inference_id: expired.to_string(),
        };
        self.submit_queue
            .send(&request.to_body(), Duration::ZERO, &[])
            .await
            .map_err(RecordError::Resubmit)?;
        let attempt = job.expiry_resubmits + 1;
        emit(&[], &[Metric::count("FilesResubmitted")]);
        tracing::warn!(
            attempt,
            "the request expired in the endpoint's queue; resubmitted"
        );
        Ok(NotificationOutcome::Resubmitted {
            file: job.file.to_string(),
            inference_id: expired.to_string(),
            attempt,
        })
    }

    /// Reads, merges and records a successful inference. `Ok(None)`: the job changed under us.
    async fn apply_success(
        &self,
        job: JobRecord,
        inference_id: InferenceId,
        location: Option<S3Uri>,
        deadline: Option<Instant>,
    ) -> Result<Option<NotificationOutcome>, RecordError> {
        let Some(location) = location else {
            let failure = Failure {
                code: "no_output_location",
                reason: "the success notification names no output location and none was stored"
                    .into(),
                location: None,
            };
            return self.apply_failure(job, inference_id, failure).await;
        };
        match self.read_analysis(&location).await {
            Ok((analysis, result_bytes)) => {
                let uploaded_ms = job.version.event_time_ms;
                let tags: Vec<String> =
                    analysis.detections.iter().map(|d| d.name.clone()).collect();
                let outcome = self
                    .record_completion(job, inference_id, location, analysis, deadline)
                    .await?;
                if outcome.is_some() {
                    completion_metrics(uploaded_ms, result_bytes, &tags);
                }
                Ok(outcome)
            }
            Err(ResultRead::Unusable(failure)) => {
                self.apply_failure(job, inference_id, failure).await
            }
            // Missing (not yet visible) or unreachable: retry later.
            Err(ResultRead::Unavailable(error)) => Err(RecordError::ResultUnavailable(error)),
        }
    }

    /// Reads a result document and merges its windows with the current settings. Parsed as
    /// a stream and merged as the windows are read: memory is the document plus the
    /// segments, whatever the audio's length.
    /// Also answers the document's size in bytes.
    pub(crate) async fn read_analysis(
        &self,
        location: &S3Uri,
    ) -> Result<(Analysis, usize), ResultRead> {
        let bytes = match self
            .objects
            .get(location, self.settings.max_result_bytes)
            .await
        {
            Ok(bytes) => bytes,
            Err(error @ ObjectError::TooLarge { .. }) => {
                return Err(ResultRead::Unusable(Failure {
                    code: "result_too_large",
                    reason: error.to_string(),
                    location: Some(location.clone()),
                }));
            }
            Err(error) => return Err(ResultRead::Unavailable(error)),
        };
        let size = bytes.len();
        let analysis = analyse(&bytes, &self.settings.merge).map_err(|error| {
            tracing::error!(result = %location, error = %error, "the result document is unusable");
            ResultRead::Unusable(Failure {
                code: "malformed_result",
                reason: format!("{location}: {error}"),
                location: Some(location.clone()),
            })
        })?;
        Ok((analysis, size))
    }

    /// Records an analysis as the job's outcome: tag items (replacing the job's earlier
    /// ones), the detection notification, then the job COMPLETED. `Ok(None)`: the job
    /// changed under us.
    pub(crate) async fn record_completion(
        &self,
        job: JobRecord,
        inference_id: InferenceId,
        location: S3Uri,
        analysis: Analysis,
        deadline: Option<Instant>,
    ) -> Result<Option<NotificationOutcome>, RecordError> {
        let detections = analysis.detections;
        let completed_at = now();
        let written = self
            .store
            .replace_tags(
                &AnalysisTags {
                    file: &job.file,
                    inference_id: &inference_id,
                    completed_at: &completed_at,
                    detections: &detections,
                },
                &job.tag_items,
                deadline,
            )
            .await
            .map_err(StoreFailure::at("writing the tag items"))?;

        let length_sec = analysis.length_sec;
        let message = detection_message(
            &Outcome {
                file: &job.file,
                status: JobStatus::Completed.as_str(),
                inference_id: inference_id.as_str(),
                length_sec,
                reason_code: None,
                reason: None,
                detections: &detections,
            },
            self.settings.query_url.as_deref(),
        );
        let expected = job.revision;
        let completed = JobRecord {
            status: JobStatus::Completed,
            revision: job.revision + 1,
            notified: true,
            completed_at: Some(completed_at.clone()),
            updated_at: completed_at,
            length_sec,
            tags: detections.iter().map(TagSummary::from).collect(),
            tag_items: written.stored.clone(),
            reason: None,
            reason_code: None,
            output_location: Some(location),
            ..job
        };
        if self
            .publish_then_settle(&message, &completed, expected)
            .await?
        {
            return Ok(Some(NotificationOutcome::Completed {
                file: completed.file.to_string(),
                inference_id: inference_id.to_string(),
                tags: detections.len(),
                // The slot's transaction, the read and the settling write.
                dynamodb_requests: written.stats.requests + 3,
            }));
        }
        // Our items carry our inference id in their keys; if the job moved on to a newer
        // upload they are garbage, otherwise the next attempt rewrites them identically.
        self.remove_if_superseded(&completed, &written.stored, deadline)
            .await?;
        Ok(None)
    }

    /// Publishes the outcome's detection notification, then settles the job if the table
    /// still holds the revision read. In this order a crash in between republishes on the
    /// retry instead of never publishing, and a job is never marked notified before it was.
    /// `Ok(false)`: the job changed under us; decide again.
    async fn publish_then_settle(
        &self,
        message: &Message,
        settled: &JobRecord,
        expected: u64,
    ) -> Result<bool, RecordError> {
        self.detections
            .publish(message)
            .await
            .map_err(RecordError::Publish)?;
        match self
            .store
            .put_job(settled, Expect::Revision(expected))
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(error) => Err(StoreFailure::at("settling the job")(error).into()),
        }
    }

    async fn remove_if_superseded(
        &self,
        ours: &JobRecord,
        items: &StoredTags,
        deadline: Option<Instant>,
    ) -> Result<(), RecordError> {
        let current = self
            .store
            .get_job(&ours.file)
            .await
            .map_err(StoreFailure::at("reading the job"))?;
        let still_ours = current
            .as_ref()
            .is_some_and(|c| c.inference_id == ours.inference_id);
        if still_ours {
            return Ok(());
        }
        self.store
            .delete_tags(&ours.file, items, deadline)
            .await
            .map_err(StoreFailure::at("deleting a superseded analysis' tags"))?;
        Ok(())
    }

    /// Records a failed inference (or an unusable result). `Ok(None)`: the job changed under us.
    async fn apply_failure(
        &self,
        job: JobRecord,
        inference_id: InferenceId,
        failure: Failure,
    ) -> Result<Option<NotificationOutcome>, RecordError> {
        let message = detection_message(
            &Outcome::failed(
                &job.file,
                inference_id.as_str(),
                failure.code,
                &failure.reason,
            ),
            self.settings.query_url.as_deref(),
        );
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
        let settled = self
            .publish_then_settle(&message, &failed, expected)
            .await?;
        if settled {
            emit(&[("Reason", failure.code)], &[Metric::count("FilesFailed")]);
        }
        Ok(settled.then(|| NotificationOutcome::Failed {
            file: failed.file.to_string(),
            inference_id: inference_id.to_string(),
            reason_code: failure.code.to_string(),
        }))
    }
}

/// Writes one EMF line now.
fn emit(dimensions: &[(&str, &str)], metrics: &[Metric<'_>]) {
    cochl_aws::metrics::emit(&cochl_aws::metrics::line(
        dimensions,
        metrics,
        cochl_aws::clock::now_millis(),
    ));
}

/// The metrics of a completed analysis: `FilesCompleted`, `UploadToResultLatency` (from the
/// upload's event time, or the object's Last-Modified for a backfill, to now), `ResultBytes`,
/// and one `Detections` per tag heard, by `Tag` (capped, see `metrics::tag_dimension`).
fn completion_metrics(uploaded_ms: i64, result_bytes: usize, tags: &[String]) {
    let latency = (cochl_aws::clock::now_millis() - uploaded_ms).max(0) as f64;
    emit(
        &[],
        &[
            Metric::count("FilesCompleted"),
            Metric {
                name: "UploadToResultLatency",
                value: latency,
                unit: Unit::Milliseconds,
            },
            Metric {
                name: "ResultBytes",
                value: result_bytes as f64,
                unit: Unit::Bytes,
            },
        ],
    );
    for tag in tags {
        emit(
            &[("Tag", &cochl_aws::metrics::tag_dimension(tag))],
            &[Metric::count("Detections")],
        );
    }
}

/// The status the sweeper gives a job whose request left no trace in S3 (no result, no
/// failure object) long after it could have finished: treated as an expiry.
pub const NO_OUTCOME_STATUS: &str = "NoOutcome";

/// The reason code a failure is recorded with, and whether the expiry policy resubmits it.
fn failure_code(status: &str, reason: &str) -> (&'static str, bool) {
    if status == NO_OUTCOME_STATUS {
        ("no_outcome", true)
    } else if failure_is_expiry(reason) {
        ("request_expired", true)
    } else {
        ("inference_failed", false)
    }
}

/// A failure to record: an inference failure, or a result that cannot be used.
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) reason: String,
    pub(crate) location: Option<S3Uri>,
}

/// Why a result document gave no analysis.
pub(crate) enum ResultRead {
    /// It never will (too large, malformed): a failure to record.
    Unusable(Failure),
    /// Not now (not yet visible, or S3 unreachable): try again later.
    Unavailable(ObjectError),
}

//! Every branch of the on-result flow, through the in-memory doubles of its ports: applying a
//! result (tags replaced, notification published before the job settles), failures that are
//! outcomes (inference failed, no output location, result too large or malformed), duplicates,
//! superseded analyses, orphans, conflicting writers, and the failures that must leave a
//! notification retryable. The moto suites prove the same flows on the wire.

use aws_lambda_events::sqs::SqsEvent;
use cochl_aws::batch::{BatchError, RecordFailure};
use cochl_aws::dynamo::SlotGrant;
use cochl_aws::notify::Attribute;
use cochl_aws::ports::{AnalysisTags, JobStore};
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_core::detections::TagDetection;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use cochl_on_result::handler::MAX_CONFLICTS;
use cochl_on_result::{
    handle, handle_queue, NotificationOutcome, RecordError, ResultError, ResultHandler,
};
use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use testkit::doubles::{
    MemoryObjects, MemoryQueue, MemoryStore, ObjectOp, RecordingTopic, StoreOp,
};

type Doubles = ResultHandler<MemoryStore, MemoryObjects, RecordingTopic, MemoryQueue>;

const INFERENCE: &str = "cochl-00000000000000000000000000000000000000a1";
const FILE: &str = "s3://audio/incoming/street 12s.wav";
const OUTPUT: &str = "s3://audio/results/5f0c6d1e.out";

/// Siren in windows [0,2) and [1,3), Dog_bark in [2,4): by Cochl's rule Siren is one event
/// from 0 to 3 s (max 0.9, mean 0.85, 3 s covered), Dog_bark one from 2 to 4 s.
const RESULT: &str = r#"{"metadata": {"content_type": "audio/wav", "length_sec": 4.5, "size_byte": 1000, "name": "sagemaker_input"},
 "data": [
   {"tags": [{"name": "Siren", "probability": 0.9}], "start_time": 0, "end_time": 2},
   {"tags": [{"name": "Siren", "probability": 0.8}, {"name": "Others", "probability": 0.0}], "start_time": 1, "end_time": 3},
   {"tags": [{"name": "Dog_bark", "probability": 0.7}], "start_time": 2, "end_time": 4}]}"#;

fn handler() -> Doubles {
    ResultHandler {
        objects: MemoryObjects::new(),
        store: MemoryStore::new(),
        detections: RecordingTopic::new(),
        submit_queue: MemoryQueue::new(),
        settings: testkit::settings::result_settings(),
    }
}

fn uri(text: &str) -> S3Uri {
    S3Uri::parse(text).expect("valid uri")
}

fn id(text: &str) -> InferenceId {
    InferenceId::parse(text).expect("valid inference id")
}

/// The job submit leaves behind: SUBMITTED, accepted, with the endpoint's output location.
fn submitted_job(inference: &str) -> JobRecord {
    JobRecord {
        file: uri(FILE),
        status: JobStatus::Submitted,
        version: ObjectVersion {
            version_id: None,
            etag: Some("etag-1".into()),
            sequencer: None,
            event_time_ms: 1_764_000_000_000,
        },
        revision: 1,
        inference_id: Some(id(inference)),
        accepted: true,
        claimed_until: None,
        expiry_resubmits: 0,
        notified: false,
        content_type: Some("audio/wav".into()),
        size_bytes: Some(1000),
        custom_attributes: None,
        output_location: Some(uri(OUTPUT)),
        failure_location: Some(uri("s3://audio/failures/5f0c6d1e")),
        reason_code: None,
        reason: None,
        submitted_at: "2026-11-25T10:15:30.000Z".into(),
        completed_at: None,
        updated_at: "2026-11-25T10:15:30.000Z".into(),
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: None,
    }
}

/// A handler whose table waits for [`INFERENCE`] and whose bucket holds [`RESULT`].
fn waiting() -> Doubles {
    let handler = handler();
    handler.store.insert_job(submitted_job(INFERENCE));
    handler
        .objects
        .put(&uri(OUTPUT), RESULT.as_bytes(), Some("application/json"));
    handler
}

fn sns(message: &Value) -> Value {
    json!({"EventSource": "aws:sns", "EventVersion": "1.0",
           "Sns": {"Type": "Notification", "MessageId": "m-1", "Subject": null,
                   "Message": message.to_string(), "MessageAttributes": {}}})
}

fn event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn success(inference: &str, output: Option<&str>) -> Value {
    let mut message = json!({
        "awsRegion": "us-east-1", "eventTime": "2026-11-25T10:16:02.608Z",
        "invocationStatus": "Completed",
        "requestParameters": {"contentType": "audio/wav", "endpointName": "cochl-sense",
                              "inputLocation": FILE},
        "inferenceId": inference, "eventVersion": "1.0",
        "eventSource": "aws:sagemaker", "eventName": "InferenceResult"
    });
    if let Some(output) = output {
        message["responseParameters"] =
            json!({"contentType": "application/json", "outputLocation": output});
    }
    event(vec![sns(&message)])
}

fn failure(inference: &str) -> Value {
    event(vec![sns(&json!({
        "awsRegion": "us-east-1", "eventTime": "2026-11-25T10:16:02.608Z",
        "invocationStatus": "Failed",
        "failureReason": "ClientError: Received server error (500) from model.",
        "requestParameters": {"endpointName": "cochl-sense", "inputLocation": FILE},
        "failureLocation": "s3://audio/failures/5f0c6d1e-error.out",
        "inferenceId": inference
    }))])
}

fn job(handler: &Doubles) -> JobRecord {
    handler.store.job(&uri(FILE)).expect("the job")
}

fn records_error(error: ResultError) -> BatchError<NotificationOutcome, RecordError> {
    match error {
        ResultError::Records(batch) => batch,
        other => panic!("a per-record failure was expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_success_records_tags_publishes_and_then_completes_the_job() {
    let handler = waiting();
    let outcomes = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Completed {
            file: FILE.into(),
            inference_id: INFERENCE.into(),
            tags: 2,
            // The slot's release, one batch for the tag items, the read and the settling write.
            dynamodb_requests: 4,
        }]
    );
    let job = job(&handler);
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.notified);
    assert_eq!(job.revision, 2);
    assert_eq!(job.length_sec, Some(4.5));
    let summary: Vec<(&str, f64, f64, u32)> = job
        .tags
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.max_probability,
                t.detected_seconds,
                t.windows,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("Dog_bark", 0.7, 2.0, 1), ("Siren", 0.9, 3.0, 2)]
    );
    assert_eq!(
        handler.store.tag_names(&uri(FILE)),
        vec!["Dog_bark", "Siren"]
    );
    assert_eq!(job.tag_items.names().len(), 2);

    let messages = handler.detections.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].attributes.contains(&(
        "tags".into(),
        Attribute::StringArray(vec!["Dog_bark".into(), "Siren".into()])
    )));
    let body: Value = serde_json::from_str(&messages[0].body).expect("json");
    assert_eq!(body["status"], "COMPLETED");
    assert_eq!(body["inference_id"], INFERENCE);
    let siren = &body["tags"][1];
    assert_eq!(siren["name"], "Siren");
    assert_eq!(siren["segments"][0]["start"], 0.0);
    assert_eq!(siren["segments"][0]["end"], 3.0);
    assert_eq!(siren["segments"][0]["mean_probability"], 0.85);
}

#[tokio::test]
async fn the_job_settles_only_after_the_notification_is_published() {
    let handler = waiting();
    handler.detections.fail_next(1);
    let error = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect_err("publish failed");
    let batch = records_error(error);
    assert!(matches!(batch.failures[..], [(0, RecordError::Publish(_))]));
    assert_eq!(batch.error_type(), "Retryable.PublishFailed");
    let unsettled = job(&handler);
    assert_eq!(unsettled.status, JobStatus::Submitted);
    assert!(!unsettled.notified);

    handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("retry");
    assert_eq!(job(&handler).status, JobStatus::Completed);
    assert_eq!(handler.detections.messages().len(), 1);
    assert_eq!(handler.detections.attempts(), 2);
}

#[tokio::test]
async fn a_repeated_notification_is_a_duplicate() {
    let handler = waiting();
    let payload = success(INFERENCE, Some(OUTPUT));
    handle(&handler, &payload, None).await.expect("first");
    let settled = job(&handler);
    let outcomes = handle(&handler, &payload, None).await.expect("second");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Duplicate { file: FILE.into() }]
    );
    assert_eq!(job(&handler), settled);
    assert_eq!(handler.detections.messages().len(), 1);
}

#[tokio::test]
async fn an_outcome_for_a_replaced_upload_is_ignored() {
    let handler = waiting();
    let older = "cochl-00000000000000000000000000000000000000a0";
    let outcomes = handle(&handler, &success(older, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Superseded {
            file: FILE.into(),
            inference_id: older.into(),
        }]
    );
    assert_eq!(job(&handler), submitted_job(INFERENCE));
    assert!(handler.detections.messages().is_empty());
    assert_eq!(handler.store.calls(StoreOp::ReplaceTags), 0);
}

#[tokio::test]
async fn a_notification_no_job_knows_is_kept_once_as_an_orphan() {
    let handler = handler();
    let payload = success(INFERENCE, Some(OUTPUT));
    for _ in 0..2 {
        let outcomes = handle(&handler, &payload, None).await.expect("handled");
        assert_eq!(
            outcomes,
            vec![NotificationOutcome::Orphan {
                inference_id: INFERENCE.into()
            }]
        );
    }
    let orphans = handler.store.orphans();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].status, "Completed");
    assert_eq!(orphans[0].input_location, Some(uri(FILE)));
    assert!(orphans[0].message.contains(INFERENCE));

    // Without an input location there is no job to look for: an orphan too.
    let nameless = event(vec![sns(&json!({
        "invocationStatus": "Failed", "failureReason": "x", "inferenceId": "other-1"
    }))]);
    let outcomes = handle(&handler, &nameless, None).await.expect("handled");
    assert!(matches!(
        &outcomes[..],
        [NotificationOutcome::Orphan { .. }]
    ));
    assert_eq!(handler.store.orphans().len(), 2);
    assert_eq!(
        handler.store.calls(StoreOp::GetJob),
        2,
        "none for the nameless one"
    );
}

#[tokio::test]
async fn a_failed_inference_is_recorded_and_notified() {
    let handler = waiting();
    let outcomes = handle(&handler, &failure(INFERENCE), None)
        .await
        .expect("a failure is an outcome");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Failed {
            file: FILE.into(),
            inference_id: INFERENCE.into(),
            reason_code: "inference_failed".into(),
        }]
    );
    let job = job(&handler);
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.notified);
    assert_eq!(job.reason_code.as_deref(), Some("inference_failed"));
    assert_eq!(
        job.reason.as_deref(),
        Some("ClientError: Received server error (500) from model.")
    );
    assert_eq!(
        job.failure_location,
        Some(uri("s3://audio/failures/5f0c6d1e-error.out")),
        "the notification's location wins over the one stored at submission"
    );
    let bodies = handler.detections.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["status"], "FAILED");
    assert_eq!(bodies[0]["reason_code"], "inference_failed");
    assert_eq!(handler.objects.calls(ObjectOp::Get), 0);
}

/// Runs a success notification that must end the job FAILED with `code`.
async fn assert_fails_with(handler: &Doubles, payload: &Value, code: &str) {
    let outcomes = handle(handler, payload, None)
        .await
        .expect("an unusable result is an outcome");
    assert!(
        matches!(&outcomes[..], [NotificationOutcome::Failed { reason_code, .. }] if reason_code == code),
        "{outcomes:?}"
    );
    let job = job(handler);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.reason_code.as_deref(), Some(code));
    assert!(job.reason.as_deref().is_some_and(|r| !r.is_empty()));
    assert!(job.notified);
    let bodies = handler.detections.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["reason_code"], code);
    assert!(handler.store.tag_names(&uri(FILE)).is_empty());
}

#[tokio::test]
async fn a_success_without_any_output_location_fails_the_job() {
    let handler = handler();
    handler.store.insert_job(JobRecord {
        output_location: None,
        ..submitted_job(INFERENCE)
    });
    assert_fails_with(&handler, &success(INFERENCE, None), "no_output_location").await;
}

#[tokio::test]
async fn the_stored_output_location_is_read_when_the_message_has_none() {
    let handler = waiting();
    let outcomes = handle(&handler, &success(INFERENCE, None), None)
        .await
        .expect("handled");
    assert!(matches!(
        &outcomes[..],
        [NotificationOutcome::Completed { .. }]
    ));
}

#[tokio::test]
async fn a_result_over_the_limit_fails_the_job() {
    let mut handler = waiting();
    handler.settings.max_result_bytes = RESULT.len() as u64 - 1;
    assert_fails_with(
        &handler,
        &success(INFERENCE, Some(OUTPUT)),
        "result_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_result_fails_the_job() {
    let handler = waiting();
    handler
        .objects
        .put(&uri(OUTPUT), b"{\"data\": [", Some("application/json"));
    assert_fails_with(
        &handler,
        &success(INFERENCE, Some(OUTPUT)),
        "malformed_result",
    )
    .await;
}

#[tokio::test]
async fn a_result_not_yet_readable_is_retried_and_changes_nothing() {
    let handler = waiting();
    handler.objects.remove(&uri(OUTPUT));
    let batch = records_error(
        handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
            .await
            .expect_err("missing"),
    );
    assert_eq!(batch.error_type(), "Retryable.ResultUnavailable");
    assert_eq!(job(&handler), submitted_job(INFERENCE));
    assert!(handler.detections.messages().is_empty());
}

#[tokio::test]
async fn an_older_analysis_items_are_replaced_by_the_new_ones() {
    let handler = waiting();
    let older = id("cochl-00000000000000000000000000000000000000a0");
    let written = handler
        .store
        .replace_tags(
            &AnalysisTags {
                file: &uri(FILE),
                inference_id: &older,
                completed_at: "2026-11-24T00:00:00.000Z",
                detections: &[tag("Siren"), tag("Laughter")],
            },
            &StoredTags::default(),
            None,
        )
        .await
        .expect("older items");
    handler.store.insert_job(JobRecord {
        tag_items: written.stored,
        ..submitted_job(INFERENCE)
    });
    handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    let items = handler.store.tag_items(&uri(FILE));
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|(_, owner)| owner.as_str() == INFERENCE));
    assert_eq!(
        handler.store.tag_names(&uri(FILE)),
        vec!["Dog_bark", "Siren"]
    );
}

fn tag(name: &str) -> TagDetection {
    TagDetection {
        name: name.into(),
        max_probability: 0.5,
        detected_seconds: 2.0,
        windows: 1,
        segments: Vec::new(),
    }
}

#[tokio::test]
async fn items_written_for_an_analysis_superseded_meanwhile_are_removed() {
    let handler = waiting();
    // A newer upload takes the job over just before this analysis settles.
    let newer = submitted_job("cochl-00000000000000000000000000000000000000b2");
    handler.store.before_put(1, move |state| {
        let current = state.jobs.get(&newer.file).map_or(0, |j| j.revision);
        state.jobs.insert(
            newer.file.clone(),
            JobRecord {
                revision: current + 1,
                accepted: false,
                expiry_resubmits: 0,
                ..newer
            },
        );
    });
    let outcomes = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Superseded {
            file: FILE.into(),
            inference_id: INFERENCE.into(),
        }]
    );
    assert!(
        handler.store.tag_items(&uri(FILE)).is_empty(),
        "no tag item of the superseded analysis is left"
    );
    assert_eq!(handler.store.calls(StoreOp::DeleteTags), 1);
    assert_eq!(job(&handler).status, JobStatus::Submitted);
}

#[tokio::test]
async fn a_refused_settle_of_our_own_job_is_decided_again() {
    let handler = waiting();
    handler.store.conflict_next_puts(1);
    let outcomes = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert!(matches!(
        &outcomes[..],
        [NotificationOutcome::Completed { .. }]
    ));
    assert_eq!(job(&handler).status, JobStatus::Completed);
    assert_eq!(
        handler.store.calls(StoreOp::DeleteTags),
        0,
        "still ours: kept"
    );
    assert_eq!(
        handler.store.tag_names(&uri(FILE)),
        vec!["Dog_bark", "Siren"],
        "rewritten identically, never duplicated"
    );
}

#[tokio::test]
async fn a_job_that_keeps_changing_gives_up_retryably() {
    let handler = waiting();
    handler.store.conflict_next_puts(MAX_CONFLICTS);
    let batch = records_error(
        handle(&handler, &failure(INFERENCE), None)
            .await
            .expect_err("contended"),
    );
    assert!(matches!(
        batch.failures[..],
        [(0, RecordError::Contended { attempts })] if attempts == MAX_CONFLICTS
    ));
    assert!(batch.is_retryable());
    assert_eq!(job(&handler), submitted_job(INFERENCE));
}

#[tokio::test]
async fn a_malformed_record_fails_alone_and_permanently() {
    let handler = waiting();
    let good = success(INFERENCE, Some(OUTPUT))["Records"][0].clone();
    let payload = event(vec![
        json!({"EventSource": "aws:sns", "Sns": {"MessageId": "m-0", "Message": "{\"hello\": 1}"}}),
        good,
    ]);
    let error = handle(&handler, &payload, None)
        .await
        .expect_err("bad record");
    assert_eq!(
        Diagnostic::from(error).error_type,
        "Permanent.MalformedRecord"
    );
    assert_eq!(
        job(&handler).status,
        JobStatus::Completed,
        "the good one ran"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_an_sns_event_fails_permanently() {
    let error = handle(&handler(), &json!({"Message": "x"}), None)
        .await
        .expect_err("not an event");
    assert_eq!(error.error_type(), "Permanent.NotAnSnsEvent");
}

#[tokio::test]
async fn an_unreachable_table_fails_the_record_retryably() {
    let handler = waiting();
    handler.store.fail_next(StoreOp::GetJob, 1);
    let batch = records_error(
        handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
            .await
            .expect_err("table"),
    );
    assert_eq!(batch.failures[0].1.class(), "StoreUnavailable");
    assert!(batch.is_retryable());

    handler.store.fail_next(StoreOp::ReplaceTags, 1);
    let batch = records_error(
        handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
            .await
            .expect_err("batch write"),
    );
    assert_eq!(batch.error_type(), "Retryable.StoreUnavailable");
    assert!(
        handler.detections.messages().is_empty(),
        "nothing published"
    );
    assert_eq!(job(&handler), submitted_job(INFERENCE));
}

/// A SageMaker failure notification with `reason`, as one SNS record.
fn failure_because(inference: &str, reason: &str) -> Value {
    event(vec![sns(&json!({
        "awsRegion": "us-east-1", "eventTime": "2026-11-25T10:16:02.608Z",
        "invocationStatus": "Failed",
        "failureReason": reason,
        "requestParameters": {"endpointName": "cochl-sense", "inputLocation": FILE},
        "inferenceId": inference
    }))])
}

const EXPIRED: &str =
    "ClientError: Request expired: it waited in the queue longer than its RequestTTLSeconds (60 s).";

/// Takes an in-flight slot for `inference` in the handler's table, as submit did.
async fn hold_slot(handler: &Doubles, inference: &str) {
    let grant = handler
        .store
        .acquire_slot(&id(inference), 10, i64::MAX)
        .await
        .expect("slot");
    assert_eq!(grant, SlotGrant::Acquired);
}

#[tokio::test]
async fn every_notification_gives_back_its_inference_slot_once() {
    let handler = waiting();
    hold_slot(&handler, INFERENCE).await;
    handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert!(handler.store.slots().is_empty(), "the slot was given back");
    // A duplicate finds no slot and changes nothing.
    handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("duplicate");
    assert!(handler.store.slots().is_empty());
    // Even a notification no job knows frees its inference's slot: the endpoint is done.
    hold_slot(&handler, "cochl-stranger").await;
    handle(&handler, &failure("cochl-stranger"), None)
        .await
        .expect("orphan");
    assert!(handler.store.slots().is_empty());
}

#[tokio::test]
async fn a_slot_that_cannot_be_given_back_fails_the_notification_for_a_retry() {
    let handler = waiting();
    hold_slot(&handler, INFERENCE).await;
    handler.store.fail_next(StoreOp::ReleaseSlot, 1);
    let error = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect_err("the release failed");
    assert!(records_error(error).is_retryable());
    assert_eq!(
        job(&handler).status,
        JobStatus::Submitted,
        "nothing settled yet"
    );
    handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("the retry");
    assert!(handler.store.slots().is_empty());
    assert_eq!(job(&handler).status, JobStatus::Completed);
}

#[tokio::test]
async fn an_expired_request_is_resubmitted_through_the_submit_queue_without_a_notification() {
    let handler = waiting();
    hold_slot(&handler, INFERENCE).await;
    let outcomes = handle(&handler, &failure_because(INFERENCE, EXPIRED), None)
        .await
        .expect("handled");
    assert_eq!(
        outcomes,
        vec![NotificationOutcome::Resubmitted {
            file: FILE.into(),
            inference_id: INFERENCE.into(),
            attempt: 1,
        }]
    );
    let sent = handler.submit_queue.sent();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_str(&sent[0].body).expect("json");
    assert_eq!(
        body,
        json!({"cochlResubmit": {"file": FILE, "expiredInferenceId": INFERENCE}})
    );
    assert!(
        handler.detections.messages().is_empty(),
        "no notification yet"
    );
    assert!(
        handler.store.slots().is_empty(),
        "the expired request's slot is free"
    );
    let job = job(&handler);
    assert_eq!(job.status, JobStatus::Submitted, "submit moves the job on");
    assert_eq!(job.revision, 1, "on-result did not write the job");
}

#[tokio::test]
async fn an_unsent_resubmission_fails_the_notification_for_a_retry() {
    let handler = waiting();
    handler.submit_queue.fail_next(1);
    let error = handle(&handler, &failure_because(INFERENCE, EXPIRED), None)
        .await
        .expect_err("the queue was down");
    let batch = records_error(error);
    assert!(batch.is_retryable());
    assert_eq!(batch.failures[0].1.class(), "ResubmitFailed");
    handle(&handler, &failure_because(INFERENCE, EXPIRED), None)
        .await
        .expect("the retry");
    assert_eq!(handler.submit_queue.sent().len(), 1);
}

#[tokio::test]
async fn past_the_last_resubmission_an_expiry_fails_the_job_once() {
    let handler = handler();
    let last = format!("{INFERENCE}-r2");
    handler.store.insert_job(JobRecord {
        inference_id: Some(id(&last)),
        expiry_resubmits: 2,
        ..submitted_job(INFERENCE)
    });
    let outcomes = handle(&handler, &failure_because(&last, EXPIRED), None)
        .await
        .expect("handled");
    assert!(
        matches!(&outcomes[..], [NotificationOutcome::Failed { reason_code, .. }] if reason_code == "request_expired"),
        "{outcomes:?}"
    );
    assert!(handler.submit_queue.sent().is_empty());
    let job = job(&handler);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.reason_code.as_deref(), Some("request_expired"));
    let bodies = handler.detections.bodies();
    assert_eq!(bodies.len(), 1, "one notification, for the final outcome");
    assert_eq!(bodies[0]["status"], "FAILED");
}

#[tokio::test]
async fn other_failures_are_never_resubmitted() {
    let handler = waiting();
    handle(
        &handler,
        &failure_because(
            INFERENCE,
            "ClientError: Received server error (500) from model.",
        ),
        None,
    )
    .await
    .expect("handled");
    assert!(handler.submit_queue.sent().is_empty());
    assert_eq!(
        job(&handler).reason_code.as_deref(),
        Some("inference_failed")
    );
}

/// An SQS batch of the results queue holding these bodies, with message ids `m-0`, `m-1`...
fn queued(bodies: &[String]) -> SqsEvent {
    let records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({"messageId": format!("m-{i}"), "receiptHandle": format!("r-{i}"),
                   "body": body, "attributes": {"ApproximateReceiveCount": "1"},
                   "messageAttributes": {}, "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:results",
                   "awsRegion": "us-east-1"})
        })
        .collect::<Vec<_>>();
    serde_json::from_value(json!({ "Records": records })).expect("an SqsEvent")
}

#[tokio::test]
async fn a_queued_batch_reports_only_the_message_that_failed() {
    let handler = waiting();
    let envelope = success(INFERENCE, Some(OUTPUT))["Records"][0]["Sns"].to_string();
    // A raw notification (no envelope) for a file no job knows: recorded as an orphan.
    let raw = json!({
        "invocationStatus": "Failed", "failureReason": "boom",
        "requestParameters": {"endpointName": "cochl-sense",
                              "inputLocation": "s3://audio/incoming/unknown.wav"},
        "inferenceId": "cochl-other"
    })
    .to_string();
    let batch = queued(&["not a notification".to_string(), envelope, raw]);
    let response = handle_queue(&handler, &batch, None).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m-0"],
        "only the malformed message returns to the queue"
    );
    assert_eq!(
        job(&handler).status,
        JobStatus::Completed,
        "the envelope was handled"
    );
    assert_eq!(
        handler.store.orphans().len(),
        1,
        "the raw notification was handled"
    );
}

#[tokio::test]
async fn the_sample_queue_event_is_handled_as_the_lambda_gets_it() {
    // events/sqs-results.json: the SNS envelopes of events/sns-success.json and
    // sns-failure.json as the results queue delivers them. No job knows their inferences:
    // both are recorded as orphans (one per inference id), and both messages are handled.
    let sample = testkit::samples::event("sqs-results.json");
    let inferences: std::collections::BTreeSet<String> = sample["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            let envelope: Value =
                serde_json::from_str(record["body"].as_str().expect("body")).expect("json");
            let message: Value =
                serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("json");
            message["inferenceId"].as_str().expect("id").to_string()
        })
        .collect();
    let batch: SqsEvent = serde_json::from_value(sample).expect("an SqsEvent");
    let handler = handler();
    let response = handle_queue(&handler, &batch, None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(handler.store.orphans().len(), inferences.len());
}

/// A success notification whose `inputLocation` is `location` (or absent).
fn success_at(inference: &str, location: Option<&str>) -> Value {
    let mut message = json!({
        "awsRegion": "us-east-1", "eventTime": "2026-11-25T10:16:02.608Z",
        "invocationStatus": "Completed",
        "requestParameters": {"contentType": "audio/wav", "endpointName": "cochl-sense"},
        "responseParameters": {"contentType": "application/json", "outputLocation": OUTPUT},
        "inferenceId": inference, "eventVersion": "1.0",
        "eventSource": "aws:sagemaker", "eventName": "InferenceResult"
    });
    if let Some(location) = location {
        message["requestParameters"]["inputLocation"] = json!(location);
    }
    event(vec![sns(&message)])
}

/// The job as a settled record, without what differs between two runs (the times).
fn settled(job: JobRecord) -> JobRecord {
    JobRecord {
        completed_at: None,
        updated_at: String::new(),
        ..job
    }
}

#[tokio::test]
async fn a_notification_whose_location_does_not_name_its_job_settles_it_by_inference_id() {
    // The normal path, for comparison.
    let normal = waiting();
    handle(&normal, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    let expected = settled(job(&normal));
    assert_eq!(expected.status, JobStatus::Completed);

    // The same notification as SageMaker might echo it: the key percent-encoded, in another
    // Unicode normalisation, a staged copy's key, or no location at all.
    for location in [
        Some("s3://audio/incoming/street%2012s.wav"),
        Some("s3://audio/incoming/street\u{a0}12s.wav"),
        Some("s3://audio/staging/cochl-00000000000000000000000000000000000000a1"),
        None,
    ] {
        let handler = waiting();
        let outcomes = handle(&handler, &success_at(INFERENCE, location), None)
            .await
            .expect("handled");
        assert!(
            matches!(&outcomes[..], [NotificationOutcome::Completed { file, .. }] if file == FILE),
            "{location:?}: {outcomes:?}"
        );
        assert_eq!(settled(job(&handler)), expected, "{location:?}");
        assert_eq!(
            handler.store.tag_names(&uri(FILE)),
            vec!["Dog_bark", "Siren"]
        );
        assert_eq!(handler.detections.messages().len(), 1);
        assert!(handler.store.orphans().is_empty());
        // The index is asked only because the location did not name the job.
        assert_eq!(handler.store.calls(StoreOp::FileOfInference), 1);
    }
    assert_eq!(
        normal.store.calls(StoreOp::FileOfInference),
        0,
        "a location that names its job costs no index query"
    );
}

#[tokio::test]
async fn a_notification_neither_its_location_nor_the_index_knows_is_an_orphan() {
    let handler = waiting();
    let outcomes = handle(
        &handler,
        &success_at("cochl-unknown", Some("s3://audio/staging/cochl-unknown")),
        None,
    )
    .await
    .expect("handled");
    assert!(
        matches!(&outcomes[..], [NotificationOutcome::Orphan { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(job(&handler).status, JobStatus::Submitted);
}

#[tokio::test]
async fn an_analysis_of_a_deleted_upload_is_settled_as_superseded() {
    let handler = waiting();
    // The upload was deleted while its inference ran: its job is a tombstone.
    let tombstone = JobRecord {
        status: JobStatus::Deleted,
        inference_id: None,
        accepted: false,
        revision: 2,
        ..submitted_job(INFERENCE)
    };
    handler.store.insert_job(tombstone.clone());
    let outcomes = handle(&handler, &success(INFERENCE, Some(OUTPUT)), None)
        .await
        .expect("handled");
    assert!(
        matches!(&outcomes[..], [NotificationOutcome::Superseded { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(job(&handler), tombstone, "the tombstone is left as it is");
    assert!(handler.store.tag_names(&uri(FILE)).is_empty());
    assert!(handler.detections.messages().is_empty());
}

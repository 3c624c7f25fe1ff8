//! Every branch of the submit flow, through the in-memory doubles of its ports: the claim
//! and its conflict loop, duplicates, stale and newer uploads, rejections, refused requests,
//! throttling past the budget, and the failures that must leave a record retryable. These run
//! in milliseconds; `tests/end_to_end.rs` and the moto suites prove the same flows on the wire.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use cochl_aws::batch::{RecordFailure, StoreFailure};
use cochl_aws::dynamo::{SlotGrant, StoreError};
use cochl_aws::notify::Attribute;
use cochl_aws::ports::{AnalysisTags, JobStore, ObjectStore};
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings::{DeferSettings, SubmitSettings};
use cochl_core::detections::TagDetection;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::SensitivityConfig;
use cochl_submit::handler::MAX_CONFLICTS;
use cochl_submit::{
    handle, handle_queue, Reconcile, RecordError, RecordOutcome, SubmitError, Submitter,
};
use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::doubles::{
    EndpointReply, MemoryObjects, MemoryQueue, MemoryStore, ObjectOp, RecordingTopic,
    ScriptedEndpoint, StoreOp,
};

type Doubles = Submitter<MemoryStore, MemoryObjects, ScriptedEndpoint, RecordingTopic, MemoryQueue>;

const BUCKET: &str = "audio";

fn submitter() -> Doubles {
    Submitter {
        objects: MemoryObjects::new(),
        store: MemoryStore::new(),
        endpoint: ScriptedEndpoint::new(),
        detections: RecordingTopic::new(),
        queue: MemoryQueue::new(),
        reconcile: Reconcile::every(Duration::ZERO),
        settings: SubmitSettings {
            table_name: "jobs".into(),
            endpoint_name: "cochl-sense".into(),
            input_prefix: "incoming/".into(),
            default_sensitivity: SensitivityConfig::default(),
            max_object_bytes: 1 << 20,
            request_ttl_seconds: Some(3600),
            invocation_timeout_seconds: Some(900),
            max_attempts: 3,
            concurrency: 4,
            detections_topic_arn: "arn:aws:sns:us-east-1:123456789012:detections".into(),
            max_in_flight: 100,
            defer: DeferSettings {
                queue_url: "memory".into(),
                max_receive_count: 5,
                base: Duration::from_secs(10),
                max: Duration::from_secs(100),
            },
            staging_prefix: "staging/".into(),
            claim_lease: None,
        },
    }
}

fn uri(key: &str) -> S3Uri {
    S3Uri::new(BUCKET, key).expect("valid uri")
}

/// An `ObjectCreated:Put` record as S3 sends it (key URL-encoded, ETag, sequencer).
fn created(key: &str, etag: &str, sequencer: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T10:15:30.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET},
               "object": {"key": key.replace(' ', "+"), "size": 44, "eTag": etag,
                          "sequencer": sequencer}}
    })
}

fn event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// A small WAV upload under the input prefix, and the event announcing it.
fn upload(submitter: &Doubles, key: &str, sequencer: &str) -> (S3Uri, Value) {
    let file = uri(key);
    let head = submitter
        .objects
        .put(&file, b"RIFF....WAVEfmt ", Some("audio/wav"));
    let etag = head.etag.expect("etag");
    (file, event(vec![created(key, &etag, sequencer)]))
}

fn job(submitter: &Doubles, file: &S3Uri) -> JobRecord {
    submitter.store.job(file).expect("a job for the file")
}

fn records_error(error: SubmitError) -> cochl_aws::batch::BatchError<RecordOutcome, RecordError> {
    match error {
        SubmitError::Records(batch) => batch,
        other => panic!("a per-record failure was expected, got {other:?}"),
    }
}

fn inference(job: &JobRecord) -> &InferenceId {
    job.inference_id.as_ref().expect("an inference id")
}

#[tokio::test]
async fn the_test_event_is_acknowledged_without_touching_anything() {
    let submitter = submitter();
    let payload = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET});
    let outcomes = handle(&submitter, &payload, None).await.expect("handled");
    assert!(matches!(
        &outcomes[..],
        [RecordOutcome::Ignored { file: None, .. }]
    ));
    assert_eq!(submitter.store.calls(StoreOp::GetJob), 0);
    assert_eq!(submitter.objects.calls(ObjectOp::Head), 0);
}

#[tokio::test]
async fn a_payload_that_is_not_an_s3_event_fails_permanently() {
    let error = handle(&submitter(), &json!({"hello": 1}), None)
        .await
        .expect_err("not an event");
    assert!(matches!(error, SubmitError::NotAnEvent(_)));
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "Permanent.NotAnS3Event");
    assert!(diagnostic.error_message.contains("Records"));
}

#[tokio::test]
async fn a_new_upload_is_claimed_and_submitted_once() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/red flower.wav", "0055AED6DCD90281E5");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");

    let requests = submitter.endpoint.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.input, file, "the decoded key, `+` read as a space");
    assert_eq!(request.content_type, "audio/wav");
    assert_eq!(request.custom_attributes, None);
    assert_eq!(request.request_ttl_seconds, Some(3600));
    assert_eq!(request.invocation_timeout_seconds, Some(900));

    let job = job(&submitter, &file);
    assert_eq!(job.status, JobStatus::Submitted);
    assert!(job.accepted);
    assert!(!job.notified);
    assert_eq!(inference(&job), &request.inference_id);
    assert_eq!(
        job.output_location,
        Some(ScriptedEndpoint::output_location(&file, 1))
    );
    assert_eq!(job.revision, 1, "claimed at 0, then recorded as accepted");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Submitted {
            file: file.to_string(),
            inference_id: request.inference_id.to_string(),
            attempts: 1,
        }]
    );
    assert!(submitter.detections.messages().is_empty());
}

#[tokio::test]
async fn a_repeated_delivery_is_a_duplicate_and_never_resubmitted() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    handle(&submitter, &event, None).await.expect("first");
    let before = job(&submitter, &file);
    let outcomes = handle(&submitter, &event, None).await.expect("second");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Duplicate {
            file: file.to_string()
        }]
    );
    assert_eq!(submitter.endpoint.requests().len(), 1);
    assert_eq!(job(&submitter, &file), before, "a duplicate writes nothing");
}

#[tokio::test]
async fn an_older_upload_after_a_newer_one_is_stale() {
    let submitter = submitter();
    let file = uri("incoming/a.wav");
    submitter
        .objects
        .put(&file, b"newer audio", Some("audio/wav"));
    let newer = event(vec![created(
        "incoming/a.wav",
        "newer",
        "0055AED6DCD90281F0",
    )]);
    let older = event(vec![created(
        "incoming/a.wav",
        "older",
        "0055AED6DCD90281E5",
    )]);
    handle(&submitter, &newer, None).await.expect("newer");
    let outcomes = handle(&submitter, &older, None).await.expect("older");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Stale {
            file: file.to_string()
        }]
    );
    assert_eq!(submitter.endpoint.requests().len(), 1);
    assert_eq!(
        job(&submitter, &file).version.etag.as_deref(),
        Some("newer")
    );
}

#[tokio::test]
async fn a_newer_upload_supersedes_and_deletes_the_old_analysis_tags() {
    let submitter = submitter();
    let file = uri("incoming/a.wav");
    submitter.objects.put(&file, b"audio", Some("audio/wav"));
    let first = event(vec![created("incoming/a.wav", "v1", "0055AED6DCD90281E5")]);
    handle(&submitter, &first, None)
        .await
        .expect("first upload");
    // Its analysis completed with two tags.
    let old = job(&submitter, &file);
    let old_id = inference(&old).clone();
    let written = submitter
        .store
        .replace_tags(
            &AnalysisTags {
                file: &file,
                inference_id: &old_id,
                completed_at: "2026-11-25T10:16:00.000Z",
                detections: &[tag("Siren"), tag("Speech")],
            },
            &StoredTags::default(),
            None,
        )
        .await
        .expect("tags");
    submitter.store.insert_job(JobRecord {
        status: JobStatus::Completed,
        notified: true,
        tag_items: written.stored,
        ..old
    });
    assert_eq!(submitter.store.tag_names(&file), vec!["Siren", "Speech"]);

    let second = event(vec![created("incoming/a.wav", "v2", "0055AED6DCD90281F0")]);
    let outcomes = handle(&submitter, &second, None)
        .await
        .expect("second upload");
    assert!(matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]));
    let new = job(&submitter, &file);
    assert_eq!(new.status, JobStatus::Submitted);
    assert_ne!(inference(&new), &old_id, "a new upload is a new inference");
    assert!(new.tag_items.is_empty());
    assert!(new.tags.is_empty());
    assert!(
        submitter.store.tag_names(&file).is_empty(),
        "the old analysis' items are gone"
    );
    assert_eq!(submitter.endpoint.requests().len(), 2);
}

fn tag(name: &str) -> TagDetection {
    TagDetection {
        name: name.into(),
        max_probability: 0.9,
        detected_seconds: 2.0,
        windows: 1,
        segments: Vec::new(),
    }
}

#[tokio::test]
async fn rejected_uploads_are_recorded_with_their_code_and_never_sent() {
    let submitter = submitter();
    let cases = [
        (
            "incoming/empty.wav",
            Some(b"".as_slice()),
            Some("audio/wav"),
            "empty_object",
        ),
        (
            "incoming/notes.txt",
            Some(b"hello".as_slice()),
            Some("text/plain"),
            "not_audio",
        ),
        (
            "incoming/huge.wav",
            Some(&[0u8; (1 << 20) + 1][..]),
            Some("audio/wav"),
            "too_large",
        ),
        ("incoming/gone.wav", None, None, "object_missing"),
    ];
    let mut records = Vec::new();
    for (key, bytes, content_type, _) in &cases {
        if let Some(bytes) = bytes {
            submitter.objects.put(&uri(key), bytes, *content_type);
        }
        records.push(created(key, "etag", "0055AED6DCD90281E5"));
    }
    let outcomes = handle(&submitter, &event(records), None)
        .await
        .expect("rejections are outcomes, not errors");
    for ((key, _, _, code), outcome) in cases.iter().zip(&outcomes) {
        let RecordOutcome::Rejected {
            code: got, reason, ..
        } = outcome
        else {
            panic!("{key}: {outcome:?}");
        };
        assert_eq!(got, code, "{key}");
        assert!(!reason.is_empty(), "{key}");
        let job = job(&submitter, &uri(key));
        assert_eq!(job.status, JobStatus::Rejected, "{key}");
        assert_eq!(job.reason_code.as_deref(), Some(*code), "{key}");
        assert!(job.completed_at.is_some(), "{key}");
        assert_eq!(job.inference_id, None, "{key}: never sent, no inference");
    }
    assert!(submitter.endpoint.requests().is_empty());
    assert!(submitter.detections.messages().is_empty());
}

#[tokio::test]
async fn keys_outside_the_prefix_and_other_events_are_ignored() {
    let submitter = submitter();
    let mut restored = created("incoming/a.wav", "e", "0055AED6DCD90281E5");
    restored["eventName"] = json!("ObjectRestore:Completed");
    let payload = event(vec![
        created("results/x.out", "e", "0055AED6DCD90281E5"),
        removed("results/x.out", "0055AED6DCD90281F0"),
        restored,
    ]);
    let outcomes = handle(&submitter, &payload, None).await.expect("handled");
    assert!(
        matches!(
            &outcomes[..],
            [
                RecordOutcome::Ignored { file: Some(_), .. },
                RecordOutcome::Ignored { file: Some(_), .. },
                RecordOutcome::Ignored { file: None, .. }
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(submitter.store.calls(StoreOp::GetJob), 0);
    assert_eq!(submitter.objects.calls(ObjectOp::Head), 0);
}

#[tokio::test]
async fn a_malformed_record_fails_alone_and_permanently() {
    let submitter = submitter();
    let (file, good) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let bad = created("incoming/%zz.wav", "e", "0055AED6DCD90281E5");
    let payload = event(vec![bad, good["Records"][0].clone()]);
    let batch = records_error(handle(&submitter, &payload, None).await.expect_err("bad"));
    assert_eq!(batch.total, 2);
    assert!(
        matches!(
            &batch.failures[..],
            [(0, RecordError::Malformed { index: 0, .. })]
        ),
        "{batch}"
    );
    assert!(!batch.is_retryable());
    assert_eq!(batch.error_type(), "Permanent.MalformedRecord");
    assert!(matches!(
        &batch.handled[..],
        [RecordOutcome::Submitted { .. }]
    ));
    assert!(
        job(&submitter, &file).accepted,
        "the good record was handled"
    );
}

#[tokio::test]
async fn throttling_past_the_budget_is_retried_under_the_same_inference_id() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter
        .endpoint
        .reply(EndpointReply::GiveUp { attempts: 3 });
    let error = handle(&submitter, &event, None).await.expect_err("gave up");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "Retryable.EndpointUnavailable");
    let claimed = job(&submitter, &file);
    assert_eq!(claimed.status, JobStatus::Submitted);
    assert!(!claimed.accepted, "never accepted: the retry must resubmit");

    let outcomes = handle(&submitter, &event, None).await.expect("retry");
    assert!(matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]));
    let requests = submitter.endpoint.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].inference_id, requests[1].inference_id);
    assert!(job(&submitter, &file).accepted);
}

#[tokio::test]
async fn a_refused_claim_is_decided_again() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.store.conflict_next_puts(1);
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]));
    assert_eq!(submitter.store.calls(StoreOp::GetJob), 2, "read again");
    assert_eq!(submitter.store.calls(StoreOp::PutJob), 3);
    assert_eq!(submitter.endpoint.requests().len(), 1);
    assert!(job(&submitter, &file).accepted);
}

#[tokio::test]
async fn a_concurrent_delivery_that_claims_first_makes_this_one_a_duplicate() {
    let winner = submitter();
    let (file, event) = upload(&winner, "incoming/a.wav", "0055AED6DCD90281E5");
    handle(&winner, &event, None)
        .await
        .expect("the other delivery");
    let claimed = job(&winner, &file);

    let loser = submitter();
    loser
        .objects
        .put(&file, b"RIFF....WAVEfmt ", Some("audio/wav"));
    loser.store.before_put(1, move |state| {
        state.jobs.insert(claimed.file.clone(), claimed);
    });
    let outcomes = handle(&loser, &event, None).await.expect("handled");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Duplicate {
            file: file.to_string()
        }]
    );
    assert!(loser.endpoint.requests().is_empty());
}

#[tokio::test]
async fn a_job_that_keeps_changing_gives_up_retryably() {
    let submitter = submitter();
    let (_, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.store.conflict_next_puts(MAX_CONFLICTS);
    let batch = records_error(
        handle(&submitter, &event, None)
            .await
            .expect_err("contended"),
    );
    assert!(matches!(
        batch.failures[..],
        [(0, RecordError::Contended { attempts })] if attempts == MAX_CONFLICTS
    ));
    assert_eq!(batch.error_type(), "Retryable.Contended");
    assert_eq!(submitter.store.calls(StoreOp::PutJob), MAX_CONFLICTS);
    assert!(submitter.endpoint.requests().is_empty());
}

#[tokio::test]
async fn a_refused_request_is_recorded_failed_and_notified() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.endpoint.reply(EndpointReply::Refuse {
        code: "ValidationError".into(),
        message: "InputLocation is too long".into(),
    });
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    let job = job(&submitter, &file);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.reason_code.as_deref(), Some("endpoint_refused"));
    assert!(job.notified);
    assert!(job.completed_at.is_some());
    let reason = job.reason.clone().expect("reason");
    assert!(reason.contains("ValidationError"), "{reason}");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Refused {
            file: file.to_string(),
            inference_id: inference(&job).to_string(),
            reason: reason.clone(),
        }]
    );
    let messages = submitter.detections.messages();
    assert_eq!(messages.len(), 1);
    let body: Value = serde_json::from_str(&messages[0].body).expect("json");
    assert_eq!(body["status"], "FAILED");
    assert_eq!(body["reason_code"], "endpoint_refused");
    assert_eq!(body["inference_id"], inference(&job).as_str());
    assert_eq!(body["key"], "incoming/a.wav");
    assert!(messages[0]
        .attributes
        .contains(&("status".into(), Attribute::String("FAILED".into()))));
}

#[tokio::test]
async fn a_refusal_whose_notification_failed_is_notified_by_the_retry_once() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.endpoint.reply(EndpointReply::Refuse {
        code: "ValidationError".into(),
        message: "no".into(),
    });
    submitter.detections.fail_next(1);
    let batch = records_error(handle(&submitter, &event, None).await.expect_err("publish"));
    assert!(matches!(batch.failures[..], [(0, RecordError::Publish(_))]));
    assert_eq!(batch.error_type(), "Retryable.PublishFailed");
    let recorded = job(&submitter, &file);
    assert_eq!(recorded.status, JobStatus::Failed);
    assert!(!recorded.notified, "nothing was published yet");

    let outcomes = handle(&submitter, &event, None).await.expect("retry");
    assert!(matches!(&outcomes[..], [RecordOutcome::Refused { .. }]));
    assert!(job(&submitter, &file).notified);
    assert_eq!(submitter.detections.messages().len(), 1);

    let outcomes = handle(&submitter, &event, None).await.expect("duplicate");
    assert!(matches!(&outcomes[..], [RecordOutcome::Duplicate { .. }]));
    assert_eq!(submitter.detections.messages().len(), 1, "published once");
    assert_eq!(submitter.endpoint.requests().len(), 1, "never resubmitted");
}

#[tokio::test]
async fn a_notification_that_overtakes_the_acceptance_record_is_kept() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    // Between the claim and recording the acceptance, on-result settles the job.
    let settled_file = file.clone();
    submitter.store.before_put(2, move |state| {
        if let Some(job) = state.jobs.get_mut(&settled_file) {
            job.status = JobStatus::Completed;
            job.notified = true;
            job.revision += 1;
        }
    });
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]));
    let job = job(&submitter, &file);
    assert_eq!(job.status, JobStatus::Completed, "the newer state stays");
    assert!(
        !job.accepted,
        "our older bookkeeping was not written over it"
    );
}

#[tokio::test]
async fn an_acceptance_that_cannot_be_recorded_is_retried_under_the_same_id() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.store.fail_nth(StoreOp::PutJob, 2);
    let batch = records_error(handle(&submitter, &event, None).await.expect_err("store"));
    assert!(matches!(
        &batch.failures[..],
        [(
            0,
            RecordError::Store(StoreFailure {
                source: StoreError::Service { .. },
                ..
            })
        )]
    ));
    assert_eq!(batch.error_type(), "Retryable.StoreUnavailable");
    let unrecorded = job(&submitter, &file);
    assert!(!unrecorded.accepted);
    // The request may have been accepted: the claim holds until its lease runs out.
    let outcomes = handle(&submitter, &event, None).await.expect("early retry");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::InProgress { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(submitter.endpoint.requests().len(), 1);

    expire_claim(&submitter, &file);
    handle(&submitter, &event, None).await.expect("retry");
    let requests = submitter.endpoint.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].inference_id, requests[1].inference_id);
    assert!(job(&submitter, &file).accepted);
}

#[tokio::test]
async fn unreachable_services_fail_the_record_retryably_and_change_nothing() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");

    submitter.objects.fail_next(ObjectOp::Head, 1);
    let batch = records_error(handle(&submitter, &event, None).await.expect_err("s3"));
    assert_eq!(batch.failures[0].1.class(), "ObjectsUnavailable");
    assert!(batch.is_retryable());

    submitter.store.fail_next(StoreOp::GetJob, 1);
    let batch = records_error(handle(&submitter, &event, None).await.expect_err("table"));
    assert_eq!(batch.error_type(), "Retryable.StoreUnavailable");

    assert!(submitter.store.job(&file).is_none());
    assert!(submitter.endpoint.requests().is_empty());
    handle(&submitter, &event, None).await.expect("recovered");
    assert!(job(&submitter, &file).accepted);
}

#[tokio::test]
async fn a_supersede_whose_cleanup_fails_leaves_the_old_job_in_place() {
    let submitter = submitter();
    let file = uri("incoming/a.wav");
    submitter.objects.put(&file, b"audio", Some("audio/wav"));
    let first = event(vec![created("incoming/a.wav", "v1", "0055AED6DCD90281E5")]);
    handle(&submitter, &first, None).await.expect("first");
    let old = job(&submitter, &file);

    submitter.store.fail_next(StoreOp::DeleteTags, 1);
    let second = event(vec![created("incoming/a.wav", "v2", "0055AED6DCD90281F0")]);
    let batch = records_error(
        handle(&submitter, &second, None)
            .await
            .expect_err("cleanup"),
    );
    assert!(batch.is_retryable());
    assert_eq!(job(&submitter, &file), old);
    handle(&submitter, &second, None).await.expect("retry");
    assert_eq!(job(&submitter, &file).version.etag.as_deref(), Some("v2"));
}

/// A submitter whose endpoint takes at most `limit` inferences at once.
fn limited(limit: u32) -> Doubles {
    let mut submitter = submitter();
    submitter.settings.max_in_flight = limit;
    submitter
}

/// Takes a slot for another inference, as a concurrent upload would.
async fn occupy(submitter: &Doubles, inference: &str, expires_at: i64) {
    let id = InferenceId::parse(inference).expect("id");
    let grant = submitter
        .store
        .acquire_slot(&id, u32::MAX, expires_at)
        .await
        .expect("slot");
    assert_eq!(grant, SlotGrant::Acquired);
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[tokio::test]
async fn each_accepted_inference_holds_one_slot_until_its_notification() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    handle(&submitter, &event, None).await.expect("handled");
    let job = job(&submitter, &file);
    assert_eq!(submitter.store.slots(), vec![inference(&job).clone()]);
    // A duplicate delivery takes no second slot.
    handle(&submitter, &event, None).await.expect("duplicate");
    assert_eq!(submitter.store.slots().len(), 1);
}

#[tokio::test]
async fn a_full_endpoint_defers_the_upload_claimed_and_unsent() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(
        matches!(
            &outcomes[..],
            [RecordOutcome::Deferred {
                in_flight: 1,
                limit: 1,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert!(submitter.endpoint.requests().is_empty(), "nothing sent");
    let job = job(&submitter, &file);
    assert_eq!(job.status, JobStatus::Submitted);
    assert!(!job.accepted);

    // Room again: the message's return sends it, under the id it was claimed with.
    submitter
        .store
        .release_slot(&InferenceId::parse("cochl-busy").expect("id"))
        .await
        .expect("release");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]));
    assert_eq!(
        &submitter.endpoint.requests()[0].inference_id,
        inference(&job)
    );
}

#[tokio::test]
async fn a_request_the_endpoint_does_not_take_gives_its_slot_back() {
    for reply in [
        EndpointReply::Refuse {
            code: "ValidationError".into(),
            message: "no".into(),
        },
        EndpointReply::GiveUp { attempts: 3 },
    ] {
        let submitter = submitter();
        submitter.endpoint.reply(reply.clone());
        let (_, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
        let _ = handle(&submitter, &event, None).await;
        assert!(submitter.store.slots().is_empty(), "{reply:?}");
    }
}

#[tokio::test]
async fn slots_past_their_lease_are_reclaimed_when_the_endpoint_looks_full() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-lost", now_seconds() - 1).await;
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(
        submitter.store.slots(),
        vec![inference(&job(&submitter, &file)).clone()],
        "the leaked slot was given back, ours taken"
    );
}

#[tokio::test]
async fn a_slot_within_its_lease_is_never_reclaimed() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-running", now_seconds() + 3600).await;
    let (_, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Deferred { .. }]));
    assert_eq!(submitter.store.slots().len(), 1);
}

/// An SQS batch of the submit queue: (body, receive count) per message, ids `m-0`, `m-1`...
fn queued(messages: &[(Value, u32)]) -> SqsEvent {
    let records = messages
        .iter()
        .enumerate()
        .map(|(i, (body, receives))| {
            json!({"messageId": format!("m-{i}"), "receiptHandle": format!("r-{i}"),
                   "body": body.to_string(),
                   "attributes": {"ApproximateReceiveCount": receives.to_string()},
                   "messageAttributes": {}, "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:submit",
                   "awsRegion": "us-east-1"})
        })
        .collect::<Vec<_>>();
    serde_json::from_value(json!({ "Records": records })).expect("an SqsEvent")
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn a_queued_batch_reports_only_its_bad_message() {
    let submitter = submitter();
    let (file, good) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let batch = queued(&[(json!("garbage"), 1), (good, 1), (json!({"hello": 1}), 1)]);
    let response = handle_queue(&submitter, &batch, None).await;
    assert_eq!(failed_ids(&response), ["m-0", "m-2"]);
    assert!(
        job(&submitter, &file).accepted,
        "the good message was handled"
    );
}

#[tokio::test]
async fn a_deferred_message_is_hidden_with_backoff_then_requeued_before_it_could_dead_letter() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let (_, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    // max_receive_count is 5: hidden on receives 1 to 3, a fresh copy from receive 4 on.
    for receives in 1..=3u32 {
        let response = handle_queue(&submitter, &queued(&[(event.clone(), receives)]), None).await;
        assert_eq!(failed_ids(&response), ["m-0"], "it returns to the queue");
        let (receipt, delay) = submitter.queue.hidden().last().cloned().expect("hidden");
        assert_eq!(receipt, "r-0");
        // base 10 s doubling per receive, max 100 s; jitter keeps the upper half.
        let ceiling = Duration::from_secs(10 * (1 << (receives - 1)));
        assert!(
            delay >= ceiling / 2 && delay <= ceiling,
            "{delay:?} at {receives}"
        );
    }
    assert!(submitter.queue.sent().is_empty());
    let response = handle_queue(&submitter, &queued(&[(event.clone(), 4)]), None).await;
    assert!(failed_ids(&response).is_empty(), "the original is deleted");
    let sent = submitter.queue.sent();
    assert_eq!(sent.len(), 1, "a fresh copy waits instead");
    assert_eq!(
        serde_json::from_str::<Value>(&sent[0].body).expect("json"),
        event
    );
    assert_eq!(
        sent[0].attributes,
        [("cochl-deferrals".to_string(), "4".to_string())]
    );
    assert_eq!(submitter.queue.hidden().len(), 3);
    assert!(submitter.endpoint.requests().is_empty());
}

#[tokio::test]
async fn a_deferral_the_queue_refuses_returns_the_message_anyway() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let (_, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.queue.fail_next(1);
    let response = handle_queue(&submitter, &queued(&[(event, 4)]), None).await;
    assert_eq!(
        failed_ids(&response),
        ["m-0"],
        "never deleted unless its copy was sent"
    );
}

/// The job of an accepted upload, as submit leaves it, under `inference`.
async fn accepted_upload(submitter: &Doubles) -> (S3Uri, InferenceId) {
    let (file, event) = upload(submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    handle(submitter, &event, None).await.expect("handled");
    let job = job(submitter, &file);
    assert!(job.accepted);
    let id = inference(&job).clone();
    // on-result gave the expired request's slot back.
    submitter.store.release_slot(&id).await.expect("release");
    (file, id)
}

fn resubmission(file: &S3Uri, expired: &InferenceId) -> Value {
    json!({"cochlResubmit": {"file": file.to_string(), "expiredInferenceId": expired.to_string()}})
}

#[tokio::test]
async fn an_expired_request_is_sent_again_under_its_next_resubmission_id_once() {
    let submitter = submitter();
    let (file, expired) = accepted_upload(&submitter).await;
    let outcomes = handle(&submitter, &resubmission(&file, &expired), None)
        .await
        .expect("handled");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    let next = InferenceId::parse(&format!("{expired}-r1")).expect("id");
    let requests = submitter.endpoint.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].inference_id, next);
    assert_eq!(requests[1].input, file);
    let job = job(&submitter, &file);
    assert_eq!(job.inference_id.as_ref(), Some(&next));
    assert_eq!(job.expiry_resubmits, 1);
    assert!(job.accepted);
    assert_eq!(submitter.store.slots(), vec![next.clone()]);

    // A second copy of the request, or the upload's own event again, sends nothing.
    let outcomes = handle(&submitter, &resubmission(&file, &expired), None)
        .await
        .expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Duplicate { .. }]));
    assert_eq!(submitter.endpoint.requests().len(), 2);
}

#[tokio::test]
async fn a_resubmission_deferred_by_a_full_endpoint_keeps_its_id_on_every_retry() {
    let submitter = limited(1);
    let (file, expired) = accepted_upload(&submitter).await;
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let outcomes = handle(&submitter, &resubmission(&file, &expired), None)
        .await
        .expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Deferred { .. }]));
    let next = InferenceId::parse(&format!("{expired}-r1")).expect("id");
    assert_eq!(job(&submitter, &file).inference_id.as_ref(), Some(&next));

    submitter
        .store
        .release_slot(&InferenceId::parse("cochl-busy").expect("id"))
        .await
        .expect("release");
    // The upload's own S3 event redelivered meanwhile retries the same resubmission...
    let (_, event) = (file.clone(), {
        let etag = submitter
            .objects
            .head(&file, None)
            .await
            .expect("head")
            .expect("object")
            .etag;
        event(vec![created(
            "incoming/a.wav",
            &etag.expect("etag"),
            "0055AED6DCD90281E5",
        )])
    });
    handle(&submitter, &event, None).await.expect("handled");
    // ... and the deferred request's return finds it sent.
    let outcomes = handle(&submitter, &resubmission(&file, &expired), None)
        .await
        .expect("handled");
    assert!(matches!(&outcomes[..], [RecordOutcome::Duplicate { .. }]));
    let requests = submitter.endpoint.requests();
    assert_eq!(requests.len(), 2, "the original and one resubmission");
    assert_eq!(requests[1].inference_id, next);
}

#[tokio::test]
async fn the_sample_queue_event_is_handled_as_the_lambda_gets_it() {
    // events/sqs-submit.json: a batch of the submit queue holding events/s3-put.json. Its
    // object is not in the (empty) bucket: recorded REJECTED, the message handled.
    let batch: SqsEvent =
        serde_json::from_value(testkit::samples::event("sqs-submit.json")).expect("an SqsEvent");
    let submitter = submitter();
    let response = handle_queue(&submitter, &batch, None).await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    let file = S3Uri::new(
        "cochl-audio-123456789012",
        "incoming/street recordings/red flower (2) café.wav",
    )
    .expect("uri");
    let job = submitter.store.job(&file).expect("a job");
    assert_eq!(job.status, JobStatus::Rejected);
    assert_eq!(job.reason_code.as_deref(), Some("object_missing"));
}

#[tokio::test]
async fn a_deferred_upload_coming_back_to_a_full_endpoint_writes_nothing() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    handle(&submitter, &event, None).await.expect("first sight");
    let claimed = job(&submitter, &file);
    let puts = submitter.store.calls(StoreOp::PutJob);
    for _ in 0..3 {
        let outcomes = handle(&submitter, &event, None).await.expect("handled");
        assert!(matches!(&outcomes[..], [RecordOutcome::Deferred { .. }]));
    }
    assert_eq!(
        submitter.store.calls(StoreOp::PutJob),
        puts,
        "no claim rewritten"
    );
    assert_eq!(job(&submitter, &file), claimed);
    assert_eq!(
        submitter.store.slots().len(),
        1,
        "only the other inference's"
    );
}

/// Moves a job's claim into the past, as the clock would once its lease ran out.
fn expire_claim(submitter: &Doubles, file: &S3Uri) {
    let claimed = job(submitter, file);
    assert!(
        claimed.claimed_until.is_some(),
        "the job is claimed: {claimed:?}"
    );
    submitter.store.insert_job(JobRecord {
        claimed_until: Some(now_seconds() - 1),
        ..claimed
    });
}

#[tokio::test]
async fn a_claim_held_by_another_delivery_makes_this_one_wait_without_sending() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    // A first attempt claimed the upload and could not send it: it gave its claim up.
    submitter
        .endpoint
        .reply(EndpointReply::GiveUp { attempts: 3 });
    handle(&submitter, &event, None)
        .await
        .expect_err("throttled past the budget");
    let unsent = job(&submitter, &file);
    assert!(!unsent.accepted);
    assert_eq!(
        unsent.claimed_until, None,
        "a sender that gave up holds no claim"
    );
    // Another delivery has claimed it since and is sending it.
    let held_until = now_seconds() + 60;
    submitter.store.insert_job(JobRecord {
        claimed_until: Some(held_until),
        ..unsent
    });

    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::InProgress {
            file: file.to_string(),
            claimed_until: held_until,
        }]
    );
    assert!(outcomes[0].is_deferred(), "its message comes back later");
    assert_eq!(submitter.endpoint.requests().len(), 1, "nothing more sent");
    assert!(submitter.store.slots().is_empty(), "and no slot taken");

    // Once the lease ran out (its holder died), the next delivery sends it, once.
    expire_claim(&submitter, &file);
    let outcomes = handle(&submitter, &event, None).await.expect("taken over");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    let outcomes = handle(&submitter, &event, None).await.expect("again");
    assert!(matches!(&outcomes[..], [RecordOutcome::Duplicate { .. }]));
    assert_eq!(submitter.endpoint.requests().len(), 2);
    let sent = job(&submitter, &file);
    assert!(sent.accepted);
    assert_eq!(
        sent.claimed_until, None,
        "an accepted request holds no claim"
    );
}

#[tokio::test]
async fn a_claim_lasts_as_long_as_the_invocation_that_made_it_could() {
    let submitter = submitter();
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    submitter.store.fail_nth(StoreOp::PutJob, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let before = now_seconds();
    let _ = handle(&submitter, &event, Some(deadline)).await;
    let after = now_seconds();
    let until = job(&submitter, &file).claimed_until.expect("claimed");
    // The invocation's 40 s plus the 10 s margin, counted from when it claimed.
    assert!(
        (before + 49..=after + 50).contains(&until),
        "{before}..{after}: {until}"
    );
}

#[tokio::test]
async fn a_deferred_upload_gives_its_claim_up_so_its_return_need_not_wait() {
    let submitter = limited(1);
    occupy(&submitter, "cochl-busy", i64::MAX).await;
    let (file, event) = upload(&submitter, "incoming/a.wav", "0055AED6DCD90281E5");
    let outcomes = handle(&submitter, &event, None).await.expect("handled");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Deferred { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(job(&submitter, &file).claimed_until, None);
    // Room again: the message's return sends it at once.
    submitter
        .store
        .release_slot(&InferenceId::parse("cochl-busy").expect("id"))
        .await
        .expect("released");
    let outcomes = handle(&submitter, &event, None).await.expect("returned");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_key_outside_printable_ascii_is_sent_as_a_staged_copy_under_an_ascii_key() {
    let submitter = submitter();
    for key in [
        "incoming/café 東京.wav",
        "incoming/🎵.wav",
        "incoming/bell\u{7}.wav",
        "incoming/del\u{7f}.wav",
    ] {
        let file = uri(key);
        let head = submitter
            .objects
            .put(&file, b"RIFF....WAVEfmt ", Some("audio/wav"));
        let record = json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T10:15:30.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET},
                   "object": {"key": cochl_core::keys::encode_query_value(key), "size": 16,
                              "eTag": head.etag, "sequencer": "0A"}}
        });
        handle(&submitter, &event(vec![record]), None)
            .await
            .expect("handled");
        let job = job(&submitter, &file);
        assert!(job.accepted, "{key:?}");
        let request = submitter
            .endpoint
            .requests()
            .into_iter()
            .find(|r| &r.inference_id == inference(&job))
            .expect("sent");
        let staged = uri(&format!("staging/{}", inference(&job)));
        assert_eq!(request.input, staged, "{key:?}");
        assert_eq!(
            submitter.objects.bytes(&staged),
            submitter.objects.bytes(&file),
            "a copy of the upload"
        );
    }
    // A printable ASCII key is sent as it is.
    let (file, event) = upload(&submitter, "incoming/plain name (1).wav", "0B");
    handle(&submitter, &event, None).await.expect("handled");
    let sent = submitter.endpoint.requests();
    assert_eq!(sent.last().map(|r| &r.input), Some(&file));
    assert_eq!(submitter.objects.calls(ObjectOp::Copy), 4);

    // The copies' own events (a staging prefix inside the input prefix) are not uploads.
    let mut nested = self::submitter();
    nested.settings.staging_prefix = "incoming/staging/".into();
    let (copy, event) = upload(&nested, "incoming/staging/cochl-123", "0C");
    let outcomes = handle(&nested, &event, None).await.expect("handled");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Ignored { file: Some(f), .. }] if *f == copy.to_string()),
        "{outcomes:?}"
    );
    assert!(nested.endpoint.requests().is_empty());
}

/// An `ObjectRemoved:Delete` record (unversioned bucket).
fn removed(key: &str, sequencer: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T10:15:31.000Z", "eventName": "ObjectRemoved:Delete",
        "s3": {"bucket": {"name": BUCKET},
               "object": {"key": key.replace(' ', "+"), "sequencer": sequencer}}
    })
}

#[tokio::test]
async fn a_deletion_removes_the_analysis_and_leaves_a_tombstone() {
    let submitter = submitter();
    let (file, created_event) = upload(&submitter, "incoming/a b.wav", "0A");
    handle(&submitter, &created_event, None)
        .await
        .expect("created");
    let id = inference(&job(&submitter, &file)).clone();
    let written = submitter
        .store
        .replace_tags(
            &AnalysisTags {
                file: &file,
                inference_id: &id,
                completed_at: "2026-11-25T10:16:00.000Z",
                detections: &[tag("Siren")],
            },
            &StoredTags::default(),
            None,
        )
        .await
        .expect("tags");
    let completed = JobRecord {
        status: JobStatus::Completed,
        notified: true,
        tag_items: written.stored,
        ..job(&submitter, &file)
    };
    submitter.store.insert_job(completed);

    let outcomes = handle(
        &submitter,
        &event(vec![removed("incoming/a b.wav", "0B")]),
        None,
    )
    .await
    .expect("removed");
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Deleted {
            file: file.to_string(),
            tag_items: 1
        }]
    );
    let tombstone = job(&submitter, &file);
    assert_eq!(tombstone.status, JobStatus::Deleted);
    assert_eq!(tombstone.inference_id, None);
    assert!(tombstone
        .purge_at
        .is_some_and(|at| at > now_seconds() + 29 * 86_400));
    assert!(submitter.store.tag_names(&file).is_empty());
    // The same deletion again changes nothing; nothing was ever sent for it.
    let outcomes = handle(
        &submitter,
        &event(vec![removed("incoming/a b.wav", "0B")]),
        None,
    )
    .await
    .expect("again");
    assert!(matches!(&outcomes[..], [RecordOutcome::Stale { .. }]));
    assert_eq!(job(&submitter, &file), tombstone);
    assert_eq!(submitter.endpoint.requests().len(), 1);
    assert!(submitter.detections.messages().is_empty());
}

#[tokio::test]
async fn deletions_and_uploads_in_any_order_end_as_their_sequencers_say() {
    // The delete overtook the upload it removed: the upload arrives stale.
    let submitter = submitter();
    let file = uri("incoming/a.wav");
    handle(
        &submitter,
        &event(vec![removed("incoming/a.wav", "0B")]),
        None,
    )
    .await
    .expect("removed first");
    assert_eq!(job(&submitter, &file).status, JobStatus::Deleted);
    submitter
        .objects
        .put(&file, b"RIFF....WAVEfmt ", Some("audio/wav"));
    let late = event(vec![created("incoming/a.wav", "old", "0A")]);
    let outcomes = handle(&submitter, &late, None).await.expect("late upload");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Stale { .. }]),
        "{outcomes:?}"
    );
    assert!(submitter.endpoint.requests().is_empty(), "never analysed");

    // Uploaded again after the delete: a new analysis.
    let again = event(vec![created("incoming/a.wav", "new", "0C")]);
    let outcomes = handle(&submitter, &again, None).await.expect("re-upload");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(job(&submitter, &file).status, JobStatus::Submitted);

    // A delete older than that upload, delivered late, changes nothing.
    let outcomes = handle(
        &submitter,
        &event(vec![removed("incoming/a.wav", "0B")]),
        None,
    )
    .await
    .expect("old delete");
    assert!(
        matches!(&outcomes[..], [RecordOutcome::Stale { .. }]),
        "{outcomes:?}"
    );
    let job = job(&submitter, &file);
    assert_eq!(job.status, JobStatus::Submitted);
    assert_eq!(job.version.etag.as_deref(), Some("new"));
}

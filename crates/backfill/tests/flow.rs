//! Every answer the backfill function gives, through the in-memory doubles: what a task
//! queues, when it is done already, why it fails (permanently or for a retry), and what a
//! remerge records. `tests/backfill.rs` proves the whole flow on the local stack.

use std::collections::BTreeMap;

use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings::BackfillSettings;
use cochl_backfill::{handle, Backfiller, Response, ResultCode};
use cochl_core::backfill::{BackfillMode, BackfillRequest};
use cochl_core::detections::MergeOptions;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::SensitivityConfig;
use cochl_on_result::ResultHandler;
use serde_json::{json, Value};
use testkit::doubles::{MemoryObjects, MemoryQueue, MemoryStore, RecordingTopic, StoreOp};

type Doubles = Backfiller<MemoryStore, MemoryObjects, RecordingTopic, MemoryQueue>;

const BUCKET: &str = "audio";
/// Two windows of Siren (0.9 then 0.5) and one of Dog_bark (0.4), 3 s of audio.
const RESULT: &str = r#"{"metadata": {"length_sec": 3.0},
 "data": [{"tags": [{"name": "Siren", "probability": 0.9}, {"name": "Dog_bark", "probability": 0.4}], "start_time": 0, "end_time": 2},
          {"tags": [{"name": "Siren", "probability": 0.5}], "start_time": 1, "end_time": 3}]}"#;

fn backfiller(merge: MergeOptions) -> Doubles {
    let result = cochl_aws::settings::ResultSettings {
        merge,
        ..testkit::settings::result_settings()
    };
    Backfiller {
        results: ResultHandler {
            objects: MemoryObjects::new(),
            store: MemoryStore::new(),
            detections: RecordingTopic::new(),
            submit_queue: MemoryQueue::new(),
            settings: result.clone(),
        },
        settings: BackfillSettings {
            result,
            bucket: BUCKET.into(),
            staging_prefix: "staging/".into(),
            max_object_bytes: 1_000,
            default_sensitivity: SensitivityConfig::default(),
            concurrency: 4,
        },
    }
}

fn uri(key: &str) -> S3Uri {
    S3Uri::new(BUCKET, key).expect("valid uri")
}

/// A schema 2.0 invocation of job `run` over `keys` (URL-encoded as a manifest lists them).
fn invocation(run: &str, arguments: &[(&str, &str)], keys: &[&str]) -> Value {
    let arguments: BTreeMap<&str, &str> = arguments.iter().copied().collect();
    json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": format!("inv-{run}"),
        "job": {"id": run, "userArguments": arguments},
        "tasks": keys.iter().enumerate().map(|(i, key)| json!({
            "taskId": format!("t{i}"), "s3Key": key, "s3VersionId": null, "s3Bucket": BUCKET
        })).collect::<Vec<_>>()
    })
}

async fn run(backfiller: &Doubles, payload: Value) -> Response {
    handle(backfiller, &payload, None).await.expect("an answer")
}

fn codes(response: &Response) -> Vec<(ResultCode, String)> {
    response
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.clone()))
        .collect()
}

fn queued(backfiller: &Doubles) -> Vec<BackfillRequest> {
    backfiller
        .results
        .submit_queue
        .sent()
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(&m.body).expect("json");
            BackfillRequest::from_body(&body)
                .expect("a backfill request")
                .expect("readable")
        })
        .collect()
}

/// A job COMPLETED from an upload event, holding the tag items of `tags`.
fn completed(key: &str, etag: &str, tags: &[&str]) -> JobRecord {
    let file = uri(key);
    let inference_id = InferenceId::parse("cochl-upload").expect("id");
    JobRecord {
        file: file.clone(),
        status: JobStatus::Completed,
        version: ObjectVersion {
            version_id: None,
            etag: Some(etag.into()),
            sequencer: None,
            event_time_ms: 1_764_000_000_000,
        },
        revision: 3,
        inference_id: Some(inference_id.clone()),
        accepted: true,
        claimed_until: None,
        expiry_resubmits: 0,
        notified: true,
        content_type: Some("audio/wav".into()),
        size_bytes: Some(100),
        custom_attributes: None,
        output_location: Some(uri(&format!("results/{etag}.out"))),
        failure_location: None,
        reason_code: None,
        reason: None,
        submitted_at: "2026-11-25T10:15:30.000Z".into(),
        completed_at: Some("2026-11-25T10:16:30.000Z".into()),
        updated_at: "2026-11-25T10:16:30.000Z".into(),
        length_sec: Some(3.0),
        tags: Vec::new(),
        tag_items: StoredTags::from_names(tags.iter().map(|t| t.to_string()).collect()),
        purge_at: None,
    }
}

#[tokio::test]
async fn analyse_queues_audio_and_answers_every_other_task_with_its_reason() {
    let backfiller = backfiller(MergeOptions::default());
    let objects = &backfiller.results.objects;
    objects.put(&uri("archive/a b.wav"), &[1; 100], Some("audio/wav"));
    objects.put(&uri("archive/notes.txt"), b"hello", Some("text/plain"));
    objects.put(&uri("archive/huge.wav"), &[1; 1_001], Some("audio/wav"));
    objects.put(&uri("staging/cochl-x"), &[1; 100], Some("audio/wav"));

    let response = run(
        &backfiller,
        invocation(
            "run-1",
            &[],
            &[
                "archive/a+b.wav",
                "archive/notes.txt",
                "archive/huge.wav",
                "archive/gone.wav",
                "staging/cochl-x",
            ],
        ),
    )
    .await;
    assert_eq!(response.invocation_schema_version, "2.0");
    assert_eq!(response.invocation_id, "inv-run-1");
    assert_eq!(response.treat_missing_keys_as, ResultCode::PermanentFailure);
    let ids: Vec<&str> = response
        .results
        .iter()
        .map(|r| r.task_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["t0", "t1", "t2", "t3", "t4"],
        "one answer per task, in order"
    );
    let answers = codes(&response);
    assert_eq!(answers[0].0, ResultCode::Succeeded, "{answers:?}");
    assert!(
        answers[0].1.starts_with("queued for analyse"),
        "{answers:?}"
    );
    assert_eq!(answers[1].0, ResultCode::PermanentFailure);
    assert!(answers[1].1.starts_with("not_audio:"), "{answers:?}");
    assert_eq!(answers[2].0, ResultCode::PermanentFailure);
    assert!(answers[2].1.starts_with("too_large:"), "{answers:?}");
    assert_eq!(answers[3].0, ResultCode::PermanentFailure);
    assert!(answers[3].1.starts_with("object_missing:"), "{answers:?}");
    assert_eq!(answers[4].0, ResultCode::PermanentFailure);
    assert!(answers[4].1.contains("staged copy"), "{answers:?}");

    // The audio file and the two rejected ones are queued (submit records a REJECTED job
    // for each); the missing object and the staged copy are not.
    let files: Vec<String> = queued(&backfiller).into_iter().map(|r| r.file).collect();
    assert_eq!(
        files,
        [
            "s3://audio/archive/a b.wav",
            "s3://audio/archive/notes.txt",
            "s3://audio/archive/huge.wav"
        ]
    );
    for request in queued(&backfiller) {
        assert_eq!(
            (request.mode, request.run.as_str(), request.sensitivity),
            (BackfillMode::Analyse, "run-1", None)
        );
    }
}

#[tokio::test]
async fn analyse_leaves_an_analysed_version_alone_and_reanalyse_does_not() {
    let backfiller = backfiller(MergeOptions::default());
    let head = backfiller
        .results
        .objects
        .put(&uri("incoming/a.wav"), &[1; 100], Some("audio/wav"));
    let job = completed(
        "incoming/a.wav",
        head.etag.as_deref().expect("etag"),
        &["Siren"],
    );
    backfiller.results.store.insert_job(job.clone());

    let again = run(&backfiller, invocation("run-1", &[], &["incoming/a.wav"])).await;
    assert_eq!(
        codes(&again),
        [(
            ResultCode::Succeeded,
            "already analysed (COMPLETED)".to_string()
        )]
    );
    assert!(
        queued(&backfiller).is_empty(),
        "no inference for an analysed version"
    );

    let sensitivity = r#"{"default_sensitivity": 2}"#;
    let reanalyse = run(
        &backfiller,
        invocation(
            "run-2",
            &[("mode", "reanalyse"), ("sensitivity", sensitivity)],
            &["incoming/a.wav"],
        ),
    )
    .await;
    let answers = codes(&reanalyse);
    assert_eq!(answers[0].0, ResultCode::Succeeded, "{answers:?}");
    assert!(answers[0]
        .1
        .starts_with("queued for reanalyse: inference cochl-"));
    assert!(
        !answers[0].1.contains("cochl-upload"),
        "a fresh inference id: {answers:?}"
    );
    let requests = queued(&backfiller);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].mode, BackfillMode::Reanalyse);
    assert_eq!(requests[0].run, "run-2");
    assert_eq!(requests[0].sensitivity.as_deref(), Some(sensitivity));
    // Nothing was written by the backfill function itself: submit does that.
    assert_eq!(backfiller.results.store.job(&job.file), Some(job));
}

#[tokio::test]
async fn a_failed_or_rejected_analysis_is_a_permanent_failure_with_its_reason() {
    let backfiller = backfiller(MergeOptions::default());
    for (key, status, code) in [
        ("archive/failed.wav", JobStatus::Failed, "inference_failed"),
        (
            "archive/rejected.wav",
            JobStatus::Rejected,
            "invalid_sensitivity",
        ),
    ] {
        let head = backfiller
            .results
            .objects
            .put(&uri(key), &[1; 100], Some("audio/wav"));
        backfiller.results.store.insert_job(JobRecord {
            status,
            reason_code: Some(code.into()),
            reason: Some(format!("the {code} reason")),
            ..completed(key, head.etag.as_deref().expect("etag"), &[])
        });
    }
    let response = run(
        &backfiller,
        invocation("run", &[], &["archive/failed.wav", "archive/rejected.wav"]),
    )
    .await;
    let answers = codes(&response);
    assert_eq!(answers[0].0, ResultCode::PermanentFailure);
    assert!(
        answers[0]
            .1
            .contains("inference_failed: the inference_failed reason")
            && answers[0].1.contains("reanalyse"),
        "{answers:?}"
    );
    assert_eq!(
        answers[1],
        (
            ResultCode::PermanentFailure,
            "invalid_sensitivity: the invalid_sensitivity reason".to_string()
        )
    );
    assert!(queued(&backfiller).is_empty());
}

#[tokio::test]
async fn unreachable_services_are_temporary_and_foreign_buckets_permanent() {
    let backfiller = backfiller(MergeOptions::default());
    backfiller
        .results
        .objects
        .put(&uri("archive/a.wav"), &[1; 100], Some("audio/wav"));
    backfiller.results.store.fail_next(StoreOp::GetJob, 1);
    let mut payload = invocation("run", &[], &["archive/a.wav", "archive/a.wav"]);
    payload["tasks"][1]["s3Bucket"] = json!("someone-else");
    let answers = codes(&run(&backfiller, payload).await);
    assert_eq!(answers[0].0, ResultCode::TemporaryFailure, "{answers:?}");
    assert!(answers[0].1.contains("reading the job"), "{answers:?}");
    assert_eq!(answers[1].0, ResultCode::PermanentFailure);
    assert!(
        answers[1].1.contains("not the stack's bucket"),
        "{answers:?}"
    );

    // The retry Batch Operations makes succeeds; a queue that refuses is temporary too.
    backfiller.results.submit_queue.fail_next(1);
    let answers = codes(&run(&backfiller, invocation("run", &[], &["archive/a.wav"])).await);
    assert_eq!(answers[0].0, ResultCode::TemporaryFailure, "{answers:?}");
    assert!(answers[0].1.contains("queueing the request"), "{answers:?}");
    let answers = codes(&run(&backfiller, invocation("run", &[], &["archive/a.wav"])).await);
    assert_eq!(answers[0].0, ResultCode::Succeeded, "{answers:?}");
    assert_eq!(queued(&backfiller).len(), 1);
}

#[tokio::test]
async fn bad_arguments_fail_every_task_and_a_foreign_payload_fails_the_invocation() {
    let backfiller = backfiller(MergeOptions::default());
    let response = run(
        &backfiller,
        invocation("run", &[("mode", "rerun")], &["a.wav", "b.wav"]),
    )
    .await;
    for (code, text) in codes(&response) {
        assert_eq!(code, ResultCode::PermanentFailure);
        assert!(text.contains("rerun"), "{text}");
    }
    assert!(handle(&backfiller, &json!({"Records": []}), None)
        .await
        .is_err());
}

#[tokio::test]
async fn remerge_applies_the_current_settings_to_the_stored_result() {
    let mut backfiller = backfiller(MergeOptions::default());
    let job = completed("incoming/a.wav", "etag-a", &[]);
    backfiller.results.store.insert_job(job.clone());
    backfiller.results.objects.put(
        job.output_location.as_ref().expect("output"),
        RESULT.as_bytes(),
        Some("application/json"),
    );
    let remerge = || invocation("run", &[("mode", "remerge")], &["incoming/a.wav"]);
    let answers = codes(&run(&backfiller, remerge()).await);
    assert_eq!(
        answers,
        [(
            ResultCode::Succeeded,
            "remerged: 2 tags detected".to_string()
        )]
    );
    assert_eq!(
        backfiller.results.store.tag_names(&job.file),
        ["Dog_bark", "Siren"]
    );

    // Minimum probability 0.6 now: Siren's second window (0.5) and Dog_bark (0.4) drop out.
    backfiller.results.settings.merge.min_probability = Some(0.6);
    let answers = codes(&run(&backfiller, remerge()).await);
    assert_eq!(
        answers,
        [(
            ResultCode::Succeeded,
            "remerged: 1 tags detected".to_string()
        )]
    );
    let after = backfiller.results.store.job(&job.file).expect("job");
    assert_eq!(after.status, JobStatus::Completed);
    assert_eq!(after.inference_id, job.inference_id, "no new inference");
    assert_eq!(after.revision, job.revision + 2, "one write per remerge");
    assert_eq!(
        backfiller.results.store.tag_names(&job.file),
        ["Siren"],
        "the tag no longer detected lost its item"
    );
    // Siren: the first window alone (0 s to 2 s) at 0.9.
    assert_eq!(after.tags.len(), 1);
    assert_eq!(
        (
            after.tags[0].name.as_str(),
            after.tags[0].max_probability,
            after.tags[0].windows
        ),
        ("Siren", 0.9, 1)
    );
    let notified = backfiller.results.detections.bodies();
    assert_eq!(notified.len(), 2, "one notification per remerge");
    assert!(
        queued(&backfiller).is_empty(),
        "a remerge never queues an inference"
    );
}

#[tokio::test]
async fn remerge_refuses_what_it_cannot_merge() {
    let backfiller = backfiller(MergeOptions::default());
    let gone = completed("incoming/gone.wav", "etag-gone", &[]);
    let waiting = JobRecord {
        status: JobStatus::Submitted,
        ..completed("incoming/waiting.wav", "etag-waiting", &[])
    };
    backfiller.results.store.insert_job(gone.clone());
    backfiller.results.store.insert_job(waiting);
    let answers = codes(
        &run(
            &backfiller,
            invocation(
                "run",
                &[("mode", "remerge")],
                &[
                    "incoming/gone.wav",
                    "incoming/waiting.wav",
                    "incoming/never.wav",
                ],
            ),
        )
        .await,
    );
    assert_eq!(
        answers[0],
        (
            ResultCode::PermanentFailure,
            "the result object s3://audio/results/etag-gone.out is gone".to_string()
        )
    );
    assert_eq!(answers[1].0, ResultCode::PermanentFailure);
    assert!(
        answers[1].1.contains("SUBMITTED, not COMPLETED"),
        "{answers:?}"
    );
    assert_eq!(answers[2].0, ResultCode::PermanentFailure);
    assert!(answers[2].1.contains("never analysed"), "{answers:?}");
    assert!(backfiller.results.detections.bodies().is_empty());
}

#[tokio::test]
async fn the_sample_events_read_as_documented() {
    // The events developers invoke the function with (`cargo lambda invoke`): keys URL-encoded
    // as a manifest lists them, the analyse sample naming a version of a versioned bucket.
    for (name, mode, key) in [
        (
            "batch-operations-analyse.json",
            BackfillMode::Analyse,
            "archive/2024/street recordings/red flower (2) café.wav",
        ),
        (
            "batch-operations-reanalyse.json",
            BackfillMode::Reanalyse,
            "incoming/street recordings/red flower (2) café.wav",
        ),
    ] {
        let payload = testkit::samples::event(name);
        let task = &payload["tasks"][0];
        let bucket = task["s3Bucket"].as_str().expect("a bucket");
        let mut backfiller = backfiller(MergeOptions::default());
        backfiller.settings.bucket = bucket.to_string();
        let file = S3Uri::new(bucket, key).expect("valid");
        match task["s3VersionId"].as_str() {
            Some(version) => {
                backfiller
                    .results
                    .objects
                    .put_version(&file, &[1; 100], Some("audio/wav"), version)
            }
            None => backfiller
                .results
                .objects
                .put(&file, &[1; 100], Some("audio/wav")),
        };
        let response = run(&backfiller, payload.clone()).await;
        assert_eq!(response.invocation_id, payload["invocationId"], "{name}");
        assert_eq!(response.results[0].task_id, task["taskId"], "{name}");
        assert_eq!(
            response.results[0].result_code,
            ResultCode::Succeeded,
            "{name}: {response:?}"
        );
        let requests = queued(&backfiller);
        assert_eq!(requests.len(), 1, "{name}");
        assert_eq!(requests[0].mode, mode, "{name}");
        assert_eq!(requests[0].file, file.to_string(), "{name}");
        assert_eq!(
            requests[0].version_id.as_deref(),
            task["s3VersionId"].as_str(),
            "{name}"
        );
        assert_eq!(
            requests[0].run,
            payload["job"]["id"].as_str().expect("a job id")
        );
    }
}

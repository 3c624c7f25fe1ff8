//! Every branch of a sweep, through the in-memory doubles of on-result's ports: what S3
//! holds decides how a forgotten job is settled; jobs the endpoint never accepted and jobs
//! changed recently are left alone; leaked slots are reclaimed. `tests/sweeper.rs` proves
//! the same on the local stack with the emulator dropping real notifications.

use cochl_aws::ports::JobStore;
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings::ResultSettings;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use cochl_on_result::{NotificationOutcome, ResultHandler};
use cochl_sweeper::sweep_before;
use testkit::doubles::{MemoryObjects, MemoryQueue, MemoryStore, RecordingTopic};

type Doubles = ResultHandler<MemoryStore, MemoryObjects, RecordingTopic, MemoryQueue>;

const RESULT: &str = r#"{"metadata": {"length_sec": 3.0},
 "data": [{"tags": [{"name": "Siren", "probability": 0.9}], "start_time": 0, "end_time": 2},
          {"tags": [{"name": "Siren", "probability": 0.7}], "start_time": 1, "end_time": 3}]}"#;
/// Every job below changed at this time; the sweeps' cutoffs are on either side.
const CHANGED: &str = "2026-11-25T10:15:30.000Z";
const LATER: &str = "2026-11-25T12:00:00.000Z";

fn handler(max_expiry_resubmits: u32) -> Doubles {
    ResultHandler {
        objects: MemoryObjects::new(),
        store: MemoryStore::new(),
        detections: RecordingTopic::new(),
        submit_queue: MemoryQueue::new(),
        settings: ResultSettings {
            max_expiry_resubmits,
            ..testkit::settings::result_settings()
        },
    }
}

fn uri(text: &str) -> S3Uri {
    S3Uri::parse(text).expect("valid uri")
}

/// A job submit left waiting for a notification that never came (`accepted`), or not yet
/// sent.
fn waiting(name: &str, accepted: bool) -> JobRecord {
    JobRecord {
        file: uri(&format!("s3://audio/incoming/{name}.wav")),
        status: JobStatus::Submitted,
        version: ObjectVersion {
            version_id: None,
            etag: Some("etag".into()),
            sequencer: None,
            event_time_ms: 1_764_000_000_000,
        },
        revision: 1,
        inference_id: Some(InferenceId::parse(&format!("cochl-{name}")).expect("id")),
        accepted,
        claimed_until: None,
        expiry_resubmits: 0,
        notified: false,
        content_type: Some("audio/wav".into()),
        size_bytes: Some(1000),
        custom_attributes: None,
        output_location: Some(uri(&format!("s3://audio/results/{name}.out"))),
        failure_location: Some(uri(&format!("s3://audio/failures/{name}.out"))),
        reason_code: None,
        reason: None,
        submitted_at: CHANGED.into(),
        completed_at: None,
        updated_at: CHANGED.into(),
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: None,
    }
}

#[tokio::test]
async fn what_s3_holds_decides_how_each_forgotten_job_ends() {
    let handler = handler(0);
    let done = waiting("done", true);
    let failed = waiting("failed", true);
    let vanished = waiting("vanished", true);
    let unsent = waiting("unsent", false);
    for job in [&done, &failed, &vanished, &unsent] {
        handler.store.insert_job(job.clone());
    }
    handler.objects.put(
        done.output_location.as_ref().expect("output"),
        RESULT.as_bytes(),
        Some("application/json"),
    );
    handler.objects.put(
        failed.failure_location.as_ref().expect("failure"),
        b"ClientError: the model\n  could not decode the audio",
        Some("text/plain"),
    );

    let report = sweep_before(&handler, LATER, 100, None)
        .await
        .expect("swept");
    assert_eq!(report.examined, 4);
    assert_eq!(report.not_sent, 1, "the unsent job is submit's");
    assert_eq!(report.settled.len(), 3, "{report:?}");
    assert!(report.errors.is_empty());

    let job = |j: &JobRecord| handler.store.job(&j.file).expect("job");
    let completed = job(&done);
    assert_eq!(completed.status, JobStatus::Completed);
    assert_eq!(completed.length_sec, Some(3.0));
    assert_eq!(handler.store.tag_names(&done.file), vec!["Siren"]);
    let failed = job(&failed);
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.reason_code.as_deref(), Some("inference_failed"));
    assert_eq!(
        failed.reason.as_deref(),
        Some("ClientError: the model could not decode the audio")
    );
    let vanished = job(&vanished);
    assert_eq!(vanished.status, JobStatus::Failed);
    assert_eq!(vanished.reason_code.as_deref(), Some("no_outcome"));
    assert_eq!(job(&unsent), unsent, "untouched");
    // One notification per settled job.
    assert_eq!(handler.detections.messages().len(), 3);

    // Idempotent: the next sweep finds only the unsent job, and changes nothing.
    let again = sweep_before(&handler, LATER, 100, None)
        .await
        .expect("swept again");
    assert_eq!((again.examined, again.settled.len()), (1, 0), "{again:?}");
    assert_eq!(handler.detections.messages().len(), 3);
}

#[tokio::test]
async fn a_job_that_left_nothing_is_resubmitted_while_the_expiry_policy_allows() {
    let handler = handler(2);
    handler.store.insert_job(waiting("vanished", true));
    let report = sweep_before(&handler, LATER, 100, None)
        .await
        .expect("swept");
    assert!(
        matches!(
            &report.settled[..],
            [NotificationOutcome::Resubmitted { attempt: 1, .. }]
        ),
        "{report:?}"
    );
    let sent = handler.submit_queue.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.contains("cochlResubmit"), "{}", sent[0].body);
    assert!(
        handler.detections.messages().is_empty(),
        "no notification yet"
    );
}

#[tokio::test]
async fn jobs_changed_after_the_cutoff_are_left_alone() {
    let handler = handler(0);
    let recent = waiting("recent", true);
    handler.store.insert_job(recent.clone());
    let report = sweep_before(&handler, CHANGED, 100, None)
        .await
        .expect("swept");
    assert_eq!(report.examined, 0);
    assert_eq!(handler.store.job(&recent.file), Some(recent));
}

#[tokio::test]
async fn slots_past_their_lease_are_given_back_on_every_sweep() {
    let handler = handler(0);
    let leaked = InferenceId::parse("cochl-leaked").expect("id");
    let live = InferenceId::parse("cochl-live").expect("id");
    handler
        .store
        .acquire_slot(&leaked, 10, 1)
        .await
        .expect("slot");
    handler
        .store
        .acquire_slot(&live, 10, i64::MAX)
        .await
        .expect("slot");
    let report = sweep_before(&handler, LATER, 100, None)
        .await
        .expect("swept");
    assert_eq!(report.slots_reclaimed, 1);
    assert_eq!(handler.store.slots(), vec![live]);
}

#[tokio::test]
async fn a_scheduled_sweep_settles_jobs_older_than_its_delay() {
    // `sweep` takes its cutoff from the clock: with no delay, a job changed in the past
    // (CHANGED, 2026-11-25) is older than the cutoff and is settled.
    let handler = handler(0);
    let done = waiting("done", true);
    handler.store.insert_job(done.clone());
    handler.objects.put(
        done.output_location.as_ref().expect("output"),
        RESULT.as_bytes(),
        Some("application/json"),
    );
    let report = cochl_sweeper::sweep(&handler, std::time::Duration::ZERO, None)
        .await
        .expect("swept");
    assert_eq!(
        (report.examined, report.settled.len()),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(
        handler.store.job(&done.file).expect("job").status,
        JobStatus::Completed
    );
}

#[tokio::test]
async fn a_sweep_stops_at_its_deadline_and_works_before_it() {
    let done = waiting("done", true);
    let prepared = || {
        let handler = handler(0);
        handler.store.insert_job(done.clone());
        handler.objects.put(
            done.output_location.as_ref().expect("output"),
            RESULT.as_bytes(),
            Some("application/json"),
        );
        handler
    };
    // A deadline already passed: the job is examined but left for the next run.
    let late = prepared();
    let past = std::time::Instant::now();
    let report = sweep_before(&late, LATER, 100, Some(past))
        .await
        .expect("swept");
    assert_eq!(
        (report.examined, report.settled.len()),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(late.store.job(&done.file), Some(done.clone()), "untouched");
    // A deadline a minute away leaves time for the job.
    let early = prepared();
    let future = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = sweep_before(&early, LATER, 100, Some(future))
        .await
        .expect("swept");
    assert_eq!(report.settled.len(), 1, "{report:?}");
}

#[tokio::test]
async fn an_accepted_job_without_an_inference_is_counted_not_sent() {
    // Accepted but with no inference id (a record from before ids were stored): nothing to
    // look for in S3, so it is left to its submit message and counted as such.
    let handler = handler(0);
    let odd = JobRecord {
        inference_id: None,
        ..waiting("odd", true)
    };
    handler.store.insert_job(odd.clone());
    let report = sweep_before(&handler, LATER, 100, None)
        .await
        .expect("swept");
    assert_eq!(
        (report.examined, report.not_sent, report.settled.len()),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(handler.store.job(&odd.file), Some(odd));
}

//! The sweeper on the local stack: jobs whose SageMaker notification never came are settled
//! from what the endpoint left in S3, exactly as the notification would have settled them.
//!
//! The emulator's `drop_notifications_next` fault writes the result (or failure) object and
//! publishes nothing, as a notification lost for good would leave it. Each test then runs
//! one sweep of every job unchanged since before "now" (what the schedule does once
//! `COCHL_SWEEP_AFTER_SECONDS` have passed), so nothing waits on the clock:
//!
//! - a lost success: COMPLETED with the same document as a file whose notification came,
//!   notified once; sweeping again changes nothing;
//! - a lost failure: FAILED with the failure object's reason, notified once;
//! - nothing at all in S3: FAILED `no_outcome` (the expiry policy allows no resubmission
//!   here), notified once; sweeping twice changes nothing.

use std::time::Duration;

use anyhow::{Context, Result};
use cochl_aws::clock::now_millis;
use cochl_aws::records::{JobRecord, StoredTags};
use cochl_aws::settings as vars;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use cochl_core::time::format_millis;
use cochl_emulator::faults::INJECTED_FAILURE;
use devstack::query::file_document;
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::Value;
use testkit::wait::{self, DEADLINE};

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or_default()
}

/// A cutoff every job written so far is older than.
fn after_now() -> String {
    format_millis(now_millis() + 1_000)
}

/// What a file's document says about the audio, without what names the file or the run.
fn analysis(document: &Value) -> (Value, Value, Value) {
    (
        document["status"].clone(),
        document["length_sec"].clone(),
        document["tags"].clone(),
    )
}

async fn stack(prefix: &str, resubmits: &str) -> Result<LocalStack> {
    LocalStack::on_shared_moto(StackOptions {
        name_prefix: prefix.into(),
        env: [(
            vars::MAX_EXPIRY_RESUBMITS.to_string(),
            resubmits.to_string(),
        )]
        .into(),
        ..StackOptions::default()
    })
    .await
}

/// Waits until the emulator finished an inference whose notification it dropped, and its
/// job says the request was accepted.
async fn dropped(stack: &LocalStack, file: &S3Uri, count: u64) -> Result<JobRecord> {
    wait::until("the notification to be dropped", DEADLINE, || async {
        Ok(
            (counter(&stack.emulator_stats().await?, "notifications_dropped") >= count)
                .then_some(()),
        )
    })
    .await?;
    stack
        .wait_job(file, "accepted", DEADLINE, |job| job.accepted)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_success_notification_is_settled_as_the_notification_would_have() -> Result<()> {
    let stack = stack("sweep-ok", "2").await?;
    let tone = testkit::sample("tone-1khz.wav")?;
    let notified = stack
        .upload(
            &format!("{INPUT_PREFIX}sweep/notified.wav"),
            tone.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    assert_eq!(
        stack.wait_terminal(&notified, DEADLINE).await?.status,
        JobStatus::Completed
    );

    stack
        .emulator_faults(r#"{"drop_notifications_next": 1}"#)
        .await?;
    let lost = stack
        .upload(
            &format!("{INPUT_PREFIX}sweep/lost.wav"),
            tone,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let waiting = dropped(&stack, &lost, 1).await?;
    assert_eq!(waiting.status, JobStatus::Submitted);

    let report = stack.sweep_before(&after_now()).await?;
    assert_eq!(report.settled.len(), 1, "{report:?}");
    let job = stack.store.get_job(&lost).await?.context("job")?;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert!(job.notified);
    assert_eq!(
        analysis(&file_document(&stack, &lost).await?),
        analysis(&file_document(&stack, &notified).await?),
        "the same document as the notified path"
    );
    let slots = stack.store.in_flight().await?;
    assert_eq!(slots, 0, "the swept inference's slot was given back");

    // Sweeping again changes nothing.
    let again = stack.sweep_before(&after_now()).await?;
    assert_eq!((again.examined, again.settled.len()), (0, 0), "{again:?}");
    assert_eq!(stack.store.get_job(&lost).await?.context("job")?, job);
    let per_file = stack.notifications_per_file(Duration::from_secs(3)).await?;
    assert_eq!(per_file.get(&lost.to_string()), Some(&1), "{per_file:?}");
    assert_eq!(
        per_file.get(&notified.to_string()),
        Some(&1),
        "{per_file:?}"
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_failure_notification_ends_failed_with_its_reason() -> Result<()> {
    let stack = stack("sweep-fail", "2").await?;
    stack
        .emulator_faults(r#"{"fail_next_inferences": 1, "drop_notifications_next": 1}"#)
        .await?;
    let file = stack
        .upload(
            &format!("{INPUT_PREFIX}sweep/fails.wav"),
            testkit::sample("tone-1khz.wav")?,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let waiting = dropped(&stack, &file, 1).await?;
    assert_eq!(waiting.status, JobStatus::Submitted);

    let report = stack.sweep_before(&after_now()).await?;
    assert_eq!(report.settled.len(), 1, "{report:?}");
    let job = stack.store.get_job(&file).await?.context("job")?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.reason_code.as_deref(), Some("inference_failed"));
    // The failure object holds what the notification would have said.
    assert_eq!(
        job.reason.as_deref(),
        Some(format!("ClientError: {INJECTED_FAILURE}").as_str())
    );
    let mut seen = Vec::new();
    let notification = stack.detection_for(&file, &mut seen, DEADLINE).await?;
    assert_eq!(notification["status"], "FAILED");
    assert_eq!(notification["reason_code"], "inference_failed");
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_left_nothing_ends_failed_no_outcome_notified_once() -> Result<()> {
    let stack = stack("sweep-none", "0").await?;
    // A job the endpoint accepted and then lost without a trace: no result, no failure
    // object, no notification.
    let file = S3Uri::new(
        &stack.resources.bucket,
        format!("{INPUT_PREFIX}sweep/vanished.wav"),
    )?;
    let inference_id = InferenceId::parse("cochl-vanished-0001")?;
    let at = format_millis(now_millis() - 60_000);
    let vanished = JobRecord {
        file: file.clone(),
        status: JobStatus::Submitted,
        version: ObjectVersion {
            version_id: None,
            etag: Some("etag".into()),
            sequencer: None,
            event_time_ms: now_millis() - 60_000,
        },
        revision: 1,
        inference_id: Some(inference_id.clone()),
        accepted: true,
        claimed_until: None,
        expiry_resubmits: 0,
        notified: false,
        content_type: Some("audio/wav".into()),
        size_bytes: Some(1_000),
        custom_attributes: None,
        output_location: Some(S3Uri::new(&stack.resources.bucket, "results/vanished.out")?),
        failure_location: Some(S3Uri::new(
            &stack.resources.bucket,
            "failures/vanished.out",
        )?),
        reason_code: None,
        reason: None,
        submitted_at: at.clone(),
        completed_at: None,
        updated_at: at,
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: None,
    };
    stack
        .store
        .put_job(&vanished, cochl_aws::dynamo::Expect::Absent)
        .await?;

    let report = stack.sweep_before(&after_now()).await?;
    assert_eq!(report.settled.len(), 1, "{report:?}");
    let job = stack.store.get_job(&file).await?.context("job")?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.reason_code.as_deref(), Some("no_outcome"));
    assert!(job.notified);

    let again = stack.sweep_before(&after_now()).await?;
    assert_eq!((again.examined, again.settled.len()), (0, 0), "{again:?}");
    assert_eq!(stack.store.get_job(&file).await?.context("job")?, job);
    let per_file = stack.notifications_per_file(Duration::from_secs(3)).await?;
    assert_eq!(per_file.get(&file.to_string()), Some(&1), "{per_file:?}");
    stack.shutdown().await;
    Ok(())
}

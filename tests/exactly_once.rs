//! Exactly once on the local stack (moto, the SageMaker emulator, the functions' handlers):
//!
//! - `eight_concurrent_deliveries_of_one_upload_make_one_inference`: the same S3 record is
//!   handled 8 times at once, in process and then through the submit queue; the claim's
//!   lease lets exactly one delivery call InvokeEndpointAsync (the emulator counts what it
//!   accepted), the file gets one detection notification, and both files' documents are
//!   the same. Each InvokeEndpointAsync answer is slowed down so the other deliveries read
//!   the claim while its holder is still sending.
//! - `keys_outside_printable_ascii_complete_under_their_own_names`: unicode, emoji and
//!   control-character keys are submitted through a staged copy (an ASCII key derived
//!   from the inference id); the emulator only ever sees printable ASCII input locations,
//!   and each file ends COMPLETED under its exact key, queryable and notified by that name.
//! - `a_deleted_upload_disappears_from_every_query_and_comes_back_when_uploaded_again`:
//!   `ObjectRemoved` deletes the job's detections and leaves a tombstone: the query API
//!   answers 404, the tag listing stops returning the file, the tag items are gone; a new
//!   upload of the key is analysed again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::encode_query_value;
use cochl_submit::RecordOutcome;
use devstack::query::{file_document, get};
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::Value;
use testkit::wait::{self, DEADLINE};

/// Deliveries of one record at once.
const DELIVERIES: usize = 8;

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or_default()
}

/// What a file's document says about the audio, without what names the file or the run.
fn analysis(document: &Value) -> (Value, Value, Value) {
    (
        document["status"].clone(),
        document["length_sec"].clone(),
        document["tags"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_deliveries_of_one_upload_make_one_inference() -> Result<()> {
    let mut stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "lease".into(),
        event_sources: false,
        ..StackOptions::default()
    })
    .await?;
    let tone = testkit::sample("tone-1khz.wav")?;
    // The claimant's request takes 300 ms to be answered: every other delivery reads the
    // claim while it is being sent.
    stack.emulator_faults(r#"{"latency_ms": 300}"#).await?;

    // In process: the same record handled 8 times at once.
    let direct = stack
        .upload(
            &format!("{INPUT_PREFIX}lease/direct.wav"),
            tone.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    let event = stack.s3_event(1, DEADLINE).await?;
    let deliveries: Vec<_> = (0..DELIVERIES)
        .map(|_| {
            let submitter = stack.submitter.clone();
            let event = event.clone();
            tokio::spawn(async move {
                let deadline = Some(Instant::now() + Duration::from_secs(30));
                cochl_submit::handle(&submitter, &event, deadline).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        outcomes.extend(delivery.await?.context("a delivery failed")?);
    }
    let submitted = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Submitted { .. }))
        .count();
    assert_eq!(submitted, 1, "exactly one delivery sends: {outcomes:?}");
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                RecordOutcome::Submitted { .. }
                    | RecordOutcome::InProgress { .. }
                    | RecordOutcome::Duplicate { .. }
            ),
            "{outcome:?}"
        );
    }
    let stats = stack.emulator_stats().await?;
    assert_eq!(counter(&stats, "accepted"), 1, "{stats}");

    // Through the queue: 8 copies of one S3 notification on the submit queue.
    let queued = stack
        .upload(
            &format!("{INPUT_PREFIX}lease/queued.wav"),
            tone,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let body = stack.s3_event(1, DEADLINE).await?.to_string();
    let url = stack.queue_url(&stack.resources.submit_queue).await?;
    for _ in 0..DELIVERIES {
        stack
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(&body)
            .send()
            .await
            .context("queueing a copy")?;
    }
    let options = StackOptions::default();
    stack
        .start_event_sources(options.submit_mapping, options.results_mapping)
        .await?;
    for file in [&direct, &queued] {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed, "{file}: {job:?}");
    }
    // The deliveries that found the claim held come back after their deferral and find
    // the upload submitted: wait until the queue is empty before counting.
    wait::until("the submit queue to drain", DEADLINE, || async {
        Ok((stack.queue_depth(&stack.resources.submit_queue).await? == 0).then_some(()))
    })
    .await?;
    let stats = stack.emulator_stats().await?;
    assert_eq!(
        counter(&stats, "accepted"),
        2,
        "one inference per file: {stats}"
    );
    let notified = stack.notifications_per_file(Duration::from_secs(3)).await?;
    for file in [&direct, &queued] {
        assert_eq!(notified.get(&file.to_string()), Some(&1), "{notified:?}");
    }
    let documents = (
        file_document(&stack, &direct).await?,
        file_document(&stack, &queued).await?,
    );
    assert_eq!(analysis(&documents.0), analysis(&documents.1));
    assert!(
        documents.0["tags"]
            .as_array()
            .is_some_and(|tags| !tags.is_empty()),
        "the tone is heard: {}",
        documents.0
    );
    eprintln!(
        "lease: {DELIVERIES} concurrent deliveries in process and {DELIVERIES} through the \
         queue: {} inferences for 2 files",
        counter(&stats, "accepted")
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_outside_printable_ascii_complete_under_their_own_names() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "staging".into(),
        ..StackOptions::default()
    })
    .await?;
    let tone = testkit::sample("tone-1khz.wav")?;
    let keys = [
        format!("{INPUT_PREFIX}unicode/café ünïcödé 東京.wav"),
        format!("{INPUT_PREFIX}unicode/🎵 song 🎶.wav"),
        format!("{INPUT_PREFIX}unicode/bell\u{7}tab\there.wav"),
        format!("{INPUT_PREFIX}unicode/delete\u{7f}.wav"),
    ];
    let mut files = Vec::new();
    for key in &keys {
        files.push(
            stack
                .upload(key, tone.clone(), Some("audio/wav"), &[])
                .await?,
        );
    }
    let mut seen = Vec::new();
    for (key, file) in keys.iter().zip(&files) {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed, "{key:?}: {job:?}");
        assert_eq!(job.file.key(), key, "the job names the exact key");
        let document = file_document(&stack, file).await?;
        assert_eq!(document["file"], file.to_string());
        let notification = stack.detection_for(file, &mut seen, DEADLINE).await?;
        assert_eq!(notification["key"], key.as_str(), "{notification}");
        assert_eq!(notification["status"], "COMPLETED");
    }
    let stats = stack.emulator_stats().await?;
    assert_eq!(counter(&stats, "accepted"), keys.len() as u64, "{stats}");
    assert_eq!(counter(&stats, "non_ascii_input_locations"), 0, "{stats}");
    let inputs = stack.emulator_inputs().await?;
    assert_eq!(inputs.len(), keys.len(), "{inputs:?}");
    for input in &inputs {
        assert!(
            input.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "the emulator was sent {input:?}"
        );
        assert!(
            input.starts_with(&format!("s3://{}/staging/", stack.resources.bucket)),
            "a staged copy: {input}"
        );
    }
    stack.shutdown().await;
    Ok(())
}

/// The files the query API lists for a tag.
async fn listed(stack: &LocalStack, tag: &str) -> Result<BTreeSet<String>> {
    let (status, body) = get(stack, &format!("/tags/{}/files", encode_query_value(tag))).await?;
    ensure!(
        status == 200,
        "GET /tags/{tag}/files answered {status}: {body}"
    );
    Ok(body["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| hit["file"].as_str().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_upload_disappears_from_every_query_and_comes_back_when_uploaded_again(
) -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "removed".into(),
        ..StackOptions::default()
    })
    .await?;
    let tone = testkit::sample("tone-1khz.wav")?;
    let key = format!("{INPUT_PREFIX}removed/tone.wav");
    let kept_key = format!("{INPUT_PREFIX}removed/kept.wav");
    let file = stack
        .upload(&key, tone.clone(), Some("audio/wav"), &[])
        .await?;
    let kept = stack
        .upload(&kept_key, tone.clone(), Some("audio/wav"), &[])
        .await?;
    for f in [&file, &kept] {
        let job = stack.wait_terminal(f, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed);
    }
    assert!(stack.tag_item_count(&file).await? > 0);
    let both: BTreeSet<String> = [file.to_string(), kept.to_string()].into();
    assert_eq!(listed(&stack, "Tone").await?, both);
    let kept_before = file_document(&stack, &kept).await?;

    stack
        .s3
        .delete_object()
        .bucket(&stack.resources.bucket)
        .key(&key)
        .send()
        .await?;
    let job = stack
        .wait_job(&file, "deleted", DEADLINE, |job| {
            job.status == JobStatus::Deleted
        })
        .await?;
    assert_eq!(job.tag_items.names().len(), 0, "{job:?}");
    assert!(job.purge_at.is_some(), "the tombstone expires: {job:?}");
    let (status, body) = get(
        &stack,
        &format!("/files?uri={}", encode_query_value(&file.to_string())),
    )
    .await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(stack.tag_item_count(&file).await?, 0);
    assert_eq!(listed(&stack, "Tone").await?, [kept.to_string()].into());
    // Nothing else changed.
    assert_eq!(file_document(&stack, &kept).await?, kept_before);

    // Uploaded again: analysed again.
    stack.upload(&key, tone, Some("audio/wav"), &[]).await?;
    let job = stack
        .wait_job(&file, "analysed again", DEADLINE, |job| {
            job.status == JobStatus::Completed
        })
        .await?;
    assert!(job.notified);
    assert_eq!(listed(&stack, "Tone").await?, both);
    let stats = stack.emulator_stats().await?;
    assert_eq!(counter(&stats, "accepted"), 3, "{stats}");
    stack.shutdown().await;
    Ok(())
}

//! Throttling, outages and transient AWS faults on the local stack: nothing is lost.
//!
//! The emulator throttles half of the InvokeEndpointAsync calls (429) and answers bursts
//! of 503; the functions' own DynamoDB, S3 and SNS calls fail transiently on the wire
//! (`testkit::faults`: refused with the service's error, throttled, or applied with the
//! answer lost). Every uploaded file must end in a terminal state or have its message in
//! a dead-letter queue (after the queue's `maxReceiveCount` receives); after the faults
//! stop, redriving the dead-letter queues (the local `start-message-move-task`) completes
//! every file. A lasting outage shows the backoff gives up inside the invocation's budget.
//! The figures (calls, faults injected, dead letters, seconds) are printed for the README.
//! The transient-fault run takes 30 uploads in `make test` and 300 in its soak twin
//! (`make soak`); `COCHL_FAULT_UPLOADS` sets either.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cochl_core::job::JobStatus;
use devstack::harness::DeadLetters;
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::json;
use testkit::faults::{FaultInjector, FaultMode, FaultRule};
use testkit::sample;
use testkit::wait::FAULTS_DEADLINE;

/// Uploads under transient faults in `make test`.
const FAULT_UPLOADS: usize = 30;
/// The same in `make soak`: more draws of the seeded faults, more interleavings.
const SOAK_FAULT_UPLOADS: usize = 300;

/// The rules of the transient-fault run: specific operations first (the first match wins).
fn rules() -> Vec<FaultRule> {
    let operation = |service: &str, operation: &str, ratio: f64, mode: FaultMode| FaultRule {
        service: service.into(),
        operation: Some(operation.into()),
        ratio,
        mode,
    };
    vec![
        // Conditional writes applied but their answers lost: the retry meets its own write.
        operation("dynamodb", "PutItem", 0.15, FaultMode::LostAnswer),
        operation("dynamodb", "UpdateItem", 0.15, FaultMode::LostAnswer),
        operation("dynamodb", "BatchWriteItem", 0.15, FaultMode::LostAnswer),
        FaultRule::service("dynamodb", 0.2, FaultMode::Throttle),
        operation("sns", "Publish", 0.25, FaultMode::InternalError),
        FaultRule::service("s3", 0.15, FaultMode::InternalError),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_503_bursts_and_transient_aws_faults_lose_nothing() -> Result<()> {
    transient_faults(testkit::soak::size("COCHL_FAULT_UPLOADS", FAULT_UPLOADS)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 300 uploads under transient faults, a few minutes; `make soak` runs it"]
async fn soak_throttling_503_bursts_and_transient_aws_faults_lose_nothing() -> Result<()> {
    transient_faults(testkit::soak::size(
        "COCHL_FAULT_UPLOADS",
        SOAK_FAULT_UPLOADS,
    ))
    .await
}

/// `uploads` files while the endpoint throttles and the functions' AWS calls fail, then a
/// DynamoDB outage for three more: every file ends COMPLETED once the dead letters are
/// redriven.
async fn transient_faults(uploads: usize) -> Result<()> {
    // A safety net that grows with the run (180 s for the 30 files of `make test`).
    let deadline = FAULTS_DEADLINE.max(Duration::from_secs(6) * u32::try_from(uploads)?);
    let injector = FaultInjector::new(rules(), 0x5eed);
    // A failed message returns after 12 s (a 2 s function budget) and is dead-lettered on
    // its fourth receive.
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "faults".into(),
        function_faults: Some(injector.clone()),
        visibility_timeout: Duration::from_secs(12),
        max_receive_count: 3,
        ..StackOptions::default()
    })
    .await?;
    stack
        .emulator_faults(r#"{"throttle_ratio": 0.5, "seed": 7}"#)
        .await?;
    let tone = sample("tone-1khz.wav")?;
    let started = Instant::now();
    let mut files = Vec::new();
    for n in 0..uploads {
        if n % 10 == 5 {
            // A burst of 503s in the middle of the uploads.
            stack.emulator_faults(r#"{"unavailable_next": 4}"#).await?;
        }
        let key = format!("{INPUT_PREFIX}faults-{n:02}.wav");
        files.push(
            stack
                .upload(&key, tone.clone(), Some("audio/wav"), &[])
                .await?,
        );
    }

    let mut dead = DeadLetters::default();
    stack.settle(&files, &mut dead, deadline).await?;

    // Then DynamoDB goes down entirely for a few uploads: their messages must end in the
    // dead-letter queue (every receive fails), not vanish.
    injector.set_rules(vec![FaultRule::service(
        "dynamodb",
        1.0,
        FaultMode::InternalError,
    )]);
    let mut outage = Vec::new();
    for n in 0..3 {
        let key = format!("{INPUT_PREFIX}faults-outage-{n}.wav");
        outage.push(
            stack
                .upload(&key, tone.clone(), Some("audio/wav"), &[])
                .await?,
        );
    }
    stack.settle(&outage, &mut dead, deadline).await?;
    for file in &outage {
        assert!(dead.names(file), "{file} is in the dead-letter queue");
    }
    files.extend(outage);
    let emulator = stack.emulator_stats().await?;
    let injected = injector.injected();

    // The faults end; an operator moves the dead-letter queues back to their sources.
    injector.set_enabled(false);
    stack
        .emulator_faults(r#"{"throttle_ratio": 0.0, "unavailable_next": 0}"#)
        .await?;
    let moved = stack
        .redrive(&stack.resources.submit_dlq, &stack.resources.submit_queue)
        .await?
        + stack
            .redrive(&stack.resources.results_dlq, &stack.resources.results_queue)
            .await?;
    assert_eq!(moved, dead.letters.len(), "every dead letter moved back");
    for file in &files {
        let job = stack.wait_terminal(file, deadline).await?;
        assert_eq!(job.status, JobStatus::Completed, "{file}: {job:?}");
        assert!(job.notified, "{file}: {job:?}");
    }
    let seconds = started.elapsed().as_secs_f64();
    // A quarter of the Publish calls failed: each file must still have its notification, as
    // the publish comes before the commit and a failed one leaves the job for the retry.
    // (Published after the commit, a failed publish would leave a COMPLETED job that no
    // retry notifies.) At least once: a message redelivered after its attempt published and
    // failed to commit publishes again, so second copies are counted, not refused.
    let per_file = stack
        .notifications_per_file(Duration::from_secs(30))
        .await?;
    let missing: Vec<String> = files
        .iter()
        .map(ToString::to_string)
        .filter(|file| !per_file.contains_key(file))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} files never notified: {missing:?}",
        missing.len(),
        files.len()
    );
    let extra_copies = per_file.values().sum::<usize>() - per_file.len();
    let throttled = emulator["throttled"].as_u64().unwrap_or(0);
    let unavailable = emulator["unavailable"].as_u64().unwrap_or(0);
    assert!(throttled > 0, "the emulator throttled: {emulator}");
    assert!(unavailable > 0, "the emulator had 503 bursts: {emulator}");
    assert!(injected > 0, "AWS faults were injected");
    let counts = injector.counts();
    eprintln!(
        "faults: {} files; emulator {throttled} throttled, {unavailable} unavailable, {} accepted; \
         {injected} AWS faults injected; {} dead letters ({} files) redriven; all {} COMPLETED \
         in {seconds:.1} s ({:.1} files/s); every file notified, {extra_copies} second copies",
        files.len(),
        emulator["accepted"],
        dead.letters.len(),
        dead.files.len(),
        files.len(),
        files.len() as f64 / seconds,
    );
    for (operation, count) in counts {
        eprintln!(
            "  {operation}: {} calls, {} faults",
            count.calls, count.injected
        );
    }
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_outage_gives_up_inside_the_invocation_budget() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "budget".into(),
        max_attempts: Some(20),
        event_sources: false,
        ..StackOptions::default()
    })
    .await?;
    let tone = sample("tone-1khz.wav")?;
    let file = stack
        .upload("incoming/outage.wav", tone, Some("audio/wav"), &[])
        .await?;
    let head = stack
        .s3
        .head_object()
        .bucket(file.bucket())
        .key(file.key())
        .send()
        .await?;
    let event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": file.bucket()},
               "object": {"key": cochl_core::keys::encode_event_key(file.key()),
                          "eTag": head.e_tag().unwrap_or_default(), "size": 1}}
    }]});
    stack
        .emulator_faults(r#"{"unavailable_next": 100000}"#)
        .await?;
    let budget = Duration::from_secs(4);
    let started = Instant::now();
    let outcome = cochl_submit::handle(&stack.submitter, &event, Some(started + budget)).await;
    let used = started.elapsed();
    let error = match outcome {
        Ok(outcomes) => bail!("an outage cannot succeed: {outcomes:?}"),
        Err(error) => error.to_string(),
    };
    let stats = stack.emulator_stats().await?;
    let attempts = stats["unavailable"].as_u64().context("stats.unavailable")?;
    eprintln!(
        "budget: gave up after {attempts} attempts in {:.2} s of a {:.0} s budget: {error}",
        used.as_secs_f64(),
        budget.as_secs_f64()
    );
    assert!(error.contains("ServiceUnavailable"), "{error}");
    assert!(
        used < budget,
        "the retries stayed inside the budget: {used:?}"
    );
    assert!(
        (2..20).contains(&attempts),
        "retried, then stopped for the budget, not for the attempt limit: {attempts}"
    );
    let job = stack.store.get_job(&file).await?.context("claimed")?;
    assert_eq!(job.status, JobStatus::Submitted);
    assert!(
        !job.accepted,
        "left for the message's next receive to resume"
    );
    stack.shutdown().await;
    Ok(())
}

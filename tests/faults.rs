//! Throttling, outages and transient AWS faults on the local stack: nothing is lost.
//!
//! The emulator throttles half of the InvokeEndpointAsync calls (429) and answers bursts
//! of 503; the functions' own DynamoDB, S3 and SNS calls fail transiently on the wire
//! (`testkit::faults`: refused with the service's error, throttled, or applied with the
//! answer lost). Every uploaded file must end in a terminal state or have its event in a
//! dead-letter queue; after the faults stop, redriving the dead letters completes every
//! file. A lasting outage shows the backoff gives up inside the invocation's budget.
//! The figures (calls, faults injected, dead letters) are printed for the README.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::{json, Value};
use testkit::faults::{FaultInjector, FaultMode, FaultRule};

const DEADLINE: Duration = Duration::from_secs(180);
const FILES: usize = 30;

async fn stack(options: StackOptions) -> Result<LocalStack> {
    LocalStack::on_shared_moto(options).await
}

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

/// The files named by a dead-lettered event: S3 records' keys, or a SageMaker
/// notification's input location.
fn files_of_dead_letter(bucket: &str, dead: &Value) -> Result<Vec<S3Uri>> {
    let mut files = Vec::new();
    for record in dead["event"]["Records"].as_array().into_iter().flatten() {
        if let Some(key) = record["s3"]["object"]["key"].as_str() {
            files.push(S3Uri::new(
                bucket,
                &cochl_core::keys::decode_event_key(key)?,
            )?);
        } else if let Some(message) = record["Sns"]["Message"].as_str() {
            let notification: Value = serde_json::from_str(message)?;
            if let Some(input) = notification["requestParameters"]["inputLocation"].as_str() {
                files.push(S3Uri::parse(input)?);
            }
        }
    }
    Ok(files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_503_bursts_and_transient_aws_faults_lose_nothing() -> Result<()> {
    let injector = FaultInjector::new(rules(), 0x5eed);
    let stack = stack(StackOptions {
        name_prefix: "faults".into(),
        function_faults: Some(injector.clone()),
        ..StackOptions::default()
    })
    .await?;
    let (status, _) = stack
        .emulator_admin(
            "POST",
            "/_emulator/faults",
            r#"{"throttle_ratio": 0.5, "seed": 7}"#,
        )
        .await?;
    assert_eq!(status, 200);
    let tone = std::fs::read(testkit::workspace_root().join("samples/tone-1khz.wav"))?;
    let mut files = Vec::new();
    for n in 0..FILES {
        if n % 10 == 5 {
            // A burst of 503s in the middle of the uploads.
            stack
                .emulator_admin("POST", "/_emulator/faults", r#"{"unavailable_next": 4}"#)
                .await?;
        }
        let key = format!("{INPUT_PREFIX}faults-{n:02}.wav");
        files.push(
            stack
                .upload(&key, tone.clone(), Some("audio/wav"), &[])
                .await?,
        );
    }

    let mut dead_letters = Vec::new();
    let mut dead_files = BTreeSet::new();
    settle(&stack, &files, &mut dead_letters, &mut dead_files).await?;

    // Then DynamoDB goes down entirely for a few uploads: their events must end in the
    // dead-letter queue (Lambda's two retries fail too), not vanish.
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
    settle(&stack, &outage, &mut dead_letters, &mut dead_files).await?;
    for file in &outage {
        assert!(
            dead_files.contains(&file.to_string()),
            "{file} is in the dead-letter queue"
        );
    }
    files.extend(outage);
    let (_, emulator) = stack.emulator_admin("GET", "/_emulator/stats", "").await?;
    let injected = injector.injected();

    // The faults end; an operator redrives the dead letters to the functions.
    injector.set_enabled(false);
    stack
        .emulator_admin(
            "POST",
            "/_emulator/faults",
            r#"{"throttle_ratio": 0.0, "unavailable_next": 0}"#,
        )
        .await?;
    for dead in &dead_letters {
        let event = &dead["event"];
        if event["Records"][0]["Sns"].is_object() {
            cochl_on_result::handle(&stack.results, event, None).await?;
        } else {
            cochl_submit::handle(&stack.submitter, event, None).await?;
        }
    }
    for file in &files {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed, "{file}: {job:?}");
    }
    let throttled = emulator["throttled"].as_u64().unwrap_or(0);
    let unavailable = emulator["unavailable"].as_u64().unwrap_or(0);
    assert!(throttled > 0, "the emulator throttled: {emulator}");
    assert!(unavailable > 0, "the emulator had 503 bursts: {emulator}");
    assert!(injected > 0, "AWS faults were injected");
    let counts = injector.counts();
    eprintln!(
        "faults: {} files; emulator {throttled} throttled, {unavailable} unavailable, {} accepted; \
         {injected} AWS faults injected; {} dead letters ({} files) redriven; all {} COMPLETED",
        files.len(),
        emulator["accepted"],
        dead_letters.len(),
        dead_files.len(),
        files.len()
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

/// Waits until every file is terminal or named by a dead-lettered event, collecting the
/// dead letters.
async fn settle(
    stack: &LocalStack,
    files: &[S3Uri],
    dead_letters: &mut Vec<Value>,
    dead_files: &mut BTreeSet<String>,
) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for queue in [&stack.resources.submit_dlq, &stack.resources.results_dlq] {
            for dead in stack.receive(queue, 10, Duration::ZERO).await? {
                for file in files_of_dead_letter(&stack.resources.bucket, &dead)? {
                    dead_files.insert(file.to_string());
                }
                dead_letters.push(dead);
            }
        }
        let mut settled = 0;
        for file in files {
            let terminal = stack
                .store
                .get_job(file)
                .await?
                .is_some_and(|job| job.status.is_terminal());
            settled += usize::from(terminal || dead_files.contains(&file.to_string()));
        }
        if settled == files.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{settled} of {} files terminal or dead-lettered",
                files.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_outage_gives_up_inside_the_invocation_budget() -> Result<()> {
    let stack = stack(StackOptions {
        name_prefix: "budget".into(),
        max_attempts: 20,
        pumps: false,
        ..StackOptions::default()
    })
    .await?;
    let tone = std::fs::read(testkit::workspace_root().join("samples/tone-1khz.wav"))?;
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
        .emulator_admin(
            "POST",
            "/_emulator/faults",
            r#"{"unavailable_next": 100000}"#,
        )
        .await?;
    let budget = Duration::from_secs(4);
    let started = Instant::now();
    let outcome = cochl_submit::handle(&stack.submitter, &event, Some(started + budget)).await;
    let used = started.elapsed();
    let error = match outcome {
        Ok(outcomes) => bail!("an outage cannot succeed: {outcomes:?}"),
        Err(error) => error.to_string(),
    };
    let (_, stats) = stack.emulator_admin("GET", "/_emulator/stats", "").await?;
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
    assert!(!job.accepted, "left for Lambda's retry to resume");
    stack.shutdown().await;
    Ok(())
}

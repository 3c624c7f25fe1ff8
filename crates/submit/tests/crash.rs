//! The real `cochl-submit` binary killed in the middle of a batch loses nothing.
//!
//! The binary runs as Lambda runs it, against a stand-in of the Lambda Runtime API
//! (`devstack::runtime_api`), with moto for S3 and DynamoDB and the SageMaker emulator
//! behind `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`. One batch from the submit queue carries the
//! S3 notifications of ten uploads; the emulator answers slowly, so the process is
//! SIGKILLed after some were submitted and before the others were. The messages were not
//! deleted, so they come back after their visibility timeout, to a new instance: every
//! file must end analysed (COMPLETED), whatever the first process had done. The records
//! the killed process had claimed and not sent are held by its claims until their lease
//! runs out (2 s here): the retry then sends each of them exactly once.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::payload::{to_payload, Delivery};
use devstack::runtime_api::{Outcome, RuntimeApi};
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::Value;
use testkit::wait::{self, PROCESS_DEADLINE};

const FILES: usize = 10;

/// Starts the real binary as a Lambda instance of the stack's submit function.
fn start_instance(stack: &LocalStack, api: &RuntimeApi, moto: &str, n: usize) -> Result<Child> {
    start_instance_with(stack, api, moto, n, &[])
}

/// [`start_instance`] with more variables.
fn start_instance_with(
    stack: &LocalStack,
    api: &RuntimeApi,
    moto: &str,
    n: usize,
    extra: &[(&str, &str)],
) -> Result<Child> {
    let logs = testkit::workspace_root().join("target/tmp");
    std::fs::create_dir_all(&logs)?;
    let log = File::create(logs.join(format!("crash-submit-{}-{n}.log", std::process::id())))?;
    // Standard output is where Lambda's EMF metric lines go (CloudWatch Logs reads them).
    let metrics = File::create(metrics_path(n))?;
    Command::new(env!("CARGO_BIN_EXE_cochl-submit"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cochl-submit")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", moto)
        .env(
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
            stack.emulator.url().trim_end_matches('/'),
        )
        // The stack's own function configuration, as the template would set it.
        .envs(&stack.function_env)
        .env("COCHL_SUBMIT_CONCURRENCY", "2")
        // Room for the whole batch: this test is about the crash, not admission.
        .env("COCHL_MAX_IN_FLIGHT", "100")
        .env("RUST_LOG", "info")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(metrics)
        .stderr(log)
        .spawn()
        .context("starting the cochl-submit binary")
}

/// Where instance `n` writes its standard output.
fn metrics_path(n: usize) -> std::path::PathBuf {
    testkit::workspace_root().join(format!(
        "target/tmp/crash-submit-{}-{n}.stdout",
        std::process::id()
    ))
}

/// The EMF lines an instance wrote, by metric name: how many lines declare each.
fn emf_counts(n: usize) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(metrics_path(n))?.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(declared) = value["_aws"]["CloudWatchMetrics"][0].as_object() else {
            continue;
        };
        assert_eq!(declared["Namespace"], "CochlSense", "{line}");
        for metric in declared["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().context("a metric name")?;
            assert!(value[name].is_number(), "{name} is a field of {line}");
            *counts.entry(name.to_string()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Delivers SageMaker's notifications to the on-result handler until every file is
/// terminal (the stack's pumps are off, so this is the on-result function here).
async fn deliver_results_until_terminal(stack: &LocalStack, keys: &[String]) -> Result<()> {
    let files = keys
        .iter()
        .map(|key| S3Uri::new(&stack.resources.bucket, key))
        .collect::<Result<Vec<_>, _>>()?;
    let what = format!("{} files to be terminal", files.len());
    wait::until(&what, PROCESS_DEADLINE, || async {
        for body in stack
            .receive(&stack.resources.results_queue, 1, Duration::from_secs(1))
            .await?
        {
            let payload = to_payload(Delivery::SnsToLambda, &body.to_string());
            cochl_on_result::handle(&stack.results, &payload, None).await?;
        }
        let mut terminal = 0;
        for file in &files {
            if let Some(job) = stack.store.get_job(file).await? {
                terminal += usize::from(job.status.is_terminal());
            }
        }
        Ok((terminal == files.len()).then_some(()))
    })
    .await
}

async fn accepted(stack: &LocalStack) -> Result<u64> {
    let stats = stack.emulator_stats().await?;
    stats["accepted"].as_u64().context("stats.accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_mid_batch_loses_nothing_and_the_retry_completes_every_file() -> Result<()>
{
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "crash".into(),
        event_sources: false,
        ..StackOptions::default()
    })
    .await?;
    let moto = stack
        .config
        .endpoint_url()
        .context("the stack's endpoint")?;
    let tone = testkit::sample("tone-1khz.wav")?;
    let mut keys = Vec::new();
    for n in 0..FILES {
        let key = format!("{INPUT_PREFIX}crash-{n:02}.wav");
        stack
            .upload(&key, tone.clone(), Some("audio/wav"), &[])
            .await?;
        keys.push(key);
    }
    // The uploads' notifications, after the s3:TestEvent S3 sent when the stack wired them.
    let mut batch = stack
        .receive_batch(&stack.resources.submit_queue, FILES + 1, PROCESS_DEADLINE)
        .await?;
    batch.records.retain(|m| {
        !m.body
            .as_deref()
            .unwrap_or_default()
            .contains("s3:TestEvent")
    });
    assert_eq!(batch.records.len(), FILES, "one message per upload");
    let event = serde_json::to_value(&batch)?;

    // Every InvokeEndpointAsync answer takes 400 ms and the instance sends two at a time,
    // so the ten records take about two seconds: room to kill it in between.
    stack.emulator_faults(r#"{"latency_ms": 400}"#).await?;
    let api = RuntimeApi::start().await?;
    let mut first =
        start_instance_with(&stack, &api, moto, 1, &[("COCHL_CLAIM_LEASE_SECONDS", "2")])?;
    let first_id = api.invoke(event.clone());
    // Polled often: the kill must land while records are still unsent.
    let at_kill = wait::until_every(
        "the first instance to submit 3 records",
        PROCESS_DEADLINE,
        Duration::from_millis(20),
        || async { Ok(Some(accepted(&stack).await?).filter(|n| *n >= 3)) },
    )
    .await;
    let at_kill = match at_kill {
        Ok(at_kill) => at_kill,
        Err(error) => {
            let _ = first.kill();
            return Err(error);
        }
    };
    first.kill().context("SIGKILL")?;
    first.wait()?;
    assert!(
        api.answer(&first_id, Duration::from_millis(1))
            .await
            .is_err(),
        "the killed instance never answered"
    );
    assert!(
        (3..FILES as u64).contains(&at_kill),
        "killed midway: {at_kill} of {FILES} accepted"
    );
    let claimed_unsent = {
        let mut n = 0;
        for key in &keys {
            let file = S3Uri::new(&stack.resources.bucket, key)?;
            n += usize::from(
                stack
                    .store
                    .get_job(&file)
                    .await?
                    .is_none_or(|j| !j.accepted),
            );
        }
        n
    };
    assert!(claimed_unsent > 0, "some records were left unsubmitted");

    // The dead instance's claims hold until their lease runs out; then anyone may send.
    let leases_end = {
        let mut last = 0;
        for key in &keys {
            let file = S3Uri::new(&stack.resources.bucket, key)?;
            if let Some(until) = stack
                .store
                .get_job(&file)
                .await?
                .and_then(|job| job.claimed_until)
            {
                last = last.max(until);
            }
        }
        last
    };
    wait::until(
        "the killed instance's claims to expire",
        PROCESS_DEADLINE,
        || async { Ok((epoch_seconds() > leases_end).then_some(())) },
    )
    .await?;
    // Everything the dead instance sent has reached the endpoint by now.
    let sent_before_retry: Vec<String> = stack.emulator_inputs().await?;

    // The event source's retry: the same messages (never deleted), on a new instance.
    stack.emulator_faults(r#"{"latency_ms": 0}"#).await?;
    let mut second = start_instance(&stack, &api, moto, 2)?;
    let retry_id = api.invoke(event);
    let answer = api.answer(&retry_id, PROCESS_DEADLINE).await;
    let _ = second.kill();
    second.wait()?;
    let Outcome::Response(body) = answer?.outcome else {
        bail!("the retry failed");
    };
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(
        body["batchItemFailures"],
        serde_json::json!([]),
        "every message handled: {body}"
    );

    deliver_results_until_terminal(&stack, &keys).await?;
    for key in &keys {
        let file = S3Uri::new(&stack.resources.bucket, key)?;
        let job = stack.store.get_job(&file).await?.context("job")?;
        assert_eq!(job.status, JobStatus::Completed, "{file}: {job:?}");
    }
    // Exactly once for every record the dead instance had not sent; at most the two calls
    // in flight at the kill (accepted, never recorded) can have been accepted twice.
    let sent = stack.emulator_inputs().await?;
    for key in &keys {
        let location = format!("s3://{}/{key}", stack.resources.bucket);
        let times = sent.iter().filter(|s| **s == location).count();
        let before = sent_before_retry.iter().filter(|s| **s == location).count();
        match before {
            0 => assert_eq!(times, 1, "{key}: not sent before the kill, sent once"),
            _ => assert!(times <= 2, "{key}: sent {times} times"),
        }
    }
    // The retry's metric lines on its standard output: one FilesSubmitted per request it
    // sent, counted by the emulator, and no other count of files.
    let sent_by_retry = sent.len() - sent_before_retry.len();
    let emitted = emf_counts(2)?;
    assert_eq!(
        emitted.get("FilesSubmitted").copied().unwrap_or(0),
        sent_by_retry,
        "{emitted:?}"
    );
    assert!(!emitted.contains_key("FilesRejected"), "{emitted:?}");
    let total = accepted(&stack).await?;
    assert!(
        (FILES as u64..=FILES as u64 + 2).contains(&total),
        "{total} inferences for {FILES} files"
    );
    eprintln!(
        "crash: killed after {at_kill} of {FILES} accepted; {claimed_unsent} left unsent; \
         {total} inferences in all; every file COMPLETED after the retry"
    );
    stack.shutdown().await;
    Ok(())
}

/// Seconds since the Unix epoch, the clock claims are compared with.
fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

//! Cold start and first invocation of the release Lambda binaries (host target, the
//! workspace's release profile), run as Lambda runs them against the Runtime API stand-in
//! of `devstack::runtime_api` on 127.0.0.1.
//!
//! - Cold start: from spawning the binary to its first `GET .../invocation/next`, i.e. its
//!   init with the SDK clients built. Every AWS endpoint points at a closed local port, so
//!   a network call during init would show up as a failure or a delay.
//! - First invocation: `cochl-query` answering `GET /files` for an analysed file on the
//!   local stack, the first request of a fresh process (DynamoDB connection set up
//!   included) against the warm ones that follow.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use devstack::runtime_api::{Outcome, RuntimeApi};
use devstack::stack::INPUT_PREFIX;
use serde_json::Value;

use crate::report::{median, percentile, Report};
use crate::size::BINARIES;
use crate::stack::start_stack;

/// Starts per binary.
const STARTS: usize = 20;
/// Target for the median.
const TARGET_MS: f64 = 10.0;
/// Fresh `cochl-query` processes for the first-invocation figure, and warm calls each.
const INSTANCES: usize = 5;
const WARM_CALLS: usize = 20;
const WITHIN: Duration = Duration::from_secs(10);

/// The environment Lambda gives a function, with dummy credentials and every AWS endpoint
/// at `endpoint` (a closed local port for the cold start).
fn command(path: &Path, binary: &str, api: &str, endpoint: &str, table: &str) -> Command {
    let mut command = Command::new(path);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("COCHL_TABLE_NAME", table)
        .env("COCHL_ENDPOINT_NAME", "bench-endpoint")
        .env(
            "COCHL_DETECTIONS_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:bench-detections",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn release_binary(binary: &str) -> PathBuf {
    testkit::workspace_root()
        .join("target/release")
        .join(binary)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Measures every binary that was built, then the first and warm invocations.
pub async fn run(report: &mut Report) -> Result<()> {
    let api = RuntimeApi::start().await?;
    for binary in BINARIES {
        let path = release_binary(binary);
        if !path.exists() {
            report.note_row(
                "coldstart",
                binary,
                format!("not built: cargo build --release -p {binary} (make bench does)"),
            );
            continue;
        }
        let mut samples = Vec::with_capacity(STARTS);
        for _ in 0..STARTS {
            let asked_before = api.next_requests().len();
            let started = Instant::now();
            let child = command(&path, binary, &api.address(), "http://127.0.0.1:9", "bench")
                .spawn()
                .with_context(|| format!("starting {binary}"))?;
            let asked = api.wait_next_requests(asked_before + 1, WITHIN).await;
            stop(child);
            asked.with_context(|| format!("{binary} never asked for an invocation"))?;
            let at = api.next_requests()[asked_before];
            samples.push((at - started).as_secs_f64() * 1e3);
        }
        if let Some(error) = api.init_errors().first() {
            bail!("{binary} reported an init error: {error}");
        }
        let value = median(&samples);
        report.row(
            "coldstart",
            &format!("{binary}: spawn -> first invocation/next, median of {STARTS}"),
            format!(
                "{value:.2} ms (min {:.2}, max {:.2}; host {} release)",
                percentile(&samples, 0.0),
                percentile(&samples, 100.0),
                std::env::consts::ARCH
            ),
            Some((format!("< {TARGET_MS} ms"), value < TARGET_MS)),
        );
        report.record(&format!("coldstart.{binary}.ms"), value);
    }
    first_invocation(report).await
}

/// A `GET /files?uri=...` Function URL event for `file`.
fn file_request(file: &str) -> Result<Value> {
    let path = testkit::workspace_root().join("events/http-get-file.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    event["rawQueryString"] = Value::String(format!(
        "uri={}",
        cochl_core::keys::encode_query_value(file)
    ));
    event["queryStringParameters"]["uri"] = Value::String(file.to_string());
    Ok(event)
}

/// Milliseconds from handing out the event to the function's answer.
async fn invoke_ms(api: &RuntimeApi, event: &Value) -> Result<f64> {
    let id = api.invoke(event.clone());
    let answer = api.answer(&id, WITHIN).await?;
    match &answer.outcome {
        Outcome::Response(body) => {
            let reply: Value = serde_json::from_slice(body)?;
            if reply["statusCode"] != 200 {
                bail!("cochl-query answered {reply}");
            }
        }
        Outcome::Error(error) => bail!("cochl-query failed: {error}"),
    }
    Ok((answer.answered_at - answer.delivered_at).as_secs_f64() * 1e3)
}

async fn first_invocation(report: &mut Report) -> Result<()> {
    let path = release_binary("cochl-query");
    if !path.exists() {
        return Ok(());
    }
    let stack = start_stack().await?;
    let sample = std::fs::read(testkit::workspace_root().join("samples/tone-1khz.wav"))?;
    let file = stack
        .upload(
            &format!("{INPUT_PREFIX}bench-first.wav"),
            sample,
            Some("audio/wav"),
            &[],
        )
        .await?;
    stack.wait_terminal(&file, Duration::from_secs(60)).await?;
    let event = file_request(&file.to_string())?;
    let moto = testkit::shared_moto().map_err(anyhow::Error::msg)?;
    let (mut firsts, mut warms) = (Vec::new(), Vec::new());
    for _ in 0..INSTANCES {
        let api = RuntimeApi::start().await?;
        let child = command(
            &path,
            "cochl-query",
            &api.address(),
            moto.endpoint(),
            &stack.resources.table,
        )
        .spawn()
        .context("starting cochl-query")?;
        let measured = async {
            api.wait_next_requests(1, WITHIN).await?;
            firsts.push(invoke_ms(&api, &event).await?);
            for _ in 0..WARM_CALLS {
                warms.push(invoke_ms(&api, &event).await?);
            }
            anyhow::Ok(())
        }
        .await;
        stop(child);
        measured?;
    }
    let (first, warm) = (median(&firsts), median(&warms));
    report.row(
        "coldstart",
        &format!(
            "cochl-query GET /files on the local stack: first invocation of a fresh process \
             (median of {INSTANCES}) vs warm (median of {})",
            warms.len()
        ),
        format!(
            "first {first:.2} ms, warm {warm:.2} ms (p95 {:.2}); first - warm = {:.2} ms",
            percentile(&warms, 95.0),
            first - warm
        ),
        None,
    );
    report.record("coldstart.query.first_ms", first);
    report.record("coldstart.query.warm_ms", warm);
    stack.shutdown().await;
    Ok(())
}

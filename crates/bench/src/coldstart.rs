//! Cold start: from spawning a release Lambda binary (host target, the workspace's release
//! profile) to its first `GET /2018-06-01/runtime/invocation/next` on a stand-in of the
//! Lambda Runtime API served here on 127.0.0.1. The request is never answered: the
//! process is killed once it asked, and the next start begins.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::report::{median, Report};
use crate::size::BINARIES;

/// Starts per binary.
const STARTS: usize = 20;
/// Target for the median.
const TARGET_MS: f64 = 10.0;
const NEXT: &str = "GET /2018-06-01/runtime/invocation/next";

/// Serves the stand-in: sends the moment each `next` request line arrives.
fn serve(listener: TcpListener, arrivals: mpsc::Sender<Instant>) {
    let mut held = Vec::new();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let mut line = String::new();
        let mut reader = BufReader::new(stream);
        if reader.read_line(&mut line).is_ok() && line.starts_with(NEXT) {
            let at = Instant::now();
            if arrivals.send(at).is_err() {
                return;
            }
        }
        // Keep the connection open (unanswered) until the process is killed.
        held.push(reader);
        if held.len() > 8 {
            held.remove(0);
        }
    }
}

/// The environment Lambda would give the function, with dummy credentials and every
/// AWS endpoint pointed at a closed local port (nothing leaves 127.0.0.1).
fn command(path: &std::path::Path, binary: &str, api: &str) -> Command {
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
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCHDUMMY")
        .env("AWS_SECRET_ACCESS_KEY", "bench-dummy")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("COCHL_TABLE_NAME", "bench-jobs")
        .env("COCHL_ENDPOINT_NAME", "bench-endpoint")
        .env(
            "COCHL_DETECTIONS_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:bench-detections",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Measures every binary that was built.
pub fn run(report: &mut Report) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the runtime API stand-in")?;
    let api = listener.local_addr()?.to_string();
    let (send, arrivals) = mpsc::channel();
    std::thread::spawn(move || serve(listener, send));
    let release = testkit::workspace_root().join("target/release");
    for binary in BINARIES {
        let path = release.join(binary);
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
            while arrivals.try_recv().is_ok() {}
            let started = Instant::now();
            let mut child = command(&path, binary, &api)
                .spawn()
                .with_context(|| format!("starting {binary}"))?;
            let arrived = arrivals.recv_timeout(Duration::from_secs(10));
            let _ = child.kill();
            let status = child.wait();
            match arrived {
                Ok(at) => samples.push((at - started).as_secs_f64() * 1e3),
                Err(_) => bail!("{binary} never asked for an invocation (exit: {status:?})"),
            }
        }
        let value = median(&samples);
        report.row(
            "coldstart",
            &format!("{binary}: spawn -> first invocation/next, median of {STARTS}"),
            format!(
                "{value:.2} ms (min {:.2}, max {:.2}; host {} release)",
                crate::report::percentile(&samples, 0.0),
                crate::report::percentile(&samples, 100.0),
                std::env::consts::ARCH
            ),
            Some((format!("< {TARGET_MS} ms"), value < TARGET_MS)),
        );
        report.record(&format!("coldstart.{binary}.ms"), value);
    }
    Ok(())
}

//! End to end on the local stack: from the start of the upload until the job reads back
//! COMPLETED from the table the query API reads, one file at a time (no queueing).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use cochl_core::job::JobStatus;
use devstack::stack::INPUT_PREFIX;

use crate::generate::tone_wav;
use crate::report::{median, percentile, Report};
use crate::stack::start_stack;

/// Files measured.
const FILES: usize = 50;
/// How long one file may take before the bench gives up.
const DEADLINE: Duration = Duration::from_secs(60);
/// Poll interval of the job read.
const POLL: Duration = Duration::from_millis(10);

/// Uploads the files one after the other and reports the latency distribution.
pub async fn run(report: &mut Report) -> Result<()> {
    let stack = start_stack().await?;
    let wav = tone_wav(10, 16_000, 1000.0);
    let mut latencies = Vec::with_capacity(FILES);
    for n in 0..FILES {
        let key = format!("{INPUT_PREFIX}bench-e2e-{n:02}.wav");
        let started = Instant::now();
        let file = stack
            .upload(&key, wav.clone(), Some("audio/wav"), &[])
            .await?;
        loop {
            if let Some(job) = stack.store.get_job(&file).await? {
                if job.status == JobStatus::Completed {
                    break;
                }
                if job.status.is_terminal() {
                    bail!("{file} ended {:?}: {:?}", job.status, job.reason);
                }
            }
            if started.elapsed() > DEADLINE {
                bail!("{file} not COMPLETED within {DEADLINE:?}");
            }
            tokio::time::sleep(POLL).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
    }
    report.row(
        "e2e",
        &format!("upload -> COMPLETED readable, {FILES} x 10 s wav, one at a time"),
        format!(
            "median {:.0} ms, p95 {:.0} ms (min {:.0}, max {:.0})",
            median(&latencies),
            percentile(&latencies, 95.0),
            percentile(&latencies, 0.0),
            percentile(&latencies, 100.0)
        ),
        None,
    );
    stack.shutdown().await;
    Ok(())
}

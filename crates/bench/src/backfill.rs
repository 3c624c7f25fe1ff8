//! Backfill through the local stack: an S3 Batch Operations job (played by
//! `devstack::batch_job`, one task per invocation, 8 at once) over an archive of objects no
//! upload event announced, then the same job again; tasks per second of each, time until the
//! whole archive is COMPLETED, and the inferences each job made.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cochl_backfill::ResultCode;
use cochl_core::backfill::BackfillMode;
use cochl_core::job::JobStatus;
use devstack::batch_job::{run_job, JobOptions, ManifestEntry};

use crate::generate::tone_wav;
use crate::report::Report;
use crate::stack::start_stack;

/// Objects in the archive.
const OBJECTS: usize = 300;

/// Measures a backfill of [`OBJECTS`] objects.
pub async fn run(report: &mut Report) -> Result<()> {
    let stack = start_stack().await?;
    let bucket = stack.resources.bucket.clone();
    let wav = tone_wav(2, 8_000, 440.0);
    let mut manifest = Vec::with_capacity(OBJECTS);
    for i in 0..OBJECTS {
        let key = format!("archive/bench-{i:04}.wav");
        stack
            .upload(&key, wav.clone(), Some("audio/wav"), &[])
            .await?;
        manifest.push(ManifestEntry {
            bucket: bucket.clone(),
            key,
            version_id: None,
        });
    }
    let accepted = || async {
        stack.emulator_stats().await?["accepted"]
            .as_u64()
            .context("stats.accepted")
    };
    let backfiller = stack.backfiller()?;
    let started = Instant::now();
    let first = run_job(
        &backfiller,
        &manifest,
        &JobOptions::new(BackfillMode::Analyse),
    )
    .await;
    let succeeded = first.counts().get(&ResultCode::Succeeded).copied();
    ensure!(succeeded == Some(OBJECTS), "{}", first.summary());
    testkit::wait::until(
        "the archive to be analysed",
        Duration::from_secs(900),
        || async {
            let done = stack.count_status(JobStatus::Completed).await?;
            Ok((done == OBJECTS as u64).then_some(()))
        },
    )
    .await?;
    let all_done = started.elapsed();
    let inferences = accepted().await?;
    let again = run_job(
        &backfiller,
        &manifest,
        &JobOptions::new(BackfillMode::Analyse),
    )
    .await;
    let repeat_inferences = accepted().await? - inferences;
    report.note_row(
        "backfill",
        &format!("analyse, {OBJECTS} objects outside the input prefix: tasks answered"),
        format!(
            "{:.1} tasks/s ({:.1} s), {inferences} inferences; all COMPLETED after {:.1} s",
            first.tasks_per_second(),
            first.elapsed.as_secs_f64(),
            all_done.as_secs_f64()
        ),
    );
    report.note_row(
        "backfill",
        "the same job again (every object already analysed)",
        format!(
            "{:.1} tasks/s, {repeat_inferences} inferences",
            again.tasks_per_second()
        ),
    );
    stack.shutdown().await;
    Ok(())
}

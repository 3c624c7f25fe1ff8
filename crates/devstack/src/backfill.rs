//! `make backfill MANIFEST=path.csv [MODE=analyse|reanalyse|remerge]`: a Batch Operations
//! job against the stack `make up` runs.
//!
//! The backfill function runs here, in this process, configured as the deployed one would
//! be: the running stack's addresses from its env file, then every `COCHL_*` variable of
//! this process (so `COCHL_INTERVAL_MARGIN=2 make backfill ... MODE=remerge` remerges with a
//! margin of 2). What it queues, the stack's submit function picks up.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cochl_aws::settings::{BackfillSettings, Env};
use cochl_backfill::Backfiller;
use cochl_core::backfill::BackfillMode;
use cochl_on_result::ResultHandler;

use crate::batch_job::{read_manifest, run_job, JobOptions, JobReport};
use crate::stack::function_env;
use crate::up::{env_file, read_env};

/// What `devstack backfill` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillArgs {
    /// The CSV manifest.
    pub manifest: PathBuf,
    /// The run's mode.
    pub mode: BackfillMode,
    /// The run's sensitivity (JSON).
    pub sensitivity: Option<String>,
    /// Where the completion report goes (default `target/devstack/backfill-<job>.csv`).
    pub report: Option<PathBuf>,
}

/// Runs the job, writes the completion report, prints the summary line; returns the report.
pub async fn run_backfill(args: BackfillArgs) -> Result<JobReport> {
    let stack = read_env(&env_file())?;
    let endpoint = stack
        .get("AWS_ENDPOINT_URL")
        .context("the env file names no AWS_ENDPOINT_URL")?
        .clone();
    let resources: Vec<(&str, String)> = stack
        .iter()
        .filter(|(name, _)| name.starts_with("COCHL_"))
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let env = function_env(&resources, &Default::default(), std::env::vars());
    let settings = BackfillSettings::from_env(&Env(|name: &str| env.get(name).cloned()))
        .context("the backfill function's configuration")?;
    let config = testkit::sdk_config(&endpoint).await;
    let mut results = ResultHandler::from_config(&config, settings.result.clone());
    results.objects = cochl_aws::objects::Objects::new(testkit::s3_client(&config));
    let backfiller = Backfiller { results, settings };

    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("reading the manifest {}", args.manifest.display()))?;
    let entries = read_manifest(&text)?;
    let options = JobOptions {
        sensitivity: args.sensitivity.clone(),
        ..JobOptions::new(args.mode)
    };
    let report = run_job(&backfiller, &entries, &options).await;
    let path = args.report.clone().unwrap_or_else(|| {
        PathBuf::from(format!("target/devstack/backfill-{}.csv", report.job_id))
    });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, report.completion_report())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{} (report: {})", report.summary(), path.display());
    Ok(report)
}

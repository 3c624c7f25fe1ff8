//! `devstack`: runs the Cochl pipeline on this machine.
//!
//! `devstack demo [--json] [--margin N] [FILE...]` starts the local stack, uploads the
//! files (the bundled samples by default), waits for each to be analysed, and prints a table
//! per file, or with `--json` one line per file holding the query API's document.
//! `devstack up` keeps a local stack running (`make up`); `devstack backfill` plays an S3
//! Batch Operations job against it (`make backfill`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use devstack::backfill::{run_backfill, BackfillArgs};
use devstack::demo::{run_demo, DemoArgs};
use devstack::up::run_up;

const USAGE: &str = "usage: devstack demo [--json] [--margin N] [FILE...]
       devstack up
       devstack backfill --manifest FILE [--mode analyse|reanalyse|remerge] [--sensitivity JSON] [--report FILE]";

/// A command line, read.
#[derive(Debug, PartialEq)]
enum Command {
    Demo(DemoArgs),
    Up,
    Backfill(BackfillArgs),
}

fn parse_args(args: &[String]) -> Result<Command> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "demo" => parse_demo(rest).map(Command::Demo),
        "up" if rest.is_empty() => Ok(Command::Up),
        "up" => bail!("up takes no arguments\n{USAGE}"),
        "backfill" => parse_backfill(rest).map(Command::Backfill),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn parse_backfill(rest: &[String]) -> Result<BackfillArgs> {
    let mut manifest = None;
    let mut parsed = BackfillArgs {
        manifest: PathBuf::new(),
        mode: cochl_core::backfill::BackfillMode::Analyse,
        sensitivity: None,
        report: None,
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--mode" => parsed.mode = value()?.parse()?,
            "--sensitivity" => {
                parsed.sensitivity = Some(value()?.clone()).filter(|s| !s.trim().is_empty())
            }
            "--report" => parsed.report = Some(PathBuf::from(value()?)),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    parsed.manifest = manifest.with_context(|| format!("--manifest is required\n{USAGE}"))?;
    Ok(parsed)
}

fn parse_demo(rest: &[String]) -> Result<DemoArgs> {
    let mut parsed = DemoArgs {
        json: false,
        margin: 0,
        files: Vec::new(),
        report: Some(PathBuf::from("target/demo/report.html")),
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--margin" => {
                let value = rest.next().context("--margin needs a value")?;
                parsed.margin = value
                    .parse()
                    .with_context(|| format!("--margin {value:?} is not a whole number"))?;
            }
            flag if flag.starts_with("--") => bail!("unknown option {flag:?}\n{USAGE}"),
            // `make demo FILES="a b"` passes one argument holding several names.
            files => parsed
                .files
                .extend(files.split_whitespace().map(PathBuf::from)),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One readable line (with its causes), never a backtrace.
            eprintln!("devstack: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    // Logs go to a file so the demo's own output stays readable.
    let log_path = std::env::var("DEVSTACK_LOG").unwrap_or_else(|_| "target/devstack.log".into());
    if let Ok(log) = std::fs::File::create(&log_path) {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(std::sync::Mutex::new(log))
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .try_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args)? {
        Command::Demo(demo) => run_demo(demo).await.map(|_| ()),
        Command::Up => run_up().await,
        Command::Backfill(backfill) => run_backfill(backfill).await.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_files_flags_and_make_style_lists() {
        let Command::Demo(parsed) = parse_args(&args(&[
            "demo",
            "--json",
            "--margin",
            "2",
            "a.wav b.mp3",
            "c.ogg",
        ]))
        .expect("valid") else {
            panic!("a demo");
        };
        assert!(parsed.json);
        assert_eq!(parsed.margin, 2);
        assert_eq!(parsed.files, ["a.wav", "b.mp3", "c.ogg"].map(PathBuf::from));
    }

    #[test]
    fn refuses_unknown_commands_and_options() {
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["run"])).is_err());
        assert!(parse_args(&args(&["demo", "--fast"])).is_err());
        assert!(parse_args(&args(&["demo", "--margin"])).is_err());
        assert!(parse_args(&args(&["demo", "--margin", "-1"])).is_err());
        assert!(parse_args(&args(&["up", "now"])).is_err());
        assert!(
            parse_args(&args(&["backfill"])).is_err(),
            "a manifest is required"
        );
        assert!(parse_args(&args(&["backfill", "--manifest", "m.csv", "--mode", "all"])).is_err());
    }

    #[test]
    fn parses_up_and_backfill() {
        assert_eq!(parse_args(&args(&["up"])).expect("valid"), Command::Up);
        let parsed = parse_args(&args(&[
            "backfill",
            "--manifest",
            "m.csv",
            "--mode",
            "reanalyse",
            "--sensitivity",
            "{}",
            "--report",
            "r.csv",
        ]))
        .expect("valid");
        assert_eq!(
            parsed,
            Command::Backfill(BackfillArgs {
                manifest: PathBuf::from("m.csv"),
                mode: cochl_core::backfill::BackfillMode::Reanalyse,
                sensitivity: Some("{}".into()),
                report: Some(PathBuf::from("r.csv")),
            })
        );
    }
}

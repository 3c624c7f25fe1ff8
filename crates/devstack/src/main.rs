//! `devstack`: runs the Cochl pipeline on this machine.
//!
//! `devstack demo [--json] [--margin N] [FILE...]` starts the local stack, uploads the
//! files (the bundled samples by default), waits for each to be analysed, and prints a table
//! per file, or with `--json` one line per file holding the query API's document.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use devstack::demo::{run_demo, DemoArgs};

const USAGE: &str = "usage: devstack demo [--json] [--margin N] [FILE...]";

fn parse_args(args: &[String]) -> Result<DemoArgs> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    if command != "demo" {
        bail!("unknown command {command:?}\n{USAGE}");
    }
    let mut parsed = DemoArgs {
        json: false,
        margin: 0,
        files: Vec::new(),
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
async fn main() -> Result<()> {
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
    run_demo(parse_args(&args)?).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_files_flags_and_make_style_lists() {
        let parsed = parse_args(&args(&[
            "demo",
            "--json",
            "--margin",
            "2",
            "a.wav b.mp3",
            "c.ogg",
        ]))
        .expect("valid");
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
    }
}

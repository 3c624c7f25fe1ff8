//! `devstack`: runs the Cochl pipeline on this machine for demos and tests.
//!
//! `devstack demo [--json] [--margin N] [FILE...]` merges Cochl result documents into
//! per-tag detections with the same domain code the on-result function uses, and prints a
//! table per file (or one JSON document per line with `--json`). Without files it uses the
//! sample results bundled under `tests/fixtures/results/`.

mod table;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cochl_core::detections::{merge_windows, MergeOptions};
use cochl_core::result::CochlResult;

const USAGE: &str = "usage: devstack demo [--json] [--margin N] [FILE...]";

/// Parsed command line of `devstack demo`.
struct DemoArgs {
    json: bool,
    margin: u32,
    files: Vec<PathBuf>,
}

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

fn bundled_results() -> Result<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let dir = root.join("tests/fixtures/results");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| match std::env::current_dir() {
            Ok(cwd) => path
                .strip_prefix(&cwd)
                .map(Path::to_path_buf)
                .unwrap_or(path),
            Err(_) => path,
        })
        .collect();
    files.sort();
    Ok(files)
}

fn run_demo(args: DemoArgs) -> Result<()> {
    let files = if args.files.is_empty() {
        bundled_results()?
    } else {
        args.files
    };
    let options = MergeOptions {
        default_margin: args.margin,
        ..MergeOptions::default()
    };
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let result = CochlResult::parse(&bytes)
            .with_context(|| format!("{} is not a valid Cochl result", file.display()))?;
        let detections = merge_windows(&result.data, &options);
        if args.json {
            let document = serde_json::json!({
                "file": file.display().to_string(),
                "status": "COMPLETED",
                "length_sec": result.length_sec(),
                "tags": detections,
            });
            println!("{document}");
        } else {
            let length = result
                .length_sec()
                .map_or("unknown length".to_string(), |l| format!("{l:.2} s"));
            println!("{}  COMPLETED  {length}", file.display());
            print!("{}", table::render_detections(&detections));
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_demo(parse_args(&args)?)
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
            "a.json b.json",
            "c.json",
        ]))
        .expect("valid");
        assert!(parsed.json);
        assert_eq!(parsed.margin, 2);
        assert_eq!(
            parsed.files,
            ["a.json", "b.json", "c.json"].map(PathBuf::from)
        );
    }

    #[test]
    fn refuses_unknown_commands_and_options() {
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["run"])).is_err());
        assert!(parse_args(&args(&["demo", "--fast"])).is_err());
        assert!(parse_args(&args(&["demo", "--margin"])).is_err());
        assert!(parse_args(&args(&["demo", "--margin", "-1"])).is_err());
    }

    #[test]
    fn bundled_results_are_valid() {
        let files = bundled_results().expect("fixtures exist");
        assert!(files.len() >= 2);
        for file in files {
            let bytes = std::fs::read(&file).expect("readable");
            CochlResult::parse(&bytes).expect("bundled results parse");
        }
    }
}

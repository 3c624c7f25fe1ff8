//! Post-processing: parse a Cochl result and merge its windows, for 1 minute, 1 hour and
//! 24 hours of audio. Each size runs in a fresh child process of this binary, so the peak
//! memory (`VmHWM`) is that of one analysis, not of the bench.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cochl_core::detections::{merge_windows, MergeOptions};
use cochl_core::result::CochlResult;
use serde_json::{json, Value};

use crate::generate::cochl_result;
use crate::report::{median, Report};

/// The sizes measured: label, windows (one per second of audio), timed runs.
pub const SIZES: [(&str, usize, usize); 3] =
    [("1 min", 60, 201), ("1 h", 3_600, 51), ("24 h", 86_400, 9)];

/// Target for 24 hours of audio: milliseconds and peak MiB.
const TARGET_MS: f64 = 50.0;
const TARGET_MIB: f64 = 32.0;

/// The seed of every generated result, so every run measures the same documents.
pub const SEED: u64 = 0xC0C1;

/// A `/proc/self/status` figure in KiB (`VmHWM`, `VmRSS`).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The child: generate, then time parse and merge `runs` times; prints one JSON line.
pub fn child(windows: usize, runs: usize) -> Result<()> {
    let rss_start = proc_status_kib("VmHWM").unwrap_or(0);
    let mut bytes = cochl_result(windows, SEED);
    bytes.shrink_to_fit();
    let rss_input = proc_status_kib("VmRSS").unwrap_or(0);
    let options = MergeOptions::default();
    let (mut parse, mut merge) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut summary = (0, 0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let result = CochlResult::parse(&bytes).context("the generated result parses")?;
        let parsed = Instant::now();
        let detections = merge_windows(&result.data, &options);
        let merged = Instant::now();
        parse.push((parsed - started).as_secs_f64() * 1e3);
        merge.push((merged - parsed).as_secs_f64() * 1e3);
        summary = (
            result.data.len(),
            detections.len(),
            detections.iter().map(|d| d.segments.len()).sum::<usize>(),
        );
        drop(detections);
        drop(result);
    }
    let total: Vec<f64> = parse.iter().zip(&merge).map(|(p, m)| p + m).collect();
    println!(
        "{}",
        json!({
            "windows": summary.0, "tags": summary.1, "segments": summary.2,
            "input_bytes": bytes.len(),
            "parse_ms": median(&parse), "merge_ms": median(&merge), "total_ms": median(&total),
            "start_hwm_kib": rss_start, "input_rss_kib": rss_input,
            "hwm_kib": proc_status_kib("VmHWM").unwrap_or(0),
        })
    );
    Ok(())
}

/// Runs every size in a child process and reports it.
pub fn run(report: &mut Report) -> Result<()> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    for (label, windows, runs) in SIZES {
        let output = Command::new(&exe)
            .args([
                "__postprocess-child",
                &windows.to_string(),
                &runs.to_string(),
            ])
            .output()
            .context("running the post-processing child")?;
        if !output.status.success() {
            bail!(
                "post-processing child failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let figures: Value = serde_json::from_slice(&output.stdout)
            .context("reading the post-processing child's figures")?;
        let f = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
        let mib = |name: &str| f(name) / 1024.0;
        let is_day = windows == 86_400;
        let (time_target, memory_target) = if is_day {
            (
                Some((format!("< {TARGET_MS} ms"), f("total_ms") < TARGET_MS)),
                Some((format!("< {TARGET_MIB} MiB"), mib("hwm_kib") < TARGET_MIB)),
            )
        } else {
            (None, None)
        };
        let section = format!("postprocess {label}");
        report.note_row(
            &section,
            "input",
            format!(
                "{} windows, {} tags, {} segments, {:.2} MB JSON",
                f("windows"),
                f("tags"),
                f("segments"),
                f("input_bytes") / 1e6
            ),
        );
        report.row(
            &section,
            &format!("parse + merge, median of {runs}"),
            format!(
                "{:.3} ms (parse {:.3}, merge {:.3})",
                f("total_ms"),
                f("parse_ms"),
                f("merge_ms")
            ),
            time_target,
        );
        report.row(
            &section,
            "peak memory (VmHWM)",
            format!(
                "{:.1} MiB (process start {:.1}, with input {:.1})",
                mib("hwm_kib"),
                mib("start_hwm_kib"),
                mib("input_rss_kib")
            ),
            memory_target,
        );
        report.record(&format!("postprocess.{label}.total_ms"), f("total_ms"));
        report.record(&format!("postprocess.{label}.hwm_mib"), mib("hwm_kib"));
    }
    Ok(())
}

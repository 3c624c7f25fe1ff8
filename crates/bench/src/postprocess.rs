//! Post-processing: parse a Cochl result and merge its windows, for 1 minute, 1 hour and
//! 24 hours of audio. Each measurement runs in a fresh child process of this binary, so the
//! peak memory (`VmHWM`) is that of one analysis in a process of its own, input included,
//! not of the bench.
//!
//! Two paths are measured: `analyse`, the streaming parse and merge on-result uses, against
//! the target; and, for comparison, the parse into a whole `CochlResult` followed by
//! `merge_windows`, as on-result did before.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cochl_core::detections::{merge_windows, MergeOptions};
use cochl_core::result::{analyse, CochlResult};
use serde_json::{json, Value};

use crate::generate::cochl_result;
use crate::report::{median, Report};

/// The sizes measured: label, windows (one per second of audio), timed runs.
pub const SIZES: [(&str, usize, usize); 3] =
    [("1 min", 60, 201), ("1 h", 3_600, 51), ("24 h", 86_400, 9)];

/// Target for 24 hours of audio: milliseconds and peak MiB of the whole process.
const TARGET_MS: f64 = 50.0;
const TARGET_MIB: f64 = 32.0;

/// The seed of every generated result, so every run measures the same documents.
pub const SEED: u64 = 0xC0C1;

/// How the child turns the document into detections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `analyse`: one streaming pass, no `Vec<Window>` (production).
    Streaming,
    /// `CochlResult::parse` then `merge_windows` (the path before streaming).
    Parsed,
}

impl Method {
    /// The child's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Streaming => "analyse",
            Method::Parsed => "parse-then-merge",
        }
    }

    /// The path of a command-line name.
    pub fn from_name(name: &str) -> Result<Self> {
        [Method::Streaming, Method::Parsed]
            .into_iter()
            .find(|p| p.name() == name)
            .with_context(|| format!("unknown post-processing method {name}"))
    }
}

/// A `/proc/self/status` figure in KiB (`VmHWM`, `VmRSS`).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The child: generate, then time `method` `runs` times; prints one JSON line.
pub fn child(windows: usize, runs: usize, method: Method) -> Result<()> {
    let rss_start = proc_status_kib("VmHWM").unwrap_or(0);
    let mut bytes = cochl_result(windows, SEED);
    bytes.shrink_to_fit();
    let rss_input = proc_status_kib("VmRSS").unwrap_or(0);
    let options = MergeOptions::default();
    let mut times = Vec::with_capacity(runs);
    let mut summary = (0, 0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let (windows, detections) = match method {
            Method::Streaming => {
                let analysis = analyse(&bytes, &options).context("the generated result parses")?;
                (analysis.windows, analysis.detections)
            }
            Method::Parsed => {
                let result = CochlResult::parse(&bytes).context("the generated result parses")?;
                let detections = merge_windows(&result.data, &options);
                (result.data.len(), detections)
            }
        };
        times.push(started.elapsed().as_secs_f64() * 1e3);
        summary = (
            windows,
            detections.len(),
            detections.iter().map(|d| d.segments.len()).sum::<usize>(),
        );
    }
    println!(
        "{}",
        json!({
            "windows": summary.0, "tags": summary.1, "segments": summary.2,
            "input_bytes": bytes.len(),
            "total_ms": median(&times), "min_ms": times.iter().copied().fold(f64::INFINITY, f64::min),
            "start_hwm_kib": rss_start, "input_rss_kib": rss_input,
            "hwm_kib": proc_status_kib("VmHWM").unwrap_or(0),
        })
    );
    Ok(())
}

/// Runs one measurement in a fresh child process; its figures.
fn measure(windows: usize, runs: usize, method: Method) -> Result<Value> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let output = Command::new(&exe)
        .args([
            "__postprocess-child",
            &windows.to_string(),
            &runs.to_string(),
            method.name(),
        ])
        .output()
        .context("running the post-processing child")?;
    if !output.status.success() {
        bail!(
            "post-processing child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("reading the post-processing child's figures")
}

/// Runs every size and both paths, each in a child process, and reports them.
pub fn run(report: &mut Report) -> Result<()> {
    for (label, windows, runs) in SIZES {
        let streaming = measure(windows, runs, Method::Streaming)?;
        let parsed = measure(windows, runs, Method::Parsed)?;
        let f = |figures: &Value, name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
        let mib = |figures: &Value, name: &str| f(figures, name) / 1024.0;
        let is_day = windows == 86_400;
        let (time_target, memory_target) = if is_day {
            (
                Some((
                    format!("< {TARGET_MS} ms"),
                    f(&streaming, "total_ms") < TARGET_MS,
                )),
                Some((
                    format!("< {TARGET_MIB} MiB"),
                    mib(&streaming, "hwm_kib") < TARGET_MIB,
                )),
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
                f(&streaming, "windows"),
                f(&streaming, "tags"),
                f(&streaming, "segments"),
                f(&streaming, "input_bytes") / 1e6
            ),
        );
        report.row(
            &section,
            &format!("analyse (streaming parse + merge), median of {runs}"),
            format!(
                "{:.3} ms (fastest {:.3})",
                f(&streaming, "total_ms"),
                f(&streaming, "min_ms")
            ),
            time_target,
        );
        report.row(
            &section,
            "analyse: peak memory, whole process (VmHWM)",
            format!(
                "{:.1} MiB (process start {:.1}, with input {:.1})",
                mib(&streaming, "hwm_kib"),
                mib(&streaming, "start_hwm_kib"),
                mib(&streaming, "input_rss_kib")
            ),
            memory_target,
        );
        report.note_row(
            &section,
            &format!("before: parse whole + merge_windows, median of {runs}"),
            format!(
                "{:.3} ms, peak {:.1} MiB",
                f(&parsed, "total_ms"),
                mib(&parsed, "hwm_kib")
            ),
        );
        report.record(
            &format!("postprocess.{label}.total_ms"),
            f(&streaming, "total_ms"),
        );
        report.record(
            &format!("postprocess.{label}.hwm_mib"),
            mib(&streaming, "hwm_kib"),
        );
    }
    Ok(())
}

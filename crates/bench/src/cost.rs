//! Cost model per 1,000 analysed one-hour files: Lambda GB-seconds and requests, DynamoDB
//! write and read units, from the figures measured earlier in this run (or, when a section
//! did not run, from stated fallbacks). Prices are parameters; the defaults are printed.
//! SageMaker (the endpoint's instance hours) dominates real costs and is not modelled here.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::report::Report;

/// A parameter: name, default, meaning.
const PARAMETERS: [(&str, f64, &str); 8] = [
    (
        "lambda-gb-second-usd",
        0.000_013_333_4,
        "Lambda arm64 price per GB-s (us-east-1)",
    ),
    (
        "lambda-requests-usd-per-million",
        0.20,
        "Lambda price per million invocations",
    ),
    (
        "dynamodb-wru-usd-per-million",
        0.625,
        "DynamoDB on-demand price per million write units",
    ),
    (
        "dynamodb-rru-usd-per-million",
        0.125,
        "DynamoDB on-demand price per million read units",
    ),
    (
        "submit-memory-mb",
        256.0,
        "submit MemorySize (template.yaml)",
    ),
    (
        "on-result-memory-mb",
        512.0,
        "on-result MemorySize (template.yaml)",
    ),
    ("files", 1000.0, "analysed one-hour files"),
    (
        "aws-latency-factor",
        1.0,
        "scales durations measured on the local stack",
    ),
];

/// The prices and sizes, from `--name value` or `--name=value` flags.
pub struct Prices(BTreeMap<&'static str, f64>);

impl Prices {
    /// Parses the flags; unknown flags are refused.
    pub fn parse(flags: &[String]) -> Result<Self> {
        let mut values: BTreeMap<&'static str, f64> =
            PARAMETERS.iter().map(|(n, v, _)| (*n, *v)).collect();
        let mut iter = flags.iter();
        while let Some(flag) = iter.next() {
            let Some(flag) = flag.strip_prefix("--") else {
                bail!("unexpected argument {flag}");
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (flag.to_string(), iter.next().cloned().unwrap_or_default()),
            };
            let Some((known, _, _)) = PARAMETERS.iter().find(|(n, _, _)| *n == name) else {
                bail!(
                    "unknown parameter --{name}; known: {}",
                    PARAMETERS.map(|p| p.0).join(", ")
                );
            };
            let parsed: f64 = value
                .parse()
                .map_err(|_| anyhow::anyhow!("--{name} needs a number, got {value:?}"))?;
            if !parsed.is_finite() || parsed < 0.0 {
                bail!("--{name} must be a finite number >= 0");
            }
            values.insert(known, parsed);
        }
        Ok(Prices(values))
    }

    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(f64::NAN)
    }
}

/// Prints the model.
pub fn run(report: &mut Report, prices: &Prices) {
    for (name, _, meaning) in PARAMETERS {
        report.note_row(
            "cost assumptions",
            &format!("--{name}"),
            format!("{} ({meaning})", prices.get(name)),
        );
    }
    let factor = prices.get("aws-latency-factor");
    let files = prices.get("files");
    let mut sources = Vec::new();
    let mut figure = |name: &str, fallback: f64, what: &str| match report.figure(name) {
        Some(v) => v,
        None => {
            sources.push(format!(
                "{what} not measured in this run: assumed {fallback}"
            ));
            fallback
        }
    };
    // One S3 record per invocation in AWS; the 10-record event's median is an upper bound.
    let submit_ms = figure("submit.ms_per_event", 100.0, "submit ms per invocation");
    let submit_wru = figure("submit.wru_per_file", 2.0, "submit write units per file");
    let submit_reads = figure("submit.reads_per_file", 1.0, "submit reads per file");
    let result_ms = figure("writes.1 h.ms", 1000.0, "on-result ms for a 1 h file");
    let result_wru = figure(
        "writes.1 h.wru",
        100.0,
        "on-result write units for a 1 h file",
    );
    let result_reads = figure("writes.1 h.reads", 1.0, "on-result reads for a 1 h file");
    for source in sources {
        report.note_row("cost", "fallback", source);
    }
    let billed = |ms: f64| (ms * factor).ceil().max(1.0) / 1e3;
    let gbs_submit = files * billed(submit_ms) * prices.get("submit-memory-mb") / 1024.0;
    let gbs_result = files * billed(result_ms) * prices.get("on-result-memory-mb") / 1024.0;
    let gbs = gbs_submit + gbs_result;
    let lambda_usd = gbs * prices.get("lambda-gb-second-usd")
        + 2.0 * files * prices.get("lambda-requests-usd-per-million") / 1e6;
    let wru = files * (submit_wru + result_wru);
    let rru = files * (submit_reads + result_reads);
    let dynamo_usd = wru * prices.get("dynamodb-wru-usd-per-million") / 1e6
        + rru * prices.get("dynamodb-rru-usd-per-million") / 1e6;
    let per = format!("per {files} one-hour files");
    report.note_row(
        "cost",
        &format!("Lambda GB-s {per}"),
        format!(
            "{gbs:.1} GB-s (submit {gbs_submit:.1} at {submit_ms:.0} ms, on-result {gbs_result:.1} at {result_ms:.0} ms)"
        ),
    );
    report.note_row(
        "cost",
        &format!("DynamoDB units {per}"),
        format!("{wru:.0} write units, ~{rru:.0} read requests (strongly consistent reads of <4 KB: 1 unit each)"),
    );
    report.note_row(
        "cost",
        &format!("USD {per}"),
        format!(
            "Lambda ${lambda_usd:.4} (incl. {} invocations), DynamoDB ${dynamo_usd:.4}, total ${:.4}; SageMaker not included",
            2.0 * files,
            lambda_usd + dynamo_usd
        ),
    );
}

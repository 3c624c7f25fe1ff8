//! `make bench`: the performance figures of the pipeline, as a table. Dev only, never
//! deployed, and never a test: nothing here asserts on time.
//!
//! `cochl-bench [all|postprocess|writes|e2e|size|submit|backfill|coldstart|cost]... [--price flags]`
//! (see `cost` for the flags). Everything runs on this machine, on 127.0.0.1.

mod backfill;
mod coldstart;
mod cost;
mod e2e;
mod generate;
mod postprocess;
mod report;
mod size;
mod stack;
mod submit;
mod writes;

use std::time::Instant;

use anyhow::{bail, Context, Result};

use report::Report;

const SECTIONS: [&str; 8] = [
    "postprocess",
    "writes",
    "e2e",
    "size",
    "submit",
    "backfill",
    "coldstart",
    "cost",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__postprocess-child") {
        let number = |i: usize| -> Result<usize> {
            args.get(i)
                .context("missing argument")?
                .parse()
                .context("not a number")
        };
        let method = postprocess::Method::from_name(args.get(3).context("missing method")?)?;
        return postprocess::child(number(1)?, number(2)?, method);
    }
    let (names, flags): (Vec<String>, Vec<String>) = {
        let split = args
            .iter()
            .position(|a| a.starts_with("--"))
            .unwrap_or(args.len());
        (args[..split].to_vec(), args[split..].to_vec())
    };
    if names.iter().any(|n| n == "-h" || n == "help") {
        println!(
            "usage: cochl-bench [all|{}]... [--flag value]...",
            SECTIONS.join("|")
        );
        return Ok(());
    }
    let prices = cost::Prices::parse(&flags)?;
    let mut wanted: Vec<&str> = Vec::new();
    for name in &names {
        if name == "all" {
            wanted.extend(SECTIONS);
        } else if let Some(section) = SECTIONS.iter().find(|s| **s == name.as_str()) {
            wanted.push(section);
        } else {
            bail!(
                "unknown section {name}; one of all, {}",
                SECTIONS.join(", ")
            );
        }
    }
    if wanted.is_empty() {
        wanted.extend(SECTIONS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut report = Report::default();
    let mut failures = Vec::new();
    let started = Instant::now();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        eprintln!("[{:6.1}s] {section}", started.elapsed().as_secs_f64());
        let outcome = match *section {
            "postprocess" => postprocess::run(&mut report),
            "writes" => runtime.block_on(writes::run(&mut report)),
            "e2e" => runtime.block_on(e2e::run(&mut report)),
            "size" => {
                size::run(&mut report);
                Ok(())
            }
            "submit" => runtime.block_on(submit::run(&mut report)),
            "backfill" => runtime.block_on(backfill::run(&mut report)),
            "coldstart" => runtime.block_on(coldstart::run(&mut report)),
            _ => {
                cost::run(&mut report, &prices);
                Ok(())
            }
        };
        if let Err(error) = outcome {
            eprintln!("{section} failed: {error:#}");
            report.note_row(section, "FAILED", format!("{error:#}"));
            failures.push(*section);
        }
    }
    println!();
    println!(
        "cochl-bench ({} profile: {}), {:.0} s",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
        option_env!("COCHL_BENCH_PROFILE").unwrap_or("see Makefile"),
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.render());
    if !failures.is_empty() {
        bail!("sections failed: {}", failures.join(", "));
    }
    Ok(())
}

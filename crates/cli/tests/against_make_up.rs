//! The `cochl` binary against the stack `make up` runs (started in-process here, the way
//! `make up` starts it), configured only by `make up`'s variables, or by a CloudFormation
//! stack's outputs for `--stack`: upload with `--wait` (tables, exit codes, a re-upload
//! waited for as a new analysis), `file` (`--json` byte for byte the API's document), `tag`,
//! `jobs`, `timeline`, `redrive`, and one-line errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::{encode_query_value, S3Uri};
use devstack::stack::StackOptions;
use devstack::up::UpStack;
use serde_json::Value;
use testkit::wait;

const COCHL: &str = env!("CARGO_BIN_EXE_cochl");

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(name)
}

/// A scratch directory of this test run.
fn scratch() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cochl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs `cochl args...` with exactly `env` as its AWS and COCHL settings (nothing from this
/// machine's own AWS configuration).
fn cochl(env: &BTreeMap<String, String>, args: &[&str]) -> Result<Output> {
    let mut command = Command::new(COCHL);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("COCHL_") {
            command.env_remove(name);
        }
    }
    command
        .envs(env)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .with_context(|| format!("running cochl {args:?}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cochl args...`, which must succeed.
fn cochl_ok(env: &BTreeMap<String, String>, args: &[&str]) -> Result<String> {
    let output = cochl(env, args)?;
    ensure!(
        output.status.success(),
        "cochl {args:?}: {}\n{}{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    Ok(stdout(&output))
}

/// The query API's answer, read directly over HTTP: what `--json` must reproduce.
async fn api(env: &BTreeMap<String, String>, path: &str) -> Result<testkit::http::RawResponse> {
    let address = env["COCHL_QUERY_URL"]
        .strip_prefix("http://")
        .context("an http URL")?;
    Ok(testkit::http::http(address, "GET", path, &[], b"").await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uploads_waits_queries_draws_and_redrives_against_make_up() -> Result<()> {
    // Messages come back after 2 s and are dead-lettered on their third receive, so the
    // redrive below has a dead letter to move within seconds.
    let up = UpStack::start(StackOptions {
        max_attempts: Some(3),
        visibility_timeout: Duration::from_secs(2),
        max_receive_count: 2,
        ..StackOptions::default()
    })
    .await?;
    let env = up.variables.clone();
    let bucket = env["COCHL_BUCKET"].clone();
    let uri = |name: &str| format!("s3://{bucket}/incoming/{name}");
    let dir = scratch()?;

    // Two files analysed: exit 0, then each file's table in the order given.
    let knocks = sample("knocks.ogg");
    let tone = sample("tone-1khz.wav");
    let printed = cochl_ok(
        &env,
        &[
            "upload",
            "--wait",
            knocks.to_str().context("utf-8")?,
            tone.to_str().context("utf-8")?,
        ],
    )?;
    let first_lines: Vec<&str> = printed
        .lines()
        .filter(|line| line.starts_with("s3://"))
        .collect();
    assert_eq!(first_lines.len(), 2, "{printed}");
    assert!(
        first_lines[0].starts_with(&format!("{}  COMPLETED", uri("knocks.ogg"))),
        "{printed}"
    );
    assert!(
        first_lines[1].starts_with(&format!("{}  COMPLETED", uri("tone-1khz.wav"))),
        "{printed}"
    );
    assert!(
        printed.contains("\n  Knock "),
        "the knocks' tag row: {printed}"
    );
    assert!(
        printed.contains("\n  Tone "),
        "the tone's tag row: {printed}"
    );

    // `file --json` is the API's document byte for byte; `file` is its table.
    let path = format!("/files?uri={}", encode_query_value(&uri("knocks.ogg")));
    let document = api(&env, &path).await?;
    assert_eq!(document.status, 200);
    let json = cochl_ok(&env, &["file", &uri("knocks.ogg"), "--json"])?;
    assert_eq!(
        json.trim_end().as_bytes(),
        &document.body[..],
        "--json prints the document unchanged"
    );
    let first_analysis = document.json()["inference_id"].clone();
    assert!(first_analysis.is_string());
    let table = cochl_ok(&env, &["file", &uri("knocks.ogg")])?;
    assert_eq!(
        table,
        cochl_query::table::render_document(&document.json()),
        "the table of the same document"
    );

    // A re-upload is waited for as a new analysis, not taken for the one already there.
    let printed = cochl_ok(
        &env,
        &[
            "upload",
            "--wait",
            "--sensitivity",
            r#"{"default_sensitivity": 1}"#,
            knocks.to_str().context("utf-8")?,
        ],
    )?;
    assert!(
        printed.starts_with(&format!("{}  COMPLETED", uri("knocks.ogg"))),
        "{printed}"
    );
    let again = api(&env, &path).await?.json();
    assert_ne!(again["inference_id"], first_analysis, "a new analysis");

    // A rejected file: its table says why, and the exit code is 3.
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "not audio")?;
    let rejected = cochl(
        &env,
        &["upload", "--wait", notes.to_str().context("utf-8")?],
    )?;
    assert_eq!(rejected.status.code(), Some(3), "{}", stderr(&rejected));
    let printed = stdout(&rejected);
    assert!(
        printed.starts_with(&format!("{}  REJECTED\n  reason (", uri("notes.txt"))),
        "{printed}"
    );

    // `tag`: the API's pages unchanged with --json, one row per file otherwise.
    let pages = cochl_ok(&env, &["tag", "Knock", "--json"])?;
    let listing = api(&env, "/tags/Knock/files?limit=100").await?;
    assert_eq!(pages.trim_end().as_bytes(), &listing.body[..]);
    let listed = listing.json();
    let files: Vec<&str> = listed["files"]
        .as_array()
        .context("files")?
        .iter()
        .filter_map(|file| file["file"].as_str())
        .map(|file| {
            if file == uri("knocks.ogg") {
                "knocks"
            } else {
                file
            }
        })
        .collect();
    assert_eq!(files, ["knocks"], "only the knocks have knocks");
    let rows = cochl_ok(&env, &["tag", "Knock", "--min-probability", "0.01"])?;
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one file: {rows}");
    assert!(lines[1].starts_with(&uri("knocks.ogg")), "{rows}");
    let none = cochl_ok(&env, &["tag", "Siren"])?;
    assert_eq!(none, "(no files)\n");

    // `jobs --status`: the rejected file, with its reason code.
    let rows = cochl_ok(&env, &["jobs", "--status", "REJECTED"])?;
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2, "{rows}");
    assert!(lines[0].starts_with("file"), "{rows}");
    assert!(lines[1].starts_with(&uri("notes.txt")), "{rows}");
    assert!(lines[1].contains("REJECTED"), "{rows}");
    let pages = cochl_ok(&env, &["jobs", "--status", "COMPLETED", "--json"])?;
    let completed: usize = pages
        .lines()
        .map(|page| {
            serde_json::from_str::<Value>(page).map(|p| p["jobs"].as_array().map_or(0, Vec::len))
        })
        .sum::<Result<usize, _>>()?;
    assert_eq!(completed, 2, "knocks and tone: {pages}");
    let one = cochl_ok(&env, &["jobs", "--status", "COMPLETED", "--max", "1"])?;
    assert_eq!(one.lines().count(), 2, "a header and one job: {one}");
    let zero = cochl(&env, &["jobs", "--status", "COMPLETED", "--max", "0"])?;
    assert_eq!(
        zero.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&zero)
    );

    // `timeline -o`: the SVG of the knocks, one lane, for Knock.
    let svg_path = dir.join("knocks.svg");
    cochl_ok(
        &env,
        &[
            "timeline",
            &uri("knocks.ogg"),
            "-o",
            svg_path.to_str().context("utf-8")?,
        ],
    )?;
    let svg = std::fs::read_to_string(&svg_path)?;
    let parsed = roxmltree::Document::parse(&svg)?;
    let lanes: Vec<&str> = parsed
        .descendants()
        .filter(|node| node.attribute("class") == Some("lane"))
        .filter_map(|lane| lane.attribute("data-tag"))
        .collect();
    assert_eq!(lanes, ["Knock"]);
    let bars = parsed
        .descendants()
        .filter(|node| node.attribute("class") == Some("segment"))
        .count();
    assert!(bars >= 1, "the knocks are drawn: {svg}");

    // `--stack`: the same document, with the resources read from a stack's outputs.
    let stack_outputs = create_outputs_stack(&env).await?;
    let mut bare: BTreeMap<String, String> = env
        .iter()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    bare.insert("COCHL_STACK".to_string(), stack_outputs.clone());
    let json = cochl_ok(&bare, &["file", &uri("knocks.ogg"), "--json"])?;
    assert_eq!(
        json.trim_end().as_bytes(),
        &api(&env, &path).await?.body[..]
    );
    let unknown = cochl(
        &bare,
        &["--stack", "no-such-stack", "file", &uri("knocks.ogg")],
    )?;
    assert_eq!(unknown.status.code(), Some(1));
    let message = stderr(&unknown);
    assert!(
        message.starts_with("cochl: error: describing stack no-such-stack")
            && message.lines().count() == 1,
        "one line: {message}"
    );

    // `redrive`: an outage dead-letters an upload's event; after it, redrive moves it back
    // and the file is analysed.
    up.stack
        .emulator_faults(r#"{"unavailable_next": 1000}"#)
        .await?;
    let outage = dir.join("outage.wav");
    std::fs::copy(&tone, &outage)?;
    cochl_ok(&env, &["upload", outage.to_str().context("utf-8")?])?;
    let stack = &up.stack;
    wait::until(
        "the outage's event to be dead-lettered",
        wait::DEADLINE,
        || async { Ok((stack.queue_depth(&stack.resources.submit_dlq).await? == 1).then_some(())) },
    )
    .await?;
    stack.emulator_admin("POST", "/_emulator/reset", "").await?;
    let printed = cochl_ok(&env, &["redrive", "--queue", "submit"])?;
    assert_eq!(
        printed,
        format!(
            "{} -> {}: 1 moved, 0 left after a failed send\n",
            env["COCHL_SUBMIT_DEAD_LETTER_QUEUE_URL"], env["COCHL_SUBMIT_QUEUE_URL"]
        )
    );
    let outage_uri = S3Uri::new(&bucket, "incoming/outage.wav")?;
    assert_eq!(
        stack
            .wait_terminal(&outage_uri, wait::DEADLINE)
            .await?
            .status,
        JobStatus::Completed
    );
    assert_eq!(stack.queue_depth(&stack.resources.submit_dlq).await?, 0);
    let printed = cochl_ok(&env, &["redrive"])?;
    assert!(
        printed
            .lines()
            .all(|line| line.ends_with(": 0 moved, 0 left after a failed send")),
        "{printed}"
    );

    // Errors: one line, no backtrace.
    for (args, expected) in [
        (vec!["file", "s3://nowhere/x.wav"], "cochl: error: "),
        (
            vec!["upload", "/nonexistent/a.wav"],
            "cochl: error: /nonexistent/a.wav: no such file",
        ),
        (
            vec![
                "upload",
                "--sensitivity",
                "{\"default_sensitivity\": 9}",
                "x.wav",
            ],
            "cochl: error: --sensitivity: ",
        ),
    ] {
        let output = cochl(&env, &args)?;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.starts_with(expected) && message.lines().count() == 1,
            "{args:?}: {message}"
        );
    }
    let mut no_query = env.clone();
    no_query.remove("COCHL_QUERY_URL");
    let output = cochl(&no_query, &["jobs", "--status", "FAILED"])?;
    assert_eq!(
        stderr(&output),
        "cochl: error: COCHL_QUERY_URL is not set: pass --stack NAME (a deployed stack) or set \
         it (after `make up`: source target/devstack/env)\n"
    );

    up.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A CloudFormation stack in moto whose outputs are the running stack's resources under the
/// template's output names; returns its name.
async fn create_outputs_stack(env: &BTreeMap<String, String>) -> Result<String> {
    let outputs = BTreeMap::from([
        (
            "UploadPrefix",
            format!("s3://{}/{}", env["COCHL_BUCKET"], env["COCHL_INPUT_PREFIX"]),
        ),
        ("QueryUrl", env["COCHL_QUERY_URL"].clone()),
        ("SubmitQueueUrl", env["COCHL_SUBMIT_QUEUE_URL"].clone()),
        ("ResultQueueUrl", env["COCHL_RESULTS_QUEUE_URL"].clone()),
    ]);
    let template = serde_json::json!({
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": outputs
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::json!({"Value": value})))
            .collect::<serde_json::Map<String, Value>>(),
    });
    let name = "cochl-cli-test".to_string();
    let config = testkit::sdk_config(&env["AWS_ENDPOINT_URL"]).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .map_err(|error| {
            anyhow::anyhow!(aws_sdk_cloudformation::error::DisplayErrorContext(error))
        })?;
    Ok(name)
}

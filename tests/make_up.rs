//! `make up` and `make backfill` as a user runs them: the real `devstack` binary, started as
//! `make up` starts it, answers `READY`, writes its env file, takes a Batch Operations job
//! from `devstack backfill` in another process (the archive's objects analysed, a missing
//! object reported in the completion report), answers the query API over HTTP at
//! `COCHL_QUERY_URL`, runs the README's `make up` session (the real aws CLI from
//! `.venv-aws`: a filtered subscription, two uploads, one notification, the file's document)
//! and stops at the end of its standard input, removing the env file.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use cochl_aws::dynamo::DynamoStore;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::up::read_env;
use testkit::audio::tone_wav;
use testkit::wait;

const BINARY: &str = env!("CARGO_BIN_EXE_devstack");

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory of this test run.
fn scratch() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cochl-make-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The running `devstack up`; killed if the test fails before stopping it.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) for the child to exit.
fn wait_exit(child: &mut Child, within: Duration) -> Result<std::process::ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > until {
            bail!("devstack up did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_up_serves_a_backfill_and_stops_at_the_end_of_its_input() -> Result<()> {
    let dir = scratch()?;
    let env_file = dir.join("env");
    let mut up = Up(Command::new(BINARY)
        .arg("up")
        .current_dir(workspace())
        .env("DEVSTACK_ENV_FILE", &env_file)
        .env("DEVSTACK_LOG", dir.join("up.log"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting devstack up")?);
    let stdout = up.0.stdout.take().context("stdout")?;
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let first = received
        .recv_timeout(Duration::from_secs(120))
        .context("devstack up said nothing")?;
    assert_eq!(first, "READY", "the first line on stdout");

    let stack = read_env(&env_file)?;
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "COCHL_BUCKET",
        "COCHL_INPUT_PREFIX",
        "COCHL_TABLE_NAME",
        "COCHL_DETECTIONS_TOPIC_ARN",
        "COCHL_EMULATOR_URL",
        "COCHL_QUERY_URL",
        "COCHL_SUBMIT_QUEUE_URL",
        "COCHL_RESULTS_QUEUE_URL",
        "COCHL_SUBMIT_DEAD_LETTER_QUEUE_URL",
        "COCHL_RESULTS_DEAD_LETTER_QUEUE_URL",
    ] {
        ensure!(
            stack.contains_key(name),
            "the env file names {name}: {stack:?}"
        );
    }
    let endpoint = &stack["AWS_ENDPOINT_URL"];
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let config = testkit::sdk_config(endpoint).await;
    let s3 = testkit::s3_client(&config);
    let bucket = &stack["COCHL_BUCKET"];
    let keys: Vec<String> = (0..5).map(|i| format!("archive/old {i}.wav")).collect();
    for key in &keys {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .content_type("audio/wav")
            .body(tone_wav(440.0, 8_000, 1.0).into())
            .send()
            .await?;
    }
    let manifest = dir.join("manifest.csv");
    let mut lines_of_manifest: Vec<String> = keys
        .iter()
        .map(|k| format!("{bucket},{}", k.replace(' ', "%20")))
        .collect();
    lines_of_manifest.push(format!("{bucket},archive/missing.wav"));
    std::fs::write(&manifest, lines_of_manifest.join("\n") + "\n")?;
    let report = dir.join("report.csv");

    let backfill = Command::new(BINARY)
        .args(["backfill", "--manifest"])
        .arg(&manifest)
        .arg("--report")
        .arg(&report)
        .current_dir(workspace())
        .env("DEVSTACK_ENV_FILE", &env_file)
        .env("DEVSTACK_LOG", dir.join("backfill.log"))
        .output()
        .context("running devstack backfill")?;
    let printed = String::from_utf8_lossy(&backfill.stdout);
    assert!(backfill.status.success(), "{printed}");
    assert!(
        printed.contains("(analyse): 6 tasks in")
            && printed.contains("Succeeded 5, TemporaryFailure 0, PermanentFailure 1"),
        "one summary line: {printed}"
    );
    let csv = std::fs::read_to_string(&report)?;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(
        rows[0].starts_with(&format!(
            "{bucket},archive/old%200.wav,,succeeded,200,,queued for analyse"
        )),
        "{csv}"
    );
    assert!(
        rows[5].starts_with(&format!(
            "{bucket},archive/missing.wav,,failed,200,PermanentFailure,object_missing:"
        )),
        "{csv}"
    );

    // The running stack's submit function takes the queued requests to the end.
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        stack["COCHL_TABLE_NAME"].clone(),
    );
    for key in &keys {
        let file = S3Uri::new(bucket, key)?;
        let store = &store;
        let file = &file;
        wait::until(
            &format!("{file} to be analysed"),
            wait::DEADLINE,
            || async move {
                Ok(store
                    .get_job(file)
                    .await?
                    .filter(|job| job.status == JobStatus::Completed))
            },
        )
        .await?;
    }

    // The query API answers over HTTP, as its Function URL does: the file's document and its
    // timeline.
    let query = stack["COCHL_QUERY_URL"]
        .strip_prefix("http://")
        .context("an http URL")?
        .to_string();
    let uri = cochl_core::keys::encode_query_value(&S3Uri::new(bucket, &keys[0])?.to_string());
    let document =
        testkit::http::http(&query, "GET", &format!("/files?uri={uri}"), &[], b"").await?;
    assert_eq!(document.status, 200, "{:?}", document.json());
    assert_eq!(document.json()["status"], "COMPLETED");
    assert_eq!(
        document.json()["file"],
        format!("s3://{bucket}/{}", keys[0])
    );
    let timeline = testkit::http::http(
        &query,
        "GET",
        &format!("/files/timeline.svg?uri={uri}"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(timeline.status, 200);
    assert!(String::from_utf8_lossy(&timeline.body).starts_with("<svg "));
    let missing = testkit::http::http(
        &query,
        "GET",
        "/files?uri=s3%3A%2F%2Fnone%2Fx.wav",
        &[],
        b"",
    )
    .await?;
    assert_eq!(missing.status, 404);

    // The README's session, run as it is written, with the real aws CLI.
    readme_session(&env_file, bucket)?;

    // The end of its standard input stops it, and its env file goes with it.
    drop(up.0.stdin.take());
    let status = wait_exit(&mut up.0, Duration::from_secs(60))?;
    assert!(status.success(), "{status}");
    assert!(!env_file.exists(), "the env file is removed on the way out");
    let _ = std::io::stdout().flush();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The README's `make up` session: the shell block between its `make-up-session` markers,
/// without its two spaces of list indentation.
fn session_from_readme() -> Result<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md"))?;
    let (_, rest) = readme
        .split_once("<!-- make-up-session -->")
        .context("the README's session marker")?;
    let (block, _) = rest
        .split_once("<!-- /make-up-session -->")
        .context("the README's session end marker")?;
    let lines: Vec<&str> = block
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line))
        .filter(|line| !line.starts_with("```") && !line.trim().is_empty())
        .collect();
    ensure!(lines.len() > 5, "a session of commands: {lines:?}");
    Ok(lines.join("\n") + "\n")
}

/// Runs the session in bash (stopping at its first failing command) from the workspace, with
/// the env file of this run in place of `target/devstack/env`, and checks what it printed:
/// exactly one notification (the knocks'; the tone's is filtered out), then the document.
fn readme_session(env_file: &std::path::Path, bucket: &str) -> Result<()> {
    let script =
        session_from_readme()?.replace("target/devstack/env", &env_file.display().to_string());
    ensure!(
        workspace().join(".venv-aws/bin/aws").exists(),
        "the aws CLI is missing: run `make aws-venv` (make test does)"
    );
    let run = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace())
        // Nothing from this machine's own AWS configuration.
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .output()
        .context("running the README session in bash")?;
    let printed = String::from_utf8_lossy(&run.stdout);
    ensure!(
        run.status.success(),
        "the README session failed ({}):\n{printed}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let knocks = format!("s3://{bucket}/incoming/knocks.ogg");
    let documents: Vec<serde_json::Value> = printed
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| value.get("file").is_some())
        .collect();
    ensure!(
        documents.len() == 2,
        "one notification and one document printed, not {}:\n{printed}",
        documents.len()
    );
    let (notification, document) = (&documents[0], &documents[1]);
    assert_eq!(notification["file"], knocks.as_str(), "{notification}");
    assert_eq!(notification["status"], "COMPLETED", "{notification}");
    let tags: Vec<&str> = notification["tags"]
        .as_array()
        .context("the notification's tags")?
        .iter()
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    assert_eq!(tags, ["Knock"], "{notification}");
    assert_eq!(document["file"], knocks.as_str(), "{document}");
    assert_eq!(
        document["inference_id"], notification["inference_id"],
        "the document is of the notified analysis"
    );
    Ok(())
}

//! `make up`: the local stack, kept running for the aws CLI and for `make backfill`.
//!
//! It starts everything (moto, the emulator, the functions on their queues, the sweeper on
//! its interval, the query function over HTTP as its Function URL serves it), writes the stack's addresses as `export NAME=value` lines to an env file
//! (`target/devstack/env`, or `DEVSTACK_ENV_FILE`), prints one line `READY` on stdout, and
//! runs until Ctrl-C, SIGTERM or the end of its standard input. The env file is removed on
//! the way out: a stale one would point at a stack that is gone.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cochl_aws::settings as vars;
use tokio::io::AsyncReadExt;

use crate::query_server::QueryServer;
use crate::stack::{LocalStack, StackOptions, INPUT_PREFIX};

/// Where the env file goes unless `DEVSTACK_ENV_FILE` says otherwise.
pub const DEFAULT_ENV_FILE: &str = "target/devstack/env";

/// The env file's path.
pub fn env_file() -> PathBuf {
    std::env::var_os("DEVSTACK_ENV_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE))
}

/// The variables a running stack publishes: everything the aws CLI, `make backfill` or a
/// script needs to reach it.
pub async fn stack_variables(
    stack: &LocalStack,
    moto: &str,
    query_url: &str,
) -> Result<BTreeMap<String, String>> {
    let resources = &stack.resources;
    let mut variables = BTreeMap::from([
        ("AWS_ENDPOINT_URL".to_string(), moto.to_string()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        // The aws CLI v1 reads the Region from this one only.
        ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
        (vars::BUCKET.to_string(), resources.bucket.clone()),
        (vars::INPUT_PREFIX.to_string(), INPUT_PREFIX.to_string()),
        (vars::TABLE_NAME.to_string(), resources.table.clone()),
        (
            vars::DETECTIONS_TOPIC_ARN.to_string(),
            resources.detections_topic.clone(),
        ),
        ("COCHL_EMULATOR_URL".to_string(), stack.emulator.url()),
        (vars::QUERY_URL.to_string(), query_url.to_string()),
    ]);
    for (name, queue) in [
        (vars::SUBMIT_QUEUE_URL, &resources.submit_queue),
        ("COCHL_RESULTS_QUEUE_URL", &resources.results_queue),
        ("COCHL_SUBMIT_DEAD_LETTER_QUEUE_URL", &resources.submit_dlq),
        (
            "COCHL_RESULTS_DEAD_LETTER_QUEUE_URL",
            &resources.results_dlq,
        ),
        ("COCHL_DETECTIONS_QUEUE_URL", &resources.detections_queue),
    ] {
        variables.insert(name.to_string(), stack.queue_url(queue).await?);
    }
    Ok(variables)
}

/// The env file's text: one `export NAME='value'` line per variable.
pub fn render_env(variables: &BTreeMap<String, String>) -> String {
    variables
        .iter()
        .map(|(name, value)| format!("export {name}='{}'\n", value.replace('\'', r"'\''")))
        .collect()
}

/// Reads an env file written by [`render_env`].
pub fn read_env(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no running local stack: {} not found (start `make up` in another terminal)",
            path.display()
        )
    })?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let Some((name, value)) = line
                .strip_prefix("export ")
                .and_then(|rest| rest.split_once('='))
            else {
                bail!("{}: not an export line: {line:?}", path.display());
            };
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map_or_else(|| value.to_string(), |v| v.replace(r"'\''", "'"));
            Ok((name.to_string(), value))
        })
        .collect()
}

/// A running local stack as `make up` serves it: moto, the pipeline, the query function over
/// HTTP, and the variables that reach them. The `cochl` CLI's tests start one in-process.
pub struct UpStack {
    /// The pipeline (handlers, emulator, event sources, resources).
    pub stack: LocalStack,
    /// The env file's variables: [`stack_variables`] of this stack.
    pub variables: BTreeMap<String, String>,
    query: QueryServer,
    moto: testkit::MotoServer,
}

impl UpStack {
    /// Starts moto (from `.venv`), the pipeline with `options` and the query server.
    pub async fn start(options: StackOptions) -> Result<Self> {
        let moto = testkit::MotoServer::start()
            .map_err(anyhow::Error::msg)
            .context("starting moto (run `make venv`)")?;
        let endpoint = moto.endpoint().to_string();
        let stack = LocalStack::start(options, Some(&endpoint)).await?;
        let query = QueryServer::start(stack.store.clone()).await?;
        let variables = stack_variables(&stack, &endpoint, &query.url()).await?;
        Ok(UpStack {
            stack,
            variables,
            query,
            moto,
        })
    }

    /// Stops the query server, then the pipeline, then moto.
    pub async fn shutdown(self) {
        self.query.shutdown().await;
        self.stack.shutdown().await;
        drop(self.moto);
    }
}

/// Runs the stack until Ctrl-C, SIGTERM or the end of standard input.
pub async fn run_up() -> Result<()> {
    let up = UpStack::start(StackOptions::default()).await?;
    let path = env_file();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, render_env(&up.variables))
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "local stack up: `source {}` for its addresses; Ctrl-C to stop",
        path.display()
    );
    let mut stdout = std::io::stdout();
    writeln!(stdout, "READY")?;
    stdout.flush()?;
    let reason = wait_for_stop().await;
    eprintln!("stopping the local stack ({reason})");
    let _ = std::fs::remove_file(&path);
    up.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or the end of standard input; says which.
async fn wait_for_stop() -> &'static str {
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 256];
        loop {
            match stdin.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let terminated = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminated => "SIGTERM",
        _ = stdin_closed => "end of standard input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_round_trip_any_value() {
        let variables = BTreeMap::from([
            ("A".to_string(), "http://127.0.0.1:5000".to_string()),
            ("B".to_string(), "it's quoted".to_string()),
        ]);
        let text = render_env(&variables);
        assert_eq!(
            text,
            "export A='http://127.0.0.1:5000'\nexport B='it'\\''s quoted'\n"
        );
        let dir = std::env::temp_dir().join(format!("devstack-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("env");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_env(&path).unwrap(), variables);
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = read_env(Path::new("/nonexistent/env")).unwrap_err();
        assert!(format!("{missing:#}").contains("make up"), "{missing:#}");
    }
}

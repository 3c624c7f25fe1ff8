//! Starting and stopping the moto server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use crate::sdk::workspace_root;

/// How long moto may take to start before we give up (a cold Python import is ~2 s).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Why the local services could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The project's virtualenv is missing: `make venv` creates it.
    #[error("no Python at {0}: run `make venv` (it installs the pinned moto[server] into .venv)")]
    NoVenv(PathBuf),
    /// The process could not be spawned.
    #[error("could not start moto: {0}")]
    Spawn(#[from] std::io::Error),
    /// moto exited or printed something unexpected before it was ready.
    #[error("moto did not become ready: {0}")]
    NotReady(String),
}

/// A running moto server on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    // Held open: moto serves until this pipe closes.
    _stdin: ChildStdin,
    endpoint: String,
    port: u16,
}

impl MotoServer {
    /// Starts moto from the project's virtualenv (`COCHL_VENV` or `<workspace>/.venv`) on a
    /// free port and waits until it answers.
    pub fn start() -> Result<Self, TestkitError> {
        let venv = std::env::var_os("COCHL_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv"));
        let python = venv.join("bin/python");
        if !python.exists() {
            return Err(TestkitError::NoVenv(python));
        }
        let script = workspace_root().join("tools/moto/serve.py");
        let log = std::env::var_os("COCHL_MOTO_LOG")
            .map(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(Stdio::from)
            })
            .transpose()?
            .unwrap_or_else(Stdio::null);
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            let _ = child.kill();
            return Err(TestkitError::NotReady("no pipes to the child".into()));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let outcome = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = sender.send(outcome);
        });
        let line = match receiver.recv_timeout(START_DEADLINE) {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::Spawn(error));
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::NotReady(format!(
                    "no READY line within {START_DEADLINE:?}"
                )));
            }
        };
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|port| port.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let status = child.wait().ok();
            return Err(TestkitError::NotReady(format!(
                "unexpected output {line:?} (exit status {status:?}); set COCHL_MOTO_LOG=path to see moto's log"
            )));
        };
        Ok(MotoServer {
            child,
            _stdin: stdin,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL` or [`crate::sdk_config`].
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, for logs and for checking it is gone.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One moto server shared by every test of a test binary.
///
/// Statics are never dropped, but the server still stops when the test process exits: its
/// standard input closes with the process. Tests keep apart by using unique resource names
/// ([`crate::unique_name`]).
pub fn shared_moto() -> Result<&'static MotoServer, String> {
    static SHARED: OnceLock<Result<MotoServer, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| MotoServer::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// An SDK configuration for the [`shared_moto`] server of this test binary.
///
/// # Panics
/// When moto cannot start (the message says to run `make venv`): a test cannot go on
/// without it.
pub async fn shared_sdk_config() -> aws_config::SdkConfig {
    match shared_moto() {
        Ok(moto) => crate::sdk_config(moto.endpoint()).await,
        Err(error) => panic!("moto did not start (run `make venv` first): {error}"),
    }
}

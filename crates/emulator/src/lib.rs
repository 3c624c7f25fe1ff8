//! Dev and test only: a stand-in for a Cochl.Sense SageMaker **asynchronous** endpoint.
//!
//! It speaks the real SageMaker Runtime wire protocol (restJson1), so the unchanged
//! `aws-sdk-sagemakerruntime` client works against it through an endpoint URL:
//! `InvokeEndpointAsync` validates every header as SageMaker does, answers 202 with the
//! output and failure locations, then, in the background, reads the input from S3,
//! decodes the audio for real ([`decode`]), writes a result in Cochl's exact format
//! ([`output`]) and publishes SageMaker's exact success or failure notification to SNS
//! ([`notification`]). `InvokeEndpoint` answers the same result synchronously.
//!
//! **The tags are not Cochl.Sense's.** They come from a documented, deterministic rule
//! on signal features ([`analysis`]): `Tone`, `Noise` and `Knock`. The emulator says so
//! in its logs at start-up and with every result.
//!
//! Tests drive it through an admin API under `/_emulator/` ([`admin`]): scripted
//! results, injected faults (throttling, unavailability, failed or expired inferences,
//! withheld notifications, delays), counters and the input locations it was sent. It
//! only ever binds a loopback address and is never deployed.
//!
//! ```no_run
//! # async fn example(s3: aws_sdk_s3::Client, sns: aws_sdk_sns::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use cochl_emulator::{start, EmulatorConfig, S3Prefix};
//! let config = EmulatorConfig::new(
//!     S3Prefix::parse("s3://bucket/results")?,
//!     S3Prefix::parse("s3://bucket/failures")?,
//! );
//! let emulator = start(config, s3, sns).await?;
//! println!("SageMaker Runtime at {}", emulator.url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub mod admin;
pub mod analysis;
pub mod config;
pub mod decode;
pub mod faults;
mod jobs;
pub mod notification;
pub mod output;
pub mod protocol;
mod server;
mod state;
mod storage;

pub use analysis::{analyse, AnalysisError};
pub use config::{ConfigError, EmulatorConfig, S3Prefix};
pub use faults::{FaultSettings, Faults};
pub use output::ResultDocument;
pub use state::{InputLocations, Stats};
pub use storage::StorageError;

/// How long [`RunningEmulator::shutdown`] waits for open HTTP requests.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The log line every start-up writes, so no one mistakes the tags for Cochl's.
pub const STAND_IN_NOTICE: &str = "cochl-emulator: the tags come from a deterministic stand-in rule on signal features (Tone, Noise, Knock), NOT from the Cochl.Sense model";

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running emulator. Dropping it stops it at once; [`RunningEmulator::shutdown`] stops
/// it gracefully.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for the SDK's endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, finishes open requests and running inferences (each
    /// for up to 10 s), and drops inferences still queued.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(HTTP_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.await;
        }
        tracing::info!(addr = %self.addr, "emulator stopped");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for handle in [self.server.take(), self.dispatcher.take()]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

/// Starts the emulator on `config.bind:config.port` with the given S3 and SNS clients
/// (the S3 client must use path-style addressing for a local endpoint).
pub async fn start(
    config: EmulatorConfig,
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
) -> Result<RunningEmulator, EmulatorError> {
    config.validate()?;
    let requested = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(requested)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: requested,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: requested,
            source,
        })?;
    tracing::warn!("{STAND_IN_NOTICE}");
    tracing::info!(
        %addr,
        endpoint_name = %config.endpoint_name,
        output_path = %config.output_path,
        failure_path = %config.failure_path,
        success_topic = config.success_topic.as_deref().unwrap_or("-"),
        error_topic = config.error_topic.as_deref().unwrap_or("-"),
        max_concurrent = config.max_concurrent,
        "emulator listening"
    );

    let (job_sender, queue) = mpsc::unbounded_channel();
    let (shutdown, stop) = watch::channel(false);
    let shared = state::Shared::new(config, storage::Storage::new(s3, sns), job_sender);
    let dispatcher = jobs::spawn_dispatcher(shared.clone(), queue, stop.clone());
    let app = server::router(shared);
    let mut stop_server = stop;
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_server.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the HTTP server stopped with an error");
        }
    });
    Ok(RunningEmulator {
        addr,
        shutdown,
        server: Some(server),
        dispatcher: Some(dispatcher),
    })
}

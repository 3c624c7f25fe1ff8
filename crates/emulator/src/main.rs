//! `cochl-emulator`: runs the SageMaker async endpoint stand-in on 127.0.0.1.
//!
//! Configuration comes from flags and `COCHL_EMULATOR_*` variables (see `--help` and the
//! crate's README); S3 and SNS clients from the standard AWS environment
//! (`AWS_ENDPOINT_URL` for moto). Prints `LISTENING http://127.0.0.1:<port>` on stdout
//! once bound, logs JSON to stderr, and exits on SIGINT, SIGTERM, or (with
//! `--exit-on-stdin-eof`) when its standard input closes.

use std::io::{Read, Write};
use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use cochl_emulator::config::{parse_command, Command, USAGE};
use cochl_emulator::start;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> ExitCode {
    let command = parse_command(std::env::args().skip(1), |name| std::env::var(name).ok());
    let (config, exit_on_stdin_eof) = match command {
        Ok(Command::Run {
            config,
            exit_on_stdin_eof,
        }) => (*config, exit_on_stdin_eof),
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cochl-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let signalled = match install_signals() {
        Ok(signalled) => signalled,
        Err(e) => {
            eprintln!("cochl-emulator: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };

    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .load()
        .await;
    // Path-style addressing: `bucket.127.0.0.1` does not resolve (and it works on AWS).
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let sns = aws_sdk_sns::Client::new(&sdk);

    let emulator = match start(config, s3, sns).await {
        Ok(emulator) => emulator,
        Err(e) => {
            tracing::error!(error = %e, "could not start");
            eprintln!("cochl-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "LISTENING {}", emulator.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody can learn the port: there is no point in running.
        return ExitCode::FAILURE;
    }

    let stdin_closed = stdin_eof(exit_on_stdin_eof);
    let reason = tokio::select! {
        reason = signalled => reason,
        _ = stdin_closed => "standard input closed",
    };
    tracing::info!(reason, "stopping");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// JSON logs on stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives right after
/// the LISTENING line is not lost) and returns a future that resolves with the name of
/// the first signal received.
#[cfg(unix)]
fn install_signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
fn install_signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    })
}

/// Resolves when standard input reaches end of file, if asked to; never otherwise.
async fn stdin_eof(enabled: bool) {
    if !enabled {
        return std::future::pending().await;
    }
    let (closed, wait) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    let _ = wait.await;
}

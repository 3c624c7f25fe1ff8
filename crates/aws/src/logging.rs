//! Structured JSON logs for the Lambda functions.
//!
//! One JSON object per line on stdout (CloudWatch keeps it as one event); fields of the
//! current span (the inference id, the file URI) are flattened into every line. `RUST_LOG`
//! sets the filter, `info` by default.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber; a second call is a no-op (tests build several handlers).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// The invocation deadline as an [`std::time::Instant`], from the Lambda context's
/// milliseconds since the epoch.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    if deadline_ms == 0 {
        return None;
    }
    Some(
        std::time::Instant::now()
            + std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms)),
    )
}

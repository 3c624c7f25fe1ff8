//! Deadlines and bounded polling: the one place the tests' waiting is defined.
//!
//! A test never sleeps to let something happen: it polls for the state it needs, every
//! [`POLL`] (or a given interval), until a deadline, and fails naming what never happened.
//! The deadlines are safety nets for a stuck run, never timings: a passing run ends as soon
//! as the state is reached.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// One file or message through the local stack (an upload analysed, a notification
/// delivered, a dead letter written), also what the SageMaker stand-in's admin calls and
/// the query API get.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The same under injected faults: the SDK's retries, the submit function's backoff and
/// Lambda's two retries all take their turn first.
pub const FAULTS_DEADLINE: Duration = Duration::from_secs(180);

/// A real function binary on the Lambda Runtime API stand-in (process start, a batch of
/// records at a throttled endpoint, its answer).
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(90);

/// A notification from the emulator alone (no functions in between).
pub const NOTIFICATION_DEADLINE: Duration = Duration::from_secs(30);

/// A child process exiting once told to (stdin closed, SIGTERM).
pub const EXIT_DEADLINE: Duration = Duration::from_secs(20);

/// How often a state is polled unless the caller says otherwise.
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `check` every [`POLL`] until it returns `Some`, for at most `within`; the error
/// says what it was waiting for (`what`, e.g. `"the S3 event"`). `check` runs at least once, and once more at the deadline.
pub async fn until<T, F, Fut>(what: &str, within: Duration, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    until_every(what, within, POLL, check).await
}

/// [`until`] with its own polling interval (for checks that cost more than a read).
pub async fn until_every<T, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    let deadline = started + within;
    loop {
        let last_chance = Instant::now() >= deadline;
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if last_chance {
            bail!("timed out after {within:?} waiting for {what}");
        }
        let now = Instant::now();
        tokio::time::sleep(every.min(deadline.saturating_duration_since(now))).await;
    }
}

/// [`until`] for code without a runtime (child processes, sockets).
pub fn until_blocking<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        let last_chance = Instant::now() >= deadline;
        if let Some(value) = check()? {
            return Ok(value);
        }
        if last_chance {
            bail!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_as_soon_as_the_state_holds_and_fails_at_the_deadline() {
        let mut calls = 0;
        let value = until("third call", Duration::from_secs(5), || {
            calls += 1;
            let done = calls == 3;
            async move { Ok(done.then_some(calls)) }
        })
        .await
        .expect("reached");
        assert_eq!(value, 3);

        let started = Instant::now();
        let error = until("never", Duration::from_millis(120), || async {
            Ok(None::<()>)
        })
        .await
        .expect_err("times out");
        assert!(started.elapsed() >= Duration::from_millis(120));
        assert!(error.to_string().ends_with("waiting for never"), "{error}");
    }

    #[tokio::test]
    async fn an_error_of_the_check_ends_the_wait() {
        let error = until("failing", DEADLINE, || async {
            Err::<Option<()>, _>(anyhow::anyhow!("the check failed"))
        })
        .await
        .expect_err("the check's error");
        assert_eq!(error.to_string(), "the check failed");
    }

    #[test]
    fn blocking_polls_the_same_way() {
        let mut calls = 0;
        let value = until_blocking("second call", Duration::from_secs(5), || {
            calls += 1;
            Ok((calls == 2).then_some("done"))
        })
        .expect("reached");
        assert_eq!(value, "done");
        assert!(until_blocking("never", Duration::from_millis(60), || Ok(None::<()>)).is_err());
    }
}

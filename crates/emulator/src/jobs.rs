//! The asynchronous inference queue and its workers.
//!
//! Accepted invocations enter an unbounded FIFO channel. One dispatcher takes a slot
//! (a semaphore permit, `max_concurrent` in all) and then the next job, so jobs start
//! strictly in the order they were accepted and at most `max_concurrent` run at once.
//! A job:
//! 1. fails if it waited longer than its `RequestTTLSeconds` (or `expire_next_inferences`
//!    says it must);
//! 2. within `InvocationTimeoutSeconds`: reads the input from S3, waits the injected
//!    processing delay, then fails if a failure was injected, else takes the scripted
//!    result if one was attached, else decodes and analyses the audio;
//! 3. writes the result to its output location and publishes the success notification,
//!    or writes the failure reason to its failure location and publishes the failure
//!    notification (`failureReason: "ClientError: <reason>"`), unless
//!    `drop_notifications_next` withholds it (decided then, after the slot is free).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cochl_core::keys::S3Uri;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::analysis::analyse;
use crate::faults::INJECTED_FAILURE;
use crate::notification::{self, Outcome, FAILURE_CONTENT_TYPE, RESULT_CONTENT_TYPE};
use crate::protocol::AsyncInvocation;
use crate::state::Shared;

/// Content type assumed when a request names none (what a model container receives).
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// How long a graceful shutdown waits for running inferences.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What was decided about an inference when it was accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Bytes to write instead of a computed result.
    pub scripted: Option<Bytes>,
    /// Fail with [`INJECTED_FAILURE`] after reading the input.
    pub inject_failure: bool,
    /// Fail as expired, unprocessed (`expire_next_inferences`).
    pub expire: bool,
    /// Extra processing time.
    pub processing_delay: Duration,
}

/// An accepted asynchronous inference.
#[derive(Debug, Clone)]
pub struct Job {
    /// The request as validated at acceptance, replayed when the job runs.
    pub request: AsyncInvocation,
    /// Where the result goes.
    pub output_location: S3Uri,
    /// Where a failure goes.
    pub failure_location: S3Uri,
    /// Wall-clock time of acceptance (`receivedTime`).
    pub received_at: SystemTime,
    /// Monotonic time of acceptance, for the TTL.
    pub received: Instant,
    /// Faults and scripts attached at acceptance.
    pub plan: Plan,
}

/// Whether a job accepted at `received` has outlived its TTL at `now`.
pub fn expired(received: Instant, now: Instant, ttl_seconds: u32) -> bool {
    now.saturating_duration_since(received) > Duration::from_secs(u64::from(ttl_seconds))
}

/// Starts the dispatcher; it ends when `shutdown` turns true (after letting running
/// jobs finish for up to [`SHUTDOWN_GRACE`]) or when every sender is gone.
pub(crate) fn spawn_dispatcher(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(shared.config.max_concurrent));
        let mut running = JoinSet::new();
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let job = tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            {
                let mut control = shared.control();
                let stats = &mut control.stats;
                stats.queued = stats.queued.saturating_sub(1);
                stats.running += 1;
                stats.max_running_seen = stats.max_running_seen.max(stats.running);
            }
            let shared = shared.clone();
            running.spawn(async move {
                let running = RunningGuard(shared.clone());
                let announcement = run(&shared, job).await;
                // Finished once its result or failure is written, as SageMaker counts it:
                // the slot is free before the notification goes out.
                drop(running);
                drop(permit);
                if let Some(announcement) = announcement {
                    announce(&shared, announcement).await;
                }
            });
            while running.try_join_next().is_some() {}
        }
        let abandoned = {
            let mut control = shared.control();
            std::mem::take(&mut control.stats.queued)
        };
        if abandoned > 0 {
            tracing::warn!(abandoned, "shutting down: queued inferences are dropped");
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "shutting down: running inferences did not finish in time and are stopped"
            );
        }
    })
}

/// Counts a job out of `running` when it ends, even when it is aborted.
struct RunningGuard(Arc<Shared>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut control = self.0.control();
        control.stats.running = control.stats.running.saturating_sub(1);
    }
}

/// Runs one job to its notification.
async fn run(shared: &Shared, job: Job) -> Option<Announcement> {
    let inference_id = job.request.inference_id.as_str();
    tracing::info!(inference_id, input = %job.request.input_location, "inference started");
    let result = if job.plan.expire
        || expired(
            job.received,
            Instant::now(),
            job.request.request_ttl_seconds,
        ) {
        shared.control().stats.expired += 1;
        Err(format!(
            "Request expired: it waited in the queue longer than its RequestTTLSeconds ({} s).",
            job.request.request_ttl_seconds
        ))
    } else {
        let timeout = Duration::from_secs(u64::from(job.request.invocation_timeout_seconds));
        match tokio::time::timeout(timeout, process(shared, &job)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "Inference timed out: processing took longer than its InvocationTimeoutSeconds ({} s).",
                job.request.invocation_timeout_seconds
            )),
        }
    };
    let outcome = match result {
        Ok(body) => match shared
            .storage
            .write(&job.output_location, body, RESULT_CONTENT_TYPE)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("Failed to upload the result: {e}")),
        },
        Err(reason) => Err(reason),
    };
    let outcome = match outcome {
        Ok(()) => {
            shared.control().stats.completed += 1;
            tracing::info!(inference_id, output = %job.output_location, "inference completed");
            Outcome::Completed {
                output_location: job.output_location.to_string(),
            }
        }
        Err(reason) => {
            let reason = format!("ClientError: {reason}");
            if let Err(e) = shared
                .storage
                .write(
                    &job.failure_location,
                    Bytes::from(reason.clone()),
                    FAILURE_CONTENT_TYPE,
                )
                .await
            {
                tracing::error!(inference_id, error = %e, "could not write the failure object");
            }
            shared.control().stats.failed += 1;
            tracing::info!(inference_id, failure = %job.failure_location, reason = %reason, "inference failed");
            Outcome::Failed {
                reason,
                failure_location: job.failure_location.to_string(),
            }
        }
    };
    let topic = match outcome {
        Outcome::Completed { .. } => shared.config.success_topic.as_deref(),
        Outcome::Failed { .. } => shared.config.error_topic.as_deref(),
    };
    let Some(topic) = topic else {
        tracing::info!(
            inference_id,
            "no topic configured for this outcome: nothing published"
        );
        return None;
    };
    let message = notification::render(
        &shared.config.region,
        &job.request,
        &outcome,
        job.received_at,
        SystemTime::now(),
    );
    Some(Announcement {
        inference_id: inference_id.to_string(),
        topic: topic.to_string(),
        message,
    })
}

/// A finished inference's notification, published after its slot is free.
struct Announcement {
    inference_id: String,
    topic: String,
    message: String,
}

/// Publishes a finished inference's notification, unless the `drop_notifications_next`
/// fault withholds it.
///
/// Decided here, when there is a notification to publish, rather than at acceptance like
/// the other inference faults: the fault means "the next N to finish", and a real-time
/// inference or an outcome without a topic has nothing to drop. Everything else about
/// the finished inference (its object, its counters, its free slot) has already happened.
async fn announce(shared: &Shared, announcement: Announcement) {
    let Announcement {
        inference_id,
        topic,
        message,
    } = announcement;
    let dropped = {
        let mut control = shared.control();
        let dropped = control.faults.take_notification_drop();
        if dropped {
            control.stats.notifications_dropped += 1;
        }
        dropped
    };
    if dropped {
        tracing::info!(%inference_id, %topic, "notification withheld (injected fault)");
        return;
    }
    match shared.storage.publish(&topic, message).await {
        Ok(message_id) => {
            tracing::info!(%inference_id, %topic, message_id, "notification published")
        }
        Err(e) => tracing::error!(%inference_id, error = %e, "could not publish the notification"),
    }
}

/// Reads, waits, and analyses (or fails, or scripts): the part bounded by the timeout.
async fn process(shared: &Shared, job: &Job) -> Result<Bytes, String> {
    let inference_id = job.request.inference_id.as_str();
    let input = shared
        .storage
        .read(&job.request.input_location)
        .await
        .map_err(|e| format!("Failed to download the input: {e}"))?;
    if !job.plan.processing_delay.is_zero() {
        tokio::time::sleep(job.plan.processing_delay).await;
    }
    if job.plan.inject_failure {
        return Err(INJECTED_FAILURE.to_owned());
    }
    if let Some(script) = &job.plan.scripted {
        tracing::info!(
            inference_id,
            bytes = script.len(),
            "writing a scripted result"
        );
        return Ok(script.clone());
    }
    let content_type = job
        .request
        .content_type
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    let custom_attributes = job.request.custom_attributes.clone();
    let document = tokio::task::spawn_blocking(move || {
        analyse(&input, &content_type, custom_attributes.as_deref())
    })
    .await
    .map_err(|e| format!("Received server error (500) from model: {e}"))?
    .map_err(|e| format!("Received client error (400) from model: {e}"))?;
    tracing::info!(
        inference_id,
        windows = document.data.len(),
        length_sec = document.metadata.length_sec,
        tags = ?document.tag_names(),
        "result computed by the emulator's stand-in tag rule, not by Cochl.Sense"
    );
    document
        .to_json()
        .map(Bytes::from)
        .map_err(|e| format!("Received server error (500) from model: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_expires_only_after_its_ttl() {
        let received = Instant::now();
        assert!(!expired(received, received, 60));
        assert!(!expired(received, received + Duration::from_secs(60), 60));
        assert!(expired(
            received,
            received + Duration::from_millis(60_001),
            60
        ));
        // A clock that went backwards never expires anything.
        assert!(!expired(received + Duration::from_secs(5), received, 60));
    }
}

//! The state shared by the HTTP handlers and the job workers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::EmulatorConfig;
use crate::faults::Faults;
use crate::jobs::Job;
use crate::storage::Storage;

/// Counters served by `GET /_emulator/stats`.
///
/// `queued`, `running`, `max_running_seen`, `max_outstanding_seen` and `expired` describe
/// asynchronous inferences;
/// real-time invocations are counted in `realtime_completed` and `realtime_failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// `InvokeEndpointAsync` calls answered 202.
    pub accepted: u64,
    /// Invocation calls answered 400 `ValidationError` (both APIs).
    pub validation_errors: u64,
    /// Invocation calls answered 429 (injected).
    pub throttled: u64,
    /// Invocation calls answered 503 (injected).
    pub unavailable: u64,
    /// Async inferences that wrote a result.
    pub completed: u64,
    /// Async inferences that wrote a failure.
    pub failed: u64,
    /// Async inferences waiting for a free slot.
    pub queued: u64,
    /// Async inferences being processed.
    pub running: u64,
    /// The most async inferences ever processed at once (since start or reset).
    pub max_running_seen: u64,
    /// The most async inferences ever accepted and not finished at once (`queued` +
    /// `running`, since start or reset): what admission control bounds.
    pub max_outstanding_seen: u64,
    /// Async inferences that failed because they waited longer than their
    /// `RequestTTLSeconds` (counted in `failed` too).
    pub expired: u64,
    /// `InvokeEndpoint` calls answered 200.
    pub realtime_completed: u64,
    /// `InvokeEndpoint` calls answered 424 `ModelError`.
    pub realtime_failed: u64,
    /// Finished async inferences whose notification was withheld by the
    /// `drop_notifications_next` fault (counted in `completed` or `failed` too: their
    /// object was written).
    pub notifications_dropped: u64,
    /// `InvokeEndpointAsync` calls (accepted, refused or faulted alike) whose
    /// `X-Amzn-SageMaker-InputLocation` was not entirely printable ASCII (bytes
    /// 0x20..=0x7E). The emulator accepts any UTF-8 location, as an S3 key may hold any
    /// character, so this is how a test learns a client sent one without failing it.
    pub non_ascii_input_locations: u64,
}

/// The body of `GET /_emulator/input-locations`: the `X-Amzn-SageMaker-InputLocation` of
/// every accepted `InvokeEndpointAsync` call since start or reset, in acceptance order,
/// exactly as sent (an accepted one is always valid UTF-8).
///
/// Kept so a test can check what a client really sent, not only what the emulator made
/// of it (the parsed URI always writes the scheme `s3://`, whatever its case was).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLocations {
    /// The locations, one per accepted call, repeats kept.
    pub input_locations: Vec<String>,
}

impl InputLocations {
    /// The locations holding a byte outside printable ASCII (0x20..=0x7E): what a test
    /// asserts is empty to prove every location it caused to be sent was plain ASCII.
    pub fn non_printable_ascii(&self) -> Vec<&str> {
        self.input_locations
            .iter()
            .map(String::as_str)
            .filter(|location| !crate::protocol::is_printable_ascii(location.as_bytes()))
            .collect()
    }
}

/// What the admin API changes: faults, scripted results, counters and the record of
/// accepted input locations.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub faults: Faults,
    pub scripts: VecDeque<Bytes>,
    pub stats: Stats,
    /// Grows by one location (about a hundred bytes) per accepted call until reset,
    /// unbounded: the emulator is dev and test only, and the project's largest run, the
    /// 1,000-upload soak burst, adds about a hundred kilobytes.
    pub input_locations: Vec<String>,
}

impl Control {
    /// Clears faults, scripts, counters and input locations; the live gauges (`queued`,
    /// `running`) stay.
    pub fn reset(&mut self) {
        let (queued, running) = (self.stats.queued, self.stats.running);
        *self = Control::default();
        self.stats.queued = queued;
        self.stats.running = running;
        self.stats.max_running_seen = running;
        self.stats.max_outstanding_seen = queued + running;
    }
}

/// Everything a handler or worker needs.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub storage: Storage,
    pub jobs: mpsc::UnboundedSender<Job>,
    control: Mutex<Control>,
}

impl Shared {
    pub fn new(
        config: EmulatorConfig,
        storage: Storage,
        jobs: mpsc::UnboundedSender<Job>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            storage,
            jobs,
            control: Mutex::new(Control::default()),
        })
    }

    /// Locks the control block. A panic while holding it cannot leave it inconsistent
    /// (every update is a few field writes), so a poisoned lock is simply taken over.
    pub fn control(&self) -> MutexGuard<'_, Control> {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

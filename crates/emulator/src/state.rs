//! The state shared by the HTTP handlers and the job workers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::Serialize;
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
}

/// What the admin API changes: faults, scripted results and counters.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub faults: Faults,
    pub scripts: VecDeque<Bytes>,
    pub stats: Stats,
}

impl Control {
    /// Clears faults, scripts and counters; the live gauges (`queued`, `running`) stay.
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

//! In-memory doubles of the handlers' ports (`cochl_aws::ports`), for fast tests of handler
//! logic.
//!
//! Each double keeps what a handler wrote so a test can inspect it, counts calls, and can be
//! told to fail the next calls of an operation the way the real service fails (a refused
//! conditional write, an outage, a missing object, a throttled endpoint). They model the
//! contract of each port, not the wire: the moto suites prove the wire.

mod endpoint;
mod objects;
mod queue;
mod store;
mod topic;

pub use endpoint::{EndpointReply, ScriptedEndpoint};
pub use objects::{MemoryObjects, ObjectOp};
pub use queue::{MemoryQueue, SentMessage};
pub use store::{MemoryStore, StoreOp, StoreState};
pub use topic::RecordingTopic;

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Locks a double's state; a panicking test poisons nothing another test can see.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-operation counters of calls made, and which coming calls must fail.
#[derive(Debug)]
struct Script<Op> {
    calls: HashMap<Op, usize>,
    /// Call numbers (counted from 1 since the double was made) that fail.
    failing: HashMap<Op, BTreeSet<usize>>,
}

impl<Op> Default for Script<Op> {
    fn default() -> Self {
        Script {
            calls: HashMap::new(),
            failing: HashMap::new(),
        }
    }
}

impl<Op: Copy + Eq + Hash> Script<Op> {
    /// Counts a call; true when this call must fail.
    fn call(&mut self, op: Op) -> bool {
        let n = self.calls.entry(op).or_default();
        *n += 1;
        let n = *n;
        self.failing
            .get_mut(&op)
            .is_some_and(|failing| failing.remove(&n))
    }

    /// The next `times` calls fail.
    fn fail_next(&mut self, op: Op, times: usize) {
        let done = self.calls(op);
        self.failing
            .entry(op)
            .or_default()
            .extend(done + 1..=done + times);
    }

    /// Only the `nth` call from now (1 = the next) fails.
    fn fail_nth(&mut self, op: Op, nth: usize) {
        let done = self.calls(op);
        self.failing.entry(op).or_default().insert(done + nth);
    }

    fn calls(&self, op: Op) -> usize {
        self.calls.get(&op).copied().unwrap_or(0)
    }
}

//! The job table in memory, with the same conditional-write contract as DynamoDB's.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use cochl_aws::dynamo::{BatchStats, Expect, SlotGrant, StoreError};
use cochl_aws::ports::{AnalysisTags, JobStore, TagsWritten};
use cochl_aws::records::{JobRecord, OrphanRecord, StoredTags};
use cochl_core::detections::TagDetection;
use cochl_core::inference_id::InferenceId;
use cochl_core::keys::S3Uri;

use super::{lock, Script};

/// The store's operations, to count calls and inject failures per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// [`JobStore::get_job`].
    GetJob,
    /// [`JobStore::put_job`].
    PutJob,
    /// [`JobStore::replace_tags`].
    ReplaceTags,
    /// [`JobStore::delete_tags`].
    DeleteTags,
    /// [`JobStore::record_orphan`].
    RecordOrphan,
    /// [`JobStore::acquire_slot`].
    AcquireSlot,
    /// [`JobStore::release_slot`].
    ReleaseSlot,
    /// [`JobStore::expired_slots`].
    ExpiredSlots,
    /// [`JobStore::file_of_inference`].
    FileOfInference,
    /// [`JobStore::submitted_before`].
    SubmittedBefore,
}

/// Everything the store holds; tests read it and may change it to play a concurrent writer.
#[derive(Debug, Clone, Default)]
pub struct StoreState {
    /// Job per file.
    pub jobs: BTreeMap<S3Uri, JobRecord>,
    /// Tag items per file, by item name: the analysis that wrote each and its detection.
    pub tags: BTreeMap<S3Uri, BTreeMap<String, (InferenceId, TagDetection)>>,
    /// Orphan notifications by inference id (the first copy wins, as in the table).
    pub orphans: BTreeMap<String, OrphanRecord>,
    /// In-flight slots: the inference holding each and when it may be presumed leaked.
    pub slots: BTreeMap<InferenceId, i64>,
}

type Interleaving = Box<dyn FnOnce(&mut StoreState) + Send>;

/// The job table in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
    script: Mutex<Script<StoreOp>>,
    conflicts: Mutex<usize>,
    /// Changes to make before a coming job write: (writes still to wait, change).
    before_put: Mutex<Vec<(usize, Interleaving)>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("state", &*lock(&self.state))
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty table.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// The file's job as stored.
    pub fn job(&self, file: &S3Uri) -> Option<JobRecord> {
        lock(&self.state).jobs.get(file).cloned()
    }

    /// Stores a job as it is, unconditionally (a test's starting point).
    pub fn insert_job(&self, job: JobRecord) {
        lock(&self.state).jobs.insert(job.file.clone(), job);
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> StoreState {
        lock(&self.state).clone()
    }

    /// The names of the file's tag items and the analysis each belongs to.
    pub fn tag_items(&self, file: &S3Uri) -> Vec<(String, InferenceId)> {
        lock(&self.state)
            .tags
            .get(file)
            .map(|items| {
                items
                    .iter()
                    .map(|(name, (id, _))| (name.clone(), id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tag names stored for the file, sorted.
    pub fn tag_names(&self, file: &S3Uri) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.state)
            .tags
            .get(file)
            .map(|items| items.values().map(|(_, d)| d.name.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Inferences holding an in-flight slot.
    pub fn slots(&self) -> Vec<InferenceId> {
        lock(&self.state).slots.keys().cloned().collect()
    }

    /// Orphans recorded, by inference id.
    pub fn orphans(&self) -> Vec<OrphanRecord> {
        lock(&self.state).orphans.values().cloned().collect()
    }

    /// The next `times` calls of `op` fail as an unreachable service would.
    pub fn fail_next(&self, op: StoreOp, times: usize) {
        lock(&self.script).fail_next(op, times);
    }

    /// Only the `nth` call of `op` from now (1 = the next) fails.
    pub fn fail_nth(&self, op: StoreOp, nth: usize) {
        lock(&self.script).fail_nth(op, nth);
    }

    /// The next `times` job writes are refused as if another writer had won, without
    /// changing anything (the writer's change is invisible: a pure race).
    pub fn conflict_next_puts(&self, times: usize) {
        *lock(&self.conflicts) += times;
    }

    /// Just before the `nth` job write from now (1 = the next) is checked, `change` runs on
    /// the stored state: a concurrent writer that wins the race (another delivery claiming
    /// first, a notification settling the job, a newer upload taking it over).
    pub fn before_put(&self, nth: usize, change: impl FnOnce(&mut StoreState) + Send + 'static) {
        lock(&self.before_put).push((nth, Box::new(change)));
    }

    /// Calls made of `op`, failed ones included.
    pub fn calls(&self, op: StoreOp) -> usize {
        lock(&self.script).calls(op)
    }

    fn call(&self, op: StoreOp) -> Result<(), StoreError> {
        if lock(&self.script).call(op) {
            return Err(StoreError::Service {
                operation: "memory",
                message: format!("injected failure of {op:?}"),
            });
        }
        Ok(())
    }

    fn remove_items(state: &mut StoreState, file: &S3Uri, items: &StoredTags) -> usize {
        let Some(stored) = state.tags.get_mut(file) else {
            return 0;
        };
        items
            .names()
            .iter()
            .filter(|name| stored.remove(*name).is_some())
            .count()
    }
}

/// The name the memory store gives an item: one item per tag and analysis.
fn item_name(inference_id: &InferenceId, tag: &str) -> String {
    format!("{inference_id}/{tag}")
}

impl JobStore for MemoryStore {
    async fn get_job(&self, file: &S3Uri) -> Result<Option<JobRecord>, StoreError> {
        self.call(StoreOp::GetJob)?;
        Ok(self.job(file))
    }

    async fn put_job(&self, job: &JobRecord, expect: Expect) -> Result<(), StoreError> {
        self.call(StoreOp::PutJob)?;
        let interleavings: Vec<Interleaving> = {
            let mut pending = lock(&self.before_put);
            let (due, later): (Vec<_>, Vec<_>) = pending
                .drain(..)
                .map(|(nth, change)| (nth.saturating_sub(1), change))
                .partition(|(left, _)| *left == 0);
            *pending = later;
            due.into_iter().map(|(_, change)| change).collect()
        };
        let mut state = lock(&self.state);
        for change in interleavings {
            change(&mut state);
        }
        {
            let mut conflicts = lock(&self.conflicts);
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(StoreError::Conflict);
            }
        }
        let current = state.jobs.get(&job.file);
        let holds = match expect {
            Expect::Absent => current.is_none(),
            Expect::Revision(revision) => current.is_some_and(|c| c.revision == revision),
        };
        if !holds {
            return Err(StoreError::Conflict);
        }
        state.jobs.insert(job.file.clone(), job.clone());
        Ok(())
    }

    async fn replace_tags(
        &self,
        tags: &AnalysisTags<'_>,
        previous: &StoredTags,
        _deadline: Option<Instant>,
    ) -> Result<TagsWritten, StoreError> {
        self.call(StoreOp::ReplaceTags)?;
        let (file, inference_id, detections) = (tags.file, tags.inference_id, tags.detections);
        let stored = StoredTags::from_names(
            detections
                .iter()
                .map(|d| item_name(inference_id, &d.name))
                .collect(),
        );
        let mut state = lock(&self.state);
        let deletes = MemoryStore::remove_items(&mut state, file, &previous.without(&stored));
        let items = state.tags.entry(file.clone()).or_default();
        for detection in detections {
            items.insert(
                item_name(inference_id, &detection.name),
                (inference_id.clone(), detection.clone()),
            );
        }
        Ok(TagsWritten {
            stored,
            stats: BatchStats {
                requests: u32::from(!detections.is_empty() || deletes > 0),
                puts: detections.len(),
                deletes,
                retried_items: 0,
            },
        })
    }

    async fn delete_tags(
        &self,
        file: &S3Uri,
        items: &StoredTags,
        _deadline: Option<Instant>,
    ) -> Result<BatchStats, StoreError> {
        self.call(StoreOp::DeleteTags)?;
        let deletes = MemoryStore::remove_items(&mut lock(&self.state), file, items);
        Ok(BatchStats {
            requests: u32::from(!items.is_empty()),
            deletes,
            ..BatchStats::default()
        })
    }

    async fn file_of_inference(
        &self,
        inference_id: &InferenceId,
    ) -> Result<Option<S3Uri>, StoreError> {
        self.call(StoreOp::FileOfInference)?;
        Ok(lock(&self.state)
            .jobs
            .values()
            .find(|job| job.inference_id.as_ref() == Some(inference_id))
            .map(|job| job.file.clone()))
    }

    async fn submitted_before(
        &self,
        changed_before: &str,
        max: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.call(StoreOp::SubmittedBefore)?;
        let mut waiting: Vec<JobRecord> = lock(&self.state)
            .jobs
            .values()
            .filter(|job| {
                job.status == cochl_core::job::JobStatus::Submitted
                    && job.updated_at.as_str() < changed_before
            })
            .cloned()
            .collect();
        waiting.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
        waiting.truncate(max);
        Ok(waiting)
    }

    async fn record_orphan(&self, orphan: &OrphanRecord) -> Result<(), StoreError> {
        self.call(StoreOp::RecordOrphan)?;
        lock(&self.state)
            .orphans
            .entry(orphan.inference_id.clone())
            .or_insert_with(|| orphan.clone());
        Ok(())
    }

    async fn acquire_slot(
        &self,
        inference_id: &InferenceId,
        limit: u32,
        expires_at: i64,
    ) -> Result<SlotGrant, StoreError> {
        self.call(StoreOp::AcquireSlot)?;
        let mut state = lock(&self.state);
        if state.slots.contains_key(inference_id) {
            return Ok(SlotGrant::AlreadyHeld);
        }
        let in_flight = state.slots.len() as u64;
        if in_flight >= u64::from(limit) {
            return Ok(SlotGrant::Full { in_flight });
        }
        state.slots.insert(inference_id.clone(), expires_at);
        Ok(SlotGrant::Acquired)
    }

    async fn release_slot(&self, inference_id: &InferenceId) -> Result<bool, StoreError> {
        self.call(StoreOp::ReleaseSlot)?;
        Ok(lock(&self.state).slots.remove(inference_id).is_some())
    }

    async fn expired_slots(&self, now: i64, max: usize) -> Result<Vec<InferenceId>, StoreError> {
        self.call(StoreOp::ExpiredSlots)?;
        Ok(lock(&self.state)
            .slots
            .iter()
            .filter(|(_, expires_at)| **expires_at < now)
            .map(|(id, _)| id.clone())
            .take(max)
            .collect())
    }
}

//! The records the pipeline keeps per file, independent of how DynamoDB stores them.

use cochl_core::detections::{Segment, TagDetection};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobSnapshot, JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use serde::{Deserialize, Serialize};

/// The job of one file (bucket and key): which upload is current and how far its analysis got.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The analysed object: one job per bucket and key, whatever its uploads.
    pub file: S3Uri,
    /// Where the analysis of the current upload stands.
    pub status: JobStatus,
    /// Which upload of the key the job is about, to tell duplicates, stale events and newer
    /// uploads apart.
    pub version: ObjectVersion,
    /// Optimistic-lock counter: every write expects the revision it read and stores one more.
    pub revision: u64,
    /// The inference of the current upload (absent only for a rejection, which is never
    /// sent to the endpoint).
    pub inference_id: Option<InferenceId>,
    /// True once the endpoint accepted the inference (answered 202).
    pub accepted: bool,
    /// The claim's lease (seconds since the Unix epoch): until then the delivery that
    /// claimed the job may still be sending it, and no other delivery sends it. `None` once
    /// the request was accepted, or when its sender gave up the claim (a deferral).
    pub claimed_until: Option<i64>,
    /// Times the request expired in the endpoint's queue and was resubmitted under a new
    /// inference id (`COCHL_MAX_EXPIRY_RESUBMITS` at most).
    pub expiry_resubmits: u32,
    /// True once the outcome's detection notification was published, so a retried
    /// invocation publishes exactly the notifications still missing.
    pub notified: bool,
    /// The Cochl content type sent (or that would have been sent).
    pub content_type: Option<String>,
    /// Object size in bytes.
    pub size_bytes: Option<u64>,
    /// The custom attributes header sent.
    pub custom_attributes: Option<String>,
    /// Where SageMaker will write the result.
    pub output_location: Option<S3Uri>,
    /// Where SageMaker will write a failure.
    pub failure_location: Option<S3Uri>,
    /// Machine-readable reason of a rejection or failure (e.g. `not_audio`, `inference_failed`).
    pub reason_code: Option<String>,
    /// Human-readable reason of a rejection or failure.
    pub reason: Option<String>,
    /// When this upload's job was recorded (RFC 3339, UTC, milliseconds).
    pub submitted_at: String,
    /// When the job reached its terminal state.
    pub completed_at: Option<String>,
    /// When the job item last changed.
    pub updated_at: String,
    /// Audio length from the result.
    pub length_sec: Option<f64>,
    /// Per-tag summary of the completed analysis.
    pub tags: Vec<TagSummary>,
    /// The tag items this file has in the table, so a later analysis or a newer upload can
    /// delete them without a query.
    pub tag_items: StoredTags,
    /// When DynamoDB may purge the item (seconds since the Unix epoch, the table's TTL
    /// attribute): set on a deleted upload's tombstone only, once no late event of the
    /// removed upload can still arrive.
    pub purge_at: Option<i64>,
}

impl JobRecord {
    /// What the domain's decisions need to know about the job.
    pub fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            status: self.status,
            version: self.version.clone(),
            inference_id: self.inference_id.clone(),
            accepted: self.accepted,
            claimed_until: self.claimed_until,
        }
    }
}

/// Names of the tag items a file has in the table, as the store chose them.
///
/// Opaque to the handlers: only the store creates the names (they encode its key layout);
/// a handler keeps them on the job and hands them back to delete exactly those items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredTags(Vec<String>);

impl StoredTags {
    /// Wraps names a store produced (or read back from a job item).
    pub fn from_names(names: Vec<String>) -> Self {
        StoredTags(names)
    }

    /// The names, in the order they were written.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// True when the file has no tag items.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The items of `self` that `kept` does not name: what a replacement must delete.
    pub fn without(&self, kept: &StoredTags) -> StoredTags {
        StoredTags(
            self.0
                .iter()
                .filter(|name| !kept.0.contains(name))
                .cloned()
                .collect(),
        )
    }
}

/// A tag's totals, kept on the job item so "what was heard" needs one read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagSummary {
    /// Cochl tag name.
    pub name: String,
    /// Highest probability anywhere in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag.
    pub detected_seconds: f64,
    /// Windows with the tag.
    pub windows: u32,
}

impl From<&TagDetection> for TagSummary {
    fn from(detection: &TagDetection) -> Self {
        TagSummary {
            name: detection.name.clone(),
            max_probability: detection.max_probability,
            detected_seconds: detection.detected_seconds,
            windows: detection.windows,
        }
    }
}

/// One stored part of a tag's detections in one file. A tag with very many segments is split
/// into several parts so no item nears DynamoDB's 400 KB limit; part 0 carries the totals and
/// is the one the "files with tag X" index lists.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRecord {
    /// The analysed file the detections were heard in.
    pub file: S3Uri,
    /// The inference that produced it.
    pub inference_id: InferenceId,
    /// When the analysis completed (RFC 3339), the index's sort order.
    pub completed_at: String,
    /// Cochl tag name.
    pub name: String,
    /// Part number, from 0.
    pub part: u32,
    /// How many parts the tag has.
    pub parts: u32,
    /// Highest probability anywhere in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag.
    pub detected_seconds: f64,
    /// Windows with the tag.
    pub windows: u32,
    /// This part's segments, in time order.
    pub segments: Vec<Segment>,
}

/// A notification whose inference no job knows, kept for inspection instead of dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanRecord {
    /// The inference id of the notification.
    pub inference_id: String,
    /// The invocation status it reported.
    pub status: String,
    /// The input it names, if any.
    pub input_location: Option<S3Uri>,
    /// When it was received (RFC 3339).
    pub received_at: String,
    /// The notification exactly as received, so nothing about it is lost.
    pub message: String,
}

/// One page of a listing with the opaque cursor of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass back to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

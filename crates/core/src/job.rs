//! Job states and the rules that make every function idempotent.
//!
//! Every S3 event and every SageMaker notification is delivered at least once and may be
//! reordered. The job item of a file (one per bucket and key) is the single place that says
//! which upload of the file is current and how far its analysis got. The functions read it,
//! ask [`decide_upload`] or [`decide_result`] what to do, and write conditionally, so a
//! duplicate changes nothing, a stale event changes nothing, and a newer upload of the same
//! key replaces the older analysis.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::inference_id::InferenceId;
use crate::keys::Sequencer;

/// Where a file's analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobStatus {
    /// Accepted and sent (or being sent) to the endpoint; waiting for its notification.
    Submitted,
    /// The result was read and its detections recorded.
    Completed,
    /// The endpoint reported a failure; the reason is kept.
    Failed,
    /// Never sent: the object is not something Cochl can analyse; the reason is kept.
    Rejected,
    /// The upload was deleted from the bucket: its analysis is gone and the file is unknown
    /// to every query. The job item stays as a tombstone (with the deletion's order) so a
    /// late or reordered event of an older upload is recognised as stale, not analysed again.
    Deleted,
}

impl JobStatus {
    /// Every status, for validation and listings.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Submitted,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Rejected,
        JobStatus::Deleted,
    ];

    /// The name stored in the table and shown by the query API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Submitted => "SUBMITTED",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Rejected => "REJECTED",
            JobStatus::Deleted => "DELETED",
        }
    }

    /// True once nothing more will happen to this upload.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Submitted)
    }

    /// Whether the same upload may move from `self` to `next`.
    ///
    /// Only a submitted job moves, and only to a terminal state. (A newer upload of the same
    /// key replaces the job whatever its state; that is [`decide_upload`]'s business.)
    pub fn can_become(self, next: JobStatus) -> bool {
        matches!(
            (self, next),
            (JobStatus::Submitted, JobStatus::Completed)
                | (JobStatus::Submitted, JobStatus::Failed)
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?} (expected SUBMITTED, COMPLETED, FAILED, REJECTED or DELETED)")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    /// Accepts any case, so `?status=failed` works in the query API.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Which upload of a key an event is about.
///
/// S3 identifies a version by its version id on versioned buckets, otherwise only by ETag
/// (content) plus the event's `sequencer` (order). moto sends no sequencer, so the event time
/// stands in for ordering there; duplicates of one event carry the same time, so they still
/// compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectVersion {
    /// `versionId` on a versioned bucket.
    pub version_id: Option<String>,
    /// The object's ETag (quotes stripped).
    pub etag: Option<String>,
    /// The event's `sequencer`, which orders events for one key.
    pub sequencer: Option<Sequencer>,
    /// The event time in milliseconds since the Unix epoch.
    pub event_time_ms: i64,
}

impl ObjectVersion {
    /// True when both describe the same upload (a duplicate event).
    pub fn same_upload(&self, other: &ObjectVersion) -> bool {
        self.content_part() == other.content_part() && self.order_cmp(other) == Ordering::Equal
    }

    /// True when both name the same content: the same version id, else the same ETag. A
    /// backfill reads the object with HeadObject, whose Last-Modified is not the event time
    /// the job recorded, so it recognises an analysed upload by this alone.
    pub fn same_content(&self, other: &ObjectVersion) -> bool {
        self.content_part() == other.content_part()
    }

    /// Orders two uploads of one key: by sequencer when both have one, else by event time,
    /// and a tie between different uploads is broken by their identity so every reader
    /// agrees which is newer.
    pub fn upload_cmp(&self, other: &ObjectVersion) -> Ordering {
        self.order_cmp(other)
            .then_with(|| self.content_part().cmp(&other.content_part()))
    }

    fn order_cmp(&self, other: &ObjectVersion) -> Ordering {
        match (&self.sequencer, &other.sequencer) {
            (Some(a), Some(b)) => a.cmp(b),
            _ => self.event_time_ms.cmp(&other.event_time_ms),
        }
    }

    /// The part naming the content: the version id, else the ETag.
    pub(crate) fn content_part(&self) -> (&'static str, &str) {
        match (&self.version_id, &self.etag) {
            (Some(version), _) => ("v", version.as_str()),
            (None, Some(etag)) => ("e", etag.as_str()),
            (None, None) => ("-", ""),
        }
    }
}

/// What the job item currently says, as far as the decisions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSnapshot {
    /// Current status.
    pub status: JobStatus,
    /// The upload the job belongs to.
    pub version: ObjectVersion,
    /// The inference the job waits for or came from (none for a rejection).
    pub inference_id: Option<InferenceId>,
    /// True once the endpoint answered 202 (the output location is stored).
    pub accepted: bool,
    /// Until when (seconds since the Unix epoch) the delivery that claimed the job may still
    /// be sending it: a lease, so concurrent deliveries of one upload make one request, and
    /// a claimant that died is taken over once its lease has run out.
    pub claimed_until: Option<i64>,
}

/// What to do with an S3 event for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadDecision {
    /// No job yet: claim it and submit.
    Claim,
    /// The event is a newer upload than the job's: replace the job and submit.
    Supersede,
    /// Same upload, claimed but the endpoint never accepted it (an earlier attempt failed
    /// midway, or was deferred) and nobody holds the claim: submit again under the same
    /// inference id.
    Retry,
    /// Same upload, claimed and being sent by another delivery whose lease still runs:
    /// wait (the event comes back later and then finds it submitted, or the lease expired).
    InProgress,
    /// Same upload, already submitted or finished: nothing to do.
    Duplicate,
    /// An older upload than the job's: nothing to do.
    Stale,
}

/// Decides what an S3 event for a key means given the key's job, if any, at `now` (seconds
/// since the Unix epoch, compared with the claim's lease).
pub fn decide_upload(
    existing: Option<&JobSnapshot>,
    incoming: &ObjectVersion,
    now: i64,
) -> UploadDecision {
    let Some(job) = existing else {
        return UploadDecision::Claim;
    };
    if job.version.same_upload(incoming) {
        return match (job.status, job.accepted) {
            (JobStatus::Submitted, false) if job.claimed_until.is_some_and(|t| t > now) => {
                UploadDecision::InProgress
            }
            (JobStatus::Submitted, false) => UploadDecision::Retry,
            _ => UploadDecision::Duplicate,
        };
    }
    match incoming.upload_cmp(&job.version) {
        Ordering::Greater => UploadDecision::Supersede,
        Ordering::Less | Ordering::Equal => UploadDecision::Stale,
    }
}

/// An `ObjectRemoved` event for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The event's order (sequencer, else event time); on a versioned bucket, the version id
    /// of the delete marker or of the deleted version.
    pub version: ObjectVersion,
    /// True when the event removed the current object: an unversioned delete or a delete
    /// marker. False when it permanently deleted one version (`ObjectRemoved:Delete` with a
    /// version id), which removes the analysed upload only if that version is the job's.
    pub hides_current: bool,
}

/// What to do with an `ObjectRemoved` event for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalDecision {
    /// The analysed upload was deleted: delete its detections and leave a tombstone.
    Delete,
    /// No job (or an older tombstone): record the deletion, so an older upload's late event
    /// is recognised as stale.
    Tombstone,
    /// The same deletion again, or one older than the job's upload: nothing to do.
    Ignore,
}

/// Decides what an `ObjectRemoved` event means given the key's job, if any.
pub fn decide_removal(existing: Option<&JobSnapshot>, removal: &Removal) -> RemovalDecision {
    let Some(job) = existing else {
        return RemovalDecision::Tombstone;
    };
    if job.status == JobStatus::Deleted {
        return match removal.version.order_cmp(&job.version) {
            Ordering::Greater => RemovalDecision::Tombstone,
            Ordering::Less | Ordering::Equal => RemovalDecision::Ignore,
        };
    }
    if !removal.hides_current {
        // One version permanently deleted: only the analysed one matters.
        return match (&removal.version.version_id, &job.version.version_id) {
            (Some(deleted), Some(analysed)) if deleted == analysed => RemovalDecision::Delete,
            _ => RemovalDecision::Ignore,
        };
    }
    // A deletion can only follow the upload it removes; in the same instant (event times of
    // one millisecond, without sequencers) it is the later of the two.
    match removal.version.order_cmp(&job.version) {
        Ordering::Greater | Ordering::Equal => RemovalDecision::Delete,
        Ordering::Less => RemovalDecision::Ignore,
    }
}

/// What to do with a SageMaker notification for an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultDecision {
    /// The job waits for this inference: record the outcome.
    Apply,
    /// The job already holds this inference's outcome: nothing to do.
    Duplicate,
    /// The job now belongs to a newer upload: the outcome is history, ignore it.
    Superseded,
    /// No job knows this inference: record it as an orphan for inspection.
    Orphan,
}

/// Decides what a notification means given the job its input location points to.
pub fn decide_result(existing: Option<&JobSnapshot>, inference_id: &str) -> ResultDecision {
    match existing {
        None => ResultDecision::Orphan,
        Some(job) if job.inference_id.as_ref().map(InferenceId::as_str) != Some(inference_id) => {
            ResultDecision::Superseded
        }
        Some(job) if job.status.is_terminal() => ResultDecision::Duplicate,
        Some(_) => ResultDecision::Apply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(s: &str) -> Option<Sequencer> {
        Some(Sequencer::parse(s).expect("hex"))
    }

    fn version(etag: &str, sequencer: Option<Sequencer>, time: i64) -> ObjectVersion {
        ObjectVersion {
            version_id: None,
            etag: Some(etag.to_string()),
            sequencer,
            event_time_ms: time,
        }
    }

    fn job(status: JobStatus, version: ObjectVersion, accepted: bool) -> JobSnapshot {
        JobSnapshot {
            status,
            version,
            inference_id: InferenceId::parse("inf-1").ok(),
            accepted,
            claimed_until: None,
        }
    }

    #[test]
    fn status_names_round_trip_in_any_case() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
            assert_eq!(
                status.as_str().to_lowercase().parse::<JobStatus>(),
                Ok(status)
            );
            assert_eq!(status.to_string(), status.as_str());
        }
        let err = "DONE".parse::<JobStatus>().unwrap_err();
        assert!(err.to_string().contains("DONE"));
    }

    #[test]
    fn only_submitted_moves_and_only_to_terminal() {
        use JobStatus::*;
        let allowed: Vec<(JobStatus, JobStatus)> = JobStatus::ALL
            .into_iter()
            .flat_map(|a| JobStatus::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(allowed, vec![(Submitted, Completed), (Submitted, Failed)]);
        assert!(!Submitted.is_terminal());
        assert!(Completed.is_terminal() && Failed.is_terminal() && Rejected.is_terminal());
    }

    #[test]
    fn first_event_claims() {
        assert_eq!(
            decide_upload(None, &version("a", seq("01"), 1), 0),
            UploadDecision::Claim
        );
    }

    #[test]
    fn duplicate_event_is_a_no_op_in_every_state() {
        let v = version("a", seq("0055AED6DCD90281E5"), 10);
        for status in JobStatus::ALL {
            let existing = job(status, v.clone(), true);
            assert_eq!(
                decide_upload(Some(&existing), &v, 0),
                UploadDecision::Duplicate,
                "{status}"
            );
        }
        let rejected = JobSnapshot {
            inference_id: None,
            accepted: false,
            ..job(JobStatus::Rejected, v.clone(), false)
        };
        assert_eq!(
            decide_upload(Some(&rejected), &v, 0),
            UploadDecision::Duplicate
        );
    }

    #[test]
    fn claimed_but_never_accepted_is_retried() {
        let v = version("a", seq("01"), 10);
        let existing = job(JobStatus::Submitted, v.clone(), false);
        assert_eq!(decide_upload(Some(&existing), &v, 0), UploadDecision::Retry);
    }

    #[test]
    fn a_claim_whose_lease_runs_is_in_progress_until_it_expires() {
        let v = version("a", seq("01"), 10);
        let claimed = JobSnapshot {
            claimed_until: Some(1_000),
            ..job(JobStatus::Submitted, v.clone(), false)
        };
        assert_eq!(
            decide_upload(Some(&claimed), &v, 999),
            UploadDecision::InProgress
        );
        // The lease's last second is still the claimant's; from then on anyone may take over.
        assert_eq!(
            decide_upload(Some(&claimed), &v, 1_000),
            UploadDecision::Retry
        );
        assert_eq!(
            decide_upload(Some(&claimed), &v, 5_000),
            UploadDecision::Retry
        );
        // Once accepted, the lease no longer matters: the upload is submitted.
        let accepted = JobSnapshot {
            accepted: true,
            ..claimed.clone()
        };
        assert_eq!(
            decide_upload(Some(&accepted), &v, 999),
            UploadDecision::Duplicate
        );
        // A newer upload does not wait for an older one's claimant.
        let newer = version("b", seq("02"), 20);
        assert_eq!(
            decide_upload(Some(&claimed), &newer, 999),
            UploadDecision::Supersede
        );
    }

    fn removal(sequencer: &str, time: i64) -> Removal {
        Removal {
            version: ObjectVersion {
                version_id: None,
                etag: None,
                sequencer: seq(sequencer),
                event_time_ms: time,
            },
            hides_current: true,
        }
    }

    #[test]
    fn a_deletion_after_the_upload_deletes_and_an_older_one_is_ignored() {
        let uploaded = version("a", seq("05"), 50);
        for status in [
            JobStatus::Submitted,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Rejected,
        ] {
            let existing = job(status, uploaded.clone(), true);
            assert_eq!(
                decide_removal(Some(&existing), &removal("06", 60)),
                RemovalDecision::Delete,
                "{status}"
            );
            assert_eq!(
                decide_removal(Some(&existing), &removal("04", 40)),
                RemovalDecision::Ignore,
                "a delete of an older upload, delivered late: {status}"
            );
        }
        assert_eq!(
            decide_removal(None, &removal("06", 60)),
            RemovalDecision::Tombstone,
            "a delete that overtook its upload's event is remembered"
        );
    }

    #[test]
    fn a_tombstone_orders_later_events_of_the_key() {
        let tombstone = JobSnapshot {
            inference_id: None,
            accepted: false,
            ..job(JobStatus::Deleted, removal("06", 60).version, false)
        };
        // The upload the delete removed, delivered after it: stale, never analysed again.
        assert_eq!(
            decide_upload(Some(&tombstone), &version("a", seq("05"), 50), 0),
            UploadDecision::Stale
        );
        // A re-upload after the delete: a new analysis.
        assert_eq!(
            decide_upload(Some(&tombstone), &version("a", seq("07"), 70), 0),
            UploadDecision::Supersede
        );
        // The same delete again changes nothing; a later one moves the tombstone on.
        assert_eq!(
            decide_removal(Some(&tombstone), &removal("06", 60)),
            RemovalDecision::Ignore
        );
        assert_eq!(
            decide_removal(Some(&tombstone), &removal("08", 80)),
            RemovalDecision::Tombstone
        );
    }

    #[test]
    fn deleting_one_version_removes_the_analysis_only_if_it_is_the_analysed_one() {
        let analysed = ObjectVersion {
            version_id: Some("v2".into()),
            ..version("a", seq("05"), 50)
        };
        let existing = job(JobStatus::Completed, analysed, true);
        let delete_version = |id: &str| Removal {
            version: ObjectVersion {
                version_id: Some(id.into()),
                ..removal("09", 90).version
            },
            hides_current: false,
        };
        assert_eq!(
            decide_removal(Some(&existing), &delete_version("v1")),
            RemovalDecision::Ignore
        );
        assert_eq!(
            decide_removal(Some(&existing), &delete_version("v2")),
            RemovalDecision::Delete
        );
        // A delete marker hides the current version whatever its own version id.
        let marker = Removal {
            version: ObjectVersion {
                version_id: Some("marker".into()),
                ..removal("09", 90).version
            },
            hides_current: true,
        };
        assert_eq!(
            decide_removal(Some(&existing), &marker),
            RemovalDecision::Delete
        );
    }

    #[test]
    fn newer_upload_supersedes_and_older_is_stale() {
        let old = version("a", seq("0055AED6DCD90281E5"), 10);
        let new = version("b", seq("0055AED6DCD90281F0"), 5);
        for status in JobStatus::ALL {
            let existing = job(status, old.clone(), true);
            assert_eq!(
                decide_upload(Some(&existing), &new, 0),
                UploadDecision::Supersede,
                "sequencer wins over time"
            );
            let existing = job(status, new.clone(), true);
            assert_eq!(
                decide_upload(Some(&existing), &old, 0),
                UploadDecision::Stale
            );
        }
    }

    #[test]
    fn same_content_uploaded_again_is_a_new_upload() {
        let first = version("same-etag", seq("0A"), 10);
        let again = version("same-etag", seq("0B"), 20);
        let existing = job(JobStatus::Completed, first, true);
        assert_eq!(
            decide_upload(Some(&existing), &again, 0),
            UploadDecision::Supersede
        );
    }

    #[test]
    fn without_sequencers_event_time_orders_uploads() {
        // moto: no sequencer.
        let old = version("a", None, 1_000);
        let new = version("b", None, 2_000);
        let existing = job(JobStatus::Submitted, old.clone(), true);
        assert_eq!(
            decide_upload(Some(&existing), &new, 0),
            UploadDecision::Supersede
        );
        let existing = job(JobStatus::Submitted, new, true);
        assert_eq!(
            decide_upload(Some(&existing), &old, 0),
            UploadDecision::Stale
        );
    }

    #[test]
    fn version_id_names_the_upload_on_versioned_buckets() {
        let a = ObjectVersion {
            version_id: Some("v1".into()),
            ..version("x", seq("01"), 1)
        };
        let b = ObjectVersion {
            version_id: Some("v2".into()),
            ..version("x", seq("02"), 2)
        };
        assert!(!a.same_upload(&b));
        assert!(a.same_upload(&a.clone()));
        let existing = job(JobStatus::Completed, a, true);
        assert_eq!(
            decide_upload(Some(&existing), &b, 0),
            UploadDecision::Supersede
        );
    }

    #[test]
    fn sequencer_padding_counts_as_equal() {
        let a = version("e", seq("0A"), 1);
        let b = version("e", seq("0A00"), 1);
        assert!(a.same_upload(&b));
    }

    #[test]
    fn result_decisions() {
        let v = version("a", seq("01"), 1);
        assert_eq!(decide_result(None, "inf-1"), ResultDecision::Orphan);
        let submitted = job(JobStatus::Submitted, v.clone(), true);
        assert_eq!(
            decide_result(Some(&submitted), "inf-1"),
            ResultDecision::Apply
        );
        let not_yet_accepted = job(JobStatus::Submitted, v.clone(), false);
        assert_eq!(
            decide_result(Some(&not_yet_accepted), "inf-1"),
            ResultDecision::Apply,
            "a notification may overtake the 202's bookkeeping"
        );
        assert_eq!(
            decide_result(Some(&submitted), "inf-0"),
            ResultDecision::Superseded
        );
        for status in [JobStatus::Completed, JobStatus::Failed] {
            let done = job(status, v.clone(), true);
            assert_eq!(
                decide_result(Some(&done), "inf-1"),
                ResultDecision::Duplicate
            );
            assert_eq!(
                decide_result(Some(&done), "inf-0"),
                ResultDecision::Superseded
            );
        }
        let rejected = JobSnapshot {
            inference_id: None,
            ..job(JobStatus::Rejected, v, false)
        };
        assert_eq!(
            decide_result(Some(&rejected), "inf-1"),
            ResultDecision::Superseded
        );
    }

    fn arb_version() -> impl Strategy<Value = ObjectVersion> {
        (
            proptest::option::of("v[0-9]"),
            proptest::option::of("e[0-9]"),
            proptest::option::of("[0-9A-F]{1,4}"),
            0i64..5,
        )
            .prop_map(
                |(version_id, etag, sequencer, event_time_ms)| ObjectVersion {
                    version_id,
                    etag,
                    sequencer: sequencer.map(|s| Sequencer::parse(&s).expect("hex")),
                    event_time_ms,
                },
            )
    }

    /// What the contract of [`ObjectVersion::upload_cmp`] says, written out without it:
    /// the later upload is the one with the greater sequencer when both have one (here all
    /// sequencers, padded by [`model_cmp`]), else the later event time; a tie between
    /// different uploads goes to the greater identity, a version id above an ETag above
    /// nothing, then by the text.
    fn model_newer_key(v: &ObjectVersion) -> (String, i64, u8, String) {
        let sequencer = v
            .sequencer
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let (rank, identity) = match (&v.version_id, &v.etag) {
            (Some(id), _) => (2, id.clone()),
            (None, Some(etag)) => (1, etag.clone()),
            (None, None) => (0, String::new()),
        };
        (sequencer, v.event_time_ms, rank, identity)
    }

    /// The model's comparison of two uploads of one key: by sequencer when both have one,
    /// else by time; then by identity.
    fn model_cmp(a: &ObjectVersion, b: &ObjectVersion) -> Ordering {
        let (sa, ta, ra, ia) = model_newer_key(a);
        let (sb, tb, rb, ib) = model_newer_key(b);
        let order = if a.sequencer.is_some() && b.sequencer.is_some() {
            // S3's rule: right-pad the shorter with zeros, then compare as strings.
            let width = sa.len().max(sb.len());
            format!("{sa:0<width$}").cmp(&format!("{sb:0<width$}"))
        } else {
            ta.cmp(&tb)
        };
        order.then((ra, ia).cmp(&(rb, ib)))
    }

    /// Versions of one key, each with a sequencer (a test drops them all to play moto).
    /// Small ranges, so ties in time and sequencer are frequent.
    fn arb_uploads() -> impl Strategy<Value = Vec<ObjectVersion>> {
        let one = (
            proptest::option::of("v[0-9]"),
            proptest::option::of("e[0-9]"),
            "0[0-3]0[0-3]",
            0i64..5,
        )
            .prop_map(
                |(version_id, etag, sequencer, event_time_ms)| ObjectVersion {
                    version_id,
                    etag,
                    sequencer: Some(Sequencer::parse(&sequencer).expect("hex")),
                    event_time_ms,
                },
            );
        proptest::collection::vec(one, 1..8)
    }

    #[test]
    fn upload_order_examples_from_the_contract() {
        // Sequencers decide when both have one, whatever the times.
        let a = version("a", seq("0A"), 50);
        let b = version("b", seq("0B"), 10);
        assert_eq!(a.upload_cmp(&b), Ordering::Less);
        // S3 pads with zeros: "0A" is "0A0", before "0A1".
        assert_eq!(
            version("a", seq("0A"), 0).upload_cmp(&version("a", seq("0A1"), 0)),
            Ordering::Less
        );
        // One side without a sequencer: event time decides.
        let c = version("c", None, 20);
        assert_eq!(c.upload_cmp(&b), Ordering::Greater);
        assert_eq!(c.upload_cmp(&a), Ordering::Less);
        // Same time, no sequencers: identity decides, the same way for every reader.
        let e1 = version("e1", None, 7);
        let e2 = version("e2", None, 7);
        assert_eq!(e1.upload_cmp(&e2), Ordering::Less);
        let v0 = ObjectVersion {
            version_id: Some("v0".into()),
            ..version("e9", None, 7)
        };
        assert_eq!(
            v0.upload_cmp(&e2),
            Ordering::Greater,
            "a version id ranks above an ETag"
        );
        let nothing = ObjectVersion {
            etag: None,
            ..version("", None, 7)
        };
        assert_eq!(nothing.upload_cmp(&e1), Ordering::Less);
        assert_eq!(e1.upload_cmp(&e1.clone()), Ordering::Equal);
        // Same content and order: the same upload; same content at another time: not.
        assert!(e1.same_upload(&version("e1", None, 7)));
        assert!(!e1.same_upload(&version("e1", None, 8)));
        assert!(e1.same_content(&version("e1", None, 8)));
        assert!(!e1.same_content(&e2));
    }

    proptest! {
        #[test]
        fn upload_order_is_the_contracts(a in arb_version(), b in arb_version()) {
            prop_assert_eq!(a.upload_cmp(&b), model_cmp(&a, &b));
            prop_assert_eq!(a.upload_cmp(&b), b.upload_cmp(&a).reverse());
        }

        #[test]
        fn replaying_events_in_any_order_ends_on_the_newest(
            with_sequencers in any::<bool>(),
            versions in arb_uploads(),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..20),
        ) {
            // All events share sequencer presence, as events of one bucket do.
            let versions: Vec<ObjectVersion> = versions
                .into_iter()
                .map(|v| ObjectVersion { sequencer: v.sequencer.filter(|_| with_sequencers), ..v })
                .collect();
            let mut job: Option<JobSnapshot> = None;
            let mut replay: Vec<&ObjectVersion> = order.iter().map(|i| &versions[i.index(versions.len())]).collect();
            replay.extend(versions.iter());
            for v in replay {
                let decision = decide_upload(job.as_ref(), v, 0);
                // What the model expects, from the job held so far.
                let expected = match &job {
                    None => UploadDecision::Claim,
                    Some(j) => match model_cmp(v, &j.version) {
                        Ordering::Equal => UploadDecision::Duplicate,
                        Ordering::Greater => UploadDecision::Supersede,
                        Ordering::Less => UploadDecision::Stale,
                    },
                };
                prop_assert_eq!(decision, expected);
                if matches!(decision, UploadDecision::Claim | UploadDecision::Supersede) {
                    job = Some(JobSnapshot { status: JobStatus::Submitted, version: v.clone(), inference_id: None, accepted: true, claimed_until: None });
                }
            }
            // The newest upload by the model, found without the order under test.
            let newest = versions.iter().max_by(|a, b| model_cmp(a, b)).expect("non-empty");
            let kept = job.expect("some event claimed");
            prop_assert_eq!(model_cmp(&kept.version, newest), Ordering::Equal);
        }
    }
}

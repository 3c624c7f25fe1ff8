//! Backfill: analysing objects that never produced an upload event (an archive older than the
//! stack, keys outside the input prefix), and re-applying new settings to analysed files.
//!
//! S3 Batch Operations hands the backfill function one object per task. `analyse` and
//! `reanalyse` tasks become a [`BackfillRequest`] on the submit queue, so admission control
//! paces a backfill of any size exactly as it paces uploads; `remerge` needs no inference and
//! runs in the backfill function itself. [`decide_backfill`] is the rule submit (and the
//! backfill function, to answer its task) applies to a request, given the file's job.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::inference_id::InferenceId;
use crate::job::{JobSnapshot, JobStatus, ObjectVersion, UploadDecision};

/// The top-level member that tells a backfill request from an S3 notification on the queue.
pub const BACKFILL_MEMBER: &str = "cochlBackfill";

/// What a backfill run does to each object of its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackfillMode {
    /// Analyse objects not analysed yet; an analysed version is left alone (no inference).
    Analyse,
    /// A new inference even for an analysed version (after a sensitivity change, say): the
    /// new analysis supersedes the old one as a newer upload would.
    Reanalyse,
    /// No inference: merge the stored result again with the current margins and minimum
    /// probability.
    Remerge,
}

impl BackfillMode {
    /// Every mode, for messages that list them.
    pub const ALL: [BackfillMode; 3] = [
        BackfillMode::Analyse,
        BackfillMode::Reanalyse,
        BackfillMode::Remerge,
    ];

    /// The name used in `userArguments.mode` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillMode::Analyse => "analyse",
            BackfillMode::Reanalyse => "reanalyse",
            BackfillMode::Remerge => "remerge",
        }
    }
}

impl fmt::Display for BackfillMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backfill mode {0:?} (expected analyse, reanalyse or remerge)")]
pub struct UnknownMode(pub String);

impl FromStr for BackfillMode {
    type Err = UnknownMode;

    /// Any case; the American spellings are accepted too.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "analyse" | "analyze" => Ok(BackfillMode::Analyse),
            "reanalyse" | "reanalyze" => Ok(BackfillMode::Reanalyse),
            "remerge" => Ok(BackfillMode::Remerge),
            _ => Err(UnknownMode(text.to_string())),
        }
    }
}

/// Analyse (or reanalyse) one object: the message the backfill function puts on the submit
/// queue. Submit reads the object and the job again and decides with [`decide_backfill`], so
/// duplicates, retries and late copies are harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackfillRequest {
    /// `s3://bucket/key` of the object.
    pub file: String,
    /// The version the manifest names, on a versioned bucket; `None`: the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `analyse` or `reanalyse` (`remerge` is never queued).
    pub mode: BackfillMode,
    /// The run's sensitivity (`userArguments.sensitivity`), the usual JSON; it overrides the
    /// stack default and the object's own metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
    /// The run (the Batch Operations job id): a reanalysis' inference id derives from it.
    pub run: String,
}

impl BackfillRequest {
    /// The message body: `{"cochlBackfill": {...}}`.
    pub fn to_body(&self) -> String {
        crate::envelope::to_body(BACKFILL_MEMBER, self)
    }

    /// Reads a message body; `None` when it is not a backfill request at all, `Some(Err)`
    /// when it claims to be one but is malformed.
    pub fn from_body(body: &serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        crate::envelope::from_body(body, BACKFILL_MEMBER)
    }
}

/// The inference a backfill request asks for: the object's own id for `analyse` (the id an
/// upload event of this version would have had, so the two cannot both run), a fresh id per
/// run for `reanalyse`.
pub fn wanted_inference(upload_id: &InferenceId, mode: BackfillMode, run: &str) -> InferenceId {
    match mode {
        BackfillMode::Reanalyse => upload_id.reanalysis(run),
        BackfillMode::Analyse | BackfillMode::Remerge => upload_id.clone(),
    }
}

/// Decides what a backfill request for an object means given the key's job, if any, at `now`
/// (seconds since the Unix epoch, compared with a claim's lease).
///
/// `incoming` is the object as HeadObject describes it (its Last-Modified standing in for an
/// event time), `wanted` the inference the request asks for ([`wanted_inference`]).
/// - The job already holds `wanted`: the request's own earlier attempt; the usual rules for
///   one upload apply (retry an unsent claim, wait for a live one, else a duplicate).
/// - The job holds the same content (version id, else ETag): `analyse` is a duplicate;
///   `reanalyse` supersedes it, unless another delivery is sending it right now (it waits).
/// - Other content: the newer of the two wins, as between two uploads; a deleted file's
///   tombstone is superseded only by an object written after the deletion.
pub fn decide_backfill(
    existing: Option<&JobSnapshot>,
    incoming: &ObjectVersion,
    wanted: &InferenceId,
    mode: BackfillMode,
    now: i64,
) -> UploadDecision {
    let Some(job) = existing else {
        return UploadDecision::Claim;
    };
    let claim_held = job.claimed_until.is_some_and(|until| until > now);
    let sending = job.status == JobStatus::Submitted && !job.accepted;
    if job.inference_id.as_ref() == Some(wanted) && job.status != JobStatus::Deleted {
        return match (sending, claim_held) {
            (true, true) => UploadDecision::InProgress,
            (true, false) => UploadDecision::Retry,
            (false, _) => UploadDecision::Duplicate,
        };
    }
    if job.status != JobStatus::Deleted && job.version.same_content(incoming) {
        return match mode {
            BackfillMode::Analyse | BackfillMode::Remerge => UploadDecision::Duplicate,
            BackfillMode::Reanalyse if sending && claim_held => UploadDecision::InProgress,
            BackfillMode::Reanalyse => UploadDecision::Supersede,
        };
    }
    match incoming.upload_cmp(&job.version) {
        Ordering::Greater => UploadDecision::Supersede,
        Ordering::Less | Ordering::Equal => UploadDecision::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Sequencer;

    const NOW: i64 = 1_000_000;

    fn version(etag: &str, time: i64) -> ObjectVersion {
        ObjectVersion {
            version_id: None,
            etag: Some(etag.to_string()),
            sequencer: None,
            event_time_ms: time,
        }
    }

    fn id(text: &str) -> InferenceId {
        InferenceId::parse(text).expect("valid id")
    }

    fn job(status: JobStatus, version: ObjectVersion, inference: &str) -> JobSnapshot {
        JobSnapshot {
            status,
            version,
            inference_id: Some(id(inference)),
            accepted: status != JobStatus::Submitted,
            claimed_until: None,
        }
    }

    #[test]
    fn modes_parse_in_any_case_and_refuse_others() {
        for mode in BackfillMode::ALL {
            assert_eq!(mode.as_str().parse::<BackfillMode>(), Ok(mode));
            assert_eq!(
                mode.as_str().to_uppercase().parse::<BackfillMode>(),
                Ok(mode)
            );
        }
        assert_eq!("analyze".parse(), Ok(BackfillMode::Analyse));
        assert_eq!(" reanalyze ".parse(), Ok(BackfillMode::Reanalyse));
        let error = "rerun".parse::<BackfillMode>().unwrap_err();
        assert!(error.to_string().contains("rerun"), "{error}");
    }

    #[test]
    fn requests_round_trip_and_refuse_what_is_not_one() {
        let request = BackfillRequest {
            file: "s3://b/archive/a.wav".into(),
            version_id: Some("v1".into()),
            mode: BackfillMode::Reanalyse,
            sensitivity: Some(r#"{"default_sensitivity": 1}"#.into()),
            run: "job-1".into(),
        };
        let body: serde_json::Value = serde_json::from_str(&request.to_body()).unwrap();
        assert_eq!(body[BACKFILL_MEMBER]["mode"], "reanalyse");
        assert_eq!(BackfillRequest::from_body(&body).unwrap().unwrap(), request);
        assert!(BackfillRequest::from_body(&serde_json::json!({"Records": []})).is_none());
        let broken =
            serde_json::json!({BACKFILL_MEMBER: {"file": "s3://b/k", "mode": "x", "run": "r"}});
        assert!(BackfillRequest::from_body(&broken).unwrap().is_err());
        let extra = serde_json::json!({BACKFILL_MEMBER: {"file": "s3://b/k", "mode": "analyse", "run": "r", "x": 1}});
        assert!(BackfillRequest::from_body(&extra).unwrap().is_err());
    }

    #[test]
    fn analyse_wants_the_upload_id_and_reanalyse_a_fresh_one() {
        let upload = id("cochl-upload");
        assert_eq!(
            wanted_inference(&upload, BackfillMode::Analyse, "run"),
            upload
        );
        let fresh = wanted_inference(&upload, BackfillMode::Reanalyse, "run");
        assert_ne!(fresh, upload);
        assert_eq!(fresh, upload.reanalysis("run"));
    }

    #[test]
    fn a_file_without_a_job_is_claimed() {
        for mode in BackfillMode::ALL {
            assert_eq!(
                decide_backfill(None, &version("e", 5), &id("cochl-a"), mode, NOW),
                UploadDecision::Claim
            );
        }
    }

    #[test]
    fn analyse_skips_the_same_content_whatever_its_recorded_time() {
        // The job came from an upload event at t=1000; HeadObject's Last-Modified says 999.
        for status in [
            JobStatus::Submitted,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Rejected,
        ] {
            let existing = job(status, version("e", 1000), "cochl-upload");
            assert_eq!(
                decide_backfill(
                    Some(&existing),
                    &version("e", 999),
                    &id("cochl-other"),
                    BackfillMode::Analyse,
                    NOW
                ),
                UploadDecision::Duplicate,
                "{status}"
            );
        }
    }

    #[test]
    fn reanalyse_supersedes_the_same_content_once_per_run() {
        let existing = job(JobStatus::Completed, version("e", 1000), "cochl-upload");
        let run = id("cochl-run-1");
        assert_eq!(
            decide_backfill(
                Some(&existing),
                &version("e", 999),
                &run,
                BackfillMode::Reanalyse,
                NOW
            ),
            UploadDecision::Supersede
        );
        // Once the run's inference holds the job, the same task again is a duplicate...
        let reanalysed = job(JobStatus::Completed, version("e", 1000), "cochl-run-1");
        assert_eq!(
            decide_backfill(
                Some(&reanalysed),
                &version("e", 999),
                &run,
                BackfillMode::Reanalyse,
                NOW
            ),
            UploadDecision::Duplicate
        );
        // ...and another run supersedes it again.
        assert_eq!(
            decide_backfill(
                Some(&reanalysed),
                &version("e", 999),
                &id("cochl-run-2"),
                BackfillMode::Reanalyse,
                NOW
            ),
            UploadDecision::Supersede
        );
    }

    #[test]
    fn the_request_s_own_claim_is_retried_or_waited_for() {
        let mut claimed = job(JobStatus::Submitted, version("e", 1000), "cochl-run-1");
        claimed.accepted = false;
        claimed.claimed_until = Some(NOW + 1);
        let run = id("cochl-run-1");
        let decide = |snapshot: &JobSnapshot| {
            decide_backfill(
                Some(snapshot),
                &version("e", 1000),
                &run,
                BackfillMode::Reanalyse,
                NOW,
            )
        };
        assert_eq!(decide(&claimed), UploadDecision::InProgress);
        claimed.claimed_until = Some(NOW);
        assert_eq!(decide(&claimed), UploadDecision::Retry, "lease over at NOW");
        claimed.claimed_until = None;
        assert_eq!(decide(&claimed), UploadDecision::Retry);
        claimed.accepted = true;
        assert_eq!(decide(&claimed), UploadDecision::Duplicate);
    }

    #[test]
    fn reanalyse_waits_for_an_upload_being_sent() {
        let mut sending = job(JobStatus::Submitted, version("e", 1000), "cochl-upload");
        sending.accepted = false;
        sending.claimed_until = Some(NOW + 30);
        assert_eq!(
            decide_backfill(
                Some(&sending),
                &version("e", 1000),
                &id("cochl-run"),
                BackfillMode::Reanalyse,
                NOW
            ),
            UploadDecision::InProgress
        );
    }

    #[test]
    fn reanalyse_waits_only_while_the_sending_claim_runs() {
        let reanalyse = |job: &JobSnapshot| {
            decide_backfill(
                Some(job),
                &version("e", 1000),
                &id("cochl-run"),
                BackfillMode::Reanalyse,
                NOW,
            )
        };
        // Being sent, but its claimant's lease ran out: nobody is sending it, reanalyse.
        let mut expired = job(JobStatus::Submitted, version("e", 1000), "cochl-upload");
        expired.accepted = false;
        expired.claimed_until = Some(NOW);
        assert_eq!(reanalyse(&expired), UploadDecision::Supersede);
        // Accepted by the endpoint (not being sent any more), whatever its lease says.
        let mut accepted = job(JobStatus::Submitted, version("e", 1000), "cochl-upload");
        accepted.accepted = true;
        accepted.claimed_until = Some(NOW + 30);
        assert_eq!(reanalyse(&accepted), UploadDecision::Supersede);
    }

    #[test]
    fn modes_display_as_their_names() {
        let names: Vec<String> = BackfillMode::ALL.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["analyse", "reanalyse", "remerge"]);
    }

    #[test]
    fn other_content_goes_by_age() {
        let existing = job(JobStatus::Completed, version("old", 1000), "cochl-upload");
        for mode in [BackfillMode::Analyse, BackfillMode::Reanalyse] {
            assert_eq!(
                decide_backfill(
                    Some(&existing),
                    &version("new", 2000),
                    &id("cochl-x"),
                    mode,
                    NOW
                ),
                UploadDecision::Supersede,
                "{mode}: a newer object replaces the analysis"
            );
            assert_eq!(
                decide_backfill(
                    Some(&existing),
                    &version("older", 500),
                    &id("cochl-x"),
                    mode,
                    NOW
                ),
                UploadDecision::Stale,
                "{mode}: an older version named by the manifest changes nothing"
            );
        }
    }

    #[test]
    fn a_tombstone_yields_only_to_a_later_object() {
        let mut deleted = job(JobStatus::Deleted, version("e", 1000), "cochl-upload");
        deleted.inference_id = None;
        deleted.version.sequencer = Some(Sequencer::parse("0A").expect("hex"));
        let decide = |time| {
            decide_backfill(
                Some(&deleted),
                &version("e", time),
                &id("cochl-upload"),
                BackfillMode::Analyse,
                NOW,
            )
        };
        assert_eq!(decide(2000), UploadDecision::Supersede, "re-uploaded since");
        assert_eq!(
            decide(900),
            UploadDecision::Stale,
            "written before the deletion"
        );
    }
}

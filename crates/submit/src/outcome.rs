//! What happened to one S3 record: the invocation's answer and its log line.

use serde::Serialize;

/// The outcome of a record that was handled. A record that could not be handled is a
/// [`RecordError`](crate::error::RecordError) instead, so an outcome is always final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordOutcome {
    /// The endpoint accepted the inference; its notification will settle the job.
    Submitted {
        /// `s3://bucket/key` of the upload.
        file: String,
        /// The deterministic id the endpoint will echo in its notification.
        inference_id: String,
        /// InvokeEndpointAsync calls made, throttled ones included.
        attempts: u32,
    },
    /// Never sent: recorded REJECTED with a stable code users can filter on.
    Rejected {
        /// `s3://bucket/key` of the upload.
        file: String,
        /// Stable reason code (`not_audio`, `empty_object`, ...).
        code: String,
        /// What a person needs to fix the upload.
        reason: String,
    },
    /// The endpoint refused the request outright; recorded FAILED and notified, because no
    /// SageMaker notification will ever come for it.
    Refused {
        /// `s3://bucket/key` of the upload.
        file: String,
        /// The inference that was refused.
        inference_id: String,
        /// The endpoint's reason.
        reason: String,
    },
    /// The endpoint is full (`in_flight` of `limit` inferences accepted and unfinished): the
    /// job waits, claimed and not yet sent, and its message comes back later.
    Deferred {
        /// `s3://bucket/key` of the upload.
        file: String,
        /// The inference that waits for room.
        inference_id: String,
        /// Inferences in flight when the slot was refused.
        in_flight: u64,
        /// The limit (`COCHL_MAX_IN_FLIGHT`).
        limit: u32,
    },
    /// Another delivery of the same upload holds the claim and is sending it (its lease
    /// runs until `claimed_until`, seconds since the epoch): this one comes back later.
    InProgress {
        /// `s3://bucket/key` of the upload.
        file: String,
        /// When the claim may be taken over if its holder never finishes.
        claimed_until: i64,
    },
    /// The upload was deleted: its job and detections are gone (a tombstone remembers the
    /// deletion's order), or the deletion was recorded before any analysis.
    Deleted {
        /// `s3://bucket/key` of the deleted upload.
        file: String,
        /// Tag items deleted.
        tag_items: usize,
    },
    /// A repeated delivery of an upload already handled: nothing to do.
    Duplicate {
        /// `s3://bucket/key` of the upload.
        file: String,
    },
    /// An event for an older upload than the one the job holds: nothing to do.
    Stale {
        /// `s3://bucket/key` of the upload.
        file: String,
    },
    /// Not ours to analyse (outside the input prefix, not a creation, a test event).
    Ignored {
        /// `s3://bucket/key`, when the record names one.
        file: Option<String>,
        /// Why it is not analysed.
        reason: String,
    },
}

impl RecordOutcome {
    /// The metric this outcome counts towards, with its reason code dimension if it has one:
    /// `FilesSubmitted`, `FilesRejected` (by code), `FilesFailed` (`endpoint_refused`),
    /// `FilesDeferred`; nothing for duplicates, stale and ignored events.
    pub fn metric(&self) -> Option<(&'static str, Option<&str>)> {
        match self {
            RecordOutcome::Submitted { .. } => Some(("FilesSubmitted", None)),
            RecordOutcome::Rejected { code, .. } => Some(("FilesRejected", Some(code.as_str()))),
            RecordOutcome::Refused { .. } => {
                Some(("FilesFailed", Some(crate::handler::ENDPOINT_REFUSED)))
            }
            RecordOutcome::Deferred { .. } | RecordOutcome::InProgress { .. } => {
                Some(("FilesDeferred", None))
            }
            RecordOutcome::Deleted { .. } => Some(("FilesDeleted", None)),
            RecordOutcome::Duplicate { .. }
            | RecordOutcome::Stale { .. }
            | RecordOutcome::Ignored { .. } => None,
        }
    }

    /// Writes the outcome's metric line (EMF), if it counts towards one.
    pub fn emit_metric(&self) {
        if let Some((name, reason)) = self.metric() {
            let dimensions: Vec<(&str, &str)> = reason.map(|r| ("Reason", r)).into_iter().collect();
            cochl_aws::metrics::emit(&cochl_aws::metrics::line(
                &dimensions,
                &[cochl_aws::metrics::Metric::count(name)],
                cochl_aws::clock::now_millis(),
            ));
        }
    }

    /// True when the record must wait for room at the endpoint.
    pub fn is_deferred(&self) -> bool {
        matches!(
            self,
            RecordOutcome::Deferred { .. } | RecordOutcome::InProgress { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_final_outcome_counts_towards_its_metric() {
        let file = || "s3://b/k".to_string();
        let cases = [
            (
                RecordOutcome::Submitted {
                    file: file(),
                    inference_id: "i".into(),
                    attempts: 1,
                },
                Some(("FilesSubmitted", None)),
            ),
            (
                RecordOutcome::Rejected {
                    file: file(),
                    code: "not_audio".into(),
                    reason: "r".into(),
                },
                Some(("FilesRejected", Some("not_audio"))),
            ),
            (
                RecordOutcome::Refused {
                    file: file(),
                    inference_id: "i".into(),
                    reason: "r".into(),
                },
                Some(("FilesFailed", Some("endpoint_refused"))),
            ),
            (
                RecordOutcome::InProgress {
                    file: file(),
                    claimed_until: 1,
                },
                Some(("FilesDeferred", None)),
            ),
            (RecordOutcome::Duplicate { file: file() }, None),
            (RecordOutcome::Stale { file: file() }, None),
        ];
        for (outcome, expected) in cases {
            assert_eq!(outcome.metric(), expected, "{outcome:?}");
        }
    }
}

//! The message on-result sends to the submit queue when a request expired in the endpoint's
//! queue and may be tried again.
//!
//! It names the file and the inference that expired, nothing else: submit reads the job and
//! decides (a newer upload, or a resubmission already made, turns the message into a
//! no-op), so duplicates and late copies are harmless.

use serde::{Deserialize, Serialize};

/// The top-level member that tells a resubmission from an S3 notification on the queue.
pub const RESUBMIT_MEMBER: &str = "cochlResubmit";

/// Try the file's request again: the inference `expired` never ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResubmitRequest {
    /// `s3://bucket/key` of the file.
    pub file: String,
    /// The inference that expired.
    pub expired_inference_id: String,
}

impl ResubmitRequest {
    /// The message body: `{"cochlResubmit": {...}}`.
    pub fn to_body(&self) -> String {
        crate::envelope::to_body(RESUBMIT_MEMBER, self)
    }

    /// Reads a message body; `None` when it is not a resubmission at all, `Some(Err)` when it
    /// claims to be one but is malformed.
    pub fn from_body(body: &serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        crate::envelope::from_body(body, RESUBMIT_MEMBER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_one() {
        let request = ResubmitRequest {
            file: "s3://b/incoming/a.wav".into(),
            expired_inference_id: "cochl-1".into(),
        };
        let body: serde_json::Value = serde_json::from_str(&request.to_body()).unwrap();
        assert_eq!(ResubmitRequest::from_body(&body).unwrap().unwrap(), request);
        assert!(ResubmitRequest::from_body(&serde_json::json!({"Records": []})).is_none());
        let broken = serde_json::json!({RESUBMIT_MEMBER: {"file": 1}});
        assert!(ResubmitRequest::from_body(&broken).unwrap().is_err());
    }
}

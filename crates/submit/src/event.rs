//! Reading the S3 notification payload, one record at a time.
//!
//! The payload is read as loose JSON rather than `aws_lambda_events::s3::S3Event` because one
//! odd record must not make the whole batch unreadable: each record is parsed on its own and
//! a malformed one is reported (and fails the invocation into the dead-letter path) while
//! the others are processed. Real S3 records and the thinner records of the local stack
//! (no `userIdentity`, no `sequencer`) are both accepted.

use cochl_core::backfill::BackfillRequest;
use cochl_core::keys::{decode_event_key, Sequencer};
use cochl_core::resubmit::ResubmitRequest;
use cochl_core::time::parse_millis;
use serde::Deserialize;
use serde_json::Value;

/// One upload named by an S3 event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Bucket name.
    pub bucket: String,
    /// Decoded object key.
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, ...
    pub event_name: String,
    /// The event time, milliseconds since the epoch.
    pub event_time_ms: i64,
    /// Object size from the event.
    pub size: Option<u64>,
    /// ETag from the event (no quotes).
    pub etag: Option<String>,
    /// Version id on versioned buckets.
    pub version_id: Option<String>,
    /// Orders events for one key.
    pub sequencer: Option<Sequencer>,
}

/// A record as read from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRecord {
    /// An object was created.
    Upload(UploadRecord),
    /// An object (or one version of it) was deleted: `ObjectRemoved:*`. The record's fields
    /// are an upload's; `size` and `etag` are absent, `version_id` names the delete marker
    /// or the deleted version on a versioned bucket.
    Removal(UploadRecord),
    /// A record of another kind (e.g. `ObjectRestore:*`): nothing to do.
    Other {
        /// Its event name, for the log line that says why it was ignored.
        event_name: String,
    },
    /// A record that could not be read.
    Malformed {
        /// Position in `Records`.
        index: usize,
        /// What is wrong.
        reason: String,
        /// The record as received, for the logs.
        raw: String,
    },
}

/// The whole payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitEvent {
    /// S3's `s3:TestEvent`, sent when notifications are configured: acknowledged, ignored.
    TestEvent,
    /// Object notifications, each parsed on its own.
    Records(Vec<ParsedRecord>),
    /// on-result asks for a request that expired in the endpoint's queue to be sent again.
    Resubmit(ResubmitRequest),
    /// The backfill function asks for an existing object to be analysed (or reanalysed).
    Backfill(BackfillRequest),
}

/// The payload is not an S3 event at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event, a resubmission or a backfill request: {0}")]
pub struct EventError(pub String);

/// A payload that is not the event this function takes never will be: permanent.
impl cochl_aws::batch::RecordFailure for EventError {
    fn class(&self) -> &'static str {
        "NotAnS3Event"
    }

    fn is_retryable(&self) -> bool {
        false
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    event_name: Option<String>,
    event_time: Option<String>,
    s3: RawEntity,
}

#[derive(Deserialize)]
struct RawEntity {
    bucket: RawBucket,
    object: RawObject,
}

#[derive(Deserialize)]
struct RawBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    key: String,
    size: Option<u64>,
    e_tag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Reads the payload.
pub fn parse_event(payload: &Value) -> Result<SubmitEvent, EventError> {
    if let Some(request) = ResubmitRequest::from_body(payload) {
        return request
            .map(SubmitEvent::Resubmit)
            .map_err(|error| EventError(format!("resubmission request: {error}")));
    }
    if let Some(request) = BackfillRequest::from_body(payload) {
        return request
            .map(SubmitEvent::Backfill)
            .map_err(|error| EventError(format!("backfill request: {error}")));
    }
    if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(SubmitEvent::TestEvent);
    }
    let Some(records) = payload.get("Records").and_then(Value::as_array) else {
        return Err(EventError(
            "no Records array and not an s3:TestEvent".to_string(),
        ));
    };
    Ok(SubmitEvent::Records(
        records
            .iter()
            .enumerate()
            .map(|(index, raw)| parse_record(index, raw))
            .collect(),
    ))
}

fn parse_record(index: usize, raw: &Value) -> ParsedRecord {
    let malformed = |reason: String| ParsedRecord::Malformed {
        index,
        reason,
        raw: raw.to_string(),
    };
    let record: RawRecord = match serde_json::from_value(raw.clone()) {
        Ok(record) => record,
        Err(error) => return malformed(error.to_string()),
    };
    let event_name = record.event_name.unwrap_or_default();
    let removal = event_name.starts_with("ObjectRemoved:");
    if !event_name.starts_with("ObjectCreated:") && !removal {
        return ParsedRecord::Other { event_name };
    }
    let key = match decode_event_key(&record.s3.object.key) {
        Ok(key) => key,
        Err(error) => return malformed(format!("object key: {error}")),
    };
    let event_time_ms = match record.event_time.as_deref().map(parse_millis) {
        Some(Ok(ms)) => ms,
        Some(Err(error)) => return malformed(format!("eventTime: {error}")),
        None => return malformed("eventTime is missing".to_string()),
    };
    let sequencer = match record
        .s3
        .object
        .sequencer
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(text) => match Sequencer::parse(text) {
            Ok(sequencer) => Some(sequencer),
            Err(error) => return malformed(format!("sequencer: {error}")),
        },
        None => None,
    };
    let upload = UploadRecord {
        bucket: record.s3.bucket.name,
        key,
        event_name,
        event_time_ms,
        size: record.s3.object.size,
        etag: record
            .s3
            .object
            .e_tag
            .map(|e| e.trim_matches('"').to_string())
            .filter(|e| !e.is_empty()),
        version_id: record
            .s3
            .object
            .version_id
            .filter(|v| !v.is_empty() && v != "null"),
        sequencer,
    };
    if removal {
        ParsedRecord::Removal(upload)
    } else {
        ParsedRecord::Upload(upload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use testkit::samples::event as sample;

    #[test]
    fn reads_the_sample_put_event() {
        let SubmitEvent::Records(records) = parse_event(&sample("s3-put.json")).expect("event")
        else {
            panic!("records expected");
        };
        let ParsedRecord::Upload(upload) = &records[0] else {
            panic!("upload expected: {records:?}");
        };
        assert_eq!(upload.bucket, "cochl-audio-123456789012");
        assert_eq!(
            upload.key,
            "incoming/street recordings/red flower (2) café.wav"
        );
        assert_eq!(upload.size, Some(385_324));
        assert_eq!(
            upload.etag.as_deref(),
            Some("9b2cf535f27731c974343645a3985328")
        );
        assert_eq!(
            upload.version_id.as_deref(),
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
        );
        assert_eq!(
            upload.sequencer.as_ref().map(|s| s.as_str()),
            Some("0055AED6DCD90281E5")
        );
        assert_eq!(
            upload.event_time_ms,
            parse_millis("2026-11-25T10:15:30.123Z").expect("ok")
        );
    }

    #[test]
    fn test_event_is_recognised() {
        assert_eq!(
            parse_event(&sample("s3-test-event.json")),
            Ok(SubmitEvent::TestEvent)
        );
    }

    #[test]
    fn moto_style_record_without_identity_fields_is_accepted() {
        let payload = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T10:15:30.123Z", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
                   "object": {"key": "incoming%2Fa%2Fb+c.wav", "size": 10, "eTag": "\"abc\"", "versionId": null}}
        }]});
        let SubmitEvent::Records(records) = parse_event(&payload).expect("event") else {
            panic!("records expected");
        };
        let ParsedRecord::Upload(upload) = &records[0] else {
            panic!("upload expected");
        };
        assert_eq!(upload.key, "incoming/a/b c.wav");
        assert_eq!(upload.etag.as_deref(), Some("abc"));
        assert_eq!(upload.version_id, None);
        assert_eq!(upload.sequencer, None);
    }

    #[test]
    fn one_bad_record_does_not_spoil_the_others() {
        let good = sample("s3-put.json")["Records"][0].clone();
        let payload = json!({"Records": [
            {"eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T10:15:30Z", "s3": {"bucket": {"name": "b"}, "object": {"key": "bad%zz"}}},
            good,
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
            {"eventName": "ObjectRemoved:Delete", "eventTime": "2026-11-25T10:15:30Z", "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "sequencer": "0A"}}},
            {"eventName": "ObjectRestore:Completed", "eventTime": "2026-11-25T10:15:30Z", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
            {"nonsense": true},
        ]});
        let SubmitEvent::Records(records) = parse_event(&payload).expect("event") else {
            panic!("records expected");
        };
        assert!(
            matches!(&records[0], ParsedRecord::Malformed { index: 0, reason, .. } if reason.contains("object key"))
        );
        assert!(matches!(&records[1], ParsedRecord::Upload(_)));
        assert!(
            matches!(&records[2], ParsedRecord::Malformed { index: 2, reason, .. } if reason.contains("eventTime"))
        );
        assert!(
            matches!(&records[3], ParsedRecord::Removal(removal) if removal.event_name == "ObjectRemoved:Delete" && removal.key == "k" && removal.sequencer.as_ref().map(|s| s.as_str()) == Some("0A"))
        );
        assert!(
            matches!(&records[4], ParsedRecord::Other { event_name } if event_name == "ObjectRestore:Completed")
        );
        assert!(matches!(
            &records[5],
            ParsedRecord::Malformed { index: 5, .. }
        ));
    }

    #[test]
    fn non_s3_payloads_are_errors() {
        assert!(parse_event(&json!({"hello": 1})).is_err());
        assert!(parse_event(&json!([1, 2])).is_err());
        assert!(parse_event(&json!({"Records": {}})).is_err());
    }
}

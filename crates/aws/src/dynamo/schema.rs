//! How records map to items of the one DynamoDB table.
//!
//! | item | `pk` | `sk` | index keys |
//! |---|---|---|---|
//! | job of a file | `FILE#<bucket>/<key>` | `JOB` | `gsi2pk = STATUS#<status>`, `gsi2sk = <updated_at>#<file hash>`; `gsi3pk = INFERENCE#<inference id>` |
//! | tag part of a file | `FILE#<bucket>/<key>` | `TAG#<inference id>#<name>#<part:05>` | part 0: `gsi1pk = TAG#<name>`, `gsi1sk = <completed_at>#<file hash>` |
//! | orphan notification | `ORPHAN#<inference id>` | `ORPHAN` | none |
//! | in-flight counter | `INFLIGHT` | `COUNTER` | none |
//! | in-flight slot of an inference | `INFLIGHT` | `SLOT#<inference id>` | none |
//!
//! The inference index (`gsi3pk`, keys only) finds a job from a notification whose input
//! location does not name it (a staged copy, or a location SageMaker echoed differently).
//! A deleted upload's tombstone carries `purge_at`, the table's TTL attribute.
//!
//! Index sort keys use a hash of the file rather than the file name because an index sort key
//! is limited to 1024 bytes and an S3 key alone may be that long. Timestamps have a fixed width
//! (see `cochl_core::time`), so sort keys order by time. Tag items carry the inference id in
//! their sort key, so two analyses of one file never overwrite each other's items: a late
//! writer of a superseded analysis can always clean up exactly what it wrote.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use cochl_core::detections::Segment;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::{S3Uri, Sequencer};
use sha2::{Digest, Sha256};

use crate::records::{JobRecord, OrphanRecord, StoredTags, TagRecord, TagSummary};
use cochl_core::inference_id::InferenceId;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// The "files with tag X, newest first" index.
pub const TAG_INDEX: &str = "by-tag";
/// Partition key of [`TAG_INDEX`].
pub const GSI1_PK: &str = "gsi1pk";
/// Sort key of [`TAG_INDEX`].
pub const GSI1_SK: &str = "gsi1sk";
/// The "jobs by status, most recently changed first" index.
pub const STATUS_INDEX: &str = "by-status";
/// Partition key of [`STATUS_INDEX`].
pub const GSI2_PK: &str = "gsi2pk";
/// Sort key of [`STATUS_INDEX`].
pub const GSI2_SK: &str = "gsi2sk";
/// The "job of an inference" index (keys only).
pub const INFERENCE_INDEX: &str = "by-inference";
/// Partition key of [`INFERENCE_INDEX`].
pub const GSI3_PK: &str = "gsi3pk";
/// The table's TTL attribute (seconds since the Unix epoch): only tombstones carry it.
pub const PURGE_AT: &str = "purge_at";
/// Sort key of a job item.
pub const JOB_SK: &str = "JOB";
/// Prefix of tag item sort keys.
pub const TAG_SK_PREFIX: &str = "TAG#";
/// Segments per tag item: about 60 bytes each as JSON, so a part stays far below 400 KB.
pub const SEGMENTS_PER_PART: usize = 2000;

/// An item as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// Why an item could not be read back into a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("table item {pk:?}/{sk:?}: {problem}")]
pub struct ItemError {
    /// The item's partition key, if it had one.
    pub pk: String,
    /// The item's sort key, if it had one.
    pub sk: String,
    /// What is wrong.
    pub problem: String,
}

/// Partition key of a file's items.
pub fn file_pk(file: &S3Uri) -> String {
    format!("FILE#{}/{}", file.bucket(), file.key())
}

/// The file a partition key of [`file_pk`] names.
pub fn file_of_pk(pk: &str) -> Option<S3Uri> {
    let (bucket, key) = pk.strip_prefix("FILE#")?.split_once('/')?;
    S3Uri::new(bucket, key).ok()
}

/// Sort key of one part of a tag's items of one analysis.
pub fn tag_sk(inference_id: &str, name: &str, part: u32) -> String {
    format!("{TAG_SK_PREFIX}{inference_id}#{name}#{part:05}")
}

/// Partition key of the tag index for a tag.
pub fn tag_index_pk(name: &str) -> String {
    format!("TAG#{name}")
}

/// Partition key of the inference index for an inference.
pub fn inference_index_pk(inference_id: &InferenceId) -> String {
    format!("INFERENCE#{inference_id}")
}

/// Partition key of the status index for a status.
pub fn status_index_pk(status: JobStatus) -> String {
    format!("STATUS#{status}")
}

/// A short, stable hash of a file, to keep index sort keys unique and small.
pub fn file_hash(file: &S3Uri) -> String {
    let digest = Sha256::digest(file.to_string().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Encodes a job record as its item.
pub fn job_item(job: &JobRecord) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(file_pk(&job.file)));
    item.insert(SK.into(), s(JOB_SK));
    item.insert("type".into(), s("job"));
    item.insert("bucket".into(), s(job.file.bucket()));
    item.insert("key".into(), s(job.file.key()));
    item.insert("status".into(), s(job.status.as_str()));
    item.insert("revision".into(), n(job.revision));
    item.insert("event_time_ms".into(), n(job.version.event_time_ms));
    item.insert("accepted".into(), AttributeValue::Bool(job.accepted));
    if job.expiry_resubmits > 0 {
        item.insert("expiry_resubmits".into(), n(job.expiry_resubmits));
    }
    if let Some(until) = job.claimed_until {
        item.insert("claimed_until".into(), n(until));
    }
    if let Some(at) = job.purge_at {
        item.insert(PURGE_AT.into(), n(at));
    }
    if let Some(inference_id) = &job.inference_id {
        item.insert(GSI3_PK.into(), s(inference_index_pk(inference_id)));
    }
    item.insert("notified".into(), AttributeValue::Bool(job.notified));
    item.insert("submitted_at".into(), s(&job.submitted_at));
    item.insert("updated_at".into(), s(&job.updated_at));
    // A tombstone stays out of the status index: no listing shows a deleted upload.
    if job.status != JobStatus::Deleted {
        item.insert(GSI2_PK.into(), s(status_index_pk(job.status)));
        item.insert(
            GSI2_SK.into(),
            s(format!("{}#{}", job.updated_at, file_hash(&job.file))),
        );
    }
    let optional = [
        ("version_id", job.version.version_id.clone()),
        ("etag", job.version.etag.clone()),
        (
            "sequencer",
            job.version
                .sequencer
                .as_ref()
                .map(|q| q.as_str().to_string()),
        ),
        (
            "inference_id",
            job.inference_id.as_ref().map(|id| id.as_str().to_string()),
        ),
        ("content_type", job.content_type.clone()),
        ("custom_attributes", job.custom_attributes.clone()),
        (
            "output_location",
            job.output_location.as_ref().map(S3Uri::to_string),
        ),
        (
            "failure_location",
            job.failure_location.as_ref().map(S3Uri::to_string),
        ),
        ("reason_code", job.reason_code.clone()),
        ("reason", job.reason.clone()),
        ("completed_at", job.completed_at.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    if let Some(size) = job.size_bytes {
        item.insert("size_bytes".into(), n(size));
    }
    if let Some(length) = job.length_sec {
        item.insert("length_sec".into(), n(length));
    }
    if !job.tags.is_empty() {
        // Serialising plain numbers and strings cannot fail.
        let summary = serde_json::to_string(&job.tags).unwrap_or_default();
        item.insert("tag_summary".into(), s(summary));
    }
    if !job.tag_items.is_empty() {
        let list = job
            .tag_items
            .names()
            .iter()
            .map(|sk| s(sk.as_str()))
            .collect();
        item.insert("tag_items".into(), AttributeValue::L(list));
    }
    item
}

/// Encodes one tag part as its item; part 0 joins the tag index.
pub fn tag_item(tag: &TagRecord) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(file_pk(&tag.file)));
    item.insert(
        SK.into(),
        s(tag_sk(tag.inference_id.as_str(), &tag.name, tag.part)),
    );
    item.insert("type".into(), s("tag"));
    item.insert("bucket".into(), s(tag.file.bucket()));
    item.insert("key".into(), s(tag.file.key()));
    item.insert("inference_id".into(), s(tag.inference_id.as_str()));
    item.insert("completed_at".into(), s(&tag.completed_at));
    item.insert("tag".into(), s(&tag.name));
    item.insert("part".into(), n(tag.part));
    item.insert("parts".into(), n(tag.parts));
    item.insert("max_probability".into(), n(tag.max_probability));
    item.insert("detected_seconds".into(), n(tag.detected_seconds));
    item.insert("windows".into(), n(tag.windows));
    item.insert("segments".into(), s(encode_segments(&tag.segments)));
    if tag.part == 0 {
        item.insert(GSI1_PK.into(), s(tag_index_pk(&tag.name)));
        item.insert(
            GSI1_SK.into(),
            s(format!("{}#{}", tag.completed_at, file_hash(&tag.file))),
        );
    }
    item
}

/// Encodes an orphan notification as its item.
pub fn orphan_item(orphan: &OrphanRecord) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(format!("ORPHAN#{}", orphan.inference_id)));
    item.insert(SK.into(), s("ORPHAN"));
    item.insert("type".into(), s("orphan"));
    item.insert("inference_id".into(), s(&orphan.inference_id));
    item.insert("status".into(), s(&orphan.status));
    item.insert("received_at".into(), s(&orphan.received_at));
    item.insert("message".into(), s(&orphan.message));
    if let Some(input) = &orphan.input_location {
        item.insert("input_location".into(), s(input.to_string()));
    }
    item
}

/// Compact segments: `[[start, end, max, mean, windows], ...]`.
pub fn encode_segments(segments: &[Segment]) -> String {
    let rows: Vec<(f64, f64, f64, f64, u32)> = segments
        .iter()
        .map(|g| {
            (
                g.start,
                g.end,
                g.max_probability,
                g.mean_probability,
                g.windows,
            )
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_default()
}

/// Reads segments written by [`encode_segments`].
pub fn decode_segments(text: &str) -> Result<Vec<Segment>, String> {
    let rows: Vec<(f64, f64, f64, f64, u32)> =
        serde_json::from_str(text).map_err(|e| format!("segments: {e}"))?;
    Ok(rows
        .into_iter()
        .map(
            |(start, end, max_probability, mean_probability, windows)| Segment {
                start,
                end,
                max_probability,
                mean_probability,
                windows,
            },
        )
        .collect())
}

/// Typed access to an item's attributes with errors that name the item and attribute.
pub struct ItemReader<'a> {
    item: &'a Item,
}

impl<'a> ItemReader<'a> {
    /// Wraps an item.
    pub fn new(item: &'a Item) -> Self {
        ItemReader { item }
    }

    /// An error about this item.
    pub fn error(&self, problem: impl Into<String>) -> ItemError {
        let key = |name| {
            self.item
                .get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        ItemError {
            pk: key(PK),
            sk: key(SK),
            problem: problem.into(),
        }
    }

    /// A string attribute, if present.
    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>, ItemError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(self.error(format!("attribute {name} is not a string"))),
        }
    }

    /// A required string attribute.
    pub fn s(&self, name: &str) -> Result<&'a str, ItemError> {
        self.opt_s(name)?
            .ok_or_else(|| self.error(format!("attribute {name} is missing")))
    }

    /// A number attribute, if present.
    pub fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ItemError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| self.error(format!("attribute {name} is not a valid number"))),
            Some(_) => Err(self.error(format!("attribute {name} is not a number"))),
        }
    }

    /// A required number attribute.
    pub fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, ItemError> {
        self.opt_n(name)?
            .ok_or_else(|| self.error(format!("attribute {name} is missing")))
    }

    /// A boolean attribute, false when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ItemError> {
        match self.item.get(name) {
            None => Ok(false),
            Some(AttributeValue::Bool(value)) => Ok(*value),
            Some(_) => Err(self.error(format!("attribute {name} is not a boolean"))),
        }
    }

    /// The file named by the `bucket` and `key` attributes.
    pub fn file(&self) -> Result<S3Uri, ItemError> {
        S3Uri::new(self.s("bucket")?, self.s("key")?).map_err(|e| self.error(e.to_string()))
    }

    /// An inference id stored by a job or tag item; an invalid one means a corrupt item.
    fn inference_id(&self, text: &str) -> Result<InferenceId, ItemError> {
        InferenceId::parse(text).map_err(|e| self.error(format!("inference_id: {e}")))
    }

    fn opt_uri(&self, name: &str) -> Result<Option<S3Uri>, ItemError> {
        self.opt_s(name)?
            .map(|text| S3Uri::parse(text).map_err(|e| self.error(format!("{name}: {e}"))))
            .transpose()
    }
}

/// Decodes a job item.
pub fn job_from_item(item: &Item) -> Result<JobRecord, ItemError> {
    let r = ItemReader::new(item);
    let status = r
        .s("status")?
        .parse::<JobStatus>()
        .map_err(|e| r.error(e.to_string()))?;
    let sequencer = r
        .opt_s("sequencer")?
        .map(|text| Sequencer::parse(text).map_err(|e| r.error(e.to_string())))
        .transpose()?;
    let tags: Vec<TagSummary> = match r.opt_s("tag_summary")? {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| r.error(format!("tag_summary: {e}")))?
        }
        None => Vec::new(),
    };
    let tag_items = match item.get("tag_items") {
        None => StoredTags::default(),
        Some(AttributeValue::L(list)) => StoredTags::from_names(
            list.iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| r.error("tag_items holds a non-string"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(r.error("tag_items is not a list")),
    };
    Ok(JobRecord {
        file: r.file()?,
        status,
        version: ObjectVersion {
            version_id: r.opt_s("version_id")?.map(str::to_string),
            etag: r.opt_s("etag")?.map(str::to_string),
            sequencer,
            event_time_ms: r.n("event_time_ms")?,
        },
        revision: r.n("revision")?,
        inference_id: r
            .opt_s("inference_id")?
            .map(|text| r.inference_id(text))
            .transpose()?,
        accepted: r.flag("accepted")?,
        claimed_until: r.opt_n("claimed_until")?,
        expiry_resubmits: r.opt_n("expiry_resubmits")?.unwrap_or(0),
        notified: r.flag("notified")?,
        content_type: r.opt_s("content_type")?.map(str::to_string),
        size_bytes: r.opt_n("size_bytes")?,
        custom_attributes: r.opt_s("custom_attributes")?.map(str::to_string),
        output_location: r.opt_uri("output_location")?,
        failure_location: r.opt_uri("failure_location")?,
        reason_code: r.opt_s("reason_code")?.map(str::to_string),
        reason: r.opt_s("reason")?.map(str::to_string),
        submitted_at: r.s("submitted_at")?.to_string(),
        completed_at: r.opt_s("completed_at")?.map(str::to_string),
        updated_at: r.s("updated_at")?.to_string(),
        length_sec: r.opt_n("length_sec")?,
        tags,
        tag_items,
        purge_at: r.opt_n(PURGE_AT)?,
    })
}

/// Decodes a tag item.
pub fn tag_from_item(item: &Item) -> Result<TagRecord, ItemError> {
    let r = ItemReader::new(item);
    Ok(TagRecord {
        file: r.file()?,
        inference_id: r.inference_id(r.s("inference_id")?)?,
        completed_at: r.s("completed_at")?.to_string(),
        name: r.s("tag")?.to_string(),
        part: r.n("part")?,
        parts: r.n("parts")?,
        max_probability: r.n("max_probability")?,
        detected_seconds: r.n("detected_seconds")?,
        windows: r.n("windows")?,
        segments: decode_segments(r.s("segments")?).map_err(|e| r.error(e))?,
    })
}

/// Splits a tag's detections into parts of at most [`SEGMENTS_PER_PART`] segments.
pub fn tag_records(
    file: &S3Uri,
    inference_id: &InferenceId,
    completed_at: &str,
    detection: &cochl_core::detections::TagDetection,
) -> Vec<TagRecord> {
    let chunks: Vec<&[Segment]> = if detection.segments.is_empty() {
        vec![&[]]
    } else {
        detection.segments.chunks(SEGMENTS_PER_PART).collect()
    };
    let parts = chunks.len() as u32;
    chunks
        .into_iter()
        .enumerate()
        .map(|(part, segments)| TagRecord {
            file: file.clone(),
            inference_id: inference_id.clone(),
            completed_at: completed_at.to_string(),
            name: detection.name.clone(),
            part: part as u32,
            parts,
            max_probability: detection.max_probability,
            detected_seconds: detection.detected_seconds,
            windows: detection.windows,
            segments: segments.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::detections::TagDetection;

    fn id(text: &str) -> InferenceId {
        InferenceId::parse(text).expect("valid inference id")
    }

    fn file() -> S3Uri {
        S3Uri::new("audio-bucket", "incoming/red flower.wav").expect("valid")
    }

    fn job() -> JobRecord {
        JobRecord {
            file: file(),
            status: JobStatus::Completed,
            version: ObjectVersion {
                version_id: Some("v1".into()),
                etag: Some("abc".into()),
                sequencer: Some(Sequencer::parse("0055AED6DCD90281E5").expect("hex")),
                event_time_ms: 1_700_000_000_123,
            },
            revision: 3,
            inference_id: Some(id("cochl-1")),
            accepted: true,
            claimed_until: Some(1_764_000_000),
            expiry_resubmits: 1,
            notified: true,
            content_type: Some("audio/wav".into()),
            size_bytes: Some(385_324),
            custom_attributes: Some(r#"{"default_sensitivity":1}"#.into()),
            output_location: Some(S3Uri::parse("s3://audio-bucket/results/x.out").expect("ok")),
            failure_location: Some(S3Uri::parse("s3://audio-bucket/failures/x").expect("ok")),
            reason_code: None,
            reason: None,
            submitted_at: "2026-11-25T10:15:30.123Z".into(),
            completed_at: Some("2026-11-25T10:16:02.000Z".into()),
            updated_at: "2026-11-25T10:16:02.000Z".into(),
            length_sec: Some(12.04),
            tags: vec![TagSummary {
                name: "Siren".into(),
                max_probability: 0.93,
                detected_seconds: 7.0,
                windows: 5,
            }],
            tag_items: StoredTags::from_names(vec![tag_sk("cochl-1", "Siren", 0)]),
            purge_at: Some(1_766_000_000),
        }
    }

    #[test]
    fn job_round_trips_through_its_item() {
        let job = job();
        let item = job_item(&job);
        assert_eq!(
            item[PK].as_s().expect("s"),
            "FILE#audio-bucket/incoming/red flower.wav"
        );
        assert_eq!(item[SK].as_s().expect("s"), "JOB");
        assert_eq!(item[GSI2_PK].as_s().expect("s"), "STATUS#COMPLETED");
        assert_eq!(item[GSI3_PK].as_s().expect("s"), "INFERENCE#cochl-1");
        assert_eq!(item[PURGE_AT].as_n().expect("n"), "1766000000");
        assert!(item[GSI2_SK]
            .as_s()
            .expect("s")
            .starts_with("2026-11-25T10:16:02.000Z#"));
        assert_eq!(job_from_item(&item), Ok(job));
    }

    #[test]
    fn a_tombstone_is_in_no_index_and_expires() {
        let tombstone = JobRecord {
            status: JobStatus::Deleted,
            inference_id: None,
            purge_at: Some(1_766_000_000),
            ..job()
        };
        let item = job_item(&tombstone);
        for key in [GSI1_PK, GSI2_PK, GSI2_SK, GSI3_PK] {
            assert!(!item.contains_key(key), "{key}");
        }
        assert_eq!(item[PURGE_AT].as_n().expect("n"), "1766000000");
        assert_eq!(job_from_item(&item), Ok(tombstone));
    }

    #[test]
    fn a_file_partition_key_names_its_file_again() {
        let file = file();
        assert_eq!(file_of_pk(&file_pk(&file)), Some(file));
        let nested = S3Uri::new("bkt", "a/b/c.wav").expect("valid");
        assert_eq!(file_of_pk("FILE#bkt/a/b/c.wav"), Some(nested));
        assert_eq!(file_of_pk("ORPHAN#x"), None);
        assert_eq!(file_of_pk("FILE#no-key"), None);
    }

    #[test]
    fn minimal_job_round_trips() {
        let job = JobRecord {
            status: JobStatus::Rejected,
            version: ObjectVersion {
                version_id: None,
                etag: None,
                sequencer: None,
                event_time_ms: 5,
            },
            inference_id: None,
            accepted: false,
            claimed_until: None,
            expiry_resubmits: 0,
            notified: false,
            content_type: None,
            size_bytes: None,
            custom_attributes: None,
            output_location: None,
            failure_location: None,
            reason_code: Some("not_audio".into()),
            reason: Some("not audio".into()),
            completed_at: None,
            length_sec: None,
            tags: vec![],
            tag_items: StoredTags::default(),
            purge_at: None,
            ..job()
        };
        let item = job_item(&job);
        assert_eq!(item[GSI2_PK].as_s().expect("s"), "STATUS#REJECTED");
        assert!(
            !item.contains_key(GSI3_PK),
            "a job without an inference is not in the inference index"
        );
        assert_eq!(job_from_item(&item), Ok(job));
    }

    #[test]
    fn tags_split_into_parts_and_round_trip() {
        let segment = |i: usize| Segment {
            start: i as f64 * 3.0,
            end: i as f64 * 3.0 + 2.0,
            max_probability: 0.5,
            mean_probability: 0.25,
            windows: 1,
        };
        let detection = TagDetection {
            name: "Speech".into(),
            max_probability: 0.5,
            detected_seconds: 2.0 * 4500.0,
            windows: 4500,
            segments: (0..4500).map(segment).collect(),
        };
        let records = tag_records(
            &file(),
            &id("cochl-1"),
            "2026-11-25T10:16:02.000Z",
            &detection,
        );
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.parts == 3));
        assert_eq!(records[2].segments.len(), 500);
        for record in &records {
            let item = tag_item(record);
            assert_eq!(item.contains_key(GSI1_PK), record.part == 0);
            let size: usize = item
                .values()
                .map(|v| v.as_s().map_or(16, String::len))
                .sum();
            assert!(size < 200_000, "item of {size} bytes");
            assert_eq!(tag_from_item(&item).as_ref(), Ok(record));
        }
        assert_eq!(records[0].segments[0], segment(0));
    }

    #[test]
    fn broken_items_name_the_attribute() {
        let mut item = job_item(&job());
        item.insert("revision".into(), AttributeValue::S("x".into()));
        let err = job_from_item(&item).expect_err("bad revision");
        assert!(err.problem.contains("revision"), "{err}");
        let mut item = job_item(&job());
        item.remove("status");
        assert!(job_from_item(&item)
            .expect_err("no status")
            .problem
            .contains("status"));
    }

    #[test]
    fn index_sort_keys_stay_small_for_long_keys() {
        let long = S3Uri::new("b".repeat(63), "k".repeat(1024)).expect("valid");
        let record = TagRecord {
            file: long.clone(),
            inference_id: id("i"),
            completed_at: "2026-11-25T10:16:02.000Z".into(),
            name: "Siren".into(),
            part: 0,
            parts: 1,
            max_probability: 1.0,
            detected_seconds: 2.0,
            windows: 1,
            segments: vec![],
        };
        let item = tag_item(&record);
        assert!(item[GSI1_SK].as_s().expect("s").len() < 64);
        assert!(item[PK].as_s().expect("s").len() <= 2048);
    }
}

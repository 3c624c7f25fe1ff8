//! The JSON documents the API returns, built from the store's records.
//!
//! Field names and optionality here are the API contract; `openapi.json` describes the same
//! shapes with `additionalProperties: false`, and a test checks every document against it.
//! Optional fields are omitted when absent; `inference_id` and `next_cursor` are always
//! present and `null` when there is none.

use cochl_aws::dynamo::read::{FileView, TagHit};
use cochl_aws::records::JobRecord;
use cochl_core::detections::{Segment, TagDetection};
use cochl_core::job::JobStatus;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

/// What both `GET /files` and `GET /jobs` say about a job, so the two report it the same way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobFields {
    /// `s3://bucket/key`.
    pub file: String,
    /// Job status.
    pub status: &'static str,
    /// Why the job failed or was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Machine-readable form of `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The current analysis (`null` for a rejection).
    pub inference_id: Option<String>,
    /// When the current upload's job was recorded.
    pub submitted_at: String,
    /// When the job reached its terminal state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// `GET /files`: what was heard in one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileDocument {
    /// The file's job; flattened, so its fields sit at the top of the document.
    #[serde(flatten)]
    pub job: JobFields,
    /// Audio length in seconds, from the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_sec: Option<f64>,
    /// Detections by tag name; empty unless the job is COMPLETED.
    pub tags: Vec<TagDocument>,
}

/// One tag heard in a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagDocument {
    /// Cochl tag name.
    pub name: String,
    /// Highest probability anywhere in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag.
    pub detected_seconds: f64,
    /// Windows with the tag.
    pub windows: u32,
    /// Continuous stretches with the tag, in time order.
    pub segments: Vec<SegmentDocument>,
}

/// One continuous stretch in which a tag was heard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentDocument {
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// Highest probability in the segment.
    pub max_probability: f64,
    /// Mean probability over the windows with the tag.
    pub mean_probability: f64,
}

/// `GET /tags/{name}/files`: one page of files with a tag, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagFilesDocument {
    /// The tag asked for, echoed so a saved page says what it lists.
    pub tag: String,
    /// The files of this page.
    pub files: Vec<TagFileDocument>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One file in a tag listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagFileDocument {
    /// `s3://bucket/key`.
    pub file: String,
    /// The analysis that found the tag.
    pub inference_id: String,
    /// When that analysis completed.
    pub completed_at: String,
    /// Highest probability of the tag in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag.
    pub detected_seconds: f64,
    /// Windows with the tag.
    pub windows: u32,
}

/// `GET /jobs`: one page of jobs in a status, most recently changed first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobsDocument {
    /// The status listed.
    pub status: &'static str,
    /// The jobs of this page.
    pub jobs: Vec<JobDocument>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One job in a status listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobDocument {
    /// The job, flattened into this object like in `GET /files`.
    #[serde(flatten)]
    pub job: JobFields,
    /// When the job last changed (the listing's order).
    pub updated_at: String,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDocument {
    /// `bad_request`, `not_found`, `method_not_allowed` or `internal`.
    pub error: &'static str,
    /// What went wrong, naming the parameter for a `bad_request`.
    pub message: String,
}

impl From<&Segment> for SegmentDocument {
    fn from(segment: &Segment) -> Self {
        SegmentDocument {
            start: segment.start,
            end: segment.end,
            max_probability: segment.max_probability,
            mean_probability: segment.mean_probability,
        }
    }
}

impl From<&TagDetection> for TagDocument {
    fn from(tag: &TagDetection) -> Self {
        TagDocument {
            name: tag.name.clone(),
            max_probability: tag.max_probability,
            detected_seconds: tag.detected_seconds,
            windows: tag.windows,
            segments: tag.segments.iter().map(SegmentDocument::from).collect(),
        }
    }
}

impl From<&FileView> for FileDocument {
    fn from(view: &FileView) -> Self {
        let job = &view.job;
        let tags = if job.status == JobStatus::Completed {
            view.tags.iter().map(TagDocument::from).collect()
        } else {
            Vec::new()
        };
        FileDocument {
            job: JobFields::from(job),
            length_sec: job.length_sec,
            tags,
        }
    }
}

impl From<&TagHit> for TagFileDocument {
    fn from(hit: &TagHit) -> Self {
        TagFileDocument {
            file: hit.file.to_string(),
            inference_id: hit.inference_id.clone(),
            completed_at: hit.completed_at.clone(),
            max_probability: hit.max_probability,
            detected_seconds: hit.detected_seconds,
            windows: hit.windows,
        }
    }
}

impl From<&JobRecord> for JobFields {
    fn from(job: &JobRecord) -> Self {
        JobFields {
            file: job.file.to_string(),
            status: job.status.as_str(),
            reason: job.reason.clone(),
            reason_code: job.reason_code.clone(),
            inference_id: job.inference_id.as_ref().map(ToString::to_string),
            submitted_at: job.submitted_at.clone(),
            completed_at: job.completed_at.clone(),
        }
    }
}

impl From<&JobRecord> for JobDocument {
    fn from(job: &JobRecord) -> Self {
        JobDocument {
            job: JobFields::from(job),
            updated_at: job.updated_at.clone(),
        }
    }
}

/// A response with `Content-Type: application/json` and the document as its body.
pub fn json_response<T: Serialize>(status: StatusCode, document: &T) -> Response<Body> {
    // The documents hold only strings and finite numbers, so serialising cannot fail; the
    // fallback keeps the response valid JSON regardless.
    let body = serde_json::to_string(document).unwrap_or_else(|_| {
        r#"{"error":"internal","message":"the response could not be serialised"}"#.to_string()
    });
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

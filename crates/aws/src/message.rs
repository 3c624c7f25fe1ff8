//! The detection notification users subscribe to.
//!
//! One message per analysed file on the detections topic. The body is JSON (file, status,
//! inference id, length, per-tag totals and segments); the message attributes `tags`
//! (`String.Array` of detected tag names), `status` and `bucket` let subscribers filter with
//! SNS filter policies, e.g. `{"tags": ["Siren", "Gunshot"]}`. SNS caps a message at 256 KB:
//! a body that would not fit drops its segments (totals stay) and points to the query API.
//!
//! Both functions that end an analysis publish it: on-result for every outcome SageMaker
//! reports, submit when the endpoint refuses a request outright; one builder keeps the two
//! messages identical in shape.

use crate::notify::{Attribute, Message};
use cochl_core::detections::TagDetection;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use serde::Serialize;

/// SNS's limit for body plus attributes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// What the notification says about one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<'a> {
    /// The file analysed; the body gives it as a URI and as bucket and key, so subscribers
    /// need not parse it.
    pub file: &'a S3Uri,
    /// `COMPLETED` or `FAILED`.
    pub status: &'a str,
    /// The SageMaker inference id, which links the message to the job and its result.
    pub inference_id: &'a str,
    /// Audio length, for a completed analysis.
    pub length_sec: Option<f64>,
    /// Machine-readable reason of a failure.
    pub reason_code: Option<&'a str>,
    /// Reason of a failure.
    pub reason: Option<&'a str>,
    /// Detections, for a completed analysis (sorted by name).
    pub detections: &'a [TagDetection],
}

#[derive(Serialize)]
struct Body<'a> {
    file: String,
    bucket: &'a str,
    key: &'a str,
    status: &'a str,
    inference_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    length_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    tags: Vec<BodyTag<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    segments_omitted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tags_omitted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<String>,
}

#[derive(Serialize)]
struct BodyTag<'a> {
    name: &'a str,
    max_probability: f64,
    detected_seconds: f64,
    windows: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<BodySegment>>,
}

#[derive(Serialize)]
struct BodySegment {
    start: f64,
    end: f64,
    max_probability: f64,
    mean_probability: f64,
}

impl<'a> Outcome<'a> {
    /// A failed analysis: the reason, no length and no tags.
    pub fn failed(
        file: &'a S3Uri,
        inference_id: &'a str,
        reason_code: &'a str,
        reason: &'a str,
    ) -> Self {
        Outcome {
            file,
            status: JobStatus::Failed.as_str(),
            inference_id,
            length_sec: None,
            reason_code: Some(reason_code),
            reason: Some(reason),
            detections: &[],
        }
    }
}

/// Where the full document of a file can be read.
pub fn details_pointer(file: &S3Uri, query_url: Option<&str>) -> String {
    let path = format!(
        "/files?uri={}",
        cochl_core::keys::encode_query_value(&file.to_string())
    );
    match query_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => format!("GET {path} on the query API"),
    }
}

/// Builds the notification, trimming it to fit SNS's limit.
pub fn detection_message(outcome: &Outcome<'_>, query_url: Option<&str>) -> Message {
    let names: Vec<String> = outcome.detections.iter().map(|d| d.name.clone()).collect();
    let attributes = vec![
        ("tags".to_string(), Attribute::StringArray(names)),
        (
            "status".to_string(),
            Attribute::String(outcome.status.to_string()),
        ),
        (
            "bucket".to_string(),
            Attribute::String(outcome.file.bucket().to_string()),
        ),
    ];
    let attributes_size: usize = attributes
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    Attribute::String(text) => text.len() + 6,
                    Attribute::StringArray(items) => {
                        items.iter().map(|i| i.len() + 3).sum::<usize>() + 14
                    }
                }
        })
        .sum();
    let budget = MAX_MESSAGE_BYTES.saturating_sub(attributes_size);

    let tag = body_tag;
    let body = |tags: Vec<BodyTag<'_>>, segments_omitted: bool, tags_omitted: bool| {
        let trimmed = segments_omitted || tags_omitted;
        serde_json::to_string(&Body {
            file: outcome.file.to_string(),
            bucket: outcome.file.bucket(),
            key: outcome.file.key(),
            status: outcome.status,
            inference_id: outcome.inference_id,
            length_sec: outcome.length_sec,
            reason_code: outcome.reason_code,
            reason: outcome.reason,
            tags,
            segments_omitted,
            tags_omitted,
            details: trimmed.then(|| details_pointer(outcome.file, query_url)),
        })
        .unwrap_or_default()
    };

    let all_tags = |with_segments| {
        outcome
            .detections
            .iter()
            .map(|d| tag(d, with_segments))
            .collect()
    };
    let fits = |text: &String| text.len() <= budget;
    // Thousands of tags: keep as many (strongest first) as fit.
    let strongest_that_fit = || {
        let mut strongest: Vec<&TagDetection> = outcome.detections.iter().collect();
        strongest.sort_by(|a, b| b.max_probability.total_cmp(&a.max_probability));
        let (mut low, mut high) = (0, strongest.len());
        while low < high {
            let mid = (low + high).div_ceil(2);
            let candidate = body(
                strongest[..mid].iter().map(|d| tag(d, false)).collect(),
                true,
                true,
            );
            if fits(&candidate) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        let mut kept: Vec<&TagDetection> = strongest[..low].to_vec();
        kept.sort_by(|a, b| a.name.cmp(&b.name));
        body(
            kept.into_iter().map(|d| tag(d, false)).collect(),
            true,
            true,
        )
    };
    // Detail goes only when the message would not fit otherwise: segments first, then tags.
    let text = Some(body(all_tags(true), false, false))
        .filter(fits)
        .or_else(|| Some(body(all_tags(false), true, false)).filter(fits))
        .unwrap_or_else(strongest_that_fit);
    Message {
        body: text,
        attributes,
    }
}

fn body_tag(detection: &TagDetection, with_segments: bool) -> BodyTag<'_> {
    BodyTag {
        name: &detection.name,
        max_probability: detection.max_probability,
        detected_seconds: detection.detected_seconds,
        windows: detection.windows,
        segments: with_segments.then(|| {
            detection
                .segments
                .iter()
                .map(|s| BodySegment {
                    start: s.start,
                    end: s.end,
                    max_probability: s.max_probability,
                    mean_probability: s.mean_probability,
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::detections::Segment;
    use serde_json::Value;

    fn file() -> S3Uri {
        S3Uri::new("audio", "incoming/red flower+1.wav").expect("valid")
    }

    fn detection(name: &str, p: f64, segments: usize) -> TagDetection {
        TagDetection {
            name: name.into(),
            max_probability: p,
            detected_seconds: 2.0 * segments as f64,
            windows: segments as u32,
            segments: (0..segments)
                .map(|i| Segment {
                    start: 3.0 * i as f64,
                    end: 3.0 * i as f64 + 2.0,
                    max_probability: p,
                    mean_probability: p,
                    windows: 1,
                })
                .collect(),
        }
    }

    fn outcome<'a>(file: &'a S3Uri, detections: &'a [TagDetection]) -> Outcome<'a> {
        Outcome {
            file,
            status: "COMPLETED",
            inference_id: "cochl-1",
            length_sec: Some(12.5),
            reason_code: None,
            reason: None,
            detections,
        }
    }

    #[test]
    fn completed_message_carries_everything_and_filterable_attributes() {
        let file = file();
        let detections = [detection("Dog_bark", 0.7, 1), detection("Siren", 0.9, 2)];
        let message = detection_message(&outcome(&file, &detections), None);
        let body: Value = serde_json::from_str(&message.body).expect("json");
        assert_eq!(body["file"], "s3://audio/incoming/red flower+1.wav");
        assert_eq!(body["bucket"], "audio");
        assert_eq!(body["key"], "incoming/red flower+1.wav");
        assert_eq!(body["status"], "COMPLETED");
        assert_eq!(body["inference_id"], "cochl-1");
        assert_eq!(body["length_sec"], 12.5);
        assert_eq!(body["tags"][1]["name"], "Siren");
        assert_eq!(body["tags"][1]["segments"][1]["start"], 3.0);
        assert_eq!(body["tags"][1]["segments"][1]["mean_probability"], 0.9);
        assert!(body.get("details").is_none() && body.get("reason").is_none());
        assert_eq!(
            message.attributes,
            vec![
                (
                    "tags".into(),
                    Attribute::StringArray(vec!["Dog_bark".into(), "Siren".into()])
                ),
                ("status".into(), Attribute::String("COMPLETED".into())),
                ("bucket".into(), Attribute::String("audio".into())),
            ]
        );
    }

    #[test]
    fn failure_message_has_reason_and_no_tags() {
        let file = file();
        let message = detection_message(
            &Outcome::failed(&file, "cochl-1", "inference_failed", "ClientError: boom"),
            None,
        );
        let body: Value = serde_json::from_str(&message.body).expect("json");
        assert_eq!(body["status"], "FAILED");
        assert_eq!(body["reason_code"], "inference_failed");
        assert_eq!(body["reason"], "ClientError: boom");
        assert_eq!(body["tags"], Value::Array(vec![]));
        assert!(body.get("length_sec").is_none());
        assert_eq!(message.attributes[0].1, Attribute::StringArray(vec![]));
        assert_eq!(message.attributes[1].1, Attribute::String("FAILED".into()));
    }

    #[test]
    fn oversized_body_drops_segments_and_points_to_the_query_api() {
        let file = file();
        let detections = [detection("Speech", 0.8, 6000), detection("Music", 0.6, 100)];
        let message = detection_message(&outcome(&file, &detections), Some("https://q.example/"));
        assert!(message.body.len() <= MAX_MESSAGE_BYTES);
        let body: Value = serde_json::from_str(&message.body).expect("json");
        assert_eq!(body["segments_omitted"], true);
        assert!(body["tags"][0].get("segments").is_none());
        assert_eq!(body["tags"][0]["windows"], 6000);
        assert!(body["tags"][1].get("segments").is_none());
        assert_eq!(
            body["details"],
            "https://q.example/files?uri=s3%3A%2F%2Faudio%2Fincoming%2Fred+flower%2B1.wav"
        );
    }

    #[test]
    fn thousands_of_tags_keep_the_strongest_that_fit() {
        let file = file();
        let detections: Vec<TagDetection> = (0..6000)
            .map(|i| detection(&format!("Tag_{i:05}"), (i % 1000) as f64 / 1000.0, 0))
            .collect();
        let message = detection_message(&outcome(&file, &detections), None);
        let body: Value = serde_json::from_str(&message.body).expect("json");
        assert!(message.body.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(body["tags_omitted"], true);
        let kept = body["tags"].as_array().expect("array");
        assert!(!kept.is_empty() && kept.len() < 6000);
        let weakest_kept = kept
            .iter()
            .map(|t| t["max_probability"].as_f64().expect("n"))
            .fold(1.0, f64::min);
        assert!(weakest_kept > 0.0, "the weakest tags are the ones dropped");
    }
}

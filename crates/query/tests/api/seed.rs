//! One table seeded once per test binary, fresh SDK clients per test, and request helpers.
//!
//! The table holds every kind of job, tag items split into parts, tag items of older analyses
//! that must never show, and keys with spaces, `+`, `%`, `#` and non-ASCII characters.

use cochl_aws::dynamo::provision::create_table;
use cochl_aws::dynamo::schema::{self, Item};
use cochl_aws::dynamo::{DynamoStore, Expect};
use cochl_aws::records::{JobRecord, StoredTags, TagSummary};
use cochl_core::detections::{Segment, TagDetection};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request};
use serde_json::Value;
use tokio::sync::OnceCell;

/// A completed file with three tags and an older analysis left in the table.
pub const STREET: &str = "s3://audio-bucket/incoming/street 12s.wav";
/// A completed file whose key needs every kind of encoding; Speech spans three parts.
pub const ODD: &str = "s3://audio-bucket/incoming/a+b 100%/ünïcødé ✓ #1.wav";
/// Completed files with only Siren, at the edges of the time-range tests.
pub const SIRENS: [&str; 4] = [
    "s3://audio-bucket/incoming/siren-0.wav",
    "s3://audio-bucket/incoming/siren-1.wav",
    "s3://audio-bucket/incoming/siren-2.wav",
    "s3://audio-bucket/incoming/siren-3.wav",
];
/// Completion times of [`SIRENS`].
pub const SIREN_TIMES: [&str; 4] = [
    "2026-11-24T00:00:00.000Z",
    "2026-11-23T23:59:59.999Z",
    "2026-11-23T00:00:00.000Z",
    "2026-11-22T12:00:00.000Z",
];
/// Siren probabilities of [`SIRENS`].
pub const SIREN_PROBABILITIES: [f64; 4] = [0.95, 0.9, 0.85, 0.3];
/// Completion time of [`STREET`] and [`ODD`] (a tie, broken by the file hash).
pub const LATEST: &str = "2026-11-25T10:16:02.000Z";
/// Failed jobs, most recently changed first.
pub const FAILED: [&str; 2] = [
    "s3://audio-bucket/incoming/broken.mp3",
    "s3://audio-bucket/incoming/broken 2.mp3",
];
/// A rejected upload.
pub const REJECTED: &str = "s3://audio-bucket/incoming/notes.txt";
/// Submitted jobs, most recently changed first; the first was analysed before (stale tags).
pub const SUBMITTED: [&str; 2] = [
    "s3://audio-bucket/incoming/again.wav",
    "s3://audio-bucket/incoming/pending.ogg",
];

pub fn uri(text: &str) -> S3Uri {
    S3Uri::parse(text).expect("valid uri")
}

pub fn segment(start: f64, end: f64, max: f64, mean: f64, windows: u32) -> Segment {
    Segment {
        start,
        end,
        max_probability: max,
        mean_probability: mean,
        windows,
    }
}

pub fn detection(name: &str, max: f64, seconds: f64, segments: Vec<Segment>) -> TagDetection {
    TagDetection {
        name: name.to_string(),
        max_probability: max,
        detected_seconds: seconds,
        windows: segments.iter().map(|s| s.windows).sum(),
        segments,
    }
}

/// The street file's detections, as in the README's example.
pub fn street_tags() -> Vec<TagDetection> {
    vec![
        detection(
            "Emergency_vehicle",
            0.93,
            3.0,
            vec![segment(3.0, 6.0, 0.93, 0.91, 2)],
        ),
        detection(
            "Siren",
            0.93,
            7.0,
            vec![
                segment(2.0, 6.0, 0.93, 0.81, 3),
                segment(6.0, 9.0, 0.71, 0.69, 2),
            ],
        ),
        detection(
            "Speech",
            0.81,
            6.0,
            vec![
                segment(0.0, 3.0, 0.81, 0.79, 2),
                segment(9.0, 12.0, 0.64, 0.61, 2),
            ],
        ),
    ]
}

/// The odd file's detections: Speech with 4500 segments (three parts) and Siren.
pub fn odd_tags() -> Vec<TagDetection> {
    let speech = (0..4500)
        .map(|i| segment(3.0 * i as f64, 3.0 * i as f64 + 2.0, 0.66, 0.5, 1))
        .collect();
    vec![
        detection("Siren", 0.88, 2.0, vec![segment(4.0, 6.0, 0.88, 0.88, 1)]),
        detection("Speech", 0.66, 9000.0, speech),
    ]
}

pub fn siren_tags(i: usize) -> Vec<TagDetection> {
    let p = SIREN_PROBABILITIES[i];
    vec![detection("Siren", p, 2.0, vec![segment(0.0, 2.0, p, p, 1)])]
}

pub fn job(file: &str, status: JobStatus, inference: Option<&str>, updated: &str) -> JobRecord {
    JobRecord {
        file: uri(file),
        status,
        version: ObjectVersion {
            version_id: None,
            etag: Some("0123456789abcdef".into()),
            sequencer: None,
            event_time_ms: 1_764_000_000_000,
        },
        revision: 2,
        inference_id: inference.map(inference_id),
        accepted: inference.is_some(),
        claimed_until: None,
        expiry_resubmits: 0,
        notified: status.is_terminal(),
        content_type: Some("audio/wav".into()),
        size_bytes: Some(385_324),
        custom_attributes: None,
        output_location: None,
        failure_location: None,
        reason_code: None,
        reason: None,
        submitted_at: "2026-11-21T09:00:00.000Z".into(),
        completed_at: None,
        updated_at: updated.to_string(),
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: None,
    }
}

/// A valid inference id (the fixtures' ids always are).
pub fn inference_id(text: &str) -> InferenceId {
    InferenceId::parse(text).expect("valid inference id")
}

fn tag_items(file: &str, inference: &str, at: &str, tags: &[TagDetection]) -> Vec<Item> {
    tags.iter()
        .flat_map(|tag| schema::tag_records(&uri(file), &inference_id(inference), at, tag))
        .map(|record| schema::tag_item(&record))
        .collect()
}

/// A completed job and its detections.
pub fn completed(
    file: &str,
    inference: &str,
    at: &str,
    tags: &[TagDetection],
) -> (JobRecord, Vec<Item>) {
    let mut record = job(file, JobStatus::Completed, Some(inference), at);
    record.completed_at = Some(at.to_string());
    record.tags = tags.iter().map(TagSummary::from).collect();
    (record, tag_items(file, inference, at, tags))
}

/// The jobs of the seeded table, by file.
pub fn jobs() -> Vec<JobRecord> {
    seed_plan().0
}

fn seed_plan() -> (Vec<JobRecord>, Vec<Item>) {
    let mut jobs = Vec::new();
    let mut items = Vec::new();

    let (mut street, street_items) = completed(STREET, "cochl-street-2", LATEST, &street_tags());
    street.submitted_at = "2026-11-25T10:15:30.123Z".into();
    street.length_sec = Some(12.04);
    jobs.push(street);
    items.extend(street_items);
    // The street file's previous analysis: never shown.
    items.extend(tag_items(
        STREET,
        "cochl-street-1",
        "2026-11-20T08:00:00.000Z",
        &[
            detection("Dog_bark", 0.7, 2.0, vec![segment(0.0, 2.0, 0.7, 0.7, 1)]),
            detection("Siren", 0.5, 2.0, vec![segment(8.0, 10.0, 0.5, 0.5, 1)]),
        ],
    ));

    let (mut odd, odd_items) = completed(ODD, "cochl-odd", LATEST, &odd_tags());
    odd.length_sec = Some(13_500.5);
    jobs.push(odd);
    items.extend(odd_items);

    for (i, file) in SIRENS.iter().enumerate() {
        let (record, tag_items) = completed(
            file,
            &format!("cochl-siren-{i}"),
            SIREN_TIMES[i],
            &siren_tags(i),
        );
        jobs.push(record);
        items.extend(tag_items);
    }

    for (i, (file, at)) in FAILED
        .iter()
        .zip(["2026-11-25T11:00:00.000Z", "2026-11-25T09:00:00.000Z"])
        .enumerate()
    {
        let mut record = job(
            file,
            JobStatus::Failed,
            Some(&format!("cochl-broken-{i}")),
            at,
        );
        record.completed_at = Some(at.to_string());
        record.reason =
            Some("ClientError: Received server error (500) from model. See the logs.".into());
        record.reason_code = Some("inference_failed".into());
        jobs.push(record);
    }

    let mut rejected = job(
        REJECTED,
        JobStatus::Rejected,
        None,
        "2026-11-21T09:00:00.000Z",
    );
    rejected.content_type = None;
    rejected.reason = Some("text/plain is not audio".into());
    rejected.reason_code = Some("not_audio".into());
    jobs.push(rejected);

    jobs.push(job(
        SUBMITTED[0],
        JobStatus::Submitted,
        Some("cochl-again-2"),
        "2026-11-26T00:00:00.000Z",
    ));
    // Its earlier analysis found a Siren: not current, never shown.
    items.extend(tag_items(
        SUBMITTED[0],
        "cochl-again-1",
        "2026-11-24T06:00:00.000Z",
        &[detection(
            "Siren",
            0.99,
            2.0,
            vec![segment(0.0, 2.0, 0.99, 0.99, 1)],
        )],
    ));
    jobs.push(job(
        SUBMITTED[1],
        JobStatus::Submitted,
        Some("cochl-pending"),
        "2026-11-25T12:00:00.000Z",
    ));
    (jobs, items)
}

/// A fresh SDK client for the running test (clients must not outlive their runtime).
async fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&testkit::shared_sdk_config().await)
}

/// A store on a new, empty table.
pub async fn empty_store(prefix: &str) -> DynamoStore {
    let client = client().await;
    let table = testkit::unique_name(prefix);
    create_table(&client, &table).await.expect("table created");
    DynamoStore::new(client, table)
}

/// A store on the shared seeded table (seeded by whichever test gets here first).
pub async fn store() -> DynamoStore {
    static TABLE: OnceCell<String> = OnceCell::const_new();
    let table = TABLE
        .get_or_init(|| async {
            let store = empty_store("query").await;
            let (jobs, items) = seed_plan();
            // Jobs through the conditional write the functions use; detections batched.
            store
                .write_batch(items, vec![], None)
                .await
                .expect("tags seeded");
            for job in &jobs {
                store
                    .put_job(job, Expect::Absent)
                    .await
                    .expect("job seeded");
            }
            store.table().to_string()
        })
        .await;
    DynamoStore::new(client().await, table.clone())
}

/// A store whose table does not exist: every read fails.
pub async fn broken_store() -> DynamoStore {
    DynamoStore::new(client().await, testkit::unique_name("missing"))
}

/// Percent-encodes everything but unreserved characters (spaces as `%20`).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn request(method: &str, target: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(target)
        .body(Body::Empty)
        .expect("valid request")
}

/// A response, taken apart.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub allow: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    /// The body as text (an SVG is not JSON).
    pub text: String,
}

pub async fn send(store: &DynamoStore, request: Request) -> Reply {
    let response = cochl_query::handle(store, request)
        .await
        .unwrap_or_else(|never| match never {});
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let text = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8(bytes.clone()).expect("utf-8 body"),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    Reply {
        status: response.status(),
        allow: header_text(header::ALLOW),
        content_type: header_text(header::CONTENT_TYPE),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

pub async fn get(store: &DynamoStore, target: &str) -> Reply {
    send(store, request("GET", target)).await
}

/// Asserts a 400 whose message names `parameter`.
pub fn assert_bad_request(reply: &Reply, parameter: &str, context: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{context}: {reply:?}"
    );
    assert_eq!(reply.body["error"], "bad_request", "{context}");
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(parameter),
        "{context}: {message:?} should name {parameter}"
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
}

/// The tie-breaker of the listings' order, modelled here from the rule rather than taken from
/// the schema: the first 12 bytes of the SHA-256 of `s3://bucket/key`, in lowercase hex.
pub fn tie_hash(file: &S3Uri) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(file.to_string().as_bytes());
    digest[..12]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

//! The read side of the job table against moto with the real SDK: one file with its
//! detections, files with a tag (bounded, filtered, stale entries skipped), jobs by status.

use std::collections::HashSet;

use cochl_aws::dynamo::provision::create_table;
use cochl_aws::dynamo::read::{
    ReadError, TagFilesParams, FILTERED_QUERY_LIMIT, MAX_QUERY_REQUESTS,
};
use cochl_aws::dynamo::schema::{self, Item};
use cochl_aws::dynamo::{DynamoStore, Expect};
use cochl_aws::records::{JobRecord, StoredTags, TagSummary};
use cochl_core::detections::{Segment, TagDetection};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion};
use cochl_core::keys::S3Uri;
use cochl_core::time::format_millis;

async fn store() -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&testkit::shared_sdk_config().await);
    let table = testkit::unique_name("read");
    create_table(&client, &table).await.expect("table created");
    DynamoStore::new(client, table)
}

fn uri(text: &str) -> S3Uri {
    S3Uri::parse(text).expect("valid uri")
}

fn detection(name: &str, max_probability: f64, segments: usize) -> TagDetection {
    TagDetection {
        name: name.to_string(),
        max_probability,
        detected_seconds: 2.0 * segments as f64,
        windows: segments as u32,
        segments: (0..segments)
            .map(|i| Segment {
                start: 3.0 * i as f64,
                end: 3.0 * i as f64 + 2.0,
                max_probability,
                mean_probability: max_probability / 2.0,
                windows: 1,
            })
            .collect(),
    }
}

fn job(file: &S3Uri, status: JobStatus, inference: Option<&str>, at: &str) -> JobRecord {
    let terminal = status != JobStatus::Submitted;
    JobRecord {
        file: file.clone(),
        status,
        version: ObjectVersion {
            version_id: None,
            etag: Some("etag".into()),
            sequencer: None,
            event_time_ms: 1,
        },
        revision: 1,
        inference_id: inference.map(|id| InferenceId::parse(id).expect("valid inference id")),
        accepted: inference.is_some(),
        claimed_until: None,
        expiry_resubmits: 0,
        notified: terminal,
        content_type: Some("audio/wav".into()),
        size_bytes: Some(1000),
        custom_attributes: None,
        output_location: None,
        failure_location: None,
        reason_code: None,
        reason: None,
        submitted_at: "2026-01-01T00:00:00.000Z".into(),
        completed_at: terminal.then(|| at.to_string()),
        updated_at: at.to_string(),
        length_sec: None,
        tags: Vec::new(),
        tag_items: StoredTags::default(),
        purge_at: None,
    }
}

/// The items of one analysis's detections.
fn tag_items(file: &S3Uri, inference: &str, at: &str, tags: &[TagDetection]) -> Vec<Item> {
    tags.iter()
        .flat_map(|tag| {
            let inference = InferenceId::parse(inference).expect("valid inference id");
            schema::tag_records(file, &inference, at, tag)
        })
        .map(|record| schema::tag_item(&record))
        .collect()
}

/// A completed file whose analysis found `tags` at `at`.
fn completed(file: &S3Uri, inference: &str, at: &str, tags: &[TagDetection]) -> Vec<Item> {
    let mut record = job(file, JobStatus::Completed, Some(inference), at);
    record.tags = tags.iter().map(TagSummary::from).collect();
    let mut items = vec![schema::job_item(&record)];
    items.extend(tag_items(file, inference, at, tags));
    items
}

/// A listing of `tag`, newest first, unbounded in time and probability.
fn listing(tag: &str, limit: usize) -> TagFilesParams {
    TagFilesParams {
        name: tag.to_string(),
        since: None,
        until: None,
        min_probability: None,
        limit,
        cursor: None,
    }
}

#[tokio::test]
async fn get_file_merges_parts_and_ignores_older_analyses() {
    let store = store().await;
    let file = uri("s3://audio-bucket/incoming/a+b 100%/ünï ✓.wav");
    let speech = detection("Speech", 0.81, 4500);
    let siren = detection("Siren", 0.93, 3);
    let mut items = completed(
        &file,
        "cochl-new",
        "2026-11-25T10:16:02.000Z",
        &[speech.clone(), siren.clone()],
    );
    // An older analysis of the same file: one tag the new one lacks, one it shares.
    items.extend(tag_items(
        &file,
        "cochl-old",
        "2026-11-20T00:00:00.000Z",
        &[detection("Dog_bark", 0.5, 2), detection("Siren", 0.4, 7)],
    ));
    store
        .write_batch(items, vec![], None)
        .await
        .expect("seeded");

    let view = store.get_file(&file).await.expect("read").expect("found");
    assert_eq!(view.job.inference_id.as_deref(), Some("cochl-new"));
    assert_eq!(
        view.tags,
        vec![siren, speech],
        "sorted by name, parts merged"
    );

    assert_eq!(
        store
            .get_file(&uri("s3://audio-bucket/incoming/none.wav"))
            .await
            .expect("read"),
        None
    );

    let rejected = uri("s3://audio-bucket/incoming/notes.txt");
    let mut record = job(
        &rejected,
        JobStatus::Rejected,
        None,
        "2026-11-25T00:00:00.000Z",
    );
    record.reason_code = Some("not_audio".into());
    store.put_job(&record, Expect::Absent).await.expect("put");
    let view = store
        .get_file(&rejected)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(view.job, record);
    assert!(view.tags.is_empty());
}

#[tokio::test]
async fn files_with_tag_lists_current_analyses_newest_first() {
    let store = store().await;
    let stamps = [
        "2026-11-25T10:16:02.000Z",
        "2026-11-24T00:00:00.000Z",
        "2026-11-23T23:59:59.999Z",
        "2026-11-23T00:00:00.000Z",
    ];
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for (i, at) in stamps.iter().enumerate() {
        let file = uri(&format!("s3://audio-bucket/incoming/{i}.wav"));
        items.extend(completed(
            &file,
            &format!("cochl-{i}"),
            at,
            &[detection("Siren", 0.9, 1)],
        ));
        expected.push(file);
    }
    // Stale: the older analysis of file 0, and a file re-uploaded and not yet analysed.
    items.extend(tag_items(
        &expected[0],
        "cochl-old",
        "2026-11-24T12:00:00.000Z",
        &[detection("Siren", 0.7, 1)],
    ));
    let resubmitted = uri("s3://audio-bucket/incoming/again.wav");
    items.push(schema::job_item(&job(
        &resubmitted,
        JobStatus::Submitted,
        Some("cochl-next"),
        "2026-11-26T00:00:00.000Z",
    )));
    items.extend(tag_items(
        &resubmitted,
        "cochl-prev",
        "2026-11-25T12:00:00.000Z",
        &[detection("Siren", 0.7, 1)],
    ));
    store
        .write_batch(items, vec![], None)
        .await
        .expect("seeded");

    let (page, stats) = store
        .files_with_tag_counted(&listing("Siren", 100))
        .await
        .expect("listed");
    let files: Vec<S3Uri> = page.items.iter().map(|hit| hit.file.clone()).collect();
    assert_eq!(files, expected);
    assert_eq!(page.next_cursor, None);
    assert_eq!(stats.stale, 2, "{stats:?}");
    assert_eq!(stats.queries, 1);

    // Pages of two, and the cursor is bound to its listing and range.
    let (first, _) = store
        .files_with_tag_counted(&listing("Siren", 2))
        .await
        .expect("listed");
    assert_eq!(first.items.len(), 2);
    let cursor = first.next_cursor.expect("more");
    let (second, _) = store
        .files_with_tag_counted(&TagFilesParams {
            cursor: Some(cursor.clone()),
            ..listing("Siren", 2)
        })
        .await
        .expect("listed");
    let seen: Vec<S3Uri> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|hit| hit.file.clone())
        .collect();
    assert_eq!(seen, expected);
    for (tag, until) in [
        ("Speech", None),
        ("Siren", Some("2026-11-23T00:00:00.000Z")),
    ] {
        let err = store
            .files_with_tag_counted(&TagFilesParams {
                until: until.map(str::to_string),
                cursor: Some(cursor.clone()),
                ..listing(tag, 2)
            })
            .await
            .expect_err("cursor of another listing");
        assert!(matches!(err, ReadError::BadCursor(_)), "{err}");
    }

    // Inclusive bounds at the millisecond.
    let (since, until) = (Some(stamps[2]), Some(stamps[1]));
    let (page, _) = store
        .files_with_tag_counted(&TagFilesParams {
            since: since.map(str::to_string),
            until: until.map(str::to_string),
            ..listing("Siren", 100)
        })
        .await
        .expect("listed");
    let files: Vec<&S3Uri> = page.items.iter().map(|hit| &hit.file).collect();
    assert_eq!(files, vec![&expected[1], &expected[2]]);
    let (empty, _) = store
        .files_with_tag_counted(&TagFilesParams {
            since: until.map(str::to_string),
            until: since.map(str::to_string),
            ..listing("Siren", 100)
        })
        .await
        .expect("an empty range is no error");
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

#[tokio::test]
async fn filtered_listing_stops_after_its_query_budget_with_a_cursor() {
    let store = store().await;
    let filler = FILTERED_QUERY_LIMIT * MAX_QUERY_REQUESTS as usize + 50;
    let start_ms = 1_800_000_000_000i64;
    let mut items = Vec::new();
    // Two strong detections, older than a long run of weak ones.
    for i in 0..filler + 2 {
        let file = uri(&format!("s3://audio-bucket/hum/{i:05}.wav"));
        let at = format_millis(start_ms - i as i64 * 1000);
        let probability = if i >= filler { 0.9 } else { 0.1 };
        items.extend(completed(
            &file,
            &format!("cochl-{i}"),
            &at,
            &[detection("Hum", probability, 1)],
        ));
    }
    store
        .write_batch(items, vec![], None)
        .await
        .expect("seeded");

    let strong_hum = TagFilesParams {
        min_probability: Some(0.5),
        ..listing("Hum", 1)
    };
    let (first, stats) = store
        .files_with_tag_counted(&strong_hum)
        .await
        .expect("listed");
    assert!(first.items.is_empty());
    assert_eq!(stats.queries, MAX_QUERY_REQUESTS);
    assert_eq!(
        stats.evaluated,
        FILTERED_QUERY_LIMIT * MAX_QUERY_REQUESTS as usize
    );
    assert_eq!(
        stats.job_checks, 0,
        "nothing passed the filter, nothing to check"
    );
    let cursor = first
        .next_cursor
        .expect("a cursor where the budget ran out");

    let (second, stats) = store
        .files_with_tag_counted(&TagFilesParams {
            cursor: Some(cursor),
            ..strong_hum.clone()
        })
        .await
        .expect("listed");
    assert_eq!(stats.queries, 1);
    assert_eq!(second.items.len(), 1);
    assert_eq!(
        second.items[0].file,
        uri(&format!("s3://audio-bucket/hum/{filler:05}.wav"))
    );
    let (third, _) = store
        .files_with_tag_counted(&TagFilesParams {
            cursor: second.next_cursor.clone(),
            ..strong_hum
        })
        .await
        .expect("listed");
    assert_eq!(third.items.len(), 1);
    assert_eq!(
        third.items[0].file,
        uri(&format!("s3://audio-bucket/hum/{:05}.wav", filler + 1))
    );
    assert_eq!(third.next_cursor, None);

    // Unfiltered, a page of 100 takes one query.
    let (page, stats) = store
        .files_with_tag_counted(&listing("Hum", 100))
        .await
        .expect("listed");
    assert_eq!((page.items.len(), stats.queries), (100, 1));
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn jobs_by_status_pages_newest_first() {
    let store = store().await;
    let mut expected = Vec::new();
    let mut items = Vec::new();
    for i in 0..7 {
        let file = uri(&format!("s3://audio-bucket/failed/{i}.wav"));
        let mut record = job(
            &file,
            JobStatus::Failed,
            Some(&format!("cochl-{i}")),
            &format_millis(1_800_000_000_000 - i * 60_000),
        );
        record.reason = Some("ClientError: model error".into());
        record.reason_code = Some("inference_failed".into());
        items.push(schema::job_item(&record));
        expected.push(record);
    }
    items.push(schema::job_item(&job(
        &uri("s3://audio-bucket/ok.wav"),
        JobStatus::Completed,
        Some("cochl-ok"),
        "2030-01-01T00:00:00.000Z",
    )));
    store
        .write_batch(items, vec![], None)
        .await
        .expect("seeded");

    for limit in [1, 3, 7, 100] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store
                .jobs_by_status(JobStatus::Failed, limit, cursor.as_deref())
                .await
                .expect("listed");
            pages += 1;
            assert!(page.items.len() <= limit);
            seen.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages <= 8, "no end of pages at limit {limit}");
        }
        assert_eq!(seen, expected, "limit {limit}");
        let unique: HashSet<String> = seen.iter().map(|job| job.file.to_string()).collect();
        assert_eq!(unique.len(), 7);
    }

    let page = store
        .jobs_by_status(JobStatus::Failed, 2, None)
        .await
        .expect("listed");
    let cursor = page.next_cursor.expect("more");
    let err = store
        .jobs_by_status(JobStatus::Completed, 2, Some(&cursor))
        .await
        .expect_err("another status");
    assert!(matches!(err, ReadError::BadCursor(_)));
}

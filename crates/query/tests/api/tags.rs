//! `GET /tags/{name}/files`: order, pages, time bounds, probability filter, 400s.

use std::collections::HashSet;

use cochl_aws::dynamo::schema;
use cochl_core::time::format_millis;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::seed::{self, assert_bad_request, encode, get, Reply};

/// One expected row of the Siren listing.
#[derive(Debug, Clone)]
struct Row {
    file: &'static str,
    document: Value,
    completed_at: &'static str,
    probability: f64,
}

/// Every current Siren detection, newest first (ties broken by file hash, descending, as the
/// index orders them).
fn siren_rows() -> Vec<Row> {
    let mut rows = vec![
        (seed::STREET, "cochl-street-2", seed::LATEST, 0.93, 7.0, 5),
        (seed::ODD, "cochl-odd", seed::LATEST, 0.88, 2.0, 1),
    ];
    for i in 0..4 {
        let inference: &'static str = [
            "cochl-siren-0",
            "cochl-siren-1",
            "cochl-siren-2",
            "cochl-siren-3",
        ][i];
        rows.push((
            seed::SIRENS[i],
            inference,
            seed::SIREN_TIMES[i],
            seed::SIREN_PROBABILITIES[i],
            2.0,
            1,
        ));
    }
    let mut rows: Vec<Row> = rows
        .into_iter()
        .map(|(file, inference, at, p, seconds, windows)| Row {
            file,
            completed_at: at,
            probability: p,
            document: json!({
                "file": file,
                "inference_id": inference,
                "completed_at": at,
                "max_probability": p,
                "detected_seconds": seconds,
                "windows": windows,
            }),
        })
        .collect();
    rows.sort_by_key(|row| {
        std::cmp::Reverse(format!(
            "{}#{}",
            row.completed_at,
            seed::tie_hash(&seed::uri(row.file))
        ))
    });
    rows
}

/// Walks every page of a listing, asserting page sizes; returns the files in order.
async fn walk(store: &cochl_aws::dynamo::DynamoStore, base: &str, limit: usize) -> Vec<Value> {
    walk_from(store, base, limit, None).await
}

/// [`walk`], starting at a cursor.
async fn walk_from(
    store: &cochl_aws::dynamo::DynamoStore,
    base: &str,
    limit: usize,
    start: Option<String>,
) -> Vec<Value> {
    let mut files = Vec::new();
    let mut cursor = start;
    for _ in 0..50 {
        let mut target = format!("{base}&limit={limit}");
        if let Some(cursor) = &cursor {
            target.push_str(&format!("&cursor={cursor}"));
        }
        let reply = get(store, &target).await;
        assert_eq!(reply.status, StatusCode::OK, "{target}: {reply:?}");
        let page = reply.body["files"].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= limit, "{target}");
        files.extend(page);
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert_eq!(reply.body["next_cursor"], Value::Null);
                return files;
            }
        }
    }
    panic!("{base}: no last page after 50 pages");
}

fn expected(rows: &[Row], keep: impl Fn(&Row) -> bool) -> Vec<Value> {
    rows.iter()
        .filter(|row| keep(row))
        .map(|row| row.document.clone())
        .collect()
}

#[tokio::test]
async fn lists_current_analyses_newest_first_in_one_exact_document() {
    let store = seed::store().await;
    let reply = get(&store, "/tags/Siren/files").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"tag": "Siren", "files": expected(&siren_rows(), |_| true), "next_cursor": null})
    );
    // The older analyses' Dog_bark is gone from the listing too.
    let reply = get(&store, "/tags/Dog_bark/files").await;
    assert_eq!(
        reply.body,
        json!({"tag": "Dog_bark", "files": [], "next_cursor": null})
    );
    // A percent-encoded name is decoded; an unknown tag is an empty listing, not a 404.
    let reply = get(&store, "/tags/Emergency%5Fvehicle/files").await;
    assert_eq!(reply.body["tag"], "Emergency_vehicle");
    assert_eq!(reply.body["files"][0]["file"], seed::STREET);
    let reply = get(&store, "/tags/Baby%20cry/files").await;
    assert_eq!(
        reply.body,
        json!({"tag": "Baby cry", "files": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn pages_walk_every_file_once_newest_first() {
    let store = seed::store().await;
    let all = expected(&siren_rows(), |_| true);
    for limit in [1, 2, 100] {
        let files = walk(&store, "/tags/Siren/files?", limit).await;
        assert_eq!(files, all, "limit {limit}");
        let unique: HashSet<String> = files.iter().map(|f| f["file"].to_string()).collect();
        assert_eq!(unique.len(), files.len(), "duplicates at limit {limit}");
    }
    // The default page size covers the whole listing.
    let reply = get(&store, "/tags/Siren/files").await;
    assert_eq!(
        reply.body["files"].as_array().map(Vec::len),
        Some(all.len())
    );
}

#[tokio::test]
async fn since_and_until_are_inclusive_at_the_millisecond() {
    let store = seed::store().await;
    let rows = siren_rows();
    let t = seed::SIREN_TIMES;
    let l = seed::LATEST;
    // Each query and the completion times it must list.
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("since={}&until={}", t[1], t[0]), vec![t[0], t[1]]),
        (format!("since={0}&until={0}", t[0]), vec![t[0]]),
        ("since=2026-11-24T00:00:00.001Z".to_string(), vec![l]),
        (
            "until=2026-11-23T23:59:59.998Z".to_string(),
            vec![t[2], t[3]],
        ),
        (format!("until={l}"), vec![l, t[0], t[1], t[2], t[3]]),
        ("since=2026-11-25T10:16:02.001Z".to_string(), vec![]),
        // Offsets and bare dates are instants like any other.
        (
            "since=2026-11-24T01:00:00%2B01:00".to_string(),
            vec![l, t[0]],
        ),
        (
            "since=2026-11-23&until=2026-11-23T19:59:59.999-04:00".to_string(),
            vec![t[1], t[2]],
        ),
    ];
    for (query, times) in cases {
        let want = expected(&rows, |row| times.contains(&row.completed_at));
        for limit in [1, 100] {
            let files = walk(&store, &format!("/tags/Siren/files?{query}"), limit).await;
            assert_eq!(files, want, "{query} limit {limit}");
        }
    }
}

#[tokio::test]
async fn min_probability_filters_across_pages() {
    let store = seed::store().await;
    let rows = siren_rows();
    for (min, limit) in [
        (0.9, 1),
        (0.9, 2),
        (0.0, 1),
        (0.86, 1),
        (1.0, 1),
        (0.3, 100),
    ] {
        let files = walk(
            &store,
            &format!("/tags/Siren/files?min_probability={min}"),
            limit,
        )
        .await;
        let want = expected(&rows, |row| row.probability >= min);
        assert_eq!(files, want, "min {min} limit {limit}");
    }
    // With a limit of 1 and a filter, the first page stops at the first hit and says more
    // may follow; filtered-out files between hits are skipped, never listed.
    let reply = get(&store, "/tags/Siren/files?min_probability=0.9&limit=1").await;
    assert_eq!(reply.body["files"].as_array().map(Vec::len), Some(1));
    assert!(reply.body["next_cursor"].is_string());
}

#[tokio::test]
async fn filtered_pages_over_a_long_run_of_misses_stay_bounded() {
    // More weak detections than one call may read, then two strong ones.
    let store = seed::empty_store("hum").await;
    let filler = 1_050;
    let mut items = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..filler + 2 {
        let file = format!("s3://audio-bucket/hum/{i:05}.wav");
        let p = if i >= filler { 0.9 } else { 0.1 };
        let at = format_millis(1_800_000_000_000 - i as i64 * 1000);
        let tags = [seed::detection(
            "Hum",
            p,
            2.0,
            vec![seed::segment(0.0, 2.0, p, p, 1)],
        )];
        let (job, tag_items) = seed::completed(&file, &format!("cochl-hum-{i}"), &at, &tags);
        items.extend(tag_items);
        jobs.push(schema::job_item(&job));
    }
    items.extend(jobs);
    store
        .write_batch(items, vec![], None)
        .await
        .expect("seeded");

    let first = get(&store, "/tags/Hum/files?min_probability=0.5&limit=1").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.body["files"],
        json!([]),
        "the first call runs out of its query budget"
    );
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a cursor to go on from")
        .to_string();
    let files = walk_from(
        &store,
        "/tags/Hum/files?min_probability=0.5",
        1,
        Some(cursor),
    )
    .await;
    let names: Vec<&str> = files.iter().filter_map(|f| f["file"].as_str()).collect();
    assert_eq!(
        names,
        vec![
            "s3://audio-bucket/hum/01050.wav",
            "s3://audio-bucket/hum/01051.wav"
        ]
    );
}

fn tampered(cursor: &str) -> Vec<String> {
    let mut edits = Vec::new();
    let bytes = cursor.as_bytes();
    for i in [0, bytes.len() / 2, bytes.len() - 1] {
        let mut changed = bytes.to_vec();
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        edits.push(String::from_utf8(changed).expect("ascii"));
    }
    edits.push(cursor[..cursor.len() - 1].to_string());
    edits.push(format!("{cursor}A"));
    edits.push("not-a-cursor".to_string());
    edits.push("%20".to_string());
    edits
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let store = seed::store().await;
    let cases = [
        ("since=yesterday", "since"),
        ("since=", "since"),
        ("since=2026-11-24T00:00:00", "since"),
        ("until=2026-02-30", "until"),
        ("until=2026-11-24T25:00:00Z", "until"),
        ("since=2026-11-25&until=2026-11-24", "since and until"),
        ("min_probability=-0.1", "min_probability"),
        ("min_probability=1.5", "min_probability"),
        ("min_probability=abc", "min_probability"),
        ("min_probability=NaN", "min_probability"),
        ("min_probability=inf", "min_probability"),
        ("min_probability=", "min_probability"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("cursor=", "cursor"),
        ("limit=1&limit=2", "limit"),
        ("since=2026-01-01&since=2026-01-02", "since"),
        ("status=FAILED", "status"),
        ("uri=s3://a/b", "uri"),
        ("LIMIT=1", "LIMIT"),
    ];
    for (query, parameter) in cases {
        let reply = get(&store, &format!("/tags/Siren/files?{query}")).await;
        assert_bad_request(&reply, parameter, query);
    }
    for name in ["", "%C3%BC", "%0A", "%7F", "%ZZ", &"a".repeat(129)] {
        let reply = get(&store, &format!("/tags/{name}/files")).await;
        assert_bad_request(&reply, "name", name);
    }
    assert_eq!(
        get(&store, &format!("/tags/{}/files", "a".repeat(128)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cursors_are_bound_to_their_listing() {
    let store = seed::store().await;
    let page: Reply = get(&store, "/tags/Siren/files?limit=2").await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_string();
    assert_eq!(
        get(
            &store,
            &format!("/tags/Siren/files?limit=2&cursor={cursor}")
        )
        .await
        .status,
        StatusCode::OK
    );
    for bad in tampered(&cursor) {
        let reply = get(
            &store,
            &format!("/tags/Siren/files?limit=2&cursor={}", encode(&bad)),
        )
        .await;
        assert_bad_request(&reply, "cursor", &bad);
    }
    // Another tag, the jobs listing, and a range the cursor lies outside of.
    assert_bad_request(
        &get(&store, &format!("/tags/Speech/files?cursor={cursor}")).await,
        "cursor",
        "other tag",
    );
    assert_bad_request(
        &get(&store, &format!("/jobs?status=COMPLETED&cursor={cursor}")).await,
        "cursor",
        "jobs",
    );
    assert_bad_request(
        &get(
            &store,
            &format!("/tags/Siren/files?until=2026-11-01&cursor={cursor}"),
        )
        .await,
        "cursor",
        "outside the range",
    );
    let jobs = get(&store, "/jobs?status=COMPLETED&limit=1").await;
    let jobs_cursor = jobs.body["next_cursor"]
        .as_str()
        .expect("more jobs")
        .to_string();
    assert_bad_request(
        &get(&store, &format!("/tags/Siren/files?cursor={jobs_cursor}")).await,
        "cursor",
        "jobs cursor",
    );
}

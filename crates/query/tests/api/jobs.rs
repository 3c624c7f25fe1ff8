//! `GET /jobs`: listings per status, pages, 400s.

use std::collections::HashSet;

use cochl_core::job::JobStatus;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::seed::{self, assert_bad_request, get};

/// The job documents of `status`, most recently changed first (ties by file hash, descending).
fn expected(status: JobStatus) -> Vec<Value> {
    let mut jobs: Vec<_> = seed::jobs()
        .into_iter()
        .filter(|j| j.status == status)
        .collect();
    jobs.sort_by_key(|job| {
        std::cmp::Reverse(format!("{}#{}", job.updated_at, seed::tie_hash(&job.file)))
    });
    jobs.iter()
        .map(|job| {
            let mut document = json!({
                "file": job.file.to_string(),
                "status": job.status.as_str(),
                "inference_id": job.inference_id,
                "submitted_at": job.submitted_at,
                "updated_at": job.updated_at,
            });
            for (name, value) in [
                ("reason", &job.reason),
                ("reason_code", &job.reason_code),
                ("completed_at", &job.completed_at),
            ] {
                if let Some(value) = value {
                    document[name] = json!(value);
                }
            }
            document
        })
        .collect()
}

#[tokio::test]
async fn failed_jobs_document_is_exact() {
    let store = seed::store().await;
    let reply = get(&store, "/jobs?status=FAILED").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let reason = "ClientError: Received server error (500) from model. See the logs.";
    assert_eq!(
        reply.body,
        json!({
            "status": "FAILED",
            "jobs": [
                {"file": seed::FAILED[0], "status": "FAILED", "reason": reason, "reason_code": "inference_failed",
                 "inference_id": "cochl-broken-0", "submitted_at": "2026-11-21T09:00:00.000Z",
                 "completed_at": "2026-11-25T11:00:00.000Z", "updated_at": "2026-11-25T11:00:00.000Z"},
                {"file": seed::FAILED[1], "status": "FAILED", "reason": reason, "reason_code": "inference_failed",
                 "inference_id": "cochl-broken-1", "submitted_at": "2026-11-21T09:00:00.000Z",
                 "completed_at": "2026-11-25T09:00:00.000Z", "updated_at": "2026-11-25T09:00:00.000Z"}
            ],
            "next_cursor": null
        })
    );
    let reply = get(&store, "/jobs?status=rejected").await;
    assert_eq!(
        reply.body,
        json!({
            "status": "REJECTED",
            "jobs": [{"file": seed::REJECTED, "status": "REJECTED", "reason": "text/plain is not audio",
                      "reason_code": "not_audio", "inference_id": null,
                      "submitted_at": "2026-11-21T09:00:00.000Z", "updated_at": "2026-11-21T09:00:00.000Z"}],
            "next_cursor": null
        })
    );
}

#[tokio::test]
async fn every_status_pages_through_all_its_jobs_once() {
    let store = seed::store().await;
    for status in JobStatus::ALL
        .into_iter()
        .filter(|s| *s != JobStatus::Deleted)
    {
        let want = expected(status);
        assert!(!want.is_empty(), "{status} is seeded");
        for limit in [1, 2, 100] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..20 {
                let mut target = format!(
                    "/jobs?status={}&limit={limit}",
                    status.as_str().to_lowercase()
                );
                if let Some(cursor) = &cursor {
                    target.push_str(&format!("&cursor={cursor}"));
                }
                let reply = get(&store, &target).await;
                assert_eq!(reply.status, StatusCode::OK, "{target}");
                assert_eq!(reply.body["status"], status.as_str());
                let jobs = reply.body["jobs"].as_array().cloned().unwrap_or_default();
                assert!(jobs.len() <= limit);
                seen.extend(jobs);
                cursor = reply.body["next_cursor"].as_str().map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            assert!(cursor.is_none(), "{status} limit {limit}: no last page");
            assert_eq!(seen, want, "{status} limit {limit}");
            let unique: HashSet<String> = seen.iter().map(|j| j["file"].to_string()).collect();
            assert_eq!(unique.len(), seen.len());
        }
    }
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let store = seed::store().await;
    for (query, parameter) in [
        ("", "status"),
        ("limit=5", "status"),
        ("status=", "status"),
        ("status=DONE", "status"),
        ("status=FAILED,REJECTED", "status"),
        ("status=FAILED&status=FAILED", "status"),
        ("status=FAILED&limit=0", "limit"),
        ("status=FAILED&limit=101", "limit"),
        ("status=FAILED&limit=x", "limit"),
        ("status=FAILED&cursor=", "cursor"),
        ("status=FAILED&cursor=abc", "cursor"),
        ("status=FAILED&since=2026-01-01", "since"),
        ("status=FAILED&tag=Siren", "tag"),
    ] {
        let reply = get(&store, &format!("/jobs?{query}")).await;
        assert_bad_request(&reply, parameter, query);
    }
    let page = get(&store, "/jobs?status=COMPLETED&limit=1").await;
    let cursor = page.body["next_cursor"].as_str().expect("more").to_string();
    let reply = get(&store, &format!("/jobs?status=FAILED&cursor={cursor}")).await;
    assert_bad_request(&reply, "cursor", "another status");
}

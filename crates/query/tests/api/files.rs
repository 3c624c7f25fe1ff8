//! `GET /files`: exact documents for every kind of job, encodings, 404 and 400s.

use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::seed::{self, assert_bad_request, encode, get, ODD, REJECTED, STREET, SUBMITTED};

fn tags_json(tags: &[cochl_core::detections::TagDetection]) -> Value {
    tags.iter()
        .map(|tag| {
            json!({
                "name": tag.name,
                "max_probability": tag.max_probability,
                "detected_seconds": tag.detected_seconds,
                "windows": tag.windows,
                "segments": tag.segments.iter().map(|s| json!({
                    "start": s.start,
                    "end": s.end,
                    "max_probability": s.max_probability,
                    "mean_probability": s.mean_probability,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[tokio::test]
async fn completed_file_document_is_exact_and_ignores_the_older_analysis() {
    let store = seed::store().await;
    let reply = get(&store, &format!("/files?uri={}", encode(STREET))).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reply.body,
        json!({
            "file": STREET,
            "status": "COMPLETED",
            "inference_id": "cochl-street-2",
            "submitted_at": "2026-11-25T10:15:30.123Z",
            "completed_at": "2026-11-25T10:16:02.000Z",
            "length_sec": 12.04,
            "tags": [
                {"name": "Emergency_vehicle", "max_probability": 0.93, "detected_seconds": 3.0, "windows": 2,
                 "segments": [{"start": 3.0, "end": 6.0, "max_probability": 0.93, "mean_probability": 0.91}]},
                {"name": "Siren", "max_probability": 0.93, "detected_seconds": 7.0, "windows": 5,
                 "segments": [{"start": 2.0, "end": 6.0, "max_probability": 0.93, "mean_probability": 0.81},
                              {"start": 6.0, "end": 9.0, "max_probability": 0.71, "mean_probability": 0.69}]},
                {"name": "Speech", "max_probability": 0.81, "detected_seconds": 6.0, "windows": 4,
                 "segments": [{"start": 0.0, "end": 3.0, "max_probability": 0.81, "mean_probability": 0.79},
                              {"start": 9.0, "end": 12.0, "max_probability": 0.64, "mean_probability": 0.61}]}
            ]
        })
    );
}

#[tokio::test]
async fn odd_keys_decode_and_multi_part_tags_merge_in_order() {
    let store = seed::store().await;
    let expected = json!({
        "file": ODD,
        "status": "COMPLETED",
        "inference_id": "cochl-odd",
        "submitted_at": "2026-11-21T09:00:00.000Z",
        "completed_at": seed::LATEST,
        "length_sec": 13500.5,
        "tags": tags_json(&seed::odd_tags()),
    });
    assert_eq!(
        expected["tags"][1]["segments"].as_array().map(Vec::len),
        Some(4500)
    );
    // Spaces as %20 and as '+', the literal '+' and '%' escaped, unicode as UTF-8 bytes.
    let with_plus = encode(ODD).replace("%20", "+");
    for query in [encode(ODD), with_plus] {
        let reply = get(&store, &format!("/files?uri={query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {reply:?}");
        assert_eq!(reply.body, expected, "{query}");
    }
}

#[tokio::test]
async fn failed_rejected_and_submitted_files_have_no_tags() {
    let store = seed::store().await;
    let jobs = seed::jobs();
    let reply = get(&store, &format!("/files?uri={}", encode(seed::FAILED[0]))).await;
    assert_eq!(
        reply.body,
        json!({
            "file": seed::FAILED[0],
            "status": "FAILED",
            "reason": "ClientError: Received server error (500) from model. See the logs.",
            "reason_code": "inference_failed",
            "inference_id": "cochl-broken-0",
            "submitted_at": "2026-11-21T09:00:00.000Z",
            "completed_at": "2026-11-25T11:00:00.000Z",
            "tags": []
        })
    );
    let reply = get(&store, &format!("/files?uri={}", encode(REJECTED))).await;
    assert_eq!(
        reply.body,
        json!({
            "file": REJECTED,
            "status": "REJECTED",
            "reason": "text/plain is not audio",
            "reason_code": "not_audio",
            "inference_id": null,
            "submitted_at": "2026-11-21T09:00:00.000Z",
            "tags": []
        })
    );
    // Re-uploaded: tag items of its previous analysis exist, but the job is SUBMITTED.
    let reply = get(&store, &format!("/files?uri={}", encode(SUBMITTED[0]))).await;
    assert_eq!(
        reply.body,
        json!({
            "file": SUBMITTED[0],
            "status": "SUBMITTED",
            "inference_id": "cochl-again-2",
            "submitted_at": "2026-11-21T09:00:00.000Z",
            "tags": []
        })
    );
    assert!(jobs.iter().any(|job| job.file.to_string() == SUBMITTED[0]));
}

#[tokio::test]
async fn unknown_file_is_404() {
    let store = seed::store().await;
    for uri in [
        "s3://audio-bucket/incoming/missing.wav",
        // The right key in another bucket, and a prefix of an existing key.
        "s3://other-bucket/incoming/street 12s.wav",
        "s3://audio-bucket/incoming/street",
    ] {
        let reply = get(&store, &format!("/files?uri={}", encode(uri))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.body["error"], "not_found");
        assert!(reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(uri));
    }
}

#[tokio::test]
async fn bad_uri_parameters_are_400() {
    let store = seed::store().await;
    for query in [
        "",
        "?",
        "?uri=",
        "?uri=http%3A%2F%2Fbucket%2Fkey",
        "?uri=s3%3A%2F%2FBad_Bucket%2Fkey",
        "?uri=s3%3A%2F%2Fab%2Fkey",
        "?uri=s3%3A%2F%2Faudio-bucket",
        "?uri=s3%3A%2F%2Faudio-bucket%2F",
        "?uri=s3://audio-bucket/%ZZ",
        "?uri=s3://audio-bucket/%FF.wav",
        "?uri=s3://audio-bucket/a%",
    ] {
        let reply = get(&store, &format!("/files{query}")).await;
        assert_bad_request(&reply, "uri", query);
    }
    let too_long = format!("s3://audio-bucket/{}", "k".repeat(1025));
    assert_bad_request(
        &get(&store, &format!("/files?uri={too_long}")).await,
        "uri",
        "key too long",
    );
    let repeated = format!("/files?uri={0}&uri={0}", encode(STREET));
    assert_bad_request(&get(&store, &repeated).await, "uri", "repeated");
    let unknown = format!("/files?uri={}&verbose=1", encode(STREET));
    assert_bad_request(&get(&store, &unknown).await, "verbose", "unknown");
    assert_bad_request(
        &get(&store, &format!("/files?uri={}&%ZZ=1", encode(STREET))).await,
        "%ZZ",
        "undecodable name",
    );
}

//! Routes, methods, stages, and the one way to a 500.

use cochl_aws::dynamo::DynamoStore;
use lambda_http::http::StatusCode;
use lambda_http::RequestExt;
use std::collections::HashMap;

use crate::seed::{self, encode, get, request, send};

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let store = seed::store().await;
    for path in [
        "/",
        "/nope",
        "/files/",
        "/file",
        "/jobs/FAILED",
        "/tags/Siren",
        "/tags/Siren/files/x",
        "/tags",
    ] {
        for method in ["GET", "POST"] {
            let reply = send(&store, request(method, path)).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(reply.body["error"], "not_found");
            assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        }
    }
}

#[tokio::test]
async fn other_methods_on_known_paths_are_405_with_allow() {
    let store = seed::store().await;
    for path in ["/files", "/jobs?status=FAILED", "/tags/Siren/files"] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
            let reply = send(&store, request(method, path)).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(reply.allow.as_deref(), Some("GET"));
            assert_eq!(reply.body["error"], "method_not_allowed");
        }
    }
}

#[tokio::test]
async fn parameters_come_from_the_extension_when_the_uri_has_no_query() {
    let store = seed::store().await;
    let params = HashMap::from([("status".to_string(), "failed".to_string())]);
    let with_extension = request("GET", "/jobs").with_query_string_parameters(params);
    let reply = send(&store, with_extension).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["jobs"].as_array().map(Vec::len), Some(2));
    // Unknown names are refused from there too.
    let params = HashMap::from([("bogus".to_string(), "1".to_string())]);
    let reply = send(
        &store,
        request("GET", "/jobs").with_query_string_parameters(params),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_table_failure_is_a_500_without_details() {
    let store: DynamoStore = seed::broken_store().await;
    for target in [
        format!("/files?uri={}", encode(seed::STREET)),
        "/tags/Siren/files".to_string(),
        "/jobs?status=FAILED".to_string(),
    ] {
        let reply = get(&store, &target).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{target}");
        assert_eq!(reply.body["error"], "internal");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && !message.contains("ResourceNotFound"),
            "{message}"
        );
    }
    // Parameter problems are found before the table is touched: still 400, never 500.
    let reply = get(&store, "/jobs?status=nope").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

//! Reading results back the way users do: through the query function's handler.

use anyhow::{bail, Context, Result};
use cochl_core::keys::S3Uri;
use serde_json::Value;

use crate::stack::LocalStack;

/// Calls the query handler with `GET <path_and_query>` and returns status and JSON body.
pub async fn get(stack: &LocalStack, path_and_query: &str) -> Result<(u16, Value)> {
    let request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://query.local{path_and_query}"))
        .body(lambda_http::Body::Empty)
        .context("building the request")?;
    let response = match cochl_query::handle(&stack.store, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let body: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text)?,
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes)?,
        lambda_http::Body::Empty => Value::Null,
        _ => bail!("unexpected response body"),
    };
    Ok((status, body))
}

/// The file's timeline (`GET /files/timeline.svg?uri=...`), an SVG.
pub async fn timeline(stack: &LocalStack, file: &S3Uri) -> Result<String> {
    let request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!(
            "https://query.local/files/timeline.svg?uri={}",
            cochl_core::keys::encode_query_value(&file.to_string())
        ))
        .body(lambda_http::Body::Empty)
        .context("building the request")?;
    let response = match cochl_query::handle(&stack.store, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let text = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        lambda_http::Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    if status != 200 {
        bail!("GET /files/timeline.svg for {file} answered {status}: {text}");
    }
    Ok(text)
}

/// The query API's document for a file (`GET /files?uri=...`).
pub async fn file_document(stack: &LocalStack, file: &S3Uri) -> Result<Value> {
    let (status, body) = get(
        stack,
        &format!(
            "/files?uri={}",
            cochl_core::keys::encode_query_value(&file.to_string())
        ),
    )
    .await?;
    if status != 200 {
        bail!("GET /files for {file} answered {status}: {body}");
    }
    Ok(body)
}

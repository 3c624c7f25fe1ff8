//! GET requests to the query API, signed, with bounded time, and its errors made readable.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::sign::Signer;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A query API answer: its status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as sent.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the query API answered with invalid JSON")
    }
}

/// The query API at one base URL.
pub struct QueryClient {
    base: String,
    signer: Signer,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl QueryClient {
    /// A client of the API at `base` (`https://...lambda-url...on.aws/` or `make up`'s
    /// `http://127.0.0.1:port`), signing with `signer`.
    pub fn new(base: &str, signer: Signer) -> Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .context("loading this system's TLS root certificates")?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(QueryClient {
            base: base.trim_end_matches('/').to_string(),
            signer,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// `GET path_and_query` (e.g. `/files?uri=...`), whatever the status.
    pub async fn get(&self, path_and_query: &str) -> Result<Answer> {
        let url = format!("{}{path_and_query}", self.base);
        let uri: http::Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
        let host = uri
            .authority()
            .with_context(|| format!("no host in {url}"))?
            .to_string();
        let mut request = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        self.signer.sign(&mut request, SystemTime::now())?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(Answer { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .with_context(|| format!("GET {url}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("GET {url}"))
    }

    /// `GET path_and_query`, expecting 200 ([`ensure_ok`]).
    pub async fn get_ok(&self, path_and_query: &str) -> Result<Answer> {
        let answer = self.get(path_and_query).await?;
        ensure_ok(path_and_query, &answer)?;
        Ok(answer)
    }
}

/// The query path of a route that takes one file, e.g. `/files?uri=s3%3A%2F%2F...`.
pub fn file_route(route: &str, uri: &str) -> String {
    format!("{route}?uri={}", cochl_core::keys::encode_query_value(uri))
}

/// An error for any status but 200: the API's own `{"error", "message"}` when it sent one
/// (a 404 for a file never uploaded, a 400 naming the parameter), else the status and body
/// (a 403 from IAM, which answers before the function runs).
pub fn ensure_ok(path_and_query: &str, answer: &Answer) -> Result<()> {
    if answer.status == 200 {
        return Ok(());
    }
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    if let Ok(document) = answer.json() {
        if let (Some(code), Some(message)) = (
            document.get("error").and_then(Value::as_str),
            document.get("message").and_then(Value::as_str),
        ) {
            bail!("{message} ({path}: {} {code})", answer.status);
        }
    }
    let body = String::from_utf8_lossy(&answer.body);
    let hint = if answer.status == 403 {
        " (the query URL needs SigV4-signed requests from credentials allowed lambda:InvokeFunctionUrl)"
    } else {
        ""
    };
    bail!(
        "{path}: HTTP {}: {}{hint}",
        answer.status,
        body.trim().chars().take(300).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_the_api_or_the_status() {
        let not_found = Answer {
            status: 404,
            body: Bytes::from_static(
                br#"{"error":"not_found","message":"no job for s3://b/k.wav"}"#,
            ),
        };
        assert_eq!(
            ensure_ok("/files?uri=s3%3A%2F%2Fb%2Fk.wav", &not_found)
                .unwrap_err()
                .to_string(),
            "no job for s3://b/k.wav (/files: 404 not_found)"
        );
        let forbidden = Answer {
            status: 403,
            body: Bytes::from_static(br#"{"Message":"Forbidden"}"#),
        };
        let error = ensure_ok("/jobs?status=FAILED", &forbidden)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                r#"/jobs: HTTP 403: {"Message":"Forbidden"} (the query URL needs SigV4"#
            ),
            "{error}"
        );
        let fine = Answer {
            status: 200,
            body: Bytes::from_static(b"{}"),
        };
        assert!(ensure_ok("/jobs", &fine).is_ok());
    }
}

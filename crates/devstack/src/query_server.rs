//! The query function served over HTTP on 127.0.0.1, as its Function URL serves it in AWS:
//! every request is handed to `cochl_query::handle` (the function's own handler) as the
//! `lambda_http` request a Function URL would produce, and its answer is sent back as it is.
//! No IAM here: locally there is no one to keep out, and the handler never sees the
//! signature anyway (AWS checks it before the function runs).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use cochl_aws::dynamo::DynamoStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request body read (the API takes none; a body is refused by the handler's routes).
const MAX_BODY: usize = 64 << 10;

/// The running server; stops when [`QueryServer::shutdown`] is called or it is dropped.
#[derive(Debug)]
pub struct QueryServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl QueryServer {
    /// Serves the query API over `store` on a free port of 127.0.0.1.
    pub async fn start(store: DynamoStore) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the query server")?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let app = Router::new().fallback(serve).with_state(store);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.changed().await;
            });
            if let Err(error) = served.await {
                tracing::error!(error = %error, "the query server stopped");
            }
        });
        Ok(QueryServer {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (`COCHL_QUERY_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(State(store): State<DynamoStore>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let mut lambda_request = lambda_http::http::Request::builder()
        .method(parts.method.as_str())
        .uri(parts.uri.to_string());
    for (name, value) in &parts.headers {
        lambda_request = lambda_request.header(name.as_str(), value.as_bytes());
    }
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    let Ok(lambda_request) = lambda_request.body(body) else {
        return (StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    let answer = match cochl_query::handle(&store, lambda_request).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    let (parts, body) = answer.into_parts();
    let mut response = Response::builder().status(parts.status.as_u16());
    for (name, value) in &parts.headers {
        response = response.header(name.as_str(), value.as_bytes());
    }
    let body = match body {
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    response
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

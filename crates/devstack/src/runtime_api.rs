//! A stand-in of the Lambda Runtime API on 127.0.0.1, so the real function binaries run
//! here exactly as they run in Lambda: the process asks `GET .../invocation/next`, gets an
//! event, and posts its response or error back.
//!
//! Tests use it to kill a function process in the middle of an event and hand the same
//! event to a new process, as Lambda's retry does; the bench uses it to time a binary's
//! start and its first and warm invocations. Only what the `lambda_runtime` client uses is
//! served: `invocation/next`, `invocation/{id}/response`, `invocation/{id}/error` and
//! `init/error`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

const PREFIX: &str = "/2018-06-01/runtime";

/// What a function answered for one invocation, and when.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The handler's response body.
    Response(Vec<u8>),
    /// The handler's error (`errorType`, `errorMessage`).
    Error(Value),
}

/// One answered invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The answer.
    pub outcome: Outcome,
    /// When the event was handed out.
    pub delivered_at: Instant,
    /// When the answer arrived.
    pub answered_at: Instant,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<VecDeque<(String, Value)>>,
    arrived: Notify,
    delivered: Mutex<HashMap<String, Instant>>,
    answers: Mutex<HashMap<String, Answer>>,
    answered: Notify,
    next_requests: Mutex<Vec<Instant>>,
    init_errors: Mutex<Vec<Value>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running Runtime API stand-in; dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    counter: Mutex<u64>,
    _stop: oneshot::Sender<()>,
}

impl RuntimeApi {
    /// Serves on a free 127.0.0.1 port.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Runtime API stand-in")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(RuntimeApi {
            addr,
            shared,
            counter: Mutex::new(0),
            _stop: stop,
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for a function process.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event for the next `invocation/next`; returns its request id.
    pub fn invoke(&self, payload: Value) -> String {
        let id = {
            let mut counter = lock(&self.counter);
            *counter += 1;
            format!("devstack-{}-{}", std::process::id(), *counter)
        };
        lock(&self.shared.pending).push_back((id.clone(), payload));
        self.shared.arrived.notify_one();
        id
    }

    /// Whether the event was handed to a function yet.
    pub fn delivered(&self, id: &str) -> bool {
        lock(&self.shared.delivered).contains_key(id)
    }

    /// How many `invocation/next` requests arrived, and when.
    pub fn next_requests(&self) -> Vec<Instant> {
        lock(&self.shared.next_requests).clone()
    }

    /// Errors a function reported during its init.
    pub fn init_errors(&self) -> Vec<Value> {
        lock(&self.shared.init_errors).clone()
    }

    /// Waits for the answer to an invocation, up to `within`.
    pub async fn answer(&self, id: &str, within: Duration) -> Result<Answer> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.shared.answered.notified();
            if let Some(answer) = lock(&self.shared.answers).get(id) {
                return Ok(answer.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("invocation {id} was not answered within {within:?}");
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits until `count` `invocation/next` requests arrived, up to `within`.
    pub async fn wait_next_requests(&self, count: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.shared.answered.notified();
            if lock(&self.shared.next_requests).len() >= count {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("fewer than {count} invocation/next requests within {within:?}");
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

/// Long-polls until an event is queued, then hands it out with Lambda's headers.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.next_requests).push(Instant::now());
    shared.answered.notify_waiters();
    loop {
        let arrived = shared.arrived.notified();
        let event = lock(&shared.pending).pop_front();
        if let Some((id, payload)) = event {
            lock(&shared.delivered).insert(id.clone(), Instant::now());
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 900_000);
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id.clone()),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:devstack".to_string(),
                ),
                ("lambda-runtime-trace-id", format!("Root=1-00000000-{id}")),
                ("content-type", "application/json".to_string()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (StatusCode::OK, headers, payload.to_string()).into_response();
        }
        arrived.await;
    }
}

fn record(shared: &Shared, id: String, outcome: Outcome) -> StatusCode {
    let delivered_at = lock(&shared.delivered)
        .get(&id)
        .copied()
        .unwrap_or_else(Instant::now);
    lock(&shared.answers).insert(
        id,
        Answer {
            outcome,
            delivered_at,
            answered_at: Instant::now(),
        },
    );
    shared.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, id, Outcome::Response(body.to_vec()))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    record(&shared, id, Outcome::Error(value))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    lock(&shared.init_errors).push(value);
    StatusCode::ACCEPTED
}

//! The HTTP routes of the SageMaker Runtime API: `InvokeEndpointAsync` and
//! `InvokeEndpoint`, plus `/ping` and the admin API (see [`crate::admin`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;

use crate::analysis::analyse;
use crate::faults::{FrontDoorFault, INJECTED_FAILURE};
use crate::jobs::{Job, Plan, DEFAULT_CONTENT_TYPE};
use crate::protocol::{
    self, parse_async_invocation, parse_realtime_invocation, ApiError, MAX_REALTIME_BODY,
};
use crate::state::Shared;

/// Largest body read from an `InvokeEndpointAsync` call (it should have none; SageMaker's
/// inline body limit is 128,000 bytes).
const MAX_ASYNC_BODY: usize = 128_000;

/// The application: every route, with a request id on every answer.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/endpoints/{name}/async-invocations", post(invoke_async))
        .route("/endpoints/{name}/invocations", post(invoke_realtime))
        .route("/ping", get(ping))
        .merge(crate::admin::routes())
        .layer(axum::middleware::map_response(add_request_id))
        .with_state(shared)
}

async fn add_request_id(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(protocol::REQUEST_ID), value);
    }
    response
}

async fn ping() -> StatusCode {
    StatusCode::OK
}

/// Injected latency, then the front-door faults, counted per call.
async fn front_door(shared: &Shared) -> Result<(), ApiError> {
    let latency = shared.control().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut control = shared.control();
    match control.faults.front_door() {
        None => Ok(()),
        Some(FrontDoorFault::Throttle) => {
            control.stats.throttled += 1;
            Err(ApiError::Throttling(
                "Rate exceeded (injected fault).".to_owned(),
            ))
        }
        Some(FrontDoorFault::Unavailable) => {
            control.stats.unavailable += 1;
            Err(ApiError::ServiceUnavailable(
                "The service is unavailable (injected fault).".to_owned(),
            ))
        }
    }
}

/// Counts a validation error on its way out.
fn counted(shared: &Shared, error: ApiError) -> ApiError {
    if matches!(error, ApiError::Validation(_)) {
        shared.control().stats.validation_errors += 1;
    }
    error
}

/// What every invocation call starts with: the injected latency and front-door faults, then
/// the endpoint name from the path (a malformed one counted as a validation error).
async fn open_call(
    shared: &Shared,
    path: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    front_door(shared).await?;
    path.map(|Path(name)| name).map_err(|e| {
        counted(
            shared,
            ApiError::Validation(format!("Invalid endpoint name in the path: {e}")),
        )
    })
}

/// Reads a body up to `limit` bytes; a larger one is a `ValidationError`.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::Validation(format!(
            "Request body is larger than the limit of {limit} bytes"
        ))
    })
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text)
        .map_err(|e| ApiError::Internal(format!("cannot send {text:?} as a header: {e}")))
}

/// Picks what happens to the inference being accepted (scripts and faults are FIFO in
/// acceptance order).
fn plan(shared: &Shared) -> Plan {
    let mut control = shared.control();
    Plan {
        scripted: control.scripts.pop_front(),
        inject_failure: control.faults.take_inference_failure(),
        expire: control.faults.take_expiry(),
        processing_delay: Duration::from_millis(control.faults.processing_delay_ms),
    }
}

/// `POST /endpoints/{name}/async-invocations`.
async fn invoke_async(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = SystemTime::now();
    let received = Instant::now();
    // Counted before any fault or validation: the count says what clients sent, whatever
    // the emulator then made of it.
    let sent_location = headers
        .get(protocol::INPUT_LOCATION)
        .map(|value| value.as_bytes());
    if sent_location.is_some_and(|bytes| !protocol::is_printable_ascii(bytes)) {
        shared.control().stats.non_ascii_input_locations += 1;
    }
    let name = open_call(&shared, path).await?;
    let body = read_body(body, MAX_ASYNC_BODY)
        .await
        .map_err(|e| counted(&shared, e))?;
    let request = parse_async_invocation(&name, &shared.config.endpoint_name, &headers, body.len())
        .map_err(|e| counted(&shared, e))?;

    let uuid = uuid::Uuid::new_v4();
    let location = |prefix: &crate::config::S3Prefix, name: String| {
        prefix
            .join(&name)
            .map_err(|e| ApiError::Internal(format!("cannot name the output object: {e}")))
    };
    let output_location = location(&shared.config.output_path, format!("{uuid}.out"))?;
    let failure_location = location(&shared.config.failure_path, format!("{uuid}-error.out"))?;
    let output_header = header_value(&output_location.to_string())?;
    let failure_header = header_value(&failure_location.to_string())?;
    let inference_id = request.inference_id.clone();

    let plan = plan(&shared);
    {
        let mut control = shared.control();
        control.stats.accepted += 1;
        control.stats.queued += 1;
        // Exactly as sent (valid UTF-8, or it would have been refused), so a test sees
        // the client's bytes rather than the parsed URI.
        control.input_locations.push(
            sent_location
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_else(|| request.input_location.to_string()),
        );
        let outstanding = control.stats.queued + control.stats.running;
        control.stats.max_outstanding_seen = control.stats.max_outstanding_seen.max(outstanding);
    }
    tracing::info!(
        inference_id = %inference_id,
        input = %request.input_location,
        output = %output_location,
        content_type = request.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE),
        scripted = plan.scripted.is_some(),
        inject_failure = plan.inject_failure,
        "inference accepted"
    );
    let job = Job {
        request,
        output_location,
        failure_location,
        received_at,
        received,
        plan,
    };
    if shared.jobs.send(job).is_err() {
        let mut control = shared.control();
        control.stats.queued = control.stats.queued.saturating_sub(1);
        return Err(ApiError::Internal(
            "the emulator is shutting down".to_owned(),
        ));
    }
    let mut response = (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "InferenceId": inference_id })),
    )
        .into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        HeaderName::from_static(protocol::OUTPUT_LOCATION),
        output_header,
    );
    response_headers.insert(
        HeaderName::from_static(protocol::FAILURE_LOCATION),
        failure_header,
    );
    Ok(response)
}

/// `POST /endpoints/{name}/invocations` (real-time).
async fn invoke_realtime(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = open_call(&shared, path).await?;
    let request = parse_realtime_invocation(&name, &shared.config.endpoint_name, &headers)
        .map_err(|e| counted(&shared, e))?;
    let body = read_body(body, MAX_REALTIME_BODY)
        .await
        .map_err(|e| counted(&shared, e))?;
    let plan = plan(&shared);
    let inference_id = request.inference_id.clone().unwrap_or_default();
    if !plan.processing_delay.is_zero() {
        tokio::time::sleep(plan.processing_delay).await;
    }
    let result = if plan.inject_failure {
        Err(INJECTED_FAILURE.to_owned())
    } else if let Some(script) = plan.scripted {
        Ok(script)
    } else {
        let content_type = request
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        let custom_attributes = request.custom_attributes.clone();
        let analysed = tokio::task::spawn_blocking(move || {
            analyse(&body, &content_type, custom_attributes.as_deref())
        })
        .await
        .map_err(|e| ApiError::Internal(format!("analysis task failed: {e}")))?;
        match analysed {
            Ok(document) => {
                tracing::info!(
                    inference_id,
                    windows = document.data.len(),
                    tags = ?document.tag_names(),
                    "real-time result computed by the emulator's stand-in tag rule, not by Cochl.Sense"
                );
                document
                    .to_json()
                    .map(Bytes::from)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    };
    match result {
        Ok(bytes) => {
            shared.control().stats.realtime_completed += 1;
            Ok((
                StatusCode::OK,
                [
                    ("content-type", "application/json"),
                    (protocol::INVOKED_PRODUCTION_VARIANT, "AllTraffic"),
                ],
                bytes,
            )
                .into_response())
        }
        Err(message) => {
            shared.control().stats.realtime_failed += 1;
            tracing::info!(inference_id, reason = %message, "real-time inference failed");
            Err(ApiError::Model(format!(
                "Received client error (400) from model with message \"{message}\"."
            )))
        }
    }
}

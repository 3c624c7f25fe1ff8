//! The admin API for tests, under `/_emulator/` (JSON in and out).
//!
//! - `POST /_emulator/scripted-results`: the body (any bytes, up to [`MAX_SCRIPT_BYTES`]) is
//!   queued; the next accepted inference writes exactly these bytes as its result (after
//!   reading its input). Answers `{"queued": <scripts waiting>}`.
//! - `POST /_emulator/faults`: [`FaultSettings`]; answers the current [`Faults`].
//! - `GET /_emulator/faults`: the current [`Faults`].
//! - `GET /_emulator/stats`: the [`Stats`].
//! - `GET /_emulator/input-locations`: the [`InputLocations`] of every accepted
//!   `InvokeEndpointAsync` call (its own route, not part of the stats: the list grows with
//!   every inference, and the stats are polled often).
//! - `POST /_emulator/reset`: clears faults, scripts, counters and input locations.
//!
//! A malformed request is answered 400 with `{"message": "..."}`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;

use crate::faults::{FaultSettings, Faults};
use crate::state::{InputLocations, Shared, Stats};

/// Largest scripted result accepted (axum's default limit of 2 MB is too small for a
/// day-long result of 86,400 windows).
pub const MAX_SCRIPT_BYTES: usize = 64 << 20;

/// The admin routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/_emulator/scripted-results",
            post(push_script).layer(DefaultBodyLimit::max(MAX_SCRIPT_BYTES)),
        )
        .route("/_emulator/faults", post(set_faults).get(get_faults))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/input-locations", get(input_locations))
        .route("/_emulator/reset", post(reset))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

async fn push_script(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let queued = {
        let mut control = shared.control();
        control.scripts.push_back(body);
        control.scripts.len()
    };
    tracing::info!(queued, "scripted result queued");
    Json(serde_json::json!({ "queued": queued })).into_response()
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings: FaultSettings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(e) => return bad_request(format!("invalid faults: {e}")),
    };
    let faults = {
        let mut control = shared.control();
        if let Err(message) = control.faults.apply(&settings) {
            return bad_request(message);
        }
        control.faults.clone()
    };
    tracing::info!(?faults, "faults set");
    Json(faults).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.control().faults.clone())
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.control().stats.clone())
}

async fn input_locations(State(shared): State<Arc<Shared>>) -> Json<InputLocations> {
    Json(InputLocations {
        input_locations: shared.control().input_locations.clone(),
    })
}

async fn reset(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    let mut control = shared.control();
    control.reset();
    tracing::info!("faults, scripts, counters and input locations reset");
    Json(control.stats.clone())
}

//! Every way a request can fail, and the JSON error response each becomes.
//!
//! The handler never returns an error to the Lambda runtime: a failure is an HTTP response
//! with a JSON body `{"error": "<code>", "message": "..."}`. Only a failure of the table is a
//! 5xx; anything about the request itself is a 4xx naming what was wrong.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};

use crate::documents::{json_response, ErrorDocument};

/// Why a request was not answered with a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, unknown, repeated or invalid (400). The message names it.
    #[error("{0}")]
    BadRequest(String),
    /// No such route, or no such file (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but only answers GET (405).
    #[error("{method} is not allowed on {path}; use GET")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The route's path.
        path: String,
    },
    /// The table could not be read (500). The cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 about one parameter: `parameter <name>: <problem>`.
    pub fn parameter(name: &str, problem: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(format!("parameter {name}: {problem}"))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message shown to the client. An internal error's cause stays in the logs.
    pub fn message(&self) -> String {
        match self {
            ApiError::Internal(_) => "the job table could not be read; try again later".to_string(),
            other => other.to_string(),
        }
    }

    /// The JSON error response (with `Allow: GET` for a 405).
    pub fn into_response(self) -> Response<Body> {
        let document = ErrorDocument {
            error: self.code(),
            message: self.message(),
        };
        let mut response = json_response(self.status(), &document);
        if matches!(self, ApiError::MethodNotAllowed { .. }) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        }
        response
    }
}

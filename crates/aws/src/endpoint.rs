//! The SageMaker async endpoint: `InvokeEndpointAsync` with our own retry loop.
//!
//! The SDK's retries are disabled on this client (see [`crate::clients::sagemaker`]) so that
//! throttling (429 `ThrottlingException`), 5xx answers and connection failures are retried
//! here, with exponential backoff and jitter that never waits past the invocation's
//! deadline, and so the number of attempts is known and logged. A 4xx other than 429 is the
//! request's fault and is not retried.

use std::time::Instant;

use aws_sdk_sagemakerruntime::config::http::HttpResponse;
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncError;
use aws_sdk_sagemakerruntime::Client;
use cochl_core::inference_id::InferenceId;
use cochl_core::keys::S3Uri;

use crate::retry::Backoff;

/// What submit asks of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRequest {
    /// Our deterministic inference id.
    pub inference_id: InferenceId,
    /// The uploaded object.
    pub input: S3Uri,
    /// The Cochl content type.
    pub content_type: String,
    /// The sensitivity header, if any.
    pub custom_attributes: Option<String>,
    /// How long the request may wait in SageMaker's queue.
    pub request_ttl_seconds: Option<u32>,
    /// How long processing may take.
    pub invocation_timeout_seconds: Option<u32>,
}

/// The endpoint's 202 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The inference id SageMaker uses (ours, echoed).
    pub inference_id: String,
    /// Where the result will be written.
    pub output_location: Option<S3Uri>,
    /// Where a failure will be written.
    pub failure_location: Option<S3Uri>,
    /// Calls made, the successful one included.
    pub attempts: u32,
}

/// Why the endpoint did not accept a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The endpoint refused the request itself (4xx other than throttling): retrying is
    /// pointless; the job is marked failed with this reason.
    #[error("SageMaker refused the request ({code}): {message}")]
    Refused {
        /// Error code, e.g. `ValidationError`.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Retryable failures until the attempts or the time budget ran out; Lambda's own retry
    /// (and, in the end, the dead-letter queue) takes over.
    #[error("SageMaker did not accept the request after {attempts} attempts: {last}")]
    GaveUp {
        /// Calls made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// Classification of one failed call.
enum Failure {
    Retryable(String),
    Permanent { code: String, message: String },
}

fn classify(error: &SdkError<InvokeEndpointAsyncError, HttpResponse>) -> Failure {
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = service.err().message().unwrap_or_default().to_string();
            let status = service.raw().status().as_u16();
            let retryable_code = matches!(
                code.as_str(),
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "ServiceUnavailable"
                    | "InternalFailure"
                    | "InternalDependencyException"
            );
            if retryable_code || status == 429 || status >= 500 {
                Failure::Retryable(format!("{code} (HTTP {status}): {message}"))
            } else {
                Failure::Permanent { code, message }
            }
        }
        // Dispatch, timeout and response errors: the network or the endpoint's front end.
        other => Failure::Retryable(crate::error_chain(other)),
    }
}

/// The async endpoint of the Cochl model.
#[derive(Debug, Clone)]
pub struct AsyncEndpoint {
    client: Client,
    name: String,
    max_attempts: u32,
}

impl AsyncEndpoint {
    /// Wraps a client (built without SDK retries) for one endpoint.
    pub fn new(client: Client, name: impl Into<String>, max_attempts: u32) -> Self {
        AsyncEndpoint {
            client,
            name: name.into(),
            max_attempts: max_attempts.max(1),
        }
    }

    /// Calls InvokeEndpointAsync, retrying throttling and server errors with backoff
    /// inside the deadline.
    pub async fn invoke_async(
        &self,
        request: &InvocationRequest,
        deadline: Option<Instant>,
    ) -> Result<Accepted, EndpointError> {
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
            self.max_attempts,
        )
        .with_deadline(deadline);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let call = self
                .client
                .invoke_endpoint_async()
                .endpoint_name(&self.name)
                .inference_id(request.inference_id.as_str())
                .input_location(request.input.to_string())
                .content_type(&request.content_type)
                .accept("application/json")
                .set_custom_attributes(request.custom_attributes.clone())
                .set_request_ttl_seconds(request.request_ttl_seconds.map(|s| s as i32))
                .set_invocation_timeout_seconds(
                    request.invocation_timeout_seconds.map(|s| s as i32),
                )
                .send()
                .await;
            let error = match call {
                Ok(output) => {
                    let parse =
                        |location: Option<&str>| location.and_then(|l| S3Uri::parse(l).ok());
                    return Ok(Accepted {
                        inference_id: output
                            .inference_id()
                            .unwrap_or(request.inference_id.as_str())
                            .to_string(),
                        output_location: parse(output.output_location()),
                        failure_location: parse(output.failure_location()),
                        attempts,
                    });
                }
                Err(error) => error,
            };
            match classify(&error) {
                Failure::Permanent { code, message } => {
                    return Err(EndpointError::Refused { code, message })
                }
                Failure::Retryable(last) => {
                    tracing::warn!(
                        inference_id = %request.inference_id,
                        file = %request.input,
                        attempt = attempts,
                        error = %last,
                        "InvokeEndpointAsync failed, retrying if the budget allows"
                    );
                    match backoff.next_delay() {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(EndpointError::GaveUp { attempts, last }),
                    }
                }
            }
        }
    }
}

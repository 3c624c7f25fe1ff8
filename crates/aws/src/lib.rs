//! Adapters between the Cochl domain and AWS.
//!
//! Each module wraps one service behind the few operations the functions need, with typed
//! errors: the DynamoDB job table ([`dynamo`]), S3 objects ([`objects`]), the SageMaker
//! async endpoint ([`endpoint`]), SNS ([`notify`]) and the detection notification it carries
//! ([`message`]). [`settings`] reads every function's
//! configuration from the environment, [`retry`] is the backoff policy, [`clients`] builds the
//! SDK clients once per cold start.

pub mod admission;
pub mod batch;
pub mod clients;
pub mod clock;
pub mod dynamo;
pub mod endpoint;
pub mod inspect;
pub mod logging;
pub mod message;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod ports;
pub mod queue;
pub mod records;
pub mod retry;
pub mod settings;

/// An error and its sources on one line, as logs and stored reasons want it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

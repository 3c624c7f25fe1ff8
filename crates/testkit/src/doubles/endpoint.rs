//! The async endpoint as a script of answers, recording every request it gets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use cochl_aws::endpoint::{Accepted, EndpointError, InvocationRequest};
use cochl_aws::ports::InferenceEndpoint;
use cochl_core::keys::S3Uri;

use super::lock;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointReply {
    /// 202: output and failure locations under `results/` and `failures/` of the input's
    /// bucket, numbered by request.
    Accept,
    /// A 4xx the request itself caused (e.g. `ValidationError`).
    Refuse {
        /// The error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Throttling that outlasted the attempts or the budget.
    GiveUp {
        /// Calls the real adapter would have made.
        attempts: u32,
    },
}

/// An endpoint answering from a script; once the script is empty, every request is accepted.
#[derive(Debug, Default)]
pub struct ScriptedEndpoint {
    script: Mutex<VecDeque<EndpointReply>>,
    requests: Mutex<Vec<InvocationRequest>>,
}

impl ScriptedEndpoint {
    /// Accepts everything.
    pub fn new() -> Self {
        ScriptedEndpoint::default()
    }

    /// Queues the answer to a coming request.
    pub fn reply(&self, reply: EndpointReply) {
        lock(&self.script).push_back(reply);
    }

    /// Every request received, in order, accepted or not.
    pub fn requests(&self) -> Vec<InvocationRequest> {
        lock(&self.requests).clone()
    }

    /// The output location the `n`-th request (from 1) is given when accepted.
    pub fn output_location(input: &S3Uri, n: usize) -> S3Uri {
        location(input, "results", &format!("{n}.out"))
    }
}

fn location(input: &S3Uri, prefix: &str, name: &str) -> S3Uri {
    S3Uri::new(input.bucket(), format!("{prefix}/{name}"))
        .unwrap_or_else(|_| input.clone())
}

impl InferenceEndpoint for ScriptedEndpoint {
    async fn invoke_async(
        &self,
        request: &InvocationRequest,
        _deadline: Option<Instant>,
    ) -> Result<Accepted, EndpointError> {
        let n = {
            let mut requests = lock(&self.requests);
            requests.push(request.clone());
            requests.len()
        };
        let reply = lock(&self.script)
            .pop_front()
            .unwrap_or(EndpointReply::Accept);
        match reply {
            EndpointReply::Accept => Ok(Accepted {
                inference_id: request.inference_id.to_string(),
                output_location: Some(ScriptedEndpoint::output_location(&request.input, n)),
                failure_location: Some(location(&request.input, "failures", &format!("{n}"))),
                attempts: 1,
            }),
            EndpointReply::Refuse { code, message } => {
                Err(EndpointError::Refused { code, message })
            }
            EndpointReply::GiveUp { attempts } => Err(EndpointError::GaveUp {
                attempts,
                last: "ThrottlingException (HTTP 429): scripted".into(),
            }),
        }
    }
}

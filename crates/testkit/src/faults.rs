//! Transient AWS faults on the wire, for reliability tests.
//!
//! [`FaultInjector::wrap`] returns an SDK configuration whose HTTP client wraps the real one:
//! every request still goes over the network to the local service unless a [`FaultRule`]
//! picks it, in which case the client sees the error answer AWS would give (the service's
//! own error shape, so the SDK's retry classifiers treat it as they treat the real thing).
//! A fault either refuses the request before it reaches the service, or lets the service
//! apply it and then loses the answer ([`FaultMode::LostAnswer`]), the nastier case for
//! idempotency. Choices come from a seeded SplitMix64 generator; the counts of calls and
//! injected faults per service and operation are kept for the test's report.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::SdkConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::rng::SplitMix64;

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Answer 500 InternalError without forwarding: the service never saw the request.
    InternalError,
    /// Answer the service's throttling error without forwarding.
    Throttle,
    /// Forward the request (the service applies it), then answer 500: the client cannot
    /// tell whether it was applied.
    LostAnswer,
}

/// Which requests a fault applies to, and how often.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Signing name of the service (`dynamodb`, `sns`, `s3`, `sqs`).
    pub service: String,
    /// The operation (`PutItem`, `Publish`, ...); `None` for every operation.
    pub operation: Option<String>,
    /// Share of the matching requests that fail, in [0, 1].
    pub ratio: f64,
    /// What the fault does.
    pub mode: FaultMode,
}

impl FaultRule {
    /// A rule for every operation of a service.
    pub fn service(service: &str, ratio: f64, mode: FaultMode) -> Self {
        FaultRule {
            service: service.into(),
            operation: None,
            ratio,
            mode,
        }
    }
}

/// Calls and injected faults of one service operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests seen.
    pub calls: u64,
    /// Requests answered with an injected fault.
    pub injected: u64,
}

#[derive(Debug)]
struct State {
    rules: Vec<FaultRule>,
    enabled: bool,
    rng: SplitMix64,
    counts: BTreeMap<String, FaultCounts>,
}

/// Decides, counts and answers faults; cheap to clone (shared state).
#[derive(Clone)]
pub struct FaultInjector {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector").finish_non_exhaustive()
    }
}

impl FaultInjector {
    /// An injector with these rules, enabled, its choices drawn from `seed`.
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        FaultInjector {
            state: Arc::new(Mutex::new(State {
                rules,
                enabled: true,
                rng: SplitMix64(seed),
                counts: BTreeMap::new(),
            })),
        }
    }

    /// Turns injection on or off (counting goes on).
    pub fn set_enabled(&self, enabled: bool) {
        self.lock().enabled = enabled;
    }

    /// Replaces the rules (e.g. a full outage of one service, then back to transient faults).
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        self.lock().rules = rules;
    }

    /// Calls and injected faults so far, by `service.Operation`.
    pub fn counts(&self) -> BTreeMap<String, FaultCounts> {
        self.lock().counts.clone()
    }

    /// Injected faults so far, over every service.
    pub fn injected(&self) -> u64 {
        self.lock().counts.values().map(|c| c.injected).sum()
    }

    /// `config` with its HTTP client wrapped by this injector; everything else unchanged.
    pub fn wrap(&self, config: &SdkConfig) -> SdkConfig {
        // The SDK's own default client, as the clients would build it themselves.
        let Some(inner) = config.http_client().or_else(|| {
            Some(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                    .build_https(),
            )
        }) else {
            return config.clone();
        };
        let injector = self.clone();
        let client = http_client_fn(move |settings, components| {
            SharedHttpConnector::new(FaultyConnector {
                inner: inner.http_connector(settings, components),
                injector: injector.clone(),
            })
        });
        config.to_builder().http_client(client).build()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the request and decides whether it fails, and how.
    fn decide(&self, service: &str, operation: &str) -> Option<FaultMode> {
        let mut state = self.lock();
        let counts = state
            .counts
            .entry(format!("{service}.{operation}"))
            .or_default();
        counts.calls += 1;
        if !state.enabled {
            return None;
        }
        let rule = state
            .rules
            .iter()
            .find(|r| r.service == service && r.operation.as_deref().is_none_or(|o| o == operation))
            .cloned()?;
        if state.rng.fraction() >= rule.ratio {
            return None;
        }
        if let Some(counts) = state.counts.get_mut(&format!("{service}.{operation}")) {
            counts.injected += 1;
        }
        Some(rule.mode)
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    injector: FaultInjector,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let service = signing_service(&request).unwrap_or_default();
        let operation = operation_name(&request, &service);
        match self.injector.decide(&service, &operation) {
            None => self.inner.call(request),
            Some(FaultMode::LostAnswer) => {
                let forwarded = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    forwarded.await?;
                    Ok(error_response(&service, false))
                })
            }
            Some(mode) => HttpConnectorFuture::ready(Ok(error_response(
                &service,
                mode == FaultMode::Throttle,
            ))),
        }
    }
}

/// The service name of the SigV4 credential scope: `Credential=AKID/date/region/<service>/aws4_request`.
fn signing_service(request: &HttpRequest) -> Option<String> {
    let authorization = request.headers().get("authorization")?;
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

/// The operation: DynamoDB's `X-Amz-Target`, the `Action` of a query-protocol body (SNS,
/// SQS), or the HTTP method for REST services (S3).
fn operation_name(request: &HttpRequest, service: &str) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        if let Some((_, operation)) = target.rsplit_once('.') {
            return operation.to_string();
        }
    }
    if service == "sns" {
        if let Some(body) = request.body().bytes() {
            let text = String::from_utf8_lossy(body);
            if let Some(action) = text
                .split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
            {
                return action.to_string();
            }
        }
    }
    request.method().to_string()
}

/// The error answer of a service, in its protocol's shape.
fn error_response(service: &str, throttle: bool) -> HttpResponse {
    let (status, content_type, body) = match (service, throttle) {
        ("dynamodb", true) => (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput (injected fault)."}"#.to_string(),
        ),
        ("dynamodb", false) => (
            500,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (injected fault)."}"#.to_string(),
        ),
        ("sns" | "sqs", throttle) => {
            let (status, kind, code) = if throttle {
                (400, "Sender", "Throttling")
            } else {
                (500, "Receiver", "InternalError")
            };
            (
                status,
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>injected fault</Message></Error><RequestId>injected-fault</RequestId></ErrorResponse>"
                ),
            )
        }
        (_, throttle) => {
            let (status, code) = if throttle {
                (503, "SlowDown")
            } else {
                (500, "InternalError")
            };
            (
                status,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected fault</Message><RequestId>injected-fault</RequestId></Error>"
                ),
            )
        }
    };
    let status = StatusCode::try_from(status).unwrap_or_else(|_| {
        StatusCode::try_from(500).unwrap_or_else(|_| unreachable!("500 is a status code"))
    });
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response.headers_mut().insert("content-type", content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_zero_never_and_ratio_one_always_injects() {
        let never = FaultInjector::new(
            vec![FaultRule::service("dynamodb", 0.0, FaultMode::Throttle)],
            1,
        );
        let always = FaultInjector::new(
            vec![FaultRule::service("dynamodb", 1.0, FaultMode::Throttle)],
            1,
        );
        for _ in 0..100 {
            assert_eq!(never.decide("dynamodb", "PutItem"), None);
            assert_eq!(
                always.decide("dynamodb", "PutItem"),
                Some(FaultMode::Throttle)
            );
        }
        assert_eq!(never.injected(), 0);
        assert_eq!(always.injected(), 100);
        assert_eq!(never.counts()["dynamodb.PutItem"].calls, 100);
    }

    #[test]
    fn rules_match_service_and_operation_and_the_ratio_holds() {
        let injector = FaultInjector::new(
            vec![FaultRule {
                service: "sns".into(),
                operation: Some("Publish".into()),
                ratio: 0.3,
                mode: FaultMode::InternalError,
            }],
            42,
        );
        for _ in 0..1000 {
            assert_eq!(injector.decide("sns", "Subscribe"), None);
            assert_eq!(injector.decide("dynamodb", "Publish"), None);
            let _ = injector.decide("sns", "Publish");
        }
        let injected = injector.counts()["sns.Publish"].injected;
        assert!((220..380).contains(&injected), "{injected} of 1000");
        injector.set_enabled(false);
        assert_eq!(injector.decide("sns", "Publish"), None);
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let run = |seed| {
            let injector = FaultInjector::new(
                vec![FaultRule::service("s3", 0.5, FaultMode::LostAnswer)],
                seed,
            );
            (0..64)
                .map(|_| injector.decide("s3", "GET").is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn error_answers_use_each_protocol_shape() {
        let dynamo = error_response("dynamodb", true);
        assert_eq!(u16::from(dynamo.status()), 400);
        let body = dynamo.body().bytes().map(String::from_utf8_lossy);
        assert!(body.is_some_and(|b| b.contains("ThrottlingException")));
        let sns = error_response("sns", false);
        assert_eq!(u16::from(sns.status()), 500);
        let s3 = error_response("s3", true);
        assert_eq!(u16::from(s3.status()), 503);
    }
}

//! The SageMaker Runtime wire protocol (restJson1): request headers, their validation,
//! and error responses in the shape the AWS SDK parses.
//!
//! Errors carry the header `X-Amzn-ErrorType: <code>` and a JSON body
//! `{"message": "..."}`; the SDK reads the code from the header and the message from the
//! body, so `err.code()` is `ValidationError`, `ThrottlingException`, ... Validation
//! messages follow AWS's wording (`1 validation error detected: Value ... at 'field'
//! failed to satisfy constraint: ...`) and list every violated constraint.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cochl_core::keys::S3Uri;

/// `ContentType` of `InvokeEndpointAsync`.
pub const CONTENT_TYPE: &str = "x-amzn-sagemaker-content-type";
/// `Accept` of `InvokeEndpointAsync`.
pub const ACCEPT: &str = "x-amzn-sagemaker-accept";
/// `CustomAttributes` of both invocation APIs.
pub const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
/// `InferenceId` of both invocation APIs.
pub const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";
/// `InputLocation` of `InvokeEndpointAsync`.
pub const INPUT_LOCATION: &str = "x-amzn-sagemaker-inputlocation";
/// `RequestTTLSeconds` of `InvokeEndpointAsync`.
pub const REQUEST_TTL: &str = "x-amzn-sagemaker-requestttlseconds";
/// `InvocationTimeoutSeconds` of `InvokeEndpointAsync`.
pub const INVOCATION_TIMEOUT: &str = "x-amzn-sagemaker-invocationtimeoutseconds";
/// `S3OutputPathExtension` of `InvokeEndpointAsync` (refused: not emulated).
pub const OUTPUT_PATH_EXTENSION: &str = "x-amzn-sagemaker-s3outputpathextension";
/// `Filename` of `InvokeEndpointAsync` (refused: not emulated).
pub const FILENAME: &str = "x-amzn-sagemaker-filename";
/// Response header: where the result will be written.
pub const OUTPUT_LOCATION: &str = "x-amzn-sagemaker-outputlocation";
/// Response header: where a failure will be written.
pub const FAILURE_LOCATION: &str = "x-amzn-sagemaker-failurelocation";
/// Response header of `InvokeEndpoint`: the variant that answered.
pub const INVOKED_PRODUCTION_VARIANT: &str = "x-amzn-invoked-production-variant";
/// Error code header of restJson1.
pub const ERROR_TYPE: &str = "x-amzn-errortype";
/// Request id header the SDK exposes as `request_id()`.
pub const REQUEST_ID: &str = "x-amzn-requestid";

/// The account named in "endpoint not found" messages (moto's default account).
pub const ACCOUNT_ID: &str = "123456789012";
/// Longest endpoint name.
pub const MAX_ENDPOINT_NAME_LEN: usize = 63;
/// Longest `ContentType`, `Accept`, `CustomAttributes` and `InputLocation`.
pub const MAX_HEADER_LEN: usize = 1024;
/// Longest `InferenceId`.
pub const MAX_INFERENCE_ID_LEN: usize = 64;
/// `RequestTTLSeconds` bounds and default (6 h).
pub const TTL_RANGE: (u32, u32, u32) = (60, 21_600, 21_600);
/// `InvocationTimeoutSeconds` bounds and default (15 min).
pub const TIMEOUT_RANGE: (u32, u32, u32) = (1, 3_600, 900);
/// Largest `InvokeEndpoint` body (25 MB, docs/cochl-contract.md, "Request contract").
pub const MAX_REALTIME_BODY: usize = 25 * 1024 * 1024;

/// An error answer of the SageMaker Runtime API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400 `ValidationError`.
    #[error("ValidationError: {0}")]
    Validation(String),
    /// 429 `ThrottlingException` (injected).
    #[error("ThrottlingException: {0}")]
    Throttling(String),
    /// 503 `ServiceUnavailable` (injected).
    #[error("ServiceUnavailable: {0}")]
    ServiceUnavailable(String),
    /// 424 `ModelError`: the model refused the input of a real-time invocation.
    #[error("ModelError: {0}")]
    Model(String),
    /// 500 `InternalFailure`.
    #[error("InternalFailure: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the error code the SDK maps to a variant.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
            ApiError::Throttling(_) => (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException"),
            ApiError::ServiceUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            ApiError::Model(_) => (StatusCode::FAILED_DEPENDENCY, "ModelError"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        }
    }

    /// The message sent in the body.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Validation(m)
            | ApiError::Throttling(m)
            | ApiError::ServiceUnavailable(m)
            | ApiError::Model(m)
            | ApiError::Internal(m) => m,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = serde_json::json!({ "message": self.message() });
        if let ApiError::Model(message) = &self {
            // ModelError's own members; the SDK exposes them on the error.
            body["OriginalStatusCode"] = serde_json::json!(400);
            body["OriginalMessage"] = serde_json::json!(message);
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            HeaderName::from_static(ERROR_TYPE),
            HeaderValue::from_static(code),
        );
        response
    }
}

/// Checks an endpoint name against SageMaker's constraints (length and
/// `^[a-zA-Z0-9](-*[a-zA-Z0-9])*$`), returning the violated constraint.
pub fn check_endpoint_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_ENDPOINT_NAME_LEN {
        return Err(format!(
            "Member must have length less than or equal to {MAX_ENDPOINT_NAME_LEN}"
        ));
    }
    let bytes = name.as_bytes();
    let pattern_ok = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !pattern_ok {
        return Err(
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
                .to_owned(),
        );
    }
    Ok(())
}

/// Collects constraint violations and renders them as AWS does.
#[derive(Debug, Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, value: &str, field: &str, constraint: impl AsRef<str>) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {}",
            constraint.as_ref()
        ));
    }

    fn add_null(&mut self, field: &str) {
        self.0.push(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ));
    }

    fn into_result(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(ApiError::Validation(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.0.join("; ")
            ))),
        }
    }
}

/// Shortens a value echoed in a message so a 1 KB header does not flood it.
fn echo(value: &str) -> String {
    if value.chars().count() > 80 {
        let head: String = value.chars().take(80).collect();
        format!("{head}...")
    } else {
        value.to_owned()
    }
}

/// Whether every byte is printable ASCII (0x20..=0x7E: visible characters and space).
///
/// Used to validate custom attributes and inference ids, and to count and list input
/// locations that are not plain ASCII (`non_ascii_input_locations`), which the emulator
/// accepts but a test may want to rule out.
pub fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// How strictly a text header is checked.
#[derive(Clone, Copy)]
enum Charset {
    /// `\p{ASCII}*`.
    Ascii,
    /// Visible ASCII and space (custom attributes).
    Printable,
    /// Any UTF-8: `InputLocation`'s model pattern, `^(https|s3)://([^/]+)/?(.*)$`, has no
    /// charset, and an S3 key may hold any character.
    Utf8,
}

/// Reads a text header, recording violations of its charset and length.
fn text_header(
    headers: &HeaderMap,
    name: &str,
    field: &str,
    max_len: usize,
    charset: Charset,
    violations: &mut Violations,
) -> Option<String> {
    let value = headers.get(name)?;
    let bytes = value.as_bytes();
    let text = String::from_utf8_lossy(bytes).into_owned();
    let charset_ok = match charset {
        Charset::Ascii => bytes.is_ascii(),
        Charset::Printable => is_printable_ascii(bytes),
        Charset::Utf8 => std::str::from_utf8(bytes).is_ok(),
    };
    if !charset_ok {
        violations.add(
            &echo(&text),
            field,
            match charset {
                Charset::Ascii => "Member must satisfy regular expression pattern: \\p{ASCII}*",
                Charset::Printable => {
                    "Member must satisfy regular expression pattern: \\p{ASCII}* (visible US-ASCII characters only)"
                }
                Charset::Utf8 => "Member must be valid UTF-8",
            },
        );
    }
    if text.chars().count() > max_len {
        violations.add(
            &echo(&text),
            field,
            format!("Member must have length less than or equal to {max_len}"),
        );
    }
    Some(text)
}

/// Reads an integer header within `(min, max, default)`.
fn integer_header(
    headers: &HeaderMap,
    name: &str,
    field: &str,
    (min, max, default): (u32, u32, u32),
    violations: &mut Violations,
) -> u32 {
    let Some(value) = headers.get(name) else {
        return default;
    };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let trimmed = text.trim();
    let parsed = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed.parse::<u64>().ok()
    } else {
        None
    };
    match parsed {
        None => {
            violations.add(&echo(&text), field, "Member must be an integer");
            default
        }
        Some(n) if n < u64::from(min) => {
            violations.add(
                &text,
                field,
                format!("Member must have value greater than or equal to {min}"),
            );
            default
        }
        Some(n) if n > u64::from(max) => {
            violations.add(
                &text,
                field,
                format!("Member must have value less than or equal to {max}"),
            );
            default
        }
        // In range, so it fits in u32.
        Some(n) => u32::try_from(n).unwrap_or(default),
    }
}

/// Reads and checks an inference id (1 to 64 printable ASCII, no leading whitespace).
fn inference_id_header(headers: &HeaderMap, violations: &mut Violations) -> Option<String> {
    let id = text_header(
        headers,
        INFERENCE_ID,
        "inferenceId",
        MAX_INFERENCE_ID_LEN,
        Charset::Printable,
        violations,
    )?;
    if id.is_empty() {
        violations.add(
            &id,
            "inferenceId",
            "Member must have length greater than or equal to 1",
        );
    } else if id.starts_with(char::is_whitespace) {
        violations.add(
            &echo(&id),
            "inferenceId",
            "Member must satisfy regular expression pattern: \\A\\S[\\p{Print}]*\\z",
        );
    }
    Some(id)
}

/// Checks the path's endpoint name: its constraints, then that it is the configured one.
pub fn check_endpoint(name: &str, configured: &str) -> Result<(), ApiError> {
    let mut violations = Violations::default();
    if let Err(constraint) = check_endpoint_name(name) {
        violations.add(&echo(name), "endpointName", constraint);
    }
    violations.into_result()?;
    if name != configured {
        return Err(ApiError::Validation(format!(
            "Endpoint {name} of account {ACCOUNT_ID} not found."
        )));
    }
    Ok(())
}

/// A checked `InvokeEndpointAsync` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncInvocation {
    /// The endpoint (already checked against the configuration).
    pub endpoint_name: String,
    /// `ContentType`, when sent.
    pub content_type: Option<String>,
    /// `Accept`, when sent.
    pub accept: Option<String>,
    /// `CustomAttributes`, when sent.
    pub custom_attributes: Option<String>,
    /// `InferenceId`: the client's, or a generated uuid.
    pub inference_id: String,
    /// `InputLocation`.
    pub input_location: S3Uri,
    /// `RequestTTLSeconds` (default 21600).
    pub request_ttl_seconds: u32,
    /// `InvocationTimeoutSeconds` (default 900).
    pub invocation_timeout_seconds: u32,
}

/// Validates an `InvokeEndpointAsync` request: the endpoint name, every header of the
/// reference table, and that no inline body or unsupported option was sent.
pub fn parse_async_invocation(
    endpoint_name: &str,
    configured: &str,
    headers: &HeaderMap,
    body_len: usize,
) -> Result<AsyncInvocation, ApiError> {
    let mut violations = Violations::default();
    let common = common_headers(
        endpoint_name,
        headers,
        (CONTENT_TYPE, ACCEPT),
        &mut violations,
    );
    let input = text_header(
        headers,
        INPUT_LOCATION,
        "inputLocation",
        MAX_HEADER_LEN,
        Charset::Utf8,
        &mut violations,
    );
    let input_location = match &input {
        None => {
            violations.add_null("inputLocation");
            None
        }
        Some(text) => match S3Uri::parse(text) {
            Ok(uri) => Some(uri),
            Err(e) => {
                violations.add(
                    &echo(text),
                    "inputLocation",
                    format!("Member must be an S3 URI of the form s3://bucket/key ({e})"),
                );
                None
            }
        },
    };
    let request_ttl_seconds = integer_header(
        headers,
        REQUEST_TTL,
        "requestTTLSeconds",
        TTL_RANGE,
        &mut violations,
    );
    let invocation_timeout_seconds = integer_header(
        headers,
        INVOCATION_TIMEOUT,
        "invocationTimeoutSeconds",
        TIMEOUT_RANGE,
        &mut violations,
    );
    violations.into_result()?;
    check_endpoint(endpoint_name, configured)?;
    for (header, field) in [
        (OUTPUT_PATH_EXTENSION, "S3OutputPathExtension"),
        (FILENAME, "Filename"),
    ] {
        if headers.contains_key(header) {
            return Err(ApiError::Validation(format!(
                "{field} is not supported by the Cochl emulator: results are always written to <S3OutputPath>/<uuid>.out"
            )));
        }
    }
    if body_len > 0 {
        return Err(ApiError::Validation(
            "An inline Body is not supported by the Cochl emulator: upload the input to S3 and send InputLocation"
                .to_owned(),
        ));
    }
    // Both are Some here: violations would have been reported otherwise.
    let input_location = input_location.ok_or_else(|| {
        ApiError::Validation(
            "Value null at 'inputLocation' failed to satisfy constraint: Member must not be null"
                .to_owned(),
        )
    })?;
    Ok(AsyncInvocation {
        endpoint_name: endpoint_name.to_owned(),
        content_type: common.content_type,
        accept: common.accept,
        custom_attributes: common.custom_attributes,
        inference_id: common
            .inference_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        input_location,
        request_ttl_seconds,
        invocation_timeout_seconds,
    })
}

/// A checked `InvokeEndpoint` (real-time) request, without its body: the headers both
/// invocation APIs carry, each `None` when not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeInvocation {
    /// `ContentType` (`Content-Type` in real time).
    pub content_type: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`: what the model gets as its sensitivity.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Id`.
    pub inference_id: Option<String>,
}

/// Checks the endpoint name of the path and reads the headers both invocation APIs carry
/// (`content_type` and `accept` name their headers, which differ between the two), recording
/// every violation in AWS's order.
fn common_headers(
    endpoint_name: &str,
    headers: &HeaderMap,
    (content_type, accept): (&str, &str),
    violations: &mut Violations,
) -> RealtimeInvocation {
    if let Err(constraint) = check_endpoint_name(endpoint_name) {
        violations.add(&echo(endpoint_name), "endpointName", constraint);
    }
    let ascii = |name, field, violations: &mut Violations| {
        text_header(
            headers,
            name,
            field,
            MAX_HEADER_LEN,
            Charset::Ascii,
            violations,
        )
    };
    RealtimeInvocation {
        content_type: ascii(content_type, "contentType", violations),
        accept: ascii(accept, "accept", violations),
        custom_attributes: text_header(
            headers,
            CUSTOM_ATTRIBUTES,
            "customAttributes",
            MAX_HEADER_LEN,
            Charset::Printable,
            violations,
        ),
        inference_id: inference_id_header(headers, violations),
    }
}

/// Validates an `InvokeEndpoint` request's endpoint name and headers.
pub fn parse_realtime_invocation(
    endpoint_name: &str,
    configured: &str,
    headers: &HeaderMap,
) -> Result<RealtimeInvocation, ApiError> {
    let mut violations = Violations::default();
    // The real-time API sends the content type and accept as the standard HTTP headers.
    let common = common_headers(
        endpoint_name,
        headers,
        ("content-type", "accept"),
        &mut violations,
    );
    violations.into_result()?;
    check_endpoint(endpoint_name, configured)?;
    Ok(common)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "cochl-sense";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        map
    }

    fn valid() -> Vec<(&'static str, &'static str)> {
        vec![
            (INPUT_LOCATION, "s3://in-bucket/incoming/a.wav"),
            (CONTENT_TYPE, "audio/wav"),
        ]
    }

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut pairs = valid();
        pairs.retain(|(n, _)| *n != name);
        pairs.push((name, value));
        headers(&pairs)
    }

    fn validation_message(result: Result<AsyncInvocation, ApiError>) -> String {
        match result {
            Err(ApiError::Validation(message)) => message,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_generated_inference_id() {
        let request = parse_async_invocation(NAME, NAME, &headers(&valid()), 0).unwrap();
        assert_eq!(request.request_ttl_seconds, 21_600);
        assert_eq!(request.invocation_timeout_seconds, 900);
        assert_eq!(request.content_type.as_deref(), Some("audio/wav"));
        assert_eq!(request.accept, None);
        assert_eq!(
            request.input_location.to_string(),
            "s3://in-bucket/incoming/a.wav"
        );
        assert!(uuid::Uuid::parse_str(&request.inference_id).is_ok());
    }

    #[test]
    fn accepts_the_bounds() {
        for (ttl, timeout) in [("60", "1"), ("21600", "3600")] {
            let mut pairs = valid();
            pairs.push((REQUEST_TTL, ttl));
            pairs.push((INVOCATION_TIMEOUT, timeout));
            pairs.push((INFERENCE_ID, "x"));
            let request = parse_async_invocation(NAME, NAME, &headers(&pairs), 0).unwrap();
            assert_eq!(request.inference_id, "x");
        }
        let id = "a".repeat(64);
        let mut map = headers(&valid());
        map.insert(INFERENCE_ID, HeaderValue::from_str(&id).unwrap());
        assert_eq!(
            parse_async_invocation(NAME, NAME, &map, 0)
                .unwrap()
                .inference_id,
            id
        );
    }

    #[test]
    fn refuses_each_bad_header() {
        let long_id = "a".repeat(65);
        let long_ct = "a".repeat(1025);
        let cases: Vec<(HeaderMap, &str)> = vec![
            (
                headers(&[(CONTENT_TYPE, "audio/wav")]),
                "Value null at 'inputLocation'",
            ),
            (
                with(INPUT_LOCATION, "https://bucket/key"),
                "'inputLocation'",
            ),
            (with(INPUT_LOCATION, "s3://bucket"), "'inputLocation'"),
            (with(REQUEST_TTL, "59"), "greater than or equal to 60"),
            (with(REQUEST_TTL, "21601"), "less than or equal to 21600"),
            (with(REQUEST_TTL, "60.5"), "Member must be an integer"),
            (with(REQUEST_TTL, "-60"), "Member must be an integer"),
            (with(INVOCATION_TIMEOUT, "0"), "greater than or equal to 1"),
            (
                with(INVOCATION_TIMEOUT, "3601"),
                "less than or equal to 3600",
            ),
            (with(INVOCATION_TIMEOUT, "ten"), "Member must be an integer"),
            (with(INFERENCE_ID, " leading"), "'inferenceId'"),
            (with(INFERENCE_ID, ""), "greater than or equal to 1"),
            (with(CUSTOM_ATTRIBUTES, "{\"é\":1}"), "'customAttributes'"),
            (with(ACCEPT, "applicätion/json"), "'accept'"),
        ];
        for (map, expected) in cases {
            let message = validation_message(parse_async_invocation(NAME, NAME, &map, 0));
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(
                message.starts_with("1 validation error detected: "),
                "{message}"
            );
        }
        let mut map = headers(&valid());
        map.insert(INFERENCE_ID, HeaderValue::from_str(&long_id).unwrap());
        map.insert(CONTENT_TYPE, HeaderValue::from_str(&long_ct).unwrap());
        let message = validation_message(parse_async_invocation(NAME, NAME, &map, 0));
        assert!(
            message.starts_with("2 validation errors detected: "),
            "{message}"
        );
        assert!(message.contains("less than or equal to 64"), "{message}");
        assert!(message.contains("less than or equal to 1024"), "{message}");
    }

    #[test]
    fn input_location_takes_any_key_but_not_over_1024_characters() {
        // S3 keys may hold any character; InputLocation's model has no charset pattern.
        let unicode = "s3://in-bucket/incoming/café ☕ 音声 😀.wav";
        let map = headers(&[(INPUT_LOCATION, unicode), (CONTENT_TYPE, "audio/wav")]);
        let request = parse_async_invocation(NAME, NAME, &map, 0).unwrap();
        assert_eq!(request.input_location.key(), "incoming/café ☕ 音声 😀.wav");
        // The limit counts characters, not bytes: 512 × 'é' (S3's largest key, 1024 bytes)
        // makes a 1039-byte location of 527 characters, which passes; 1025 characters do not.
        let prefix = "s3://in-bucket/";
        let fits = format!("{prefix}{}", "é".repeat(512));
        let map = headers(&[(INPUT_LOCATION, &fits), (CONTENT_TYPE, "audio/wav")]);
        assert!(parse_async_invocation(NAME, NAME, &map, 0).is_ok());
        let over = format!("{prefix}{}", "k".repeat(1025 - prefix.len()));
        let map = headers(&[(INPUT_LOCATION, &over), (CONTENT_TYPE, "audio/wav")]);
        let message = validation_message(parse_async_invocation(NAME, NAME, &map, 0));
        assert!(
            message.contains("'inputLocation' failed to satisfy constraint: Member must have length less than or equal to 1024"),
            "{message}"
        );
    }

    #[test]
    fn an_input_location_that_is_not_utf8_is_a_validation_error() {
        // Latin-1 `é` (0xE9) alone, and a truncated UTF-8 sequence: hyper lets such bytes
        // through (obs-text), so they reach the parser, which must refuse, not panic.
        for bytes in [
            &b"s3://in-bucket/caf\xe9.wav"[..],
            &b"s3://in-bucket/\xe2\x98.wav"[..],
        ] {
            let mut map = headers(&[(CONTENT_TYPE, "audio/wav")]);
            map.insert(INPUT_LOCATION, HeaderValue::from_bytes(bytes).unwrap());
            let message = validation_message(parse_async_invocation(NAME, NAME, &map, 0));
            assert!(
                message.starts_with("1 validation error detected: "),
                "{message}"
            );
            assert!(
                message.contains(
                    "at 'inputLocation' failed to satisfy constraint: Member must be valid UTF-8"
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn printable_ascii_is_space_to_tilde() {
        assert!(is_printable_ascii(b" s3://b/k ~"));
        assert!(is_printable_ascii(b""));
        for bad in [&b"\t"[..], b"\x7f", b"\x1f", "é".as_bytes(), b"\xff"] {
            assert!(!is_printable_ascii(bad), "{bad:?}");
        }
    }

    #[test]
    fn checks_the_endpoint_name() {
        let map = headers(&valid());
        let message = validation_message(parse_async_invocation("other", NAME, &map, 0));
        assert_eq!(message, "Endpoint other of account 123456789012 not found.");
        for bad in ["-lead", "trail-", "under_score", "", &"a".repeat(64)] {
            let message = validation_message(parse_async_invocation(bad, NAME, &map, 0));
            assert!(message.contains("'endpointName'"), "{bad}: {message}");
        }
        assert!(check_endpoint_name("a--b-9").is_ok());
        assert!(check_endpoint_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn refuses_inline_bodies_and_unsupported_options() {
        let message = validation_message(parse_async_invocation(NAME, NAME, &headers(&valid()), 3));
        assert!(message.contains("inline Body"), "{message}");
        let message = validation_message(parse_async_invocation(
            NAME,
            NAME,
            &with(FILENAME, "x.out"),
            0,
        ));
        assert!(message.contains("Filename"), "{message}");
    }

    #[test]
    fn errors_render_as_the_sdk_expects() {
        let response = ApiError::Throttling("slow down".into()).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[ERROR_TYPE], "ThrottlingException");
        let response = ApiError::Model("bad audio".into()).into_response();
        assert_eq!(response.status(), StatusCode::FAILED_DEPENDENCY);
        assert_eq!(response.headers()[ERROR_TYPE], "ModelError");
    }
}

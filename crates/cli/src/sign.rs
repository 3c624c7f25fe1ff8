//! SigV4 signatures for the query API.
//!
//! The query function's URL is a Lambda Function URL with `AuthType: AWS_IAM`: a request must
//! carry a SigV4 signature for the service `lambda` in the function's Region, made with
//! credentials allowed `lambda:InvokeFunctionUrl`. The signature covers the method, the path,
//! the query string and the `host` and `x-amz-date` headers; a session token, when the
//! credentials have one, goes in `x-amz-security-token`.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The SigV4 service name of Lambda Function URLs.
pub const FUNCTION_URL_SERVICE: &str = "lambda";

/// Who signs, for which service and Region, at what time.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The credentials (from the SDK's chain).
    pub credentials: Credentials,
    /// The Region the URL is in.
    pub region: String,
    /// The SigV4 service name.
    pub service: &'static str,
}

impl Signer {
    /// Adds the signature headers to a body-less `request` (its URI absolute, with the host).
    pub fn sign<B>(&self, request: &mut http::Request<B>, time: SystemTime) -> Result<()> {
        let identity: Identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .context("SigV4 parameters")?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&[]),
        )
        .context("a request SigV4 can sign")?;
        let (instructions, _signature) = sign(signable, &params)
            .context("signing the request")?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// AWS's SigV4 test suite, case `get-vanilla`: `GET /` to `example.amazonaws.com` for the
    /// service `service` in us-east-1 at 2015-08-30T12:36:00Z, with the suite's example keys.
    /// The expected header is the suite's `header-signed-request.txt`, not this code's output.
    #[test]
    fn signs_the_sigv4_suite_get_vanilla_request_as_aws_does() {
        let signer = Signer {
            credentials: Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "test",
            ),
            region: "us-east-1".to_string(),
            service: "service",
        };
        let mut request = http::Request::builder()
            .method("GET")
            .uri("https://example.amazonaws.com/")
            .header("host", "example.amazonaws.com")
            .body(())
            .unwrap();
        // 2015-08-30T12:36:00Z
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        signer.sign(&mut request, time).unwrap();
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            request.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn a_session_token_is_sent_and_the_query_string_is_signed() {
        let signer = Signer {
            credentials: Credentials::new("AKID", "secret", Some("token-1".into()), None, "t"),
            region: "eu-west-1".to_string(),
            service: FUNCTION_URL_SERVICE,
        };
        let signed = |uri: &str| {
            let mut request = http::Request::builder()
                .uri(uri)
                .header("host", "abc.lambda-url.eu-west-1.on.aws")
                .body(())
                .unwrap();
            signer.sign(&mut request, SystemTime::UNIX_EPOCH).unwrap();
            request
        };
        let one = signed("https://abc.lambda-url.eu-west-1.on.aws/jobs?status=FAILED");
        let other = signed("https://abc.lambda-url.eu-west-1.on.aws/jobs?status=COMPLETED");
        assert_eq!(one.headers()["x-amz-security-token"], "token-1");
        let authorization = one.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.contains("/19700101/eu-west-1/lambda/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization.contains("x-amz-security-token"),
            "the token is a signed header: {authorization}"
        );
        assert_ne!(
            one.headers()["authorization"],
            other.headers()["authorization"],
            "the query string is part of the signature"
        );
    }
}

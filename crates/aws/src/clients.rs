//! SDK clients, built once per cold start and shared by every invocation.
//!
//! `aws_config::load_defaults` reads region, credentials and `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` from the environment, so the same binary talks to AWS or to the
//! local stack unchanged. No network call is made here: credentials resolve lazily.

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
/// The shared SDK configuration type, re-exported so binaries need not depend on aws-config.
pub use aws_config::SdkConfig;
use aws_smithy_types::retry::RetryConfig;

use crate::settings::CALL_TIMEOUT;

/// Loads the shared SDK configuration from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .operation_attempt_timeout(CALL_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// True when the environment points S3 at a custom endpoint (the local stack), which
/// needs path-style addressing.
fn custom_s3_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
}

/// An S3 client; path-style when a custom endpoint is configured.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(config);
    let builder = if custom_s3_endpoint() {
        builder.force_path_style(true)
    } else {
        builder
    };
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// A DynamoDB client with the SDK's standard retries (throttling included).
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// An SNS client with the SDK's standard retries.
pub fn sns(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// A SageMaker Runtime client without SDK retries: [`crate::endpoint`] retries itself,
/// within the invocation's time budget, and counts what it retried.
pub fn sagemaker(config: &SdkConfig) -> aws_sdk_sagemakerruntime::Client {
    let conf = aws_sdk_sagemakerruntime::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(conf)
}

/// An SQS client with the SDK's standard retries.
pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

//! SDK configuration for local endpoints.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

/// The workspace root (where `Cargo.toml`, `.venv` and `tools/` are).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// The bytes of a file of the workspace's `samples/` folder (the error names the path).
pub fn sample(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = workspace_root().join("samples").join(name);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// An SDK configuration that sends every client to `endpoint` with fixed test credentials
/// in `us-east-1`, as `AWS_ENDPOINT_URL` does for the Lambda binaries.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "testkit",
        ))
        .load()
        .await
}

/// An S3 client for a local endpoint: path-style addressing, since `bucket.127.0.0.1`
/// does not resolve.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// A resource name unique within this process run (`<prefix>-<pid>-<n>`), lower case and
/// valid as a bucket, table, topic or queue name, so tests sharing one moto never collide.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

//! The S3 and SNS calls the endpoint makes: read the input, write the output, publish.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use bytes::Bytes;
use cochl_core::keys::S3Uri;

/// Why an S3 or SNS call failed, worded for a failure reason: `could not <action>
/// <target>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not {action} {target}: {message}")]
pub struct StorageError {
    /// What the emulator was doing: `read`, `write` or `publish to`.
    pub action: &'static str,
    /// The object's `s3://` URI, or the topic ARN.
    pub target: String,
    /// `Code: message` for a service error (as AWS writes it), else the SDK's error chain.
    pub message: String,
}

impl StorageError {
    fn new(action: &'static str, target: impl ToString, message: String) -> Self {
        StorageError {
            action,
            target: target.to_string(),
            message,
        }
    }
}

/// The S3 and SNS clients (built once, cheap to clone).
#[derive(Debug, Clone)]
pub struct Storage {
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
}

impl Storage {
    /// Wraps the clients (the binary's, or ones a test points at moto).
    pub fn new(s3: aws_sdk_s3::Client, sns: aws_sdk_sns::Client) -> Self {
        Self { s3, sns }
    }

    /// Reads a whole object.
    pub async fn read(&self, uri: &S3Uri) -> Result<Bytes, StorageError> {
        let error = |message| StorageError::new("read", uri, message);
        let object = self
            .s3
            .get_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .send()
            .await
            .map_err(|e| error(describe(&e)))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| error(DisplayErrorContext(&e).to_string()))?;
        Ok(body.into_bytes())
    }

    /// Writes an object with a content type.
    pub async fn write(
        &self,
        uri: &S3Uri,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.s3
            .put_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|e| StorageError::new("write", uri, describe(&e)))?;
        Ok(())
    }

    /// Publishes a message to a topic; returns the message id.
    pub async fn publish(&self, topic: &str, message: String) -> Result<String, StorageError> {
        let output = self
            .sns
            .publish()
            .topic_arn(topic)
            .message(message)
            .send()
            .await
            .map_err(|e| StorageError::new("publish to", topic, describe(&e)))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}

/// A short description of an SDK error: `Code: message` for a service error (as AWS
/// writes it in a failure reason), the whole error chain otherwise.
fn describe<E>(error: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(error).to_string(),
    }
}

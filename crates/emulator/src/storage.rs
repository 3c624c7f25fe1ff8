//! The S3 and SNS calls the endpoint makes: read the input, write the output, publish.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use bytes::Bytes;
use cochl_core::keys::S3Uri;

/// Why an S3 or SNS call failed; the message carries the SDK's full error chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// `GetObject` failed.
    #[error("could not read {uri}: {message}")]
    Read {
        /// The object.
        uri: String,
        /// The SDK's error.
        message: String,
    },
    /// `PutObject` failed.
    #[error("could not write {uri}: {message}")]
    Write {
        /// The object.
        uri: String,
        /// The SDK's error.
        message: String,
    },
    /// `Publish` failed.
    #[error("could not publish to {topic}: {message}")]
    Publish {
        /// The topic ARN.
        topic: String,
        /// The SDK's error.
        message: String,
    },
}

/// The S3 and SNS clients (built once, cheap to clone).
#[derive(Debug, Clone)]
pub struct Storage {
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
}

impl Storage {
    /// Wraps the clients.
    pub fn new(s3: aws_sdk_s3::Client, sns: aws_sdk_sns::Client) -> Self {
        Self { s3, sns }
    }

    /// Reads a whole object.
    pub async fn read(&self, uri: &S3Uri) -> Result<Bytes, StorageError> {
        let error = |message: String| StorageError::Read {
            uri: uri.to_string(),
            message,
        };
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
            .map_err(|e| StorageError::Write {
                uri: uri.to_string(),
                message: describe(&e),
            })?;
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
            .map_err(|e| StorageError::Publish {
                topic: topic.to_owned(),
                message: describe(&e),
            })?;
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

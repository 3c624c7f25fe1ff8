//! S3 objects: what submit needs to know about an upload, and reading result documents.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use cochl_core::keys::S3Uri;

/// What HeadObject tells about an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// The Content-Type it was uploaded with.
    pub content_type: Option<String>,
    /// ETag without quotes.
    pub etag: Option<String>,
    /// Version id on versioned buckets.
    pub version_id: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lower case without the prefix.
    pub metadata: HashMap<String, String>,
    /// Last-Modified, milliseconds since the Unix epoch: orders an object a backfill finds
    /// against uploads its events announced.
    pub last_modified_ms: Option<i64>,
}

/// Why an S3 call failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object is larger than the caller accepts.
    #[error("{uri} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The object refused (its body was not read).
        uri: S3Uri,
        /// Its size in bytes, as GetObject's `Content-Length` gives it.
        size: u64,
        /// The most bytes the caller accepts.
        limit: u64,
    },
    /// The object does not exist.
    #[error("{0} does not exist")]
    NotFound(S3Uri),
    /// Any other failure, after the SDK's retries.
    #[error("S3 {operation} {uri}: {message}")]
    Service {
        /// The API operation (`HeadObject`, `GetObject`), as IAM and CloudTrail name it.
        operation: &'static str,
        /// The object it was called on.
        uri: S3Uri,
        /// The error as the SDK reports it.
        message: String,
    },
}

impl ObjectError {
    /// `operation` on `uri` failed for any other reason than the ones named above; the
    /// message keeps the SDK's whole error chain, which is where the cause is.
    fn service(operation: &'static str, uri: &S3Uri, error: &dyn std::error::Error) -> Self {
        ObjectError::Service {
            operation,
            uri: uri.clone(),
            message: crate::error_chain(error),
        }
    }
}

/// Reads objects of the audio bucket.
#[derive(Debug, Clone)]
pub struct Objects {
    client: Client,
}

/// Percent-encodes an object key for `x-amz-copy-source`: every byte outside RFC 3986's
/// unreserved characters and `/`, so any key (control characters, emoji) travels intact.
pub fn percent_encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Strips the quotes S3 puts around ETags.
fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

impl Objects {
    /// Wraps an S3 client.
    pub fn new(client: Client) -> Self {
        Objects { client }
    }

    /// HeadObject (of `version_id` when given, else of the current version); `Ok(None)`
    /// when the object (or that version) does not exist.
    pub async fn head(
        &self,
        uri: &S3Uri,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, ObjectError> {
        let result = self
            .client
            .head_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await;
        match result {
            Ok(head) => Ok(Some(ObjectHead {
                size: head.content_length().map_or(0, |n| n.max(0) as u64),
                content_type: head.content_type().map(str::to_string),
                etag: head.e_tag().map(unquote),
                version_id: head
                    .version_id()
                    .filter(|v| !v.is_empty() && *v != "null")
                    .map(str::to_string),
                last_modified_ms: head.last_modified().and_then(|t| t.to_millis().ok()),
                metadata: head
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) => Err(ObjectError::service("HeadObject", uri, &error)),
        }
    }

    /// Copies an object server-side (CopyObject, up to 5 GB), the exact `version_id` when
    /// the bucket is versioned: how an upload whose key cannot travel in an HTTP header is
    /// staged under a key that can.
    pub async fn copy(
        &self,
        from: &S3Uri,
        version_id: Option<&str>,
        to: &S3Uri,
    ) -> Result<(), ObjectError> {
        let mut source = format!("{}/{}", from.bucket(), percent_encode_key(from.key()));
        if let Some(version) = version_id {
            source.push_str("?versionId=");
            source.push_str(&percent_encode_key(version));
        }
        match self
            .client
            .copy_object()
            .copy_source(source)
            .bucket(to.bucket())
            .key(to.key())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.meta().code() == Some("NoSuchKey") || e.meta().code() == Some("NoSuchVersion")
                }) =>
            {
                Err(ObjectError::NotFound(from.clone()))
            }
            Err(error) => Err(ObjectError::service("CopyObject", from, &error)),
        }
    }

    /// Reads a whole object of at most `limit` bytes.
    pub async fn get(&self, uri: &S3Uri, limit: u64) -> Result<Vec<u8>, ObjectError> {
        let result = self
            .client
            .get_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(ObjectError::NotFound(uri.clone()))
            }
            Err(error) => return Err(ObjectError::service("GetObject", uri, &error)),
        };
        let size = output.content_length().map_or(0, |n| n.max(0) as u64);
        if size > limit {
            return Err(ObjectError::TooLarge {
                uri: uri.clone(),
                size,
                limit,
            });
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::service("GetObject", uri, &e))?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::percent_encode_key;

    #[test]
    fn copy_sources_encode_everything_but_unreserved_characters_and_slashes() {
        assert_eq!(percent_encode_key("in/a-b_c.~d.wav"), "in/a-b_c.~d.wav");
        assert_eq!(percent_encode_key("in/a b+c%.wav"), "in/a%20b%2Bc%25.wav");
        // é is C3 A9 in UTF-8; the bell character is 07.
        assert_eq!(percent_encode_key("in/é\u{7}"), "in/%C3%A9%07");
        assert_eq!(percent_encode_key("🎵"), "%F0%9F%8E%B5");
    }
}

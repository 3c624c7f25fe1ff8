//! The audio bucket in memory: uploads with their metadata, and result documents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use cochl_aws::objects::{ObjectError, ObjectHead};
use cochl_aws::ports::ObjectStore;
use cochl_core::keys::S3Uri;

use super::{lock, Script};

/// The bucket's operations, to count calls and inject failures per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectOp {
    /// [`ObjectStore::head`].
    Head,
    /// [`ObjectStore::get`].
    Get,
    /// [`ObjectStore::copy`].
    Copy,
}

/// Objects in memory.
#[derive(Debug, Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<S3Uri, (ObjectHead, Vec<u8>)>>,
    script: Mutex<Script<ObjectOp>>,
    /// Last-Modified of the next put: a second later than the one before, so puts are
    /// ordered as a real bucket orders them.
    clock: AtomicI64,
}

impl MemoryObjects {
    /// An empty bucket.
    pub fn new() -> Self {
        MemoryObjects::default()
    }

    /// Stores an object; its ETag is derived from the bytes, as S3's is for a single PUT.
    pub fn put(&self, uri: &S3Uri, bytes: &[u8], content_type: Option<&str>) -> ObjectHead {
        self.put_with_metadata(uri, bytes, content_type, &[])
    }

    /// Stores an object with user metadata (`x-amz-meta-*` names, lower case, no prefix).
    pub fn put_with_metadata(
        &self,
        uri: &S3Uri,
        bytes: &[u8],
        content_type: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> ObjectHead {
        let head = ObjectHead {
            size: bytes.len() as u64,
            content_type: content_type.map(str::to_string),
            etag: Some(etag(bytes)),
            version_id: None,
            last_modified_ms: Some(self.clock.fetch_add(1_000, Ordering::SeqCst)),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        lock(&self.objects).insert(uri.clone(), (head.clone(), bytes.to_vec()));
        head
    }

    /// Stores an object as one version of a versioned bucket: HeadObject finds it with no
    /// version id or with `version_id`, not with another one.
    pub fn put_version(
        &self,
        uri: &S3Uri,
        bytes: &[u8],
        content_type: Option<&str>,
        version_id: &str,
    ) -> ObjectHead {
        let mut head = self.put(uri, bytes, content_type);
        head.version_id = Some(version_id.to_string());
        lock(&self.objects).insert(uri.clone(), (head.clone(), bytes.to_vec()));
        head
    }

    /// Deletes an object.
    pub fn remove(&self, uri: &S3Uri) {
        lock(&self.objects).remove(uri);
    }

    /// The next `times` calls of `op` fail as an unreachable service would.
    pub fn fail_next(&self, op: ObjectOp, times: usize) {
        lock(&self.script).fail_next(op, times);
    }

    /// Calls made of `op`, failed ones included.
    pub fn calls(&self, op: ObjectOp) -> usize {
        lock(&self.script).calls(op)
    }

    /// The object at `uri`, if any: its bytes.
    pub fn bytes(&self, uri: &S3Uri) -> Option<Vec<u8>> {
        lock(&self.objects).get(uri).map(|(_, bytes)| bytes.clone())
    }

    fn call(&self, op: ObjectOp, uri: &S3Uri) -> Result<(), ObjectError> {
        if lock(&self.script).call(op) {
            return Err(ObjectError::Service {
                operation: "memory",
                uri: uri.clone(),
                message: format!("injected failure of {op:?}"),
            });
        }
        Ok(())
    }
}

/// A content hash in ETag form (FNV-1a: stable, dependency-free, distinct enough for tests).
fn etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl ObjectStore for MemoryObjects {
    async fn head(
        &self,
        uri: &S3Uri,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, ObjectError> {
        self.call(ObjectOp::Head, uri)?;
        // One version per key: a named version is found only if it is the stored one.
        Ok(lock(&self.objects)
            .get(uri)
            .filter(|(head, _)| version_id.is_none() || head.version_id.as_deref() == version_id)
            .map(|(head, _)| head.clone()))
    }

    async fn get(&self, uri: &S3Uri, limit: u64) -> Result<Vec<u8>, ObjectError> {
        self.call(ObjectOp::Get, uri)?;
        let objects = lock(&self.objects);
        let Some((head, bytes)) = objects.get(uri) else {
            return Err(ObjectError::NotFound(uri.clone()));
        };
        if head.size > limit {
            return Err(ObjectError::TooLarge {
                uri: uri.clone(),
                size: head.size,
                limit,
            });
        }
        Ok(bytes.clone())
    }

    async fn copy(
        &self,
        from: &S3Uri,
        _version_id: Option<&str>,
        to: &S3Uri,
    ) -> Result<(), ObjectError> {
        self.call(ObjectOp::Copy, from)?;
        let mut objects = lock(&self.objects);
        let copied = objects
            .get(from)
            .cloned()
            .ok_or_else(|| ObjectError::NotFound(from.clone()))?;
        objects.insert(to.clone(), copied);
        Ok(())
    }
}

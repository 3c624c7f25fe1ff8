//! The seams between the Lambda handlers and AWS: one small trait per service.
//!
//! The handlers (submit, on-result) are written against these traits, never against the SDK
//! or the table's key layout. The real adapters ([`DynamoStore`], [`Objects`],
//! [`AsyncEndpoint`], [`Topic`], [`Queue`]) implement them here; `testkit::doubles` has in-memory
//! implementations so every branch of a handler's flow can be tested in milliseconds, while
//! the moto suites prove the same flows on the wire.
//!
//! The futures are `Send` because the Lambda runtime and the local stack run handlers on a
//! multi-threaded Tokio runtime.

use std::future::Future;
use std::time::{Duration, Instant};

use cochl_core::detections::TagDetection;
use cochl_core::inference_id::InferenceId;
use cochl_core::keys::S3Uri;

use crate::dynamo::{BatchStats, DynamoStore, Expect, SlotGrant, StoreError};
use crate::endpoint::{Accepted, AsyncEndpoint, EndpointError, InvocationRequest};
use crate::notify::{Message, PublishError, Topic};
use crate::objects::{ObjectError, ObjectHead, Objects};
use crate::queue::{Queue, QueueError};
use crate::records::{JobRecord, OrphanRecord, StoredTags};

/// One analysis' detections, as [`JobStore::replace_tags`] stores them.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisTags<'a> {
    /// The analysed file.
    pub file: &'a S3Uri,
    /// The inference that produced them: it owns the items it writes.
    pub inference_id: &'a InferenceId,
    /// When the analysis completed (RFC 3339): the "files with tag X" index orders by it.
    pub completed_at: &'a str,
    /// The merged per-tag detections.
    pub detections: &'a [TagDetection],
}

/// What [`JobStore::replace_tags`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsWritten {
    /// The items that now hold the file's detections; keep them on the job so a later
    /// analysis or a newer upload can delete them without a query.
    pub stored: StoredTags,
    /// What the write cost, for logs and the request-count figures.
    pub stats: BatchStats,
}

/// The job table, in the operations the handlers mean rather than items and keys.
pub trait JobStore: Send + Sync {
    /// The file's job, read consistently (a decision must see the latest write).
    fn get_job(
        &self,
        file: &S3Uri,
    ) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Claims, updates or settles a job if the table still holds what the caller read:
    /// `Err(StoreError::Conflict)` means someone else wrote first, so read and decide again.
    fn put_job(
        &self,
        job: &JobRecord,
        expect: Expect,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes the file's tag items exactly the detections of `inference_id`: writes them and
    /// deletes whichever of `previous` (an older analysis' items) the new ones do not replace.
    fn replace_tags(
        &self,
        tags: &AnalysisTags<'_>,
        previous: &StoredTags,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<TagsWritten, StoreError>> + Send;

    /// Deletes tag items of the file (a superseded analysis' leftovers).
    fn delete_tags(
        &self,
        file: &S3Uri,
        items: &StoredTags,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<BatchStats, StoreError>> + Send;

    /// The file whose job waits for (or came from) an inference: how a notification whose
    /// input location does not name its job (a staged copy, or a location SageMaker echoed
    /// differently) finds it. Eventually consistent; read the job afterwards.
    fn file_of_inference(
        &self,
        inference_id: &InferenceId,
    ) -> impl Future<Output = Result<Option<S3Uri>, StoreError>> + Send;

    /// Up to `max` jobs still SUBMITTED whose last change is older than `changed_before`
    /// (RFC 3339, `cochl_core::time`), oldest first: the sweeper's work list.
    fn submitted_before(
        &self,
        changed_before: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    /// Keeps a notification no job knows, for inspection (the first copy wins).
    fn record_orphan(
        &self,
        orphan: &OrphanRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes one of the endpoint's `limit` in-flight slots for an inference, exactly once per
    /// inference whatever the concurrency; the slot may be presumed leaked at `expires_at`
    /// (seconds since the epoch). See `dynamo::slots`.
    fn acquire_slot(
        &self,
        inference_id: &InferenceId,
        limit: u32,
        expires_at: i64,
    ) -> impl Future<Output = Result<SlotGrant, StoreError>> + Send;

    /// Gives back an inference's slot; `Ok(false)` when it held none.
    fn release_slot(
        &self,
        inference_id: &InferenceId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `max` inferences whose slot is past its `expires_at` at `now`.
    fn expired_slots(
        &self,
        now: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<InferenceId>, StoreError>> + Send;
}

/// The audio bucket as the handlers read it.
pub trait ObjectStore: Send + Sync {
    /// The upload's metadata (of `version_id` when given); `Ok(None)` when it does not exist.
    fn head(
        &self,
        uri: &S3Uri,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<ObjectHead>, ObjectError>> + Send;

    /// A whole object of at most `limit` bytes (a result document).
    fn get(
        &self,
        uri: &S3Uri,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ObjectError>> + Send;

    /// A server-side copy of an upload (of its `version_id` when given) to `to`.
    fn copy(
        &self,
        from: &S3Uri,
        version_id: Option<&str>,
        to: &S3Uri,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;
}

/// The SageMaker async endpoint serving Cochl.Sense.
pub trait InferenceEndpoint: Send + Sync {
    /// Queues one inference, retrying throttling inside the deadline.
    fn invoke_async(
        &self,
        request: &InvocationRequest,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Accepted, EndpointError>> + Send;
}

/// The submit queue, beside the event source that delivers its messages.
pub trait MessageQueue: Send + Sync {
    /// Keeps a received message hidden for `hidden` from now (a deferral).
    fn change_visibility(
        &self,
        receipt_handle: &str,
        hidden: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Enqueues a message, visible after `delay`, with string attributes.
    fn send(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(String, String)],
    ) -> impl Future<Output = Result<String, QueueError>> + Send;
}

/// The detections topic users subscribe to.
pub trait NotificationTopic: Send + Sync {
    /// Publishes one message; returns the topic's message id.
    fn publish(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<String, PublishError>> + Send;
}

impl JobStore for DynamoStore {
    async fn get_job(&self, file: &S3Uri) -> Result<Option<JobRecord>, StoreError> {
        DynamoStore::get_job(self, file).await
    }

    async fn put_job(&self, job: &JobRecord, expect: Expect) -> Result<(), StoreError> {
        DynamoStore::put_job(self, job, expect).await
    }

    async fn replace_tags(
        &self,
        tags: &AnalysisTags<'_>,
        previous: &StoredTags,
        deadline: Option<Instant>,
    ) -> Result<TagsWritten, StoreError> {
        DynamoStore::replace_tags(self, tags, previous, deadline).await
    }

    async fn delete_tags(
        &self,
        file: &S3Uri,
        items: &StoredTags,
        deadline: Option<Instant>,
    ) -> Result<BatchStats, StoreError> {
        DynamoStore::delete_tags(self, file, items, deadline).await
    }

    async fn file_of_inference(
        &self,
        inference_id: &InferenceId,
    ) -> Result<Option<S3Uri>, StoreError> {
        DynamoStore::file_of_inference(self, inference_id).await
    }

    async fn submitted_before(
        &self,
        changed_before: &str,
        max: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        DynamoStore::submitted_before(self, changed_before, max).await
    }

    async fn record_orphan(&self, orphan: &OrphanRecord) -> Result<(), StoreError> {
        DynamoStore::record_orphan(self, orphan).await
    }

    async fn acquire_slot(
        &self,
        inference_id: &InferenceId,
        limit: u32,
        expires_at: i64,
    ) -> Result<SlotGrant, StoreError> {
        DynamoStore::acquire_slot(self, inference_id, limit, expires_at).await
    }

    async fn release_slot(&self, inference_id: &InferenceId) -> Result<bool, StoreError> {
        DynamoStore::release_slot(self, inference_id).await
    }

    async fn expired_slots(&self, now: i64, max: usize) -> Result<Vec<InferenceId>, StoreError> {
        DynamoStore::expired_slots(self, now, max).await
    }
}

impl ObjectStore for Objects {
    async fn head(
        &self,
        uri: &S3Uri,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, ObjectError> {
        Objects::head(self, uri, version_id).await
    }

    async fn get(&self, uri: &S3Uri, limit: u64) -> Result<Vec<u8>, ObjectError> {
        Objects::get(self, uri, limit).await
    }

    async fn copy(
        &self,
        from: &S3Uri,
        version_id: Option<&str>,
        to: &S3Uri,
    ) -> Result<(), ObjectError> {
        Objects::copy(self, from, version_id, to).await
    }
}

impl InferenceEndpoint for AsyncEndpoint {
    async fn invoke_async(
        &self,
        request: &InvocationRequest,
        deadline: Option<Instant>,
    ) -> Result<Accepted, EndpointError> {
        AsyncEndpoint::invoke_async(self, request, deadline).await
    }
}

impl MessageQueue for Queue {
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        hidden: Duration,
    ) -> Result<(), QueueError> {
        Queue::change_visibility(self, receipt_handle, hidden).await
    }

    async fn send(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(String, String)],
    ) -> Result<String, QueueError> {
        Queue::send(self, body, delay, attributes).await
    }
}

impl NotificationTopic for Topic {
    async fn publish(&self, message: &Message) -> Result<String, PublishError> {
        Topic::publish(self, message).await
    }
}

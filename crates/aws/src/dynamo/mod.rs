//! The job table in DynamoDB: conditional job writes, batched tag writes, orphans, and the
//! reads the query API needs.

pub mod cursor;
pub mod lookup;
pub mod provision;
pub mod read;
pub mod schema;
pub mod slots;

pub use slots::SlotGrant;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use cochl_core::keys::S3Uri;

use crate::ports::{AnalysisTags, TagsWritten};
use crate::records::{JobRecord, OrphanRecord, StoredTags};
use crate::retry::Backoff;
use schema::{Item, JOB_SK, PK, SK};

/// BatchWriteItem's limit (moto accepts more; AWS does not).
pub const BATCH_WRITE_LIMIT: usize = 25;

/// What a job write expects to find, so concurrent or stale writers cannot clobber each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No job for the file yet (first claim).
    Absent,
    /// The job at exactly this revision (read-modify-write).
    Revision(u64),
}

/// Why a table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition did not hold: someone else wrote first. Re-read and decide again.
    #[error("the job item changed underneath us (conditional write refused)")]
    Conflict,
    /// An item could not be decoded.
    #[error(transparent)]
    Item(#[from] schema::ItemError),
    /// Items were still unprocessed when the retries or the time budget ran out.
    #[error("{remaining} items still unprocessed after {attempts} BatchWriteItem attempts")]
    Unprocessed {
        /// Items not written.
        remaining: usize,
        /// Requests made.
        attempts: u32,
    },
    /// The service refused or could not be reached (after the SDK's own retries).
    #[error("DynamoDB {operation}: {message}")]
    Service {
        /// The API operation that failed, e.g. `PutItem`.
        operation: &'static str,
        /// The error as the SDK reports it.
        message: String,
    },
}

impl StoreError {
    fn service(operation: &'static str, error: impl std::error::Error) -> Self {
        StoreError::Service {
            operation,
            message: crate::error_chain(&error),
        }
    }
}

/// Counts of a batched write, for logs and the write-efficiency benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// BatchWriteItem requests made.
    pub requests: u32,
    /// Items put.
    pub puts: usize,
    /// Items deleted.
    pub deletes: usize,
    /// Items that came back unprocessed at least once and were retried.
    pub retried_items: usize,
}

/// The table keys (`pk`, `sk`) of a file's tag items.
fn tag_keys(file: &S3Uri, items: &StoredTags) -> Vec<(String, String)> {
    let pk = schema::file_pk(file);
    items
        .names()
        .iter()
        .map(|sk| (pk.clone(), sk.clone()))
        .collect()
}

/// The job table in DynamoDB: the real adapter behind `ports::JobStore`.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Wraps a client and the table name (from `COCHL_TABLE_NAME`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The SDK client, for the read side and provisioning.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads a file's job with a strongly consistent read.
    pub async fn get_job(&self, file: &S3Uri) -> Result<Option<JobRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(schema::file_pk(file)))
            .key(SK, AttributeValue::S(JOB_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::service("GetItem", e))?;
        output
            .item()
            .map(schema::job_from_item)
            .transpose()
            .map_err(StoreError::from)
    }

    /// Writes a job if the table still holds what the caller read ([`Expect`]).
    pub async fn put_job(&self, job: &JobRecord, expect: Expect) -> Result<(), StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(schema::job_item(job)));
        let request = match expect {
            Expect::Absent => request.condition_expression("attribute_not_exists(pk)"),
            Expect::Revision(revision) => request
                .condition_expression("revision = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(revision.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(error) => Err(StoreError::service("PutItem", error)),
        }
    }

    /// Records a notification no job knows (idempotent: the first copy wins).
    pub async fn record_orphan(&self, orphan: &OrphanRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(schema::orphan_item(orphan)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(StoreError::service("PutItem", error)),
        }
    }

    /// Writes the tag items of one analysis and deletes the `previous` items they do not
    /// replace, in the same batches: afterwards the file's tag items are exactly this
    /// analysis'. Items carry the inference id in their sort key, so a retry of the same
    /// analysis rewrites identical items and never deletes what it writes.
    pub async fn replace_tags(
        &self,
        tags: &AnalysisTags<'_>,
        previous: &StoredTags,
        deadline: Option<Instant>,
    ) -> Result<TagsWritten, StoreError> {
        let mut puts = Vec::new();
        let mut names = Vec::new();
        for detection in tags.detections {
            for record in
                schema::tag_records(tags.file, tags.inference_id, tags.completed_at, detection)
            {
                names.push(schema::tag_sk(
                    tags.inference_id.as_str(),
                    &record.name,
                    record.part,
                ));
                puts.push(schema::tag_item(&record));
            }
        }
        let stored = StoredTags::from_names(names);
        let deletes = tag_keys(tags.file, &previous.without(&stored));
        let stats = self.write_batch(puts, deletes, deadline).await?;
        Ok(TagsWritten { stored, stats })
    }

    /// Deletes tag items of a file, e.g. those of an analysis a newer upload replaced.
    pub async fn delete_tags(
        &self,
        file: &S3Uri,
        items: &StoredTags,
        deadline: Option<Instant>,
    ) -> Result<BatchStats, StoreError> {
        if items.is_empty() {
            return Ok(BatchStats::default());
        }
        self.write_batch(Vec::new(), tag_keys(file, items), deadline)
            .await
    }

    /// Puts and deletes items with BatchWriteItem in chunks of 25, retrying unprocessed
    /// items with exponential backoff and jitter until they are written or the deadline
    /// leaves no room for another attempt.
    pub async fn write_batch(
        &self,
        puts: Vec<Item>,
        deletes: Vec<(String, String)>,
        deadline: Option<Instant>,
    ) -> Result<BatchStats, StoreError> {
        let mut stats = BatchStats {
            puts: puts.len(),
            deletes: deletes.len(),
            ..BatchStats::default()
        };
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(puts.len() + deletes.len());
        for item in puts {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::service("BatchWriteItem", e))?;
            pending.push(WriteRequest::builder().put_request(put).build());
        }
        for (pk, sk) in deletes {
            let delete = DeleteRequest::builder()
                .key(PK, AttributeValue::S(pk))
                .key(SK, AttributeValue::S(sk))
                .build()
                .map_err(|e| StoreError::service("BatchWriteItem", e))?;
            pending.push(WriteRequest::builder().delete_request(delete).build());
        }
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2), 10)
            .with_deadline(deadline);
        while !pending.is_empty() {
            let mut unprocessed: Vec<WriteRequest> = Vec::new();
            for chunk in pending.chunks(BATCH_WRITE_LIMIT) {
                stats.requests += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, chunk.to_vec())
                    .send()
                    .await
                    .map_err(|e| StoreError::service("BatchWriteItem", e))?;
                if let Some(left) = output
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                {
                    unprocessed.extend(left.iter().cloned());
                }
            }
            if unprocessed.is_empty() {
                break;
            }
            stats.retried_items += unprocessed.len();
            match backoff.next_delay() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(StoreError::Unprocessed {
                        remaining: unprocessed.len(),
                        attempts: stats.requests,
                    })
                }
            }
            pending = unprocessed;
        }
        Ok(stats)
    }
}

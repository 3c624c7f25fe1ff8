//! The two index reads that settle jobs no notification found: a job by its inference
//! (on-result, when a notification's input location does not name the job) and the jobs
//! left waiting too long (the sweeper).

use aws_sdk_dynamodb::types::AttributeValue;
use cochl_core::inference_id::InferenceId;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;

use super::schema::{
    self, Item, GSI2_PK, GSI2_SK, GSI3_PK, INFERENCE_INDEX, JOB_SK, PK, SK, STATUS_INDEX,
};
use super::{DynamoStore, StoreError};
use crate::records::JobRecord;

/// Items one status-index page asks for.
const PAGE: i32 = 100;

impl DynamoStore {
    /// The file whose job waits for (or came from) `inference_id`, through the inference
    /// index. The index is eventually consistent: read the job itself afterwards.
    pub async fn file_of_inference(
        &self,
        inference_id: &InferenceId,
    ) -> Result<Option<S3Uri>, StoreError> {
        let output = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(INFERENCE_INDEX)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI3_PK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(schema::inference_index_pk(inference_id)),
            )
            .send()
            .await
            .map_err(|e| StoreError::service("Query", e))?;
        output
            .items()
            .iter()
            .find(|item| is_job(item))
            .map(file_of_item)
            .transpose()
    }

    /// Up to `max` jobs still SUBMITTED whose last change is older than `changed_before`
    /// (an RFC 3339 timestamp as `cochl_core::time` writes them), oldest first.
    pub async fn submitted_before(
        &self,
        changed_before: &str,
        max: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(STATUS_INDEX)
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#pk", GSI2_PK)
                .expression_attribute_names("#sk", GSI2_SK)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(schema::status_index_pk(JobStatus::Submitted)),
                )
                .expression_attribute_values(":before", AttributeValue::S(changed_before.into()))
                .limit(PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::service("Query", e))?;
            for item in output.items() {
                if jobs.len() == max {
                    return Ok(jobs);
                }
                jobs.push(schema::job_from_item(item)?);
            }
            match output.last_evaluated_key() {
                Some(key) if jobs.len() < max => start = Some(key.clone()),
                _ => return Ok(jobs),
            }
        }
    }
}

fn is_job(item: &Item) -> bool {
    item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str) == Some(JOB_SK)
}

/// The file a job item belongs to, from its partition key `FILE#<bucket>/<key>`.
fn file_of_item(item: &Item) -> Result<S3Uri, StoreError> {
    let pk = item
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_default();
    schema::file_of_pk(pk).ok_or_else(|| {
        StoreError::from(schema::ItemError {
            pk: pk.to_string(),
            sk: JOB_SK.to_string(),
            problem: "the partition key names no file".into(),
        })
    })
}

//! Creating the job table, for the local stack and tests. In AWS, `template.yaml` creates
//! it with the same keys and indexes.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

use aws_sdk_dynamodb::types::TimeToLiveSpecification;

use super::schema::{
    GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, GSI3_PK, INFERENCE_INDEX, PK, PURGE_AT, SK, STATUS_INDEX,
    TAG_INDEX,
};
use super::StoreError;

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StoreError::service("CreateTable", e))
}

fn index(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| StoreError::service("CreateTable", e))
}

/// An index answering "which item has this key", projecting the table's keys only.
fn keys_only_index(name: &str, pk: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(|e| StoreError::service("CreateTable", e))
}

/// Creates the table (on-demand, both indexes) and returns once it is active.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(index(TAG_INDEX, GSI1_PK, GSI1_SK)?)
        .global_secondary_indexes(index(STATUS_INDEX, GSI2_PK, GSI2_SK)?)
        .global_secondary_indexes(keys_only_index(INFERENCE_INDEX, GSI3_PK)?);
    for name in [PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, GSI3_PK] {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::service("CreateTable", e))?,
        );
    }
    request
        .send()
        .await
        .map_err(|e| StoreError::service("CreateTable", e))?;
    // Tombstones of deleted uploads expire on their own.
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(PURGE_AT)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::service("UpdateTimeToLive", e))?,
        )
        .send()
        .await
        .map_err(|e| StoreError::service("UpdateTimeToLive", e))?;
    Ok(())
}

//! Admission control: the endpoint's in-flight inferences, counted exactly in the table.
//!
//! One partition (`pk = INFLIGHT`) holds a counter item and one slot item per inference the
//! endpoint accepted and has not finished. A slot is taken and given back only in a
//! transaction that writes the slot item and moves the counter together, conditioned on the
//! slot item (absent to take, present to give back) and on the counter staying under the
//! limit. So the counter always equals the number of slot items; a duplicate delivery cannot
//! take a second slot for one inference, nor give one back twice; and a crash between two
//! steps of a function leaves either both writes or neither.
//!
//! What can still outlive its inference is a slot whose notification never comes (lost, or
//! a job abandoned in a dead-letter queue). Every slot records when it may be presumed
//! leaked (the request's longest possible wait plus run, plus a grace period);
//! [`DynamoStore::expired_slots`] finds those so submit can reclaim them when the endpoint
//! looks full.
//!
//! The counter is one item: DynamoDB serves about 1,000 writes a second on it, far above
//! what any async endpoint finishes. Transactions touching it at the same instant may be
//! cancelled with `TransactionConflict`; those are retried here with jittered backoff.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use cochl_core::inference_id::InferenceId;

use super::schema::{Item, PK, SK};
use super::{DynamoStore, StoreError};
use crate::retry::Backoff;

/// Partition of the counter and the slots.
pub const IN_FLIGHT_PK: &str = "INFLIGHT";
/// Sort key of the counter item.
pub const COUNTER_SK: &str = "COUNTER";
/// Sort key prefix of slot items.
pub const SLOT_SK_PREFIX: &str = "SLOT#";
/// Attribute holding the count on the counter item.
const COUNT: &str = "in_flight";
/// Transactions cancelled by a concurrent one on the counter, retried this many times.
const CONFLICT_ATTEMPTS: u32 = 8;

/// What asking for a slot gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGrant {
    /// A slot was taken for the inference.
    Acquired,
    /// The inference already holds a slot (an earlier attempt took it): go ahead.
    AlreadyHeld,
    /// The endpoint has `in_flight` inferences accepted and unfinished: the limit.
    Full {
        /// The count that refused the slot (the limit; a lower limit than the count of an
        /// earlier, higher one reads as the limit too).
        in_flight: u64,
    },
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn slot_sk(inference_id: &InferenceId) -> String {
    format!("{SLOT_SK_PREFIX}{inference_id}")
}

fn key(sk: String) -> Item {
    Item::from([(PK.to_string(), s(IN_FLIGHT_PK)), (SK.to_string(), s(sk))])
}

/// Which items of a cancelled transaction failed their condition, and whether any was
/// cancelled by a concurrent transaction instead.
#[derive(Debug, Default)]
struct Cancelled {
    condition_failed: Vec<bool>,
    conflict: bool,
}

fn cancelled(error: &TransactWriteItemsError) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(cancel) = error else {
        return None;
    };
    let mut out = Cancelled::default();
    for reason in cancel.cancellation_reasons() {
        let code = reason.code().unwrap_or_default();
        out.condition_failed.push(code == "ConditionalCheckFailed");
        out.conflict |= code == "TransactionConflict";
    }
    Some(out)
}

fn conflict_backoff() -> Backoff {
    Backoff::new(
        Duration::from_millis(20),
        Duration::from_millis(500),
        CONFLICT_ATTEMPTS,
    )
}

impl DynamoStore {
    /// Takes an in-flight slot for `inference_id` if fewer than `limit` are taken; the slot
    /// may be presumed leaked at `expires_at` (seconds since the epoch).
    pub async fn acquire_slot(
        &self,
        inference_id: &InferenceId,
        limit: u32,
        expires_at: i64,
    ) -> Result<SlotGrant, StoreError> {
        let mut backoff = conflict_backoff();
        loop {
            let count = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(COUNTER_SK.into())))
                .update_expression("ADD #n :one")
                .condition_expression("attribute_not_exists(#n) OR #n < :limit")
                .expression_attribute_names("#n", COUNT)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
                .build()
                .map_err(|e| StoreError::service("TransactWriteItems", e))?;
            let mut slot = key(slot_sk(inference_id));
            slot.insert("type".into(), s("slot"));
            slot.insert("inference_id".into(), s(inference_id.as_str()));
            slot.insert("acquired_at".into(), s(crate::clock::now()));
            slot.insert(
                "expires_at".into(),
                AttributeValue::N(expires_at.to_string()),
            );
            let slot = Put::builder()
                .table_name(&self.table)
                .set_item(Some(slot))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::service("TransactWriteItems", e))?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(count).build())
                .transact_items(TransactWriteItem::builder().put(slot).build())
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(SlotGrant::Acquired),
                Err(error) => error,
            };
            let Some(reasons) = error.as_service_error().and_then(cancelled) else {
                return Err(StoreError::service("TransactWriteItems", error));
            };
            if reasons.condition_failed.get(1) == Some(&true) || self.holds(inference_id).await? {
                return Ok(SlotGrant::AlreadyHeld);
            }
            if reasons.condition_failed.first() == Some(&true) {
                // The counter never passes the limit, so a refusal means it is at it.
                return Ok(SlotGrant::Full {
                    in_flight: u64::from(limit),
                });
            }
            match backoff.next_delay() {
                Some(delay) if reasons.conflict => tokio::time::sleep(delay).await,
                _ => return Err(StoreError::service("TransactWriteItems", error)),
            }
        }
    }

    /// Gives back the slot of `inference_id`; `Ok(false)` when it held none (already given
    /// back, or never taken).
    pub async fn release_slot(&self, inference_id: &InferenceId) -> Result<bool, StoreError> {
        let mut backoff = conflict_backoff();
        loop {
            let slot = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(slot_sk(inference_id))))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(|e| StoreError::service("TransactWriteItems", e))?;
            let count = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(COUNTER_SK.into())))
                .update_expression("ADD #n :minus_one")
                .expression_attribute_names("#n", COUNT)
                .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
                .build()
                .map_err(|e| StoreError::service("TransactWriteItems", e))?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(slot).build())
                .transact_items(TransactWriteItem::builder().update(count).build())
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(true),
                Err(error) => error,
            };
            let Some(reasons) = error.as_service_error().and_then(cancelled) else {
                return Err(StoreError::service("TransactWriteItems", error));
            };
            if reasons.condition_failed.first() == Some(&true) || !self.holds(inference_id).await? {
                return Ok(false);
            }
            match backoff.next_delay() {
                Some(delay) if reasons.conflict => tokio::time::sleep(delay).await,
                _ => return Err(StoreError::service("TransactWriteItems", error)),
            }
        }
    }

    /// Whether `inference_id` holds a slot (consistent read).
    async fn holds(&self, inference_id: &InferenceId) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(slot_sk(inference_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::service("GetItem", e))?;
        Ok(output.item().is_some())
    }

    /// The slots taken now (the counter; 0 before the first).
    pub async fn in_flight(&self) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(COUNTER_SK.into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::service("GetItem", e))?;
        Ok(output
            .item()
            .and_then(|item| item.get(COUNT))
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .map_or(0, |n| n.max(0) as u64))
    }

    /// Up to `max` inferences whose slot may be presumed leaked at `now` (seconds since the
    /// epoch): their request could no longer be waiting or running.
    pub async fn expired_slots(
        &self,
        now: i64,
        max: usize,
    ) -> Result<Vec<InferenceId>, StoreError> {
        let mut expired = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :slot)")
                .filter_expression("expires_at < :now")
                .expression_attribute_values(":pk", s(IN_FLIGHT_PK))
                .expression_attribute_values(":slot", s(SLOT_SK_PREFIX))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::service("Query", e))?;
            for item in output.items() {
                let id = item
                    .get("inference_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|text| InferenceId::parse(text).ok());
                if let Some(id) = id {
                    expired.push(id);
                }
                if expired.len() >= max {
                    return Ok(expired);
                }
            }
            match output.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(expired),
            }
        }
    }
}

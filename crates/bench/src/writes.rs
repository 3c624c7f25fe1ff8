//! Write efficiency: the DynamoDB requests the on-result handler makes per analysed file,
//! counted on the wire by an SDK interceptor (one count per HTTP request, retries
//! included), on the local stack.
//!
//! The stack's own on-result pump is unsubscribed from the SageMaker success topic and a
//! capture queue takes its place; each notification is then handed to a `ResultHandler`
//! built here whose DynamoDB client carries the counting interceptor. Everything else is
//! the stack's: upload, S3 notification, submit, the emulator (scripted with the
//! generated result), S3, SNS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use cochl_aws::dynamo::DynamoStore;
use cochl_aws::notify::Topic;
use cochl_aws::objects::Objects;
use cochl_core::job::JobStatus;
use cochl_on_result::{NotificationOutcome, ResultHandler};
use devstack::payload::{to_payload, Delivery};
use devstack::stack::{subscribe_queue, LocalStack, INPUT_PREFIX};
use serde_json::Value;

use crate::generate::{cochl_result, tone_wav};
use crate::postprocess::{SEED, SIZES};
use crate::report::Report;
use crate::stack::start_stack;

const DEADLINE: Duration = Duration::from_secs(120);

/// What the interceptor saw.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// HTTP requests by operation (`BatchWriteItem`, `GetItem`, ...).
    pub by_operation: BTreeMap<String, u64>,
    /// Items put by BatchWriteItem requests.
    pub items_put: u64,
    /// Items deleted by BatchWriteItem requests.
    pub items_deleted: u64,
    /// Write units of the batched puts (1 per started KiB of the item's JSON, an estimate
    /// of DynamoDB's item size), plus 1 per single-item write.
    pub write_units: u64,
}

impl Counts {
    /// Every request.
    pub fn requests(&self) -> u64 {
        self.by_operation.values().sum()
    }

    /// Read requests (GetItem, Query, BatchGetItem, Scan).
    pub fn reads(&self) -> u64 {
        ["GetItem", "Query", "BatchGetItem", "Scan"]
            .iter()
            .filter_map(|op| self.by_operation.get(*op))
            .sum()
    }
}

/// Counts DynamoDB requests as they go on the wire.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<Counts>>);

impl RequestCounter {
    /// Takes the counts so far and starts again from zero.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "cochl-bench-request-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if operation == "BatchWriteItem" {
            let body: Value = request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            if let Some(tables) = body["RequestItems"].as_object() {
                for entry in tables.values().filter_map(Value::as_array).flatten() {
                    if let Some(item) = entry.get("PutRequest") {
                        counts.items_put += 1;
                        let bytes = item["Item"].to_string().len() as u64;
                        counts.write_units += bytes.div_ceil(1024).max(1);
                    } else if entry.get("DeleteRequest").is_some() {
                        counts.items_deleted += 1;
                        counts.write_units += 1;
                    }
                }
            }
        } else if matches!(
            operation.as_str(),
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems"
        ) {
            counts.write_units += 1;
        }
        *counts.by_operation.entry(operation).or_default() += 1;
        Ok(())
    }
}

/// The stack's job table through a DynamoDB client that counts its requests in `counter`,
/// for a handler whose table traffic is measured.
pub fn counted_store(stack: &LocalStack, counter: &RequestCounter) -> DynamoStore {
    let config = aws_sdk_dynamodb::config::Builder::from(&stack.config)
        .interceptor(counter.clone())
        .build();
    DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        stack.resources.table.clone(),
    )
}

/// Routes the SageMaker success topic to a new capture queue instead of the stack's
/// on-result pump; answers the capture queue's URL.
pub async fn detach_results_queue(stack: &LocalStack) -> Result<String> {
    let results_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        stack.resources.results_queue
    );
    let subscriptions = stack
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&stack.resources.success_topic)
        .send()
        .await
        .context("listing the success topic's subscriptions")?;
    for subscription in subscriptions.subscriptions() {
        if subscription.endpoint() == Some(results_arn.as_str()) {
            if let Some(arn) = subscription.subscription_arn() {
                stack
                    .sns
                    .unsubscribe()
                    .subscription_arn(arn)
                    .send()
                    .await
                    .context("unsubscribing the results queue")?;
            }
        }
    }
    let capture = testkit::unique_name("bench-capture");
    let url = stack
        .sqs
        .create_queue()
        .queue_name(&capture)
        .send()
        .await
        .context("creating the capture queue")?
        .queue_url()
        .map(str::to_string)
        .context("no capture queue URL")?;
    subscribe_queue(
        &stack.sns,
        &stack.resources.success_topic,
        &capture,
        false,
        None,
    )
    .await?;
    Ok(url)
}

/// Waits for one SNS envelope on a queue and deletes it.
pub async fn receive_one(stack: &LocalStack, url: &str, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let output = stack
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await?;
        if let Some(message) = output.messages().first() {
            if let Some(receipt) = message.receipt_handle() {
                stack
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
            return Ok(message.body().unwrap_or_default().to_string());
        }
    }
    bail!("no notification within {within:?}")
}

/// Measures the three sizes.
pub async fn run(report: &mut Report) -> Result<()> {
    let stack = start_stack().await?;
    let capture = detach_results_queue(&stack).await?;
    let counter = RequestCounter::default();
    let handler = ResultHandler {
        objects: Objects::new(stack.s3.clone()),
        store: counted_store(&stack, &counter),
        detections: Topic::new(
            aws_sdk_sns::Client::new(&stack.config),
            stack.resources.detections_topic.clone(),
        ),
        submit_queue: stack.results.submit_queue.clone(),
        settings: stack.results.settings.clone(),
    };
    let wav = tone_wav(3, 16_000, 1000.0);
    for (label, windows, _) in SIZES {
        let result = cochl_result(windows, SEED);
        let body = String::from_utf8(result).context("generated results are ASCII")?;
        let (status, _) = stack
            .emulator_admin("POST", "/_emulator/scripted-results", &body)
            .await?;
        if status != 200 {
            bail!("scripting the emulator answered {status}");
        }
        drop(body);
        let key = format!("{INPUT_PREFIX}bench-writes-{}.wav", label.replace(' ', ""));
        let file = stack
            .upload(&key, wav.clone(), Some("audio/wav"), &[])
            .await?;
        let envelope = receive_one(&stack, &capture, DEADLINE).await?;
        let payload = to_payload(Delivery::SnsToLambda, &envelope);
        counter.take();
        let started = Instant::now();
        let outcomes = cochl_on_result::handle(&handler, &payload, None).await?;
        let elapsed = started.elapsed();
        let counts = counter.take();
        let job = stack.wait_terminal(&file, DEADLINE).await?;
        if job.status != JobStatus::Completed {
            bail!("{file} ended {:?}: {:?}", job.status, job.reason);
        }
        let computed = match outcomes.first() {
            Some(NotificationOutcome::Completed {
                dynamodb_requests, ..
            }) => u64::from(*dynamodb_requests),
            other => bail!("on-result did not complete {file}: {other:?}"),
        };
        let items = counts.items_put;
        // The tag batches, the read, the settling write and the slot's transaction.
        let target = items.div_ceil(25) + 3;
        let requests = counts.requests();
        let operations: Vec<String> = counts
            .by_operation
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        let section = format!("writes {label}");
        report.row(
            &section,
            "DynamoDB requests (on the wire)",
            format!(
                "{requests} for {items} items [{}]; handler's own figure {computed}",
                operations.join(", ")
            ),
            Some((
                format!("<= ceil({items}/25)+3 = {target}"),
                requests <= target,
            )),
        );
        report.note_row(
            &section,
            "on-result handler time (local stack)",
            format!(
                "{:.0} ms, ~{} write units",
                elapsed.as_secs_f64() * 1e3,
                counts.write_units
            ),
        );
        report.record(&format!("writes.{label}.ms"), elapsed.as_secs_f64() * 1e3);
        report.record(&format!("writes.{label}.wru"), counts.write_units as f64);
        report.record(&format!("writes.{label}.reads"), counts.reads() as f64);
    }
    stack.shutdown().await;
    Ok(())
}

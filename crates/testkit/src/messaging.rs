//! SNS topics and SQS queues on the local services: creating and wiring them, and reading
//! what arrives within a deadline. Shared by the local stack (devstack) and the emulator's
//! own tests, so there is one receive loop and one subscription recipe.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;

/// The ARN of a queue on the local services (moto's fixed account and region).
pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:123456789012:{name}")
}

/// Creates a queue (visibility timeout 60 s) and returns its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    let output = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    output
        .queue_url()
        .map(str::to_string)
        .context("CreateQueue returned no URL")
}

/// Creates a topic and returns its ARN.
pub async fn create_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<String> {
    let output = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .with_context(|| format!("creating topic {name}"))?;
    output
        .topic_arn()
        .map(str::to_string)
        .context("CreateTopic returned no ARN")
}

/// Subscribes a queue to a topic; `raw` delivers the message itself with its attributes
/// (no SNS envelope), `filter_policy` keeps only matching messages. Returns the
/// subscription's ARN.
pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_name: &str,
    raw: bool,
    filter_policy: Option<&str>,
) -> Result<String> {
    let mut request = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(queue_name))
        .attributes("RawMessageDelivery", if raw { "true" } else { "false" });
    if let Some(policy) = filter_policy {
        request = request.attributes("FilterPolicy", policy);
    }
    let output = request.send().await.context("subscribing a queue")?;
    Ok(output.subscription_arn().unwrap_or_default().to_string())
}

/// Creates a queue named after `prefix` (made unique) subscribed to a topic; returns the
/// queue's name and URL.
pub async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    prefix: &str,
    raw: bool,
    filter_policy: Option<&str>,
) -> Result<(String, String)> {
    let name = crate::unique_name(prefix);
    let url = create_queue(sqs, &name).await?;
    subscribe_queue(sns, topic_arn, &name, raw, filter_policy).await?;
    Ok((name, url))
}

/// Receives (and deletes) messages from a queue until `count` arrived or `within` passed
/// (at least one receive either way, never more than `count` messages); returns the bodies
/// as they were sent. Long polls of a second, or one short poll when less time is given.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    count: usize,
    within: Duration,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + within;
    let wait = i32::from(within >= Duration::from_secs(1));
    let mut bodies = Vec::new();
    loop {
        let wanted = count.saturating_sub(bodies.len()).clamp(1, 10);
        let output = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(wanted).unwrap_or(10))
            .wait_time_seconds(wait)
            .send()
            .await
            .with_context(|| format!("receiving from {url}"))?;
        for message in output.messages() {
            bodies.push(message.body().unwrap_or_default().to_string());
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .with_context(|| format!("deleting from {url}"))?;
            }
        }
        if bodies.len() >= count || Instant::now() >= deadline {
            return Ok(bodies);
        }
    }
}

/// Messages a queue holds: visible, in flight or delayed.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .with_context(|| format!("attributes of {url}"))?;
    let attributes = output.attributes().context("no attributes")?;
    let mut total = 0;
    for name in [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ] {
        total += attributes
            .get(&name)
            .map_or(Ok(0), |v| v.parse::<u64>())
            .context("a message count")?;
    }
    Ok(total)
}

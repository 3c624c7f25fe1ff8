//! Submit throughput: S3 events of 10 records each, handled one event at a time (one
//! function instance) by `cochl_submit::handle` against the emulator, on the local stack.
//!
//! The bucket's S3 notification is removed first so the stack's own submit pump does not
//! race the bench, and the on-result pump is detached so it does not load moto meanwhile.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use aws_sdk_s3::types::NotificationConfiguration;
use cochl_aws::endpoint::AsyncEndpoint;
use cochl_aws::objects::Objects;
use cochl_submit::{RecordOutcome, Submitter};
use devstack::stack::INPUT_PREFIX;
use serde_json::{json, Value};

use crate::generate::tone_wav;
use crate::report::{median, Report};
use crate::stack::start_stack;
use crate::writes::{counted_store, detach_results_queue, RequestCounter};

/// Events handled; each holds [`RECORDS`] records.
const EVENTS: usize = 10;
const RECORDS: usize = 10;

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Measures submissions per second of one instance.
pub async fn run(report: &mut Report) -> Result<()> {
    let stack = start_stack().await?;
    stack
        .s3
        .put_bucket_notification_configuration()
        .bucket(&stack.resources.bucket)
        .notification_configuration(NotificationConfiguration::builder().build())
        .send()
        .await
        .context("removing the bucket's notification")?;
    detach_results_queue(&stack).await?;
    let wav = tone_wav(1, 16_000, 1000.0);
    let mut events: Vec<Value> = Vec::with_capacity(EVENTS);
    for e in 0..EVENTS {
        let mut records = Vec::with_capacity(RECORDS);
        for r in 0..RECORDS {
            let key = format!("{INPUT_PREFIX}bench-submit-{e:02}-{r:02}.wav");
            let output = stack
                .s3
                .put_object()
                .bucket(&stack.resources.bucket)
                .key(&key)
                .content_type("audio/wav")
                .body(wav.clone().into())
                .send()
                .await
                .with_context(|| format!("uploading {key}"))?;
            records.push(json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": cochl_core::time::format_millis(now_millis()),
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": stack.resources.bucket},
                       "object": {"key": cochl_core::keys::encode_event_key(&key),
                                  "eTag": output.e_tag().unwrap_or_default(),
                                  "size": wav.len()}}
            }));
        }
        events.push(json!({ "Records": records }));
    }
    // The stack's submitter, with a DynamoDB client that counts its requests.
    let counter = RequestCounter::default();
    let settings = stack.submitter.settings.clone();
    let sagemaker = testkit::sdk_config(&stack.emulator.url()).await;
    let submitter = Submitter {
        objects: Objects::new(stack.s3.clone()),
        store: counted_store(&stack, &counter),
        endpoint: AsyncEndpoint::new(
            cochl_aws::clients::sagemaker(&sagemaker),
            settings.endpoint_name.clone(),
            settings.max_attempts,
        ),
        detections: stack.submitter.detections.clone(),
        queue: stack.submitter.queue.clone(),
        settings,
        reconcile: stack.submitter.reconcile.clone(),
    };
    let mut per_event = Vec::with_capacity(EVENTS);
    let started = Instant::now();
    for event in &events {
        let event_started = Instant::now();
        let outcomes = cochl_submit::handle(&submitter, event, None).await?;
        per_event.push(event_started.elapsed().as_secs_f64() * 1e3);
        if let Some(other) = outcomes
            .iter()
            .find(|o| !matches!(o, RecordOutcome::Submitted { .. }))
        {
            bail!("a record was not submitted: {other:?}");
        }
    }
    let total = started.elapsed().as_secs_f64();
    let submissions = (EVENTS * RECORDS) as f64;
    report.row(
        "submit",
        &format!("{EVENTS} events x {RECORDS} records, one instance"),
        format!(
            "{:.0} submissions/s (median {:.0} ms per event, {:.1} ms per record)",
            submissions / total,
            median(&per_event),
            total * 1e3 / submissions
        ),
        None,
    );
    let counts = counter.take();
    report.note_row(
        "submit",
        "DynamoDB per submitted file",
        format!(
            "{:.1} requests, ~{:.1} write units",
            counts.requests() as f64 / submissions,
            counts.write_units as f64 / submissions
        ),
    );
    report.record("submit.ms_per_record", total * 1e3 / submissions);
    report.record("submit.ms_per_event", median(&per_event));
    report.record(
        "submit.wru_per_file",
        counts.write_units as f64 / submissions,
    );
    report.record("submit.reads_per_file", counts.reads() as f64 / submissions);
    stack.shutdown().await;
    Ok(())
}

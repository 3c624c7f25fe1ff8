//! A request the endpoint refuses ends FAILED and is notified, exactly once, even when the
//! first publish fails.
//!
//! The submit handler runs on the local stack (moto, the SageMaker emulator) with the
//! delivery pumps off, so the test hands it the S3 event itself. A 1,024-byte key makes
//! `InputLocation` longer than SageMaker's 1024 characters: the emulator answers 400
//! ValidationError, as SageMaker does. The first attempt's detections topic does not exist,
//! so its publish fails: the job is recorded FAILED but not notified and the record fails
//! (Lambda would retry). The retry publishes the missing notification without invoking the
//! endpoint again; a further duplicate publishes nothing.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use cochl_aws::notify::Topic;
use cochl_core::job::JobStatus;
use cochl_submit::{RecordError, RecordOutcome, SubmitError, Submitter};
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::json;
use testkit::wait::DEADLINE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_recorded_failed_and_notified_once() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "refused".into(),
        event_sources: false,
        ..StackOptions::default()
    })
    .await?;
    let tone = testkit::sample("tone-1khz.wav")?;
    // S3's longest key: `s3://<bucket>/` in front of it is over InputLocation's 1024.
    let key = format!(
        "{INPUT_PREFIX}{}.wav",
        "k".repeat(1024 - INPUT_PREFIX.len() - 4)
    );
    assert_eq!(key.len(), 1024);
    let file = stack.upload(&key, tone, Some("audio/wav"), &[]).await?;
    let event = stack.s3_event(1, DEADLINE).await?;

    // First attempt: the publish fails (no such topic); the refusal is recorded regardless.
    let broken = Submitter {
        detections: Topic::new(
            stack.sns.clone(),
            "arn:aws:sns:us-east-1:123456789012:no-such-topic",
        ),
        ..(*stack.submitter).clone()
    };
    match cochl_submit::handle(&broken, &event, None).await {
        Err(SubmitError::Records(batch)) => {
            ensure!(batch.failures.len() == 1, "{batch}");
            ensure!(
                matches!(batch.failures[0].1, RecordError::Publish(_)),
                "{batch}"
            );
            ensure!(batch.error_type() == "Retryable.PublishFailed", "{batch}");
        }
        other => bail!("the failed publish must fail the record: {other:?}"),
    }
    let job = stack.store.get_job(&file).await?.context("the job")?;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.reason_code.as_deref(), Some("endpoint_refused"));
    assert!(!job.notified, "nothing was published yet");
    let nothing = stack
        .receive(&stack.resources.detections_queue, 1, Duration::ZERO)
        .await?;
    assert!(nothing.is_empty(), "{nothing:?}");

    // Lambda's retry: the job is FAILED but not notified, so the notification goes out now.
    let outcomes = cochl_submit::handle(&stack.submitter, &event, None).await?;
    let reason = job.reason.clone().unwrap_or_default();
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Refused {
            file: file.to_string(),
            inference_id: job
                .inference_id
                .as_deref()
                .context("inference id")?
                .to_string(),
            reason: reason.clone(),
        }]
    );
    let job = stack.store.get_job(&file).await?.context("the job")?;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.notified);

    // A further duplicate changes and publishes nothing.
    let outcomes = cochl_submit::handle(&stack.submitter, &event, None).await?;
    assert_eq!(
        outcomes,
        vec![RecordOutcome::Duplicate {
            file: file.to_string()
        }]
    );

    let notifications = stack
        .receive(&stack.resources.detections_queue, 2, Duration::from_secs(3))
        .await?;
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    let notification = &notifications[0];
    assert_eq!(notification["file"], file.to_string());
    assert_eq!(notification["bucket"], stack.resources.bucket.as_str());
    assert_eq!(notification["key"], key.as_str());
    assert_eq!(notification["status"], "FAILED");
    assert_eq!(notification["reason_code"], "endpoint_refused");
    assert_eq!(notification["reason"], reason.as_str());
    assert_eq!(
        notification["inference_id"],
        job.inference_id.as_deref().unwrap_or_default()
    );
    assert_eq!(notification["tags"], json!([]));
    assert!(reason.contains("ValidationError"), "{reason}");

    // The endpoint was asked once: the retry only published.
    let stats = stack.emulator_stats().await?;
    assert_eq!(stats["validation_errors"], 1, "{stats}");
    assert_eq!(stats["accepted"], 0, "{stats}");
    stack.shutdown().await;
    Ok(())
}

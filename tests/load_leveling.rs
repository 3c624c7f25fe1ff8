//! Load leveling on the local stack: the queues in front of both functions, admission
//! control against the endpoint's capacity, deferral that never dead-letters, and the
//! dead-letter queue and its redrive as AWS has them.
//!
//! - `a_burst_that_would_expire_completes_under_admission_control`: the emulator runs 2
//!   inferences at a time, each takes a processing delay chosen so that the whole burst
//!   needs 1.2 × `RequestTTLSeconds` (60 s) of endpoint time: sent at once, the last sixth
//!   would wait past its TTL and expire. With `COCHL_MAX_IN_FLIGHT` 20 the queue holds the
//!   rest: nothing expires, every file is COMPLETED with exactly one inference, the
//!   inferences accepted and unfinished never exceed 20 (the emulator's own high-water mark,
//!   and the table's counter sampled every second), every slot is given back, and nothing
//!   is dead-lettered. 200 uploads in `make test`, 1,000 in `make soak`
//!   (`COCHL_LEVELING_UPLOADS` sets either). It prints its figures; nothing is timed.
//! - `one_poison_message_alone_is_dead_lettered_and_completes_after_the_redrive`: one
//!   batch of six uploads, one of which always fails (its job item is corrupt): the other
//!   five complete, only the poison reaches the dead-letter queue, unchanged, after
//!   `maxReceiveCount` receives; once the item is repaired, the move task puts it back on
//!   the submit queue and it completes.
//! - `expired_requests_are_resubmitted_and_notified_once_for_their_final_outcome`: the
//!   emulator expires requests as SageMaker does past their TTL; one that expires once is
//!   resubmitted under its `-r1` id and completes; one that always expires ends FAILED
//!   (`request_expired`) after `COCHL_MAX_EXPIRY_RESUBMITS` resubmissions; each file gets
//!   exactly one detection notification, for its final outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use cochl_aws::dynamo::schema;
use cochl_aws::settings as vars;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::event_source::Mapping;
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use testkit::audio::tone_wav;
use testkit::wait::{self, DEADLINE};

/// Uploads of the burst in `make test`.
const BURST_UPLOADS: usize = 200;
/// The same in `make soak`.
const SOAK_BURST_UPLOADS: usize = 1_000;
/// The admission-control limit of the burst.
const MAX_IN_FLIGHT: u64 = 20;
/// Inferences the emulator runs at once.
const ENDPOINT_CONCURRENCY: usize = 2;
/// The requests' `RequestTTLSeconds` (SageMaker's minimum).
const TTL_SECONDS: u64 = 60;

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_that_would_expire_completes_under_admission_control() -> Result<()> {
    let files = testkit::soak::size("COCHL_LEVELING_UPLOADS", BURST_UPLOADS);
    burst(files, Duration::from_secs(4)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 1,000 uploads under admission control, a few minutes; `make soak` runs it"]
async fn soak_a_thousand_upload_burst_completes_under_admission_control() -> Result<()> {
    let files = testkit::soak::size("COCHL_LEVELING_UPLOADS", SOAK_BURST_UPLOADS);
    burst(files, Duration::from_secs(45)).await
}

/// `files` uploads at once; deferred messages come back within `defer_max`. Every waiting
/// message costs a few requests per return, and the local stack serves them all from one
/// moto process, so the longer backlog of the soak waits longer between returns (in AWS the
/// defaults are 30 s to 15 minutes).
async fn burst(files: usize, defer_max: Duration) -> Result<()> {
    // The endpoint time the burst needs: 1.2 × the TTL, shared by the concurrent slots.
    let endpoint_time = Duration::from_secs(TTL_SECONDS).mul_f64(1.2);
    let delay = endpoint_time * ENDPOINT_CONCURRENCY as u32 / files as u32;
    // Without control the last request waits about endpoint_time - delay before it runs:
    // the arithmetic behind "would expire", checked rather than assumed.
    ensure!(endpoint_time - delay > Duration::from_secs(TTL_SECONDS));

    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "leveling".into(),
        max_concurrent: ENDPOINT_CONCURRENCY,
        env: [
            (vars::MAX_IN_FLIGHT, MAX_IN_FLIGHT.to_string()),
            (vars::REQUEST_TTL_SECONDS, TTL_SECONDS.to_string()),
            (vars::DEFER_BASE_SECONDS, "1".to_string()),
            (vars::DEFER_MAX_SECONDS, defer_max.as_secs().to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect(),
        ..StackOptions::default()
    })
    .await?;
    ensure!(stack.submitter.settings.max_in_flight == MAX_IN_FLIGHT as u32);
    stack
        .emulator_faults(&format!(
            r#"{{"processing_delay_ms": {}}}"#,
            delay.as_millis()
        ))
        .await?;
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| tone_wav(300.0 + 200.0 * f64::from(i), 8_000, 1.0))
        .collect();

    let started = Instant::now();
    stream::iter(0..files)
        .map(|i| {
            let stack = &stack;
            let body = bodies[i % bodies.len()].clone();
            async move {
                stack
                    .upload(
                        &format!("{INPUT_PREFIX}burst/{i:05}.wav"),
                        body,
                        Some("audio/wav"),
                        &[],
                    )
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let uploaded = started.elapsed();

    // Safety nets, not timings: three times the endpoint time plus a minute and half a
    // second a file, and no progress for a minute and a half means something is stuck.
    let deadline =
        endpoint_time * 3 + Duration::from_secs(60) + Duration::from_millis(500) * files as u32;
    let stall_after = Duration::from_secs(90);
    let max_counted = AtomicU64::new(0);
    let progress = Mutex::new((0, Instant::now()));
    let completed_all = wait::until_every(
        "every upload of the burst to be COMPLETED",
        deadline,
        Duration::from_secs(1),
        || async {
            max_counted.fetch_max(stack.store.in_flight().await?, Ordering::Relaxed);
            let completed = stack.count_status(JobStatus::Completed).await?;
            if completed >= files as u64 {
                return Ok(Some(()));
            }
            let still = {
                let mut progress = progress.lock().expect("progress");
                if completed > progress.0 {
                    *progress = (completed, Instant::now());
                }
                progress.1.elapsed()
            };
            ensure!(still <= stall_after, "no progress for {still:?}");
            Ok(None)
        },
    )
    .await;
    if let Err(error) = completed_all {
        let mut counts = Vec::new();
        for status in JobStatus::ALL {
            counts.push((status, stack.count_status(status).await?));
        }
        bail!(
            "{error}: {counts:?} of {files} after {:?}, emulator {}, dead letters {} + {}, \
             table counter at most {} (now {})",
            started.elapsed(),
            stack.emulator_stats().await?,
            stack.queue_depth(&stack.resources.submit_dlq).await?,
            stack.queue_depth(&stack.resources.results_dlq).await?,
            max_counted.load(Ordering::Relaxed),
            stack.store.in_flight().await?,
        );
    }
    let wall = started.elapsed();

    // The figures first (a failing run shows them too), then the guarantees.
    let stats = stack.emulator_stats().await?;
    let in_flight_after = stack.store.in_flight().await?;
    let max_counted = max_counted.into_inner();
    let submit_dead = stack.queue_depth(&stack.resources.submit_dlq).await?;
    let results_dead = stack.queue_depth(&stack.resources.results_dlq).await?;
    let per_file = stack.notifications_per_file(DEADLINE).await?;
    let notified: usize = per_file.values().sum();
    let retried_publishes = notified - per_file.len();
    eprintln!(
        "leveling: {files} uploads at once, endpoint {ENDPOINT_CONCURRENCY} at a time, \
         {} ms each ({:.0} s of endpoint time, TTL {TTL_SECONDS} s), limit {MAX_IN_FLIGHT}: \
         {} COMPLETED, {} expired, {} inferences accepted, at most {} accepted and \
         unfinished (emulator) / {max_counted} (table counter), {} dead letters, \
         {notified} notifications ({retried_publishes} second copies); {:.1} s ({:.2} files/s), uploaded in {:.1} s",
        delay.as_millis(),
        endpoint_time.as_secs_f64(),
        counter(&stats, "completed"),
        counter(&stats, "expired"),
        counter(&stats, "accepted"),
        counter(&stats, "max_outstanding_seen"),
        submit_dead + results_dead,
        wall.as_secs_f64(),
        files as f64 / wall.as_secs_f64(),
        uploaded.as_secs_f64(),
    );
    ensure!(counter(&stats, "expired") == 0, "nothing expired: {stats}");
    ensure!(
        counter(&stats, "max_outstanding_seen") <= MAX_IN_FLIGHT,
        "the endpoint never held more than the limit: {stats}"
    );
    ensure!(
        max_counted <= MAX_IN_FLIGHT,
        "the counter never passed the limit"
    );
    ensure!(
        in_flight_after == 0,
        "every slot given back: {in_flight_after} held"
    );
    ensure!(
        counter(&stats, "accepted") == files as u64,
        "one inference each: {stats}"
    );
    for status in [JobStatus::Submitted, JobStatus::Failed, JobStatus::Rejected] {
        ensure!(stack.count_status(status).await? == 0, "{status} jobs");
    }
    ensure!(
        submit_dead == 0 && results_dead == 0,
        "nothing dead-lettered"
    );
    // Every notification is published before its job flips to COMPLETED: every file was
    // notified. Delivery is at least once (an SDK retry after a lost answer publishes again),
    // so a rare second copy is allowed; a systematic one is not.
    ensure!(
        per_file.len() == files,
        "every file notified: {} of {files}",
        per_file.len()
    );
    ensure!(
        retried_publishes * 100 <= files,
        "{retried_publishes} second notifications for {files} files"
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_poison_message_alone_is_dead_lettered_and_completes_after_the_redrive() -> Result<()> {
    // A failed message returns after 2 s and is dead-lettered on its fourth receive.
    let mut stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "poison".into(),
        event_sources: false,
        visibility_timeout: Duration::from_secs(2),
        max_receive_count: 3,
        ..StackOptions::default()
    })
    .await?;
    let tone = tone_wav(440.0, 8_000, 1.0);
    let poison = S3Uri::new(
        &stack.resources.bucket,
        format!("{INPUT_PREFIX}poison/bad.wav"),
    )?;
    // The poison: its job item is corrupt, so every receive fails (permanently) until an
    // operator repairs it.
    let item = stack
        .store
        .client()
        .put_item()
        .table_name(stack.store.table());
    item.item(schema::PK, AttributeValue::S(schema::file_pk(&poison)))
        .item(schema::SK, AttributeValue::S(schema::JOB_SK.into()))
        .item("status", AttributeValue::S("NOT-A-STATUS".into()))
        .send()
        .await
        .context("writing the corrupt item")?;
    let mut good = Vec::new();
    for n in 0..5 {
        let key = format!("{INPUT_PREFIX}poison/good-{n}.wav");
        good.push(
            stack
                .upload(&key, tone.clone(), Some("audio/wav"), &[])
                .await?,
        );
    }
    stack
        .upload(poison.key(), tone, Some("audio/wav"), &[])
        .await?;
    // The six notifications and S3's test event wait in the queue; then the event source
    // starts, one poller taking up to ten at a time: they arrive as one batch.
    wait::until("the seven messages to be queued", DEADLINE, || async {
        Ok((stack.queue_depth(&stack.resources.submit_queue).await? >= 7).then_some(()))
    })
    .await?;
    stack
        .start_event_sources(
            Mapping {
                batch_size: 10,
                max_concurrency: 1,
            },
            Mapping::default(),
        )
        .await?;

    for file in &good {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed, "{file}");
    }
    wait::until("the poison to be dead-lettered", DEADLINE, || async {
        Ok((stack.queue_depth(&stack.resources.submit_dlq).await? == 1).then_some(()))
    })
    .await?;
    let dead = stack.peek(&stack.resources.submit_dlq).await?;
    assert_eq!(dead.len(), 1, "only the poison: {dead:?}");
    let letter: Value = serde_json::from_str(&dead[0].1)?;
    let key = letter["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .context("the S3 notification, unchanged")?;
    assert_eq!(
        cochl_core::keys::decode_event_key(key)?,
        poison.key(),
        "{letter}"
    );
    assert!(stack.store.get_job(&poison).await.is_err(), "still corrupt");
    assert_eq!(stack.queue_depth(&stack.resources.results_dlq).await?, 0);

    // The operator repairs the item and moves the dead-letter queue back.
    stack
        .store
        .client()
        .delete_item()
        .table_name(stack.store.table())
        .key(schema::PK, AttributeValue::S(schema::file_pk(&poison)))
        .key(schema::SK, AttributeValue::S(schema::JOB_SK.into()))
        .send()
        .await
        .context("repairing the item")?;
    let moved = stack
        .redrive(&stack.resources.submit_dlq, &stack.resources.submit_queue)
        .await?;
    assert_eq!(moved, 1);
    let job = stack.wait_terminal(&poison, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(stack.queue_depth(&stack.resources.submit_dlq).await?, 0);
    let stats = stack.emulator_stats().await?;
    assert_eq!(
        counter(&stats, "accepted"),
        6,
        "one inference each: {stats}"
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_requests_are_resubmitted_and_notified_once_for_their_final_outcome() -> Result<()>
{
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "expiry".into(),
        ..StackOptions::default()
    })
    .await?;
    let resubmits = stack.results.settings.max_expiry_resubmits;
    ensure!(resubmits == 2, "the default: {resubmits}");
    let tone = tone_wav(440.0, 8_000, 1.0);

    // The first request expires in the endpoint's queue; its resubmission completes.
    stack
        .emulator_faults(r#"{"expire_next_inferences": 1}"#)
        .await?;
    let once = stack
        .upload(
            &format!("{INPUT_PREFIX}expiry/once.wav"),
            tone.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    let job = stack.wait_terminal(&once, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(job.expiry_resubmits, 1);
    let id = job.inference_id.clone().context("inference id")?;
    assert!(id.ends_with("-r1"), "the resubmission's own id: {id}");
    let stats = stack.emulator_stats().await?;
    assert_eq!(
        (counter(&stats, "expired"), counter(&stats, "accepted")),
        (1, 2)
    );

    // Every attempt expires: after the last resubmission the job ends FAILED.
    stack
        .emulator_faults(&format!(
            r#"{{"expire_next_inferences": {}}}"#,
            resubmits + 1
        ))
        .await?;
    let never = stack
        .upload(
            &format!("{INPUT_PREFIX}expiry/never.wav"),
            tone,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let job = stack.wait_terminal(&never, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.reason_code.as_deref(), Some("request_expired"));
    assert_eq!(job.expiry_resubmits, resubmits);
    let stats = stack.emulator_stats().await?;
    assert_eq!(
        (counter(&stats, "expired"), counter(&stats, "accepted")),
        (1 + u64::from(resubmits) + 1, 2 + u64::from(resubmits) + 1)
    );

    // One detection notification per file, for its final outcome only.
    let mut seen = Vec::new();
    let completed = stack.detection_for(&once, &mut seen, DEADLINE).await?;
    assert_eq!(completed["status"], "COMPLETED");
    let failed = stack.detection_for(&never, &mut seen, DEADLINE).await?;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["reason_code"], "request_expired");
    seen.extend(
        stack
            .receive(
                &stack.resources.detections_queue,
                10,
                Duration::from_secs(2),
            )
            .await?,
    );
    assert!(seen.is_empty(), "no other notification: {seen:?}");
    assert_eq!(stack.store.in_flight().await?, 0, "every slot given back");
    stack.shutdown().await;
    Ok(())
}

//! End-to-end tests on the local stack: moto (S3, SQS, SNS, DynamoDB), the SageMaker async
//! emulator, and the three functions' handlers wired as in AWS. Every call is a real HTTP
//! call of the real AWS SDK clients on 127.0.0.1.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::demo::{bundled_samples, content_type_for};
use devstack::query::file_document;
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use serde_json::{json, Value};
use testkit::sample;
use testkit::wait::{self, DEADLINE};

/// The `file` a document names.
fn document_file(document: &Value) -> Result<String> {
    Ok(document["file"].as_str().context("a file")?.to_string())
}

fn tag_names(document: &Value) -> BTreeSet<String> {
    document["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What a file document says of one tag, apart from the emulator's probabilities.
#[derive(Debug, PartialEq)]
struct TagShape {
    name: String,
    windows: u64,
    detected_seconds: f64,
    segments: Vec<(f64, f64)>,
}

/// The tags of a bundled sample worked out from the windows samples/README.md documents for
/// it: window `i` covers `[i, i + 2)` s (Cochl's 2 s windows, 1 s hop); consecutive windows of
/// a tag make one segment from the first's start to the last's end; detected seconds are the
/// length of the windows' union. Tags in name order, as documents list them.
fn expected_shape(sample: &str) -> Vec<TagShape> {
    let windows: &[(&str, &[u64])] = match sample {
        // 3 windows, Tone in each: [0,2) [1,3) [2,4) -> 0-4 s, 4 s.
        "tone-1khz.wav" => &[("Tone", &[0, 1, 2])],
        // Tone, Tone, Noise, Noise: Noise [2,4) [3,5) -> 2-5 s; Tone [0,2) [1,3) -> 0-3 s.
        "street.mp3" => &[("Noise", &[2, 3]), ("Tone", &[0, 1])],
        // 3 windows, Knock in each -> 0-4 s.
        "knocks.ogg" => &[("Knock", &[0, 1, 2])],
        // 2 windows, Tone in each -> 0-3 s.
        "tone-440hz-s16le-16k-mono.pcm" => &[("Tone", &[0, 1])],
        "silence.wav" => &[],
        other => panic!("no expectation for the sample {other}"),
    };
    windows
        .iter()
        .map(|(name, indices)| {
            let mut segments: Vec<(f64, f64)> = Vec::new();
            for &i in *indices {
                let (start, end) = (i as f64, i as f64 + 2.0);
                match segments.last_mut() {
                    Some(last) if last.1 >= start => last.1 = end,
                    _ => segments.push((start, end)),
                }
            }
            TagShape {
                name: name.to_string(),
                windows: indices.len() as u64,
                detected_seconds: segments.iter().map(|(s, e)| e - s).sum(),
                segments,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_format_is_analysed_recorded_queryable_and_notified() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let samples = bundled_samples()?;
    let mut files = Vec::new();
    for path in &samples {
        let name = path.file_name().and_then(|n| n.to_str()).context("name")?;
        let file = stack
            .upload(
                &format!("{INPUT_PREFIX}{name}"),
                std::fs::read(path)?,
                content_type_for(path).as_deref(),
                &[],
            )
            .await?;
        files.push((name.to_string(), file));
    }
    let mut documents = Vec::new();
    for (name, file) in &files {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Completed, "{name}: {:?}", job.reason);
        assert!(job.accepted && job.notified, "{name}");
        let document = file_document(&stack, file).await?;
        assert_eq!(document["file"], file.to_string());
        assert_eq!(document["status"], "COMPLETED");
        assert_eq!(
            document["inference_id"].as_str(),
            job.inference_id.as_deref()
        );
        assert!(
            document["length_sec"].as_f64().is_some_and(|l| l > 1.0),
            "{name}: {document}"
        );
        // The job's summary and the per-tag records agree.
        let summary: BTreeSet<String> = job.tags.iter().map(|t| t.name.clone()).collect();
        assert_eq!(tag_names(&document), summary, "{name}");
        // Every tag's segments, windows and seconds exactly as the windows the emulator
        // documents for the sample (samples/README.md) give them.
        let mut found = Vec::new();
        for tag in document["tags"].as_array().context("tags")? {
            let number = |value: &Value, what: &str| {
                value
                    .as_f64()
                    .with_context(|| format!("{name}: {what} is a number in {tag}"))
            };
            let mut segments = Vec::new();
            for segment in tag["segments"].as_array().context("segments")? {
                segments.push((
                    number(&segment["start"], "start")?,
                    number(&segment["end"], "end")?,
                ));
            }
            found.push(TagShape {
                name: tag["name"].as_str().context("a tag name")?.to_string(),
                windows: tag["windows"].as_u64().context("windows")?,
                detected_seconds: number(&tag["detected_seconds"], "detected_seconds")?,
                segments,
            });
        }
        assert_eq!(found, expected_shape(name), "{name}: {document}");
        documents.push((name.clone(), document));
    }
    assert_eq!(documents.len(), 5, "the five bundled samples");

    // One detection notification per file, with the filterable attributes.
    let notifications = stack
        .receive(&stack.resources.detections_queue, files.len(), DEADLINE)
        .await?;
    assert_eq!(notifications.len(), files.len());
    let notified: BTreeSet<String> = notifications
        .iter()
        .filter_map(|n| n["file"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = files.iter().map(|(_, f)| f.to_string()).collect();
    assert_eq!(notified, expected);
    for notification in &notifications {
        assert_eq!(notification["status"], "COMPLETED");
        assert_eq!(notification["bucket"], stack.resources.bucket);
    }
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_file_ends_failed_and_notified() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let file = stack
        .upload(
            "incoming/broken.wav",
            b"this is not a wave file at all".repeat(100),
            Some("audio/wav"),
            &[],
        )
        .await?;
    let job = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.reason_code.as_deref(), Some("inference_failed"));
    assert!(
        job.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("ClientError")),
        "{:?}",
        job.reason
    );
    let failure = job.failure_location.context("failure location kept")?;
    assert!(failure.key().starts_with("failures/"), "{failure}");
    let document = file_document(&stack, &file).await?;
    assert_eq!(document["status"], "FAILED");
    assert_eq!(document["tags"], json!([]));
    let notifications = stack
        .receive(&stack.resources.detections_queue, 1, DEADLINE)
        .await?;
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0]["status"], "FAILED");
    assert_eq!(notifications[0]["file"], file.to_string());
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_reason_is_recorded() -> Result<()> {
    let options = StackOptions {
        max_object_bytes: Some(64 * 1024),
        ..StackOptions::default()
    };
    let stack = LocalStack::on_shared_moto(options).await?;
    // (key, bytes, Content-Type, metadata, expected reason code)
    type Case<'a> = (
        &'a str,
        Vec<u8>,
        Option<&'a str>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "incoming/empty.wav",
            Vec::new(),
            Some("audio/wav"),
            vec![],
            "empty_object",
        ),
        (
            "incoming/notes.txt",
            b"hello".to_vec(),
            Some("text/plain"),
            vec![],
            "not_audio",
        ),
        (
            "incoming/noext",
            b"hello".to_vec(),
            None,
            vec![],
            "not_audio",
        ),
        (
            "incoming/raw.pcm",
            vec![0; 3200],
            None,
            vec![],
            "raw_pcm_without_parameters",
        ),
        (
            "incoming/bad-params.pcm",
            vec![0; 3200],
            Some("audio/x-raw; rate=16000; format=s8; channels=1"),
            vec![],
            "invalid_pcm_parameters",
        ),
        (
            "incoming/loud sensitivity.wav",
            vec![1; 100],
            Some("audio/wav"),
            vec![("sensitivity", r#"{"default_sensitivity": 9}"#)],
            "invalid_sensitivity",
        ),
        (
            "incoming/too big.wav",
            vec![1; 64 * 1024 + 1],
            Some("audio/wav"),
            vec![],
            "too_large",
        ),
    ];
    let mut files = Vec::new();
    for (key, bytes, content_type, metadata, code) in &cases {
        let file = stack
            .upload(key, bytes.clone(), *content_type, metadata)
            .await?;
        files.push((file, *code));
    }
    for (file, code) in &files {
        let job = stack.wait_terminal(file, DEADLINE).await?;
        assert_eq!(job.status, JobStatus::Rejected, "{file}");
        assert_eq!(
            job.reason_code.as_deref(),
            Some(*code),
            "{file}: {:?}",
            job.reason
        );
        assert!(job.reason.as_deref().is_some_and(|r| !r.is_empty()));
        assert_eq!(job.inference_id, None);
        let document = file_document(&stack, file).await?;
        assert_eq!(document["status"], "REJECTED");
        assert_eq!(document["reason_code"], *code);
    }
    // Nothing was sent to the endpoint.
    assert!(stack.keys_under("results/").await?.is_empty());
    assert!(stack.keys_under("failures/").await?.is_empty());
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_policy_subscriber_receives_only_matching_notifications() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let queue = stack
        .subscribed_queue(
            &stack.resources.detections_topic,
            "tone-only",
            true,
            Some(r#"{"tags": ["Tone"]}"#),
        )
        .await?;
    let tone = stack
        .upload(
            "incoming/tone.wav",
            sample("tone-1khz.wav")?,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let silence = stack
        .upload(
            "incoming/quiet.wav",
            sample("silence.wav")?,
            Some("audio/wav"),
            &[],
        )
        .await?;
    for file in [&tone, &silence] {
        assert_eq!(
            stack.wait_terminal(file, DEADLINE).await?.status,
            JobStatus::Completed
        );
    }
    // Both were published (the unfiltered queue sees two) ...
    let all = stack
        .receive(&stack.resources.detections_queue, 2, DEADLINE)
        .await?;
    assert_eq!(all.len(), 2);
    // ... and the filtered subscriber got only the tone, and nothing more arrives.
    let filtered = stack.receive(&queue, 2, Duration::from_secs(3)).await?;
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    assert_eq!(filtered[0]["file"], tone.to_string());
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_s3_and_sns_deliveries_change_nothing() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    // Capture SageMaker's notifications as delivered.
    let capture = stack
        .subscribed_queue(&stack.resources.success_topic, "capture", false, None)
        .await?;

    let file = stack
        .upload(
            "incoming/dup test.wav",
            sample("tone-1khz.wav")?,
            Some("audio/wav"),
            &[],
        )
        .await?;
    let job = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Completed);
    let before = file_document(&stack, &file).await?;
    let notifications = stack
        .receive(&stack.resources.detections_queue, 1, DEADLINE)
        .await?;
    assert_eq!(notifications.len(), 1);
    let envelopes = stack.receive(&capture, 1, DEADLINE).await?;
    assert_eq!(envelopes.len(), 1);

    // Replay the S3 event (same upload: same ETag and event time) and the SNS
    // notification, each twice, straight into the handlers.
    let s3_event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": cochl_core::time::format_millis(job.version.event_time_ms),
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": file.bucket()},
               "object": {"key": cochl_core::keys::encode_event_key(file.key()),
                          "eTag": job.version.etag.clone(), "size": 1}}
    }]});
    let sns_event = devstack::payload::to_payload(
        devstack::payload::Delivery::SnsToLambda,
        &envelopes[0].to_string(),
    );
    for _ in 0..2 {
        let outcomes = cochl_submit::handle(&stack.submitter, &s3_event, None).await?;
        assert!(
            matches!(outcomes[0], cochl_submit::RecordOutcome::Duplicate { .. }),
            "{outcomes:?}"
        );
        let outcomes = cochl_on_result::handle(&stack.results, &sns_event, None).await?;
        assert!(
            matches!(
                outcomes[0],
                cochl_on_result::NotificationOutcome::Duplicate { .. }
            ),
            "{outcomes:?}"
        );
    }
    assert_eq!(
        stack.keys_under("results/").await?.len(),
        1,
        "exactly one inference"
    );
    let after = file_document(&stack, &file).await?;
    assert_eq!(before, after, "records unchanged");
    let again = stack
        .receive(&stack.resources.detections_queue, 1, Duration::from_secs(2))
        .await?;
    assert!(
        again.is_empty(),
        "no second detection notification: {again:?}"
    );
    let job_after = stack.store.get_job(&file).await?.context("job")?;
    assert_eq!(job_after.revision, job.revision);
    assert_eq!(
        S3Uri::parse(&document_file(&after)?)?,
        file,
        "the document names the file"
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_an_outage_ends_in_the_dead_letter_queue_then_redrives(
) -> Result<()> {
    // Messages return after 2 s and go to the dead-letter queue on their third receive.
    let options = StackOptions {
        max_attempts: Some(3),
        visibility_timeout: Duration::from_secs(2),
        max_receive_count: 2,
        ..StackOptions::default()
    };
    let stack = LocalStack::on_shared_moto(options).await?;
    let tone = sample("tone-1khz.wav")?;

    // Two throttled calls: the submit function's own backoff absorbs them.
    stack.emulator_faults(r#"{"throttle_next": 2}"#).await?;
    let file = stack
        .upload(
            "incoming/throttled.wav",
            tone.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    assert_eq!(
        stack.wait_terminal(&file, DEADLINE).await?.status,
        JobStatus::Completed
    );
    let stats = stack.emulator_stats().await?;
    assert_eq!(stats["throttled"], 2, "{stats}");
    assert_eq!(stats["accepted"], 1, "{stats}");

    // A lasting outage: every attempt of every receive fails; after maxReceiveCount
    // receives the queue's redrive policy moves the S3 notification, unchanged, to the
    // dead-letter queue.
    stack
        .emulator_faults(r#"{"unavailable_next": 1000}"#)
        .await?;
    let outage = stack
        .upload("incoming/outage.wav", tone, Some("audio/wav"), &[])
        .await?;
    wait::until(
        "the outage's event to be dead-lettered",
        DEADLINE,
        || async { Ok((stack.queue_depth(&stack.resources.submit_dlq).await? == 1).then_some(())) },
    )
    .await?;
    let job = stack.store.get_job(&outage).await?.context("claimed")?;
    assert_eq!(job.status, JobStatus::Submitted);
    assert!(!job.accepted, "never accepted, so a redrive resumes it");

    // After the outage, the move task (the local `start-message-move-task`) puts the
    // event back on the submit queue, and it completes the file.
    stack.emulator_admin("POST", "/_emulator/reset", "").await?;
    let moved = stack
        .redrive(&stack.resources.submit_dlq, &stack.resources.submit_queue)
        .await?;
    assert_eq!(moved, 1);
    assert_eq!(
        stack.wait_terminal(&outage, DEADLINE).await?.status,
        JobStatus::Completed
    );
    assert_eq!(stack.queue_depth(&stack.resources.submit_dlq).await?, 0);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_writes_a_report_with_each_file_s_table_and_timeline() -> Result<()> {
    let report =
        std::env::temp_dir().join(format!("cochl-demo-{}/report.html", std::process::id()));
    let documents = devstack::demo::run_demo(devstack::demo::DemoArgs {
        json: true,
        margin: 0,
        files: Vec::new(),
        report: Some(report.clone()),
    })
    .await?;
    let html = std::fs::read_to_string(&report)?;
    assert_eq!(html.matches("<section>").count(), bundled_samples()?.len());
    assert_eq!(documents.len(), bundled_samples()?.len());
    for document in &documents {
        let file = document["file"].as_str().context("a file")?;
        assert!(html.contains(&format!("<h2>{file}</h2>")), "{file}");
        // Each timeline is inline, with one lane per tag of the document.
        let lanes = document["tags"].as_array().map_or(0, Vec::len);
        let section = html
            .split("<section>")
            .find(|s| s.contains(&format!("<h2>{file}</h2>")))
            .context("the file's section")?;
        assert!(section.contains("<svg "), "{file}");
        assert_eq!(section.matches("class=\"lane\"").count(), lanes, "{file}");
    }
    let _ = std::fs::remove_dir_all(report.parent().context("a directory")?);
    Ok(())
}

/// The injected-fault count of one operation (`sns.Publish`).
fn injected(injector: &testkit::faults::FaultInjector, operation: &str) -> u64 {
    injector
        .counts()
        .get(operation)
        .map_or(0, |count| count.injected)
}

/// A stack whose functions' SNS Publish calls all fail (until the injector is disabled), with
/// messages back 2 s after a failed attempt and never dead-lettered within a test.
async fn stack_where_publish_fails(
    name: &str,
) -> Result<(LocalStack, testkit::faults::FaultInjector)> {
    use testkit::faults::{FaultInjector, FaultMode, FaultRule};
    let injector = FaultInjector::new(
        vec![FaultRule {
            service: "sns".into(),
            operation: Some("Publish".into()),
            ratio: 1.0,
            mode: FaultMode::InternalError,
        }],
        1,
    );
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: name.into(),
        function_faults: Some(injector.clone()),
        visibility_timeout: Duration::from_secs(2),
        max_receive_count: 50,
        ..StackOptions::default()
    })
    .await?;
    Ok((stack, injector))
}

/// Publish before commit, through the queues: while every SNS Publish fails, on-result's
/// attempts leave the job SUBMITTED and not notified (had it committed first, the job would
/// say COMPLETED with no notification out, and its retry, a duplicate, would publish
/// nothing); once Publish works, the redelivered notification publishes exactly once and
/// only then commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_leaves_the_job_uncommitted_and_the_retry_notifies_once() -> Result<()> {
    let (stack, injector) = stack_where_publish_fails("publish-first").await?;
    let file = stack
        .upload(
            &format!("{INPUT_PREFIX}publish-first.wav"),
            sample("tone-1khz.wav")?,
            Some("audio/wav"),
            &[],
        )
        .await?;
    wait::until("on-result to have tried to publish", DEADLINE, || async {
        Ok((injected(&injector, "sns.Publish") >= 1).then_some(()))
    })
    .await?;
    // Every Publish fails while the rule holds, so whatever attempt is running now or ran
    // before cannot have notified; the job must not be committed either.
    let job = stack.store.get_job(&file).await?.context("the job")?;
    assert_eq!(job.status, JobStatus::Submitted, "{job:?}");
    assert!(!job.notified, "{job:?}");
    // More attempts (the SDK's retries, then the notification back after its 2 s visibility
    // timeout) fail the same way and still commit nothing.
    let first = injected(&injector, "sns.Publish");
    wait::until("a second attempt to publish", DEADLINE, || async {
        Ok((injected(&injector, "sns.Publish") > first).then_some(()))
    })
    .await?;
    let job = stack.store.get_job(&file).await?.context("the job")?;
    assert_eq!(job.status, JobStatus::Submitted, "{job:?}");
    let nothing = stack
        .receive(&stack.resources.detections_queue, 1, Duration::ZERO)
        .await?;
    assert!(nothing.is_empty(), "nothing published yet: {nothing:?}");

    injector.set_enabled(false);
    let job = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert!(job.notified, "{job:?}");
    let per_file = stack
        .notifications_per_file(Duration::from_secs(10))
        .await?;
    assert_eq!(
        per_file,
        std::collections::BTreeMap::from([(file.to_string(), 1)]),
        "exactly one notification, from the attempt that committed"
    );
    stack.shutdown().await;
    Ok(())
}

/// A request the endpoint refuses (a 1,024-byte key makes `InputLocation` too long) is
/// recorded FAILED; while Publish fails it is not notified, and the submit queue's
/// redelivery, a duplicate of a FAILED job not yet notified, publishes the notification:
/// once, without calling the endpoint again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_notified_by_its_redelivery_after_a_failed_publish() -> Result<()> {
    let (stack, injector) = stack_where_publish_fails("refused-e2e").await?;
    let key = format!(
        "{INPUT_PREFIX}{}.wav",
        "k".repeat(1024 - INPUT_PREFIX.len() - 4)
    );
    let file = stack
        .upload(&key, sample("tone-1khz.wav")?, Some("audio/wav"), &[])
        .await?;
    let job = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.reason_code.as_deref(), Some("endpoint_refused"));
    // The SNS client makes at most 3 attempts per Publish (the SDK's standard retries), so a
    // fourth failed Publish comes from a redelivery, a duplicate of the FAILED job: the path
    // that must publish the missing notification.
    wait::until(
        "a redelivery to have tried to publish",
        DEADLINE,
        || async { Ok((injected(&injector, "sns.Publish") >= 4).then_some(())) },
    )
    .await?;
    let job = stack.store.get_job(&file).await?.context("the job")?;
    assert!(!job.notified, "every Publish fails: {job:?}");
    let calls = stack.emulator_stats().await?;

    injector.set_enabled(false);
    let job = stack
        .wait_job(&file, "to be notified", DEADLINE, |job| job.notified)
        .await?;
    assert_eq!(job.status, JobStatus::Failed);
    let bodies = stack
        .drain(&stack.resources.detections_queue, Duration::from_secs(10))
        .await?;
    assert_eq!(bodies.len(), 1, "one notification: {bodies:?}");
    let notification: Value = serde_json::from_str(&bodies[0])?;
    assert_eq!(notification["file"], file.to_string());
    assert_eq!(notification["status"], "FAILED");
    assert_eq!(notification["reason_code"], "endpoint_refused");
    assert_eq!(
        stack.emulator_stats().await?,
        calls,
        "the redelivery published without calling the endpoint again"
    );
    stack.shutdown().await;
    Ok(())
}

/// A new upload of a COMPLETED file deletes the old analysis' tag items itself (submit, not
/// only on-result): here the new upload is REJECTED (a bad sensitivity), so on-result never
/// runs for it, and the old items must still be gone from the table, and so from the
/// by-tag index built from them, and the file gone from the old tag's listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_upload_deletes_the_superseded_analysis_tag_items() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "supersede".into(),
        ..StackOptions::default()
    })
    .await?;
    let key = format!("{INPUT_PREFIX}replaced.wav");
    let tone = sample("tone-1khz.wav")?;
    let file = stack
        .upload(&key, tone.clone(), Some("audio/wav"), &[])
        .await?;
    let first = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(first.status, JobStatus::Completed);
    let first_id = first
        .inference_id
        .clone()
        .context("an inference")?
        .to_string();
    assert_eq!(
        stack.tag_items(&file).await?,
        [("Tone".to_string(), first_id.clone())],
        "the first analysis found a tone"
    );

    stack
        .upload(
            &key,
            tone,
            Some("audio/wav"),
            &[("sensitivity", r#"{"default_sensitivity": 9}"#)],
        )
        .await?;
    let second = stack
        .wait_job(&file, "to be rejected", DEADLINE, |job| {
            job.status == JobStatus::Rejected
        })
        .await?;
    assert_eq!(second.reason_code.as_deref(), Some("invalid_sensitivity"));
    assert_eq!(
        stack.tag_items(&file).await?,
        [],
        "the superseded analysis' items are gone"
    );
    let (status, listing) = devstack::query::get(&stack, "/tags/Tone/files").await?;
    assert_eq!(status, 200);
    assert_eq!(listing["files"], json!([]), "{listing}");
    stack.shutdown().await;
    Ok(())
}

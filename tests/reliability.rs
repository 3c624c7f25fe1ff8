//! Reliability of the pipeline on the local stack (moto, the SageMaker emulator, the
//! functions' real handlers), issue 6:
//!
//! - `replayed_duplicated_and_reordered_events_change_nothing` proves that at-least-once,
//!   reordered delivery is harmless: every S3 event and every SageMaker notification of a
//!   run (several formats, one key uploaded twice, a real inference failure), plus a
//!   hand-made failure notification delivered before its file's S3 event and a success
//!   notification for an inference nobody submitted, replayed 2 or 3 times each in a seeded
//!   shuffled order into `cochl_submit::handle` and `cochl_on_result::handle`, start no
//!   second inference, leave every file's query document and the tag listing exactly as
//!   they were, keep the newer upload of the key, and publish no second detection
//!   notification. The seed is printed; set `RELIABILITY_SEED` to replay the same order.
//! - `a_burst_of_uploads_all_complete_with_one_inference_each` proves that a burst of
//!   uploads (150 in `make test`; its soak twin, run by `make soak`, 1,000;
//!   `COCHL_LOAD_UPLOADS` sets either) through the whole stack, with the emulator's
//!   concurrency limit and FIFO queue and a share of throttled calls, all end COMPLETED
//!   within a bounded deadline with exactly one inference each, every file notified, and
//!   nothing dead-lettered (admission control has room for the whole burst here). It prints its figures (uploads, completed, dead
//!   letters, retried calls, seconds, files/s, deepest emulator queue seen); nothing is
//!   timed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use cochl_aws::dynamo::schema;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use cochl_submit::event::{parse_event, ParsedRecord, SubmitEvent};
use devstack::demo::content_type_for;
use devstack::payload::{to_payload, Delivery};
use devstack::query::{file_document, get};
use devstack::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use testkit::audio::{tone_wav, wav_s16_mono};
use testkit::rng::SplitMix64;
use testkit::wait::{self, DEADLINE};

/// White noise (the emulator's rule tags it `Noise`).
fn noise_wav(seed: u64, rate: u32, seconds: f64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let count = (f64::from(rate) * seconds) as usize;
    let samples: Vec<f64> = (0..count).map(|_| 0.3 * rng.unit()).collect();
    wav_s16_mono(rate, &samples)
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or_default()
}

/// The key an S3 event body names (`None` for `s3:TestEvent`).
fn event_key(body: &str) -> Result<Option<String>> {
    Ok(upload_record(body)?.map(|u| u.key))
}

fn upload_record(body: &str) -> Result<Option<cochl_submit::event::UploadRecord>> {
    match parse_event(&serde_json::from_str(body)?)? {
        SubmitEvent::TestEvent | SubmitEvent::Resubmit(_) | SubmitEvent::Backfill(_) => Ok(None),
        SubmitEvent::Records(records) => match records.into_iter().next() {
            Some(ParsedRecord::Upload(upload)) => Ok(Some(upload)),
            other => bail!("not an upload: {other:?}"),
        },
    }
}

/// The inference id of the upload an S3 event names, by the rule the README states, written
/// out here rather than taken from `InferenceId::for_object`: `cochl-` and the first 40 hex
/// digits of SHA-256 over the bucket, the key, the version id (`v`) or else the ETag without
/// its quotes (`e`), and the sequencer with its trailing zeros trimmed (`s:...`), each field
/// preceded by its length in bytes as 8 bytes big-endian; without a sequencer, the event time
/// in milliseconds (`t:...`).
fn inference_id_of(body: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let event: Value = serde_json::from_str(body)?;
    let s3 = &event["Records"][0]["s3"];
    let text = |value: &Value, what: &str| -> Result<String> {
        Ok(value
            .as_str()
            .with_context(|| format!("{what} in {body}"))?
            .to_string())
    };
    let bucket = text(&s3["bucket"]["name"], "the bucket")?;
    // S3 event keys are form-encoded: `+` is a space, `%XX` a byte.
    let encoded = text(&s3["object"]["key"], "the key")?;
    let mut bytes = Vec::new();
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'+' => bytes.push(b' '),
            b'%' if tail.len() >= 2 => {
                let hex = std::str::from_utf8(&tail[..2])?;
                bytes.push(u8::from_str_radix(hex, 16)?);
                rest = &tail[2..];
                continue;
            }
            other => bytes.push(other),
        }
        rest = tail;
    }
    let key = String::from_utf8(bytes)?;
    let (kind, content) = match s3["object"]["versionId"].as_str() {
        Some(version) if !version.is_empty() => ("v", version.to_string()),
        _ => (
            "e",
            text(&s3["object"]["eTag"], "the ETag")?
                .trim_matches('"')
                .to_string(),
        ),
    };
    // moto's events carry no sequencer: the event time orders them, in ms since the epoch.
    let order = match s3["object"]["sequencer"].as_str() {
        Some(sequencer) => format!("s:{}", sequencer.trim_end_matches('0')),
        None => format!(
            "t:{}",
            epoch_ms(&text(&event["Records"][0]["eventTime"], "the event time")?)?
        ),
    };
    let mut hasher = Sha256::new();
    for field in [
        bucket.as_str(),
        key.as_str(),
        kind,
        content.as_str(),
        order.as_str(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("cochl-{hex}"))
}

/// `2026-12-08T01:55:30.340Z` in milliseconds since 1970, counting days with the proleptic
/// Gregorian calendar (days from civil, era by era of 400 years).
fn epoch_ms(time: &str) -> Result<i64> {
    let number = |range: std::ops::Range<usize>| -> Result<i64> {
        Ok(time.get(range).context("a field")?.parse::<i64>()?)
    };
    ensure!(
        time.len() == 24 && time.ends_with('Z'),
        "an S3 event time: {time}"
    );
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, milli) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// The SageMaker message inside a captured SNS envelope.
fn sagemaker_message(envelope: &str) -> Result<Value> {
    let envelope: Value = serde_json::from_str(envelope)?;
    let message = envelope["Message"].as_str().context("Message")?;
    Ok(serde_json::from_str(message)?)
}

/// An SNS envelope as SNS delivers it to a (non-raw) SQS subscription.
fn sns_envelope(topic_arn: &str, message_id: &str, message: &Value) -> String {
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Subject": null,
        "Message": message.to_string(),
        "Timestamp": "2026-01-01T00:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:x"),
    })
    .to_string()
}

/// A SageMaker notification in its exact shape (docs/cochl-contract.md, "Notifications"): a
/// success names its output object, a failure its reason and failure object.
fn notification_message(
    bucket: &str,
    key: &str,
    content_type: &str,
    inference_id: &str,
    succeeded: bool,
) -> Value {
    let response = if succeeded {
        json!({
            "contentType": "application/json",
            "outputLocation": format!("s3://{bucket}/results/6a1d0f3e-2b7c-4e58-8f90-1c2d3e4f5a6b.out"),
        })
    } else {
        json!({
            "contentType": "text/plain; charset=utf-8",
            "failureLocation": format!("s3://{bucket}/failures/0b6c2a52-1f4e-4d43-9a51-3c0d9f6e7a10-error.out"),
        })
    };
    let mut message = json!({
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:01.000Z",
        "receivedTime": "2026-01-01T00:00:00.000Z",
        "invocationStatus": if succeeded { "Completed" } else { "Failed" },
        "requestParameters": {
            "accept": "application/json",
            "contentType": content_type,
            "endpointName": cochl_emulator::config::DEFAULT_ENDPOINT_NAME,
            "inputLocation": format!("s3://{bucket}/{key}"),
        },
        "responseParameters": response,
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    });
    if !succeeded {
        message["failureReason"] = json!("ClientError: Received server error (500) from model. See the SageMaker Endpoint logs in your account for more information.");
    }
    message
}

/// One captured delivery, ready to replay.
#[derive(Debug, Clone)]
struct Captured {
    /// What it is, for messages.
    label: String,
    /// S3 event (submit) or SNS envelope (on-result).
    kind: Delivery,
    /// The queued body.
    body: String,
    /// The outcome a replay must have once the first run is over.
    replay_outcome: &'static str,
}

/// Delivers one captured body to its handler, as its Lambda would receive it, and returns
/// the outcome's name (`submitted`, `duplicate`, `orphan`, ...).
async fn deliver(stack: &LocalStack, delivery: &Captured) -> Result<String> {
    let payload = to_payload(delivery.kind, &delivery.body);
    let deadline = Some(Instant::now() + DEADLINE);
    let outcome = match delivery.kind {
        Delivery::S3 => {
            let outcomes = cochl_submit::handle(&stack.submitter, &payload, deadline)
                .await
                .with_context(|| format!("submit of {}", delivery.label))?;
            ensure!(outcomes.len() == 1, "{}: {outcomes:?}", delivery.label);
            serde_json::to_value(&outcomes[0])?
        }
        Delivery::SnsToLambda => {
            let outcomes = cochl_on_result::handle(&stack.results, &payload, deadline)
                .await
                .with_context(|| format!("on-result of {}", delivery.label))?;
            ensure!(outcomes.len() == 1, "{}: {outcomes:?}", delivery.label);
            serde_json::to_value(&outcomes[0])?
        }
    };
    Ok(outcome["outcome"].as_str().unwrap_or_default().to_string())
}

async fn expect_outcome(stack: &LocalStack, delivery: &Captured, expected: &str) -> Result<()> {
    let outcome = deliver(stack, delivery).await?;
    ensure!(
        outcome == expected,
        "{}: expected {expected}, got {outcome}",
        delivery.label
    );
    Ok(())
}

async fn orphan_recorded(stack: &LocalStack, inference_id: &str) -> Result<bool> {
    let output = stack
        .store
        .client()
        .get_item()
        .table_name(stack.store.table())
        .key(
            schema::PK,
            AttributeValue::S(format!("ORPHAN#{inference_id}")),
        )
        .key(schema::SK, AttributeValue::S("ORPHAN".into()))
        .send()
        .await?;
    Ok(output.item.is_some())
}

/// Everything a user can read about the files: each file's document, and the `Tone` and
/// `Noise` tag listings.
async fn snapshot(stack: &LocalStack, files: &[S3Uri]) -> Result<BTreeMap<String, Value>> {
    let mut documents = BTreeMap::new();
    for file in files {
        documents.insert(file.to_string(), file_document(stack, file).await?);
    }
    for tag in ["Tone", "Noise"] {
        let (status, body) = get(stack, &format!("/tags/{tag}/files?limit=100")).await?;
        ensure!(status == 200, "tag listing answered {status}: {body}");
        documents.insert(format!("tag:{tag}"), body);
    }
    Ok(documents)
}

fn replay_seed() -> u64 {
    std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_duplicated_and_reordered_events_change_nothing() -> Result<()> {
    let seed = replay_seed();
    eprintln!("replay seed: {seed} (RELIABILITY_SEED={seed} replays this order)");
    // No pumps: this test is the Lambda service, delivering what the queues capture.
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "replay".into(),
        event_sources: false,
        ..StackOptions::default()
    })
    .await?;
    let bucket = stack.resources.bucket.clone();
    let samples = testkit::workspace_root().join("samples");

    // --- First run: upload, capture every event, deliver each once. -------------------
    let tone = std::fs::read(samples.join("tone-1khz.wav"))?;
    let mut uploads: Vec<(String, Vec<u8>, Option<String>)> = Vec::new();
    for name in [
        "tone-1khz.wav",
        "street.mp3",
        "knocks.ogg",
        "tone-440hz-s16le-16k-mono.pcm",
    ] {
        let path = samples.join(name);
        uploads.push((
            format!("{INPUT_PREFIX}{name}"),
            std::fs::read(&path)?,
            content_type_for(&path),
        ));
    }
    // The emulator cannot decode it: a real failure notification from the error topic.
    uploads.push((
        format!("{INPUT_PREFIX}broken.wav"),
        b"not a wave file ".repeat(64),
        Some("audio/wav".into()),
    ));
    let twice_key = format!("{INPUT_PREFIX}twice.wav");
    uploads.push((twice_key.clone(), tone, Some("audio/wav".into())));
    let mut files = Vec::new();
    for (key, bytes, content_type) in &uploads {
        files.push(
            stack
                .upload(key, bytes.clone(), content_type.as_deref(), &[])
                .await?,
        );
    }
    // The S3 test event plus one event per upload.
    let bodies = stack
        .receive_raw(&stack.resources.submit_queue, uploads.len() + 1, DEADLINE)
        .await?;
    ensure!(bodies.len() == uploads.len() + 1, "S3 events: {bodies:?}");
    let mut s3_events: HashMap<String, String> = HashMap::new();
    let mut test_event = None;
    for body in bodies {
        match event_key(&body)? {
            Some(key) => {
                ensure!(
                    s3_events.insert(key.clone(), body).is_none(),
                    "two events for {key}"
                );
            }
            None => test_event = Some(body),
        }
    }
    let test_event = test_event.context("the s3:TestEvent")?;

    // A failure notification, in SageMaker's shape, for knocks.ogg's upload, delivered
    // before knocks.ogg's S3 event: no job knows it yet, so it is kept as an orphan.
    let knocks_key = format!("{INPUT_PREFIX}knocks.ogg");
    let knocks_inference = inference_id_of(&s3_events[&knocks_key])?;
    let early_failure = Captured {
        label: "failure notification of knocks.ogg (hand-made)".into(),
        kind: Delivery::SnsToLambda,
        body: sns_envelope(
            &stack.resources.error_topic,
            "4e0f3c7a-0000-4000-8000-000000000001",
            &notification_message(&bucket, &knocks_key, "audio/ogg", &knocks_inference, false),
        ),
        replay_outcome: "duplicate",
    };
    expect_outcome(&stack, &early_failure, "orphan").await?;
    ensure!(orphan_recorded(&stack, &knocks_inference).await?);
    // A success notification for an inference nobody submitted.
    let unknown_inference = "cochl-00000000000000000000000000000000000000ff".to_string();
    let unknown = Captured {
        label: "success notification of an unknown inference".into(),
        kind: Delivery::SnsToLambda,
        body: sns_envelope(
            &stack.resources.success_topic,
            "4e0f3c7a-0000-4000-8000-000000000002",
            &notification_message(
                &bucket,
                &format!("{INPUT_PREFIX}never-uploaded.wav"),
                "audio/wav",
                &unknown_inference,
                true,
            ),
        ),
        replay_outcome: "orphan",
    };
    expect_outcome(&stack, &unknown, "orphan").await?;
    ensure!(orphan_recorded(&stack, &unknown_inference).await?);

    let mut replay = vec![
        early_failure,
        unknown,
        Captured {
            label: "s3:TestEvent".into(),
            kind: Delivery::S3,
            body: test_event,
            replay_outcome: "ignored",
        },
    ];
    expect_outcome(&stack, &replay[2], "ignored").await?;
    let mut inference_of: HashMap<String, String> = HashMap::new();
    for (key, _, _) in &uploads {
        let delivery = Captured {
            label: format!("S3 event of {key}"),
            kind: Delivery::S3,
            body: s3_events[key].clone(),
            replay_outcome: if *key == twice_key {
                "stale"
            } else {
                "duplicate"
            },
        };
        expect_outcome(&stack, &delivery, "submitted").await?;
        inference_of.insert(inference_id_of(&delivery.body)?, key.clone());
        replay.push(delivery);
    }
    let older_inference = inference_id_of(&s3_events[&twice_key])?;

    // The same key again, newer content (noise instead of a tone): it supersedes.
    let newer = Captured {
        label: format!("S3 event of {twice_key} (newer upload)"),
        kind: Delivery::S3,
        body: {
            stack
                .upload(
                    &twice_key,
                    noise_wav(7, 16_000, 3.0),
                    Some("audio/wav"),
                    &[],
                )
                .await?;
            let bodies = stack
                .receive_raw(&stack.resources.submit_queue, 1, DEADLINE)
                .await?;
            bodies
                .into_iter()
                .next()
                .context("the newer upload's event")?
        },
        replay_outcome: "duplicate",
    };
    let older_time = upload_record(&s3_events[&twice_key])?
        .context("upload")?
        .event_time_ms;
    let newer_time = upload_record(&newer.body)?.context("upload")?.event_time_ms;
    ensure!(
        newer_time > older_time,
        "the newer upload's event time ({newer_time}) follows the older one's ({older_time})"
    );
    expect_outcome(&stack, &newer, "submitted").await?;
    let newer_inference = inference_id_of(&newer.body)?;
    inference_of.insert(newer_inference.clone(), twice_key.clone());
    let newer_index = replay.len();
    replay.push(newer);

    // Every inference ends in one notification; the older upload's arrives after the newer
    // upload was submitted and is superseded.
    let accepted = inference_of.len();
    let envelopes = stack
        .receive_raw(&stack.resources.results_queue, accepted, DEADLINE)
        .await?;
    ensure!(envelopes.len() == accepted, "notifications: {envelopes:?}");
    let broken_key = format!("{INPUT_PREFIX}broken.wav");
    let mut older_index = None;
    for envelope in envelopes {
        let message = sagemaker_message(&envelope)?;
        let inference = message["inferenceId"]
            .as_str()
            .context("inferenceId")?
            .to_string();
        let key = inference_of
            .get(&inference)
            .context("a submitted inference")?
            .clone();
        let (first_outcome, replay_outcome) = if inference == older_inference {
            older_index = Some(replay.len());
            ("superseded", "superseded")
        } else if key == broken_key {
            ensure!(message["invocationStatus"] == "Failed", "{message}");
            ("failed", "duplicate")
        } else {
            ("completed", "duplicate")
        };
        let delivery = Captured {
            label: format!(
                "{} notification of {key} ({inference})",
                message["invocationStatus"]
            ),
            kind: Delivery::SnsToLambda,
            body: envelope,
            replay_outcome,
        };
        expect_outcome(&stack, &delivery, first_outcome).await?;
        replay.push(delivery);
    }
    let older_index = older_index.context("the older upload's notification")?;

    let files: Vec<S3Uri> = {
        let mut unique: Vec<S3Uri> = Vec::new();
        for file in files {
            if !unique.contains(&file) {
                unique.push(file);
            }
        }
        unique
    };
    let before = snapshot(&stack, &files).await?;
    for file in &files {
        let document = &before[&file.to_string()];
        let expected = if file.key() == broken_key {
            "FAILED"
        } else {
            "COMPLETED"
        };
        ensure!(document["status"] == expected, "{file}: {document}");
    }
    // The latest upload wins: its inference, its tags, none of the older audio's.
    let twice = &before[&format!("s3://{bucket}/{twice_key}")];
    ensure!(twice["inference_id"] == newer_inference.as_str(), "{twice}");
    let twice_tags: BTreeSet<&str> = twice["tags"]
        .as_array()
        .context("tags")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    ensure!(twice_tags == BTreeSet::from(["Noise"]), "{twice}");
    let tone_listing = before["tag:Tone"].to_string();
    ensure!(!tone_listing.contains("twice.wav"), "{tone_listing}");
    ensure!(tone_listing.contains("tone-1khz.wav"), "{tone_listing}");

    // --- The replay: every delivery 2 or 3 more times, shuffled. -----------------------
    let mut rng = SplitMix64(seed);
    let mut order: Vec<usize> = Vec::new();
    for index in 0..replay.len() {
        for _ in 0..2 + rng.below(2) {
            order.push(index);
        }
    }
    rng.shuffle(&mut order);
    let position = |order: &[usize], index: usize, first: bool| {
        let mut positions = order.iter().enumerate().filter(|(_, i)| **i == index);
        if first {
            positions.next().map(|(p, _)| p)
        } else {
            positions.next_back().map(|(p, _)| p)
        }
    };
    // Explicitly: knocks.ogg's failure notification before knocks.ogg's S3 event, and the
    // older upload's success notification after the newer upload's S3 event.
    let knocks_index = replay
        .iter()
        .position(|d| d.label == format!("S3 event of {knocks_key}"))
        .context("knocks event")?;
    let (failure_at, event_at) = (
        position(&order, 0, true).context("in order")?,
        position(&order, knocks_index, true).context("in order")?,
    );
    if failure_at > event_at {
        order.swap(failure_at, event_at);
    }
    let (older_at, newer_at) = (
        position(&order, older_index, false).context("in order")?,
        position(&order, newer_index, true).context("in order")?,
    );
    if older_at < newer_at {
        order.swap(older_at, newer_at);
    }
    eprintln!(
        "replaying {} deliveries of {} captured events",
        order.len(),
        replay.len()
    );
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for index in &order {
        let delivery = &replay[*index];
        let outcome = deliver(&stack, delivery).await?;
        ensure!(
            outcome == delivery.replay_outcome,
            "seed {seed}: replaying {}: expected {}, got {outcome}",
            delivery.label,
            delivery.replay_outcome
        );
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("replay outcomes: {outcomes:?}");

    // Exactly one inference per upload (the older version's too: it was submitted before
    // the newer one existed), and nothing else ran.
    let stats = stack.emulator_stats().await?;
    ensure!(counter(&stats, "accepted") == accepted as u64, "{stats}");
    ensure!(
        counter(&stats, "completed") == accepted as u64 - 1,
        "{stats}"
    );
    ensure!(counter(&stats, "failed") == 1, "{stats}");
    ensure!(stack.keys_under("results/").await?.len() == accepted - 1);
    ensure!(stack.keys_under("failures/").await?.len() == 1);
    // No new notification reached the queue while replaying.
    ensure!(
        stack
            .receive_raw(&stack.resources.results_queue, 1, Duration::from_millis(1))
            .await?
            .is_empty(),
        "a replay started an inference"
    );

    // The records are exactly what they were.
    let after = snapshot(&stack, &files).await?;
    for (name, document) in &before {
        ensure!(
            after.get(name) == Some(document),
            "seed {seed}: {name} changed:\nbefore {document}\nafter  {:?}",
            after.get(name)
        );
    }

    // One detection notification per finished analysis; none for the superseded one.
    let expected_notified: BTreeSet<String> = inference_of
        .keys()
        .filter(|i| **i != older_inference)
        .cloned()
        .collect();
    let notifications = stack
        .drain(&stack.resources.detections_queue, DEADLINE)
        .await?;
    let mut per_inference: BTreeMap<String, usize> = BTreeMap::new();
    for body in &notifications {
        let notification: Value = serde_json::from_str(body)?;
        let inference = notification["inference_id"]
            .as_str()
            .context("inference_id")?
            .to_string();
        *per_inference.entry(inference).or_default() += 1;
    }
    ensure!(
        per_inference.keys().cloned().collect::<BTreeSet<_>>() == expected_notified,
        "seed {seed}: notified {per_inference:?}, expected {expected_notified:?}"
    );
    ensure!(
        per_inference.values().all(|n| *n == 1),
        "seed {seed}: duplicate detection notifications: {per_inference:?}"
    );
    ensure!(stack.queue_depth(&stack.resources.submit_dlq).await? == 0);
    ensure!(stack.queue_depth(&stack.resources.results_dlq).await? == 0);
    stack.shutdown().await;
    Ok(())
}

/// The burst's size in `make test`: a smaller version of the soak's.
const LOAD_UPLOADS: usize = 150;
/// The burst's size in `make soak` (the README's load figures).
const SOAK_UPLOADS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_uploads_all_complete_with_one_inference_each() -> Result<()> {
    burst(testkit::soak::size("COCHL_LOAD_UPLOADS", LOAD_UPLOADS)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 1,000 uploads, about 5 minutes; `make soak` runs it"]
async fn soak_a_thousand_uploads_all_complete_with_one_inference_each() -> Result<()> {
    burst(testkit::soak::size("COCHL_LOAD_UPLOADS", SOAK_UPLOADS)).await
}

/// `files` uploads at once through the whole stack, throttled now and then: all COMPLETED
/// with one inference and one detection notification each, nothing dead-lettered.
async fn burst(files: usize) -> Result<()> {
    // Safety nets, not timings: a generous overall deadline, and no progress for a minute
    // and a half means something is stuck.
    let deadline_after = Duration::from_secs(120).max(Duration::from_millis(500) * files as u32);
    let stall_after = Duration::from_secs(90);
    // The pipeline's own throughput: admission control has room for the whole burst, so
    // the emulator's FIFO queue takes it (tests/load_leveling.rs holds a burst back).
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "load".into(),
        env: [(
            cochl_aws::settings::MAX_IN_FLIGHT.to_string(),
            files.to_string(),
        )]
        .into(),
        ..StackOptions::default()
    })
    .await?;
    // A share of the invocation calls is throttled (seeded): the submit function's retries
    // are part of the load.
    stack
        .emulator_faults(r#"{"throttle_ratio": 0.05, "seed": 6}"#)
        .await?;
    // Small files: 1 s at 8 kHz, tones of a few pitches and noise.
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| tone_wav(300.0 + 200.0 * f64::from(i), 8_000, 1.0))
        .chain(std::iter::once(noise_wav(11, 8_000, 1.0)))
        .collect();

    let started = Instant::now();
    stream::iter(0..files)
        .map(|i| {
            let stack = &stack;
            let body = bodies[i % bodies.len()].clone();
            async move {
                stack
                    .upload(
                        &format!("{INPUT_PREFIX}load/{i:05}.wav"),
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

    // Polled once a second: counting a thousand jobs is not free for moto.
    let max_queued = AtomicU64::new(0);
    let max_running = AtomicU64::new(0);
    let polls = AtomicU64::new(0);
    let progress = Mutex::new((0, Instant::now()));
    let completed_all = wait::until_every(
        "every upload to be COMPLETED",
        deadline_after.saturating_sub(started.elapsed()),
        Duration::from_secs(1),
        || async {
            let completed = stack.count_status(JobStatus::Completed).await?;
            polls.fetch_add(1, Ordering::Relaxed);
            let stats = stack.emulator_stats().await?;
            max_queued.fetch_max(counter(&stats, "queued"), Ordering::Relaxed);
            max_running.fetch_max(counter(&stats, "max_running_seen"), Ordering::Relaxed);
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
            "{error}: {counts:?} of {files} after {:?}, emulator {}",
            started.elapsed(),
            stack.emulator_stats().await?
        );
    }
    let (max_queued, max_running, polls) = (
        max_queued.into_inner(),
        max_running.into_inner(),
        polls.into_inner(),
    );
    let wall = started.elapsed();

    // The figures first (a failing run shows them too), then the guarantees.
    let stats = stack.emulator_stats().await?;
    let completed = stack.count_status(JobStatus::Completed).await?;
    let submit_dead = stack.queue_depth(&stack.resources.submit_dlq).await?;
    let results_dead = stack.queue_depth(&stack.resources.results_dlq).await?;
    let per_file = stack.notifications_per_file(DEADLINE).await?;
    let notified: usize = per_file.values().sum();
    let retried_publishes = notified - per_file.len();
    let retries = counter(&stats, "throttled") + counter(&stats, "unavailable");
    eprintln!(
        "load: {files} uploads, {completed} COMPLETED, {} dead letters, {retries} retried \
         invocation calls ({} throttled), {:.1} s, {:.1} files/s end to end; uploaded in \
         {:.1} s; {} inferences accepted, {notified} detection notifications ({retried_publishes} second copies); deepest \
         emulator queue seen {max_queued}, at most {max_running} running at once; {polls} \
         status polls",
        submit_dead + results_dead,
        counter(&stats, "throttled"),
        wall.as_secs_f64(),
        files as f64 / wall.as_secs_f64(),
        uploaded.as_secs_f64(),
        counter(&stats, "accepted"),
    );
    for status in [JobStatus::Submitted, JobStatus::Failed, JobStatus::Rejected] {
        ensure!(stack.count_status(status).await? == 0, "{status} jobs");
    }
    ensure!(
        counter(&stats, "accepted") == files as u64,
        "one inference each: {stats}"
    );
    ensure!(counter(&stats, "completed") == files as u64, "{stats}");
    ensure!(stack.keys_under("results/").await?.len() == files);
    ensure!(submit_dead == 0, "submit DLQ");
    ensure!(results_dead == 0, "results DLQ");
    // Every file was notified. (This run injects no Publish failures, so it cannot tell the
    // order of publish and commit; `end_to_end`'s failed-publish test and `faults` do.)
    // Delivery is at least once (an SDK retry after a lost answer publishes again), so a
    // rare second copy is allowed; a systematic one is not.
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

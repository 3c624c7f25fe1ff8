//! Backfill on the local stack: S3 Batch Operations jobs (played by `devstack::batch_job`
//! with the real `LambdaInvoke` messages) over objects no upload event ever announced.
//!
//! - `analyse` over an archive of `COCHL_BACKFILL_OBJECTS` (300 by default) objects outside
//!   the input prefix: every one COMPLETED with exactly one inference; a missing object and
//!   a text file fail permanently with their reasons; the same job again is all "already
//!   analysed" and makes no inference at all.
//! - `reanalyse` with a new sensitivity: one new inference per file, sent with that
//!   sensitivity, the new analysis replaces the old (its tag items only), one notification.
//! - `remerge` with an interval margin of 2: the segments change exactly as the merge rule
//!   says, and no inference is made; a file never analysed and one whose result object is
//!   gone fail permanently with those reasons.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cochl_backfill::ResultCode;
use cochl_core::backfill::BackfillMode;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use devstack::batch_job::{run_job, JobOptions, JobReport, ManifestEntry};
use devstack::query::file_document;
use devstack::stack::{LocalStack, StackOptions};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use testkit::audio::tone_wav;
use testkit::wait;

/// Archive size; `COCHL_BACKFILL_OBJECTS` changes it.
fn archive_size() -> usize {
    std::env::var("COCHL_BACKFILL_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

/// A key as a manifest lists it: URL-encoded (a space is `%20`).
fn manifest_key(key: &str) -> String {
    key.replace(' ', "%20")
}

fn entry(bucket: &str, key: &str) -> ManifestEntry {
    ManifestEntry {
        bucket: bucket.into(),
        key: manifest_key(key),
        version_id: None,
    }
}

/// Uploads objects with plain PutObject, several at once.
async fn put_all(stack: &LocalStack, objects: Vec<(String, Vec<u8>, &str)>) -> Result<()> {
    stream::iter(objects)
        .map(|(key, bytes, content_type)| async move {
            stack.upload(&key, bytes, Some(content_type), &[]).await
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn accepted(stack: &LocalStack) -> Result<u64> {
    stack.emulator_stats().await?["accepted"]
        .as_u64()
        .context("stats.accepted")
}

/// The result codes of a job, by code, with the messages of the failures.
fn failures(report: &JobReport) -> BTreeMap<String, (ResultCode, String)> {
    report
        .tasks
        .iter()
        .filter(|t| t.code != ResultCode::Succeeded)
        .map(|t| (t.entry.key.clone(), (t.code, t.message.clone())))
        .collect()
}

fn count(report: &JobReport, code: ResultCode) -> usize {
    report.counts().get(&code).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_is_analysed_once_reanalysed_on_demand_and_never_twice() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "backfill".into(),
        ..StackOptions::default()
    })
    .await?;
    let bucket = stack.resources.bucket.clone();
    let size = archive_size();
    // Outside the input prefix: no S3 notification fires for these.
    let keys: Vec<String> = (0..size)
        .map(|i| format!("archive/rec {i:03}.wav"))
        .collect();
    let mut objects: Vec<(String, Vec<u8>, &str)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let tone = tone_wav(300.0 + (i % 7) as f64 * 500.0, 8_000, 1.5);
            (key.clone(), tone, "audio/wav")
        })
        .collect();
    objects.push((
        "archive/readme.txt".into(),
        b"not audio".to_vec(),
        "text/plain",
    ));
    put_all(&stack, objects).await?;
    assert_eq!(
        stack.queue_depth(&stack.resources.submit_queue).await?,
        0,
        "no upload event for the archive"
    );

    let mut manifest: Vec<ManifestEntry> = keys.iter().map(|k| entry(&bucket, k)).collect();
    manifest.push(entry(&bucket, "archive/missing.wav"));
    manifest.push(entry(&bucket, "archive/readme.txt"));
    let backfiller = stack.backfiller()?;

    // analyse: every audio object queued, two permanent failures with their reasons.
    let first = run_job(
        &backfiller,
        &manifest,
        &JobOptions::new(BackfillMode::Analyse),
    )
    .await;
    println!("{}", first.summary());
    assert_eq!(
        count(&first, ResultCode::Succeeded),
        size,
        "{}",
        first.summary()
    );
    let failed = failures(&first);
    assert_eq!(failed.len(), 2, "{failed:?}");
    let missing = &failed["archive/missing.wav"];
    assert_eq!(missing.0, ResultCode::PermanentFailure);
    assert!(missing.1.starts_with("object_missing:"), "{missing:?}");
    let text = &failed["archive/readme.txt"];
    assert_eq!(text.0, ResultCode::PermanentFailure);
    assert!(text.1.starts_with("not_audio:"), "{text:?}");

    let files: Vec<S3Uri> = keys
        .iter()
        .map(|k| S3Uri::new(&bucket, k))
        .collect::<Result<_, _>>()?;
    let within = Duration::from_secs(120 + size as u64);
    wait::until("the archive to be analysed", within, || async {
        let done = stack.count_status(JobStatus::Completed).await?;
        Ok((done == size as u64).then_some(()))
    })
    .await?;
    let readme = stack
        .wait_terminal(&S3Uri::new(&bucket, "archive/readme.txt")?, wait::DEADLINE)
        .await?;
    assert_eq!(
        readme.status,
        JobStatus::Rejected,
        "recorded with its reason"
    );
    assert_eq!(readme.reason_code.as_deref(), Some("not_audio"));

    // Exactly one inference per object.
    let inputs = stack.emulator_inputs().await?;
    let expected: BTreeSet<String> = files.iter().map(ToString::to_string).collect();
    let sent: BTreeSet<String> = inputs.iter().cloned().collect();
    assert_eq!(inputs.len(), size, "one inference each, no more");
    assert_eq!(sent, expected);
    let analysed = accepted(&stack).await?;
    assert_eq!(analysed, size as u64);

    // The same job again: all already analysed, nothing queued, no inference.
    let again = run_job(
        &backfiller,
        &manifest,
        &JobOptions::new(BackfillMode::Analyse),
    )
    .await;
    println!("{}", again.summary());
    assert_eq!(count(&again, ResultCode::Succeeded), size);
    for task in again
        .tasks
        .iter()
        .filter(|t| t.code == ResultCode::Succeeded)
    {
        assert_eq!(task.message, "already analysed (COMPLETED)", "{task:?}");
    }
    let failed = failures(&again);
    assert!(failed["archive/readme.txt"].1.starts_with("not_audio:"));
    assert_eq!(stack.queue_depth(&stack.resources.submit_queue).await?, 0);
    assert_eq!(accepted(&stack).await?, analysed, "zero inferences");

    // reanalyse part of the archive with a new sensitivity.
    let chosen = &files[..size.min(20)];
    let mut before: BTreeMap<&S3Uri, String> = BTreeMap::new();
    for file in chosen {
        let job = stack.store.get_job(file).await?.context("a job")?;
        before.insert(file, job.inference_id.context("an id")?.to_string());
    }
    stack
        .drain(&stack.resources.detections_queue, Duration::from_secs(30))
        .await?;
    let sensitivity = r#"{"default_sensitivity": 2}"#;
    let reanalyse = JobOptions {
        sensitivity: Some(sensitivity.into()),
        ..JobOptions::new(BackfillMode::Reanalyse)
    };
    let subset: Vec<ManifestEntry> = manifest[..chosen.len()].to_vec();
    let third = run_job(&backfiller, &subset, &reanalyse).await;
    println!("{}", third.summary());
    assert_eq!(
        count(&third, ResultCode::Succeeded),
        chosen.len(),
        "{}",
        third.summary()
    );
    for (file, old) in &before {
        let job = stack
            .wait_job(file, "to be reanalysed", within, |j| {
                j.status == JobStatus::Completed
                    && j.inference_id.as_ref().map(|i| i.as_str()) != Some(old.as_str())
            })
            .await?;
        assert_eq!(
            job.custom_attributes.as_deref(),
            Some(r#"{"default_sensitivity":2}"#),
            "sent with the run's sensitivity"
        );
        let new = job.inference_id.context("an id")?.to_string();
        let items = stack.tag_items(file).await?;
        ensure!(!items.is_empty(), "{file} has detections");
        for (tag, inference) in &items {
            assert_eq!(
                inference, &new,
                "{file}: the old analysis' item {tag} is gone"
            );
        }
    }
    assert_eq!(
        accepted(&stack).await?,
        analysed + chosen.len() as u64,
        "one new inference per reanalysed file"
    );
    let notified = stack
        .notifications_per_file(Duration::from_secs(30))
        .await?;
    for file in chosen {
        assert_eq!(
            notified.get(&file.to_string()),
            Some(&1),
            "{file}: {notified:?}"
        );
    }
    // The rest of the archive kept its analysis.
    let untouched = &files[chosen.len()..];
    for file in untouched.iter().take(5) {
        let job = stack.store.get_job(file).await?.context("a job")?;
        assert_eq!(job.custom_attributes, None, "{file}");
    }
    stack.shutdown().await;
    Ok(())
}

/// One window of a result document.
fn window(start: u32, tags: Value) -> Value {
    json!({"start_time": start, "end_time": start + 2, "tags": tags})
}

/// 8 s of audio, windows starting at 0..=6 s. Siren at 0 s (0.8), 1 s (0.6) and 4 s (0.9),
/// absent at 2 s and 3 s; Dog_bark at 6 s (0.5) only.
fn scripted_result() -> String {
    let others = json!([{"name": "Others", "probability": 0.0}]);
    json!({
        "metadata": {"length_sec": 8.0},
        "data": [
            window(0, json!([{"name": "Siren", "probability": 0.8}])),
            window(1, json!([{"name": "Siren", "probability": 0.6}])),
            window(2, others.clone()),
            window(3, others.clone()),
            window(4, json!([{"name": "Siren", "probability": 0.9}])),
            window(5, others),
            window(6, json!([{"name": "Dog_bark", "probability": 0.5}])),
        ]
    })
    .to_string()
}

/// `(start, end, max, mean)` of each segment of a tag in a file document.
fn segments(document: &Value, tag: &str) -> Vec<(f64, f64, f64, f64)> {
    let tags = document["tags"].as_array().cloned().unwrap_or_default();
    tags.iter()
        .filter(|t| t["name"] == tag)
        .flat_map(|t| t["segments"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            let number = |name: &str| s[name].as_f64().unwrap_or(f64::NAN);
            (
                number("start"),
                number("end"),
                number("max_probability"),
                number("mean_probability"),
            )
        })
        .collect()
}

fn close(actual: &[(f64, f64, f64, f64)], expected: &[(f64, f64, f64, f64)]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| {
            (a.0 - e.0).abs() < 1e-9
                && (a.1 - e.1).abs() < 1e-9
                && (a.2 - e.2).abs() < 1e-9
                && (a.3 - e.3).abs() < 1e-6
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remerge_applies_a_new_margin_to_stored_results_without_an_inference() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        name_prefix: "remerge".into(),
        ..StackOptions::default()
    })
    .await?;
    let bucket = stack.resources.bucket.clone();
    let wav = tone_wav(440.0, 8_000, 8.0);
    let mut files = Vec::new();
    for name in ["a", "b", "c", "gone"] {
        let (status, _) = stack
            .emulator_admin("POST", "/_emulator/scripted-results", &scripted_result())
            .await?;
        ensure!(status == 200, "scripted result refused");
        let file = stack
            .upload(
                &format!("incoming/remerge {name}.wav"),
                wav.clone(),
                Some("audio/wav"),
                &[],
            )
            .await?;
        stack.wait_terminal(&file, wait::DEADLINE).await?;
        files.push(file);
    }
    // Margin 0: the two windows without Siren close its segment.
    // Siren: windows 0 s and 1 s → [0, 1 + 2] = [0, 3], max 0.8, mean (0.8 + 0.6) / 2 = 0.7;
    //        window 4 s alone → [4, 6], max 0.9, mean 0.9.
    let margin_0 = [(0.0, 3.0, 0.8, 0.7), (4.0, 6.0, 0.9, 0.9)];
    for file in &files {
        let document = file_document(&stack, file).await?;
        let siren = segments(&document, "Siren");
        assert!(close(&siren, &margin_0), "{file}: {siren:?}");
    }
    // The result object of one file disappears.
    let gone = stack
        .store
        .get_job(&files[3])
        .await?
        .and_then(|j| j.output_location)
        .context("an output location")?;
    stack
        .s3
        .delete_object()
        .bucket(gone.bucket())
        .key(gone.key())
        .send()
        .await?;
    let inferences = accepted(&stack).await?;

    let mut backfiller = stack.backfiller()?;
    backfiller.results.settings.merge.default_margin = 2;
    let mut manifest: Vec<ManifestEntry> = files.iter().map(|f| entry(&bucket, f.key())).collect();
    manifest.push(entry(&bucket, "incoming/never analysed.wav"));
    let report = run_job(
        &backfiller,
        &manifest,
        &JobOptions::new(BackfillMode::Remerge),
    )
    .await;
    println!("{}", report.summary());
    assert_eq!(
        count(&report, ResultCode::Succeeded),
        3,
        "{}",
        report.summary()
    );
    let failed = failures(&report);
    assert_eq!(
        failed[&manifest_key(files[3].key())],
        (
            ResultCode::PermanentFailure,
            format!("the result object {gone} is gone")
        )
    );
    let never = &failed["incoming/never%20analysed.wav"];
    assert_eq!(never.0, ResultCode::PermanentFailure);
    assert!(never.1.contains("never analysed"), "{never:?}");

    // Margin 2: the two missing windows (2 s, 3 s) are bridged, one Siren segment from the
    // first window's start to the last's end, [0, 6]; its mean is over the windows that had
    // Siren: (0.8 + 0.6 + 0.9) / 3. Dog_bark, alone at 6 s, is unchanged: [6, 8].
    let margin_2 = [(0.0, 6.0, 0.9, (0.8 + 0.6 + 0.9) / 3.0)];
    for file in &files[..3] {
        let document = file_document(&stack, file).await?;
        let siren = segments(&document, "Siren");
        assert!(close(&siren, &margin_2), "{file}: {siren:?}");
        let dog = segments(&document, "Dog_bark");
        assert!(close(&dog, &[(6.0, 8.0, 0.5, 0.5)]), "{file}: {dog:?}");
    }
    let document = file_document(&stack, &files[3]).await?;
    assert!(
        close(&segments(&document, "Siren"), &margin_0),
        "a failed remerge leaves the detections as they were"
    );
    assert_eq!(accepted(&stack).await?, inferences, "zero inferences");
    stack.shutdown().await;
    Ok(())
}

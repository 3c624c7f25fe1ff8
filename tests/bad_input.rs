//! The bad input matrix, end to end on the local stack (moto for S3, SQS, SNS and DynamoDB,
//! the SageMaker async emulator, the three functions' handlers wired as in AWS).
//!
//! It proves that every bad input ends in one exact, recorded outcome and is never lost:
//! - uploads Cochl cannot take (empty, not audio, unknown extension, raw PCM without or with
//!   bad parameters, too large, bad or oversized sensitivity) are REJECTED with their stable
//!   reason code and a reason naming what to fix, and nothing is sent to the endpoint;
//! - awkward keys (spaces, `+`, `%`, unicode, reserved characters, the longest key SageMaker's
//!   1024-character `InputLocation` can carry) are analysed under their exact key, whichever
//!   way the S3 event encodes them; a 1,024-byte key (S3's maximum) makes `InputLocation` too
//!   long, so SageMaker refuses it and the job ends FAILED `endpoint_refused` with that reason,
//!   notified once like any failed analysis;
//! - truncated and corrupt audio ends as the emulator's real decoder decides (each case says
//!   why);
//! - unusable result documents (malformed, empty, `{}`, NaN, out of range) end FAILED with the
//!   reason notified, while edge-but-valid ones (no windows, 24 hours) complete;
//! - malformed S3 and SNS events land in the dead-letter queue with their content, and a good
//!   record of the same event is still handled.
//!
//! Each family is one table-driven test; a failing case names itself.

use std::time::Duration;

use anyhow::{Context, Result};
use cochl_aws::batch::RecordFailure;
use cochl_core::job::JobStatus;
use cochl_core::keys::encode_event_key;
use devstack::query::file_document;
use devstack::stack::{LocalStack, StackOptions};
use serde_json::{json, Value};
use testkit::rng::SplitMix64;
use testkit::sample;
use testkit::wait::DEADLINE;

/// Deterministic pseudo-random bytes (the workspace's one seeded generator), so corrupt inputs
/// are the same every run.
fn noise_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    (0..len).map(|_| (rng.next_u64() >> 56) as u8).collect()
}

/// What a rejected upload must end as: its stable reason code, and the facts its reason
/// must name so the uploader knows what to fix. The wording is the producing code's own
/// (unit-tested there), so it is not repeated here.
struct Rejected {
    name: &'static str,
    key: String,
    bytes: Vec<u8>,
    content_type: Option<&'static str>,
    metadata: Vec<(&'static str, String)>,
    code: &'static str,
    /// Each must appear in the reason: the key, the offending value, a limit.
    mentions: Vec<String>,
}

impl Rejected {
    fn new(
        name: &'static str,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&'static str>,
        metadata: Vec<(&'static str, String)>,
        code: &'static str,
        mentions: &[&str],
    ) -> Self {
        Rejected {
            name,
            key: key.to_string(),
            bytes,
            content_type,
            metadata,
            code,
            mentions: mentions.iter().map(|s| s.to_string()).collect(),
        }
    }
}

const LIMIT: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejected_upload_records_its_reason_code() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions {
        max_object_bytes: Some(LIMIT),
        ..StackOptions::default()
    })
    .await?;
    let wav = sample("tone-1khz.wav")?;
    let small_wav = wav[..8000].to_vec();
    let pcm = vec![0u8; 3200];
    let jpeg = [&[0xff, 0xd8, 0xff, 0xe0][..], &noise_bytes(600, 7)].concat();
    // 40 tags of 24 characters: each alone is fine, together the header is too long.
    let many_tags: serde_json::Map<String, Value> = (0..40)
        .map(|i| (format!("Long_sound_event_tag_{i:03}"), json!(1)))
        .collect();
    let oversized = json!({ "tags_sensitivity": many_tags }).to_string();
    assert!(oversized.len() > 1024 && oversized.len() < 2000);
    let oversized_len = oversized.len().to_string();
    let too_large = (LIMIT + 1).to_string();
    let limit = LIMIT.to_string();

    let cases = vec![
        Rejected::new(
            "zero-byte wav",
            "incoming/empty.wav",
            Vec::new(),
            Some("audio/wav"),
            vec![],
            "empty_object",
            &[],
        ),
        Rejected::new(
            "zero-byte raw PCM: emptiness is checked first",
            "incoming/empty.pcm",
            Vec::new(),
            None,
            vec![],
            "empty_object",
            &[],
        ),
        Rejected::new(
            "text file",
            "incoming/notes.txt",
            b"meeting notes, not a recording\n".to_vec(),
            Some("text/plain"),
            vec![],
            "not_audio",
            &["incoming/notes.txt", "text/plain"],
        ),
        Rejected::new(
            "JSON file",
            "incoming/result.json",
            br#"{"data": []}"#.to_vec(),
            Some("application/json"),
            vec![],
            "not_audio",
            &["incoming/result.json", "application/json"],
        ),
        Rejected::new(
            "JPEG image",
            "incoming/photo.jpg",
            jpeg,
            Some("image/jpeg"),
            vec![],
            "not_audio",
            &["incoming/photo.jpg", "image/jpeg"],
        ),
        // Without a Content-Type the SDK sends application/octet-stream, which says nothing.
        Rejected::new(
            "unknown extension",
            "incoming/recording.xyz",
            small_wav.clone(),
            None,
            vec![],
            "not_audio",
            &["incoming/recording.xyz", "application/octet-stream"],
        ),
        Rejected::new(
            "no extension",
            "incoming/recording",
            small_wav.clone(),
            None,
            vec![],
            "not_audio",
            &["incoming/recording", "application/octet-stream"],
        ),
        Rejected::new(
            "raw PCM .pcm without parameters",
            "incoming/take.pcm",
            pcm.clone(),
            None,
            vec![],
            "raw_pcm_without_parameters",
            &["incoming/take.pcm"],
        ),
        Rejected::new(
            "raw PCM .raw without parameters",
            "incoming/take.raw",
            pcm.clone(),
            Some("application/octet-stream"),
            vec![],
            "raw_pcm_without_parameters",
            &["incoming/take.raw"],
        ),
        Rejected::new(
            "Content-Type with a bad format",
            "incoming/bad-format.pcm",
            pcm.clone(),
            Some("audio/x-raw; rate=16000; format=s8; channels=1"),
            vec![],
            "invalid_pcm_parameters",
            &["s8", "s16le"],
        ),
        Rejected::new(
            "Content-Type with rate 0",
            "incoming/rate-zero.pcm",
            pcm.clone(),
            Some("audio/x-raw; rate=0; format=s16le; channels=1"),
            vec![],
            "invalid_pcm_parameters",
            &["rate", "384000"],
        ),
        Rejected::new(
            "Content-Type with 33 channels",
            "incoming/channels-33.pcm",
            pcm.clone(),
            Some("audio/x-raw; rate=16000; format=s16le; channels=33"),
            vec![],
            "invalid_pcm_parameters",
            &["channels", "33", "32"],
        ),
        Rejected::new(
            "Content-Type missing channels",
            "incoming/no-channels.pcm",
            pcm.clone(),
            Some("audio/x-raw; rate=16000; format=s16le"),
            vec![],
            "invalid_pcm_parameters",
            &["channels"],
        ),
        Rejected::new(
            "metadata with a bad format",
            "incoming/meta-format.pcm",
            pcm.clone(),
            None,
            vec![(
                "cochl-content-type",
                "audio/x-raw; rate=16000; format=s17le; channels=1".into(),
            )],
            "invalid_content_type_override",
            &["s17le", "s16le", "cochl-content-type"],
        ),
        Rejected::new(
            "metadata with rate 0",
            "incoming/meta-rate.pcm",
            pcm.clone(),
            None,
            vec![(
                "cochl-content-type",
                "audio/x-raw; rate=0; format=s16le; channels=1".into(),
            )],
            "invalid_content_type_override",
            &["rate", "384000", "cochl-content-type"],
        ),
        Rejected::new(
            "metadata with 33 channels (wins over a good Content-Type)",
            "incoming/meta-channels.pcm",
            pcm.clone(),
            Some("audio/x-raw; rate=16000; format=s16le; channels=1"),
            vec![(
                "cochl-content-type",
                "audio/x-raw; rate=16000; format=s16le; channels=33".into(),
            )],
            "invalid_content_type_override",
            &["channels", "33", "32", "cochl-content-type"],
        ),
        Rejected::new(
            "metadata missing channels",
            "incoming/meta-missing.pcm",
            pcm.clone(),
            None,
            vec![(
                "cochl-content-type",
                "audio/x-raw; rate=16000; format=s16le".into(),
            )],
            "invalid_content_type_override",
            &["channels", "cochl-content-type"],
        ),
        Rejected::new(
            "object over the size limit",
            "incoming/too big.wav",
            [wav.as_slice(), &vec![0; LIMIT as usize]].concat()[..LIMIT as usize + 1].to_vec(),
            Some("audio/wav"),
            vec![],
            "too_large",
            &[&too_large, &limit],
        ),
        Rejected::new(
            "sensitivity not JSON",
            "incoming/sens-not-json.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![("sensitivity", "loud please".into())],
            "invalid_sensitivity",
            &["sensitivity", "JSON"],
        ),
        Rejected::new(
            "sensitivity out of range",
            "incoming/sens-range.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![("sensitivity", r#"{"default_sensitivity": 3}"#.into())],
            "invalid_sensitivity",
            &["default", "3", "[-2, 2]"],
        ),
        Rejected::new(
            "tag sensitivity out of range",
            "incoming/sens-tag-range.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![(
                "sensitivity",
                r#"{"tags_sensitivity": {"Siren": -3}}"#.into(),
            )],
            "invalid_sensitivity",
            &["Siren", "-3", "[-2, 2]"],
        ),
        Rejected::new(
            "sensitivity not an integer",
            "incoming/sens-float.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![("sensitivity", r#"{"default_sensitivity": 1.5}"#.into())],
            "invalid_sensitivity",
            &["default", "1.5"],
        ),
        Rejected::new(
            "tag sensitivity a string",
            "incoming/sens-string.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![(
                "sensitivity",
                r#"{"tags_sensitivity": {"Siren": "high"}}"#.into(),
            )],
            "invalid_sensitivity",
            &["Siren", "high"],
        ),
        Rejected::new(
            "sensitivity over the 1024-character header limit",
            "incoming/sens-oversized.wav",
            small_wav.clone(),
            Some("audio/wav"),
            vec![("sensitivity", oversized)],
            "invalid_sensitivity",
            &[&oversized_len, "1024"],
        ),
    ];

    let mut files = Vec::new();
    for case in &cases {
        let metadata: Vec<(&str, &str)> = case
            .metadata
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let file = stack
            .upload(&case.key, case.bytes.clone(), case.content_type, &metadata)
            .await
            .with_context(|| case.name)?;
        files.push(file);
    }
    for (case, file) in cases.iter().zip(&files) {
        let name = case.name;
        let job = stack
            .wait_terminal(file, DEADLINE)
            .await
            .with_context(|| name)?;
        assert_eq!(job.status, JobStatus::Rejected, "{name}: {:?}", job.reason);
        assert_eq!(job.reason_code.as_deref(), Some(case.code), "{name}");
        let reason = job.reason.clone().unwrap_or_default();
        assert!(!reason.trim().is_empty(), "{name}: no reason");
        for fact in &case.mentions {
            assert!(reason.contains(fact.as_str()), "{name}: {fact} in {reason}");
        }
        assert_eq!(job.inference_id, None, "{name}");
        assert_eq!(job.size_bytes, Some(case.bytes.len() as u64), "{name}");
        assert!(job.completed_at.is_some(), "{name}");
        let document = file_document(&stack, file).await?;
        assert_eq!(document["file"], file.to_string(), "{name}");
        assert_eq!(document["status"], "REJECTED", "{name}");
        assert_eq!(document["reason_code"], case.code, "{name}");
        assert_eq!(document["reason"], reason.as_str(), "{name}");
    }
    // Nothing was sent to the endpoint, so nothing can be notified either.
    let stats = stack.emulator_stats().await?;
    assert_eq!(stats["accepted"], 0, "{stats}");
    assert_eq!(stats["validation_errors"], 0, "{stats}");
    stack.shutdown().await;
    Ok(())
}

/// A key and how it must end.
struct KeyCase {
    name: &'static str,
    key: String,
    /// False: analysed (COMPLETED). True: refused by SageMaker (FAILED `endpoint_refused`).
    refused: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_keys_are_analysed_under_their_exact_key() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let wav = sample("tone-1khz.wav")?;
    let bucket = stack.resources.bucket.clone();
    // SageMaker's InputLocation is `s3://bucket/key` in at most 1024 characters.
    let fits = 1024 - format!("s3://{bucket}/").len();
    let long_key = |len: usize| format!("incoming/{}.wav", "k".repeat(len - 13));
    let cases = vec![
        KeyCase {
            name: "spaces",
            key: "incoming/street recordings/red flower (2).wav".into(),
            refused: false,
        },
        KeyCase {
            name: "plus signs",
            key: "incoming/a+b+c.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "plus and space together",
            key: "incoming/a+ b +c.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "percent signs, one looking like an escape",
            key: "incoming/100% sure %2B %zz.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "reserved characters",
            key: "incoming/q?a=1&b=#2;@!$'(),*=:.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "repeated slashes",
            key: "incoming//deep///x.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "longest key InputLocation can carry",
            key: long_key(fits),
            refused: false,
        },
        KeyCase {
            name: "unicode",
            key: "incoming/café ☕ 音声 😀.wav".into(),
            refused: false,
        },
        KeyCase {
            name: "1,024-byte key (S3's maximum)",
            key: long_key(1024),
            refused: true,
        },
    ];
    let mut files = Vec::new();
    for case in &cases {
        let file = stack
            .upload(&case.key, wav.clone(), Some("audio/wav"), &[])
            .await
            .with_context(|| case.name)?;
        assert_eq!(file.key(), case.key);
        files.push(file);
    }
    let mut seen = Vec::new();
    for (case, file) in cases.iter().zip(&files) {
        let name = case.name;
        // The job is found under the exact key: the event's encoding was undone exactly.
        let job = stack
            .wait_terminal(file, DEADLINE)
            .await
            .with_context(|| name)?;
        assert_eq!(job.file.key(), case.key, "{name}");
        let document = file_document(&stack, file).await?;
        assert_eq!(
            document["file"],
            format!("s3://{bucket}/{}", case.key),
            "{name}"
        );
        if !case.refused {
            assert_eq!(job.status, JobStatus::Completed, "{name}: {:?}", job.reason);
            assert_eq!(document["status"], "COMPLETED", "{name}");
            assert_eq!(document["tags"][0]["name"], "Tone", "{name}: {document}");
            let notification = stack.detection_for(file, &mut seen, DEADLINE).await?;
            assert_eq!(notification["key"], case.key.as_str(), "{name}");
            assert_eq!(notification["bucket"], bucket.as_str(), "{name}");
            assert_eq!(notification["status"], "COMPLETED", "{name}");
        } else {
            // SageMaker's InputLocation holds at most 1024 characters: `s3://<bucket>/` plus
            // a 1,024-byte key is over. The refusal is recorded (no retry, no dead letter).
            assert_eq!(job.status, JobStatus::Failed, "{name}: {:?}", job.reason);
            assert_eq!(
                job.reason_code.as_deref(),
                Some("endpoint_refused"),
                "{name}"
            );
            assert!(!job.accepted, "{name}");
            let reason = job.reason.clone().unwrap_or_default();
            // The message echoes the first 80 characters of the value.
            let echoed: String = format!("s3://{bucket}/{}", case.key)
                .chars()
                .take(80)
                .collect();
            let expected = format!(
                "the endpoint refused the request (ValidationError): 1 validation error detected: Value '{echoed}...' at 'inputLocation' failed to satisfy constraint: Member must have length less than or equal to 1024"
            );
            assert_eq!(reason, expected, "{name}");
            assert_eq!(document["status"], "FAILED", "{name}");
            assert_eq!(document["reason_code"], "endpoint_refused", "{name}");
            // Subscribers learn of it as of any failed analysis: the same FAILED notification.
            assert!(job.notified, "{name}");
            let notification = stack.detection_for(file, &mut seen, DEADLINE).await?;
            assert_eq!(notification["status"], "FAILED", "{name}");
            assert_eq!(notification["reason_code"], "endpoint_refused", "{name}");
            assert_eq!(notification["reason"], expected.as_str(), "{name}");
            assert_eq!(notification["key"], case.key.as_str(), "{name}");
            assert_eq!(notification["bucket"], bucket.as_str(), "{name}");
            assert_eq!(
                notification["inference_id"],
                job.inference_id.as_ref().context("inference id")?.as_str(),
                "{name}"
            );
            assert_eq!(notification["tags"], json!([]), "{name}");
            assert!(notification.get("length_sec").is_none(), "{name}");
        }
        // The same upload announced the way real S3 encodes keys (`+` for a space, `%XX`
        // for the rest, `/` kept) is recognised as the same job: a duplicate.
        let event = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": cochl_core::time::format_millis(job.version.event_time_ms),
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket},
                   "object": {"key": encode_event_key(&case.key).replace("%2F", "/"),
                              "eTag": job.version.etag.clone(), "size": wav.len()}}
        }]});
        let outcomes = cochl_submit::handle(&stack.submitter, &event, None).await?;
        assert!(
            matches!(&outcomes[0], cochl_submit::RecordOutcome::Duplicate { file: f } if *f == file.to_string()),
            "{name}: {outcomes:?}"
        );
    }
    // Exactly one notification for the refused file: the duplicate events above sent none.
    seen.extend(
        stack
            .receive(
                &stack.resources.detections_queue,
                10,
                Duration::from_secs(3),
            )
            .await?,
    );
    for (case, file) in cases.iter().zip(&files).filter(|(case, _)| case.refused) {
        let wanted = file.to_string();
        let again: Vec<&Value> = seen
            .iter()
            .filter(|n| n["file"] == wanted.as_str())
            .collect();
        assert!(
            again.is_empty(),
            "{}: more than one notification: {again:?}",
            case.name
        );
    }
    let stats = stack.emulator_stats().await?;
    assert_eq!(stats["validation_errors"], 1, "{stats}");
    assert_eq!(stats["accepted"], cases.len() - 1, "{stats}");
    stack.shutdown().await;
    Ok(())
}

/// A damaged audio file and the outcome the emulator's real decoder gives it.
struct Damaged {
    name: &'static str,
    key: &'static str,
    bytes: Vec<u8>,
    content_type: Option<&'static str>,
    /// `Ok((length_sec, tags))` for COMPLETED, `Err(reason)` for FAILED.
    outcome: std::result::Result<(f64, Vec<&'static str>), &'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_corrupt_audio_ends_as_the_decoder_decides() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let wav = sample("tone-1khz.wav")?;
    let mp3 = sample("street.mp3")?;
    let ogg = sample("knocks.ogg")?;
    let cases = vec![
        // WAV keeps its samples in one data chunk: the reader stops at the end of the bytes,
        // so the first half (64,022 bytes: 44 of header, then 1.999 s of the 4 s tone at
        // 16 kHz, 16-bit) is a valid, shorter recording, although its header says 4 s.
        Damaged {
            name: "wav cut in half",
            key: "incoming/damaged/half.wav",
            bytes: wav[..wav.len() / 2].to_vec(),
            content_type: Some("audio/wav"),
            outcome: Ok((1.999, vec!["Tone"])),
        },
        // A WAV header followed by random bytes: PCM has no checksum, the garbage is read as
        // samples, i.e. loud broadband noise (1 s at 16 kHz, 16-bit).
        Damaged {
            name: "wav header followed by garbage",
            key: "incoming/damaged/garbage.wav",
            bytes: [&wav[..44], &noise_bytes(32_000, 1)[..]].concat(),
            content_type: Some("audio/wav"),
            outcome: Ok((1.0, vec!["Noise"])),
        },
        Damaged {
            name: "wav header only",
            key: "incoming/damaged/header-only.wav",
            bytes: wav[..44].to_vec(),
            content_type: Some("audio/wav"),
            outcome: Err("ClientError: Received client error (400) from model: the input contains no audio samples"),
        },
        // MP3 is a sequence of self-contained frames: the whole frames before the cut decode
        // (the last, cut frame is dropped and the encoder delay trimmed), 2.415 s of the
        // 5 s: 1.5 s silence, then the tone.
        Damaged {
            name: "mp3 cut in half",
            key: "incoming/damaged/half.mp3",
            bytes: mp3[..mp3.len() / 2].to_vec(),
            content_type: None,
            outcome: Ok((2.415, vec!["Tone"])),
        },
        Damaged {
            name: "random bytes named .ogg",
            key: "incoming/damaged/random.ogg",
            bytes: noise_bytes(20_000, 2),
            content_type: None,
            outcome: Err("ClientError: Received client error (400) from model: content type audio/ogg does not match the data: expected Ogg, found unrecognised bytes"),
        },
        // Unlike WAV and MP3, a cut Ogg file is refused whole: when symphonia's Ogg reader
        // opens a stream it reads on to the last page (for the stream's length), and the
        // cut leaves a partial page there, so opening fails with "end of stream" before any
        // packet is decoded.
        Damaged {
            name: "ogg cut in half",
            key: "incoming/damaged/half.ogg",
            bytes: ogg[..ogg.len() / 2].to_vec(),
            content_type: None,
            outcome: Err("ClientError: Received client error (400) from model: could not read the Ogg container: end of stream"),
        },
        Damaged {
            name: "mp3 content type on wav bytes",
            key: "incoming/damaged/lying.mp3",
            bytes: wav.clone(),
            content_type: Some("audio/mpeg"),
            outcome: Err("ClientError: Received client error (400) from model: content type audio/mp3 does not match the data: expected MP3, found WAV"),
        },
    ];
    let mut files = Vec::new();
    for case in &cases {
        files.push(
            stack
                .upload(case.key, case.bytes.clone(), case.content_type, &[])
                .await?,
        );
    }
    let mut seen = Vec::new();
    for (case, file) in cases.iter().zip(&files) {
        let name = case.name;
        let job = stack
            .wait_terminal(file, DEADLINE)
            .await
            .with_context(|| name)?;
        let notification = stack.detection_for(file, &mut seen, DEADLINE).await?;
        let document = file_document(&stack, file).await?;
        match &case.outcome {
            Ok((length, tags)) => {
                assert_eq!(job.status, JobStatus::Completed, "{name}: {:?}", job.reason);
                assert_eq!(job.length_sec, Some(*length), "{name}");
                let names: Vec<&str> = job.tags.iter().map(|t| t.name.as_str()).collect();
                assert_eq!(&names, tags, "{name}");
                assert_eq!(notification["status"], "COMPLETED", "{name}");
                assert_eq!(document["length_sec"], *length, "{name}");
            }
            Err(reason) => {
                assert_eq!(job.status, JobStatus::Failed, "{name}");
                assert_eq!(
                    job.reason_code.as_deref(),
                    Some("inference_failed"),
                    "{name}"
                );
                assert_eq!(job.reason.as_deref(), Some(*reason), "{name}");
                let failure = job.failure_location.clone().context("failure location")?;
                assert!(failure.key().starts_with("failures/"), "{name}: {failure}");
                assert_eq!(notification["status"], "FAILED", "{name}");
                assert_eq!(notification["reason_code"], "inference_failed", "{name}");
                assert_eq!(notification["reason"], *reason, "{name}");
                assert_eq!(notification["tags"], json!([]), "{name}");
                assert_eq!(document["status"], "FAILED", "{name}");
            }
        }
    }
    stack.shutdown().await;
    Ok(())
}

/// A scripted result document and how the pipeline must end with it.
struct Scripted {
    name: &'static str,
    body: Vec<u8>,
    outcome: ScriptedOutcome,
}

enum ScriptedOutcome {
    /// FAILED `malformed_result`; the reason (after `<output location>: `) starts with this.
    Malformed(&'static str),
    /// COMPLETED with this length and no tags.
    NoTags(Option<f64>),
}

fn window(start: i64, end: i64, tags: Value) -> Value {
    json!({"tags": tags, "start_time": start, "end_time": end})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_results_end_failed_and_edge_results_complete() -> Result<()> {
    let stack = LocalStack::on_shared_moto(StackOptions::default()).await?;
    let wav = sample("tone-1khz.wav")?;
    let doc = |data: Value| json!({"metadata": {"length_sec": 4.0}, "data": data}).to_string();
    let siren = |p: Value| json!([{"name": "Siren", "probability": p}]);
    use ScriptedOutcome::*;
    let cases = vec![
        Scripted {
            name: "truncated JSON",
            body: br#"{"metadata": {"length_sec": 4.0}, "data": [{"tags": []"#.to_vec(),
            outcome: Malformed("result is not a valid Cochl result: EOF while parsing"),
        },
        Scripted {
            name: "not JSON at all",
            body: b"<html>502 Bad Gateway</html>".to_vec(),
            outcome: Malformed("result is not a valid Cochl result: expected value at line 1 column 1"),
        },
        Scripted {
            name: "empty (zero bytes)",
            body: Vec::new(),
            outcome: Malformed("result is empty"),
        },
        Scripted {
            name: "{}",
            body: b"{}".to_vec(),
            outcome: Malformed("result is not a valid Cochl result: missing field `data`"),
        },
        Scripted {
            name: "a JSON array",
            body: b"[]".to_vec(),
            outcome: Malformed("result is not a valid Cochl result: invalid length"),
        },
        Scripted {
            name: "NaN probability, as the string a NaN-writing encoder would emit",
            body: doc(json!([window(0, 2, siren(json!("NaN")))])).into_bytes(),
            outcome: Malformed("result is not a valid Cochl result: invalid type: string \"NaN\", expected f64"),
        },
        Scripted {
            name: "NaN as a bare literal (not JSON)",
            body: br#"{"data": [{"tags": [{"name": "Siren", "probability": NaN}], "start_time": 0, "end_time": 2}]}"#.to_vec(),
            outcome: Malformed("result is not a valid Cochl result: expected value"),
        },
        Scripted {
            name: "infinite time (1e999 overflows f64)",
            body: br#"{"data": [{"tags": [], "start_time": 0, "end_time": 1e999}]}"#.to_vec(),
            outcome: Malformed("result is not a valid Cochl result: number out of range"),
        },
        Scripted {
            name: "probability 1.5",
            body: doc(json!([window(0, 2, siren(json!(1.5)))])).into_bytes(),
            outcome: Malformed("result window 0: tag \"Siren\" has probability 1.5, outside [0, 1]"),
        },
        Scripted {
            name: "negative probability",
            body: doc(json!([window(0, 2, json!([])), window(1, 3, siren(json!(-0.1)))])).into_bytes(),
            outcome: Malformed("result window 1: tag \"Siren\" has probability -0.1, outside [0, 1]"),
        },
        Scripted {
            name: "negative start time",
            body: doc(json!([window(-1, 1, siren(json!(0.9)))])).into_bytes(),
            outcome: Malformed("result window 0: start_time -1 is negative"),
        },
        Scripted {
            name: "end before start",
            body: doc(json!([window(3, 1, siren(json!(0.9)))])).into_bytes(),
            outcome: Malformed("result window 0: end_time 1 is not after start_time 3"),
        },
        Scripted {
            name: "negative length",
            body: br#"{"metadata": {"length_sec": -4.0}, "data": []}"#.to_vec(),
            outcome: Malformed("result metadata length_sec is -4, expected a finite number >= 0"),
        },
        Scripted {
            name: "a tag without a name",
            body: doc(json!([window(0, 2, json!([{"name": " ", "probability": 0.5}]))])).into_bytes(),
            outcome: Malformed("result window 0: a tag has an empty name"),
        },
        Scripted {
            name: "no windows (data: [])",
            body: br#"{"metadata": {"length_sec": 1.2, "name": "sagemaker_input"}, "data": []}"#.to_vec(),
            outcome: NoTags(Some(1.2)),
        },
        Scripted {
            name: "only Others and empty windows",
            body: doc(json!([window(0, 2, json!([{"name": "Others", "probability": 0.0}])), window(1, 3, json!([]))])).into_bytes(),
            outcome: NoTags(Some(4.0)),
        },
    ];
    let mut seen = Vec::new();
    // Scripts are taken in acceptance order, so the cases run one after the other.
    for (index, case) in cases.iter().enumerate() {
        let name = case.name;
        let body = String::from_utf8(case.body.clone()).context("scripts are text")?;
        let (status, queued) = stack
            .emulator_admin("POST", "/_emulator/scripted-results", &body)
            .await?;
        assert_eq!((status, &queued["queued"]), (200, &json!(1)), "{name}");
        let file = stack
            .upload(
                &format!("incoming/scripted/{index:02}.wav"),
                wav.clone(),
                Some("audio/wav"),
                &[],
            )
            .await?;
        let job = stack
            .wait_terminal(&file, DEADLINE)
            .await
            .with_context(|| name)?;
        let notification = stack.detection_for(&file, &mut seen, DEADLINE).await?;
        let output = job.output_location.clone().context("output location")?;
        match &case.outcome {
            Malformed(reason) => {
                assert_eq!(job.status, JobStatus::Failed, "{name}: {:?}", job.reason);
                assert_eq!(
                    job.reason_code.as_deref(),
                    Some("malformed_result"),
                    "{name}"
                );
                let full = job.reason.clone().unwrap_or_default();
                let prefix = format!("{output}: {reason}");
                assert!(full.starts_with(&prefix), "{name}: {full}");
                assert_eq!(job.failure_location.as_ref(), Some(&output), "{name}");
                assert!(job.tags.is_empty(), "{name}");
                assert_eq!(notification["status"], "FAILED", "{name}");
                assert_eq!(notification["reason_code"], "malformed_result", "{name}");
                assert_eq!(notification["reason"], full.as_str(), "{name}");
                assert_eq!(notification["tags"], json!([]), "{name}");
            }
            NoTags(length) => {
                assert_eq!(job.status, JobStatus::Completed, "{name}: {:?}", job.reason);
                assert_eq!(job.length_sec, *length, "{name}");
                assert!(job.tags.is_empty(), "{name}");
                assert_eq!(notification["status"], "COMPLETED", "{name}");
                assert_eq!(notification["tags"], json!([]), "{name}");
                let document = file_document(&stack, &file).await?;
                assert_eq!(document["tags"], json!([]), "{name}");
            }
        }
    }

    // 24 hours: 86,400 windows. Siren in windows 1000-1009 and 50000-50099 (two segments),
    // Speech alone in every 1000th window (87 two-second segments), Others once.
    let data: Vec<Value> = (0..86_400i64)
        .map(|i| {
            let mut tags = Vec::new();
            if (1000..1010).contains(&i) {
                tags.push(json!({"name": "Siren", "probability": 0.9}));
            }
            if (50_000..50_100).contains(&i) {
                let p = if i == 50_050 { 0.95 } else { 0.7 };
                tags.push(json!({"name": "Siren", "probability": p}));
            }
            if i % 1000 == 0 {
                tags.push(json!({"name": "Speech", "probability": 0.6}));
            }
            if i == 7 {
                tags.push(json!({"name": "Others", "probability": 0.0}));
            }
            window(i, i + 2, Value::Array(tags))
        })
        .collect();
    let day = json!({"metadata": {"content_type": "audio/wav", "length_sec": 86_401.0,
                                  "name": "sagemaker_input"},
                     "data": data})
    .to_string();
    stack
        .emulator_admin("POST", "/_emulator/scripted-results", &day)
        .await?;
    let file = stack
        .upload(
            "incoming/scripted/one day.wav",
            wav.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    let job = stack.wait_terminal(&file, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.reason);
    assert_eq!(job.length_sec, Some(86_401.0));
    let totals: Vec<(&str, f64, f64, u32)> = job
        .tags
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.max_probability,
                t.detected_seconds,
                t.windows,
            )
        })
        .collect();
    assert_eq!(
        totals,
        vec![
            ("Siren", 0.95, 11.0 + 101.0, 110),
            ("Speech", 0.6, 174.0, 87)
        ]
    );
    let document = file_document(&stack, &file).await?;
    let siren_segments = &document["tags"][0]["segments"];
    assert_eq!(
        siren_segments,
        &json!([
            {"start": 1000.0, "end": 1011.0, "max_probability": 0.9, "mean_probability": 0.9},
            {"start": 50_000.0, "end": 50_101.0, "max_probability": 0.95, "mean_probability": 0.7025}
        ])
    );
    let speech_segments = document["tags"][1]["segments"]
        .as_array()
        .context("speech segments")?;
    assert_eq!(speech_segments.len(), 87);
    assert_eq!(speech_segments[86]["start"], 86_000.0);
    assert_eq!(speech_segments[86]["end"], 86_002.0);
    let notification = stack.detection_for(&file, &mut seen, DEADLINE).await?;
    assert_eq!(notification["status"], "COMPLETED");
    assert_eq!(notification["length_sec"], 86_401.0);
    assert_eq!(notification["tags"][0]["detected_seconds"], 112.0);
    assert_eq!(notification["tags"][1]["windows"], 87);
    stack.shutdown().await;
    Ok(())
}

/// A malformed message, the class of failure it must report and where it must end.
struct DeadLetter {
    name: &'static str,
    /// The body sent to the queue (what S3 or SNS would deliver); the dead-letter queue
    /// must hold it unchanged.
    body: String,
    /// The `errorType` of its failure: the stable failure class.
    error_type: &'static str,
    /// What the error message must name (the offending part), not its wording.
    fact: &'static str,
}

/// The class and message of a malformed message's failure, through the function's own
/// per-message entry point (what `handle_queue` runs for each message of a batch).
async fn failure_of(stack: &LocalStack, results: bool, body: &str) -> (String, String) {
    if results {
        let error = cochl_on_result::handle_message(&stack.results, "m-bad", body, None)
            .await
            .expect_err("a malformed notification fails");
        let kind = if error.is_retryable() {
            "Retryable"
        } else {
            "Permanent"
        };
        (format!("{kind}.{}", error.class()), error.to_string())
    } else {
        let payload: Value =
            serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
        let error = cochl_submit::handle(&stack.submitter, &payload, None)
            .await
            .expect_err("a malformed event fails");
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        (diagnostic.error_type, diagnostic.error_message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_dead_lettered_and_good_records_still_handled() -> Result<()> {
    // Messages return after 2 s and go to the dead-letter queue on their third receive.
    let stack = LocalStack::on_shared_moto(StackOptions {
        visibility_timeout: Duration::from_secs(2),
        max_receive_count: 2,
        ..StackOptions::default()
    })
    .await?;
    let wav = sample("tone-1khz.wav")?;
    let bucket = stack.resources.bucket.clone();

    // A good upload, analysed; the mixed event below carries a newer announcement of it.
    let good = stack
        .upload(
            "incoming/events/good.wav",
            wav.clone(),
            Some("audio/wav"),
            &[],
        )
        .await?;
    let first = stack.wait_terminal(&good, DEADLINE).await?;
    assert_eq!(first.status, JobStatus::Completed);
    let good_record = json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": cochl_core::time::format_millis(first.version.event_time_ms + 1000),
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket},
               "object": {"key": "incoming/events/good.wav", "eTag": "newer-upload", "size": wav.len()}}
    });
    let lacking_s3 = json!({"eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T10:15:30Z"});

    let s3_cases = vec![
        DeadLetter {
            name: "S3: a record lacking s3, beside a good record",
            body: json!({"Records": [lacking_s3, good_record]}).to_string(),
            error_type: "Permanent.MalformedRecord",
            fact: "`s3`",
        },
        DeadLetter {
            name: "S3: a body that is not JSON",
            body: "this is { not json".into(),
            error_type: "Permanent.NotAnS3Event",
            fact: "Records",
        },
        DeadLetter {
            name: "S3: Records is not an array",
            body: r#"{"Records": "all of them"}"#.into(),
            error_type: "Permanent.NotAnS3Event",
            fact: "Records",
        },
        DeadLetter {
            name: "S3: a key that is a number",
            body: r#"{"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T10:15:30Z", "s3": {"bucket": {"name": "b"}, "object": {"key": 42}}}]}"#.into(),
            error_type: "Permanent.MalformedRecord",
            fact: "`42`",
        },
        DeadLetter {
            name: "S3: no eventTime",
            body: r#"{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/no-time.wav"}}}]}"#.into(),
            error_type: "Permanent.MalformedRecord",
            fact: "eventTime",
        },
        DeadLetter {
            name: "S3: a resubmission request without its inference",
            body: r#"{"cochlResubmit": {"file": "s3://b/incoming/a.wav"}}"#.into(),
            error_type: "Permanent.NotAnS3Event",
            fact: "expiredInferenceId",
        },
    ];
    let envelope = |message: &str| {
        json!({"Type": "Notification", "MessageId": "m-bad", "TopicArn": stack.resources.success_topic,
               "Message": message, "Timestamp": "2026-11-25T10:15:30.000Z"})
        .to_string()
    };
    let sns_cases = vec![
        DeadLetter {
            name: "SNS: an envelope that is not JSON",
            body: "<not an SNS envelope>".into(),
            error_type: "Permanent.MalformedRecord",
            fact: "not JSON",
        },
        DeadLetter {
            name: "SNS: valid JSON that is not a SageMaker notification",
            body: envelope(r#"{"hello": "world"}"#),
            error_type: "Permanent.MalformedRecord",
            fact: "`inferenceId`",
        },
        DeadLetter {
            name: "SNS: a JSON array",
            body: envelope("[1, 2]"),
            error_type: "Permanent.MalformedRecord",
            fact: "array",
        },
        DeadLetter {
            name: "SNS: no invocation status",
            body: envelope(r#"{"inferenceId": "cochl-x"}"#),
            error_type: "Permanent.MalformedRecord",
            fact: "`invocationStatus`",
        },
        DeadLetter {
            name: "SNS: a Message that is not a string",
            body: json!({"Type": "Notification", "MessageId": "m-obj", "Message": {"inferenceId": "x"}}).to_string(),
            error_type: "Permanent.MalformedRecord",
            fact: "Sns.Message",
        },
    ];
    for (results, queue, dlq, cases) in [
        (
            false,
            &stack.resources.submit_queue,
            &stack.resources.submit_dlq,
            &s3_cases,
        ),
        (
            true,
            &stack.resources.results_queue,
            &stack.resources.results_dlq,
            &sns_cases,
        ),
    ] {
        for case in cases {
            let (error_type, error) = failure_of(&stack, results, &case.body).await;
            assert_eq!(error_type, case.error_type, "{}: {error}", case.name);
            assert!(error.contains(case.fact), "{}: {error}", case.name);
        }
        let url = stack.queue_url(queue).await?;
        for case in cases {
            stack
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(&case.body)
                .send()
                .await
                .with_context(|| case.name)?;
        }
        // Each arrives in the dead-letter queue exactly as it was sent, and nothing else.
        let mut dead = stack.receive_raw(dlq, cases.len(), DEADLINE).await?;
        dead.sort();
        let mut sent: Vec<String> = cases.iter().map(|case| case.body.clone()).collect();
        sent.sort();
        assert_eq!(dead, sent);
    }
    // The good record of the mixed S3 event was handled: the newer announcement replaced
    // the analysis with a new inference, which completed.
    let second = stack
        .wait_job(&good, "to be re-analysed", DEADLINE, |j| {
            j.inference_id != first.inference_id && j.status.is_terminal()
        })
        .await?;
    assert_eq!(second.status, JobStatus::Completed);
    assert_eq!(second.version.etag.as_deref(), Some("newer-upload"));

    // A mixed SNS event straight into on-result: a bad record, and a failure notification for
    // a job whose (slow) inference is still running. The good record is applied.
    stack
        .emulator_admin(
            "POST",
            "/_emulator/faults",
            r#"{"processing_delay_ms": 8000}"#,
        )
        .await?;
    let slow = stack
        .upload("incoming/events/slow.wav", wav, Some("audio/wav"), &[])
        .await?;
    let waiting = stack
        .wait_job(&slow, "to be accepted", DEADLINE, |j| j.accepted)
        .await?;
    stack
        .emulator_admin("POST", "/_emulator/faults", r#"{"processing_delay_ms": 0}"#)
        .await?;
    let inference_id = waiting.inference_id.clone().context("inference id")?;
    let failure = json!({
        "awsRegion": "us-east-1", "eventTime": "2026-11-25T10:15:31.000Z",
        "invocationStatus": "Failed",
        "failureReason": "ClientError: crafted failure for the mixed event",
        "requestParameters": {"contentType": "audio/wav", "endpointName": "cochl-sense",
                              "inputLocation": slow.to_string()},
        "inferenceId": inference_id.as_str(), "eventVersion": "1.0",
        "eventSource": "aws:sagemaker", "eventName": "InferenceResult"
    });
    let batch = devstack::event_source::sqs_event_of_bodies(
        &testkit::messaging::queue_arn(&stack.resources.results_queue),
        &[envelope("{\"hello\": 1}"), envelope(&failure.to_string())],
    );
    let response = cochl_on_result::handle_queue(&stack.results, &batch, None).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["replayed-0"],
        "only the bad message returns to the queue"
    );
    let job = stack.wait_terminal(&slow, DEADLINE).await?;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.reason.as_deref(),
        Some("ClientError: crafted failure for the mixed event")
    );
    let mut seen = Vec::new();
    let notification = stack.detection_for(&slow, &mut seen, DEADLINE).await?;
    assert_eq!(notification["status"], "FAILED");
    assert_eq!(notification["reason_code"], "inference_failed");
    stack.shutdown().await;
    Ok(())
}

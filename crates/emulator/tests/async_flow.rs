//! The asynchronous path end to end on moto: invoke with the real SDK, wait for the SNS
//! notification on an SQS queue, parse it with `cochl_core`, read the object it names.

mod common;

use cochl_core::notification::{parse_notification, AsyncNotification, InferenceOutcome};
use cochl_core::result::CochlResult;
use common::{Harness, Topic, PCM_CONTENT_TYPE};

/// Checks every field of a notification against the request that caused it.
fn check_envelope(
    notification: &AsyncNotification,
    inference_id: &str,
    input: &str,
    content_type: &str,
    custom_attributes: Option<&str>,
) {
    assert_eq!(notification.inference_id, inference_id);
    assert_eq!(notification.aws_region.as_deref(), Some("us-east-1"));
    assert_eq!(notification.event_name.as_deref(), Some("InferenceResult"));
    assert_eq!(notification.event_source.as_deref(), Some("aws:sagemaker"));
    assert_eq!(notification.event_version.as_deref(), Some("1.0"));
    let received = notification.received_time.as_deref().expect("receivedTime");
    let event = notification.event_time.as_deref().expect("eventTime");
    for time in [received, event] {
        // 2022-01-25T22:46:00.608Z
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
    }
    assert!(received <= event, "{received} > {event}");
    let request = &notification.request;
    assert_eq!(request.accept.as_deref(), Some("application/json"));
    assert_eq!(request.content_type.as_deref(), Some(content_type));
    assert_eq!(request.custom_attributes.as_deref(), custom_attributes);
    assert_eq!(request.endpoint_name.as_deref(), Some("cochl-sense"));
    assert_eq!(
        request
            .input_location
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(input)
    );
}

/// Waits for the success notification of an invocation and returns the parsed result.
async fn expect_success(
    h: &Harness,
    accepted: &aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncOutput,
    input: &str,
    content_type: &str,
    custom_attributes: Option<&str>,
) -> CochlResult {
    let inference_id = accepted.inference_id().expect("inference id");
    let message = h.notification_for(Topic::Success, inference_id).await;
    let raw: serde_json::Value = serde_json::from_str(&message).expect("json");
    assert_eq!(raw["invocationStatus"], "Completed");
    assert_eq!(raw["responseParameters"]["contentType"], "application/json");
    assert!(raw.get("failureReason").is_none());
    let notification = parse_notification(&message).expect("notification parses");
    check_envelope(
        &notification,
        inference_id,
        input,
        content_type,
        custom_attributes,
    );
    let output = match &notification.outcome {
        InferenceOutcome::Succeeded {
            output_location,
            response_content_type,
            inline_body,
        } => {
            assert_eq!(response_content_type.as_deref(), Some("application/json"));
            assert_eq!(inline_body, &None);
            output_location
                .as_ref()
                .expect("output location")
                .to_string()
        }
        other => panic!("expected success, got {other:?}"),
    };
    assert_eq!(Some(output.as_str()), accepted.output_location());
    let bytes = h.read(&output).await;
    // Cochl writes integer times.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    assert!(text.contains(r#""start_time":0,"end_time":2"#), "{text}");
    CochlResult::parse(&bytes).expect("a valid Cochl result")
}

/// Waits for the failure notification of an invocation and returns its reason.
async fn expect_failure(
    h: &Harness,
    accepted: &aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncOutput,
    input: &str,
    content_type: &str,
    custom_attributes: Option<&str>,
) -> String {
    let inference_id = accepted.inference_id().expect("inference id");
    let message = h.notification_for(Topic::Error, inference_id).await;
    let raw: serde_json::Value = serde_json::from_str(&message).expect("json");
    assert_eq!(raw["invocationStatus"], "Failed");
    assert_eq!(
        raw["responseParameters"]["contentType"],
        "text/plain; charset=utf-8"
    );
    let notification = parse_notification(&message).expect("notification parses");
    check_envelope(
        &notification,
        inference_id,
        input,
        content_type,
        custom_attributes,
    );
    let (status, reason, location) = match notification.outcome {
        InferenceOutcome::Failed {
            status,
            reason,
            failure_location,
        } => (status, reason, failure_location.expect("failure location")),
        other => panic!("expected failure, got {other:?}"),
    };
    assert_eq!(status, "Failed");
    assert!(reason.starts_with("ClientError: "), "{reason}");
    assert_eq!(
        Some(location.to_string().as_str()),
        accepted.failure_location()
    );
    let object = h.read(&location.to_string()).await;
    assert_eq!(String::from_utf8(object).expect("utf-8"), reason);
    reason
}

/// A sample, its content type, custom attributes, length and the tag of each window.
type SampleCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    f64,
    &'static [&'static str],
);

fn tag_names(result: &CochlResult) -> Vec<Vec<String>> {
    result
        .data
        .iter()
        .map(|w| {
            w.tags
                .iter()
                .filter(|t| !t.is_others())
                .map(|t| t.name.clone())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_completes_with_the_documented_tags() {
    let h = Harness::start().await;
    let cases: [SampleCase; 4] = [
        (
            "tone-1khz.wav",
            "audio/wav",
            None,
            4.0,
            &["Tone", "Tone", "Tone"],
        ),
        (
            "street.mp3",
            "audio/mp3",
            Some(r#"{"default_sensitivity": 0}"#),
            5.0,
            &["Tone", "Tone", "Noise", "Noise"],
        ),
        (
            "knocks.ogg",
            "audio/ogg",
            None,
            4.0,
            &["Knock", "Knock", "Knock"],
        ),
        (
            "tone-440hz-s16le-16k-mono.pcm",
            PCM_CONTENT_TYPE,
            None,
            3.0,
            &["Tone", "Tone"],
        ),
    ];
    // Submit all, then collect: the queue runs them concurrently.
    let mut pending = Vec::new();
    for (name, content_type, attributes, length, tags) in cases {
        let input = h.upload_sample(name).await;
        let accepted = h.invoke(&input, content_type, attributes).await;
        pending.push((
            name,
            input,
            accepted,
            content_type,
            attributes,
            length,
            tags,
        ));
    }
    for (name, input, accepted, content_type, attributes, length, tags) in pending {
        let result = expect_success(&h, &accepted, &input, content_type, attributes).await;
        assert_eq!(result.metadata.length_sec, Some(length), "{name}");
        assert_eq!(result.metadata.content_type.as_deref(), Some(content_type));
        assert_eq!(
            result.metadata.size_byte,
            Some(common::sample(name).len() as f64)
        );
        assert_eq!(result.metadata.name.as_deref(), Some("sagemaker_input"));
        assert_eq!(result.data.len(), tags.len(), "{name}: window count");
        let expected: Vec<Vec<String>> = tags.iter().map(|t| vec![t.to_string()]).collect();
        assert_eq!(tag_names(&result), expected, "{name}");
        for (i, window) in result.data.iter().enumerate() {
            assert_eq!(
                (window.start_time, window.end_time),
                (i as f64, i as f64 + 2.0)
            );
        }
    }
    h.assert_no_message(Topic::Error).await;
    let stats = h
        .wait_for_stats(|s| s["completed"] == 4 && s["running"] == 0)
        .await;
    assert_eq!(stats["failed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitivity_in_custom_attributes_moves_the_thresholds() {
    let h = Harness::start().await;
    // 2 s of a 440 Hz tone at -45 dB RMS as f32le: found at +2, not at -2.
    let peak = 10f32.powf(-45.0 / 20.0) * 2f32.sqrt();
    let bytes: Vec<u8> = (0..32_000)
        .flat_map(|i| {
            (peak * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin()).to_le_bytes()
        })
        .collect();
    let content_type = "audio/x-raw; rate=16000; format=f32le; channels=1";
    let input = h.upload("quiet.f32", bytes).await;
    for (attributes, expected) in [
        (
            r#"{"tags_sensitivity": {"Tone": 2}}"#,
            vec![vec!["Tone".to_owned()]],
        ),
        (r#"{"default_sensitivity": -2}"#, vec![vec![]]),
    ] {
        let accepted = h.invoke(&input, content_type, Some(attributes)).await;
        let result = expect_success(&h, &accepted, &input, content_type, Some(attributes)).await;
        assert_eq!(tag_names(&result), expected, "{attributes}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_with_a_failure_object_and_notification() {
    let h = Harness::start().await;
    let garbage = h
        .upload("garbage.wav", b"definitely not audio".to_vec())
        .await;
    let odd_pcm = h.upload("odd.pcm", vec![0u8; 1001]).await;
    let wav = h.upload_sample("tone-1khz.wav").await;
    let missing = format!("s3://{}/incoming/missing.wav", h.bucket);
    let cases: [(&str, &str, Option<&str>, &str); 5] = [
        (
            &garbage,
            "audio/wav",
            None,
            "expected WAV, found unrecognised bytes",
        ),
        (
            &odd_pcm,
            PCM_CONTENT_TYPE,
            None,
            "raw PCM body of 1001 bytes is not a whole number of 2-byte frames",
        ),
        (
            &wav,
            "audio/wav",
            Some("{\"default_sensitivity\":"),
            "invalid custom attributes",
        ),
        (&wav, "audio/flac", None, "unsupported content type"),
        (&missing, "audio/wav", None, "Failed to download the input"),
    ];
    for (input, content_type, attributes, expected) in cases {
        let accepted = h.invoke(input, content_type, attributes).await;
        let reason = expect_failure(&h, &accepted, input, content_type, attributes).await;
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
    }
    h.assert_no_message(Topic::Success).await;
    let stats = h.wait_for_stats(|s| s["failed"] == 5).await;
    assert_eq!(stats["completed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_result_is_written_verbatim() {
    let h = Harness::start().await;
    let script = "{\"metadata\": {}, \"data\": [ not json at all";
    let (status, _) = h.admin("POST", "/_emulator/scripted-results", script).await;
    assert_eq!(status, 200);
    let input = h.upload_sample("tone-1khz.wav").await;
    let accepted = h.invoke(&input, "audio/wav", None).await;
    let id = accepted.inference_id().expect("id");
    h.notification_for(Topic::Success, id).await;
    let written = h.read(accepted.output_location().expect("output")).await;
    assert_eq!(written, script.as_bytes());

    // The script is used once; a script still needs a readable input.
    h.admin("POST", "/_emulator/scripted-results", "{}").await;
    let missing = format!("s3://{}/incoming/nothing.wav", h.bucket);
    let accepted = h.invoke(&missing, "audio/wav", None).await;
    let reason = expect_failure(&h, &accepted, &missing, "audio/wav", None).await;
    assert!(reason.contains("Failed to download the input"), "{reason}");
    let accepted = h.invoke(&input, "audio/wav", None).await;
    let result = expect_success(&h, &accepted, &input, "audio/wav", None).await;
    assert_eq!(result.data.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_fails_the_next_inference_only() {
    let h = Harness::start().await;
    h.admin(
        "POST",
        "/_emulator/faults",
        r#"{"fail_next_inferences": 1}"#,
    )
    .await;
    let input = h.upload_sample("tone-1khz.wav").await;
    let failed = h.invoke(&input, "audio/wav", None).await;
    let reason = expect_failure(&h, &failed, &input, "audio/wav", None).await;
    assert_eq!(
        reason,
        "ClientError: Received server error (500) from model (injected fault)."
    );
    let next = h.invoke(&input, "audio/wav", None).await;
    expect_success(&h, &next, &input, "audio/wav", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_queues_jobs_in_order() {
    let h = Harness::start_with(|config| config.max_concurrent = 1).await;
    h.admin(
        "POST",
        "/_emulator/faults",
        r#"{"processing_delay_ms": 300}"#,
    )
    .await;
    let input = h.upload_sample("silence.wav").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let accepted = h.invoke(&input, "audio/wav", None).await;
        ids.push(accepted.inference_id().expect("id").to_owned());
    }
    let queued = h.stats().await;
    assert_eq!(queued["accepted"], 3);
    assert!(queued["running"].as_u64() <= Some(1), "{queued}");
    // Notifications arrive in acceptance order: one at a time, first in first out.
    let mut order = Vec::new();
    for _ in 0..3 {
        let message = h.next_notification(Topic::Success).await;
        order.push(parse_notification(&message).expect("parses").inference_id);
    }
    assert_eq!(order, ids);
    let stats = h
        .wait_for_stats(|s| s["completed"] == 3 && s["running"] == 0)
        .await;
    assert_eq!(stats["max_running_seen"], 1);
    assert_eq!(
        stats["max_outstanding_seen"], 3,
        "all three were accepted before the first finished"
    );
    assert_eq!(stats["expired"], 0);
    assert_eq!(stats["queued"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_longer_than_the_invocation_timeout_fails() {
    let h = Harness::start().await;
    h.admin(
        "POST",
        "/_emulator/faults",
        r#"{"processing_delay_ms": 1500}"#,
    )
    .await;
    let input = h.upload_sample("tone-1khz.wav").await;
    let accepted = h
        .sagemaker
        .invoke_endpoint_async()
        .endpoint_name("cochl-sense")
        .input_location(&input)
        .content_type("audio/wav")
        .accept("application/json")
        .invocation_timeout_seconds(1)
        .send()
        .await
        .expect("accepted");
    let reason = expect_failure(&h, &accepted, &input, "audio/wav", None).await;
    assert!(
        reason.contains("InvocationTimeoutSeconds (1 s)"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_notification_still_writes_the_result_and_frees_the_slot() {
    // One slot: if the dropped inference kept it, the next one would never run.
    let h = Harness::start_with(|config| config.max_concurrent = 1).await;
    let (status, faults) = h
        .admin(
            "POST",
            "/_emulator/faults",
            r#"{"drop_notifications_next": 1}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(faults["drop_notifications_next"], 1);
    let input = h.upload_sample("tone-1khz.wav").await;
    let silent = h.invoke(&input, "audio/wav", None).await;
    // Withheld only once its object is written and counted.
    let stats = h
        .wait_for_stats(|s| s["notifications_dropped"] == 1 && s["running"] == 0)
        .await;
    assert_eq!(stats["completed"], 1);
    assert_eq!(stats["failed"], 0);
    let written = h.read(silent.output_location().expect("output")).await;
    let result = CochlResult::parse(&written).expect("a valid Cochl result");
    assert_eq!(result.data.len(), 3);
    let (_, faults) = h.admin("GET", "/_emulator/faults", "").await;
    assert_eq!(faults["drop_notifications_next"], 0);

    // The next inference runs and is notified; had the first notification gone out, it
    // would be the first message on the queue.
    let next = h.invoke(&input, "audio/wav", None).await;
    let message = h.next_notification(Topic::Success).await;
    let notification = parse_notification(&message).expect("notification parses");
    assert_eq!(
        Some(notification.inference_id.as_str()),
        next.inference_id()
    );
    h.assert_no_message(Topic::Success).await;
    h.assert_no_message(Topic::Error).await;
    let stats = h
        .wait_for_stats(|s| s["completed"] == 2 && s["running"] == 0)
        .await;
    assert_eq!(stats["notifications_dropped"], 1);
    assert_eq!(stats["queued"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_notifications_cover_failures_and_expiries() {
    let h = Harness::start().await;
    h.admin(
        "POST",
        "/_emulator/faults",
        r#"{"drop_notifications_next": 2, "expire_next_inferences": 1}"#,
    )
    .await;
    let input = h.upload_sample("tone-1khz.wav").await;
    let expired = h.invoke(&input, "audio/wav", None).await;
    h.wait_for_stats(|s| s["notifications_dropped"] == 1 && s["running"] == 0)
        .await;
    let reason = h
        .read(expired.failure_location().expect("failure location"))
        .await;
    let reason = String::from_utf8(reason).expect("utf-8");
    assert!(
        reason.starts_with("ClientError: Request expired"),
        "{reason}"
    );

    // A partial update: the remaining drop stays in force.
    let (_, faults) = h
        .admin(
            "POST",
            "/_emulator/faults",
            r#"{"fail_next_inferences": 1}"#,
        )
        .await;
    assert_eq!(faults["drop_notifications_next"], 1);
    let failed = h.invoke(&input, "audio/wav", None).await;
    h.wait_for_stats(|s| s["notifications_dropped"] == 2 && s["running"] == 0)
        .await;
    let reason = h
        .read(failed.failure_location().expect("failure location"))
        .await;
    assert_eq!(
        String::from_utf8(reason).expect("utf-8"),
        "ClientError: Received server error (500) from model (injected fault)."
    );

    let next = h.invoke(&input, "audio/wav", None).await;
    expect_success(&h, &next, &input, "audio/wav", None).await;
    h.assert_no_message(Topic::Error).await;
    let stats = h.stats().await;
    assert_eq!(stats["failed"], 2);
    assert_eq!(stats["expired"], 1);
    assert_eq!(stats["completed"], 1);
    assert_eq!(stats["notifications_dropped"], 2);
}

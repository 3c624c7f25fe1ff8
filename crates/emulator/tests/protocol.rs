//! The SageMaker Runtime wire protocol through the real `aws-sdk-sagemakerruntime` client:
//! the 202 answer, validation errors, injected faults, real-time invocation, admin API.

mod common;

use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use cochl_emulator::InputLocations;
use common::{http, http_raw, sample, Harness, Topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_with_the_sagemaker_202_shape() {
    let h = Harness::start().await;
    let input = h.upload_sample("tone-1khz.wav").await;
    let output = h
        .sagemaker
        .invoke_endpoint_async()
        .endpoint_name("cochl-sense")
        .input_location(&input)
        .content_type("audio/wav")
        .inference_id("my-inference-1")
        .request_ttl_seconds(60)
        .invocation_timeout_seconds(3600)
        .send()
        .await
        .expect("accepted");
    assert_eq!(output.inference_id(), Some("my-inference-1"));
    let out = output.output_location().expect("output location");
    let fail = output.failure_location().expect("failure location");
    let results = format!("s3://{}/results/", h.bucket);
    let failures = format!("s3://{}/failures/", h.bucket);
    let out_uuid = out
        .strip_prefix(&results)
        .and_then(|rest| rest.strip_suffix(".out"))
        .unwrap_or_else(|| panic!("{out} is not {results}<uuid>.out"));
    let fail_uuid = fail
        .strip_prefix(&failures)
        .and_then(|rest| rest.strip_suffix("-error.out"))
        .unwrap_or_else(|| panic!("{fail} is not {failures}<uuid>-error.out"));
    assert!(uuid::Uuid::parse_str(out_uuid).is_ok(), "{out_uuid}");
    assert_eq!(out_uuid, fail_uuid);
    assert_ne!(out_uuid, "my-inference-1");

    // Without an inference id one is generated, and every call gets a fresh uuid.
    let second = h.invoke(&input, "audio/wav", None).await;
    let generated = second.inference_id().expect("generated id");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_ne!(second.output_location(), Some(out));
    assert!(!second
        .output_location()
        .unwrap_or_default()
        .contains(generated));

    let stats = h
        .wait_for_stats(|s| s["completed"] == 2 && s["running"] == 0)
        .await;
    assert_eq!(stats["accepted"], 2);
    assert_eq!(stats["queued"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_header_is_a_validation_error() {
    let h = Harness::start().await;
    let input = format!("s3://{}/incoming/a.wav", h.bucket);
    let base = || {
        h.sagemaker
            .invoke_endpoint_async()
            .endpoint_name("cochl-sense")
            .input_location(&input)
            .content_type("audio/wav")
    };
    let cases = vec![
        (
            "missing input location",
            base().set_input_location(None),
            "Value null at 'inputLocation'",
        ),
        (
            "bad s3 uri",
            base().input_location("https://bucket/key"),
            "'inputLocation'",
        ),
        (
            "s3 uri without key",
            base().input_location("s3://bucket"),
            "'inputLocation'",
        ),
        (
            "ttl 59",
            base().request_ttl_seconds(59),
            "greater than or equal to 60",
        ),
        (
            "ttl 21601",
            base().request_ttl_seconds(21_601),
            "less than or equal to 21600",
        ),
        (
            "timeout 0",
            base().invocation_timeout_seconds(0),
            "greater than or equal to 1",
        ),
        (
            "timeout 3601",
            base().invocation_timeout_seconds(3601),
            "less than or equal to 3600",
        ),
        (
            "inference id of 65",
            base().inference_id("i".repeat(65)),
            "less than or equal to 64",
        ),
        (
            "non-ascii custom attributes",
            base().custom_attributes("{\"default_sensitivity\": 1, \"é\": 2}"),
            "'customAttributes'",
        ),
        (
            "content type over 1024",
            base().content_type("a".repeat(1025)),
            "'contentType'",
        ),
        (
            "unknown endpoint",
            base().endpoint_name("other-endpoint"),
            "Endpoint other-endpoint of account 123456789012 not found.",
        ),
        (
            "endpoint name pattern",
            base().endpoint_name("bad_name"),
            "'endpointName'",
        ),
    ];
    let count = cases.len();
    for (case, request, expected) in cases {
        let err = request
            .send()
            .await
            .expect_err(&format!("{case}: must be refused"));
        let service = err.as_service_error().expect("a service error");
        assert_eq!(service.code(), Some("ValidationError"), "{case}: {err:?}");
        assert!(
            matches!(service, InvokeEndpointAsyncError::ValidationError(_)),
            "{case}"
        );
        let message = service.message().expect("message");
        assert!(
            message.contains(expected),
            "{case}: {message:?} lacks {expected:?}"
        );
    }
    // A leading space cannot reach any HTTP/1.1 server: it is optional whitespace that
    // every parser strips (RFC 9110 5.5), so the id arrives trimmed and is accepted. The
    // rule itself is unit-tested in `protocol`.
    let trimmed = base()
        .inference_id(" leading")
        .send()
        .await
        .expect("accepted");
    assert_eq!(trimmed.inference_id(), Some("leading"));

    // Non-integer numbers cannot be sent by the SDK: send them by hand.
    let addr = h.emulator.addr().to_string();
    for (header, value) in [
        ("x-amzn-sagemaker-requestttlseconds", "60.5"),
        ("x-amzn-sagemaker-invocationtimeoutseconds", "1e3"),
    ] {
        let response = http(
            &addr,
            "POST",
            "/endpoints/cochl-sense/async-invocations",
            &[
                ("x-amzn-sagemaker-inputlocation", input.as_str()),
                (header, value),
            ],
            b"",
        )
        .await;
        assert_eq!(response.status, 400);
        assert_eq!(response.header("x-amzn-errortype"), Some("ValidationError"));
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Member must be an integer"),
            "{body}"
        );
    }
    let stats = h.stats().await;
    assert_eq!(stats["validation_errors"], count as u64 + 2);
    assert_eq!(stats["accepted"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_unavailability_come_before_validation() {
    let h = Harness::start().await;
    let input = h.upload_sample("tone-1khz.wav").await;
    let (status, _) = h
        .admin("POST", "/_emulator/faults", r#"{"throttle_next": 2}"#)
        .await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        // Invalid on purpose: the fault wins over validation.
        let err = h
            .sagemaker
            .invoke_endpoint_async()
            .endpoint_name("cochl-sense")
            .send()
            .await
            .expect_err("throttled");
        assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
    }
    h.invoke(&input, "audio/wav", None).await;

    h.admin("POST", "/_emulator/faults", r#"{"unavailable_next": 1}"#)
        .await;
    let err = h
        .sagemaker
        .invoke_endpoint()
        .endpoint_name("cochl-sense")
        .body(Blob::new(sample("tone-1khz.wav")))
        .content_type("audio/wav")
        .send()
        .await
        .expect_err("unavailable");
    assert!(
        matches!(
            err.as_service_error(),
            Some(InvokeEndpointError::ServiceUnavailable(_))
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));

    let stats = h.wait_for_stats(|s| s["completed"] == 1).await;
    assert_eq!(stats["throttled"], 2);
    assert_eq!(stats["unavailable"], 1);
    assert_eq!(stats["validation_errors"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_throttle_ratio_is_deterministic() {
    let h = Harness::start().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        h.admin(
            "POST",
            "/_emulator/faults",
            r#"{"throttle_ratio": 0.5, "seed": 42}"#,
        )
        .await;
        let mut pattern = Vec::new();
        for _ in 0..20 {
            // An unknown endpoint: either throttled (429) or refused (400), never run.
            let err = h
                .sagemaker
                .invoke_endpoint_async()
                .endpoint_name("nowhere")
                .input_location("s3://bucket/key")
                .send()
                .await
                .expect_err("refused");
            pattern.push(err.code() == Some("ThrottlingException"));
        }
        runs.push(pattern);
    }
    assert_eq!(runs[0], runs[1]);
    let throttled = runs[0].iter().filter(|t| **t).count();
    assert!((3..=17).contains(&throttled), "{throttled} of 20");
    let (_, stats) = h.admin("POST", "/_emulator/reset", "").await;
    assert_eq!(stats["throttled"], 0);
    let (_, faults) = h.admin("GET", "/_emulator/faults", "").await;
    assert_eq!(faults["throttle_ratio"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_answers_the_same_json_as_async() {
    let h = Harness::start().await;
    for (name, content_type) in [
        ("street.mp3", "audio/mp3"),
        ("tone-440hz-s16le-16k-mono.pcm", common::PCM_CONTENT_TYPE),
    ] {
        let realtime = h
            .sagemaker
            .invoke_endpoint()
            .endpoint_name("cochl-sense")
            .body(Blob::new(sample(name)))
            .content_type(content_type)
            .accept("application/json")
            .send()
            .await
            .expect("real-time answer");
        assert_eq!(realtime.content_type(), Some("application/json"));
        assert_eq!(realtime.invoked_production_variant(), Some("AllTraffic"));
        let body = realtime.body().expect("body").as_ref().to_vec();

        let input = h.upload_sample(name).await;
        let accepted = h.invoke(&input, content_type, None).await;
        h.notification_for(Topic::Success, accepted.inference_id().expect("id"))
            .await;
        let written = h
            .read(accepted.output_location().expect("output location"))
            .await;
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            String::from_utf8(written).expect("utf-8"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_limits_and_model_errors() {
    let h = Harness::start().await;
    let limit = 25 * 1024 * 1024;
    // Exactly 25 MB of raw PCM is accepted (and analysed); one byte more is refused.
    let ok = h
        .sagemaker
        .invoke_endpoint()
        .endpoint_name("cochl-sense")
        .body(Blob::new(vec![0u8; limit]))
        .content_type("audio/x-raw; rate=48000; format=s16le; channels=2")
        .send()
        .await
        .expect("25 MB accepted");
    let result = cochl_core::result::CochlResult::parse(ok.body().expect("body").as_ref())
        .expect("a Cochl result");
    assert_eq!(result.length_sec(), Some(136.533));

    let err = h
        .sagemaker
        .invoke_endpoint()
        .endpoint_name("cochl-sense")
        .body(Blob::new(vec![0u8; limit + 1]))
        .content_type("audio/x-raw; rate=48000; format=s16le; channels=2")
        .send()
        .await
        .expect_err("over 25 MB");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    assert!(matches!(
        err.as_service_error(),
        Some(InvokeEndpointError::ValidationError(_))
    ));

    let err = h
        .sagemaker
        .invoke_endpoint()
        .endpoint_name("cochl-sense")
        .body(Blob::new(sample("street.mp3")))
        .content_type("audio/wav")
        .send()
        .await
        .expect_err("mismatched container");
    match err.as_service_error() {
        Some(InvokeEndpointError::ModelError(model)) => {
            assert_eq!(model.original_status_code(), Some(400));
            let message = model.message().expect("message");
            assert!(
                message.contains("content type audio/wav does not match the data"),
                "{message}"
            );
        }
        other => panic!("expected a ModelError, got {other:?}"),
    }
    assert_eq!(err.code(), Some("ModelError"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(424));

    let stats = h.stats().await;
    assert_eq!(stats["realtime_completed"], 1);
    assert_eq!(stats["realtime_failed"], 1);
    assert_eq!(stats["validation_errors"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_answers_and_refuses_bad_input() {
    let h = Harness::start().await;
    let addr = h.emulator.addr().to_string();
    assert_eq!(http(&addr, "GET", "/ping", &[], b"").await.status, 200);
    let (status, body) = h
        .admin("POST", "/_emulator/faults", r#"{"throttle_ratio": 2}"#)
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("throttle_ratio"));
    let (status, _) = h
        .admin("POST", "/_emulator/faults", r#"{"throttle_nxt": 1}"#)
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .admin(
            "POST",
            "/_emulator/faults",
            r#"{"drop_notifications_next": 3}"#,
        )
        .await;
    assert_eq!(status, 200);
    let (status, faults) = h
        .admin(
            "POST",
            "/_emulator/faults",
            r#"{"latency_ms": 5, "processing_delay_ms": 7, "fail_next_inferences": 1}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(faults["latency_ms"], 5);
    assert_eq!(faults["processing_delay_ms"], 7);
    assert_eq!(faults["fail_next_inferences"], 1);
    assert_eq!(
        faults["drop_notifications_next"], 3,
        "kept: not in the update"
    );
    let (status, body) = h.admin("POST", "/_emulator/scripted-results", "{}").await;
    assert_eq!((status, body["queued"].as_u64()), (200, Some(1)));
    let (status, stats) = h.admin("POST", "/_emulator/reset", "").await;
    assert_eq!(status, 200);
    for field in [
        "accepted",
        "validation_errors",
        "throttled",
        "unavailable",
        "completed",
        "failed",
        "queued",
        "running",
        "max_running_seen",
        "max_outstanding_seen",
        "expired",
        "realtime_completed",
        "realtime_failed",
        "notifications_dropped",
        "non_ascii_input_locations",
    ] {
        assert_eq!(stats[field], 0, "{field}");
    }
    let (_, faults) = h.admin("GET", "/_emulator/faults", "").await;
    assert_eq!(faults["fail_next_inferences"], 0);
    assert_eq!(faults["drop_notifications_next"], 0);
    // The script was cleared too: the next request is analysed.
    let input = h.upload_sample("silence.wav").await;
    let accepted = h.invoke(&input, "audio/wav", None).await;
    h.notification_for(Topic::Success, accepted.inference_id().expect("id"))
        .await;
    let written = h.read(accepted.output_location().expect("output")).await;
    assert_ne!(written, b"{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_locations_are_listed_as_sent_and_non_ascii_ones_counted() {
    let h = Harness::start().await;
    let ascii = h.upload_sample("tone-1khz.wav").await;
    // Accepted: an S3 key may hold any character. The SDK sends it as raw UTF-8.
    let unicode = format!("s3://{}/incoming/café ☕.wav", h.bucket);
    // Accepted too (the scheme is case-insensitive), and listed as sent, not as parsed.
    let upper = format!("S3://{}/incoming/upper.wav", h.bucket);
    for location in [&ascii, &unicode, &upper] {
        h.sagemaker
            .invoke_endpoint_async()
            .endpoint_name("cochl-sense")
            .input_location(location)
            .content_type("audio/wav")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{location} refused: {e:?}"));
    }

    // Not UTF-8 (Latin-1 é): refused as SageMaker refuses an unparsable location, counted,
    // not listed.
    let addr = h.emulator.addr().to_string();
    let mut request = format!(
        "POST /endpoints/cochl-sense/async-invocations HTTP/1.1\r\nhost: {addr}\r\n\
         connection: close\r\ncontent-length: 0\r\nx-amzn-sagemaker-inputlocation: s3://{}/caf",
        h.bucket
    )
    .into_bytes();
    request.extend_from_slice(b"\xe9.wav\r\n\r\n");
    let (status, answer) = http_raw(&addr, &request).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: validationerror"),
        "{answer}"
    );
    assert!(
        answer.contains(
            "at 'inputLocation' failed to satisfy constraint: Member must be valid UTF-8"
        ),
        "{answer}"
    );

    // Throttled before validation, still counted: the count is of what clients send.
    h.admin("POST", "/_emulator/faults", r#"{"throttle_next": 1}"#)
        .await;
    let err = h
        .sagemaker
        .invoke_endpoint_async()
        .endpoint_name("cochl-sense")
        .input_location(&unicode)
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");

    let stats = h.stats().await;
    assert_eq!(stats["accepted"], 3);
    assert_eq!(stats["validation_errors"], 1);
    assert_eq!(stats["throttled"], 1);
    assert_eq!(stats["non_ascii_input_locations"], 3);

    let (status, body) = h.admin("GET", "/_emulator/input-locations", "").await;
    assert_eq!(status, 200);
    let listed: InputLocations = serde_json::from_value(body).expect("the listing's shape");
    assert_eq!(
        listed.input_locations,
        [ascii.clone(), unicode.clone(), upper.clone()]
    );
    assert_eq!(listed.non_printable_ascii(), [unicode.as_str()]);

    // Reset forgets them.
    h.admin("POST", "/_emulator/reset", "").await;
    let (_, body) = h.admin("GET", "/_emulator/input-locations", "").await;
    assert_eq!(body, serde_json::json!({ "input_locations": [] }));
}

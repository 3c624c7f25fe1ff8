//! The sample events in `events/` (used with `cargo lambda invoke`) must stay consistent with
//! the domain: their keys decode, their notifications parse, and the inference id they carry
//! is the one the domain derives for the uploaded object.

use std::collections::HashMap;
use std::path::PathBuf;

use cochl_core::content_type::{resolve_content_type, CochlContentType, ObjectFacts};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::ObjectVersion;
use cochl_core::keys::{decode_event_key, S3Uri, Sequencer};
use cochl_core::notification::{parse_notification, InferenceOutcome};
use cochl_core::sensitivity::SensitivityConfig;
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("sample event exists");
    serde_json::from_str(&text).expect("sample event is JSON")
}

fn sns_message(name: &str) -> String {
    event(name)["Records"][0]["Sns"]["Message"]
        .as_str()
        .expect("SNS message is a string")
        .to_string()
}

const UPLOADED: &str = "incoming/street recordings/red flower (2) café.wav";

#[test]
fn s3_put_event_key_decodes_and_names_a_wav() {
    let put = event("s3-put.json");
    let object = &put["Records"][0]["s3"]["object"];
    let key = decode_event_key(object["key"].as_str().expect("key")).expect("decodes");
    assert_eq!(key, UPLOADED);
    let metadata = HashMap::new();
    let facts = ObjectFacts {
        content_type: None,
        key: &key,
        metadata: &metadata,
    };
    assert_eq!(resolve_content_type(&facts), Ok(CochlContentType::Wav));
}

#[test]
fn success_notification_points_back_at_the_upload_with_our_inference_id() {
    let put = event("s3-put.json");
    let record = &put["Records"][0];
    let object = &record["s3"]["object"];
    let bucket = record["s3"]["bucket"]["name"].as_str().expect("bucket");
    let key = decode_event_key(object["key"].as_str().expect("key")).expect("decodes");
    let version = ObjectVersion {
        version_id: object["versionId"].as_str().map(str::to_string),
        etag: object["eTag"].as_str().map(str::to_string),
        sequencer: object["sequencer"]
            .as_str()
            .map(|s| Sequencer::parse(s).expect("hex")),
        event_time_ms: 0,
    };
    let expected_id = InferenceId::for_object(bucket, &key, &version);

    let notification = parse_notification(&sns_message("sns-success.json")).expect("parses");
    assert_eq!(notification.inference_id, expected_id.as_str());
    assert_eq!(
        notification.request.input_location,
        Some(S3Uri::new(bucket, key).expect("valid"))
    );
    let attributes = notification.request.custom_attributes.expect("sent");
    let sensitivity = SensitivityConfig::parse(&attributes).expect("our own header parses");
    assert_eq!(
        sensitivity.to_custom_attributes().expect("fits"),
        Some(attributes)
    );
    match notification.outcome {
        InferenceOutcome::Succeeded {
            output_location, ..
        } => {
            let output = output_location.expect("output location");
            assert_eq!(output.bucket(), bucket);
            assert!(output.key().starts_with("results/") && output.key().ends_with(".out"));
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn failure_notification_keeps_reason_and_location() {
    let notification = parse_notification(&sns_message("sns-failure.json")).expect("parses");
    match notification.outcome {
        InferenceOutcome::Failed {
            status,
            reason,
            failure_location,
        } => {
            assert_eq!(status, "Failed");
            assert!(reason.starts_with("ClientError: Received server error (500)"));
            assert!(failure_location
                .expect("location")
                .key()
                .starts_with("failures/"));
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

#[test]
fn s3_test_event_has_no_records() {
    let test_event = event("s3-test-event.json");
    assert_eq!(test_event["Event"], "s3:TestEvent");
    assert!(test_event.get("Records").is_none());
}

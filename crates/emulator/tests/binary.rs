//! The `cochl-emulator` binary: configuration from the environment, the LISTENING line,
//! a full inference with clients from the standard AWS environment, and clean exits on
//! stdin EOF and SIGTERM.

mod common;

use common::{http, sagemaker_client, AwsResources};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use testkit::wait::{until_blocking, EXIT_DEADLINE};

/// Starts the binary with `args`, the AWS environment pointing at moto, and `extra` env.
fn spawn(args: &[&str], extra: &[(&str, &str)]) -> (Child, String) {
    let moto = testkit::shared_moto().expect("moto");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cochl-emulator"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a line on stdout");
    let url = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
}

/// Waits (bounded) for the child to exit and returns its exit code.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let exited = until_blocking("the emulator to exit", EXIT_DEADLINE, || {
        Ok(child.try_wait()?.map(|status| status.code()))
    });
    exited.unwrap_or_else(|e| {
        let _ = child.kill();
        panic!("{e:#}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_an_inference_and_exits_when_stdin_closes() {
    let aws = AwsResources::create().await;
    let output = format!("s3://{}/results", aws.bucket);
    let (mut child, url) = spawn(
        &[
            "--exit-on-stdin-eof",
            "--failure-path",
            &format!("s3://{}/failures", aws.bucket),
        ],
        &[
            ("COCHL_EMULATOR_OUTPUT_PATH", output.as_str()),
            ("COCHL_EMULATOR_SUCCESS_TOPIC", aws.success_topic.as_str()),
            ("COCHL_EMULATOR_ERROR_TOPIC", aws.error_topic.as_str()),
            ("COCHL_EMULATOR_ENDPOINT_NAME", "cochl-dev"),
        ],
    );
    let addr = url.trim_start_matches("http://").to_owned();
    assert_eq!(http(&addr, "GET", "/ping", &[], b"").await.status, 200);

    aws.s3
        .put_object()
        .bucket(&aws.bucket)
        .key("incoming/tone.wav")
        .body(common::sample("tone-1khz.wav").into())
        .send()
        .await
        .expect("upload");
    let sagemaker = sagemaker_client(&url).await;
    let accepted = sagemaker
        .invoke_endpoint_async()
        .endpoint_name("cochl-dev")
        .input_location(format!("s3://{}/incoming/tone.wav", aws.bucket))
        .content_type("audio/wav")
        .send()
        .await
        .expect("accepted");
    let message = common::next_message(&aws.sqs, &aws.success_queue).await;
    let notification =
        cochl_core::notification::parse_notification(&message).expect("notification");
    assert!(notification.is_success());
    assert_eq!(
        Some(notification.inference_id.as_str()),
        accepted.inference_id()
    );
    assert_eq!(
        notification.request.endpoint_name.as_deref(),
        Some("cochl-dev")
    );

    drop(child.stdin.take());
    assert_eq!(wait_exit(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_cleanly_on_sigterm() {
    let (mut child, url) = spawn(
        &[
            "--output-path=s3://some-bucket/out",
            "--failure-path=s3://some-bucket/fail",
        ],
        &[],
    );
    let addr = url.trim_start_matches("http://").to_owned();
    assert_eq!(http(&addr, "GET", "/ping", &[], b"").await.status, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert_eq!(wait_exit(&mut child), Some(0));
}

#[test]
fn refuses_a_non_loopback_address_and_bad_flags() {
    for args in [
        vec![
            "--bind",
            "0.0.0.0",
            "--output-path",
            "s3://abc/x",
            "--failure-path",
            "s3://abc/y",
        ],
        vec!["--output-path", "s3://abc/x"],
        vec!["--frobnicate"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cochl-emulator"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("binary runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("cochl-emulator: "), "{stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_cochl-emulator"))
        .arg("--help")
        .output()
        .expect("binary runs");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--exit-on-stdin-eof"));
}

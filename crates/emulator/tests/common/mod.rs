//! Shared test harness: moto (S3, SNS, SQS) from testkit, an emulator in-process, the real
//! SageMaker Runtime SDK client pointed at it, and SQS queues subscribed to both topics.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncOutput;
use aws_smithy_types::retry::RetryConfig;
use cochl_core::keys::S3Uri;
use cochl_emulator::{start, EmulatorConfig, RunningEmulator, S3Prefix};

use testkit::messaging::{create_topic, subscribed_queue};
use testkit::wait;
pub use testkit::wait::NOTIFICATION_DEADLINE;
/// The raw PCM content type of the PCM sample.
pub const PCM_CONTENT_TYPE: &str = "audio/x-raw; rate=16000; format=s16le; channels=1";

/// Which topic's queue to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// The success topic.
    Success,
    /// The error topic.
    Error,
}

/// Everything one test needs, isolated by unique names.
pub struct Harness {
    pub emulator: RunningEmulator,
    pub config: EmulatorConfig,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sagemaker: aws_sdk_sagemakerruntime::Client,
    pub bucket: String,
    pub success_queue: String,
    pub error_queue: String,
    /// Notifications received while waiting for another inference.
    stash: std::sync::Mutex<Vec<(Topic, String, String)>>,
}

/// The bytes of a file in `samples/`.
pub fn sample(name: &str) -> Vec<u8> {
    testkit::sample(name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A SageMaker Runtime client for `url` that never retries, so every call is one request.
pub async fn sagemaker_client(url: &str) -> aws_sdk_sagemakerruntime::Client {
    let sdk = testkit::sdk_config(url).await;
    let config = aws_sdk_sagemakerruntime::config::Builder::from(&sdk)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(config)
}

/// A bucket, two topics and two queues (raw delivery) on moto.
pub struct AwsResources {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub success_topic: String,
    pub error_topic: String,
    pub success_queue: String,
    pub error_queue: String,
}

impl AwsResources {
    pub async fn create() -> Self {
        let sdk = testkit::shared_sdk_config().await;
        let s3 = testkit::s3_client(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let bucket = testkit::unique_name("emu");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let success_topic = create_topic(&sns, &testkit::unique_name("emu-ok"))
            .await
            .expect("topic");
        let error_topic = create_topic(&sns, &testkit::unique_name("emu-err"))
            .await
            .expect("topic");
        let (_, success_queue) = subscribed_queue(&sns, &sqs, &success_topic, "emu-q", true, None)
            .await
            .expect("subscribed queue");
        let (_, error_queue) = subscribed_queue(&sns, &sqs, &error_topic, "emu-q", true, None)
            .await
            .expect("subscribed queue");
        Self {
            s3,
            sns,
            sqs,
            bucket,
            success_topic,
            error_topic,
            success_queue,
            error_queue,
        }
    }
}

impl Harness {
    /// A harness with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A harness whose configuration `customise` may change before start.
    pub async fn start_with(customise: impl FnOnce(&mut EmulatorConfig)) -> Self {
        let aws = AwsResources::create().await;
        let mut config = EmulatorConfig::new(
            S3Prefix::parse(&format!("s3://{}/results", aws.bucket)).expect("output path"),
            S3Prefix::parse(&format!("s3://{}/failures", aws.bucket)).expect("failure path"),
        );
        config.success_topic = Some(aws.success_topic.clone());
        config.error_topic = Some(aws.error_topic.clone());
        customise(&mut config);
        let emulator = start(config.clone(), aws.s3.clone(), aws.sns.clone())
            .await
            .expect("emulator starts");
        let sagemaker = sagemaker_client(&emulator.url()).await;
        Self {
            emulator,
            config,
            s3: aws.s3,
            sqs: aws.sqs,
            sagemaker,
            bucket: aws.bucket,
            success_queue: aws.success_queue,
            error_queue: aws.error_queue,
            stash: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Uploads bytes to `incoming/<key>` and returns the `s3://` URI.
    pub async fn upload(&self, key: &str, bytes: Vec<u8>) -> String {
        let key = format!("incoming/{key}");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(bytes.into())
            .send()
            .await
            .expect("upload");
        format!("s3://{}/{key}", self.bucket)
    }

    /// Uploads a sample under its own name.
    pub async fn upload_sample(&self, name: &str) -> String {
        self.upload(name, sample(name)).await
    }

    /// `InvokeEndpointAsync` with a content type and optional custom attributes.
    pub async fn invoke(
        &self,
        input: &str,
        content_type: &str,
        custom_attributes: Option<&str>,
    ) -> InvokeEndpointAsyncOutput {
        self.sagemaker
            .invoke_endpoint_async()
            .endpoint_name(&self.config.endpoint_name)
            .input_location(input)
            .content_type(content_type)
            .accept("application/json")
            .set_custom_attributes(custom_attributes.map(str::to_owned))
            .send()
            .await
            .expect("invocation accepted")
    }

    /// The next notification on a topic's queue (deleted once read).
    pub async fn next_notification(&self, topic: Topic) -> String {
        let queue = match topic {
            Topic::Success => &self.success_queue,
            Topic::Error => &self.error_queue,
        };
        next_message(&self.sqs, queue).await
    }

    /// The notification on `topic` for `inference_id`; others received meanwhile are
    /// kept for later calls.
    pub async fn notification_for(&self, topic: Topic, inference_id: &str) -> String {
        let what = format!("the notification of {inference_id}");
        wait::until(&what, NOTIFICATION_DEADLINE, || async {
            {
                let mut stash = self.stash.lock().expect("stash");
                if let Some(index) = stash
                    .iter()
                    .position(|(t, id, _)| *t == topic && id == inference_id)
                {
                    return Ok(Some(stash.remove(index).2));
                }
            }
            let message = self.next_notification(topic).await;
            let parsed = cochl_core::notification::parse_notification(&message)?;
            self.stash
                .lock()
                .expect("stash")
                .push((topic, parsed.inference_id, message));
            Ok(None)
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Asserts that no message is waiting on a topic's queue.
    pub async fn assert_no_message(&self, topic: Topic) {
        let queue = match topic {
            Topic::Success => &self.success_queue,
            Topic::Error => &self.error_queue,
        };
        let received = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive");
        assert!(
            received.messages().is_empty(),
            "unexpected message on {topic:?}: {:?}",
            received.messages()
        );
    }

    /// Reads an object by `s3://` URI.
    pub async fn read(&self, uri: &str) -> Vec<u8> {
        let uri = S3Uri::parse(uri).expect("s3 uri");
        self.s3
            .get_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .send()
            .await
            .unwrap_or_else(|e| panic!("read {uri}: {e:?}"))
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// An admin call; returns the status and the JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let response = http(
            &self.emulator.addr().to_string(),
            method,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
        let json = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
        (response.status, json)
    }

    /// `GET /_emulator/stats`.
    pub async fn stats(&self) -> serde_json::Value {
        let (status, stats) = self.admin("GET", "/_emulator/stats", "").await;
        assert_eq!(status, 200);
        stats
    }

    /// Polls the stats until `done` holds (bounded).
    pub async fn wait_for_stats(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let done = &done;
        wait::until_every(
            "the emulator's stats to match",
            NOTIFICATION_DEADLINE,
            Duration::from_millis(20),
            || async move { Ok(Some(self.stats().await).filter(done)) },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// Receives one message from a queue within [`NOTIFICATION_DEADLINE`], deleting it.
pub async fn next_message(sqs: &aws_sdk_sqs::Client, queue: &str) -> String {
    testkit::messaging::receive(sqs, queue, 1, NOTIFICATION_DEADLINE)
        .await
        .expect("receive")
        .pop()
        .unwrap_or_else(|| panic!("no message on {queue} in time"))
}

pub use testkit::http::RawResponse;

/// A minimal HTTP/1.1 client for what the SDK cannot send (and the admin API).
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    testkit::http::http(addr, method, path, headers, body)
        .await
        .expect("HTTP exchange with the emulator")
}

/// Sends one request given as raw bytes (headers the `&str` helpers cannot carry, such as
/// non-UTF-8 ones) and returns the status and the whole answer, decoded lossily.
pub async fn http_raw(addr: &str, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the emulator");
    stream.write_all(request).await.expect("send the request");
    let mut raw = Vec::new();
    tokio::time::timeout(NOTIFICATION_DEADLINE, stream.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

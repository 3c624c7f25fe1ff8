//! The whole pipeline on this machine: moto for S3, SQS, SNS and DynamoDB, the SageMaker
//! async emulator, and the three functions' handlers, wired as `template.yaml` wires them.
//!
//! | AWS (template.yaml) | here |
//! |---|---|
//! | S3 notification (prefix `incoming/`) → submit | S3 notification → SQS queue → pump → submit handler |
//! | SageMaker success/error topics → on-result | topics → SQS queue → pump → on-result handler (SNS envelope wrapped as Lambda's SNS event) |
//! | Lambda async retries (2) → on-failure SQS destination | pump retries twice, then sends `{event, error}` to a dead-letter queue |
//! | detections topic | detections topic, with an SQS queue subscribed (raw delivery) for inspection |
//!
//! The handlers are the very functions the Lambda binaries run (`cochl_submit::handle`,
//! `cochl_on_result::handle`); only the delivery differs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use cochl_aws::clients::SdkConfig;
use cochl_aws::dynamo::{provision, DynamoStore};
use cochl_aws::records::JobRecord;
use cochl_aws::settings::{ResultSettings, SubmitSettings};
use cochl_core::detections::MergeOptions;
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::SensitivityConfig;
use cochl_emulator::{EmulatorConfig, RunningEmulator, S3Prefix};
use cochl_on_result::ResultHandler;
use cochl_submit::Submitter;
use futures_util::future::BoxFuture;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use testkit::messaging::{create_queue, create_topic, queue_arn};
use testkit::{s3_client, sdk_config, unique_name, MotoServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pump::{pump, Delivery, Failure};

/// How long one pumped invocation may take: the functions' Lambda timeout.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Adapts a function's handler to a pump as the Lambda runtime calls it: every invocation
/// shares the handler's state and gets a deadline [`INVOCATION_TIMEOUT`] away; only whether
/// it failed, and why (the runtime's `Diagnostic`: its class and message), goes back to the
/// pump (which retries and dead-letters).
fn invocation<S, F, Fut, T, E>(
    state: Arc<S>,
    handle: F,
) -> impl Fn(Value) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync + 'static
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Value, Option<Instant>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    E: Into<Diagnostic>,
{
    move |payload| {
        let deadline = Some(Instant::now() + INVOCATION_TIMEOUT);
        let outcome = handle(state.clone(), payload, deadline);
        Box::pin(async move {
            outcome.await.map(|_| ()).map_err(|error| {
                let diagnostic: Diagnostic = error.into();
                Failure {
                    error_type: diagnostic.error_type,
                    message: diagnostic.error_message,
                }
            })
        })
    }
}

/// The prefix uploads go under, as in the template's default.
pub const INPUT_PREFIX: &str = "incoming/";

/// What to start; defaults suit the demo and most tests.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Prefix of every resource name (made unique per process).
    pub name_prefix: String,
    /// The emulator's concurrency limit.
    pub max_concurrent: usize,
    /// How windows merge.
    pub merge: MergeOptions,
    /// Stack default sensitivity.
    pub default_sensitivity: SensitivityConfig,
    /// Largest object submitted.
    pub max_object_bytes: u64,
    /// Attempts per InvokeEndpointAsync.
    pub max_attempts: u32,
    /// Start the delivery pumps (the default). With `false`, S3 events and SageMaker
    /// notifications stay in the submit and results queues for a test to receive and
    /// deliver to the handlers itself (e.g. replaying them duplicated and reordered).
    pub pumps: bool,
    /// Transient faults on the functions' own DynamoDB, S3 and SNS calls (reliability
    /// tests); the emulator and the test's own clients are never affected.
    pub function_faults: Option<testkit::faults::FaultInjector>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            name_prefix: "cochl".into(),
            max_concurrent: 4,
            merge: MergeOptions::default(),
            default_sensitivity: SensitivityConfig::default(),
            max_object_bytes: 1 << 30,
            max_attempts: 8,
            pumps: true,
            function_faults: None,
        }
    }
}

/// Names and addresses of everything the stack created.
#[derive(Debug, Clone)]
pub struct Resources {
    /// The bucket uploads go to and results come back to, as in the template.
    pub bucket: String,
    /// The DynamoDB table the functions share.
    pub table: String,
    /// SageMaker's success topic.
    pub success_topic: String,
    /// SageMaker's error topic.
    pub error_topic: String,
    /// The users' detections topic.
    pub detections_topic: String,
    /// S3 notifications for submit.
    pub submit_queue: String,
    /// SageMaker notifications for on-result.
    pub results_queue: String,
    /// Submit's on-failure destination.
    pub submit_dlq: String,
    /// On-result's on-failure destination.
    pub results_dlq: String,
    /// Every detection notification (raw delivery), for inspection.
    pub detections_queue: String,
}

/// A running local stack; [`LocalStack::shutdown`] stops it (dropping does too).
pub struct LocalStack {
    /// moto, when this stack started its own.
    _moto: Option<MotoServer>,
    /// The SDK configuration pointing at moto.
    pub config: SdkConfig,
    /// What was created.
    pub resources: Resources,
    /// The SageMaker emulator, for its admin API (faults, stats) in tests.
    pub emulator: RunningEmulator,
    /// The submit function's handler state.
    pub submitter: Arc<Submitter>,
    /// The on-result function's handler state.
    pub results: Arc<ResultHandler>,
    /// The job table.
    pub store: DynamoStore,
    /// S3 client (path-style).
    pub s3: aws_sdk_s3::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS client.
    pub sns: aws_sdk_sns::Client,
    stop: watch::Sender<bool>,
    pumps: Vec<JoinHandle<()>>,
}

/// Subscribes a queue to a topic (kept here for callers of the stack's API).
pub use testkit::messaging::subscribe_queue;

impl LocalStack {
    /// Starts moto (unless `moto_endpoint` is given), creates every resource, starts the
    /// emulator and the delivery pumps.
    pub async fn start(options: StackOptions, moto_endpoint: Option<&str>) -> Result<Self> {
        let (moto, endpoint) = match moto_endpoint {
            Some(endpoint) => (None, endpoint.to_string()),
            None => {
                let moto = MotoServer::start()?;
                let endpoint = moto.endpoint().to_string();
                (Some(moto), endpoint)
            }
        };
        let config = sdk_config(&endpoint).await;
        let s3 = s3_client(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);

        let name = |suffix: &str| unique_name(&format!("{}-{suffix}", options.name_prefix));
        let resources = Resources {
            bucket: name("audio"),
            table: name("jobs"),
            success_topic: create_topic(&sns, &name("sagemaker-success")).await?,
            error_topic: create_topic(&sns, &name("sagemaker-error")).await?,
            detections_topic: create_topic(&sns, &name("detections")).await?,
            submit_queue: name("submit-events"),
            results_queue: name("result-events"),
            submit_dlq: name("submit-dlq"),
            results_dlq: name("results-dlq"),
            detections_queue: name("detections-all"),
        };
        let mut urls = HashMap::new();
        for queue in [
            &resources.submit_queue,
            &resources.results_queue,
            &resources.submit_dlq,
            &resources.results_dlq,
            &resources.detections_queue,
        ] {
            urls.insert(queue.clone(), create_queue(&sqs, queue).await?);
        }
        s3.create_bucket()
            .bucket(&resources.bucket)
            .send()
            .await
            .context("creating the bucket")?;
        let filter = NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(INPUT_PREFIX)
                            .build(),
                    )
                    .build(),
            )
            .build();
        s3.put_bucket_notification_configuration()
            .bucket(&resources.bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(
                        QueueConfiguration::builder()
                            .queue_arn(queue_arn(&resources.submit_queue))
                            .events(Event::from("s3:ObjectCreated:*"))
                            .filter(filter)
                            .build()
                            .context("queue configuration")?,
                    )
                    .build(),
            )
            .send()
            .await
            .context("wiring S3 notifications")?;
        provision::create_table(&dynamodb, &resources.table).await?;
        for topic in [&resources.success_topic, &resources.error_topic] {
            subscribe_queue(&sns, topic, &resources.results_queue, false, None).await?;
        }
        subscribe_queue(
            &sns,
            &resources.detections_topic,
            &resources.detections_queue,
            true,
            None,
        )
        .await?;

        let mut emulator_config = EmulatorConfig::new(
            S3Prefix::parse(&format!("s3://{}/results", resources.bucket))?,
            S3Prefix::parse(&format!("s3://{}/failures", resources.bucket))?,
        );
        emulator_config.success_topic = Some(resources.success_topic.clone());
        emulator_config.error_topic = Some(resources.error_topic.clone());
        emulator_config.max_concurrent = options.max_concurrent;
        let emulator = cochl_emulator::start(emulator_config, s3.clone(), sns.clone()).await?;

        // The functions: the same handlers the Lambda binaries run, the SageMaker client
        // pointed at the emulator as AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME would.
        let sagemaker_config = sdk_config(&emulator.url()).await;
        let submit_settings = SubmitSettings {
            table_name: resources.table.clone(),
            endpoint_name: cochl_emulator::config::DEFAULT_ENDPOINT_NAME.to_string(),
            input_prefix: INPUT_PREFIX.to_string(),
            default_sensitivity: options.default_sensitivity.clone(),
            max_object_bytes: options.max_object_bytes,
            request_ttl_seconds: None,
            invocation_timeout_seconds: None,
            max_attempts: options.max_attempts,
            concurrency: 8,
            detections_topic_arn: resources.detections_topic.clone(),
        };
        let function_config = match &options.function_faults {
            Some(faults) => faults.wrap(&config),
            None => config.clone(),
        };
        let function_s3 = s3_client(&function_config);
        let mut submitter = Submitter::from_config(&function_config, submit_settings.clone());
        submitter.objects = cochl_aws::objects::Objects::new(function_s3.clone());
        submitter.endpoint = cochl_aws::endpoint::AsyncEndpoint::new(
            cochl_aws::clients::sagemaker(&sagemaker_config),
            submit_settings.endpoint_name.clone(),
            submit_settings.max_attempts,
        );
        let result_settings = ResultSettings {
            table_name: resources.table.clone(),
            detections_topic_arn: resources.detections_topic.clone(),
            merge: options.merge.clone(),
            query_url: None,
            max_result_bytes: 512 << 20,
            concurrency: 4,
        };
        let mut results = ResultHandler::from_config(&function_config, result_settings);
        results.objects = cochl_aws::objects::Objects::new(function_s3);
        let submitter = Arc::new(submitter);
        let results = Arc::new(results);

        let (stop, stopped) = watch::channel(false);
        let mut pumps = Vec::new();
        if options.pumps {
            pumps.extend([
                pump(
                    sqs.clone(),
                    urls[&resources.submit_queue].clone(),
                    urls[&resources.submit_dlq].clone(),
                    Delivery::S3,
                    invocation(
                        submitter.clone(),
                        |submitter, payload, deadline| async move {
                            cochl_submit::handle(&submitter, &payload, deadline).await
                        },
                    ),
                    stopped.clone(),
                ),
                pump(
                    sqs.clone(),
                    urls[&resources.results_queue].clone(),
                    urls[&resources.results_dlq].clone(),
                    Delivery::SnsToLambda,
                    invocation(results.clone(), |results, payload, deadline| async move {
                        cochl_on_result::handle(&results, &payload, deadline).await
                    }),
                    stopped,
                ),
            ]);
        }
        let store = DynamoStore::new(dynamodb, resources.table.clone());
        Ok(LocalStack {
            _moto: moto,
            config,
            resources,
            emulator,
            submitter,
            results,
            store,
            s3,
            sqs,
            sns,
            stop,
            pumps,
        })
    }

    /// Starts a stack on the moto server shared by this process (started on first use):
    /// what tests and the bench run on.
    pub async fn on_shared_moto(options: StackOptions) -> Result<Self> {
        let moto = testkit::shared_moto()
            .map_err(anyhow::Error::msg)
            .context("starting moto (run `make venv`)")?;
        Self::start(options, Some(moto.endpoint())).await
    }

    /// Receives (and deletes) messages from one of the stack's queues until `count`
    /// arrived or `within` passed (at least one receive either way, never more than
    /// `count` messages); returns their bodies as JSON (a body that is not JSON as a string).
    pub async fn receive(
        &self,
        queue: &str,
        count: usize,
        within: Duration,
    ) -> Result<Vec<serde_json::Value>> {
        let bodies = self.receive_raw(queue, count, within).await?;
        Ok(bodies
            .into_iter()
            .map(|body| serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
            .collect())
    }

    /// [`LocalStack::receive`], the bodies as they were sent.
    pub async fn receive_raw(
        &self,
        queue: &str,
        count: usize,
        within: Duration,
    ) -> Result<Vec<String>> {
        let url = self.queue_url(queue).await?;
        testkit::messaging::receive(&self.sqs, &url, count, within)
            .await
            .with_context(|| format!("receiving from {queue}"))
    }

    /// The URL of a queue the stack created.
    pub async fn queue_url(&self, name: &str) -> Result<String> {
        let output = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .with_context(|| format!("queue {name}"))?;
        output
            .queue_url()
            .map(str::to_string)
            .context("no queue URL")
    }

    /// Uploads a file under the input prefix; the S3 notification starts the flow.
    pub async fn upload(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> Result<S3Uri> {
        let mut request = self
            .s3
            .put_object()
            .bucket(&self.resources.bucket)
            .key(key)
            .body(bytes.into())
            .set_content_type(content_type.map(str::to_string));
        for (name, value) in metadata {
            request = request.metadata(*name, *value);
        }
        request
            .send()
            .await
            .with_context(|| format!("uploading {key}"))?;
        Ok(S3Uri::new(&self.resources.bucket, key)?)
    }

    /// Polls the job of a file until it is terminal (for at most `timeout`).
    pub async fn wait_terminal(&self, file: &S3Uri, timeout: Duration) -> Result<JobRecord> {
        self.wait_job(file, "to reach a terminal state", timeout, |job| {
            job.status.is_terminal()
        })
        .await
    }

    /// Polls the job of a file until `done` holds for it (for at most `within`); `what`
    /// completes the error, e.g. `"to be accepted"`.
    pub async fn wait_job(
        &self,
        file: &S3Uri,
        what: &str,
        within: Duration,
        done: impl Fn(&JobRecord) -> bool,
    ) -> Result<JobRecord> {
        let done = &done;
        testkit::wait::until(&format!("{file} {what}"), within, || async move {
            Ok(self.store.get_job(file).await?.filter(done))
        })
        .await
    }

    /// Calls the emulator's admin API (`/_emulator/...`): fault injection, scripted results,
    /// stats. Returns the status and the JSON body.
    pub async fn emulator_admin(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, serde_json::Value)> {
        let response = testkit::http::http(
            &self.emulator.addr().to_string(),
            method,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
        .with_context(|| format!("{method} {path} on the emulator"))?;
        Ok((response.status, response.json()))
    }

    /// Stops the pumps and the emulator (moto stops when dropped).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for pump in self.pumps {
            let _ = pump.await;
        }
        self.emulator.shutdown().await;
    }
}

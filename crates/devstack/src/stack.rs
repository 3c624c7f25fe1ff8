//! The whole pipeline on this machine: moto for S3, SQS, SNS and DynamoDB, the SageMaker
//! async emulator, and the functions' handlers, wired as `template.yaml` wires them.
//!
//! | AWS (template.yaml) | here |
//! |---|---|
//! | S3 notification (prefix `incoming/`) → submit queue → submit | the same queue in moto → [`event_source`] → `cochl_submit::handle_queue` |
//! | SageMaker success/error topics → results queue → on-result | the same topics and queue → [`event_source`] → `cochl_on_result::handle_queue` |
//! | each queue's redrive policy → its dead-letter queue | moto's redrive policy, same `maxReceiveCount` |
//! | `aws sqs start-message-move-task` | [`LocalStack::redrive`] |
//! | detections topic | detections topic, with an SQS queue subscribed (raw delivery) for inspection |
//!
//! The handlers are the very functions the Lambda binaries run; their configuration is read
//! by the same `*Settings::from_env`, from the stack's resource names, the test's
//! [`StackOptions::env`], every `COCHL_*` variable of this process, then local defaults
//! ([`function_env`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use cochl_aws::clients::SdkConfig;
use cochl_aws::dynamo::{provision, DynamoStore};
use cochl_aws::records::JobRecord;
use cochl_aws::settings::{
    self as vars, BackfillSettings, Env, ResultSettings, SubmitSettings, SweepSettings,
};
use cochl_backfill::Backfiller;
use cochl_core::detections::MergeOptions;
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::SensitivityConfig;
use cochl_emulator::{EmulatorConfig, RunningEmulator, S3Prefix};
use cochl_on_result::ResultHandler;
use cochl_submit::Submitter;
use cochl_sweeper::SweepReport;
use testkit::messaging::{create_topic, queue_arn};
use testkit::{s3_client, sdk_config, unique_name, MotoServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::event_source::{self, Mapping};

/// The prefix uploads go under, as in the template's default.
pub const INPUT_PREFIX: &str = "incoming/";

/// What to start; defaults suit the demo and most tests.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Prefix of every resource name (made unique per process).
    pub name_prefix: String,
    /// The emulator's concurrency limit (its instances × concurrent invocations).
    pub max_concurrent: usize,
    /// How windows merge (else `COCHL_INTERVAL_MARGIN`, ... as configured).
    pub merge: Option<MergeOptions>,
    /// Stack default sensitivity (else `COCHL_DEFAULT_SENSITIVITY`).
    pub default_sensitivity: Option<SensitivityConfig>,
    /// Largest object submitted (else `COCHL_MAX_OBJECT_BYTES`).
    pub max_object_bytes: Option<u64>,
    /// Attempts per InvokeEndpointAsync (else `COCHL_MAX_ATTEMPTS`).
    pub max_attempts: Option<u32>,
    /// Further function variables (`COCHL_*`), over this process's own.
    pub env: BTreeMap<String, String>,
    /// Start the event sources (the default). With `false`, S3 events and SageMaker
    /// notifications stay in the submit and results queues for a test to receive and
    /// deliver to the handlers itself (e.g. replaying them duplicated and reordered).
    pub event_sources: bool,
    /// The submit queue's event source mapping.
    pub submit_mapping: Mapping,
    /// The results queue's event source mapping.
    pub results_mapping: Mapping,
    /// Both queues' visibility timeout: how long a message that was received and not
    /// deleted stays hidden. Six times the function timeout, as the template sets it.
    pub visibility_timeout: Duration,
    /// Both queues' `maxReceiveCount`: receives before moto moves a message to the
    /// dead-letter queue.
    pub max_receive_count: u32,
    /// Transient faults on the functions' own DynamoDB, S3, SQS and SNS calls (reliability
    /// tests); the emulator and the test's own clients are never affected.
    pub function_faults: Option<testkit::faults::FaultInjector>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            name_prefix: "cochl".into(),
            max_concurrent: 4,
            merge: None,
            default_sensitivity: None,
            max_object_bytes: None,
            max_attempts: None,
            env: BTreeMap::new(),
            event_sources: true,
            submit_mapping: Mapping::default(),
            results_mapping: Mapping::default(),
            visibility_timeout: Duration::from_secs(60),
            max_receive_count: 5,
            function_faults: None,
        }
    }
}

impl StackOptions {
    /// The functions' time budget per invocation: a sixth of the visibility timeout, the
    /// template's rule, so a message is never received again while still being handled.
    pub fn function_timeout(&self) -> Duration {
        (self.visibility_timeout / 6).max(Duration::from_secs(1))
    }
}

/// What the functions read when nothing else sets it: the template's defaults, except the
/// deferral backoff, short so a local backlog drains in seconds.
const LOCAL_DEFAULTS: &[(&str, &str)] = &[
    (vars::INPUT_PREFIX, INPUT_PREFIX),
    (vars::MAX_ATTEMPTS, "8"),
    (vars::SUBMIT_CONCURRENCY, "8"),
    (vars::RESULT_CONCURRENCY, "4"),
    (vars::DEFER_BASE_SECONDS, "1"),
    (vars::DEFER_MAX_SECONDS, "8"),
    (vars::ENDPOINT_MAX_INSTANCES, "1"),
];

/// The functions' environment, by precedence: the stack's `resources` (names and URLs a
/// function cannot be pointed elsewhere by), then the test's `options`, then `process`'s
/// `COCHL_*` variables, then [`LOCAL_DEFAULTS`].
pub fn function_env(
    resources: &[(&str, String)],
    options: &BTreeMap<String, String>,
    process: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = LOCAL_DEFAULTS
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    env.extend(
        process
            .into_iter()
            .filter(|(name, _)| name.starts_with("COCHL_")),
    );
    env.extend(options.clone());
    env.extend(
        resources
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    );
    env
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
    /// S3 notifications (and resubmissions) for submit.
    pub submit_queue: String,
    /// SageMaker notifications for on-result.
    pub results_queue: String,
    /// The submit queue's dead-letter queue.
    pub submit_dlq: String,
    /// The results queue's dead-letter queue.
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
    /// The functions' environment, as [`function_env`] layered it.
    pub function_env: BTreeMap<String, String>,
    /// The functions' time budget per invocation.
    pub function_timeout: Duration,
    /// When and how often the sweeper runs (`COCHL_SWEEP_*`).
    pub sweep: SweepSettings,
    /// The job table.
    pub store: DynamoStore,
    /// S3 client (path-style).
    pub s3: aws_sdk_s3::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS client.
    pub sns: aws_sdk_sns::Client,
    stop: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
}

/// Subscribes a queue to a topic (kept here for callers of the stack's API).
pub use testkit::messaging::subscribe_queue;

/// Creates a queue with the stack's visibility timeout, 14 days of retention and, when a
/// dead-letter queue is given, a redrive policy to it.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility: Duration,
    dead_letter: Option<(&str, u32)>,
) -> Result<String> {
    let mut request = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().max(1).to_string(),
        )
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600");
    if let Some((dlq, max_receive_count)) = dead_letter {
        let policy = serde_json::json!({
            "deadLetterTargetArn": queue_arn(dlq),
            "maxReceiveCount": max_receive_count,
        });
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let output = request
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    output
        .queue_url()
        .map(str::to_string)
        .context("CreateQueue returned no URL")
}

impl LocalStack {
    /// Starts moto (unless `moto_endpoint` is given), creates every resource, starts the
    /// emulator and the event sources.
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
        let visibility = options.visibility_timeout;
        let mut urls = HashMap::new();
        for (queue, dead_letter) in [
            (&resources.submit_dlq, None),
            (&resources.results_dlq, None),
            (&resources.detections_queue, None),
            (
                &resources.submit_queue,
                Some((resources.submit_dlq.as_str(), options.max_receive_count)),
            ),
            (
                &resources.results_queue,
                Some((resources.results_dlq.as_str(), options.max_receive_count)),
            ),
        ] {
            urls.insert(
                queue.clone(),
                create_queue(&sqs, queue, visibility, dead_letter).await?,
            );
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
                            .events(Event::from("s3:ObjectRemoved:*"))
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

        // The functions: the same handlers the Lambda binaries run, configured by the same
        // `from_env`, the SageMaker client pointed at the emulator as
        // AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME would.
        let function_env = function_env(
            &[
                (vars::TABLE_NAME, resources.table.clone()),
                (vars::BUCKET, resources.bucket.clone()),
                (
                    vars::ENDPOINT_NAME,
                    cochl_emulator::config::DEFAULT_ENDPOINT_NAME.to_string(),
                ),
                (
                    vars::DETECTIONS_TOPIC_ARN,
                    resources.detections_topic.clone(),
                ),
                (
                    vars::SUBMIT_QUEUE_URL,
                    urls[&resources.submit_queue].clone(),
                ),
                (
                    vars::MAX_RECEIVE_COUNT,
                    options.max_receive_count.to_string(),
                ),
                // The emulator is the endpoint: one instance of `max_concurrent`.
                (
                    vars::ENDPOINT_CONCURRENCY,
                    options.max_concurrent.to_string(),
                ),
            ],
            &options.env,
            std::env::vars(),
        );
        let env = Env(|name: &str| function_env.get(name).cloned());
        let mut submit_settings =
            SubmitSettings::from_env(&env).context("the submit function's configuration")?;
        let mut result_settings =
            ResultSettings::from_env(&env).context("the on-result function's configuration")?;
        let sweep_settings =
            SweepSettings::from_env(&env).context("the sweeper's configuration")?;
        if let Some(sensitivity) = &options.default_sensitivity {
            submit_settings.default_sensitivity = sensitivity.clone();
        }
        if let Some(bytes) = options.max_object_bytes {
            submit_settings.max_object_bytes = bytes;
        }
        if let Some(attempts) = options.max_attempts {
            submit_settings.max_attempts = attempts;
        }
        if let Some(merge) = &options.merge {
            result_settings.merge = merge.clone();
        }

        let sagemaker_config = sdk_config(&emulator.url()).await;
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
        let mut results = ResultHandler::from_config(&function_config, result_settings);
        results.objects = cochl_aws::objects::Objects::new(function_s3);
        let submitter = Arc::new(submitter);
        let results = Arc::new(results);

        let (stop, _) = watch::channel(false);
        let store = DynamoStore::new(dynamodb, resources.table.clone());
        let mut stack = LocalStack {
            _moto: moto,
            config,
            resources,
            emulator,
            submitter,
            results,
            function_env,
            function_timeout: options.function_timeout(),
            sweep: sweep_settings,
            store,
            s3,
            sqs,
            sns,
            stop,
            sources: Vec::new(),
        };
        if options.event_sources {
            stack
                .start_event_sources(options.submit_mapping, options.results_mapping)
                .await?;
        }
        Ok(stack)
    }

    /// Starts the two event source mappings (submit queue → submit, results queue →
    /// on-result), for a stack started without them (a test that first fills a queue).
    pub async fn start_event_sources(&mut self, submit: Mapping, results: Mapping) -> Result<()> {
        let timeout = self.function_timeout;
        let submitter = self.submitter.clone();
        self.sources.extend(event_source::start(
            self.sqs.clone(),
            self.queue_url(&self.resources.submit_queue).await?,
            queue_arn(&self.resources.submit_queue),
            submit,
            move |event: SqsEvent| {
                let submitter = submitter.clone();
                async move {
                    let deadline = Some(Instant::now() + timeout);
                    Ok(cochl_submit::handle_queue(&submitter, &event, deadline).await)
                }
            },
            self.stop.subscribe(),
        ));
        let on_result = self.results.clone();
        self.sources.extend(event_source::start(
            self.sqs.clone(),
            self.queue_url(&self.resources.results_queue).await?,
            queue_arn(&self.resources.results_queue),
            results,
            move |event: SqsEvent| {
                let on_result = on_result.clone();
                async move {
                    let deadline = Some(Instant::now() + timeout);
                    Ok(cochl_on_result::handle_queue(&on_result, &event, deadline).await)
                }
            },
            self.stop.subscribe(),
        ));
        self.sources.push(self.start_sweeper());
        Ok(())
    }

    /// Runs the sweeper every `COCHL_SWEEP_INTERVAL_SECONDS`, as its EventBridge schedule
    /// does in AWS, until the stack stops.
    fn start_sweeper(&self) -> JoinHandle<()> {
        let on_result = self.results.clone();
        let interval = self.sweep.interval;
        let sweep_after = self.sweep.sweep_after;
        let budget = self.function_timeout;
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        let deadline = Some(Instant::now() + budget);
                        if let Err(error) = cochl_sweeper::sweep(&on_result, sweep_after, deadline).await {
                            tracing::error!(error = %error, "the sweep failed; the next one tries again");
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        })
    }

    /// One sweep now of every job SUBMITTED and unchanged since before `changed_before`
    /// (RFC 3339): what a test calls instead of waiting for the schedule.
    pub async fn sweep_before(&self, changed_before: &str) -> Result<SweepReport> {
        let deadline = Some(Instant::now() + self.function_timeout);
        Ok(cochl_sweeper::sweep_before(
            &self.results,
            changed_before,
            cochl_sweeper::MAX_JOBS_PER_RUN,
            deadline,
        )
        .await?)
    }

    /// The backfill function's handler state, configured as the other functions are (the
    /// same environment, the same merge settings as on-result); a test may change its
    /// settings (a remerge with new margins) before running a job with it.
    pub fn backfiller(&self) -> Result<Backfiller> {
        let env = Env(|name: &str| self.function_env.get(name).cloned());
        let mut settings =
            BackfillSettings::from_env(&env).context("the backfill function's configuration")?;
        settings.result = self.results.settings.clone();
        settings.default_sensitivity = self.submitter.settings.default_sensitivity.clone();
        settings.max_object_bytes = self.submitter.settings.max_object_bytes;
        Ok(Backfiller {
            results: (*self.results).clone(),
            settings,
        })
    }

    /// Moves every message of a dead-letter queue back to its source queue, as
    /// `aws sqs start-message-move-task` does in AWS; returns how many moved.
    pub async fn redrive(&self, dead_letter_queue: &str, source_queue: &str) -> Result<usize> {
        let dead = self.queue_url(dead_letter_queue).await?;
        let source = self.queue_url(source_queue).await?;
        event_source::move_messages(&self.sqs, &dead, &source).await
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

    /// Stops the event sources and the emulator (moto stops when dropped).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for source in self.sources {
            let _ = source.await;
        }
        self.emulator.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_cochl_variable_of_the_process_reaches_the_functions_below_the_stack_and_the_test() {
        let process = pairs(&[
            ("COCHL_MAX_IN_FLIGHT", "7"),
            ("COCHL_INTERVAL_MARGIN", "2"),
            ("COCHL_TABLE_NAME", "someone-elses"),
            ("COCHL_SOMETHING_NEW", "kept"),
            ("HOME", "/root"),
        ]);
        let options: BTreeMap<String, String> = pairs(&[("COCHL_INTERVAL_MARGIN", "3")])
            .into_iter()
            .collect();
        let env = function_env(
            &[(vars::TABLE_NAME, "the-stacks".to_string())],
            &options,
            process,
        );
        assert_eq!(env["COCHL_MAX_IN_FLIGHT"], "7", "the process's own");
        assert_eq!(env["COCHL_SOMETHING_NEW"], "kept", "every COCHL_ variable");
        assert_eq!(
            env["COCHL_INTERVAL_MARGIN"], "3",
            "the test's over the process's"
        );
        assert_eq!(
            env["COCHL_TABLE_NAME"], "the-stacks",
            "the stack's resources win"
        );
        assert_eq!(env[vars::DEFER_BASE_SECONDS], "1", "a local default");
        assert!(!env.contains_key("HOME"), "only COCHL_ variables");
    }
}

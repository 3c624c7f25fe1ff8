//! Every function's configuration, read once per cold start from environment variables.
//!
//! Each setting is documented in the README's configuration table; `template.yaml` sets them.
//! A missing or malformed value stops the cold start with an error naming the variable, so a
//! misconfigured stack fails loudly on its first event instead of mis-processing files.

use std::time::Duration;

use cochl_core::detections::MergeOptions;
use cochl_core::sensitivity::SensitivityConfig;

/// DynamoDB table holding jobs and detections (all functions).
pub const TABLE_NAME: &str = "COCHL_TABLE_NAME";
/// SageMaker async endpoint name (submit).
pub const ENDPOINT_NAME: &str = "COCHL_ENDPOINT_NAME";
/// Key prefix of uploads to analyse; other keys are ignored (submit).
pub const INPUT_PREFIX: &str = "COCHL_INPUT_PREFIX";
/// Stack default sensitivity JSON (submit).
pub const DEFAULT_SENSITIVITY: &str = "COCHL_DEFAULT_SENSITIVITY";
/// Largest object submitted, in bytes (submit).
pub const MAX_OBJECT_BYTES: &str = "COCHL_MAX_OBJECT_BYTES";
/// `X-Amzn-SageMaker-RequestTTLSeconds` (submit).
pub const REQUEST_TTL_SECONDS: &str = "COCHL_REQUEST_TTL_SECONDS";
/// `X-Amzn-SageMaker-InvocationTimeoutSeconds` (submit).
pub const INVOCATION_TIMEOUT_SECONDS: &str = "COCHL_INVOCATION_TIMEOUT_SECONDS";
/// Attempts per InvokeEndpointAsync call, the first included (submit).
pub const MAX_ATTEMPTS: &str = "COCHL_MAX_ATTEMPTS";
/// Records of one event submitted in parallel (submit).
pub const SUBMIT_CONCURRENCY: &str = "COCHL_SUBMIT_CONCURRENCY";
/// Notifications of one event handled in parallel (on-result).
pub const RESULT_CONCURRENCY: &str = "COCHL_RESULT_CONCURRENCY";
/// Topic receiving one detection notification per analysed file (on-result; submit, for
/// requests the endpoint refuses).
pub const DETECTIONS_TOPIC_ARN: &str = "COCHL_DETECTIONS_TOPIC_ARN";
/// Missing windows bridged inside one detection (on-result).
pub const INTERVAL_MARGIN: &str = "COCHL_INTERVAL_MARGIN";
/// Per-tag interval margins as JSON, e.g. `{"Siren": 2}` (on-result).
pub const TAG_MARGINS: &str = "COCHL_TAG_MARGINS";
/// Optional minimum probability for a window to count (on-result).
pub const MIN_PROBABILITY: &str = "COCHL_MIN_PROBABILITY";
/// Base URL of the query API, named in trimmed notifications (on-result, optional).
pub const QUERY_URL: &str = "COCHL_QUERY_URL";
/// Largest result document read, in bytes (on-result).
pub const MAX_RESULT_BYTES: &str = "COCHL_MAX_RESULT_BYTES";
/// Inferences accepted by the endpoint and not yet finished, at most (submit). Empty or 0:
/// [`ENDPOINT_MAX_INSTANCES`] × [`ENDPOINT_CONCURRENCY`] × [`IN_FLIGHT_FACTOR`].
pub const MAX_IN_FLIGHT: &str = "COCHL_MAX_IN_FLIGHT";
/// The endpoint's largest instance count, for the default in-flight limit (submit).
pub const ENDPOINT_MAX_INSTANCES: &str = "COCHL_ENDPOINT_MAX_INSTANCES";
/// Requests one instance processes at once, for the default in-flight limit (submit).
pub const ENDPOINT_CONCURRENCY: &str = "COCHL_ENDPOINT_CONCURRENCY";
/// URL of the submit queue: submit defers messages on it, on-result resubmits expired
/// requests through it (both).
pub const SUBMIT_QUEUE_URL: &str = "COCHL_SUBMIT_QUEUE_URL";
/// The submit queue's `maxReceiveCount`: a deferred message is re-enqueued before it could
/// reach it, so waiting for room never sends it to the dead-letter queue (submit).
pub const MAX_RECEIVE_COUNT: &str = "COCHL_MAX_RECEIVE_COUNT";
/// First deferral delay in seconds; it doubles per receive, with jitter (submit).
pub const DEFER_BASE_SECONDS: &str = "COCHL_DEFER_BASE_SECONDS";
/// Longest deferral delay in seconds (submit).
pub const DEFER_MAX_SECONDS: &str = "COCHL_DEFER_MAX_SECONDS";
/// Times a request that expired in the endpoint's queue is resubmitted before the job ends
/// FAILED (on-result).
pub const MAX_EXPIRY_RESUBMITS: &str = "COCHL_MAX_EXPIRY_RESUBMITS";

/// Where uploads whose key cannot travel in an HTTP header are copied before submission
/// (submit); a lifecycle rule empties it.
pub const STAGING_PREFIX: &str = "COCHL_STAGING_PREFIX";
/// How long a claim is held before another delivery may take it over (submit); unset: the
/// claiming invocation's remaining time plus a margin.
pub const CLAIM_LEASE_SECONDS: &str = "COCHL_CLAIM_LEASE_SECONDS";
/// How long a job may stay SUBMITTED, unchanged, before the sweeper settles it.
pub const SWEEP_AFTER_SECONDS: &str = "COCHL_SWEEP_AFTER_SECONDS";
/// How often the sweeper runs (its EventBridge schedule; the local stack's timer).
pub const SWEEP_INTERVAL_SECONDS: &str = "COCHL_SWEEP_INTERVAL_SECONDS";
/// The bucket the backfill function works on: tasks naming another bucket fail permanently.
pub const BUCKET: &str = "COCHL_BUCKET";
/// Tasks of one Batch Operations invocation handled at the same time by the backfill function.
pub const BACKFILL_CONCURRENCY: &str = "COCHL_BACKFILL_CONCURRENCY";
/// The function's memory in MB, as Lambda sets it.
pub const LAMBDA_MEMORY_MB: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// The async endpoint's payload limit.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1 << 30;

/// The default in-flight limit is the endpoint's full capacity times this: every instance
/// busy plus one request queued per slot, so no instance idles between files, while nothing
/// waits in SageMaker's own queue much longer than one inference.
pub const IN_FLIGHT_FACTOR: u32 = 2;

/// SageMaker's defaults for `RequestTTLSeconds` and `InvocationTimeoutSeconds`.
const SAGEMAKER_DEFAULT_TTL_SECONDS: u32 = 21_600;
const SAGEMAKER_DEFAULT_INVOCATION_TIMEOUT_SECONDS: u32 = 900;
/// Added to a request's longest possible life before its in-flight slot is presumed leaked
/// (its notification lost) and reclaimed, or its job swept.
const SLOT_GRACE_SECONDS: u64 = 900;
/// Memory assumed when Lambda does not say (the local stack): on-result's template size.
const DEFAULT_MEMORY_MB: u64 = 512;

/// The longest a request can live in SageMaker (queued plus running) with a grace period:
/// after that its notification would have come.
fn request_life(
    request_ttl_seconds: Option<u32>,
    invocation_timeout_seconds: Option<u32>,
) -> Duration {
    let ttl = request_ttl_seconds.unwrap_or(SAGEMAKER_DEFAULT_TTL_SECONDS);
    let run = invocation_timeout_seconds.unwrap_or(SAGEMAKER_DEFAULT_INVOCATION_TIMEOUT_SECONDS);
    Duration::from_secs(u64::from(ttl) + u64::from(run) + SLOT_GRACE_SECONDS)
}

/// How submit defers a message while the endpoint is full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferSettings {
    /// The submit queue's URL.
    pub queue_url: String,
    /// The queue's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// First delay; doubles per receive.
    pub base: Duration,
    /// Longest delay (SQS allows 12 hours of visibility, 15 minutes of delay).
    pub max: Duration,
}

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}: {problem}")]
pub struct SettingsError {
    /// The variable to fix; the message names it.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, variable: &'static str) -> Option<String> {
        (self.0)(variable).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, variable: &'static str) -> Result<String, SettingsError> {
        self.get(variable).ok_or(SettingsError {
            variable,
            problem: "is required".into(),
        })
    }

    /// The variable's value as `parse` reads it, `None` when the variable is unset; what
    /// `parse` objects to becomes the problem named with the variable.
    fn parsed<T, E: std::fmt::Display>(
        &self,
        variable: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, SettingsError> {
        self.get(variable)
            .map(|text| {
                parse(&text).map_err(|e| SettingsError {
                    variable,
                    problem: e.to_string(),
                })
            })
            .transpose()
    }

    fn number<T>(
        &self,
        variable: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, SettingsError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        self.parsed(variable, |text| {
            let value: T = text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?;
            if !range.contains(&value) {
                return Err(format!(
                    "{value} is outside {}..={}",
                    range.start(),
                    range.end()
                ));
            }
            Ok(value)
        })
    }
}

/// Configuration of the submit function.
#[derive(Debug, Clone)]
pub struct SubmitSettings {
    /// The job table.
    pub table_name: String,
    /// The SageMaker endpoint.
    pub endpoint_name: String,
    /// Only keys under this prefix are analysed.
    pub input_prefix: String,
    /// Stack default sensitivity.
    pub default_sensitivity: SensitivityConfig,
    /// Objects larger than this are rejected.
    pub max_object_bytes: u64,
    /// Queue time limit sent to SageMaker.
    pub request_ttl_seconds: Option<u32>,
    /// Processing time limit sent to SageMaker.
    pub invocation_timeout_seconds: Option<u32>,
    /// Attempts per InvokeEndpointAsync.
    pub max_attempts: u32,
    /// Records submitted in parallel.
    pub concurrency: usize,
    /// Where a request the endpoint refuses is notified (FAILED, like on-result's failures).
    pub detections_topic_arn: String,
    /// Inferences accepted and not yet finished, at most (admission control).
    pub max_in_flight: u32,
    /// How a message waits while the endpoint is full.
    pub defer: DeferSettings,
    /// Where uploads whose key is not printable ASCII are copied to be submitted.
    pub staging_prefix: String,
    /// A fixed claim lease; `None`: the claiming invocation's remaining time plus a margin.
    pub claim_lease: Option<Duration>,
}

impl SubmitSettings {
    /// How long an in-flight slot may be held before it is presumed leaked: the longest a
    /// request can wait plus run, plus a grace period. Its notification would have come.
    pub fn slot_lease(&self) -> Duration {
        request_life(self.request_ttl_seconds, self.invocation_timeout_seconds)
    }

    /// Reads the submit function's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        let default_sensitivity = env
            .parsed(DEFAULT_SENSITIVITY, SensitivityConfig::parse)?
            .unwrap_or_default();
        let input_prefix = (env.0)(INPUT_PREFIX).unwrap_or_else(|| "incoming/".to_string());
        let staging_prefix = staging_prefix(env)?;
        if input_prefix.starts_with(&staging_prefix) {
            // The staging prefix's lifecycle rule would delete the uploads themselves.
            return Err(SettingsError {
                variable: STAGING_PREFIX,
                problem: format!(
                    "{staging_prefix:?} contains the input prefix {input_prefix:?}: its lifecycle rule would delete uploads"
                ),
            });
        }
        Ok(SubmitSettings {
            table_name: env.required(TABLE_NAME)?,
            endpoint_name: env.required(ENDPOINT_NAME)?,
            input_prefix,
            default_sensitivity,
            max_object_bytes: env
                .number(MAX_OBJECT_BYTES, 1..=DEFAULT_MAX_OBJECT_BYTES)?
                .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
            request_ttl_seconds: env.number(REQUEST_TTL_SECONDS, 60..=21_600)?,
            invocation_timeout_seconds: env.number(INVOCATION_TIMEOUT_SECONDS, 1..=3_600)?,
            max_attempts: env.number(MAX_ATTEMPTS, 1..=20)?.unwrap_or(8),
            concurrency: env.number(SUBMIT_CONCURRENCY, 1..=64)?.unwrap_or(8),
            detections_topic_arn: env.required(DETECTIONS_TOPIC_ARN)?,
            max_in_flight: max_in_flight(env)?,
            defer: DeferSettings {
                queue_url: env.required(SUBMIT_QUEUE_URL)?,
                max_receive_count: env.number(MAX_RECEIVE_COUNT, 2..=1000)?.unwrap_or(5),
                base: Duration::from_secs(env.number(DEFER_BASE_SECONDS, 1..=900)?.unwrap_or(30)),
                max: Duration::from_secs(env.number(DEFER_MAX_SECONDS, 1..=43_200)?.unwrap_or(900)),
            },
            staging_prefix,
            claim_lease: env
                .number(CLAIM_LEASE_SECONDS, 1..=3_600)?
                .map(Duration::from_secs),
        })
    }
}

/// [`MAX_IN_FLIGHT`] when set to a positive number, else the endpoint's capacity
/// ([`ENDPOINT_MAX_INSTANCES`] × [`ENDPOINT_CONCURRENCY`], 1 × 4 when unset) × [`IN_FLIGHT_FACTOR`].
fn max_in_flight<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<u32, SettingsError> {
    if let Some(limit) = env.number(MAX_IN_FLIGHT, 0..=100_000)?.filter(|n| *n > 0) {
        return Ok(limit);
    }
    let instances = env.number(ENDPOINT_MAX_INSTANCES, 1..=1000)?.unwrap_or(1);
    let per_instance = env.number(ENDPOINT_CONCURRENCY, 1..=1000)?.unwrap_or(4);
    Ok(instances * per_instance * IN_FLIGHT_FACTOR)
}

/// [`STAGING_PREFIX`], `staging/` when unset: a prefix of printable ASCII ending in `/`.
fn staging_prefix<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, SettingsError> {
    let prefix = env
        .get(STAGING_PREFIX)
        .unwrap_or_else(|| "staging/".to_string());
    if prefix.ends_with('/') && prefix.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(prefix)
    } else {
        Err(SettingsError {
            variable: STAGING_PREFIX,
            problem: format!("{prefix:?} must be printable ASCII without spaces, ending in '/'"),
        })
    }
}

/// [`MAX_RESULT_BYTES`], by default a quarter of the function's memory: the result is held
/// whole while it is parsed as a stream (the merged segments are far smaller), and the rest
/// is the runtime's. A value over half the memory could crash the function instead of
/// failing the job `result_too_large`, so it is refused.
fn max_result_bytes<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<u64, SettingsError> {
    let memory_mb = env
        .number(LAMBDA_MEMORY_MB, 128..=10_240)?
        .unwrap_or(DEFAULT_MEMORY_MB);
    let memory = memory_mb << 20;
    match env.number(MAX_RESULT_BYTES, 1..=4 << 30)? {
        None => Ok(memory / 4),
        Some(limit) if limit <= memory / 2 => Ok(limit),
        Some(limit) => Err(SettingsError {
            variable: MAX_RESULT_BYTES,
            problem: format!(
                "{limit} bytes does not fit a {memory_mb} MB function: at most {} (half its memory)",
                memory / 2
            ),
        }),
    }
}

/// Configuration of the on-result function.
#[derive(Debug, Clone)]
pub struct ResultSettings {
    /// The job table.
    pub table_name: String,
    /// Where detection notifications go.
    pub detections_topic_arn: String,
    /// How windows merge into detections.
    pub merge: MergeOptions,
    /// Base URL of the query API, for trimmed notifications.
    pub query_url: Option<String>,
    /// Largest result document read.
    pub max_result_bytes: u64,
    /// Notifications of one event handled at the same time.
    pub concurrency: usize,
    /// Resubmissions of a request that expired in the endpoint's queue.
    pub max_expiry_resubmits: u32,
    /// Where expired requests are resubmitted.
    pub submit_queue_url: String,
}

impl ResultSettings {
    /// Reads the on-result function's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        let tag_margins = env
            .parsed(TAG_MARGINS, |text| {
                serde_json::from_str(text)
                    .map_err(|e| format!("expected a JSON object of tag name to whole number: {e}"))
            })?
            .unwrap_or_default();
        let merge = MergeOptions {
            default_margin: env.number(INTERVAL_MARGIN, 0..=3600)?.unwrap_or(0),
            tag_margins,
            min_probability: env.number(MIN_PROBABILITY, 0.0..=1.0)?,
        };
        Ok(ResultSettings {
            table_name: env.required(TABLE_NAME)?,
            detections_topic_arn: env.required(DETECTIONS_TOPIC_ARN)?,
            merge,
            query_url: env.get(QUERY_URL),
            max_result_bytes: max_result_bytes(env)?,
            concurrency: env.number(RESULT_CONCURRENCY, 1..=64)?.unwrap_or(4),
            max_expiry_resubmits: env.number(MAX_EXPIRY_RESUBMITS, 0..=10)?.unwrap_or(2),
            submit_queue_url: env.required(SUBMIT_QUEUE_URL)?,
        })
    }
}

/// Configuration of the sweeper: on-result's (it settles jobs exactly as a notification
/// would) and when a job counts as forgotten.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// How results are read, merged, recorded and notified.
    pub result: ResultSettings,
    /// A job SUBMITTED and unchanged for longer is settled from what S3 holds.
    pub sweep_after: Duration,
    /// How often the sweeper runs.
    pub interval: Duration,
}

impl SweepSettings {
    /// Reads the sweeper's variables; [`SWEEP_AFTER_SECONDS`] defaults to the longest a
    /// request can live in SageMaker (request TTL plus invocation timeout) plus 15 minutes.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        let life = request_life(
            env.number(REQUEST_TTL_SECONDS, 60..=21_600)?,
            env.number(INVOCATION_TIMEOUT_SECONDS, 1..=3_600)?,
        );
        Ok(SweepSettings {
            result: ResultSettings::from_env(env)?,
            sweep_after: env
                .number(SWEEP_AFTER_SECONDS, 1..=7 * 86_400)?
                .map_or(life, Duration::from_secs),
            interval: Duration::from_secs(
                env.number(SWEEP_INTERVAL_SECONDS, 1..=86_400)?
                    .unwrap_or(300),
            ),
        })
    }
}

/// Configuration of the backfill function: on-result's (a remerge records detections exactly
/// as a result does; the submit queue is where analyse and reanalyse requests go) and what
/// it checks before queueing a task (submit's limits and default sensitivity).
#[derive(Debug, Clone)]
pub struct BackfillSettings {
    /// Remerges are recorded and notified with these; `submit_queue_url` takes the requests.
    pub result: ResultSettings,
    /// The stack's bucket.
    pub bucket: String,
    /// Submit's staged copies: never a backfill's object.
    pub staging_prefix: String,
    /// Objects larger than this fail their task (submit would reject them).
    pub max_object_bytes: u64,
    /// Stack default sensitivity, under a run's own.
    pub default_sensitivity: SensitivityConfig,
    /// Tasks of one invocation handled at once.
    pub concurrency: usize,
}

impl BackfillSettings {
    /// Reads the backfill function's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        Ok(BackfillSettings {
            result: ResultSettings::from_env(env)?,
            bucket: env.required(BUCKET)?,
            staging_prefix: staging_prefix(env)?,
            max_object_bytes: env
                .number(MAX_OBJECT_BYTES, 1..=DEFAULT_MAX_OBJECT_BYTES)?
                .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
            default_sensitivity: env
                .parsed(DEFAULT_SENSITIVITY, SensitivityConfig::parse)?
                .unwrap_or_default(),
            concurrency: env.number(BACKFILL_CONCURRENCY, 1..=64)?.unwrap_or(8),
        })
    }
}

/// Configuration of the query function.
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// The job table.
    pub table_name: String,
}

impl QuerySettings {
    /// Reads the query function's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        Ok(QuerySettings {
            table_name: env.required(TABLE_NAME)?,
        })
    }
}

/// How long the SDK may take to connect and to answer one call, so one hung connection
/// cannot eat the function's whole time budget.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn submit_defaults() {
        let s = SubmitSettings::from_env(&env(&[
            (TABLE_NAME, "jobs"),
            (ENDPOINT_NAME, "cochl-sense"),
            (
                DETECTIONS_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:detections",
            ),
            (SUBMIT_QUEUE_URL, "https://sqs/q"),
        ]))
        .expect("valid");
        assert_eq!(s.input_prefix, "incoming/");
        assert_eq!(s.max_in_flight, 8, "1 instance × 4 × the factor 2");
        assert_eq!(s.defer.max_receive_count, 5);
        assert_eq!(s.slot_lease(), Duration::from_secs(21_600 + 900 + 900));
        assert_eq!(s.max_object_bytes, 1 << 30);
        assert!(s.default_sensitivity.is_empty());
        assert_eq!(s.request_ttl_seconds, None);
        assert_eq!(s.max_attempts, 8);
        assert_eq!(
            s.detections_topic_arn,
            "arn:aws:sns:us-east-1:123456789012:detections"
        );
    }

    #[test]
    fn submit_reads_everything_and_names_bad_variables() {
        let s = SubmitSettings::from_env(&env(&[
            (TABLE_NAME, "jobs"),
            (ENDPOINT_NAME, "cochl-sense"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "https://sqs/q"),
            (ENDPOINT_MAX_INSTANCES, "3"),
            (ENDPOINT_CONCURRENCY, "5"),
            (INPUT_PREFIX, ""),
            (DEFAULT_SENSITIVITY, r#"{"default_sensitivity": 1}"#),
            (MAX_OBJECT_BYTES, "1000"),
            (REQUEST_TTL_SECONDS, "600"),
            (INVOCATION_TIMEOUT_SECONDS, "120"),
        ]))
        .expect("valid");
        assert_eq!(s.input_prefix, "", "an empty prefix means the whole bucket");
        assert_eq!(s.max_object_bytes, 1000);
        assert_eq!(s.request_ttl_seconds, Some(600));
        assert_eq!(s.invocation_timeout_seconds, Some(120));
        assert!(!s.default_sensitivity.is_empty());
        assert_eq!(s.max_in_flight, 30, "3 instances × 5 × the factor 2");

        let missing = SubmitSettings::from_env(&env(&[(TABLE_NAME, "jobs")])).unwrap_err();
        assert_eq!(missing.variable, ENDPOINT_NAME);
        let missing = SubmitSettings::from_env(&env(&[(TABLE_NAME, "jobs"), (ENDPOINT_NAME, "e")]))
            .unwrap_err();
        assert_eq!(missing.variable, DETECTIONS_TOPIC_ARN);
        for (variable, value) in [
            (REQUEST_TTL_SECONDS, "59"),
            (INVOCATION_TIMEOUT_SECONDS, "3601"),
            (MAX_OBJECT_BYTES, "lots"),
            (DEFAULT_SENSITIVITY, r#"{"default_sensitivity": 5}"#),
            (MAX_IN_FLIGHT, "-1"),
            (MAX_RECEIVE_COUNT, "1"),
        ] {
            let err = SubmitSettings::from_env(&env(&[
                (TABLE_NAME, "jobs"),
                (ENDPOINT_NAME, "e"),
                (DETECTIONS_TOPIC_ARN, "arn"),
                (SUBMIT_QUEUE_URL, "q"),
                (variable, value),
            ]))
            .unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
        }
    }

    #[test]
    fn result_settings() {
        let s = ResultSettings::from_env(&env(&[
            (TABLE_NAME, "jobs"),
            (
                DETECTIONS_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:detections",
            ),
            (SUBMIT_QUEUE_URL, "q"),
            (INTERVAL_MARGIN, "1"),
            (TAG_MARGINS, r#"{"Siren": 3}"#),
            (MIN_PROBABILITY, "0.4"),
        ]))
        .expect("valid");
        assert_eq!(s.merge.default_margin, 1);
        assert_eq!(s.merge.margin_for("Siren"), 3);
        assert_eq!(s.merge.min_probability, Some(0.4));
        assert_eq!(s.max_expiry_resubmits, 2);
        let err = ResultSettings::from_env(&env(&[
            (TABLE_NAME, "jobs"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "q"),
            (TAG_MARGINS, r#"{"Siren": -1}"#),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, TAG_MARGINS);
        let err = ResultSettings::from_env(&env(&[
            (TABLE_NAME, "jobs"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "q"),
            (MIN_PROBABILITY, "1.5"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, MIN_PROBABILITY);
    }

    #[test]
    fn the_result_limit_fits_the_function_memory() {
        let base = [
            (TABLE_NAME, "jobs"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "q"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            ResultSettings::from_env(&env(&vars))
        };
        // A quarter of the memory: 512 MB -> 128 MiB, 1024 MB -> 256 MiB.
        assert_eq!(with(&[]).expect("valid").max_result_bytes, 128 << 20);
        let bigger = with(&[(LAMBDA_MEMORY_MB, "1024")]).expect("valid");
        assert_eq!(bigger.max_result_bytes, 256 << 20);
        // Up to half the memory may be asked for; more could crash the function.
        let half = with(&[(LAMBDA_MEMORY_MB, "512"), (MAX_RESULT_BYTES, "268435456")]);
        assert_eq!(half.expect("valid").max_result_bytes, 256 << 20);
        let err = with(&[(LAMBDA_MEMORY_MB, "512"), (MAX_RESULT_BYTES, "268435457")]).unwrap_err();
        assert_eq!(err.variable, MAX_RESULT_BYTES, "{err}");
    }

    #[test]
    fn sweep_waits_for_the_longest_request_life_by_default() {
        let vars = [
            (TABLE_NAME, "jobs"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "q"),
            (REQUEST_TTL_SECONDS, "600"),
            (INVOCATION_TIMEOUT_SECONDS, "120"),
        ];
        let s = SweepSettings::from_env(&env(&vars)).expect("valid");
        assert_eq!(s.sweep_after, Duration::from_secs(600 + 120 + 900));
        assert_eq!(s.interval, Duration::from_secs(300));
        let mut set = vars.to_vec();
        set.push((SWEEP_AFTER_SECONDS, "5"));
        set.push((SWEEP_INTERVAL_SECONDS, "2"));
        let s = SweepSettings::from_env(&env(&set)).expect("valid");
        assert_eq!(s.sweep_after, Duration::from_secs(5));
        assert_eq!(s.interval, Duration::from_secs(2));
    }

    #[test]
    fn backfill_needs_the_bucket_and_shares_submit_s_limits() {
        let base = [
            (TABLE_NAME, "jobs"),
            (DETECTIONS_TOPIC_ARN, "arn"),
            (SUBMIT_QUEUE_URL, "q"),
        ];
        let err = BackfillSettings::from_env(&env(&base)).unwrap_err();
        assert_eq!(err.variable, BUCKET, "{err}");
        let mut vars = base.to_vec();
        vars.push((BUCKET, "audio"));
        let s = BackfillSettings::from_env(&env(&vars)).expect("valid");
        assert_eq!(s.bucket, "audio");
        assert_eq!(s.staging_prefix, "staging/");
        assert_eq!(s.max_object_bytes, DEFAULT_MAX_OBJECT_BYTES);
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.result.submit_queue_url, "q");
        vars.extend([
            (MAX_OBJECT_BYTES, "1000"),
            (BACKFILL_CONCURRENCY, "2"),
            (DEFAULT_SENSITIVITY, r#"{"default_sensitivity": 1}"#),
        ]);
        let s = BackfillSettings::from_env(&env(&vars)).expect("valid");
        assert_eq!((s.max_object_bytes, s.concurrency), (1000, 2));
        assert_eq!(
            s.default_sensitivity
                .to_custom_attributes()
                .unwrap()
                .as_deref(),
            Some(r#"{"default_sensitivity":1}"#)
        );
        vars.push((BACKFILL_CONCURRENCY, "0"));
        let err = BackfillSettings::from_env(&env(&vars)).unwrap_err();
        assert_eq!(err.variable, BACKFILL_CONCURRENCY);
    }

    #[test]
    fn the_staging_prefix_must_travel_in_a_header_and_hold_no_uploads() {
        let vars = |prefix: &'static str| {
            env(&[
                (INPUT_PREFIX, "incoming/"),
                (TABLE_NAME, "jobs"),
                (ENDPOINT_NAME, "e"),
                (DETECTIONS_TOPIC_ARN, "arn"),
                (SUBMIT_QUEUE_URL, "q"),
                (STAGING_PREFIX, prefix),
            ])
        };
        let s = SubmitSettings::from_env(&vars("cochl-staging/")).expect("valid");
        assert_eq!(s.staging_prefix, "cochl-staging/");
        assert_eq!(s.claim_lease, None);
        let nested = SubmitSettings::from_env(&vars("incoming/staged/")).expect("valid");
        assert_eq!(
            nested.staging_prefix, "incoming/staged/",
            "copies are ignored"
        );
        for bad in ["staging", "stäging/", "a b/", "incoming/", "inc"] {
            let err = SubmitSettings::from_env(&vars(bad)).unwrap_err();
            assert_eq!(err.variable, STAGING_PREFIX, "{bad}");
        }
    }
}

//! The S3 Batch Operations `LambdaInvoke` messages: the invocation the function receives and
//! the answer it owes for every task.
//!
//! Both invocation schemas are read: 1.0 names a task's bucket by ARN (`s3BucketArn`) and
//! carries no arguments; 2.0 names it by name (`s3Bucket`) and may carry `job.userArguments`
//! (string pairs). `aws_lambda_events::s3::batch_job` models schema 1.0 only (no `s3Bucket`,
//! no `userArguments`) and its response types cannot be built outside that crate, so the
//! shapes are declared here; a test reads the crate's own fixture with both.
//!
//! Keys arrive URL-encoded, as the manifest lists them (S3 requires manifest keys to be
//! URL-encoded, and S3 Inventory writes them so): they are decoded like the keys of S3
//! event notifications (`%XX` escapes, `+` for a space).
//!
//! A task that cannot be read is answered `PermanentFailure` with the reason; only an
//! invocation that is not a Batch Operations message at all fails the invocation.

use std::collections::BTreeMap;

use cochl_core::keys::decode_event_key;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One invocation, as Batch Operations sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `1.0` or `2.0`; echoed in the answer.
    pub schema_version: String,
    /// Echoed in the answer.
    pub invocation_id: String,
    /// The Batch Operations job id: names the run (a reanalysis' inference ids derive from it).
    pub job_id: String,
    /// `job.userArguments` (schema 2.0), empty otherwise.
    pub user_arguments: BTreeMap<String, String>,
    /// Each task as read.
    pub tasks: Vec<Task>,
}

/// A task: one object of the manifest, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Echoed in the task's result.
    pub task_id: String,
    /// The object, or why the task names none.
    pub object: Result<TaskObject, String>,
}

/// The object a task names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObject {
    /// Bucket name.
    pub bucket: String,
    /// Decoded key.
    pub key: String,
    /// The manifest's version id, on a versioned bucket.
    pub version_id: Option<String>,
}

/// The invocation is not a Batch Operations message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 Batch Operations invocation: {0}")]
pub struct InvocationError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInvocation {
    invocation_schema_version: String,
    invocation_id: String,
    job: RawJob,
    tasks: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJob {
    id: String,
    #[serde(default)]
    user_arguments: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    s3_key: String,
    #[serde(default)]
    s3_version_id: Option<String>,
    #[serde(default)]
    s3_bucket: Option<String>,
    #[serde(default)]
    s3_bucket_arn: Option<String>,
}

/// Reads an invocation; every task is read on its own.
pub fn parse_invocation(payload: &Value) -> Result<Invocation, InvocationError> {
    let raw: RawInvocation = serde_json::from_value(payload.clone())
        .map_err(|error| InvocationError(error.to_string()))?;
    Ok(Invocation {
        schema_version: raw.invocation_schema_version,
        invocation_id: raw.invocation_id,
        job_id: raw.job.id,
        user_arguments: raw.job.user_arguments.unwrap_or_default(),
        tasks: raw.tasks.iter().map(parse_task).collect(),
    })
}

fn parse_task(raw: &Value) -> Task {
    let task_id = raw
        .get("taskId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let object = serde_json::from_value::<RawTask>(raw.clone())
        .map_err(|error| format!("unreadable task: {error}"))
        .and_then(|task| {
            let bucket = match (task.s3_bucket, task.s3_bucket_arn) {
                (Some(bucket), _) if !bucket.is_empty() => bucket,
                (_, Some(arn)) => bucket_of_arn(&arn)?,
                _ => return Err("the task names no bucket (s3Bucket or s3BucketArn)".into()),
            };
            let key = decode_event_key(&task.s3_key)
                .map_err(|error| format!("s3Key {:?}: {error}", task.s3_key))?;
            Ok(TaskObject {
                bucket,
                key,
                version_id: task.s3_version_id.filter(|v| !v.is_empty() && v != "null"),
            })
        });
    Task { task_id, object }
}

/// `arn:aws:s3:::name` → `name`.
fn bucket_of_arn(arn: &str) -> Result<String, String> {
    match arn.rsplit_once(':') {
        Some((head, name)) if head.starts_with("arn:") && !name.is_empty() => Ok(name.to_string()),
        _ => Err(format!("s3BucketArn {arn:?} is not a bucket ARN")),
    }
}

/// How a task ended, as Batch Operations counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResultCode {
    /// Done (queued, remerged, or nothing to do).
    Succeeded,
    /// Try again later (throttled, a service unreachable): Batch Operations retries it.
    TemporaryFailure,
    /// Will never succeed as it is (not audio, missing, too large): not retried.
    PermanentFailure,
}

impl ResultCode {
    /// The name in the answer and in the completion report.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Succeeded => "Succeeded",
            ResultCode::TemporaryFailure => "TemporaryFailure",
            ResultCode::PermanentFailure => "PermanentFailure",
        }
    }
}

/// The answer to one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The invocation's schema version.
    pub invocation_schema_version: String,
    /// What a task missing from `results` counts as: a permanent failure, never a silent
    /// success.
    pub treat_missing_keys_as: ResultCode,
    /// The invocation's id.
    pub invocation_id: String,
    /// One per task, in the tasks' order.
    pub results: Vec<TaskResult>,
}

/// The answer for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task's id.
    pub task_id: String,
    /// How it ended.
    pub result_code: ResultCode,
    /// Why, for the completion report.
    pub result_string: String,
}

/// The most characters of a result string: the completion report is for people.
pub const MAX_RESULT_STRING: usize = 1_000;

impl TaskResult {
    /// A task's result; the text is cut to [`MAX_RESULT_STRING`] characters.
    pub fn new(task_id: &str, code: ResultCode, text: impl Into<String>) -> Self {
        let text: String = text.into();
        TaskResult {
            task_id: task_id.to_string(),
            result_code: code,
            result_string: text.chars().take(MAX_RESULT_STRING).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_schema_1_0_with_the_bucket_arn() {
        let payload = json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "inv-1",
            "job": {"id": "job-1"},
            "tasks": [{"taskId": "t1", "s3Key": "archive/a+b%C3%A9.wav", "s3VersionId": "v1",
                       "s3BucketArn": "arn:aws:s3:::audio"}]
        });
        let invocation = parse_invocation(&payload).expect("readable");
        assert_eq!(invocation.schema_version, "1.0");
        assert_eq!(invocation.job_id, "job-1");
        assert!(invocation.user_arguments.is_empty());
        assert_eq!(
            invocation.tasks,
            vec![Task {
                task_id: "t1".into(),
                object: Ok(TaskObject {
                    bucket: "audio".into(),
                    key: "archive/a bé.wav".into(),
                    version_id: Some("v1".into()),
                }),
            }]
        );
    }

    #[test]
    fn reads_schema_2_0_with_the_bucket_name_and_arguments() {
        let payload = json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-2",
            "job": {"id": "job-2", "userArguments": {"mode": "remerge", "sensitivity": "{}"}},
            "tasks": [{"taskId": "t1", "s3Key": "k.wav", "s3VersionId": null, "s3Bucket": "audio"}]
        });
        let invocation = parse_invocation(&payload).expect("readable");
        assert_eq!(invocation.user_arguments["mode"], "remerge");
        assert_eq!(invocation.user_arguments["sensitivity"], "{}");
        let object = invocation.tasks[0].object.as_ref().expect("object");
        assert_eq!(
            (
                object.bucket.as_str(),
                object.key.as_str(),
                &object.version_id
            ),
            ("audio", "k.wav", &None)
        );
    }

    #[test]
    fn the_crate_fixture_reads_the_same_with_both_types() {
        // The event of the Lambda developer guide, as aws_lambda_events ships it.
        let text = r#"{"invocationSchemaVersion": "1.0", "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
            "tasks": [{"taskId": "dGFza2lkZ29lc2hlcmUK", "s3Key": "customerImage1.jpg", "s3VersionId": "1",
                       "s3BucketArn": "arn:aws:s3:::amzn-s3-demo-bucket"}]}"#;
        let theirs: aws_lambda_events::s3::batch_job::S3BatchJobEvent =
            serde_json::from_str(text).expect("theirs");
        let ours = parse_invocation(&serde_json::from_str(text).unwrap()).expect("ours");
        assert_eq!(
            theirs.invocation_id.as_deref(),
            Some(ours.invocation_id.as_str())
        );
        assert_eq!(theirs.job.id.as_deref(), Some(ours.job_id.as_str()));
        let task = &theirs.tasks[0];
        let object = ours.tasks[0].object.as_ref().expect("object");
        assert_eq!(task.s3_key.as_deref(), Some(object.key.as_str()));
        assert_eq!(task.s3_version_id, object.version_id);
        assert_eq!(
            task.s3_bucket_arn.as_deref(),
            Some(format!("arn:aws:s3:::{}", object.bucket).as_str())
        );
    }

    #[test]
    fn a_bad_task_does_not_spoil_the_others() {
        let payload = json!({
            "invocationSchemaVersion": "2.0", "invocationId": "i", "job": {"id": "j"},
            "tasks": [
                {"taskId": "no-bucket", "s3Key": "a.wav"},
                {"taskId": "bad-key", "s3Key": "a%zz.wav", "s3Bucket": "b"},
                {"taskId": "bad-arn", "s3Key": "a.wav", "s3BucketArn": "bucket"},
                {"taskId": "no-key", "s3Bucket": "b"},
                {"taskId": "good", "s3Key": "a.wav", "s3Bucket": "b"}
            ]
        });
        let invocation = parse_invocation(&payload).expect("readable");
        let reasons: Vec<(&str, Result<&str, &str>)> = invocation
            .tasks
            .iter()
            .map(|t| {
                (
                    t.task_id.as_str(),
                    t.object
                        .as_ref()
                        .map(|o| o.key.as_str())
                        .map_err(String::as_str),
                )
            })
            .collect();
        assert!(matches!(reasons[0], ("no-bucket", Err(r)) if r.contains("no bucket")));
        assert!(matches!(reasons[1], ("bad-key", Err(r)) if r.contains("s3Key")));
        assert!(matches!(reasons[2], ("bad-arn", Err(r)) if r.contains("not a bucket ARN")));
        assert!(matches!(reasons[3], ("no-key", Err(r)) if r.contains("s3Key")));
        assert_eq!(reasons[4], ("good", Ok("a.wav")));
    }

    #[test]
    fn what_is_not_an_invocation_is_an_error() {
        for payload in [
            json!({"Records": []}),
            json!([1]),
            json!({"invocationId": "i"}),
        ] {
            assert!(parse_invocation(&payload).is_err(), "{payload}");
        }
    }

    #[test]
    fn answers_serialise_as_batch_operations_reads_them() {
        let response = Response {
            invocation_schema_version: "2.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "i".into(),
            results: vec![TaskResult::new(
                "t",
                ResultCode::TemporaryFailure,
                "x".repeat(5000),
            )],
        };
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(value["treatMissingKeysAs"], "PermanentFailure");
        assert_eq!(value["results"][0]["taskId"], "t");
        assert_eq!(value["results"][0]["resultCode"], "TemporaryFailure");
        assert_eq!(
            value["results"][0]["resultString"].as_str().unwrap().len(),
            MAX_RESULT_STRING
        );
    }
}

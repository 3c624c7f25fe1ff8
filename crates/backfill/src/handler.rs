//! The backfill function: one S3 Batch Operations invocation → one answer per task.
//!
//! parse (the invocation, the run's arguments, each task) → decide (per task, the same rule
//! submit applies: `cochl_core::backfill::decide_backfill`) → act (queue the request on the
//! submit queue, or remerge the stored result) → record (the task's result code and string,
//! which Batch Operations writes to its completion report, and one log line per task).
//!
//! `analyse` and `reanalyse` never call the endpoint here: a task is checked (the object
//! exists, is audio within the limits, is not analysed yet) and queued, so admission control
//! paces a backfill of any size and a run of a million objects waits in the submit queue,
//! not in SageMaker's. Submit decides again when the request comes out of the queue, so a
//! task retried by Batch Operations, or an upload racing the backfill, still ends in one
//! inference. `remerge` needs no inference and runs here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cochl_aws::clock::now_seconds;
use cochl_aws::dynamo::DynamoStore;
use cochl_aws::inspect::inspect;
use cochl_aws::notify::Topic;
use cochl_aws::objects::{ObjectHead, Objects};
use cochl_aws::ports::{JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_aws::queue::Queue;
use cochl_aws::records::JobRecord;
use cochl_aws::settings::BackfillSettings;
use cochl_core::backfill::{decide_backfill, wanted_inference, BackfillMode, BackfillRequest};
use cochl_core::inference_id::InferenceId;
use cochl_core::job::{JobStatus, ObjectVersion, UploadDecision};
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::SensitivityConfig;
use cochl_on_result::{Remerge, ResultHandler};
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use tracing::Instrument;

use crate::event::{
    parse_invocation, InvocationError, Response, ResultCode, Task, TaskObject, TaskResult,
};

/// The `userArguments` a run may carry (schema 2.0).
pub const USER_ARGUMENTS: [&str; 2] = ["mode", "sensitivity"];

/// Everything the function needs, built once per cold start: on-result's handler (its store,
/// objects and submit queue are the ones a task needs; its recording path is the remerge)
/// and the function's settings. Tests plug in-memory doubles.
#[derive(Debug, Clone)]
pub struct Backfiller<S = DynamoStore, O = Objects, T = Topic, Q = Queue> {
    /// Reads jobs and objects, queues requests, remerges.
    pub results: ResultHandler<S, O, T, Q>,
    /// The function's configuration.
    pub settings: BackfillSettings,
}

/// What a run was asked to do, from `job.userArguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArguments {
    /// `mode`, `analyse` when absent (and always under schema 1.0).
    pub mode: BackfillMode,
    /// `sensitivity` as given (it travels to submit as text).
    pub sensitivity_text: Option<String>,
    /// `sensitivity` read.
    pub sensitivity: SensitivityConfig,
}

/// Reads a run's arguments; an unknown argument, mode or a bad sensitivity is refused (a
/// typo must not silently run another mode). The reason fails every task of the run.
pub fn run_arguments(arguments: &BTreeMap<String, String>) -> Result<RunArguments, String> {
    if let Some(unknown) = arguments
        .keys()
        .find(|name| !USER_ARGUMENTS.contains(&name.as_str()))
    {
        return Err(format!(
            "unknown userArguments {unknown:?} (expected {})",
            USER_ARGUMENTS.join(", ")
        ));
    }
    let mode = match arguments.get("mode") {
        Some(text) => text
            .parse()
            .map_err(|e| format!("userArguments.mode: {e}"))?,
        None => BackfillMode::Analyse,
    };
    let sensitivity_text = arguments
        .get("sensitivity")
        .filter(|t| !t.trim().is_empty())
        .cloned();
    let sensitivity = SensitivityConfig::parse(sensitivity_text.as_deref().unwrap_or_default())
        .map_err(|e| format!("userArguments.sensitivity: {e}"))?;
    if mode == BackfillMode::Remerge && sensitivity_text.is_some() {
        return Err(
            "userArguments.sensitivity needs a new inference: use mode reanalyse, not remerge"
                .into(),
        );
    }
    Ok(RunArguments {
        mode,
        sensitivity_text,
        sensitivity,
    })
}

/// Answers one invocation: every task gets a result, in order; only a payload that is not a
/// Batch Operations invocation is an error.
pub async fn handle<S, O, T, Q>(
    backfiller: &Backfiller<S, O, T, Q>,
    payload: &Value,
    deadline: Option<Instant>,
) -> Result<Response, InvocationError>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let invocation = parse_invocation(payload).inspect_err(|error| {
        tracing::error!(error = %error, payload = %payload, "unreadable invocation");
    })?;
    let arguments = run_arguments(&invocation.user_arguments);
    let run = invocation.job_id.as_str();
    let results: Vec<TaskResult> = stream::iter(invocation.tasks.iter())
        .map(|task| {
            let arguments = &arguments;
            async move {
                let span = tracing::info_span!(
                    "task",
                    task_id = %task.task_id,
                    run = %run,
                    file = tracing::field::Empty
                );
                let result = match arguments {
                    Ok(arguments) => {
                        backfiller
                            .task(task, arguments, run, deadline)
                            .instrument(span.clone())
                            .await
                    }
                    Err(reason) => {
                        TaskResult::new(&task.task_id, ResultCode::PermanentFailure, reason.clone())
                    }
                };
                span.in_scope(|| {
                    tracing::info!(
                        code = result.result_code.as_str(),
                        result = %result.result_string,
                        "task answered"
                    )
                });
                result
            }
        })
        .buffered(backfiller.settings.concurrency.max(1))
        .collect()
        .await;
    Ok(Response {
        invocation_schema_version: invocation.schema_version,
        treat_missing_keys_as: ResultCode::PermanentFailure,
        invocation_id: invocation.invocation_id,
        results,
    })
}

impl<S, O, T, Q> Backfiller<S, O, T, Q>
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    async fn task(
        &self,
        task: &Task,
        arguments: &RunArguments,
        run: &str,
        deadline: Option<Instant>,
    ) -> TaskResult {
        let answer =
            |(code, text): (ResultCode, String)| TaskResult::new(&task.task_id, code, text);
        let object = match &task.object {
            Ok(object) => object,
            Err(reason) => return answer((ResultCode::PermanentFailure, reason.clone())),
        };
        let file = match self.file_of(object) {
            Ok(file) => file,
            Err(reason) => return answer((ResultCode::PermanentFailure, reason)),
        };
        tracing::Span::current().record("file", tracing::field::display(&file));
        answer(match arguments.mode {
            BackfillMode::Remerge => self.remerge(&file, deadline).await,
            BackfillMode::Analyse | BackfillMode::Reanalyse => {
                self.queue(&file, object, arguments, run).await
            }
        })
    }

    /// The task's object as a file of the stack's bucket, or why it is none.
    fn file_of(&self, object: &TaskObject) -> Result<S3Uri, String> {
        if object.bucket != self.settings.bucket {
            return Err(format!(
                "bucket {:?} is not the stack's bucket {:?}",
                object.bucket, self.settings.bucket
            ));
        }
        if object.key.starts_with(&self.settings.staging_prefix) {
            return Err(format!(
                "{:?} is a staged copy (under {:?}), not an upload",
                object.key, self.settings.staging_prefix
            ));
        }
        S3Uri::new(&object.bucket, &object.key).map_err(|e| format!("not a valid object: {e}"))
    }

    async fn remerge(&self, file: &S3Uri, deadline: Option<Instant>) -> (ResultCode, String) {
        match self.results.remerge(file, deadline).await {
            Ok(Remerge::Remerged { tags }) => (
                ResultCode::Succeeded,
                format!("remerged: {tags} tags detected"),
            ),
            Ok(Remerge::Refused { reason }) => (ResultCode::PermanentFailure, reason),
            Err(error) => (ResultCode::TemporaryFailure, error.to_string()),
        }
    }

    /// Checks an `analyse` or `reanalyse` task and queues it for submit.
    async fn queue(
        &self,
        file: &S3Uri,
        object: &TaskObject,
        arguments: &RunArguments,
        run: &str,
    ) -> (ResultCode, String) {
        let temporary = |what: &str, error: &dyn std::fmt::Display| {
            (ResultCode::TemporaryFailure, format!("{what}: {error}"))
        };
        let version_id = object.version_id.as_deref();
        let head = match self.results.objects.head(file, version_id).await {
            Ok(Some(head)) => head,
            Ok(None) => {
                let which = version_id.map_or(String::new(), |v| format!(" (version {v})"));
                return (
                    ResultCode::PermanentFailure,
                    format!("object_missing: {file}{which} does not exist"),
                );
            }
            Err(error) => return temporary("reading the object", &error),
        };
        let job = match self.results.store.get_job(file).await {
            Ok(job) => job,
            Err(error) => return temporary("reading the job", &error),
        };
        let version = head_version(&head, version_id);
        let upload_id = InferenceId::for_object(file.bucket(), file.key(), &version);
        let wanted = wanted_inference(&upload_id, arguments.mode, run);
        let decision = decide_backfill(
            job.as_ref().map(JobRecord::snapshot).as_ref(),
            &version,
            &wanted,
            arguments.mode,
            now_seconds(),
        );
        match decision {
            UploadDecision::Duplicate => return already(job.as_ref()),
            UploadDecision::Stale => {
                return (
                    ResultCode::Succeeded,
                    "skipped: a newer upload of the key is analysed".into(),
                )
            }
            UploadDecision::Claim
            | UploadDecision::Supersede
            | UploadDecision::Retry
            | UploadDecision::InProgress => {}
        }
        let plan = inspect(
            Some(&head),
            file.key(),
            &self.settings.default_sensitivity,
            &arguments.sensitivity,
            self.settings.max_object_bytes,
        );
        let request = BackfillRequest {
            file: file.to_string(),
            version_id: object.version_id.clone(),
            mode: arguments.mode,
            sensitivity: arguments.sensitivity_text.clone(),
            run: run.to_string(),
        };
        // A rejected object is queued too: submit records it REJECTED with its reason, as
        // it would an upload, so the table knows it as well as the completion report.
        if let Err(error) = self
            .results
            .submit_queue
            .send(&request.to_body(), Duration::ZERO, &[])
            .await
        {
            return temporary("queueing the request", &error);
        }
        match plan {
            Err(rejection) => (
                ResultCode::PermanentFailure,
                format!("{}: {}", rejection.code, rejection.reason),
            ),
            Ok(_) => (
                ResultCode::Succeeded,
                format!("queued for {}: inference {wanted}", arguments.mode),
            ),
        }
    }
}

/// The object's identity as HeadObject gives it; its Last-Modified stands in for an event
/// time (submit computes the same from the same HeadObject).
fn head_version(head: &ObjectHead, version_id: Option<&str>) -> ObjectVersion {
    ObjectVersion {
        version_id: head
            .version_id
            .clone()
            .or_else(|| version_id.map(str::to_string)),
        etag: head.etag.clone(),
        sequencer: None,
        event_time_ms: head.last_modified_ms.unwrap_or_default(),
    }
}

/// The answer for a version that was analysed already: done, unless its analysis failed or
/// it was rejected (then the reason, and how to try again).
fn already(job: Option<&JobRecord>) -> (ResultCode, String) {
    let Some(job) = job else {
        return (ResultCode::Succeeded, "already analysed".into());
    };
    let reason = || {
        format!(
            "{}: {}",
            job.reason_code.as_deref().unwrap_or("unknown"),
            job.reason.as_deref().unwrap_or("no reason recorded")
        )
    };
    match job.status {
        JobStatus::Completed => (ResultCode::Succeeded, "already analysed (COMPLETED)".into()),
        JobStatus::Submitted => (
            ResultCode::Succeeded,
            "already being analysed (SUBMITTED)".into(),
        ),
        JobStatus::Failed => (
            ResultCode::PermanentFailure,
            format!(
                "analysed before and FAILED ({}); run mode reanalyse to try again",
                reason()
            ),
        ),
        JobStatus::Rejected | JobStatus::Deleted => (ResultCode::PermanentFailure, reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_arguments_mean_analyse() {
        let parsed = run_arguments(&args(&[])).expect("valid");
        assert_eq!(parsed.mode, BackfillMode::Analyse);
        assert_eq!(parsed.sensitivity_text, None);
        assert_eq!(parsed.sensitivity, SensitivityConfig::default());
    }

    #[test]
    fn mode_and_sensitivity_are_read() {
        let parsed = run_arguments(&args(&[
            ("mode", "reanalyse"),
            ("sensitivity", r#"{"default_sensitivity": 2}"#),
        ]))
        .expect("valid");
        assert_eq!(parsed.mode, BackfillMode::Reanalyse);
        assert_eq!(
            parsed.sensitivity.default,
            SensitivityConfig::parse(r#"{"default_sensitivity": 2}"#)
                .unwrap()
                .default
        );
        assert!(parsed.sensitivity_text.is_some());
    }

    #[test]
    fn typos_and_contradictions_are_refused() {
        for (pairs, needle) in [
            (vec![("mdoe", "analyse")], "mdoe"),
            (vec![("mode", "reanalyze-all")], "reanalyze-all"),
            (
                vec![("sensitivity", "{\"default_sensitivity\": 9}")],
                "sensitivity",
            ),
            (
                vec![
                    ("mode", "remerge"),
                    ("sensitivity", "{\"default_sensitivity\": 1}"),
                ],
                "reanalyse",
            ),
        ] {
            let error = run_arguments(&args(&pairs)).unwrap_err();
            assert!(error.contains(needle), "{error}");
        }
    }
}

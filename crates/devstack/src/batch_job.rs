//! S3 Batch Operations, played locally: a manifest in, the backfill function invoked with
//! the real `LambdaInvoke` messages, a completion report out.
//!
//! What Batch Operations does and this does too: read a CSV manifest (`bucket,key` or
//! `bucket,key,versionId`, keys URL-encoded as S3 requires), invoke the function with schema
//! 2.0 messages (the job id, `userArguments`, one task per object), run several invocations
//! at once, retry tasks answered `TemporaryFailure` (with a backoff, a bounded number of
//! times), and write a completion report in S3's CSV format
//! (`Bucket,Key,VersionId,TaskStatus,HTTPStatusCode,ErrorCode,ResultMessage`, as the
//! report's lines order them). What it does not: read S3 Inventory manifests (their CSV
//! data files are the same lines, so pass one of those), or throttle as AWS might.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cochl_aws::ports::{JobStore, MessageQueue, NotificationTopic, ObjectStore};
use cochl_backfill::{handle, Backfiller, ResultCode};
use cochl_core::backfill::BackfillMode;
use futures_util::stream::{self, StreamExt};
use serde_json::json;

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Bucket name.
    pub bucket: String,
    /// The key as the manifest lists it (URL-encoded); the function decodes it.
    pub key: String,
    /// The version id, if the manifest names one.
    pub version_id: Option<String>,
}

/// Reads a CSV manifest: one object per line, `bucket,key[,versionId]`, fields optionally in
/// double quotes (S3 Inventory quotes every field). Blank lines are skipped.
pub fn read_manifest(text: &str) -> Result<Vec<ManifestEntry>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let fields = split_csv_line(line)
                .with_context(|| format!("manifest line {}: {line:?}", index + 1))?;
            match fields.as_slice() {
                [bucket, key] | [bucket, key, _] if bucket.is_empty() || key.is_empty() => {
                    bail!("manifest line {}: empty bucket or key", index + 1)
                }
                [bucket, key] => Ok(ManifestEntry {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version_id: None,
                }),
                [bucket, key, version] => Ok(ManifestEntry {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version_id: (!version.is_empty()).then(|| version.clone()),
                }),
                _ => bail!(
                    "manifest line {}: expected bucket,key[,versionId], got {} fields",
                    index + 1,
                    fields.len()
                ),
            }
        })
        .collect()
}

/// Splits one CSV line; `"` quotes a field and `""` is a quote inside one.
fn split_csv_line(line: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        bail!("an unterminated quoted field");
    }
    fields.push(field);
    Ok(fields)
}

/// A field as CSV writes it: quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// How the job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The Batch Operations job id (names the run).
    pub job_id: String,
    /// `userArguments.mode`.
    pub mode: BackfillMode,
    /// `userArguments.sensitivity`, the usual JSON.
    pub sensitivity: Option<String>,
    /// Invocations in flight at once.
    pub concurrency: usize,
    /// Attempts per task answered `TemporaryFailure` (the first included).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per retry.
    pub retry_base: Duration,
}

impl JobOptions {
    /// A job of `mode` with a fresh id and the defaults: 8 invocations at once, 5 attempts.
    pub fn new(mode: BackfillMode) -> Self {
        JobOptions {
            job_id: format!("local-{}", uuid_like()),
            mode,
            sensitivity: None,
            concurrency: 8,
            max_attempts: 5,
            retry_base: Duration::from_millis(200),
        }
    }
}

/// A job id unique enough for one machine: the time in nanoseconds.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

/// A task's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// The manifest line.
    pub entry: ManifestEntry,
    /// Its last result code.
    pub code: ResultCode,
    /// Its last result string (or the invocation's error).
    pub message: String,
    /// Invocations it took.
    pub attempts: u32,
}

/// What a job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id.
    pub job_id: String,
    /// Its mode.
    pub mode: BackfillMode,
    /// One per manifest line, in the manifest's order.
    pub tasks: Vec<TaskOutcome>,
    /// Wall time of the whole job.
    pub elapsed: Duration,
}

impl JobReport {
    /// Tasks per result code.
    pub fn counts(&self) -> BTreeMap<ResultCode, usize> {
        let mut counts = BTreeMap::new();
        for task in &self.tasks {
            *counts.entry(task.code).or_insert(0) += 1;
        }
        counts
    }

    /// Tasks per second over the whole job.
    pub fn tasks_per_second(&self) -> f64 {
        self.tasks.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The one line `make backfill` prints.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        let count = |code| counts.get(&code).copied().unwrap_or(0);
        format!(
            "backfill job {} ({}): {} tasks in {:.1} s ({:.1} tasks/s): Succeeded {}, TemporaryFailure {}, PermanentFailure {}",
            self.job_id,
            self.mode,
            self.tasks.len(),
            self.elapsed.as_secs_f64(),
            self.tasks_per_second(),
            count(ResultCode::Succeeded),
            count(ResultCode::TemporaryFailure),
            count(ResultCode::PermanentFailure),
        )
    }

    /// The completion report, as S3 writes it: one line per task, no header.
    pub fn completion_report(&self) -> String {
        let mut csv = String::new();
        for task in &self.tasks {
            let (status, error_code) = match task.code {
                ResultCode::Succeeded => ("succeeded", ""),
                code => ("failed", code.as_str()),
            };
            let _ = writeln!(
                csv,
                "{},{},{},{status},200,{error_code},{}",
                csv_field(&task.entry.bucket),
                csv_field(&task.entry.key),
                csv_field(task.entry.version_id.as_deref().unwrap_or_default()),
                csv_field(&task.message),
            );
        }
        csv
    }
}

/// Runs a job over `entries`: one invocation per task, `concurrency` at once, temporary
/// failures retried. Never fails as a whole: an invocation that errors counts as a
/// temporary failure of its task (as Batch Operations counts a function error).
pub async fn run_job<S, O, T, Q>(
    backfiller: &Backfiller<S, O, T, Q>,
    entries: &[ManifestEntry],
    options: &JobOptions,
) -> JobReport
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let started = Instant::now();
    let tasks: Vec<TaskOutcome> = stream::iter(entries.iter().enumerate())
        .map(|(index, entry)| run_task(backfiller, index, entry, options))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    JobReport {
        job_id: options.job_id.clone(),
        mode: options.mode,
        tasks,
        elapsed: started.elapsed(),
    }
}

async fn run_task<S, O, T, Q>(
    backfiller: &Backfiller<S, O, T, Q>,
    index: usize,
    entry: &ManifestEntry,
    options: &JobOptions,
) -> TaskOutcome
where
    S: JobStore,
    O: ObjectStore,
    T: NotificationTopic,
    Q: MessageQueue,
{
    let mut user_arguments = BTreeMap::from([("mode", options.mode.as_str().to_string())]);
    if let Some(sensitivity) = &options.sensitivity {
        user_arguments.insert("sensitivity", sensitivity.clone());
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let payload = json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": format!("{}-{index}-{attempt}", options.job_id),
            "job": {"id": options.job_id, "userArguments": user_arguments},
            "tasks": [{
                "taskId": format!("task-{index}"),
                "s3Key": entry.key,
                "s3VersionId": entry.version_id,
                "s3Bucket": entry.bucket,
            }],
        });
        let (code, message) = match handle(backfiller, &payload, None).await {
            Ok(response) => match response.results.into_iter().next() {
                Some(result) => (result.result_code, result.result_string),
                None => (
                    ResultCode::PermanentFailure,
                    "no result for the task".into(),
                ),
            },
            Err(error) => (
                ResultCode::TemporaryFailure,
                format!("function error: {error}"),
            ),
        };
        if code != ResultCode::TemporaryFailure || attempt >= options.max_attempts {
            return TaskOutcome {
                entry: entry.clone(),
                code,
                message,
                attempts: attempt,
            };
        }
        tokio::time::sleep(options.retry_base * 2u32.pow(attempt - 1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_read_as_s3_writes_them() {
        let text =
            "audio,archive/a%20b.wav\r\n\n\"audio\",\"archive/c,d.wav\",\"v1\"\naudio,x.wav,\n";
        let entries = read_manifest(text).expect("valid");
        assert_eq!(
            entries,
            vec![
                ManifestEntry {
                    bucket: "audio".into(),
                    key: "archive/a%20b.wav".into(),
                    version_id: None
                },
                ManifestEntry {
                    bucket: "audio".into(),
                    key: "archive/c,d.wav".into(),
                    version_id: Some("v1".into())
                },
                ManifestEntry {
                    bucket: "audio".into(),
                    key: "x.wav".into(),
                    version_id: None
                },
            ]
        );
        for bad in ["audio", "a,b,c,d", ",key", "audio,\"open"] {
            assert!(read_manifest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_report_has_s3_s_columns_and_quotes_what_needs_it() {
        let report = JobReport {
            job_id: "j".into(),
            mode: BackfillMode::Analyse,
            tasks: vec![
                TaskOutcome {
                    entry: ManifestEntry {
                        bucket: "audio".into(),
                        key: "a.wav".into(),
                        version_id: None,
                    },
                    code: ResultCode::Succeeded,
                    message: "queued for analyse: inference cochl-1".into(),
                    attempts: 1,
                },
                TaskOutcome {
                    entry: ManifestEntry {
                        bucket: "audio".into(),
                        key: "b.txt".into(),
                        version_id: Some("v2".into()),
                    },
                    code: ResultCode::PermanentFailure,
                    message: "not_audio: \"text/plain\", not audio".into(),
                    attempts: 1,
                },
            ],
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            report.completion_report(),
            "audio,a.wav,,succeeded,200,,queued for analyse: inference cochl-1\n\
             audio,b.txt,v2,failed,200,PermanentFailure,\"not_audio: \"\"text/plain\"\", not audio\"\n"
        );
        assert_eq!(
            report.summary(),
            "backfill job j (analyse): 2 tasks in 2.0 s (1.0 tasks/s): Succeeded 1, TemporaryFailure 0, PermanentFailure 1"
        );
    }
}

//! `upload --wait`: polls each uploaded file's document until its new analysis settles.
//!
//! A file may have been analysed before (the same key uploaded again), so "settled" is not
//! just a terminal status: the document must also differ from the one read before the upload
//! ([`Baseline`]): a new upload is a new job (its own `submitted_at`, and a new inference id
//! unless it was rejected). Progress goes to stderr through `indicatif`, which draws nothing
//! when stderr is not a terminal.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use cochl_core::keys::S3Uri;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::query_client::{ensure_ok, file_route, QueryClient};

/// The statuses after which a job changes only with a new upload or a delete.
pub const SETTLED: [&str; 4] = ["COMPLETED", "FAILED", "REJECTED", "DELETED"];

/// How often the documents are read again.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What a file's document said before the upload: which job it showed, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    job: Option<(Option<String>, Option<String>)>,
}

/// The job a document shows: its inference id and when it was recorded.
fn job_of(document: &Value) -> (Option<String>, Option<String>) {
    let text = |field: &str| {
        document
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (text("inference_id"), text("submitted_at"))
}

impl Baseline {
    /// Reads the file's document now (a 404 is "never analysed").
    pub async fn read(query: &QueryClient, file: &S3Uri) -> Result<Self> {
        Ok(Baseline {
            job: fetch(query, file).await?.as_ref().map(job_of),
        })
    }

    /// Whether `document` is of a job after the baseline and has settled.
    pub fn settled_by(&self, document: &Value) -> bool {
        let status = document.get("status").and_then(Value::as_str).unwrap_or("");
        SETTLED.contains(&status) && self.job.as_ref() != Some(&job_of(document))
    }
}

/// The file's document, or `None` for a 404.
async fn fetch(query: &QueryClient, file: &S3Uri) -> Result<Option<Value>> {
    let path = file_route("/files", &file.to_string());
    let answer = query.get(&path).await?;
    if answer.status == 404 {
        return Ok(None);
    }
    ensure_ok(&path, &answer)?;
    Ok(Some(answer.json()?))
}

/// Polls until every file has settled after its baseline; their documents, in `files`' order.
pub async fn until_settled(
    query: &QueryClient,
    files: &[S3Uri],
    baselines: Vec<Baseline>,
    timeout: Duration,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    let bar = ProgressBar::new(files.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut settled: Vec<Option<Value>> = vec![None; files.len()];
    loop {
        let mut waiting_on = Vec::new();
        for (index, file) in files.iter().enumerate() {
            if settled[index].is_some() {
                continue;
            }
            match fetch(query, file).await? {
                Some(document) if baselines[index].settled_by(&document) => {
                    bar.println(format!(
                        "{file}: {}",
                        document["status"].as_str().unwrap_or("?")
                    ));
                    bar.inc(1);
                    settled[index] = Some(document);
                }
                Some(document) => waiting_on.push(status_word(&baselines[index], &document)),
                None => waiting_on.push("waiting for its event"),
            }
        }
        if waiting_on.is_empty() {
            bar.finish_and_clear();
            return Ok(settled.into_iter().flatten().collect());
        }
        bar.set_message(summary(&waiting_on));
        if Instant::now() >= deadline {
            bar.abandon();
            let pending: Vec<String> = files
                .iter()
                .zip(&settled)
                .filter(|(_, document)| document.is_none())
                .map(|(file, _)| file.to_string())
                .collect();
            bail!(
                "gave up after {timeout:?} (--timeout) waiting for {}",
                pending.join(", ")
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// How an unsettled file stands: still showing its earlier job, or analysing.
fn status_word(baseline: &Baseline, document: &Value) -> &'static str {
    if baseline.job.as_ref() == Some(&job_of(document)) {
        "waiting for its event"
    } else {
        "analysing"
    }
}

/// `2 analysing, 1 waiting for its event`.
fn summary(states: &[&str]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for state in states {
        match counts.iter_mut().find(|(name, _)| name == state) {
            Some((_, count)) => *count += 1,
            None => counts.push((state, 1)),
        }
    }
    counts
        .iter()
        .map(|(name, count)| format!("{count} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_settled_document_of_a_later_job_ends_the_wait() {
        let never = Baseline { job: None };
        assert!(never.settled_by(
            &json!({"status": "COMPLETED", "inference_id": "cochl-1", "submitted_at": "t1"})
        ));
        assert!(never.settled_by(
            &json!({"status": "REJECTED", "inference_id": null, "submitted_at": "t1"})
        ));
        assert!(!never.settled_by(
            &json!({"status": "SUBMITTED", "inference_id": "cochl-1", "submitted_at": "t1"})
        ));

        let before = Baseline {
            job: Some((Some("cochl-1".into()), Some("t1".into()))),
        };
        // The earlier analysis, still shown: not this upload's.
        assert!(!before.settled_by(
            &json!({"status": "COMPLETED", "inference_id": "cochl-1", "submitted_at": "t1"})
        ));
        assert!(before.settled_by(
            &json!({"status": "FAILED", "inference_id": "cochl-2", "submitted_at": "t2"})
        ));
        // Two rejections differ by when they were recorded.
        let rejected = Baseline {
            job: Some((None, Some("t1".into()))),
        };
        assert!(!rejected.settled_by(
            &json!({"status": "REJECTED", "inference_id": null, "submitted_at": "t1"})
        ));
        assert!(rejected.settled_by(
            &json!({"status": "REJECTED", "inference_id": null, "submitted_at": "t2"})
        ));
    }

    #[test]
    fn the_summary_counts_each_state_in_first_seen_order() {
        assert_eq!(
            summary(&["analysing", "waiting for its event", "analysing"]),
            "2 analysing, 1 waiting for its event"
        );
        assert_eq!(summary(&[]), "");
    }
}

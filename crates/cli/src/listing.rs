//! `cochl tag` and `cochl jobs`: paged listings, followed page by page through `next_cursor`.
//!
//! `--json` prints each page's document exactly as the API sent it, one per line; otherwise
//! one aligned row per item. `--max` stops after that many items (the page size shrinks to
//! match, so no more is read than shown).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use cochl_core::keys::encode_query_value;
use serde_json::Value;

use crate::args::{JobsArgs, TagArgs};
use crate::commands::{print_raw, Session};
use crate::query_client::QueryClient;

/// The API's largest page.
const PAGE_LIMIT: usize = 100;

/// One listing: its path, its fixed parameters, the array holding its items.
struct Listing<'a> {
    path: String,
    params: Vec<(&'static str, String)>,
    items: &'static str,
    max: Option<usize>,
    json: bool,
    render: &'a dyn Fn(&[Value]) -> String,
}

impl Listing<'_> {
    /// Reads page after page, printing each, until the last page or `max` items.
    async fn run(&self, query: &QueryClient) -> Result<ExitCode> {
        let mut cursor: Option<String> = None;
        let mut shown = 0usize;
        let mut rows = Vec::new();
        loop {
            let limit = self
                .max
                .map_or(PAGE_LIMIT, |max| (max - shown).min(PAGE_LIMIT));
            let mut params = self.params.clone();
            params.push(("limit", limit.to_string()));
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor.clone()));
            }
            let path = format!("{}?{}", self.path, query_string(&params));
            let answer = query.get_ok(&path).await?;
            let page = answer.json()?;
            let items = page[self.items]
                .as_array()
                .with_context(|| format!("{}: no {} in the answer", self.path, self.items))?;
            shown += items.len();
            if self.json {
                print_raw(&answer.body)?;
            } else {
                rows.extend(items.iter().cloned());
            }
            cursor = page["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() || self.max.is_some_and(|max| shown >= max) {
                break;
            }
        }
        if !self.json {
            print!("{}", (self.render)(&rows));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `name=value&...`, values encoded.
fn query_string(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `cochl tag NAME`.
pub async fn tag(session: &Session, args: TagArgs) -> Result<ExitCode> {
    let mut params = Vec::new();
    if let Some(since) = args.since {
        params.push(("since", since));
    }
    if let Some(until) = args.until {
        params.push(("until", until));
    }
    if let Some(min) = args.min_probability {
        params.push(("min_probability", min.to_string()));
    }
    let listing = Listing {
        path: format!("/tags/{}/files", encode_query_value(&args.name)),
        params,
        items: "files",
        max: args
            .max
            .map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
        json: args.json,
        render: &render_tag_files,
    };
    listing.run(&session.query().await?).await
}

/// `cochl jobs --status S`.
pub async fn jobs(session: &Session, args: JobsArgs) -> Result<ExitCode> {
    let listing = Listing {
        path: "/jobs".to_string(),
        params: vec![("status", args.status.to_ascii_uppercase())],
        items: "jobs",
        max: args
            .max
            .map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
        json: args.json,
        render: &render_jobs,
    };
    listing.run(&session.query().await?).await
}

/// Left-aligned columns, each as wide as its widest cell, under a header.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn render_tag_files(files: &[Value]) -> String {
    if files.is_empty() {
        return "(no files)\n".to_string();
    }
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|file| {
            vec![
                text(&file["file"]),
                format!(
                    "{:.3}",
                    file["max_probability"].as_f64().unwrap_or(f64::NAN)
                ),
                format!(
                    "{:.1}",
                    file["detected_seconds"].as_f64().unwrap_or(f64::NAN)
                ),
                text(&file["completed_at"]),
            ]
        })
        .collect();
    columns(&["file", "max p", "seconds", "completed"], &rows)
}

fn render_jobs(jobs: &[Value]) -> String {
    if jobs.is_empty() {
        return "(no jobs)\n".to_string();
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                text(&job["file"]),
                text(&job["status"]),
                job.get("reason_code").map_or("-".to_string(), text),
                text(&job["updated_at"]),
            ]
        })
        .collect();
    columns(&["file", "status", "reason", "updated"], &rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_are_encoded() {
        let params = vec![
            ("since", "2026-11-24T01:00:00+01:00".to_string()),
            ("min_probability", "0.5".to_string()),
        ];
        assert_eq!(
            query_string(&params),
            "since=2026-11-24T01%3A00%3A00%2B01%3A00&min_probability=0.5"
        );
    }

    #[test]
    fn rows_line_up_under_their_headers() {
        let jobs = [
            json!({"file": "s3://b/incoming/a.wav", "status": "FAILED", "reason_code": "ModelError",
                   "updated_at": "2026-12-08T01:00:00Z"}),
            json!({"file": "s3://b/x.wav", "status": "FAILED", "updated_at": "2026-12-08T02:00:00Z"}),
        ];
        assert_eq!(
            render_jobs(&jobs),
            "file                   status  reason      updated\n\
             s3://b/incoming/a.wav  FAILED  ModelError  2026-12-08T01:00:00Z\n\
             s3://b/x.wav           FAILED  -           2026-12-08T02:00:00Z\n"
        );
        assert_eq!(render_jobs(&[]), "(no jobs)\n");
        let files = [
            json!({"file": "s3://b/k.wav", "max_probability": 0.9, "detected_seconds": 4.0,
                            "completed_at": "2026-12-08T01:00:00Z", "windows": 3, "inference_id": "cochl-1"}),
        ];
        assert_eq!(
            render_tag_files(&files),
            "file          max p  seconds  completed\n\
             s3://b/k.wav  0.900  4.0      2026-12-08T01:00:00Z\n"
        );
    }
}

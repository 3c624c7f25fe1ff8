//! `make demo`: the whole pipeline on a few audio files, with a progress line per stage and
//! a table (or the query API's JSON document) per file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use serde_json::Value;

use crate::stack::{LocalStack, StackOptions, INPUT_PREFIX};
use cochl_query::table::render_document;

/// How long one file may take from upload to a terminal state.
const FILE_DEADLINE: Duration = Duration::from_secs(60);

/// What `devstack demo` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoArgs {
    /// One JSON document per file instead of tables.
    pub json: bool,
    /// Interval margin for merging.
    pub margin: u32,
    /// Audio files; the bundled samples when empty.
    pub files: Vec<PathBuf>,
    /// Where the HTML report goes (`target/demo/report.html` from `make demo`); none: no report.
    pub report: Option<PathBuf>,
}

/// The bundled sample audio (`samples/`), sorted.
pub fn bundled_samples() -> Result<Vec<PathBuf>> {
    let dir = testkit::workspace_root().join("samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| matches!(ext.to_str(), Some("wav" | "mp3" | "ogg" | "pcm")))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The Content-Type a browser or the AWS CLI would send for a file. Raw PCM carries its
/// parameters in the file name (`name-<format>-<rate>k-<mono|stereo>.pcm`, as the bundled
/// sample does); without them it is uploaded as is and rejected, which the demo shows.
pub fn content_type_for(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let extension = name.rsplit_once('.')?.1;
    match extension {
        "wav" => Some("audio/wav".into()),
        "mp3" => Some("audio/mpeg".into()),
        "ogg" | "oga" | "opus" => Some("audio/ogg".into()),
        "flac" => Some("audio/flac".into()),
        "pcm" | "raw" => {
            let stem = name.rsplit_once('.')?.0;
            let parts: Vec<&str> = stem.rsplit('-').take(3).collect();
            let [layout, rate, format] = parts.as_slice() else {
                return None;
            };
            let channels = match *layout {
                "mono" => 1,
                "stereo" => 2,
                _ => return None,
            };
            let rate: u32 = rate.strip_suffix('k')?.parse::<u32>().ok()? * 1000;
            Some(format!(
                "audio/x-raw; rate={rate}; format={format}; channels={channels}"
            ))
        }
        _ => None,
    }
}

fn progress(started: Instant, text: &str) {
    eprintln!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
}

/// Runs the demo; returns the documents it printed, in file order.
pub async fn run_demo(args: DemoArgs) -> Result<Vec<Value>> {
    let started = Instant::now();
    let files = if args.files.is_empty() {
        bundled_samples()?
    } else {
        args.files.clone()
    };
    progress(
        started,
        "starting the local stack (moto, SageMaker emulator, functions)",
    );
    let mut options = StackOptions::default();
    options.env.insert(
        cochl_aws::settings::INTERVAL_MARGIN.to_string(),
        args.margin.to_string(),
    );
    let stack = LocalStack::start(options, None).await?;
    progress(
        started,
        &format!(
            "stack ready: bucket {}, table {}, emulator {}",
            stack.resources.bucket,
            stack.resources.table,
            stack.emulator.url()
        ),
    );

    let mut uploaded: Vec<S3Uri> = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("file name is not UTF-8")?;
        let key = format!("{INPUT_PREFIX}{name}");
        let content_type = content_type_for(path);
        let file = stack
            .upload(&key, bytes, content_type.as_deref(), &[])
            .await?;
        progress(
            started,
            &format!(
                "uploaded {} as {file} ({})",
                path.display(),
                content_type.as_deref().unwrap_or("no Content-Type")
            ),
        );
        uploaded.push(file);
    }

    let mut documents = Vec::new();
    let mut entries = Vec::new();
    for file in &uploaded {
        let job = stack.wait_terminal(file, FILE_DEADLINE).await?;
        let label = match job.status {
            JobStatus::Completed => format!("analysed, {} tags", job.tags.len()),
            status => format!("{status}: {}", job.reason.as_deref().unwrap_or("-")),
        };
        progress(started, &format!("{file}: {label}"));
        let document = crate::query::file_document(&stack, file).await?;
        let timeline = crate::query::timeline(&stack, file).await?;
        entries.push(crate::report::ReportEntry {
            document: document.clone(),
            timeline,
        });
        documents.push(document);
    }
    if let Some(path) = &args.report {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, crate::report::render_report(&entries))
            .with_context(|| format!("writing {}", path.display()))?;
        progress(started, &format!("report: {}", path.display()));
    }
    progress(started, "done; stopping the stack");
    stack.shutdown().await;

    for document in &documents {
        if args.json {
            println!("{document}");
        } else {
            print!("{}", render_document(document));
        }
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions_and_pcm_names() {
        let ct = |name: &str| content_type_for(Path::new(name));
        assert_eq!(ct("a.wav").as_deref(), Some("audio/wav"));
        assert_eq!(ct("dir/B.MP3").as_deref(), Some("audio/mpeg"));
        assert_eq!(ct("c.ogg").as_deref(), Some("audio/ogg"));
        assert_eq!(
            ct("tone-440hz-s16le-16k-mono.pcm").as_deref(),
            Some("audio/x-raw; rate=16000; format=s16le; channels=1")
        );
        assert_eq!(
            ct("x-f32be-48k-stereo.raw").as_deref(),
            Some("audio/x-raw; rate=48000; format=f32be; channels=2")
        );
        assert_eq!(ct("plain.pcm"), None);
        assert_eq!(ct("notes.txt"), None);
    }

    #[test]
    fn bundled_samples_cover_every_input_kind() {
        let files = bundled_samples().expect("samples exist");
        for extension in ["wav", "mp3", "ogg", "pcm"] {
            assert!(
                files
                    .iter()
                    .any(|f| f.extension().is_some_and(|e| e == extension)),
                "no .{extension} sample"
            );
        }
    }
}

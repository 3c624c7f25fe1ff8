//! `cochl upload`: puts files under the input prefix, where their S3 events start the
//! pipeline; with `--wait`, follows each to its outcome ([`crate::wait`]).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use aws_sdk_s3::primitives::ByteStream;
use cochl_core::content_type::CONTENT_TYPE_METADATA_KEY;
use cochl_core::keys::S3Uri;
use cochl_core::sensitivity::{SensitivityConfig, SENSITIVITY_METADATA_KEY};

use crate::args::UploadArgs;
use crate::commands::{sdk_error, Session};
use crate::resources::Resource;
use crate::wait::{self, Baseline};

/// One file to upload: where it is here and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned<'a> {
    /// The local file.
    pub path: &'a Path,
    /// Its object, `prefix` + its file name.
    pub uri: S3Uri,
}

/// Where each file goes: `prefix` + its file name, refusing two files of the same name (the
/// second would replace the first before it is analysed) and names that are not UTF-8.
pub fn plan<'a>(
    bucket: &str,
    prefix: &str,
    files: &'a [std::path::PathBuf],
) -> Result<Vec<Planned<'a>>> {
    let mut planned: Vec<Planned<'a>> = Vec::with_capacity(files.len());
    for path in files {
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file", path.display()))?
            .to_str()
            .with_context(|| format!("{}: the file name is not UTF-8", path.display()))?;
        let uri = S3Uri::new(bucket, format!("{prefix}{name}"))
            .with_context(|| format!("{}: no valid object key", path.display()))?;
        if let Some(earlier) = planned.iter().find(|p| p.uri == uri) {
            bail!(
                "{} and {} would both be uploaded as {uri}",
                earlier.path.display(),
                path.display()
            );
        }
        planned.push(Planned { path, uri });
    }
    Ok(planned)
}

/// Checks the options before anything is uploaded: a sensitivity the pipeline would reject
/// is refused here, with the same message, rather than after the upload.
fn check_sensitivity(sensitivity: Option<&str>) -> Result<()> {
    if let Some(text) = sensitivity {
        let config = SensitivityConfig::parse(text).context("--sensitivity")?;
        config.to_custom_attributes().context("--sensitivity")?;
    }
    Ok(())
}

/// Uploads every file, then (with `--wait`) waits and prints each file's table.
pub async fn run(session: &Session, args: UploadArgs) -> Result<ExitCode> {
    check_sensitivity(args.sensitivity.as_deref())?;
    let bucket = session.resources.require(Resource::Bucket)?;
    let prefix = match &args.prefix {
        Some(prefix) => prefix.as_str(),
        None => session.resources.require(Resource::InputPrefix)?,
    };
    let planned = plan(bucket, prefix, &args.files)?;
    for file in &planned {
        if !file.path.is_file() {
            bail!("{}: no such file", file.path.display());
        }
    }
    let query = if args.wait {
        Some(session.query().await?)
    } else {
        None
    };
    // What the API said before the upload: the new analysis is the first document after it.
    let mut baselines = Vec::with_capacity(planned.len());
    if let Some(query) = &query {
        for file in &planned {
            baselines.push(Baseline::read(query, &file.uri).await?);
        }
    }
    let s3 = aws_sdk_s3::Client::new(&session.config);
    for file in &planned {
        let body = ByteStream::from_path(file.path)
            .await
            .with_context(|| format!("reading {}", file.path.display()))?;
        let mut request = s3
            .put_object()
            .bucket(file.uri.bucket())
            .key(file.uri.key())
            .body(body);
        if let Some(sensitivity) = &args.sensitivity {
            request = request.metadata(SENSITIVITY_METADATA_KEY, sensitivity);
        }
        if let Some(content_type) = &args.content_type {
            request = request.metadata(CONTENT_TYPE_METADATA_KEY, content_type);
        }
        request
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("uploading {} to {}", file.path.display(), file.uri))?;
        eprintln!("uploaded {} to {}", file.path.display(), file.uri);
    }
    let Some(query) = query else {
        return Ok(ExitCode::SUCCESS);
    };
    let uris: Vec<S3Uri> = planned.into_iter().map(|file| file.uri).collect();
    let outcomes =
        wait::until_settled(&query, &uris, baselines, Duration::from_secs(args.timeout)).await?;
    let mut all_completed = true;
    for document in &outcomes {
        print!("{}", cochl_query::table::render_document(document));
        all_completed &= document["status"] == "COMPLETED";
    }
    Ok(if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn files_go_under_the_prefix_by_name_and_names_must_differ() {
        let files = vec![
            PathBuf::from("/tmp/a/one.wav"),
            PathBuf::from("two words.ogg"),
        ];
        let planned = plan("audio", "incoming/", &files).unwrap();
        let uris: Vec<String> = planned.iter().map(|p| p.uri.to_string()).collect();
        assert_eq!(
            uris,
            [
                "s3://audio/incoming/one.wav",
                "s3://audio/incoming/two words.ogg"
            ]
        );
        let clash = vec![PathBuf::from("/x/a.wav"), PathBuf::from("/y/a.wav")];
        let error = plan("audio", "incoming/", &clash).unwrap_err().to_string();
        assert_eq!(
            error,
            "/x/a.wav and /y/a.wav would both be uploaded as s3://audio/incoming/a.wav"
        );
        let error = plan("audio", "in/", &[PathBuf::from("/")])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "/: not a file");
    }

    #[test]
    fn a_sensitivity_the_pipeline_would_reject_is_refused_before_uploading() {
        assert!(check_sensitivity(None).is_ok());
        assert!(check_sensitivity(Some(r#"{"default_sensitivity": 1}"#)).is_ok());
        for bad in [r#"{"default_sensitivity": 3}"#, "not json"] {
            let error = check_sensitivity(Some(bad)).unwrap_err();
            assert!(
                format!("{error:#}").starts_with("--sensitivity: "),
                "{error:#}"
            );
        }
    }
}

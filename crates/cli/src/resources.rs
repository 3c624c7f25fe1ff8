//! Where the pipeline's resources are: a CloudFormation stack's outputs, or the environment.
//!
//! Both sources fill the same [`Resources`]; a command asks only for what it uses
//! ([`Resources::require`]), so `cochl file` works with just `COCHL_QUERY_URL` set, and a
//! missing value is one error naming both ways to provide it.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::commands::sdk_error;

/// One resource a command may need: its stack output and its environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The audio bucket.
    Bucket,
    /// The key prefix whose uploads are analysed.
    InputPrefix,
    /// The query function's URL.
    QueryUrl,
    /// The submit queue.
    SubmitQueue,
    /// The results queue.
    ResultsQueue,
    /// The submit queue's dead-letter queue.
    SubmitDeadLetterQueue,
    /// The results queue's dead-letter queue.
    ResultsDeadLetterQueue,
}

impl Resource {
    /// The environment variable (the names `make up`'s env file and the functions use).
    pub fn variable(self) -> &'static str {
        match self {
            Resource::Bucket => "COCHL_BUCKET",
            Resource::InputPrefix => "COCHL_INPUT_PREFIX",
            Resource::QueryUrl => "COCHL_QUERY_URL",
            Resource::SubmitQueue => "COCHL_SUBMIT_QUEUE_URL",
            Resource::ResultsQueue => "COCHL_RESULTS_QUEUE_URL",
            Resource::SubmitDeadLetterQueue => "COCHL_SUBMIT_DEAD_LETTER_QUEUE_URL",
            Resource::ResultsDeadLetterQueue => "COCHL_RESULTS_DEAD_LETTER_QUEUE_URL",
        }
    }

    /// The template's output holding it (bucket and prefix both come from `UploadPrefix`).
    pub fn output(self) -> &'static str {
        match self {
            Resource::Bucket | Resource::InputPrefix => "UploadPrefix",
            Resource::QueryUrl => "QueryUrl",
            Resource::SubmitQueue => "SubmitQueueUrl",
            Resource::ResultsQueue => "ResultQueueUrl",
            Resource::SubmitDeadLetterQueue => "SubmitDeadLetterQueueUrl",
            Resource::ResultsDeadLetterQueue => "ResultDeadLetterQueueUrl",
        }
    }

    const ALL: [Resource; 7] = [
        Resource::Bucket,
        Resource::InputPrefix,
        Resource::QueryUrl,
        Resource::SubmitQueue,
        Resource::ResultsQueue,
        Resource::SubmitDeadLetterQueue,
        Resource::ResultsDeadLetterQueue,
    ];
}

/// The resources found, and where they were looked for (for the error when one is missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    values: BTreeMap<Resource, String>,
    source: Source,
}

/// Where [`Resources`] came from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Environment,
    Stack(String),
}

impl Resources {
    /// From `COCHL_*` variables, as `lookup` (the process environment, or a test's map) has them.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let values = Resource::ALL
            .into_iter()
            .filter_map(|resource| {
                lookup(resource.variable())
                    .filter(|value| !value.is_empty())
                    .map(|value| (resource, value))
            })
            .collect();
        Resources {
            values,
            source: Source::Environment,
        }
    }

    /// From a stack's outputs (`OutputKey` → `OutputValue`).
    pub fn from_outputs(stack: &str, outputs: &BTreeMap<String, String>) -> Result<Self> {
        let mut values = BTreeMap::new();
        for resource in Resource::ALL {
            let Some(value) = outputs.get(resource.output()) else {
                continue;
            };
            let value = match resource {
                Resource::Bucket | Resource::InputPrefix => {
                    let (bucket, prefix) = split_upload_prefix(value)
                        .with_context(|| format!("stack {stack}: output UploadPrefix {value:?}"))?;
                    if resource == Resource::Bucket {
                        bucket
                    } else {
                        prefix
                    }
                }
                _ => value.clone(),
            };
            values.insert(resource, value);
        }
        Ok(Resources {
            values,
            source: Source::Stack(stack.to_string()),
        })
    }

    /// The value, or an error saying how to provide it.
    pub fn require(&self, resource: Resource) -> Result<&str> {
        match (self.values.get(&resource), &self.source) {
            (Some(value), _) => Ok(value),
            (None, Source::Environment) => bail!(
                "{} is not set: pass --stack NAME (a deployed stack) or set it (after `make up`: \
                 source target/devstack/env)",
                resource.variable()
            ),
            (None, Source::Stack(stack)) => bail!(
                "stack {stack} has no output {}: is it a Cochl pipeline stack?",
                resource.output()
            ),
        }
    }
}

/// `s3://bucket/prefix/` → (`bucket`, `prefix/`).
fn split_upload_prefix(value: &str) -> Result<(String, String)> {
    let rest = value
        .strip_prefix("s3://")
        .context("not an s3:// location")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("no bucket in it");
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Reads a stack's outputs with CloudFormation's `DescribeStacks`.
pub async fn stack_outputs(
    config: &aws_config::SdkConfig,
    stack: &str,
) -> Result<BTreeMap<String, String>> {
    let client = aws_sdk_cloudformation::Client::new(config);
    let described = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("describing stack {stack}"))?;
    let Some(found) = described.stacks().first() else {
        bail!("stack {stack} not found");
    };
    Ok(found
        .outputs()
        .iter()
        .filter_map(|output| {
            Some((
                output.output_key()?.to_string(),
                output.output_value()?.to_string(),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_gives_what_is_set_and_names_what_is_not() {
        let env = BTreeMap::from([
            ("COCHL_QUERY_URL", "http://127.0.0.1:9"),
            ("COCHL_BUCKET", ""),
        ]);
        let resources =
            Resources::from_environment(|name| env.get(name).map(|value| value.to_string()));
        assert_eq!(
            resources.require(Resource::QueryUrl).unwrap(),
            "http://127.0.0.1:9"
        );
        let missing = resources.require(Resource::Bucket).unwrap_err().to_string();
        assert!(
            missing.starts_with("COCHL_BUCKET is not set: pass --stack NAME"),
            "an empty value is no value: {missing}"
        );
    }

    #[test]
    fn stack_outputs_split_the_upload_prefix_and_name_a_missing_output() {
        let outputs = BTreeMap::from([
            (
                "UploadPrefix".to_string(),
                "s3://audio-1/incoming/".to_string(),
            ),
            (
                "ResultDeadLetterQueueUrl".to_string(),
                "https://sqs.eu-west-1.amazonaws.com/1/r-dlq".to_string(),
            ),
        ]);
        let resources = Resources::from_outputs("cochl", &outputs).unwrap();
        assert_eq!(resources.require(Resource::Bucket).unwrap(), "audio-1");
        assert_eq!(
            resources.require(Resource::InputPrefix).unwrap(),
            "incoming/"
        );
        assert_eq!(
            resources.require(Resource::ResultsDeadLetterQueue).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/1/r-dlq"
        );
        assert_eq!(
            resources
                .require(Resource::QueryUrl)
                .unwrap_err()
                .to_string(),
            "stack cochl has no output QueryUrl: is it a Cochl pipeline stack?"
        );
        let bucket_only =
            BTreeMap::from([("UploadPrefix".to_string(), "s3://audio-1".to_string())]);
        let resources = Resources::from_outputs("cochl", &bucket_only).unwrap();
        assert_eq!(resources.require(Resource::InputPrefix).unwrap(), "");
        for bad in ["audio-1/incoming/", "s3:///incoming/"] {
            let outputs = BTreeMap::from([("UploadPrefix".to_string(), bad.to_string())]);
            let error = Resources::from_outputs("cochl", &outputs).unwrap_err();
            assert!(
                format!("{error:#}").starts_with("stack cochl: output UploadPrefix"),
                "{error:#}"
            );
        }
    }
}

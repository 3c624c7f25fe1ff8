//! Runs a parsed command: finds the resources, builds the clients it needs, and does it.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use aws_credential_types::provider::ProvideCredentials as _;

use crate::args::{Cli, Command};
use crate::query_client::{file_route, QueryClient};
use crate::resources::{stack_outputs, Resource, Resources};
use crate::sign::{Signer, FUNCTION_URL_SERVICE};
use crate::{listing, redrive, upload};

/// What every command starts from: the SDK's configuration and the resources.
pub struct Session {
    /// Region, credentials and endpoint (`AWS_ENDPOINT_URL` for `make up`) from the SDK chain.
    pub config: aws_config::SdkConfig,
    /// Where the pipeline is.
    pub resources: Resources,
}

impl Session {
    /// A signed client of the query API.
    pub async fn query(&self) -> Result<QueryClient> {
        let url = self.resources.require(Resource::QueryUrl)?;
        let provider = self
            .config
            .credentials_provider()
            .context("no AWS credentials provider configured")?;
        let credentials = provider
            .provide_credentials()
            .await
            .context("no AWS credentials to sign the query with (the SDK's chain found none)")?;
        let region = self
            .config
            .region()
            .map(|region| region.to_string())
            .or_else(|| function_url_region(url))
            .context("no AWS Region: set AWS_REGION")?;
        QueryClient::new(
            url,
            Signer {
                credentials,
                region,
                service: FUNCTION_URL_SERVICE,
            },
        )
    }
}

/// The Region in a Function URL's host (`<id>.lambda-url.<region>.on.aws`).
fn function_url_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let (_, rest) = host.split_once(".lambda-url.")?;
    rest.strip_suffix(".on.aws").map(str::to_string)
}

/// Runs `cli`; the exit code on success (3 when `upload --wait` saw a file fail).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let resources = match &cli.target.stack {
        Some(stack) => Resources::from_outputs(stack, &stack_outputs(&config, stack).await?)?,
        None => Resources::from_environment(|name| std::env::var(name).ok()),
    };
    let session = Session { config, resources };
    match cli.command {
        Command::Upload(args) => upload::run(&session, args).await,
        Command::File { uri, json } => {
            let query = session.query().await?;
            let answer = query.get_ok(&file_route("/files", &uri)).await?;
            if json {
                print_raw(&answer.body)?;
            } else {
                print!("{}", cochl_query::table::render_document(&answer.json()?));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tag(args) => listing::tag(&session, args).await,
        Command::Jobs(args) => listing::jobs(&session, args).await,
        Command::Timeline { uri, output } => {
            let query = session.query().await?;
            let answer = query
                .get_ok(&file_route("/files/timeline.svg", &uri))
                .await?;
            if output.as_os_str() == "-" {
                print_raw(&answer.body)?;
            } else {
                std::fs::write(&output, &answer.body)
                    .with_context(|| format!("writing {}", output.display()))?;
                eprintln!("{}: timeline of {uri}", output.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Redrive { queue } => redrive::run(&session, queue).await,
    }
}

/// An AWS SDK error as one line with its causes: the SDK's own message is only "service
/// error" and would hide what the service said.
pub fn sdk_error<E: std::error::Error>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&error))
}

/// Writes bytes to stdout as they came, with a final newline when they lack one.
pub fn print_raw(body: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(body)?;
    if !body.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_of_a_function_url_is_in_its_host() {
        assert_eq!(
            function_url_region("https://abcdef.lambda-url.eu-west-1.on.aws/").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            function_url_region("https://abcdef.lambda-url.us-east-2.on.aws").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(function_url_region("http://127.0.0.1:8080"), None);
        assert_eq!(
            function_url_region("https://example.com/x.lambda-url.a.on.aws"),
            None
        );
    }
}

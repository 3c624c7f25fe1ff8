//! The backfill function: S3 Batch Operations' `LambdaInvoke` operation over an archive.
//!
//! [`event`] reads the invocation and writes the answer Batch Operations expects,
//! [`handler`] answers each task (queue an `analyse`/`reanalyse` request on the submit queue,
//! or `remerge` the stored result), `main` only wires the AWS adapters to the handler.

pub mod event;
pub mod handler;

pub use event::{Response, ResultCode, TaskResult};
pub use handler::{handle, run_arguments, Backfiller, RunArguments};

use cochl_aws::clients::SdkConfig;
use cochl_aws::settings::BackfillSettings;
use cochl_on_result::ResultHandler;

impl Backfiller {
    /// Builds the AWS adapters from an SDK configuration (no network call).
    pub fn from_config(config: &SdkConfig, settings: BackfillSettings) -> Self {
        Backfiller {
            results: ResultHandler::from_config(config, settings.result.clone()),
            settings,
        }
    }
}

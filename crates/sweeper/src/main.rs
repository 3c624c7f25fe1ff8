//! Lambda entry point of the sweeper: builds on-result's handler once, then runs one sweep
//! per scheduled event (EventBridge, every `SweepIntervalSeconds`).

use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{Env, SweepSettings};
use cochl_on_result::ResultHandler;
use cochl_sweeper::{sweep, SweepReport};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = SweepSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let sweep_after = settings.sweep_after;
    let handler = ResultHandler::from_config(&config, settings.result);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let handler = &handler;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            // A failed listing fails the run: the schedule's next run tries again.
            let report: SweepReport = sweep(handler, sweep_after, deadline).await?;
            Ok::<SweepReport, Error>(report)
        }
    }))
    .await
}

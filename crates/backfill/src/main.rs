//! Lambda entry point of the backfill function: builds the adapters once, then answers each
//! S3 Batch Operations invocation.

use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{BackfillSettings, Env};
use cochl_backfill::{handle, Backfiller, Response};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = BackfillSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let backfiller = Backfiller::from_config(&config, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let backfiller = &backfiller;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let response: Response = handle(backfiller, &event.payload, deadline).await?;
            Ok::<Response, Error>(response)
        }
    }))
    .await
}

//! Lambda entry point of the on-result function: builds the clients once, then serves events.

use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{Env, ResultSettings};
use cochl_on_result::{handle, ResultError, ResultHandler};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = ResultSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let handler = ResultHandler::from_config(&config, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let handler = &handler;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let outcomes = handle(handler, &event.payload, deadline).await?;
            Ok::<_, ResultError>(serde_json::json!({ "notifications": outcomes }))
        }
    }))
    .await
}

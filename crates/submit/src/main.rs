//! Lambda entry point of the submit function: builds the clients once, then serves events.

use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{Env, SubmitSettings};
use cochl_submit::{handle, SubmitError, Submitter};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = SubmitSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let submitter = Submitter::from_config(&config, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let submitter = &submitter;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let outcomes = handle(submitter, &event.payload, deadline).await?;
            Ok::<_, SubmitError>(serde_json::json!({ "records": outcomes }))
        }
    }))
    .await
}

//! Lambda entry point of the on-result function: builds the clients once, then serves
//! batches from the results queue (SQS event source with `ReportBatchItemFailures`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{Env, ResultSettings};
use cochl_on_result::{handle_queue, ResultHandler};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = ResultSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let handler = ResultHandler::from_config(&config, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let handler = &handler;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let response = handle_queue(handler, &event.payload, deadline).await;
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}

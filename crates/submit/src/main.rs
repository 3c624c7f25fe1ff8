//! Lambda entry point of the submit function: builds the clients once, then serves batches
//! from the submit queue (SQS event source with `ReportBatchItemFailures`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use cochl_aws::logging::{deadline_from_epoch_ms, init};
use cochl_aws::settings::{Env, SubmitSettings};
use cochl_submit::{handle_queue, Submitter};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init();
    let settings = SubmitSettings::from_env(&Env::process())?;
    let config = cochl_aws::clients::load_config().await;
    let submitter = Submitter::from_config(&config, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let submitter = &submitter;
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let response = handle_queue(submitter, &event.payload, deadline).await;
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}

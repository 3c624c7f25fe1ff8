//! The query Lambda: wires the DynamoDB store to the HTTP handler.

use cochl_aws::dynamo::DynamoStore;
use cochl_aws::settings::{Env, QuerySettings};
use cochl_aws::{clients, logging};
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let settings = QuerySettings::from_env(&Env::process())?;
    let config = clients::load_config().await;
    let store = DynamoStore::new(clients::dynamodb(&config), settings.table_name);
    let store = &store;
    lambda_http::run(service_fn(move |request: Request| {
        cochl_query::handle(store, request)
    }))
    .await
}

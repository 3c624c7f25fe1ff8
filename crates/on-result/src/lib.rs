//! The on-result function: turns SageMaker's async notifications into recorded detections
//! and a detection notification users can subscribe to.
//!
//! [`event`] reads the SNS payload, [`message`] (shared with the submit function, which
//! notifies refused requests) builds the detection notification, [`handler`] runs the flow. `main` only wires clients to
//! the handler.

pub mod event;
pub mod handler;

pub use cochl_aws::message;
pub use handler::{handle, NotificationOutcome, ResultError, ResultHandler};

use cochl_aws::clients::{self, SdkConfig};
use cochl_aws::dynamo::DynamoStore;
use cochl_aws::notify::Topic;
use cochl_aws::objects::Objects;
use cochl_aws::settings::ResultSettings;

impl ResultHandler {
    /// Builds the clients from an SDK configuration (no network call).
    pub fn from_config(config: &SdkConfig, settings: ResultSettings) -> Self {
        ResultHandler {
            objects: Objects::new(clients::s3(config)),
            store: DynamoStore::new(clients::dynamodb(config), settings.table_name.clone()),
            detections: Topic::new(clients::sns(config), settings.detections_topic_arn.clone()),
            settings,
        }
    }
}

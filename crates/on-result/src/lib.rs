//! The on-result function: turns SageMaker's async notifications into recorded detections
//! and a detection notification users can subscribe to.
//!
//! [`event`] reads the SNS payload, [`handler`] runs the flow against the ports (job store,
//! objects, topic), [`remerge`] merges a stored result again, [`outcome`] and [`error`] are what a notification ends as. The detection
//! notification itself is built by `cochl_aws::message`, shared with the submit function
//! (which notifies refused requests). `main` only wires the AWS adapters to the handler.

pub mod error;
pub mod event;
pub mod handler;
pub mod outcome;
pub mod remerge;

pub use error::{RecordError, ResultError};
pub use handler::{handle, handle_message, handle_queue, ResultHandler};
pub use outcome::NotificationOutcome;
pub use remerge::Remerge;

use cochl_aws::clients::{self, SdkConfig};
use cochl_aws::dynamo::DynamoStore;
use cochl_aws::notify::Topic;
use cochl_aws::objects::Objects;
use cochl_aws::queue::Queue;
use cochl_aws::settings::ResultSettings;

impl ResultHandler {
    /// Builds the AWS adapters from an SDK configuration (no network call).
    pub fn from_config(config: &SdkConfig, settings: ResultSettings) -> Self {
        ResultHandler {
            objects: Objects::new(clients::s3(config)),
            store: DynamoStore::new(clients::dynamodb(config), settings.table_name.clone()),
            detections: Topic::new(clients::sns(config), settings.detections_topic_arn.clone()),
            submit_queue: Queue::new(clients::sqs(config), settings.submit_queue_url.clone()),
            settings,
        }
    }
}

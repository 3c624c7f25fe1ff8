//! The submit function: turns an audio upload into a Cochl.Sense inference.
//!
//! [`event`] reads the S3 notification (or on-result's resubmission request, or a backfill request), [`inspect`] (shared with the backfill function) decides how (or whether) an upload is
//! sent, [`handler`] runs the flow against the ports (job store, objects, endpoint, topic),
//! [`outcome`] and [`error`] are what a record ends as. `main` only wires the AWS adapters
//! to the handler.

pub mod error;
pub mod event;
pub mod handler;
pub use cochl_aws::inspect;
pub mod outcome;

pub use error::{RecordError, SubmitError};
pub use handler::{handle, handle_queue, Reconcile, Submitter};
pub use outcome::RecordOutcome;

use cochl_aws::settings::SubmitSettings;
use cochl_aws::{
    clients, dynamo::DynamoStore, endpoint::AsyncEndpoint, notify::Topic, objects::Objects,
    queue::Queue,
};

impl Submitter {
    /// Builds the AWS adapters from an SDK configuration (no network call).
    pub fn from_config(config: &clients::SdkConfig, settings: SubmitSettings) -> Self {
        Submitter {
            objects: Objects::new(clients::s3(config)),
            store: DynamoStore::new(clients::dynamodb(config), settings.table_name.clone()),
            endpoint: AsyncEndpoint::new(
                clients::sagemaker(config),
                settings.endpoint_name.clone(),
                settings.max_attempts,
            ),
            detections: Topic::new(clients::sns(config), settings.detections_topic_arn.clone()),
            queue: Queue::new(clients::sqs(config), settings.defer.queue_url.clone()),
            settings,
            reconcile: Reconcile::default(),
        }
    }
}

//! The submit function: turns an audio upload into a Cochl.Sense inference.
//!
//! [`event`] reads the S3 notification, [`inspect`] decides how (or whether) an upload is
//! sent, [`handler`] runs the flow against the table and the endpoint. `main` only wires
//! clients to the handler.

pub mod event;
pub mod handler;
pub mod inspect;

pub use handler::{handle, RecordOutcome, SubmitError, Submitter};

use cochl_aws::settings::SubmitSettings;
use cochl_aws::{
    clients, dynamo::DynamoStore, endpoint::AsyncEndpoint, notify::Topic, objects::Objects,
};

impl Submitter {
    /// Builds the clients from an SDK configuration (no network call).
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
            settings,
        }
    }
}

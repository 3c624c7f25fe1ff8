//! Dev and test only: the local AWS services our tests and devstack talk to.
//!
//! [`MotoServer`] runs the pinned `moto[server]` from the project's virtualenv on a free
//! 127.0.0.1 port. The Python side (`tools/moto/serve.py`) exits when its standard input
//! closes, so the server dies with the process that started it, even when that process
//! panics, is interrupted or is killed; dropping a [`MotoServer`] also kills it by its pid.
//! [`sdk_config`] builds an SDK configuration that points every client at a local endpoint
//! with test credentials, exactly as `AWS_ENDPOINT_URL` does for the Lambda binaries.
//! [`wait`] holds every test's deadlines and its one bounded polling loop; [`messaging`]
//! creates, wires and reads topics and queues; [`sample`] reads a file of `samples/`;
//! [`soak`] sizes the load tests; [`doubles`] are in-memory implementations of the
//! handlers' ports, for fast handler tests.

pub mod audio;
pub mod doubles;
pub mod faults;
pub mod http;
pub mod messaging;
mod moto;
pub mod rng;
pub mod samples;
mod sdk;
pub mod settings;
pub mod soak;
pub mod wait;

pub use moto::{shared_moto, shared_sdk_config, MotoServer, TestkitError};
pub use sdk::{s3_client, sample, sdk_config, unique_name, workspace_root};

//! Dev and test only: the local AWS services our tests and devstack talk to.
//!
//! [`MotoServer`] runs the pinned `moto[server]` from the project's virtualenv on a free
//! 127.0.0.1 port. The Python side (`tools/moto/serve.py`) exits when its standard input
//! closes, so the server dies with the process that started it, even when that process
//! panics, is interrupted or is killed; dropping a [`MotoServer`] also kills it by its pid.
//! [`sdk_config`] builds an SDK configuration that points every client at a local endpoint
//! with test credentials, exactly as `AWS_ENDPOINT_URL` does for the Lambda binaries.

pub mod audio;
pub mod faults;
pub mod http;
mod moto;
pub mod rng;
pub mod samples;
mod sdk;

pub use moto::{shared_moto, MotoServer, TestkitError};
pub use sdk::{s3_client, sdk_config, unique_name, workspace_root};

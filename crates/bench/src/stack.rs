//! The local stack every networked section runs on (moto from `.venv`, on 127.0.0.1).

use anyhow::Result;
use devstack::stack::{LocalStack, StackOptions};

/// A fresh stack (own bucket, table, topics, queues, emulator) on the shared moto server.
/// Admission control gets room for every measured submission: some sections detach the
/// results queue, so no notification ever gives a slot back.
pub async fn start_stack() -> Result<LocalStack> {
    LocalStack::on_shared_moto(StackOptions {
        name_prefix: "bench".into(),
        env: [(
            cochl_aws::settings::MAX_IN_FLIGHT.to_string(),
            "100000".to_string(),
        )]
        .into(),
        ..StackOptions::default()
    })
    .await
}

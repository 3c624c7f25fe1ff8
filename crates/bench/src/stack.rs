//! The local stack every networked section runs on (moto from `.venv`, on 127.0.0.1).

use anyhow::Result;
use devstack::stack::{LocalStack, StackOptions};

/// A fresh stack (own bucket, table, topics, queues, emulator) on the shared moto server.
pub async fn start_stack() -> Result<LocalStack> {
    LocalStack::on_shared_moto(StackOptions {
        name_prefix: "bench".into(),
        ..StackOptions::default()
    })
    .await
}

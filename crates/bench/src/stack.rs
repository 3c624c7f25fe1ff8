//! The local stack every networked section runs on (moto from `.venv`, on 127.0.0.1).

use anyhow::{Context, Result};
use devstack::stack::{LocalStack, StackOptions};

/// A fresh stack (own bucket, table, topics, queues, emulator) on the shared moto server.
pub async fn start_stack() -> Result<LocalStack> {
    let moto = testkit::shared_moto()
        .map_err(anyhow::Error::msg)
        .context("starting moto (run `make venv`)")?;
    LocalStack::start(
        StackOptions {
            name_prefix: "bench".into(),
            ..StackOptions::default()
        },
        Some(moto.endpoint()),
    )
    .await
}

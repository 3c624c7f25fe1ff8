//! Dev and test only: the whole Cochl pipeline on this machine.
//!
//! [`stack::LocalStack`] starts moto, creates the bucket, table, topics and queues, wires
//! them as `template.yaml` does, starts the SageMaker async emulator and delivers events to
//! the functions' handlers; [`demo`] is `make demo` (tables from `cochl_query::table`);
//! [`up`] is `make up`; [`batch_job`] plays an S3 Batch Operations job against the backfill
//! function, [`backfill`] is `make backfill` (such a job against a running `make up`);
//! [`runtime_api`] runs the real function binaries as Lambda would; [`harness`] is what
//! tests do with a running stack (bounded waits for a job's state, queues, dead letters).

pub mod backfill;
pub mod batch_job;
pub mod demo;
pub mod event_source;
pub mod harness;
pub mod payload;
pub mod query;
pub mod query_server;
pub mod report;
pub mod runtime_api;
pub mod stack;
pub mod up;

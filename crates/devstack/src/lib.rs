//! Dev and test only: the whole Cochl pipeline on this machine.
//!
//! [`stack::LocalStack`] starts moto, creates the bucket, table, topics and queues, wires
//! them as `template.yaml` does, starts the SageMaker async emulator and delivers events to
//! the functions' handlers; [`demo`] is `make demo`; [`table`] prints documents for people.

pub mod demo;
pub mod pump;
pub mod query;
pub mod stack;
pub mod table;

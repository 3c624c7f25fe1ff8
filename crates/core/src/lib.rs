//! The pure domain of the Cochl.Sense pipeline.
//!
//! Everything here is deterministic and free of I/O so that every decision the
//! Lambda functions make (which content type to send, which sensitivity, how
//! windows merge into detections, whether an event is a duplicate) can be unit-
//! and property-tested without a network. Adapters in other crates do the I/O.

pub mod backfill;
pub mod content_type;
pub mod detections;
mod envelope;
pub mod inference_id;
pub mod job;
pub mod keys;
pub mod notification;
pub mod resubmit;
pub mod result;
pub mod sensitivity;
pub mod time;

//! The query function: an HTTP API over the job table, served by Lambda behind a Function URL
//! or an API Gateway HTTP API (payload format 2.0), with IAM (SigV4) authentication.
//!
//! - `GET /files?uri=s3://bucket/key`: the file's job and what was heard in it.
//! - `GET /tags/{name}/files`: files whose current analysis found a tag, newest first.
//! - `GET /jobs?status=...`: jobs in a status, most recently changed first.
//! - `GET /files/timeline.svg?uri=...`: the file's detections drawn as a timeline ([`timeline`]).
//!
//! `openapi.json` beside this crate's manifest is the contract; a test holds the handler to it.
//! The modules follow the request: [`routes`] picks the route, [`params`] checks parameters,
//! [`handler`] reads the table, [`documents`] shapes the answer, [`errors`] shapes failures.
//! [`table`] renders a file document for people (`make demo`, the `cochl` CLI).

pub mod documents;
pub mod errors;
pub mod handler;
pub mod params;
pub mod routes;
pub mod table;
pub mod timeline;

pub use handler::handle;

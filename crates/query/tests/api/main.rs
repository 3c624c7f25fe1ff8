//! The query API against moto, through the handler function, as the Lambda runtime calls it.

mod events;
mod files;
mod fuzz;
mod jobs;
mod openapi;
mod routing;
mod seed;
mod tags;

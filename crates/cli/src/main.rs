//! `cochl`: the Cochl.Sense pipeline from a terminal, for a deployed stack and for `make up`
//! alike.
//!
//! Where things are comes from a CloudFormation stack's outputs (`--stack NAME`) or from the
//! environment (`source target/devstack/env` after `make up`): [`resources`]. Queries go to
//! the query function's URL signed with SigV4 from the SDK's credential chain, as its
//! `AWS_IAM` Function URL requires: [`sign`], [`query_client`]. Each command is a module:
//! [`upload`] (with [`wait`] for `--wait`), [`listing`] (`tag`, `jobs`), [`redrive`]; `file`
//! and `timeline` are a single request each, in [`commands`].
//!
//! Errors are one line on stderr, `cochl: error: ...`, and exit code 1; a usage error exits
//! with 2 (clap's); `upload --wait` exits with 3 when a file failed or was rejected.

mod args;
mod commands;
mod listing;
mod query_client;
mod redrive;
mod resources;
mod sign;
mod upload;
mod wait;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cochl: error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cochl: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

//! The command line: global options and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Upload audio to the Cochl.Sense pipeline, wait for its analysis, and read what was heard.
///
/// Resources come from a CloudFormation stack's outputs (--stack) or from the environment
/// (COCHL_BUCKET, COCHL_INPUT_PREFIX, COCHL_QUERY_URL, the COCHL_*_QUEUE_URL variables; after
/// `make up`, `source target/devstack/env`). Queries are signed with SigV4 using the AWS SDK's
/// credential chain.
#[derive(Debug, Parser)]
#[command(name = "cochl", version)]
pub struct Cli {
    /// Where the pipeline is.
    #[command(flatten)]
    pub target: Target,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the pipeline's resources are found.
#[derive(Debug, Args)]
pub struct Target {
    /// Read the resources from this CloudFormation stack's outputs instead of the environment.
    #[arg(long, global = true, env = "COCHL_STACK")]
    pub stack: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload audio files to the input prefix (each under its file name).
    Upload(UploadArgs),
    /// Show what was heard in one file.
    File {
        /// The file, `s3://bucket/key`.
        uri: String,
        /// Print the query API's document unchanged.
        #[arg(long)]
        json: bool,
    },
    /// List the files whose current analysis found a tag, newest first.
    Tag(TagArgs),
    /// List the jobs in a status, most recently changed first.
    Jobs(JobsArgs),
    /// Write a file's detections as an SVG timeline.
    Timeline {
        /// The file, `s3://bucket/key`.
        uri: String,
        /// Where to write the SVG (`-` for standard output).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Move the messages of dead-letter queues back to the queues they came from.
    Redrive {
        /// Which pipeline queue's dead letters to move.
        #[arg(long, value_enum, default_value_t = QueueChoice::All)]
        queue: QueueChoice,
    },
}

/// `cochl upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The audio files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Per-file sensitivity, as the `sensitivity` metadata takes it, e.g.
    /// '{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2}}'.
    #[arg(long)]
    pub sensitivity: Option<String>,
    /// The Cochl content type to send (the `cochl-content-type` metadata), for raw PCM or a
    /// file whose extension says nothing, e.g. 'audio/x-raw; rate=16000; format=s16le; channels=1'.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Upload under this prefix instead of the pipeline's input prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Wait for each file's analysis, show progress, then each file's table. Exits with 3 if
    /// any file failed or was rejected.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

/// `cochl tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The Cochl tag name, e.g. Siren.
    pub name: String,
    /// Only analyses completed at or after this time (RFC 3339 or a date).
    #[arg(long)]
    pub since: Option<String>,
    /// Only analyses completed at or before this time (RFC 3339 or a date).
    #[arg(long)]
    pub until: Option<String>,
    /// Only files where the tag reached this probability.
    #[arg(long)]
    pub min_probability: Option<f64>,
    /// Stop after this many files.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
    /// Print the query API's documents unchanged, one page per line.
    #[arg(long)]
    pub json: bool,
}

/// `cochl jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// SUBMITTED, COMPLETED, FAILED, REJECTED or DELETED.
    #[arg(long)]
    pub status: String,
    /// Stop after this many jobs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
    /// Print the query API's documents unchanged, one page per line.
    #[arg(long)]
    pub json: bool,
}

/// The pipeline queues whose dead letters `redrive` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueChoice {
    /// The submit queue (S3 upload events).
    Submit,
    /// The results queue (SageMaker's notifications).
    Results,
    /// Both.
    All,
}

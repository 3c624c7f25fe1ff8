//! The emulator's configuration, from command-line flags and environment variables.
//!
//! Flags win over environment variables, which win over defaults. Flags are parsed by
//! hand (`--name value` or `--name=value`) to keep the dependency set small. The server
//! only ever binds a loopback address: it is a dev and test tool, never a service.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use cochl_core::keys::{strip_s3_scheme, KeyError, S3Uri};

use crate::protocol::check_endpoint_name;

/// Default endpoint name, the one Cochl's SageMaker guide uses.
pub const DEFAULT_ENDPOINT_NAME: &str = "cochl-sense";
/// Default number of inferences processed at once (Cochl's notebook uses 4 per instance).
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
/// Default AWS region reported in notifications and used for the binary's clients.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A flag the emulator does not know.
    #[error("unknown argument {0:?} (see --help)")]
    UnknownArgument(String),
    /// A flag that needs a value came last.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A required setting was given neither as a flag nor as an environment variable.
    #[error("{flag} (or {env}) is required")]
    Required {
        /// The flag that sets it.
        flag: &'static str,
        /// The environment variable that sets it when the flag is absent.
        env: &'static str,
    },
    /// A value could not be parsed.
    #[error("invalid {name} {value:?}: {reason}")]
    Invalid {
        /// The flag or variable the value came from, so the message says which to fix.
        name: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bind address is not a loopback address.
    #[error("refusing to bind {0}: the emulator only binds loopback addresses (127.0.0.0/8, ::1)")]
    NotLoopback(IpAddr),
}

/// An S3 location prefix such as SageMaker's `S3OutputPath` (`s3://bucket` or
/// `s3://bucket/prefix`); objects are written beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Prefix {
    bucket: String,
    prefix: String,
}

impl S3Prefix {
    /// Parses `s3://bucket` or `s3://bucket/some/prefix` (trailing slashes are dropped).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = strip_s3_scheme(text)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        // Validate the bucket (and the prefix as a key) through the core type.
        S3Uri::new(bucket, if prefix.is_empty() { "x" } else { prefix })?;
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The bucket the objects beneath this prefix are written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object `name` beneath this prefix.
    pub fn join(&self, name: &str) -> Result<S3Uri, KeyError> {
        let key = if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        };
        S3Uri::new(self.bucket.clone(), key)
    }
}

impl fmt::Display for S3Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Everything the emulator needs to run, as SageMaker's endpoint configuration would
/// hold it (`AsyncInferenceConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Address to bind; must be a loopback address. Default `127.0.0.1`.
    pub bind: IpAddr,
    /// Port to bind; 0 picks a free one. Default 0.
    pub port: u16,
    /// The only endpoint name the emulator answers to. Default `cochl-sense`.
    pub endpoint_name: String,
    /// `S3OutputPath`: results are written to `<output_path>/<uuid>.out`.
    pub output_path: S3Prefix,
    /// `S3FailurePath`: failures are written to `<failure_path>/<uuid>-error.out`.
    pub failure_path: S3Prefix,
    /// `NotificationConfig.SuccessTopic`: SNS topic ARN; no notification when `None`.
    pub success_topic: Option<String>,
    /// `NotificationConfig.ErrorTopic`: SNS topic ARN; no notification when `None`.
    pub error_topic: Option<String>,
    /// Inferences processed at once (`MaxConcurrentInvocationsPerInstance`); others wait
    /// in FIFO order. Default 4.
    pub max_concurrent: usize,
    /// The region reported in notifications (`awsRegion`). Default `us-east-1`.
    pub region: String,
}

impl EmulatorConfig {
    /// A configuration with the given output and failure paths and every default.
    pub fn new(output_path: S3Prefix, failure_path: S3Prefix) -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            endpoint_name: DEFAULT_ENDPOINT_NAME.to_owned(),
            output_path,
            failure_path,
            success_topic: None,
            error_topic: None,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            region: DEFAULT_REGION.to_owned(),
        }
    }

    /// Checks what cannot be expressed in the types: a loopback bind address, a valid
    /// endpoint name and at least one concurrent inference.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.bind.is_loopback() {
            return Err(ConfigError::NotLoopback(self.bind));
        }
        if let Err(reason) = check_endpoint_name(&self.endpoint_name) {
            return Err(ConfigError::Invalid {
                name: "--endpoint-name",
                value: self.endpoint_name.clone(),
                reason,
            });
        }
        if self.max_concurrent == 0 {
            return Err(ConfigError::Invalid {
                name: "--max-concurrent",
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// What the command line asked for, beyond the configuration itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run the emulator.
    Run {
        /// The configuration (boxed: it is much larger than the other variant).
        config: Box<EmulatorConfig>,
        /// Exit when standard input reaches end of file (the parent went away).
        exit_on_stdin_eof: bool,
    },
    /// Print [`USAGE`] and exit.
    Help,
}

/// The binary's `--help` text.
pub const USAGE: &str = "\
cochl-emulator: a local SageMaker async endpoint stand-in for Cochl.Sense (dev and test only)

Flags (each also read from the environment variable shown; flags win):
  --bind ADDR            COCHL_EMULATOR_BIND            loopback address to bind [127.0.0.1]
  --port N               COCHL_EMULATOR_PORT            port, 0 = any free port [0]
  --endpoint-name NAME   COCHL_EMULATOR_ENDPOINT_NAME   endpoint name [cochl-sense]
  --output-path S3URI    COCHL_EMULATOR_OUTPUT_PATH     S3OutputPath (required)
  --failure-path S3URI   COCHL_EMULATOR_FAILURE_PATH    S3FailurePath (required)
  --success-topic ARN    COCHL_EMULATOR_SUCCESS_TOPIC   SNS success topic [none]
  --error-topic ARN      COCHL_EMULATOR_ERROR_TOPIC     SNS error topic [none]
  --max-concurrent N     COCHL_EMULATOR_MAX_CONCURRENT  inferences at once [4]
  --region REGION        COCHL_EMULATOR_REGION          region [us-east-1]
  --exit-on-stdin-eof                                   exit when stdin closes
  --help

S3 and SNS clients use the standard AWS environment (AWS_ENDPOINT_URL, credentials).
Prints `LISTENING http://127.0.0.1:<port>` on stdout once bound; logs JSON to stderr.
";

/// One setting: its flag, and the environment variable read when the flag is not given.
struct Setting {
    flag: &'static str,
    env: &'static str,
}

impl Setting {
    const fn new(flag: &'static str, env: &'static str) -> Self {
        Setting { flag, env }
    }
}

const BIND: Setting = Setting::new("--bind", "COCHL_EMULATOR_BIND");
const PORT: Setting = Setting::new("--port", "COCHL_EMULATOR_PORT");
const ENDPOINT_NAME: Setting = Setting::new("--endpoint-name", "COCHL_EMULATOR_ENDPOINT_NAME");
const OUTPUT_PATH: Setting = Setting::new("--output-path", "COCHL_EMULATOR_OUTPUT_PATH");
const FAILURE_PATH: Setting = Setting::new("--failure-path", "COCHL_EMULATOR_FAILURE_PATH");
const SUCCESS_TOPIC: Setting = Setting::new("--success-topic", "COCHL_EMULATOR_SUCCESS_TOPIC");
const ERROR_TOPIC: Setting = Setting::new("--error-topic", "COCHL_EMULATOR_ERROR_TOPIC");
const MAX_CONCURRENT: Setting = Setting::new("--max-concurrent", "COCHL_EMULATOR_MAX_CONCURRENT");
const REGION: Setting = Setting::new("--region", "COCHL_EMULATOR_REGION");
const VALUED: [&Setting; 9] = [
    &BIND,
    &PORT,
    &ENDPOINT_NAME,
    &OUTPUT_PATH,
    &FAILURE_PATH,
    &SUCCESS_TOPIC,
    &ERROR_TOPIC,
    &MAX_CONCURRENT,
    &REGION,
];

/// Parses the command line (without the program name) and the environment (`env`
/// looks a variable up; pass `|k| std::env::var(k).ok()`).
pub fn parse_command(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    let mut exit_on_stdin_eof = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        if arg == "--exit-on-stdin-eof" {
            exit_on_stdin_eof = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let setting = VALUED
            .iter()
            .find(|s| s.flag == name)
            .ok_or_else(|| ConfigError::UnknownArgument(arg.clone()))?;
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| ConfigError::MissingValue(setting.flag.to_owned()))?,
        };
        flags.push((setting.flag, value));
    }
    let lookup = |setting: &Setting| -> Option<(&'static str, String)> {
        flags
            .iter()
            .rev()
            .find(|(flag, _)| *flag == setting.flag)
            .map(|(flag, value)| (*flag, value.clone()))
            .or_else(|| env(setting.env).map(|value| (setting.env, value)))
            .filter(|(_, value)| !value.is_empty())
    };

    let required_prefix = |setting: &Setting| -> Result<S3Prefix, ConfigError> {
        let (name, value) = lookup(setting).ok_or(ConfigError::Required {
            flag: setting.flag,
            env: setting.env,
        })?;
        S3Prefix::parse(&value).map_err(|e| ConfigError::Invalid {
            name,
            value,
            reason: e.to_string(),
        })
    };
    let mut config = EmulatorConfig::new(
        required_prefix(&OUTPUT_PATH)?,
        required_prefix(&FAILURE_PATH)?,
    );
    if let Some((name, value)) = lookup(&BIND) {
        config.bind = parse_value(name, &value)?;
    }
    if let Some((name, value)) = lookup(&PORT) {
        config.port = parse_value(name, &value)?;
    }
    if let Some((_, value)) = lookup(&ENDPOINT_NAME) {
        config.endpoint_name = value;
    }
    config.success_topic = lookup(&SUCCESS_TOPIC).map(|(_, value)| value);
    config.error_topic = lookup(&ERROR_TOPIC).map(|(_, value)| value);
    if let Some((name, value)) = lookup(&MAX_CONCURRENT) {
        config.max_concurrent = parse_value(name, &value)?;
    }
    if let Some((_, value)) = lookup(&REGION) {
        config.region = value;
    }
    config.validate()?;
    Ok(Command::Run {
        config: Box::new(config),
        exit_on_stdin_eof,
    })
}

fn parse_value<T>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_command(args.iter().map(|a| a.to_string()), |k| env.get(k).cloned())
    }

    fn run_config(command: Command) -> (EmulatorConfig, bool) {
        match command {
            Command::Run {
                config,
                exit_on_stdin_eof,
            } => (*config, exit_on_stdin_eof),
            Command::Help => panic!("expected a run command"),
        }
    }

    const PATHS: [&str; 3] = [
        "--output-path",
        "s3://out/results/",
        "--failure-path=s3://out",
    ];

    #[test]
    fn defaults_apply_when_only_paths_are_given() {
        let (config, exit) = run_config(parse(&PATHS, &[]).unwrap());
        assert_eq!(config.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.port, 0);
        assert_eq!(config.endpoint_name, "cochl-sense");
        assert_eq!(config.output_path.to_string(), "s3://out/results");
        assert_eq!(config.failure_path.to_string(), "s3://out");
        assert_eq!(config.max_concurrent, 4);
        assert_eq!(config.region, "us-east-1");
        assert_eq!(config.success_topic, None);
        assert!(!exit);
    }

    #[test]
    fn flags_win_over_environment() {
        let (config, exit) = run_config(
            parse(
                &[
                    "--port",
                    "9100",
                    "--exit-on-stdin-eof",
                    "--output-path",
                    "s3://flag/out",
                    "--failure-path",
                    "s3://flag/fail",
                ],
                &[
                    ("COCHL_EMULATOR_PORT", "9200"),
                    ("COCHL_EMULATOR_ENDPOINT_NAME", "other-endpoint"),
                    ("COCHL_EMULATOR_OUTPUT_PATH", "s3://env/out"),
                    ("COCHL_EMULATOR_SUCCESS_TOPIC", "arn:aws:sns:us-east-1:1:ok"),
                    ("COCHL_EMULATOR_MAX_CONCURRENT", "2"),
                ],
            )
            .unwrap(),
        );
        assert_eq!(config.port, 9100);
        assert_eq!(config.endpoint_name, "other-endpoint");
        assert_eq!(config.output_path.to_string(), "s3://flag/out");
        assert_eq!(
            config.success_topic.as_deref(),
            Some("arn:aws:sns:us-east-1:1:ok")
        );
        assert_eq!(config.max_concurrent, 2);
        assert!(exit);
    }

    #[test]
    fn refuses_non_loopback_bind_addresses() {
        let mut args = PATHS.to_vec();
        args.extend(["--bind", "0.0.0.0"]);
        assert!(matches!(
            parse(&args, &[]),
            Err(ConfigError::NotLoopback(_))
        ));
        let (config, _) = run_config(parse(&PATHS, &[("COCHL_EMULATOR_BIND", "::1")]).unwrap());
        assert!(config.bind.is_loopback());
        assert!(matches!(
            parse(&PATHS, &[("COCHL_EMULATOR_BIND", "192.168.1.2")]),
            Err(ConfigError::NotLoopback(_))
        ));
    }

    #[test]
    fn reports_missing_and_bad_values() {
        assert_eq!(
            parse(&["--output-path", "s3://a-bucket"], &[]),
            Err(ConfigError::Required {
                flag: "--failure-path",
                env: "COCHL_EMULATOR_FAILURE_PATH"
            })
        );
        assert!(matches!(
            parse(
                &["--output-path", "bucket/x", "--failure-path", "s3://abc"],
                &[]
            ),
            Err(ConfigError::Invalid { .. })
        ));
        let mut args = PATHS.to_vec();
        args.push("--port");
        assert!(matches!(
            parse(&args, &[]),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&["--verbose"], &[]),
            Err(ConfigError::UnknownArgument(_))
        ));
        let mut args = PATHS.to_vec();
        args.extend(["--max-concurrent", "0"]);
        assert!(matches!(
            parse(&args, &[]),
            Err(ConfigError::Invalid { .. })
        ));
        let mut args = PATHS.to_vec();
        args.extend(["--endpoint-name", "bad_name"]);
        assert!(matches!(
            parse(&args, &[]),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(parse(&["--help"], &[]), Ok(Command::Help));
    }

    #[test]
    fn prefixes_join_names() {
        let prefix = S3Prefix::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(
            prefix.join("x.out").unwrap().to_string(),
            "s3://bucket/a/b/x.out"
        );
        let bare = S3Prefix::parse("S3://bucket").unwrap();
        assert_eq!(bare.join("x.out").unwrap().to_string(), "s3://bucket/x.out");
        assert!(S3Prefix::parse("s3://B").is_err());
    }
}

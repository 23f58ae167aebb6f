//! The `spire-agent` command line: SPIRE's subcommands with single-dash Go-style flags.
//! Errors print as `Error: <message>` on stderr with exit status 1, as SPIRE's do.

mod admin;
mod fetch_jwt;
mod fetch_x509;
mod healthcheck;
mod validate;
mod validate_jwt;
mod watch;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "spire-agent", about = "The spire-rs agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the agent.
    Run(crate::config::AgentFlags),
    /// Determines agent health status.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Validates a SPIRE agent configuration file.
    Validate(crate::config::AgentFlags),
    /// Debug information from the admin socket.
    Debug {
        #[command(subcommand)]
        command: admin::DebugCommand,
    },
    /// Reads or changes the agent's log level over the admin socket.
    Logger {
        #[command(subcommand)]
        command: admin::LoggerCommand,
    },
    /// Talks to the Workload API.
    Api {
        #[command(subcommand)]
        command: ApiCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ApiCommand {
    /// Fetches identities from the Workload API.
    Fetch {
        #[command(subcommand)]
        command: Option<FetchCommand>,
        #[command(flatten)]
        x509: fetch_x509::FetchX509Args,
    },
    /// Validates credentials through the Workload API.
    Validate {
        #[command(subcommand)]
        command: ValidateCommand,
    },
    /// Attaches to the Workload API and prints updates as they're received.
    Watch(watch::WatchArgs),
}

#[derive(Debug, Subcommand)]
enum ValidateCommand {
    /// Validates a JWT-SVID.
    Jwt(validate_jwt::ValidateJwtArgs),
}

#[derive(Debug, Subcommand)]
enum FetchCommand {
    /// Fetches X509-SVIDs from the Workload API.
    X509(fetch_x509::FetchX509Args),
    /// Fetches a JWT-SVID (and the JWT bundles) from the Workload API.
    Jwt(fetch_jwt::FetchJwtArgs),
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    spire_common::duration::parse(s).map_err(|e| e.to_string())
}

pub use spire_common::cli::CliError;

/// Whether `-output` asks for JSON (`json`) rather than text (`pretty`).
pub(crate) fn wants_json(output: &str) -> Result<bool, CliError> {
    match output {
        "pretty" => Ok(false),
        "json" => Ok(true),
        other => Err(CliError(format!(
            "invalid output format {other:?}: use pretty or json"
        ))),
    }
}

/// Renders a JSON value (from [`spire_common::protojson`]) as SPIRE's `-output json`
/// prints it: one line and a newline.
pub(crate) fn print_json_value(value: &serde_json::Value) {
    println!("{}", spire_common::protojson::render(value));
}

/// Converts a response message into its SPIRE `-output json` value.
pub(crate) fn json_value<M: prost::Message + prost::Name>(
    msg: &M,
) -> Result<serde_json::Value, CliError> {
    spire_common::protojson::to_value(msg)
        .map_err(|e| CliError(format!("cannot render JSON output: {e}")))
}

/// Runs the command line with the process arguments.
pub fn main() -> ExitCode {
    run_with_args(std::env::args_os().collect())
}

/// Runs the command line with `args` (program name first).
pub fn run_with_args(args: Vec<OsString>) -> ExitCode {
    spire_common::cli::run(args, |cli: Cli| async move {
        match cli.command {
            Command::Run(flags) => crate::run::run_command(flags).await,
            Command::Healthcheck(args) => healthcheck::run(args).await,
            Command::Validate(flags) => validate::run(&flags),
            Command::Debug { command } => admin::debug(command).await,
            Command::Logger { command } => admin::logger(command).await,
            Command::Api {
                command: ApiCommand::Watch(args),
            } => watch::run(args).await,
            Command::Api {
                command: ApiCommand::Fetch { command, x509 },
            } => match command {
                Some(FetchCommand::X509(args)) => fetch_x509::run(args).await,
                Some(FetchCommand::Jwt(args)) => fetch_jwt::run(args).await,
                None => fetch_x509::run(x509).await,
            },
            Command::Api {
                command: ApiCommand::Validate { command },
            } => match command {
                ValidateCommand::Jwt(args) => validate_jwt::run(args).await,
            },
        }
    })
}

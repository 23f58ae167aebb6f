//! The `spire-server` command line: SPIRE's subcommands and single-dash Go-style flags,
//! talking to the server over its admin Unix socket. Errors print as `Error: <message>`
//! on stderr with exit status 1, as SPIRE's CLI does.

mod agent;
mod agent_purge;
mod bundle;
mod debug;
mod entry;
mod entry_file;
mod federation;
mod healthcheck;
mod jwt;
mod localauthority;
mod logger;
mod svid;
mod token;
mod validate;
mod x509;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The default admin socket (server.md §1.2).
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/spire-server/private/api.sock";

#[derive(Debug, Parser)]
#[command(name = "spire-server", about = "The spire-rs server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server.
    Run(crate::config::ServerFlags),
    /// Validates a SPIRE server configuration file.
    Validate(crate::config::ServerFlags),
    /// Mints X509-SVIDs.
    X509 {
        #[command(subcommand)]
        command: x509::X509Command,
    },
    /// Mints JWT-SVIDs.
    Jwt {
        #[command(subcommand)]
        command: jwt::JwtCommand,
    },
    /// Server debug information.
    Debug {
        #[command(subcommand)]
        command: debug::DebugCommand,
    },
    /// Reads and changes the server's log level.
    Logger {
        #[command(subcommand)]
        command: logger::LoggerCommand,
    },
    /// Determines server health status.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Manages join tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Manages registration entries.
    Entry {
        #[command(subcommand)]
        command: entry::EntryCommand,
    },
    /// Manages attested agents.
    Agent {
        #[command(subcommand)]
        command: agent::AgentCommand,
    },
    /// Manages trust bundles.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Manages federation relationships with foreign trust domains.
    Federation {
        #[command(subcommand)]
        command: federation::FederationCommand,
    },
    /// Manages the local X.509 and JWT authorities.
    #[command(name = "localauthority")]
    LocalAuthority {
        #[command(subcommand)]
        command: localauthority::LocalAuthorityCommand,
    },
    /// Revokes single X.509-SVIDs (spire-rs extension).
    Svid {
        #[command(subcommand)]
        command: svid::SvidCommand,
    },
    /// Manages the X.509 upstream authorities.
    #[command(name = "upstreamauthority")]
    UpstreamAuthority {
        #[command(subcommand)]
        command: localauthority::UpstreamAuthorityCommand,
    },
}

/// The admin socket flag shared by every API command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SocketArgs {
    /// Path to the SPIRE Server API socket.
    #[arg(long = "socketPath", default_value = DEFAULT_SOCKET_PATH)]
    pub socket_path: PathBuf,
    /// Instance name to substitute into socket templates (env
    /// SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE).
    #[arg(long = "instance", default_value = "")]
    pub instance: String,
}

/// Env var holding a socket path template with `%i` for `-instance`.
const SOCKET_TEMPLATE_ENV: &str = "SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE";
/// Env var holding the socket path when neither flag says otherwise.
const SOCKET_ENV: &str = "SPIRE_SERVER_PRIVATE_SOCKET";

impl SocketArgs {
    /// The socket to dial, as SPIRE chooses it: an explicit non-default `-socketPath`,
    /// then `-instance` in the template env var, then the socket env var, then the default.
    pub(crate) fn resolved_path(&self) -> Result<PathBuf, CliError> {
        let template = std::env::var(SOCKET_TEMPLATE_ENV).unwrap_or_default();
        if !self.instance.is_empty() {
            if template.is_empty() {
                return Err(CliError(format!(
                    "you must define {SOCKET_TEMPLATE_ENV} to use the instance flag"
                )));
            }
            if !template.contains("%i") {
                return Err(CliError(format!(
                    "failed to find %i in {SOCKET_TEMPLATE_ENV}"
                )));
            }
        }
        if self.socket_path != Path::new(DEFAULT_SOCKET_PATH) {
            return Ok(self.socket_path.clone());
        }
        if !self.instance.is_empty() {
            return Ok(PathBuf::from(template.replace("%i", &self.instance)));
        }
        match std::env::var(SOCKET_ENV) {
            Ok(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Ok(self.socket_path.clone()),
        }
    }

    pub(crate) fn channel(&self) -> Result<tonic::transport::Channel, CliError> {
        let path = self.resolved_path()?;
        spire_common::uds::channel(&path)
            .map_err(|e| CliError(format!("cannot reach {}: {e}", path.display())))
    }
}

/// The `-output` flag of API commands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct OutputArgs {
    /// Desired output format (pretty, json).
    #[arg(long = "output", default_value = "pretty")]
    pub output: String,
}

/// The output format an API command prints in (`-output pretty|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// Human-readable text (the default).
    Pretty,
    /// SPIRE's protojson rendering of the response message (server.md §2.1).
    Json,
}

impl OutputArgs {
    /// The requested format, or an error for an unknown one.
    pub(crate) fn format(&self) -> Result<OutputFormat, CliError> {
        match self.output.as_str() {
            "pretty" => Ok(OutputFormat::Pretty),
            "json" => Ok(OutputFormat::Json),
            other => Err(CliError(format!(
                "invalid output format {other:?}: use pretty or json"
            ))),
        }
    }

    /// For commands without JSON output yet: refuses `-output json`.
    #[allow(dead_code)]
    pub(crate) fn require_pretty(&self) -> Result<(), CliError> {
        match self.format()? {
            OutputFormat::Pretty => Ok(()),
            OutputFormat::Json => Err(CliError(
                "-output json is not implemented yet in spire-rs; use -output pretty".into(),
            )),
        }
    }
}

/// Prints `msg` as SPIRE's `-output json` does: one line of protojson and a newline.
pub(crate) fn print_json<M: prost::Message + prost::Name>(msg: &M) -> Result<(), CliError> {
    let json = spire_common::protojson::to_json(msg)
        .map_err(|e| CliError(format!("cannot render JSON output: {e}")))?;
    println!("{json}");
    Ok(())
}

pub use spire_common::cli::CliError;

/// Runs the command line with the process arguments; returns the exit status.
pub fn main() -> ExitCode {
    run_with_args(std::env::args_os().collect())
}

/// Runs the command line with `args` (program name first).
pub fn run_with_args(args: Vec<OsString>) -> ExitCode {
    spire_common::cli::run(args, |cli: Cli| async move {
        match cli.command {
            Command::Run(flags) => crate::run::run_command(flags).await,
            Command::Validate(flags) => validate::run(&flags),
            Command::X509 { command } => command.run().await,
            Command::Jwt { command } => command.run().await,
            Command::Debug { command } => command.run().await,
            Command::Logger { command } => command.run().await,
            Command::Healthcheck(args) => healthcheck::run(args).await,
            Command::Token { command } => command.run().await,
            Command::Entry { command } => command.run().await,
            Command::Agent { command } => command.run().await,
            Command::Bundle { command } => command.run().await,
            Command::Federation { command } => command.run().await,
            Command::LocalAuthority { command } => command.run().await,
            Command::UpstreamAuthority { command } => command.run().await,
            Command::Svid { command } => command.run().await,
        }
    })
}

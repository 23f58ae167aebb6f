//! `spire-server logger get|set|reset` (server.md §2.9) over the Logger API.

use spire_proto::spire::api::server::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::server::logger::v1::{
    GetLoggerRequest, ResetLogLevelRequest, SetLogLevelRequest,
};
use spire_proto::spire::api::types::Logger;

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LoggerCommand {
    /// Gets the logger details.
    Get(CommonArgs),
    /// Sets the logger details.
    Set(SetArgs),
    /// Reset the logger details to launch level.
    Reset(CommonArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CommonArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The new log level, one of (panic, fatal, error, warn, info, debug, trace).
    #[arg(long = "level", default_value = "")]
    level: String,
}

impl LoggerCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            LoggerCommand::Get(args) => {
                let format = args.output.format()?;
                let logger = LoggerClient::new(args.socket.channel()?)
                    .get_logger(GetLoggerRequest {})
                    .await
                    .map_err(CliError::rpc("error fetching logger"))?
                    .into_inner();
                print_logger(&logger, format)
            }
            LoggerCommand::Set(args) => {
                let format = args.common.output.format()?;
                if args.level.is_empty() {
                    return Err(CliError("a value (-level) must be set".into()));
                }
                let level =
                    spire_common::api_log_level::parse_level(&args.level).ok_or_else(|| {
                        CliError(format!("the value {} is not a valid setting", args.level))
                    })?;
                let logger = LoggerClient::new(args.common.socket.channel()?)
                    .set_log_level(SetLogLevelRequest {
                        new_level: level as i32,
                    })
                    .await
                    .map_err(CliError::rpc("failed to set log level"))?
                    .into_inner();
                print_logger(&logger, format)
            }
            LoggerCommand::Reset(args) => {
                let format = args.output.format()?;
                let logger = LoggerClient::new(args.socket.channel()?)
                    .reset_log_level(ResetLogLevelRequest {})
                    .await
                    .map_err(CliError::rpc("failed to reset logger"))?
                    .into_inner();
                print_logger(&logger, format)
            }
        }
    }
}

/// The name logrus prints for a level (`warning` for WARN).
fn level_name(value: i32) -> Result<&'static str, CliError> {
    spire_common::api_log_level::level_name(value).ok_or_else(|| {
        CliError(
            "internal error: returned log level is undefined; please report this as a bug".into(),
        )
    })
}

fn print_logger(logger: &Logger, format: OutputFormat) -> Result<(), CliError> {
    if format == OutputFormat::Json {
        return print_json(logger);
    }
    let current = level_name(logger.current_level)?;
    let launch = level_name(logger.launch_level)?;
    print!("Logger Level : {current}\nLaunch Level : {launch}\n\n");
    Ok(())
}

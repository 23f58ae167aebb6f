//! The admin-socket commands (agent.md §7.5): `debug getinfo` and `logger
//! get|set|reset`, printed as SPIRE's `cmd/spire-agent/cli/debug` and `.../logger` do.

use spire_common::cli::rfc3339;
use std::path::PathBuf;
use std::time::Duration;

use spire_common::api_log_level::{level_name, parse_level};
use spire_proto::spire::agent::debug::v1::debug_client::DebugClient;
use spire_proto::spire::agent::debug::v1::{GetInfoRequest, GetInfoResponse};
use spire_proto::spire::api::agent::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::agent::logger::v1::{
    GetLoggerRequest, ResetLogLevelRequest, SetLogLevelRequest,
};
use spire_proto::spire::api::types::Logger;
use tonic::transport::Channel;

use super::CliError;

/// SPIRE's default agent admin socket for the CLI.
pub const DEFAULT_ADMIN_SOCKET_PATH: &str = "/tmp/spire-agent/private/admin.sock";

/// `-socketPath` and `-output` of every admin command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AdminArgs {
    /// Path to the SPIRE Agent admin API socket.
    #[arg(long = "socketPath", default_value = DEFAULT_ADMIN_SOCKET_PATH)]
    socket_path: PathBuf,
    /// Desired output format (pretty, json).
    #[arg(long = "output", default_value = "pretty")]
    output: String,
}

impl AdminArgs {
    fn channel(&self) -> Result<Channel, CliError> {
        spire_common::uds::channel(&self.socket_path)
            .map_err(|e| CliError(format!("cannot reach {}: {e}", self.socket_path.display())))
    }
}

/// `debug` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DebugCommand {
    /// Prints debug information about the agent.
    Getinfo(AdminArgs),
}

/// `logger` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LoggerCommand {
    /// Gets the logger details.
    Get(AdminArgs),
    /// Sets the logger details.
    Set(SetArgs),
    /// Reset the logger details to launch level.
    Reset(AdminArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The new log level, one of (panic, fatal, error, warn, info, debug, trace).
    #[arg(long = "level", default_value = "")]
    level: String,
}

/// SPIRE's pretty `debug getinfo` output.
fn render_info(info: &GetInfoResponse) -> String {
    let uptime = Duration::from_secs(u64::try_from(info.uptime).unwrap_or(0));
    let last_sync = if info.last_sync_success == 0 {
        "(never)".to_owned()
    } else {
        rfc3339(info.last_sync_success)
    };
    let mut out = format!(
        "Agent Debug Info:\n  Uptime:                          {}\n  Last Sync Success:               {last_sync}\n  \
         Cached X.509 SVIDs:              {}\n  Cached JWT SVIDs:                {}\n  \
         Cached SVID Store X.509 SVIDs:   {}\n",
        spire_common::duration::format_go(uptime),
        info.cached_x509_svids_count,
        info.cached_jwt_svids_count,
        info.cached_svidstore_x509_svids_count,
    );
    if !info.svid_chain.is_empty() {
        out.push_str("  SVID Chain:\n");
        for (i, cert) in info.svid_chain.iter().enumerate() {
            let id = cert.id.as_ref().map_or_else(
                || "(none)".to_owned(),
                |id| format!("spiffe://{}{}", id.trust_domain, id.path),
            );
            out.push_str(&format!(
                "    [{i}] SPIFFE ID:  {id}\n        Subject:    {}\n        Expires At: {}\n",
                cert.subject,
                rfc3339(cert.expires_at)
            ));
        }
    }
    out
}

fn print_logger(logger: &Logger, json: bool) -> Result<(), CliError> {
    if json {
        super::print_json_value(&super::json_value(logger)?);
        return Ok(());
    }
    let undefined = |which: &str| {
        CliError(format!(
            "internal error: returned {which} log level is undefined; please report this as a bug"
        ))
    };
    let current = level_name(logger.current_level).ok_or_else(|| undefined("current"))?;
    let launch = level_name(logger.launch_level).ok_or_else(|| undefined("launch"))?;
    print!("Logger Level : {current}\nLaunch Level : {launch}\n\n");
    Ok(())
}

pub(crate) async fn debug(command: DebugCommand) -> Result<(), CliError> {
    let DebugCommand::Getinfo(args) = command;
    let json = super::wants_json(&args.output)?;
    let info = DebugClient::new(args.channel()?)
        .get_info(GetInfoRequest {})
        .await?
        .into_inner();
    if json {
        super::print_json_value(&super::json_value(&info)?);
    } else {
        print!("{}", render_info(&info));
    }
    Ok(())
}

pub(crate) async fn logger(command: LoggerCommand) -> Result<(), CliError> {
    match command {
        LoggerCommand::Get(args) => {
            let json = super::wants_json(&args.output)?;
            let logger = LoggerClient::new(args.channel()?)
                .get_logger(GetLoggerRequest {})
                .await
                .map_err(|s| CliError(format!("error fetching logger: {}", CliError::from(s).0)))?
                .into_inner();
            print_logger(&logger, json)
        }
        LoggerCommand::Set(args) => {
            let json = super::wants_json(&args.admin.output)?;
            if args.level.is_empty() {
                return Err(CliError("a value (-level) must be set".into()));
            }
            let level = parse_level(&args.level).ok_or_else(|| {
                CliError(format!("the value {:?} is not a valid setting", args.level))
            })?;
            let logger = LoggerClient::new(args.admin.channel()?)
                .set_log_level(SetLogLevelRequest {
                    new_level: level as i32,
                })
                .await
                .map_err(|s| CliError(format!("failed to set log level: {}", CliError::from(s).0)))?
                .into_inner();
            print_logger(&logger, json)
        }
        LoggerCommand::Reset(args) => {
            let json = super::wants_json(&args.output)?;
            let logger = LoggerClient::new(args.channel()?)
                .reset_log_level(ResetLogLevelRequest {})
                .await
                .map_err(|s| CliError(format!("failed to reset logger: {}", CliError::from(s).0)))?
                .into_inner();
            print_logger(&logger, json)
        }
    }
}

#[cfg(test)]
mod tests {
    use spire_proto::spire::agent::debug::v1::get_info_response::Cert;
    use spire_proto::spire::api::types::Spiffeid;

    use super::*;

    #[test]
    fn getinfo_prints_as_spire() {
        let info = GetInfoResponse {
            svid_chain: vec![Cert {
                id: Some(Spiffeid {
                    trust_domain: "example.org".into(),
                    path: "/spire/agent/join_token/t".into(),
                }),
                expires_at: 1_700_003_600,
                subject: "O=SPIRE,C=US".into(),
            }],
            uptime: 65,
            last_sync_success: 1_700_000_000,
            cached_x509_svids_count: 2,
            cached_jwt_svids_count: 1,
            ..GetInfoResponse::default()
        };
        assert_eq!(
            render_info(&info),
            "Agent Debug Info:\n\
             \x20 Uptime:                          1m5s\n\
             \x20 Last Sync Success:               2023-11-14T22:13:20Z\n\
             \x20 Cached X.509 SVIDs:              2\n\
             \x20 Cached JWT SVIDs:                1\n\
             \x20 Cached SVID Store X.509 SVIDs:   0\n\
             \x20 SVID Chain:\n\
             \x20   [0] SPIFFE ID:  spiffe://example.org/spire/agent/join_token/t\n\
             \x20       Subject:    O=SPIRE,C=US\n\
             \x20       Expires At: 2023-11-14T23:13:20Z\n"
        );
        let never = GetInfoResponse::default();
        assert!(render_info(&never).contains("Last Sync Success:               (never)\n"));
    }
}

//! `spire-server debug getinfo` (server.md §2.9) over the Debug API.

use spire_common::cli::rfc3339;
use std::time::Duration;

use spire_proto::spire::api::server::debug::v1::GetInfoRequest;
use spire_proto::spire::api::server::debug::v1::debug_client::DebugClient;

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DebugCommand {
    /// Prints debug information about the server.
    #[command(name = "getinfo")]
    GetInfo(GetInfoArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetInfoArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

impl DebugCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            DebugCommand::GetInfo(args) => get_info(args).await,
        }
    }
}

async fn get_info(args: GetInfoArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let info = DebugClient::new(args.socket.channel()?)
        .get_info(GetInfoRequest {})
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&info);
    }
    let uptime = Duration::from_secs(u64::try_from(info.uptime).unwrap_or(0));
    println!("Server Debug Info:");
    println!(
        "  Uptime:                  {}",
        spire_common::duration::format_go(uptime)
    );
    println!("  Registered Agents:       {}", info.agents_count);
    println!("  Registration Entries:    {}", info.entries_count);
    println!(
        "  Federated Bundles:       {}",
        info.federated_bundles_count
    );
    if !info.svid_chain.is_empty() {
        println!("  SVID Chain:");
        for (i, cert) in info.svid_chain.iter().enumerate() {
            let id = cert.id.as_ref().map_or_else(
                || "(none)".to_owned(),
                |id| format!("spiffe://{}{}", id.trust_domain, id.path),
            );
            println!("    [{i}] SPIFFE ID:  {id}");
            println!("        Subject:    {}", cert.subject);
            println!("        Expires At: {}", rfc3339(cert.expires_at));
        }
    }
    Ok(())
}

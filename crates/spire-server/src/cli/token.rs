//! `spire-server token generate` (server.md §2.3).

use spire_proto::spire::api::server::agent::v1::CreateJoinTokenRequest;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};
use spire_common::convert::id_to_proto;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Generates a join token.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Token TTL in seconds.
    #[arg(long = "ttl", default_value_t = 600)]
    ttl: i32,
    /// Additional SPIFFE ID to assign the token owner (optional).
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
}

impl TokenCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            TokenCommand::Generate(args) => generate(args).await,
        }
    }
}

async fn generate(args: GenerateArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let agent_id = if args.spiffe_id.is_empty() {
        None
    } else {
        let id = spiffe_core::SpiffeId::parse(&args.spiffe_id)
            .map_err(|e| CliError(format!("invalid SPIFFE ID {:?}: {e}", args.spiffe_id)))?;
        Some(id_to_proto(&id))
    };
    let mut client = AgentClient::new(args.socket.channel()?);
    let token = client
        .create_join_token(CreateJoinTokenRequest {
            ttl: args.ttl,
            agent_id: agent_id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&token);
    }
    println!("Token: {}", token.value);
    if agent_id.is_none() {
        println!("Warning: Missing SPIFFE ID.");
    }
    Ok(())
}

//! `spire-server healthcheck` (server.md §2.9).

use spire_proto::health::HealthCheckRequest;
use spire_proto::health::health_check_response::ServingStatus;
use spire_proto::health::health_client::HealthClient;

use super::{CliError, SocketArgs};

#[derive(Debug, clap::Args)]
pub(crate) struct HealthcheckArgs {
    #[command(flatten)]
    socket: SocketArgs,
    /// Perform a less stringent health check.
    #[arg(long = "shallow")]
    shallow: bool,
    /// Print verbose information.
    #[arg(long = "verbose")]
    verbose: bool,
}

pub(crate) async fn run(args: HealthcheckArgs) -> Result<(), CliError> {
    if args.verbose {
        println!("Checking server health...");
    }
    let _ = args.shallow;
    let mut client = HealthClient::new(args.socket.channel()?);
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| {
            if args.verbose {
                eprintln!("Failed to check health: {}", status.message());
            }
            CliError("server is unhealthy: unable to determine health".into())
        })?
        .into_inner();
    if response.status != ServingStatus::Serving as i32 {
        return Err(CliError(format!(
            "server is unhealthy: server returned status {:?}",
            ServingStatus::try_from(response.status)
                .unwrap_or(ServingStatus::Unknown)
                .as_str_name()
        )));
    }
    println!("Server is healthy.");
    Ok(())
}

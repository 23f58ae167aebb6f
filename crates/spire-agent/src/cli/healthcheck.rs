//! `spire-agent healthcheck`: a Workload API round trip on the agent's socket. The agent
//! is healthy when it answers (an identity, or PermissionDenied for a caller without one).

use std::path::PathBuf;
use std::time::Duration;

use spire_proto::workload::X509BundlesRequest;
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;

use super::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct HealthcheckArgs {
    /// Path to the SPIRE Agent API socket.
    #[arg(long = "socketPath", default_value = crate::endpoints::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
    /// Perform a less stringent health check.
    #[arg(long = "shallow")]
    shallow: bool,
    /// Print verbose information.
    #[arg(long = "verbose")]
    verbose: bool,
}

pub(crate) async fn run(args: HealthcheckArgs) -> Result<(), CliError> {
    if args.verbose {
        println!("Checking agent health...");
    }
    let _ = args.shallow;
    let unhealthy = || CliError("agent is unhealthy: unable to determine health".into());
    let channel = spire_common::uds::channel(&args.socket_path).map_err(|_| unhealthy())?;
    let mut client = SpiffeWorkloadApiClient::new(channel);
    let mut request = tonic::Request::new(X509BundlesRequest {});
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request.set_timeout(Duration::from_secs(5));
    match client.fetch_x509_bundles(request).await {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::PermissionDenied => {}
        Err(status) => {
            if args.verbose {
                eprintln!("Failed to check health: {}", status.message());
            }
            return Err(unhealthy());
        }
    }
    println!("Agent is healthy.");
    Ok(())
}

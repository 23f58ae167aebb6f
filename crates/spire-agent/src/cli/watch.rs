//! `spire-agent api watch` (agent.md §7.4, SPIRE's `cmd/spire-agent/cli/api/watch.go`):
//! attaches to the Workload API's X.509 stream and prints every update in the `api
//! fetch x509` format until interrupted.
//!
//! As go-spiffe's `WatchX509Context`, which SPIRE uses: a stream error is printed on
//! stderr and the watch reconnects with exponential back-off (1s doubling to 30s),
//! except for `InvalidArgument`, which ends it. Federated bundles are labelled with the
//! trust domain name and hints are not printed. SIGINT ends the watch with Go's
//! `context canceled` on stderr and exit status 1, as SPIRE's does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spiffe_core::{TrustDomain, X509Bundle, X509Svid};
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{X509svidRequest, X509svidResponse};
use tonic::Code;

use super::CliError;
use super::fetch_x509::{Received, render};

/// The first reconnection delay.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WatchArgs {
    /// Path to the SPIRE Agent API socket.
    #[arg(long = "socketPath", default_value = crate::endpoints::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
}

/// Go's rendering of a gRPC status error.
fn status_text(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// Parses one update into what the printer needs (go-spiffe's `X509Context`).
fn parse_update(response: &X509svidResponse) -> Result<Vec<Received>, String> {
    let mut federated = Vec::new();
    for (td_id, der) in &response.federated_bundles {
        let td = TrustDomain::parse(td_id)
            .map_err(|e| format!("invalid federated trust domain {td_id:?}: {e}"))?;
        let bundle = X509Bundle::parse_der(td.clone(), der)
            .map_err(|e| format!("failed to parse federated bundle of {td_id:?}: {e}"))?;
        federated.push((td.name().to_owned(), bundle));
    }
    federated.sort_by(|a, b| a.0.cmp(&b.0));
    response
        .svids
        .iter()
        .map(|svid| {
            let parsed = X509Svid::parse_der(&svid.x509_svid, &svid.x509_svid_key)
                .map_err(|e| format!("failed to parse SVID {:?}: {e}", svid.spiffe_id))?;
            let td = parsed.spiffe_id().trust_domain();
            let bundle = X509Bundle::parse_der(td.clone(), &svid.bundle)
                .map_err(|e| format!("failed to parse bundle of {:?}: {e}", svid.spiffe_id))?;
            Ok(Received {
                svid: parsed,
                bundle,
                federated: federated
                    .iter()
                    .filter(|(name, _)| name.as_str() != td.name())
                    .cloned()
                    .collect(),
                hint: String::new(),
            })
        })
        .collect()
}

/// Why one stream ended.
enum StreamEnd {
    /// Retry after a back-off.
    Retry,
    /// Stop watching with this error.
    Fatal(CliError),
}

/// Follows one stream, printing each update; `last_update` is when the previous update
/// was printed (or the watch started).
async fn follow(socket: &PathBuf, last_update: &mut Instant, backoff: &mut Duration) -> StreamEnd {
    let channel = match spire_common::uds::channel(socket) {
        Ok(channel) => channel,
        Err(e) => {
            return StreamEnd::Fatal(CliError(format!("cannot reach {}: {e}", socket.display())));
        }
    };
    let mut client = SpiffeWorkloadApiClient::new(channel);
    let mut request = tonic::Request::new(X509svidRequest {});
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    let result = async {
        let mut stream = client.fetch_x509svid(request).await?.into_inner();
        while let Some(response) = stream.message().await? {
            match parse_update(&response) {
                Ok(received) => {
                    print!("{}", render(&received, last_update.elapsed()));
                    *last_update = Instant::now();
                    *backoff = INITIAL_BACKOFF;
                }
                Err(e) => eprintln!("{e}"),
            }
        }
        Err(tonic::Status::unavailable("stream closed"))
    }
    .await;
    match result {
        Ok(()) => StreamEnd::Retry,
        Err(status) => {
            let text = status_text(&status);
            eprintln!("{text}");
            if status.code() == Code::InvalidArgument {
                StreamEnd::Fatal(CliError(text))
            } else {
                StreamEnd::Retry
            }
        }
    }
}

pub(crate) async fn run(args: WatchArgs) -> Result<(), CliError> {
    let watch = async {
        let mut last_update = Instant::now();
        let mut backoff = INITIAL_BACKOFF;
        loop {
            match follow(&args.socket_path, &mut last_update, &mut backoff).await {
                StreamEnd::Fatal(error) => return error,
                StreamEnd::Retry => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    };
    let error = tokio::select! {
        error = watch => error,
        _ = tokio::signal::ctrl_c() => CliError("context canceled".to_owned()),
    };
    // SPIRE prints the final error bare (no `Error:` prefix) and exits with 1.
    eprintln!("{}", error.0);
    std::process::exit(1);
}

//! The agent's public endpoint: the SPIFFE Workload API and Envoy SDS v3 on a Unix
//! socket (SPIRE's `pkg/agent/endpoints`).
//!
//! [`serve`] binds the socket (see [`bind_socket`]), tracks every connection's caller
//! ([`tracked_incoming`]) and serves [`WorkloadApiHandler`] until `shutdown` completes;
//! then every open stream ends and the server drains. The pieces are public so that the
//! agent can mount further services (SDS, health) on the same socket.

pub mod admin;
pub mod delegated;
mod listener;
pub mod sds;
pub mod workload_api;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
use spire_proto::workload::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use thiserror::Error;
use tokio::net::UnixListener;

pub use listener::{PeerConn, PeerConnectInfo, bind_socket, tracked_incoming};
pub use sds::SdsHandler;
pub use workload_api::{WorkloadApiHandler, check_security_header};

use crate::config::SdsConfig;
use crate::manager::{Cache, JwtSvidCache, JwtSvidMinter};
use crate::workload::WorkloadAttestors;

/// SPIRE's default Workload API socket (`socket_path`).
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/spire-agent/public/api.sock";

/// Options of the Workload API endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadApiConfig {
    /// The Unix socket path (agent option `socket_path`).
    pub socket_path: PathBuf,
    /// Serve bundles to callers without identity (agent option
    /// `allow_unauthenticated_verifiers`).
    pub allow_unauthenticated_verifiers: bool,
    /// Envoy SDS v3 on the same socket with these options (agent block `sds`), or
    /// `None` when `disable_sds_api` is set.
    pub sds: Option<SdsConfig>,
    /// Extra claims `ValidateJWTSVID` returns for foreign tokens (agent option
    /// `allowed_foreign_jwt_claims`).
    pub allowed_foreign_jwt_claims: Vec<String>,
}

impl Default for WorkloadApiConfig {
    fn default() -> Self {
        WorkloadApiConfig {
            socket_path: PathBuf::from(DEFAULT_SOCKET_PATH),
            allow_unauthenticated_verifiers: false,
            sds: Some(SdsConfig::default()),
            allowed_foreign_jwt_claims: Vec::new(),
        }
    }
}

/// Why the endpoint could not be set up or stopped with an error.
#[derive(Debug, Error)]
pub enum EndpointsError {
    /// The socket's parent directory could not be created.
    #[error("unable to create socket directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The socket could not be bound.
    #[error("create UDS listener on {}: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The socket's mode could not be set to 0777.
    #[error("unable to change UDS permissions of {}: {source}", path.display())]
    Chmod {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("workload API server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves the Workload API on `socket_path`, minting JWT-SVIDs with `minter` and
/// caching them in `jwt_cache` (shared with the sync loop, which purges tokens of
/// tainted keys), and SDS
/// with the `sds` options unless `None` (`disable_sds_api`), until `shutdown` completes.
pub async fn serve_with_minter(
    socket_path: impl AsRef<Path>,
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    minter: Arc<dyn JwtSvidMinter>,
    jwt_cache: Arc<JwtSvidCache>,
    sds: Option<SdsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    let config = WorkloadApiConfig {
        socket_path: socket_path.as_ref().to_path_buf(),
        sds,
        ..WorkloadApiConfig::default()
    };
    serve_configured(
        &config,
        cache,
        attestors,
        Some((minter, jwt_cache)),
        shutdown,
    )
    .await
}

/// Serves the Workload API as the agent's `run` does: configured by `config`, minting
/// JWT-SVIDs with `minter` and caching them in `jwt_cache` (shared with the admin API),
/// until `shutdown` completes.
pub async fn serve_agent(
    config: &WorkloadApiConfig,
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    minter: Arc<dyn JwtSvidMinter>,
    jwt_cache: Arc<crate::manager::JwtSvidCache>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    serve_configured(
        config,
        cache,
        attestors,
        Some((minter, jwt_cache)),
        shutdown,
    )
    .await
}

/// Binds `config.socket_path` and serves the Workload API (and SDS unless disabled)
/// with the config's options, minting and caching JWT-SVIDs with `jwt` when given,
/// until `shutdown` completes.
async fn serve_configured(
    config: &WorkloadApiConfig,
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    jwt: Option<(Arc<dyn JwtSvidMinter>, Arc<JwtSvidCache>)>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    let listener = bind_socket(&config.socket_path)?;
    tracing::info!(path = %config.socket_path.display(), "Starting Workload and SDS APIs");
    let sds = sds_handler(config, &cache, &attestors);
    let mut handler = WorkloadApiHandler::new(cache, attestors)
        .allow_unauthenticated_verifiers(config.allow_unauthenticated_verifiers)
        .allowed_foreign_jwt_claims(config.allowed_foreign_jwt_claims.iter().cloned());
    if let Some((minter, jwt_cache)) = jwt {
        handler = handler.with_jwt_minter(minter).with_jwt_cache(jwt_cache);
    }
    serve_listener_with_sds(listener, handler, sds, shutdown).await
}

fn sds_handler(
    config: &WorkloadApiConfig,
    cache: &Arc<Cache>,
    attestors: &Arc<WorkloadAttestors>,
) -> Option<SdsHandler> {
    config
        .sds
        .clone()
        .map(|sds| SdsHandler::new(Arc::clone(cache), Arc::clone(attestors), sds))
}

/// Serves the Workload API on `socket_path` until `shutdown` completes (without a
/// server connection: `FetchJWTSVID` answers `Unavailable`).
pub async fn serve(
    socket_path: impl AsRef<Path>,
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    let config = WorkloadApiConfig {
        socket_path: socket_path.as_ref().to_path_buf(),
        ..WorkloadApiConfig::default()
    };
    serve_with_config(&config, cache, attestors, shutdown).await
}

/// Serves the Workload API as configured until `shutdown` completes.
pub async fn serve_with_config(
    config: &WorkloadApiConfig,
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    serve_configured(config, cache, attestors, None, shutdown).await
}

/// Serves `handler` on an already bound listener until `shutdown` completes; then ends
/// the open streams and waits for the connections to drain.
pub async fn serve_listener(
    listener: UnixListener,
    handler: WorkloadApiHandler,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    serve_listener_with_sds(listener, handler, None, shutdown).await
}

/// Serves `handler` and, if given, the SDS handler `sds` on an already bound listener
/// until `shutdown` completes; then ends the open streams of both and waits for the
/// connections to drain.
pub async fn serve_listener_with_sds(
    listener: UnixListener,
    handler: WorkloadApiHandler,
    sds: Option<SdsHandler>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    let streams = handler.shutdown_token();
    let sds = sds.map(|sds| SecretDiscoveryServiceServer::new(sds.with_shutdown(streams.clone())));
    tonic::transport::Server::builder()
        .add_service(SpiffeWorkloadApiServer::new(handler))
        .add_optional_service(sds)
        .serve_with_incoming_shutdown(tracked_incoming(listener), async move {
            shutdown.await;
            streams.cancel();
        })
        .await?;
    Ok(())
}

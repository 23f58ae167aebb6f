//! The agent's admin socket and its `DelegatedIdentity` service (SPIRE's
//! `pkg/agent/api/delegatedidentity/v1/service.go` and `pkg/agent/api/endpoints.go`).
//!
//! The admin socket (agent option `admin_socket_path`, off when unset) is bound like the
//! public one but with mode `0770`, and its callers are tracked and attested by PID the
//! same way. No security header is required.
//!
//! Every call first authorizes the caller: it is attested like a workload, and one of
//! the SPIFFE IDs of its matching entries must be in `authorized_delegates`, else
//! `PermissionDenied` (`no identity issued` when nothing matches, `caller not configured
//! as an authorized delegate` otherwise). Streams re-check that before every send with
//! the caller's selectors from the first attestation (no re-attestation).
//!
//! `SubscribeToX509SVIDs` and `FetchJWTSVIDs` name their target workload either by
//! `selectors` (trusted as given) or by `pid` (attested by the agent's workload
//! attestors, without PID-reuse check), never both and never neither.
//!
//! Differences from SPIRE, on purpose: the cache wakes every stream on any change, so
//! a stream only sends (and re-authorizes) when its message differs from the last one
//! sent.
//!
//! Not yet done: SPIRE never returns entries flagged `admin` or `downstream` here, but
//! the cache does not hold those flags yet, so they are not filtered out.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use spiffe_core::{SpiffeBundle, SpiffeId};
use spire_proto::spire::api::agent::delegatedidentity::v1::delegated_identity_server::{
    DelegatedIdentity, DelegatedIdentityServer,
};
use spire_proto::spire::api::agent::delegatedidentity::v1::{
    FetchJwtsviDsRequest, FetchJwtsviDsResponse, SubscribeToJwtBundlesRequest,
    SubscribeToJwtBundlesResponse, SubscribeToX509BundlesRequest, SubscribeToX509BundlesResponse,
    SubscribeToX509sviDsRequest, SubscribeToX509sviDsResponse, X509svidWithKey,
};
use spire_proto::spire::api::types;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::EndpointsError;
use super::listener::tracked_incoming;
use super::workload_api::{
    AUDIENCE_REQUIRED, Caller, NO_IDENTITY_ISSUED, ResponseStream, Step, StreamState,
    attest_caller, fetch_jwt_svid,
};
use crate::config::AgentConfig;
use crate::manager::{Cache, JwtSvidCache, JwtSvidMinter, WorkloadUpdate};
use crate::workload::{Selector, WorkloadAttestors};

/// Mode of the admin socket (SPIRE: `chmod 0770` after listen).
pub const ADMIN_SOCKET_MODE: u32 = 0o770;
/// Mode of the admin socket's directory when it has to be created.
pub const ADMIN_DIR_MODE: u32 = 0o755;
/// `PermissionDenied` message for a caller none of whose identities is a delegate.
pub const NOT_A_DELEGATE: &str = "caller not configured as an authorized delegate";
/// `InvalidArgument` message for a request naming both or neither of its target forms.
pub const SELECTORS_OR_PID: &str = "must provide either selectors or non-zero PID, but not both";
/// `InvalidArgument` message for a request with a malformed selector.
pub const BAD_SELECTORS: &str = "could not parse provided selectors";

/// The `DelegatedIdentity` service: serves identities of other workloads to callers
/// whose own identity is an authorized delegate.
#[derive(Debug, Clone)]
pub struct DelegatedIdentityHandler {
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    delegates: Arc<HashSet<String>>,
    jwt_minter: Option<Arc<dyn JwtSvidMinter>>,
    jwt_cache: Arc<JwtSvidCache>,
    shutdown: CancellationToken,
}

impl DelegatedIdentityHandler {
    /// A handler serving `cache` to the `delegates`, attesting callers and PIDs with
    /// `attestors`.
    pub fn new(
        cache: Arc<Cache>,
        attestors: Arc<WorkloadAttestors>,
        delegates: impl IntoIterator<Item = SpiffeId>,
    ) -> Self {
        DelegatedIdentityHandler {
            cache,
            attestors,
            delegates: Arc::new(delegates.into_iter().map(|id| id.to_string()).collect()),
            jwt_minter: None,
            jwt_cache: Arc::new(JwtSvidCache::default()),
            shutdown: CancellationToken::new(),
        }
    }

    /// Mints JWT-SVIDs with `minter`; without one `FetchJWTSVIDs` answers `Unavailable`.
    pub fn with_jwt_minter(mut self, minter: Arc<dyn JwtSvidMinter>) -> Self {
        self.jwt_minter = Some(minter);
        self
    }

    /// Serves JWT-SVIDs from `cache` (shared with other handlers of the agent).
    pub fn with_jwt_cache(mut self, cache: Arc<JwtSvidCache>) -> Self {
        self.jwt_cache = cache;
        self
    }

    /// The token whose cancellation ends every open stream.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Attests the caller of `request` and checks that it is a delegate; returns it.
    async fn authorize_call<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = attest_caller(&self.attestors, request)
            .await
            .map_err(|_| Status::internal("workload attestation failed"))?;
        authorize(&self.cache, &self.delegates, &caller)?;
        Ok(caller)
    }

    /// The selectors of the request's target workload: `selectors` as given, or those
    /// of `pid` as attested by the agent.
    async fn target_selectors(
        &self,
        selectors: &[types::Selector],
        pid: i32,
    ) -> Result<Vec<Selector>, Status> {
        match (selectors.is_empty(), pid == 0) {
            (false, true) => selectors_from_proto(selectors),
            (true, false) => self.attestors.attest(pid).await.map_err(|error| {
                tracing::error!(pid, error = %error, "Workload attestation with PID failed");
                Status::internal("workload attestation with PID failed")
            }),
            _ => Err(Status::invalid_argument(SELECTORS_OR_PID)),
        }
    }

    /// A stream of `caller`'s view of the cache as seen by `target` selectors.
    fn stream_state(&self, caller: &Caller, target: Vec<Selector>) -> StreamState {
        let target = Caller {
            pid: caller.pid,
            selectors: target,
            quiet: caller.quiet,
        };
        StreamState::new(Arc::clone(&self.cache), target, self.shutdown.clone())
    }
}

/// Checks that one of the identities of `caller` (its matching entries) is an
/// authorized delegate.
fn authorize(cache: &Cache, delegates: &HashSet<String>, caller: &Caller) -> Result<(), Status> {
    let entries = cache.matching_entries(&caller.selectors);
    let Some(first) = entries.first() else {
        tracing::error!(pid = caller.pid, "No identity issued");
        return Err(Status::permission_denied(NO_IDENTITY_ISSUED));
    };
    if entries
        .iter()
        .any(|e| delegates.contains(e.spiffe_id.as_str()))
    {
        return Ok(());
    }
    tracing::error!(
        pid = caller.pid,
        num_registered_entries = entries.len(),
        default_id = %first.spiffe_id,
        "Permission denied; caller not configured as an authorized delegate."
    );
    Err(Status::permission_denied(NOT_A_DELEGATE))
}

/// The request's selectors, each with a non-empty type without `:` and a non-empty
/// value (SPIRE's `SelectorsFromProto`).
fn selectors_from_proto(selectors: &[types::Selector]) -> Result<Vec<Selector>, Status> {
    selectors
        .iter()
        .map(|s| {
            if s.r#type.is_empty() || s.value.is_empty() || s.r#type.contains(':') {
                tracing::error!("Invalid argument; could not parse provided selectors");
                return Err(Status::invalid_argument(BAD_SELECTORS));
            }
            Ok(Selector {
                r#type: s.r#type.clone(),
                value: s.value.clone(),
            })
        })
        .collect()
}

/// A SPIFFE ID as `spire.api.types.SPIFFEID`.
fn id_proto(id: &SpiffeId) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: id.trust_domain_name().to_owned(),
        path: id.path().to_owned(),
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Builds the `SubscribeToX509SVIDs` response for a target workload's update.
pub fn compose_x509_svids_response(
    update: &WorkloadUpdate,
) -> Result<SubscribeToX509sviDsResponse, Status> {
    let mut federates_with: Vec<String> = update
        .bundles
        .federated
        .keys()
        .map(|td| td.id_string())
        .collect();
    federates_with.sort();
    let x509_svids = update
        .identities
        .iter()
        .map(|identity| {
            let expires_at = identity.expires_at.ok_or_else(|| {
                Status::internal("could not serialize response: SVID expiry unknown")
            })?;
            Ok(X509svidWithKey {
                x509_svid: Some(types::X509svid {
                    cert_chain: identity
                        .svid
                        .cert_chain()
                        .iter()
                        .map(|c| c.to_vec())
                        .collect(),
                    id: Some(id_proto(&identity.entry.spiffe_id)),
                    expires_at: unix_seconds(expires_at),
                    hint: identity.entry.hint.clone(),
                }),
                x509_svid_key: identity.svid.private_key().secret_pkcs8_der().to_vec(),
            })
        })
        .collect::<Result<_, Status>>()?;
    Ok(SubscribeToX509sviDsResponse {
        x509_svids,
        federates_with,
    })
}

/// A bundle stream's step: merges every bundle the agent holds into `acc` (which only
/// grows) with `encode`, and sends the map when it changed, after re-authorizing.
fn bundles_step<T: 'static>(
    cache: Arc<Cache>,
    delegates: Arc<HashSet<String>>,
    delegate: Caller,
    encode: fn(&SpiffeBundle) -> Vec<u8>,
    wrap: fn(HashMap<String, Vec<u8>>) -> T,
) -> impl FnMut(&mut StreamState, WorkloadUpdate) -> Step<T> + Send + 'static {
    let mut acc: HashMap<String, Vec<u8>> = HashMap::new();
    let mut first = true;
    move |_, _| {
        let mut changed = first;
        first = false;
        for bundle in cache.all_bundles() {
            let value = encode(&bundle);
            let key = bundle.trust_domain().id_string();
            if acc.get(&key) != Some(&value) {
                acc.insert(key, value);
                changed = true;
            }
        }
        if changed && let Err(status) = authorize(&cache, &delegates, &delegate) {
            return Step::Fail(status);
        }
        Step::Send(wrap(acc.clone()))
    }
}

#[tonic::async_trait]
impl DelegatedIdentity for DelegatedIdentityHandler {
    type SubscribeToX509SVIDsStream = ResponseStream<SubscribeToX509sviDsResponse>;
    type SubscribeToX509BundlesStream = ResponseStream<SubscribeToX509BundlesResponse>;
    type SubscribeToJWTBundlesStream = ResponseStream<SubscribeToJwtBundlesResponse>;

    async fn subscribe_to_x509svi_ds(
        &self,
        request: Request<SubscribeToX509sviDsRequest>,
    ) -> Result<Response<Self::SubscribeToX509SVIDsStream>, Status> {
        let delegate = self.authorize_call(&request).await?;
        let request = request.get_ref();
        let target = self
            .target_selectors(&request.selectors, request.pid)
            .await?;
        tracing::info!(
            pid = delegate.pid,
            request_pid = request.pid,
            "Subscribing to cache changes"
        );
        let cache = Arc::clone(&self.cache);
        let delegates = Arc::clone(&self.delegates);
        let mut last: Option<SubscribeToX509sviDsResponse> = None;
        let stream = self
            .stream_state(&delegate, target)
            .into_stream(move |_, update| {
                let response = match compose_x509_svids_response(&update) {
                    Ok(response) => response,
                    Err(status) => {
                        tracing::error!(error = %status.message(), "Could not serialize X.509 SVID response");
                        return Step::Fail(Status::internal("could not serialize response"));
                    }
                };
                if last.as_ref() != Some(&response) {
                    if let Err(status) = authorize(&cache, &delegates, &delegate) {
                        return Step::Fail(status);
                    }
                    last = Some(response.clone());
                }
                Step::Send(response)
            });
        Ok(Response::new(stream))
    }

    async fn subscribe_to_x509_bundles(
        &self,
        request: Request<SubscribeToX509BundlesRequest>,
    ) -> Result<Response<Self::SubscribeToX509BundlesStream>, Status> {
        let delegate = self.authorize_call(&request).await?;
        let step = bundles_step(
            Arc::clone(&self.cache),
            Arc::clone(&self.delegates),
            delegate.clone(),
            |b| b.x509_bundle().to_der(),
            |ca_certificates| SubscribeToX509BundlesResponse { ca_certificates },
        );
        let stream = self.stream_state(&delegate, Vec::new()).into_stream(step);
        Ok(Response::new(stream))
    }

    async fn fetch_jwtsvi_ds(
        &self,
        request: Request<FetchJwtsviDsRequest>,
    ) -> Result<Response<FetchJwtsviDsResponse>, Status> {
        if request.get_ref().audience.is_empty() {
            tracing::error!("Missing required audience parameter");
            return Err(Status::invalid_argument(AUDIENCE_REQUIRED));
        }
        let delegate = self.authorize_call(&request).await?;
        let request = request.into_inner();
        let target = self
            .target_selectors(&request.selectors, request.pid)
            .await?;
        let entries = self.cache.matching_entries(&target);
        if entries.is_empty() {
            tracing::error!(pid = delegate.pid, "No identity issued");
            return Err(Status::permission_denied(NO_IDENTITY_ISSUED));
        }
        let mut svids = Vec::with_capacity(entries.len());
        for entry in entries {
            let svid = fetch_jwt_svid(
                self.jwt_minter.as_deref(),
                &self.jwt_cache,
                &entry,
                &request.audience,
                delegate.pid,
            )
            .await?;
            tracing::debug!(spiffe_id = %entry.spiffe_id, expires_at = svid.expires_at, "Fetched JWT SVID");
            svids.push(types::Jwtsvid {
                token: svid.token,
                id: Some(id_proto(&entry.spiffe_id)),
                expires_at: svid.expires_at,
                issued_at: svid.issued_at,
                hint: entry.hint.clone(),
            });
        }
        Ok(Response::new(FetchJwtsviDsResponse { svids }))
    }

    async fn subscribe_to_jwt_bundles(
        &self,
        request: Request<SubscribeToJwtBundlesRequest>,
    ) -> Result<Response<Self::SubscribeToJWTBundlesStream>, Status> {
        let delegate = self.authorize_call(&request).await?;
        let step = bundles_step(
            Arc::clone(&self.cache),
            Arc::clone(&self.delegates),
            delegate.clone(),
            |b| b.jwt_bundle().to_standard_jwks_json(),
            |bundles| SubscribeToJwtBundlesResponse { bundles },
        );
        let stream = self.stream_state(&delegate, Vec::new()).into_stream(step);
        Ok(Response::new(stream))
    }
}

/// Binds the admin socket as SPIRE does: creates the parent directory if missing,
/// removes a stale socket file, binds, and sets mode `0770`.
///
/// Must be called within a Tokio runtime.
pub fn bind_admin_socket(path: &Path) -> Result<UnixListener, EndpointsError> {
    spire_common::uds::bind(path, ADMIN_DIR_MODE, ADMIN_SOCKET_MODE).map_err(|source| {
        EndpointsError::Bind {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Serves the admin APIs (for now only `DelegatedIdentity`) on `socket_path` until
/// `shutdown` completes; then ends the open streams and waits for the connections to
/// drain.
pub async fn serve_admin(
    socket_path: impl AsRef<Path>,
    handler: DelegatedIdentityHandler,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    serve_admin_with(socket_path, handler, None, None, shutdown).await
}

/// As [`serve_admin`], also serving the Debug (`spire.agent.debug.v1`) and Logger
/// (`spire.api.agent.logger.v1`) services when given (agent.md §3.2).
pub async fn serve_admin_with(
    socket_path: impl AsRef<Path>,
    handler: DelegatedIdentityHandler,
    debug: Option<super::admin::DebugService>,
    logger: Option<super::admin::LoggerService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EndpointsError> {
    use spire_proto::spire::agent::debug::v1::debug_server::DebugServer;
    use spire_proto::spire::api::agent::logger::v1::logger_server::LoggerServer;

    let listener = bind_admin_socket(socket_path.as_ref())?;
    tracing::info!(path = %socket_path.as_ref().display(), "Starting admin APIs");
    let streams = handler.shutdown_token();
    tonic::transport::Server::builder()
        .add_service(DelegatedIdentityServer::new(handler))
        .add_optional_service(debug.map(DebugServer::new))
        .add_optional_service(logger.map(LoggerServer::new))
        .serve_with_incoming_shutdown(tracked_incoming(listener), async move {
            shutdown.await;
            streams.cancel();
        })
        .await?;
    Ok(())
}

/// Starts the admin endpoint in the background if `admin_socket_path` is configured,
/// serving JWT-SVIDs from the agent's shared `jwt_cache`;
/// it stops (and removes its socket) when `stop` is cancelled. Failures are logged.
pub fn spawn_admin(
    config: &AgentConfig,
    cache: &Arc<Cache>,
    attestors: &Arc<WorkloadAttestors>,
    minter: &Arc<dyn JwtSvidMinter>,
    jwt_cache: &Arc<JwtSvidCache>,
    services: (super::admin::DebugService, super::admin::LoggerService),
    stop: CancellationToken,
) {
    let Some(path) = config.admin_socket_path.clone() else {
        return;
    };
    let handler = DelegatedIdentityHandler::new(
        Arc::clone(cache),
        Arc::clone(attestors),
        config.authorized_delegates.iter().cloned(),
    )
    .with_jwt_minter(Arc::clone(minter))
    .with_jwt_cache(Arc::clone(jwt_cache));
    tokio::spawn(run_admin(path, handler, services, stop));
}

async fn run_admin(
    path: PathBuf,
    handler: DelegatedIdentityHandler,
    (debug, logger): (super::admin::DebugService, super::admin::LoggerService),
    stop: CancellationToken,
) {
    let result =
        serve_admin_with(&path, handler, Some(debug), Some(logger), stop.cancelled()).await;
    if let Err(error) = result {
        tracing::error!(path = %path.display(), error = %error, "Admin API server failed");
    }
    let _ = std::fs::remove_file(&path);
}

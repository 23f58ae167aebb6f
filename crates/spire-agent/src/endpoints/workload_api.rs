//! The `SpiffeWorkloadAPI` gRPC service (SPIRE's `pkg/agent/endpoints/workload/handler.go`
//! and the security-header check of `pkg/agent/endpoints/middleware.go`).
//!
//! Every call:
//! 1. must carry exactly one `workload.spiffe.io: true` metadata value, else
//!    `InvalidArgument "security header missing from request"`;
//! 2. attests the caller (every call, every stream open): the pid from the connection,
//!    every workload attestor in parallel, then the PID-reuse check; failures give
//!    `Unavailable "workload attestation failed"` or
//!    `Unauthenticated "could not verify existence of the original caller: ..."`.
//!
//! `FetchX509SVID` sends the caller's full X.509 context at once and again whenever it
//! changes; with no identity it ends with `PermissionDenied "no identity issued"`.
//! `FetchX509Bundles` does the same with bundles only. As in SPIRE, a stream's first
//! response waits until every matching entry has its SVID in the cache.
//!
//! `FetchJWTSVID` mints one token per matching entry (hint-filtered, optionally only
//! the requested `spiffe_id`) through the server's `NewJWTSVID`, served from the JWT
//! cache ([`crate::manager::jwt_cache`]) until half its lifetime. `FetchJWTBundles`
//! streams the JWT authorities as standard JWKS (no `use`), like `FetchX509Bundles`.
//! `ValidateJWTSVID` checks a token against the caller's bundles (own plus federated)
//! and needs no identity, only a successful attestation.
//!
//! Differences from SPIRE, on purpose: the cache wakes every stream on any change, so
//! `FetchX509SVID` compares each rebuilt response with the last one sent and only sends
//! when it differs (SPIRE notifies only affected subscribers and sends every
//! notification); and once a stream has started, losing all identities while a
//! matching entry is only waiting for its (re-)signed SVID keeps the stream waiting
//! instead of failing it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use spiffe_core::{JwtBundle, JwtSvid, SpiffeId, TrustDomain};

use futures::Stream;
use spire_proto::workload::spiffe_workload_api_server::SpiffeWorkloadApi;
use spire_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse,
    WitsvidRequest, WitsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid,
    X509svidRequest, X509svidResponse,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use super::listener::PeerConnectInfo;
use crate::manager::{
    Cache, CachedEntry, JwtSvidCache, JwtSvidMinter, MintedJwtSvid, Subscriber, WorkloadUpdate,
};
use crate::workload::{CallerInfo, PeerWatcher, Selector, WorkloadAttestors};

/// The metadata key of the Workload API security header.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
/// Message of the `InvalidArgument` status for a missing or wrong security header.
pub const SECURITY_HEADER_MISSING: &str = "security header missing from request";
/// Message of the `PermissionDenied` status for a caller without identity.
pub const NO_IDENTITY_ISSUED: &str = "no identity issued";
/// Message of the `InvalidArgument` status for a JWT call without audience.
pub const AUDIENCE_REQUIRED: &str = "audience must be specified";
/// Message of the `InvalidArgument` status for `ValidateJWTSVID` without token.
pub const SVID_REQUIRED: &str = "svid must be specified";

/// A server-streaming response body.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Checks the Workload API security header: exactly one `workload.spiffe.io` value,
/// equal to `true` (case-sensitive).
pub fn check_security_header(metadata: &MetadataMap) -> Result<(), Status> {
    let mut values = metadata.get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value.as_bytes() == b"true" => Ok(()),
        _ => Err(Status::invalid_argument(SECURITY_HEADER_MISSING)),
    }
}

/// The Workload API handler: serves identities from the [`Cache`] to attested callers.
#[derive(Debug, Clone)]
pub struct WorkloadApiHandler {
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    allow_unauthenticated_verifiers: bool,
    shutdown: CancellationToken,
    jwt_minter: Option<Arc<dyn JwtSvidMinter>>,
    jwt_cache: Arc<JwtSvidCache>,
    allowed_foreign_jwt_claims: Arc<std::collections::BTreeSet<String>>,
}

impl WorkloadApiHandler {
    /// A handler serving `cache` to callers attested by `attestors`.
    pub fn new(cache: Arc<Cache>, attestors: Arc<WorkloadAttestors>) -> Self {
        WorkloadApiHandler {
            cache,
            attestors,
            allow_unauthenticated_verifiers: false,
            shutdown: CancellationToken::new(),
            jwt_minter: None,
            jwt_cache: Arc::new(JwtSvidCache::default()),
            allowed_foreign_jwt_claims: Arc::default(),
        }
    }

    /// Claims besides `sub`, `aud` and `exp` that `ValidateJWTSVID` returns for tokens
    /// of foreign trust domains (agent option `allowed_foreign_jwt_claims`; default
    /// none).
    pub fn allowed_foreign_jwt_claims(mut self, claims: impl IntoIterator<Item = String>) -> Self {
        self.allowed_foreign_jwt_claims = Arc::new(claims.into_iter().collect());
        self
    }

    /// Mints JWT-SVIDs with `minter` (the server's `NewJWTSVID`). Without one,
    /// `FetchJWTSVID` answers `Unavailable`.
    pub fn with_jwt_minter(mut self, minter: Arc<dyn JwtSvidMinter>) -> Self {
        self.jwt_minter = Some(minter);
        self
    }

    /// Serves JWT-SVIDs from `cache` (shared with other handlers of the agent).
    pub fn with_jwt_cache(mut self, cache: Arc<JwtSvidCache>) -> Self {
        self.jwt_cache = cache;
        self
    }

    /// Lets callers without identity fetch bundles (agent option
    /// `allow_unauthenticated_verifiers`; default false).
    pub fn allow_unauthenticated_verifiers(mut self, allow: bool) -> Self {
        self.allow_unauthenticated_verifiers = allow;
        self
    }

    /// Ends every open stream when `token` is cancelled (for graceful shutdown).
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// The token whose cancellation ends every open stream.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Checks the header and attests the caller of `request`.
    async fn start_call<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        check_security_header(request.metadata())?;
        attest_caller(&self.attestors, request).await
    }

    fn stream_state(&self, caller: Caller) -> StreamState {
        StreamState::new(Arc::clone(&self.cache), caller, self.shutdown.clone())
    }
}

/// Attests the caller of `request` (shared by every service on the public socket): the
/// pid from the connection, every workload attestor, then the PID-reuse check.
pub(crate) async fn attest_caller<T>(
    attestors: &WorkloadAttestors,
    request: &Request<T>,
) -> Result<Caller, Status> {
    let watcher = caller_watcher(request)?;
    let pid = watcher.pid();
    let selectors = match attestors.attest(pid).await {
        Ok(selectors) => selectors,
        Err(error) => {
            tracing::error!(pid, error = %error, "Workload attestation failed");
            return Err(Status::unavailable(error.to_string()));
        }
    };
    // The attested process must still be the one that connected.
    if let Err(error) = watcher.is_alive() {
        tracing::warn!(pid, error = %error, "Could not verify existence of the original caller");
        watcher.close();
        return Err(Status::unauthenticated(format!(
            "could not verify existence of the original caller: {error}"
        )));
    }
    Ok(Caller {
        pid,
        selectors,
        quiet: u32::try_from(pid).ok() == Some(std::process::id()),
    })
}

/// A JWT-SVID for `entry` and `audience`, from `cache` or minted by `minter` (shared
/// by the Workload API and the Delegated Identity API). Failures, and a missing
/// minter, give `Unavailable "could not fetch JWT-SVID: ..."`.
pub(crate) async fn fetch_jwt_svid(
    minter: Option<&dyn JwtSvidMinter>,
    cache: &JwtSvidCache,
    entry: &CachedEntry,
    audience: &[String],
    pid: i32,
) -> Result<MintedJwtSvid, Status> {
    let minter = minter.ok_or_else(|| {
        Status::unavailable("could not fetch JWT-SVID: no connection to the server")
    })?;
    cache
        .fetch(
            minter,
            &entry.entry_id,
            &entry.spiffe_id,
            audience,
            SystemTime::now(),
        )
        .await
        .map_err(|error| {
            tracing::error!(pid, spiffe_id = %entry.spiffe_id, error = %error, "Could not fetch JWT-SVID");
            Status::unavailable(format!("could not fetch JWT-SVID: {error}"))
        })
}

/// The attested caller of one RPC.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The caller's process ID.
    pub(crate) pid: i32,
    /// The caller's selectors.
    pub(crate) selectors: Vec<Selector>,
    /// The agent itself (its health check): keep it out of the logs.
    pub(crate) quiet: bool,
}

/// The caller's watcher: the one of the tracked connection, or (when the service is
/// mounted on a plain Unix listener) a fresh one from tonic's `UdsConnectInfo`.
fn caller_watcher<T>(request: &Request<T>) -> Result<Arc<PeerWatcher>, Status> {
    if let Some(info) = request.extensions().get::<PeerConnectInfo>() {
        return Ok(Arc::clone(&info.watcher));
    }
    let cred = request
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .ok_or_else(|| Status::internal("peer tracker watcher missing from context"))?;
    let caller = CallerInfo {
        pid: cred.pid().unwrap_or(0),
        uid: cred.uid(),
        gid: cred.gid(),
    };
    PeerWatcher::new(caller).map(Arc::new).map_err(|error| {
        Status::unauthenticated(format!(
            "could not verify existence of the original caller: {error}"
        ))
    })
}

/// What a stream does with the caller's current view of the cache.
pub(crate) enum Step<T> {
    /// Send this message (dropped when equal to the last one sent).
    Send(T),
    /// End the stream with this status.
    Fail(Status),
}

/// The part of a stream's state shared by the Workload API and SDS streams: the
/// caller's subscription to the cache.
pub(crate) struct StreamState {
    cache: Arc<Cache>,
    updates: watch::Receiver<u64>,
    /// Keeps the caller's entries' SVIDs in the cache while the stream is open.
    _subscriber: Subscriber,
    shutdown: CancellationToken,
    pub(crate) caller: Caller,
    first: bool,
    waiting_logged: bool,
    done: bool,
}

impl StreamState {
    /// Subscribes `caller` to `cache`; the stream ends when `shutdown` is cancelled.
    pub(crate) fn new(cache: Arc<Cache>, caller: Caller, shutdown: CancellationToken) -> Self {
        StreamState {
            updates: cache.subscribe(),
            _subscriber: cache.subscribe_workload(&caller.selectors),
            cache,
            shutdown,
            caller,
            first: true,
            waiting_logged: false,
            done: false,
        }
    }

    /// The caller's current view of the cache, or `None` while the stream must wait
    /// for SVIDs (SPIRE blocks a new subscriber until every matching entry has its
    /// SVID; an established stream waits only when it would otherwise lose its last
    /// identity to an entry being re-signed).
    pub(crate) fn view(&mut self) -> Option<WorkloadUpdate> {
        self.updates.borrow_and_update();
        let update = self.cache.workload_update(&self.caller.selectors);
        let must_wait = update.pending > 0 && (self.first || update.identities.is_empty());
        if must_wait {
            if !self.waiting_logged && !self.caller.quiet {
                tracing::info!(pid = self.caller.pid, "Waiting for SVID to get cached");
                self.waiting_logged = true;
            }
            return None;
        }
        self.first = false;
        Some(update)
    }

    /// Waits for the next cache change; false when the stream must end (shutdown or
    /// the cache is gone).
    pub(crate) async fn changed(&mut self) -> bool {
        tokio::select! {
            changed = self.updates.changed() => changed.is_ok(),
            () = self.shutdown.cancelled() => false,
        }
    }

    fn no_identity(&mut self) -> Status {
        if !self.caller.quiet {
            tracing::error!(
                pid = self.caller.pid,
                registered = false,
                "No identity issued"
            );
        }
        Status::permission_denied(NO_IDENTITY_ISSUED)
    }

    /// Runs `step` on every cache change, yielding each new message until a failure
    /// (which is yielded and ends the stream), shutdown, or the client going away.
    pub(crate) fn into_stream<T, F>(self, step: F) -> ResponseStream<T>
    where
        T: PartialEq + Clone + Send + 'static,
        F: FnMut(&mut StreamState, WorkloadUpdate) -> Step<T> + Send + 'static,
    {
        let init = (self, step, None::<T>);
        Box::pin(futures::stream::unfold(
            init,
            |(mut state, mut step, mut last)| async move {
                if state.done {
                    return None;
                }
                loop {
                    if let Some(update) = state.view() {
                        match step(&mut state, update) {
                            Step::Send(message) if last.as_ref() != Some(&message) => {
                                last = Some(message.clone());
                                return Some((Ok(message), (state, step, last)));
                            }
                            Step::Send(_) => {}
                            Step::Fail(status) => {
                                state.done = true;
                                return Some((Err(status), (state, step, last)));
                            }
                        }
                    }
                    if !state.changed().await {
                        return None;
                    }
                }
            },
        ))
    }
}

/// Builds the `FetchX509SVID` response for a workload's update.
pub fn compose_x509_svid_response(update: &WorkloadUpdate) -> Result<X509svidResponse, Status> {
    let own =
        update.bundles.own.as_ref().ok_or_else(|| {
            Status::unavailable("could not serialize response: bundle not available")
        })?;
    let bundle = own.x509_bundle().to_der();
    let svids = update
        .identities
        .iter()
        .map(|identity| X509svid {
            spiffe_id: identity.entry.spiffe_id.to_string(),
            x509_svid: identity.svid.chain_der(),
            x509_svid_key: identity.svid.private_key().secret_pkcs8_der().to_vec(),
            bundle: bundle.clone(),
            hint: identity.entry.hint.clone(),
        })
        .collect();
    let federated_bundles = update
        .bundles
        .federated
        .iter()
        .map(|(td, b)| (td.id_string(), b.x509_bundle().to_der()))
        .collect();
    Ok(X509svidResponse {
        svids,
        crl: update.crls.to_vec(),
        federated_bundles,
    })
}

/// Builds the `FetchX509Bundles` response: the own bundle, plus the federated bundles
/// when the caller has an identity.
pub fn compose_x509_bundles_response(
    update: &WorkloadUpdate,
) -> Result<X509BundlesResponse, Status> {
    let own =
        update.bundles.own.as_ref().ok_or_else(|| {
            Status::unavailable("could not serialize response: bundle not available")
        })?;
    let mut bundles = std::collections::HashMap::new();
    bundles.insert(own.trust_domain().id_string(), own.x509_bundle().to_der());
    if !update.identities.is_empty() {
        for (td, bundle) in &update.bundles.federated {
            bundles.insert(td.id_string(), bundle.x509_bundle().to_der());
        }
    }
    Ok(X509BundlesResponse {
        crl: update.crls.to_vec(),
        bundles,
    })
}

/// Builds the `FetchJWTBundles` response: the JWT authorities of the own bundle and
/// of the workload's federated bundles, as standard JWKS documents (no `use` members,
/// as SPIRE marshals them), keyed by trust domain ID.
pub fn compose_jwt_bundles_response(update: &WorkloadUpdate) -> Result<JwtBundlesResponse, Status> {
    let own =
        update.bundles.own.as_ref().ok_or_else(|| {
            Status::unavailable("could not serialize response: bundle not available")
        })?;
    let mut bundles = std::collections::HashMap::new();
    bundles.insert(
        own.trust_domain().id_string(),
        own.jwt_bundle().to_standard_jwks_json(),
    );
    if !update.identities.is_empty() {
        for (td, bundle) in &update.bundles.federated {
            bundles.insert(td.id_string(), bundle.jwt_bundle().to_standard_jwks_json());
        }
    }
    Ok(JwtBundlesResponse { bundles })
}

/// The claims of a validated JWT-SVID as SPIRE returns them: `aud` always a list; for a
/// subject of a foreign trust domain (`foreign_allowed` is then the
/// `allowed_foreign_jwt_claims`) only `sub`, `aud`, `exp` and the allowed claims.
fn validated_claims(
    svid: &JwtSvid,
    foreign_allowed: Option<&std::collections::BTreeSet<String>>,
) -> prost_types::Struct {
    let mut fields = std::collections::BTreeMap::new();
    for (name, value) in svid.claims() {
        if let Some(allowed) = foreign_allowed
            && !matches!(name.as_str(), "sub" | "aud" | "exp")
            && !allowed.contains(name)
        {
            continue;
        }
        let value = if name == "aud" {
            serde_json::Value::Array(
                svid.audience()
                    .iter()
                    .cloned()
                    .map(serde_json::Value::String)
                    .collect(),
            )
        } else {
            value.clone()
        };
        fields.insert(name.clone(), json_to_proto(value));
    }
    prost_types::Struct { fields }
}

/// A JSON value as a protobuf `Value` (numbers become doubles, as protojson does).
fn json_to_proto(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(values) => Kind::ListValue(prost_types::ListValue {
            values: values.into_iter().map(json_to_proto).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map
                .into_iter()
                .map(|(k, v)| (k, json_to_proto(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn log_fetched_svids(caller: &Caller, update: &WorkloadUpdate) {
    if caller.quiet {
        return;
    }
    let now = SystemTime::now();
    for identity in &update.identities {
        let ttl = identity
            .expires_at
            .map_or(0.0, |exp| match exp.duration_since(now) {
                Ok(left) => left.as_secs_f64(),
                Err(past) => -past.duration().as_secs_f64(),
            });
        tracing::debug!(
            pid = caller.pid,
            registered = true,
            spiffe_id = %identity.entry.spiffe_id,
            ttl,
            "Fetched X.509 SVID"
        );
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApiHandler {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;
    type FetchWITSVIDStream = ResponseStream<WitsvidResponse>;
    type FetchWITBundlesStream = ResponseStream<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let caller = self.start_call(&request).await?;
        let stream = self.stream_state(caller).into_stream(|state, update| {
            if update.identities.is_empty() {
                return Step::Fail(state.no_identity());
            }
            match compose_x509_svid_response(&update) {
                Ok(response) => {
                    log_fetched_svids(&state.caller, &update);
                    Step::Send(response)
                }
                Err(status) => {
                    tracing::error!(pid = state.caller.pid, error = %status.message(), "Could not serialize X.509 SVID response");
                    Step::Fail(status)
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        let caller = self.start_call(&request).await?;
        let allow_unauthenticated = self.allow_unauthenticated_verifiers;
        let stream = self.stream_state(caller).into_stream(move |state, update| {
            if update.identities.is_empty() && !allow_unauthenticated {
                return Step::Fail(state.no_identity());
            }
            match compose_x509_bundles_response(&update) {
                Ok(response) => Step::Send(response),
                Err(status) => {
                    tracing::error!(pid = state.caller.pid, error = %status.message(), "Could not serialize X509 bundle response");
                    Step::Fail(status)
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_security_header(request.metadata())?;
        if request.get_ref().audience.is_empty() {
            return Err(Status::invalid_argument(AUDIENCE_REQUIRED));
        }
        let wanted = &request.get_ref().spiffe_id;
        if !wanted.is_empty() {
            SpiffeId::parse(wanted).map_err(|e| {
                Status::invalid_argument(format!("invalid requested SPIFFE ID: {e}"))
            })?;
        }
        let caller = self.start_call(&request).await?;
        let request = request.into_inner();
        let mut svids = Vec::new();
        for entry in self.cache.jwt_entries_for(&caller.selectors) {
            if !request.spiffe_id.is_empty() && entry.spiffe_id.as_str() != request.spiffe_id {
                continue;
            }
            let svid = fetch_jwt_svid(
                self.jwt_minter.as_deref(),
                &self.jwt_cache,
                &entry,
                &request.audience,
                caller.pid,
            )
            .await?;
            if !caller.quiet {
                tracing::debug!(pid = caller.pid, spiffe_id = %entry.spiffe_id, expires_at = svid.expires_at, "Fetched JWT SVID");
            }
            svids.push(Jwtsvid {
                spiffe_id: entry.spiffe_id.to_string(),
                svid: svid.token,
                hint: entry.hint.clone(),
            });
        }
        if svids.is_empty() {
            if !caller.quiet {
                tracing::error!(pid = caller.pid, registered = false, "No identity issued");
            }
            return Err(Status::permission_denied(NO_IDENTITY_ISSUED));
        }
        Ok(Response::new(JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        let caller = self.start_call(&request).await?;
        let allow_unauthenticated = self.allow_unauthenticated_verifiers;
        let stream = self.stream_state(caller).into_stream(move |state, update| {
            if update.identities.is_empty() && !allow_unauthenticated {
                return Step::Fail(state.no_identity());
            }
            match compose_jwt_bundles_response(&update) {
                Ok(response) => Step::Send(response),
                Err(status) => {
                    tracing::error!(pid = state.caller.pid, error = %status.message(), "Could not serialize JWT bundle response");
                    Step::Fail(status)
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_security_header(request.metadata())?;
        if request.get_ref().audience.is_empty() {
            return Err(Status::invalid_argument(AUDIENCE_REQUIRED));
        }
        if request.get_ref().svid.is_empty() {
            return Err(Status::invalid_argument(SVID_REQUIRED));
        }
        let caller = self.start_call(&request).await?;
        let request = request.into_inner();
        let update = self.cache.workload_update(&caller.selectors);
        let mut keys: BTreeMap<TrustDomain, JwtBundle> = BTreeMap::new();
        if let Some(own) = &update.bundles.own {
            keys.insert(own.trust_domain().clone(), own.jwt_bundle().clone());
        }
        for (td, bundle) in &update.bundles.federated {
            keys.insert(td.clone(), bundle.jwt_bundle().clone());
        }
        let svid = JwtSvid::parse_and_validate(
            &request.svid,
            &keys,
            &[request.audience.as_str()],
            SystemTime::now(),
        )
        .map_err(|error| {
            if !caller.quiet {
                tracing::warn!(pid = caller.pid, error = %error, "Failed to validate JWT");
            }
            Status::invalid_argument(error.to_string())
        })?;
        let foreign = svid.spiffe_id().trust_domain() != self.cache.trust_domain();
        let claims = validated_claims(
            &svid,
            foreign.then_some(self.allowed_foreign_jwt_claims.as_ref()),
        );
        Ok(Response::new(ValidateJwtsvidResponse {
            spiffe_id: svid.spiffe_id().to_string(),
            claims: Some(claims),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented(
            "fetching WIT-SVIDs is not implemented",
        ))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented(
            "fetching WIT bundles is not implemented",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    #[test]
    fn security_header_must_be_exactly_one_true() {
        let mut md = MetadataMap::new();
        assert!(check_security_header(&md).is_err());
        md.insert(SECURITY_HEADER, MetadataValue::from_static("True"));
        assert!(check_security_header(&md).is_err());
        md.insert(SECURITY_HEADER, MetadataValue::from_static("true"));
        assert!(check_security_header(&md).is_ok());
        md.append(SECURITY_HEADER, MetadataValue::from_static("true"));
        let err = check_security_header(&md).err();
        assert_eq!(
            err.as_ref().map(Status::code),
            Some(tonic::Code::InvalidArgument)
        );
        assert_eq!(
            err.as_ref().map(Status::message),
            Some(SECURITY_HEADER_MISSING)
        );
    }
}

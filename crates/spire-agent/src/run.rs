//! `spire-agent run` (agent.md §5.1): bootstrap trust, attest the node (or resume from
//! `data_dir`), sync with the server, keep the agent SVID fresh, and serve the Workload
//! API until SIGINT/SIGTERM.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{BundleSet, SpiffeBundle, SpiffeId, X509Bundle, X509Svid};
use spire_common::keymanager::{DiskKeyManager, KeyManager, KeyType, MemoryKeyManager};
use spire_common::tls::{SvidResolver, TrustStore};
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cli::CliError;
use crate::client::{ClientError, ServerClient};
use crate::config::{AgentConfig, AgentFlags, TrustBundleFormat, TrustBundleSource};
use crate::manager::Cache;
use crate::manager::sync::{Synchronizer, csr_for};
use crate::storage::{AgentState, Storage};
use crate::workload::{
    DockerAttestor, DockerAttestorConfig, SystemdAttestor, UnixAttestor, UnixAttestorConfig,
    WorkloadAttestor, WorkloadAttestors,
};

/// KeyManager key IDs of the agent SVID, alternating at each renewal (agent.md §4.5).
const AGENT_KEY_IDS: [&str; 2] = ["agent-svid-A", "agent-svid-B"];
/// How often the agent SVID is checked for rotation (agent.md §5.5).
const ROTATOR_INTERVAL: Duration = Duration::from_secs(5);
/// How long startup keeps retrying attestation and the first sync (agent.md §5.1).
const STARTUP_RETRY_FOR: Duration = Duration::from_secs(60);

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::AgentConfigError),
    /// A plugin is unknown or misconfigured.
    #[error("{0}")]
    Plugin(String),
    /// The bootstrap bundle is unusable.
    #[error("failed to load the trust bundle: {0}")]
    Bundle(String),
    /// `agent-data.json` could not be read or written.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Node attestation failed.
    #[error("failed to attest: {0}")]
    Attestation(String),
    /// The first sync with the server failed.
    #[error("failed to sync with the server: {0}")]
    Sync(String),
    /// The Workload API could not be served.
    #[error(transparent)]
    Endpoints(#[from] crate::endpoints::EndpointsError),
    /// The server refused the agent (banned, or it must attest again); the agent SVID
    /// was deleted.
    #[error("{0}")]
    Refused(String),
}

/// The server refused the agent itself with a `PermissionDeniedDetails` reason
/// (agent.md §5.3, server.md §3.5 item 6): retrying is pointless.
#[derive(Debug, Clone)]
struct Refusal {
    /// `AGENT_BANNED`, as opposed to a reason that calls for a new attestation.
    banned: bool,
    /// The server's error.
    error: String,
}

impl Refusal {
    /// The refusal carried by `error`, if it is one.
    fn of(error: &ClientError) -> Option<Refusal> {
        (error.is_agent_banned() || error.must_reattest()).then(|| Refusal {
            banned: error.is_agent_banned(),
            error: error.to_string(),
        })
    }

    /// Does what SPIRE's agent does on a refusal: logs it, deletes the stored agent SVID
    /// (keeping the bundle) so the next start attests again, and returns the error to
    /// exit with.
    fn delete_svid(&self, storage: &Storage, state: &std::sync::Mutex<AgentState>) -> AgentError {
        if self.banned {
            tracing::error!(error = %self.error, "Agent is banned: removing SVID and shutting down");
        } else {
            tracing::error!(error = %self.error, "Agent needs to re-attest: removing SVID and shutting down");
        }
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.svid.clear();
        if let Err(e) = storage.save(&state) {
            tracing::error!(error = %e, "Failed to remove the agent SVID");
        }
        AgentError::Refused(self.error.clone())
    }
}

/// Runs `spire-agent run` with its flags until a termination signal.
pub async fn run_command(flags: AgentFlags) -> Result<(), CliError> {
    let config = AgentConfig::load_with_flags(&flags).map_err(|e| CliError(e.to_string()))?;
    let (dispatch, log) = spire_common::logging::build(
        config.log_level.as_str(),
        &config.log_format.to_string(),
        config.log_file.as_deref(),
        config.log_source_location,
    )
    .map_err(|e| CliError(e.to_string()))?;
    let _ = tracing::dispatcher::set_global_default(dispatch);
    run_with_log(config, Some(log), spire_common::signals::shutdown())
        .await
        .map_err(|e| CliError(e.to_string()))
}

fn key_manager(config: &AgentConfig) -> Result<Arc<dyn KeyManager>, AgentError> {
    let plugin = config
        .plugins_of_type("KeyManager")
        .next()
        .ok_or_else(|| AgentError::Plugin("a KeyManager plugin must be configured".into()))?;
    match plugin.name.as_str() {
        "memory" => Ok(Arc::new(MemoryKeyManager::new())),
        "disk" => {
            let cfg = crate::config::DiskKeyManagerConfig::from_plugin(plugin)?;
            std::fs::create_dir_all(&cfg.directory)
                .map_err(|e| AgentError::Plugin(format!("KeyManager \"disk\": {e}")))?;
            let km = DiskKeyManager::open(cfg.keys_path())
                .map_err(|e| AgentError::Plugin(format!("KeyManager \"disk\": {e}")))?;
            Ok(Arc::new(km))
        }
        other => Err(AgentError::Plugin(format!(
            "unknown KeyManager plugin {other:?}: spire-rs provides disk, memory"
        ))),
    }
}

fn workload_attestors(config: &AgentConfig) -> Result<WorkloadAttestors, AgentError> {
    let mut attestors: Vec<Arc<dyn WorkloadAttestor>> = Vec::new();
    for plugin in config.plugins_of_type("WorkloadAttestor") {
        match plugin.name.as_str() {
            "unix" => {
                let cfg = crate::config::UnixWorkloadAttestorConfig::from_plugin(plugin)?;
                attestors.push(Arc::new(UnixAttestor::new(UnixAttestorConfig {
                    discover_workload_path: cfg.discover_workload_path,
                    workload_size_limit: cfg.workload_size_limit,
                })));
            }
            "docker" => {
                let cfg = DockerAttestorConfig::from_plugin(plugin)
                    .map_err(|e| AgentError::Plugin(e.to_string()))?;
                attestors.push(Arc::new(DockerAttestor::new(cfg)));
            }
            "k8s" => {
                let attestor = crate::workload::K8sAttestorConfig::from_plugin(plugin)
                    .and_then(crate::workload::K8sAttestor::new)
                    .map_err(|e| AgentError::Plugin(e.to_string()))?;
                attestors.push(Arc::new(attestor));
            }
            "systemd" => attestors.push(Arc::new(SystemdAttestor::new())),
            other => {
                return Err(AgentError::Plugin(format!(
                    "unknown WorkloadAttestor plugin {other:?}: spire-rs provides unix, docker, k8s, systemd"
                )));
            }
        }
    }
    if attestors.is_empty() {
        return Err(AgentError::Plugin(
            "at least one WorkloadAttestor plugin must be configured".into(),
        ));
    }
    Ok(WorkloadAttestors::new(attestors))
}

/// The bootstrap bundle, used only when `agent-data.json` holds none (agent.md §5.2).
fn bootstrap_bundle(config: &AgentConfig) -> Result<X509Bundle, AgentError> {
    match &config.trust_bundle {
        TrustBundleSource::Path(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| AgentError::Bundle(format!("{}: {e}", path.display())))?;
            let td = config.trust_domain.clone();
            let bundle = match config.trust_bundle_format {
                TrustBundleFormat::Pem => X509Bundle::parse_pem(td, &bytes)
                    .map_err(|e| AgentError::Bundle(e.to_string()))?,
                TrustBundleFormat::Spiffe => SpiffeBundle::parse(td, &bytes)
                    .map_err(|e| AgentError::Bundle(e.to_string()))?
                    .x509_bundle()
                    .clone(),
            };
            if bundle.is_empty() {
                return Err(AgentError::Bundle(format!(
                    "{}: no certificates found",
                    path.display()
                )));
            }
            Ok(bundle)
        }
        other => Err(AgentError::Bundle(format!(
            "bootstrap source {other:?} is not implemented yet in spire-rs; use trust_bundle_path"
        ))),
    }
}

fn not_after(leaf: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn past_half_life(leaf: &CertificateDer<'_>, now: SystemTime) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
        return true;
    };
    let start = cert.validity().not_before.timestamp();
    let end = cert.validity().not_after.timestamp();
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now >= start + (end - start) / 2
}

/// Whether `availability_target` makes the agent SVID `leaf` due at `now` (agent.md
/// §5.7; the same rule as for workload SVIDs).
fn availability_due(leaf: &CertificateDer<'_>, now: SystemTime, target: Option<Duration>) -> bool {
    let Some(target) = target else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
        return false;
    };
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    crate::manager::rotation::availability_due(
        at(cert.validity().not_before.timestamp()),
        at(cert.validity().not_after.timestamp()),
        now,
        target,
        crate::manager::rotation::target_jitter(rand_unit()),
    )
}

/// A random number in `[0, 1]`.
fn rand_unit() -> f64 {
    let mut byte = [0u8; 1];
    match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0,
        Err(_) => 0.5,
    }
}

/// The stored agent SVID, when its key is still in the KeyManager and it has not
/// expired (agent.md §5.4).
fn stored_svid(state: &AgentState, keys: &dyn KeyManager) -> Option<X509Svid> {
    let leaf = state.svid.first()?;
    if not_after(leaf)? <= SystemTime::now() + Duration::from_secs(1) {
        return None;
    }
    for id in AGENT_KEY_IDS {
        if let Ok(Some(key)) = keys.get_key(id) {
            let pkcs8 = PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
            if let Ok(svid) = X509Svid::from_parts(state.svid.clone(), pkcs8) {
                return Some(svid);
            }
        }
    }
    None
}

/// A CSR for a new agent key in `slot` of the KeyManager.
fn agent_key_csr(
    keys: &dyn KeyManager,
    slot: &str,
) -> Result<(PrivatePkcs8KeyDer<'static>, Vec<u8>), AgentError> {
    let key = keys
        .generate_key(slot, KeyType::EcP256)
        .map_err(|e| AgentError::Plugin(format!("KeyManager: {e}")))?;
    let csr = csr_for(key.key_pair(), None)
        .map_err(|e| AgentError::Attestation(format!("cannot build CSR: {e}")))?;
    Ok((PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()), csr))
}

async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + STARTUP_RETRY_FOR;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            // PermissionDenied and InvalidArgument are final (a used token, a ban), as
            // is a node attestor that cannot read its own material.
            Err(e)
                if matches!(e, ClientError::Attestor(_))
                    || matches!(
                        e.status().map(tonic::Status::code),
                        Some(tonic::Code::PermissionDenied | tonic::Code::InvalidArgument)
                    ) =>
            {
                return Err(e);
            }
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    run_with_log(config, None, shutdown).await
}

/// Runs the agent until `shutdown` resolves; `log` (the installed logger) lets the
/// admin Logger API change the level at run time.
pub async fn run_with_log(
    config: AgentConfig,
    log: Option<spire_common::logging::LogGuard>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    let started = std::time::Instant::now();
    spire_common::umask::restrict();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| AgentError::Plugin(format!("cannot create data_dir: {e}")))?;
    let storage = Storage::new(&config.data_dir);
    let keys = key_manager(&config)?;
    let attestors = Arc::new(workload_attestors(&config)?);
    let state = storage.load()?.unwrap_or_default();

    let td = config.trust_domain.clone();
    let initial = if state.bundle.is_empty() {
        bootstrap_bundle(&config)?
    } else {
        X509Bundle::from_authorities(td.clone(), state.bundle.clone())
            .map_err(|e| AgentError::Bundle(e.to_string()))?
    };
    let mut own = SpiffeBundle::new(td.clone());
    *own.x509_bundle_mut() = initial;
    let trust = Arc::new(TrustStore::new([own].into_iter().collect::<BundleSet>()));
    let resolver = Arc::new(SvidResolver::new());
    let address = format!("{}:{}", config.server_address, config.server_port);
    let client = ServerClient::new(&address, &td, trust.clone(), resolver.clone())
        .map_err(|e| AgentError::Attestation(e.to_string()))?;

    // A join token wins when given; otherwise the configured NodeAttestor plugin.
    let node_attestor = if config.join_token.is_some() {
        None
    } else {
        crate::attestation::configured(&config).map_err(|e| AgentError::Plugin(e.0))?
    };
    let (svid, mut slot, reattestable) = match stored_svid(&state, keys.as_ref()) {
        Some(svid) => {
            tracing::info!(spiffe_id = %svid.spiffe_id(), "Resuming with the stored agent SVID");
            (svid, 0, state.reattestable && node_attestor.is_some())
        }
        None => {
            let (key, csr) = agent_key_csr(keys.as_ref(), AGENT_KEY_IDS[0])?;
            let attested = match (&config.join_token, &node_attestor) {
                (Some(token), _) => {
                    retry("Node attestation", || {
                        client.attest_join_token(token, csr.clone())
                    })
                    .await
                }
                (None, Some(attestor)) => {
                    retry("Node attestation", || {
                        client.attest(attestor.as_ref(), csr.clone())
                    })
                    .await
                }
                (None, None) => {
                    return Err(AgentError::Attestation(
                        "no stored SVID and no join token: set join_token or -joinToken".into(),
                    ));
                }
            }
            .map_err(|e| AgentError::Attestation(e.to_string()))?;
            let reattestable = attested.reattestable && node_attestor.is_some();
            let svid = X509Svid::from_parts(attested.svid_chain, key).map_err(|e| {
                AgentError::Attestation(format!("server returned an invalid SVID: {e}"))
            })?;
            tracing::info!(spiffe_id = %svid.spiffe_id(), "Node attestation was successful");
            (svid, 0, reattestable)
        }
    };
    let agent_id: SpiffeId = svid.spiffe_id().clone();
    resolver
        .set_svid(&svid)
        .map_err(|e| AgentError::Attestation(format!("agent SVID unusable for TLS: {e}")))?;
    client
        .reconnect()
        .map_err(|e| AgentError::Attestation(e.to_string()))?;
    let current = Arc::new(std::sync::Mutex::new(AgentState {
        svid: svid.cert_chain().to_vec(),
        bundle: trust
            .bundles()
            .get(&td)
            .map(|b| b.x509_bundle().authorities().to_vec())
            .unwrap_or_default(),
        reattestable,
    }));
    storage.save(&current.lock().unwrap_or_else(|e| e.into_inner()))?;

    let cache = Arc::new(
        Cache::new(td.clone())
            .with_x509_svid_cache_max_size(config.x509_svid_cache_max_size)
            .with_availability_target(config.availability_target),
    );
    // One JWT-SVID cache for the Workload and admin APIs and the sync loop (which purges
    // tokens of tainted keys), bounded by `jwt_svid_cache_max_size` (agent.md §5.8).
    let jwt_cache = Arc::new(crate::manager::JwtSvidCache::new(
        config.jwt_svid_cache_max_size,
    ));
    let observer_trust = trust.clone();
    let observer_state = current.clone();
    let observer_storage = storage.clone();
    let synchronizer = Arc::new(
        Synchronizer::new(
            client.clone(),
            cache.clone(),
            Box::new(move |bundle: &SpiffeBundle| {
                observer_trust.set_bundle(bundle.clone());
                let mut state = observer_state.lock().unwrap_or_else(|e| e.into_inner());
                state.bundle = bundle.x509_bundle().authorities().to_vec();
                if let Err(e) = observer_storage.save(&state) {
                    tracing::error!(error = %e, "Failed to persist the trust bundle");
                }
            }),
            config.experimental.sync_interval,
        )
        .with_jwt_cache(jwt_cache.clone()),
    );
    if let Err(e) = retry("Initial sync", || async {
        synchronizer.sync().await.map_err(|e| match e {
            crate::manager::sync::SyncError::Client(c) => c,
            other => ClientError::InvalidResponse(other.to_string()),
        })
    })
    .await
    {
        return Err(match Refusal::of(&e) {
            Some(refusal) => refusal.delete_svid(&storage, &current),
            None => AgentError::Sync(e.to_string()),
        });
    }

    // The sync loop and the rotator record a refusal here and stop the agent.
    let stop = CancellationToken::new();
    let refusal = Arc::new(std::sync::OnceLock::<Refusal>::new());
    let sync_stop = stop.clone();
    let sync_refusal = refusal.clone();
    let rotator_sync = synchronizer.clone();
    let rotator_taint = synchronizer.x509_taint_signal();
    let last_sync_success = synchronizer.last_success();
    let sync_task = tokio::spawn(async move {
        if let Err(e) = synchronizer.run(sync_stop.clone()).await {
            if let crate::manager::sync::SyncError::Client(c) = &e
                && let Some(r) = Refusal::of(c)
            {
                let _ = sync_refusal.set(r);
            }
            sync_stop.cancel();
        }
    });

    // Agent SVID rotation at half life, or at once when a synced bundle marks its CA
    // tainted (agent.md §5.5, §5.11): re-attestable agents attest again with their
    // node attestor (SPIRE refuses RenewAgent for them); others call RenewAgent.
    let rotator_attestor = node_attestor.clone().filter(|_| reattestable);
    let rotator_stop = stop.clone();
    let rotator_client = client.clone();
    let rotator_keys = keys.clone();
    let rotator_state = current.clone();
    let rotator_storage = storage.clone();
    let rotator_resolver = resolver.clone();
    let rotator_refusal = refusal.clone();
    let availability_target = config.availability_target;
    let rotator = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(ROTATOR_INTERVAL);
        loop {
            tokio::select! {
                () = rotator_stop.cancelled() => return,
                _ = ticker.tick() => {}
                () = rotator_taint.notified() => {}
            }
            let chain = rotator_state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .svid
                .clone();
            let tainted = rotator_sync.signed_by_tainted(&chain);
            let due = chain.first().is_some_and(|leaf| {
                let now = SystemTime::now();
                past_half_life(leaf, now) || availability_due(leaf, now, availability_target)
            });
            if !due && !tainted {
                continue;
            }
            if tainted {
                tracing::info!("Agent SVID was signed by a tainted authority; rotating it");
            }
            slot = 1 - slot;
            let renewed = async {
                let (key, csr) = agent_key_csr(rotator_keys.as_ref(), AGENT_KEY_IDS[slot])
                    .map_err(|e| e.to_string())?;
                let chain = match &rotator_attestor {
                    Some(attestor) => rotator_client
                        .attest(attestor.as_ref(), csr)
                        .await
                        .map(|attested| attested.svid_chain),
                    None => rotator_client.renew_agent(csr).await,
                }
                .map_err(|e| {
                    if let Some(refusal) = Refusal::of(&e) {
                        let _ = rotator_refusal.set(refusal);
                    }
                    e.to_string()
                })?;
                X509Svid::from_parts(chain, key).map_err(|e| e.to_string())
            }
            .await;
            match renewed {
                Ok(svid) => {
                    if let Err(e) = rotator_resolver.set_svid(&svid) {
                        tracing::error!(error = %e, "Renewed agent SVID unusable for TLS");
                        continue;
                    }
                    let _ = rotator_client.reconnect();
                    let mut state = rotator_state.lock().unwrap_or_else(|e| e.into_inner());
                    state.svid = svid.cert_chain().to_vec();
                    if let Err(e) = rotator_storage.save(&state) {
                        tracing::error!(error = %e, "Failed to persist the agent SVID");
                    }
                    tracing::info!(spiffe_id = %svid.spiffe_id(), "Agent SVID rotated");
                }
                Err(_) if rotator_refusal.get().is_some() => {
                    rotator_stop.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = e, "Failed to rotate the agent SVID"),
            }
        }
    });

    let api_stop = stop.clone();
    let socket_path = config.socket_path.clone();
    let minter: Arc<dyn crate::manager::JwtSvidMinter> = Arc::new(client.clone());
    let debug_state = current.clone();
    let debug = crate::endpoints::admin::DebugService::new(crate::endpoints::admin::DebugSources {
        started,
        svid_chain: Arc::new(move || {
            let state = debug_state.lock().unwrap_or_else(|e| e.into_inner());
            state.svid.iter().map(|c| c.to_vec()).collect()
        }),
        last_sync_success: Arc::new(move || {
            last_sync_success.load(std::sync::atomic::Ordering::Relaxed)
        }),
        cache: cache.clone(),
        jwt_cache: jwt_cache.clone(),
    });
    let launch_level = spire_common::logging::Level::parse(config.log_level.as_str())
        .unwrap_or(spire_common::logging::Level::Info);
    let logger = crate::endpoints::admin::LoggerService::new(log, launch_level);
    crate::endpoints::delegated::spawn_admin(
        &config,
        &cache,
        &attestors,
        &minter,
        &jwt_cache,
        (debug, logger),
        stop.clone(),
    );
    let api_config = crate::endpoints::WorkloadApiConfig {
        socket_path,
        allow_unauthenticated_verifiers: config.allow_unauthenticated_verifiers,
        sds: (!config.disable_sds_api).then(|| config.sds.clone()),
        allowed_foreign_jwt_claims: config.allowed_foreign_jwt_claims.clone(),
    };
    let mut api = tokio::spawn(async move {
        crate::endpoints::serve_agent(
            &api_config,
            cache,
            attestors,
            minter,
            jwt_cache,
            api_stop.cancelled(),
        )
        .await
    });
    tracing::info!(agent_id = %agent_id, socket_path = %config.socket_path.display(), "Starting Workload API");

    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        // Only the sync loop or the rotator cancels it, after a refusal.
        () = stop.cancelled() => {}
        // The API task also ends when a refusal cancels `stop`; that case falls through
        // to the refusal handling below (select! polls ready branches in random order).
        result = &mut api => {
            if !stop.is_cancelled() {
                stop.cancel();
                return match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(AgentError::Plugin(format!("Workload API task failed: {e}"))),
                };
            }
        }
    }
    stop.cancel();
    let _ = sync_task.await;
    let _ = rotator.await;
    remove_socket(&config.socket_path);
    if let Some(refusal) = refusal.get() {
        return Err(refusal.delete_svid(&storage, &current));
    }
    tracing::info!("Agent stopped gracefully");
    Ok(())
}

fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}

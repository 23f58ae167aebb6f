//! `spire-server run`: loads `server.conf`, builds the datastore, key manager, upstream
//! authority and CA from its plugins, and serves the APIs on TCP (mTLS) and the admin
//! Unix socket until SIGINT/SIGTERM.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use spiffe_core::{BundleSet, X509Svid};
use spire_common::grpc_tls::tls_incoming;
use spire_common::logging::LogGuard;
use spire_common::tls::{
    SpiffeClientVerifier, SvidResolver, TrustStore, server_config_with_verifier,
};
use spire_proto::spire::api::server::agent::v1::agent_server::AgentServer;
use spire_proto::spire::api::server::bundle::v1::bundle_server::BundleServer;
use spire_proto::spire::api::server::debug::v1::debug_server::DebugServer;
use spire_proto::spire::api::server::entry::v1::entry_server::EntryServer;
use spire_proto::spire::api::server::localauthority::v1::local_authority_server::LocalAuthorityServer;
use spire_proto::spire::api::server::logger::v1::logger_server::LoggerServer;
use spire_proto::spire::api::server::svid::v1::svid_server::SvidServer;
use spire_proto::spire::api::server::trustdomain::v1::trust_domain_server::TrustDomainServer;
use spire_proto::spirers::server::notify::v1::notify_server::NotifyServer;
use spire_proto::spirers::server::revocation::v1::revocation_server::RevocationServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::api::ApiContext;
use crate::api::agent::AgentService;
use crate::api::authz_layer::AuthzLayer;
use crate::api::bundle::BundleService;
use crate::api::debug::{DebugService, ServerSvidChain};
use crate::api::entry::EntryService;
use crate::api::facts::StoreFacts;
use crate::api::localauthority::LocalAuthorityService;
use crate::api::logger::LoggerService;
use crate::api::notify::NotifyHub;
use crate::api::peer_trust;
use crate::api::revocation::RevocationService;
use crate::api::svid::SvidService;
use crate::api::trustdomain::TrustDomainService;
use crate::ca::{CaConfig, ServerCa, SystemClock};
use crate::cli::CliError;
use crate::config::{ServerConfig, ServerFlags};
use crate::datastore::{self, DataStoreChange, SqlStore};
use crate::keymanager::{DiskKeyManager, KeyManager, MemoryKeyManager};
use crate::upstream::UpstreamAuthority;
use crate::upstream::{DiskUpstreamAuthority, DiskUpstreamConfig};

/// How often the CA rotator and the server SVID rotator run (server.md §4.2, §4.7).
pub const ROTATION_INTERVAL: Duration = Duration::from_secs(10);

/// The gRPC services served on the TCP listener. Logger, Debug and Health are on the
/// admin socket only (server.md §3.1); calls to them over TCP answer `Unimplemented`.
fn tcp_services() -> [&'static str; 8] {
    use spire_proto::spire::api::server as srv;
    [
        srv::agent::v1::agent_server::SERVICE_NAME,
        srv::bundle::v1::bundle_server::SERVICE_NAME,
        srv::entry::v1::entry_server::SERVICE_NAME,
        srv::svid::v1::svid_server::SERVICE_NAME,
        srv::trustdomain::v1::trust_domain_server::SERVICE_NAME,
        srv::localauthority::v1::local_authority_server::SERVICE_NAME,
        spire_proto::spirers::server::notify::v1::notify_server::SERVICE_NAME,
        spire_proto::spirers::server::revocation::v1::revocation_server::SERVICE_NAME,
    ]
}

/// How long an agent connection on the TCP listener may live before the server sends
/// GOAWAY (SPIRE's `defaultMaxConnectionAge`), so agents re-resolve and spread over
/// servers when DNS membership changes. Streams in flight finish on the old connection.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(3 * 60);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ServerConfigError),
    /// A plugin is unknown or misconfigured.
    #[error("{0}")]
    Plugin(String),
    /// The datastore failed.
    #[error(transparent)]
    DataStore(#[from] datastore::DataStoreError),
    /// The CA failed.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// A listener could not be set up.
    #[error("{0}")]
    Listen(String),
}

/// Runs `spire-server run` with its flags until a termination signal.
pub async fn run_command(flags: ServerFlags) -> Result<(), CliError> {
    let config = ServerConfig::load_with_flags(&flags).map_err(|e| CliError(e.to_string()))?;
    let (dispatch, log) = spire_common::logging::build(
        config.log_level.as_str(),
        &config.log_format.to_string(),
        config.log_file.as_deref(),
        config.log_source_location,
    )
    .map_err(|e| CliError(e.to_string()))?;
    let _ = tracing::dispatcher::set_global_default(dispatch);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    run_with_logger(config, Some(log), spire_common::signals::shutdown())
        .await
        .map_err(|e| CliError(e.to_string()))
}

/// Checks a loaded configuration as `spire-server validate` does: the datastore is
/// configured and every plugin is known and accepts its configuration. Nothing is
/// started and no key is generated.
pub fn validate(config: &ServerConfig) -> Result<(), ServerError> {
    config.sql_datastore()?.ok_or_else(|| {
        ServerError::Plugin("a DataStore \"sql\" plugin must be configured".into())
    })?;
    load_plugins(config, None).map(|_| ())
}

/// The plugins the quickstart needs, resolved from the configuration by SPIRE name.
struct Plugins {
    key_manager: Arc<dyn KeyManager>,
    upstream: Option<Arc<dyn UpstreamAuthority>>,
    node_attestors: crate::attestation::NodeAttestors,
}

fn unknown_plugin(kind: &str, name: &str, known: &[&str]) -> ServerError {
    ServerError::Plugin(format!(
        "unknown {kind} plugin {name:?}: spire-rs provides {}",
        known.join(", ")
    ))
}

/// `store` is what plugins that read the server's own state at run time use (x509pop's
/// `spiffe` mode); `validate` has none.
fn load_plugins(
    config: &ServerConfig,
    store: Option<&Arc<SqlStore>>,
) -> Result<Plugins, ServerError> {
    let mut key_manager: Option<Arc<dyn KeyManager>> = None;
    let mut upstream: Option<Arc<dyn UpstreamAuthority>> = None;
    let mut node_attestors = crate::attestation::NodeAttestors::new();
    for plugin in &config.plugins {
        if !plugin.enabled {
            continue;
        }
        match (plugin.plugin_type.as_str(), plugin.name.as_str()) {
            ("DataStore", "sql") => {}
            ("DataStore", other) => return Err(unknown_plugin("DataStore", other, &["sql"])),
            ("KeyManager", "memory") => key_manager = Some(Arc::new(MemoryKeyManager::new())),
            ("KeyManager", "disk") => {
                let cfg = crate::config::DiskKeyManagerConfig::from_plugin(plugin)?;
                let km = DiskKeyManager::open(&cfg.keys_path)
                    .map_err(|e| ServerError::Plugin(format!("KeyManager \"disk\": {e}")))?;
                key_manager = Some(Arc::new(km));
            }
            ("KeyManager", other) => {
                return Err(unknown_plugin("KeyManager", other, &["disk", "memory"]));
            }
            ("UpstreamAuthority", "disk") => {
                let cfg = crate::config::DiskUpstreamAuthorityConfig::from_plugin(plugin)?;
                let disk = DiskUpstreamAuthority::new(
                    DiskUpstreamConfig {
                        key_file_path: cfg.key_file_path.display().to_string(),
                        cert_file_path: cfg.cert_file_path.display().to_string(),
                        bundle_file_path: cfg.bundle_file_path.map(|p| p.display().to_string()),
                    },
                    config.trust_domain.clone(),
                    Arc::new(SystemClock),
                )
                .map_err(|e| ServerError::Plugin(format!("UpstreamAuthority \"disk\": {e}")))?;
                upstream = Some(Arc::new(disk));
            }
            ("UpstreamAuthority", other) => {
                return Err(unknown_plugin("UpstreamAuthority", other, &["disk"]));
            }
            ("NodeAttestor", "join_token") => {}
            ("NodeAttestor", "x509pop") => {
                use crate::attestation::x509pop::{X509PopAttestor, X509PopConfig};
                let cfg = X509PopConfig::from_plugin(plugin).map_err(ServerError::Plugin)?;
                let mut attestor = X509PopAttestor::new(config.trust_domain.clone(), &cfg)
                    .map_err(ServerError::Plugin)?;
                if let Some(store) = store {
                    attestor = attestor.with_server_bundle(store.clone());
                }
                node_attestors.insert(Arc::new(attestor));
            }
            ("NodeAttestor", "aws_iid") => {
                use crate::attestation::aws_iid::{AwsIidAttestor, AwsIidConfig};
                let cfg = AwsIidConfig::from_plugin(plugin).map_err(ServerError::Plugin)?;
                let attestor = AwsIidAttestor::new(config.trust_domain.clone(), &cfg)
                    .map_err(ServerError::Plugin)?;
                node_attestors.insert(Arc::new(attestor));
            }
            ("NodeAttestor", other) => {
                return Err(unknown_plugin(
                    "NodeAttestor",
                    other,
                    &["join_token", "x509pop", "aws_iid"],
                ));
            }
            (kind, name) => {
                return Err(ServerError::Plugin(format!(
                    "plugin type {kind} (\"{name}\") is not supported by spire-rs yet"
                )));
            }
        }
    }
    let key_manager = key_manager
        .ok_or_else(|| ServerError::Plugin("a KeyManager plugin must be configured".into()))?;
    Ok(Plugins {
        key_manager,
        upstream,
        node_attestors,
    })
}

fn ca_config(config: &ServerConfig) -> CaConfig {
    let mut ca = CaConfig::new(config.trust_domain.clone());
    ca.ca_key_type = config.ca_key_type;
    ca.jwt_key_type = config.jwt_key_type;
    ca.ca_ttl = config.ca_ttl;
    ca.ca_subject = config.ca_subject.clone();
    ca.default_x509_svid_ttl = config.default_x509_svid_ttl;
    ca.default_jwt_svid_ttl = config.default_jwt_svid_ttl;
    ca.agent_ttl = Some(config.agent_ttl);
    ca.jwt_issuer = config.jwt_issuer.clone();
    ca.disable_jwt_svids = config.disable_jwt_svids;
    ca
}

/// Publishes the CA's authorities into the own bundle and refreshes the trust store;
/// returns the roots the stored bundle marks tainted.
async fn publish_bundle(
    store: &SqlStore,
    ca: &ServerCa,
    trust: &TrustStore,
) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let stored = crate::ca::publish::append(store, ca).await?;
    let api = crate::api::bundle::bundle_to_proto(&stored);
    match spire_common::convert::bundle_from_proto(&api) {
        Ok(bundle) => trust.set_bundle(bundle),
        Err(e) => tracing::error!(error = %e, "Stored bundle is not usable for TLS"),
    }
    Ok(crate::ca::publish::tainted_x509_roots(&stored))
}

/// Whether an SVID is past half of its lifetime (or signed by a CA that is no longer
/// current, which the chain check below catches as a failed verification).
fn needs_renewal(svid: &X509Svid, now: SystemTime) -> bool {
    let Ok((_, cert)) =
        <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(
            svid.leaf().as_ref(),
        )
    else {
        return true;
    };
    let start = cert.validity().not_before.timestamp();
    let end = cert.validity().not_after.timestamp();
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now >= start + (end - start) / 2
}

/// Runs the server until `shutdown` resolves. The Logger API tracks levels but does not
/// change the process's logging (see [`run_with_logger`]).
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    run_with_logger(config, None, shutdown).await
}

/// Runs the server until `shutdown` resolves; the Logger API changes the level of `log`,
/// the logger installed for this run.
pub async fn run_with_logger(
    config: ServerConfig,
    log: Option<LogGuard>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let started = Instant::now();
    spire_common::umask::restrict();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| ServerError::Listen(format!("cannot create data_dir: {e}")))?;
    let sql = config.sql_datastore()?.ok_or_else(|| {
        ServerError::Plugin("a DataStore \"sql\" plugin must be configured".into())
    })?;
    let store = Arc::new(
        SqlStore::open(&datastore::DataStoreConfig {
            database_type: sql.database_type.dialect().to_owned(),
            connection_string: sql.connection_string.clone(),
            max_open_conns: Some(sql.max_open_conns),
            conn_max_lifetime: sql.conn_max_lifetime,
            disable_migration: sql.disable_migration,
            ..Default::default()
        })
        .await?,
    );
    let plugins = load_plugins(&config, Some(&store))?;
    let node_attestors = plugins.node_attestors.clone();
    let ca = Arc::new(ServerCa::new(
        ca_config(&config),
        plugins.key_manager,
        plugins.upstream,
        Arc::new(SystemClock),
    )?);
    match crate::ca::journal::load(&store, &ca).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("No CA journal matches the KeyManager's keys; minting a new CA")
        }
        Err(e) => tracing::warn!(error = %e, "Unable to load the CA journal"),
    }
    ca.rotate()?;

    let trust = Arc::new(TrustStore::new(BundleSet::new()));
    let mut tainted_roots = publish_bundle(&store, &ca, &trust).await?;
    if let Err(e) = crate::ca::journal::save(&store, &ca).await {
        tracing::error!(error = %e, "Unable to write the CA journal");
    }
    let ca_changed = Arc::new(tokio::sync::Notify::new());
    let server_svid = Arc::new(SvidResolver::new());
    let mut current_svid = ca.new_server_x509_svid()?;
    server_svid
        .set_svid(&current_svid)
        .map_err(|e| ServerError::Listen(format!("server SVID unusable for TLS: {e}")))?;
    let svid_chain: ServerSvidChain =
        Arc::new(std::sync::RwLock::new(current_svid.cert_chain().to_vec()));

    let hub = NotifyHub::new();
    let ctx = Arc::new(ApiContext {
        trust_domain: config.trust_domain.clone(),
        store: store.clone(),
        ca: ca.clone(),
    });
    let facts = Arc::new(StoreFacts {
        store: store.clone(),
        admin_ids: config.admin_ids.iter().cloned().collect::<HashSet<_>>(),
    });
    let stop = CancellationToken::new();
    let crls = Arc::new(crate::ca::crl::CrlPublisher::new());
    tokio::spawn(crate::api::revocation::prune_loop(
        store.clone(),
        stop.clone(),
    ));

    // Federation: the bundle refresher and, when configured, the bundle endpoint.
    let federation = config.federation.clone().unwrap_or_default();
    let refresher = Arc::new(crate::federation::BundleRefresher::new(
        store.clone(),
        config.trust_domain.clone(),
        federation.federates_with.clone(),
        crate::federation::client::system_web_roots(),
    ));
    if let Some(endpoint) = &federation.bundle_endpoint {
        let endpoint = crate::federation::endpoint::BundleEndpoint::bind(
            endpoint,
            config.trust_domain.clone(),
            store.clone(),
            server_svid.clone(),
            &stop,
        )
        .await
        .map_err(|e| ServerError::Listen(e.to_string()))?;
        tokio::spawn(endpoint.serve(stop.clone()));
    }
    tokio::spawn(refresher.clone().run(stop.clone()));

    // Push committed changes to watching agents: this server's own commits, and (through
    // the follower) those other servers sharing the database commit.
    let mut changes = store.subscribe();
    tokio::spawn(store.clone().follow(
        datastore::FollowOptions::new(
            store.dialect(),
            config.experimental.cache_reload_interval,
            config.experimental.event_timeout,
        ),
        stop.clone(),
    ));
    let feed_hub = hub.clone();
    let feed_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = feed_stop.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(DataStoreChange::BundleChanged { .. }) => feed_hub.bundles_changed(),
                    Ok(DataStoreChange::RevocationsChanged) => feed_hub.revocations_changed(),
                    Ok(_) => feed_hub.entries_changed(),
                    // Lagged: something changed that we did not see in detail.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        feed_hub.entries_changed();
                        feed_hub.bundles_changed();
                        feed_hub.revocations_changed();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });

    // TCP listener (mTLS) with the agent-facing services.
    let addr: SocketAddr = format!(
        "{}:{}",
        config.bind_address.trim_matches(['[', ']']),
        config.bind_port
    )
    .parse()
    .map_err(|e| ServerError::Listen(format!("invalid bind address: {e}")))?;
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Listen(format!("cannot listen on {addr}: {e}")))?;
    // Admins of federated trust domains are verified against their domain's bundle.
    let admin_domains = peer_trust::foreign_admin_domains(&config.trust_domain, &config.admin_ids);
    peer_trust::load_bundles(&store, &trust, &admin_domains).await;
    tokio::spawn(peer_trust::follow_bundles(
        store.clone(),
        trust.clone(),
        admin_domains,
        stop.clone(),
    ));
    let verifier = SpiffeClientVerifier::new(trust.clone()).accepting(peer_trust::peer_filter(
        config.trust_domain.clone(),
        config.admin_ids.clone(),
    ));
    let tls = server_config_with_verifier(server_svid.clone(), verifier)
        .map_err(|e| ServerError::Listen(format!("TLS configuration: {e}")))?;
    let tcp_server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_connection_age(MAX_CONNECTION_AGE)
        .layer(AuthzLayer::new(facts.clone()).serving(&tcp_services()))
        .add_service(AgentServer::new(AgentService::with_node_attestors(
            ctx.clone(),
            node_attestors.clone(),
        )))
        .add_service(BundleServer::new(BundleService::new(ctx.clone())))
        .add_service(EntryServer::new(EntryService::new(ctx.clone())))
        .add_service(SvidServer::new(SvidService::new(ctx.clone())))
        .add_service(TrustDomainServer::new(TrustDomainService::new(
            ctx.clone(),
            refresher.clone(),
        )))
        .add_service(LocalAuthorityServer::new(LocalAuthorityService::new(
            ctx.clone(),
            ca_changed.clone(),
        )))
        .add_service(NotifyServer::new(hub.clone()))
        .add_service(RevocationServer::new(RevocationService::new(
            ctx.clone(),
            crls.clone(),
        )))
        .serve_with_incoming_shutdown(
            tls_incoming(tcp, Arc::new(tls)),
            stop.clone().cancelled_owned(),
        );

    // Admin socket: the same services plus health, for local callers.
    let uds = spire_common::uds::bind(&config.socket_path, 0o750, 0o770).map_err(|e| {
        ServerError::Listen(format!(
            "cannot listen on {}: {e}",
            config.socket_path.display()
        ))
    })?;
    let uds_server = Server::builder()
        .layer(AuthzLayer::new(facts))
        .add_service(AgentServer::new(AgentService::with_node_attestors(
            ctx.clone(),
            node_attestors.clone(),
        )))
        .add_service(BundleServer::new(BundleService::new(ctx.clone())))
        .add_service(EntryServer::new(EntryService::new(ctx.clone())))
        .add_service(SvidServer::new(SvidService::new(ctx.clone())))
        .add_service(TrustDomainServer::new(TrustDomainService::new(
            ctx.clone(),
            refresher.clone(),
        )))
        .add_service(LocalAuthorityServer::new(LocalAuthorityService::new(
            ctx.clone(),
            ca_changed.clone(),
        )))
        .add_service(spire_proto::health::health_server::HealthServer::new(
            crate::api::health::HealthService::new(ctx.clone()),
        ))
        .add_service(RevocationServer::new(RevocationService::new(
            ctx.clone(),
            crls.clone(),
        )))
        .add_service(LoggerServer::new(LoggerService::new(log, config.log_level)))
        .add_service(DebugServer::new(DebugService::new(
            ctx.clone(),
            started,
            svid_chain.clone(),
        )))
        .serve_with_incoming_shutdown(UnixListenerStream::new(uds), stop.clone().cancelled_owned());

    tracing::info!(
        address = %addr,
        socket_path = %config.socket_path.display(),
        trust_domain = %config.trust_domain,
        "Starting Server APIs"
    );
    let tcp_task = tokio::spawn(tcp_server);
    let uds_task = tokio::spawn(uds_server);

    // CA rotation and server SVID renewal.
    let mut ticker = tokio::time::interval(ROTATION_INTERVAL);
    ticker.tick().await;
    let mut prune_ticker = tokio::time::interval(crate::ca::publish::PRUNE_BUNDLE_INTERVAL);
    prune_ticker.tick().await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = ca_changed.notified() => {
                match publish_bundle(&store, &ca, &trust).await {
                    Ok(roots) => tainted_roots = roots,
                    Err(e) => tracing::error!(error = %e, "Failed to publish the bundle"),
                }
                // A taint must not wait for the next tick to renew the server SVID.
                let now = SystemTime::now();
                if crate::ca::publish::signed_by_any(&tainted_roots, &current_svid, now) {
                    ticker.reset_immediately();
                }
            }
            _ = prune_ticker.tick() => {
                let td = config.trust_domain.name();
                match crate::ca::publish::prune(&store, td, SystemTime::now()).await {
                    Ok(true) => match publish_bundle(&store, &ca, &trust).await {
                        Ok(roots) => tainted_roots = roots,
                        Err(e) => tracing::error!(error = %e, "Failed to publish the bundle"),
                    },
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "Could not prune the bundle"),
                }
            }
            _ = ticker.tick() => {
                match ca.rotate() {
                    Ok(report) if report.bundle_changed() || !report.events.is_empty() => {
                        match publish_bundle(&store, &ca, &trust).await {
                            Ok(roots) => tainted_roots = roots,
                            Err(e) => tracing::error!(error = %e, "Failed to publish the bundle"),
                        }
                        if let Err(e) = crate::ca::journal::save(&store, &ca).await {
                            tracing::error!(error = %e, "Unable to write the CA journal");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "CA rotation failed"),
                }
                let tainted = crate::ca::publish::signed_by_any(
                    &tainted_roots,
                    &current_svid,
                    SystemTime::now(),
                );
                if tainted {
                    tracing::info!("Server SVID was signed by a tainted authority; renewing it");
                }
                if tainted || needs_renewal(&current_svid, SystemTime::now()) {
                    match ca.new_server_x509_svid() {
                        Ok(svid) => {
                            if let Err(e) = server_svid.set_svid(&svid) {
                                tracing::error!(error = %e, "New server SVID unusable for TLS");
                            } else {
                                current_svid = svid;
                                *svid_chain
                                    .write()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                    current_svid.cert_chain().to_vec();
                                tracing::debug!("Rotated the server X509-SVID");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "Failed to renew the server SVID"),
                    }
                }
            }
        }
    }
    tracing::info!("Stopping Server APIs");
    stop.cancel();
    let graceful = async {
        let _ = tcp_task.await;
        let _ = uds_task.await;
    };
    if tokio::time::timeout(Duration::from_secs(10), graceful)
        .await
        .is_err()
    {
        tracing::warn!("Graceful stop timed out");
    }
    store.close().await;
    let _ = std::fs::remove_file(&config.socket_path);
    tracing::info!("Server stopped gracefully");
    Ok(())
}

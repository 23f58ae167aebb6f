//! The Debug and Logger services of the agent's admin socket (agent.md §3.2), over a
//! real Unix socket next to the Delegated Identity API.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BoxError, Ca, TestResult, add_entry, cache_for, entry, uid_selector};
use spire_agent::endpoints::admin::{DebugService, DebugSources, LoggerService};
use spire_agent::endpoints::delegated::{DelegatedIdentityHandler, serve_admin_with};
use spire_agent::manager::{JwtSvidCache, MintedJwtSvid};
use spire_agent::workload::{UnixAttestor, UnixAttestorConfig, WorkloadAttestors};
use spire_common::logging::Level;
use spire_proto::spire::agent::debug::v1::GetInfoRequest;
use spire_proto::spire::agent::debug::v1::debug_client::DebugClient;
use spire_proto::spire::api::agent::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::agent::logger::v1::{
    GetLoggerRequest, ResetLogLevelRequest, SetLogLevelRequest,
};
use spire_proto::spire::api::types::{LogLevel, Spiffeid};
use tokio::net::UnixStream;
use x509_parser::prelude::{FromDer, X509Certificate};

#[tokio::test]
async fn get_info_and_log_levels_on_the_admin_socket() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "with-svid", "/w1", vec![uid_selector()])?,
        Some(ca.svid("/w1")?),
    )?;
    add_entry(
        &cache,
        entry(&ca, "pending", "/w2", vec![uid_selector()])?,
        None,
    )?;
    let jwt_cache = Arc::new(JwtSvidCache::new(10));
    jwt_cache.insert(
        &["aud".to_owned()],
        MintedJwtSvid {
            token: "t".to_owned(),
            spiffe_id: ca.id("/w1")?,
            issued_at: 1_700_000_000,
            expires_at: 4_000_000_000,
        },
    );
    let agent_svid = ca.svid("/spire/agent/join_token/abc")?;
    let chain: Vec<Vec<u8>> = agent_svid.cert_chain().iter().map(|c| c.to_vec()).collect();
    let (_, leaf) = X509Certificate::from_der(&chain[0]).map_err(|e| e.to_string())?;
    let not_after = leaf.validity().not_after.timestamp();

    let debug = DebugService::new(DebugSources {
        started: Instant::now(),
        svid_chain: Arc::new(move || chain.clone()),
        last_sync_success: Arc::new(|| 1_750_000_000),
        cache: Arc::clone(&cache),
        jwt_cache,
    });
    let logger = LoggerService::new(None, Level::Info);
    let attestors = WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
        UnixAttestorConfig::default(),
    ))]);
    let handler = DelegatedIdentityHandler::new(cache, Arc::new(attestors), Vec::new());
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("private").join("admin.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = socket.clone();
    let server = tokio::spawn(async move {
        serve_admin_with(&path, handler, Some(debug), Some(logger), async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&socket).await.is_err() {
        if Instant::now() > deadline || server.is_finished() {
            return Err("the admin API did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let channel = spire_common::uds::channel(&socket)?;

    let info = DebugClient::new(channel.clone())
        .get_info(GetInfoRequest {})
        .await?
        .into_inner();
    assert_eq!(info.svid_chain.len(), 1);
    assert_eq!(
        info.svid_chain[0].id,
        Some(Spiffeid {
            trust_domain: "example.org".to_owned(),
            path: "/spire/agent/join_token/abc".to_owned(),
        })
    );
    assert_eq!(info.svid_chain[0].expires_at, not_after);
    assert_eq!(info.svid_chain[0].subject, "CN=rcgen self signed cert");
    assert!(info.uptime >= 0);
    assert_eq!(info.last_sync_success, 1_750_000_000);
    assert_eq!(info.cached_x509_svids_count, 1);
    assert_eq!(info.cached_jwt_svids_count, 1);
    assert_eq!(info.cached_svidstore_x509_svids_count, 0);

    let mut logger = LoggerClient::new(channel);
    let got = logger.get_logger(GetLoggerRequest {}).await?.into_inner();
    assert_eq!(
        (got.current_level, got.launch_level),
        (LogLevel::Info as i32, LogLevel::Info as i32)
    );
    let set = logger
        .set_log_level(SetLogLevelRequest {
            new_level: LogLevel::Debug as i32,
        })
        .await?
        .into_inner();
    assert_eq!(
        (set.current_level, set.launch_level),
        (LogLevel::Debug as i32, LogLevel::Info as i32)
    );
    let status = logger
        .set_log_level(SetLogLevelRequest { new_level: 0 })
        .await
        .err()
        .ok_or("UNSPECIFIED was accepted")?;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "newLevel value cannot be LogLevel_UNSPECIFIED"
    );
    let reset = logger
        .reset_log_level(ResetLogLevelRequest {})
        .await?
        .into_inner();
    assert_eq!(reset.current_level, LogLevel::Info as i32);

    let _ = stop.send(());
    server.await??;
    Ok::<(), BoxError>(())
}

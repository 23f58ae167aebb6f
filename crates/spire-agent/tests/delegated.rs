//! The Delegated Identity API end to end over a real admin Unix socket: our cache and
//! `delegated::serve_admin`, the real `unix` attestor attesting this test process (the
//! delegate), and our generated tonic client.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use spiffe_core::{SpiffeId, X509Svid};
use spire_agent::endpoints::EndpointsError;
use spire_agent::endpoints::delegated::{
    BAD_SELECTORS, DelegatedIdentityHandler, NOT_A_DELEGATE, SELECTORS_OR_PID, serve_admin,
};
use spire_agent::manager::{Cache, JwtSvidMinter, MintedJwtSvid};
use spire_agent::workload::{UnixAttestor, UnixAttestorConfig, WorkloadAttestors};
use spire_proto::spire::api::agent::delegatedidentity::v1::delegated_identity_client::DelegatedIdentityClient;
use spire_proto::spire::api::agent::delegatedidentity::v1::{
    FetchJwtsviDsRequest, SubscribeToJwtBundlesRequest, SubscribeToX509BundlesRequest,
    SubscribeToX509sviDsRequest, SubscribeToX509sviDsResponse,
};
use spire_proto::spire::api::types;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

mod common;

use common::*;

/// The admin endpoint on a temporary socket.
struct Admin {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), EndpointsError>>,
}

impl Admin {
    /// Serves `cache` to the `delegates`, attesting with the `unix` attestor.
    async fn start(cache: Arc<Cache>, delegates: Vec<SpiffeId>) -> Result<Self, BoxError> {
        Self::start_with(cache, delegates, None).await
    }

    async fn start_with(
        cache: Arc<Cache>,
        delegates: Vec<SpiffeId>,
        minter: Option<Arc<dyn JwtSvidMinter>>,
    ) -> Result<Self, BoxError> {
        let attestors = WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
            UnixAttestorConfig::default(),
        ))]);
        let mut handler = DelegatedIdentityHandler::new(cache, Arc::new(attestors), delegates);
        if let Some(minter) = minter {
            handler = handler.with_jwt_minter(minter);
        }
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("private").join("admin.sock");
        let (stop, stopped) = oneshot::channel::<()>();
        let path = socket.clone();
        let task = tokio::spawn(async move {
            serve_admin(&path, handler, async {
                let _ = stopped.await;
            })
            .await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).await.is_err() {
            if Instant::now() > deadline || task.is_finished() {
                return Err("the admin API did not start listening".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Admin {
            _dir: dir,
            socket,
            stop: Some(stop),
            task,
        })
    }

    async fn client(&self) -> Result<DelegatedIdentityClient<Channel>, BoxError> {
        let path = self.socket.clone();
        let channel = Endpoint::try_from("http://[::]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await?;
        Ok(DelegatedIdentityClient::new(channel))
    }

    async fn shutdown(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task).await???;
        Ok(())
    }
}

fn proto_selector(value: &str) -> types::Selector {
    types::Selector {
        r#type: "unix".to_owned(),
        value: value.to_owned(),
    }
}

/// The (SPIFFE ID, leaf DER) pairs of a response, checking each key against its chain.
fn ids_and_leaves(
    response: &SubscribeToX509sviDsResponse,
) -> Result<Vec<(String, Vec<u8>)>, BoxError> {
    response
        .x509_svids
        .iter()
        .map(|s| {
            let svid = s.x509_svid.as_ref().ok_or("no x509_svid")?;
            let id = svid.id.as_ref().ok_or("no id")?;
            let chain: Vec<u8> = svid.cert_chain.concat();
            X509Svid::parse_der(&chain, &s.x509_svid_key)?;
            let leaf = svid.cert_chain.first().ok_or("empty chain")?.clone();
            Ok((format!("spiffe://{}{}", id.trust_domain, id.path), leaf))
        })
        .collect()
}

fn assert_status(status: &Status, code: Code, message: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message);
}

/// A cache where this process (by uid) is `/delegate`, and a workload with
/// `unix:uid:4242` is `/target`.
fn delegate_and_target(ca: &Ca) -> Result<Arc<Cache>, BoxError> {
    let cache = cache_for(ca)?;
    let delegate = entry(ca, "entry-delegate", "/delegate", vec![uid_selector()])?;
    add_entry(&cache, delegate, Some(ca.svid("/delegate")?))?;
    let target = entry(ca, "entry-target", "/target", vec![selector("uid:4242")])?;
    add_entry(&cache, target, Some(ca.svid("/target")?))?;
    Ok(cache)
}

#[tokio::test]
async fn delegate_subscribes_by_selectors_and_gets_rotations() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = delegate_and_target(&ca)?;
    let admin = Admin::start(Arc::clone(&cache), vec![ca.id("/delegate")?]).await?;
    let mut client = admin.client().await?;

    let mut stream = client
        .subscribe_to_x509svi_ds(SubscribeToX509sviDsRequest {
            selectors: vec![proto_selector("uid:4242")],
            pid: 0,
        })
        .await?
        .into_inner();
    let first = next_within(&mut stream, PUSH_DEADLINE).await??;
    let got = ids_and_leaves(&first)?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spiffe://example.org/target");
    assert!(first.federates_with.is_empty());
    let svid = first.x509_svids[0].x509_svid.as_ref().ok_or("no svid")?;
    assert!(svid.expires_at > 0);

    // Rotation of the target's SVID is pushed.
    let rotated = ca.svid("/target")?;
    cache.set_svid("entry-target", rotated.clone())?;
    let second = next_within(&mut stream, PUSH_DEADLINE).await??;
    let got = ids_and_leaves(&second)?;
    assert_eq!(
        got,
        vec![(
            "spiffe://example.org/target".to_owned(),
            rotated.leaf().to_vec()
        )]
    );

    // A change of an unrelated entry sends nothing.
    cache.set_svid("entry-delegate", ca.svid("/delegate")?)?;
    assert_quiet(&mut stream).await?;

    drop(stream);
    admin.shutdown().await
}

#[tokio::test]
async fn delegate_subscribes_for_its_own_pid() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = delegate_and_target(&ca)?;
    let admin = Admin::start(Arc::clone(&cache), vec![ca.id("/delegate")?]).await?;
    let mut client = admin.client().await?;

    let pid = i32::try_from(std::process::id())?;
    let mut stream = client
        .subscribe_to_x509svi_ds(SubscribeToX509sviDsRequest {
            selectors: Vec::new(),
            pid,
        })
        .await?
        .into_inner();
    let first = next_within(&mut stream, PUSH_DEADLINE).await??;
    let got = ids_and_leaves(&first)?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spiffe://example.org/delegate");

    let rotated = ca.svid("/delegate")?;
    cache.set_svid("entry-delegate", rotated.clone())?;
    let second = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(
        ids_and_leaves(&second)?,
        vec![(
            "spiffe://example.org/delegate".to_owned(),
            rotated.leaf().to_vec()
        )]
    );
    drop(stream);
    admin.shutdown().await
}

#[tokio::test]
async fn unauthorized_callers_are_permission_denied() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = delegate_and_target(&ca)?;
    // This process is /delegate, but only /someone-else is authorized.
    let admin = Admin::start(Arc::clone(&cache), vec![ca.id("/someone-else")?]).await?;
    let mut client = admin.client().await?;
    let request = SubscribeToX509sviDsRequest {
        selectors: vec![proto_selector("uid:4242")],
        pid: 0,
    };
    let status = client
        .subscribe_to_x509svi_ds(request.clone())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_status(&status, Code::PermissionDenied, NOT_A_DELEGATE);
    let status = client
        .subscribe_to_x509_bundles(SubscribeToX509BundlesRequest {})
        .await
        .err()
        .ok_or("expected an error")?;
    assert_status(&status, Code::PermissionDenied, NOT_A_DELEGATE);
    admin.shutdown().await?;

    // Without any identity at all.
    let empty = cache_for(&ca)?;
    let admin = Admin::start(empty, vec![ca.id("/delegate")?]).await?;
    let status = admin
        .client()
        .await?
        .subscribe_to_x509svi_ds(request)
        .await
        .err()
        .ok_or("expected an error")?;
    assert_status(&status, Code::PermissionDenied, "no identity issued");
    admin.shutdown().await
}

#[tokio::test]
async fn target_must_be_named_by_selectors_or_pid() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = delegate_and_target(&ca)?;
    let admin = Admin::start(cache, vec![ca.id("/delegate")?]).await?;
    let mut client = admin.client().await?;
    for (selectors, pid) in [(Vec::new(), 0), (vec![proto_selector("uid:4242")], 1)] {
        let status = client
            .subscribe_to_x509svi_ds(SubscribeToX509sviDsRequest { selectors, pid })
            .await
            .err()
            .ok_or("expected an error")?;
        assert_status(&status, Code::InvalidArgument, SELECTORS_OR_PID);
    }
    for bad in [
        types::Selector {
            r#type: String::new(),
            value: "x".to_owned(),
        },
        types::Selector {
            r#type: "unix:uid".to_owned(),
            value: "1".to_owned(),
        },
        types::Selector {
            r#type: "unix".to_owned(),
            value: String::new(),
        },
    ] {
        let status = client
            .subscribe_to_x509svi_ds(SubscribeToX509sviDsRequest {
                selectors: vec![bad],
                pid: 0,
            })
            .await
            .err()
            .ok_or("expected an error")?;
        assert_status(&status, Code::InvalidArgument, BAD_SELECTORS);
    }
    admin.shutdown().await
}

#[tokio::test]
async fn bundle_streams_send_every_bundle_and_only_grow() -> TestResult {
    let ca = Ca::new("example.org")?;
    let other = Ca::new("other.org")?;
    let cache = delegate_and_target(&ca)?;
    let admin = Admin::start(Arc::clone(&cache), vec![ca.id("/delegate")?]).await?;
    let mut client = admin.client().await?;

    let mut x509 = client
        .subscribe_to_x509_bundles(SubscribeToX509BundlesRequest {})
        .await?
        .into_inner();
    let mut jwt = client
        .subscribe_to_jwt_bundles(SubscribeToJwtBundlesRequest {})
        .await?
        .into_inner();
    let first = next_within(&mut x509, PUSH_DEADLINE).await??;
    assert_eq!(first.ca_certificates.len(), 1);
    assert_eq!(
        first.ca_certificates.get("spiffe://example.org"),
        Some(&ca.root_der())
    );
    let first_jwt = next_within(&mut jwt, PUSH_DEADLINE).await??;
    let jwks: serde_json::Value = serde_json::from_slice(
        first_jwt
            .bundles
            .get("spiffe://example.org")
            .ok_or("no own JWT bundle")?,
    )?;
    assert!(jwks.get("keys").is_some());

    // A federated bundle (no entry federates with it) is still served.
    cache.set_federated_bundles([other.bundle()?]);
    let second = next_within(&mut x509, PUSH_DEADLINE).await??;
    assert_eq!(second.ca_certificates.len(), 2);
    assert_eq!(
        second.ca_certificates.get("spiffe://other.org"),
        Some(&other.root_der())
    );
    let second_jwt = next_within(&mut jwt, PUSH_DEADLINE).await??;
    assert_eq!(second_jwt.bundles.len(), 2);

    // Removing it does not shrink the map: nothing is sent.
    cache.set_federated_bundles([]);
    assert_quiet(&mut x509).await?;
    drop((x509, jwt));
    admin.shutdown().await
}

/// Mints unsigned tokens, recording nothing secret.
#[derive(Debug)]
struct FakeMinter;

#[tonic::async_trait]
impl JwtSvidMinter for FakeMinter {
    async fn new_jwt_svid(
        &self,
        entry_id: &str,
        _audience: &[String],
    ) -> Result<MintedJwtSvid, String> {
        let path = entry_id.strip_prefix("entry-").unwrap_or(entry_id);
        let spiffe_id =
            SpiffeId::parse(&format!("spiffe://example.org/{path}")).map_err(|e| e.to_string())?;
        Ok(MintedJwtSvid {
            token: format!("token-for-{path}"),
            spiffe_id,
            issued_at: 1_700_000_000,
            expires_at: 4_000_000_000,
        })
    }
}

#[tokio::test]
async fn fetch_jwt_svids_for_selectors() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = delegate_and_target(&ca)?;
    let minter: Arc<dyn JwtSvidMinter> = Arc::new(FakeMinter);
    let admin = Admin::start_with(cache, vec![ca.id("/delegate")?], Some(minter)).await?;
    let mut client = admin.client().await?;

    let status = client
        .fetch_jwtsvi_ds(FetchJwtsviDsRequest {
            audience: Vec::new(),
            selectors: vec![proto_selector("uid:4242")],
            pid: 0,
        })
        .await
        .err()
        .ok_or("expected an error")?;
    assert_status(&status, Code::InvalidArgument, "audience must be specified");

    let response = client
        .fetch_jwtsvi_ds(FetchJwtsviDsRequest {
            audience: vec!["aud".to_owned()],
            selectors: vec![proto_selector("uid:4242")],
            pid: 0,
        })
        .await?
        .into_inner();
    assert_eq!(response.svids.len(), 1);
    let svid = &response.svids[0];
    assert_eq!(svid.token, "token-for-target");
    assert_eq!(
        svid.id,
        Some(types::Spiffeid {
            trust_domain: "example.org".to_owned(),
            path: "/target".to_owned(),
        })
    );
    assert_eq!(svid.issued_at, 1_700_000_000);
    assert_eq!(svid.expires_at, 4_000_000_000);

    let status = client
        .fetch_jwtsvi_ds(FetchJwtsviDsRequest {
            audience: vec!["aud".to_owned()],
            selectors: vec![proto_selector("uid:1")],
            pid: 0,
        })
        .await
        .err()
        .ok_or("expected an error")?;
    assert_status(&status, Code::PermissionDenied, "no identity issued");
    admin.shutdown().await
}

#[tokio::test]
async fn admin_socket_has_mode_0770() -> TestResult {
    let ca = Ca::new("example.org")?;
    let admin = Admin::start(cache_for(&ca)?, Vec::new()).await?;
    let meta = std::fs::metadata(&admin.socket)?;
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o770);
    admin.shutdown().await
}

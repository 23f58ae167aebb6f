//! Helpers shared by the agent's integration tests: a test CA per trust domain (rcgen),
//! cache entries, and a running Workload API (and SDS) endpoint on a temporary socket.

#![allow(dead_code, missing_docs)]

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use spiffe_core::jwt::sign;
use spiffe_core::{
    JwtAlgorithm, JwtBundle, JwtSigningKey, JwtSvidClaims, SpiffeBundle, SpiffeId, TrustDomain,
    X509Bundle, X509Svid,
};
use spire_agent::endpoints::{self, EndpointsError, WorkloadApiConfig};
use spire_agent::manager::{Cache, CachedEntry};
use spire_agent::workload::{Selector, UnixAttestor, UnixAttestorConfig, WorkloadAttestors};
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use time::OffsetDateTime;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::{Channel, Endpoint, Uri};

pub type TestResult = Result<(), Box<dyn Error + Send + Sync>>;
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How long a pushed update may take before the test fails ("promptly").
pub const PUSH_DEADLINE: Duration = Duration::from_secs(2);
/// How long to watch a stream to conclude that nothing is sent.
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// PKI: a test CA per trust domain, SVIDs signed by it with rcgen.
// ---------------------------------------------------------------------------

pub struct Ca {
    /// The trust domain.
    pub td: TrustDomain,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(td: &str) -> Result<Self, BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names =
            vec![SanType::URI(Ia5String::try_from(format!("spiffe://{td}"))?)];
        Ok(Ca {
            td: TrustDomain::new(td)?,
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// A CRL signed by this CA revoking the given serials (big-endian bytes).
    pub fn crl(&self, serials: &[Vec<u8>]) -> Result<Vec<u8>, BoxError> {
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::hours(1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(s),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.der().to_vec())
    }

    pub fn root_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    pub fn bundle(&self) -> Result<SpiffeBundle, BoxError> {
        let x509 = X509Bundle::parse_der(self.td.clone(), &self.root_der())?;
        SpiffeBundle::from_parts(x509, JwtBundle::new(self.td.clone()))
            .ok_or_else(|| "bundle parts disagree".into())
    }

    pub fn svid(&self, path: &str) -> Result<X509Svid, BoxError> {
        let now = OffsetDateTime::now_utc();
        self.svid_valid(
            path,
            now - time::Duration::minutes(1),
            now + time::Duration::hours(1),
        )
    }

    pub fn svid_valid(
        &self,
        path: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<X509Svid, BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(format!(
            "spiffe://{}{path}",
            self.td.name()
        ))?)];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(X509Svid::parse_der(cert.der(), &key.serialize_der())?)
    }

    pub fn id(&self, path: &str) -> Result<SpiffeId, BoxError> {
        Ok(SpiffeId::new(&self.td, path)?)
    }
}

// ---------------------------------------------------------------------------
// JWT: bundles with one JWT authority and tokens signed by it.
// ---------------------------------------------------------------------------

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A trust domain's bundle with one JWT authority, and its signing key.
pub fn jwt_bundle(ca: &Ca, kid: &str) -> Result<(SpiffeBundle, JwtSigningKey), BoxError> {
    let key = JwtSigningKey::generate(JwtAlgorithm::ES256)?;
    let mut jwt = JwtBundle::new(ca.td.clone());
    jwt.add_authority(kid, key.public_key().clone())?;
    let x509 = X509Bundle::parse_der(ca.td.clone(), &ca.root_der())?;
    let bundle = SpiffeBundle::from_parts(x509, jwt).ok_or("bundle parts disagree")?;
    Ok((bundle, key))
}

/// A token for `sub` and audience `api`, valid for ten minutes, with `iss`, `email` and
/// `groups` besides the registered claims.
pub fn token(key: &JwtSigningKey, kid: &str, sub: &str) -> Result<String, BoxError> {
    token_times(key, kid, sub, now(), now() + 600)
}

/// Like [`token`], issued at `iat` and expiring at `exp` (Unix seconds).
pub fn token_times(
    key: &JwtSigningKey,
    kid: &str,
    sub: &str,
    iat: i64,
    exp: i64,
) -> Result<String, BoxError> {
    let mut claims = JwtSvidClaims::new(SpiffeId::parse(sub)?, vec!["api".to_owned()], exp, iat);
    claims
        .extra
        .insert("iss".to_owned(), "https://issuer.example".into());
    claims
        .extra
        .insert("email".to_owned(), "svc@fed.example".into());
    claims
        .extra
        .insert("groups".to_owned(), serde_json::json!(["a", "b"]));
    Ok(sign(key, kid, &claims)?)
}

pub fn selector(value: &str) -> Selector {
    Selector {
        r#type: "unix".to_owned(),
        value: value.to_owned(),
    }
}

/// The effective UID of this process, as the `unix` attestor reports it.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

pub fn uid_selector() -> Selector {
    selector(&format!("uid:{}", my_uid()))
}

pub fn entry(
    ca: &Ca,
    id: &str,
    path: &str,
    selectors: Vec<Selector>,
) -> Result<CachedEntry, BoxError> {
    Ok(CachedEntry {
        entry_id: id.to_owned(),
        spiffe_id: ca.id(path)?,
        parent_id: ca.id("/spire/agent/join_token/test")?,
        selectors,
        federates_with: Vec::new(),
        hint: String::new(),
        revision_number: 1,
        created_at: 1_700_000_000,
        svid: None,
    })
}

/// A cache for `ca`'s trust domain holding its bundle.
pub fn cache_for(ca: &Ca) -> Result<Arc<Cache>, BoxError> {
    let cache = Arc::new(Cache::new(ca.td.clone()));
    cache.set_bundle(ca.bundle()?)?;
    Ok(cache)
}

/// Adds `entry` (keeping the others) and, if `svid` is set, its SVID.
pub fn add_entry(cache: &Cache, mut entry: CachedEntry, svid: Option<X509Svid>) -> TestResult {
    let mut entries: Vec<CachedEntry> = cache.entries().iter().map(|e| (**e).clone()).collect();
    entries.retain(|e| e.entry_id != entry.entry_id);
    let id = entry.entry_id.clone();
    entry.svid = None;
    entries.push(entry);
    cache.update_entries(entries);
    if let Some(svid) = svid {
        cache.set_svid(&id, svid)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// A running Workload API on a temporary socket.
// ---------------------------------------------------------------------------

pub struct Agent {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), EndpointsError>>,
}

impl Agent {
    pub async fn start(cache: Arc<Cache>) -> Result<Self, BoxError> {
        let attestors = WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
            UnixAttestorConfig::default(),
        ))]);
        Self::start_with(cache, attestors, |dir| dir.join("public").join("api.sock")).await
    }

    pub async fn start_with(
        cache: Arc<Cache>,
        attestors: WorkloadAttestors,
        socket_in: impl FnOnce(&Path) -> PathBuf,
    ) -> Result<Self, BoxError> {
        Self::start_with_config(cache, attestors, |dir| WorkloadApiConfig {
            socket_path: socket_in(dir),
            ..WorkloadApiConfig::default()
        })
        .await
    }

    /// Starts the endpoint with the configuration `config_in` gives for a fresh
    /// temporary directory.
    pub async fn start_with_config(
        cache: Arc<Cache>,
        attestors: WorkloadAttestors,
        config_in: impl FnOnce(&Path) -> WorkloadApiConfig,
    ) -> Result<Self, BoxError> {
        let dir = tempfile::tempdir()?;
        let config = config_in(dir.path());
        let socket = config.socket_path.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            endpoints::serve_with_config(&config, cache, Arc::new(attestors), async {
                let _ = stopped.await;
            })
            .await
        });
        // Wait until the socket accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).await.is_err() {
            if Instant::now() > deadline || task.is_finished() {
                return Err("the Workload API did not start listening".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Agent {
            _dir: dir,
            socket,
            stop: Some(stop),
            task,
        })
    }

    pub fn address(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub async fn spiffe_client(&self) -> Result<spiffe::WorkloadApiClient, BoxError> {
        Ok(spiffe::WorkloadApiClient::connect_to(self.address()).await?)
    }

    /// Our generated client, which sends no security header unless told to.
    pub async fn raw_client(&self) -> Result<SpiffeWorkloadApiClient<Channel>, BoxError> {
        Ok(SpiffeWorkloadApiClient::new(self.channel().await?))
    }

    /// A gRPC channel to the socket.
    pub async fn channel(&self) -> Result<Channel, BoxError> {
        let path = self.socket.clone();
        let channel = Endpoint::try_from("http://[::]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await?;
        Ok(channel)
    }

    pub async fn shutdown(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task).await???;
        Ok(())
    }
}

pub fn with_header<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

pub async fn next_within<S, T>(stream: &mut S, deadline: Duration) -> Result<T, BoxError>
where
    S: Stream<Item = T> + Unpin,
{
    tokio::time::timeout(deadline, stream.next())
        .await
        .map_err(|_| "no message in time")?
        .ok_or_else(|| "stream ended".into())
}

pub async fn assert_quiet<S, T>(stream: &mut S) -> TestResult
where
    S: Stream<Item = T> + Unpin,
{
    if tokio::time::timeout(QUIET_PERIOD, stream.next())
        .await
        .is_ok()
    {
        return Err("unexpected message on the stream".into());
    }
    Ok(())
}

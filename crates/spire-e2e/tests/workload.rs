//! What workloads see from a running server and agent: identities fetched by the
//! independent `spiffe` crate, mTLS between two workloads with their SVIDs, new entries
//! pushed down open streams, and rotation before expiry.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use spiffe_core::{BundleSet, SpiffeBundle, SpiffeId, TrustDomain, X509Bundle, X509Svid};
use spire_common::tls::{SpiffeClientVerifier, SpiffeServerVerifier, SvidResolver, TrustStore};
use spire_e2e::Quickstart;
use spire_e2e::workload::{next_message, open_x509_stream};
use spire_proto::workload::X509svidResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";

/// A server and an attested agent; returns the agent process and its socket.
fn server_and_agent(extra_server: &str) -> (Quickstart, spire_e2e::Process, std::path::PathBuf) {
    let qs = Quickstart::start(extra_server);
    let (agent, socket) = qs.start_attested_agent(AGENT_ID);
    (qs, agent, socket)
}

fn create_entry(qs: &Quickstart, path: &str, extra: &[&str]) {
    qs.create_uid_entry(AGENT_ID, &format!("spiffe://example.org{path}"), extra);
}

fn ids(response: &X509svidResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.svids.iter().map(|s| s.spiffe_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn spiffe_crate_fetches_and_workloads_do_mtls() -> TestResult {
    let (qs, _agent, socket) = server_and_agent("");
    create_entry(&qs, "/web", &[]);
    create_entry(&qs, "/db", &[]);

    // The independent spiffe crate fetches both identities and the bundle.
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", socket.display())).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let context = loop {
        match client.fetch_x509_context().await {
            Ok(context) if context.svids().len() == 2 => break context,
            _ if Instant::now() > deadline => return Err("no two SVIDs in time".into()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let td = TrustDomain::new("example.org")?;
    let roots: Vec<CertificateDer<'static>> = context
        .bundle_set()
        .get(&spiffe::TrustDomain::new("example.org")?)
        .ok_or("no bundle for example.org")?
        .authorities()
        .iter()
        .map(|c| CertificateDer::from(c.as_ref().to_vec()))
        .collect();
    let mut bundle = SpiffeBundle::new(td.clone());
    *bundle.x509_bundle_mut() = X509Bundle::from_authorities(td, roots)?;
    let mut ours = Vec::new();
    for svid in context.svids() {
        let chain = svid
            .cert_chain()
            .iter()
            .map(|c| CertificateDer::from(c.as_ref().to_vec()))
            .collect();
        let key = PrivatePkcs8KeyDer::from(svid.private_key().as_bytes().to_vec());
        let svid = X509Svid::from_parts(chain, key)?;
        svid.verify(&bundle.x509_bundle().clone(), SystemTime::now())?;
        ours.push(svid);
    }
    let web = ours
        .iter()
        .find(|s| s.spiffe_id().path() == "/web")
        .ok_or("no web SVID")?
        .clone();
    let db = ours
        .iter()
        .find(|s| s.spiffe_id().path() == "/db")
        .ok_or("no db SVID")?
        .clone();
    let trust = Arc::new(TrustStore::new([bundle].into_iter().collect::<BundleSet>()));

    // web serves, db connects: mutual authentication succeeds both ways.
    let (addr, server) = mtls_server(web.clone(), trust.clone()).await?;
    let seen_by_server = server;
    mtls_client(addr, &db, web.spiffe_id(), trust.clone()).await?;
    let client_id = seen_by_server.await??;
    assert_eq!(client_id.as_deref(), Some("spiffe://example.org/db"));

    // A client with an SVID of another trust domain is refused.
    let stranger = foreign_svid()?;
    let (addr, server) = mtls_server(web.clone(), trust.clone()).await?;
    let attempt = mtls_client(addr, &stranger, web.spiffe_id(), trust.clone()).await;
    let refused = server.await?;
    assert!(
        attempt.is_err() || refused.is_err(),
        "an SVID of other.org must not be accepted"
    );
    assert!(refused.is_err(), "the server must refuse other.org's SVID");
    Ok(())
}

/// A one-connection mTLS server presenting `svid`; yields the client's SPIFFE ID.
async fn mtls_server(
    svid: X509Svid,
    trust: Arc<TrustStore>,
) -> Result<
    (
        std::net::SocketAddr,
        tokio::task::JoinHandle<Result<Option<String>, String>>,
    ),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let resolver = Arc::new(SvidResolver::new());
    resolver.set_svid(&svid)?;
    let config = rustls::ServerConfig::builder_with_provider(spire_common::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(SpiffeClientVerifier::new(trust).required()))
        .with_cert_resolver(resolver);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|leaf| spiffe_core::parse_leaf_spiffe_id(leaf.as_ref()).ok())
            .map(|id| id.to_string());
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        Ok(peer)
    });
    Ok((addr, task))
}

/// Connects presenting `svid`, accepting only `server_id`, and exchanges one message.
async fn mtls_client(
    addr: std::net::SocketAddr,
    svid: &X509Svid,
    server_id: &SpiffeId,
    trust: Arc<TrustStore>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let resolver = Arc::new(SvidResolver::new());
    resolver.set_svid(svid)?;
    let config = rustls::ClientConfig::builder_with_provider(spire_common::tls::provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
            trust,
            server_id.clone(),
        )))
        .with_client_cert_resolver(resolver);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    tls.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"pong");
    Ok(())
}

/// An SVID of `other.org`, issued by a CA the example.org bundle does not hold.
fn foreign_svid() -> Result<X509Svid, Box<dyn std::error::Error + Send + Sync>> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.subject_alt_names = vec![SanType::URI("spiffe://other.org".try_into()?)];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.subject_alt_names = vec![SanType::URI("spiffe://other.org/db".try_into()?)];
    let leaf = leaf.signed_by(&key, &issuer)?;
    drop(ca_cert);
    Ok(X509Svid::from_parts(
        vec![leaf.der().clone()],
        PrivatePkcs8KeyDer::from(key.serialize_der()),
    )?)
}

/// Opens a `FetchX509SVID` stream once the caller has an identity (the agent needs a
/// moment to sign the first SVID) and returns it with its first message.
async fn open_stream(
    socket: &std::path::Path,
) -> Result<(tonic::Streaming<X509svidResponse>, X509svidResponse), tonic::Status> {
    open_x509_stream(socket, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn new_entry_is_pushed_on_an_open_stream() -> TestResult {
    let (qs, _agent, socket) = server_and_agent("");
    create_entry(&qs, "/first", &[]);
    let (mut stream, first) = open_stream(&socket).await?;
    assert_eq!(ids(&first), vec!["spiffe://example.org/first"]);

    let created_at = Instant::now();
    create_entry(&qs, "/second", &[]);
    let update = next_message(&mut stream, Duration::from_secs(10), "new SVID", |r| {
        Ok(r.svids.len() == 2)
    })
    .await?;
    assert_eq!(
        ids(&update),
        vec!["spiffe://example.org/first", "spiffe://example.org/second"]
    );
    eprintln!(
        "entry create (CLI process included) to SVID on stream: {:?}",
        created_at.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_svid_rotates_before_expiry() -> TestResult {
    // Workload and agent SVIDs both live 20 s, so the agent also renews its own SVID
    // (RenewAgent) while the workload's rotates.
    let (qs, agent, socket) = server_and_agent("default_x509_svid_ttl = \"20s\"");
    create_entry(&qs, "/rotating", &[]);
    let (mut stream, first) = open_stream(&socket).await?;
    let first_svid = &first.svids[0];
    let first_leaf = X509Svid::parse_der(&first_svid.x509_svid, &first_svid.x509_svid_key)?;
    let expiry = leaf_not_after(first_leaf.leaf())?;
    let response = next_message(&mut stream, Duration::from_secs(25), "rotated SVID", |r| {
        Ok(r.svids[0].x509_svid != first_svid.x509_svid)
    })
    .await?;
    let received_at = SystemTime::now();
    assert!(
        received_at < expiry,
        "the rotated SVID arrived after the previous one expired"
    );
    let new = X509Svid::parse_der(
        &response.svids[0].x509_svid,
        &response.svids[0].x509_svid_key,
    )?;
    assert_eq!(new.spiffe_id(), first_leaf.spiffe_id());
    assert!(leaf_not_after(new.leaf())? > expiry);

    // The agent renewed its own SVID too (RenewAgent), and the server accepts it: a new
    // entry still reaches the workload afterwards.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !agent.log().contains("Agent SVID rotated") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        agent.log().contains("Agent SVID rotated"),
        "{}",
        spire_e2e::tail(&agent.log(), 30)
    );
    create_entry(&qs, "/after-renewal", &[]);
    let update = next_message(&mut stream, Duration::from_secs(10), "new SVID", |r| {
        Ok(r.svids.len() == 2)
    })
    .await;
    assert!(
        update.is_ok(),
        "sync after the agent renewal failed: {update:?}"
    );
    Ok(())
}

fn leaf_not_after(
    leaf: &CertificateDer<'_>,
) -> Result<SystemTime, Box<dyn std::error::Error + Send + Sync>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())?;
    Ok(SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(cert.validity().not_after.timestamp())?))
}

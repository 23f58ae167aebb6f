//! SPIFFE mutual TLS for the SPIRE server API: rustls configurations that authenticate
//! peers by X.509-SVID against a live, updatable trust store, and serve or present an
//! SVID that can be rotated without restarting listeners.
//!
//! Server side (server.md §3.1): the server presents its own SVID; client certificates are
//! requested but not required (agents attest before they have one); when presented, they
//! must chain to the bundle of the client's trust domain. Client side (agent.md §5.3): the
//! agent accepts only a server SVID for exactly `spiffe://<td>/spire/server`.
//!
//! TLS session resumption is disabled on both ends, so every connection runs full chain
//! validation, and ALPN is `h2` as gRPC requires.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DistinguishedName, Error as TlsError, ServerConfig, SignatureScheme};
use spiffe_core::{BundleSet, SpiffeBundle, SpiffeId, X509Svid, verify_chain};

/// The crypto provider used everywhere: aws-lc-rs (crates.md §1.1).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The handshake signature algorithms of [`provider`], which every certificate
/// verifier here checks signatures with.
pub fn signature_algorithms() -> &'static WebPkiSupportedAlgorithms {
    static ALGORITHMS: std::sync::OnceLock<WebPkiSupportedAlgorithms> = std::sync::OnceLock::new();
    ALGORITHMS.get_or_init(|| provider().signature_verification_algorithms)
}

#[doc(hidden)]
pub use rustls as __rustls;

/// Writes the handshake-signature half of a rustls certificate verifier
/// (`verify_tls12_signature`, `verify_tls13_signature`, `supported_verify_schemes`)
/// with [`signature_algorithms`]: the same in every verifier, whether it checks
/// server or client certificates. Use it inside an `impl ServerCertVerifier` or
/// `impl ClientCertVerifier` block.
#[macro_export]
macro_rules! handshake_signatures {
    () => {
        $crate::handshake_signatures!(@check verify_tls12_signature verify_tls13_signature);

        fn supported_verify_schemes(&self) -> Vec<$crate::tls::__rustls::SignatureScheme> {
            $crate::tls::signature_algorithms().supported_schemes()
        }
    };
    // Each verifier method has the name of the rustls function it calls.
    (@check $($method:ident)*) => {
        $(
            fn $method(
                &self,
                message: &[u8],
                cert: &$crate::tls::__rustls::pki_types::CertificateDer<'_>,
                dss: &$crate::tls::__rustls::DigitallySignedStruct,
            ) -> Result<
                $crate::tls::__rustls::client::danger::HandshakeSignatureValid,
                $crate::tls::__rustls::Error,
            > {
                $crate::tls::__rustls::crypto::$method(
                    message,
                    cert,
                    dss,
                    $crate::tls::signature_algorithms(),
                )
            }
        )*
    };
}

/// The bundles a TLS endpoint trusts, replaceable while connections are being made.
#[derive(Default)]
pub struct TrustStore {
    bundles: RwLock<BundleSet>,
}

impl TrustStore {
    /// A trust store holding the given bundles.
    pub fn new(bundles: BundleSet) -> Self {
        TrustStore {
            bundles: RwLock::new(bundles),
        }
    }

    /// Adds or replaces the bundle of its trust domain.
    pub fn set_bundle(&self, bundle: SpiffeBundle) {
        let mut guard = self.bundles.write().unwrap_or_else(|e| e.into_inner());
        guard.insert(bundle);
    }

    /// Removes the bundle of `trust_domain`, if held.
    pub fn remove_bundle(&self, trust_domain: &spiffe_core::TrustDomain) {
        let mut guard = self.bundles.write().unwrap_or_else(|e| e.into_inner());
        guard.remove(trust_domain);
    }

    /// A copy of the current bundles.
    pub fn bundles(&self) -> BundleSet {
        self.bundles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Verifies a peer chain (leaf first) as an X.509-SVID at `now` and returns its ID.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: SystemTime,
    ) -> Result<SpiffeId, spiffe_core::X509Error> {
        let guard = self.bundles.read().unwrap_or_else(|e| e.into_inner());
        verify_chain(chain, &*guard, now)
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore").finish_non_exhaustive()
    }
}

/// The SVID an endpoint presents, replaceable at rotation; serves both as a server
/// certificate resolver and a client certificate resolver.
pub struct SvidResolver {
    provider: Arc<CryptoProvider>,
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl SvidResolver {
    /// A resolver with no SVID yet (a client then presents no certificate).
    pub fn new() -> Self {
        SvidResolver {
            provider: provider(),
            current: RwLock::new(None),
        }
    }

    /// Presents `svid` from now on.
    pub fn set_svid(&self, svid: &X509Svid) -> Result<(), TlsError> {
        let key = PrivateKeyDer::Pkcs8(svid.private_key().clone_key());
        let signing_key = self.provider.key_provider.load_private_key(key)?;
        let certified = CertifiedKey::new(svid.cert_chain().to_vec(), signing_key);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(certified));
        Ok(())
    }

    /// Stops presenting any SVID.
    pub fn clear(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for SvidResolver {
    fn default() -> Self {
        SvidResolver::new()
    }
}

impl fmt::Debug for SvidResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidResolver")
            .field("has_svid", &self.get().is_some())
            .finish()
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.get()
    }

    fn has_certs(&self) -> bool {
        self.get().is_some()
    }
}

fn system_time(now: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(now.as_secs())
}

fn peer_chain<'a>(
    end_entity: &CertificateDer<'a>,
    intermediates: &[CertificateDer<'a>],
) -> Vec<CertificateDer<'a>> {
    let mut chain = Vec::with_capacity(intermediates.len() + 1);
    chain.push(end_entity.clone());
    chain.extend(intermediates.iter().cloned());
    chain
}

fn bad_certificate(e: spiffe_core::X509Error) -> TlsError {
    TlsError::General(format!("peer X509-SVID is not valid: {e}"))
}

/// Server-side verifier: requests a client SVID and verifies it against the trust store
/// when presented. The SPIRE server API does not require one (agents attest first);
/// workload-to-workload mTLS does ([`SpiffeClientVerifier::required`]).
pub struct SpiffeClientVerifier {
    trust: Arc<TrustStore>,
    mandatory: bool,
    accept: Option<PeerFilter>,
}

/// Decides which verified peer IDs may complete a handshake.
pub type PeerFilter = Arc<dyn Fn(&SpiffeId) -> bool + Send + Sync>;

impl fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .field("mandatory", &self.mandatory)
            .field("filtered", &self.accept.is_some())
            .finish_non_exhaustive()
    }
}

impl SpiffeClientVerifier {
    /// A verifier over `trust` that lets clients without a certificate through.
    pub fn new(trust: Arc<TrustStore>) -> Self {
        SpiffeClientVerifier {
            trust,
            mandatory: false,
            accept: None,
        }
    }

    /// The same, refusing verified peers whose ID `accept` rejects.
    pub fn accepting(mut self, accept: PeerFilter) -> Self {
        self.accept = Some(accept);
        self
    }

    /// The same, refusing clients that present no SVID.
    pub fn required(mut self) -> Self {
        self.mandatory = true;
        self
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let id = self
            .trust
            .verify(&peer_chain(end_entity, intermediates), system_time(now))
            .map_err(bad_certificate)?;
        if let Some(accept) = &self.accept
            && !accept(&id)
        {
            return Err(TlsError::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    crate::handshake_signatures!();
}

/// Client-side verifier: accepts only a server X509-SVID for exactly the expected ID.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    trust: Arc<TrustStore>,
    expected: SpiffeId,
}

impl SpiffeServerVerifier {
    /// A verifier that accepts only `expected`, authenticated against `trust`.
    pub fn new(trust: Arc<TrustStore>, expected: SpiffeId) -> Self {
        SpiffeServerVerifier { trust, expected }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let id = self
            .trust
            .verify(&peer_chain(end_entity, intermediates), system_time(now))
            .map_err(bad_certificate)?;
        if id != self.expected {
            return Err(TlsError::General(format!(
                "unexpected server ID {id}: expected {}",
                self.expected
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    crate::handshake_signatures!();
}

/// The server's TLS configuration: its rotating SVID, optional client SVIDs verified
/// against `trust`, ALPN `h2`, no session resumption.
pub fn server_config(
    svid: Arc<SvidResolver>,
    trust: Arc<TrustStore>,
) -> Result<ServerConfig, TlsError> {
    server_config_with_verifier(svid, SpiffeClientVerifier::new(trust))
}

/// [`server_config`] with a client verifier of the caller's making (e.g. one that only
/// accepts some peer IDs).
pub fn server_config_with_verifier(
    svid: Arc<SvidResolver>,
    verifier: SpiffeClientVerifier,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(svid);
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A client TLS configuration that authenticates the server as `expected_server` and
/// presents the client SVID held by `svid` (if any), with ALPN `h2` and no resumption.
pub fn client_config(
    trust: Arc<TrustStore>,
    expected_server: SpiffeId,
    svid: Arc<SvidResolver>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
            trust,
            expected_server,
        )))
        .with_client_cert_resolver(svid);
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

//! Fetching a foreign trust domain's SPIFFE bundle from its bundle endpoint
//! (SPIRE's `pkg/server/bundle/client`): one HTTPS GET, authenticated with the
//! relationship's profile.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use spiffe_core::{BundleSet, SpiffeBundle, SpiffeId, TrustDomain};
use spire_common::tls::{SpiffeServerVerifier, TrustStore, provider};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one fetch may take, connection and body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest bundle document accepted.
const MAX_BODY: usize = 4 << 20;
/// How many redirects one fetch follows (as Go's HTTP client).
const MAX_REDIRECTS: usize = 10;

/// How the bundle endpoint authenticates itself to the fetcher.
#[derive(Debug, Clone)]
pub enum EndpointAuth {
    /// `https_web`: the certificate chains to one of these Web PKI roots.
    Web(Arc<RootCertStore>),
    /// `https_spiffe`: the endpoint presents an X509-SVID for exactly `id`, verified
    /// against `bundle` (the stored bundle of `id`'s trust domain).
    Spiffe {
        /// The endpoint's SPIFFE ID.
        id: SpiffeId,
        /// The bundle its SVID must chain to.
        bundle: SpiffeBundle,
    },
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

fn err(msg: impl Into<String>) -> FetchError {
    FetchError(msg.into())
}

/// Fetches and parses the bundle of `trust_domain` from `url`. Redirects are followed
/// (at most 10) with the same TLS checks, so an `https_spiffe` target must present the
/// same SPIFFE ID; the target is not remembered (FED-23, FED-33).
pub async fn fetch_bundle(
    url: &str,
    trust_domain: &TrustDomain,
    auth: &EndpointAuth,
) -> Result<SpiffeBundle, FetchError> {
    tracing::debug!(url = %url, trust_domain = %trust_domain.name(), "Fetching federated bundle");
    tokio::time::timeout(FETCH_TIMEOUT, async {
        let mut target = parse_url(url)?;
        for _ in 0..=MAX_REDIRECTS {
            match fetch_once(&target, trust_domain, auth).await? {
                Fetched::Bundle(b) => return Ok(b),
                Fetched::Redirect(location) => {
                    let next: http::Uri = location
                        .parse()
                        .map_err(|e| err(format!("invalid redirect location {location:?}: {e}")))?;
                    // A relative location resolves against the current URL.
                    target = if next.scheme().is_none() {
                        let mut parts = target.clone().into_parts();
                        parts.path_and_query = next.path_and_query().cloned();
                        http::Uri::from_parts(parts).map_err(|e| {
                            err(format!("invalid redirect location {location:?}: {e}"))
                        })?
                    } else {
                        parse_url(&location)?
                    };
                }
            }
        }
        Err(err(format!(
            "stopped after {MAX_REDIRECTS} redirects fetching {url:?}"
        )))
    })
    .await
    .map_err(|_| err(format!("fetching bundle from {url:?} timed out")))?
}

/// A bundle endpoint URL: `https`, a host, no userinfo (FED-15, FED-24).
fn parse_url(url: &str) -> Result<http::Uri, FetchError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| err(format!("invalid bundle endpoint URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("https") {
        return Err(err(format!(
            "bundle endpoint URL {url:?} must use the HTTPS protocol"
        )));
    }
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => Err(err(format!(
            "bundle endpoint URL {url:?} must not contain user info"
        ))),
        Some(a) if !a.host().is_empty() => Ok(uri),
        _ => Err(err(format!("bundle endpoint URL {url:?} has no host"))),
    }
}

enum Fetched {
    Bundle(SpiffeBundle),
    Redirect(String),
}

async fn fetch_once(
    uri: &http::Uri,
    trust_domain: &TrustDomain,
    auth: &EndpointAuth,
) -> Result<Fetched, FetchError> {
    let url = uri.to_string();
    let host = uri
        .host()
        .ok_or_else(|| err(format!("bundle endpoint URL {url:?} has no host")))?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let config = client_config(auth)?;
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| err(format!("invalid bundle endpoint host {host:?}: {e}")))?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| err(format!("cannot connect to {host}:{port}: {e}")))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| err(format!("TLS handshake with {url:?} failed: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| err(format!("HTTP handshake with {url:?} failed: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| err(format!("cannot build request: {e}")))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| err(format!("GET {url:?} failed: {e}")))?;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response.headers().get(http::header::LOCATION)
        {
            let location = location
                .to_str()
                .map_err(|_| err(format!("invalid redirect location from {url:?}")))?;
            return Ok(Fetched::Redirect(location.to_owned()));
        }
        if status != http::StatusCode::OK {
            return Err(err(format!(
                "unexpected status {} fetching bundle from {url:?}",
                status.as_u16()
            )));
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| err(format!("reading bundle from {url:?} failed: {e}")))?
            .to_bytes();
        SpiffeBundle::parse(trust_domain.clone(), &body)
            .map(Fetched::Bundle)
            .map_err(|e| err(format!("failed to decode bundle from {url:?}: {e}")))
    }
    .await;
    driver.abort();
    result
}

fn client_config(auth: &EndpointAuth) -> Result<ClientConfig, FetchError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS configuration: {e}")))?;
    let mut config = match auth {
        EndpointAuth::Web(roots) => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
        EndpointAuth::Spiffe { id, bundle } => {
            let mut set = BundleSet::new();
            set.insert(bundle.clone());
            let trust = Arc::new(TrustStore::new(set));
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
                    trust,
                    id.clone(),
                )))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The Web PKI roots for `https_web` relationships: the PEM file named by
/// `SSL_CERT_FILE`, else the first system bundle found. Unreadable certificates are
/// skipped; no roots at all means every `https_web` fetch fails verification.
pub fn system_web_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let candidates: Vec<std::path::PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(p) => vec![p.into()],
        None => [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .collect(),
    };
    for path in candidates {
        if let Ok(data) = std::fs::read(&path) {
            add_pem_roots(&mut roots, &data);
            if !roots.is_empty() {
                break;
            }
        }
    }
    roots
}

/// Adds every certificate of a PEM document to `roots` (bad ones are skipped).
pub fn add_pem_roots(roots: &mut RootCertStore, pem_data: &[u8]) {
    if let Ok(blocks) = pem::parse_many(pem_data) {
        for block in blocks {
            if block.tag() == "CERTIFICATE" {
                let _ = roots.add(rustls::pki_types::CertificateDer::from(
                    block.contents().to_vec(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::parse_url;

    #[test]
    fn endpoint_urls_must_be_https_without_userinfo() {
        assert!(parse_url("https://example.org/bundle").is_ok());
        assert!(parse_url("https://127.0.0.1:8443").is_ok());
        let e = parse_url("http://example.org/").unwrap_err();
        assert!(e.to_string().contains("HTTPS"), "{e}");
        let e = parse_url("https://user:pw@example.org/").unwrap_err();
        assert!(e.to_string().contains("user info"), "{e}");
        assert!(parse_url("not a url").is_err());
    }
}

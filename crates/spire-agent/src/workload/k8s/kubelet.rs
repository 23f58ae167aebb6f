//! The kubelet client: `GET /pods` on the read-only port (plain HTTP on `127.0.0.1`) or
//! on the secure port (HTTPS on the node name, or `127.0.0.1`), as SPIRE's
//! `kubeletClient`.
//!
//! On the secure port the kubelet's certificate is verified against `kubelet_ca_path`:
//! with a node name, for that name; without one (the agent talks to `127.0.0.1`), only
//! the chain is verified, since the kubelet's certificate does not name the loopback
//! address. `skip_kubelet_verification` accepts any certificate. The client
//! authenticates with a client certificate (`certificate_path` + `private_key_path`),
//! else with the bearer token read from `token_path`, unless
//! `use_anonymous_authentication` is set.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, Error as TlsError, RootCertStore};
use spire_common::tls::provider;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::K8sAttestorError;
use super::config::{K8sAttestorConfig, KubeletPort};
use super::pods::{Pod, PodList};

/// How long one `/pods` request may take (SPIRE: 10s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest pod list accepted.
const MAX_BODY: usize = 64 << 20;
/// How much of an error body is quoted.
const MAX_ERROR_BODY: usize = 1024;

fn kubelet_error(message: impl Into<String>) -> K8sAttestorError {
    K8sAttestorError::Kubelet(message.into())
}

fn config_error(message: impl Into<String>) -> K8sAttestorError {
    K8sAttestorError::Config(message.into())
}

/// HTTP or HTTPS, with what HTTPS needs.
enum Transport {
    Http,
    Https {
        tls: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    },
}

/// A kubelet client with its credentials as loaded at one point in time.
pub struct KubeletClient {
    transport: Transport,
    host: String,
    port: u16,
    token: Option<String>,
    loaded: Instant,
}

impl KubeletClient {
    /// Builds the client for `config`, reading the CA, client certificate and token
    /// files it names.
    pub fn load(config: &K8sAttestorConfig) -> Result<Self, K8sAttestorError> {
        let port = match config.port {
            KubeletPort::ReadOnly(port) => {
                return Ok(KubeletClient {
                    transport: Transport::Http,
                    host: "127.0.0.1".to_owned(),
                    port,
                    token: None,
                    loaded: Instant::now(),
                });
            }
            KubeletPort::Secure(port) => port,
        };

        let verifier: Arc<dyn ServerCertVerifier> = if config.skip_kubelet_verification {
            Arc::new(AcceptAnyKubelet)
        } else {
            let roots = load_ca(&config.kubelet_ca_path)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| config_error(format!("unable to load kubelet CA: {e}")))?;
            if config.node_name.is_empty() {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);

        let mut token = None;
        let mut tls = match (&config.certificate_path, &config.private_key_path) {
            _ if config.use_anonymous_authentication => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let (chain, key) = load_key_pair(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config_error(format!("unable to load keypair: {e}")))?
            }
            (Some(_), None) => {
                return Err(config_error(
                    "the private key path is required with the certificate path",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "the certificate path is required with the private key path",
                ));
            }
            (None, None) => {
                let text = std::fs::read_to_string(&config.token_path).map_err(|e| {
                    config_error(format!(
                        "unable to load token: {}: {e}",
                        config.token_path.display()
                    ))
                })?;
                token = Some(text.trim().to_owned());
                builder.with_no_client_auth()
            }
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let host = if config.node_name.is_empty() {
            "127.0.0.1".to_owned()
        } else {
            config.node_name.clone()
        };
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|e| config_error(format!("node name {host:?}: {e}")))?,
        };
        Ok(KubeletClient {
            transport: Transport::Https {
                tls: Arc::new(tls),
                server_name,
            },
            host,
            port,
            token,
            loaded: Instant::now(),
        })
    }

    /// Whether the credentials should be re-read (HTTPS clients only).
    pub fn is_stale(&self, reload_interval: Duration) -> bool {
        matches!(self.transport, Transport::Https { .. })
            && self.loaded.elapsed() >= reload_interval
    }

    /// `GET /pods`: the pods the kubelet runs. Pods without a UID are skipped.
    pub async fn pod_list(&self) -> Result<Vec<Pod>, K8sAttestorError> {
        let body = tokio::time::timeout(REQUEST_TIMEOUT, self.get_pods())
            .await
            .map_err(|_| kubelet_error("unable to perform request: timed out"))??;
        let list: PodList = serde_json::from_slice(&body)
            .map_err(|e| kubelet_error(format!("unable to parse kubelet response: {e}")))?;
        let mut pods = list.items.unwrap_or_default();
        pods.retain(|pod| {
            let has_uid = !pod.metadata.uid.is_empty();
            if !has_uid {
                tracing::warn!(pod = pod.metadata.name, "Pod has no UID");
            }
            has_uid
        });
        Ok(pods)
    }

    async fn get_pods(&self) -> Result<Bytes, K8sAttestorError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                kubelet_error(format!(
                    "unable to perform request: connect {}:{}: {e}",
                    self.host, self.port
                ))
            })?;
        match &self.transport {
            Transport::Http => self.request(stream).await,
            Transport::Https { tls, server_name } => {
                let stream = TlsConnector::from(tls.clone())
                    .connect(server_name.clone(), stream)
                    .await
                    .map_err(|e| kubelet_error(format!("unable to perform request: {e}")))?;
                self.request(stream).await
            }
        }
    }

    async fn request<S>(&self, stream: S) -> Result<Bytes, K8sAttestorError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let request_error = |e: String| kubelet_error(format!("unable to perform request: {e}"));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| request_error(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut request = Request::get("/pods").header(hyper::header::HOST, host);
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let result = async {
            let request = request
                .body(Empty::<Bytes>::new())
                .map_err(|e| request_error(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| request_error(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| kubelet_error(format!("unable to read pods response: {e}")))?
                .to_bytes();
            if status != StatusCode::OK {
                let quoted =
                    String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned();
                return Err(kubelet_error(format!(
                    "unexpected status code on pods response: {} {quoted}",
                    status.as_u16()
                )));
            }
            Ok(body)
        }
        .await;
        driver.abort();
        result
    }
}

/// The certificates of a PEM file.
fn pem_certificates(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let blocks = pem::parse_many(data).map_err(|e| e.to_string())?;
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err("no PEM certificates found".to_owned());
    }
    Ok(certs)
}

fn load_ca(path: &std::path::Path) -> Result<RootCertStore, K8sAttestorError> {
    let data = std::fs::read(path).map_err(|e| {
        config_error(format!(
            "unable to load kubelet CA: {}: {e}",
            path.display()
        ))
    })?;
    let certs = pem_certificates(&data)
        .map_err(|e| config_error(format!("unable to parse kubelet CA: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| config_error(format!("unable to parse kubelet CA: {e}")))?;
    }
    Ok(roots)
}

fn load_key_pair(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), K8sAttestorError> {
    let cert_pem = std::fs::read(cert).map_err(|e| {
        config_error(format!(
            "unable to load certificate: {}: {e}",
            cert.display()
        ))
    })?;
    let key_pem = std::fs::read(key).map_err(|e| {
        config_error(format!(
            "unable to load private key: {}: {e}",
            key.display()
        ))
    })?;
    let chain = pem_certificates(&cert_pem)
        .map_err(|e| config_error(format!("unable to load keypair: {e}")))?;
    let blocks = pem::parse_many(&key_pem)
        .map_err(|e| config_error(format!("unable to load keypair: {e}")))?;
    let key = blocks
        .into_iter()
        .find_map(|b| match b.tag() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(b.into_contents().into())),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(b.into_contents().into())),
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(b.into_contents().into())),
            _ => None,
        })
        .ok_or_else(|| config_error("unable to load keypair: no PEM private key found"))?;
    Ok((chain, key))
}

/// `skip_kubelet_verification`: any certificate is accepted (the handshake signature
/// is still checked, so the peer holds the key of the certificate it shows).
#[derive(Debug)]
struct AcceptAnyKubelet;

impl ServerCertVerifier for AcceptAnyKubelet {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    spire_common::handshake_signatures!();
}

/// No node name: the chain must lead to the kubelet CA, but the certificate need not
/// name `127.0.0.1` (SPIRE's `VerifyPeerCertificate` without a host name). The inner
/// verifier is built on [`provider`], so handshake signatures are checked with the same
/// algorithms as everywhere else.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    spire_common::handshake_signatures!();
}

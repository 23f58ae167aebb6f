//! The SPIFFE bundle endpoint this server serves (`federation.bundle_endpoint`,
//! SPIRE's `pkg/server/endpoints/bundle`): `GET /` over HTTPS returns the trust domain's
//! bundle as a SPIFFE bundle document.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use spiffe_core::TrustDomain;
use spire_common::tls::{SvidResolver, provider};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::{BundleEndpointConfig, BundleEndpointProfile};
use crate::datastore::SqlStore;

/// Why the bundle endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("bundle endpoint: {0}")]
pub struct EndpointError(pub String);

fn err(msg: impl Into<String>) -> EndpointError {
    EndpointError(msg.into())
}

/// A bound bundle endpoint, ready to serve.
pub struct BundleEndpoint {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    source: Arc<BundleSource>,
}

/// What the endpoint serves: the own bundle from the datastore, with the configured
/// refresh hint.
struct BundleSource {
    store: Arc<SqlStore>,
    trust_domain: TrustDomain,
    refresh_hint: Duration,
}

impl BundleSource {
    async fn document(&self) -> Result<Vec<u8>, String> {
        let stored = self
            .store
            .fetch_bundle(&self.trust_domain.id_string())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no bundle stored for the trust domain".to_owned())?;
        let api = crate::api::bundle::bundle_to_proto(&stored);
        let mut bundle =
            spire_common::convert::bundle_from_proto(&api).map_err(|e| e.to_string())?;
        bundle.set_refresh_hint(Some(self.refresh_hint));
        bundle.set_sequence_number(Some(stored.sequence_number));
        bundle.to_json().map_err(|e| e.to_string())
    }
}

impl BundleEndpoint {
    /// Binds `config.address:config.port` with the profile's TLS identity. `https_spiffe`
    /// serves the server's rotating SVID from `svid`.
    pub async fn bind(
        config: &BundleEndpointConfig,
        trust_domain: TrustDomain,
        store: Arc<SqlStore>,
        svid: Arc<SvidResolver>,
        stop: &CancellationToken,
    ) -> Result<BundleEndpoint, EndpointError> {
        let resolver: Arc<dyn ResolvesServerCert> = match &config.profile {
            BundleEndpointProfile::HttpsSpiffe => svid,
            BundleEndpointProfile::HttpsWebAcme(_) => {
                return Err(err(
                    "the https_web profile with ACME is not implemented in spire-rs; use serving_cert_file or https_spiffe",
                ));
            }
            BundleEndpointProfile::HttpsWebServingCert(files) => {
                let resolver = Arc::new(FileCertResolver::load(
                    &files.cert_file_path,
                    &files.key_file_path,
                )?);
                let reload = resolver.clone();
                let (cert, key) = (files.cert_file_path.clone(), files.key_file_path.clone());
                let interval = files.file_sync_interval;
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(interval);
                    ticker.tick().await;
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            _ = ticker.tick() => {
                                if let Err(e) = reload.reload(&cert, &key) {
                                    tracing::error!(error = %e, "Failed to reload the bundle endpoint serving certificate");
                                }
                            }
                        }
                    }
                });
                resolver
            }
        };
        let mut tls = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let ip = config.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| err(format!("cannot listen on {addr}: {e}")))?;
        Ok(BundleEndpoint {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            source: Arc::new(BundleSource {
                store,
                trust_domain,
                refresh_hint: config.refresh_hint,
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts connections until `stop` is cancelled.
    pub async fn serve(self, stop: CancellationToken) {
        tracing::info!(addr = ?self.local_addr(), "Serving bundle endpoint");
        loop {
            let (tcp, peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "Bundle endpoint accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = self.acceptor.clone();
            let source = self.source.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "Bundle endpoint TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service = service_fn(move |req| {
                    let source = source.clone();
                    async move { Ok::<_, Infallible>(handle(&source, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service);
                tokio::select! {
                    () = stop.cancelled() => {}
                    result = conn => {
                        if let Err(e) = result {
                            tracing::debug!(peer = %peer, error = %e, "Bundle endpoint connection failed");
                        }
                    }
                }
            });
        }
    }
}

async fn handle<B>(source: &BundleSource, req: http::Request<B>) -> http::Response<Full<Bytes>> {
    if req.uri().path() != "/" {
        return plain(http::StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != http::Method::GET {
        return plain(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "method is not allowed\n",
        );
    }
    match source.document().await {
        Ok(body) => http::Response::builder()
            .status(http::StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()))),
        Err(e) => {
            tracing::error!(error = %e, "Unable to serve the bundle");
            plain(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "unable to retrieve local bundle\n",
            )
        }
    }
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The `serving_cert_file` certificate, reloaded from disk every `file_sync_interval`.
#[derive(Debug)]
struct FileCertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl FileCertResolver {
    fn load(cert: &Path, key: &Path) -> Result<Self, EndpointError> {
        Ok(FileCertResolver {
            current: RwLock::new(Arc::new(load_certified_key(cert, key)?)),
        })
    }

    fn reload(&self, cert: &Path, key: &Path) -> Result<(), EndpointError> {
        let loaded = Arc::new(load_certified_key(cert, key)?);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }
}

impl ResolvesServerCert for FileCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, EndpointError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| err(format!("cannot read {}: {e}", p.display())));
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> = pem::parse_many(read(cert)?)
        .map_err(|e| err(format!("cannot parse {}: {e}", cert.display())))?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| rustls::pki_types::CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(err(format!("no certificate in {}", cert.display())));
    }
    let key_block = pem::parse_many(read(key)?)
        .map_err(|e| err(format!("cannot parse {}: {e}", key.display())))?
        .into_iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| err(format!("no private key in {}", key.display())))?;
    let der = match key_block.tag() {
        "EC PRIVATE KEY" => {
            rustls::pki_types::PrivateKeyDer::Sec1(key_block.into_contents().into())
        }
        "RSA PRIVATE KEY" => {
            rustls::pki_types::PrivateKeyDer::Pkcs1(key_block.into_contents().into())
        }
        _ => rustls::pki_types::PrivateKeyDer::Pkcs8(key_block.into_contents().into()),
    };
    let signing_key = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| err(format!("unusable private key {}: {e}", key.display())))?;
    Ok(CertifiedKey::new(certs, signing_key))
}

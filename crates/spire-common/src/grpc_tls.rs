//! gRPC over SPIFFE mTLS with tonic: a concurrent TLS accept loop for servers and a
//! connector for clients. tonic's own TLS cannot verify URI-only SVIDs or rotate
//! certificates (crates.md §4.4), so both sides run rustls themselves.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP connections on `listener` and completes TLS handshakes concurrently (one
/// slow or hostile client cannot hold up the others). Successful streams are yielded for
/// `tonic::transport::Server::serve_with_incoming`; failed handshakes are logged and
/// dropped. The loop ends when the returned stream is dropped.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to accept TCP connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            // gRPC exchanges small messages; Nagle's algorithm would hold them back
            // waiting for delayed ACKs.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot disable Nagle's algorithm");
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => log_handshake_failure(peer, &e.to_string()),
                    Err(_) => log_handshake_failure(peer, "handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

fn log_handshake_failure(peer: SocketAddr, error: &str) {
    tracing::debug!(%peer, error, "TLS handshake failed");
}

/// A lazily connecting gRPC channel to `address` (`host:port`) over TLS with `config`.
/// Every new connection runs a full handshake (resumption is off in our client configs).
pub fn tls_channel(address: &str, config: Arc<ClientConfig>) -> Result<Channel, ChannelError> {
    let (host, _) = address
        .rsplit_once(':')
        .ok_or_else(|| ChannelError(format!("address {address:?} has no port")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| ChannelError(format!("invalid server host {host:?}: {e}")))?;
    let target = address.to_owned();
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| ChannelError(format!("invalid server address {address:?}: {e}")))?
        .connect_timeout(Duration::from_secs(10));
    let connector = TlsConnector::from(config);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        })),
    )
}

/// A server address that cannot be dialed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChannelError(String);

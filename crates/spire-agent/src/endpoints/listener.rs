//! The Workload API's Unix socket: binding it as SPIRE does, and accepting connections
//! with their caller tracked (SPIRE's `peertracker.ListenerFactory`).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::server::Connected;

use super::EndpointsError;
use crate::workload::{CallerInfo, PeerError, PeerWatcher};

/// How long to pause after a failed `accept` (e.g. out of file descriptors) before
/// trying again, so that the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Binds the Workload API socket as SPIRE does: creates the parent directory (0755) if
/// missing, removes a stale socket file, binds, and makes the socket world-writable
/// (0777) since every local process must be able to connect.
///
/// Must be called within a Tokio runtime.
pub fn bind_socket(path: &Path) -> Result<UnixListener, EndpointsError> {
    spire_common::uds::bind(path, 0o755, 0o777).map_err(|source| EndpointsError::Bind {
        path: path.to_path_buf(),
        source,
    })
}

/// What each RPC of a tracked connection finds in its request extensions.
#[derive(Debug, Clone)]
pub struct PeerConnectInfo {
    /// The watcher of the process that opened the connection.
    pub watcher: Arc<PeerWatcher>,
}

/// An accepted Workload API connection whose caller is being watched.
#[derive(Debug)]
pub struct PeerConn {
    stream: UnixStream,
    watcher: Arc<PeerWatcher>,
}

impl PeerConn {
    /// Reads the peer's credentials (`SO_PEERCRED`) and starts watching it.
    pub fn new(stream: UnixStream) -> Result<Self, PeerError> {
        let cred = stream.peer_cred().map_err(PeerError::PeerCred)?;
        let pid = cred.pid().filter(|pid| *pid > 0).ok_or(PeerError::NoPid)?;
        let watcher = PeerWatcher::new(CallerInfo {
            pid,
            uid: cred.uid(),
            gid: cred.gid(),
        })?;
        Ok(PeerConn {
            stream,
            watcher: Arc::new(watcher),
        })
    }

    /// The connection's caller watcher.
    pub fn watcher(&self) -> &Arc<PeerWatcher> {
        &self.watcher
    }
}

impl Connected for PeerConn {
    type ConnectInfo = PeerConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        PeerConnectInfo {
            watcher: Arc::clone(&self.watcher),
        }
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        self.watcher.close();
    }
}

impl AsyncRead for PeerConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The connections accepted on `listener`, each with its caller tracked. A connection
/// whose caller cannot be tracked (no pid, `/proc/<pid>` unreadable) is logged and
/// dropped, as SPIRE does; accept errors are logged and retried after a short pause.
pub fn tracked_incoming(
    listener: UnixListener,
) -> impl Stream<Item = io::Result<PeerConn>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => match PeerConn::new(stream) {
                    Ok(conn) => return Some((Ok(conn), listener)),
                    Err(error) => {
                        tracing::warn!(error = %error, "Connection failed during accept");
                    }
                },
                Err(error) => {
                    tracing::warn!(error = %error, "Error accepting Workload API connection");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    })
}

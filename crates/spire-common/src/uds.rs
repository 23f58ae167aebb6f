//! gRPC over Unix domain sockets: the server's admin socket and the agent's Workload API
//! socket, for both the servers (listener setup with SPIRE's modes) and the CLIs.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::{Channel, Endpoint, Uri};

/// Binds a Unix socket at `path` the way SPIRE does: creates the parent directory with
/// `dir_mode` if missing, removes a stale socket file, binds, and sets `socket_mode`.
pub fn bind(path: &Path, dir_mode: u32, socket_mode: u32) -> io::Result<UnixListener> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode))?;
    }
    // A stale socket from an earlier run; if it cannot be removed, bind reports why.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode))?;
    Ok(listener)
}

/// A lazily connecting gRPC channel to the Unix socket at `path`.
pub fn channel(path: impl Into<PathBuf>) -> Result<Channel, tonic::transport::Error> {
    let path = path.into();
    // The URI is required by tonic but never dialed: the connector below opens the socket.
    let endpoint = Endpoint::try_from("http://localhost")?;
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        })),
    )
}

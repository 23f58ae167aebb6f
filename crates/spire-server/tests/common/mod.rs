//! Shared by the integration tests that drive a real server: one started in-process on a
//! temp dir (SQLite, memory KeyManager, disk UpstreamAuthority with the demo CA, admin
//! socket and TCP port), and the `spire-server` binary run against its admin socket.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_server::config::{ServerConfig, ServerFlags};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const UPSTREAM_CRT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../conf/server/dummy_upstream_ca.crt"
);
pub const UPSTREAM_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../conf/server/dummy_upstream_ca.key"
);

/// A server running in-process; shut down on drop.
pub struct TestServer {
    pub _dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub port: u16,
    pub config_path: PathBuf,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let socket = dir.path().join("api.sock");
        let data = dir.path().join("data");
        let text = format!(
            r#"
server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{socket}"
    trust_domain = "example.org"
    data_dir = "{data}"
    log_level = "WARN"
}}
plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{db}"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data = {{}}
    }}
    UpstreamAuthority "disk" {{
        plugin_data {{
            key_file_path = "{UPSTREAM_KEY}"
            cert_file_path = "{UPSTREAM_CRT}"
        }}
    }}
}}
"#,
            socket = socket.display(),
            data = data.display(),
            db = dir.path().join("datastore.sqlite3").display(),
        );
        let config_path = dir.path().join("server.conf");
        std::fs::write(&config_path, &text).unwrap();
        let config = ServerConfig::parse(&text, &ServerFlags::default()).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if let Err(e) = spire_server::run::run(config, async {
                let _ = rx.await;
            })
            .await
            {
                panic!("server failed: {e}");
            }
        });
        let server = TestServer {
            _dir: dir,
            socket,
            port,
            config_path,
            shutdown: Some(tx),
            task: Some(task),
        };
        for _ in 0..200 {
            if server.socket.exists()
                && let Ok(channel) = spire_common::uds::channel(&server.socket)
                && BundleClient::new(channel)
                    .get_bundle(bundlepb::GetBundleRequest::default())
                    .await
                    .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not come up");
    }

    pub fn channel(&self) -> Channel {
        spire_common::uds::channel(&self.socket).unwrap()
    }

    pub fn bundles(&self) -> BundleClient<Channel> {
        BundleClient::new(self.channel())
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn cli_at(socket: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.push("-socketPath".into());
    all.push(socket.display().to_string());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spire-server"));
    cmd.args(&all)
        .env("TZ", "UTC")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI off the async runtime's worker (it blocks on the child process).
pub async fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let socket = server.socket.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_at(&socket, &args, None)
    })
    .await
    .unwrap()
}

//! Shared by the integration tests that drive a real server: one started in-process on a
//! temp dir (SQLite, memory KeyManager, disk UpstreamAuthority with the demo CA, admin
//! socket and TCP port), and the `spire-server` binary run against its admin socket.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};
use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use spire_proto::spire::api::types;
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

/// Which KeyManager the test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// `KeyManager "memory"`: a new CA at every start.
    Memory,
    /// `KeyManager "disk"` with `keys.json` in the server's directory.
    Disk,
}

/// How to set up a test server.
pub struct Setup<'a> {
    /// The directory to run in; `None` makes a temporary one owned by the server.
    pub dir: Option<&'a Path>,
    /// The trust domain.
    pub trust_domain: &'a str,
    /// The KeyManager.
    pub keys: Keys,
    /// Whether the CA is an intermediate under the demo `disk` UpstreamAuthority (else
    /// self-signed).
    pub upstream: bool,
    /// HCL appended inside the `server { }` block.
    pub extra_server: String,
    /// The `disk` UpstreamAuthority's (key, certificate) files when `upstream` is set;
    /// `None` uses the demo CA.
    pub upstream_files: Option<(PathBuf, PathBuf)>,
    /// The `DataStore "sql"` `plugin_data` body; `None` uses a SQLite file in the
    /// server's directory. Two servers given the same body share one database.
    pub datastore: Option<String>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            dir: None,
            trust_domain: "example.org",
            keys: Keys::Memory,
            upstream: true,
            extra_server: String::new(),
            upstream_files: None,
            datastore: None,
        }
    }
}

/// A server running in-process; shut down on drop.
pub struct TestServer {
    pub _dir: Option<tempfile::TempDir>,
    pub socket: PathBuf,
    pub port: u16,
    pub config_path: PathBuf,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// The quickstart shape: example.org, memory keys, demo upstream CA, join tokens.
    pub async fn start() -> TestServer {
        TestServer::start_with(Setup::default()).await
    }

    /// A server set up as `setup` says, once it answers on its admin socket.
    pub async fn start_with(setup: Setup<'_>) -> TestServer {
        let owned = match setup.dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let dir = setup
            .dir
            .map(Path::to_path_buf)
            .or_else(|| owned.as_ref().map(|d| d.path().to_path_buf()))
            .unwrap();
        let port = free_port();
        let socket = dir.join("api.sock");
        let key_manager = match setup.keys {
            Keys::Disk => format!(
                "KeyManager \"disk\" {{\n plugin_data {{\n keys_path = \"{}\"\n }}\n }}",
                dir.join("keys.json").display()
            ),
            Keys::Memory => "KeyManager \"memory\" {\n plugin_data = {}\n }".to_owned(),
        };
        let upstream = if setup.upstream {
            let (key, crt) = setup
                .upstream_files
                .clone()
                .unwrap_or_else(|| (PathBuf::from(UPSTREAM_KEY), PathBuf::from(UPSTREAM_CRT)));
            format!(
                "UpstreamAuthority \"disk\" {{\n plugin_data {{\n key_file_path = \"{}\"\n cert_file_path = \"{}\"\n }}\n }}",
                key.display(),
                crt.display()
            )
        } else {
            String::new()
        };
        let datastore = setup.datastore.clone().unwrap_or_else(|| {
            format!(
                "database_type = \"sqlite3\"\n connection_string = \"{}\"",
                dir.join("datastore.sqlite3").display()
            )
        });
        let text = format!(
            r#"
server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{socket}"
    trust_domain = "{td}"
    data_dir = "{data}"
    log_level = "WARN"
    {extra}
}}
plugins {{
    DataStore "sql" {{
        plugin_data {{
            {datastore}
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    {key_manager}
    {upstream}
}}
"#,
            td = setup.trust_domain,
            extra = setup.extra_server,
            socket = socket.display(),
            data = dir.join("data").display(),
        );
        let config_path = dir.join("server.conf");
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
            _dir: owned,
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

    /// The trust domain's bundle.
    pub async fn bundle(&self) -> spire_proto::spire::api::types::Bundle {
        self.bundles()
            .get_bundle(bundlepb::GetBundleRequest::default())
            .await
            .unwrap()
            .into_inner()
    }

    /// Stops the server and waits until it has (needed before a restart on the same dir).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server did not stop")
                .unwrap();
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

/// Attests an agent with a join token over the admin socket, as the agent does (CSR,
/// `AttestAgent` with the generated client); returns its path, its SVID chain (DER,
/// concatenated) and its key (PKCS#8 DER).
pub async fn attest_with_svid(server: &TestServer) -> (String, Vec<u8>, Vec<u8>) {
    let token = AgentClient::new(server.channel())
        .create_join_token(agentpb::CreateJoinTokenRequest {
            ttl: 600,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .value;
    let key = KeyPair::generate().unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    let request = agentpb::AttestAgentRequest {
        step: Some(agentpb::attest_agent_request::Step::Params(
            agentpb::attest_agent_request::Params {
                data: Some(types::AttestationData {
                    r#type: "join_token".into(),
                    payload: token.clone().into_bytes(),
                }),
                params: Some(agentpb::AgentX509svidParams { csr }),
            },
        )),
    };
    let mut stream = AgentClient::new(server.channel())
        .attest_agent(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(agentpb::attest_agent_response::Step::Result(result)) = response.step else {
        panic!("attestation did not return a result");
    };
    let chain = result.svid.unwrap().cert_chain.concat();
    (
        format!("/spire/agent/join_token/{token}"),
        chain,
        key.serialize_der(),
    )
}

/// Mints an X509-SVID for `id` over the admin socket (`SVID.MintX509SVID`); returns its
/// chain (DER, concatenated) and key (PKCS#8 DER).
pub async fn mint_svid(server: &TestServer, id: &str) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(id).unwrap())];
    let csr = params.serialize_request(&key).unwrap().der().to_vec();
    let svid = SvidClient::new(server.channel())
        .mint_x509svid(svidpb::MintX509svidRequest { csr, ttl: 0 })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    (svid.cert_chain.concat(), key.serialize_der())
}

/// A TLS channel to the server's TCP endpoint that authenticates the server and presents
/// `svid` (chain and PKCS#8 key, DER) as client certificate, or none.
pub async fn tcp_channel(server: &TestServer, svid: Option<(&[u8], &[u8])>) -> Channel {
    let bundle = spire_common::convert::bundle_from_proto(&server.bundle().await).unwrap();
    let trust = std::sync::Arc::new(spire_common::tls::TrustStore::new(
        [bundle].into_iter().collect(),
    ));
    let resolver = std::sync::Arc::new(spire_common::tls::SvidResolver::new());
    if let Some((chain, key)) = svid {
        resolver
            .set_svid(&spiffe_core::X509Svid::parse_der(chain, key).unwrap())
            .unwrap();
    }
    let server_id = spiffe_core::SpiffeId::parse("spiffe://example.org/spire/server").unwrap();
    let config = spire_common::tls::client_config(trust, server_id, resolver).unwrap();
    spire_common::grpc_tls::tls_channel(
        &format!("127.0.0.1:{}", server.port),
        std::sync::Arc::new(config),
    )
    .unwrap()
}

/// An mTLS channel to the server's TCP endpoint presenting an agent SVID.
pub async fn agent_channel(server: &TestServer, chain: &[u8], key: &[u8]) -> Channel {
    tcp_channel(server, Some((chain, key))).await
}

/// Runs the CLI with `stdin` fed to it.
pub async fn cli_stdin(server: &TestServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let socket = server.socket.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_at(&socket, &args, Some(&stdin))
    })
    .await
    .unwrap()
}

/// Runs a CLI command that must succeed; returns its stdout.
pub async fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let (ok, out, err) = cli(server, args).await;
    assert!(ok, "{args:?} failed: {err}");
    out
}

/// Runs a CLI command with `-output json` that must succeed and print one line of JSON;
/// returns it parsed.
pub async fn cli_json(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-output", "json"]);
    let out = cli_ok(server, &all).await;
    assert!(out.ends_with('\n'), "{out:?}");
    assert_eq!(out.trim_end().lines().count(), 1, "{out:?}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?} is not JSON: {e}"))
}

//! Harness for end-to-end tests and benchmarks: runs the real `spire-server` and
//! `spire-agent` binaries as processes on a temporary directory and free ports, with
//! SPIRE's quickstart configuration, and talks to them through their CLIs and sockets.
//!
//! The binaries are taken from the Cargo target directory this test binary lives in;
//! `cargo test --workspace` builds them. Run `cargo build --bins` first when testing this
//! crate alone.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod workload;

/// The trust domain of the quickstart.
pub const TRUST_DOMAIN: &str = "example.org";

/// The path of a workspace binary next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins, with --release for benchmarks)",
        path.display()
    );
    path
}

/// The repository's `conf/` directory (quickstart configs and demo CA).
pub fn repo_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A process that is killed when dropped.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// The process's combined output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has exited, and its status.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// A server and its directory; agents are started on demand.
pub struct Quickstart {
    /// The temporary directory holding configs, data and sockets.
    pub dir: tempfile::TempDir,
    /// The server's TCP port.
    pub port: u16,
    /// The server process.
    pub server: Process,
    /// The bootstrap trust bundle agents are configured with (`trust_bundle_path`).
    pub agent_bundle: PathBuf,
}

impl Quickstart {
    /// Starts a server with SPIRE's quickstart configuration (SQLite, memory KeyManager,
    /// disk UpstreamAuthority with the demo CA), with `extra_server` appended inside the
    /// `server { }` block, and waits until it is healthy.
    pub fn start(extra_server: &str) -> Quickstart {
        Quickstart::start_with_plugins(extra_server, "")
    }

    /// As [`Quickstart::start`], with `extra_plugins` (plugin blocks, e.g. a second
    /// `NodeAttestor`) appended inside the `plugins { }` block.
    pub fn start_with_plugins(extra_server: &str, extra_plugins: &str) -> Quickstart {
        Quickstart::launch(extra_server, extra_plugins, true)
    }

    /// As [`Quickstart::start`], without the UpstreamAuthority: the server's CA is
    /// self-signed (so its local authorities can be tainted), and agents bootstrap from
    /// the bundle `spire-server bundle show` prints once the server is healthy.
    pub fn start_self_signed(extra_server: &str) -> Quickstart {
        let mut qs = Quickstart::launch(extra_server, "", false);
        let out = qs.server_cli(&["bundle", "show"]);
        assert!(out.status.success(), "bundle show: {}", stderr(&out));
        let path = qs.dir.path().join("bootstrap_bundle.crt");
        std::fs::write(&path, &out.stdout).expect("write the bootstrap bundle");
        qs.agent_bundle = path;
        qs
    }

    fn launch(extra_server: &str, extra_plugins: &str, upstream: bool) -> Quickstart {
        let dir = tempfile::Builder::new()
            .prefix("spire-e2e")
            .tempdir()
            .expect("tempdir");
        // Workloads of other uids must reach the agent socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let conf = repo_conf();
        let port = free_port();
        let d = dir.path().display();
        let upstream_block = if upstream {
            format!(
                r#"UpstreamAuthority "disk" {{
        plugin_data {{
            key_file_path = "{c}/server/dummy_upstream_ca.key"
            cert_file_path = "{c}/server/dummy_upstream_ca.crt"
        }}
    }}"#,
                c = conf.display()
            )
        } else {
            String::new()
        };
        let server_conf = format!(
            r#"server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{d}/server/api.sock"
    trust_domain = "{TRUST_DOMAIN}"
    data_dir = "{d}/server/data"
    log_level = "DEBUG"
    {extra_server}
}}

plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{d}/server/data/datastore.sqlite3"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{
        }}
    }}
    KeyManager "memory" {{
        plugin_data = {{}}
    }}
    {upstream_block}
    {extra_plugins}
}}
"#
        );
        let path = dir.path().join("server.conf");
        std::fs::write(&path, server_conf).expect("write server.conf");
        let server = spawn(
            "spire-server",
            &["run", "-config", path.to_str().unwrap_or_default()],
            &dir.path().join("server.log"),
        );
        let qs = Quickstart {
            dir,
            port,
            server,
            agent_bundle: conf.join("agent/dummy_root_ca.crt"),
        };
        qs.wait_until("server healthy", Duration::from_secs(30), || {
            qs.server_cli(&["healthcheck"]).status.success()
        });
        qs
    }

    /// Stops the server (SIGTERM), runs `while_down`, then starts the server again with
    /// the same config, data directory and port (logging to `server.restarted.log`) and
    /// waits until it is healthy. With the memory KeyManager the restarted server has a
    /// new CA, signed by the same upstream root.
    pub fn restart_server(&mut self, while_down: impl FnOnce(&Quickstart)) {
        self.server.terminate();
        while_down(self);
        let path = self.dir.path().join("server.conf");
        self.server = spawn(
            "spire-server",
            &["run", "-config", path.to_str().unwrap_or_default()],
            &self.dir.path().join("server.restarted.log"),
        );
        self.wait_until("server healthy again", Duration::from_secs(30), || {
            self.server_cli(&["healthcheck"]).status.success()
        });
    }

    /// The server admin socket.
    pub fn server_socket(&self) -> PathBuf {
        self.dir.path().join("server/api.sock")
    }

    /// Runs `spire-server <args> -socketPath <socket>`.
    pub fn server_cli(&self, args: &[&str]) -> Output {
        let socket = self.server_socket();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-socketPath", socket.to_str().unwrap_or_default()]);
        Command::new(binary("spire-server"))
            .args(&all)
            .output()
            .expect("run spire-server")
    }

    /// `spire-server token generate -spiffeID <id>`, returning the token.
    pub fn generate_token(&self, spiffe_id: &str) -> String {
        let out = self.server_cli(&["token", "generate", "-spiffeID", spiffe_id]);
        assert!(out.status.success(), "token generate: {}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("Token: "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no token in {stdout:?}"))
    }

    /// Starts an agent named `agent` attested with a join token for `agent_id` and waits
    /// for its Workload API socket; returns the agent and the socket.
    pub fn start_attested_agent(&self, agent_id: &str) -> (Process, PathBuf) {
        let token = self.generate_token(agent_id);
        let (config, socket) = self.agent_config("agent");
        let agent = self.start_agent(&config, Some(&token), "agent.log");
        self.wait_for_socket(&socket);
        (agent, socket)
    }

    /// Waits up to 30 s for an agent's Workload API socket to appear.
    pub fn wait_for_socket(&self, socket: &Path) {
        self.wait_until("the agent socket", Duration::from_secs(30), || {
            socket.exists()
        });
    }

    /// `spire-server entry create -parentID <parent_id> -spiffeID <spiffe_id> -selector
    /// unix:uid:<this uid> <extra>`: an entry for the test process itself. Returns the
    /// CLI's output; panics when the CLI fails.
    pub fn create_uid_entry(&self, parent_id: &str, spiffe_id: &str, extra: &[&str]) -> String {
        let selector = format!("unix:uid:{}", current_uid());
        let mut args = vec![
            "entry",
            "create",
            "-parentID",
            parent_id,
            "-spiffeID",
            spiffe_id,
            "-selector",
            &selector,
        ];
        args.extend(extra);
        let out = self.server_cli(&args);
        assert!(out.status.success(), "entry create: {}", stderr(&out));
        stdout(&out)
    }

    /// Writes an agent config named `name` (its own data dir and socket) and returns the
    /// config path and the Workload API socket.
    pub fn agent_config(&self, name: &str) -> (PathBuf, PathBuf) {
        self.agent_config_with(
            name,
            "NodeAttestor \"join_token\" {\n        plugin_data {\n        }\n    }",
        )
    }

    /// As [`Quickstart::agent_config`], with `node_attestor_block` (a whole
    /// `NodeAttestor "<name>" { ... }` block) instead of the join token attestor.
    pub fn agent_config_with(&self, name: &str, node_attestor_block: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).expect("agent dir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let socket = d.join("api.sock");
        let conf = format!(
            r#"agent {{
    data_dir = "{data}"
    log_level = "DEBUG"
    server_address = "127.0.0.1"
    server_port = "{port}"
    socket_path = "{socket}"
    trust_bundle_path = "{bundle}"
    trust_domain = "{TRUST_DOMAIN}"
}}

plugins {{
    {node_attestor_block}
    KeyManager "disk" {{
        plugin_data {{
            directory = "{data}"
        }}
    }}
    WorkloadAttestor "unix" {{
        plugin_data {{
        }}
    }}
}}
"#,
            data = d.join("data").display(),
            port = self.port,
            socket = socket.display(),
            bundle = self.agent_bundle.display(),
        );
        let path = d.join("agent.conf");
        std::fs::write(&path, conf).expect("write agent.conf");
        (path, socket)
    }

    /// Starts `spire-agent run -config <config> [-joinToken <token>]`.
    pub fn start_agent(&self, config: &Path, token: Option<&str>, log_name: &str) -> Process {
        let mut args = vec!["run", "-config", config.to_str().unwrap_or_default()];
        if let Some(token) = token {
            args.extend(["-joinToken", token]);
        }
        spawn("spire-agent", &args, &self.dir.path().join(log_name))
    }

    /// Runs `spire-agent <args> -socketPath <socket>`.
    pub fn agent_cli(&self, socket: &Path, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-socketPath", socket.to_str().unwrap_or_default()]);
        Command::new(binary("spire-agent"))
            .args(&all)
            .output()
            .expect("run spire-agent")
    }

    /// Polls `check` every 100 ms until it holds, failing with the logs after `limit`.
    pub fn wait_until(&self, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}\n--- server log ---\n{}",
            tail(&self.server.log(), 40)
        );
    }
}

fn spawn(name: &str, args: &[&str], log: &Path) -> Process {
    let file = std::fs::File::create(log).expect("log file");
    let child = Command::new(binary(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Process {
        child,
        log: log.to_path_buf(),
    }
}

/// A command's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A command's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The uid of this process, read from `/proc/self/status` (no libc).
pub fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

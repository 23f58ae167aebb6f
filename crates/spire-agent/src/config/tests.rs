//! `agent.conf` loading against SPIRE's behaviour, with real files in temp dirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spire_common::key_type::KeyType;
use spire_common::logging::{Level, LogFormat};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spire-common/tests/fixtures")
        .join(name)
}

const PLUGINS: &str = r#"
plugins {
    NodeAttestor "join_token" {
        plugin_data {
        }
    }
    KeyManager "memory" {
        plugin_data {
        }
    }
    WorkloadAttestor "unix" {
        plugin_data {
        }
    }
}
"#;

const BASE: &str = "server_address = \"127.0.0.1\"\nserver_port = \"8081\"\ntrust_domain = \"example.org\"\ntrust_bundle_path = \"/b.pem\"\n";

fn with_agent(body: &str) -> String {
    format!("agent {{\n{body}\n}}\n{PLUGINS}")
}

fn load_text(text: &str, flags: &AgentFlags) -> Result<AgentConfig, AgentConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.conf");
    std::fs::write(&path, text).expect("write");
    AgentConfig::load(&path, flags.expand_env, flags)
}

fn err(text: &str) -> String {
    match load_text(text, &AgentFlags::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn err_agent(body: &str) -> String {
    err(&with_agent(body))
}

#[test]
fn quickstart_agent_conf_unmodified() {
    let c = AgentConfig::load(&fixture("agent.conf"), false, &AgentFlags::default())
        .expect("quickstart loads");
    assert_eq!(c.data_dir, PathBuf::from("./.data"));
    assert_eq!(c.log_level, Level::Debug);
    assert_eq!(c.server_address, "127.0.0.1");
    assert_eq!(c.server_port, 8081);
    assert_eq!(c.server_target(), "dns:///127.0.0.1:8081");
    assert_eq!(
        c.socket_path,
        PathBuf::from("/tmp/spire-agent/public/api.sock")
    );
    assert_eq!(
        c.trust_bundle,
        TrustBundleSource::Path(PathBuf::from("./conf/agent/dummy_root_ca.crt"))
    );
    assert_eq!(c.trust_domain.name(), "example.org");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let ids: Vec<String> = c
        .plugins
        .iter()
        .map(|p| format!("{}/{}", p.plugin_type, p.name))
        .collect();
    assert_eq!(
        ids,
        [
            "NodeAttestor/join_token",
            "KeyManager/disk",
            "WorkloadAttestor/unix"
        ]
    );
    let disk = c.disk_key_manager().expect("disk").expect("present");
    assert_eq!(disk.directory, PathBuf::from("./.data"));
    assert_eq!(disk.keys_path(), PathBuf::from("./.data/keys.json"));
    let unix = c.unix_workload_attestor().expect("unix").expect("present");
    assert_eq!(unix, UnixWorkloadAttestorConfig::default());
    JoinTokenAttestorConfig::from_plugin(c.plugin("NodeAttestor", "join_token").expect("jt"))
        .expect("join_token");
}

#[test]
fn defaults() {
    let c = load_text(
        &with_agent("server_address = \"spire\"\nserver_port = 8081\ntrust_domain = \"example.org\"\ninsecure_bootstrap = true"),
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(c.data_dir, PathBuf::from("."));
    assert_eq!(c.socket_path, PathBuf::from(DEFAULT_SOCKET_PATH));
    assert_eq!(c.admin_socket_path, None);
    assert_eq!(c.trust_bundle, TrustBundleSource::Insecure);
    assert_eq!(c.trust_bundle_format, TrustBundleFormat::Pem);
    assert_eq!(c.rebootstrap_mode, RebootstrapMode::Never);
    assert_eq!(c.rebootstrap_delay, Duration::from_secs(600));
    assert_eq!(c.join_token, None);
    assert_eq!(c.log_level, Level::Info);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_file, None);
    assert!(!c.log_source_location);
    assert!(c.authorized_delegates.is_empty());
    assert!(!c.allow_unauthenticated_verifiers);
    assert!(!c.disable_workload_api);
    assert!(!c.disable_sds_api);
    assert_eq!(c.workload_x509_svid_key_type, KeyType::EcP256);
    assert_eq!(c.availability_target, None);
    assert_eq!(c.x509_svid_cache_max_size, 1000);
    assert_eq!(c.jwt_svid_cache_max_size, 1000);
    assert_eq!(c.sds, SdsConfig::default());
    assert_eq!(c.sds.default_svid_name, "default");
    assert_eq!(c.sds.default_bundle_name, "ROOTCA");
    assert_eq!(c.sds.default_all_bundles_name, "ALL");
    assert_eq!(c.ratelimit, WorkloadRateLimitConfig::default());
    assert_eq!(c.experimental, AgentExperimentalConfig::default());
    assert_eq!(c.experimental.sync_interval, Duration::from_secs(5));
    assert!(c.experimental.use_sync_authorized_entries);
    assert_eq!(
        c.health_checks,
        spire_common::sections::HealthChecksConfig::default()
    );
    assert_eq!(c.server_target(), "dns:///spire:8081");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn validation_errors_in_order() {
    assert_eq!(
        err(&format!("agent {{\n{BASE}\n}}\n")),
        "plugins section must be configured"
    );
    // A missing agent section reads as an empty one, as in SPIRE.
    assert_eq!(err(PLUGINS), "server_address must be configured");
    assert_eq!(
        err_agent(&format!(
            "{BASE}join_token = \"a\"\njoin_token_file = \"/t\""
        )),
        "only one of join_token or join_token_file can be specified, not both"
    );
    assert_eq!(
        err_agent("server_port = 8081\ntrust_domain = \"example.org\""),
        "server_address must be configured"
    );
    assert_eq!(
        err_agent("server_address = \"x\"\ntrust_domain = \"example.org\""),
        "server_port must be configured"
    );
    assert_eq!(
        err_agent("server_address = \"x\"\nserver_port = 0\ntrust_domain = \"example.org\""),
        "server_port must be configured"
    );
    assert_eq!(
        err_agent("server_address = \"x\"\nserver_port = 8081"),
        "trust_domain must be configured"
    );
    let no_bundle = "server_address = \"x\"\nserver_port = 8081\ntrust_domain = \"example.org\"\n";
    assert_eq!(
        err_agent(no_bundle),
        "trust_bundle_path or trust_bundle_url must be configured unless insecure_bootstrap is set"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}insecure_bootstrap = true\ntrust_bundle_path = \"p\"\ntrust_bundle_url = \"https://u\""
        )),
        "only one of insecure_bootstrap, trust_bundle_url, or trust_bundle_path can be specified, not the three options"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}insecure_bootstrap = true\ntrust_bundle_url = \"https://u\""
        )),
        "only one of insecure_bootstrap or trust_bundle_url can be specified, not both"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}insecure_bootstrap = true\ntrust_bundle_path = \"p\""
        )),
        "only one of insecure_bootstrap or trust_bundle_path can be specified, not both"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}trust_bundle_path = \"p\"\ntrust_bundle_url = \"https://u\""
        )),
        "only one of trust_bundle_url or trust_bundle_path can be specified, not both"
    );
    assert_eq!(
        err_agent(&format!("{BASE}trust_bundle_format = \"der\"")),
        "invalid value for trust_bundle_format, expected \"pem\" or \"spiffe\""
    );
    assert_eq!(
        err_agent(&format!("{no_bundle}trust_bundle_url = \"foo.bar\"")),
        "trust bundle URL must start with https://"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}trust_bundle_url = \"https://x\"\ntrust_bundle_unix_socket = \"/s.sock\""
        )),
        "trust bundle URL must start with http://"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}trust_bundle_url = \"http://localhost/trustbundle?spiffe-test=foo\"\ntrust_bundle_unix_socket = \"/s.sock\""
        )),
        "trust_bundle_url query params can not start with spiffe-"
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}trust_bundle_url = \"http://localhost/trustbundle?a=b&spire-test=foo\"\ntrust_bundle_unix_socket = \"/s.sock\""
        )),
        "trust_bundle_url query params can not start with spire-"
    );
    assert_eq!(
        err_agent(&format!("{BASE}rebootstrap_mode = \"sometimes\"")),
        "unknown rebootstrap_mode \"sometimes\"; expected \"never\", \"auto\" or \"always\""
    );
    assert_eq!(
        err_agent(&format!(
            "{no_bundle}insecure_bootstrap = true\nrebootstrap_mode = \"auto\""
        )),
        "rebootstrap_mode can not be used with insecure_bootstrap"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}experimental {{\n named_pipe_name = \"\\\\p\"\n}}"
        )),
        "invalid configuration: named_pipe_name is not supported in this platform; please use socket_path instead"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}experimental {{\n admin_named_pipe_name = \"\\\\p\"\n}}"
        )),
        "invalid configuration: admin_named_pipe_name is not supported in this platform; please use admin_socket_path instead"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}experimental {{\n sync_interval = \"moo\"\n}}"
        )),
        "could not parse synchronization interval: time: invalid duration \"moo\""
    );
    assert_eq!(
        err_agent(&format!("{BASE}log_level = \"not-a-valid-level\"")),
        "could not start logger: not a valid logrus Level: \"not-a-valid-level\""
    );
    assert_eq!(
        err_agent(&format!("{BASE}x509_svid_cache_max_size = -10")),
        "x509_svid_cache_max_size should not be negative"
    );
    assert_eq!(
        err_agent(&format!("{BASE}jwt_svid_cache_max_size = -1")),
        "jwt_svid_cache_max_size should not be negative"
    );
    assert!(
        err_agent("server_address = \"x\"\nserver_port = 8081\ntrust_domain = \"i'm invalid\"\ntrust_bundle_path = \"p\"")
            .starts_with("could not parse trust_domain \"i'm invalid\": ")
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}socket_path = \"/run/spire/public/api.sock\"\nadmin_socket_path = \"/run/spire/public/admin/admin.sock\""
        )),
        "admin socket cannot be in the same directory or a subdirectory as that containing the Workload API socket"
    );
    assert_eq!(
        err_agent(&format!("{BASE}workload_x509_svid_key_type = \"rsa-4096\"")),
        "key type \"rsa-4096\" is unknown; must be one of [rsa-2048, ec-p256, ec-p384]"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}authorized_delegates = [\"spiffe://other.org/x\"]"
        )),
        "error validating authorized delegate: \"spiffe://other.org/x\" is not a member of trust domain \"example.org\""
    );
    assert_eq!(
        err_agent(&format!("{BASE}availability_target = \"1h\"")),
        "availability_target must be at least 24h0m0s"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}experimental {{\n jwt_svid_cache_hit_timeout = \"4s\"\n}}"
        )),
        "jwt_svid_cache_hit_timeout (4s) must be greater than 5s"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}experimental {{\n jwt_svid_cache_hit_timeout = \"30s\"\n}}"
        )),
        "jwt_svid_cache_hit_timeout (30s) must be less than 30s"
    );
}

#[test]
fn join_token_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "  \n\t test-token-with-whitespace \t\n  ").expect("write");
    let c = load_text(
        &with_agent(&format!("{BASE}join_token_file = \"{}\"", token.display())),
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(c.join_token.as_deref(), Some("test-token-with-whitespace"));
    assert_eq!(c.join_token_file.as_deref(), Some(token.as_path()));
    std::fs::write(&token, "  \n\t  \n  ").expect("write");
    assert_eq!(
        err_agent(&format!("{BASE}join_token_file = \"{}\"", token.display())),
        "join token file is empty"
    );
    assert!(
        err_agent(&format!("{BASE}join_token_file = \"/non/existent/file\""))
            .starts_with("unable to read join token file")
    );
}

#[test]
fn unknown_keys() {
    assert_eq!(
        err_agent(&format!(
            "{BASE}unknown_option2 = 1\nunknown_option1 = \"x\""
        )),
        "unknown configuration detected: section \"agent\": keys [unknown_option1, unknown_option2]"
    );
    assert_eq!(
        err(&format!("{}\nunknown_option1 = 1\n", with_agent(BASE))),
        "unknown configuration detected: section \"top-level\": keys [unknown_option1]"
    );
    assert_eq!(
        err_agent(&format!(
            "{BASE}ratelimit {{\n fetch_x509_svid = 1\n bogus = 2\n}}"
        )),
        "unknown configuration detected: section \"ratelimit\": keys [bogus]"
    );
    assert_eq!(
        err(&format!(
            "{}\nhealth_checks {{\n unknown_option1 = 1\n}}\n",
            with_agent(BASE)
        )),
        "unknown configuration detected: section \"health check\": keys [unknown_option1]"
    );
    assert_eq!(
        err(&format!(
            "{}\ntelemetry {{\n DogStatsd = [\n {{ address = \"a\", unknown_option3 = 1 }},\n ]\n}}\n",
            with_agent(BASE)
        )),
        "unknown configuration detected: section \"DogStatsd\": keys [unknown_option3]"
    );
    // Not checked: experimental, sds, telemetry's top level, plugin blocks.
    let c = load_text(
        &format!(
            "{}\ntelemetry {{\n unknown_option = 1\n}}\n",
            with_agent(&format!(
                "{BASE}experimental {{\n brand_new = true\n}}\nsds {{\n future = 1\n}}"
            ))
        ),
        &AgentFlags::default(),
    )
    .expect("accepted");
    assert_eq!(c.experimental.unknown_keys, ["brand_new"]);
    // Only unknown experimental keys: nothing SPIRE would call enabled.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn flag_override_precedence() {
    let text = with_agent(&format!(
        "{BASE}join_token = \"file-token\"\ndata_dir = \"/file\"\nlog_level = \"WARN\"\nsocket_path = \"/file/api.sock\""
    ));
    let c = load_text(&text, &AgentFlags::default()).expect("file");
    assert_eq!(c.join_token.as_deref(), Some("file-token"));
    assert_eq!(c.data_dir, PathBuf::from("/file"));
    assert_eq!(c.log_level, Level::Warn);
    let flags = AgentFlags {
        join_token: Some("flag-token".to_owned()),
        data_dir: Some(PathBuf::from("/flag")),
        log_level: Some("debug".to_owned()),
        log_format: Some("json".to_owned()),
        server_address: Some("10.0.0.2".to_owned()),
        server_port: Some(9090),
        socket_path: Some(PathBuf::from("/flag/api.sock")),
        trust_domain: Some("flag.org".to_owned()),
        trust_bundle: Some(PathBuf::from("/flag.pem")),
        allow_unauthenticated_verifiers: true,
        disable_sds_api: true,
        rebootstrap_mode: Some("auto".to_owned()),
        rebootstrap_delay: Some("1m".to_owned()),
        ..AgentFlags::default()
    };
    let c = load_text(&text, &flags).expect("flags");
    assert_eq!(c.join_token.as_deref(), Some("flag-token"));
    assert_eq!(c.data_dir, PathBuf::from("/flag"));
    assert_eq!(c.log_level, Level::Debug);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.server_target(), "dns:///10.0.0.2:9090");
    assert_eq!(c.socket_path, PathBuf::from("/flag/api.sock"));
    assert_eq!(c.trust_domain.name(), "flag.org");
    assert_eq!(
        c.trust_bundle,
        TrustBundleSource::Path(PathBuf::from("/flag.pem"))
    );
    assert!(c.allow_unauthenticated_verifiers);
    assert!(c.disable_sds_api);
    assert_eq!(c.rebootstrap_mode, RebootstrapMode::Auto);
    assert_eq!(c.rebootstrap_delay, Duration::from_secs(60));
    // A flag token plus a file token file: both set, as in SPIRE's merge.
    let both = AgentFlags {
        join_token_file: Some(PathBuf::from("/t")),
        ..AgentFlags::default()
    };
    assert_eq!(
        load_text(&text, &both).expect_err("both").to_string(),
        "only one of join_token or join_token_file can be specified, not both"
    );
    // Zero-valued flags do not override.
    let zero = AgentFlags {
        server_port: Some(0),
        join_token: Some(String::new()),
        ..AgentFlags::default()
    };
    let c = load_text(&text, &zero).expect("zero");
    assert_eq!(c.server_port, 8081);
    assert_eq!(c.join_token.as_deref(), Some("file-token"));
    // -insecureBootstrap with a file trust_bundle_path: SPIRE's exclusivity error.
    let insecure = AgentFlags {
        insecure_bootstrap: true,
        ..AgentFlags::default()
    };
    assert_eq!(
        load_text(&text, &insecure)
            .expect_err("insecure")
            .to_string(),
        "only one of insecure_bootstrap or trust_bundle_path can be specified, not both"
    );
}

#[test]
fn flags_parse_with_go_style_args() {
    use clap::Parser;
    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        flags: AgentFlags,
    }
    let args = spire_common::flags::go_style_args([
        "run",
        "-config",
        "conf/agent/agent.conf",
        "-joinToken",
        "4f6d1a2e-0000-0000-0000-000000000000",
        "-serverPort=8081",
        "-trustBundle",
        "/b.pem",
        "-trustBundleUrl=https://x",
        "-insecureBootstrap",
        "-expandEnv=false",
        "-allowUnauthenticatedVerifiers",
    ]);
    let run = Run::try_parse_from(args).expect("parse");
    assert_eq!(
        run.flags.config,
        Some(PathBuf::from("conf/agent/agent.conf"))
    );
    assert_eq!(
        run.flags.join_token.as_deref(),
        Some("4f6d1a2e-0000-0000-0000-000000000000")
    );
    assert_eq!(run.flags.server_port, Some(8081));
    assert_eq!(run.flags.trust_bundle, Some(PathBuf::from("/b.pem")));
    assert_eq!(run.flags.trust_bundle_url.as_deref(), Some("https://x"));
    assert!(run.flags.insecure_bootstrap);
    assert!(!run.flags.expand_env);
    assert!(run.flags.allow_unauthenticated_verifiers);
}

#[test]
fn expand_env() {
    let home = std::env::var("HOME").expect("HOME");
    let text = with_agent(&format!("{BASE}data_dir = \"${{HOME}}/agent\""));
    let flags = AgentFlags {
        expand_env: true,
        ..AgentFlags::default()
    };
    let c = load_text(&text, &flags).expect("expanded");
    assert_eq!(c.data_dir, PathBuf::from(format!("{home}/agent")));
    let c = load_text(&text, &AgentFlags::default()).expect("literal");
    assert_eq!(c.data_dir, PathBuf::from("${HOME}/agent"));
}

#[test]
fn plugin_cardinality() {
    let e = AgentConfig::load(&fixture("agent_full.conf"), false, &AgentFlags::default())
        .expect_err("agent_full enables two key managers");
    assert_eq!(
        e.to_string(),
        "plugin type \"KeyManager\" constraint not satisfied: expected exactly 1 but got 2"
    );
    let no_wla = format!(
        "agent {{\n{BASE}\n}}\nplugins {{\n NodeAttestor \"join_token\" {{\n plugin_data {{}}\n }}\n KeyManager \"memory\" {{\n plugin_data {{}}\n }}\n}}\n"
    );
    assert_eq!(
        err(&no_wla),
        "plugin type \"WorkloadAttestor\" constraint not satisfied: expected at least 1 but got 0"
    );
}

#[test]
fn agent_full_uncommented_options() {
    let c = AgentConfig::load(
        &fixture("agent_full_uncommented.conf"),
        false,
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(c.rebootstrap_mode, RebootstrapMode::Auto);
    assert_eq!(c.rebootstrap_delay, Duration::from_secs(300));
    assert_eq!(c.join_token.as_deref(), Some("abc"));
    assert!(c.log_source_location);
    assert_eq!(c.log_level, Level::Warn);
    assert_eq!(c.server_target(), "dns:///spire-server.example.org:8081");
    assert_eq!(
        c.trust_bundle,
        TrustBundleSource::Url {
            url: "https://example.org/bundle".to_owned(),
            unix_socket: None
        }
    );
    assert_eq!(c.trust_bundle_format, TrustBundleFormat::Spiffe);
    assert_eq!(c.workload_x509_svid_key_type, KeyType::Rsa2048);
    assert_eq!(
        c.admin_socket_path,
        Some(PathBuf::from("/tmp/spire-agent/private/admin.sock"))
    );
    assert_eq!(
        c.authorized_delegates[0].as_str(),
        "spiffe://example.org/authorized_client1"
    );
    assert_eq!(c.sds.default_svid_name, "mysvid");
    assert_eq!(c.sds.default_bundle_name, "MYROOT");
    assert_eq!(c.sds.default_all_bundles_name, "EVERYTHING");
    assert!(c.sds.disable_spiffe_cert_validation);
    assert_eq!(c.allowed_foreign_jwt_claims, ["c1"]);
    assert_eq!(c.ratelimit.fetch_x509_svid, 10);
    assert_eq!(c.ratelimit.fetch_jwt_svid, 20);
    assert_eq!(c.availability_target, Some(Duration::from_secs(48 * 3600)));
    assert_eq!(c.x509_svid_cache_max_size, 5000);
    assert_eq!(c.experimental.sync_interval, Duration::from_millis(2045));
    assert_eq!(c.experimental.unknown_keys, ["something_new"]);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("Experimental features have been enabled"))
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("use_sync_authorized_entries"))
    );
    let unix = c.unix_workload_attestor().expect("unix").expect("present");
    assert!(unix.discover_workload_path);
    assert_eq!(unix.workload_size_limit, -1);
    assert_eq!(
        c.telemetry.prometheus.as_ref().and_then(|p| p.port),
        Some(9989)
    );
    assert_eq!(
        c.telemetry.in_mem.as_ref().and_then(|m| m.enabled),
        Some(false)
    );
    assert!(c.health_checks.listener_enabled);
    assert_eq!(c.health_checks.bind_port, "8082");
    assert_eq!(c.disk_key_manager().expect("km"), None);
}

#[test]
fn sds_same_names_warns_and_other_sources() {
    let c = load_text(
        &with_agent(&format!(
            "{BASE}sds = {{\n default_bundle_name = \"X\"\n default_all_bundles_name = \"X\"\n}}"
        )),
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("The \"default_bundle_name\" and \"default_all_bundles_name\"")
    );

    let c = load_text(
        &with_agent("server_address = \"x\"\nserver_port = 8081\ntrust_domain = \"example.org\"\ntrust_bundle_url = \"http://localhost/trustbundle?instance=a\"\ntrust_bundle_unix_socket = \"/run/attestor.sock\""),
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(
        c.trust_bundle,
        TrustBundleSource::Url {
            url: "http://localhost/trustbundle?instance=a".to_owned(),
            unix_socket: Some(PathBuf::from("/run/attestor.sock"))
        }
    );
    let c = load_text(
        &with_agent("server_address = \"x\"\nserver_port = 8081\ntrust_domain = \"example.org\"\ntrust_bundle_spiffe_workload_api = \"unix:///run/outer/api.sock\""),
        &AgentFlags::default(),
    )
    .expect("load");
    assert_eq!(
        c.trust_bundle,
        TrustBundleSource::WorkloadApi("unix:///run/outer/api.sock".to_owned())
    );
}

#[test]
fn disk_key_manager_requires_directory() {
    let text = format!(
        "agent {{\n{BASE}\n}}\nplugins {{\n NodeAttestor \"join_token\" {{\n plugin_data {{}}\n }}\n KeyManager \"disk\" {{\n plugin_data {{}}\n }}\n WorkloadAttestor \"unix\" {{\n plugin_data {{}}\n }}\n}}\n"
    );
    let c = load_text(&text, &AgentFlags::default()).expect("load");
    assert_eq!(
        c.disk_key_manager().expect_err("directory").to_string(),
        "failed to create plugin config for \"KeyManager\"/\"disk\": directory must be configured"
    );
}

#[test]
fn plugin_types_not_built_are_refused_by_name() {
    let text = format!(
        "agent {{\n{BASE}\n}}\n{}",
        PLUGINS.replace(
            "plugins {",
            "plugins {\n    SVIDStore \"aws_secretsmanager\" {\n        plugin_data {\n        }\n    }"
        )
    );
    let message = err(&text);
    assert!(
        message.contains("plugins.SVIDStore")
            && message.contains(
                "plugin type SVIDStore (\"aws_secretsmanager\") is not supported by spire-rs yet"
            ),
        "{message}"
    );
}

//! `server.conf` loading against SPIRE's behaviour, with real files in temp dirs.

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

const MINIMAL_PLUGINS: &str = r#"
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "./.data/datastore.sqlite3"
        }
    }
    KeyManager "memory" {
        plugin_data = {}
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
}
"#;

fn with_server(server_body: &str) -> String {
    format!("server {{\n{server_body}\n}}\n{MINIMAL_PLUGINS}")
}

fn minimal() -> String {
    with_server("trust_domain = \"example.org\"\ndata_dir = \"/var/lib/spire\"")
}

fn load_text(text: &str, flags: &ServerFlags) -> Result<ServerConfig, ServerConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.conf");
    std::fs::write(&path, text).expect("write");
    ServerConfig::load(&path, flags.expand_env, flags)
}

fn err(text: &str) -> String {
    match load_text(text, &ServerFlags::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn quickstart_server_conf_unmodified() {
    let c = ServerConfig::load(&fixture("server.conf"), false, &ServerFlags::default())
        .expect("quickstart loads");
    assert_eq!(c.trust_domain.name(), "example.org");
    assert_eq!(c.bind_address, "127.0.0.1");
    assert_eq!(c.bind_port, 8081);
    assert_eq!(
        c.socket_path,
        PathBuf::from("/tmp/spire-server/private/api.sock")
    );
    assert_eq!(c.data_dir, PathBuf::from("./.data"));
    assert_eq!(c.log_level, Level::Debug);
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let ids: Vec<String> = c
        .plugins
        .iter()
        .map(|p| format!("{}/{}", p.plugin_type, p.name))
        .collect();
    assert_eq!(
        ids,
        [
            "DataStore/sql",
            "NodeAttestor/join_token",
            "KeyManager/memory",
            "UpstreamAuthority/disk"
        ]
    );
    let sql = c.sql_datastore().expect("sql").expect("present");
    assert_eq!(sql.database_type, DatabaseType::Sqlite3);
    assert_eq!(sql.connection_string, "./.data/datastore.sqlite3");
    assert_eq!(sql.max_open_conns, 100);
    assert_eq!(sql.max_idle_conns, 100);
    assert_eq!(sql.conn_max_lifetime, None);
    assert!(!sql.disable_migration);
    let up = c.disk_upstream_authority().expect("disk").expect("present");
    assert_eq!(
        up.key_file_path,
        PathBuf::from("./conf/server/dummy_upstream_ca.key")
    );
    assert_eq!(
        up.cert_file_path,
        PathBuf::from("./conf/server/dummy_upstream_ca.crt")
    );
    assert_eq!(up.bundle_file_path, None);
    let km = c.plugin("KeyManager", "memory").expect("memory");
    MemoryKeyManagerConfig::from_plugin(km).expect("memory config");
    let jt = c.plugin("NodeAttestor", "join_token").expect("join_token");
    JoinTokenAttestorConfig::from_plugin(jt).expect("join_token config");
}

#[test]
fn defaults() {
    let c = load_text(&minimal(), &ServerFlags::default()).expect("load");
    assert_eq!(c.bind_address, "0.0.0.0");
    assert_eq!(c.bind_port, 8081);
    assert_eq!(c.socket_path, PathBuf::from(DEFAULT_SOCKET_PATH));
    assert_eq!(c.log_level, Level::Info);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_file, None);
    assert!(!c.log_source_location);
    assert!(c.admin_ids.is_empty());
    assert_eq!(c.default_x509_svid_ttl, Duration::from_secs(3600));
    assert_eq!(c.agent_ttl, Duration::from_secs(3600));
    assert_eq!(c.default_jwt_svid_ttl, Duration::from_secs(300));
    assert_eq!(c.ca_ttl, Duration::from_secs(86400));
    assert_eq!(c.ca_key_type, KeyType::EcP256);
    assert_eq!(c.jwt_key_type, KeyType::EcP256);
    assert_eq!(c.jwt_issuer, None);
    assert!(!c.disable_jwt_svids);
    assert_eq!(c.ca_subject, CaSubject::default());
    assert_eq!(c.ca_subject.country, ["US"]);
    assert_eq!(c.ca_subject.organization, ["SPIFFE"]);
    assert!(!c.audit_log_enabled);
    assert_eq!(
        c.ratelimit,
        RateLimitConfig {
            attestation: true,
            signing: true
        }
    );
    assert_eq!(c.federation, None);
    assert_eq!(c.experimental, ExperimentalConfig::default());
    assert_eq!(c.experimental.cache_reload_interval, Duration::from_secs(5));
    assert_eq!(
        c.experimental.full_cache_reload_interval,
        Duration::from_secs(86400)
    );
    assert_eq!(
        c.experimental.prune_events_older_than,
        Duration::from_secs(12 * 3600)
    );
    assert_eq!(c.experimental.event_timeout, Duration::from_secs(15 * 60));
    assert_eq!(c.prune_attested_nodes_expired_for, None);
    assert_eq!(c.prune_attested_nodes_batch_size, 1000);
    assert!(!c.prune_tofu_nodes);
    assert_eq!(c.max_attested_node_info_staleness, Duration::ZERO);
    assert!(c.proxy_protocol_trusted_cidrs.is_empty());
    assert_eq!(c.profiling, ProfilingConfig::default());
    assert_eq!(c.tls_config, None);
    assert_eq!(
        c.health_checks,
        spire_common::sections::HealthChecksConfig::default()
    );
    assert_eq!(c.health_checks.bind_address, "localhost");
    assert_eq!(c.health_checks.bind_port, "80");
    assert_eq!(c.health_checks.live_path, "/live");
    assert_eq!(c.health_checks.ready_path, "/ready");
    assert_eq!(
        c.telemetry,
        spire_common::sections::TelemetryConfig::default()
    );
    assert!(c.warnings.is_empty());
}

#[test]
fn required_fields() {
    // A missing server section reads as an empty one, as in SPIRE.
    assert_eq!(err(MINIMAL_PLUGINS), "trust_domain must be configured");
    assert_eq!(
        err(&with_server("data_dir = \"/d\"")),
        "trust_domain must be configured"
    );
    assert_eq!(
        err(&with_server("trust_domain = \"example.org\"")),
        "data_dir must be configured"
    );
    assert_eq!(
        err("server {\n trust_domain = \"example.org\"\n data_dir = \"/d\"\n}\n"),
        "plugins section must be configured"
    );
    // Empty strings are unset values.
    assert_eq!(
        err(&with_server("trust_domain = \"\"\ndata_dir = \"/d\"")),
        "trust_domain must be configured"
    );
    // With -trustDomain and no server section, the next missing field is data_dir.
    let flags = ServerFlags {
        trust_domain: Some("example.org".to_owned()),
        ..ServerFlags::default()
    };
    let e = load_text(MINIMAL_PLUGINS, &flags).expect_err("data_dir");
    assert_eq!(e.to_string(), "data_dir must be configured");
    let flags = ServerFlags {
        data_dir: Some(PathBuf::from("/d")),
        ..flags
    };
    load_text(MINIMAL_PLUGINS, &flags).expect("flags complete the config");
}

#[test]
fn missing_config_file() {
    let e = ServerConfig::load(
        Path::new("does/not/exist.conf"),
        false,
        &ServerFlags::default(),
    )
    .expect_err("missing");
    let abs = std::env::current_dir()
        .expect("cwd")
        .join("does/not/exist.conf");
    assert_eq!(
        e.to_string(),
        format!(
            "could not find config file {}: please use the -config flag",
            abs.display()
        )
    );
}

#[test]
fn unknown_keys() {
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nfoo = 1\nbar = \"x\""
        )),
        "unknown configuration detected: section \"server\": keys [bar, foo]"
    );
    // Removed options fail (upstream_bundle was removed in 0.11.0).
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nupstream_bundle = true"
        )),
        "unknown configuration detected: section \"server\": keys [upstream_bundle]"
    );
    assert_eq!(
        err(&format!("{}\nunknown_block {{}}\n", minimal())),
        "unknown configuration detected: section \"top-level\": keys [unknown_block]"
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_subject {\n country = [\"US\"]\n state = \"x\"\n}"
        )),
        "unknown configuration detected: section \"ca_subject\": keys [state]"
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nratelimit {\n signing = false\n other = 1\n}"
        )),
        "unknown configuration detected: section \"ratelimit\": keys [other]"
    );
    assert_eq!(
        err(&format!(
            "{}\nhealth_checks {{\n listener_enabled = true\n nope = 1\n}}\n",
            minimal()
        )),
        "unknown configuration detected: section \"health check\": keys [nope]"
    );
    assert_eq!(
        err(&format!(
            "{}\ntelemetry {{\n Prometheus {{\n port = 9988\n nope = 1\n }}\n}}\n",
            minimal()
        )),
        "unknown configuration detected: section \"Prometheus\": keys [nope]"
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nfederation {\n bundle_endpoint {\n address = \"0.0.0.0\"\n port = 8443\n nope = 1\n profile \"https_spiffe\" {}\n }\n}"
        )),
        "unknown configuration detected: section \"bundle endpoint\": keys [nope]"
    );
    // Several sections are all reported.
    assert_eq!(
        err(&format!(
            "{}\nzzz = 1\n",
            with_server("trust_domain = \"example.org\"\ndata_dir = \"/d\"\nfoo = 1")
        )),
        "unknown configuration detected: section \"top-level\": keys [zzz]; section \"server\": keys [foo]"
    );
}

#[test]
fn unchecked_sections_accept_unknown_keys() {
    let text = format!(
        "{}\ntelemetry {{\n SomethingNew = 1\n}}\n",
        with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nexperimental {\n not_a_real_option = \"x\"\n cache_reload_interval = \"10s\"\n}\nfederation {\n future_option = 1\n}"
        )
    );
    let c = load_text(&text, &ServerFlags::default()).expect("accepted");
    assert_eq!(c.experimental.unknown_keys, ["not_a_real_option"]);
    assert_eq!(
        c.experimental.cache_reload_interval,
        Duration::from_secs(10)
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("Experimental features have been enabled"))
    );
    // Unknown keys inside plugin blocks are the plugin's business.
    let text = minimal().replace("plugin_data = {}", "plugin_data = {}\n whatever = 1");
    load_text(&text, &ServerFlags::default()).expect("plugin keys unchecked");
}

#[test]
fn experimental_block_without_known_options_does_not_warn() {
    let c = load_text(
        &with_server("trust_domain = \"example.org\"\ndata_dir = \"/d\"\nexperimental {\n}"),
        &ServerFlags::default(),
    )
    .expect("load");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn expand_env() {
    let home = std::env::var("HOME").expect("HOME is set");
    let pkg = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let text = with_server("trust_domain = \"$CARGO_PKG_NAME.test\"\ndata_dir = \"${HOME}/spire\"");
    let flags = ServerFlags {
        expand_env: true,
        ..ServerFlags::default()
    };
    let c = load_text(&text, &flags).expect("expanded");
    assert_eq!(c.trust_domain.name(), format!("{pkg}.test"));
    assert_eq!(c.data_dir, PathBuf::from(format!("{home}/spire")));
    // Without -expandEnv the literal text is kept, and `$` is not a valid trust domain char.
    let e = load_text(&text, &ServerFlags::default()).expect_err("literal");
    assert!(
        e.to_string()
            .starts_with("could not parse trust_domain \"$CARGO_PKG_NAME.test\": "),
        "{e}"
    );
}

#[test]
fn flag_override_precedence() {
    let text = with_server(
        "trust_domain = \"file.org\"\ndata_dir = \"/file\"\nbind_address = \"10.0.0.1\"\nbind_port = \"9000\"\nlog_level = \"WARN\"\nlog_format = \"json\"\nlog_file = \"/file.log\"\nsocket_path = \"/file.sock\"",
    );
    // File beats default.
    let c = load_text(&text, &ServerFlags::default()).expect("file");
    assert_eq!(c.trust_domain.name(), "file.org");
    assert_eq!(c.bind_address, "10.0.0.1");
    assert_eq!(c.bind_port, 9000);
    assert_eq!(c.log_level, Level::Warn);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_file, Some(PathBuf::from("/file.log")));
    assert_eq!(c.socket_path, PathBuf::from("/file.sock"));
    assert!(!c.log_source_location);
    // Flags beat the file.
    let flags = ServerFlags {
        config: None,
        bind_address: Some("127.0.0.2".to_owned()),
        server_port: Some(9001),
        data_dir: Some(PathBuf::from("/flag")),
        log_file: Some(PathBuf::from("/flag.log")),
        log_format: Some("text".to_owned()),
        log_level: Some("debug".to_owned()),
        log_source_location: true,
        trust_domain: Some("flag.org".to_owned()),
        socket_path: Some(PathBuf::from("/flag.sock")),
        expand_env: false,
    };
    let c = load_text(&text, &flags).expect("flags");
    assert_eq!(c.trust_domain.name(), "flag.org");
    assert_eq!(c.bind_address, "127.0.0.2");
    assert_eq!(c.bind_port, 9001);
    assert_eq!(c.data_dir, PathBuf::from("/flag"));
    assert_eq!(c.log_level, Level::Debug);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_file, Some(PathBuf::from("/flag.log")));
    assert_eq!(c.socket_path, PathBuf::from("/flag.sock"));
    assert!(c.log_source_location);
    // Zero-valued flags do not override.
    let zero = ServerFlags {
        server_port: Some(0),
        trust_domain: Some(String::new()),
        ..ServerFlags::default()
    };
    let c = load_text(&text, &zero).expect("zero flags");
    assert_eq!(c.bind_port, 9000);
    assert_eq!(c.trust_domain.name(), "file.org");
}

#[test]
fn flags_parse_with_go_style_args() {
    use clap::Parser;
    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        flags: ServerFlags,
    }
    let args = spire_common::flags::go_style_args([
        "run",
        "-config",
        "/etc/spire/server.conf",
        "-serverPort=9999",
        "-trustDomain",
        "example.org",
        "-expandEnv",
        "-logSourceLocation=false",
    ]);
    let run = Run::try_parse_from(args).expect("parse");
    assert_eq!(
        run.flags.config,
        Some(PathBuf::from("/etc/spire/server.conf"))
    );
    assert_eq!(run.flags.server_port, Some(9999));
    assert_eq!(run.flags.trust_domain.as_deref(), Some("example.org"));
    assert!(run.flags.expand_env);
    assert!(!run.flags.log_source_location);
}

#[test]
fn key_types() {
    let c = load_text(
        &with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_key_type = \"RSA-2048\"",
        ),
        &ServerFlags::default(),
    )
    .expect("load");
    assert_eq!(c.ca_key_type, KeyType::Rsa2048);
    assert_eq!(c.jwt_key_type, KeyType::Rsa2048);
    let c = load_text(
        &with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_key_type = \"ec-p384\"\njwt_key_type = \"ec-p256\"",
        ),
        &ServerFlags::default(),
    )
    .expect("load");
    assert_eq!(c.ca_key_type, KeyType::EcP384);
    assert_eq!(c.jwt_key_type, KeyType::EcP256);
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_key_type = \"ed25519\""
        )),
        "error parsing ca_key_type: key type \"ed25519\" is unknown; must be one of [rsa-2048, rsa-4096, ec-p256, ec-p384]"
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\njwt_key_type = \"x\""
        )),
        "error parsing jwt_key_type: key type \"x\" is unknown; must be one of [rsa-2048, rsa-4096, ec-p256, ec-p384]"
    );
}

#[test]
fn durations() {
    let c = load_text(
        &with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\ndefault_x509_svid_ttl = \"2h\"\ndefault_jwt_svid_ttl = \"10m\"\nca_ttl = \"1.5h\"",
        ),
        &ServerFlags::default(),
    )
    .expect("load");
    assert_eq!(c.default_x509_svid_ttl, Duration::from_secs(7200));
    assert_eq!(
        c.agent_ttl,
        Duration::from_secs(7200),
        "agent_ttl follows the x509 ttl"
    );
    assert_eq!(c.default_jwt_svid_ttl, Duration::from_secs(600));
    assert_eq!(c.ca_ttl, Duration::from_secs(5400));
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nagent_ttl = \"1d\""
        )),
        "could not parse agent ttl \"1d\": time: unknown unit \"d\" in duration \"1d\""
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\ndefault_x509_svid_ttl = \"1\""
        )),
        "could not parse default X509 SVID ttl \"1\": time: missing unit in duration \"1\""
    );
    assert_eq!(
        err(&with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_ttl = \"1 h\""
        )),
        "could not parse default CA ttl \"1 h\": time: unknown unit \" h\" in duration \"1 h\""
    );
}

#[test]
fn ttl_warnings() {
    let c = load_text(
        &with_server(
            "trust_domain = \"example.org\"\ndata_dir = \"/d\"\nca_ttl = \"5m\"\ndefault_x509_svid_ttl = \"2m\"",
        ),
        &ServerFlags::default(),
    )
    .expect("warnings are not errors");
    assert_eq!(
        c.warnings,
        [
            "default_x509_svid_ttl is too high for the configured ca_ttl value. SVIDs with shorter lifetimes may be issued. Please set default_x509_svid_ttl to 50s or less, or the ca_ttl to 12m or more, to guarantee the full default_x509_svid_ttl lifetime when CA rotations are scheduled.",
            "default_jwt_svid_ttl is too high for the configured ca_ttl value. SVIDs with shorter lifetimes may be issued. Please set default_jwt_svid_ttl to 50s or less, or the ca_ttl to 30m or more, to guarantee the full default_jwt_svid_ttl lifetime when CA rotations are scheduled.",
        ]
    );
    assert_eq!(
        ttl_warning(
            "default_x509_svid_ttl",
            Duration::from_secs(8 * 24 * 3600),
            Duration::from_secs(24 * 3600)
        )
        .as_deref(),
        Some(
            "default_x509_svid_ttl is too high and the ca_ttl is too low. SVIDs with shorter lifetimes may be issued. Please set default_x509_svid_ttl to 168h or less, and the ca_ttl to 1008h or more, to guarantee the full default_x509_svid_ttl lifetime when CA rotations are scheduled."
        )
    );
    assert_eq!(
        ttl_warning(
            "agent_ttl",
            Duration::from_secs(8 * 24 * 3600),
            Duration::from_secs(2000 * 3600)
        )
        .as_deref(),
        Some(
            "agent_ttl is too high. SVIDs with shorter lifetimes may be issued. Please set agent_ttl to 168h or less to guarantee the full agent_ttl lifetime when CA rotations are scheduled."
        )
    );
    assert_eq!(
        ttl_warning(
            "x",
            Duration::from_secs(3600),
            Duration::from_secs(6 * 3600)
        ),
        None
    );
}

#[test]
fn plugin_cardinality() {
    let no_datastore = "server {\n trust_domain = \"example.org\"\n data_dir = \"/d\"\n}\nplugins {\n KeyManager \"memory\" {\n plugin_data {}\n }\n}\n";
    assert_eq!(
        err(no_datastore),
        "plugin type \"DataStore\" constraint not satisfied: expected exactly 1 but got 0"
    );
    let two_km = minimal().replace(
        "KeyManager \"memory\" {",
        "KeyManager \"disk\" {\n plugin_data {\n keys_path = \"/k.json\"\n }\n }\n KeyManager \"memory\" {",
    );
    assert_eq!(
        err(&two_km),
        "plugin type \"KeyManager\" constraint not satisfied: expected exactly 1 but got 2"
    );
    // A disabled plugin does not count.
    let disabled = two_km.replace(
        "keys_path = \"/k.json\"\n }",
        "keys_path = \"/k.json\"\n }\n enabled = false",
    );
    load_text(&disabled, &ServerFlags::default()).expect("disabled plugin ignored");
    // SPIRE's server_full.conf, as shipped, enables two UpstreamAuthority plugins.
    let e = ServerConfig::load(&fixture("server_full.conf"), false, &ServerFlags::default())
        .expect_err("two upstream authorities");
    assert_eq!(
        e.to_string(),
        "plugin type \"UpstreamAuthority\" constraint not satisfied: expected at most 1 but got 2"
    );
    // Unknown plugin names are the catalog's business.
    let text = minimal().replace(
        "NodeAttestor \"join_token\"",
        "NodeAttestor \"not_a_plugin\"",
    );
    load_text(&text, &ServerFlags::default()).expect("unknown names kept");
    // Duplicates are refused.
    let dup = minimal().replace(
        "NodeAttestor \"join_token\" {\n        plugin_data {}\n    }",
        "NodeAttestor \"join_token\" {\n        plugin_data {}\n    }\n NodeAttestor \"join_token\" {\n plugin_data {}\n }",
    );
    assert_eq!(
        err(&dup),
        "plugin \"NodeAttestor\"/\"join_token\" declared more than once"
    );
}

#[test]
fn server_full_shapes() {
    // The shipped server_full.conf minus the second UpstreamAuthority.
    let text = std::fs::read_to_string(fixture("server_full.conf")).expect("read");
    let cut = text
        .find("    # The shipped file leaves this one uncommented too.")
        .expect("marker");
    let text = format!("{}}}\n", &text[..cut]);
    let c = load_text(&text, &ServerFlags::default()).expect("load");
    let fed = c.federation.as_ref().expect("federation");
    let be = fed.bundle_endpoint.as_ref().expect("bundle endpoint");
    assert_eq!(be.address, "0.0.0.0");
    assert_eq!(be.port, 8443);
    assert_eq!(be.refresh_hint, Duration::from_secs(300));
    match &be.profile {
        BundleEndpointProfile::HttpsWebAcme(acme) => {
            assert_eq!(acme.domain_name, "example.org");
            assert_eq!(acme.email, "some@mail.com");
            assert_eq!(
                acme.directory_url,
                "https://acme-v02.api.letsencrypt.org/directory"
            );
            assert!(!acme.tos_accepted);
            assert_eq!(acme.cache_dir, PathBuf::from("./.data/bundle-acme"));
        }
        other => panic!("unexpected profile {other:?}"),
    }
    assert_eq!(fed.federates_with.len(), 1);
    let fw = &fed.federates_with[0];
    assert_eq!(fw.trust_domain.name(), "domain1.test");
    assert_eq!(
        fw.bundle_endpoint_url,
        "https://example.com/global/bundle.json"
    );
    match &fw.profile {
        FederatesWithProfile::HttpsSpiffe { endpoint_spiffe_id } => {
            assert_eq!(
                endpoint_spiffe_id.as_str(),
                "spiffe://example.com/spire/server"
            )
        }
        other => panic!("unexpected profile {other:?}"),
    }
}

#[test]
fn server_full_uncommented_options() {
    let c = ServerConfig::load(
        &fixture("server_full_uncommented.conf"),
        false,
        &ServerFlags::default(),
    )
    .expect("load");
    assert_eq!(c.admin_ids.len(), 1);
    assert_eq!(c.admin_ids[0].as_str(), "spiffe://example.org/my/admin");
    assert_eq!(c.ca_key_type, KeyType::EcP384);
    assert_eq!(c.jwt_key_type, KeyType::Rsa2048);
    assert_eq!(c.ca_ttl, Duration::from_secs(168 * 3600));
    assert_eq!(c.jwt_issuer.as_deref(), Some("https://oidc.example.org"));
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(c.log_source_location);
    assert_eq!(
        c.prune_attested_nodes_expired_for,
        Some(Duration::from_secs(720 * 3600))
    );
    assert_eq!(c.prune_attested_nodes_batch_size, 500);
    assert_eq!(c.proxy_protocol_trusted_cidrs.len(), 2);
    assert!(c.proxy_protocol_trusted_cidrs[0].contains("10.1.2.3".parse().expect("ip")));
    assert!(!c.proxy_protocol_trusted_cidrs[1].contains("10.1.2.3".parse().expect("ip")));
    assert_eq!(
        c.ratelimit,
        RateLimitConfig {
            attestation: true,
            signing: false
        }
    );
    assert_eq!(c.agent_ttl, Duration::from_secs(72 * 3600));
    let tls = c.tls_config.as_ref().expect("tls_config");
    assert_eq!(tls.min_tls_version.as_deref(), Some("VersionTLS13"));
    assert_eq!(tls.cipher_suites.len(), 2);
    assert_eq!(tls.curve_preferences[0], "X25519MLKEM768");
    let be = c
        .federation
        .as_ref()
        .and_then(|f| f.bundle_endpoint.as_ref())
        .expect("be");
    match &be.profile {
        BundleEndpointProfile::HttpsWebServingCert(s) => {
            assert_eq!(
                s.cert_file_path,
                PathBuf::from("conf/server/bundleendpoint.crt")
            );
            assert_eq!(s.file_sync_interval, Duration::from_secs(3600));
        }
        other => panic!("unexpected profile {other:?}"),
    }
    let fw = &c.federation.as_ref().expect("fed").federates_with[0];
    assert_eq!(fw.profile, FederatesWithProfile::HttpsWeb);
    let opa = c.experimental.auth_opa_policy_engine.as_ref().expect("opa");
    assert_eq!(
        opa.rego_path,
        Some(PathBuf::from("./conf/server/policy.rego"))
    );
    // agent_ttl 72h exceeds 168h/6 = 28h.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("agent_ttl is too high for the configured ca_ttl value")),
        "{:?}",
        c.warnings
    );
    let sql = c.sql_datastore().expect("sql").expect("present");
    assert_eq!(
        sql.database_type,
        DatabaseType::AwsPostgres {
            region: "us-east-1".to_owned()
        }
    );
    assert_eq!(sql.database_type.dialect(), "postgres");
    assert_eq!(sql.max_idle_conns, 2);
    assert_eq!(sql.ro_connection_string, None);
    let disk = DiskKeyManagerConfig::from_plugin(c.plugin("KeyManager", "disk").expect("disk"))
        .expect("disk config");
    assert_eq!(
        disk.keys_path,
        PathBuf::from("/opt/spire/data/server/keys.json")
    );
    let t = &c.telemetry;
    assert_eq!(t.prometheus.as_ref().and_then(|p| p.port), Some(9988));
    assert_eq!(
        t.dogstatsd,
        ["localhost:8125", "collector.example.org:1337"]
    );
    assert_eq!(t.statsd.len(), 2);
    assert_eq!(t.m3[1].env, "prod");
    assert!(t.in_mem.is_some());
    assert!(c.health_checks.listener_enabled);
    let psat = c.plugin("NodeAttestor", "k8s_psat").expect("psat");
    assert_eq!(
        psat.data.to_json()["clusters"]["example-cluster"]["audience"][0],
        "spire-server"
    );
}

#[test]
fn federation_validation() {
    let base = "trust_domain = \"example.org\"\ndata_dir = \"/d\"\n";
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n federates_with \"a.test\" {{\n bundle_endpoint_url = \"http://a.test/bundle\"\n bundle_endpoint_profile \"https_web\" {{}}\n }}\n}}"
        ))),
        "federation.federates_with[\"a.test\"].bundle_endpoint_url must use the HTTPS protocol; URL found: \"http://a.test/bundle\""
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n federates_with \"a.test\" {{\n bundle_endpoint_profile \"https_web\" {{}}\n }}\n}}"
        ))),
        "federation.federates_with[\"a.test\"].bundle_endpoint_url must be configured"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n federates_with \"a.test\" {{\n bundle_endpoint_url = \"https://a.test\"\n }}\n}}"
        ))),
        "federation configuration for trust domain \"a.test\": missing bundle endpoint configuration"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n federates_with \"a.test\" {{\n bundle_endpoint_url = \"https://a.test\"\n bundle_endpoint_profile \"https_spiffe\" {{\n endpoint_spiffe_id = \"not-an-id\"\n }}\n }}\n}}"
        ))),
        format!(
            "error parsing federation relationship for trust domain \"a.test\": could not get endpoint SPIFFE ID: {}",
            spiffe_core::SpiffeId::parse("not-an-id").expect_err("bad id")
        )
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n bundle_endpoint {{\n port = 8443\n acme {{\n domain_name = \"x.org\"\n }}\n }}\n}}"
        ))),
        "federation.bundle_endpoint.acme.email must be configured"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n bundle_endpoint {{\n port = 8443\n acme {{\n domain_name = \"x.org\"\n email = \"a@x.org\"\n }}\n profile \"https_spiffe\" {{}}\n }}\n}}"
        ))),
        "either bundle endpoint 'acme' or 'profile' can be set, but not both"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n bundle_endpoint {{\n port = 8443\n profile \"https_web\" {{}}\n }}\n}}"
        ))),
        "malformed https_web profile configuration: 'acme' or 'serving_cert_file' is required"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}federation {{\n bundle_endpoint {{\n port = 8443\n profile \"https_spiffe\" {{}}\n profile \"https_web\" {{}}\n }}\n}}"
        ))),
        "exactly one bundle endpoint profile is expected"
    );
    // No profile: warning, https_spiffe.
    let c = load_text(
        &with_server(&format!("{base}federation {{\n bundle_endpoint {{\n port = 8443\n refresh_hint = \"30s\"\n }}\n}}")),
        &ServerFlags::default(),
    )
    .expect("load");
    let be = c
        .federation
        .as_ref()
        .and_then(|f| f.bundle_endpoint.as_ref())
        .expect("be");
    assert_eq!(be.profile, BundleEndpointProfile::HttpsSpiffe);
    assert_eq!(be.refresh_hint, Duration::from_secs(30));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("Bundle endpoint is configured but has no profile set"))
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("Bundle endpoint refresh hint set too low"))
    );
}

#[test]
fn misc_validation() {
    let base = "trust_domain = \"example.org\"\ndata_dir = \"/d\"\n";
    assert_eq!(
        err(&with_server(&format!("{base}log_level = \"verbose\""))),
        "could not start logger: not a valid logrus Level: \"verbose\""
    );
    assert_eq!(
        err(&with_server(&format!("{base}log_format = \"xml\""))),
        "could not start logger: unknown logger format: \"xml\""
    );
    assert_eq!(
        err(&with_server(&format!("{base}bind_port = 70000"))),
        "could not resolve bind address \"0.0.0.0:70000\": address 70000: invalid port"
    );
    assert_eq!(
        err(&with_server(&format!("{base}bind_port = \"eighty\""))),
        "invalid value for server.bind_port: strconv.ParseInt: parsing \"eighty\": invalid syntax"
    );
    assert_eq!(
        err(&with_server(&format!("{base}admin_ids = [\"not-an-id\"]"))),
        format!(
            "could not parse admin ID \"not-an-id\": {}",
            spiffe_core::SpiffeId::parse("not-an-id").expect_err("bad id")
        )
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}experimental {{\n named_pipe_name = \"\\\\x\"\n}}"
        ))),
        "invalid configuration: named_pipe_name is not supported in this platform; please use socket_path instead"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}experimental {{\n event_timeout = \"1m\"\n sql_transaction_timeout = \"1m\"\n}}"
        ))),
        "both experimental sql_transaction_timeout and event_timeout set, only set event_timeout"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}proxy_protocol_trusted_cidrs = [\"10.0.0.0\"]"
        ))),
        "could not parse proxy_protocol_trusted_cidrs \"10.0.0.0\": invalid CIDR address: 10.0.0.0"
    );
    assert_eq!(
        err(&with_server(&format!(
            "{base}experimental {{\n feature_flags = [\"nope\"]\n}}"
        ))),
        "error loading feature flags: unknown feature flag \"nope\""
    );
    let c = load_text(
        &with_server(&format!(
            "{base}bind_address = \"[::1]\"\nca_subject {{}}\n"
        )),
        &ServerFlags::default(),
    )
    .expect("load");
    assert_eq!(c.bind_address, "::1");
    assert_eq!(c.ca_subject, CaSubject::default());
    assert_eq!(
        c.warnings,
        ["ca_subject configurable is set but empty; the default will be used"]
    );
}

#[test]
fn json_server_config() {
    let text = r#"{
  "server": {"trust_domain": "example.org", "data_dir": "/d", "bind_port": "8082"},
  "plugins": {
    "DataStore": {"sql": {"plugin_data": {"database_type": "postgres", "connection_string": "dbname=spire", "max_open_conns": "10"}}},
    "KeyManager": {"memory": {"plugin_data": {}}}
  }
}"#;
    let c = ServerConfig::parse(text, &ServerFlags::default()).expect("json");
    assert_eq!(c.bind_port, 8082);
    let sql = c.sql_datastore().expect("sql").expect("present");
    assert_eq!(sql.database_type, DatabaseType::Postgres);
    assert_eq!(sql.max_open_conns, 10);
}

#[test]
fn plugin_views_report_missing_fields() {
    let text = minimal().replace(
        "KeyManager \"memory\" {\n        plugin_data = {}\n    }",
        "KeyManager \"disk\" {\n plugin_data {}\n }\n UpstreamAuthority \"disk\" {\n plugin_data {\n key_file_path = \"k\"\n }\n }",
    );
    let c = load_text(&text, &ServerFlags::default()).expect("load");
    let e = DiskKeyManagerConfig::from_plugin(c.plugin("KeyManager", "disk").expect("km"))
        .expect_err("keys_path");
    assert_eq!(
        e.to_string(),
        "failed to create plugin config for \"KeyManager\"/\"disk\": keys_path is required"
    );
    let e = c.disk_upstream_authority().expect_err("cert");
    assert_eq!(
        e.to_string(),
        "failed to create plugin config for \"UpstreamAuthority\"/\"disk\": cert_file_path is required"
    );
    let bad_sql = minimal().replace("database_type = \"sqlite3\"", "database_type = \"oracle\"");
    let c = load_text(&bad_sql, &ServerFlags::default()).expect("load");
    assert_eq!(
        c.sql_datastore().expect_err("oracle").to_string(),
        "failed to create plugin config for \"DataStore\"/\"sql\": unsupported database_type: \"oracle\""
    );
}

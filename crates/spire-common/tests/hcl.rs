//! HCL loading: fixtures, env expansion, unknown keys, plugins, HCL v1 forms, JSON.

use std::path::{Path, PathBuf};

use spire_common::hcl::{
    self, ConfigError, ConfigNode, PluginConstraint, Section, UnknownKeyCheck, check_plugin_counts,
    expand_env_with, load_file, parse_plugins, parse_str,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn missing_file_error_names_absolute_path() {
    let err = load_file(Path::new("no/such/server.conf"), false).expect_err("missing");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        err.to_string(),
        format!(
            "could not find config file {}: please use the -config flag",
            cwd.join("no/such/server.conf").display()
        )
    );
}

#[test]
fn syntax_error_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "bad.conf", "server {\n  trust_domain = \n");
    let err = load_file(&p, false).expect_err("bad");
    assert!(
        err.to_string().starts_with(&format!(
            "unable to decode configuration at \"{}\": ",
            p.display()
        )),
        "{err}"
    );
}

#[test]
fn every_fixture_parses() {
    for name in [
        "server.conf",
        "agent.conf",
        "server_full.conf",
        "server_full_uncommented.conf",
        "agent_full.conf",
        "agent_full_uncommented.conf",
    ] {
        let obj = load_file(&fixture(name), false).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plugins = obj.get("plugins").expect("plugins");
        parse_plugins(&plugins).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn quickstart_server_plugins_in_order() {
    let obj = load_file(&fixture("server.conf"), false).expect("load");
    let plugins = parse_plugins(&obj.get("plugins").expect("plugins")).expect("plugins");
    let ids: Vec<(String, String)> = plugins
        .iter()
        .map(|p| (p.plugin_type.clone(), p.name.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            ("DataStore".to_owned(), "sql".to_owned()),
            ("NodeAttestor".to_owned(), "join_token".to_owned()),
            ("KeyManager".to_owned(), "memory".to_owned()),
            ("UpstreamAuthority".to_owned(), "disk".to_owned()),
        ]
    );
    let sql = &plugins[0];
    assert!(sql.enabled);
    assert!(!sql.is_external());
    let json = sql.data.to_json();
    assert_eq!(json["database_type"], "sqlite3");
    assert_eq!(json["connection_string"], "./.data/datastore.sqlite3");
    let text = sql.data.to_hcl_string().expect("print");
    assert!(text.contains("database_type = \"sqlite3\""), "{text}");
    // `plugin_data {}` and `plugin_data = {}` are both empty data.
    assert!(plugins[1].data.is_empty());
    assert!(plugins[2].data.is_empty());
    assert_eq!(plugins[2].data.to_hcl_string().expect("print"), "");
    check_plugin_counts(
        &plugins,
        &[
            ("DataStore", PluginConstraint::EXACTLY_ONE),
            ("KeyManager", PluginConstraint::EXACTLY_ONE),
            ("UpstreamAuthority", PluginConstraint::MAYBE_ONE),
        ],
    )
    .expect("counts");
}

#[test]
fn plugin_data_block_and_attribute_forms_are_equivalent() {
    let a = parse_str("plugins {\n KeyManager \"disk\" {\n plugin_data {\n keys_path = \"/k\"\n n = 3\n }\n }\n}\n")
        .expect("a");
    let b = parse_str("plugins {\n KeyManager \"disk\" {\n plugin_data = {\n keys_path = \"/k\"\n n = 3\n }\n }\n}\n")
        .expect("b");
    let c = parse_str("plugins {\n KeyManager {\n disk {\n plugin_data {\n keys_path = \"/k\"\n n = 3\n }\n }\n }\n}\n")
        .expect("c");
    let d = parse_str(
        r#"{"plugins": {"KeyManager": {"disk": {"plugin_data": {"keys_path": "/k", "n": 3}}}}}"#,
    )
    .expect("d");
    let decode = |o: &hcl::ConfigObject| {
        let p = parse_plugins(&o.get("plugins").expect("plugins")).expect("parse");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].plugin_type, "KeyManager");
        assert_eq!(p[0].name, "disk");
        p[0].data.to_json()
    };
    let ja = decode(&a);
    assert_eq!(ja, serde_json::json!({"keys_path": "/k", "n": 3}));
    assert_eq!(decode(&b), ja);
    assert_eq!(decode(&c), ja);
    assert_eq!(decode(&d), ja);

    #[derive(serde::Deserialize)]
    struct Disk {
        keys_path: String,
        #[serde(deserialize_with = "hcl::de::int")]
        n: u32,
    }
    let p = parse_plugins(&b.get("plugins").expect("plugins")).expect("parse");
    let disk: Disk = p[0].decode_data().expect("decode");
    assert_eq!(disk.keys_path, "/k");
    assert_eq!(disk.n, 3);
}

#[test]
fn duplicate_plugin_is_an_error() {
    let o = parse_str(
        "plugins {\n NodeAttestor \"join_token\" {\n plugin_data {}\n }\n NodeAttestor \"join_token\" {\n plugin_data {}\n }\n}\n",
    )
    .expect("parse");
    let err = parse_plugins(&o.get("plugins").expect("plugins")).expect_err("dup");
    assert_eq!(
        err.to_string(),
        "plugin \"NodeAttestor\"/\"join_token\" declared more than once"
    );
}

#[test]
fn plugin_fields() {
    let o = parse_str(
        r#"plugins {
  NodeAttestor "tpm" {
    plugin_cmd = "/usr/libexec/spire/tpm"
    plugin_args = ["-v", "1"]
    plugin_checksum = "abc123"
    plugin_data_file = "/etc/spire/tpm.conf"
    enabled = false
  }
  WorkloadAttestor "unix" {
    plugin_data { discover_workload_path = true }
  }
}"#,
    )
    .expect("parse");
    let p = parse_plugins(&o.get("plugins").expect("plugins")).expect("plugins");
    assert_eq!(p[0].plugin_cmd.as_deref(), Some("/usr/libexec/spire/tpm"));
    assert_eq!(p[0].plugin_args, ["-v", "1"]);
    assert_eq!(p[0].plugin_checksum.as_deref(), Some("abc123"));
    assert_eq!(
        p[0].data_file.as_deref(),
        Some(Path::new("/etc/spire/tpm.conf"))
    );
    assert!(!p[0].enabled);
    assert!(p[0].is_external());
    assert_eq!(p[1].data.to_json()["discover_workload_path"], true);
    // Disabled plugins do not count.
    let err = check_plugin_counts(&p, &[("NodeAttestor", PluginConstraint::EXACTLY_ONE)])
        .expect_err("count");
    assert_eq!(
        err.to_string(),
        "plugin type \"NodeAttestor\" constraint not satisfied: expected exactly 1 but got 0"
    );

    let o = parse_str(
        "plugins {\n KeyManager \"disk\" {\n plugin_data {}\n plugin_data_file = \"x\"\n }\n}\n",
    )
    .expect("parse");
    let err = parse_plugins(&o.get("plugins").expect("plugins")).expect_err("both");
    assert_eq!(
        err.to_string(),
        "failed to create plugin config for \"KeyManager\"/\"disk\": only one of [plugin_data, plugin_data_file] can be used"
    );
}

#[test]
fn expand_env_follows_go_os_expand() {
    let lookup = |k: &str| match k {
        "TD" => Some("example.org".to_owned()),
        "EMPTY" => Some(String::new()),
        "1" => Some("one".to_owned()),
        _ => None,
    };
    let cases = [
        ("trust_domain = \"$TD\"", "trust_domain = \"example.org\""),
        ("${TD}/x", "example.org/x"),
        ("$TD.x", "example.org.x"),
        ("$UNSET-x", "-x"),
        ("a$$b", "a$b"),
        ("cost: $", "cost: $"),
        ("$ x", "$ x"),
        ("${}x", "x"),
        ("${TD", "TD"),
        ("$1x", "onex"),
        ("${TD:-default}", ""),
        ("no vars", "no vars"),
        ("é$TD€", "éexample.org€"),
    ];
    for (input, want) in cases {
        assert_eq!(expand_env_with(input, lookup), want, "{input:?}");
    }
}

#[test]
fn expand_env_applies_to_files_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = std::env::var("HOME").unwrap_or_default();
    let p = write(
        dir.path(),
        "t.conf",
        "server {\n data_dir = \"$HOME/data\"\n other = \"${HOME}\"\n}\n",
    );
    let raw = load_file(&p, false).expect("raw");
    let server = raw.get("server").expect("server");
    let server = server.as_object().expect("object");
    assert_eq!(
        server.get("data_dir"),
        Some(ConfigNode::String("$HOME/data".to_owned()))
    );
    // Without -expandEnv `${HOME}` stays literal (HCL v1 has no interpolation).
    assert_eq!(
        server.get("other"),
        Some(ConfigNode::String("${HOME}".to_owned()))
    );
    let expanded = load_file(&p, true).expect("expanded");
    let server = expanded.get("server").expect("server");
    let server = server.as_object().expect("object");
    assert_eq!(
        server.get("data_dir"),
        Some(ConfigNode::String(format!("{home}/data")))
    );
    assert_eq!(server.get("other"), Some(ConfigNode::String(home)));
}

#[test]
fn unknown_keys_per_section() {
    let o = parse_str(
        "server {\n trust_domain = \"x\"\n foo = 1\n bar = \"b\"\n experimental {\n whatever = 1\n }\n}\nunknown_top {}\n",
    )
    .expect("parse");
    let root = Section::root(o);
    let server = root
        .section("server", "server")
        .expect("ok")
        .expect("present");
    assert_eq!(
        server.string("trust_domain").expect("td").as_deref(),
        Some("x")
    );
    let exp = server
        .section("experimental", "experimental")
        .expect("ok")
        .expect("present");
    let mut check = UnknownKeyCheck::new();
    check.check(&server);
    check.check(&root);
    // `experimental` is read but not checked.
    assert_eq!(exp.unknown_keys(), ["whatever"]);
    let err = check.finish().expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown configuration detected: section \"server\": keys [bar, foo]; section \"top-level\": keys [unknown_top]"
    );
    assert!(matches!(err, ConfigError::UnknownConfiguration(ref v) if v.len() == 2));
}

#[test]
fn weak_typing() {
    let o = parse_str(
        "s {\n port_s = \"8081\"\n port_n = 8081\n hex = \"0x1f\"\n name_n = 10255\n b = true\n list = [\"a\", 1]\n bad = \"x1\"\n big = 70000\n}\n",
    )
    .expect("parse");
    let root = Section::root(o);
    let s = root.section("s", "s").expect("ok").expect("present");
    assert_eq!(s.int("port_s").expect("int"), Some(8081));
    assert_eq!(s.int_as::<u16>("port_n").expect("int"), Some(8081));
    assert_eq!(s.int("hex").expect("int"), Some(31));
    assert_eq!(
        s.string("name_n").expect("string").as_deref(),
        Some("10255")
    );
    assert_eq!(s.bool("b").expect("bool"), Some(true));
    assert_eq!(
        s.strings("list").expect("list"),
        Some(vec!["a".to_owned(), "1".to_owned()])
    );
    let err = s.int("bad").expect_err("bad");
    assert_eq!(
        err.to_string(),
        "invalid value for s.bad: strconv.ParseInt: parsing \"x1\": invalid syntax"
    );
    assert!(s.int_as::<u16>("big").is_err());
    assert!(s.bool("port_n").is_err());
    assert_eq!(s.int("missing").expect("none"), None);
}

#[test]
fn hcl_v1_forms_hcl2_refuses() {
    let text = r#"
server { trust_domain = "example.org", data_dir = "/d", bind_port = 0x1f91 }
plugins {
    KeyManager "memory" { plugin_data {} }
    "NodeAttestor" "join_token" { plugin_data { } }
    DataStore sql { plugin_data { database_type = "sqlite3", connection_string = "x" } }
}
telemetry {
    M3 = [
        { address = "localhost:9000" env = "dev" },
    ]
}
health_checks {
    bind_port = "80"
    bind_port = "8080"
}
"#;
    assert!(
        ::hcl::parse(text).is_err(),
        "hcl-rs alone should refuse this"
    );
    let o = parse_str(text).expect("HCL v1 fallback");
    let root = Section::root(o);
    let server = root
        .section("server", "server")
        .expect("ok")
        .expect("server");
    assert_eq!(
        server.string("trust_domain").expect("td").as_deref(),
        Some("example.org")
    );
    assert_eq!(server.int("bind_port").expect("port"), Some(8081));
    let plugins = parse_plugins(&root.raw("plugins").expect("plugins")).expect("plugins");
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["memory", "join_token", "sql"]);
    assert_eq!(plugins[2].data.to_json()["connection_string"], "x");
    let telemetry = root
        .section("telemetry", "telemetry")
        .expect("ok")
        .expect("t");
    let m3 = telemetry.section_list("M3", "M3").expect("m3");
    assert_eq!(m3[0].string("env").expect("env").as_deref(), Some("dev"));
    let hc = root
        .section("health_checks", "health check")
        .expect("ok")
        .expect("hc");
    assert_eq!(
        hc.string("bind_port").expect("port").as_deref(),
        Some("8080")
    );
}

#[test]
fn labelled_and_repeated_blocks() {
    let o = parse_str(
        r#"federation {
    federates_with "a.test" { bundle_endpoint_url = "https://a" }
    federates_with "b.test" { bundle_endpoint_url = "https://b" }
}
server { a = 1 }
server { b = 2 }
"#,
    )
    .expect("parse");
    let root = Section::root(o);
    let fed = root
        .section("federation", "federation")
        .expect("ok")
        .expect("fed");
    let fw = fed
        .labeled("federates_with", "federates_with")
        .expect("labeled");
    let labels: Vec<&str> = fw.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["a.test", "b.test"]);
    assert_eq!(
        fw[1]
            .1
            .string("bundle_endpoint_url")
            .expect("url")
            .as_deref(),
        Some("https://b")
    );
    // Repeated blocks merge as in HCL v1.
    let server = root
        .section("server", "server")
        .expect("ok")
        .expect("server");
    assert_eq!(server.int("a").expect("a"), Some(1));
    assert_eq!(server.int("b").expect("b"), Some(2));
}

#[test]
fn json_config() {
    let o = parse_str(
        r#"{
  "server": {"trust_domain": "example.org", "bind_port": "8081"},
  "plugins": {"DataStore": [{"sql": {"plugin_data": {"database_type": "sqlite3"}}}]}
}"#,
    )
    .expect("json");
    let root = Section::root(o);
    let server = root
        .section("server", "server")
        .expect("ok")
        .expect("server");
    assert_eq!(server.int("bind_port").expect("port"), Some(8081));
    let plugins = parse_plugins(&root.raw("plugins").expect("plugins")).expect("plugins");
    assert_eq!(plugins[0].name, "sql");
    assert_eq!(plugins[0].data.to_json()["database_type"], "sqlite3");
    let printed = plugins[0].data.to_hcl_string().expect("print");
    assert!(printed.contains("database_type = \"sqlite3\""), "{printed}");
}

#[test]
fn hcl2_only_expressions_are_refused() {
    let err = parse_str("server {\n trust_domain = var.td\n}\n").expect_err("traversal");
    assert!(
        err.to_string().contains("server.trust_domain: unsupported"),
        "{err}"
    );
    let err = parse_str("server {\n port = 1 + 2\n}\n").expect_err("op");
    assert!(err.to_string().contains("operator expression"), "{err}");
}

#[test]
fn plugin_data_prints_back_as_hcl() {
    let o = parse_str(
        "plugins {\n NodeAttestor \"k8s_psat\" {\n plugin_data {\n clusters = {\n \"c1\" = {\n audience = [\"spire-server\"]\n }\n }\n path = \"${X}/\\\"q\\\"\"\n }\n }\n}\n",
    )
    .expect("parse");
    let p = parse_plugins(&o.get("plugins").expect("plugins")).expect("plugins");
    let text = p[0].data.to_hcl_string().expect("print");
    // The printed text parses back to the same data.
    let again = hcl::PluginData::parse(&text).expect("reparse");
    assert_eq!(again.to_json(), p[0].data.to_json(), "{text}");
    assert_eq!(p[0].data.to_json()["path"], "${X}/\"q\"");
    assert_eq!(
        p[0].data.to_json()["clusters"]["c1"]["audience"][0],
        "spire-server"
    );
}

/// Deterministic garbage through every parser: errors are fine, panics are not.
#[test]
fn no_panic_on_garbage() {
    let alphabet: Vec<char> = "ab_-.0x9 \n\t{}[]=,\"\\$#/*<-EOF:µé".chars().collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let _ = parse_str(&s);
        let _ = hcl::hcl1::to_hcl2(&s);
        let _ = spire_common::duration::parse_nanos(&s);
        let _ = hcl::parse_go_int(&s);
        let _ = expand_env_with(&s, |_| Some("v".to_owned()));
        let _ = spire_common::selector::Selector::parse(&s);
        let wrapped = format!("server {{\n x = \"{s}\"\n {s} = 1\n}}\nplugins {{ {s} }}");
        if let Ok(o) = parse_str(&wrapped)
            && let Some(p) = o.get("plugins")
        {
            let _ = parse_plugins(&p);
        }
    }
}

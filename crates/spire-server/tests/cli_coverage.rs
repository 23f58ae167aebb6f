//! The `spire-server` commands of server.md §2 not covered by the other CLI tests, run as
//! the real binary against a real server: human output and `-output json` (SPIRE prints
//! the response message as protojson; Empty responses as `{}`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, attest_with_svid, cli_json, cli_ok, cli_stdin};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{Value, json};

/// A UUID as printed by `token generate`.
fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// The strings of a JSON array of base64 values, decoded.
fn decoded(values: &Value) -> Vec<Vec<u8>> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| STANDARD.decode(v.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_generate_pretty() {
    let server = TestServer::start().await;
    let out = cli_ok(&server, &["token", "generate"]).await;
    let (token, rest) = out
        .strip_prefix("Token: ")
        .unwrap()
        .split_once('\n')
        .unwrap();
    assert!(is_uuid(token), "{out:?}");
    assert_eq!(rest, "Warning: Missing SPIFFE ID.\n");

    let out = cli_ok(
        &server,
        &[
            "token",
            "generate",
            "-spiffeID",
            "spiffe://example.org/host",
            "-ttl",
            "60",
        ],
    )
    .await;
    let token = out
        .strip_prefix("Token: ")
        .unwrap()
        .strip_suffix('\n')
        .unwrap();
    assert!(is_uuid(token), "{out:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_show_ban_evict_json() {
    let server = TestServer::start().await;
    let (path, _, _) = attest_with_svid(&server).await;
    let id = format!("spiffe://example.org{path}");

    let agent = cli_json(&server, &["agent", "show", "-spiffeID", &id]).await;
    assert_eq!(
        agent["id"],
        json!({"trust_domain": "example.org", "path": path})
    );
    assert_eq!(agent["attestation_type"], "join_token");
    assert_eq!(agent["banned"], false);
    assert_eq!(agent["can_reattest"], false);
    assert!(agent["x509svid_expires_at"].is_string(), "{agent}");
    let serial = agent["x509svid_serial_number"].as_str().unwrap();
    assert!(serial.chars().all(|c| c.is_ascii_digit()), "{agent}");

    // BanAgent and DeleteAgent answer google.protobuf.Empty.
    assert_eq!(
        cli_json(&server, &["agent", "ban", "-spiffeID", &id]).await,
        json!({})
    );
    let agent = cli_json(&server, &["agent", "show", "-spiffeID", &id]).await;
    assert_eq!(agent["banned"], true);
    assert_eq!(
        cli_json(&server, &["agent", "evict", "-spiffeID", &id]).await,
        json!({})
    );
    assert_eq!(
        cli_json(&server, &["agent", "count"]).await,
        json!({"count": 0})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_update_and_bundle_set_delete_json() {
    let server = TestServer::start().await;
    let entry = &[
        "-parentID",
        "spiffe://example.org/host",
        "-selector",
        "unix:uid:1",
    ];
    let created = cli_json(
        &server,
        &[
            &["entry", "create", "-spiffeID", "spiffe://example.org/a"],
            &entry[..],
        ]
        .concat(),
    )
    .await;
    let id = created["results"][0]["entry"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let updated = cli_json(
        &server,
        &[
            &[
                "entry",
                "update",
                "-entryID",
                &id,
                "-spiffeID",
                "spiffe://example.org/b",
            ],
            &entry[..],
        ]
        .concat(),
    )
    .await;
    let result = &updated["results"][0];
    assert_eq!(result["status"], json!({"code": 0, "message": "OK"}));
    assert_eq!(result["entry"]["id"], json!(id));
    assert_eq!(
        result["entry"]["spiffe_id"],
        json!({"trust_domain": "example.org", "path": "/b"})
    );
    assert_eq!(result["entry"]["revision_number"], "1");

    // bundle set reads PEM from stdin: BatchSetFederatedBundleResponse.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    let args = [
        "bundle",
        "set",
        "-id",
        "spiffe://two.org",
        "-output",
        "json",
    ];
    let (ok, out, err) = cli_stdin(&server, &args, &ca.pem()).await;
    assert!(ok, "{err}");
    let set: Value = serde_json::from_str(&out).unwrap();
    let result = &set["results"][0];
    assert_eq!(result["status"], json!({"code": 0, "message": "OK"}));
    assert_eq!(result["bundle"]["trust_domain"], "two.org");
    assert_eq!(
        decoded(&json!([result["bundle"]["x509_authorities"][0]["asn1"]])),
        vec![ca.der().to_vec()]
    );

    let deleted = cli_json(&server, &["bundle", "delete", "-id", "spiffe://two.org"]).await;
    assert_eq!(
        deleted,
        json!({"results": [{"status": {"code": 0, "message": "OK"}, "trust_domain": "two.org"}]})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mint_debug_and_logger_json() {
    let server = TestServer::start().await;

    // x509 mint: SPIRE's {x509_svid, private_key, root_cas}, DER in base64.
    let minted = cli_json(
        &server,
        &["x509", "mint", "-spiffeID", "spiffe://example.org/w"],
    )
    .await;
    let mut keys: Vec<&String> = minted.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["private_key", "root_cas", "x509_svid"]);
    let chain = decoded(&minted["x509_svid"]);
    let svid = spiffe_core::X509Svid::parse_der(
        &chain.concat(),
        &STANDARD
            .decode(minted["private_key"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/w");
    let roots = decoded(&minted["root_cas"]);
    let bundle = server.bundle().await;
    let own: Vec<Vec<u8>> = bundle
        .x509_authorities
        .into_iter()
        .map(|a| a.asn1)
        .collect();
    assert_eq!(roots, own);

    // jwt mint: MintJWTSVIDResponse.
    let minted = cli_json(
        &server,
        &[
            "jwt",
            "mint",
            "-spiffeID",
            "spiffe://example.org/w",
            "-audience",
            "db",
        ],
    )
    .await;
    let svid = &minted["svid"];
    assert_eq!(
        svid["id"],
        json!({"trust_domain": "example.org", "path": "/w"})
    );
    assert_eq!(svid["token"].as_str().unwrap().split('.').count(), 3);
    assert!(
        svid["expires_at"].is_string() && svid["issued_at"].is_string(),
        "{svid}"
    );

    // debug getinfo: GetInfoResponse (int32 counts as numbers).
    let info = cli_json(&server, &["debug", "getinfo"]).await;
    assert_eq!(info["agents_count"], 0);
    assert_eq!(info["entries_count"], 0);
    assert_eq!(info["federated_bundles_count"], 1);
    assert!(info["uptime"].is_number(), "{info}");
    let chain = info["svid_chain"].as_array().unwrap();
    assert_eq!(
        chain[0]["id"],
        json!({"trust_domain": "example.org", "path": "/spire/server"})
    );

    // logger set / reset: types.Logger with level names.
    assert_eq!(
        cli_json(&server, &["logger", "set", "-level", "debug"]).await,
        json!({"current_level": "DEBUG", "launch_level": "WARN"})
    );
    assert_eq!(
        cli_json(&server, &["logger", "reset"]).await,
        json!({"current_level": "WARN", "launch_level": "WARN"})
    );
    server.stop().await;
}

/// One local authority life cycle of `kind` (`x509` or `jwt`): prepare, activate, taint
/// the old one, revoke it; pretty output when `json` is false, else each response.
async fn authority_cycle(server: &TestServer, kind: &str, json: bool) {
    let title = if kind == "x509" { "X.509" } else { "JWT" };
    let run = |verb: &'static str, id: Option<String>| {
        let kind = kind.to_owned();
        async move {
            let mut args = vec!["localauthority".to_owned(), kind, verb.to_owned()];
            if let Some(id) = id {
                args.extend(["-authorityID".to_owned(), id]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if json {
                cli_json(server, &args).await
            } else {
                Value::String(cli_ok(server, &args).await)
            }
        }
    };
    // The state from the API's JSON is the reference for both forms.
    let state = |field: &str, value: &Value| -> String {
        if json {
            return value[field]["authority_id"].as_str().unwrap().to_owned();
        }
        let out = value.as_str().unwrap();
        let id = out
            .lines()
            .nth(1)
            .unwrap()
            .strip_prefix("  Authority ID: ")
            .unwrap();
        assert!(
            out.lines().nth(2).unwrap().starts_with("  Expires at: "),
            "{out}"
        );
        id.to_owned()
    };
    let shown = cli_json(server, &["localauthority", kind, "show"]).await;
    let active = shown["active"]["authority_id"].as_str().unwrap().to_owned();

    let out = run("prepare", None).await;
    if !json {
        assert!(
            out.as_str()
                .unwrap()
                .starts_with(&format!("Prepared {title} authority:\n"))
        );
    }
    let prepared = state("prepared_authority", &out);
    let shown = cli_json(server, &["localauthority", kind, "show"]).await;
    assert_eq!(shown["prepared"]["authority_id"], json!(prepared));

    for (verb, id, field, past) in [
        ("activate", &prepared, "activated_authority", "Activated"),
        ("taint", &active, "tainted_authority", "Tainted"),
        ("revoke", &active, "revoked_authority", "Revoked"),
    ] {
        let out = run(verb, Some(id.clone())).await;
        if !json {
            let text = out.as_str().unwrap();
            assert!(
                text.starts_with(&format!("{past} {title} authority:\n")),
                "{text}"
            );
        }
        assert_eq!(&state(field, &out), id, "{verb}");
    }
    let shown = cli_json(server, &["localauthority", kind, "show"]).await;
    assert_eq!(shown["active"]["authority_id"], json!(prepared));
    // The revoked authority stays in the old slot until the next prepare.
    assert_eq!(shown["old"]["authority_id"], json!(active), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn localauthority_commands_pretty_and_json() {
    // Self-signed, so the local X.509 authority may be tainted and revoked.
    let server = TestServer::start_with(Setup {
        upstream: false,
        ..Setup::default()
    })
    .await;
    for kind in ["x509", "jwt"] {
        authority_cycle(&server, kind, false).await;
        authority_cycle(&server, kind, true).await;
    }
    server.stop().await;
}

/// The entry block of server.md §2.4 with every optional line present.
fn full_entry_block(id: &str) -> String {
    format!(
        "Entry ID                : {id}\n\
         SPIFFE ID               : spiffe://example.org/full\n\
         Parent ID               : spiffe://example.org/host\n\
         Revision                : 0\n\
         Downstream              : true\n\
         X509-SVID TTL           : 300\n\
         JWT-SVID TTL            : 60\n\
         Expiration time         : 2030-03-17 17:46:40 +0000 UTC\n\
         Selector                : unix:gid:2\n\
         Selector                : unix:uid:1\n\
         FederatesWith           : two.org\n\
         DNS name                : a.example\n\
         DNS name                : b.example\n\
         Admin                   : true\n\
         StoreSvid               : true\n\
         Hint                    : h1\n\
         DisableX509SvidPrefetch : true\n\
         JwtSvidIncludeJti       : true\n\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_create_and_show_pretty() {
    let server = TestServer::start().await;
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    let (ok, _, err) = cli_stdin(
        &server,
        &["bundle", "set", "-id", "spiffe://two.org"],
        &ca.pem(),
    )
    .await;
    assert!(ok, "{err}");

    #[rustfmt::skip]
    let out = cli_ok(&server, &[
        "entry", "create", "-entryID", "full-entry",
        "-parentID", "spiffe://example.org/host", "-spiffeID", "spiffe://example.org/full",
        "-selector", "unix:gid:2", "-selector", "unix:uid:1",
        "-federatesWith", "spiffe://two.org", "-dns", "a.example", "-dns", "b.example",
        "-x509SVIDTTL", "300", "-jwtSVIDTTL", "60", "-entryExpiry", "1900000000",
        "-admin", "-downstream", "-storeSVID", "-hint", "h1",
        "-disableX509SVIDPrefetch", "-jwtSVIDIncludeJTI",
    ]).await;
    assert_eq!(out, full_entry_block("full-entry"));

    // -node: the parent is the server; the minimal block.
    let out = cli_ok(
        &server,
        &[
            "entry",
            "create",
            "-node",
            "-spiffeID",
            "spiffe://example.org/nodes",
            "-selector",
            "unix:uid:3",
        ],
    )
    .await;
    let id = out
        .strip_prefix("Entry ID                : ")
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let node_block = format!(
        "Entry ID                : {id}\n\
         SPIFFE ID               : spiffe://example.org/nodes\n\
         Parent ID               : spiffe://example.org/spire/server\n\
         Revision                : 0\n\
         X509-SVID TTL           : default\n\
         JWT-SVID TTL            : default\n\
         Selector                : unix:uid:3\n\n"
    );
    assert_eq!(out, node_block);

    // show sends by_downstream = the flag, so each entry appears under one form only.
    let out = cli_ok(&server, &["entry", "show"]).await;
    assert_eq!(out, format!("Found 1 entry\n{node_block}"));
    let out = cli_ok(&server, &["entry", "show", "-downstream"]).await;
    assert_eq!(
        out,
        format!("Found 1 entry\n{}", full_entry_block("full-entry"))
    );
    assert_eq!(
        cli_ok(&server, &["entry", "count", "-downstream"]).await,
        "1 registration entry\n"
    );
    server.stop().await;
}

/// Runs the binary with exactly `args` (no `-socketPath` added) and the given environment.
async fn cli_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_spire-server"));
    cmd.args(args)
        .env_remove("SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE")
        .env_remove("SPIRE_SERVER_PRIVATE_SOCKET")
        .envs(env.iter().copied());
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// server.md §2.1: `-socketPath` (non-default) wins, then `-instance` in
/// SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE, then SPIRE_SERVER_PRIVATE_SOCKET.
#[tokio::test(flavor = "multi_thread")]
async fn socket_from_instance_and_environment() {
    let server = TestServer::start().await;
    let socket = server.socket.to_str().unwrap();
    let template = socket.replace("api.sock", "%i.sock");
    let count = ["entry", "count"];
    let expect_ok = |(ok, out, err): (bool, String, String)| {
        assert!(ok, "{err}");
        assert_eq!(out, "0 registration entries\n");
    };
    let expect_err = |(ok, _, err): (bool, String, String), message: &str| {
        assert!(!ok);
        assert_eq!(err, format!("Error: {message}\n"));
    };

    let with_instance = [&count[..], &["-instance", "api"]].concat();
    let tpl = ("SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE", template.as_str());
    expect_ok(cli_env(&with_instance, &[tpl]).await);
    expect_ok(cli_env(&count, &[("SPIRE_SERVER_PRIVATE_SOCKET", socket)]).await);
    let bogus = ("SPIRE_SERVER_PRIVATE_SOCKET", "/nonexistent/api.sock");
    let explicit = [&count[..], &["-socketPath", socket]].concat();
    expect_ok(cli_env(&explicit, &[bogus]).await);

    expect_err(
        cli_env(&with_instance, &[]).await,
        "you must define SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE to use the instance flag",
    );
    let no_marker = ("SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE", "/tmp/api.sock");
    expect_err(
        cli_env(&with_instance, &[no_marker]).await,
        "failed to find %i in SPIRE_SERVER_PRIVATE_SOCKET_TEMPLATE",
    );
    server.stop().await;
}

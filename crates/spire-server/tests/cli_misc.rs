//! The misc operator commands over the real admin socket (server.md §2.2, §2.8, §2.9):
//! `x509 mint`, `jwt mint`, `logger`, `debug getinfo`, `validate`, `healthcheck`, and
//! the Logger and Debug APIs being served on the admin socket only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, cli};

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use spiffe_core::{JwtSvid, SpiffeId, TrustDomain, X509Bundle, X509Svid};
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::debug::v1::GetInfoRequest;
use spire_proto::spire::api::server::debug::v1::debug_client::DebugClient;
use spire_proto::spire::api::server::logger::v1::GetLoggerRequest;
use spire_proto::spire::api::server::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use tonic::Code;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Runs the CLI with exactly `args` (no `-socketPath` added).
async fn cli_raw(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_spire-server"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn td() -> TrustDomain {
    TrustDomain::parse("example.org").unwrap()
}

/// The PEM blocks of `text` with the given tag.
fn pem_blocks(text: &str, tag: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .unwrap()
        .into_iter()
        .filter(|p| p.tag() == tag)
        .map(|p| p.contents().to_vec())
        .collect()
}

fn sans(der: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(u) => uris.push((*u).to_owned()),
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            _ => {}
        }
    }
    (uris, dns)
}

#[tokio::test(flavor = "multi_thread")]
async fn x509_mint_stdout_and_files() {
    let server = TestServer::start().await;

    // stdout: the three PEM sections, in SPIRE's layout.
    let (ok, out, err) = cli(
        &server,
        &[
            "x509",
            "mint",
            "-spiffeID",
            "spiffe://example.org/workload",
            "-dns",
            "a.example.org",
            "-dns",
            "b.example.org",
            "-ttl",
            "1h",
        ],
    )
    .await;
    assert!(ok, "stderr: {err}");
    assert!(err.is_empty(), "unexpected stderr: {err}");
    assert!(
        out.starts_with("X509-SVID:\n-----BEGIN CERTIFICATE-----\n"),
        "{out}"
    );
    let key_at = out
        .find("\nPrivate key:\n-----BEGIN PRIVATE KEY-----\n")
        .unwrap();
    let roots_at = out
        .find("\nRoot CAs:\n-----BEGIN CERTIFICATE-----\n")
        .unwrap();
    assert!(key_at < roots_at);
    assert!(out.ends_with("-----END CERTIFICATE-----\n\n"), "{out:?}");
    let svid_pem = &out["X509-SVID:\n".len()..key_at];
    let key_pem = &out[key_at + "\nPrivate key:\n".len()..roots_at];
    let roots_pem = &out[roots_at + "\nRoot CAs:\n".len()..];
    let svid = X509Svid::parse_pem(svid_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let bundle = X509Bundle::parse_pem(td(), roots_pem.as_bytes()).unwrap();
    let id = svid.verify(&bundle, SystemTime::now()).unwrap();
    assert_eq!(
        id,
        SpiffeId::parse("spiffe://example.org/workload").unwrap()
    );
    let (uris, mut dns) = sans(svid.leaf().as_ref());
    dns.sort();
    assert_eq!(uris, vec!["spiffe://example.org/workload".to_owned()]);
    assert_eq!(
        dns,
        vec!["a.example.org".to_owned(), "b.example.org".to_owned()]
    );
    let (_, leaf) = X509Certificate::from_der(svid.leaf().as_ref()).unwrap();
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(
        lifetime > 3000 && lifetime <= 3600 + 60,
        "lifetime {lifetime}"
    );

    // -write: files, modes and the lines SPIRE prints.
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().display().to_string();
    let (ok, out, err) = cli(
        &server,
        &[
            "x509",
            "mint",
            "-spiffeID",
            "spiffe://example.org/other",
            "-write",
            &dir_str,
        ],
    )
    .await;
    assert!(ok, "stderr: {err}");
    let svid_path = dir.path().join("svid.pem");
    let key_path = dir.path().join("key.pem");
    let bundle_path = dir.path().join("bundle.pem");
    assert_eq!(
        out,
        format!(
            "X509-SVID written to {}\nPrivate key written to {}\nRoot CAs written to {}\n",
            svid_path.display(),
            key_path.display(),
            bundle_path.display()
        )
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&svid_path), 0o644);
    assert_eq!(mode(&bundle_path), 0o644);
    let svid = X509Svid::parse_pem(
        &std::fs::read(&svid_path).unwrap(),
        &std::fs::read(&key_path).unwrap(),
    )
    .unwrap();
    let bundle = X509Bundle::parse_pem(td(), &std::fs::read(&bundle_path).unwrap()).unwrap();
    assert_eq!(
        svid.verify(&bundle, SystemTime::now()).unwrap().as_str(),
        "spiffe://example.org/other"
    );
    assert_eq!(
        pem_blocks(&std::fs::read_to_string(&key_path).unwrap(), "PRIVATE KEY").len(),
        1
    );

    // A TTL beyond the CA's lifetime is capped, with SPIRE's warning.
    let (ok, _, err) = cli(
        &server,
        &[
            "x509",
            "mint",
            "-spiffeID",
            "spiffe://example.org/w",
            "-ttl",
            "87600h",
        ],
    )
    .await;
    assert!(ok);
    assert!(
        err.starts_with("X509-SVID lifetime was capped shorter than specified ttl; expires \""),
        "{err}"
    );

    // Input errors.
    let (ok, _, err) = cli(&server, &["x509", "mint"]).await;
    assert!(!ok);
    assert_eq!(err, "Error: spiffeID must be specified\n");
    let (ok, _, err) = cli(
        &server,
        &["x509", "mint", "-spiffeID", "spiffe://other.org/w"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.starts_with("Error: unable to mint SVID: rpc error: code = InvalidArgument desc = CSR URI SAN is invalid"),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mint_x509_svid_rpc_validation() {
    let server = TestServer::start().await;
    let mut client = SvidClient::new(server.channel());
    let status = client
        .mint_x509svid(svidpb::MintX509svidRequest {
            csr: vec![],
            ttl: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let csr = |uris: &[&str], dns: &[&str]| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        for u in uris {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI((*u).try_into().unwrap()));
        }
        for d in dns {
            params
                .subject_alt_names
                .push(rcgen::SanType::DnsName((*d).try_into().unwrap()));
        }
        params.serialize_request(&key).unwrap().der().to_vec()
    };
    for (uris, dns, want) in [
        (&[][..], &[][..], "CSR URI SAN is required"),
        (
            &["spiffe://example.org/a", "spiffe://example.org/b"][..],
            &[][..],
            "only one URI SAN is expected",
        ),
        (
            &["spiffe://example.org"][..],
            &[][..],
            "CSR URI SAN is invalid",
        ),
        (
            &["spiffe://example.org/a"][..],
            &["bad_name.org"][..],
            "CSR DNS name",
        ),
    ] {
        let status = client
            .mint_x509svid(svidpb::MintX509svidRequest {
                csr: csr(uris, dns),
                ttl: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{uris:?}");
        assert!(status.message().starts_with(want), "{}", status.message());
    }
    let svid = client
        .mint_x509svid(svidpb::MintX509svidRequest {
            csr: csr(&["spiffe://example.org/a"], &[]),
            ttl: 60,
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    assert_eq!(svid.id.unwrap().path, "/a");
    let (_, leaf) = X509Certificate::from_der(&svid.cert_chain[0]).unwrap();
    assert_eq!(svid.expires_at, leaf.validity().not_after.timestamp());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_mint_validates_against_bundle() {
    let server = TestServer::start().await;
    let (ok, out, err) = cli(
        &server,
        &[
            "jwt",
            "mint",
            "-spiffeID",
            "spiffe://example.org/web",
            "-audience",
            "aud1",
            "-audience",
            "aud2",
            "-ttl",
            "5m",
        ],
    )
    .await;
    assert!(ok, "stderr: {err}");
    assert!(err.is_empty(), "{err}");
    let token = out.strip_suffix('\n').unwrap();
    assert!(!token.contains('\n'));
    let bundle = server
        .bundles()
        .get_bundle(bundlepb::GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let bundle = spire_common::convert::bundle_from_proto(&bundle).unwrap();
    let svid =
        JwtSvid::parse_and_validate(token, bundle.jwt_bundle(), &["aud2"], SystemTime::now())
            .unwrap();
    assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/web");
    let exp = svid.expiry_unix();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((exp - now - 300).abs() <= 10, "exp {exp} now {now}");

    // -write: the token alone in a 0600 file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let path_str = path.display().to_string();
    let (ok, out, _) = cli(
        &server,
        &[
            "jwt",
            "mint",
            "-spiffeID",
            "spiffe://example.org/web",
            "-audience",
            "a",
            "-write",
            &path_str,
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(out, format!("JWT-SVID written to {path_str}\n"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::fs::read_to_string(&path).unwrap();
    JwtSvid::parse_and_validate(&token, bundle.jwt_bundle(), &["a"], SystemTime::now()).unwrap();

    let (ok, _, err) = cli(
        &server,
        &["jwt", "mint", "-spiffeID", "spiffe://example.org/web"],
    )
    .await;
    assert!(!ok);
    assert_eq!(err, "Error: at least one audience must be specified\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_get_set_reset() {
    let server = TestServer::start().await;
    let (ok, out, err) = cli(&server, &["logger", "get"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "Logger Level : warning\nLaunch Level : warning\n\n");
    let (ok, out, _) = cli(&server, &["logger", "set", "-level", "debug"]).await;
    assert!(ok);
    assert_eq!(out, "Logger Level : debug\nLaunch Level : warning\n\n");
    let (ok, out, _) = cli(&server, &["logger", "get"]).await;
    assert!(ok);
    assert_eq!(out, "Logger Level : debug\nLaunch Level : warning\n\n");
    let (ok, out, _) = cli(&server, &["logger", "set", "-level", "PANIC"]).await;
    assert!(ok);
    assert_eq!(out, "Logger Level : panic\nLaunch Level : warning\n\n");
    let (ok, out, _) = cli(&server, &["logger", "reset"]).await;
    assert!(ok);
    assert_eq!(out, "Logger Level : warning\nLaunch Level : warning\n\n");
    let (ok, _, err) = cli(&server, &["logger", "set", "-level", "loud"]).await;
    assert!(!ok);
    assert_eq!(err, "Error: the value loud is not a valid setting\n");
    let (ok, _, err) = cli(&server, &["logger", "set"]).await;
    assert!(!ok);
    assert_eq!(err, "Error: a value (-level) must be set\n");
    let (ok, out, _) = cli(&server, &["logger", "get", "-output", "json"]).await;
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["current_level"], "WARN");
    assert_eq!(json["launch_level"], "WARN");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_getinfo_output() {
    let server = TestServer::start().await;
    let (ok, out, err) = cli(&server, &["debug", "getinfo"]).await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Server Debug Info:");
    assert!(lines[1].starts_with("  Uptime:                  "), "{out}");
    assert!(lines[1].ends_with('s'), "{out}");
    assert_eq!(lines[2], "  Registered Agents:       0");
    assert_eq!(lines[3], "  Registration Entries:    0");
    assert_eq!(lines[4], "  Federated Bundles:       1");
    assert_eq!(lines[5], "  SVID Chain:");
    assert_eq!(
        lines[6],
        "    [0] SPIFFE ID:  spiffe://example.org/spire/server"
    );
    assert!(lines[7].starts_with("        Subject:    "), "{out}");
    assert!(lines[8].starts_with("        Expires At: 20"), "{out}");
    assert!(lines[8].ends_with('Z'), "{out}");
    // leaf, the server CA (spiffe://example.org) and the upstream root.
    assert!(
        out.contains("    [1] SPIFFE ID:  spiffe://example.org\n"),
        "{out}"
    );
    assert!(lines.len() >= 12, "{out}");

    let info = DebugClient::new(server.channel())
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.svid_chain.len() >= 2);
    assert_eq!(info.federated_bundles_count, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_and_debug_not_served_over_tcp() {
    let server = TestServer::start().await;
    let bundle = server
        .bundles()
        .get_bundle(bundlepb::GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let bundle = spire_common::convert::bundle_from_proto(&bundle).unwrap();
    let trust = Arc::new(spire_common::tls::TrustStore::new(
        [bundle].into_iter().collect(),
    ));
    let config = spire_common::tls::client_config(
        trust,
        SpiffeId::parse("spiffe://example.org/spire/server").unwrap(),
        Arc::new(spire_common::tls::SvidResolver::new()),
    )
    .unwrap();
    let channel = spire_common::grpc_tls::tls_channel(
        &format!("127.0.0.1:{}", server.port),
        Arc::new(config),
    )
    .unwrap();
    // The TCP listener works (GetBundle is open to anyone)...
    BundleClient::new(channel.clone())
        .get_bundle(bundlepb::GetBundleRequest::default())
        .await
        .unwrap();
    // ...but Logger and Debug are not registered there: Unimplemented, as gRPC answers
    // for an unknown service.
    let status = LoggerClient::new(channel.clone())
        .get_logger(GetLoggerRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "unknown service spire.api.server.logger.v1.Logger"
    );
    let status = DebugClient::new(channel)
        .get_info(GetInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    // While they are on the admin socket.
    LoggerClient::new(server.channel())
        .get_logger(GetLoggerRequest {})
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_and_healthcheck() {
    let server = TestServer::start().await;
    let config = server.config_path.display().to_string();
    let (code, out, err) = cli_raw(&["validate", "-config", &config]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "SPIRE server configuration file is valid.\n");
    assert!(err.is_empty());

    // An unknown key fails loading.
    let bad = server.config_path.with_file_name("bad.conf");
    let text = std::fs::read_to_string(&server.config_path).unwrap();
    std::fs::write(
        &bad,
        text.replacen("server {", "server {\n    no_such_key = 1", 1),
    )
    .unwrap();
    let (code, out, err) = cli_raw(&["validate", "-config", &bad.display().to_string()]).await;
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.starts_with("SPIRE server configuration file is invalid: "),
        "{err}"
    );

    // An unknown plugin fails plugin validation.
    std::fs::write(
        &bad,
        text.replacen("KeyManager \"memory\"", "KeyManager \"nope\"", 1),
    )
    .unwrap();
    let (code, _, err) = cli_raw(&["validate", "-config", &bad.display().to_string()]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("SPIRE server configuration file is invalid.\nValidation notes: ["),
        "{err}"
    );

    let (ok, out, _) = cli(&server, &["healthcheck"]).await;
    assert!(ok);
    assert_eq!(out, "Server is healthy.\n");
    let (ok, out, _) = cli(&server, &["healthcheck", "-verbose"]).await;
    assert!(ok);
    assert_eq!(out, "Checking server health...\nServer is healthy.\n");
    let missing = server.config_path.with_file_name("missing.sock");
    let (code, _, err) =
        cli_raw(&["healthcheck", "-socketPath", &missing.display().to_string()]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "Error: server is unhealthy: unable to determine health\n"
    );
    server.stop().await;
}

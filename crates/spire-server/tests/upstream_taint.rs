//! `upstreamauthority taint|revoke -subjectKeyID` through the real CLI against a server
//! with the `disk` UpstreamAuthority: the upstream CA is replaced on disk, a new local
//! authority signed by it is prepared and activated, and the old upstream root (which
//! signed the now-old local authority) is tainted in the bundle, then revoked from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, cli};

use std::path::Path;

use spire_proto::spire::api::server::localauthority::v1 as lapb;
use spire_proto::spire::api::server::localauthority::v1::local_authority_client::LocalAuthorityClient;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

/// Writes a fresh self-signed upstream CA to `key`/`crt`; returns its SKID (hex).
fn write_upstream(key_path: &Path, crt_path: &Path, name: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(key_path, key.serialize_pem()).unwrap();
    std::fs::write(crt_path, cert.pem()).unwrap();
    skid(cert.der())
}

fn skid(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.iter().map(|b| format!("{b:02x}")).collect())
            }
            _ => None,
        })
        .unwrap()
}

/// The bundle's X.509 roots as (SKID, tainted).
async fn roots(server: &TestServer) -> Vec<(String, bool)> {
    let mut roots: Vec<_> = server
        .bundle()
        .await
        .x509_authorities
        .iter()
        .map(|a| (skid(&a.asn1), a.tainted))
        .collect();
    roots.sort();
    roots
}

async fn upstream_cli(server: &TestServer, verb: &str, skid: &str) -> (bool, String, String) {
    cli(server, &["upstreamauthority", verb, "-subjectKeyID", skid]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taint_and_revoke_the_upstream_root_of_the_old_authority() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("upstream.key");
    let crt = dir.path().join("upstream.crt");
    let skid_a = write_upstream(&key, &crt, "upstream A");
    let server = TestServer::start_with(Setup {
        dir: Some(dir.path()),
        upstream_files: Some((key.clone(), crt.clone())),
        ..Default::default()
    })
    .await;
    assert_eq!(roots(&server).await, [(skid_a.clone(), false)]);

    // Upstream A signs the active authority: it cannot be tainted.
    let (ok, _, err) = upstream_cli(&server, "taint", &skid_a).await;
    assert!(!ok);
    assert!(
        err.contains("provided subject key id is not valid: unable to use upstream authority singing current authority"),
        "{err}"
    );

    // Replace the upstream CA on disk; the next local authority is signed by B.
    let skid_b = write_upstream(&key, &crt, "upstream B");
    let mut local = LocalAuthorityClient::new(server.channel());
    let prepared = local
        .prepare_x509_authority(lapb::PrepareX509AuthorityRequest {})
        .await
        .unwrap()
        .into_inner()
        .prepared_authority
        .unwrap();
    assert_eq!(prepared.upstream_authority_subject_key_id, skid_b);
    let mut both = vec![(skid_a.clone(), false), (skid_b.clone(), false)];
    both.sort();
    assert_eq!(roots(&server).await, both);

    // B signs only a prepared authority: not yet usable.
    let (ok, _, err) = upstream_cli(&server, "taint", &skid_b).await;
    assert!(!ok);
    assert!(
        err.contains("only upstream authorities signing an old authority can be used"),
        "{err}"
    );

    local
        .activate_x509_authority(lapb::ActivateX509AuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap();

    // Revoking an untainted root is refused.
    let (ok, _, err) = upstream_cli(&server, "revoke", &skid_a).await;
    assert!(!ok);
    assert!(err.contains("untainted"), "{err}");

    // Taint A (upper case is normalized): marked tainted in the bundle, B untouched.
    let (ok, out, err) = upstream_cli(&server, "taint", &skid_a.to_uppercase()).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("Tainted X.509 upstream authority:\n  Subject Key ID: {skid_a}\n")
    );
    let mut tainted = vec![(skid_a.clone(), true), (skid_b.clone(), false)];
    tainted.sort();
    assert_eq!(roots(&server).await, tainted);

    // Tainting twice fails.
    let (ok, _, err) = upstream_cli(&server, "taint", &skid_a).await;
    assert!(!ok);
    assert!(err.contains("already tainted"), "{err}");

    // B now signs the current authority.
    let (ok, _, err) = upstream_cli(&server, "revoke", &skid_b).await;
    assert!(!ok);
    assert!(err.contains("invalid subject key ID"), "{err}");

    // Revoke A (JSON output): gone from the bundle, and not published again by the
    // next preparation.
    let (ok, out, err) = cli(
        &server,
        &[
            "upstreamauthority",
            "revoke",
            "-subjectKeyID",
            &skid_a,
            "-output",
            "json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{{\"upstream_authority_subject_key_id\":\"{skid_a}\"}}\n")
    );
    assert_eq!(roots(&server).await, [(skid_b.clone(), false)]);
    local
        .prepare_x509_authority(lapb::PrepareX509AuthorityRequest {})
        .await
        .unwrap();
    assert_eq!(roots(&server).await, [(skid_b, false)]);
    server.stop().await;
}

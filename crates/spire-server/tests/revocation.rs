//! Per-SVID revocation on a real server (self-signed CA, SQLite): the `spire-server svid
//! revoke` / `svid list-revoked` commands (human and `-output json`, clear errors), and
//! the CRLs `Revocation.GetX509CRLs` serves: issued by the CA in the bundle, signed
//! with its key, listing every revoked serial, re-signed with a higher CRL number only
//! when the list changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, cli};

use serde_json::{Value, json};
use spire_proto::spirers::server::revocation::v1::CrlRequest;
use spire_proto::spirers::server::revocation::v1::revocation_client::RevocationClient;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn json_of(server: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-output", "json"]);
    let (ok, out, err) = cli(server, &all).await;
    assert!(ok, "{args:?}: {err}");
    assert_eq!(out.trim_end().lines().count(), 1, "{out:?}");
    serde_json::from_str(&out).unwrap()
}

async fn crls(server: &TestServer) -> Vec<Vec<u8>> {
    RevocationClient::new(server.channel())
        .get_x509cr_ls(CrlRequest {})
        .await
        .unwrap()
        .into_inner()
        .crls
        .into_iter()
        .map(|c| c.der)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.trim_start_matches('0').to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svid_revoke_list_and_crls() {
    let server = TestServer::start_with(Setup {
        upstream: false,
        ..Setup::default()
    })
    .await;

    // Nothing revoked yet.
    let (ok, out, err) = cli(&server, &["svid", "list-revoked"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "No revoked X509-SVIDs found\n");
    assert_eq!(
        json_of(&server, &["svid", "list-revoked"]).await,
        json!({"revoked": []})
    );

    // Revoke by decimal serial with an explicit expiry.
    let expires = now() + 3600;
    let (ok, out, err) = cli(
        &server,
        &[
            "svid",
            "revoke",
            "-serial",
            "255",
            "-expiresAt",
            &expires.to_string(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Revoked X509-SVID:\nSerial         : ff\nRevoked at     : "),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("Expires at     : {}\n", rfc3339(expires))),
        "{out}"
    );

    // Revoke by hex, JSON output, default expiry (the CA's notAfter, in the future).
    let v = json_of(&server, &["svid", "revoke", "-serial", "0x0ABC"]).await;
    let revoked = &v["revoked"];
    assert_eq!(revoked["serial"], "abc");
    let revoked_at: i64 = revoked["revoked_at"].as_str().unwrap().parse().unwrap();
    let default_expiry: i64 = revoked["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((revoked_at - now()).abs() < 60, "{v}");
    assert!(default_expiry > now(), "{v}");

    // Malformed input: clear errors, nothing written.
    for (args, message) in [
        (vec!["-serial", "12g4"], "invalid -serial"),
        (vec!["-serial", "0"], "invalid -serial"),
        (vec![], "a serial number must be specified"),
        (
            vec!["-serial", "1", "-expiresAt", "soon"],
            "invalid -expiresAt",
        ),
        (
            vec!["-serial", "1", "-expiresAt", "1000"],
            "not in the future",
        ),
    ] {
        let mut all = vec!["svid", "revoke"];
        all.extend(args.iter().copied());
        let (ok, out, err) = cli(&server, &all).await;
        assert!(!ok, "{all:?} succeeded: {out}");
        assert!(err.contains(message), "{all:?}: {err}");
    }
    let (ok, out, err) = cli(&server, &["svid", "list-revoked"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("Found 2 revoked X509-SVID(s)\n"), "{out}");
    assert!(out.contains("Serial         : abc\n"), "{out}");
    assert!(out.contains("Serial         : ff\n"), "{out}");
    let listed = json_of(&server, &["svid", "list-revoked"]).await;
    let serials: Vec<&str> = listed["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["abc", "ff"]);

    // The CRLs: one per local CA, issued and signed by a CA of the bundle.
    let bundle = server.bundle().await;
    let first = crls(&server).await;
    assert!(!first.is_empty());
    let mut numbers = Vec::new();
    for der in &first {
        let (rest, crl) = CertificateRevocationList::from_der(der).unwrap();
        assert!(rest.is_empty());
        let ca_der = bundle
            .x509_authorities
            .iter()
            .find(|a| {
                X509Certificate::from_der(&a.asn1)
                    .unwrap()
                    .1
                    .subject()
                    .as_raw()
                    == crl.issuer().as_raw()
            })
            .expect("the CRL issuer is a CA of the bundle");
        let (_, ca) = X509Certificate::from_der(&ca_der.asn1).unwrap();
        assert_eq!(
            crl.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            &ca.public_key().subject_public_key.data,
        )
        .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .expect("the CRL signature verifies with the CA's key");
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect();
        assert_eq!(serials, ["abc", "ff"]);
        assert!(crl.next_update().unwrap().timestamp() > now());
        numbers.push(crl.crl_number().unwrap().clone());
    }

    // Unchanged list: the same CRLs. A new revocation: new CRLs with a higher number.
    assert_eq!(crls(&server).await, first);
    let (ok, _, err) = cli(&server, &["svid", "revoke", "-serial", "aa:bb"]).await;
    assert!(ok, "{err}");
    let second = crls(&server).await;
    let (_, crl) = CertificateRevocationList::from_der(&second[0]).unwrap();
    assert!(crl.crl_number().unwrap() > &numbers[0]);
    assert_eq!(crl.iter_revoked_certificates().count(), 3);
}

//! The server CA in self-signed mode: the CA and SVID profiles of server.md §4.5, all key
//! types, JWT-SVIDs, CSRs, and openssl's opinion of the results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca_common;

use std::sync::Arc;
use std::time::Duration;

use ca_common::*;
use rcgen::{CertificateParams, KeyPair, SanType};
use spiffe_core::{JwtSvid, SpiffeId, X509Svid, parse_leaf_spiffe_id, verify_chain};
use spire_server::ca::{CaConfig, CaError, CaSubject, Clock, ServerCa};
use spire_server::keymanager::{KeyManager, KeyType, MemoryKeyManager};

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

#[test]
fn self_signed_ca_profile() {
    let clock = clock();
    let now = clock.now();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    let x509_ca = ca.current_x509_ca().expect("active CA");
    let cert = parse(x509_ca.certificate());

    // Subject = issuer = C=US, O=SPIFFE, serialNumber=<decimal serial>.
    let serial = serial_u128(&cert);
    let attrs_found = subject_attrs(&cert);
    assert_eq!(
        attrs_found,
        attrs(&[
            ("C", "US"),
            ("O", "SPIFFE"),
            ("serialNumber", &serial.to_string())
        ])
    );
    assert_eq!(cert.issuer().as_raw(), cert.subject().as_raw());

    // URI SAN spiffe://<td>, nothing else.
    assert_eq!(uris(&cert), vec!["spiffe://example.org".to_owned()]);
    assert!(dns_names(&cert).is_empty());

    // CA:TRUE, no pathLen, critical.
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());

    // KU keyCertSign + cRLSign, critical, nothing else; no EKU.
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(ku.value.flags, 0b110_0000);
    assert!(cert.extended_key_usage().unwrap().is_none());

    // SKID = SHA-1(public key bits); no AKID on a self-signed certificate.
    assert_eq!(
        skid(&cert).unwrap(),
        sha1(&cert.public_key().subject_public_key.data)
    );
    assert!(akid(&cert).is_none());
    assert_eq!(x509_ca.authority_id(), hex(&skid(&cert).unwrap()));

    // notBefore = now − 10 s, notAfter = now + ca_ttl (24h).
    assert_eq!(not_before(&cert), secs(now) - 10);
    assert_eq!(not_after(&cert), secs(now) + 24 * 3600);
    assert_eq!(sig_alg(&cert), expected_sig_alg(KeyType::EcP256));

    // Published as the only X.509 authority.
    assert_eq!(ca.x509_authorities(), vec![x509_ca.certificate().clone()]);
    assert_eq!(
        ca.current_x509_ca_chain().unwrap(),
        vec![x509_ca.certificate().clone()]
    );

    // Serials are random: a second CA gets another one.
    let other = ready_ca(CaConfig::new(td()), &clock, None);
    let other_serial = serial_u128(&parse(other.current_x509_ca().unwrap().certificate()));
    assert_ne!(serial, other_serial);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn workload_svid_profile_and_validation() {
    let clock = clock();
    let now = clock.now();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    let ca_cert_der = ca.current_x509_ca().unwrap().certificate().clone();
    let ca_cert = parse(&ca_cert_der);
    let key = workload_key(KeyType::EcP256);
    let dns = vec!["web.example.org".to_owned(), "web2.example.org".to_owned()];

    let chain = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/web"),
            &dns,
            None,
        )
        .unwrap();
    assert_eq!(chain.len(), 1, "self-signed mode: leaf only, root excluded");
    let leaf = parse(&chain[0]);
    assert_svid_profile(
        &leaf,
        &ca_cert,
        "spiffe://example.org/web",
        &["web.example.org", "web2.example.org"],
        now,
        secs(now) + 3600,
    );
    assert_eq!(leaf.public_key().raw, key.public_key_der());
    assert_eq!(sig_alg(&leaf), expected_sig_alg(KeyType::EcP256));

    // spiffe-core: the SVID loads with its key and verifies against the bundle.
    assert_eq!(
        parse_leaf_spiffe_id(&chain[0]).unwrap(),
        id("spiffe://example.org/web")
    );
    let svid = X509Svid::from_parts(
        chain.clone(),
        rustls_pki_types::PrivatePkcs8KeyDer::from(key.key_pair().serialized_der().to_vec()),
    )
    .unwrap();
    assert_eq!(
        svid.verify(&ca.x509_bundle(), clock.now()).unwrap(),
        id("spiffe://example.org/web")
    );

    // Serials are random per SVID.
    let again = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/web"),
            &[],
            None,
        )
        .unwrap();
    assert_ne!(serial_u128(&leaf), serial_u128(&parse(&again[0])));
    // Without DNS names there is no CN.
    assert_eq!(
        subject_attrs(&parse(&again[0])),
        attrs(&[("C", "US"), ("O", "SPIRE")])
    );

    let dir = tempfile::tempdir().unwrap();
    if let Some(result) = openssl_verify(dir.path(), &ca.x509_authorities(), &chain, clock.now()) {
        result.unwrap();
    }

    // And neither spiffe-core nor openssl accept it under another CA's roots.
    let other = ready_ca(CaConfig::new(td()), &clock, None);
    assert!(verify_chain(&chain, &other.x509_bundle(), clock.now()).is_err());
    if let Some(result) = openssl_verify(dir.path(), &other.x509_authorities(), &chain, clock.now())
    {
        assert!(result.is_err());
    }
}

#[test]
fn svid_lifetime_is_capped_at_the_ca() {
    let clock = clock();
    let now = clock.now();
    let mut config = CaConfig::new(td());
    config.ca_ttl = 2 * HOUR;
    let ca = ready_ca(config, &clock, None);
    let ca_not_after = secs(ca.current_x509_ca().unwrap().not_after());
    assert_eq!(ca_not_after, secs(now) + 2 * 3600);
    let key = workload_key(KeyType::EcP256);

    let chain = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/long"),
            &[],
            Some(10 * HOUR),
        )
        .unwrap();
    assert_eq!(not_after(&parse(&chain[0])), ca_not_after);

    // An explicit TTL below the cap is honoured; zero means the default (1h).
    let chain = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/short"),
            &[],
            Some(Duration::from_secs(90)),
        )
        .unwrap();
    assert_eq!(not_after(&parse(&chain[0])), secs(now) + 90);
    let chain = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/zero"),
            &[],
            Some(Duration::ZERO),
        )
        .unwrap();
    assert_eq!(not_after(&parse(&chain[0])), secs(now) + 3600);
}

#[test]
fn agent_and_server_svids() {
    let clock = clock();
    let now = clock.now();
    let mut config = CaConfig::new(td());
    config.agent_ttl = Some(3 * HOUR);
    config.ca_key_type = KeyType::EcP384;
    let ca = ready_ca(config, &clock, None);
    let ca_der = ca.current_x509_ca().unwrap().certificate().clone();
    let ca_cert = parse(&ca_der);

    let agent_id = id("spiffe://example.org/spire/agent/join_token/abc");
    let key = workload_key(KeyType::EcP256);
    let chain = ca
        .sign_agent_x509_svid(key.public_key_der(), &agent_id)
        .unwrap();
    let leaf = parse(&chain[0]);
    assert_svid_profile(
        &leaf,
        &ca_cert,
        agent_id.as_str(),
        &[],
        now,
        secs(now) + 3 * 3600,
    );
    assert_eq!(sig_alg(&leaf), expected_sig_alg(KeyType::EcP384));

    let chain = ca.sign_server_x509_svid(key.public_key_der()).unwrap();
    let leaf = parse(&chain[0]);
    assert_svid_profile(
        &leaf,
        &ca_cert,
        "spiffe://example.org/spire/server",
        &[],
        now,
        secs(now) + 3600,
    );

    // The server's own SVID: key of ca_key_type, generated in memory.
    let svid = ca.new_server_x509_svid().unwrap();
    assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/spire/server"));
    let leaf = parse(svid.leaf());
    assert_eq!(
        leaf.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap()
            .to_id_string(),
        "1.3.132.0.34",
        "P-384 like ca_key_type"
    );
    svid.verify(&ca.x509_bundle(), clock.now()).unwrap();
}

#[test]
fn every_key_type_for_ca_and_jwt() {
    for key_type in KeyType::ALL {
        let clock = clock();
        let now = clock.now();
        let mut config = CaConfig::new(td());
        config.ca_key_type = key_type;
        config.jwt_key_type = key_type;
        let ca = ready_ca(config, &clock, None);
        let ca_der = ca.current_x509_ca().unwrap().certificate().clone();
        let ca_cert = parse(&ca_der);
        assert_eq!(sig_alg(&ca_cert), expected_sig_alg(key_type), "{key_type}");
        assert_eq!(ca.current_x509_ca().unwrap().key().key_type(), key_type);

        // SVIDs for keys of every type, signed with the CA's algorithm.
        for workload_type in [KeyType::EcP256, KeyType::Rsa2048] {
            let key = workload_key(workload_type);
            let chain = ca
                .sign_workload_x509_svid(
                    key.public_key_der(),
                    &id("spiffe://example.org/w"),
                    &[],
                    None,
                )
                .unwrap();
            let leaf = parse(&chain[0]);
            assert_svid_profile(
                &leaf,
                &ca_cert,
                "spiffe://example.org/w",
                &[],
                now,
                secs(now) + 3600,
            );
            assert_eq!(sig_alg(&leaf), expected_sig_alg(key_type));
            verify_chain(&chain, &ca.x509_bundle(), clock.now()).unwrap();
            let dir = tempfile::tempdir().unwrap();
            if let Some(result) =
                openssl_verify(dir.path(), &ca.x509_authorities(), &chain, clock.now())
            {
                result.unwrap();
            }
        }

        // JWT-SVIDs validate against the published JWT bundle.
        let jwt_key = ca.current_jwt_key().unwrap();
        assert_eq!(jwt_key.key().key_type(), key_type);
        let token = ca
            .sign_jwt_svid(&id("spiffe://example.org/w"), &["aud1".to_owned()], None)
            .unwrap();
        let svid =
            JwtSvid::parse_and_validate(&token, &ca.jwt_bundle(), &["aud1"], clock.now()).unwrap();
        assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/w"));
        assert_eq!(svid.kid(), jwt_key.kid());
        let expected_alg = match key_type {
            KeyType::EcP256 => "ES256",
            KeyType::EcP384 => "ES384",
            KeyType::Rsa2048 | KeyType::Rsa4096 => "RS256",
        };
        assert_eq!(svid.algorithm().as_str(), expected_alg);
    }
}

fn decode_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn jwt_svid_claims_and_expiry_cap() {
    let clock = clock();
    let now = clock.now();
    let mut config = CaConfig::new(td());
    config.ca_ttl = HOUR;
    config.jwt_issuer = Some("https://oidc.example.org".to_owned());
    let ca = ready_ca(config, &clock, None);
    let key = ca.current_jwt_key().unwrap();

    // kid: 32 characters of [a-zA-Z0-9]; notAfter = prepare time + ca_ttl.
    assert_eq!(key.kid().len(), 32);
    assert!(key.kid().bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(key.not_after(), now + HOUR);
    let published = ca.jwt_authorities();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].kid, key.kid());
    assert_eq!(published[0].public_key_der, key.public_key_der());
    assert_eq!(published[0].expires_at, now + HOUR);

    // Default TTL 5m; header and claims as SPIRE writes them.
    let token = ca
        .sign_jwt_svid(
            &id("spiffe://example.org/w"),
            &["a".to_owned(), String::new(), "b".to_owned()],
            None,
        )
        .unwrap();
    let header = decode_part(&token, 0);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], key.kid());
    let claims = decode_part(&token, 1);
    assert_eq!(claims["sub"], "spiffe://example.org/w");
    assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
    assert_eq!(claims["iat"], secs(now));
    assert_eq!(claims["exp"], secs(now) + 300);
    assert_eq!(claims["iss"], "https://oidc.example.org");
    JwtSvid::parse_and_validate(&token, &ca.jwt_bundle(), &["a", "b"], clock.now()).unwrap();

    // exp is capped at the key's notAfter.
    let token = ca
        .sign_jwt_svid(
            &id("spiffe://example.org/w"),
            &["a".to_owned()],
            Some(5 * HOUR),
        )
        .unwrap();
    assert_eq!(decode_part(&token, 1)["exp"], secs(now + HOUR));

    // Refusals.
    assert!(matches!(
        ca.sign_jwt_svid(&id("spiffe://example.org/w"), &[String::new()], None),
        Err(CaError::EmptyAudience)
    ));
    assert!(matches!(
        ca.sign_jwt_svid(&id("spiffe://other.org/w"), &["a".to_owned()], None),
        Err(CaError::InvalidSpiffeId { .. })
    ));
    assert!(matches!(
        ca.sign_jwt_svid(&id("spiffe://example.org"), &["a".to_owned()], None),
        Err(CaError::InvalidSpiffeId { .. })
    ));
}

#[test]
fn jwt_svids_can_be_disabled() {
    let clock = clock();
    let mut config = CaConfig::new(td());
    config.disable_jwt_svids = true;
    let ca = ready_ca(config, &clock, None);
    assert!(ca.current_jwt_key().is_none());
    assert!(ca.jwt_authorities().is_empty());
    assert!(matches!(
        ca.sign_jwt_svid(&id("spiffe://example.org/w"), &["a".to_owned()], None),
        Err(CaError::JwtDisabled)
    ));
}

#[test]
fn refuses_foreign_ids_and_bad_keys() {
    let clock = clock();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    let key = workload_key(KeyType::EcP256);
    let err = ca
        .sign_workload_x509_svid(key.public_key_der(), &id("spiffe://other.org/w"), &[], None)
        .unwrap_err();
    assert!(
        err.to_string().contains("is not a member of trust domain"),
        "{err}"
    );
    let err = ca
        .sign_workload_x509_svid(key.public_key_der(), &id("spiffe://example.org"), &[], None)
        .unwrap_err();
    assert!(err.to_string().contains("path is empty"), "{err}");
    assert!(matches!(
        ca.sign_workload_x509_svid(b"not a key", &id("spiffe://example.org/w"), &[], None),
        Err(CaError::InvalidPublicKey(_))
    ));
}

#[test]
fn signing_before_the_first_rotation_fails() {
    let clock = clock();
    let km: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
    let ca = ServerCa::new(CaConfig::new(td()), km, None, clock).unwrap();
    let key = workload_key(KeyType::EcP256);
    assert!(matches!(
        ca.sign_workload_x509_svid(
            key.public_key_der(),
            &id("spiffe://example.org/w"),
            &[],
            None
        ),
        Err(CaError::NoX509Ca)
    ));
    assert!(matches!(
        ca.sign_jwt_svid(&id("spiffe://example.org/w"), &["a".to_owned()], None),
        Err(CaError::NoJwtKey)
    ));
}

fn csr_for(key: &KeyPair, san: &str) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(san.try_into().unwrap())];
    params.serialize_request(key).unwrap().der().to_vec()
}

#[test]
fn svid_from_csr_uses_only_the_public_key() {
    let clock = clock();
    let now = clock.now();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    let ca_der = ca.current_x509_ca().unwrap().certificate().clone();
    let key = rcgen_key(KeyType::EcP384);
    // The CSR asks for another ID; the entry's ID wins.
    let csr = csr_for(&key, "spiffe://evil.org/admin");
    let chain = ca
        .sign_x509_svid_from_csr(&csr, &id("spiffe://example.org/w"), &[], None)
        .unwrap();
    let leaf = parse(&chain[0]);
    assert_svid_profile(
        &leaf,
        &parse(&ca_der),
        "spiffe://example.org/w",
        &[],
        now,
        secs(now) + 3600,
    );
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        rcgen::PublicKeyData::der_bytes(&key)
    );

    // A tampered CSR fails the signature check.
    let mut bad = csr.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let err = ca
        .sign_x509_svid_from_csr(&bad, &id("spiffe://example.org/w"), &[], None)
        .unwrap_err();
    assert!(matches!(err, CaError::InvalidCsr(_)), "{err}");
    assert!(matches!(
        ca.sign_x509_svid_from_csr(b"garbage", &id("spiffe://example.org/w"), &[], None),
        Err(CaError::InvalidCsr(_))
    ));
}

#[test]
fn custom_ca_subject() {
    let clock = clock();
    let mut config = CaConfig::new(td());
    config.ca_subject = CaSubject {
        country: vec!["DE".to_owned()],
        organization: vec!["ACME Corp".to_owned()],
        common_name: "ACME CA".to_owned(),
    };
    let ca = ready_ca(config, &clock, None);
    let der = ca.current_x509_ca().unwrap().certificate().clone();
    let cert = parse(&der);
    let serial = serial_u128(&cert).to_string();
    assert_eq!(
        subject_attrs(&cert),
        attrs(&[
            ("C", "DE"),
            ("O", "ACME Corp"),
            ("CN", "ACME CA"),
            ("serialNumber", &serial)
        ])
    );

    // Go cannot be matched for several values of one attribute: refused up front.
    let mut config = CaConfig::new(td());
    config.ca_subject.country = vec!["US".to_owned(), "DE".to_owned()];
    let km: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
    assert!(matches!(
        ServerCa::new(config, km, None, clock),
        Err(CaError::Config(_))
    ));
}

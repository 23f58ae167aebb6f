//! UpstreamAuthority mode with the `disk` plugin (server.md §4.4): the intermediate's
//! profile, SEC1 / PKCS#8 / PKCS#1 keys, bundles, reloads, and refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca_common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
};
use ca_common::*;
use rcgen::{CertificateParams, KeyPair, PublicKeyData, SanType};
use rustls_pki_types::CertificateDer;
use spiffe_core::{SpiffeId, X509Bundle, verify_chain};
use spire_server::ca::{CaConfig, Clock, ManualClock};
use spire_server::keymanager::KeyType;
use spire_server::upstream::{
    DiskUpstreamAuthority, DiskUpstreamConfig, UpstreamAuthority, UpstreamError,
};

fn id() -> SpiffeId {
    SpiffeId::parse("spiffe://example.org/workload").unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How a test writes the upstream CA's private key.
#[derive(Clone, Copy, Debug)]
enum KeyFormat {
    Pkcs8,
    Sec1,
    Pkcs1,
}

/// A test upstream CA whose key was generated in `format`.
fn upstream_with_key(
    key_type: KeyType,
    format: KeyFormat,
    clock: &ManualClock,
) -> (TestCa, String) {
    let now = clock.now();
    let (key, pem_block) = match (key_type, format) {
        (KeyType::EcP256 | KeyType::EcP384, KeyFormat::Sec1) => {
            let alg = if key_type == KeyType::EcP256 {
                &ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let pair = EcdsaKeyPair::generate(alg).unwrap();
            let pkcs8 = pair.to_pkcs8v1().unwrap();
            let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'static> =
                pair.private_key().as_der().unwrap();
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref()),
                key_type.signature_algorithm(),
            )
            .unwrap();
            (key, pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec()))
        }
        (_, KeyFormat::Pkcs1) => {
            let key = rcgen_key(key_type);
            let pkcs1 = pkcs8_inner(key.serialized_der());
            (key, pem::Pem::new("RSA PRIVATE KEY", pkcs1))
        }
        (_, _) => {
            let key = rcgen_key(key_type);
            let der = key.serialized_der().to_vec();
            (key, pem::Pem::new("PRIVATE KEY", der))
        }
    };
    let ca = test_ca_with_key(key, now - HOUR, now + 24 * 365 * HOUR);
    (ca, pem::encode(&pem_block))
}

/// The privateKey OCTET STRING of a PKCS#8 PrivateKeyInfo (for RSA: the PKCS#1 key).
fn pkcs8_inner(der: &[u8]) -> Vec<u8> {
    use x509_parser::der_parser::asn1_rs::{Any, FromDer, Sequence};
    let (_, seq) = Sequence::from_der(der).unwrap();
    let (rest, _version) = Any::from_der(&seq.content).unwrap();
    let (rest, _alg) = Any::from_der(rest).unwrap();
    let (_, key) = Any::from_der(rest).unwrap();
    key.data.to_vec()
}

fn test_ca_with_key(key: KeyPair, not_before: SystemTime, not_after: SystemTime) -> TestCa {
    let mut template = test_ca(KeyType::EcP256, "Upstream", not_before, not_after, None);
    template.params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(sha1(key.der_bytes()));
    let cert = template.params.self_signed(&key).unwrap();
    TestCa {
        key,
        cert: cert.into(),
        params: template.params,
    }
}

fn write_files(
    dir: &Path,
    key_pem: &str,
    certs: &[&CertificateDer<'_>],
    bundle: Option<&[&CertificateDer<'_>]>,
) -> DiskUpstreamConfig {
    let key_path = dir.join("upstream.key");
    let cert_path = dir.join("upstream.crt");
    std::fs::write(&key_path, key_pem).unwrap();
    std::fs::write(&cert_path, cert_pem(certs)).unwrap();
    let bundle_file_path = bundle.map(|roots| {
        let path = dir.join("bundle.crt");
        std::fs::write(&path, cert_pem(roots)).unwrap();
        path.to_string_lossy().into_owned()
    });
    DiskUpstreamConfig {
        key_file_path: key_path.to_string_lossy().into_owned(),
        cert_file_path: cert_path.to_string_lossy().into_owned(),
        bundle_file_path,
    }
}

fn disk(
    config: DiskUpstreamConfig,
    clock: &Arc<ManualClock>,
) -> Result<DiskUpstreamAuthority, UpstreamError> {
    DiskUpstreamAuthority::new(config, td(), clock.clone())
}

/// Checks the intermediate the upstream signed (server.md §4.4 / SPIRE's
/// `UpstreamCA.SignCSR`) and an SVID issued under it.
fn check_upstream_mode(
    ca_config: CaConfig,
    upstream: DiskUpstreamAuthority,
    upstream_cert: &CertificateDer<'_>,
    roots: &[CertificateDer<'static>],
    clock: &Arc<ManualClock>,
    expected_ca_not_after: i64,
) {
    let now = clock.now();
    let upstream: Arc<dyn UpstreamAuthority> = Arc::new(upstream);
    let ca = ready_ca(ca_config, clock, Some(upstream));
    assert!(ca.is_upstream());
    assert_eq!(
        ca.x509_authorities(),
        roots.to_vec(),
        "the bundle is the upstream roots"
    );

    let x509_ca = ca.current_x509_ca().unwrap();
    let inter = parse(x509_ca.certificate());
    let up = parse(upstream_cert);
    // Subject copied from the CSR: ca_subject + serialNumber.
    let subject = subject_attrs(&inter);
    assert_eq!(subject[..2], attrs(&[("C", "US"), ("O", "SPIFFE")])[..]);
    assert_eq!(subject[2].0, "serialNumber");
    assert_eq!(inter.issuer().as_raw(), up.subject().as_raw());
    assert_eq!(uris(&inter), vec!["spiffe://example.org".to_owned()]);
    let bc = inter.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = inter.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature() && ku.value.key_cert_sign() && ku.value.crl_sign());
    assert_eq!(
        ku.value.flags, 0b110_0001,
        "digitalSignature + keyCertSign + cRLSign only"
    );
    assert_eq!(
        skid(&inter).unwrap(),
        sha1(&inter.public_key().subject_public_key.data)
    );
    assert_eq!(akid(&inter).unwrap(), skid(&up).unwrap());
    assert_eq!(inter.public_key().raw, x509_ca.key().public_key_der());
    serial_u128(&inter);
    assert_eq!(not_before(&inter), secs(now) - 10);
    assert_eq!(not_after(&inter), expected_ca_not_after);
    assert_eq!(
        x509_ca.upstream_authority_id().unwrap(),
        skid(&up)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    // SVIDs: [leaf, intermediate, upstream intermediates...], valid against the roots.
    let key = workload_key(KeyType::EcP256);
    let chain = ca
        .sign_workload_x509_svid(
            key.public_key_der(),
            &id(),
            &["w.example.org".to_owned()],
            None,
        )
        .unwrap();
    assert_eq!(chain[1..], x509_ca.upstream_chain()[..]);
    assert_eq!(&chain[1], x509_ca.certificate());
    let leaf = parse(&chain[0]);
    assert_svid_profile(
        &leaf,
        &inter,
        id().as_str(),
        &["w.example.org"],
        now,
        (secs(now) + 3600).min(expected_ca_not_after),
    );
    let bundle = X509Bundle::from_authorities(td(), roots.to_vec()).unwrap();
    assert_eq!(verify_chain(&chain, &bundle, clock.now()).unwrap(), id());
    let dir = tempfile::tempdir().unwrap();
    if let Some(result) = openssl_verify(dir.path(), roots, &chain, clock.now()) {
        result.unwrap();
    }
    // The TLS chain is the upstream chain.
    assert_eq!(
        ca.current_x509_ca_chain().unwrap(),
        x509_ca.upstream_chain().to_vec()
    );
}

#[test]
fn self_signed_upstream_with_every_key_format() {
    let cases = [
        (KeyType::EcP256, KeyFormat::Sec1),
        (KeyType::EcP384, KeyFormat::Sec1),
        (KeyType::EcP256, KeyFormat::Pkcs8),
        (KeyType::EcP384, KeyFormat::Pkcs8),
        (KeyType::Rsa2048, KeyFormat::Pkcs1),
        (KeyType::Rsa2048, KeyFormat::Pkcs8),
    ];
    for (key_type, format) in cases {
        let clock = clock();
        let now = clock.now();
        let dir = tempfile::tempdir().unwrap();
        let (upstream, key_pem) = upstream_with_key(key_type, format, &clock);
        let config = write_files(dir.path(), &key_pem, &[&upstream.cert], None);
        let plugin = disk(config, &clock).unwrap_or_else(|e| panic!("{key_type} {format:?}: {e}"));
        check_upstream_mode(
            CaConfig::new(td()),
            plugin,
            &upstream.cert,
            std::slice::from_ref(&upstream.cert),
            &clock,
            secs(now) + 24 * 3600,
        );
    }
}

#[test]
fn intermediate_lifetime_is_capped_at_the_upstream_certificate() {
    let clock = clock();
    let now = clock.now();
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen_key(KeyType::EcP256);
    let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", key.serialized_der().to_vec()));
    let upstream = test_ca_with_key(key, now - HOUR, now + 2 * HOUR);
    let config = write_files(dir.path(), &key_pem, &[&upstream.cert], None);
    check_upstream_mode(
        CaConfig::new(td()),
        disk(config, &clock).unwrap(),
        &upstream.cert,
        std::slice::from_ref(&upstream.cert),
        &clock,
        secs(now) + 2 * 3600,
    );
}

#[test]
fn upstream_chain_with_bundle_file() {
    let clock = clock();
    let now = clock.now();
    let dir = tempfile::tempdir().unwrap();
    let root = test_ca(KeyType::EcP384, "Root", now - HOUR, now + 48 * HOUR, None);
    let upstream = test_ca(
        KeyType::EcP256,
        "Upstream",
        now - HOUR,
        now + 48 * HOUR,
        Some(&root),
    );
    let key_pem = upstream.key.serialize_pem();
    let config = write_files(dir.path(), &key_pem, &[&upstream.cert], Some(&[&root.cert]));
    let plugin = disk(config.clone(), &clock).unwrap();

    // Minted chain: [our intermediate, upstream intermediate]; roots: the bundle.
    let csr_key = rcgen_key(KeyType::EcP256);
    let minted = plugin
        .mint_x509_ca(&csr(&csr_key, "spiffe://example.org"), HOUR)
        .unwrap();
    assert_eq!(minted.x509_ca_chain.len(), 2);
    assert_eq!(minted.x509_ca_chain[1], upstream.cert);
    assert_eq!(minted.upstream_x509_roots, vec![root.cert.clone()]);
    assert_eq!(
        not_after(&parse(&minted.x509_ca_chain[0])),
        secs(now) + 3600
    );

    check_upstream_mode(
        CaConfig::new(td()),
        plugin,
        &upstream.cert,
        std::slice::from_ref(&root.cert),
        &clock,
        secs(now) + 24 * 3600,
    );

    // A bundle that does not anchor the chain is refused.
    let stranger = test_ca(
        KeyType::EcP256,
        "Stranger",
        now - HOUR,
        now + 48 * HOUR,
        None,
    );
    let config = write_files(
        dir.path(),
        &key_pem,
        &[&upstream.cert],
        Some(&[&stranger.cert]),
    );
    let err = disk(config, &clock).unwrap_err();
    assert!(err.to_string().contains("cannot be validated"), "{err}");

    // Without a bundle, a chain in the cert file is refused.
    let config = write_files(dir.path(), &key_pem, &[&upstream.cert, &root.cert], None);
    let err = disk(config, &clock).unwrap_err();
    assert!(
        err.to_string()
            .contains("only self-signed CAs are supported"),
        "{err}"
    );
}

#[test]
fn mismatched_key_and_certificate_are_refused() {
    let clock = clock();
    let now = clock.now();
    let dir = tempfile::tempdir().unwrap();
    let upstream = test_ca(KeyType::EcP256, "Upstream", now - HOUR, now + HOUR, None);
    let other_key = rcgen_key(KeyType::EcP256);
    let config = write_files(
        dir.path(),
        &other_key.serialize_pem(),
        &[&upstream.cert],
        None,
    );
    let err = disk(config, &clock).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // A key of another type does not match either.
    let rsa = rcgen_key(KeyType::Rsa2048);
    let config = write_files(dir.path(), &rsa.serialize_pem(), &[&upstream.cert], None);
    let err = disk(config, &clock).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // Missing settings and files.
    let err = disk(DiskUpstreamConfig::default(), &clock).unwrap_err();
    assert!(
        err.to_string().contains("key_file_path is required"),
        "{err}"
    );
    let mut config = write_files(
        dir.path(),
        &upstream.key.serialize_pem(),
        &[&upstream.cert],
        None,
    );
    config.cert_file_path = dir
        .path()
        .join("missing.crt")
        .to_string_lossy()
        .into_owned();
    assert!(disk(config, &clock).is_err());

    // An expired upstream certificate cannot be used.
    let expired = test_ca(KeyType::EcP256, "Old", now - 3 * HOUR, now - HOUR, None);
    let config = write_files(
        dir.path(),
        &expired.key.serialize_pem(),
        &[&expired.cert],
        None,
    );
    let err = disk(config, &clock).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

fn csr(key: &KeyPair, uri: &str) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.serialize_request(key).unwrap().der().to_vec()
}

#[test]
fn csr_checks() {
    let clock = clock();
    let now = clock.now();
    let dir = tempfile::tempdir().unwrap();
    let upstream = test_ca(
        KeyType::EcP256,
        "Upstream",
        now - HOUR,
        now + 48 * HOUR,
        None,
    );
    let config = write_files(
        dir.path(),
        &upstream.key.serialize_pem(),
        &[&upstream.cert],
        None,
    );
    let plugin = disk(config, &clock).unwrap();
    let key = rcgen_key(KeyType::EcP256);

    let minted = plugin
        .mint_x509_ca(&csr(&key, "spiffe://example.org"), Duration::ZERO)
        .unwrap();
    // A zero preferred TTL gives the default of 1h.
    assert_eq!(
        not_after(&parse(&minted.x509_ca_chain[0])),
        secs(now) + 3600
    );
    assert_eq!(minted.x509_ca_chain.len(), 1);
    assert_eq!(minted.upstream_x509_roots, vec![upstream.cert.clone()]);

    for (uri, message) in [
        ("spiffe://other.org", "does not belong to trust domain"),
        (
            "spiffe://example.org/workload",
            "is not a valid trust domain SPIFFE ID",
        ),
    ] {
        let err = plugin.mint_x509_ca(&csr(&key, uri), HOUR).unwrap_err();
        assert!(err.to_string().contains(message), "{uri}: {err}");
    }
    let no_san = CertificateParams::default()
        .serialize_request(&key)
        .unwrap();
    let err = plugin.mint_x509_ca(no_san.der(), HOUR).unwrap_err();
    assert!(err.to_string().contains("exactly one URI SAN"), "{err}");

    let mut tampered = csr(&key, "spiffe://example.org");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = plugin.mint_x509_ca(&tampered, HOUR).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    assert!(plugin.mint_x509_ca(b"junk", HOUR).is_err());
}

#[test]
fn files_are_reread_and_the_last_good_copy_is_kept() {
    let clock = clock();
    let now = clock.now();
    let dir = tempfile::tempdir().unwrap();
    let first = test_ca(KeyType::EcP256, "First", now - HOUR, now + 48 * HOUR, None);
    let config = write_files(dir.path(), &first.key.serialize_pem(), &[&first.cert], None);
    let plugin = disk(config.clone(), &clock).unwrap();
    let key = rcgen_key(KeyType::EcP256);
    let request = csr(&key, "spiffe://example.org");

    // Files gone: the last good copy signs.
    std::fs::remove_file(&config.key_file_path).unwrap();
    std::fs::write(&config.cert_file_path, "not a certificate").unwrap();
    let minted = plugin.mint_x509_ca(&request, HOUR).unwrap();
    assert_eq!(minted.upstream_x509_roots, vec![first.cert.clone()]);

    // New files: the next mint uses them.
    let second = test_ca(KeyType::EcP384, "Second", now - HOUR, now + 48 * HOUR, None);
    write_files(
        dir.path(),
        &second.key.serialize_pem(),
        &[&second.cert],
        None,
    );
    let minted = plugin.mint_x509_ca(&request, HOUR).unwrap();
    assert_eq!(minted.upstream_x509_roots, vec![second.cert.clone()]);
    assert_eq!(
        parse(&minted.x509_ca_chain[0]).issuer().as_raw(),
        parse(&second.cert).subject().as_raw()
    );
}

#[test]
fn repository_dummy_upstream_ca() {
    let root = repo_root();
    let cert_path = root.join("conf/server/dummy_upstream_ca.crt");
    let key_path = root.join("conf/server/dummy_upstream_ca.key");
    let agent_path = root.join("conf/agent/dummy_root_ca.crt");
    let cert_pem_bytes = std::fs::read(&cert_path).unwrap();
    assert_eq!(
        cert_pem_bytes,
        std::fs::read(&agent_path).unwrap(),
        "the agent's trust bundle is byte-identical to the upstream certificate"
    );
    let key_pem = std::fs::read_to_string(&key_path).unwrap();
    assert!(key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));

    // The shape of SPIRE's quickstart CA.
    let der = pem::parse(&cert_pem_bytes).unwrap().into_contents();
    let cert = parse(&der);
    assert_eq!(subject_attrs(&cert), attrs(&[("C", "US"), ("O", "SPIFFE")]));
    assert_eq!(cert.issuer().as_raw(), cert.subject().as_raw());
    assert_eq!(uris(&cert), vec!["spiffe://local".to_owned()]);
    let ku = cert.key_usage().unwrap().unwrap();
    assert_eq!(ku.value.flags, 0b110_0000);
    assert!(cert.basic_constraints().unwrap().unwrap().value.ca);
    assert_eq!(
        cert.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap()
            .to_id_string(),
        "1.3.132.0.34",
        "P-384"
    );
    assert!(not_after(&cert) - not_before(&cert) >= 3650 * 24 * 3600);

    // The quickstart configuration works: the server CA is signed by it.
    let clock = clock();
    let now = clock.now();
    let config = DiskUpstreamConfig {
        key_file_path: key_path.to_string_lossy().into_owned(),
        cert_file_path: cert_path.to_string_lossy().into_owned(),
        bundle_file_path: None,
    };
    let cert_der = CertificateDer::from(der.clone());
    check_upstream_mode(
        CaConfig::new(td()),
        disk(config, &clock).unwrap(),
        &cert_der,
        std::slice::from_ref(&cert_der),
        &clock,
        secs(now) + 24 * 3600,
    );
}

/// Runs openssl with `args` in `dir`; `None` when openssl is not installed.
fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

#[test]
fn openssl_made_upstream_cas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // SPIRE's current quickstart CA shape: P-384 signed with ecdsa-with-SHA512, the key
    // in SEC1 with an `EC PARAMETERS` block in front, as `openssl ecparam -genkey` writes.
    if openssl(
        d,
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-out",
            "k384.pem",
        ],
    )
    .is_none()
    {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectAltName=URI:spiffe://local",
    ];
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        "k384.pem",
        "-sha512",
        "-days",
        "30",
        "-subj",
        "/C=US/O=SPIFFE",
        "-out",
        "c384.pem",
    ];
    args.extend(ca_ext);
    openssl(d, &args).unwrap();
    let clock = clock();
    let now = clock.now();
    let config = DiskUpstreamConfig {
        key_file_path: d.join("k384.pem").to_string_lossy().into_owned(),
        cert_file_path: d.join("c384.pem").to_string_lossy().into_owned(),
        bundle_file_path: None,
    };
    let cert_pem = std::fs::read(d.join("c384.pem")).unwrap();
    let cert = CertificateDer::from(pem::parse(&cert_pem).unwrap().into_contents());
    assert_eq!(
        sig_alg(&parse(&cert)),
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512"
    );
    check_upstream_mode(
        CaConfig::new(td()),
        disk(config, &clock).unwrap(),
        &cert,
        std::slice::from_ref(&cert),
        &clock,
        secs(now) + 24 * 3600,
    );

    // A multi-valued RDN in the upstream subject cannot be reproduced: refused up front.
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k256.pem",
        ],
    )
    .unwrap();
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        "k256.pem",
        "-days",
        "30",
        "-subj",
        "/C=US+O=Multi",
        "-multivalue-rdn",
        "-out",
        "multi.pem",
    ];
    args.extend(ca_ext);
    openssl(d, &args).unwrap();
    let config = DiskUpstreamConfig {
        key_file_path: d.join("k256.pem").to_string_lossy().into_owned(),
        cert_file_path: d.join("multi.pem").to_string_lossy().into_owned(),
        bundle_file_path: None,
    };
    let err = disk(config, &clock).unwrap_err();
    assert!(err.to_string().contains("multi-valued"), "{err}");
}

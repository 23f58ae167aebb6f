//! Helpers shared by the CA tests: real keys, real certificates, no mocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls_pki_types::CertificateDer;
use spiffe_core::TrustDomain;
use spire_server::ca::{CaConfig, ManualClock, ServerCa};
use spire_server::keymanager::{KeyManager, KeyType, ManagedKey, MemoryKeyManager};
use spire_server::upstream::UpstreamAuthority;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;

pub const HOUR: Duration = Duration::from_secs(3600);

pub fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_now())
}

/// A CA with a memory KeyManager, rotated once so it can sign.
pub fn ready_ca(
    config: CaConfig,
    clock: &Arc<ManualClock>,
    upstream: Option<Arc<dyn UpstreamAuthority>>,
) -> ServerCa {
    let km: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
    let ca = ServerCa::new(config, km, upstream, clock.clone()).unwrap();
    ca.rotate().unwrap();
    ca
}

/// A workload key (its public key is what gets certified).
pub fn workload_key(key_type: KeyType) -> ManagedKey {
    ManagedKey::generate("workload", key_type).unwrap()
}

pub fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

pub fn sha1(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

pub fn secs(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// The subject as (short name, value, is PrintableString) in RDN order.
pub fn subject_attrs(cert: &X509Certificate<'_>) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let attrs: Vec<_> = rdn.iter().collect();
        assert_eq!(attrs.len(), 1, "single-valued RDNs");
        let attr = attrs[0];
        let oid = attr.attr_type().to_id_string();
        let name = match oid.as_str() {
            "2.5.4.6" => "C",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.3" => "CN",
            "2.5.4.5" => "serialNumber",
            other => panic!("unexpected attribute {other}"),
        };
        let printable = attr.attr_value().header.tag() == Tag::PrintableString;
        out.push((
            name.to_owned(),
            attr.as_str().unwrap().to_owned(),
            printable,
        ));
    }
    out
}

pub fn attrs(list: &[(&str, &str)]) -> Vec<(String, String, bool)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned(), true))
        .collect()
}

/// The serial as an integer; asserts it is positive, non-zero and at most 128 bits.
pub fn serial_u128(cert: &X509Certificate<'_>) -> u128 {
    let raw = cert.raw_serial();
    assert!(!raw.is_empty());
    assert!(raw[0] & 0x80 == 0, "serial must be positive");
    let trimmed: &[u8] = if raw.len() > 1 && raw[0] == 0 {
        assert!(raw[1] & 0x80 != 0, "minimal DER encoding");
        &raw[1..]
    } else {
        raw
    };
    assert!(trimmed.len() <= 16, "serial longer than 128 bits");
    let mut bytes = [0u8; 16];
    bytes[16 - trimmed.len()..].copy_from_slice(trimmed);
    let serial = u128::from_be_bytes(bytes);
    assert_ne!(serial, 0);
    serial
}

pub fn skid(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}

pub fn akid(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

pub fn uris(cert: &X509Certificate<'_>) -> Vec<String> {
    names(cert, true)
}

pub fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    names(cert, false)
}

fn names(cert: &X509Certificate<'_>, uri: bool) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    cert.subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match (n, uri) {
                    (GeneralName::URI(u), true) => Some((*u).to_owned()),
                    (GeneralName::DNSName(d), false) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn not_before(cert: &X509Certificate<'_>) -> i64 {
    cert.validity().not_before.timestamp()
}

pub fn not_after(cert: &X509Certificate<'_>) -> i64 {
    cert.validity().not_after.timestamp()
}

/// The signature algorithm OID string.
pub fn sig_alg(cert: &X509Certificate<'_>) -> String {
    cert.signature_algorithm.algorithm.to_id_string()
}

/// The OID an issuer of `key_type` signs with.
pub fn expected_sig_alg(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::EcP256 => "1.2.840.10045.4.3.2",
        KeyType::EcP384 => "1.2.840.10045.4.3.3",
        KeyType::Rsa2048 | KeyType::Rsa4096 => "1.2.840.113549.1.1.11",
    }
}

/// Checks every field of the X509-SVID profile (server.md §4.5) on `leaf`, issued by
/// `issuer` at `now`.
pub fn assert_svid_profile(
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    id: &str,
    dns: &[&str],
    now: SystemTime,
    expected_not_after: i64,
) {
    // Subject: C=US, O=SPIRE (+ CN = first DNS name).
    let mut subject = vec![("C", "US"), ("O", "SPIRE")];
    if let Some(first) = dns.first() {
        subject.push(("CN", first));
    }
    assert_eq!(subject_attrs(leaf), attrs(&subject));
    assert_eq!(leaf.issuer().as_raw(), issuer.subject().as_raw());
    assert_eq!(leaf.version().0, 2, "X.509 v3");
    serial_u128(leaf);

    // SKID = SHA-1 of the public key bits; AKID = issuer's SKID.
    assert_eq!(
        skid(leaf).unwrap(),
        sha1(&leaf.public_key().subject_public_key.data)
    );
    assert_eq!(akid(leaf).unwrap(), skid(issuer).unwrap());

    // KeyUsage: critical, exactly digitalSignature + keyEncipherment + keyAgreement.
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature());
    assert!(ku.value.key_encipherment());
    assert!(ku.value.key_agreement());
    assert_eq!(ku.value.flags, 0b1_0101, "no other key usage");

    // EKU: serverAuth + clientAuth only.
    let eku = leaf.extended_key_usage().unwrap().unwrap();
    assert!(!eku.critical);
    assert!(eku.value.server_auth && eku.value.client_auth);
    assert!(!eku.value.any && !eku.value.code_signing && eku.value.other.is_empty());

    // basicConstraints: critical, CA:FALSE.
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(bc.critical);
    assert!(!bc.value.ca);
    assert!(bc.value.path_len_constraint.is_none());

    // SANs: exactly one URI, the DNS names in order.
    assert_eq!(uris(leaf), vec![id.to_owned()]);
    assert_eq!(
        dns_names(leaf),
        dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()
    );
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(
        !san.critical,
        "SAN is not critical with a non-empty subject"
    );

    // Validity: notBefore = now − 10 s, notAfter as expected.
    assert_eq!(not_before(leaf), secs(now) - 10);
    assert_eq!(not_after(leaf), expected_not_after);
}

/// Runs `openssl verify -x509_strict` on a chain (leaf first) against `roots`. Returns
/// `None` (after saying so) when openssl is not installed.
pub fn openssl_verify(
    dir: &Path,
    roots: &[CertificateDer<'_>],
    chain: &[CertificateDer<'_>],
    at: SystemTime,
) -> Option<Result<(), String>> {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed; openssl verify not run");
        return None;
    }
    let to_pem = |certs: &[CertificateDer<'_>]| -> String {
        certs
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
            .collect()
    };
    let roots_path = dir.join("roots.pem");
    let untrusted_path = dir.join("untrusted.pem");
    let leaf_path = dir.join("leaf.pem");
    std::fs::write(&roots_path, to_pem(roots)).unwrap();
    std::fs::write(&untrusted_path, to_pem(&chain[1..])).unwrap();
    std::fs::write(&leaf_path, to_pem(&chain[..1])).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("verify")
        .arg("-x509_strict")
        .arg("-attime")
        .arg(secs(at).to_string())
        .arg("-CAfile")
        .arg(&roots_path);
    if chain.len() > 1 {
        cmd.arg("-untrusted").arg(&untrusted_path);
    }
    let out = cmd.arg(&leaf_path).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() && text.contains(": OK") {
        Ok(())
    } else {
        Err(text)
    })
}

/// A test upstream CA: a self-signed root (or an intermediate under `parent`).
pub struct TestCa {
    pub key: KeyPair,
    pub cert: CertificateDer<'static>,
    pub params: CertificateParams,
}

pub fn rcgen_alg(key_type: KeyType) -> &'static rcgen::SignatureAlgorithm {
    key_type.signature_algorithm()
}

pub fn rcgen_key(key_type: KeyType) -> KeyPair {
    let managed = ManagedKey::generate("upstream", key_type).unwrap();
    KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(managed.key_pair().serialized_der()),
        rcgen_alg(key_type),
    )
    .unwrap()
}

pub fn test_ca(
    key_type: KeyType,
    org: &str,
    not_before: SystemTime,
    not_after: SystemTime,
    parent: Option<&TestCa>,
) -> TestCa {
    let key = rcgen_key(key_type);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, org);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = time::OffsetDateTime::from_unix_timestamp(secs(not_before)).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(secs(not_after)).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(sha1(key.der_bytes()));
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
    let cert = match parent {
        None => params.self_signed(&key).unwrap(),
        Some(parent) => {
            params.use_authority_key_identifier_extension = true;
            let issuer = rcgen::Issuer::from_params(&parent.params, &parent.key);
            params.signed_by(&key, &issuer).unwrap()
        }
    };
    TestCa {
        key,
        cert: cert.into(),
        params,
    }
}

pub fn cert_pem(certs: &[&CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
        .collect()
}

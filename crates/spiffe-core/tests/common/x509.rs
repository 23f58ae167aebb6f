//! Test helpers: X.509 CAs, intermediates and SVID leaves generated with rcgen, in the
//! shape SPIRE issues them (server.md §4.5), plus raw DER builders for the extensions
//! rcgen cannot get wrong on purpose (non-critical keyUsage, non-critical SAN with an
//! empty subject, URI name constraints).
//!
//! Include with `#[path = "common/x509.rs"] mod x509_common;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{TrustDomain, X509Bundle, X509Svid};

/// The default trust domain of the tests.
pub const TD: &str = "example.org";
/// The default workload ID of the tests.
pub const WORKLOAD: &str = "spiffe://example.org/workload";

/// A fresh, unique, positive serial number (tests set serials explicitly).
pub fn serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// A fresh P-256 key.
pub fn p256() -> KeyPair {
    KeyPair::generate().unwrap()
}

/// A `TrustDomain`.
pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

/// A URI SAN.
pub fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

/// A time as `SystemTime`, for validation at a fixed instant.
pub fn at_ymd(year: i32, month: u8, day: u8) -> SystemTime {
    let secs = date_time_ymd(year, month, day).unix_timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

/// A CA profile as SPIRE's server CA: `C=US, O=SPIFFE`, URI SAN `spiffe://<td>` when
/// given, CA:TRUE without pathLen, keyUsage keyCertSign+cRLSign (critical), no EKU.
pub fn ca_params(id: Option<&str>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.serial_number = Some(serial());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "SPIFFE");
    // SPIRE adds serialNumber=<cert serial> to CA subjects, so every CA has its own name.
    let sn = p.serial_number.as_ref().unwrap().to_bytes();
    let sn_hex: String = sn.iter().map(|b| format!("{b:02x}")).collect();
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), sn_hex);
    p.distinguished_name = dn;
    p.subject_alt_names = id.into_iter().map(uri).collect();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

/// An X509-SVID profile as SPIRE issues it: `C=US, O=SPIRE`, one URI SAN, CA:FALSE,
/// keyUsage digitalSignature+keyEncipherment+keyAgreement (critical), EKU
/// serverAuth+clientAuth.
pub fn leaf_params(id: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.serial_number = Some(serial());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "SPIRE");
    p.distinguished_name = dn;
    p.subject_alt_names = vec![uri(id)];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    p
}

/// A CA (root or intermediate): its parameters, key and certificate.
pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: CertificateDer<'static>,
}

impl Ca {
    /// A self-signed root for `td`, SPIRE style (`spiffe://<td>` URI SAN).
    pub fn root(td: &str) -> Ca {
        Ca::self_signed(ca_params(Some(&format!("spiffe://{td}"))))
    }

    /// A self-signed CA from `params`.
    pub fn self_signed(params: CertificateParams) -> Ca {
        let key = p256();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Ca { params, key, cert }
    }

    /// A CA from `params`, signed by `self`.
    pub fn intermediate(&self, params: CertificateParams) -> Ca {
        let key = p256();
        let cert = self.sign(&params, &key);
        Ca { params, key, cert }
    }

    /// An intermediate for `td` with the default CA profile, signed by `self`.
    pub fn default_intermediate(&self, td: &str) -> Ca {
        self.intermediate(ca_params(Some(&format!("spiffe://{td}"))))
    }

    /// Signs a certificate for `key` with `params`.
    pub fn sign(&self, params: &CertificateParams, key: &KeyPair) -> CertificateDer<'static> {
        let issuer = Issuer::from_params(&self.params, &self.key);
        params.signed_by(key, &issuer).unwrap().der().clone()
    }

    /// A leaf from `params` with a fresh key, signed by `self`.
    pub fn leaf_with(&self, params: &CertificateParams) -> Leaf {
        let key = p256();
        let cert = self.sign(params, &key);
        Leaf { cert, key }
    }

    /// A SPIRE-style leaf for `id`, signed by `self`.
    pub fn leaf(&self, id: &str) -> Leaf {
        self.leaf_with(&leaf_params(id))
    }

    /// A bundle of trust domain `td` holding this CA.
    pub fn bundle(&self, td_name: &str) -> X509Bundle {
        X509Bundle::from_authorities(td(td_name), vec![self.cert.clone()]).unwrap()
    }
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: KeyPair,
}

impl Leaf {
    /// The key as PKCS#8 DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The key as `PrivatePkcs8KeyDer`.
    pub fn pkcs8(&self) -> PrivatePkcs8KeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der())
    }

    /// The chain `[leaf, intermediates...]`.
    pub fn chain(&self, intermediates: &[&Ca]) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![self.cert.clone()];
        chain.extend(intermediates.iter().map(|ca| ca.cert.clone()));
        chain
    }

    /// Builds the SVID `[leaf, intermediates...]` with all checks.
    pub fn svid(&self, intermediates: &[&Ca]) -> Result<X509Svid, spiffe_core::X509Error> {
        X509Svid::from_parts(self.chain(intermediates), self.pkcs8())
    }
}

// ---- raw DER builders -------------------------------------------------------------------

/// A DER TLV with definite length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// keyUsage bits, first byte of the BIT STRING (bit 0 = 0x80).
pub const KU_DIGITAL_SIGNATURE: u8 = 0x80;
pub const KU_KEY_ENCIPHERMENT: u8 = 0x20;
pub const KU_KEY_CERT_SIGN: u8 = 0x04;
pub const KU_CRL_SIGN: u8 = 0x02;

/// A keyUsage extension (OID 2.5.29.15) built by hand as DER `BIT STRING` with the given
/// first-byte flags, with chosen criticality. rcgen always marks its own keyUsage
/// critical, so this is how a non-critical keyUsage is produced (leave
/// `params.key_usages` empty).
pub fn key_usage_ext(flags: u8, critical: bool) -> CustomExtension {
    let unused = if flags == 0 {
        0
    } else {
        flags.trailing_zeros() as u8
    };
    let content = if flags == 0 {
        tlv(0x03, &[0])
    } else {
        tlv(0x03, &[unused, flags])
    };
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 15], content);
    ext.set_criticality(critical);
    ext
}

/// A subjectAltName extension (OID 2.5.29.17) holding the given URIs, built by hand as
/// DER `GeneralNames` (`SEQUENCE OF [6] IMPLICIT IA5String`), with chosen criticality.
/// rcgen marks its own SAN critical exactly when the subject is empty, so this is how an
/// empty-subject certificate with a non-critical SAN is produced.
pub fn san_uri_ext(uris: &[&str], critical: bool) -> CustomExtension {
    let names: Vec<u8> = uris.iter().flat_map(|u| tlv(0x86, u.as_bytes())).collect();
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 17], tlv(0x30, &names));
    ext.set_criticality(critical);
    ext
}

/// A critical nameConstraints extension (OID 2.5.29.30) with one permitted URI subtree,
/// built by hand (`SEQUENCE { [0] { SEQUENCE { [6] IA5String } } }`), since rcgen's
/// `GeneralSubtree` has no URI form.
pub fn uri_name_constraints_ext(host: &str) -> CustomExtension {
    let subtree = tlv(0x30, &tlv(0x86, host.as_bytes()));
    let content = tlv(0x30, &tlv(0xA0, &subtree));
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], content);
    ext.set_criticality(true);
    ext
}

/// A critical extension with a private OID that no validator knows (content: NULL).
pub fn unknown_critical_ext() -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0]);
    ext.set_criticality(true);
    ext
}

/// Replaces the first occurrence of `from` in `der` with `to` (same length).
pub fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let pos = der
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern not found");
    let mut out = der.to_vec();
    out[pos..pos + to.len()].copy_from_slice(to);
    out
}

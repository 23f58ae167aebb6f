//! Checking what the CA signs or relies on: CSR signatures, CA certificate chains up to a
//! set of roots, and the re-validation of every issued credential (SPIRE's
//! `credvalidator`).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::CertificateDer;
use spiffe_core::{JwtBundle, JwtSvid, PublicKey, SpiffeId, TrustDomain, X509Bundle, verify_chain};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
    OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

/// The longest CA chain followed (intermediates plus root).
const MAX_CHAIN_DEPTH: usize = 16;

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing data after certificate".to_owned()),
        Err(e) => Err(format!("unable to parse certificate: {e}")),
    }
}

/// A certificate's validity window, in seconds since the Unix epoch.
pub(crate) fn validity_secs(cert: &X509Certificate<'_>) -> (i64, i64) {
    let validity = cert.validity();
    (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    )
}

/// A certificate's notAfter as a time.
pub(crate) fn not_after(cert: &X509Certificate<'_>) -> SystemTime {
    from_secs(validity_secs(cert).1)
}

/// Seconds since the epoch (negative clamps to the epoch).
pub(crate) fn from_secs(secs: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn to_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The SubjectKeyIdentifier extension's value, if present.
pub(crate) fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

/// The AuthorityKeyIdentifier's keyIdentifier, if present.
pub(crate) fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

/// The URI SANs of a certificate.
pub(crate) fn uri_sans(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("invalid subjectAltName: {e}"))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Verifies a signature made by the holder of `spki` with `alg` over `data`: ECDSA on
/// P-256/P-384/P-521 with SHA-256/384/512, and RSA PKCS#1 v1.5 with SHA-256/384/512.
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    alg: &AlgorithmIdentifier<'_>,
    sig: &[u8],
    data: &[u8],
) -> Result<(), String> {
    let key_alg = &spki.algorithm.algorithm;
    let verification: &'static dyn VerificationAlgorithm = if *key_alg == OID_KEY_TYPE_EC_PUBLIC_KEY
    {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| "EC public key without a named curve".to_owned())?;
        let hash = if alg.algorithm == OID_SIG_ECDSA_WITH_SHA256 {
            256
        } else if alg.algorithm == OID_SIG_ECDSA_WITH_SHA384 {
            384
        } else if alg.algorithm == OID_SIG_ECDSA_WITH_SHA512 {
            512
        } else {
            return Err(format!(
                "unsupported signature algorithm {} for an EC key",
                alg.algorithm
            ));
        };
        match (curve, hash) {
            (c, 256) if c == OID_EC_P256 => &signature::ECDSA_P256_SHA256_ASN1,
            (c, 384) if c == OID_EC_P256 => &signature::ECDSA_P256_SHA384_ASN1,
            (c, 512) if c == OID_EC_P256 => &signature::ECDSA_P256_SHA512_ASN1,
            (c, 256) if c == OID_NIST_EC_P384 => &signature::ECDSA_P384_SHA256_ASN1,
            (c, 384) if c == OID_NIST_EC_P384 => &signature::ECDSA_P384_SHA384_ASN1,
            (c, 512) if c == OID_NIST_EC_P384 => &signature::ECDSA_P384_SHA512_ASN1,
            (c, 256) if c == OID_NIST_EC_P521 => &signature::ECDSA_P521_SHA256_ASN1,
            (c, 384) if c == OID_NIST_EC_P521 => &signature::ECDSA_P521_SHA384_ASN1,
            (c, 512) if c == OID_NIST_EC_P521 => &signature::ECDSA_P521_SHA512_ASN1,
            (c, _) => return Err(format!("unsupported EC curve {c}")),
        }
    } else if *key_alg == OID_PKCS1_RSAENCRYPTION {
        if alg.algorithm == OID_PKCS1_SHA256WITHRSA {
            &signature::RSA_PKCS1_2048_8192_SHA256
        } else if alg.algorithm == OID_PKCS1_SHA384WITHRSA {
            &signature::RSA_PKCS1_2048_8192_SHA384
        } else if alg.algorithm == OID_PKCS1_SHA512WITHRSA {
            &signature::RSA_PKCS1_2048_8192_SHA512
        } else {
            return Err(format!(
                "unsupported signature algorithm {} for an RSA key",
                alg.algorithm
            ));
        }
    } else {
        return Err(format!("unsupported public key algorithm {key_alg}"));
    };
    UnparsedPublicKey::new(verification, &spki.subject_public_key.data)
        .verify(data, sig)
        .map_err(|_| "signature verification failed".to_owned())
}

/// Verifies that `cert` was signed by the key of `issuer`.
pub(crate) fn verify_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), String> {
    verify_signature(
        issuer.public_key(),
        &cert.signature_algorithm,
        &cert.signature_value.data,
        cert.tbs_certificate.as_ref(),
    )
}

/// Checks that every RDN of a name holds exactly one attribute: rcgen can only re-encode
/// such names (and would panic on an empty RDN), so names are checked before they reach
/// it.
pub(crate) fn check_simple_name(name: &X509Name<'_>, what: &str) -> Result<(), String> {
    if name.iter_rdn().any(|rdn| rdn.iter().count() != 1) {
        return Err(format!(
            "{what} has a multi-valued or empty RDN, which is not supported"
        ));
    }
    Ok(())
}

/// A CSR whose self-signature verified.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedCsr {
    /// The SubjectPublicKeyInfo DER.
    pub(crate) spki_der: Vec<u8>,
    /// The URI SANs requested.
    pub(crate) uris: Vec<String>,
    /// Whether the subject can be copied by rcgen (see [`check_simple_name`]).
    pub(crate) subject_error: Option<String>,
}

/// Parses a PKCS#10 CSR and verifies its signature (proof of possession of the key).
pub(crate) fn parse_and_verify_csr(der: &[u8]) -> Result<VerifiedCsr, String> {
    let csr = match X509CertificationRequest::from_der(der) {
        Ok(([], csr)) => csr,
        Ok(_) => return Err("unable to parse CSR: trailing data".to_owned()),
        Err(e) => return Err(format!("unable to parse CSR: {e}")),
    };
    let info = &csr.certification_request_info;
    verify_signature(
        &info.subject_pki,
        &csr.signature_algorithm,
        &csr.signature_value.data,
        info.raw,
    )
    .map_err(|e| format!("CSR signature check failed: {e}"))?;
    let mut uris = Vec::new();
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    if let GeneralName::URI(uri) = name {
                        uris.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    Ok(VerifiedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
        uris,
        subject_error: check_simple_name(&info.subject, "the CSR subject").err(),
    })
}

fn check_time(cert: &X509Certificate<'_>, now: i64, what: &str) -> Result<(), String> {
    let (not_before, not_after) = validity_secs(cert);
    if now < not_before {
        return Err(format!("{what} is not yet valid"));
    }
    if now > not_after {
        return Err(format!("{what} has expired"));
    }
    Ok(())
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Verifies that a CA chain (`chain[0]` first, then the intermediates that lead up from
/// it) reaches one of `roots` at `now`: as Go's `x509.Verify` on `chain[0]`, a chain
/// that is itself a root is valid; otherwise each step must be signed by its issuer (same
/// name, a CA, a verifying signature), every certificate on the path must be within its
/// validity window, and the path must end at a root.
pub(crate) fn verify_ca_chain(
    chain: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<(), String> {
    let now = to_secs(now);
    let parsed_chain = chain
        .iter()
        .map(|c| parse_cert(c))
        .collect::<Result<Vec<_>, _>>()?;
    let parsed_roots = roots
        .iter()
        .map(|c| parse_cert(c))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut current, intermediates) = match parsed_chain.split_first() {
        Some((first, rest)) => (first, rest),
        None => return Err("empty certificate chain".to_owned()),
    };
    for _ in 0..MAX_CHAIN_DEPTH {
        check_time(current, now, "certificate")?;
        if roots.iter().any(|r| r.as_ref() == current.as_raw()) {
            return Ok(());
        }
        let issuer_name = current.issuer().as_raw();
        let issued_by = |candidate: &X509Certificate<'_>| {
            candidate.subject().as_raw() == issuer_name
                && is_ca(candidate)
                && verify_signed_by(current, candidate).is_ok()
        };
        if let Some(root) = parsed_roots.iter().find(|r| issued_by(r)) {
            check_time(root, now, "root certificate")?;
            return Ok(());
        }
        match intermediates.iter().find(|c| issued_by(c)) {
            Some(next) => current = next,
            None => {
                return Err("certificate cannot be validated with the provided bundle".to_owned());
            }
        }
    }
    Err("certificate chain too long".to_owned())
}

/// Checks an X.509 CA certificate this server will sign with (SPIRE's
/// `credvalidator.ValidateX509CA`): CA:TRUE, keyUsage with keyCertSign and nothing but
/// keyCertSign/cRLSign/digitalSignature, exactly one URI SAN that is the trust domain's
/// ID, the expected public key, and valid at `now`.
pub(crate) fn validate_x509_ca(
    der: &[u8],
    trust_domain: &TrustDomain,
    expected_spki: &[u8],
    now: SystemTime,
) -> Result<(), String> {
    let cert = parse_cert(der)?;
    if !is_ca(&cert) {
        return Err("invalid X509 CA: not a CA certificate".to_owned());
    }
    let ku = match cert.key_usage() {
        Ok(Some(ku)) => *ku.value,
        Ok(None) => return Err("invalid X509 CA: missing key usage".to_owned()),
        Err(e) => return Err(format!("invalid X509 CA: invalid key usage: {e}")),
    };
    if !ku.key_cert_sign() {
        return Err("invalid X509 CA: key usage must include keyCertSign".to_owned());
    }
    if ku.non_repudiation()
        || ku.key_encipherment()
        || ku.data_encipherment()
        || ku.key_agreement()
        || ku.encipher_only()
        || ku.decipher_only()
    {
        return Err(
            "invalid X509 CA: key usage may only hold keyCertSign, cRLSign and digitalSignature"
                .to_owned(),
        );
    }
    let uris = uri_sans(&cert)?;
    let td_id = trust_domain.id_string();
    if uris.len() != 1 || uris[0] != td_id {
        return Err(format!(
            "invalid X509 CA: URI SAN must be exactly {td_id:?}, got {uris:?}"
        ));
    }
    if cert.public_key().raw != expected_spki {
        return Err("invalid X509 CA: public key does not match the signing key".to_owned());
    }
    check_time(&cert, to_secs(now), "X509 CA")
}

/// Re-validates an issued X509-SVID chain (leaf first) against the trust domain's
/// authorities, as a relying party would: full SVID profile checks and path validation
/// (spiffe-core's [`verify_chain`]), and the leaf's ID must be `expected`.
pub(crate) fn validate_x509_svid(
    chain: &[CertificateDer<'static>],
    bundle: &X509Bundle,
    expected: &SpiffeId,
    now: SystemTime,
) -> Result<(), String> {
    let id = verify_chain(chain, bundle, now).map_err(|e| e.to_string())?;
    if &id != expected {
        return Err(format!(
            "SPIFFE ID mismatch: issued {id}, expected {expected}"
        ));
    }
    Ok(())
}

/// Re-validates an issued JWT-SVID against the signing key (SPIRE's
/// `credvalidator.ValidateWorkloadJWTSVID`): signature, times, audience, and the subject
/// must be `expected`.
pub(crate) fn validate_jwt_svid(
    token: &str,
    trust_domain: &TrustDomain,
    kid: &str,
    key: &PublicKey,
    audience: &[&str],
    expected: &SpiffeId,
    now: SystemTime,
) -> Result<(), String> {
    let mut bundle = JwtBundle::new(trust_domain.clone());
    bundle
        .add_authority(kid, key.clone())
        .map_err(|e| e.to_string())?;
    let svid =
        JwtSvid::parse_and_validate(token, &bundle, audience, now).map_err(|e| e.to_string())?;
    if svid.spiffe_id() != expected {
        return Err(format!(
            "SPIFFE ID mismatch: issued {}, expected {expected}",
            svid.spiffe_id()
        ));
    }
    Ok(())
}

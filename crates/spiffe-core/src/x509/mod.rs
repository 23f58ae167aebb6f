//! X.509-SVIDs and X.509 bundles (`X509-SVID.md`, conformance checklist §3).
//!
//! - [`X509Svid`]: a certificate chain (leaf first) and the leaf's PKCS#8 private key,
//!   checked against the X.509-SVID profile when built ([`X509Svid::parse_der`],
//!   [`X509Svid::parse_pem`], [`X509Svid::from_parts`]).
//! - [`X509Bundle`]: the X.509 authorities (CA certificates) of one trust domain, and the
//!   [`X509BundleSource`] trait through which a verifier finds the bundle of a trust
//!   domain.
//! - [`verify_chain`]: authenticates a peer's chain: profile checks on every
//!   certificate, then RFC 5280 path validation against the bundle of the leaf's own trust
//!   domain only.
//! - [`parse_leaf_spiffe_id`]: a cheap read of a leaf's SPIFFE ID, without authenticating
//!   it.
//!
//! The profile rules enforced (on parse *and* on verify, see conformance §8 A-7) are those
//! of go-spiffe's `x509svid.Parse` plus the profile rules of X509-SVID §4 that go-spiffe
//! leaves out (key usage present and critical, EKU contents):
//!
//! | rule | leaf | signing certificate (`chain[1..]`) |
//! |---|---|---|
//! | X5-01/02/29 | exactly one URI SAN | — |
//! | X5-27 | the URI SAN is a valid `spiffe://` ID | — |
//! | X5-04/28 | the ID has a non-root path | — |
//! | X5-08 | — | a SPIFFE ID, if any, has no path |
//! | X5-13/14/25 | basicConstraints present, `cA=false` | basicConstraints `cA=true` |
//! | X5-16/17 | keyUsage present and critical | keyUsage present and critical |
//! | X5-18/19/20/26 | `digitalSignature`; no `keyCertSign`, no `cRLSign` | `keyCertSign` |
//! | X5-22 | EKU, if present, has `serverAuth` and `clientAuth` | — (X5-23: any EKU allowed) |
//! | X5-05 | empty subject ⇒ the SAN extension is critical | — |

mod bundle;
mod profile;
mod svid;
mod verify;

use rustls_pki_types::CertificateDer;
use thiserror::Error;
use x509_parser::certificate::X509Certificate;

use crate::id::IdError;

pub use bundle::{X509Bundle, X509BundleSource};
pub use profile::parse_leaf_spiffe_id;
pub use svid::X509Svid;
pub use verify::verify_chain;

/// Why an X.509-SVID, an X.509 bundle or a certificate chain was rejected.
///
/// Certificate positions are chain indexes: `0` is the leaf, `1..` the signing
/// certificates that follow it. For bundles, the index is the position in the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum X509Error {
    // ---- input decoding -------------------------------------------------------------
    /// The certificate chain was empty.
    #[error("certificate chain is empty")]
    EmptyChain,
    /// PEM input held no `CERTIFICATE` block.
    #[error("no PEM-encoded certificates found")]
    NoCertificates,
    /// PEM input could not be decoded.
    #[error("invalid PEM: {0}")]
    InvalidPem(String),
    /// A PEM block had an unexpected type, e.g. a key where certificates were expected.
    #[error("expected PEM block type {expected:?}, found {found:?}")]
    UnexpectedPemBlock {
        /// The block type wanted.
        expected: &'static str,
        /// The block type found.
        found: String,
    },
    /// A certificate was not valid DER-encoded X.509.
    #[error("certificate {index} is not a valid DER X.509 certificate: {reason}")]
    MalformedCertificate {
        /// Position of the certificate in the input.
        index: usize,
        /// What the parser reported.
        reason: String,
    },
    /// An extension could not be decoded, or appeared twice.
    #[error("certificate {index} has an invalid {extension} extension: {reason}")]
    InvalidExtension {
        /// Chain index of the certificate.
        index: usize,
        /// Name of the extension.
        extension: &'static str,
        /// What the parser reported.
        reason: String,
    },

    // ---- private key ------------------------------------------------------------------
    /// No private key was found in the key input.
    #[error("no private key found")]
    MissingPrivateKey,
    /// The private key is encrypted; only unencrypted PKCS#8 keys are accepted.
    #[error("private key is encrypted; an unencrypted PKCS#8 key is required")]
    EncryptedPrivateKey,
    /// The private key could not be decoded, or its type is not supported.
    #[error(
        "private key is not a valid unencrypted PKCS#8 key of a supported type (EC P-256/P-384/P-521, RSA, Ed25519)"
    )]
    InvalidPrivateKey,
    /// The private key does not belong to the leaf certificate.
    #[error("private key does not match the leaf certificate's public key")]
    KeyMismatch,

    // ---- leaf profile (X509-SVID §2, §3.1, §4, §5.2) ------------------------------------
    /// The leaf has no URI SAN (X5-01).
    #[error("leaf certificate has no URI SAN; an X509-SVID must have exactly one (X5-01)")]
    MissingUriSan,
    /// The leaf has more than one URI SAN (X5-02, X5-29).
    #[error("leaf certificate has {count} URI SANs; an X509-SVID must have exactly one (X5-02)")]
    MultipleUriSans {
        /// How many URI SANs were found.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID (X5-27).
    #[error("leaf certificate URI SAN {uri:?} is not a valid SPIFFE ID: {source}")]
    InvalidSpiffeId {
        /// The URI as found in the certificate.
        uri: String,
        /// Why it is not a SPIFFE ID.
        source: IdError,
    },
    /// The leaf's SPIFFE ID has no path (X5-04, X5-28).
    #[error("leaf certificate SPIFFE ID {id} has a root path; a leaf ID must have a path (X5-04)")]
    LeafRootPath {
        /// The ID found.
        id: String,
    },
    /// The leaf has no basicConstraints extension (X5-14).
    #[error("leaf certificate must have the basicConstraints extension with cA=false (X5-14)")]
    LeafMissingBasicConstraints,
    /// The leaf is a CA (X5-14, X5-25).
    #[error("leaf certificate must not have cA=true (X5-14)")]
    LeafIsCa,
    /// The leaf has no keyUsage extension (X5-16).
    #[error("leaf certificate must have the keyUsage extension (X5-16)")]
    LeafMissingKeyUsage,
    /// The leaf's keyUsage extension is not critical (X5-17).
    #[error("leaf certificate keyUsage extension must be critical (X5-17)")]
    LeafKeyUsageNotCritical,
    /// The leaf lacks `digitalSignature` (X5-19).
    #[error("leaf certificate must have digitalSignature key usage (X5-19)")]
    LeafMissingDigitalSignature,
    /// The leaf has `keyCertSign` (X5-20, X5-26).
    #[error("leaf certificate must not have keyCertSign (X5-20)")]
    LeafHasKeyCertSign,
    /// The leaf has `cRLSign` (X5-20, X5-26).
    #[error("leaf certificate must not have cRLSign (X5-20)")]
    LeafHasCrlSign,
    /// The leaf has an EKU extension without both `serverAuth` and `clientAuth` (X5-22).
    #[error(
        "leaf certificate extended key usage must include both serverAuth and clientAuth; {missing} is missing (X5-22)"
    )]
    LeafEkuIncomplete {
        /// The purpose that is missing (`serverAuth` or `clientAuth`).
        missing: &'static str,
    },
    /// The leaf has an empty subject but a non-critical SAN extension (X5-05).
    #[error(
        "leaf certificate has an empty subject, so its subjectAltName extension must be critical (X5-05)"
    )]
    LeafEmptySubjectNonCriticalSan,

    // ---- signing-certificate profile (X509-SVID §3.2, §4) -------------------------------
    /// A signing certificate is not a CA (X5-13).
    #[error("signing certificate {index} must have basicConstraints cA=true (X5-13)")]
    SigningCertNotCa {
        /// Chain index of the certificate.
        index: usize,
    },
    /// A signing certificate has no keyUsage extension (X5-16).
    #[error("signing certificate {index} must have the keyUsage extension (X5-16)")]
    SigningCertMissingKeyUsage {
        /// Chain index of the certificate.
        index: usize,
    },
    /// A signing certificate's keyUsage extension is not critical (X5-17).
    #[error("signing certificate {index} keyUsage extension must be critical (X5-17)")]
    SigningCertKeyUsageNotCritical {
        /// Chain index of the certificate.
        index: usize,
    },
    /// A signing certificate lacks `keyCertSign` (X5-18).
    #[error("signing certificate {index} must have keyCertSign key usage (X5-18)")]
    SigningCertMissingKeyCertSign {
        /// Chain index of the certificate.
        index: usize,
    },
    /// A signing certificate's SPIFFE ID has a path (X5-08).
    #[error("signing certificate {index} SPIFFE ID {id} must not have a path (X5-08)")]
    SigningCertIdHasPath {
        /// Chain index of the certificate.
        index: usize,
        /// The ID found.
        id: String,
    },

    // ---- verification (X509-SVID §5) ----------------------------------------------------
    /// No bundle is known for the leaf's trust domain (X5-30).
    #[error("no X.509 bundle found for trust domain {trust_domain:?}")]
    NoBundle {
        /// The leaf's trust domain.
        trust_domain: String,
    },
    /// The bundle of the leaf's trust domain holds no usable authority (BUN-11).
    #[error(
        "X.509 bundle for trust domain {trust_domain:?} has no usable authorities, so its SVIDs are untrusted"
    )]
    EmptyBundle {
        /// The leaf's trust domain.
        trust_domain: String,
    },
    /// The validation time is past a certificate's notAfter.
    #[error(
        "certificate has expired: notAfter is {not_after} (unix seconds), validation time is {time}"
    )]
    Expired {
        /// The certificate's notAfter, in seconds since the Unix epoch.
        not_after: u64,
        /// The validation time, in seconds since the Unix epoch.
        time: u64,
    },
    /// The validation time is before a certificate's notBefore.
    #[error(
        "certificate is not yet valid: notBefore is {not_before} (unix seconds), validation time is {time}"
    )]
    NotYetValid {
        /// The certificate's notBefore, in seconds since the Unix epoch.
        not_before: u64,
        /// The validation time, in seconds since the Unix epoch.
        time: u64,
    },
    /// No path leads from the leaf to an authority of its trust domain.
    #[error(
        "certificate chain does not lead to an authority of trust domain {trust_domain:?} (unknown issuer)"
    )]
    UnknownIssuer {
        /// The leaf's trust domain.
        trust_domain: String,
    },
    /// A certificate signature did not verify against its issuer's public key.
    #[error("certificate signature is invalid")]
    BadSignature,
    /// A signature or public-key algorithm is not supported.
    #[error("unsupported signature algorithm or public key type")]
    UnsupportedSignatureAlgorithm,
    /// A certificate used as an issuer is not a CA.
    #[error("a certificate in the path is used as an issuer but is not a CA")]
    IssuerNotCa,
    /// A CA certificate was presented as the leaf (X5-11).
    #[error("a CA certificate cannot be used as the leaf (X5-11)")]
    CaUsedAsLeaf,
    /// A pathLenConstraint was exceeded (X5-12).
    #[error("a CA's pathLenConstraint is exceeded by the chain")]
    PathLenExceeded,
    /// A name constraint rejected the chain. URI name constraints (X5-15) are not
    /// supported by the path validator and always end here (fail closed).
    #[error("a name constraint of a CA rejects the chain (URI name constraints are not supported)")]
    NameConstraintViolation,
    /// A certificate has a critical extension the validator does not know.
    #[error("a certificate in the path has an unsupported critical extension")]
    UnsupportedCriticalExtension,
    /// Any other path validation failure.
    #[error("certificate path validation failed: {0}")]
    Validation(String),
}

/// Chain index of the leaf.
pub(crate) const LEAF: usize = 0;

/// Parses one DER certificate, refusing trailing data.
pub(crate) fn parse_cert(der: &[u8], index: usize) -> Result<X509Certificate<'_>, X509Error> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(X509Error::MalformedCertificate {
            index,
            reason: "trailing data after the certificate".to_owned(),
        }),
        Err(e) => Err(X509Error::MalformedCertificate {
            index,
            reason: e.to_string(),
        }),
    }
}

/// Splits concatenated DER certificates (as in the Workload API `x509_svid` and `bundle`
/// fields), validating each as X.509.
pub(crate) fn split_der_certs(mut input: &[u8]) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let mut certs = Vec::new();
    while !input.is_empty() {
        let index = certs.len();
        let rest = match x509_parser::parse_x509_certificate(input) {
            Ok((rest, _)) => rest,
            Err(e) => {
                return Err(X509Error::MalformedCertificate {
                    index,
                    reason: e.to_string(),
                });
            }
        };
        let used = input.len().saturating_sub(rest.len());
        let (cert, tail) = input.split_at(used.min(input.len()));
        if cert.is_empty() {
            // Cannot happen with a well-behaved parser; refuse rather than loop forever.
            return Err(X509Error::MalformedCertificate {
                index,
                reason: "empty certificate".to_owned(),
            });
        }
        certs.push(CertificateDer::from(cert.to_vec()));
        input = tail;
    }
    Ok(certs)
}

/// The PEM block type of certificates.
pub(crate) const PEM_CERTIFICATE: &str = "CERTIFICATE";

/// Decodes PEM `CERTIFICATE` blocks, validating each as X.509. Any other block type is an
/// error (as go-spiffe's `pemutil`). Returns an empty list when there are no blocks.
pub(crate) fn split_pem_certs(input: &[u8]) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let blocks = pem::parse_many(input).map_err(|e| X509Error::InvalidPem(e.to_string()))?;
    let mut certs = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.into_iter().enumerate() {
        if block.tag() != PEM_CERTIFICATE {
            return Err(X509Error::UnexpectedPemBlock {
                expected: PEM_CERTIFICATE,
                found: block.tag().to_owned(),
            });
        }
        parse_cert(block.contents(), index)?;
        certs.push(CertificateDer::from(block.into_contents()));
    }
    Ok(certs)
}

/// Encodes certificates as PEM `CERTIFICATE` blocks with `\n` line endings.
pub(crate) fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    let blocks: Vec<pem::Pem> = certs
        .iter()
        .map(|c| pem::Pem::new(PEM_CERTIFICATE, c.as_ref().to_vec()))
        .collect();
    pem::encode_many_config(
        &blocks,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Concatenates DER certificates.
pub(crate) fn certs_to_der(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(certs.iter().map(|c| c.len()).sum());
    for cert in certs {
        out.extend_from_slice(cert.as_ref());
    }
    out
}

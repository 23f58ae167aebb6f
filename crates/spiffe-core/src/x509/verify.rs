//! Authenticating an X.509-SVID chain (X509-SVID §5).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, VerifiedPath};

use super::bundle::X509BundleSource;
use super::profile::check_chain;
use super::{X509Error, parse_cert};
use crate::SpiffeId;

/// Authenticates an X.509-SVID chain (leaf first, then intermediates) at time `at` and
/// returns the leaf's SPIFFE ID.
///
/// Steps:
/// 1. Profile checks on every certificate of the chain, as on parse (X5-01/02/04/05/08,
///    X5-13/14/16–20/22, and the validator checks of X5-25..X5-29; see the
///    [module documentation](super)).
/// 2. The bundle of the leaf's **own** trust domain is looked up in `bundles`, and no
///    other (TD-02, X5-30, ID-26); a source that answers with a bundle of another trust
///    domain is treated as having none. No bundle is [`X509Error::NoBundle`]; a bundle without
///    usable authorities is [`X509Error::EmptyBundle`] (BUN-11).
/// 3. RFC 5280 path validation with rustls-webpki (X5-24): signatures, validity window at
///    `at`, CA flags, pathLenConstraint (X5-12), name constraints, unknown critical
///    extensions. Trust anchors are all the bundle's authorities; `chain[1..]` are the
///    candidate intermediates. As Go's `x509.Verify` does (and so go-spiffe), the root
///    that ends the path must also be within its own validity window at `at`, be a CA,
///    and its pathLenConstraint holds; RFC 5280 alone would not check these on an anchor.
///
/// Extended key usage is checked on the leaf by the profile (X5-22), not by the path
/// validator: the validator accepts any EKU on signing certificates, as go-spiffe does
/// with `ExtKeyUsageAny` (X5-23).
///
/// # Known limitation
///
/// rustls-webpki does not implement URI name constraints and fails closed on them: a CA
/// carrying a URI name constraint (permitted or excluded) rejects every leaf with a URI
/// SAN, i.e. every X.509-SVID, with [`X509Error::NameConstraintViolation`]. X5-15 makes
/// such constraints a MAY, and SPIRE does not issue them. DNS, IP and other name
/// constraints are processed normally and do not affect the SPIFFE URI SAN.
pub fn verify_chain<B: X509BundleSource + ?Sized>(
    chain: &[CertificateDer<'_>],
    bundles: &B,
    at: SystemTime,
) -> Result<SpiffeId, X509Error> {
    let id = check_chain(chain)?;
    let (leaf, intermediates) = chain.split_first().ok_or(X509Error::EmptyChain)?;

    let td = id.trust_domain();
    let trust_domain = || td.name().to_owned();
    let bundle = bundles
        .x509_bundle_for(&td)
        .filter(|b| b.trust_domain() == &td)
        .ok_or_else(|| X509Error::NoBundle {
            trust_domain: trust_domain(),
        })?;

    // Authorities webpki cannot use as anchors are skipped; if none is left, the trust
    // domain has no usable keys and its SVIDs are untrusted (BUN-11).
    let mut anchors: Vec<TrustAnchor<'_>> = Vec::with_capacity(bundle.authorities().len());
    let mut anchor_infos: Vec<AnchorInfo> = Vec::with_capacity(bundle.authorities().len());
    for (index, cert) in bundle.authorities().iter().enumerate() {
        let (Ok(anchor), Ok(info)) = (
            webpki::anchor_from_trusted_cert(cert),
            AnchorInfo::parse(cert, index),
        ) else {
            continue;
        };
        anchors.push(anchor);
        anchor_infos.push(info);
    }
    if anchors.is_empty() {
        return Err(X509Error::EmptyBundle {
            trust_domain: trust_domain(),
        });
    }

    let end_entity = EndEntityCert::try_from(leaf).map_err(|e| map_webpki_error(e, &td))?;
    let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap_or_default());
    let check_anchor = |path: &VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let used = path.anchor();
        match anchors.iter().position(|a| std::ptr::eq(a, used)) {
            Some(i) => match anchor_infos.get(i) {
                Some(info) => info.check(time, path.intermediate_certificates().count()),
                None => Ok(()),
            },
            None => Ok(()),
        }
    };
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            time,
            &AnyEku,
            None,
            Some(&check_anchor),
        )
        .map_err(|e| map_webpki_error(e, &td))?;
    Ok(id)
}

/// What RFC 5280 leaves out of a trust anchor but Go's `x509.Verify` (so go-spiffe and
/// SPIRE) still checks on a root: its validity window, its CA flag and its
/// pathLenConstraint. webpki only knows an anchor's subject, key and name constraints.
struct AnchorInfo {
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    path_len: Option<u32>,
}

impl AnchorInfo {
    fn parse(der: &[u8], index: usize) -> Result<Self, X509Error> {
        let cert = parse_cert(der, index)?;
        let validity = cert.validity();
        let bc = cert.basic_constraints().ok().flatten().map(|ext| ext.value);
        Ok(AnchorInfo {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            is_ca: bc.is_some_and(|bc| bc.ca),
            path_len: bc.and_then(|bc| bc.path_len_constraint),
        })
    }

    /// Checks the anchor at the end of a candidate path with `intermediates` certificates
    /// between it and the leaf.
    fn check(&self, time: UnixTime, intermediates: usize) -> Result<(), webpki::Error> {
        let to_unix = |secs: i64| {
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
        };
        let now = i64::try_from(time.as_secs()).unwrap_or(i64::MAX);
        if now < self.not_before {
            return Err(webpki::Error::CertNotValidYet {
                time,
                not_before: to_unix(self.not_before),
            });
        }
        if now > self.not_after {
            return Err(webpki::Error::CertExpired {
                time,
                not_after: to_unix(self.not_after),
            });
        }
        if !self.is_ca {
            return Err(webpki::Error::EndEntityUsedAsCa);
        }
        if let Some(len) = self.path_len
            && u64::try_from(intermediates).unwrap_or(u64::MAX) > u64::from(len)
        {
            return Err(webpki::Error::PathLenConstraintViolated);
        }
        Ok(())
    }
}

/// Accepts any (well-formed) EKU in the path: the leaf's EKU is checked by the profile
/// (X5-22), and signing certificates may carry any EKU (X5-23), as in go-spiffe.
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

fn map_webpki_error(e: webpki::Error, td: &crate::TrustDomain) -> X509Error {
    use webpki::Error as E;
    match e {
        E::CertExpired { time, not_after } => X509Error::Expired {
            not_after: not_after.as_secs(),
            time: time.as_secs(),
        },
        E::CertNotValidYet { time, not_before } => X509Error::NotYetValid {
            not_before: not_before.as_secs(),
            time: time.as_secs(),
        },
        E::UnknownIssuer => X509Error::UnknownIssuer {
            trust_domain: td.name().to_owned(),
        },
        E::InvalidSignatureForPublicKey => X509Error::BadSignature,
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => X509Error::UnsupportedSignatureAlgorithm,
        E::EndEntityUsedAsCa => X509Error::IssuerNotCa,
        E::CaUsedAsEndEntity => X509Error::CaUsedAsLeaf,
        E::PathLenConstraintViolated => X509Error::PathLenExceeded,
        E::NameConstraintViolation => X509Error::NameConstraintViolation,
        E::UnsupportedCriticalExtension => X509Error::UnsupportedCriticalExtension,
        other => X509Error::Validation(other.to_string()),
    }
}

//! The X.509-SVID certificate profile (X509-SVID §2–§5.2): the checks applied to the leaf
//! and to the signing certificates of a chain, on parse and on verify.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension, SubjectAlternativeName};
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};

use super::{LEAF, X509Error, parse_cert};
use crate::SpiffeId;

/// Reads the SPIFFE ID of a leaf X.509-SVID (DER) **without authenticating it**.
///
/// Checks only the SAN rules: exactly one URI SAN (X5-01, X5-02, X5-29), a valid
/// `spiffe://` ID (X5-27) with a non-root path (X5-04, X5-28). Use [`super::verify_chain`]
/// to authenticate a peer, or [`super::X509Svid`] to load an SVID with all profile checks.
pub fn parse_leaf_spiffe_id(der: &[u8]) -> Result<SpiffeId, X509Error> {
    let cert = parse_cert(der, LEAF)?;
    leaf_spiffe_id(&cert)
}

/// The leaf's SPIFFE ID: exactly one URI SAN, a valid SPIFFE ID, a non-root path.
pub(crate) fn leaf_spiffe_id(cert: &X509Certificate<'_>) -> Result<SpiffeId, X509Error> {
    let san = subject_alt_name(cert, LEAF)?;
    let mut uris = san
        .map(|(_, san)| {
            san.general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect::<Vec<&str>>()
        })
        .unwrap_or_default();
    let uri = match uris.len() {
        0 => return Err(X509Error::MissingUriSan),
        1 => uris.pop().unwrap_or_default(),
        count => return Err(X509Error::MultipleUriSans { count }),
    };
    let id = SpiffeId::parse(uri).map_err(|source| X509Error::InvalidSpiffeId {
        uri: uri.to_owned(),
        source,
    })?;
    if id.is_root() {
        return Err(X509Error::LeafRootPath {
            id: id.as_str().to_owned(),
        });
    }
    Ok(id)
}

/// All leaf profile checks; returns the leaf's SPIFFE ID.
pub(crate) fn check_leaf(cert: &X509Certificate<'_>) -> Result<SpiffeId, X509Error> {
    let id = leaf_spiffe_id(cert)?;

    // X5-14, X5-25: basicConstraints present with cA=false.
    match basic_constraints(cert, LEAF)? {
        None => return Err(X509Error::LeafMissingBasicConstraints),
        Some(true) => return Err(X509Error::LeafIsCa),
        Some(false) => {}
    }

    // X5-16, X5-17, X5-19, X5-20, X5-26.
    let (critical, ku) = key_usage(cert, LEAF)?.ok_or(X509Error::LeafMissingKeyUsage)?;
    if !critical {
        return Err(X509Error::LeafKeyUsageNotCritical);
    }
    if !ku.digital_signature() {
        return Err(X509Error::LeafMissingDigitalSignature);
    }
    if ku.key_cert_sign() {
        return Err(X509Error::LeafHasKeyCertSign);
    }
    if ku.crl_sign() {
        return Err(X509Error::LeafHasCrlSign);
    }

    // X5-22: an EKU, when present, includes both serverAuth and clientAuth. An EKU that
    // holds only anyExtendedKeyUsage is rejected: the rule asks for the two purposes by
    // name, SPIRE's credential validator does the same, and webpki/Go TLS stacks would
    // not treat `any` as clientAuth for a peer either. (anyExtendedKeyUsage next to both
    // named purposes is fine.)
    if let Some(eku) = extended_key_usage(cert, LEAF)? {
        if !eku.server_auth {
            return Err(X509Error::LeafEkuIncomplete {
                missing: "serverAuth",
            });
        }
        if !eku.client_auth {
            return Err(X509Error::LeafEkuIncomplete {
                missing: "clientAuth",
            });
        }
    }

    // X5-05: an empty subject requires a critical SAN extension (RFC 5280 §4.1.2.6).
    if cert.subject().iter().next().is_none() {
        let san_critical = subject_alt_name(cert, LEAF)?.is_some_and(|(critical, _)| critical);
        if !san_critical {
            return Err(X509Error::LeafEmptySubjectNonCriticalSan);
        }
    }

    Ok(id)
}

/// Profile checks for a signing certificate at chain index `index` (≥ 1): cA=true (X5-13),
/// keyUsage present (X5-16) and critical (X5-17) with keyCertSign (X5-18), and a SPIFFE ID,
/// if any, without a path (X5-08). URI SANs that are not SPIFFE IDs are ignored: a
/// signing certificate need not be an SVID (X5-07 is only a SHOULD).
pub(crate) fn check_signing_cert(
    cert: &X509Certificate<'_>,
    index: usize,
) -> Result<(), X509Error> {
    if basic_constraints(cert, index)? != Some(true) {
        return Err(X509Error::SigningCertNotCa { index });
    }
    let (critical, ku) =
        key_usage(cert, index)?.ok_or(X509Error::SigningCertMissingKeyUsage { index })?;
    if !critical {
        return Err(X509Error::SigningCertKeyUsageNotCritical { index });
    }
    if !ku.key_cert_sign() {
        return Err(X509Error::SigningCertMissingKeyCertSign { index });
    }
    if let Some((_, san)) = subject_alt_name(cert, index)? {
        for name in &san.general_names {
            if let GeneralName::URI(uri) = name
                && let Ok(id) = SpiffeId::parse(uri)
                && !id.is_root()
            {
                return Err(X509Error::SigningCertIdHasPath {
                    index,
                    id: id.as_str().to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Parses every certificate of a chain and runs the leaf and signing-certificate profile
/// checks. Returns the leaf's SPIFFE ID.
pub(crate) fn check_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<SpiffeId, X509Error> {
    let mut certs = chain.iter().enumerate();
    let (_, leaf_der) = certs.next().ok_or(X509Error::EmptyChain)?;
    let leaf = parse_cert(leaf_der.as_ref(), LEAF)?;
    let id = check_leaf(&leaf)?;
    for (index, der) in certs {
        let cert = parse_cert(der.as_ref(), index)?;
        check_signing_cert(&cert, index)?;
    }
    Ok(id)
}

// ---- extension accessors that report malformed extensions instead of hiding them ------

fn extension_error(index: usize, extension: &'static str, reason: impl ToString) -> X509Error {
    X509Error::InvalidExtension {
        index,
        extension,
        reason: reason.to_string(),
    }
}

/// `Some(cA)` when the extension is present.
fn basic_constraints(cert: &X509Certificate<'_>, index: usize) -> Result<Option<bool>, X509Error> {
    const NAME: &str = "basicConstraints";
    let ext = cert
        .get_extension_unique(&OID_X509_EXT_BASIC_CONSTRAINTS)
        .map_err(|e| extension_error(index, NAME, e))?;
    match ext.map(|e| e.parsed_extension()) {
        None => Ok(None),
        Some(ParsedExtension::BasicConstraints(bc)) => Ok(Some(bc.ca)),
        Some(ParsedExtension::ParseError { error }) => Err(extension_error(index, NAME, error)),
        Some(_) => Err(extension_error(index, NAME, "unexpected content")),
    }
}

/// `Some((critical, usage))` when the extension is present.
fn key_usage<'c>(
    cert: &'c X509Certificate<'_>,
    index: usize,
) -> Result<Option<(bool, &'c x509_parser::extensions::KeyUsage)>, X509Error> {
    const NAME: &str = "keyUsage";
    let ext = cert
        .get_extension_unique(&OID_X509_EXT_KEY_USAGE)
        .map_err(|e| extension_error(index, NAME, e))?;
    match ext {
        None => Ok(None),
        Some(ext) => match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => Ok(Some((ext.critical, ku))),
            ParsedExtension::ParseError { error } => Err(extension_error(index, NAME, error)),
            _ => Err(extension_error(index, NAME, "unexpected content")),
        },
    }
}

fn extended_key_usage<'c>(
    cert: &'c X509Certificate<'_>,
    index: usize,
) -> Result<Option<&'c x509_parser::extensions::ExtendedKeyUsage<'c>>, X509Error> {
    const NAME: &str = "extendedKeyUsage";
    let ext = cert
        .get_extension_unique(&OID_X509_EXT_EXTENDED_KEY_USAGE)
        .map_err(|e| extension_error(index, NAME, e))?;
    match ext.map(|e| e.parsed_extension()) {
        None => Ok(None),
        Some(ParsedExtension::ExtendedKeyUsage(eku)) => Ok(Some(eku)),
        Some(ParsedExtension::ParseError { error }) => Err(extension_error(index, NAME, error)),
        Some(_) => Err(extension_error(index, NAME, "unexpected content")),
    }
}

/// `Some((critical, names))` when the extension is present.
fn subject_alt_name<'c>(
    cert: &'c X509Certificate<'_>,
    index: usize,
) -> Result<Option<(bool, &'c SubjectAlternativeName<'c>)>, X509Error> {
    const NAME: &str = "subjectAltName";
    let ext = cert
        .get_extension_unique(&OID_X509_EXT_SUBJECT_ALT_NAME)
        .map_err(|e| extension_error(index, NAME, e))?;
    match ext {
        None => Ok(None),
        Some(ext) => match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Ok(Some((ext.critical, san))),
            ParsedExtension::ParseError { error } => Err(extension_error(index, NAME, error)),
            _ => Err(extension_error(index, NAME, "unexpected content")),
        },
    }
}

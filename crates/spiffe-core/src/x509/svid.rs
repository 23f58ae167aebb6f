//! X.509-SVIDs: a certificate chain and the leaf's private key (X509-SVID §2–§4).

use std::fmt;
use std::time::SystemTime;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::bundle::X509BundleSource;
use super::profile::check_chain;
use super::{
    LEAF, X509Error, certs_to_der, certs_to_pem, parse_cert, split_der_certs, split_pem_certs,
    verify::verify_chain,
};
use crate::SpiffeId;

/// PEM block type of a PKCS#8 private key.
const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM block type of an encrypted PKCS#8 private key (refused).
const PEM_ENCRYPTED_PRIVATE_KEY: &str = "ENCRYPTED PRIVATE KEY";
/// PEM block type of a SEC1 (RFC 5915) EC private key (converted to PKCS#8).
const PEM_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
/// PEM block type of a PKCS#1 RSA private key (converted to PKCS#8).
const PEM_RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";

/// The EC curves accepted for keys.
const EC_ALGS: [&EcdsaSigningAlgorithm; 3] = [
    &ECDSA_P256_SHA256_ASN1_SIGNING,
    &ECDSA_P384_SHA384_ASN1_SIGNING,
    &ECDSA_P521_SHA512_ASN1_SIGNING,
];

/// Returned by [`X509Svid::leaf`] only if the chain invariant were broken; never in
/// practice, since every constructor refuses an empty chain.
static NO_CERT: CertificateDer<'static> = CertificateDer::from_slice(&[]);

/// An X.509-SVID: the certificate chain (leaf first, then any intermediates) and the
/// leaf's private key as unencrypted PKCS#8.
///
/// Every constructor checks that the chain is not empty, that the leaf and the signing
/// certificates meet the X.509-SVID profile (see the [module documentation](super)), and
/// that the private key matches the leaf's public key. Building an `X509Svid` does **not**
/// establish trust; use [`X509Svid::verify`] or [`verify_chain`] for that.
pub struct X509Svid {
    spiffe_id: SpiffeId,
    cert_chain: Vec<CertificateDer<'static>>,
    private_key: PrivatePkcs8KeyDer<'static>,
}

impl X509Svid {
    /// Builds an SVID from its certificate chain (leaf first) and the leaf's PKCS#8 key.
    pub fn from_parts(
        cert_chain: Vec<CertificateDer<'static>>,
        private_key: PrivatePkcs8KeyDer<'static>,
    ) -> Result<Self, X509Error> {
        let spiffe_id = check_chain(&cert_chain)?;
        let leaf = cert_chain.first().ok_or(X509Error::EmptyChain)?;
        check_key_matches_leaf(leaf.as_ref(), private_key.secret_pkcs8_der())?;
        Ok(X509Svid {
            spiffe_id,
            cert_chain,
            private_key,
        })
    }

    /// Parses an SVID from concatenated DER certificates (leaf first, the Workload API
    /// `x509_svid` encoding) and an unencrypted PKCS#8 DER key (`x509_svid_key`).
    pub fn parse_der(chain: &[u8], key_pkcs8_der: &[u8]) -> Result<Self, X509Error> {
        let certs = split_der_certs(chain)?;
        if certs.is_empty() {
            return Err(X509Error::EmptyChain);
        }
        if key_pkcs8_der.is_empty() {
            return Err(X509Error::MissingPrivateKey);
        }
        if looks_like_encrypted_pkcs8(key_pkcs8_der) {
            return Err(X509Error::EncryptedPrivateKey);
        }
        X509Svid::from_parts(certs, PrivatePkcs8KeyDer::from(key_pkcs8_der.to_vec()))
    }

    /// Parses an SVID from PEM `CERTIFICATE` blocks (leaf first) and a PEM private key.
    ///
    /// The key is the first `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or
    /// `RSA PRIVATE KEY` (PKCS#1) block; the latter two are converted to PKCS#8. Other
    /// blocks in the key input (such as `EC PARAMETERS`) are skipped; an
    /// `ENCRYPTED PRIVATE KEY` is refused.
    pub fn parse_pem(certs_pem: &[u8], key_pem: &[u8]) -> Result<Self, X509Error> {
        let certs = split_pem_certs(certs_pem)?;
        if certs.is_empty() {
            return Err(X509Error::NoCertificates);
        }
        let key = key_from_pem(key_pem)?;
        X509Svid::from_parts(certs, key)
    }

    /// The SPIFFE ID of the leaf.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The certificate chain, leaf first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        self.cert_chain.first().unwrap_or(&NO_CERT)
    }

    /// The leaf's private key (unencrypted PKCS#8).
    pub fn private_key(&self) -> &PrivatePkcs8KeyDer<'static> {
        &self.private_key
    }

    /// The chain as concatenated DER, leaf first (the Workload API `x509_svid` field).
    pub fn chain_der(&self) -> Vec<u8> {
        certs_to_der(&self.cert_chain)
    }

    /// The chain as PEM `CERTIFICATE` blocks, leaf first.
    pub fn chain_pem(&self) -> String {
        certs_to_pem(&self.cert_chain)
    }

    /// The private key as a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn key_pem(&self) -> String {
        let block = pem::Pem::new(
            PEM_PRIVATE_KEY,
            self.private_key.secret_pkcs8_der().to_vec(),
        );
        pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// Authenticates this SVID's chain at time `at` against the bundle of its own trust
    /// domain (see [`verify_chain`]). Returns the SPIFFE ID on success.
    pub fn verify<B: X509BundleSource + ?Sized>(
        &self,
        bundles: &B,
        at: SystemTime,
    ) -> Result<SpiffeId, X509Error> {
        verify_chain(&self.cert_chain, bundles, at)
    }
}

impl Clone for X509Svid {
    fn clone(&self) -> Self {
        X509Svid {
            spiffe_id: self.spiffe_id.clone(),
            cert_chain: self.cert_chain.clone(),
            private_key: self.private_key.clone_key(),
        }
    }
}

impl PartialEq for X509Svid {
    fn eq(&self, other: &Self) -> bool {
        self.spiffe_id == other.spiffe_id
            && self.cert_chain == other.cert_chain
            && self.private_key.secret_pkcs8_der() == other.private_key.secret_pkcs8_der()
    }
}

impl Eq for X509Svid {}

impl fmt::Debug for X509Svid {
    /// Shows the ID and chain length; never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain_len", &self.cert_chain.len())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Finds the private key in PEM input and returns it as PKCS#8.
fn key_from_pem(key_pem: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, X509Error> {
    let blocks = pem::parse_many(key_pem).map_err(|e| X509Error::InvalidPem(e.to_string()))?;
    for block in blocks {
        match block.tag() {
            PEM_PRIVATE_KEY => {
                if looks_like_encrypted_pkcs8(block.contents()) {
                    return Err(X509Error::EncryptedPrivateKey);
                }
                return Ok(PrivatePkcs8KeyDer::from(block.into_contents()));
            }
            PEM_ENCRYPTED_PRIVATE_KEY => return Err(X509Error::EncryptedPrivateKey),
            PEM_EC_PRIVATE_KEY => return sec1_to_pkcs8(block.contents()),
            PEM_RSA_PRIVATE_KEY => return pkcs1_to_pkcs8(block.contents()),
            _ => {}
        }
    }
    Err(X509Error::MissingPrivateKey)
}

/// Converts a SEC1 / RFC 5915 `ECPrivateKey` to PKCS#8.
fn sec1_to_pkcs8(der: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, X509Error> {
    for alg in EC_ALGS {
        if let Ok(kp) = EcdsaKeyPair::from_private_key_der(alg, der) {
            let doc = kp.to_pkcs8v1().map_err(|_| X509Error::InvalidPrivateKey)?;
            return Ok(PrivatePkcs8KeyDer::from(doc.as_ref().to_vec()));
        }
    }
    Err(X509Error::InvalidPrivateKey)
}

/// Converts a PKCS#1 `RSAPrivateKey` to PKCS#8.
fn pkcs1_to_pkcs8(der: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, X509Error> {
    let kp = RsaKeyPair::from_der(der).map_err(|_| X509Error::InvalidPrivateKey)?;
    let doc: Pkcs8V1Der<'static> = kp.as_der().map_err(|_| X509Error::InvalidPrivateKey)?;
    Ok(PrivatePkcs8KeyDer::from(doc.as_ref().to_vec()))
}

/// `EncryptedPrivateKeyInfo` is `SEQUENCE { AlgorithmIdentifier (SEQUENCE), OCTET STRING }`
/// while `PrivateKeyInfo` starts with an INTEGER version: look at the first inner tag.
fn looks_like_encrypted_pkcs8(der: &[u8]) -> bool {
    if der.first() != Some(&0x30) {
        return false;
    }
    let inner = match der.get(1) {
        Some(&len) if len < 0x80 => 2,
        Some(&len) => 2 + usize::from(len & 0x7f),
        None => return false,
    };
    der.get(inner) == Some(&0x30)
}

/// The X.509 `SubjectPublicKeyInfo` (DER) of a PKCS#8 private key.
fn pkcs8_public_key(pkcs8: &[u8]) -> Result<PublicKeyX509Der<'static>, X509Error> {
    let invalid = |_| X509Error::InvalidPrivateKey;
    for alg in EC_ALGS {
        if let Ok(kp) = EcdsaKeyPair::from_pkcs8(alg, pkcs8) {
            return kp.public_key().as_der().map_err(invalid);
        }
    }
    if let Ok(kp) = RsaKeyPair::from_pkcs8(pkcs8) {
        return kp.public_key().as_der().map_err(invalid);
    }
    if let Ok(kp) = Ed25519KeyPair::from_pkcs8(pkcs8) {
        return kp.public_key().as_der().map_err(invalid);
    }
    Err(X509Error::InvalidPrivateKey)
}

/// Checks that the PKCS#8 key's public key is the leaf's (algorithm OID and key bits of
/// the SubjectPublicKeyInfo; parameters are not compared, as RSA's NULL may or may not be
/// encoded, and an EC point's encoding already fixes its curve size).
fn check_key_matches_leaf(leaf_der: &[u8], pkcs8: &[u8]) -> Result<(), X509Error> {
    if pkcs8.is_empty() {
        return Err(X509Error::MissingPrivateKey);
    }
    let leaf = parse_cert(leaf_der, LEAF)?;
    let key_spki_der = pkcs8_public_key(pkcs8)?;
    let (_, key_spki) = SubjectPublicKeyInfo::from_der(key_spki_der.as_ref())
        .map_err(|_| X509Error::InvalidPrivateKey)?;
    let leaf_spki = leaf.public_key();
    if leaf_spki.algorithm.algorithm != key_spki.algorithm.algorithm
        || leaf_spki.subject_public_key.data != key_spki.subject_public_key.data
    {
        return Err(X509Error::KeyMismatch);
    }
    Ok(())
}

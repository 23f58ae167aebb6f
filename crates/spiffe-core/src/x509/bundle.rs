//! X.509 bundles: the CA certificates a trust domain uses to sign X.509-SVIDs
//! (X509-SVID §5.1, §6; Trust_Domain_and_Bundle §3).

use std::collections::{BTreeMap, HashMap};

use rustls_pki_types::CertificateDer;

use super::{X509Error, certs_to_der, certs_to_pem, parse_cert, split_der_certs, split_pem_certs};
use crate::TrustDomain;

/// The X.509 authorities (CA certificates) of one trust domain.
///
/// A bundle is always stored with its trust domain name (TD-02). Authorities are kept in
/// insertion order without duplicates. An empty bundle is valid to hold, but validates
/// nothing: every SVID of its trust domain is untrusted (BUN-11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509Bundle {
    trust_domain: TrustDomain,
    authorities: Vec<CertificateDer<'static>>,
}

impl X509Bundle {
    /// An empty bundle for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        X509Bundle {
            trust_domain,
            authorities: Vec::new(),
        }
    }

    /// A bundle holding `authorities`, each of which must parse as an X.509 certificate.
    /// Duplicates are dropped.
    pub fn from_authorities(
        trust_domain: TrustDomain,
        authorities: Vec<CertificateDer<'static>>,
    ) -> Result<Self, X509Error> {
        let mut bundle = X509Bundle::new(trust_domain);
        for (index, cert) in authorities.into_iter().enumerate() {
            parse_cert(cert.as_ref(), index)?;
            bundle.push_unique(cert);
        }
        Ok(bundle)
    }

    /// Parses PEM `CERTIFICATE` blocks. Empty (or whitespace-only) input gives an empty
    /// bundle; non-empty input without any certificate, or with a block of another type,
    /// is an error.
    pub fn parse_pem(trust_domain: TrustDomain, pem: &[u8]) -> Result<Self, X509Error> {
        if pem.iter().all(u8::is_ascii_whitespace) {
            return Ok(X509Bundle::new(trust_domain));
        }
        let certs = split_pem_certs(pem)?;
        if certs.is_empty() {
            return Err(X509Error::NoCertificates);
        }
        Ok(X509Bundle::from_validated(trust_domain, certs))
    }

    /// Parses concatenated DER certificates, as in the Workload API `bundle` and
    /// `federated_bundles` fields. Empty input gives an empty bundle.
    pub fn parse_der(trust_domain: TrustDomain, der: &[u8]) -> Result<Self, X509Error> {
        let certs = split_der_certs(der)?;
        Ok(X509Bundle::from_validated(trust_domain, certs))
    }

    fn from_validated(trust_domain: TrustDomain, certs: Vec<CertificateDer<'static>>) -> Self {
        let mut bundle = X509Bundle::new(trust_domain);
        for cert in certs {
            bundle.push_unique(cert);
        }
        bundle
    }

    fn push_unique(&mut self, cert: CertificateDer<'static>) -> bool {
        if self.has_authority(cert.as_ref()) {
            false
        } else {
            self.authorities.push(cert);
            true
        }
    }

    /// Adds an authority, which must parse as an X.509 certificate. Adding a certificate
    /// that is already present (same DER bytes) leaves the bundle unchanged.
    pub fn add_authority(&mut self, cert: CertificateDer<'static>) -> Result<(), X509Error> {
        parse_cert(cert.as_ref(), self.authorities.len())?;
        self.push_unique(cert);
        Ok(())
    }

    /// Removes the authority with these DER bytes; returns whether it was present.
    pub fn remove_authority(&mut self, der: &[u8]) -> bool {
        let before = self.authorities.len();
        self.authorities.retain(|c| c.as_ref() != der);
        self.authorities.len() != before
    }

    /// Whether an authority with these DER bytes is in the bundle.
    pub fn has_authority(&self, der: &[u8]) -> bool {
        self.authorities.iter().any(|c| c.as_ref() == der)
    }

    /// The authorities, in insertion order.
    pub fn authorities(&self) -> &[CertificateDer<'static>] {
        &self.authorities
    }

    /// The trust domain the bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Whether the bundle holds no authority.
    pub fn is_empty(&self) -> bool {
        self.authorities.is_empty()
    }

    /// The authorities as concatenated DER (the Workload API encoding).
    pub fn to_der(&self) -> Vec<u8> {
        certs_to_der(&self.authorities)
    }

    /// The authorities as PEM `CERTIFICATE` blocks (`\n` line endings).
    pub fn to_pem(&self) -> String {
        certs_to_pem(&self.authorities)
    }
}

/// Something that can hand out the X.509 bundle of a trust domain.
///
/// Verification asks only for the bundle of the SVID's own trust domain (TD-02, X5-30).
pub trait X509BundleSource {
    /// The X.509 bundle for `td`, if known.
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle>;
}

impl X509BundleSource for X509Bundle {
    /// The bundle itself if `td` is its trust domain, otherwise `None`.
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        (self.trust_domain == *td).then_some(self)
    }
}

impl X509BundleSource for [X509Bundle] {
    /// The first bundle of trust domain `td`.
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.iter().find(|b| b.trust_domain == *td)
    }
}

impl<S: std::hash::BuildHasher> X509BundleSource for HashMap<TrustDomain, X509Bundle, S> {
    /// The bundle stored under `td`, if its own trust domain is `td` (a bundle filed
    /// under the wrong key is never used).
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.get(td).filter(|b| b.trust_domain == *td)
    }
}

impl X509BundleSource for BTreeMap<TrustDomain, X509Bundle> {
    /// The bundle stored under `td`, if its own trust domain is `td`.
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.get(td).filter(|b| b.trust_domain == *td)
    }
}

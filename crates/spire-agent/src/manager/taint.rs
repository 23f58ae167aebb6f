//! Tainted authorities (agent.md §5.11; SPIRE's `processTaintedAuthorities`).
//!
//! After a forced CA rotation (`spire-server localauthority x509|jwt taint`) the server
//! marks the old authority `tainted` in the trust domain's bundle. The agent reads those
//! markers at every sync; every cached X.509-SVID whose chain leads to a tainted root is
//! re-signed at once, the agent's own SVID is rotated, and cached JWT-SVIDs signed by a
//! tainted JWT key are dropped.

use std::collections::BTreeSet;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use spiffe_core::{TrustDomain, X509Bundle, verify_chain};
use spire_proto::spire::api::types::Bundle;

/// The authorities of the own trust domain's bundle that the server marked tainted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaintedAuthorities {
    /// Tainted X.509 roots (DER).
    pub x509: Vec<CertificateDer<'static>>,
    /// Key IDs of tainted JWT keys.
    pub jwt_key_ids: BTreeSet<String>,
}

impl TaintedAuthorities {
    /// The tainted markers of a bundle as the server's API returns it.
    pub fn from_proto(bundle: &Bundle) -> Self {
        TaintedAuthorities {
            x509: bundle
                .x509_authorities
                .iter()
                .filter(|a| a.tainted)
                .map(|a| CertificateDer::from(a.asn1.clone()))
                .collect(),
            jwt_key_ids: bundle
                .jwt_authorities
                .iter()
                .filter(|k| k.tainted)
                .map(|k| k.key_id.clone())
                .collect(),
        }
    }

    /// Whether nothing is tainted.
    pub fn is_empty(&self) -> bool {
        self.x509.is_empty() && self.jwt_key_ids.is_empty()
    }

    /// The authorities tainted here but not in `seen` (what a sync has to act on).
    pub fn newly_tainted_since(&self, seen: &TaintedAuthorities) -> TaintedAuthorities {
        TaintedAuthorities {
            x509: self
                .x509
                .iter()
                .filter(|c| !seen.x509.contains(c))
                .cloned()
                .collect(),
            jwt_key_ids: self
                .jwt_key_ids
                .difference(&seen.jwt_key_ids)
                .cloned()
                .collect(),
        }
    }

    /// Whether `chain` (leaf first) of an SVID of `trust_domain` verifies, at `now`,
    /// up to one of the tainted X.509 roots.
    pub fn signed_chain(
        &self,
        trust_domain: &TrustDomain,
        chain: &[CertificateDer<'static>],
        now: SystemTime,
    ) -> bool {
        if self.x509.is_empty() || chain.is_empty() {
            return false;
        }
        // Roots webpki cannot use are left out; an empty set signs nothing.
        let mut roots = X509Bundle::new(trust_domain.clone());
        for root in &self.x509 {
            if let Err(e) = roots.add_authority(root.clone()) {
                tracing::debug!(error = %e, "Ignoring an unusable tainted root");
            }
        }
        !roots.is_empty() && verify_chain(chain, &roots, now).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, SanType};
    use spire_proto::spire::api::types::{JwtKey, X509Certificate};

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(
            "spiffe://example.org".try_into().expect("uri"),
        )];
        let cert = params.self_signed(&key).expect("self-signed");
        Ca { cert, key }
    }

    fn leaf(ca: &Ca) -> Vec<CertificateDer<'static>> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![SanType::URI(
            "spiffe://example.org/w".try_into().expect("uri"),
        )];
        let issuer = rcgen::Issuer::from_ca_cert_der(ca.cert.der(), &ca.key).expect("issuer");
        let cert = params.signed_by(&key, &issuer).expect("signed");
        vec![cert.der().clone()]
    }

    fn td() -> TrustDomain {
        TrustDomain::new("example.org").expect("td")
    }

    #[test]
    fn reads_markers_and_finds_what_the_tainted_ca_signed() {
        let (old, new) = (ca(), ca());
        let bundle = Bundle {
            trust_domain: "example.org".into(),
            x509_authorities: vec![
                X509Certificate {
                    asn1: old.cert.der().to_vec(),
                    tainted: true,
                },
                X509Certificate {
                    asn1: new.cert.der().to_vec(),
                    tainted: false,
                },
            ],
            jwt_authorities: vec![
                JwtKey {
                    key_id: "k-old".into(),
                    tainted: true,
                    ..Default::default()
                },
                JwtKey {
                    key_id: "k-new".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let tainted = TaintedAuthorities::from_proto(&bundle);
        assert_eq!(tainted.x509, vec![old.cert.der().clone()]);
        assert_eq!(tainted.jwt_key_ids, ["k-old".to_owned()].into());

        let now = SystemTime::now();
        assert!(tainted.signed_chain(&td(), &leaf(&old), now));
        assert!(!tainted.signed_chain(&td(), &leaf(&new), now));
        assert!(!TaintedAuthorities::default().signed_chain(&td(), &leaf(&old), now));

        // Only what was not seen before is new.
        let newly = tainted.newly_tainted_since(&TaintedAuthorities::default());
        assert_eq!(newly, tainted);
        assert!(tainted.newly_tainted_since(&tainted).is_empty());
    }
}

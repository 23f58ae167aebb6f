//! Conversions between the SPIRE API wire types (`spire.api.types`) and the SPIFFE
//! types of spiffe-core, shared by the server (which answers with them) and the agent
//! (which reads them).

use std::time::Duration;

use rustls_pki_types::CertificateDer;
use spiffe_core::{IdError, PublicKey, SpiffeBundle, SpiffeId, TrustDomain, X509Bundle};
use spire_proto::spire::api::types::{Bundle, JwtKey, Spiffeid, X509Certificate};

/// A SPIFFE ID as the API carries it: trust domain name and path.
pub fn id_to_proto(id: &SpiffeId) -> Spiffeid {
    Spiffeid {
        trust_domain: id.trust_domain_name().to_owned(),
        path: id.path().to_owned(),
    }
}

/// A SPIFFE ID from its API form, validated.
pub fn id_from_proto(id: &Spiffeid) -> Result<SpiffeId, IdError> {
    let td = TrustDomain::new(&id.trust_domain)?;
    SpiffeId::new(&td, &id.path)
}

/// Why an API bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleConversionError {
    /// The trust domain name is invalid.
    #[error("invalid bundle trust domain {name:?}: {source}")]
    TrustDomain {
        /// The name received.
        name: String,
        /// Why it is invalid.
        source: IdError,
    },
    /// An X.509 authority does not parse.
    #[error("invalid X.509 authority: {0}")]
    X509(spiffe_core::X509Error),
    /// A JWT authority's key does not parse.
    #[error("invalid JWT authority {kid:?}: {reason}")]
    Jwt {
        /// Its key ID.
        kid: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// The SPIFFE bundle carried by an API `Bundle` (taint markers and JWT key expiry are
/// not part of a SPIFFE bundle and are dropped).
pub fn bundle_from_proto(bundle: &Bundle) -> Result<SpiffeBundle, BundleConversionError> {
    let td = TrustDomain::parse(&bundle.trust_domain).map_err(|source| {
        BundleConversionError::TrustDomain {
            name: bundle.trust_domain.clone(),
            source,
        }
    })?;
    let roots = bundle
        .x509_authorities
        .iter()
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    let x509 =
        X509Bundle::from_authorities(td.clone(), roots).map_err(BundleConversionError::X509)?;
    let mut out = SpiffeBundle::new(td);
    *out.x509_bundle_mut() = x509;
    for key in &bundle.jwt_authorities {
        let jwt_error = |reason: String| BundleConversionError::Jwt {
            kid: key.key_id.clone(),
            reason,
        };
        let public_key =
            PublicKey::from_spki_der(&key.public_key).map_err(|e| jwt_error(e.to_string()))?;
        out.jwt_bundle_mut()
            .add_authority(key.key_id.clone(), public_key)
            .map_err(|e| jwt_error(e.to_string()))?;
    }
    if bundle.refresh_hint > 0 {
        out.set_refresh_hint(Some(Duration::from_secs(bundle.refresh_hint as u64)));
    }
    if bundle.sequence_number > 0 {
        out.set_sequence_number(Some(bundle.sequence_number));
    }
    Ok(out)
}

/// The API form of a SPIFFE bundle (no taint markers, no JWT key expiry).
pub fn bundle_to_proto(bundle: &SpiffeBundle) -> Bundle {
    Bundle {
        trust_domain: bundle.trust_domain().name().to_owned(),
        x509_authorities: bundle
            .x509_bundle()
            .authorities()
            .iter()
            .map(|cert| X509Certificate {
                asn1: cert.as_ref().to_vec(),
                tainted: false,
            })
            .collect(),
        jwt_authorities: bundle
            .jwt_bundle()
            .authorities()
            .map(|(kid, key)| JwtKey {
                public_key: key.to_spki_der(),
                key_id: kid.to_owned(),
                expires_at: 0,
                tainted: false,
            })
            .collect(),
        refresh_hint: bundle
            .refresh_hint()
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        sequence_number: bundle.sequence_number().unwrap_or(0),
        ..Default::default()
    }
}

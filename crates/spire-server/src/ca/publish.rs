//! The CA's authorities as the trust domain's bundle in the datastore (spec server.md
//! §4.3): prepared, active and old authorities are appended; what is already stored
//! (including its `tainted` flag) is left as it is.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use spiffe_core::{X509Bundle, X509Svid};

use super::ServerCa;
use crate::datastore::{self, DataStoreError, SqlStore};

/// The CA's current authorities as a datastore bundle (none tainted: taint is recorded
/// in the stored bundle only, and appending never clears it).
pub fn datastore_bundle(ca: &ServerCa) -> datastore::Bundle {
    datastore::Bundle {
        trust_domain: ca.trust_domain().name().to_owned(),
        x509_authorities: ca
            .x509_authorities()
            .into_iter()
            .map(|cert| datastore::X509Authority {
                asn1: cert.as_ref().to_vec(),
                tainted: false,
            })
            .collect(),
        jwt_authorities: ca
            .jwt_authorities()
            .into_iter()
            .map(|key| datastore::JwtKey {
                public_key: key.public_key_der,
                key_id: key.kid,
                expires_at: key
                    .expires_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                tainted: false,
            })
            .collect(),
        ..Default::default()
    }
}

/// Appends the CA's authorities to the stored bundle; returns the stored result.
pub async fn append(store: &SqlStore, ca: &ServerCa) -> Result<datastore::Bundle, DataStoreError> {
    store.append_bundle(&datastore_bundle(ca)).await
}

/// The X.509 roots a stored bundle marks tainted.
pub fn tainted_x509_roots(bundle: &datastore::Bundle) -> Vec<CertificateDer<'static>> {
    bundle
        .x509_authorities
        .iter()
        .filter(|a| a.tainted)
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect()
}

/// Whether `svid`'s chain verifies at `now` up to one of the `roots` (e.g. the tainted
/// ones, after which the server renews its own SVID at once; server.md §4.7).
pub fn signed_by_any(roots: &[CertificateDer<'static>], svid: &X509Svid, now: SystemTime) -> bool {
    let mut bundle = X509Bundle::new(svid.spiffe_id().trust_domain());
    for root in roots {
        if let Err(e) = bundle.add_authority(root.clone()) {
            tracing::debug!(error = %e, "Ignoring an unusable root");
        }
    }
    !bundle.is_empty() && svid.verify(&bundle, now).is_ok()
}

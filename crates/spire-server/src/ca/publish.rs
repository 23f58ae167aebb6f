//! The CA's authorities as the trust domain's bundle in the datastore (spec server.md
//! §4.3): prepared, active and old authorities are appended; what is already stored
//! (including its `tainted` flag) is left as it is. Expired authorities leave the
//! stored bundle only when pruned, [`BUNDLE_SAFETY_THRESHOLD`] after their expiry
//! (SPIRE's `PruneBundle`, run every [`PRUNE_BUNDLE_INTERVAL`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// How often the server prunes expired authorities from its bundle (SPIRE's
/// `pruneBundleInterval`).
pub const PRUNE_BUNDLE_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// How long an expired authority stays in the bundle before a prune drops it (SPIRE's
/// `safetyThresholdBundle`), so that peers with skewed clocks keep validating.
pub const BUNDLE_SAFETY_THRESHOLD: Duration = Duration::from_secs(24 * 3600);

/// Drops from the stored bundle of `trust_domain` the X.509 roots and JWT keys that
/// expired more than [`BUNDLE_SAFETY_THRESHOLD`] before `now` (never every root or
/// every JWT key: that fails with `FailedPrecondition`). Returns whether the bundle
/// changed; a change reaches agents through the datastore's change feed.
pub async fn prune(
    store: &SqlStore,
    trust_domain: &str,
    now: SystemTime,
) -> Result<bool, DataStoreError> {
    let expires_before = now
        .checked_sub(BUNDLE_SAFETY_THRESHOLD)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let changed = store.prune_bundle(trust_domain, expires_before).await?;
    if changed {
        tracing::info!(trust_domain, "Pruned expired authorities from the bundle");
    }
    Ok(changed)
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

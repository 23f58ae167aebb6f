//! Which TCP peers may complete the TLS handshake (server.md §3.1): SVIDs of the server's
//! trust domain, and the `admin_ids` of other trust domains, verified against those
//! domains' federated bundles. The trust store follows those bundles as they change.

use std::collections::BTreeSet;
use std::sync::Arc;

use spiffe_core::{SpiffeId, TrustDomain};
use spire_common::tls::{PeerFilter, TrustStore};

use crate::datastore::{DataStoreChange, SqlStore};

/// Accepts peers of `own` and the listed `admin_ids`, as SPIRE's TLS authorizer does.
pub fn peer_filter(own: TrustDomain, admin_ids: Vec<SpiffeId>) -> PeerFilter {
    Arc::new(move |id: &SpiffeId| id.is_member_of(&own) || admin_ids.contains(id))
}

/// The trust domains other than `own` that have admins.
pub fn foreign_admin_domains(own: &TrustDomain, admin_ids: &[SpiffeId]) -> Vec<TrustDomain> {
    let names: BTreeSet<&str> = admin_ids
        .iter()
        .map(SpiffeId::trust_domain_name)
        .filter(|name| *name != own.name())
        .collect();
    names
        .into_iter()
        .filter_map(|name| TrustDomain::new(name).ok())
        .collect()
}

/// Puts the current federated bundle of each of `domains` into `trust` (or takes it out
/// when there is none or it is unusable).
pub async fn load_bundles(store: &SqlStore, trust: &TrustStore, domains: &[TrustDomain]) {
    for td in domains {
        let bundle = match store.fetch_bundle(td.name()).await {
            Ok(bundle) => bundle,
            Err(e) => {
                tracing::error!(trust_domain = %td, error = %e, "Unable to load the bundle of a federated admin trust domain");
                continue;
            }
        };
        let usable = bundle.and_then(|b| {
            let api = super::bundle::bundle_to_proto(&b);
            spire_common::convert::bundle_from_proto(&api)
                .map_err(|e| tracing::error!(trust_domain = %td, error = %e, "Federated bundle is not usable for TLS"))
                .ok()
        });
        match usable {
            Some(bundle) => trust.set_bundle(bundle),
            None => trust.remove_bundle(td),
        }
    }
}

/// Keeps the bundles of `domains` in `trust` current: loads them now, then again after
/// every bundle change committed to `store`, until `stop`.
pub async fn follow_bundles(
    store: Arc<SqlStore>,
    trust: Arc<TrustStore>,
    domains: Vec<TrustDomain>,
    stop: tokio_util::sync::CancellationToken,
) {
    if domains.is_empty() {
        return;
    }
    let mut changes = store.subscribe();
    load_bundles(&store, &trust, &domains).await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            change = changes.recv() => match change {
                Ok(DataStoreChange::BundleChanged { .. })
                | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    load_bundles(&store, &trust, &domains).await;
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

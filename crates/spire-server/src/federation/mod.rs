//! SPIFFE federation (server.md §7): the bundle endpoint this server serves
//! ([`endpoint`]) and the refresher that keeps the bundles of federated trust domains
//! current by polling their bundle endpoints ([`client`], [`BundleRefresher`]).

pub mod client;
pub mod endpoint;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{FederatesWithConfig, FederatesWithProfile};
use crate::datastore::{self, Bundle, SqlStore};
use client::{EndpointAuth, fetch_bundle};

/// How often the relationships are re-read from the datastore.
pub const RELATIONSHIPS_RELOAD: Duration = Duration::from_secs(10);
/// The floor of a bundle's refresh hint.
pub const MIN_REFRESH_HINT: Duration = Duration::from_secs(60);
/// The poll interval when the bundle has no refresh hint.
pub const DEFAULT_POLL: Duration = Duration::from_secs(300);
/// The poll interval when no bundle of the trust domain is known yet.
pub const NO_BUNDLE_POLL: Duration = Duration::from_secs(60);

/// How a relationship's bundle endpoint authenticates itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointProfile {
    /// `https_web`.
    HttpsWeb,
    /// `https_spiffe` with the endpoint's SPIFFE ID.
    HttpsSpiffe(SpiffeId),
}

/// A federation relationship as the refresher uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    /// The federated trust domain.
    pub trust_domain: TrustDomain,
    /// Its bundle endpoint URL.
    pub url: String,
    /// How the endpoint is authenticated.
    pub profile: EndpointProfile,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// No relationship exists with the trust domain.
    #[error("no relationship with trust domain \"{0}\"")]
    NotFound(String),
    /// The bundle could not be fetched, authenticated or parsed.
    #[error("{0}")]
    Fetch(String),
    /// The datastore failed.
    #[error(transparent)]
    Store(#[from] datastore::DataStoreError),
}

/// Keeps the bundles of federated trust domains current.
pub struct BundleRefresher {
    store: Arc<SqlStore>,
    own: TrustDomain,
    configured: Vec<FederatesWithConfig>,
    web_roots: Arc<RootCertStore>,
}

impl BundleRefresher {
    /// A refresher over the datastore's relationships and those of `federates_with`,
    /// using `web_roots` for `https_web` endpoints.
    pub fn new(
        store: Arc<SqlStore>,
        own: TrustDomain,
        configured: Vec<FederatesWithConfig>,
        web_roots: RootCertStore,
    ) -> Self {
        BundleRefresher {
            store,
            own,
            configured,
            web_roots: Arc::new(web_roots),
        }
    }

    /// All relationships: the configured ones merged over the datastore's.
    pub async fn relationships(&self) -> Result<BTreeMap<String, Relationship>, RefreshError> {
        let mut out = BTreeMap::new();
        let listed = self.store.list_federation_relationships(None).await?;
        for fr in listed.relationships {
            let Ok(trust_domain) = TrustDomain::parse(&fr.trust_domain) else {
                continue;
            };
            let profile = match fr.bundle_endpoint_profile {
                datastore::BundleEndpointProfile::HttpsWeb => EndpointProfile::HttpsWeb,
                datastore::BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } => {
                    match SpiffeId::parse(&endpoint_spiffe_id) {
                        Ok(id) => EndpointProfile::HttpsSpiffe(id),
                        Err(_) => continue,
                    }
                }
            };
            out.insert(
                trust_domain.name().to_owned(),
                Relationship {
                    trust_domain,
                    url: fr.bundle_endpoint_url,
                    profile,
                },
            );
        }
        for fw in &self.configured {
            out.insert(
                fw.trust_domain.name().to_owned(),
                Relationship {
                    trust_domain: fw.trust_domain.clone(),
                    url: fw.bundle_endpoint_url.clone(),
                    profile: match &fw.profile {
                        FederatesWithProfile::HttpsWeb => EndpointProfile::HttpsWeb,
                        FederatesWithProfile::HttpsSpiffe { endpoint_spiffe_id } => {
                            EndpointProfile::HttpsSpiffe(endpoint_spiffe_id.clone())
                        }
                    },
                },
            );
        }
        out.remove(self.own.name());
        Ok(out)
    }

    /// Fetches the bundle of `trust_domain` now and stores it if it changed. Returns the
    /// bundle now known.
    pub async fn refresh(&self, trust_domain: &TrustDomain) -> Result<SpiffeBundle, RefreshError> {
        let relationships = self.relationships().await?;
        let rel = relationships
            .get(trust_domain.name())
            .ok_or_else(|| RefreshError::NotFound(trust_domain.name().to_owned()))?;
        self.refresh_relationship(rel).await
    }

    async fn refresh_relationship(&self, rel: &Relationship) -> Result<SpiffeBundle, RefreshError> {
        let auth = match &rel.profile {
            EndpointProfile::HttpsWeb => EndpointAuth::Web(self.web_roots.clone()),
            EndpointProfile::HttpsSpiffe(id) => {
                let td = id.trust_domain();
                let bundle = self.stored(&td).await?.ok_or_else(|| {
                    RefreshError::Fetch(format!(
                        "no bundle of trust domain \"{}\" is known to authenticate the bundle endpoint {id}",
                        td.name()
                    ))
                })?;
                EndpointAuth::Spiffe {
                    id: id.clone(),
                    bundle: bundle.1,
                }
            }
        };
        let fetched = match fetch_bundle(&rel.url, &rel.trust_domain, &auth).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(trust_domain = %rel.trust_domain.name(), error = %e, "Error updating bundle");
                return Err(RefreshError::Fetch(e.to_string()));
            }
        };
        let new = crate::api::bundle::bundle_from_proto(&spire_common::convert::bundle_to_proto(
            &fetched,
        ))
        .map_err(RefreshError::Fetch)?;
        let current = self.stored(&rel.trust_domain).await?;
        let changed = current
            .as_ref()
            .is_none_or(|(old, _)| !same_bundle(old, &new));
        if changed {
            self.store.set_bundle(&new).await?;
            tracing::info!(trust_domain = %rel.trust_domain.name(), "Bundle refreshed");
        } else {
            tracing::debug!(trust_domain = %rel.trust_domain.name(), "Bundle unchanged");
        }
        Ok(fetched)
    }

    async fn stored(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<(Bundle, SpiffeBundle)>, RefreshError> {
        let Some(stored) = self.store.fetch_bundle(&td.id_string()).await? else {
            return Ok(None);
        };
        let api = crate::api::bundle::bundle_to_proto(&stored);
        Ok(spire_common::convert::bundle_from_proto(&api)
            .ok()
            .map(|b| (stored, b)))
    }

    /// The delay before the next poll of a trust domain whose bundle is `bundle`.
    fn next_poll(bundle: Option<&SpiffeBundle>) -> Duration {
        match bundle {
            None => NO_BUNDLE_POLL,
            Some(b) => match b.refresh_hint() {
                None => DEFAULT_POLL,
                Some(hint) => hint.max(MIN_REFRESH_HINT) / 4,
            },
        }
    }

    /// Polls every relationship's endpoint after its bundle's refresh hint until `stop`
    /// is cancelled; a failed fetch is retried at the next interval.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut due: HashMap<String, Instant> = HashMap::new();
        let mut relationships = BTreeMap::new();
        let mut reload_at = Instant::now();
        loop {
            let now = Instant::now();
            if now >= reload_at {
                match self.relationships().await {
                    Ok(r) => {
                        due.retain(|k, _| r.contains_key(k));
                        relationships = r;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Failed to list federation relationships")
                    }
                }
                reload_at = now + RELATIONSHIPS_RELOAD;
            }
            for (name, rel) in &relationships {
                if due.get(name).is_some_and(|at| *at > now) {
                    continue;
                }
                let known = match self.refresh_relationship(rel).await {
                    Ok(b) => Some(b),
                    Err(_) => self
                        .stored(&rel.trust_domain)
                        .await
                        .ok()
                        .flatten()
                        .map(|s| s.1),
                };
                due.insert(
                    name.clone(),
                    Instant::now() + Self::next_poll(known.as_ref()),
                );
            }
            let mut wake = reload_at;
            for at in due.values() {
                wake = wake.min(*at);
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// Whether two stored bundles carry the same content.
fn same_bundle(a: &Bundle, b: &Bundle) -> bool {
    let x509 = |b: &Bundle| {
        b.x509_authorities
            .iter()
            .map(|a| a.asn1.clone())
            .collect::<Vec<_>>()
    };
    let jwt = |b: &Bundle| {
        b.jwt_authorities
            .iter()
            .map(|k| (k.key_id.clone(), k.public_key.clone()))
            .collect::<Vec<_>>()
    };
    x509(a) == x509(b)
        && jwt(a) == jwt(b)
        && a.refresh_hint == b.refresh_hint
        && a.sequence_number == b.sequence_number
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_follows_the_refresh_hint() {
        let td = TrustDomain::parse("example.org").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(BundleRefresher::next_poll(None), NO_BUNDLE_POLL);
        let mut bundle = SpiffeBundle::new(td);
        assert_eq!(BundleRefresher::next_poll(Some(&bundle)), DEFAULT_POLL);
        bundle.set_refresh_hint(Some(Duration::from_secs(400)));
        assert_eq!(
            BundleRefresher::next_poll(Some(&bundle)),
            Duration::from_secs(100)
        );
        bundle.set_refresh_hint(Some(Duration::from_secs(5)));
        assert_eq!(
            BundleRefresher::next_poll(Some(&bundle)),
            Duration::from_secs(15)
        );
    }
}

//! A set of bundles keyed by trust domain: what a workload or agent trusts.

use std::collections::BTreeMap;

use crate::jwt::{JwtBundle, JwtBundleSource};
use crate::spiffe_bundle::SpiffeBundle;
use crate::trust_domain::TrustDomain;
use crate::x509::{X509Bundle, X509BundleSource};

/// Bundles keyed by their trust domain; at most one bundle per trust domain, and bundles
/// of different trust domains are never merged (TD-02, FED-09). Validation looks up only
/// the bundle of the SVID's own trust domain (X5-30, JWT-23).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleSet {
    bundles: BTreeMap<TrustDomain, SpiffeBundle>,
}

impl BundleSet {
    /// An empty set.
    pub fn new() -> Self {
        BundleSet::default()
    }

    /// Adds or replaces the bundle of its trust domain, returning the one it replaced.
    pub fn insert(&mut self, bundle: SpiffeBundle) -> Option<SpiffeBundle> {
        self.bundles.insert(bundle.trust_domain().clone(), bundle)
    }

    /// The bundle of a trust domain.
    pub fn get(&self, td: &TrustDomain) -> Option<&SpiffeBundle> {
        self.bundles.get(td)
    }

    /// Removes and returns the bundle of a trust domain.
    pub fn remove(&mut self, td: &TrustDomain) -> Option<SpiffeBundle> {
        self.bundles.remove(td)
    }

    /// The bundles, in trust domain order.
    pub fn iter(&self) -> impl Iterator<Item = &SpiffeBundle> {
        self.bundles.values()
    }

    /// How many trust domains the set holds.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// Whether the set holds no bundle.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }
}

impl FromIterator<SpiffeBundle> for BundleSet {
    fn from_iter<I: IntoIterator<Item = SpiffeBundle>>(iter: I) -> Self {
        let mut set = BundleSet::new();
        for bundle in iter {
            set.insert(bundle);
        }
        set
    }
}

impl X509BundleSource for BundleSet {
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.bundles.get(td).map(SpiffeBundle::x509_bundle)
    }
}

impl JwtBundleSource for BundleSet {
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        self.bundles.get(td).map(SpiffeBundle::jwt_bundle)
    }
}

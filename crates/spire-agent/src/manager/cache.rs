//! The agent's identity cache: registration entries, their X.509-SVIDs, the own trust
//! domain bundle and the federated bundles (SPIRE's `pkg/agent/manager/cache`).
//!
//! One writer (the sync loop) and many readers (Workload API streams) share a [`Cache`]
//! through an `Arc`. Every write that changes something bumps a version published on a
//! [`tokio::sync::watch`] channel, so streams wake at once and rebuild their response
//! (they compare it with what they last sent and only send differences).
//!
//! What a workload gets follows SPIRE (`lru_cache.go`, `hintsfilter.go`):
//!
//! - an entry matches when its selector set is a non-empty subset of the workload's
//!   selectors (entries with no selectors never match);
//! - identities are the matching entries that have an SVID, in ascending entry ID order;
//! - among identities sharing a non-empty `hint`, the entry with the older `created_at`
//!   is kept (smaller entry ID on a tie), the others are dropped;
//! - bundles are the own trust domain bundle plus the federated bundles named in the
//!   identities' `federates_with` (missing ones are logged and skipped).
//!
//! X.509-SVIDs are kept as SPIRE's LRU cache keeps them (`lru_cache.go`, agent.md §5.7):
//! `x509_svid_cache_max_size` is a soft limit. Entries matching an active subscriber
//! (an open stream, see [`Cache::subscribe_workload`]) always get an SVID and are never
//! evicted; spare room is filled by prefetching SVIDs for the other entries; when over
//! the limit, SVIDs of entries without a subscriber are evicted, least recently accessed
//! first (a subscriber attaching and a new SVID count as access).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain, X509Svid};
use thiserror::Error;
use tokio::sync::{Notify, watch};

use super::rotation;
use crate::workload::Selector;

/// SPIRE rotates an X.509-SVID once half of its lifetime has passed.
pub const DEFAULT_ROTATION_FRACTION: f64 = 0.5;

/// SPIRE's default `x509_svid_cache_max_size`.
pub const DEFAULT_X509_SVID_CACHE_MAX_SIZE: usize = 1000;

/// A registration entry authorized for this agent, with its current SVID if any.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEntry {
    /// The registration entry ID (sort key of a workload's identities).
    pub entry_id: String,
    /// The SPIFFE ID the entry issues.
    pub spiffe_id: SpiffeId,
    /// The entry's parent (the agent, a node alias or another entry).
    pub parent_id: SpiffeId,
    /// Selectors a workload must all have to get this identity.
    pub selectors: Vec<Selector>,
    /// Trust domains whose bundles are handed out with this identity.
    pub federates_with: Vec<TrustDomain>,
    /// Optional hint passed to the workload; unique per response.
    pub hint: String,
    /// The entry's revision; a change means the SVID must be re-signed.
    pub revision_number: i64,
    /// Creation time (Unix seconds); the older entry wins a duplicate hint.
    pub created_at: i64,
    /// The entry's current X.509-SVID.
    pub svid: Option<Arc<X509Svid>>,
}

/// One identity served to a workload: a matching entry that has an SVID.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The registration entry (its `svid` is the same as [`Identity::svid`]).
    pub entry: Arc<CachedEntry>,
    /// The X.509-SVID.
    pub svid: Arc<X509Svid>,
    /// When the SVID's leaf expires, if it could be read.
    pub expires_at: Option<SystemTime>,
}

/// The bundles a workload may use: the own trust domain bundle and the federated bundles
/// its identities federate with.
#[derive(Debug, Clone, Default)]
pub struct WorkloadBundles {
    /// The agent's own trust domain bundle (`None` until the sync loop sets it).
    pub own: Option<Arc<SpiffeBundle>>,
    /// Federated bundles by trust domain.
    pub federated: BTreeMap<TrustDomain, Arc<SpiffeBundle>>,
}

/// A consistent snapshot of everything a workload's stream needs.
#[derive(Debug, Clone, Default)]
pub struct WorkloadUpdate {
    /// The workload's identities, in the order they are served.
    pub identities: Vec<Identity>,
    /// How many matching entries have no SVID yet.
    pub pending: usize,
    /// The workload's bundles.
    pub bundles: WorkloadBundles,
    /// DER CRLs of the own trust domain's X.509 CAs (spire-rs per-SVID revocation),
    /// for the Workload API's `crl` fields.
    pub crls: Arc<Vec<Vec<u8>>>,
}

/// Errors of the cache's writer API.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CacheError {
    /// A bundle for another trust domain was given as the own bundle.
    #[error("bundle is for trust domain {got}, not the agent's trust domain {expected}")]
    TrustDomainMismatch {
        /// The agent's trust domain.
        expected: TrustDomain,
        /// The bundle's trust domain.
        got: TrustDomain,
    },
    /// An SVID was given for an entry the cache does not hold.
    #[error("entry not found: {0}")]
    EntryNotFound(String),
    /// A CRL from the server cannot be parsed.
    #[error("invalid CRL: {0}")]
    InvalidCrl(String),
    /// An SVID's SPIFFE ID differs from its entry's.
    #[error(
        "SVID for entry {entry_id} is for {svid_id}, but the entry's SPIFFE ID is {entry_spiffe_id}"
    )]
    SpiffeIdMismatch {
        /// The entry.
        entry_id: String,
        /// The entry's SPIFFE ID.
        entry_spiffe_id: SpiffeId,
        /// The SVID's SPIFFE ID.
        svid_id: SpiffeId,
    },
}

#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

#[derive(Debug)]
struct Record {
    entry: Arc<CachedEntry>,
    validity: Option<Validity>,
    /// The entry changed since its SVID was signed.
    stale: bool,
    /// Logical time of the last access (LRU order of SVID eviction).
    last_access: u64,
}

#[derive(Debug)]
struct State {
    trust_domain: TrustDomain,
    bundle: Option<Arc<SpiffeBundle>>,
    federated: BTreeMap<TrustDomain, Arc<SpiffeBundle>>,
    /// The server's CRLs (DER) and the serials they revoke (lowercase hex).
    crls: Arc<Vec<Vec<u8>>>,
    revoked: HashSet<String>,
    /// Records by entry ID (so iteration is in entry ID order).
    records: BTreeMap<String, Record>,
    /// selector type → selector value → IDs of the entries that have that selector.
    index: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// Selector sets of the active subscribers, by subscriber ID.
    subscribers: HashMap<u64, Vec<Selector>>,
    next_subscriber: u64,
    /// Logical clock of record accesses.
    clock: u64,
    /// Soft limit of cached X.509-SVIDs (`x509_svid_cache_max_size`).
    max_svids: usize,
    /// `availability_target` (see [`rotation`](super::rotation)).
    availability_target: Option<Duration>,
}

impl State {
    fn rebuild_index(&mut self) {
        self.index.clear();
        for (id, record) in &self.records {
            for s in &record.entry.selectors {
                self.index
                    .entry(s.r#type.clone())
                    .or_default()
                    .entry(s.value.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
    }

    /// The records whose non-empty selector set is within `selectors`, by entry ID.
    fn matching(&self, selectors: &[Selector]) -> Vec<&Record> {
        let set: HashSet<(&str, &str)> = selectors
            .iter()
            .map(|s| (s.r#type.as_str(), s.value.as_str()))
            .collect();
        let mut candidates: BTreeSet<&str> = BTreeSet::new();
        for (t, v) in &set {
            if let Some(ids) = self.index.get(*t).and_then(|values| values.get(*v)) {
                candidates.extend(ids.iter().map(String::as_str));
            }
        }
        candidates
            .into_iter()
            .filter_map(|id| self.records.get(id))
            .filter(|r| {
                !r.entry.selectors.is_empty()
                    && r.entry
                        .selectors
                        .iter()
                        .all(|s| set.contains(&(s.r#type.as_str(), s.value.as_str())))
            })
            .collect()
    }

    /// Whether an active subscriber's selectors cover `entry` (it must keep its SVID).
    fn subscribed(&self, entry: &CachedEntry) -> bool {
        !entry.selectors.is_empty()
            && self
                .subscribers
                .values()
                .any(|set| entry.selectors.iter().all(|s| set.contains(s)))
    }

    fn svid_count(&self) -> usize {
        self.records
            .values()
            .filter(|r| r.entry.svid.is_some())
            .count()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Drops the SVIDs of unsubscribed entries, least recently accessed first, until
    /// at most `max_svids` remain (or only subscribed ones do). Returns how many.
    fn evict(&mut self) -> usize {
        let excess = self.svid_count().saturating_sub(self.max_svids);
        if excess == 0 {
            return 0;
        }
        let mut candidates: Vec<(u64, String)> = self
            .records
            .iter()
            .filter(|(_, r)| r.entry.svid.is_some() && !self.subscribed(&r.entry))
            .map(|(id, r)| (r.last_access, id.clone()))
            .collect();
        candidates.sort();
        candidates.truncate(excess);
        for (_, id) in &candidates {
            if let Some(record) = self.records.get_mut(id) {
                let mut entry = (*record.entry).clone();
                entry.svid = None;
                record.entry = Arc::new(entry);
                record.validity = None;
                record.stale = false;
                tracing::debug!(entry = %id, "X509-SVID evicted from the cache");
            }
        }
        candidates.len()
    }

    fn bundles_for(&self, identities: &[Identity]) -> WorkloadBundles {
        let mut federated = BTreeMap::new();
        for identity in identities {
            for td in &identity.entry.federates_with {
                match self.federated.get(td) {
                    Some(bundle) => {
                        federated.insert(td.clone(), Arc::clone(bundle));
                    }
                    None if *td == self.trust_domain => {}
                    None => tracing::warn!(
                        registration_id = %identity.entry.entry_id,
                        spiffe_id = %identity.entry.spiffe_id,
                        federated_bundle = %td.id_string(),
                        "Federated bundle contents missing"
                    ),
                }
            }
        }
        WorkloadBundles {
            own: self.bundle.clone(),
            federated,
        }
    }
}

/// The agent's identity cache. See the [module documentation](self).
#[derive(Debug)]
pub struct Cache {
    state: RwLock<State>,
    version: watch::Sender<u64>,
    /// Signalled when a new subscriber matches entries without an SVID.
    svids_wanted: Arc<Notify>,
}

/// An active subscriber of the cache (an open stream): while it lives, the entries
/// matching its selectors keep their X.509-SVIDs. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscriber {
    cache: Arc<Cache>,
    id: u64,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.cache.write().subscribers.remove(&self.id);
    }
}

impl Cache {
    /// An empty cache for the agent's trust domain.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Cache {
            state: RwLock::new(State {
                trust_domain,
                bundle: None,
                federated: BTreeMap::new(),
                crls: Arc::new(Vec::new()),
                revoked: HashSet::new(),
                records: BTreeMap::new(),
                index: HashMap::new(),
                subscribers: HashMap::new(),
                next_subscriber: 0,
                clock: 0,
                max_svids: DEFAULT_X509_SVID_CACHE_MAX_SIZE,
                availability_target: None,
            }),
            version: watch::Sender::new(0),
            svids_wanted: Arc::new(Notify::new()),
        }
    }

    /// Sets the soft limit of cached X.509-SVIDs (`x509_svid_cache_max_size`; 0 means
    /// [`DEFAULT_X509_SVID_CACHE_MAX_SIZE`]).
    pub fn with_x509_svid_cache_max_size(self, max: usize) -> Self {
        self.write().max_svids = if max == 0 {
            DEFAULT_X509_SVID_CACHE_MAX_SIZE
        } else {
            max
        };
        self
    }

    /// Sets `availability_target`: SVIDs are also due once their remaining lifetime
    /// falls to it (see [`rotation`](super::rotation)).
    pub fn with_availability_target(self, target: Option<Duration>) -> Self {
        self.write().availability_target = target;
        self
    }

    /// Registers a subscriber with the workload's `selectors`: the matching entries
    /// count as accessed now, keep their SVIDs while it lives and, when they have
    /// none, are due for signing at once ([`svids_wanted`](Self::svids_wanted) is
    /// signalled).
    pub fn subscribe_workload(self: &Arc<Self>, selectors: &[Selector]) -> Subscriber {
        let (id, missing) = {
            let mut state = self.write();
            let id = state.next_subscriber;
            state.next_subscriber += 1;
            state.subscribers.insert(id, selectors.to_vec());
            let now = state.tick();
            let matching: Vec<String> = state
                .matching(selectors)
                .iter()
                .map(|r| r.entry.entry_id.clone())
                .collect();
            let mut missing = false;
            for entry_id in matching {
                if let Some(record) = state.records.get_mut(&entry_id) {
                    record.last_access = now;
                    missing |= record.entry.svid.is_none();
                }
            }
            (id, missing)
        };
        if missing {
            self.svids_wanted.notify_one();
        }
        Subscriber {
            cache: Arc::clone(self),
            id,
        }
    }

    /// How many subscribers are active.
    pub fn subscriber_count(&self) -> usize {
        self.read().subscribers.len()
    }

    /// Signalled when a subscriber needs SVIDs the cache does not hold (the sync loop
    /// signs [`entries_needing_svids`](Self::entries_needing_svids) then).
    pub fn svids_wanted(&self) -> Arc<Notify> {
        Arc::clone(&self.svids_wanted)
    }

    /// How many X.509-SVIDs the cache holds.
    pub fn svid_count(&self) -> usize {
        self.read().svid_count()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    // ---------------------------------------------------------------- writer API

    /// Sets the own trust domain bundle.
    pub fn set_bundle(&self, bundle: SpiffeBundle) -> Result<(), CacheError> {
        let changed = {
            let mut state = self.write();
            if *bundle.trust_domain() != state.trust_domain {
                return Err(CacheError::TrustDomainMismatch {
                    expected: state.trust_domain.clone(),
                    got: bundle.trust_domain().clone(),
                });
            }
            if state.bundle.as_deref() == Some(&bundle) {
                false
            } else {
                tracing::debug!(trust_domain_id = %bundle.trust_domain().id_string(), "Bundle updated");
                state.bundle = Some(Arc::new(bundle));
                true
            }
        };
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// Replaces the full set of federated bundles. A bundle for the own trust domain is
    /// ignored (use [`set_bundle`](Self::set_bundle)); when two bundles name the same
    /// trust domain the last one wins.
    pub fn set_federated_bundles(&self, bundles: impl IntoIterator<Item = SpiffeBundle>) {
        let changed = {
            let mut state = self.write();
            let mut next: BTreeMap<TrustDomain, Arc<SpiffeBundle>> = BTreeMap::new();
            for bundle in bundles {
                let td = bundle.trust_domain().clone();
                if td == state.trust_domain {
                    tracing::warn!(trust_domain_id = %td.id_string(), "Ignoring own trust domain bundle given as a federated bundle");
                    continue;
                }
                // Keep the existing allocation when the content did not change.
                let bundle = match state.federated.get(&td) {
                    Some(old) if **old == bundle => Arc::clone(old),
                    _ => Arc::new(bundle),
                };
                next.insert(td, bundle);
            }
            let changed = next.len() != state.federated.len()
                || next.iter().any(|(td, b)| {
                    state
                        .federated
                        .get(td)
                        .is_none_or(|old| !Arc::ptr_eq(old, b))
                });
            if changed {
                state.federated = next;
            }
            changed
        };
        if changed {
            self.bump();
        }
    }

    /// Replaces the full set of entries.
    ///
    /// An entry whose SPIFFE ID did not change keeps its SVID (as SPIRE does); if its
    /// revision number changed the SVID is marked for re-signing (see
    /// [`entries_needing_svids`](Self::entries_needing_svids)). An entry whose SPIFFE ID
    /// changed loses its SVID. Entries absent from `entries` are dropped with their
    /// SVIDs. The `svid` of an input entry, when set and for the entry's SPIFFE ID,
    /// becomes its SVID.
    pub fn update_entries(&self, entries: Vec<CachedEntry>) {
        let changed = {
            let mut state = self.write();
            let mut old_records = std::mem::take(&mut state.records);
            let mut changed = false;
            for mut entry in entries {
                let incoming_svid = entry.svid.take();
                let old = old_records.remove(&entry.entry_id);
                let (mut svid, mut validity, mut stale) = match &old {
                    Some(old) if old.entry.spiffe_id == entry.spiffe_id => (
                        old.entry.svid.clone(),
                        old.validity,
                        old.stale || old.entry.revision_number != entry.revision_number,
                    ),
                    _ => (None, None, false),
                };
                if let Some(new_svid) = incoming_svid {
                    if *new_svid.spiffe_id() == entry.spiffe_id {
                        validity = validity_of(&new_svid);
                        svid = Some(new_svid);
                        stale = false;
                    } else {
                        tracing::warn!(entry = %entry.entry_id, "Ignoring SVID given with an entry for another SPIFFE ID");
                    }
                }
                entry.svid = svid;
                match &old {
                    None => {
                        tracing::debug!(entry = %entry.entry_id, spiffe_id = %entry.spiffe_id, "Entry created")
                    }
                    Some(old) if *old.entry != entry => {
                        tracing::debug!(entry = %entry.entry_id, spiffe_id = %entry.spiffe_id, "Entry updated")
                    }
                    Some(_) => {}
                }
                changed |= old.as_ref().is_none_or(|old| *old.entry != entry);
                let id = entry.entry_id.clone();
                let last_access = old.as_ref().map_or_else(|| state.tick(), |o| o.last_access);
                let record = Record {
                    entry: Arc::new(entry),
                    validity,
                    stale,
                    last_access,
                };
                if let Some(duplicate) = state.records.insert(id.clone(), record) {
                    tracing::warn!(entry = %id, "Duplicate entry ID in update; the last one wins");
                    drop(duplicate);
                }
            }
            for (id, record) in &old_records {
                tracing::debug!(entry = %id, spiffe_id = %record.entry.spiffe_id, "Entry removed");
            }
            changed |= !old_records.is_empty();
            state.rebuild_index();
            state.evict();
            changed
        };
        if changed {
            self.bump();
        }
    }

    /// Replaces the server's CRLs (DER). The serials they list are revoked: an SVID
    /// with one of them is due for re-signing at once
    /// ([`entries_needing_svids`](Self::entries_needing_svids)). Returns an error
    /// naming the first CRL that cannot be parsed; nothing is changed then.
    pub fn set_crls(&self, crls: Vec<Vec<u8>>) -> Result<(), CacheError> {
        let mut revoked = HashSet::new();
        for (i, der) in crls.iter().enumerate() {
            let (_, crl) = x509_parser::parse_x509_crl(der)
                .map_err(|e| CacheError::InvalidCrl(format!("CRL #{i}: {e}")))?;
            revoked.extend(
                crl.iter_revoked_certificates()
                    .map(|r| hex_serial(r.raw_serial())),
            );
        }
        let changed = {
            let mut state = self.write();
            if *state.crls == crls {
                false
            } else {
                tracing::debug!(crls = crls.len(), revoked = revoked.len(), "CRLs updated");
                state.crls = Arc::new(crls);
                state.revoked = revoked;
                true
            }
        };
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// The server's CRLs (DER), as last set.
    pub fn crls(&self) -> Arc<Vec<Vec<u8>>> {
        Arc::clone(&self.read().crls)
    }

    /// Stores a newly signed SVID for an entry.
    pub fn set_svid(&self, entry_id: &str, svid: X509Svid) -> Result<(), CacheError> {
        let changed = {
            let mut state = self.write();
            let changed = store_svid(&mut state, entry_id, svid)?;
            state.evict();
            changed
        };
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// Stores several SVIDs with a single notification of the readers. Returns the
    /// rejected ones with the reason; the others are stored.
    pub fn set_svids(
        &self,
        svids: impl IntoIterator<Item = (String, X509Svid)>,
    ) -> Vec<(String, CacheError)> {
        let mut rejected = Vec::new();
        let mut changed = false;
        {
            let mut state = self.write();
            for (entry_id, svid) in svids {
                match store_svid(&mut state, &entry_id, svid) {
                    Ok(c) => changed |= c,
                    Err(e) => rejected.push((entry_id, e)),
                }
            }
            state.evict();
        }
        if changed {
            self.bump();
        }
        rejected
    }

    /// Marks for re-signing every cached SVID for which `signed_by` holds (e.g. its
    /// chain leads to a tainted authority); returns how many were marked. They are
    /// listed by [`entries_needing_svids`](Self::entries_needing_svids) until a new SVID
    /// is stored; readers keep the current one until then.
    pub fn mark_stale_where(&self, signed_by: impl Fn(&X509Svid) -> bool) -> usize {
        let mut state = self.write();
        let mut marked = 0;
        for record in state.records.values_mut() {
            if let Some(svid) = &record.entry.svid
                && signed_by(svid)
            {
                record.stale = true;
                marked += 1;
            }
        }
        marked
    }

    /// The entries that need a (new) SVID at `now`, by entry ID: those whose SVID has
    /// used up `rotation_fraction` of its lifetime ([`DEFAULT_ROTATION_FRACTION`],
    /// SPIRE's half life; the caller may jitter it) or has expired, whose entry changed
    /// since signing, or whose serial a CRL revokes; entries without an SVID that an
    /// active subscriber matches; and, while the cache is under its size limit, other
    /// entries without an SVID (prefetch).
    pub fn entries_needing_svids(
        &self,
        now: SystemTime,
        rotation_fraction: f64,
    ) -> Vec<CachedEntry> {
        self.entries_needing_svids_jittered(now, rotation_fraction, Duration::ZERO)
    }

    /// [`entries_needing_svids`](Self::entries_needing_svids) with `target_jitter`
    /// added to the `availability_target` (SPIRE draws 0–10 minutes at every check).
    pub fn entries_needing_svids_jittered(
        &self,
        now: SystemTime,
        rotation_fraction: f64,
        target_jitter: Duration,
    ) -> Vec<CachedEntry> {
        let fraction = if rotation_fraction.is_finite() {
            rotation_fraction.clamp(0.0, 1.0)
        } else {
            DEFAULT_ROTATION_FRACTION
        };
        let state = self.read();
        let mut due: BTreeMap<&str, CachedEntry> = BTreeMap::new();
        let mut prefetch = Vec::new();
        let mut planned = state.svid_count();
        for (id, r) in &state.records {
            let wanted = match r.entry.svid.as_deref() {
                Some(svid) => {
                    r.stale
                        || needs_rotation(r.validity, now, fraction)
                        || state
                            .availability_target
                            .zip(r.validity)
                            .is_some_and(|(target, v)| {
                                rotation::availability_due(
                                    v.not_before,
                                    v.not_after,
                                    now,
                                    target,
                                    target_jitter,
                                )
                            })
                        || is_revoked(&state.revoked, Some(svid))
                }
                None if state.subscribed(&r.entry) => {
                    planned += 1;
                    true
                }
                None => {
                    prefetch.push(r);
                    false
                }
            };
            if wanted {
                due.insert(id, (*r.entry).clone());
            }
        }
        for r in prefetch {
            if planned >= state.max_svids {
                break;
            }
            planned += 1;
            due.insert(&r.entry.entry_id, (*r.entry).clone());
        }
        due.into_values().collect()
    }

    // ---------------------------------------------------------------- reader API

    /// A receiver of the cache version; it changes whenever the cache does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// The agent's trust domain.
    pub fn trust_domain(&self) -> TrustDomain {
        self.read().trust_domain.clone()
    }

    /// The own trust domain bundle, once set.
    pub fn bundle(&self) -> Option<Arc<SpiffeBundle>> {
        self.read().bundle.clone()
    }

    /// The federated bundle of a trust domain.
    pub fn federated_bundle(&self, td: &TrustDomain) -> Option<Arc<SpiffeBundle>> {
        self.read().federated.get(td).cloned()
    }

    /// Every bundle the agent holds: the own bundle (once set) and every federated
    /// one, read under one lock (what the Delegated Identity bundle streams serve).
    pub fn all_bundles(&self) -> Vec<Arc<SpiffeBundle>> {
        let state = self.read();
        state
            .bundle
            .iter()
            .chain(state.federated.values())
            .cloned()
            .collect()
    }

    /// One entry by ID.
    pub fn entry(&self, entry_id: &str) -> Option<Arc<CachedEntry>> {
        self.read()
            .records
            .get(entry_id)
            .map(|r| Arc::clone(&r.entry))
    }

    /// Every entry, by entry ID.
    pub fn entries(&self) -> Vec<Arc<CachedEntry>> {
        self.read()
            .records
            .values()
            .map(|r| Arc::clone(&r.entry))
            .collect()
    }

    /// The entries matching a workload's selectors (with or without SVID), by entry ID.
    pub fn matching_entries(&self, selectors: &[Selector]) -> Vec<Arc<CachedEntry>> {
        self.read()
            .matching(selectors)
            .into_iter()
            .map(|r| Arc::clone(&r.entry))
            .collect()
    }

    /// The entries a workload with these selectors gets JWT-SVIDs for: the matching
    /// entries, with or without X.509-SVID, by entry ID, duplicate hints filtered (the
    /// list SPIRE's `FetchJWTSVID` works on).
    pub fn jwt_entries_for(&self, selectors: &[Selector]) -> Vec<Arc<CachedEntry>> {
        let entries = self.matching_entries(selectors);
        filter_duplicate_hints(entries, |e| e.as_ref())
    }

    /// The identities of a workload with these selectors, in the order served (entry
    /// ID, then duplicate hints filtered). Only entries that have an SVID are included.
    pub fn identities_for(&self, selectors: &[Selector]) -> Vec<Identity> {
        let state = self.read();
        identities_of(&state.matching(selectors))
    }

    /// The bundles for a workload holding these identities: the own bundle and the
    /// federated bundles they federate with.
    pub fn x509_bundles_for(&self, identities: &[Identity]) -> WorkloadBundles {
        self.read().bundles_for(identities)
    }

    /// Identities, pending entries and bundles of a workload, read under one lock.
    pub fn workload_update(&self, selectors: &[Selector]) -> WorkloadUpdate {
        let state = self.read();
        let matching = state.matching(selectors);
        let identities = identities_of(&matching);
        let pending = matching.iter().filter(|r| r.entry.svid.is_none()).count();
        let bundles = state.bundles_for(&identities);
        WorkloadUpdate {
            identities,
            pending,
            bundles,
            crls: Arc::clone(&state.crls),
        }
    }
}

/// Stores an SVID in `state`; returns whether anything changed.
fn store_svid(state: &mut State, entry_id: &str, svid: X509Svid) -> Result<bool, CacheError> {
    let record = state
        .records
        .get_mut(entry_id)
        .ok_or_else(|| CacheError::EntryNotFound(entry_id.to_owned()))?;
    if *svid.spiffe_id() != record.entry.spiffe_id {
        return Err(CacheError::SpiffeIdMismatch {
            entry_id: entry_id.to_owned(),
            entry_spiffe_id: record.entry.spiffe_id.clone(),
            svid_id: svid.spiffe_id().clone(),
        });
    }
    record.stale = false;
    state.clock += 1;
    record.last_access = state.clock;
    if record.entry.svid.as_deref() == Some(&svid) {
        return Ok(false);
    }
    record.validity = validity_of(&svid);
    if let (Some(target), Some(v)) = (state.availability_target, record.validity)
        && !rotation::target_applies(v.not_before, v.not_after, target)
    {
        tracing::warn!(
            entry = %entry_id,
            availability_target = ?target,
            "X509-SVID lifetime is too short for the availability target; rotating at half life"
        );
    }
    let mut entry = (*record.entry).clone();
    entry.svid = Some(Arc::new(svid));
    record.entry = Arc::new(entry);
    tracing::debug!(entry = %entry_id, spiffe_id = %record.entry.spiffe_id, "SVID updated");
    Ok(true)
}

fn identities_of(records: &[&Record]) -> Vec<Identity> {
    let identities: Vec<Identity> = records
        .iter()
        .filter_map(|r| {
            r.entry.svid.as_ref().map(|svid| Identity {
                entry: Arc::clone(&r.entry),
                svid: Arc::clone(svid),
                expires_at: r.validity.map(|v| v.not_after),
            })
        })
        .collect();
    filter_duplicate_hints(identities, |i| i.entry.as_ref())
}

/// Drops identities whose non-empty hint is also used by an older entry (by
/// `created_at`, then entry ID), keeping the order of the rest.
fn filter_duplicate_hints<T>(identities: Vec<T>, entry_of: impl Fn(&T) -> &CachedEntry) -> Vec<T> {
    let mut keep: HashMap<&str, &CachedEntry> = HashMap::new();
    let mut removed: HashSet<String> = HashSet::new();
    for identity in &identities {
        let entry = entry_of(identity);
        if entry.hint.is_empty() {
            continue;
        }
        match keep.get(entry.hint.as_str()) {
            None => {
                keep.insert(entry.hint.as_str(), entry);
            }
            Some(other) => {
                let entry_wins = (entry.created_at, entry.entry_id.as_str())
                    < (other.created_at, other.entry_id.as_str());
                let (winner, loser) = if entry_wins {
                    (entry, *other)
                } else {
                    (*other, entry)
                };
                tracing::warn!(hint = %loser.hint, registration_id = %loser.entry_id, "Ignoring entry with duplicate hint");
                removed.insert(loser.entry_id.clone());
                keep.insert(entry.hint.as_str(), winner);
            }
        }
    }
    if removed.is_empty() {
        return identities;
    }
    identities
        .into_iter()
        .filter(|i| !removed.contains(&entry_of(i).entry_id))
        .collect()
}

fn needs_rotation(validity: Option<Validity>, now: SystemTime, fraction: f64) -> bool {
    let Some(v) = validity else {
        return true;
    };
    if now >= v.not_after {
        return true;
    }
    let Ok(lifetime) = v.not_after.duration_since(v.not_before) else {
        return true;
    };
    let elapsed = now.duration_since(v.not_before).unwrap_or(Duration::ZERO);
    elapsed.as_secs_f64() >= lifetime.as_secs_f64() * fraction
}

/// A serial number as lowercase hex without leading zeros (how the server names them).
fn hex_serial(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Whether a CRL revokes this SVID's leaf.
fn is_revoked(revoked: &HashSet<String>, svid: Option<&X509Svid>) -> bool {
    let Some(svid) = svid.filter(|_| !revoked.is_empty()) else {
        return false;
    };
    x509_parser::parse_x509_certificate(svid.leaf().as_ref())
        .is_ok_and(|(_, cert)| revoked.contains(&hex_serial(cert.raw_serial())))
}

fn validity_of(svid: &X509Svid) -> Option<Validity> {
    let (_, cert) = x509_parser::parse_x509_certificate(svid.leaf().as_ref()).ok()?;
    let validity = cert.validity();
    Some(Validity {
        not_before: unix_time(validity.not_before.timestamp()),
        not_after: unix_time(validity.not_after.timestamp()),
    })
}

fn unix_time(secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    let time = if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    time.unwrap_or(UNIX_EPOCH)
}

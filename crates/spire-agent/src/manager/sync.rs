//! The sync loop (agent.md §5.6), push-driven: the agent keeps the server's
//! `WatchChanges` stream open and syncs the moment the server reports a change, with a
//! periodic sync as a safety net. A sync refreshes the bundle and the CRLs, replaces the
//! authorized entries in the cache and signs every SVID that is missing, stale or past its
//! rotation point in one `BatchNewX509SVID` call.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain, X509Svid};
use spire_common::convert::id_from_proto;
use spire_proto::spire::api::types::Entry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, CachedEntry, DEFAULT_ROTATION_FRACTION};
use super::jwt_cache::JwtSvidCache;
use super::taint::TaintedAuthorities;
use crate::client::{ClientError, ServerClient};
use crate::workload::Selector;

/// How often SVIDs are checked for rotation between syncs (SPIRE: 500 ms).
pub const SVID_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A server call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server's bundle is not usable.
    #[error("cannot use the trust bundle: {0}")]
    Bundle(String),
    /// Key or CSR generation failed.
    #[error("cannot create a key and CSR: {0}")]
    Csr(String),
}

impl SyncError {
    /// Whether the server refused the agent itself (banned, or it must attest again), so
    /// that retrying is pointless (agent.md §5.3).
    pub fn is_fatal(&self) -> bool {
        matches!(self, SyncError::Client(e) if e.is_agent_banned() || e.must_reattest())
    }

    /// Whether the server asked for a new attestation (not a ban): right after the agent
    /// renewed its SVID by attesting again, a call still in flight on the old
    /// connection gets this answer for the replaced SVID.
    fn must_reattest(&self) -> bool {
        matches!(self, SyncError::Client(e) if e.must_reattest() && !e.is_agent_banned())
    }
}

/// How long to wait before retrying, on a fresh connection, a call refused for an SVID
/// that may just have been renewed.
const REFUSAL_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Upper bound of the SVID check backoff (SPIRE: 4 min).
const MAX_SVID_CHECK_BACKOFF: Duration = Duration::from_secs(240);

/// Upper bound of the sync backoff: min(8 min, 48 × interval) (agent.md §5.6).
fn max_sync_backoff(interval: Duration) -> Duration {
    Duration::from_secs(480).min(interval.saturating_mul(48))
}

/// SPIRE's retry backoff: after each failure the delay grows ×1.5 with ±10% jitter, up
/// to `max`; a success brings it back to `base`.
#[derive(Debug)]
struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            current: base,
        }
    }

    /// The delay after a success.
    fn reset(&mut self) -> Duration {
        self.current = self.base;
        self.base
    }

    /// The delay after a failure.
    fn failure(&mut self) -> Duration {
        self.current = self.current.mul_f64(1.5).min(self.max);
        self.current.mul_f64(0.9 + random_unit() * 0.2)
    }
}

/// A random number in [0, 1] (0.5 when the system RNG fails).
fn random_unit() -> f64 {
    let mut byte = [0u8; 1];
    match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0,
        Err(_) => 0.5,
    }
}

/// Called with every new trust bundle, so the TLS trust store and `agent-data.json`
/// follow it.
pub type BundleObserver = Box<dyn Fn(&SpiffeBundle) + Send + Sync>;

/// Keeps the cache in step with the server.
pub struct Synchronizer {
    client: ServerClient,
    cache: Arc<Cache>,
    on_bundle: BundleObserver,
    sync_interval: Duration,
    wake: Arc<Notify>,
    /// The tainted authorities of the last bundle (agent.md §5.11).
    tainted: Mutex<TaintedAuthorities>,
    /// Where tokens signed by tainted JWT keys are purged from.
    jwt_cache: Option<Arc<JwtSvidCache>>,
    /// Signalled when newly tainted X.509 authorities are seen, so the agent SVID
    /// rotator checks its SVID at once.
    x509_tainted: Arc<Notify>,
    /// Unix time of the last successful full sync (0: none yet), for the Debug API.
    last_success: Arc<std::sync::atomic::AtomicI64>,
}

impl Synchronizer {
    /// A synchronizer that fills `cache` from `client`.
    pub fn new(
        client: ServerClient,
        cache: Arc<Cache>,
        on_bundle: BundleObserver,
        sync_interval: Duration,
    ) -> Self {
        Synchronizer {
            client,
            cache,
            on_bundle,
            sync_interval,
            wake: Arc::new(Notify::new()),
            tainted: Mutex::new(TaintedAuthorities::default()),
            jwt_cache: None,
            x509_tainted: Arc::new(Notify::new()),
            last_success: Arc::default(),
        }
    }

    /// Purges JWT-SVIDs signed by tainted keys from `cache` (the agent's shared JWT
    /// cache).
    pub fn with_jwt_cache(mut self, cache: Arc<JwtSvidCache>) -> Self {
        self.jwt_cache = Some(cache);
        self
    }

    /// Signalled whenever a sync sees newly tainted X.509 authorities (the agent SVID
    /// rotator waits on it; see [`signed_by_tainted`](Self::signed_by_tainted)).
    pub fn x509_taint_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.x509_tainted)
    }

    /// Whether `chain` (an SVID of the agent's trust domain) leads to an X.509
    /// authority that the last synced bundle marks tainted.
    pub fn signed_by_tainted(&self, chain: &[CertificateDer<'static>]) -> bool {
        self.tainted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .signed_chain(&self.cache.trust_domain(), chain, SystemTime::now())
    }

    /// The Unix time of the last successful full sync (0: none yet), shared so that it
    /// can be read while the loop runs.
    pub fn last_success(&self) -> Arc<std::sync::atomic::AtomicI64> {
        Arc::clone(&self.last_success)
    }

    /// One full sync: bundle, entries, SVIDs.
    pub async fn sync(&self) -> Result<(), SyncError> {
        let (bundle, tainted) = self.client.bundle_with_taints().await?;
        if self.cache.bundle().as_deref() != Some(&bundle) {
            (self.on_bundle)(&bundle);
        }
        self.cache
            .set_bundle(bundle)
            .map_err(|e| SyncError::Bundle(e.to_string()))?;
        self.process_tainted(tainted);
        self.sync_crls().await?;
        let entries = self.client.authorized_entries().await?;
        self.cache.update_entries(
            entries
                .into_iter()
                .filter_map(|entry| cached_entry(entry).ok())
                .collect(),
        );
        self.sign_due_svids().await?;
        self.last_success.store(
            crate::endpoints::admin::debug::unix_now(),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Acts on authorities tainted since the last sync: cached X.509-SVIDs chained to
    /// them are marked for re-signing (the sync signs them right after), the agent SVID
    /// rotator is woken, and JWT-SVIDs signed by tainted keys are purged.
    fn process_tainted(&self, tainted: TaintedAuthorities) {
        let newly = {
            let mut seen = self.tainted.lock().unwrap_or_else(PoisonError::into_inner);
            let newly = tainted.newly_tainted_since(&seen);
            *seen = tainted;
            newly
        };
        if !newly.x509.is_empty() {
            let td = self.cache.trust_domain();
            let now = SystemTime::now();
            let marked = self
                .cache
                .mark_stale_where(|svid| newly.signed_chain(&td, svid.cert_chain(), now));
            tracing::info!(
                tainted_authorities = newly.x509.len(),
                svids = marked,
                "New tainted X.509 authorities found; re-signing the SVIDs they signed"
            );
            self.x509_tainted.notify_one();
        }
        if !newly.jwt_key_ids.is_empty() {
            let purged = self
                .jwt_cache
                .as_ref()
                .map_or(0, |cache| cache.purge_key_ids(&newly.jwt_key_ids));
            tracing::info!(
                tainted_keys = newly.jwt_key_ids.len(),
                jwt_svids = purged,
                "New tainted JWT authorities found; purged the JWT-SVIDs they signed"
            );
        }
    }

    /// Fetches the server's CRLs into the cache (so revoked SVIDs are re-signed by
    /// [`sign_due_svids`](Self::sign_due_svids) right after). A failure keeps the CRLs
    /// already cached and does not fail the sync (entries and SVIDs still flow), except
    /// a refusal of the agent itself. A server without per-SVID revocation (SPIRE) has
    /// no CRLs.
    async fn sync_crls(&self) -> Result<(), SyncError> {
        match self.client.x509_crls().await {
            Ok(crls) => {
                if let Err(e) = self.cache.set_crls(crls) {
                    tracing::warn!(error = %e, "Ignoring CRLs from the server");
                }
            }
            Err(e)
                if e.status()
                    .is_some_and(|s| s.code() == tonic::Code::Unimplemented) =>
            {
                tracing::debug!("The server does not publish CRLs");
            }
            // A refusal (banned, must re-attest) ends the sync like any other call's.
            Err(e) if e.is_agent_banned() || e.must_reattest() => return Err(e.into()),
            Err(e) => tracing::warn!(error = %e, "Failed to fetch CRLs"),
        }
        Ok(())
    }

    /// Signs the SVIDs that are missing, stale or due for rotation.
    pub async fn sign_due_svids(&self) -> Result<(), SyncError> {
        let due = self.cache.entries_needing_svids_jittered(
            SystemTime::now(),
            jittered_rotation_fraction(),
            super::rotation::target_jitter(random_unit()),
        );
        if due.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(due.len());
        let mut requests = Vec::with_capacity(due.len());
        for entry in &due {
            let (key, csr) = key_and_csr(&entry.spiffe_id)?;
            keys.push(key);
            requests.push((entry.entry_id.clone(), csr));
        }
        let results = self.client.new_x509_svids(requests).await?;
        let mut signed = Vec::new();
        for (result, key) in results.into_iter().zip(keys) {
            match result.result {
                Ok(chain) => match X509Svid::from_parts(chain, key) {
                    Ok(svid) => signed.push((result.entry_id, svid)),
                    Err(e) => {
                        tracing::warn!(entry_id = result.entry_id, error = %e, "Server returned an invalid SVID")
                    }
                },
                Err(status) => tracing::warn!(
                    entry_id = result.entry_id,
                    error = status.message(),
                    "Failed to sign X509-SVID"
                ),
            }
        }
        for (entry_id, error) in self.cache.set_svids(signed) {
            tracing::warn!(entry_id, error = %error, "Discarded a signed SVID");
        }
        Ok(())
    }

    /// Runs until `shutdown`: syncs on every pushed change, every `sync_interval`, and
    /// checks SVID rotation every [`SVID_CHECK_INTERVAL`]. Failed syncs and SVID checks
    /// back off (agent.md §5.6, §5.9) and recover on the next success. Returns an error
    /// only when the server refuses the agent for good ([`SyncError::is_fatal`]); the
    /// caller then deletes the agent SVID and shuts down.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), SyncError> {
        let watcher = tokio::spawn(self.clone().watch_changes(shutdown.clone()));
        let result = self.run_loops(&shutdown).await;
        watcher.abort();
        result
    }

    async fn run_loops(&self, shutdown: &CancellationToken) -> Result<(), SyncError> {
        let mut sync_backoff =
            Backoff::new(self.sync_interval, max_sync_backoff(self.sync_interval));
        let mut svid_backoff = Backoff::new(SVID_CHECK_INTERVAL, MAX_SVID_CHECK_BACKOFF);
        let mut next_sync = tokio::time::Instant::now() + self.sync_interval;
        let mut next_svid_check = tokio::time::Instant::now() + SVID_CHECK_INTERVAL;
        let svids_wanted = self.cache.svids_wanted();
        let mut retried_refusal = false;
        loop {
            let sync_now = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => true,
                // A new stream needs SVIDs the LRU cache does not hold: sign them now.
                () = svids_wanted.notified() => false,
                () = tokio::time::sleep_until(next_sync) => true,
                () = tokio::time::sleep_until(next_svid_check) => false,
            };
            if sync_now {
                let delay = match self.sync().await {
                    Ok(()) => {
                        retried_refusal = false;
                        sync_backoff.reset()
                    }
                    Err(e) if self.retry_refusal(&e, &mut retried_refusal) => REFUSAL_RETRY_DELAY,
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => {
                        let delay = sync_backoff.failure();
                        tracing::warn!(error = %e, retry_in = ?delay, "Synchronization failed");
                        delay
                    }
                };
                next_sync = tokio::time::Instant::now() + delay;
            } else {
                let delay = match self.sign_due_svids().await {
                    Ok(()) => svid_backoff.reset(),
                    Err(e) if self.retry_refusal(&e, &mut retried_refusal) => REFUSAL_RETRY_DELAY,
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => {
                        let delay = svid_backoff.failure();
                        tracing::warn!(error = %e, retry_in = ?delay, "Failed to rotate SVIDs");
                        delay
                    }
                };
                next_svid_check = tokio::time::Instant::now() + delay;
            }
        }
    }

    /// Whether to retry, once and on a fresh connection, a call the server refused
    /// asking for a new attestation: the refused SVID may be one the agent has just
    /// replaced by attesting again (the call raced the rotation). A second refusal
    /// in a row is final.
    fn retry_refusal(&self, error: &SyncError, retried: &mut bool) -> bool {
        if *retried || !error.must_reattest() {
            return false;
        }
        *retried = true;
        tracing::warn!(error = %error, "Server refused the agent SVID; retrying once on a new connection in case it was just renewed");
        if let Err(e) = self.client.reconnect() {
            tracing::warn!(error = %e, "Cannot reconnect to the server");
        }
        true
    }

    /// Keeps the push channel open, reconnecting after a short pause when it drops.
    async fn watch_changes(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.client.watch_changes().await {
                Ok(mut stream) => loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = stream.message() => match message {
                            Ok(Some(_)) => self.wake.notify_one(),
                            Ok(None) => break,
                            Err(status) => {
                                tracing::debug!(error = status.message(), "Change stream ended");
                                break;
                            }
                        }
                    }
                },
                Err(e) => tracing::debug!(error = %e, "Cannot open the change stream"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// SPIRE's rotation point: half of the lifetime, ±10% of that half, drawn anew at every
/// check (agent.md §5.7).
fn jittered_rotation_fraction() -> f64 {
    let jitter = (random_unit() - 0.5) * 0.2;
    DEFAULT_ROTATION_FRACTION * (1.0 + jitter)
}

/// A new EC P-256 key and a CSR for it, for a workload SVID of `id`.
pub fn key_and_csr(id: &SpiffeId) -> Result<(PrivatePkcs8KeyDer<'static>, Vec<u8>), SyncError> {
    let key = KeyPair::generate().map_err(|e| SyncError::Csr(e.to_string()))?;
    let csr = csr_for(&key, Some(id))?;
    Ok((PrivatePkcs8KeyDer::from(key.serialize_der()), csr))
}

/// A CSR as SPIRE's agent makes them: subject `C=US, O=SPIRE`, and the URI SAN `id`
/// when given (agent SVID CSRs carry none).
pub fn csr_for(key: &KeyPair, id: Option<&SpiffeId>) -> Result<Vec<u8>, SyncError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "SPIRE");
    params.distinguished_name = dn;
    if let Some(id) = id {
        let uri = id
            .as_str()
            .try_into()
            .map_err(|e: rcgen::Error| SyncError::Csr(e.to_string()))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
    }
    let csr = params
        .serialize_request(key)
        .map_err(|e| SyncError::Csr(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// The cache's view of an entry from the server; entries with invalid IDs are skipped.
fn cached_entry(entry: Entry) -> Result<CachedEntry, String> {
    let id = |field: &str, value: &Option<spire_proto::spire::api::types::Spiffeid>| {
        value
            .as_ref()
            .ok_or_else(|| format!("entry {} has no {field}", entry.id))
            .and_then(|v| id_from_proto(v).map_err(|e| e.to_string()))
    };
    let spiffe_id = id("spiffe_id", &entry.spiffe_id)?;
    let parent_id = id("parent_id", &entry.parent_id)?;
    let federates_with = entry
        .federates_with
        .iter()
        .filter_map(|td| TrustDomain::parse(td).ok())
        .collect();
    let selectors = entry
        .selectors
        .iter()
        .filter_map(|s| Selector::new(s.r#type.clone(), s.value.clone()).ok())
        .collect();
    Ok(CachedEntry {
        entry_id: entry.id,
        spiffe_id,
        parent_id,
        selectors,
        federates_with,
        hint: entry.hint,
        revision_number: entry.revision_number,
        created_at: entry.created_at,
        svid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_caps_and_resets() {
        let base = Duration::from_secs(1);
        let mut backoff = Backoff::new(base, max_sync_backoff(base));
        let first = backoff.failure();
        assert!(first >= Duration::from_millis(1349) && first <= Duration::from_millis(1651));
        for _ in 0..100 {
            backoff.failure();
        }
        assert!(backoff.failure() <= Duration::from_secs(48).mul_f64(1.1));
        assert_eq!(backoff.reset(), base);
        assert_eq!(
            max_sync_backoff(Duration::from_secs(5)),
            Duration::from_secs(240)
        );
        assert_eq!(
            max_sync_backoff(Duration::from_secs(60)),
            Duration::from_secs(480)
        );
    }
}

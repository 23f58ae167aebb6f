//! The sync loop (agent.md §5.6), push-driven: the agent keeps the server's
//! `WatchChanges` stream open and syncs the moment the server reports a change, with a
//! periodic sync as a safety net. A sync refreshes the bundle, replaces the authorized
//! entries in the cache and signs every SVID that is missing, stale or past its
//! rotation point in one `BatchNewX509SVID` call.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls_pki_types::PrivatePkcs8KeyDer;
use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain, X509Svid};
use spire_common::convert::id_from_proto;
use spire_proto::spire::api::types::Entry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, CachedEntry, DEFAULT_ROTATION_FRACTION};
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
        }
    }

    /// One full sync: bundle, entries, SVIDs.
    pub async fn sync(&self) -> Result<(), SyncError> {
        let bundle = self.client.bundle().await?;
        if self.cache.bundle().as_deref() != Some(&bundle) {
            (self.on_bundle)(&bundle);
        }
        self.cache
            .set_bundle(bundle)
            .map_err(|e| SyncError::Bundle(e.to_string()))?;
        let entries = self.client.authorized_entries().await?;
        self.cache.update_entries(
            entries
                .into_iter()
                .filter_map(|entry| cached_entry(entry).ok())
                .collect(),
        );
        self.sign_due_svids().await
    }

    /// Signs the SVIDs that are missing, stale or due for rotation.
    pub async fn sign_due_svids(&self) -> Result<(), SyncError> {
        let due = self
            .cache
            .entries_needing_svids(SystemTime::now(), jittered_rotation_fraction());
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
    /// checks SVID rotation every [`SVID_CHECK_INTERVAL`].
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let watcher = tokio::spawn(self.clone().watch_changes(shutdown.clone()));
        let mut next_sync = tokio::time::Instant::now() + self.sync_interval;
        let mut svid_check = tokio::time::interval(SVID_CHECK_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => self.sync_logged().await,
                () = tokio::time::sleep_until(next_sync) => {
                    self.sync_logged().await;
                    next_sync = tokio::time::Instant::now() + self.sync_interval;
                }
                _ = svid_check.tick() => {
                    if let Err(e) = self.sign_due_svids().await {
                        tracing::warn!(error = %e, "Failed to rotate SVIDs");
                    }
                }
            }
        }
        watcher.abort();
    }

    async fn sync_logged(&self) {
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "Synchronization failed");
        }
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
    let mut byte = [0u8; 1];
    let jitter = match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => (f64::from(byte[0]) / 255.0 - 0.5) * 0.2,
        Err(_) => 0.0,
    };
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

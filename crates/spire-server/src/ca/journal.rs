//! The CA journal (spec server.md §4.8): the server's X.509 CAs and JWT keys, with their
//! slots and statuses, persisted in the datastore's `ca_journals` table so that a server
//! whose KeyManager keeps its keys (the `disk` KeyManager) reuses the same authorities
//! after a restart instead of minting new ones.
//!
//! The blob is SPIRE's protobuf `Entries` message (`proto/private/server/journal`), so a
//! row written by SPIRE reads here and the other way round. Each list keeps the last
//! [`MAX_ENTRIES`] items. A row is written only once an X.509 authority is active; it is
//! keyed by that authority's ID (`active_x509_authority_id`, the hex SKID).
//!
//! At startup [`load`] looks for the row whose active X.509 CA uses a key the KeyManager
//! still holds (same slot key ID, same public key); with the `memory` KeyManager nothing
//! matches and the CA mints new authorities, as SPIRE does. No private key material is
//! ever written to the journal: the KeyManager keeps keys, the journal only certificates
//! and public keys.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use spiffe_core::PublicKey;

use super::slot::{JwtKey, SlotId, SlotStatus, Slots, X509Ca};
use super::{JwtAuthority, PublishedRoot, ServerCa, bundle_of, verify};
use crate::datastore::{self, CaJournal, DataStoreError, SqlStore};
use crate::keymanager::ManagedKey;

/// How many items each list of the journal keeps.
pub const MAX_ENTRIES: usize = 10;

/// SPIRE's journal `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Status {
    /// Unknown.
    Unknown = 0,
    /// Prepared, not yet signing.
    Prepared = 2,
    /// Signing.
    Active = 3,
    /// Rotated out.
    Old = 4,
}

impl From<SlotStatus> for Status {
    fn from(status: SlotStatus) -> Self {
        match status {
            SlotStatus::Prepared => Status::Prepared,
            SlotStatus::Active => Status::Active,
            SlotStatus::Old => Status::Old,
        }
    }
}

/// SPIRE's journal `X509CAEntry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509CaEntry {
    /// The slot (`A` or `B`).
    #[prost(string, tag = "1")]
    pub slot_id: String,
    /// When the CA was prepared (unix seconds).
    #[prost(int64, tag = "2")]
    pub issued_at: i64,
    /// The CA certificate, DER.
    #[prost(bytes = "vec", tag = "3")]
    pub certificate: Vec<u8>,
    /// The upstream chain, DER each.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub upstream_chain: Vec<Vec<u8>>,
    /// The status.
    #[prost(enumeration = "Status", tag = "5")]
    pub status: i32,
    /// The authority ID (hex SKID).
    #[prost(string, tag = "6")]
    pub authority_id: String,
    /// When the CA expires (unix seconds).
    #[prost(int64, tag = "7")]
    pub not_after: i64,
    /// The upstream authority ID (hex AKID), upstream mode only.
    #[prost(string, tag = "8")]
    pub upstream_authority_id: String,
    /// Whether `not_after` is the effective chain expiration.
    #[prost(bool, tag = "9")]
    pub not_after_is_effective: bool,
}

/// SPIRE's journal `JWTKeyEntry` (also the shape of `WITKeyEntry`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct JwtKeyEntry {
    /// The slot (`A` or `B`).
    #[prost(string, tag = "1")]
    pub slot_id: String,
    /// When the key was prepared (unix seconds).
    #[prost(int64, tag = "2")]
    pub issued_at: i64,
    /// When the key expires (unix seconds).
    #[prost(int64, tag = "3")]
    pub not_after: i64,
    /// The key ID.
    #[prost(string, tag = "4")]
    pub kid: String,
    /// The public key, PKIX DER.
    #[prost(bytes = "vec", tag = "5")]
    pub public_key: Vec<u8>,
    /// The status.
    #[prost(enumeration = "Status", tag = "6")]
    pub status: i32,
    /// The authority ID (= kid).
    #[prost(string, tag = "7")]
    pub authority_id: String,
}

/// SPIRE's journal `Entries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entries {
    /// X.509 CAs, oldest first.
    #[prost(message, repeated, tag = "1")]
    pub x509_cas: Vec<X509CaEntry>,
    /// JWT keys, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub jwt_keys: Vec<JwtKeyEntry>,
    /// WIT keys (kept as read; spire-rs manages none).
    #[prost(message, repeated, tag = "3")]
    pub wit_keys: Vec<JwtKeyEntry>,
}

/// The journal a CA keeps in memory: its row and its entries.
#[derive(Debug, Default)]
pub(crate) struct JournalState {
    /// The datastore row ID; 0 until first written.
    pub(crate) row_id: i64,
    pub(crate) entries: Entries,
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn time_of(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn slot_of(id: &str) -> Option<SlotId> {
    match id {
        "A" => Some(SlotId::A),
        "B" => Some(SlotId::B),
        _ => None,
    }
}

fn truncate<T>(list: &mut Vec<T>) {
    if list.len() > MAX_ENTRIES {
        let excess = list.len() - MAX_ENTRIES;
        list.drain(..excess);
    }
}

impl ServerCa {
    /// Records the slots' current authorities and statuses in the in-memory journal and
    /// returns `(encoded Entries, active X.509 authority ID, active JWT authority ID,
    /// row ID)`, or `None` while no X.509 authority is active.
    fn journal_snapshot(&self) -> Option<(Vec<u8>, String, String, i64)> {
        let state = self.read();
        let active_x509 = state.x509.current.active()?.authority_id.clone();
        let active_jwt = state
            .jwt
            .current
            .active()
            .map(|k| k.kid.clone())
            .unwrap_or_default();
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for slot in [&state.x509.current, &state.x509.next] {
            let Some(ca) = &slot.value else { continue };
            let status = Status::from(slot.status) as i32;
            match journal
                .entries
                .x509_cas
                .iter_mut()
                .find(|e| e.authority_id == ca.authority_id)
            {
                Some(entry) => entry.status = status,
                None => journal.entries.x509_cas.push(X509CaEntry {
                    slot_id: ca.slot.as_str().to_owned(),
                    issued_at: secs(ca.issued_at),
                    certificate: ca.certificate.as_ref().to_vec(),
                    upstream_chain: ca
                        .upstream_chain
                        .iter()
                        .map(|c| c.as_ref().to_vec())
                        .collect(),
                    status,
                    authority_id: ca.authority_id.clone(),
                    not_after: secs(ca.not_after),
                    upstream_authority_id: ca.upstream_authority_id.clone().unwrap_or_default(),
                    not_after_is_effective: false,
                }),
            }
        }
        for slot in [&state.jwt.current, &state.jwt.next] {
            let Some(key) = &slot.value else { continue };
            let status = Status::from(slot.status) as i32;
            match journal
                .entries
                .jwt_keys
                .iter_mut()
                .find(|e| e.authority_id == key.kid)
            {
                Some(entry) => entry.status = status,
                None => journal.entries.jwt_keys.push(JwtKeyEntry {
                    slot_id: key.slot.as_str().to_owned(),
                    issued_at: secs(key.issued_at),
                    not_after: secs(key.not_after),
                    kid: key.kid.clone(),
                    public_key: key.public_key_der().to_vec(),
                    status,
                    authority_id: key.kid.clone(),
                }),
            }
        }
        truncate(&mut journal.entries.x509_cas);
        truncate(&mut journal.entries.jwt_keys);
        let data = prost::Message::encode_to_vec(&journal.entries);
        Some((data, active_x509, active_jwt, journal.row_id))
    }

    fn set_journal_row(&self, row_id: i64) {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .row_id = row_id;
    }

    /// The KeyManager key of `slot` for `key_id`, if it holds one whose public key is
    /// `spki_der`.
    fn matching_key(&self, key_id: &str, spki_der: &[u8]) -> Option<Arc<ManagedKey>> {
        match self.key_manager.get_key(key_id) {
            Ok(Some(key)) if key.public_key_der() == spki_der => Some(key),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, key_id, "Unable to read a KeyManager key");
                None
            }
        }
    }

    /// The X.509 CA of a journal entry, if its key is still in the KeyManager and it has
    /// not expired.
    fn x509_ca_from_entry(&self, entry: &X509CaEntry, now: SystemTime) -> Option<X509Ca> {
        let slot = slot_of(&entry.slot_id)?;
        let certificate = CertificateDer::from(entry.certificate.clone());
        let spki = {
            let parsed = verify::parse_cert(&certificate).ok()?;
            parsed.public_key().raw.to_vec()
        };
        let key = self.matching_key(&slot.x509_ca_key_id(), &spki)?;
        let chain = entry
            .upstream_chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        match self.build_x509_ca(slot, key, certificate, chain, time_of(entry.issued_at)) {
            Ok(ca) if ca.not_after > now => Some(ca),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, slot = %slot, "Unusable X509 CA in the CA journal");
                None
            }
        }
    }

    /// The JWT key of a journal entry, if its key is still in the KeyManager and it has
    /// not expired.
    fn jwt_key_from_entry(&self, entry: &JwtKeyEntry, now: SystemTime) -> Option<JwtKey> {
        let slot = slot_of(&entry.slot_id)?;
        let not_after = time_of(entry.not_after);
        if not_after <= now || entry.kid.is_empty() {
            return None;
        }
        let key = self.matching_key(&slot.jwt_key_id(), &entry.public_key)?;
        let public_key = PublicKey::from_spki_der(&entry.public_key).ok()?;
        Some(JwtKey {
            slot,
            key,
            kid: entry.kid.clone(),
            public_key,
            issued_at: time_of(entry.issued_at),
            not_after,
        })
    }

    /// Whether the journal's active X.509 CA uses a key the KeyManager holds.
    fn journal_matches(&self, entries: &Entries, active_x509_authority_id: &str) -> bool {
        entries.x509_cas.iter().any(|e| {
            e.authority_id == active_x509_authority_id
                && e.status == Status::Active as i32
                && slot_of(&e.slot_id).is_some_and(|slot| {
                    let certificate = CertificateDer::from(e.certificate.clone());
                    verify::parse_cert(&certificate)
                        .map(|parsed| parsed.public_key().raw.to_vec())
                        .ok()
                        .is_some_and(|spki| {
                            self.matching_key(&slot.x509_ca_key_id(), &spki).is_some()
                        })
                })
        })
    }

    /// Rebuilds the slots from a journal (call before the first
    /// [`rotate`](Self::rotate)). For each kind, the latest entry of each slot is loaded
    /// when its key is still in the KeyManager and it has not expired; the ACTIVE one
    /// becomes current and the other one next (PREPARED or OLD). The published
    /// authorities are seeded from `stored` (the trust domain's bundle in the datastore)
    /// and the loaded authorities. Returns whether an X.509 CA was restored.
    pub fn restore_from_journal(
        &self,
        row_id: i64,
        entries: Entries,
        stored: Option<&datastore::Bundle>,
    ) -> bool {
        let now = self.clock.now();
        let _rotation = self
            .rotation
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        let x509 = latest_per_slot(&entries.x509_cas, |e| (&e.slot_id, e.status))
            .into_iter()
            .filter_map(|(e, status)| Some((self.x509_ca_from_entry(e, now)?, status)))
            .collect::<Vec<_>>();
        let jwt = if self.config.disable_jwt_svids {
            Vec::new()
        } else {
            latest_per_slot(&entries.jwt_keys, |e| (&e.slot_id, e.status))
                .into_iter()
                .filter_map(|(e, status)| Some((self.jwt_key_from_entry(e, now)?, status)))
                .collect::<Vec<_>>()
        };

        let mut state = self.write();
        let restored_x509 = fill_slots(&mut state.x509, x509, |ca| ca.slot);
        let restored_jwt = fill_slots(&mut state.jwt, jwt, |key| key.slot);

        if let Some(bundle) = stored {
            for root in &bundle.x509_authorities {
                let certificate = CertificateDer::from(root.asn1.clone());
                if let Ok(parsed) = verify::parse_cert(&certificate) {
                    let not_after = verify::not_after(&parsed);
                    let authority_id = verify::subject_key_id(&parsed)
                        .map(|id| super::profile::hex(&id))
                        .unwrap_or_default();
                    drop(parsed);
                    if not_after > now
                        && !state
                            .x509_roots
                            .iter()
                            .any(|r| r.certificate == certificate)
                    {
                        state.x509_roots.push(PublishedRoot {
                            certificate,
                            not_after,
                            authority_id,
                        });
                    }
                }
            }
            if restored_jwt {
                for key in &bundle.jwt_authorities {
                    let expires_at = time_of(key.expires_at);
                    if expires_at > now
                        && !state.jwt_authorities.iter().any(|a| a.kid == key.key_id)
                    {
                        state.jwt_authorities.push(JwtAuthority {
                            kid: key.key_id.clone(),
                            public_key_der: key.public_key.clone(),
                            expires_at,
                        });
                    }
                }
            }
        }
        if self.upstream.is_none() {
            let cas: Vec<Arc<X509Ca>> = [&state.x509.current.value, &state.x509.next.value]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            for ca in cas {
                if !state
                    .x509_roots
                    .iter()
                    .any(|r| r.certificate == ca.certificate)
                {
                    state.x509_roots.push(PublishedRoot {
                        certificate: ca.certificate.clone(),
                        not_after: ca.not_after,
                        authority_id: ca.authority_id.clone(),
                    });
                }
            }
        }
        let keys: Vec<Arc<JwtKey>> = [&state.jwt.current.value, &state.jwt.next.value]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for key in keys {
            if !state.jwt_authorities.iter().any(|a| a.kid == key.kid) {
                state.jwt_authorities.push(JwtAuthority {
                    kid: key.kid.clone(),
                    public_key_der: key.public_key_der().to_vec(),
                    expires_at: key.not_after,
                });
            }
        }
        state.x509_bundle = Arc::new(bundle_of(&self.config.trust_domain, &state.x509_roots));
        if let Some(ca) = state.x509.current.active() {
            tracing::info!(
                slot = %ca.slot,
                local_authority_id = %ca.authority_id,
                "X509 CA loaded from the CA journal"
            );
        }
        if let Some(key) = state.jwt.current.active() {
            tracing::info!(
                slot = %key.slot,
                local_authority_id = %key.kid,
                "JWT key loaded from the CA journal"
            );
        }
        drop(state);
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        journal.row_id = row_id;
        journal.entries = entries;
        restored_x509
    }
}

/// The last entry of each slot (`A`, `B`) with its status.
fn latest_per_slot<T>(list: &[T], key: impl Fn(&T) -> (&String, i32)) -> Vec<(&T, i32)> {
    ["A", "B"]
        .into_iter()
        .filter_map(|slot| {
            list.iter()
                .rev()
                .find(|e| key(e).0 == slot)
                .map(|e| (e, key(e).1))
        })
        .collect()
}

/// Places loaded authorities: the ACTIVE one becomes current, the other next. Returns
/// whether a current authority was placed.
fn fill_slots<T: super::slot::Authority>(
    slots: &mut Slots<T>,
    loaded: Vec<(T, i32)>,
    slot_of: impl Fn(&T) -> SlotId,
) -> bool {
    let (active, others): (Vec<_>, Vec<_>) = loaded
        .into_iter()
        .partition(|(_, status)| *status == Status::Active as i32);
    let Some((current, _)) = active.into_iter().next() else {
        return false;
    };
    let current_slot = slot_of(&current);
    slots.current.id = current_slot;
    slots.current.value = Some(Arc::new(current));
    slots.current.status = SlotStatus::Active;
    slots.next.id = current_slot.other();
    slots.next.value = None;
    slots.next.status = SlotStatus::Old;
    if let Some((next, status)) = others
        .into_iter()
        .find(|(v, _)| slot_of(v) == current_slot.other())
    {
        slots.next.value = Some(Arc::new(next));
        slots.next.status = if status == Status::Prepared as i32 {
            SlotStatus::Prepared
        } else {
            SlotStatus::Old
        };
    }
    true
}

/// Finds this server's journal (the row whose active X.509 CA uses a key the KeyManager
/// holds) and restores the CA's slots from it. Returns whether an X.509 CA was restored.
/// Call before the first [`ServerCa::rotate`].
pub async fn load(store: &SqlStore, ca: &ServerCa) -> Result<bool, DataStoreError> {
    let journals = store.list_ca_journals().await?;
    for row in journals.iter().rev() {
        let entries = match <Entries as prost::Message>::decode(row.data.as_slice()) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, journal_id = row.id, "Unreadable CA journal");
                continue;
            }
        };
        if !ca.journal_matches(&entries, &row.active_x509_authority_id) {
            continue;
        }
        let stored = store.fetch_bundle(ca.trust_domain().name()).await?;
        tracing::info!(
            journal_id = row.id,
            active_x509_authority_id = %row.active_x509_authority_id,
            "Loading the CA journal"
        );
        return Ok(ca.restore_from_journal(row.id, entries, stored.as_ref()));
    }
    Ok(false)
}

/// Writes the CA's journal to the datastore (nothing while no X.509 authority is
/// active). Call after every preparation or activation.
pub async fn save(store: &SqlStore, ca: &ServerCa) -> Result<(), DataStoreError> {
    let _write = ca.journal_write.lock().await;
    let Some((data, active_x509, active_jwt, row_id)) = ca.journal_snapshot() else {
        return Ok(());
    };
    let mut journal = CaJournal {
        id: row_id,
        data,
        active_x509_authority_id: active_x509,
        active_jwt_authority_id: active_jwt,
    };
    let stored = match store.set_ca_journal(&journal).await {
        Err(DataStoreError::NotFound(_)) if row_id != 0 => {
            journal.id = 0;
            store.set_ca_journal(&journal).await?
        }
        other => other?,
    };
    ca.set_journal_row(stored.id);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use spiffe_core::TrustDomain;

    use super::Entries;
    use crate::ca::{AuthorityError, CaConfig, ManualClock, ServerCa};
    use crate::keymanager::{KeyManager, MemoryKeyManager};

    fn ca(km: &Arc<dyn KeyManager>, clock: &Arc<ManualClock>) -> ServerCa {
        let td = TrustDomain::new("example.org").unwrap();
        ServerCa::new(CaConfig::new(td), km.clone(), None, clock.clone()).unwrap()
    }

    /// Prepare → activate → taint checks on the manual clock, then the journal rebuilds
    /// the same slots in a new CA over the same KeyManager.
    #[test]
    fn operations_and_journal_round_trip() {
        let km: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
        let clock = Arc::new(ManualClock::starting_now());
        let first = ca(&km, &clock);
        first.rotate().unwrap();
        let active = first.x509_authority_states().unwrap().active.unwrap();

        clock.advance(Duration::from_secs(60));
        let (prepared, report) = first.prepare_x509_authority().unwrap();
        assert!(report.x509_authorities_changed);
        assert_eq!(
            first.activate_x509_authority("nope").unwrap_err(),
            AuthorityError::InvalidArgument("unexpected authority ID".into())
        );
        first
            .activate_x509_authority(&prepared.authority_id)
            .unwrap();
        let states = first.x509_authority_states().unwrap();
        assert_eq!(states.active.as_ref(), Some(&prepared));
        assert_eq!(states.old.as_ref(), Some(&active));
        assert!(first.x509_authority_to_taint(&active.authority_id).is_ok());
        assert!(
            first
                .x509_authority_to_taint(&prepared.authority_id)
                .is_err()
        );
        let jwt = first.jwt_authority_states().unwrap();

        let (data, active_x509, _, _) = first.journal_snapshot().unwrap();
        assert_eq!(active_x509, prepared.authority_id);
        let entries = <Entries as prost::Message>::decode(data.as_slice()).unwrap();
        assert_eq!(entries.x509_cas.len(), 2);

        let second = ca(&km, &clock);
        assert!(second.journal_matches(&entries, &active_x509));
        assert!(second.restore_from_journal(7, entries, None));
        assert_eq!(second.x509_authority_states().unwrap(), states);
        assert_eq!(second.jwt_authority_states().unwrap(), jwt);
        assert_eq!(second.x509_authorities().len(), 2);
        // The restored CA keeps signing without minting anything new.
        let report = second.rotate().unwrap();
        assert!(report.events.is_empty(), "{report:?}");

        // Another KeyManager holds none of the keys: nothing matches.
        let other: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
        let (data, active_x509, _, _) = first.journal_snapshot().unwrap();
        let entries = <Entries as prost::Message>::decode(data.as_slice()).unwrap();
        assert!(!ca(&other, &clock).journal_matches(&entries, &active_x509));
    }
}

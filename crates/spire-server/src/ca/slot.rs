//! The CA's signing authorities and their A/B slots (spec server.md §4.2).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{Issuer, PublicKeyData, SignatureAlgorithm, SigningKey};
use rustls_pki_types::CertificateDer;
use spiffe_core::PublicKey;

use crate::keymanager::{ManagedKey, jwt_signer_key_id, x509_ca_key_id};

/// Preparation happens `min(lifetime / 2, 30 days)` before notAfter.
const PREPARATION_DIVISOR: u32 = 2;
const PREPARATION_CAP: Duration = Duration::from_secs(30 * 24 * 3600);
/// Activation happens `min(lifetime / 6, 7 days)` before notAfter.
const ACTIVATION_DIVISOR: u32 = 6;
const ACTIVATION_CAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// When the next authority is prepared: `notAfter − min(lifetime / 2, 30 days)`, with
/// `lifetime = notAfter − issuedAt`.
pub fn preparation_threshold(issued_at: SystemTime, not_after: SystemTime) -> SystemTime {
    threshold(issued_at, not_after, PREPARATION_DIVISOR, PREPARATION_CAP)
}

/// When the next authority is activated: `notAfter − min(lifetime / 6, 7 days)`.
pub fn activation_threshold(issued_at: SystemTime, not_after: SystemTime) -> SystemTime {
    threshold(issued_at, not_after, ACTIVATION_DIVISOR, ACTIVATION_CAP)
}

/// The longest SVID TTL a rotation never cuts short for a CA TTL: `min(ca_ttl / 6, 7 days)`.
pub fn max_svid_ttl_for_ca_ttl(ca_ttl: Duration) -> Duration {
    (ca_ttl / ACTIVATION_DIVISOR).min(ACTIVATION_CAP)
}

fn threshold(
    issued_at: SystemTime,
    not_after: SystemTime,
    divisor: u32,
    cap: Duration,
) -> SystemTime {
    let lifetime = not_after.duration_since(issued_at).unwrap_or_default();
    let before = (lifetime / divisor).min(cap);
    not_after.checked_sub(before).unwrap_or(not_after)
}

/// A slot name: every authority kind has two slots, `A` and `B` (current and next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotId {
    /// Slot `A`.
    A,
    /// Slot `B`.
    B,
}

impl SlotId {
    /// `"A"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotId::A => "A",
            SlotId::B => "B",
        }
    }

    /// The other slot.
    pub fn other(self) -> SlotId {
        match self {
            SlotId::A => SlotId::B,
            SlotId::B => SlotId::A,
        }
    }

    /// The KeyManager key ID of this slot's X.509 CA key (`x509-CA-A`).
    pub fn x509_ca_key_id(self) -> String {
        x509_ca_key_id(self.as_str())
    }

    /// The KeyManager key ID of this slot's JWT key (`JWT-Signer-A`).
    pub fn jwt_key_id(self) -> String {
        jwt_signer_key_id(self.as_str())
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a slot's authority, as in SPIRE's CA journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotStatus {
    /// Prepared and published, not yet signing.
    Prepared,
    /// Signing.
    Active,
    /// Rotated out; its authority stays published until it expires.
    Old,
}

/// A [`ManagedKey`] shared between a slot and the rcgen issuer that signs with it.
#[derive(Clone)]
pub(crate) struct SharedKey(pub(crate) Arc<ManagedKey>);

impl PublicKeyData for SharedKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for SharedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// An X.509 CA: the certificate the server signs X509-SVIDs with, and its key.
pub struct X509Ca {
    pub(crate) slot: SlotId,
    pub(crate) key: Arc<ManagedKey>,
    pub(crate) certificate: CertificateDer<'static>,
    pub(crate) upstream_chain: Vec<CertificateDer<'static>>,
    pub(crate) issued_at: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_id: String,
    pub(crate) upstream_authority_id: Option<String>,
    pub(crate) issuer: Issuer<'static, SharedKey>,
}

impl X509Ca {
    /// The slot the CA lives in.
    pub fn slot(&self) -> SlotId {
        self.slot
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// With an UpstreamAuthority: the chain from the CA certificate up to (not including)
    /// the upstream roots, CA certificate first; SVIDs are issued as `[leaf] + this`.
    /// Empty for a self-signed CA.
    pub fn upstream_chain(&self) -> &[CertificateDer<'static>] {
        &self.upstream_chain
    }

    /// The chain a TLS server presents above its leaf: the upstream chain, or the CA
    /// certificate alone when self-signed.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        if self.upstream_chain.is_empty() {
            vec![self.certificate.clone()]
        } else {
            self.upstream_chain.clone()
        }
    }

    /// When the CA was prepared.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The CA's authority ID: the lowercase hex SubjectKeyIdentifier.
    pub fn authority_id(&self) -> &str {
        &self.authority_id
    }

    /// The upstream authority ID (hex AuthorityKeyIdentifier), for an upstream-signed CA.
    pub fn upstream_authority_id(&self) -> Option<&str> {
        self.upstream_authority_id.as_deref()
    }

    /// The KeyManager key.
    pub fn key(&self) -> &Arc<ManagedKey> {
        &self.key
    }

    /// When the next CA should be prepared.
    pub fn preparation_threshold(&self) -> SystemTime {
        preparation_threshold(self.issued_at, self.not_after)
    }

    /// When the next CA should be activated.
    pub fn activation_threshold(&self) -> SystemTime {
        activation_threshold(self.issued_at, self.not_after)
    }
}

impl fmt::Debug for X509Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Ca")
            .field("slot", &self.slot)
            .field("authority_id", &self.authority_id)
            .field("upstream_authority_id", &self.upstream_authority_id)
            .field("issued_at", &self.issued_at)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A JWT signing key.
#[derive(Debug)]
pub struct JwtKey {
    pub(crate) slot: SlotId,
    pub(crate) key: Arc<ManagedKey>,
    pub(crate) kid: String,
    pub(crate) public_key: PublicKey,
    pub(crate) issued_at: SystemTime,
    pub(crate) not_after: SystemTime,
}

impl JwtKey {
    /// The slot the key lives in.
    pub fn slot(&self) -> SlotId {
        self.slot
    }

    /// The key ID (`kid`), which is also its authority ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The public key as PKIX DER.
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public_key_der()
    }

    /// When the key was prepared.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When the key expires (preparation time + `ca_ttl`).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The KeyManager key.
    pub fn key(&self) -> &Arc<ManagedKey> {
        &self.key
    }

    /// When the next key should be prepared.
    pub fn preparation_threshold(&self) -> SystemTime {
        preparation_threshold(self.issued_at, self.not_after)
    }

    /// When the next key should be activated.
    pub fn activation_threshold(&self) -> SystemTime {
        activation_threshold(self.issued_at, self.not_after)
    }
}

/// What a slot's authority exposes to the rotation logic.
pub(crate) trait Authority {
    fn thresholds(&self) -> (SystemTime, SystemTime);
}

impl Authority for X509Ca {
    fn thresholds(&self) -> (SystemTime, SystemTime) {
        (self.preparation_threshold(), self.activation_threshold())
    }
}

impl Authority for JwtKey {
    fn thresholds(&self) -> (SystemTime, SystemTime) {
        (self.preparation_threshold(), self.activation_threshold())
    }
}

/// One slot: an authority (if any) and its status.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    pub(crate) id: SlotId,
    pub(crate) value: Option<Arc<T>>,
    pub(crate) status: SlotStatus,
}

impl<T: Authority> Slot<T> {
    pub(crate) fn empty(id: SlotId) -> Self {
        Slot {
            id,
            value: None,
            status: SlotStatus::Old,
        }
    }

    /// Empty, or holding an authority that was rotated out.
    pub(crate) fn is_empty(&self) -> bool {
        self.value.is_none() || self.status == SlotStatus::Old
    }

    pub(crate) fn should_prepare_next(&self, now: SystemTime) -> bool {
        self.value.as_ref().is_some_and(|v| now > v.thresholds().0)
    }

    pub(crate) fn should_activate_next(&self, now: SystemTime) -> bool {
        self.value.as_ref().is_some_and(|v| now > v.thresholds().1)
    }

    /// The authority, if the slot is active.
    pub(crate) fn active(&self) -> Option<&Arc<T>> {
        match self.status {
            SlotStatus::Active => self.value.as_ref(),
            _ => None,
        }
    }

    /// The authority, if the slot is prepared (and not yet active).
    pub(crate) fn prepared(&self) -> Option<&Arc<T>> {
        match self.status {
            SlotStatus::Prepared => self.value.as_ref(),
            _ => None,
        }
    }
}

/// The current and next slot of one kind of authority.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    pub(crate) current: Slot<T>,
    pub(crate) next: Slot<T>,
}

impl<T: Authority> Slots<T> {
    pub(crate) fn new() -> Self {
        Slots {
            current: Slot::empty(SlotId::A),
            next: Slot::empty(SlotId::B),
        }
    }

    /// The slot a preparation fills: the current one while it is empty, else the next.
    pub(crate) fn preparation_slot(&self) -> SlotId {
        if self.current.is_empty() {
            self.current.id
        } else {
            self.next.id
        }
    }

    pub(crate) fn slot_mut(&mut self, id: SlotId) -> &mut Slot<T> {
        if self.current.id == id {
            &mut self.current
        } else {
            &mut self.next
        }
    }

    /// Swaps next into current, marks the old current as OLD and the new one ACTIVE.
    pub(crate) fn rotate(&mut self) {
        std::mem::swap(&mut self.current, &mut self.next);
        self.next.status = SlotStatus::Old;
        self.current.status = SlotStatus::Active;
    }
}

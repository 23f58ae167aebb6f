//! The server CA (spec server.md §4): the trust domain's X.509 CA and JWT signing keys,
//! their A/B slot rotation, and the signing of X509-SVIDs and JWT-SVIDs.
//!
//! - **Self-signed mode** (no UpstreamAuthority): each X.509 CA is a self-signed root
//!   with the server CA profile of §4.5, published as a trust bundle authority from the
//!   moment it is prepared.
//! - **Upstream mode**: each X.509 CA key is certified by the [`UpstreamAuthority`]
//!   from a CSR; the trust bundle is the upstream roots, and SVIDs carry the upstream
//!   chain.
//!
//! [`ServerCa::rotate`] is a step function: the server runs it every 10 s (and once
//! before serving); tests drive it with a [`ManualClock`]. It prepares the next
//! authority at `notAfter − min(lifetime/2, 30d)` and activates it at
//! `notAfter − min(lifetime/6, 7d)`; a rotated-out authority stays published until it
//! expires.
//!
//! Every credential issued is re-validated before it is returned (SPIRE's
//! `credvalidator`): X509-SVIDs with spiffe-core's [`verify_chain`](spiffe_core::verify_chain)
//! against the current authorities, JWT-SVIDs with
//! [`JwtSvid::parse_and_validate`](spiffe_core::JwtSvid::parse_and_validate).

mod authority;
pub mod clock;
pub mod crl;
mod downstream;
pub mod journal;
pub(crate) mod profile;
pub mod publish;
mod slot;
pub(crate) mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{Issuer, SubjectPublicKeyInfo};
use rustls_pki_types::CertificateDer;
use spiffe_core::{
    JwtBundle, JwtSvidClaims, PublicKey, SpiffeBundle, SpiffeId, TrustDomain, X509Bundle, X509Svid,
};
use thiserror::Error;

use crate::keymanager::{KeyManager, KeyManagerError, KeyType, ManagedKey};
use crate::upstream::{UpstreamAuthority, UpstreamError};

pub use authority::{AuthorityError, AuthorityState, AuthorityStates};
pub use clock::{Clock, ManualClock, SystemClock};
pub use profile::{CaSubject, NOT_BEFORE_CUSHION};
pub use slot::{
    JwtKey, SlotId, SlotStatus, X509Ca, activation_threshold, max_svid_ttl_for_ca_ttl,
    preparation_threshold,
};

use profile::{
    ca_csr_params, capped_lifetime, hex, new_serial, self_signed_ca_params, x509_svid_params,
};
use slot::{SharedKey, Slots};

/// Default `ca_ttl`: 24 hours.
pub const DEFAULT_CA_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default `default_x509_svid_ttl`: 1 hour.
pub const DEFAULT_X509_SVID_TTL: Duration = Duration::from_secs(3600);
/// Default `default_jwt_svid_ttl`: 5 minutes.
pub const DEFAULT_JWT_SVID_TTL: Duration = Duration::from_secs(300);

/// The path of the server's own SPIFFE ID (`spiffe://<td>/spire/server`).
pub const SERVER_ID_PATH: &str = "/spire/server";

/// The characters of a JWT key ID, in SPIRE's order.
const KID_ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The length of a JWT key ID.
const KID_LEN: usize = 32;

/// The CA's settings, from the `server` block of `server.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaConfig {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// `ca_key_type`: the X.509 CA key type (also the server SVID's key type).
    pub ca_key_type: KeyType,
    /// `jwt_key_type`: the JWT signing key type.
    pub jwt_key_type: KeyType,
    /// `ca_ttl`: the lifetime of X.509 CAs and JWT keys.
    pub ca_ttl: Duration,
    /// `ca_subject`.
    pub ca_subject: CaSubject,
    /// `default_x509_svid_ttl`: workload (when the entry has none) and server SVIDs.
    pub default_x509_svid_ttl: Duration,
    /// `default_jwt_svid_ttl`.
    pub default_jwt_svid_ttl: Duration,
    /// `agent_ttl`: agent SVIDs; `None` means `default_x509_svid_ttl`.
    pub agent_ttl: Option<Duration>,
    /// `jwt_issuer`: the `iss` claim of JWT-SVIDs, if set.
    pub jwt_issuer: Option<String>,
    /// `disable_jwt_svids`: no JWT keys are managed and JWT-SVIDs are refused.
    pub disable_jwt_svids: bool,
}

impl CaConfig {
    /// SPIRE's defaults for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        CaConfig {
            trust_domain,
            ca_key_type: KeyType::EcP256,
            jwt_key_type: KeyType::EcP256,
            ca_ttl: DEFAULT_CA_TTL,
            ca_subject: CaSubject::default(),
            default_x509_svid_ttl: DEFAULT_X509_SVID_TTL,
            default_jwt_svid_ttl: DEFAULT_JWT_SVID_TTL,
            agent_ttl: None,
            jwt_issuer: None,
            disable_jwt_svids: false,
        }
    }

    fn agent_ttl(&self) -> Duration {
        self.agent_ttl
            .filter(|ttl| !ttl.is_zero())
            .unwrap_or(self.default_x509_svid_ttl)
    }
}

/// Why a CA operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaError {
    /// The configuration is invalid.
    #[error("invalid CA configuration: {0}")]
    Config(String),
    /// No X.509 CA is active.
    #[error("X509 CA is not available for signing")]
    NoX509Ca,
    /// No JWT key is active.
    #[error("JWT key is not available for signing")]
    NoJwtKey,
    /// JWT-SVIDs are disabled (`disable_jwt_svids`).
    #[error("JWT-SVIDs are disabled")]
    JwtDisabled,
    /// An SVID was asked for an ID outside the trust domain, or for its root ID.
    #[error("invalid {what} ID: {reason}")]
    InvalidSpiffeId {
        /// `X509-SVID` or `JWT-SVID`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A JWT-SVID was asked with no (non-empty) audience.
    #[error("invalid JWT-SVID audience: cannot be empty")]
    EmptyAudience,
    /// The public key to certify is not usable.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// The CSR is malformed or its signature does not verify.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// The KeyManager failed.
    #[error(transparent)]
    KeyManager(#[from] KeyManagerError),
    /// The UpstreamAuthority failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Building or signing a credential failed.
    #[error("unable to create {what}: {reason}")]
    Issue {
        /// What was being created.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A freshly issued credential failed re-validation.
    #[error("invalid {what}: {reason}")]
    Validation {
        /// What was issued.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl CaError {
    fn issue(what: &'static str) -> impl Fn(String) -> CaError {
        move |reason| CaError::Issue { what, reason }
    }

    fn validation(what: &'static str) -> impl Fn(String) -> CaError {
        move |reason| CaError::Validation { what, reason }
    }
}

/// A JWT authority to publish in the trust bundle (`jwt_signing_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthority {
    /// The key ID.
    pub kid: String,
    /// The public key, PKIX DER.
    pub public_key_der: Vec<u8>,
    /// When the key expires.
    pub expires_at: SystemTime,
}

/// One thing [`ServerCa::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationEvent {
    /// An X.509 CA was prepared in a slot.
    X509CaPrepared {
        /// The slot.
        slot: SlotId,
        /// Its authority ID (hex SKID).
        authority_id: String,
    },
    /// An X.509 CA became the signing CA.
    X509CaActivated {
        /// The slot.
        slot: SlotId,
        /// Its authority ID.
        authority_id: String,
    },
    /// A JWT key was prepared in a slot.
    JwtKeyPrepared {
        /// The slot.
        slot: SlotId,
        /// Its key ID.
        kid: String,
    },
    /// A JWT key became the signing key.
    JwtKeyActivated {
        /// The slot.
        slot: SlotId,
        /// Its key ID.
        kid: String,
    },
    /// An expired X.509 authority was dropped from the published set.
    X509AuthorityExpired {
        /// The authority ID (hex SKID) of the root removed.
        authority_id: String,
    },
    /// An expired JWT authority was dropped from the published set.
    JwtAuthorityExpired {
        /// The key ID removed.
        kid: String,
    },
}

/// What one [`ServerCa::rotate`] step changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// What happened, in order.
    pub events: Vec<RotationEvent>,
    /// Whether the published X.509 authorities changed.
    pub x509_authorities_changed: bool,
    /// Whether the published JWT authorities changed.
    pub jwt_authorities_changed: bool,
    /// Rotation steps that failed without leaving the CA unable to sign (logged; the
    /// next step retries them).
    pub failures: Vec<String>,
}

impl RotationReport {
    /// Whether the trust bundle must be republished.
    pub fn bundle_changed(&self) -> bool {
        self.x509_authorities_changed || self.jwt_authorities_changed
    }

    /// Whether the signing X.509 CA changed (the server SVID should be renewed).
    pub fn x509_ca_activated(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, RotationEvent::X509CaActivated { .. }))
    }
}

/// A published X.509 authority.
#[derive(Debug, Clone)]
struct PublishedRoot {
    certificate: CertificateDer<'static>,
    not_after: SystemTime,
    authority_id: String,
}

/// The mutable state, behind a lock that signing holds only briefly.
#[derive(Debug)]
struct State {
    x509: Slots<X509Ca>,
    jwt: Slots<JwtKey>,
    x509_roots: Vec<PublishedRoot>,
    jwt_authorities: Vec<JwtAuthority>,
    x509_bundle: Arc<X509Bundle>,
}

/// The server CA.
#[derive(Debug)]
pub struct ServerCa {
    config: CaConfig,
    key_manager: Arc<dyn KeyManager>,
    upstream: Option<Arc<dyn UpstreamAuthority>>,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Serializes rotations; signing never waits on it.
    rotation: Mutex<()>,
    failed_rotations: AtomicU64,
    /// The CA journal kept for this server (see [`journal`]).
    journal: Mutex<journal::JournalState>,
    /// Serializes writes of the journal to the datastore.
    journal_write: tokio::sync::Mutex<()>,
}

impl ServerCa {
    /// A CA with no authority yet: call [`rotate`](Self::rotate) once before signing.
    pub fn new(
        config: CaConfig,
        key_manager: Arc<dyn KeyManager>,
        upstream: Option<Arc<dyn UpstreamAuthority>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        config.ca_subject.check().map_err(CaError::Config)?;
        if config.ca_ttl.is_zero() {
            return Err(CaError::Config("ca_ttl must be positive".to_owned()));
        }
        let x509_bundle = Arc::new(X509Bundle::new(config.trust_domain.clone()));
        Ok(ServerCa {
            config,
            key_manager,
            upstream,
            clock,
            state: RwLock::new(State {
                x509: Slots::new(),
                jwt: Slots::new(),
                x509_roots: Vec::new(),
                jwt_authorities: Vec::new(),
                x509_bundle,
            }),
            rotation: Mutex::new(()),
            failed_rotations: AtomicU64::new(0),
            journal: Mutex::new(journal::JournalState::default()),
            journal_write: tokio::sync::Mutex::new(()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CaConfig {
        &self.config
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.config.trust_domain
    }

    /// The clock the CA reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether X.509 CAs are signed by an UpstreamAuthority.
    pub fn is_upstream(&self) -> bool {
        self.upstream.is_some()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ---- rotation ------------------------------------------------------------------

    /// One rotation step at the clock's current time (see [`rotate_at`](Self::rotate_at)).
    pub fn rotate(&self) -> Result<RotationReport, CaError> {
        self.rotate_at(self.clock.now())
    }

    /// One rotation step at `now`, for each authority kind (X.509 CA, then JWT key):
    /// - current slot empty → prepare and activate at once;
    /// - next slot empty and `now` past the current's preparation threshold → prepare
    ///   next (publishing its authority);
    /// - `now` past the current's activation threshold → swap next into current and
    ///   activate it; the old authority stays published until it expires.
    ///
    /// Then expired authorities are dropped from the published set (never the last one).
    ///
    /// Fails only when the CA is left unable to sign (no active X.509 CA, or no active
    /// JWT key when JWT-SVIDs are enabled); other failures are logged, counted in
    /// [`failed_rotations`](Self::failed_rotations), listed in the report and retried
    /// on the next step.
    pub fn rotate_at(&self, now: SystemTime) -> Result<RotationReport, CaError> {
        let _rotation = self
            .rotation
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut report = RotationReport::default();

        if let Err(err) = self.rotate_x509(now, &mut report) {
            self.failed_rotations.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "Unable to rotate X509 CA");
            if self.read().x509.current.active().is_none() {
                return Err(err);
            }
            report.failures.push(err.to_string());
        }

        if !self.config.disable_jwt_svids
            && let Err(err) = self.rotate_jwt(now, &mut report)
        {
            self.failed_rotations.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "Unable to rotate JWT key");
            if self.read().jwt.current.active().is_none() {
                return Err(err);
            }
            report.failures.push(err.to_string());
        }

        self.prune_expired(now, &mut report);
        Ok(report)
    }

    /// How many rotation steps failed since the CA was created (the
    /// `server.ca.rotator` health check turns unhealthy past 10).
    pub fn failed_rotations(&self) -> u64 {
        self.failed_rotations.load(Ordering::Relaxed)
    }

    fn rotate_x509(&self, now: SystemTime, report: &mut RotationReport) -> Result<(), CaError> {
        if self.read().x509.current.is_empty() {
            let slot = self.read().x509.preparation_slot();
            let ca = self.prepare_x509_ca(slot, now)?;
            self.install_x509_ca(ca, report);
            self.activate_current_x509(report);
        }

        let (prepare, activate) = {
            let state = self.read();
            (
                state.x509.next.is_empty() && state.x509.current.should_prepare_next(now),
                state.x509.current.should_activate_next(now),
            )
        };
        if prepare {
            let slot = self.read().x509.preparation_slot();
            let ca = self.prepare_x509_ca(slot, now)?;
            self.install_x509_ca(ca, report);
        }
        if activate {
            if self.read().x509.next.prepared().is_none() {
                let slot = self.read().x509.preparation_slot();
                let ca = self.prepare_x509_ca(slot, now)?;
                self.install_x509_ca(ca, report);
            }
            self.write().x509.rotate();
            self.activate_current_x509(report);
        }
        Ok(())
    }

    fn rotate_jwt(&self, now: SystemTime, report: &mut RotationReport) -> Result<(), CaError> {
        if self.read().jwt.current.is_empty() {
            let slot = self.read().jwt.preparation_slot();
            let key = self.prepare_jwt_key(slot, now)?;
            self.install_jwt_key(key, report);
            self.activate_current_jwt(report);
        }

        let (prepare, activate) = {
            let state = self.read();
            (
                state.jwt.next.is_empty() && state.jwt.current.should_prepare_next(now),
                state.jwt.current.should_activate_next(now),
            )
        };
        if prepare {
            let slot = self.read().jwt.preparation_slot();
            let key = self.prepare_jwt_key(slot, now)?;
            self.install_jwt_key(key, report);
        }
        if activate {
            if self.read().jwt.next.prepared().is_none() {
                let slot = self.read().jwt.preparation_slot();
                let key = self.prepare_jwt_key(slot, now)?;
                self.install_jwt_key(key, report);
            }
            self.write().jwt.rotate();
            self.activate_current_jwt(report);
        }
        Ok(())
    }

    /// Prepares an X.509 CA for `slot` (no state change): a new KeyManager key, then a
    /// self-signed certificate or one minted by the UpstreamAuthority, validated.
    fn prepare_x509_ca(&self, slot: SlotId, now: SystemTime) -> Result<PreparedX509Ca, CaError> {
        tracing::debug!(slot = %slot, "Preparing X509 CA");
        let td = &self.config.trust_domain;
        let key = self
            .key_manager
            .generate_key(&slot.x509_ca_key_id(), self.config.ca_key_type)?;
        let issue = CaError::issue("X509 CA");
        let invalid = CaError::validation("X509 CA");

        let (certificate, upstream_chain, roots) = match &self.upstream {
            None => {
                let serial = new_serial().map_err(|e| issue(e.to_string()))?;
                let (not_before, not_after) = capped_lifetime(now, self.config.ca_ttl, None);
                let params = self_signed_ca_params(
                    td,
                    &self.config.ca_subject,
                    serial,
                    key.public_key_raw(),
                    not_before,
                    not_after,
                )
                .map_err(|e| issue(e.to_string()))?;
                let cert: CertificateDer<'static> = params
                    .self_signed(&*key)
                    .map_err(|e| issue(e.to_string()))?
                    .into();
                verify::validate_x509_ca(&cert, td, key.public_key_der(), now).map_err(&invalid)?;
                (cert.clone(), Vec::new(), vec![cert])
            }
            Some(upstream) => {
                let serial = new_serial().map_err(|e| issue(e.to_string()))?;
                let csr = ca_csr_params(td, &self.config.ca_subject, serial)
                    .map_err(|e| issue(e.to_string()))?
                    .serialize_request(&*key)
                    .map_err(|e| issue(e.to_string()))?;
                let minted = upstream.mint_x509_ca(csr.der(), self.config.ca_ttl)?;
                let Some(cert) = minted.x509_ca_chain.first().cloned() else {
                    return Err(invalid(
                        "the upstream authority returned no certificate".into(),
                    ));
                };
                if minted.upstream_x509_roots.is_empty() {
                    return Err(invalid("the upstream authority returned no roots".into()));
                }
                verify::validate_x509_ca(&cert, td, key.public_key_der(), now).map_err(&invalid)?;
                verify::verify_ca_chain(&minted.x509_ca_chain, &minted.upstream_x509_roots, now)
                    .map_err(|e| invalid(format!("upstream chain: {e}")))?;
                (cert, minted.x509_ca_chain, minted.upstream_x509_roots)
            }
        };

        let ca = self.build_x509_ca(slot, key, certificate, upstream_chain, now)?;
        let roots = roots
            .into_iter()
            .map(|certificate| {
                let parsed = verify::parse_cert(&certificate).map_err(&invalid)?;
                let not_after = verify::not_after(&parsed);
                let authority_id = verify::subject_key_id(&parsed)
                    .map(|id| hex(&id))
                    .unwrap_or_default();
                drop(parsed);
                Ok(PublishedRoot {
                    certificate,
                    not_after,
                    authority_id,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        Ok(PreparedX509Ca { ca, roots })
    }

    /// Builds an X.509 CA from its certificate and KeyManager key: checks the subject,
    /// reads notAfter and the key identifiers, and makes the rcgen issuer.
    pub(crate) fn build_x509_ca(
        &self,
        slot: SlotId,
        key: Arc<ManagedKey>,
        certificate: CertificateDer<'static>,
        upstream_chain: Vec<CertificateDer<'static>>,
        issued_at: SystemTime,
    ) -> Result<X509Ca, CaError> {
        let invalid = CaError::validation("X509 CA");
        let parsed = verify::parse_cert(&certificate).map_err(&invalid)?;
        verify::check_simple_name(parsed.subject(), "the CA certificate's subject")
            .map_err(&invalid)?;
        let not_after = verify::not_after(&parsed);
        let subject_key_id = verify::subject_key_id(&parsed);
        let authority_id = hex(subject_key_id
            .as_deref()
            .unwrap_or(&profile::subject_key_id(key.public_key_raw())));
        let upstream_authority_id = self
            .upstream
            .as_ref()
            .and_then(|_| verify::authority_key_id(&parsed))
            .map(|id| hex(&id));
        drop(parsed);
        let issuer = Issuer::from_ca_cert_der(&certificate, SharedKey(Arc::clone(&key)))
            .map_err(|e| invalid(format!("unusable CA certificate: {e}")))?;
        Ok(X509Ca {
            slot,
            key,
            certificate,
            upstream_chain,
            issued_at,
            not_after,
            subject_key_id,
            authority_id,
            upstream_authority_id,
            issuer,
        })
    }

    /// Puts a prepared CA in its slot and publishes its roots.
    fn install_x509_ca(&self, prepared: PreparedX509Ca, report: &mut RotationReport) {
        let PreparedX509Ca { ca, roots } = prepared;
        let slot = ca.slot;
        let authority_id = ca.authority_id.clone();
        tracing::info!(
            slot = %slot,
            issued_at = %rfc3339(ca.issued_at),
            expiration = %rfc3339(ca.not_after),
            self_signed = self.upstream.is_none(),
            local_authority_id = %ca.authority_id,
            upstream_authority_id = ca.upstream_authority_id.as_deref().unwrap_or(""),
            "X509 CA prepared"
        );
        let mut state = self.write();
        let target = state.x509.slot_mut(slot);
        target.value = Some(Arc::new(ca));
        target.status = SlotStatus::Prepared;
        let mut changed = false;
        for root in roots {
            if !state
                .x509_roots
                .iter()
                .any(|r| r.certificate == root.certificate)
            {
                state.x509_roots.push(root);
                changed = true;
            }
        }
        if changed {
            state.x509_bundle = Arc::new(bundle_of(&self.config.trust_domain, &state.x509_roots));
            report.x509_authorities_changed = true;
        }
        report
            .events
            .push(RotationEvent::X509CaPrepared { slot, authority_id });
    }

    fn activate_current_x509(&self, report: &mut RotationReport) {
        let mut state = self.write();
        state.x509.current.status = SlotStatus::Active;
        if let Some(ca) = &state.x509.current.value {
            tracing::info!(
                slot = %ca.slot,
                issued_at = %rfc3339(ca.issued_at),
                expiration = %rfc3339(ca.not_after),
                local_authority_id = %ca.authority_id,
                upstream_authority_id = ca.upstream_authority_id.as_deref().unwrap_or(""),
                "X509 CA activated"
            );
            report.events.push(RotationEvent::X509CaActivated {
                slot: ca.slot,
                authority_id: ca.authority_id.clone(),
            });
        }
    }

    /// Prepares a JWT key for `slot` (no state change).
    fn prepare_jwt_key(&self, slot: SlotId, now: SystemTime) -> Result<JwtKey, CaError> {
        tracing::debug!(slot = %slot, "Preparing JWT key");
        let key = self
            .key_manager
            .generate_key(&slot.jwt_key_id(), self.config.jwt_key_type)?;
        let kid = new_kid().map_err(CaError::issue("JWT key"))?;
        let public_key = key.jwt_signing_key().public_key().clone();
        Ok(JwtKey {
            slot,
            key,
            kid,
            public_key,
            issued_at: now,
            not_after: now.checked_add(self.config.ca_ttl).unwrap_or(now),
        })
    }

    /// Puts a prepared JWT key in its slot and publishes it.
    fn install_jwt_key(&self, key: JwtKey, report: &mut RotationReport) {
        tracing::info!(
            slot = %key.slot,
            issued_at = %rfc3339(key.issued_at),
            expiration = %rfc3339(key.not_after),
            local_authority_id = %key.kid,
            "JWT key prepared"
        );
        let slot = key.slot;
        let kid = key.kid.clone();
        let authority = JwtAuthority {
            kid: key.kid.clone(),
            public_key_der: key.public_key_der().to_vec(),
            expires_at: key.not_after,
        };
        let mut state = self.write();
        let target = state.jwt.slot_mut(slot);
        target.value = Some(Arc::new(key));
        target.status = SlotStatus::Prepared;
        state.jwt_authorities.push(authority);
        report.jwt_authorities_changed = true;
        report
            .events
            .push(RotationEvent::JwtKeyPrepared { slot, kid });
    }

    fn activate_current_jwt(&self, report: &mut RotationReport) {
        let mut state = self.write();
        state.jwt.current.status = SlotStatus::Active;
        if let Some(key) = &state.jwt.current.value {
            tracing::info!(
                slot = %key.slot,
                issued_at = %rfc3339(key.issued_at),
                expiration = %rfc3339(key.not_after),
                local_authority_id = %key.kid,
                "JWT key activated"
            );
            report.events.push(RotationEvent::JwtKeyActivated {
                slot: key.slot,
                kid: key.kid.clone(),
            });
        }
    }

    /// Drops expired authorities from the published set, never the last one.
    fn prune_expired(&self, now: SystemTime, report: &mut RotationReport) {
        let mut state = self.write();
        let mut x509_changed = false;
        while let Some(index) = state.x509_roots.iter().position(|r| r.not_after < now) {
            if state.x509_roots.len() <= 1 {
                break;
            }
            let root = state.x509_roots.remove(index);
            report.events.push(RotationEvent::X509AuthorityExpired {
                authority_id: root.authority_id,
            });
            x509_changed = true;
        }
        if x509_changed {
            state.x509_bundle = Arc::new(bundle_of(&self.config.trust_domain, &state.x509_roots));
            report.x509_authorities_changed = true;
        }
        while let Some(index) = state
            .jwt_authorities
            .iter()
            .position(|a| a.expires_at < now)
        {
            if state.jwt_authorities.len() <= 1 {
                break;
            }
            let authority = state.jwt_authorities.remove(index);
            report
                .events
                .push(RotationEvent::JwtAuthorityExpired { kid: authority.kid });
            report.jwt_authorities_changed = true;
        }
    }

    // ---- bundle material -----------------------------------------------------------

    /// The X.509 authorities to publish in the trust bundle: the self-signed CAs
    /// (prepared, active and not yet expired old ones), or the upstream roots.
    pub fn x509_authorities(&self) -> Vec<CertificateDer<'static>> {
        self.read()
            .x509_roots
            .iter()
            .map(|r| r.certificate.clone())
            .collect()
    }

    /// The X.509 authorities as a bundle.
    pub fn x509_bundle(&self) -> X509Bundle {
        X509Bundle::clone(&self.read().x509_bundle)
    }

    /// The JWT authorities to publish (prepared, active and not yet expired old keys).
    pub fn jwt_authorities(&self) -> Vec<JwtAuthority> {
        self.read().jwt_authorities.clone()
    }

    /// The JWT authorities as a bundle. Keys that spiffe-core cannot use are skipped
    /// (never the case for keys this CA generates).
    pub fn jwt_bundle(&self) -> JwtBundle {
        let mut bundle = JwtBundle::new(self.config.trust_domain.clone());
        for authority in self.read().jwt_authorities.iter() {
            if let Ok(key) = PublicKey::from_spki_der(&authority.public_key_der) {
                let _ = bundle.add_authority(authority.kid.clone(), key);
            }
        }
        bundle
    }

    /// The trust domain's bundle: X.509 and JWT authorities.
    pub fn spiffe_bundle(&self) -> SpiffeBundle {
        SpiffeBundle::from_parts(self.x509_bundle(), self.jwt_bundle())
            .unwrap_or_else(|| SpiffeBundle::new(self.config.trust_domain.clone()))
    }

    /// The active X.509 CA.
    pub fn current_x509_ca(&self) -> Option<Arc<X509Ca>> {
        self.read().x509.current.active().cloned()
    }

    /// The prepared next X.509 CA, if any.
    pub fn next_x509_ca(&self) -> Option<Arc<X509Ca>> {
        self.read().x509.next.prepared().cloned()
    }

    /// The chain a TLS server presents above its leaf (see [`X509Ca::chain`]).
    pub fn current_x509_ca_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.current_x509_ca().map(|ca| ca.chain())
    }

    /// The active JWT key.
    pub fn current_jwt_key(&self) -> Option<Arc<JwtKey>> {
        self.read().jwt.current.active().cloned()
    }

    /// The prepared next JWT key, if any.
    pub fn next_jwt_key(&self) -> Option<Arc<JwtKey>> {
        self.read().jwt.next.prepared().cloned()
    }

    // ---- X509-SVIDs ----------------------------------------------------------------

    /// Signs a workload X509-SVID for `public_key_spki_der` (PKIX DER). `ttl` `None` or
    /// zero means `default_x509_svid_ttl`; the lifetime is capped at the CA's notAfter.
    /// The first DNS name is also the subject CN. Returns the leaf followed by the
    /// upstream chain (the root excluded).
    pub fn sign_workload_x509_svid(
        &self,
        public_key_spki_der: &[u8],
        spiffe_id: &SpiffeId,
        dns_names: &[String],
        ttl: Option<Duration>,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        let ttl = ttl
            .filter(|t| !t.is_zero())
            .unwrap_or(self.config.default_x509_svid_ttl);
        self.sign_x509_svid(
            "workload X509-SVID",
            public_key_spki_der,
            spiffe_id,
            dns_names,
            ttl,
        )
    }

    /// Signs an agent X509-SVID (lifetime `agent_ttl`).
    pub fn sign_agent_x509_svid(
        &self,
        public_key_spki_der: &[u8],
        spiffe_id: &SpiffeId,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        self.sign_x509_svid(
            "agent X509-SVID",
            public_key_spki_der,
            spiffe_id,
            &[],
            self.config.agent_ttl(),
        )
    }

    /// The server's own SPIFFE ID, `spiffe://<td>/spire/server`.
    pub fn server_id(&self) -> Result<SpiffeId, CaError> {
        SpiffeId::new(&self.config.trust_domain, SERVER_ID_PATH).map_err(|e| {
            CaError::InvalidSpiffeId {
                what: "X509-SVID",
                reason: e.to_string(),
            }
        })
    }

    /// Signs the server's X509-SVID (`spiffe://<td>/spire/server`, lifetime
    /// `default_x509_svid_ttl`).
    pub fn sign_server_x509_svid(
        &self,
        public_key_spki_der: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        let id = self.server_id()?;
        self.sign_x509_svid(
            "server X509-SVID",
            public_key_spki_der,
            &id,
            &[],
            self.config.default_x509_svid_ttl,
        )
    }

    /// Generates a server SVID key in memory (of `ca_key_type`, not in the KeyManager)
    /// and signs the server X509-SVID for it: what the TCP API and bundle endpoint serve.
    pub fn new_server_x509_svid(&self) -> Result<X509Svid, CaError> {
        let key = ManagedKey::generate("server-svid", self.config.ca_key_type)?;
        let chain = self.sign_server_x509_svid(key.public_key_der())?;
        X509Svid::from_parts(
            chain,
            rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()),
        )
        .map_err(|e| CaError::Validation {
            what: "server X509-SVID",
            reason: e.to_string(),
        })
    }

    /// Signs a workload X509-SVID from a PKCS#10 CSR: the CSR's signature is verified
    /// and only its public key is used; the ID and DNS names come from the caller (the
    /// registration entry), never from the CSR.
    pub fn sign_x509_svid_from_csr(
        &self,
        csr_der: &[u8],
        spiffe_id: &SpiffeId,
        dns_names: &[String],
        ttl: Option<Duration>,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        let spki = csr_public_key(csr_der)?;
        self.sign_workload_x509_svid(&spki, spiffe_id, dns_names, ttl)
    }

    fn sign_x509_svid(
        &self,
        what: &'static str,
        public_key_spki_der: &[u8],
        spiffe_id: &SpiffeId,
        dns_names: &[String],
        ttl: Duration,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        self.check_member("X509-SVID", spiffe_id)?;
        PublicKey::from_spki_der(public_key_spki_der)
            .map_err(|e| CaError::InvalidPublicKey(e.to_string()))?;
        let public_key = SubjectPublicKeyInfo::from_der(public_key_spki_der)
            .map_err(|e| CaError::InvalidPublicKey(e.to_string()))?;
        let (ca, bundle) = {
            let state = self.read();
            let ca = state
                .x509
                .current
                .active()
                .cloned()
                .ok_or(CaError::NoX509Ca)?;
            (ca, Arc::clone(&state.x509_bundle))
        };
        let now = self.clock.now();
        let issue = CaError::issue(what);

        let serial = new_serial().map_err(|e| issue(e.to_string()))?;
        let (not_before, not_after) = capped_lifetime(now, ttl, Some(ca.not_after));
        let mut params = x509_svid_params(
            spiffe_id,
            dns_names,
            serial,
            rcgen::PublicKeyData::der_bytes(&public_key),
            not_before,
            not_after,
        )
        .map_err(|e| issue(e.to_string()))?;
        params.use_authority_key_identifier_extension = ca.subject_key_id.is_some();
        let leaf = params
            .signed_by(&public_key, &ca.issuer)
            .map_err(|e| issue(e.to_string()))?;

        let mut chain = Vec::with_capacity(1 + ca.upstream_chain.len());
        chain.push(CertificateDer::from(leaf));
        chain.extend(ca.upstream_chain.iter().cloned());
        verify::validate_x509_svid(&chain, &bundle, spiffe_id, now)
            .map_err(CaError::validation(what))?;
        tracing::debug!(
            spiffe_id = %spiffe_id,
            expires_at = %rfc3339(profile::truncate_to_second(not_after)),
            "Signed X509 SVID"
        );
        Ok(chain)
    }

    // ---- JWT-SVIDs -----------------------------------------------------------------

    /// Signs a JWT-SVID: `sub` = the ID, `aud` = the non-empty audiences (at least one),
    /// `exp` = now + `ttl` (`None`/zero: `default_jwt_svid_ttl`) capped at the key's
    /// expiry, `iat` = now, and `iss` = `jwt_issuer` when set. Header
    /// `{"alg","kid","typ":"JWT"}`.
    pub fn sign_jwt_svid(
        &self,
        spiffe_id: &SpiffeId,
        audience: &[String],
        ttl: Option<Duration>,
    ) -> Result<String, CaError> {
        self.sign_jwt_svid_with_options(spiffe_id, audience, ttl, false)
    }

    /// [`sign_jwt_svid`](Self::sign_jwt_svid), adding a random `jti` claim (the
    /// base64url encoding of a UUIDv4) when `include_jti` is set (entry attribute
    /// `jwt_svid_include_jti`).
    pub fn sign_jwt_svid_with_options(
        &self,
        spiffe_id: &SpiffeId,
        audience: &[String],
        ttl: Option<Duration>,
        include_jti: bool,
    ) -> Result<String, CaError> {
        if self.config.disable_jwt_svids {
            return Err(CaError::JwtDisabled);
        }
        self.check_member("JWT-SVID", spiffe_id)?;
        let audience: Vec<String> = audience.iter().filter(|a| !a.is_empty()).cloned().collect();
        if audience.is_empty() {
            return Err(CaError::EmptyAudience);
        }
        let key = self.current_jwt_key().ok_or(CaError::NoJwtKey)?;
        let now = self.clock.now();
        let ttl = ttl
            .filter(|t| !t.is_zero())
            .unwrap_or(self.config.default_jwt_svid_ttl);
        let expires_at = now.checked_add(ttl).unwrap_or(now).min(key.not_after);

        let mut claims = JwtSvidClaims::new(
            spiffe_id.clone(),
            audience.clone(),
            unix_secs(expires_at),
            unix_secs(now),
        );
        if let Some(issuer) = self.config.jwt_issuer.as_deref().filter(|i| !i.is_empty()) {
            claims.extra.insert(
                "iss".to_owned(),
                serde_json::Value::String(issuer.to_owned()),
            );
        }
        if include_jti {
            use base64::Engine as _;
            let jti = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(uuid::Uuid::new_v4().as_bytes());
            claims
                .extra
                .insert("jti".to_owned(), serde_json::Value::String(jti));
        }
        let token =
            spiffe_core::jwt::sign(key.key.jwt_signing_key(), &key.kid, &claims).map_err(|e| {
                CaError::Issue {
                    what: "JWT-SVID",
                    reason: e.to_string(),
                }
            })?;
        let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
        verify::validate_jwt_svid(
            &token,
            &self.config.trust_domain,
            &key.kid,
            &key.public_key,
            &audience,
            spiffe_id,
            now,
        )
        .map_err(CaError::validation("JWT-SVID"))?;
        Ok(token)
    }

    /// SPIRE's `api.VerifyTrustDomainMemberID`: the ID is in this trust domain and is not
    /// its root ID.
    fn check_member(&self, what: &'static str, id: &SpiffeId) -> Result<(), CaError> {
        let td = &self.config.trust_domain;
        if !id.is_member_of(td) {
            return Err(CaError::InvalidSpiffeId {
                what,
                reason: format!(
                    "{:?} is not a member of trust domain {:?}",
                    id.as_str(),
                    td.name()
                ),
            });
        }
        if id.is_root() {
            return Err(CaError::InvalidSpiffeId {
                what,
                reason: format!(
                    "{:?} is not a member of trust domain {:?}; path is empty",
                    id.as_str(),
                    td.name()
                ),
            });
        }
        Ok(())
    }
}

/// A prepared X.509 CA and the roots it brings to the bundle.
struct PreparedX509Ca {
    ca: X509Ca,
    roots: Vec<PublishedRoot>,
}

/// Verifies a PKCS#10 CSR's signature and returns its public key (PKIX DER).
pub fn csr_public_key(csr_der: &[u8]) -> Result<Vec<u8>, CaError> {
    verify::parse_and_verify_csr(csr_der)
        .map(|csr| csr.spki_der)
        .map_err(CaError::InvalidCsr)
}

fn bundle_of(trust_domain: &TrustDomain, roots: &[PublishedRoot]) -> X509Bundle {
    let mut bundle = X509Bundle::new(trust_domain.clone());
    for root in roots {
        // Every root parsed when it was published.
        let _ = bundle.add_authority(root.certificate.clone());
    }
    bundle
}

/// A JWT key ID: 32 characters from `[a-zA-Z0-9]`, as SPIRE's `newKeyID`.
fn new_kid() -> Result<String, String> {
    let mut bytes = [0u8; KID_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "unable to generate a key ID".to_owned())?;
    Ok(bytes
        .iter()
        .map(|b| char::from(KID_ALPHABET[usize::from(*b) % KID_ALPHABET.len()]))
        .collect())
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// RFC 3339 for logs.
fn rfc3339(t: SystemTime) -> String {
    profile::to_offset(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{}", unix_secs(t)))
}

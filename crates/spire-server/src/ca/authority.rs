//! Operator control of the local authorities (spec server.md §3.4 LocalAuthority, §4.9):
//! show the slots, prepare the next authority now, activate it, and the checks that
//! guard taint and revoke, for X.509 CAs and JWT keys. The error messages are SPIRE's
//! (`pkg/server/api/localauthority/v1`).
//!
//! Taint and revoke themselves change the trust domain's bundle in the datastore (the
//! API does it, so agents hear of it through the change feed); here the CA only checks
//! that the authority named is the OLD one and, on revoke, stops publishing it.

use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;

use super::slot::{JwtKey, Slot, SlotStatus, X509Ca};
use super::{RotationReport, ServerCa, bundle_of};

/// The state of one authority, as LocalAuthority reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityState {
    /// The authority ID: hex SKID for an X.509 CA, `kid` for a JWT key.
    pub authority_id: String,
    /// When the authority expires.
    pub expires_at: SystemTime,
    /// The hex SKID of the upstream authority that signed an X.509 CA (empty when
    /// self-signed, and for JWT keys).
    pub upstream_authority_subject_key_id: String,
}

/// The authorities of one kind, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorityStates {
    /// The signing authority.
    pub active: Option<AuthorityState>,
    /// The prepared next authority.
    pub prepared: Option<AuthorityState>,
    /// The rotated-out authority.
    pub old: Option<AuthorityState>,
}

/// Why a local authority operation was refused; each variant maps to a gRPC code.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorityError {
    /// No authority is active yet (`Unavailable`).
    #[error("server is initializing")]
    Initializing,
    /// `disable_jwt_svids` is set (`Unimplemented`).
    #[error("JWT functionality is disabled")]
    JwtDisabled,
    /// The request names the wrong authority (`InvalidArgument`).
    #[error("{0}")]
    InvalidArgument(String),
    /// Not allowed in this configuration (`FailedPrecondition`).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The operation failed (`Internal`).
    #[error("{0}")]
    Internal(String),
}

fn invalid(message: &str) -> AuthorityError {
    AuthorityError::InvalidArgument(message.to_owned())
}

fn status_name(status: SlotStatus) -> &'static str {
    match status {
        SlotStatus::Prepared => "PREPARED",
        SlotStatus::Active => "ACTIVE",
        SlotStatus::Old => "OLD",
    }
}

/// What an authority exposes to the operations here.
trait Described: super::slot::Authority {
    fn state(&self) -> AuthorityState;
    fn id(&self) -> &str;
}

impl Described for X509Ca {
    fn state(&self) -> AuthorityState {
        AuthorityState {
            authority_id: self.authority_id.clone(),
            expires_at: self.not_after,
            upstream_authority_subject_key_id: self
                .upstream_authority_id
                .clone()
                .unwrap_or_default(),
        }
    }

    fn id(&self) -> &str {
        &self.authority_id
    }
}

impl Described for JwtKey {
    fn state(&self) -> AuthorityState {
        AuthorityState {
            authority_id: self.kid.clone(),
            expires_at: self.not_after,
            upstream_authority_subject_key_id: String::new(),
        }
    }

    fn id(&self) -> &str {
        &self.kid
    }
}

fn states<T: Described>(
    current: &Slot<T>,
    next: &Slot<T>,
) -> Result<AuthorityStates, AuthorityError> {
    let Some(active) = current.active() else {
        return Err(AuthorityError::Initializing);
    };
    let mut out = AuthorityStates {
        active: Some(active.state()),
        ..Default::default()
    };
    if let Some(value) = &next.value {
        match next.status {
            SlotStatus::Prepared => out.prepared = Some(value.state()),
            SlotStatus::Old => out.old = Some(value.state()),
            SlotStatus::Active => {}
        }
    }
    Ok(out)
}

/// The checks before activating `authority_id`: it must be the PREPARED next slot.
fn check_activate<T: Described>(next: &Slot<T>, authority_id: &str) -> Result<(), AuthorityError> {
    if authority_id.is_empty() {
        return Err(invalid("no authority ID provided"));
    }
    if next.value.as_ref().map(|v| v.id()) != Some(authority_id) {
        return Err(invalid("unexpected authority ID"));
    }
    if next.status != SlotStatus::Prepared {
        return Err(AuthorityError::Internal(format!(
            "only Prepared authorities can be activated: unsupported local authority status: {}",
            status_name(next.status)
        )));
    }
    Ok(())
}

/// The checks before tainting `authority_id`: it must be the OLD next slot.
fn check_taint<T: Described>(
    current: &Slot<T>,
    next: &Slot<T>,
    authority_id: &str,
) -> Result<Arc<T>, AuthorityError> {
    if authority_id.is_empty() {
        return Err(invalid("no authority ID provided"));
    }
    if current.value.as_ref().map(|v| v.id()) == Some(authority_id) {
        return Err(invalid("unable to taint current local authority"));
    }
    let Some(value) = next.value.as_ref().filter(|v| v.id() == authority_id) else {
        return Err(invalid("unexpected authority ID"));
    };
    if next.status != SlotStatus::Old {
        return Err(invalid(&format!(
            "only Old local authorities can be tainted: unsupported local authority status: {}",
            status_name(next.status)
        )));
    }
    Ok(Arc::clone(value))
}

impl ServerCa {
    fn rotation_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.rotation
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_jwt_enabled(&self) -> Result<(), AuthorityError> {
        if self.config.disable_jwt_svids {
            Err(AuthorityError::JwtDisabled)
        } else {
            Ok(())
        }
    }

    // ---- X.509 ---------------------------------------------------------------------

    /// The X.509 authorities: active, prepared, old.
    pub fn x509_authority_states(&self) -> Result<AuthorityStates, AuthorityError> {
        let state = self.read();
        states(&state.x509.current, &state.x509.next)
    }

    /// Prepares the next X.509 CA now (replacing an OLD one in the next slot); its
    /// authority is published at once. Returns its state and what changed.
    pub fn prepare_x509_authority(
        &self,
    ) -> Result<(AuthorityState, RotationReport), AuthorityError> {
        let _rotation = self.rotation_lock();
        if self.read().x509.current.active().is_none() {
            return Err(AuthorityError::Initializing);
        }
        let mut report = RotationReport::default();
        let slot = self.read().x509.next.id;
        let prepared = self.prepare_x509_ca(slot, self.clock.now()).map_err(|e| {
            AuthorityError::Internal(format!("failed to prepare X.509 authority: {e}"))
        })?;
        let state = prepared.ca.state();
        self.install_x509_ca(prepared, &mut report);
        Ok((state, report))
    }

    /// Activates the prepared next X.509 CA `authority_id`; the current one becomes OLD.
    pub fn activate_x509_authority(
        &self,
        authority_id: &str,
    ) -> Result<(AuthorityState, RotationReport), AuthorityError> {
        let _rotation = self.rotation_lock();
        check_activate(&self.read().x509.next, authority_id)?;
        let mut report = RotationReport::default();
        self.write().x509.rotate();
        self.activate_current_x509(&mut report);
        let state = self
            .read()
            .x509
            .current
            .active()
            .map(|ca| ca.state())
            .ok_or_else(|| AuthorityError::Internal("failed to activate".into()))?;
        Ok((state, report))
    }

    /// Checks that the X.509 authority `authority_id` may be tainted (it is the OLD
    /// one, and no UpstreamAuthority is configured); returns it.
    pub fn x509_authority_to_taint(
        &self,
        authority_id: &str,
    ) -> Result<Arc<X509Ca>, AuthorityError> {
        if self.is_upstream() {
            return Err(AuthorityError::FailedPrecondition(
                "local authority can't be tainted if there is an upstream authority".into(),
            ));
        }
        let state = self.read();
        check_taint(&state.x509.current, &state.x509.next, authority_id)
    }

    /// Checks that the X.509 authority `authority_id` may be revoked (it is the OLD
    /// one, and no UpstreamAuthority is configured); returns it.
    pub fn x509_authority_to_revoke(
        &self,
        authority_id: &str,
    ) -> Result<Arc<X509Ca>, AuthorityError> {
        if self.is_upstream() {
            return Err(AuthorityError::FailedPrecondition(
                "local authority can't be revoked if there is an upstream authority".into(),
            ));
        }
        let state = self.read();
        let reason = match () {
            () if authority_id.is_empty() => "no authority ID provided",
            () if state.x509.current.value.as_ref().map(|v| v.id()) == Some(authority_id) => {
                "unable to use current authority"
            }
            () if state.x509.next.value.as_ref().map(|v| v.id()) != Some(authority_id)
                || state.x509.next.status != SlotStatus::Old =>
            {
                "only Old local authority can be revoked"
            }
            () => {
                return state
                    .x509
                    .next
                    .value
                    .clone()
                    .ok_or_else(|| invalid("invalid authority ID"));
            }
        };
        Err(invalid(&format!("invalid authority ID: {reason}")))
    }

    /// Checks that the upstream authority with subject key ID `subject_key_id` (lowercase
    /// hex) may be tainted or revoked, as SPIRE's `validateUpstreamAuthoritySubjectKey`:
    /// an UpstreamAuthority is configured (FailedPrecondition otherwise), and the key
    /// signed the OLD local authority but not the active one. The error message is the
    /// reason alone; callers prefix it.
    pub fn check_x509_upstream_authority(
        &self,
        subject_key_id: &str,
    ) -> Result<(), AuthorityError> {
        if !self.is_upstream() {
            return Err(AuthorityError::FailedPrecondition(
                "upstream authority is not configured".into(),
            ));
        }
        if subject_key_id.is_empty() {
            return Err(invalid("no subject key ID provided"));
        }
        let state = self.read();
        let upstream_of = |slot: &Slot<X509Ca>| {
            slot.value
                .as_ref()
                .and_then(|ca| ca.upstream_authority_id.clone())
                .unwrap_or_default()
        };
        if upstream_of(&state.x509.current) == subject_key_id {
            return Err(invalid(
                "unable to use upstream authority singing current authority",
            ));
        }
        if upstream_of(&state.x509.next) != subject_key_id {
            return Err(invalid(
                "upstream authority didn't sign the old local authority",
            ));
        }
        if state.x509.next.status == SlotStatus::Prepared {
            return Err(invalid(
                "only upstream authorities signing an old authority can be used",
            ));
        }
        Ok(())
    }

    /// Stops publishing the X.509 root whose authority ID is `authority_id` (after a
    /// revoke, so the next publication does not put it back).
    pub fn forget_x509_authority(&self, authority_id: &str) {
        let mut state = self.write();
        let before = state.x509_roots.len();
        state.x509_roots.retain(|r| r.authority_id != authority_id);
        if state.x509_roots.len() != before {
            state.x509_bundle = Arc::new(bundle_of(&self.config.trust_domain, &state.x509_roots));
        }
    }

    // ---- JWT -----------------------------------------------------------------------

    /// The JWT authorities: active, prepared, old.
    pub fn jwt_authority_states(&self) -> Result<AuthorityStates, AuthorityError> {
        self.check_jwt_enabled()?;
        let state = self.read();
        states(&state.jwt.current, &state.jwt.next)
    }

    /// Prepares the next JWT key now; it is published at once.
    pub fn prepare_jwt_authority(
        &self,
    ) -> Result<(AuthorityState, RotationReport), AuthorityError> {
        self.check_jwt_enabled()?;
        let _rotation = self.rotation_lock();
        if self.read().jwt.current.active().is_none() {
            return Err(AuthorityError::Initializing);
        }
        let mut report = RotationReport::default();
        let slot = self.read().jwt.next.id;
        let key = self.prepare_jwt_key(slot, self.clock.now()).map_err(|e| {
            AuthorityError::Internal(format!("failed to prepare JWT authority: {e}"))
        })?;
        let state = key.state();
        self.install_jwt_key(key, &mut report);
        Ok((state, report))
    }

    /// Activates the prepared next JWT key `authority_id`; the current one becomes OLD.
    pub fn activate_jwt_authority(
        &self,
        authority_id: &str,
    ) -> Result<(AuthorityState, RotationReport), AuthorityError> {
        self.check_jwt_enabled()?;
        let _rotation = self.rotation_lock();
        check_activate(&self.read().jwt.next, authority_id)?;
        let mut report = RotationReport::default();
        self.write().jwt.rotate();
        self.activate_current_jwt(&mut report);
        let state = self
            .read()
            .jwt
            .current
            .active()
            .map(|key| key.state())
            .ok_or_else(|| AuthorityError::Internal("failed to activate".into()))?;
        Ok((state, report))
    }

    /// Checks that the JWT key `authority_id` may be tainted (it is the OLD one).
    pub fn jwt_authority_to_taint(
        &self,
        authority_id: &str,
    ) -> Result<Arc<JwtKey>, AuthorityError> {
        self.check_jwt_enabled()?;
        let state = self.read();
        check_taint(&state.jwt.current, &state.jwt.next, authority_id)
    }

    /// Checks that the JWT key `authority_id` is neither the current nor the prepared
    /// one (SPIRE then requires it to be in the bundle, which the caller checks).
    pub fn check_jwt_authority_to_revoke(&self, authority_id: &str) -> Result<(), AuthorityError> {
        self.check_jwt_enabled()?;
        let state = self.read();
        let reason = if authority_id.is_empty() {
            "no authority ID provided"
        } else if state.jwt.next.value.as_ref().map(|v| v.id()) == Some(authority_id)
            && state.jwt.next.status == SlotStatus::Prepared
        {
            "unable to use a prepared key"
        } else if state.jwt.current.value.as_ref().map(|v| v.id()) == Some(authority_id) {
            "unable to use current authority"
        } else {
            return Ok(());
        };
        Err(invalid(&format!("invalid authority ID: {reason}")))
    }

    /// Stops publishing the JWT key `kid` (after a revoke).
    pub fn forget_jwt_authority(&self, kid: &str) {
        self.write().jwt_authorities.retain(|a| a.kid != kid);
    }
}

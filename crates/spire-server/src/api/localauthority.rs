//! `spire.api.server.localauthority.v1.LocalAuthority` (server.md §3.4, §4.9): show,
//! prepare, activate, taint and revoke the server's X.509 CAs and JWT keys. Local or
//! admin callers only (the authorization layer enforces it).
//!
//! Prepare and activate change the CA and are written to the bundle and the CA journal
//! before the reply; taint and revoke change the trust domain's bundle in the datastore,
//! whose change feed notifies agents. After each change the `changed` signal tells the
//! server to refresh its TLS trust store. WIT authorities are not managed
//! (`Unimplemented`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use spire_proto::spire::api::server::localauthority::v1 as pb;
use spire_proto::spire::api::server::localauthority::v1::local_authority_server::LocalAuthority;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::ApiContext;
use crate::ca::{self, AuthorityError, AuthorityState, AuthorityStates};

/// The LocalAuthority service.
#[derive(Clone)]
pub struct LocalAuthorityService {
    ctx: Arc<ApiContext>,
    changed: Arc<Notify>,
}

impl LocalAuthorityService {
    /// The service over the shared API context; `changed` is signalled after every
    /// change to the CA or the bundle.
    pub fn new(ctx: Arc<ApiContext>, changed: Arc<Notify>) -> Self {
        LocalAuthorityService { ctx, changed }
    }

    fn td(&self) -> &str {
        self.ctx.trust_domain.name()
    }

    /// Publishes the CA's authorities and writes the CA journal, then signals.
    async fn commit_ca_change(&self) -> Result<(), Status> {
        ca::publish::append(&self.ctx.store, &self.ctx.ca)
            .await
            .map_err(|e| internal("failed to publish the bundle", &e))?;
        if let Err(e) = ca::journal::save(&self.ctx.store, &self.ctx.ca).await {
            tracing::error!(error = %e, "Unable to write the CA journal");
        }
        self.changed.notify_one();
        Ok(())
    }
}

impl LocalAuthorityService {
    /// SPIRE's upstream authority checks; an invalid key ID reads `<prefix>: <reason>`.
    fn check_upstream(&self, skid: &str, prefix: &str) -> Result<(), Status> {
        self.ctx
            .ca
            .check_x509_upstream_authority(skid)
            .map_err(|e| match e {
                AuthorityError::InvalidArgument(reason) => {
                    Status::invalid_argument(format!("{prefix}: {reason}"))
                }
                other => status_of(other),
            })
    }

    /// The public key (PKIX DER) of the root in the stored bundle whose subject key ID
    /// is `skid` (lowercase hex).
    async fn upstream_root_key(&self, skid: &str) -> Result<Vec<u8>, String> {
        let bundle = self
            .ctx
            .store
            .fetch_bundle(self.td())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no bundle found".to_owned())?;
        bundle
            .x509_authorities
            .iter()
            .find_map(|root| {
                let (_, cert) = X509Certificate::from_der(&root.asn1).ok()?;
                let root_skid =
                    cert.extensions()
                        .iter()
                        .find_map(|ext| match ext.parsed_extension() {
                            ParsedExtension::SubjectKeyIdentifier(id) => Some(hex_lower(id.0)),
                            _ => None,
                        })?;
                (root_skid == skid).then(|| cert.public_key().raw.to_vec())
            })
            .ok_or_else(|| "no ca found with provided subject key ID".to_owned())
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn internal(message: &str, error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "{message}");
    Status::internal(format!("{message}: {error}"))
}

fn status_of(error: AuthorityError) -> Status {
    let message = error.to_string();
    match error {
        AuthorityError::Initializing => Status::unavailable(message),
        AuthorityError::JwtDisabled => Status::unimplemented(message),
        AuthorityError::InvalidArgument(_) => Status::invalid_argument(message),
        AuthorityError::FailedPrecondition(_) => Status::failed_precondition(message),
        _ => Status::internal(message),
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn to_proto(state: AuthorityState) -> pb::AuthorityState {
    pb::AuthorityState {
        authority_id: state.authority_id,
        expires_at: unix(state.expires_at),
        upstream_authority_subject_key_id: state.upstream_authority_subject_key_id,
    }
}

fn states_to_proto(
    states: AuthorityStates,
) -> (
    Option<pb::AuthorityState>,
    Option<pb::AuthorityState>,
    Option<pb::AuthorityState>,
) {
    (
        states.active.map(to_proto),
        states.prepared.map(to_proto),
        states.old.map(to_proto),
    )
}

fn wit_unimplemented() -> Status {
    Status::unimplemented("WIT authorities are not supported by spire-rs")
}

#[tonic::async_trait]
impl LocalAuthority for LocalAuthorityService {
    async fn get_jwt_authority_state(
        &self,
        _request: Request<pb::GetJwtAuthorityStateRequest>,
    ) -> Result<Response<pb::GetJwtAuthorityStateResponse>, Status> {
        let (active, prepared, old) =
            states_to_proto(self.ctx.ca.jwt_authority_states().map_err(status_of)?);
        Ok(Response::new(pb::GetJwtAuthorityStateResponse {
            active,
            prepared,
            old,
        }))
    }

    async fn prepare_jwt_authority(
        &self,
        _request: Request<pb::PrepareJwtAuthorityRequest>,
    ) -> Result<Response<pb::PrepareJwtAuthorityResponse>, Status> {
        let (state, _) = self.ctx.ca.prepare_jwt_authority().map_err(status_of)?;
        self.commit_ca_change().await?;
        let mut state = to_proto(state);
        state.upstream_authority_subject_key_id.clear();
        Ok(Response::new(pb::PrepareJwtAuthorityResponse {
            prepared_authority: Some(state),
        }))
    }

    async fn activate_jwt_authority(
        &self,
        request: Request<pb::ActivateJwtAuthorityRequest>,
    ) -> Result<Response<pb::ActivateJwtAuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        let (state, _) = self.ctx.ca.activate_jwt_authority(&id).map_err(status_of)?;
        self.commit_ca_change().await?;
        Ok(Response::new(pb::ActivateJwtAuthorityResponse {
            activated_authority: Some(to_proto(state)),
        }))
    }

    async fn taint_jwt_authority(
        &self,
        request: Request<pb::TaintJwtAuthorityRequest>,
    ) -> Result<Response<pb::TaintJwtAuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        let key = self.ctx.ca.jwt_authority_to_taint(&id).map_err(status_of)?;
        self.ctx
            .store
            .taint_jwt_key(self.td(), key.kid())
            .await
            .map_err(|e| internal("failed to taint JWT authority", &e))?;
        tracing::info!(local_authority_id = %id, "JWT authority tainted successfully");
        self.changed.notify_one();
        Ok(Response::new(pb::TaintJwtAuthorityResponse {
            tainted_authority: Some(pb::AuthorityState {
                authority_id: key.kid().to_owned(),
                ..Default::default()
            }),
        }))
    }

    async fn revoke_jwt_authority(
        &self,
        request: Request<pb::RevokeJwtAuthorityRequest>,
    ) -> Result<Response<pb::RevokeJwtAuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        self.ctx
            .ca
            .check_jwt_authority_to_revoke(&id)
            .map_err(status_of)?;
        let stored = self
            .ctx
            .store
            .fetch_bundle(self.td())
            .await
            .map_err(|e| internal("failed to revoke JWT authority", &e))?;
        let in_bundle = stored.is_some_and(|b| b.jwt_authorities.iter().any(|k| k.key_id == id));
        if !in_bundle {
            return Err(Status::invalid_argument(
                "invalid authority ID: no JWT authority found with provided authority ID",
            ));
        }
        self.ctx
            .store
            .revoke_jwt_key(self.td(), &id)
            .await
            .map_err(|e| internal("failed to revoke JWT authority", &e))?;
        self.ctx.ca.forget_jwt_authority(&id);
        tracing::info!(local_authority_id = %id, "JWT authority revoked successfully");
        self.changed.notify_one();
        Ok(Response::new(pb::RevokeJwtAuthorityResponse {
            revoked_authority: Some(pb::AuthorityState {
                authority_id: id,
                ..Default::default()
            }),
        }))
    }

    async fn get_x509_authority_state(
        &self,
        _request: Request<pb::GetX509AuthorityStateRequest>,
    ) -> Result<Response<pb::GetX509AuthorityStateResponse>, Status> {
        let (active, prepared, old) =
            states_to_proto(self.ctx.ca.x509_authority_states().map_err(status_of)?);
        Ok(Response::new(pb::GetX509AuthorityStateResponse {
            active,
            prepared,
            old,
        }))
    }

    async fn prepare_x509_authority(
        &self,
        _request: Request<pb::PrepareX509AuthorityRequest>,
    ) -> Result<Response<pb::PrepareX509AuthorityResponse>, Status> {
        let (state, _) = self.ctx.ca.prepare_x509_authority().map_err(status_of)?;
        self.commit_ca_change().await?;
        Ok(Response::new(pb::PrepareX509AuthorityResponse {
            prepared_authority: Some(to_proto(state)),
        }))
    }

    async fn activate_x509_authority(
        &self,
        request: Request<pb::ActivateX509AuthorityRequest>,
    ) -> Result<Response<pb::ActivateX509AuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        let (state, _) = self
            .ctx
            .ca
            .activate_x509_authority(&id)
            .map_err(status_of)?;
        self.commit_ca_change().await?;
        Ok(Response::new(pb::ActivateX509AuthorityResponse {
            activated_authority: Some(to_proto(state)),
        }))
    }

    async fn taint_x509_authority(
        &self,
        request: Request<pb::TaintX509AuthorityRequest>,
    ) -> Result<Response<pb::TaintX509AuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        let old = self
            .ctx
            .ca
            .x509_authority_to_taint(&id)
            .map_err(status_of)?;
        self.ctx
            .store
            .taint_x509_authority(self.td(), old.key().public_key_der())
            .await
            .map_err(|e| internal("failed to taint X.509 authority", &e))?;
        tracing::info!(local_authority_id = %id, "X.509 authority tainted successfully");
        self.changed.notify_one();
        Ok(Response::new(pb::TaintX509AuthorityResponse {
            tainted_authority: Some(pb::AuthorityState {
                authority_id: old.authority_id().to_owned(),
                expires_at: unix(old.not_after()),
                upstream_authority_subject_key_id: old
                    .upstream_authority_id()
                    .unwrap_or_default()
                    .to_owned(),
            }),
        }))
    }

    async fn taint_x509_upstream_authority(
        &self,
        request: Request<pb::TaintX509UpstreamAuthorityRequest>,
    ) -> Result<Response<pb::TaintX509UpstreamAuthorityResponse>, Status> {
        let skid = request.into_inner().subject_key_id.to_lowercase();
        self.check_upstream(&skid, "provided subject key id is not valid")?;
        let public_key = self
            .upstream_root_key(&skid)
            .await
            .map_err(|e| internal("failed to taint upstream authority", &e))?;
        self.ctx
            .store
            .taint_x509_authority(self.td(), &public_key)
            .await
            .map_err(|e| internal("failed to taint upstream authority", &e))?;
        tracing::info!(subject_key_id = %skid, "X.509 upstream authority tainted successfully");
        self.changed.notify_one();
        Ok(Response::new(pb::TaintX509UpstreamAuthorityResponse {
            upstream_authority_subject_key_id: skid,
        }))
    }

    async fn revoke_x509_authority(
        &self,
        request: Request<pb::RevokeX509AuthorityRequest>,
    ) -> Result<Response<pb::RevokeX509AuthorityResponse>, Status> {
        let id = request.into_inner().authority_id;
        let old = self
            .ctx
            .ca
            .x509_authority_to_revoke(&id)
            .map_err(status_of)?;
        let public_key = old.key().public_key_der();
        // Only a tainted root may be revoked: check before the CA stops publishing it.
        let stored = self
            .ctx
            .store
            .fetch_bundle(self.td())
            .await
            .map_err(|e| internal("failed to revoke X.509 authority", &e))?;
        let tainted = stored.is_some_and(|b| {
            b.x509_authorities
                .iter()
                .any(|r| r.tainted && r.asn1.as_slice() == old.certificate().as_ref())
        });
        if tainted {
            self.ctx.ca.forget_x509_authority(&id);
        }
        self.ctx
            .store
            .revoke_x509_authority(self.td(), public_key)
            .await
            .map_err(|e| internal("failed to revoke X.509 authority", &e))?;
        tracing::info!(local_authority_id = %id, "X.509 authority revoked successfully");
        self.changed.notify_one();
        Ok(Response::new(pb::RevokeX509AuthorityResponse {
            revoked_authority: Some(pb::AuthorityState {
                authority_id: id,
                ..Default::default()
            }),
        }))
    }

    async fn revoke_x509_upstream_authority(
        &self,
        request: Request<pb::RevokeX509UpstreamAuthorityRequest>,
    ) -> Result<Response<pb::RevokeX509UpstreamAuthorityResponse>, Status> {
        let skid = request.into_inner().subject_key_id.to_lowercase();
        self.check_upstream(&skid, "invalid subject key ID")?;
        let public_key = self
            .upstream_root_key(&skid)
            .await
            .map_err(|e| internal("failed to revoke X.509 upstream authority", &e))?;
        self.ctx
            .store
            .revoke_x509_authority(self.td(), &public_key)
            .await
            .map_err(|e| internal("failed to revoke X.509 upstream authority", &e))?;
        // The CA must not publish the revoked root again.
        self.ctx.ca.forget_x509_authority(&skid);
        tracing::info!(subject_key_id = %skid, "X.509 upstream authority successfully revoked");
        self.changed.notify_one();
        Ok(Response::new(pb::RevokeX509UpstreamAuthorityResponse {
            upstream_authority_subject_key_id: skid,
        }))
    }

    async fn get_wit_authority_state(
        &self,
        _request: Request<pb::GetWitAuthorityStateRequest>,
    ) -> Result<Response<pb::GetWitAuthorityStateResponse>, Status> {
        Err(wit_unimplemented())
    }

    async fn prepare_wit_authority(
        &self,
        _request: Request<pb::PrepareWitAuthorityRequest>,
    ) -> Result<Response<pb::PrepareWitAuthorityResponse>, Status> {
        Err(wit_unimplemented())
    }

    async fn activate_wit_authority(
        &self,
        _request: Request<pb::ActivateWitAuthorityRequest>,
    ) -> Result<Response<pb::ActivateWitAuthorityResponse>, Status> {
        Err(wit_unimplemented())
    }

    async fn taint_wit_authority(
        &self,
        _request: Request<pb::TaintWitAuthorityRequest>,
    ) -> Result<Response<pb::TaintWitAuthorityResponse>, Status> {
        Err(wit_unimplemented())
    }

    async fn revoke_wit_authority(
        &self,
        _request: Request<pb::RevokeWitAuthorityRequest>,
    ) -> Result<Response<pb::RevokeWitAuthorityResponse>, Status> {
        Err(wit_unimplemented())
    }
}

//! What a downstream SPIRE server (a caller whose X509-SVID matches a registration entry
//! with `downstream = true`) asks of this server (server.md §3.4): a CA certificate for
//! its own X.509 CA (`SVID.NewDownstreamX509CA`) and the publication of its JWT keys in
//! this trust domain's bundle (`Bundle.PublishJWTAuthority`).

use std::time::Duration;

use spiffe_core::SpiffeId;
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::types;
use tonic::{Response, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{ApiContext, store_status};
use crate::ca::{CaError, csr_public_key};
use crate::datastore::{Bundle, JwtKey, ListEntriesRequest};

/// Signs the downstream server's CA CSR with this server's active CA.
///
/// The lifetime is the request's `preferred_ttl` when set (SPIRE's current behaviour),
/// else the caller's downstream entry's `x509_svid_ttl`, else `default_x509_svid_ttl`;
/// always capped at this server's CA expiry. Returns the new CA with the chain above it
/// and the trust domain's X.509 authorities.
pub async fn new_downstream_x509_ca(
    ctx: &ApiContext,
    caller: &SpiffeId,
    request: &svidpb::NewDownstreamX509caRequest,
) -> Result<Response<svidpb::NewDownstreamX509caResponse>, Status> {
    let entries = ctx
        .store
        .list_registration_entries(&ListEntriesRequest {
            by_spiffe_id: Some(caller.to_string()),
            by_downstream: Some(true),
            ..Default::default()
        })
        .await
        .map_err(store_status)?;
    let entry = entries
        .entries
        .first()
        .ok_or_else(|| Status::internal("caller is not a downstream workload"))?;

    let public_key = csr_public_key(&request.csr).map_err(|e| match e {
        CaError::InvalidCsr(reason) if reason.contains("signature") => {
            Status::invalid_argument(format!("invalid CSR signature: {reason}"))
        }
        CaError::InvalidCsr(reason) => Status::invalid_argument(format!("malformed CSR: {reason}")),
        other => Status::invalid_argument(format!("malformed CSR: {other}")),
    })?;
    let ttl = [request.preferred_ttl, entry.x509_svid_ttl]
        .into_iter()
        .find(|t| *t > 0)
        .map(|t| Duration::from_secs(u64::from(t.unsigned_abs())));
    let chain = ctx
        .ca
        .sign_downstream_x509_ca(&public_key, ttl)
        .map_err(|e| match e {
            CaError::InvalidPublicKey(reason) => {
                Status::invalid_argument(format!("malformed CSR: unsupported public key: {reason}"))
            }
            other => {
                tracing::error!(error = %other, "Failed to sign downstream X.509 CA");
                Status::internal(format!("failed to sign downstream X.509 CA: {other}"))
            }
        })?;
    let expires_at = chain
        .first()
        .and_then(|c| X509Certificate::from_der(c.as_ref()).ok())
        .map_or(0, |(_, c)| c.validity().not_after.timestamp());
    tracing::debug!(caller = %caller, expires_at, "Signed X509 CA SVID");

    let bundle = ctx
        .store
        .fetch_bundle(ctx.trust_domain.name())
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found("bundle not found"))?;
    Ok(Response::new(svidpb::NewDownstreamX509caResponse {
        ca_cert_chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
        x509_authorities: bundle
            .x509_authorities
            .into_iter()
            .map(|a| a.asn1)
            .collect(),
    }))
}

/// Appends the downstream server's JWT key to this trust domain's bundle (no
/// UpstreamAuthority here publishes JWT keys further up, so the local bundle is where
/// it goes, as SPIRE does then) and returns the bundle's JWT authorities.
pub async fn publish_jwt_authority(
    ctx: &ApiContext,
    request: &bundlepb::PublishJwtAuthorityRequest,
) -> Result<Response<bundlepb::PublishJwtAuthorityResponse>, Status> {
    let key = request
        .jwt_authority
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("missing JWT authority"))?;
    if key.key_id.is_empty() {
        return Err(Status::invalid_argument(
            "invalid JWT authority: missing key ID",
        ));
    }
    spiffe_core::PublicKey::from_spki_der(&key.public_key).map_err(|e| {
        Status::invalid_argument(format!(
            "invalid JWT authority: failed to parse public key: {e}"
        ))
    })?;
    let stored = ctx
        .store
        .append_bundle(&Bundle {
            trust_domain: ctx.trust_domain.name().to_owned(),
            jwt_authorities: vec![JwtKey {
                public_key: key.public_key.clone(),
                key_id: key.key_id.clone(),
                expires_at: key.expires_at,
                tainted: false,
            }],
            ..Default::default()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "Failed to publish JWT key");
            Status::internal("failed to publish JWT key")
        })?;
    tracing::info!(key_id = %key.key_id, "Published downstream JWT authority");
    Ok(Response::new(bundlepb::PublishJwtAuthorityResponse {
        jwt_authorities: stored
            .jwt_authorities
            .into_iter()
            .map(|k| types::JwtKey {
                public_key: k.public_key,
                key_id: k.key_id,
                expires_at: k.expires_at,
                tainted: k.tainted,
            })
            .collect(),
    }))
}

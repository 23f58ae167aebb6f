//! `spire.api.server.svid.v1.SVID`: X.509-SVIDs for the entries an agent is authorized
//! for (server.md §3.4). Only the CSR's public key is used; the SPIFFE ID, DNS names and
//! TTL come from the entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::time::SystemTime;

use spiffe_core::{JwtSvid, SpiffeId};
use spire_common::convert::{id_from_proto, id_to_proto};
use spire_proto::spire::api::server::svid::v1 as pb;
use spire_proto::spire::api::server::svid::v1::svid_server::Svid as SvidApi;
use spire_proto::spire::api::types::{Jwtsvid, Spiffeid, X509svid};
use tonic::{Code, Request, Response, Status};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::authz_layer::authorized;
use super::entry::agent_id;
use super::status::{item, ok};
use super::{ApiContext, store_status};
use crate::authz::Authorized;
use crate::ca::CaError;
use crate::datastore::RegistrationEntry;

/// The SVID service.
#[derive(Clone)]
pub struct SvidService {
    ctx: Arc<ApiContext>,
}

impl SvidService {
    /// The service over the shared API context.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        SvidService { ctx }
    }
}

#[tonic::async_trait]
impl SvidApi for SvidService {
    async fn mint_x509svid(
        &self,
        request: Request<pb::MintX509svidRequest>,
    ) -> Result<Response<pb::MintX509svidResponse>, Status> {
        let request = request.into_inner();
        let svid = self.mint_x509(&request.csr, request.ttl)?;
        Ok(Response::new(pb::MintX509svidResponse { svid: Some(svid) }))
    }

    async fn mint_jwtsvid(
        &self,
        request: Request<pb::MintJwtsvidRequest>,
    ) -> Result<Response<pb::MintJwtsvidResponse>, Status> {
        let request = request.into_inner();
        let id = self.workload_id(request.id.as_ref())?;
        let ttl = u64::try_from(request.ttl).unwrap_or(0);
        let svid = self.mint_jwt(&id, &request.audience, ttl, false, String::new())?;
        Ok(Response::new(pb::MintJwtsvidResponse { svid: Some(svid) }))
    }

    async fn mint_witsvid(
        &self,
        _request: Request<pb::MintWitsvidRequest>,
    ) -> Result<Response<pb::MintWitsvidResponse>, Status> {
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn batch_new_x509svid(
        &self,
        request: Request<pb::BatchNewX509svidRequest>,
    ) -> Result<Response<pb::BatchNewX509svidResponse>, Status> {
        let agent = agent_id(&request)?;
        let authorized = self.authorized_entries(&agent).await?;
        let mut results = Vec::new();
        for params in request.into_inner().params {
            let result = match authorized.get(&params.entry_id) {
                None => pb::batch_new_x509svid_response::Result {
                    status: Some(item(Code::NotFound, "entry not found or not authorized")),
                    svid: None,
                },
                Some(entry) => match self.sign(entry, &params.csr) {
                    Ok(svid) => pb::batch_new_x509svid_response::Result {
                        status: Some(ok()),
                        svid: Some(svid),
                    },
                    Err(status) => pb::batch_new_x509svid_response::Result {
                        status: Some(item(status.code(), status.message())),
                        svid: None,
                    },
                },
            };
            results.push(result);
        }
        Ok(Response::new(pb::BatchNewX509svidResponse { results }))
    }

    async fn new_jwtsvid(
        &self,
        request: Request<pb::NewJwtsvidRequest>,
    ) -> Result<Response<pb::NewJwtsvidResponse>, Status> {
        let agent = agent_id(&request)?;
        let request = request.into_inner();
        // As SPIRE: an empty entry ID is simply not among the authorized entries.
        let authorized = self.authorized_entries(&agent).await?;
        let entry = authorized
            .get(&request.entry_id)
            .ok_or_else(|| Status::not_found("entry not found or not authorized"))?;
        let id = SpiffeId::parse(&entry.spiffe_id)
            .map_err(|e| Status::internal(format!("stored entry has an invalid SPIFFE ID: {e}")))?;
        let ttl = u64::try_from(entry.jwt_svid_ttl).unwrap_or(0);
        let svid = self.mint_jwt(
            &id,
            &request.audience,
            ttl,
            entry.jwt_svid_include_jti,
            entry.hint.clone(),
        )?;
        Ok(Response::new(pb::NewJwtsvidResponse { svid: Some(svid) }))
    }

    async fn batch_new_witsvid(
        &self,
        _request: Request<pb::BatchNewWitsvidRequest>,
    ) -> Result<Response<pb::BatchNewWitsvidResponse>, Status> {
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn new_downstream_x509ca(
        &self,
        request: Request<pb::NewDownstreamX509caRequest>,
    ) -> Result<Response<pb::NewDownstreamX509caResponse>, Status> {
        let caller = match authorized(&request)? {
            Authorized::Downstream(id) => id.clone(),
            _ => return Err(Status::internal("caller is not a downstream workload")),
        };
        let request = request.into_inner();
        super::downstream::new_downstream_x509_ca(&self.ctx, &caller, &request).await
    }
}

impl SvidService {
    /// The registration entries authorized for `agent` (through its node selectors),
    /// by entry ID.
    async fn authorized_entries(
        &self,
        agent: &SpiffeId,
    ) -> Result<HashMap<String, RegistrationEntry>, Status> {
        let selectors = self
            .ctx
            .store
            .get_node_selectors(agent.as_str())
            .await
            .map_err(store_status)?;
        Ok(self
            .ctx
            .store
            .list_authorized_entries(agent.as_str(), &selectors)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect())
    }

    /// SPIRE's `api.TrustDomainWorkloadIDFromProto`: a workload ID of this trust domain.
    fn workload_id(&self, id: Option<&Spiffeid>) -> Result<SpiffeId, Status> {
        let id = id.ok_or_else(|| {
            Status::invalid_argument("invalid SPIFFE ID: request must specify SPIFFE ID")
        })?;
        let id = id_from_proto(id)
            .map_err(|e| Status::invalid_argument(format!("invalid SPIFFE ID: {e}")))?;
        if !id.is_member_of(&self.ctx.trust_domain) {
            return Err(Status::invalid_argument(format!(
                "invalid SPIFFE ID: {:?} is not a member of trust domain {:?}",
                id.as_str(),
                self.ctx.trust_domain.name()
            )));
        }
        if id.path().is_empty() {
            return Err(Status::invalid_argument(format!(
                "invalid SPIFFE ID: invalid path: {:?} is not a workload in trust domain {:?}",
                id.as_str(),
                self.ctx.trust_domain.name()
            )));
        }
        Ok(id)
    }

    /// Signs a JWT-SVID as SPIRE's `mintJWTSVID`: at least one audience, `ttl` seconds
    /// (0 = the server default).
    fn mint_jwt(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: u64,
        include_jti: bool,
        hint: String,
    ) -> Result<Jwtsvid, Status> {
        if audience.is_empty() {
            return Err(Status::invalid_argument(
                "at least one audience is required",
            ));
        }
        let ttl = (ttl > 0).then(|| Duration::from_secs(ttl));
        let token = self
            .ctx
            .ca
            .sign_jwt_svid_with_options(id, audience, ttl, include_jti)
            .map_err(|e| match e {
                CaError::EmptyAudience => {
                    Status::invalid_argument("at least one audience is required")
                }
                CaError::InvalidSpiffeId { .. } => {
                    Status::invalid_argument(format!("invalid SPIFFE ID: {e}"))
                }
                other => Status::internal(format!("failed to sign JWT-SVID: {other}")),
            })?;
        let parsed = JwtSvid::parse_insecure(&token, &[], SystemTime::now())
            .map_err(|e| Status::internal(format!("failed to get JWT-SVID expiry: {e}")))?;
        let issued_at = parsed
            .claims()
            .get("iat")
            .and_then(serde_json::Value::as_f64)
            .map_or(0, |iat| iat as i64);
        tracing::debug!(spiffe_id = %id, expires_at = parsed.expiry_unix(), "Signed JWT-SVID");
        Ok(Jwtsvid {
            token,
            id: Some(id_to_proto(id)),
            expires_at: parsed.expiry_unix(),
            issued_at,
            hint,
        })
    }

    /// SPIRE's `MintX509SVID`: the CSR names the SVID (exactly one URI SAN, a workload
    /// of this trust domain, plus valid DNS SANs); `ttl` seconds (0 = the server default).
    fn mint_x509(&self, csr: &[u8], ttl: i32) -> Result<X509svid, Status> {
        if csr.is_empty() {
            return Err(Status::invalid_argument("missing CSR"));
        }
        let (uris, dns_names) = csr_names(csr)?;
        let uri = match uris.as_slice() {
            [] => return Err(Status::invalid_argument("CSR URI SAN is required")),
            [uri] => uri,
            _ => return Err(Status::invalid_argument("only one URI SAN is expected")),
        };
        let id = SpiffeId::parse(uri)
            .map_err(|e| Status::invalid_argument(format!("CSR URI SAN is invalid: {e}")))?;
        let id = self.workload_id(Some(&id_to_proto(&id))).map_err(|s| {
            Status::invalid_argument(format!("CSR URI SAN is invalid: {}", s.message()))
        })?;
        for name in &dns_names {
            if let Err(reason) = super::entry::validate_dns_name(name) {
                return Err(Status::invalid_argument(format!(
                    "CSR DNS name {name:?} is invalid: {reason}"
                )));
            }
        }
        let ttl = u64::try_from(ttl)
            .ok()
            .filter(|t| *t > 0)
            .map(Duration::from_secs);
        let chain = self
            .ctx
            .ca
            .sign_x509_svid_from_csr(csr, &id, &dns_names, ttl)
            .map_err(|e| match e {
                CaError::InvalidCsr(reason) => {
                    Status::invalid_argument(format!("failed to verify CSR signature: {reason}"))
                }
                other => Status::internal(format!("failed to sign X509-SVID: {other}")),
            })?;
        let expires_at = chain
            .first()
            .and_then(|leaf| X509Certificate::from_der(leaf.as_ref()).ok())
            .map_or(0, |(_, cert)| cert.validity().not_after.timestamp());
        tracing::debug!(spiffe_id = %id, expires_at, "Minted X509-SVID");
        Ok(X509svid {
            cert_chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
            id: Some(id_to_proto(&id)),
            expires_at,
            hint: String::new(),
        })
    }

    fn sign(
        &self,
        entry: &crate::datastore::RegistrationEntry,
        csr: &[u8],
    ) -> Result<X509svid, Status> {
        if csr.is_empty() {
            return Err(Status::invalid_argument("missing CSR"));
        }
        let id = SpiffeId::parse(&entry.spiffe_id)
            .map_err(|e| Status::internal(format!("stored entry has an invalid SPIFFE ID: {e}")))?;
        let ttl =
            (entry.x509_svid_ttl > 0).then(|| Duration::from_secs(entry.x509_svid_ttl as u64));
        let chain = self
            .ctx
            .ca
            .sign_x509_svid_from_csr(csr, &id, &entry.dns_names, ttl)
            .map_err(|e| Status::invalid_argument(format!("failed to sign X509-SVID: {e}")))?;
        let expires_at = chain
            .first()
            .and_then(|leaf| X509Certificate::from_der(leaf.as_ref()).ok())
            .map_or(0, |(_, cert)| cert.validity().not_after.timestamp());
        Ok(X509svid {
            cert_chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
            id: Some(id_to_proto(&id)),
            expires_at,
            hint: entry.hint.clone(),
        })
    }
}

/// The URI and DNS SANs a PKCS#10 CSR requests (its signature is checked when signing).
fn csr_names(csr: &[u8]) -> Result<(Vec<String>, Vec<String>), Status> {
    let csr = match X509CertificationRequest::from_der(csr) {
        Ok(([], csr)) => csr,
        Ok(_) => return Err(Status::invalid_argument("malformed CSR: trailing data")),
        Err(e) => return Err(Status::invalid_argument(format!("malformed CSR: {e}"))),
    };
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                    GeneralName::DNSName(name) => dns.push((*name).to_owned()),
                    _ => {}
                }
            }
        }
    }
    Ok((uris, dns))
}

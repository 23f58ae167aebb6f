//! `spire.api.server.svid.v1.SVID`: X.509-SVIDs for the entries an agent is authorized
//! for (server.md §3.4). Only the CSR's public key is used; the SPIFFE ID, DNS names and
//! TTL come from the entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use spiffe_core::SpiffeId;
use spire_common::convert::id_to_proto;
use spire_proto::spire::api::server::svid::v1 as pb;
use spire_proto::spire::api::server::svid::v1::svid_server::Svid as SvidApi;
use spire_proto::spire::api::types::X509svid;
use tonic::{Code, Request, Response, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::entry::agent_id;
use super::status::{item, ok};
use super::{ApiContext, store_status};

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

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!("SVID.{method} is not implemented yet in spire-rs"))
}

#[tonic::async_trait]
impl SvidApi for SvidService {
    async fn mint_x509svid(
        &self,
        _request: Request<pb::MintX509svidRequest>,
    ) -> Result<Response<pb::MintX509svidResponse>, Status> {
        Err(unimplemented("MintX509SVID"))
    }

    async fn mint_jwtsvid(
        &self,
        _request: Request<pb::MintJwtsvidRequest>,
    ) -> Result<Response<pb::MintJwtsvidResponse>, Status> {
        Err(unimplemented("MintJWTSVID"))
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
        let selectors = self
            .ctx
            .store
            .get_node_selectors(agent.as_str())
            .await
            .map_err(store_status)?;
        let authorized: HashMap<String, _> = self
            .ctx
            .store
            .list_authorized_entries(agent.as_str(), &selectors)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
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
        _request: Request<pb::NewJwtsvidRequest>,
    ) -> Result<Response<pb::NewJwtsvidResponse>, Status> {
        Err(unimplemented("NewJWTSVID"))
    }

    async fn batch_new_witsvid(
        &self,
        _request: Request<pb::BatchNewWitsvidRequest>,
    ) -> Result<Response<pb::BatchNewWitsvidResponse>, Status> {
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn new_downstream_x509ca(
        &self,
        _request: Request<pb::NewDownstreamX509caRequest>,
    ) -> Result<Response<pb::NewDownstreamX509caResponse>, Status> {
        Err(unimplemented("NewDownstreamX509CA"))
    }
}

impl SvidService {
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

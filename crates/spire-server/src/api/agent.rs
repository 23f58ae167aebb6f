//! `spire.api.server.agent.v1.Agent`: node attestation with join tokens, agent SVID
//! renewal and join token creation (server.md §3.4, §6).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use spiffe_core::SpiffeId;
use spire_common::convert::{id_from_proto, id_to_proto};
use spire_proto::spire::api::server::agent::v1 as pb;
use spire_proto::spire::api::server::agent::v1::agent_server::Agent as AgentApi;
use spire_proto::spire::api::types::{self, X509svid};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::entry::agent_id;
use super::{ApiContext, store_status};
use crate::datastore::{
    AttestedNode, AttestedNodeMask, JoinToken, JoinTokenOutcome, RegistrationEntry, Selector,
};

/// The node attestation type handled inline by the API, as SPIRE does.
const JOIN_TOKEN: &str = "join_token";

/// The Agent service.
#[derive(Clone)]
pub struct AgentService {
    ctx: Arc<ApiContext>,
}

impl AgentService {
    /// The service over the shared API context.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        AgentService { ctx }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Serial (decimal) and notAfter (unix seconds) of a leaf certificate.
fn serial_and_expiry(leaf: &[u8]) -> Result<(String, i64), Status> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| Status::internal(format!("issued SVID does not parse: {e}")))?;
    Ok((
        cert.tbs_certificate.serial.to_string(),
        cert.validity().not_after.timestamp(),
    ))
}

fn x509_svid(
    id: &SpiffeId,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<X509svid, Status> {
    let leaf = chain
        .first()
        .ok_or_else(|| Status::internal("CA returned an empty chain"))?;
    let (_, expires_at) = serial_and_expiry(leaf.as_ref())?;
    Ok(X509svid {
        cert_chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
        id: Some(id_to_proto(id)),
        expires_at,
        hint: String::new(),
    })
}

type AttestStream = Pin<Box<dyn Stream<Item = Result<pb::AttestAgentResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentApi for AgentService {
    type AttestAgentStream = AttestStream;

    async fn count_agents(
        &self,
        _request: Request<pb::CountAgentsRequest>,
    ) -> Result<Response<pb::CountAgentsResponse>, Status> {
        Err(Status::unimplemented(
            "Agent.CountAgents is not implemented yet in spire-rs",
        ))
    }

    async fn list_agents(
        &self,
        _request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        Err(Status::unimplemented(
            "Agent.ListAgents is not implemented yet in spire-rs",
        ))
    }

    async fn get_agent(
        &self,
        _request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<types::Agent>, Status> {
        Err(Status::unimplemented(
            "Agent.GetAgent is not implemented yet in spire-rs",
        ))
    }

    async fn delete_agent(
        &self,
        _request: Request<pb::DeleteAgentRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented(
            "Agent.DeleteAgent is not implemented yet in spire-rs",
        ))
    }

    async fn ban_agent(
        &self,
        _request: Request<pb::BanAgentRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented(
            "Agent.BanAgent is not implemented yet in spire-rs",
        ))
    }

    async fn attest_agent(
        &self,
        request: Request<Streaming<pb::AttestAgentRequest>>,
    ) -> Result<Response<Self::AttestAgentStream>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("missing attestation request"))?;
        let params = match first.step {
            Some(pb::attest_agent_request::Step::Params(params)) => params,
            _ => return Err(Status::invalid_argument("malformed param: missing params")),
        };
        let data = params
            .data
            .ok_or_else(|| Status::invalid_argument("malformed param: missing attestation data"))?;
        let csr = params
            .params
            .map(|p| p.csr)
            .filter(|csr| !csr.is_empty())
            .ok_or_else(|| Status::invalid_argument("malformed param: missing X509-SVID params"))?;
        if data.r#type.is_empty() {
            return Err(Status::invalid_argument(
                "malformed attestation data: missing type",
            ));
        }
        if data.payload.is_empty() {
            return Err(Status::invalid_argument(
                "malformed attestation data: missing payload",
            ));
        }
        if data.r#type != JOIN_TOKEN {
            return Err(Status::failed_precondition(format!(
                "error getting node attestor: could not find node attestor type \"{}\"",
                data.r#type
            )));
        }
        let token = String::from_utf8(data.payload)
            .map_err(|_| Status::invalid_argument("join token is not valid UTF-8"))?;
        let agent = self.attest_join_token(&token).await?;
        let result = self.issue_agent_svid(&agent, &csr).await?;
        let response = pb::AttestAgentResponse {
            step: Some(pb::attest_agent_response::Step::Result(result)),
        };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(response)))))
    }

    async fn renew_agent(
        &self,
        request: Request<pb::RenewAgentRequest>,
    ) -> Result<Response<pb::RenewAgentResponse>, Status> {
        let agent = agent_id(&request)?;
        let csr = request
            .into_inner()
            .params
            .map(|p| p.csr)
            .filter(|csr| !csr.is_empty())
            .ok_or_else(|| Status::invalid_argument("missing CSR"))?;
        let node = self
            .ctx
            .store
            .fetch_attested_node(agent.as_str())
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("agent not found"))?;
        if node.can_reattest {
            return Err(super::status::permission_denied_with_reason(
                "agent must re-attest",
                5,
            ));
        }
        let spki = crate::ca::csr_public_key(&csr)
            .map_err(|e| Status::invalid_argument(format!("failed to parse CSR: {e}")))?;
        let chain = self
            .ctx
            .ca
            .sign_agent_x509_svid(&spki, &agent)
            .map_err(|e| Status::internal(format!("failed to sign X509 SVID: {e}")))?;
        let (serial, not_after) = serial_and_expiry(chain[0].as_ref())?;
        let update = AttestedNode {
            new_cert_serial_number: serial,
            new_cert_not_after: not_after,
            ..node
        };
        self.ctx
            .store
            .update_attested_node(
                &update,
                Some(&AttestedNodeMask {
                    new_cert_serial_number: true,
                    new_cert_not_after: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::RenewAgentResponse {
            svid: Some(x509_svid(&agent, &chain)?),
        }))
    }

    async fn create_join_token(
        &self,
        request: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<types::JoinToken>, Status> {
        let request = request.into_inner();
        if request.ttl < 1 {
            return Err(Status::invalid_argument(
                "ttl is required, you must provide one",
            ));
        }
        let token = if request.token.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.token
        };
        let agent_path_token = SpiffeId::from_segments(
            &self.ctx.trust_domain,
            &["spire", "agent", "join_token", &token],
        )
        .map_err(|e| Status::invalid_argument(format!("invalid token: {e}")))?;
        let alias = match &request.agent_id {
            Some(id) => {
                let id = id_from_proto(id)
                    .map_err(|e| Status::invalid_argument(format!("invalid agent ID: {e}")))?;
                if !id.is_member_of(&self.ctx.trust_domain) {
                    return Err(Status::invalid_argument(format!(
                        "invalid agent ID: \"{id}\" is not a member of trust domain \"{}\"",
                        self.ctx.trust_domain
                    )));
                }
                if id.is_root() || id.path() == "/spire" || id.path().starts_with("/spire/") {
                    return Err(Status::invalid_argument(format!(
                        "invalid agent ID: \"{id}\" is not a workload ID in the trust domain"
                    )));
                }
                Some(id)
            }
            None => None,
        };
        let expiry = unix_now() + i64::from(request.ttl);
        self.ctx
            .store
            .create_join_token(&JoinToken {
                token: token.clone(),
                expiry,
            })
            .await
            .map_err(store_status)?;
        if let Some(alias) = alias {
            let entry = RegistrationEntry {
                spiffe_id: alias.to_string(),
                parent_id: agent_path_token.to_string(),
                selectors: vec![Selector::new("spiffe_id", agent_path_token.to_string())],
                ..Default::default()
            };
            self.ctx
                .store
                .create_registration_entry(&entry)
                .await
                .map_err(|e| {
                    Status::internal(format!("failed to create token alias entry: {e}"))
                })?;
        }
        Ok(Response::new(types::JoinToken {
            value: token,
            expires_at: expiry,
        }))
    }

    async fn post_status(
        &self,
        _request: Request<pb::PostStatusRequest>,
    ) -> Result<Response<pb::PostStatusResponse>, Status> {
        Err(Status::unimplemented(
            "Agent.PostStatus is not implemented yet in spire-rs",
        ))
    }
}

impl AgentService {
    /// Consumes a join token (single use even under races) and returns the agent ID.
    async fn attest_join_token(&self, token: &str) -> Result<SpiffeId, Status> {
        match self
            .ctx
            .store
            .consume_join_token(token, unix_now())
            .await
            .map_err(|_| Status::internal("failed to fetch join token"))?
        {
            JoinTokenOutcome::Consumed(_) => {}
            JoinTokenOutcome::Expired(_) => {
                return Err(Status::invalid_argument("join token expired"));
            }
            JoinTokenOutcome::NotFound => {
                return Err(Status::invalid_argument(
                    "failed to attest: join token does not exist or has already been used",
                ));
            }
        }
        SpiffeId::from_segments(
            &self.ctx.trust_domain,
            &["spire", "agent", "join_token", token],
        )
        .map_err(|e| Status::internal(format!("failed to create join token ID: {e}")))
    }

    /// Signs the agent SVID and records the attested node.
    async fn issue_agent_svid(
        &self,
        agent: &SpiffeId,
        csr: &[u8],
    ) -> Result<pb::attest_agent_response::Result, Status> {
        let existing = self
            .ctx
            .store
            .fetch_attested_node(agent.as_str())
            .await
            .map_err(store_status)?;
        if existing.as_ref().is_some_and(AttestedNode::is_banned) {
            return Err(Status::permission_denied(
                "failed to attest: agent is banned",
            ));
        }
        let spki = crate::ca::csr_public_key(csr)
            .map_err(|e| Status::invalid_argument(format!("failed to parse CSR: {e}")))?;
        let chain = self
            .ctx
            .ca
            .sign_agent_x509_svid(&spki, agent)
            .map_err(|e| Status::internal(format!("failed to sign X509 SVID: {e}")))?;
        let (serial, not_after) = serial_and_expiry(chain[0].as_ref())?;
        let node = AttestedNode {
            spiffe_id: agent.to_string(),
            attestation_data_type: JOIN_TOKEN.into(),
            cert_serial_number: serial,
            cert_not_after: not_after,
            can_reattest: false,
            ..Default::default()
        };
        match existing {
            None => {
                self.ctx
                    .store
                    .create_attested_node(&node)
                    .await
                    .map_err(store_status)?;
            }
            Some(_) => {
                self.ctx
                    .store
                    .update_attested_node(
                        &node,
                        Some(&AttestedNodeMask {
                            cert_serial_number: true,
                            cert_not_after: true,
                            new_cert_serial_number: true,
                            new_cert_not_after: true,
                            can_reattest: true,
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(store_status)?;
            }
        }
        self.ctx
            .store
            .set_node_selectors(agent.as_str(), &[])
            .await
            .map_err(store_status)?;
        tracing::info!(agent_id = %agent, node_attestor_type = JOIN_TOKEN, "Agent attestation request completed");
        Ok(pb::attest_agent_response::Result {
            svid: Some(x509_svid(agent, &chain)?),
            reattestable: false,
        })
    }
}

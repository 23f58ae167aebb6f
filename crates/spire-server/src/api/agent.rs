//! `spire.api.server.agent.v1.Agent`: node attestation (join tokens inline, other types
//! through the configured [`NodeAttestor`]s with the challenge relay), agent SVID
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
use crate::attestation::{Challenger, NodeAttestor, NodeAttestors};
use crate::datastore::{
    AttestedNode, AttestedNodeMask, DataStoreError, JoinToken, JoinTokenOutcome,
    ListAttestedNodesRequest, MatchBehavior, Pagination, RegistrationEntry, Selector,
    SelectorMatch,
};

/// The node attestation type handled inline by the API, as SPIRE does.
const JOIN_TOKEN: &str = "join_token";
/// Longest agent version `PostStatus` stores.
const MAX_AGENT_VERSION_LEN: usize = 255;

/// The Agent service.
#[derive(Clone)]
pub struct AgentService {
    ctx: Arc<ApiContext>,
    attestors: NodeAttestors,
}

impl AgentService {
    /// The service over the shared API context (join token attestation only).
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        AgentService {
            ctx,
            attestors: NodeAttestors::new(),
        }
    }

    /// The service with the configured node attestors.
    pub fn with_node_attestors(ctx: Arc<ApiContext>, attestors: NodeAttestors) -> Self {
        AgentService { ctx, attestors }
    }
}

/// Relays an attestor's challenges over the `AttestAgent` stream.
struct StreamChallenger {
    requests: Streaming<pb::AttestAgentRequest>,
    responses: tokio::sync::mpsc::Sender<Result<pb::AttestAgentResponse, Status>>,
}

#[tonic::async_trait]
impl Challenger for StreamChallenger {
    async fn challenge(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
        self.responses
            .send(Ok(pb::AttestAgentResponse {
                step: Some(pb::attest_agent_response::Step::Challenge(challenge)),
            }))
            .await
            .map_err(|_| Status::cancelled("agent went away during attestation"))?;
        let request = self
            .requests
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("missing challenge response"))?;
        match request.step {
            Some(pb::attest_agent_request::Step::ChallengeResponse(response)) => Ok(response),
            _ => Err(Status::invalid_argument("expected a challenge response")),
        }
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
        request: Request<pb::CountAgentsRequest>,
    ) -> Result<Response<pb::CountAgentsResponse>, Status> {
        let req = match request.into_inner().filter {
            Some(f) => nodes_request(AgentFilter {
                by_attestation_type: f.by_attestation_type,
                by_selector_match: f.by_selector_match,
                by_banned: f.by_banned,
                by_can_reattest: f.by_can_reattest,
                by_expires_before: f.by_expires_before,
            })?,
            None => ListAttestedNodesRequest::default(),
        };
        let count = self
            .ctx
            .store
            .count_attested_nodes(&req)
            .await
            .map_err(|e| internal("failed to count agents", &e))?;
        Ok(Response::new(pb::CountAgentsResponse {
            count: i32::try_from(count).unwrap_or(i32::MAX),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let request = request.into_inner();
        let mut req = match request.filter {
            Some(f) => nodes_request(AgentFilter {
                by_attestation_type: f.by_attestation_type,
                by_selector_match: f.by_selector_match,
                by_banned: f.by_banned,
                by_can_reattest: f.by_can_reattest,
                by_expires_before: f.by_expires_before,
            })?,
            None => ListAttestedNodesRequest::default(),
        };
        req.fetch_selectors = request.output_mask.is_none_or(|m| m.selectors);
        if request.page_size > 0 {
            req.pagination = Some(Pagination {
                page_size: request.page_size as u32,
                token: request.page_token,
            });
        }
        let page = self
            .ctx
            .store
            .list_attested_nodes(&req)
            .await
            .map_err(|e| internal("failed to list agents", &e))?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: page
                .nodes
                .iter()
                .filter_map(node_to_proto)
                .map(|a| apply_agent_mask(a, request.output_mask.as_ref()))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<types::Agent>, Status> {
        let request = request.into_inner();
        let id = self.agent_id_from_proto(request.id.as_ref())?;
        let node = self
            .ctx
            .store
            .fetch_attested_node(id.as_str())
            .await
            .map_err(|e| internal("failed to fetch agent", &e))?
            .ok_or_else(|| Status::not_found("agent not found"))?;
        let agent = node_to_proto(&node)
            .ok_or_else(|| Status::internal("failed to convert attested node to agent"))?;
        Ok(Response::new(apply_agent_mask(
            agent,
            request.output_mask.as_ref(),
        )))
    }

    async fn delete_agent(
        &self,
        request: Request<pb::DeleteAgentRequest>,
    ) -> Result<Response<()>, Status> {
        let id = self.agent_id_from_proto(request.into_inner().id.as_ref())?;
        match self.ctx.store.delete_attested_node(id.as_str()).await {
            Ok(_) => {
                tracing::info!(spiffe_id = %id, "Agent deleted");
                Ok(Response::new(()))
            }
            Err(DataStoreError::NotFound(_)) => Err(Status::not_found("agent not found")),
            Err(e) => Err(internal("failed to remove agent", &e)),
        }
    }

    async fn ban_agent(
        &self,
        request: Request<pb::BanAgentRequest>,
    ) -> Result<Response<()>, Status> {
        let id = self.agent_id_from_proto(request.into_inner().id.as_ref())?;
        match self.ctx.store.ban_attested_node(id.as_str()).await {
            Ok(_) => {
                tracing::info!(spiffe_id = %id, "Agent banned");
                Ok(Response::new(()))
            }
            Err(DataStoreError::NotFound(_)) => Err(Status::not_found("agent not found")),
            Err(e) => Err(internal("failed to ban agent", &e)),
        }
    }

    async fn attest_agent(
        &self,
        request: Request<Streaming<pb::AttestAgentRequest>>,
    ) -> Result<Response<Self::AttestAgentStream>, Status> {
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            Status::invalid_argument("failed to receive request from stream: EOF")
        })?;
        let params = match first.step {
            Some(pb::attest_agent_request::Step::Params(params)) => params,
            _ => return Err(malformed_param("missing params")),
        };
        // SPIRE's order of checks (`validateAttestAgentParams`).
        let data = params
            .data
            .ok_or_else(|| malformed_param("missing attestation data"))?;
        let csr = params
            .params
            .ok_or_else(|| malformed_param("missing X509-SVID parameters"))?
            .csr;
        if csr.is_empty() {
            return Err(malformed_param("missing CSR"));
        }
        if data.r#type.is_empty() {
            return Err(malformed_param("missing attestation data type"));
        }
        if data.payload.is_empty() {
            return Err(malformed_param("missing attestation data payload"));
        }
        if data.r#type != JOIN_TOKEN {
            let attestor = self.attestors.get(&data.r#type).ok_or_else(|| {
                Status::failed_precondition(format!(
                    "error getting node attestor: could not find node attestor type \"{}\"",
                    data.r#type
                ))
            })?;
            return Ok(Response::new(self.attest_with_plugin(
                attestor,
                data.payload,
                csr,
                stream,
            )));
        }
        let token = String::from_utf8(data.payload)
            .map_err(|_| Status::invalid_argument("join token is not valid UTF-8"))?;
        let agent = self.attest_join_token(&token).await?;
        let result = self
            .issue_agent_svid(&agent, &csr, JOIN_TOKEN, &[], false)
            .await?;
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
        let params = request.into_inner().params;
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
        // Checked after the node, as SPIRE does.
        let csr = params
            .ok_or_else(|| Status::invalid_argument("params cannot be nil"))?
            .csr;
        if csr.is_empty() {
            return Err(Status::invalid_argument("missing CSR"));
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
        request: Request<pb::PostStatusRequest>,
    ) -> Result<Response<pb::PostStatusResponse>, Status> {
        let agent = agent_id(&request)?;
        let version = request.into_inner().agent_version;
        if !version.is_empty() {
            if version.len() > MAX_AGENT_VERSION_LEN {
                return Err(Status::invalid_argument(
                    "agent version is too long (max 255 characters)",
                ));
            }
            let update = AttestedNode {
                spiffe_id: agent.to_string(),
                agent_version: version,
                ..Default::default()
            };
            let mask = AttestedNodeMask {
                agent_version: true,
                ..Default::default()
            };
            match self
                .ctx
                .store
                .update_attested_node(&update, Some(&mask))
                .await
            {
                Ok(_) => {}
                Err(DataStoreError::NotFound(_)) => {
                    return Err(Status::not_found("agent not found"));
                }
                Err(e) => return Err(internal("failed to update agent", &e)),
            }
        }
        Ok(Response::new(pb::PostStatusResponse {}))
    }
}

/// The filter fields `ListAgents` and `CountAgents` share.
struct AgentFilter {
    by_attestation_type: String,
    by_selector_match: Option<types::SelectorMatch>,
    by_banned: Option<bool>,
    by_can_reattest: Option<bool>,
    by_expires_before: String,
}

/// Go's `2006-01-02 15:04:05 -0700 -07` without the trailing zone abbreviation.
const EXPIRES_BEFORE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

/// Parses `by_expires_before`; like SPIRE, an unparsable value filters nothing.
fn parse_expires_before(value: &str) -> Option<i64> {
    // The trailing ` -07` zone abbreviation repeats the offset; drop it.
    let trimmed = value.rsplit_once(' ').map_or(value, |(head, _)| head);
    time::OffsetDateTime::parse(trimmed, EXPIRES_BEFORE_FORMAT)
        .or_else(|_| time::OffsetDateTime::parse(value, EXPIRES_BEFORE_FORMAT))
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn nodes_request(filter: AgentFilter) -> Result<ListAttestedNodesRequest, Status> {
    let mut req = ListAttestedNodesRequest {
        by_banned: filter.by_banned,
        by_can_reattest: filter.by_can_reattest,
        ..Default::default()
    };
    if !filter.by_attestation_type.is_empty() {
        req.by_attestation_type = Some(filter.by_attestation_type);
    }
    if !filter.by_expires_before.is_empty() {
        req.by_expires_before = parse_expires_before(&filter.by_expires_before);
    }
    if let Some(m) = filter.by_selector_match {
        let mut selectors = Vec::with_capacity(m.selectors.len());
        for s in m.selectors {
            spire_common::selector::Selector::new(s.r#type.clone(), s.value.clone())
                .map_err(|e| Status::invalid_argument(format!("failed to parse selectors: {e}")))?;
            selectors.push(Selector::new(s.r#type, s.value));
        }
        req.by_selector_match = Some(SelectorMatch {
            selectors,
            r#match: MatchBehavior::from_proto(m.r#match).ok_or_else(|| {
                Status::invalid_argument(format!("unknown match behavior {}", m.r#match))
            })?,
        });
    }
    Ok(req)
}

/// The API form of an attested node; `None` when its stored ID does not parse.
pub fn node_to_proto(node: &AttestedNode) -> Option<types::Agent> {
    let id = SpiffeId::parse(&node.spiffe_id).ok()?;
    Some(types::Agent {
        id: Some(id_to_proto(&id)),
        attestation_type: node.attestation_data_type.clone(),
        x509svid_serial_number: node.cert_serial_number.clone(),
        x509svid_expires_at: node.cert_not_after,
        selectors: node
            .selectors
            .iter()
            .map(|s| types::Selector {
                r#type: s.r#type.clone(),
                value: s.value.clone(),
            })
            .collect(),
        banned: node.is_banned(),
        can_reattest: node.can_reattest,
        agent_version: node.agent_version.clone(),
    })
}

/// Clears the fields an output mask leaves out (the ID is always returned).
fn apply_agent_mask(mut agent: types::Agent, mask: Option<&types::AgentMask>) -> types::Agent {
    let Some(mask) = mask else {
        return agent;
    };
    if !mask.attestation_type {
        agent.attestation_type.clear();
    }
    if !mask.x509svid_serial_number {
        agent.x509svid_serial_number.clear();
    }
    if !mask.x509svid_expires_at {
        agent.x509svid_expires_at = 0;
    }
    if !mask.selectors {
        agent.selectors.clear();
    }
    if !mask.banned {
        agent.banned = false;
    }
    if !mask.can_reattest {
        agent.can_reattest = false;
    }
    if !mask.agent_version {
        agent.agent_version.clear();
    }
    agent
}

/// An internal error whose details are logged, as SPIRE's `api.MakeErr`.
fn internal(message: &str, error: &DataStoreError) -> Status {
    tracing::error!(error = %error, "{message}");
    Status::internal(format!("{message}: {error}"))
}

impl AgentService {
    /// An agent ID from a request: in the trust domain and under `/spire/agent/`
    /// (InvalidArgument "invalid agent ID: ..." otherwise, as SPIRE).
    fn agent_id_from_proto(&self, id: Option<&types::Spiffeid>) -> Result<SpiffeId, Status> {
        let invalid =
            |reason: String| Status::invalid_argument(format!("invalid agent ID: {reason}"));
        let id = id.ok_or_else(|| invalid("request must specify SPIFFE ID".into()))?;
        let id = id_from_proto(id).map_err(|e| invalid(e.to_string()))?;
        let td = &self.ctx.trust_domain;
        if !id.is_member_of(td) {
            return Err(invalid(format!(
                "\"{id}\" is not a member of trust domain \"{td}\""
            )));
        }
        if !id.path().starts_with("/spire/agent/") {
            return Err(invalid(format!(
                "\"{id}\" is not an agent in trust domain \"{td}\"; path is not in the agent namespace"
            )));
        }
        Ok(id)
    }

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

    /// Runs a plugin attestation in a task that relays its challenges over the stream,
    /// then issues the SVID; the returned stream carries the challenges and the result
    /// (or the failure).
    fn attest_with_plugin(
        &self,
        attestor: Arc<dyn NodeAttestor>,
        payload: Vec<u8>,
        csr: Vec<u8>,
        requests: Streaming<pb::AttestAgentRequest>,
    ) -> AttestStream {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let service = self.clone();
        tokio::spawn(async move {
            let mut challenger = StreamChallenger {
                requests,
                responses: tx.clone(),
            };
            let outcome = async {
                let attested = attestor.attest(&payload, &mut challenger).await?;
                if !attested.agent_id.is_member_of(&service.ctx.trust_domain) {
                    return Err(Status::internal(format!(
                        "attestor returned an agent ID outside the trust domain: {}",
                        attested.agent_id
                    )));
                }
                if !attested.can_reattest {
                    // Trust on first use, as SPIRE's AssessTOFU: a node record for this
                    // agent ID means the attestation data was already used.
                    let existing = service
                        .ctx
                        .store
                        .fetch_attested_node(attested.agent_id.as_str())
                        .await
                        .map_err(store_status)?;
                    if existing.is_some() {
                        return Err(Status::permission_denied(
                            "failed to attest: attestation data has already been used to attest an agent",
                        ));
                    }
                }
                if !attested.agent_id.path().starts_with("/spire/agent/") {
                    tracing::warn!(agent_id = %attested.agent_id, "The node attestor produced an agent ID outside the agent namespace");
                }
                service
                    .issue_agent_svid(
                        &attested.agent_id,
                        &csr,
                        attestor.name(),
                        &attested.selectors,
                        attested.can_reattest,
                    )
                    .await
            }
            .await;
            if let Err(status) = &outcome {
                tracing::warn!(node_attestor_type = attestor.name(), error = %status.message(), "Agent attestation failed");
            }
            let message = outcome.map(|result| pb::AttestAgentResponse {
                step: Some(pb::attest_agent_response::Step::Result(result)),
            });
            let _ = tx.send(message).await;
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    /// Signs the agent SVID and records the attested node with its attestation type,
    /// node selectors (values, typed by `attestation_type`) and re-attestability.
    async fn issue_agent_svid(
        &self,
        agent: &SpiffeId,
        csr: &[u8],
        attestation_type: &str,
        selector_values: &[String],
        can_reattest: bool,
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
            attestation_data_type: attestation_type.into(),
            cert_serial_number: serial,
            cert_not_after: not_after,
            can_reattest,
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
                            attestation_data_type: true,
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
        let selectors: Vec<Selector> = selector_values
            .iter()
            .map(|value| Selector {
                r#type: attestation_type.to_owned(),
                value: value.clone(),
            })
            .collect();
        self.ctx
            .store
            .set_node_selectors(agent.as_str(), &selectors)
            .await
            .map_err(store_status)?;
        tracing::info!(agent_id = %agent, node_attestor_type = attestation_type, "Agent attestation request completed");
        Ok(pb::attest_agent_response::Result {
            svid: Some(x509_svid(agent, &chain)?),
            reattestable: can_reattest,
        })
    }
}

/// SPIRE's InvalidArgument for a malformed first AttestAgent message.
fn malformed_param(reason: &str) -> Status {
    Status::invalid_argument(format!("malformed param: {reason}"))
}

//! The agent's client of the SPIRE server APIs (agent.md §5.3): node attestation, agent
//! SVID renewal, entry sync, workload SVID signing, bundles, and the spire-rs push
//! channel. Every call runs over TLS that authenticates the server as
//! `spiffe://<td>/spire/server` against the agent's current bundle, and presents the
//! agent SVID once it has one.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain};
use spire_common::convert::{bundle_from_proto, id_from_proto};
use spire_common::grpc_tls::tls_channel;
use spire_common::tls::{SvidResolver, TrustStore, client_config};
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, RenewAgentRequest, attest_agent_request,
    attest_agent_response,
};
use spire_proto::spire::api::server::bundle::v1::GetBundleRequest;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::entry::v1::SyncAuthorizedEntriesRequest;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use spire_proto::spire::api::server::svid::v1::{
    BatchNewX509svidRequest, NewJwtsvidRequest, NewX509svidParams,
};
use spire_proto::spire::api::types::permission_denied_details::Reason;
use spire_proto::spire::api::types::{AttestationData, Entry, X509svid};
use spire_proto::spirers::server::notify::v1::notify_client::NotifyClient;
use spire_proto::spirers::server::notify::v1::{ChangeNotification, WatchChangesRequest};
use tonic::transport::Channel;

use crate::manager::jwt_cache::{JwtSvidMinter, MintedJwtSvid};
use crate::manager::taint::TaintedAuthorities;

/// Deadline of every unary call, as SPIRE's agent (agent.md §5.3).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed call to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server address or TLS configuration is unusable.
    #[error("cannot connect to the server: {0}")]
    Connect(String),
    /// The server answered with an error status.
    #[error("server error: {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The server's answer is malformed.
    #[error("invalid server response: {0}")]
    InvalidResponse(String),
    /// The node attestor could not produce a payload or a challenge answer.
    #[error("node attestor failed: {0}")]
    Attestor(String),
}

impl ClientError {
    /// The gRPC status, when the server answered with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            ClientError::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The `PermissionDeniedDetails.reason` the server attached to a PermissionDenied
    /// status (server.md §3.5 item 6), if any.
    pub fn permission_denied_reason(&self) -> Option<Reason> {
        spire_common::status::permission_denied_reason(self.status()?)
            .and_then(|reason| Reason::try_from(reason).ok())
    }

    /// Whether the server refused the agent because it is banned (`AGENT_BANNED`): the
    /// agent must delete its SVID and shut down (agent.md §5.3).
    pub fn is_agent_banned(&self) -> bool {
        self.permission_denied_reason() == Some(Reason::AgentBanned)
    }

    /// Whether the server requires the agent to attest again (`AGENT_EXPIRED`,
    /// `AGENT_NOT_ATTESTED`, `AGENT_NOT_ACTIVE`, `AGENT_MUST_REATTEST`): the agent
    /// deletes its SVID and shuts down, so that the next start re-attests.
    pub fn must_reattest(&self) -> bool {
        matches!(
            self.permission_denied_reason(),
            Some(
                Reason::AgentExpired
                    | Reason::AgentNotAttested
                    | Reason::AgentNotActive
                    | Reason::AgentMustReattest
            )
        )
    }
}

/// The outcome of node attestation.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The agent SVID chain, leaf first.
    pub svid_chain: Vec<CertificateDer<'static>>,
    /// Whether the agent may attest again to renew (false for join tokens).
    pub reattestable: bool,
}

/// One workload SVID signed by the server, or the reason it was not.
#[derive(Debug, Clone)]
pub struct SignedSvid {
    /// The entry it was requested for.
    pub entry_id: String,
    /// The chain, or the server's per-entry error.
    pub result: Result<Vec<CertificateDer<'static>>, tonic::Status>,
}

/// A client of one SPIRE server. Clones share the connection; [`reconnect`] replaces
/// it, so that a rotated agent SVID is presented on the next calls.
///
/// [`reconnect`]: ServerClient::reconnect
#[derive(Debug, Clone)]
pub struct ServerClient {
    address: String,
    tls: Arc<rustls::ClientConfig>,
    channel: Arc<std::sync::RwLock<Channel>>,
}

impl ServerClient {
    /// A client for `address` (`host:port`) that trusts the bundles in `trust` and
    /// presents the SVID held by `svid` (none before attestation).
    pub fn new(
        address: &str,
        trust_domain: &TrustDomain,
        trust: Arc<TrustStore>,
        svid: Arc<SvidResolver>,
    ) -> Result<Self, ClientError> {
        let server_id = SpiffeId::new(trust_domain, "/spire/server")
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let tls = Arc::new(
            client_config(trust, server_id, svid)
                .map_err(|e| ClientError::Connect(e.to_string()))?,
        );
        let channel =
            tls_channel(address, tls.clone()).map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(ServerClient {
            address: address.to_owned(),
            tls,
            channel: Arc::new(std::sync::RwLock::new(channel)),
        })
    }

    /// Drops the current connection; the next call dials again (with the SVID the
    /// resolver holds then).
    pub fn reconnect(&self) -> Result<(), ClientError> {
        let channel = tls_channel(&self.address, self.tls.clone())
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        *self.channel.write().unwrap_or_else(|e| e.into_inner()) = channel;
        Ok(())
    }

    fn channel(&self) -> Channel {
        self.channel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn request<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(RPC_TIMEOUT);
        request
    }

    /// Attests with a join token: `AttestAgent` with `join_token` data and a CSR.
    pub async fn attest_join_token(
        &self,
        token: &str,
        csr: Vec<u8>,
    ) -> Result<Attested, ClientError> {
        let first = AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(AttestationData {
                        r#type: "join_token".into(),
                        payload: token.as_bytes().to_vec(),
                    }),
                    params: Some(AgentX509svidParams { csr }),
                },
            )),
        };
        let mut client = AgentClient::new(self.channel());
        let mut responses = client
            .attest_agent(Self::request(tokio_stream::once(first)))
            .await?
            .into_inner();
        while let Some(response) = responses.message().await? {
            match response.step {
                Some(attest_agent_response::Step::Result(result)) => {
                    let svid = result.svid.ok_or_else(|| {
                        ClientError::InvalidResponse("attestation result has no SVID".into())
                    })?;
                    return Ok(Attested {
                        svid_chain: chain(svid),
                        reattestable: result.reattestable,
                    });
                }
                Some(attest_agent_response::Step::Challenge(_)) => {
                    return Err(ClientError::InvalidResponse(
                        "the server sent a challenge for join_token attestation".into(),
                    ));
                }
                None => {}
            }
        }
        Err(ClientError::InvalidResponse(
            "attestation stream ended without a result".into(),
        ))
    }

    /// Attests with a node attestor plugin: `AttestAgent` with its payload and a CSR,
    /// answering every challenge the server relays until it returns the SVID.
    pub async fn attest(
        &self,
        attestor: &dyn crate::attestation::NodeAttestor,
        csr: Vec<u8>,
    ) -> Result<Attested, ClientError> {
        let payload = attestor
            .payload()
            .map_err(|e| ClientError::Attestor(e.to_string()))?;
        let (requests, rx) = tokio::sync::mpsc::channel(2);
        let first = AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(AttestationData {
                        r#type: attestor.name().to_owned(),
                        payload,
                    }),
                    params: Some(AgentX509svidParams { csr }),
                },
            )),
        };
        requests
            .send(first)
            .await
            .map_err(|_| ClientError::Attestor("attestation stream closed".into()))?;
        let mut client = AgentClient::new(self.channel());
        let mut responses = client
            .attest_agent(Self::request(tokio_stream::wrappers::ReceiverStream::new(
                rx,
            )))
            .await?
            .into_inner();
        while let Some(response) = responses.message().await? {
            match response.step {
                Some(attest_agent_response::Step::Result(result)) => {
                    let svid = result.svid.ok_or_else(|| {
                        ClientError::InvalidResponse("attestation result has no SVID".into())
                    })?;
                    return Ok(Attested {
                        svid_chain: chain(svid),
                        reattestable: result.reattestable,
                    });
                }
                Some(attest_agent_response::Step::Challenge(challenge)) => {
                    let answer = attestor
                        .respond(&challenge)
                        .map_err(|e| ClientError::Attestor(e.to_string()))?;
                    let step = AttestAgentRequest {
                        step: Some(attest_agent_request::Step::ChallengeResponse(answer)),
                    };
                    requests.send(step).await.map_err(|_| {
                        ClientError::InvalidResponse(
                            "the server closed the attestation stream".into(),
                        )
                    })?;
                }
                None => {}
            }
        }
        Err(ClientError::InvalidResponse(
            "attestation stream ended without a result".into(),
        ))
    }

    /// Renews the agent SVID (`RenewAgent`) with a CSR for a new key.
    pub async fn renew_agent(
        &self,
        csr: Vec<u8>,
    ) -> Result<Vec<CertificateDer<'static>>, ClientError> {
        let mut client = AgentClient::new(self.channel());
        let response = client
            .renew_agent(Self::request(RenewAgentRequest {
                params: Some(AgentX509svidParams { csr }),
            }))
            .await?
            .into_inner();
        let svid = response
            .svid
            .ok_or_else(|| ClientError::InvalidResponse("RenewAgent returned no SVID".into()))?;
        Ok(chain(svid))
    }

    /// The trust domain's bundle (`GetBundle`).
    pub async fn bundle(&self) -> Result<SpiffeBundle, ClientError> {
        Ok(self.bundle_with_taints().await?.0)
    }

    /// The trust domain's bundle (`GetBundle`) and the authorities the server marked
    /// tainted in it.
    pub async fn bundle_with_taints(
        &self,
    ) -> Result<(SpiffeBundle, TaintedAuthorities), ClientError> {
        let mut client = BundleClient::new(self.channel());
        let bundle = client
            .get_bundle(Self::request(GetBundleRequest { output_mask: None }))
            .await?
            .into_inner();
        let tainted = TaintedAuthorities::from_proto(&bundle);
        let bundle =
            bundle_from_proto(&bundle).map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
        Ok((bundle, tainted))
    }

    /// The entries authorized for this agent (`SyncAuthorizedEntries`, with the paging of
    /// agent.md §5.6 when the server sends revisions first).
    pub async fn authorized_entries(&self) -> Result<Vec<Entry>, ClientError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(SyncAuthorizedEntriesRequest::default())
            .await
            .map_err(|_| ClientError::InvalidResponse("sync request stream closed".into()))?;
        let mut client = EntryClient::new(self.channel());
        let mut responses = client
            .sync_authorized_entries(Self::request(tokio_stream::wrappers::ReceiverStream::new(
                rx,
            )))
            .await?
            .into_inner();
        let first = responses
            .message()
            .await?
            .ok_or_else(|| ClientError::InvalidResponse("sync stream ended at once".into()))?;
        if first.entry_revisions.is_empty() {
            return Ok(first.entries);
        }
        // Revisions first: collect them all, then ask for the full entries by ID.
        let mut ids: Vec<String> = first.entry_revisions.into_iter().map(|r| r.id).collect();
        let page = ids.len().max(1);
        let mut more = first.more;
        while more {
            let next = responses.message().await?.ok_or_else(|| {
                ClientError::InvalidResponse("sync stream ended during revisions".into())
            })?;
            ids.extend(next.entry_revisions.into_iter().map(|r| r.id));
            more = next.more;
        }
        ids.sort();
        let mut entries = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(page) {
            tx.send(SyncAuthorizedEntriesRequest {
                ids: chunk.to_vec(),
                ..Default::default()
            })
            .await
            .map_err(|_| ClientError::InvalidResponse("sync request stream closed".into()))?;
            loop {
                let next = responses.message().await?.ok_or_else(|| {
                    ClientError::InvalidResponse("sync stream ended during entries".into())
                })?;
                entries.extend(next.entries);
                if !next.more {
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// Signs workload SVIDs (`BatchNewX509SVID`), one CSR per entry.
    pub async fn new_x509_svids(
        &self,
        requests: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<SignedSvid>, ClientError> {
        let entry_ids: Vec<String> = requests.iter().map(|(id, _)| id.clone()).collect();
        let params = requests
            .into_iter()
            .map(|(entry_id, csr)| NewX509svidParams { entry_id, csr })
            .collect();
        let mut client = SvidClient::new(self.channel());
        let response = client
            .batch_new_x509svid(Self::request(BatchNewX509svidRequest { params }))
            .await?
            .into_inner();
        if response.results.len() != entry_ids.len() {
            return Err(ClientError::InvalidResponse(format!(
                "asked for {} SVIDs, got {} results",
                entry_ids.len(),
                response.results.len()
            )));
        }
        Ok(entry_ids
            .into_iter()
            .zip(response.results)
            .map(|(entry_id, result)| {
                let status = result.status.unwrap_or_default();
                let result = if status.code == 0 {
                    result.svid.map(chain).ok_or_else(|| {
                        tonic::Status::internal("server returned OK without an SVID")
                    })
                } else {
                    Err(tonic::Status::new(
                        tonic::Code::from_i32(status.code),
                        status.message,
                    ))
                };
                SignedSvid { entry_id, result }
            })
            .collect())
    }

    /// Mints a JWT-SVID for a workload entry (`NewJWTSVID`).
    pub async fn new_jwt_svid(
        &self,
        entry_id: &str,
        audience: &[String],
    ) -> Result<MintedJwtSvid, ClientError> {
        let mut client = SvidClient::new(self.channel());
        let response = client
            .new_jwtsvid(Self::request(NewJwtsvidRequest {
                entry_id: entry_id.to_owned(),
                audience: audience.to_vec(),
            }))
            .await?
            .into_inner();
        let svid = response
            .svid
            .ok_or_else(|| ClientError::InvalidResponse("NewJWTSVID returned no SVID".into()))?;
        let id = svid
            .id
            .as_ref()
            .ok_or_else(|| ClientError::InvalidResponse("JWT-SVID has no SPIFFE ID".into()))
            .and_then(|id| {
                id_from_proto(id).map_err(|e| {
                    ClientError::InvalidResponse(format!("JWT-SVID has an invalid SPIFFE ID: {e}"))
                })
            })?;
        if svid.token.is_empty() {
            return Err(ClientError::InvalidResponse(
                "NewJWTSVID returned an empty token".into(),
            ));
        }
        Ok(MintedJwtSvid {
            token: svid.token,
            spiffe_id: id,
            issued_at: svid.issued_at,
            expires_at: svid.expires_at,
        })
    }

    /// The server's CRLs (spire-rs `Revocation.GetX509CRLs`), DER, one per local X.509
    /// CA. A server without the service (SPIRE) answers `Unimplemented`.
    pub async fn x509_crls(&self) -> Result<Vec<Vec<u8>>, ClientError> {
        use spire_proto::spirers::server::revocation::v1::CrlRequest;
        use spire_proto::spirers::server::revocation::v1::revocation_client::RevocationClient;
        let mut client = RevocationClient::new(self.channel());
        let response = client
            .get_x509cr_ls(Self::request(CrlRequest {}))
            .await?
            .into_inner();
        Ok(response.crls.into_iter().map(|crl| crl.der).collect())
    }

    /// Opens the spire-rs push channel: a notification now and at every change.
    pub async fn watch_changes(&self) -> Result<tonic::Streaming<ChangeNotification>, ClientError> {
        let mut client = NotifyClient::new(self.channel());
        Ok(client
            .watch_changes(tonic::Request::new(WatchChangesRequest {}))
            .await?
            .into_inner())
    }
}

fn chain(svid: X509svid) -> Vec<CertificateDer<'static>> {
    svid.cert_chain
        .into_iter()
        .map(CertificateDer::from)
        .collect()
}

#[tonic::async_trait]
impl JwtSvidMinter for ServerClient {
    async fn new_jwt_svid(
        &self,
        entry_id: &str,
        audience: &[String],
    ) -> Result<MintedJwtSvid, String> {
        ServerClient::new_jwt_svid(self, entry_id, audience)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PermissionDenied status as the server builds it.
    fn denied(reason: Reason) -> ClientError {
        ClientError::Status(spire_common::status::permission_denied_with_reason(
            "denied",
            reason as i32,
        ))
    }

    #[test]
    fn permission_denied_reasons_are_decoded() {
        assert!(denied(Reason::AgentBanned).is_agent_banned());
        assert!(!denied(Reason::AgentBanned).must_reattest());
        for reason in [
            Reason::AgentExpired,
            Reason::AgentNotAttested,
            Reason::AgentNotActive,
            Reason::AgentMustReattest,
        ] {
            assert!(denied(reason).must_reattest(), "{reason:?}");
            assert!(!denied(reason).is_agent_banned(), "{reason:?}");
        }
        let plain = ClientError::Status(tonic::Status::permission_denied("no details"));
        assert_eq!(plain.permission_denied_reason(), None);
        assert!(!ClientError::Connect("down".into()).is_agent_banned());
    }
}

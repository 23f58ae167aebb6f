//! Output masks on Entry and Agent replies, against a running server: with a mask only
//! the selected fields (and the ID) are populated, without one everything is. Entry
//! RPCs go over the admin socket; the agent-only ones (GetAuthorizedEntries,
//! SyncAuthorizedEntries) over mTLS as an agent attested with a join token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::TestServer;

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{BundleSet, SpiffeId, TrustDomain, X509Svid};
use spire_common::tls::{SvidResolver, TrustStore, client_config};
use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::types::{
    AgentMask, AttestationData, Entry, EntryMask, Selector, Spiffeid,
};
use tonic::transport::Channel;

fn proto_id(id: &str) -> Spiffeid {
    spire_common::convert::id_to_proto(&SpiffeId::parse(id).unwrap())
}

fn entry(id: &str, parent: &str, uid: u32) -> Entry {
    Entry {
        spiffe_id: Some(proto_id(id)),
        parent_id: Some(proto_id(parent)),
        selectors: vec![Selector {
            r#type: "unix".into(),
            value: format!("uid:{uid}"),
        }],
        x509_svid_ttl: 600,
        hint: "masked".into(),
        dns_names: vec!["w.example.org".into()],
        ..Default::default()
    }
}

/// Only the hint and revision number (and always the ID).
fn hint_mask() -> EntryMask {
    EntryMask {
        hint: true,
        revision_number: true,
        ..Default::default()
    }
}

fn assert_hint_only(e: &Entry) {
    assert!(!e.id.is_empty());
    assert_eq!(e.hint, "masked");
    assert!(e.spiffe_id.is_none() && e.parent_id.is_none(), "{e:?}");
    assert!(e.selectors.is_empty() && e.dns_names.is_empty(), "{e:?}");
    assert_eq!((e.x509_svid_ttl, e.created_at), (0, 0), "{e:?}");
}

fn assert_whole(e: &Entry) {
    assert!(e.spiffe_id.is_some() && e.parent_id.is_some(), "{e:?}");
    assert_eq!(e.selectors.len(), 1);
    assert_eq!(e.dns_names, ["w.example.org"]);
    assert_eq!(e.x509_svid_ttl, 600);
    assert!(e.created_at > 0);
}

/// A TLS channel to the server's TCP endpoint, presenting `svid` if given.
async fn tls_channel(server: &TestServer, svid: Option<&X509Svid>) -> Channel {
    let bundle = spire_common::convert::bundle_from_proto(&server.bundle().await).unwrap();
    let mut set = BundleSet::new();
    set.insert(bundle);
    let resolver = Arc::new(SvidResolver::new());
    if let Some(svid) = svid {
        resolver.set_svid(svid).unwrap();
    }
    let td = TrustDomain::new("example.org").unwrap();
    let config = client_config(
        Arc::new(TrustStore::new(set)),
        SpiffeId::new(&td, "/spire/server").unwrap(),
        resolver,
    )
    .unwrap();
    spire_common::grpc_tls::tls_channel(&format!("127.0.0.1:{}", server.port), Arc::new(config))
        .unwrap()
}

/// Attests an agent with a fresh join token; returns its ID and SVID.
async fn attest_agent(server: &TestServer) -> (String, X509Svid) {
    let token = AgentClient::new(server.channel())
        .create_join_token(agentpb::CreateJoinTokenRequest {
            ttl: 600,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .value;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    let first = agentpb::AttestAgentRequest {
        step: Some(agentpb::attest_agent_request::Step::Params(
            agentpb::attest_agent_request::Params {
                data: Some(AttestationData {
                    r#type: "join_token".into(),
                    payload: token.as_bytes().to_vec(),
                }),
                params: Some(agentpb::AgentX509svidParams { csr }),
            },
        )),
    };
    let channel = tls_channel(server, None).await;
    let mut responses = AgentClient::new(channel)
        .attest_agent(tokio_stream::once(first))
        .await
        .unwrap()
        .into_inner();
    let svid = loop {
        let response = responses.message().await.unwrap().unwrap();
        if let Some(agentpb::attest_agent_response::Step::Result(result)) = response.step {
            break result.svid.unwrap();
        }
    };
    let chain = svid
        .cert_chain
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let svid = X509Svid::from_parts(
        chain,
        PrivatePkcs8KeyDer::from(key.serialized_der().to_vec()),
    )
    .unwrap();
    (
        format!("spiffe://example.org/spire/agent/join_token/{token}"),
        svid,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_and_agent_replies_honour_output_masks() {
    let server = TestServer::start().await;
    let (agent_id, agent_svid) = attest_agent(&server).await;
    let mut entries = EntryClient::new(server.channel());

    // BatchCreateEntry: the created entry is masked; so is the existing one of a
    // duplicate.
    let created = entries
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![
                entry("spiffe://example.org/w1", &agent_id, 1),
                entry("spiffe://example.org/w1", &agent_id, 1),
            ],
            output_mask: Some(hint_mask()),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(created[0].status.as_ref().unwrap().code, 0);
    assert_hint_only(created[0].entry.as_ref().unwrap());
    assert_eq!(created[1].status.as_ref().unwrap().code, 6, "{created:?}");
    assert_hint_only(created[1].entry.as_ref().unwrap());
    let id = created[0].entry.as_ref().unwrap().id.clone();
    // No mask: whole entries.
    let whole = entries
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![entry("spiffe://example.org/w2", &agent_id, 2)],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_whole(whole[0].entry.as_ref().unwrap());

    // GetEntry and ListEntries.
    let got = entries
        .get_entry(entrypb::GetEntryRequest {
            id: id.clone(),
            output_mask: Some(hint_mask()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, id);
    assert_hint_only(&got);
    let listed = entries
        .list_entries(entrypb::ListEntriesRequest {
            output_mask: Some(hint_mask()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(listed.len(), 2);
    listed.iter().for_each(assert_hint_only);
    let listed = entries
        .list_entries(entrypb::ListEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    listed.iter().for_each(assert_whole);

    // BatchUpdateEntry.
    let mut update = entry("spiffe://example.org/w1", &agent_id, 1);
    update.id = id.clone();
    update.x509_svid_ttl = 900;
    let updated = entries
        .batch_update_entry(entrypb::BatchUpdateEntryRequest {
            entries: vec![update],
            input_mask: None,
            output_mask: Some(EntryMask {
                x509_svid_ttl: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let e = updated[0].entry.as_ref().unwrap();
    assert_eq!((e.id.as_str(), e.x509_svid_ttl), (id.as_str(), 900));
    assert!(e.hint.is_empty() && e.spiffe_id.is_none() && e.revision_number == 0);

    // The agent's own RPCs.
    let agent_channel = tls_channel(&server, Some(&agent_svid)).await;
    let mut as_agent = EntryClient::new(agent_channel);
    let authorized = as_agent
        .get_authorized_entries(entrypb::GetAuthorizedEntriesRequest {
            output_mask: Some(hint_mask()),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(authorized.len(), 2, "{authorized:?}");
    authorized.iter().for_each(assert_hint_only);
    let mut stream = as_agent
        .sync_authorized_entries(tokio_stream::once(entrypb::SyncAuthorizedEntriesRequest {
            output_mask: Some(hint_mask()),
            ids: Vec::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let synced = stream.message().await.unwrap().unwrap().entries;
    assert_eq!(synced.len(), 2);
    synced.iter().for_each(assert_hint_only);
    assert!(synced.iter().all(|e| e.revision_number >= 0));

    // ListAgents and GetAgent.
    let mut agents = AgentClient::new(server.channel());
    let mask = AgentMask {
        attestation_type: true,
        ..Default::default()
    };
    let listed = agents
        .list_agents(agentpb::ListAgentsRequest {
            output_mask: Some(mask),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(listed.len(), 1);
    let a = &listed[0];
    assert_eq!(a.id.as_ref().unwrap(), &proto_id(&agent_id));
    assert_eq!(a.attestation_type, "join_token");
    assert!(a.x509svid_serial_number.is_empty() && a.x509svid_expires_at == 0);
    assert!(a.selectors.is_empty());
    let got = agents
        .get_agent(agentpb::GetAgentRequest {
            id: Some(proto_id(&agent_id)),
            output_mask: Some(AgentMask {
                x509svid_expires_at: true,
                selectors: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.attestation_type.is_empty() && got.x509svid_serial_number.is_empty());
    assert!(got.x509svid_expires_at > 0);
    let whole = agents
        .get_agent(agentpb::GetAgentRequest {
            id: Some(proto_id(&agent_id)),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.attestation_type, "join_token");
    assert!(!whole.x509svid_serial_number.is_empty());
    server.stop().await;
}

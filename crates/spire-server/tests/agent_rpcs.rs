//! The agent-only RPCs succeed for an attested agent over mTLS on the TCP endpoint:
//! `RenewAgent` (a new SVID for the same agent ID) and `BatchNewX509SVID` (a workload
//! SVID for an entry parented to the agent).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, agent_channel, attest_with_svid};

use rcgen::{CertificateParams, KeyPair};
use spiffe_core::{SpiffeId, X509Svid};
use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use spire_proto::spire::api::types::{Entry, Selector};

fn csr(key: &KeyPair) -> Vec<u8> {
    CertificateParams::default()
        .serialize_request(key)
        .unwrap()
        .der()
        .to_vec()
}

fn proto_id(id: &str) -> spire_proto::spire::api::types::Spiffeid {
    spire_common::convert::id_to_proto(&SpiffeId::parse(id).unwrap())
}

#[tokio::test]
async fn renew_agent_and_batch_new_x509_svid_as_an_agent() {
    let server = TestServer::start().await;
    let (path, chain, key) = attest_with_svid(&server).await;
    let agent_id = format!("spiffe://example.org{path}");
    let channel = agent_channel(&server, &chain, &key).await;

    let new_key = KeyPair::generate().unwrap();
    let renewed = AgentClient::new(channel.clone())
        .renew_agent(agentpb::RenewAgentRequest {
            params: Some(agentpb::AgentX509svidParams { csr: csr(&new_key) }),
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    let renewed = X509Svid::parse_der(&renewed.cert_chain.concat(), &new_key.serialize_der())
        .expect("the renewed SVID matches the new key");
    assert_eq!(renewed.spiffe_id().to_string(), agent_id);

    let created = EntryClient::new(server.channel())
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![Entry {
                spiffe_id: Some(proto_id("spiffe://example.org/workload")),
                parent_id: Some(proto_id(&agent_id)),
                selectors: vec![Selector {
                    r#type: "unix".into(),
                    value: "uid:1000".into(),
                }],
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let entry_id = created[0].entry.as_ref().unwrap().id.clone();

    // The agent uses the renewed SVID from now on.
    let channel = agent_channel(
        &server,
        &renewed
            .cert_chain()
            .iter()
            .flat_map(|c| c.as_ref().to_vec())
            .collect::<Vec<u8>>(),
        &new_key.serialize_der(),
    )
    .await;
    let workload_key = KeyPair::generate().unwrap();
    let results = SvidClient::new(channel)
        .batch_new_x509svid(svidpb::BatchNewX509svidRequest {
            params: vec![svidpb::NewX509svidParams {
                entry_id,
                csr: csr(&workload_key),
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{results:?}");
    let svid = results[0].svid.as_ref().unwrap();
    let svid = X509Svid::parse_der(&svid.cert_chain.concat(), &workload_key.serialize_der())
        .expect("the workload SVID matches its key");
    assert_eq!(
        svid.spiffe_id().to_string(),
        "spiffe://example.org/workload"
    );
}

//! Page tokens survive concurrent writes: paging through ListEntries, ListAgents and
//! ListFederationRelationships over the admin socket while items are created, updated
//! and deleted between pages returns no item twice and skips none of those that existed
//! throughout (the tokens are keyset cursors on the stable row ID, as SPIRE's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, attest_with_svid};

use std::collections::HashSet;

use spiffe_core::SpiffeId;
use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::trustdomain::v1 as tdpb;
use spire_proto::spire::api::server::trustdomain::v1::trust_domain_client::TrustDomainClient;
use spire_proto::spire::api::types::federation_relationship::BundleEndpointProfile;
use spire_proto::spire::api::types::{
    Entry, FederationRelationship, HttpsWebProfile, Selector, Spiffeid,
};

const PAGE: i32 = 4;

/// Between this many first pages, items are written.
const CHURN_ROUNDS: usize = 5;

fn proto_id(id: &str) -> Spiffeid {
    spire_common::convert::id_to_proto(&SpiffeId::parse(id).unwrap())
}

/// Checks one full walk: nothing twice, every item of `stable` present.
fn assert_walk(walked: &[String], stable: &[String]) {
    let mut seen = HashSet::new();
    for item in walked {
        assert!(seen.insert(item), "{item} returned twice in {walked:?}");
    }
    for item in stable {
        assert!(seen.contains(item), "{item} skipped; walked {walked:?}");
    }
}

async fn create_entries(server: &TestServer, names: &[String]) -> Vec<String> {
    let entries = names
        .iter()
        .map(|name| Entry {
            spiffe_id: Some(proto_id(&format!("spiffe://example.org/{name}"))),
            parent_id: Some(proto_id("spiffe://example.org/node")),
            selectors: vec![Selector {
                r#type: "unix".into(),
                value: format!("user:{name}"),
            }],
            ..Default::default()
        })
        .collect();
    EntryClient::new(server.channel())
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .into_iter()
        .map(|r| {
            assert_eq!(r.status.as_ref().unwrap().code, 0, "{r:?}");
            r.entry.unwrap().id
        })
        .collect()
}

#[tokio::test]
async fn list_entries_pages_survive_creates_updates_and_deletes() {
    let server = TestServer::start().await;
    let names: Vec<String> = (0..32).map(|i| format!("w{i:02}")).collect();
    let ids = create_entries(&server, &names).await;
    // Even-numbered entries stay; odd-numbered ones are churned away as paging goes.
    let stable: Vec<String> = ids.iter().step_by(2).cloned().collect();
    let mut churn: Vec<String> = ids.iter().skip(1).step_by(2).cloned().collect();

    let mut client = EntryClient::new(server.channel());
    let (mut walked, mut token, mut round) = (Vec::new(), String::new(), 0);
    loop {
        let page = client
            .list_entries(entrypb::ListEntriesRequest {
                page_size: PAGE,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        walked.extend(page.entries.into_iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // Writes stop after a few pages, so that the walk reaches the end.
        if round >= CHURN_ROUNDS {
            continue;
        }
        // Between pages: delete one churn entry behind the cursor and one ahead of it,
        // create two new ones, and update a stable one.
        let doomed: Vec<String> = [churn.first().cloned(), churn.pop()]
            .into_iter()
            .flatten()
            .collect();
        churn.retain(|id| !doomed.contains(id));
        if !doomed.is_empty() {
            client
                .batch_delete_entry(entrypb::BatchDeleteEntryRequest { ids: doomed })
                .await
                .unwrap();
        }
        create_entries(&server, &[format!("new{round}a"), format!("new{round}b")]).await;
        let mut updated = client
            .get_entry(entrypb::GetEntryRequest {
                id: stable[round % stable.len()].clone(),
                output_mask: None,
            })
            .await
            .unwrap()
            .into_inner();
        updated.hint = format!("round {round}");
        let results = client
            .batch_update_entry(entrypb::BatchUpdateEntryRequest {
                entries: vec![updated],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{results:?}");
        round += 1;
        assert!(round < 100, "paging does not end: {walked:?}");
    }
    assert_eq!(round, CHURN_ROUNDS, "too few pages to exercise churn");
    assert_walk(&walked, &stable);
}

#[tokio::test]
async fn list_agents_pages_survive_attestations_and_deletes() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(attest_with_svid(&server).await.0);
    }
    let stable: Vec<String> = ids.iter().step_by(2).cloned().collect();
    let mut churn: Vec<String> = ids.iter().skip(1).step_by(2).cloned().collect();

    let mut client = AgentClient::new(server.channel());
    let (mut walked, mut token, mut round) = (Vec::new(), String::new(), 0);
    loop {
        let page = client
            .list_agents(agentpb::ListAgentsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        walked.extend(page.agents.into_iter().map(|a| a.id.unwrap().path));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // Writes stop after a few pages, so that the walk reaches the end.
        if round >= CHURN_ROUNDS {
            continue;
        }
        let doomed: Vec<String> = [churn.first().cloned(), churn.pop()]
            .into_iter()
            .flatten()
            .collect();
        churn.retain(|id| !doomed.contains(id));
        for path in doomed {
            client
                .delete_agent(agentpb::DeleteAgentRequest {
                    id: Some(proto_id(&format!("spiffe://example.org{path}"))),
                })
                .await
                .unwrap();
        }
        attest_with_svid(&server).await;
        round += 1;
        assert!(round < 100, "paging does not end: {walked:?}");
    }
    assert_eq!(round, CHURN_ROUNDS, "too few pages to exercise churn");
    assert_walk(&walked, &stable);
}

fn relationship(td: &str) -> FederationRelationship {
    FederationRelationship {
        trust_domain: td.into(),
        bundle_endpoint_url: format!("https://{td}/bundle"),
        bundle_endpoint_profile: Some(BundleEndpointProfile::HttpsWeb(HttpsWebProfile {})),
        trust_domain_bundle: None,
    }
}

async fn create_relationships(
    client: &mut TrustDomainClient<tonic::transport::Channel>,
    tds: &[String],
) {
    let results = client
        .batch_create_federation_relationship(tdpb::BatchCreateFederationRelationshipRequest {
            federation_relationships: tds.iter().map(|td| relationship(td)).collect(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    for r in results {
        assert_eq!(r.status.as_ref().unwrap().code, 0, "{r:?}");
    }
}

#[tokio::test]
async fn list_federation_relationships_pages_survive_creates_and_deletes() {
    let server = TestServer::start().await;
    let mut client = TrustDomainClient::new(server.channel());
    let tds: Vec<String> = (0..20).map(|i| format!("td{i:02}.test")).collect();
    create_relationships(&mut client, &tds).await;
    let stable: Vec<String> = tds.iter().step_by(2).cloned().collect();
    let mut churn: Vec<String> = tds.iter().skip(1).step_by(2).cloned().collect();

    let (mut walked, mut token, mut round) = (Vec::new(), String::new(), 0);
    loop {
        let page = client
            .list_federation_relationships(tdpb::ListFederationRelationshipsRequest {
                page_size: PAGE,
                page_token: token.clone(),
                output_mask: None,
            })
            .await
            .unwrap()
            .into_inner();
        walked.extend(
            page.federation_relationships
                .into_iter()
                .map(|r| r.trust_domain),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // Writes stop after a few pages, so that the walk reaches the end.
        if round >= CHURN_ROUNDS {
            continue;
        }
        let doomed: Vec<String> = [churn.first().cloned(), churn.pop()]
            .into_iter()
            .flatten()
            .collect();
        churn.retain(|td| !doomed.contains(td));
        if !doomed.is_empty() {
            client
                .batch_delete_federation_relationship(
                    tdpb::BatchDeleteFederationRelationshipRequest {
                        trust_domains: doomed,
                    },
                )
                .await
                .unwrap();
        }
        create_relationships(&mut client, &[format!("new{round}.test")]).await;
        round += 1;
        assert!(round < 100, "paging does not end: {walked:?}");
    }
    assert_eq!(round, CHURN_ROUNDS, "too few pages to exercise churn");
    assert_walk(&walked, &stable);
}

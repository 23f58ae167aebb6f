//! The operator surface over the real admin socket: the server runs in-process on a temp
//! dir and is driven with the generated gRPC clients and with the `spire-server` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, agent_channel, attest_with_svid, cli, cli_stdin};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::types::{self, Entry, Selector, Spiffeid};
use tonic::Code;
use tonic::transport::Channel;

impl TestServer {
    fn entries(&self) -> EntryClient<Channel> {
        EntryClient::new(self.channel())
    }

    fn agents(&self) -> AgentClient<Channel> {
        AgentClient::new(self.channel())
    }
}

fn id(path: &str) -> Option<Spiffeid> {
    Some(Spiffeid {
        trust_domain: "example.org".into(),
        path: path.into(),
    })
}

fn workload_entry(path: &str, uid: &str) -> Entry {
    Entry {
        spiffe_id: id(path),
        parent_id: id("/spire/agent/x"),
        selectors: vec![Selector {
            r#type: "unix".into(),
            value: format!("uid:{uid}"),
        }],
        ..Default::default()
    }
}

async fn create(server: &TestServer, entry: Entry) -> Entry {
    let result = server
        .entries()
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![entry],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .remove(0);
    assert_eq!(result.status.unwrap().code, 0);
    result.entry.unwrap()
}

/// A self-signed CA certificate (DER) for federated bundles.
fn ca_cert() -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn federated(td: &str) -> types::Bundle {
    types::Bundle {
        trust_domain: td.into(),
        x509_authorities: vec![types::X509Certificate {
            asn1: ca_cert(),
            tainted: false,
        }],
        ..Default::default()
    }
}

/// Attests an agent with a join token over the admin socket; returns its path.
async fn attest(server: &TestServer) -> String {
    attest_with_svid(server).await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_update_delete_count() {
    let server = TestServer::start().await;
    let created = create(&server, workload_entry("/w1", "1000")).await;
    assert_eq!(created.revision_number, 0);

    // Full update replaces the entry and bumps the revision.
    let mut update = workload_entry("/w1b", "1001");
    update.id = created.id.clone();
    update.hint = "h".into();
    let result = server
        .entries()
        .batch_update_entry(entrypb::BatchUpdateEntryRequest {
            entries: vec![update],
            input_mask: None,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .remove(0);
    assert_eq!(result.status.as_ref().unwrap().code, 0);
    let updated = result.entry.unwrap();
    assert_eq!(updated.spiffe_id.as_ref().unwrap().path, "/w1b");
    assert_eq!(updated.selectors[0].value, "uid:1001");
    assert_eq!(updated.hint, "h");
    assert_eq!(updated.revision_number, 1);

    // A masked update only touches the masked fields (and only they are validated).
    let partial = Entry {
        id: created.id.clone(),
        x509_svid_ttl: 90,
        ..Default::default()
    };
    let result = server
        .entries()
        .batch_update_entry(entrypb::BatchUpdateEntryRequest {
            entries: vec![partial],
            input_mask: Some(types::EntryMask {
                x509_svid_ttl: true,
                ..Default::default()
            }),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .remove(0);
    assert_eq!(result.status.as_ref().unwrap().code, 0, "{result:?}");
    let updated = result.entry.unwrap();
    assert_eq!(updated.x509_svid_ttl, 90);
    assert_eq!(updated.spiffe_id.as_ref().unwrap().path, "/w1b");
    assert_eq!(updated.hint, "h");
    assert_eq!(updated.revision_number, 2);

    // Validation errors, per item.
    let mut reserved = workload_entry("/spire/x", "1");
    reserved.id = created.id.clone();
    let mut unknown = workload_entry("/w9", "9");
    unknown.id = "no-such-entry".into();
    let mut bad_fed = workload_entry("/w1b", "1001");
    bad_fed.id = created.id.clone();
    bad_fed.federates_with = vec!["other.org".into()];
    let results = server
        .entries()
        .batch_update_entry(entrypb::BatchUpdateEntryRequest {
            entries: vec![workload_entry("/noid", "1"), reserved, unknown, bad_fed],
            input_mask: None,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let codes: Vec<i32> = results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(
        codes,
        vec![
            Code::InvalidArgument as i32,
            Code::InvalidArgument as i32,
            Code::NotFound as i32,
            Code::InvalidArgument as i32
        ]
    );
    assert_eq!(
        results[0].status.as_ref().unwrap().message,
        "failed to convert entry: missing entry ID"
    );
    assert!(
        results[3]
            .status
            .as_ref()
            .unwrap()
            .message
            .contains("unable to find federated bundle")
    );

    // Count, then delete with per-item statuses.
    let second = create(&server, workload_entry("/w2", "2000")).await;
    let count = server
        .entries()
        .count_entries(entrypb::CountEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 2);
    let results = server
        .entries()
        .batch_delete_entry(entrypb::BatchDeleteEntryRequest {
            ids: vec![second.id.clone(), second.id.clone(), String::new()],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let statuses: Vec<(i32, String, String)> = results
        .into_iter()
        .map(|r| {
            let s = r.status.unwrap();
            (s.code, s.message, r.id)
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (0, "OK".into(), second.id.clone()),
            (
                Code::NotFound as i32,
                "entry not found".into(),
                second.id.clone()
            ),
            (
                Code::InvalidArgument as i32,
                "missing entry ID".into(),
                String::new()
            ),
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_list_get_ban_delete() {
    let server = TestServer::start().await;
    let none = server
        .agents()
        .list_agents(agentpb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(none.agents.is_empty());
    let path_a = attest(&server).await;
    let path_b = attest(&server).await;

    let all = server
        .agents()
        .list_agents(agentpb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.agents.len(), 2);
    assert_eq!(all.agents[0].attestation_type, "join_token");
    assert!(!all.agents[0].x509svid_serial_number.is_empty());
    assert!(all.agents[0].x509svid_expires_at > 0);

    // Pagination: one per page.
    let page = server
        .agents()
        .list_agents(agentpb::ListAgentsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.agents.len(), 1);
    assert!(!page.next_page_token.is_empty());
    let page2 = server
        .agents()
        .list_agents(agentpb::ListAgentsRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.agents.len(), 1);
    assert_ne!(page2.agents[0].id, page.agents[0].id);

    // Get.
    let agent = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id(&path_a),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agent.id, id(&path_a));
    assert!(!agent.banned);

    // Ban: filters and count follow.
    server
        .agents()
        .ban_agent(agentpb::BanAgentRequest { id: id(&path_a) })
        .await
        .unwrap();
    let banned = server
        .agents()
        .list_agents(agentpb::ListAgentsRequest {
            filter: Some(agentpb::list_agents_request::Filter {
                by_banned: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(banned.agents.len(), 1);
    assert!(banned.agents[0].banned);
    assert_eq!(banned.agents[0].id, id(&path_a));
    let count = |filter: agentpb::count_agents_request::Filter| {
        let mut client = server.agents();
        async move {
            client
                .count_agents(agentpb::CountAgentsRequest {
                    filter: Some(filter),
                })
                .await
                .unwrap()
                .into_inner()
                .count
        }
    };
    assert_eq!(count(Default::default()).await, 2);
    assert_eq!(
        count(agentpb::count_agents_request::Filter {
            by_banned: Some(false),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(agentpb::count_agents_request::Filter {
            by_attestation_type: "x509pop".into(),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(agentpb::count_agents_request::Filter {
            by_can_reattest: Some(false),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(agentpb::count_agents_request::Filter {
            by_expires_before: "2000-01-01 00:00:00 +0000 UTC".into(),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(agentpb::count_agents_request::Filter {
            by_expires_before: "2999-01-01 00:00:00 +0000 UTC".into(),
            ..Default::default()
        })
        .await,
        2
    );

    // Delete (evict), then NotFound.
    server
        .agents()
        .delete_agent(agentpb::DeleteAgentRequest { id: id(&path_b) })
        .await
        .unwrap();
    let err = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id(&path_b),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "agent not found");
    for err in [
        server
            .agents()
            .delete_agent(agentpb::DeleteAgentRequest { id: id(&path_b) })
            .await
            .unwrap_err(),
        server
            .agents()
            .ban_agent(agentpb::BanAgentRequest { id: id(&path_b) })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.message(), "agent not found");
    }

    // Agent ID validation.
    let err = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id("/workload"),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid agent ID: \"spiffe://example.org/workload\" is not an agent in trust domain \"example.org\"; path is not in the agent namespace"
    );
    let err = server
        .agents()
        .ban_agent(agentpb::BanAgentRequest {
            id: Some(Spiffeid {
                trust_domain: "other.org".into(),
                path: "/spire/agent/x".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("is not a member of trust domain"));
    let err = server
        .agents()
        .delete_agent(agentpb::DeleteAgentRequest { id: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // PostStatus from an agent over mTLS stores its version.
    let (path_c, chain, key) = attest_with_svid(&server).await;
    let mut as_agent = AgentClient::new(agent_channel(&server, &chain, &key).await);
    as_agent
        .post_status(agentpb::PostStatusRequest {
            current_bundle_serial: 1,
            agent_version: "1.2.3".into(),
        })
        .await
        .unwrap();
    let err = as_agent
        .post_status(agentpb::PostStatusRequest {
            current_bundle_serial: 1,
            agent_version: "x".repeat(256),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "agent version is too long (max 255 characters)"
    );
    let agent = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id(&path_c),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agent.agent_version, "1.2.3");
    let masked = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id(&path_c),
            output_mask: Some(types::AgentMask {
                agent_version: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(masked.agent_version, "1.2.3");
    assert!(masked.attestation_type.is_empty());
    assert_eq!(masked.x509svid_expires_at, 0);

    // PostStatus is for agents only: the admin socket is refused.
    let err = server
        .agents()
        .post_status(agentpb::PostStatusRequest {
            current_bundle_serial: 0,
            agent_version: "1.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_bundles() {
    let server = TestServer::start().await;
    let mut client = server.bundles();
    assert_eq!(
        client
            .count_bundles(bundlepb::CountBundlesRequest {})
            .await
            .unwrap()
            .into_inner()
            .count,
        1
    );

    // Create: own TD refused, malformed refused, duplicates AlreadyExists.
    let results = client
        .batch_create_federated_bundle(bundlepb::BatchCreateFederatedBundleRequest {
            bundle: vec![
                federated("one.org"),
                federated("example.org"),
                federated("one.org"),
                types::Bundle {
                    trust_domain: "two.org".into(),
                    x509_authorities: vec![types::X509Certificate {
                        asn1: b"junk".to_vec(),
                        tainted: false,
                    }],
                    ..Default::default()
                },
            ],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let statuses: Vec<(i32, String)> = results
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap();
            (s.code, s.message)
        })
        .collect();
    assert_eq!(statuses[0], (0, "OK".into()));
    assert_eq!(results[0].bundle.as_ref().unwrap().trust_domain, "one.org");
    assert_eq!(
        statuses[1],
        (
            Code::InvalidArgument as i32,
            "creating a federated bundle for the server's own trust domain is not allowed".into()
        )
    );
    assert_eq!(
        statuses[2],
        (Code::AlreadyExists as i32, "bundle already exists".into())
    );
    assert_eq!(statuses[3].0, Code::InvalidArgument as i32);
    assert!(statuses[3].1.starts_with("failed to convert bundle"));

    // Get / list.
    let got = client
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest {
            trust_domain: "one.org".into(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.x509_authorities.len(), 1);
    let err = client
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest {
            trust_domain: "example.org".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest {
            trust_domain: "nope.org".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "bundle not found");
    let err = client
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest {
            trust_domain: "Bad Domain".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Set creates or replaces; update needs an existing bundle.
    let results = client
        .batch_set_federated_bundle(bundlepb::BatchSetFederatedBundleRequest {
            bundle: vec![federated("two.org"), federated("example.org")],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0);
    assert_eq!(
        results[1].status.as_ref().unwrap().code,
        Code::InvalidArgument as i32
    );
    let mut changed = federated("two.org");
    changed.refresh_hint = 60;
    let results = client
        .batch_update_federated_bundle(bundlepb::BatchUpdateFederatedBundleRequest {
            bundle: vec![changed, federated("three.org")],
            input_mask: Some(types::BundleMask {
                refresh_hint: true,
                ..Default::default()
            }),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0);
    assert_eq!(results[0].bundle.as_ref().unwrap().refresh_hint, 60);
    assert_eq!(
        results[1].status.as_ref().unwrap().code,
        Code::NotFound as i32
    );

    let list = client
        .list_federated_bundles(bundlepb::ListFederatedBundlesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list
        .bundles
        .iter()
        .map(|b| b.trust_domain.as_str())
        .collect();
    assert_eq!(names, vec!["one.org", "two.org"]);
    assert_eq!(
        client
            .count_bundles(bundlepb::CountBundlesRequest {})
            .await
            .unwrap()
            .into_inner()
            .count,
        3
    );

    // Delete: own TD refused, unknown NotFound, restrict blocks federated entries.
    let mut fed_entry = workload_entry("/fed", "5");
    fed_entry.federates_with = vec!["one.org".into()];
    create(&server, fed_entry).await;
    let results = client
        .batch_delete_federated_bundle(bundlepb::BatchDeleteFederatedBundleRequest {
            trust_domains: vec![
                "two.org".into(),
                "example.org".into(),
                "nope.org".into(),
                "one.org".into(),
            ],
            mode: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let codes: Vec<i32> = results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(
        codes,
        vec![
            0,
            Code::InvalidArgument as i32,
            Code::NotFound as i32,
            Code::FailedPrecondition as i32
        ]
    );
    assert_eq!(results[0].trust_domain, "two.org");
    let results = client
        .batch_delete_federated_bundle(bundlepb::BatchDeleteFederatedBundleRequest {
            trust_domains: vec!["one.org".into()],
            mode: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0);

    // Append to the own bundle.
    let before = client
        .get_bundle(bundlepb::GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let err = client
        .append_bundle(bundlepb::AppendBundleRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let extra = ca_cert();
    let after = client
        .append_bundle(bundlepb::AppendBundleRequest {
            x509_authorities: vec![types::X509Certificate {
                asn1: extra.clone(),
                tainted: false,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.x509_authorities.len(),
        before.x509_authorities.len() + 1
    );
    assert!(after.x509_authorities.iter().any(|a| a.asn1 == extra));
    assert_eq!(after.sequence_number, before.sequence_number + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_entry_commands() {
    let server = TestServer::start().await;
    let created = create(&server, workload_entry("/w1", "1000")).await;
    create(&server, workload_entry("/w2", "2000")).await;

    let (ok, out, _) = cli(&server, &["entry", "count"]).await;
    assert!(ok);
    assert_eq!(out, "2 registration entries\n");

    let (ok, out, err) = cli(
        &server,
        &[
            "entry",
            "update",
            "-entryID",
            &created.id,
            "-parentID",
            "spiffe://example.org/spire/agent/x",
            "-spiffeID",
            "spiffe://example.org/w1new",
            "-selector",
            "unix:uid:1001",
            "-x509SVIDTTL",
            "300",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!(
            "Entry ID                : {}\n\
             SPIFFE ID               : spiffe://example.org/w1new\n\
             Parent ID               : spiffe://example.org/spire/agent/x\n\
             Revision                : 1\n\
             X509-SVID TTL           : 300\n\
             JWT-SVID TTL            : default\n\
             Selector                : unix:uid:1001\n\n",
            created.id
        )
    );

    let (ok, _, err) = cli(
        &server,
        &[
            "entry",
            "update",
            "-parentID",
            "spiffe://example.org/spire/agent/x",
            "-spiffeID",
            "spiffe://example.org/w1new",
            "-selector",
            "unix:uid:1001",
        ],
    )
    .await;
    assert!(!ok);
    assert_eq!(err, "Error: entry ID is required\n");

    let (ok, _, err) = cli(
        &server,
        &[
            "entry",
            "update",
            "-entryID",
            "missing",
            "-parentID",
            "spiffe://example.org/spire/agent/x",
            "-spiffeID",
            "spiffe://example.org/w1new",
            "-selector",
            "unix:uid:1001",
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.starts_with("Failed to update the following entry (code: NotFound, msg: "),
        "{err}"
    );
    assert!(err.ends_with("Error: failed to update one or more entries\n"));

    let (ok, out, _) = cli(&server, &["entry", "delete", "-entryID", &created.id]).await;
    assert!(ok);
    assert_eq!(out, format!("Deleted entry with ID: {}\n", created.id));
    let (ok, _, err) = cli(&server, &["entry", "delete", "-entryID", &created.id]).await;
    assert!(!ok);
    assert_eq!(err, "Error: failed to delete entry: entry not found\n");

    let (ok, out, _) = cli(&server, &["entry", "count"]).await;
    assert!(ok);
    assert_eq!(out, "1 registration entry\n");

    let third = create(&server, workload_entry("/w3", "3000")).await;
    let doc = format!(r#"{{"ids":["{}","nope"]}}"#, third.id);
    let (ok, out, err) = cli_stdin(&server, &["entry", "delete", "-file", "-"], &doc).await;
    assert!(!ok);
    assert_eq!(
        out,
        format!(
            "Deleted entry with ID: {}\nDeleted 1 entry successfully, but failed to delete 1 entry\n",
            third.id
        )
    );
    assert!(err.contains("Failed to delete entry with ID nope (code: NotFound"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_agent_commands() {
    let server = TestServer::start().await;
    let (ok, out, _) = cli(&server, &["agent", "list"]).await;
    assert!(ok);
    assert_eq!(out, "No attested agents found\n");
    let (ok, out, _) = cli(&server, &["agent", "count"]).await;
    assert!(ok);
    assert_eq!(out, "0 attested agents\n");

    let (path, chain, key) = attest_with_svid(&server).await;
    AgentClient::new(agent_channel(&server, &chain, &key).await)
        .post_status(agentpb::PostStatusRequest {
            current_bundle_serial: 1,
            agent_version: "1.2.3".into(),
        })
        .await
        .unwrap();
    let agent_id = format!("spiffe://example.org{path}");
    let agent = server
        .agents()
        .get_agent(agentpb::GetAgentRequest {
            id: id(&path),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    let expiry = time::OffsetDateTime::from_unix_timestamp(agent.x509svid_expires_at)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
        ))
        .unwrap();
    let block = format!(
        "SPIFFE ID         : {agent_id}\n\
         Attestation type  : join_token\n\
         Expiration time   : {expiry}\n\
         Serial number     : {}\n\
         Can re-attest     : false\n\
         Agent version     : 1.2.3\n\n",
        agent.x509svid_serial_number
    );

    let (ok, out, _) = cli(&server, &["agent", "list"]).await;
    assert!(ok);
    assert_eq!(out, format!("Found 1 attested agent:\n\n{block}"));
    let (ok, out, _) = cli(&server, &["agent", "count"]).await;
    assert!(ok);
    assert_eq!(out, "1 attested agent\n");
    let (ok, out, _) = cli(&server, &["agent", "list", "-attestationType", "x509pop"]).await;
    assert!(ok);
    assert_eq!(out, "No attested agents found\n");

    let (ok, out, _) = cli(&server, &["agent", "show", "-spiffeID", &agent_id]).await;
    assert!(ok);
    assert_eq!(
        out,
        format!("Found an attested agent given its SPIFFE ID\n\n{block}")
    );

    let (ok, out, _) = cli(&server, &["agent", "ban", "-spiffeID", &agent_id]).await;
    assert!(ok);
    assert_eq!(out, "Agent banned successfully\n");
    let (ok, out, _) = cli(&server, &["agent", "list", "-banned", "true"]).await;
    assert!(ok);
    assert!(out.contains("Banned            : true\n"), "{out}");
    assert!(!out.contains("Serial number"));

    let (ok, out, _) = cli(&server, &["agent", "evict", "-spiffeID", &agent_id]).await;
    assert!(ok);
    assert_eq!(out, "Agent evicted successfully\n");
    let (ok, _, err) = cli(&server, &["agent", "show", "-spiffeID", &agent_id]).await;
    assert!(!ok);
    assert_eq!(
        err,
        "Error: rpc error: code = NotFound desc = agent not found\n"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_bundle_commands() {
    let server = TestServer::start().await;
    let own = server
        .bundles()
        .get_bundle(bundlepb::GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();

    let (ok, out, _) = cli(&server, &["bundle", "show"]).await;
    assert!(ok);
    let expected_pem: String = own
        .x509_authorities
        .iter()
        .map(|a| {
            pem::encode_config(
                &pem::Pem::new("CERTIFICATE", a.asn1.clone()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .collect();
    assert_eq!(out, expected_pem);

    let (ok, out, _) = cli(&server, &["bundle", "show", "-format", "spiffe"]).await;
    assert!(ok);
    assert!(out.starts_with("{\n    \"keys\": [\n        {\n            \"use\": \"x509-svid\",\n            \"kty\": \"EC\",\n"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["keys"].as_array().unwrap().len(),
        own.x509_authorities.len() + own.jwt_authorities.len()
    );

    let (ok, out, _) = cli(&server, &["bundle", "count"]).await;
    assert!(ok);
    assert_eq!(out, "1 bundle\n");
    let (ok, out, _) = cli(&server, &["bundle", "list"]).await;
    assert!(ok);
    assert_eq!(out, "");

    let cert = ca_cert();
    let cert_pem = pem::encode_config(
        &pem::Pem::new("CERTIFICATE", cert.clone()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let (ok, out, err) = cli_stdin(
        &server,
        &["bundle", "set", "-id", "spiffe://one.org"],
        &cert_pem,
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "bundle set.\n");
    let (ok, _, err) = cli_stdin(
        &server,
        &["bundle", "set", "-id", "spiffe://example.org"],
        &cert_pem,
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err,
        "Error: failed to set federated bundle: setting a federated bundle for the server's own trust domain is not allowed\n"
    );
    cli_stdin(
        &server,
        &["bundle", "set", "-id", "spiffe://two.org"],
        &cert_pem,
    )
    .await;

    let header = |td: &str| {
        format!(
            "****************************************\n* {td}\n****************************************\n"
        )
    };
    let (ok, out, _) = cli(&server, &["bundle", "list"]).await;
    assert!(ok);
    assert_eq!(
        out,
        format!(
            "{}{cert_pem}\n{}{cert_pem}",
            header("one.org"),
            header("two.org")
        )
    );
    let (ok, out, _) = cli(&server, &["bundle", "list", "-id", "spiffe://two.org"]).await;
    assert!(ok);
    assert_eq!(out, format!("{}{cert_pem}", header("two.org")));
    let (ok, out, _) = cli(&server, &["bundle", "count"]).await;
    assert!(ok);
    assert_eq!(out, "3 bundles\n");

    let (ok, out, _) = cli(&server, &["bundle", "delete", "-id", "spiffe://two.org"]).await;
    assert!(ok);
    assert_eq!(out, "bundle deleted.\n");
    let (ok, _, err) = cli(&server, &["bundle", "delete", "-id", "spiffe://two.org"]).await;
    assert!(!ok);
    assert_eq!(
        err,
        "Error: failed to delete federated bundle \"two.org\": bundle not found\n"
    );
    server.stop().await;
}

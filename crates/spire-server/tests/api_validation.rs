//! The validation failures SPIRE returns (status code and message) for malformed requests,
//! over the real endpoints: the admin socket for operator calls and the TCP TLS endpoint
//! with an attested agent's SVID for agent calls. Families covered elsewhere (entry
//! create/update/delete, federated bundles, trust domains, local authorities, MintX509SVID)
//! are not repeated here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, attest_with_svid, tcp_channel};

use spire_proto::spire::api::server::agent::v1 as agentpb;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::logger::v1 as loggerpb;
use spire_proto::spire::api::server::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use spire_proto::spire::api::types::{self, FederatesWithMatch, SelectorMatch, Spiffeid};
use tonic::{Code, Status};

/// Asserts a call failed with `code` and a message equal to `message`, or starting with
/// it when `message` ends in `…`.
fn expect<T: std::fmt::Debug>(what: &str, result: Result<T, Status>, code: Code, message: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    match message.strip_suffix('…') {
        Some(prefix) => assert!(status.message().starts_with(prefix), "{what}: {status:?}"),
        None => assert_eq!(status.message(), message, "{what}"),
    }
}

fn id(td: &str, path: &str) -> Option<Spiffeid> {
    Some(Spiffeid {
        trust_domain: td.into(),
        path: path.into(),
    })
}

/// Sends one AttestAgent message and returns the status the server ends with.
async fn attest(server: &TestServer, params: agentpb::attest_agent_request::Params) -> Status {
    let request = agentpb::AttestAgentRequest {
        step: Some(agentpb::attest_agent_request::Step::Params(params)),
    };
    let mut client = AgentClient::new(server.channel());
    match client.attest_agent(tokio_stream::iter([request])).await {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_api_validation() {
    let server = TestServer::start().await;
    let mut agents = AgentClient::new(server.channel());
    let bad = Code::InvalidArgument;

    let token = |ttl, agent_id| agentpb::CreateJoinTokenRequest {
        ttl,
        agent_id,
        token: String::new(),
    };
    let r = agents.create_join_token(token(0, None)).await;
    expect("ttl 0", r, bad, "ttl is required, you must provide one");
    let r = agents
        .create_join_token(token(60, id("other.org", "/node")))
        .await;
    expect(
        "foreign agent ID",
        r,
        bad,
        "invalid agent ID: \"spiffe://other.org/node\" is not a member of trust domain \"example.org\"",
    );

    // AttestAgent: SPIRE's checks in order, each with its message.
    let csr = || Some(agentpb::AgentX509svidParams { csr: vec![1] });
    let data = |t: &str, p: &[u8]| {
        Some(types::AttestationData {
            r#type: t.into(),
            payload: p.to_vec(),
        })
    };
    let params = |data, params| agentpb::attest_agent_request::Params { data, params };
    let cases = [
        (
            params(None, csr()),
            "malformed param: missing attestation data",
        ),
        (
            params(data("join_token", b"t"), None),
            "malformed param: missing X509-SVID parameters",
        ),
        (
            params(
                data("join_token", b"t"),
                Some(agentpb::AgentX509svidParams { csr: vec![] }),
            ),
            "malformed param: missing CSR",
        ),
        (
            params(data("", b"t"), csr()),
            "malformed param: missing attestation data type",
        ),
        (
            params(data("join_token", b""), csr()),
            "malformed param: missing attestation data payload",
        ),
        (
            params(data("join_token", b"no-such-token"), csr()),
            "failed to attest: join token does not exist or has already been used",
        ),
    ];
    for (params, message) in cases {
        expect(
            message,
            Err::<(), _>(attest(&server, params).await),
            bad,
            message,
        );
    }
    let mut client = AgentClient::new(server.channel());
    let empty = client.attest_agent(tokio_stream::iter(Vec::new())).await;
    let empty = match empty {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    let eof = "failed to receive request from stream: EOF";
    expect("no message", Err::<(), _>(empty), bad, eof);
    let status = attest(&server, params(data("tpm", b"x"), csr())).await;
    expect(
        "unknown attestor",
        Err::<(), _>(status),
        Code::FailedPrecondition,
        "error getting node attestor: could not find node attestor type \"tpm\"",
    );

    let r = agents
        .list_agents(agentpb::ListAgentsRequest {
            filter: Some(agentpb::list_agents_request::Filter {
                by_selector_match: Some(SelectorMatch {
                    selectors: vec![types::Selector {
                        r#type: String::new(),
                        value: "x".into(),
                    }],
                    r#match: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    expect(
        "bad selector",
        r,
        bad,
        "failed to parse selectors: missing selector type",
    );

    // RenewAgent, as the attested agent over TLS.
    let (_, chain, key) = attest_with_svid(&server).await;
    let mut agent = AgentClient::new(tcp_channel(&server, Some((&chain, &key))).await);
    let renew = |csr: Option<Vec<u8>>| agentpb::RenewAgentRequest {
        params: csr.map(|csr| agentpb::AgentX509svidParams { csr }),
    };
    let r = agent.renew_agent(renew(None)).await;
    expect("no params", r, bad, "params cannot be nil");
    let r = agent.renew_agent(renew(Some(vec![]))).await;
    expect("empty CSR", r, bad, "missing CSR");
    let r = agent.renew_agent(renew(Some(b"junk".to_vec()))).await;
    expect("junk CSR", r, bad, "failed to parse CSR: …");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_api_filter_validation() {
    let server = TestServer::start().await;
    let mut entries = EntryClient::new(server.channel());
    let bad = Code::InvalidArgument;

    let r = entries.get_entry(entrypb::GetEntryRequest::default()).await;
    expect("GetEntry without ID", r, bad, "missing ID");

    let selector = |t: &str, v: &str| types::Selector {
        r#type: t.into(),
        value: v.into(),
    };
    let by_selectors = |selectors| entrypb::list_entries_request::Filter {
        by_selectors: Some(SelectorMatch {
            selectors,
            r#match: 0,
        }),
        ..Default::default()
    };
    let by_federates = |tds: &[&str]| entrypb::list_entries_request::Filter {
        by_federates_with: Some(FederatesWithMatch {
            trust_domains: tds.iter().map(|s| s.to_string()).collect(),
            r#match: 0,
        }),
        ..Default::default()
    };
    let cases = [
        (
            entrypb::list_entries_request::Filter {
                by_parent_id: id("other.org", "/node"),
                ..Default::default()
            },
            "malformed parent ID filter: \"spiffe://other.org/node\" is not a member of trust domain \"example.org\"",
        ),
        (
            entrypb::list_entries_request::Filter {
                by_spiffe_id: id("example.org", "no-slash"),
                ..Default::default()
            },
            "malformed SPIFFE ID filter: …",
        ),
        (
            by_selectors(vec![]),
            "malformed selectors filter: empty selector set",
        ),
        (
            by_selectors(vec![selector("", "uid:0")]),
            "malformed selectors filter: missing selector type",
        ),
        (
            by_selectors(vec![selector("unix", "")]),
            "malformed selectors filter: missing selector value",
        ),
        (
            by_federates(&[]),
            "malformed federates with filter: empty trust domain set",
        ),
        (
            by_federates(&["Not A Domain"]),
            "malformed federates with filter: …",
        ),
    ];
    for (filter, message) in cases {
        let list = entries
            .list_entries(entrypb::ListEntriesRequest {
                filter: Some(filter.clone()),
                ..Default::default()
            })
            .await;
        expect(message, list, bad, message);
        let count = entries
            .count_entries(entrypb::CountEntriesRequest {
                filter: Some(entrypb::count_entries_request::Filter {
                    by_spiffe_id: filter.by_spiffe_id,
                    by_parent_id: filter.by_parent_id,
                    by_selectors: filter.by_selectors,
                    by_federates_with: filter.by_federates_with,
                    by_hint: filter.by_hint,
                    by_downstream: filter.by_downstream,
                }),
            })
            .await;
        expect(message, count, bad, message);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn svid_bundle_and_logger_validation() {
    let server = TestServer::start().await;
    let bad = Code::InvalidArgument;
    let mut svids = SvidClient::new(server.channel());
    let mint = |id, audience: &[&str]| svidpb::MintJwtsvidRequest {
        id,
        audience: audience.iter().map(|s| s.to_string()).collect(),
        ttl: 0,
    };
    let r = svids.mint_jwtsvid(mint(None, &["a"])).await;
    expect(
        "no ID",
        r,
        bad,
        "invalid SPIFFE ID: request must specify SPIFFE ID",
    );
    let r = svids.mint_jwtsvid(mint(id("example.org", "/w"), &[])).await;
    expect("no audience", r, bad, "at least one audience is required");
    let r = svids
        .mint_jwtsvid(mint(id("other.org", "/w"), &["a"]))
        .await;
    expect("foreign ID", r, bad, "invalid SPIFFE ID: …");

    // An agent asking for an entry it is not authorized for (or none at all).
    let (_, chain, key) = attest_with_svid(&server).await;
    let mut agent_svids = SvidClient::new(tcp_channel(&server, Some((&chain, &key))).await);
    let r = agent_svids
        .new_jwtsvid(svidpb::NewJwtsvidRequest {
            entry_id: String::new(),
            audience: vec!["a".into()],
        })
        .await;
    expect(
        "no entry",
        r,
        Code::NotFound,
        "entry not found or not authorized",
    );
    let results = agent_svids
        .batch_new_x509svid(svidpb::BatchNewX509svidRequest {
            params: vec![svidpb::NewX509svidParams {
                entry_id: "missing".into(),
                csr: vec![1],
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let status = results[0].status.clone().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (Code::NotFound as i32, "entry not found or not authorized")
    );

    let r = server
        .bundles()
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest::default())
        .await;
    expect(
        "no trust domain",
        r,
        bad,
        "trust domain argument is not valid: trust domain is missing",
    );

    let r = LoggerClient::new(server.channel())
        .set_log_level(loggerpb::SetLogLevelRequest { new_level: 0 })
        .await;
    expect(
        "unspecified level",
        r,
        bad,
        "newLevel value cannot be LogLevel_UNSPECIFIED",
    );
    server.stop().await;
}

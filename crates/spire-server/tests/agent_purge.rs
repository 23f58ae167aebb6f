//! `agent purge` through the real CLI against a running server: agents that re-attest and
//! whose SVID expired longer ago than `-expiredFor` are evicted; `-dryRun` only lists
//! them; TOFU agents (join tokens) and recently expired ones are kept.
//!
//! The attested nodes are written into the server's own SQLite datastore (their SVID
//! expiry must lie in the past, which no live attestation produces).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, cli};

use spire_server::datastore::{AttestedNode, DataStoreConfig, SqlStore};

const DAY: i64 = 24 * 3600;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn node(name: &str, expired_days_ago: i64, can_reattest: bool) -> AttestedNode {
    AttestedNode {
        spiffe_id: format!("spiffe://example.org/spire/agent/x509pop/{name}"),
        attestation_data_type: if can_reattest {
            "x509pop"
        } else {
            "join_token"
        }
        .into(),
        cert_serial_number: "1234".into(),
        cert_not_after: now() - expired_days_ago * DAY,
        can_reattest,
        ..AttestedNode::default()
    }
}

async fn listed_agents(server: &TestServer) -> String {
    let (ok, out, err) = cli(server, &["agent", "count"]).await;
    assert!(ok, "{err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_evicts_reattestable_agents_expired_long_ago() {
    let server = TestServer::start().await;
    let dir = server.config_path.parent().unwrap().to_path_buf();
    let store = SqlStore::open(&DataStoreConfig {
        database_type: "sqlite3".into(),
        connection_string: dir.join("datastore.sqlite3").display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();

    // Nothing to purge on an empty server.
    let (ok, out, err) = cli(&server, &["agent", "purge"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "No agents to purge.\n");

    for n in [
        node("old-a", 40, true),
        node("old-b", 31, true),
        node("recent", 2, true),
        node("live", -1, true),
        node("tofu-old", 400, false),
    ] {
        store.create_attested_node(&n).await.unwrap();
    }
    assert_eq!(listed_agents(&server).await, "5 attested agents\n");

    // Dry run with the default -expiredFor (30 days): lists, deletes nothing.
    let (ok, out, err) = cli(&server, &["agent", "purge", "-dryRun"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Found 2 expired agents\n\n\nAgents that can be purged:\n\
         SPIFFE ID         : spiffe://example.org/spire/agent/x509pop/old-a\n\
         SPIFFE ID         : spiffe://example.org/spire/agent/x509pop/old-b\n"
    );
    assert_eq!(listed_agents(&server).await, "5 attested agents\n");

    // JSON form of a dry run.
    let (ok, out, err) = cli(
        &server,
        &[
            "agent",
            "purge",
            "-dryRun",
            "-expiredFor",
            "24h",
            "-output",
            "json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = json["expired_agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["deleted"], false);
            a["agent_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 3, "{out}");
    assert!(ids.iter().any(|id| id.ends_with("/recent")));

    // The real purge with -expiredFor 720h (the default spelled out).
    let (ok, out, err) = cli(&server, &["agent", "purge", "-expiredFor", "720h"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Found 2 expired agents\n\nAgents purged:\n\
         SPIFFE ID         : spiffe://example.org/spire/agent/x509pop/old-a\n\
         SPIFFE ID         : spiffe://example.org/spire/agent/x509pop/old-b\n"
    );
    assert_eq!(listed_agents(&server).await, "3 attested agents\n");
    for gone in ["old-a", "old-b"] {
        let id = format!("spiffe://example.org/spire/agent/x509pop/{gone}");
        assert!(store.fetch_attested_node(&id).await.unwrap().is_none());
    }

    // A shorter window catches the recently expired one, never the live or TOFU agent.
    let (ok, out, err) = cli(
        &server,
        &["agent", "purge", "-expiredFor", "1h", "-output", "json"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "{\"expired_agents\":[{\"agent_id\":\"spiffe://example.org/spire/agent/x509pop/recent\",\"deleted\":true}]}\n"
    );
    assert_eq!(listed_agents(&server).await, "2 attested agents\n");

    // A malformed duration is refused before anything is sent.
    let (ok, _, err) = cli(&server, &["agent", "purge", "-expiredFor", "soon"]).await;
    assert!(!ok);
    assert!(
        err.starts_with("Error: invalid value \"soon\" for flag -expiredFor"),
        "{err}"
    );
    store.close().await;
    server.stop().await;
}

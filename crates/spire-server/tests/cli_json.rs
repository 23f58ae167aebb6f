//! `-output json` of the `spire-server` CLI against a real server: the server runs
//! in-process on a temp dir and the `spire-server` binary prints SPIRE's protojson
//! (proto field names, int64 as strings, unpopulated fields emitted, keys sorted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, cli, cli_json};

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_of_server_commands() {
    let server = TestServer::start().await;

    // token generate: types.JoinToken, expires_at as a string.
    let token = cli_json(&server, &["token", "generate", "-ttl", "60"]).await;
    let obj = token.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{token}");
    assert!(!token["value"].as_str().unwrap().is_empty());
    let expires: i64 = token["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires > 0);

    // entry create: BatchCreateEntryResponse with statuses.
    let created = cli_json(
        &server,
        &[
            "entry",
            "create",
            "-parentID",
            "spiffe://example.org/agent",
            "-spiffeID",
            "spiffe://example.org/w1",
            "-selector",
            "unix:uid:1000",
        ],
    )
    .await;
    let result = &created["results"][0];
    assert_eq!(result["status"], json!({"code": 0, "message": "OK"}));
    let entry = &result["entry"];
    assert_eq!(
        entry["spiffe_id"],
        json!({"trust_domain": "example.org", "path": "/w1"})
    );
    assert_eq!(
        entry["selectors"],
        json!([{"type": "unix", "value": "uid:1000"}])
    );
    // Unpopulated fields are emitted; int64 fields are strings.
    assert_eq!(entry["federates_with"], json!([]));
    assert_eq!(entry["admin"], json!(false));
    assert_eq!(entry["hint"], json!(""));
    assert!(entry["expires_at"].is_string(), "{entry}");
    assert!(entry["created_at"].is_string(), "{entry}");
    assert!(entry["x509_svid_ttl"].is_number(), "{entry}");
    let id = entry["id"].as_str().unwrap().to_owned();

    // entry show: ListEntriesResponse, with and without -entryID.
    let shown = cli_json(&server, &["entry", "show"]).await;
    assert_eq!(shown["entries"].as_array().unwrap().len(), 1);
    assert_eq!(shown["next_page_token"], json!(""));
    assert_eq!(shown["entries"][0]["id"], json!(id));
    let shown = cli_json(&server, &["entry", "show", "-entryID", &id]).await;
    assert_eq!(shown["entries"][0]["id"], json!(id));

    // entry count: CountEntriesResponse (int32 stays a number).
    assert_eq!(
        cli_json(&server, &["entry", "count"]).await,
        json!({"count": 1})
    );

    // entry delete: BatchDeleteEntryResponse.
    let deleted = cli_json(&server, &["entry", "delete", "-entryID", &id]).await;
    assert_eq!(
        deleted,
        json!({"results": [{"status": {"code": 0, "message": "OK"}, "id": id}]})
    );

    // agent list / count with no agents.
    assert_eq!(
        cli_json(&server, &["agent", "list"]).await,
        json!({"agents": [], "next_page_token": ""})
    );
    assert_eq!(
        cli_json(&server, &["agent", "count"]).await,
        json!({"count": 0})
    );

    // bundle show: types.Bundle, bytes as base64.
    let bundle = cli_json(&server, &["bundle", "show"]).await;
    assert_eq!(bundle["trust_domain"], json!("example.org"));
    let asn1 = bundle["x509_authorities"][0]["asn1"].as_str().unwrap();
    use base64::Engine as _;
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(asn1)
            .is_ok()
    );
    assert_eq!(bundle["x509_authorities"][0]["tainted"], json!(false));
    assert!(bundle["sequence_number"].is_string(), "{bundle}");
    assert!(bundle["refresh_hint"].is_string(), "{bundle}");

    // bundle list / count with no federated bundles.
    assert_eq!(
        cli_json(&server, &["bundle", "list"]).await,
        json!({"bundles": [], "next_page_token": ""})
    );
    assert_eq!(
        cli_json(&server, &["bundle", "count"]).await,
        json!({"count": 1})
    );

    // The raw text: keys sorted, one line.
    let (ok, out, _) = cli(&server, &["entry", "count", "-output", "json"]).await;
    assert!(ok);
    assert_eq!(out, "{\"count\":0}\n");

    // Unknown formats are refused.
    let (ok, _, err) = cli(&server, &["entry", "count", "-output", "yaml"]).await;
    assert!(!ok);
    assert!(err.contains("invalid output format"), "{err}");

    server.stop().await;
}

//! `entry create` with malformed input, through the real CLI against a running server:
//! every malformed SPIFFE ID, selector or parent is refused with a message that names the
//! problem, and nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, cli};

const GOOD_PARENT: &str = "spiffe://example.org/host";
const GOOD_ID: &str = "spiffe://example.org/workload";
const GOOD_SELECTOR: &str = "unix:uid:1000";

/// `entry create` with one flag replaced; returns (success, stdout, stderr).
async fn create(
    server: &TestServer,
    parent: &str,
    id: &str,
    selector: &str,
) -> (bool, String, String) {
    cli(
        server,
        &[
            "entry",
            "create",
            "-parentID",
            parent,
            "-spiffeID",
            id,
            "-selector",
            selector,
        ],
    )
    .await
}

async fn entry_count(server: &TestServer) -> String {
    let (ok, out, err) = cli(server, &["entry", "count"]).await;
    assert!(ok, "entry count: {err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_are_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let cases: &[(&str, &str, &str, &str)] = &[
        // (parent, spiffe ID, selector, what the error must mention)
        (GOOD_PARENT, "example.org/workload", GOOD_SELECTOR, "scheme"),
        (
            GOOD_PARENT,
            "spiffe://Example.org/workload",
            GOOD_SELECTOR,
            "lowercase",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/a//b",
            GOOD_SELECTOR,
            "empty segments",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/a/../b",
            GOOD_SELECTOR,
            "dot segments",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/w/",
            GOOD_SELECTOR,
            "trailing slash",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/w?x=1",
            GOOD_SELECTOR,
            "query",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org:8443/w",
            GOOD_SELECTOR,
            "port",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/caf%C3%A9",
            GOOD_SELECTOR,
            "percent",
        ),
        (
            GOOD_PARENT,
            "spiffe://other.org/workload",
            GOOD_SELECTOR,
            "trust domain",
        ),
        (
            GOOD_PARENT,
            "spiffe://example.org/spire/agent/x",
            GOOD_SELECTOR,
            "reserved",
        ),
        (GOOD_PARENT, "spiffe://example.org", GOOD_SELECTOR, "path"),
        ("host", GOOD_ID, GOOD_SELECTOR, "scheme"),
        (
            "spiffe://example.org/h//x",
            GOOD_ID,
            GOOD_SELECTOR,
            "empty segments",
        ),
        (
            "spiffe://other.org/host",
            GOOD_ID,
            GOOD_SELECTOR,
            "trust domain",
        ),
        (GOOD_PARENT, GOOD_ID, "unix", "type:value"),
        (GOOD_PARENT, GOOD_ID, ":uid:1000", "type"),
        (GOOD_PARENT, GOOD_ID, "unix:", "value"),
    ];
    for (parent, id, selector, mentions) in cases {
        let (ok, out, err) = create(&server, parent, id, selector).await;
        assert!(
            !ok,
            "accepted parent={parent} id={id} selector={selector}: {out}"
        );
        let message = format!("{out}{err}");
        assert!(
            message.to_lowercase().contains(&mentions.to_lowercase()),
            "parent={parent} id={id} selector={selector}: the error should mention \
             {mentions:?}: {message}"
        );
        assert!(message.starts_with("Error: ") || message.contains("Failed to create"));
    }
    assert_eq!(entry_count(&server).await, "0 registration entries\n");

    // A well-formed entry is accepted afterwards: the refusals left the store usable.
    let (ok, out, err) = create(&server, GOOD_PARENT, GOOD_ID, GOOD_SELECTOR).await;
    assert!(ok, "{out}{err}");
    assert_eq!(entry_count(&server).await, "1 registration entry\n");
    server.stop().await;
}

//! `entry create -data` and `entry update -data` through the real CLI against a running
//! server: SPIRE's `{"entries": [...]}` document read from a file or stdin, one entry per
//! result, successes on stdout and failures on stderr with their status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, cli, cli_at};

/// Runs the CLI with `stdin` piped in, off the async runtime's worker.
async fn cli_stdin(server: &TestServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let socket = server.socket.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_at(&socket, &args, Some(&stdin))
    })
    .await
    .unwrap()
}

/// The `Entry ID` lines of a CLI output, in order.
fn entry_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Entry ID                : "))
        .map(str::to_owned)
        .collect()
}

const DOC: &str = r#"{
    "entries": [
        {
            "selectors": [{"type": "unix", "value": "uid:1111"}],
            "spiffe_id": "spiffe://example.org/Blog",
            "parent_id": "spiffe://example.org/spire/agent/join_token/TokenBlog",
            "x509_svid_ttl": 200,
            "jwt_svid_ttl": 30,
            "admin": true
        },
        {
            "selectors": [{"type": "unix", "value": "uid:1111"}],
            "spiffe_id": "spiffe://other.org/Elsewhere",
            "parent_id": "spiffe://example.org/host"
        },
        {
            "selectors": [{"type": "unix", "value": "uid:1112"}, {"type": "unix", "value": "gid:7"}],
            "spiffe_id": "spiffe://example.org/Database",
            "parent_id": "spiffe://example.org/spire/agent/join_token/TokenDatabase",
            "dns_names": ["db.example.org"],
            "entryExpiry": 1900000000,
            "downstream": true,
            "store_svid": true,
            "hint": "db"
        }
    ]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_from_a_data_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entries.json");
    std::fs::write(&path, DOC).unwrap();

    // Flags other than -data are not needed (and not validated) with -data.
    let (ok, out, err) = cli(
        &server,
        &["entry", "create", "-data", path.to_str().unwrap()],
    )
    .await;
    assert!(!ok, "one entry is in another trust domain: {out}");
    // The two good entries are printed as created, in file order.
    let ids = entry_ids(&out);
    assert_eq!(ids.len(), 2, "{out}");
    assert!(out.contains("SPIFFE ID               : spiffe://example.org/Blog\n"));
    assert!(out.contains("X509-SVID TTL           : 200\n"));
    assert!(out.contains("JWT-SVID TTL            : 30\n"));
    assert!(out.contains("Admin                   : true\n"));
    assert!(out.contains("SPIFFE ID               : spiffe://example.org/Database\n"));
    assert!(out.contains("Selector                : unix:gid:7\n"));
    assert!(out.contains("DNS name                : db.example.org\n"));
    assert!(out.contains("Expiration time         : 2030-03-17 17:46:40 +0000 UTC\n"));
    assert!(out.contains("Downstream              : true\n"));
    assert!(out.contains("StoreSvid               : true\n"));
    assert!(out.contains("Hint                    : db\n"));
    assert!(out.find("/Blog").unwrap() < out.find("/Database").unwrap());
    // The refused one goes to stderr as it was sent, with its status.
    assert!(
        err.starts_with("Failed to create the following entry (code: InvalidArgument, msg: "),
        "{err}"
    );
    assert!(err.contains("Entry ID                : (none)\n"), "{err}");
    assert!(err.contains("SPIFFE ID               : spiffe://other.org/Elsewhere\n"));
    assert!(
        err.ends_with("Error: failed to create one or more entries\n"),
        "{err}"
    );

    let (ok, out, _) = cli(&server, &["entry", "count"]).await;
    assert!(ok);
    // `entry count` always filters by_downstream=false, as SPIRE's.
    assert_eq!(out, "1 registration entry\n");
    let (ok, out, _) = cli(&server, &["entry", "count", "-downstream"]).await;
    assert!(ok);
    assert_eq!(out, "1 registration entry\n");

    // The same document from stdin: the first two are now duplicates or refused, the
    // Database entry too; nothing new is written and each failure is reported.
    let (ok, _out, err) = cli_stdin(&server, &["entry", "create", "-data", "-"], DOC).await;
    assert!(!ok);
    assert_eq!(
        err.matches("Failed to create the following entry").count(),
        3,
        "{err}"
    );
    assert!(err.contains("(code: AlreadyExists, msg: \"similar entry already exists\")"));

    // entry update -data: replaces the Blog entry by ID; an unknown ID fails alone.
    let blog_id = &ids[0];
    let update = format!(
        r#"{{"entries": [
            {{"entry_id": "{blog_id}",
              "selectors": [{{"type": "unix", "value": "uid:2222"}}],
              "spiffe_id": "spiffe://example.org/Blog",
              "parent_id": "spiffe://example.org/spire/agent/join_token/TokenBlog",
              "x509_svid_ttl": 300}},
            {{"entry_id": "no-such-entry",
              "selectors": [{{"type": "unix", "value": "uid:1"}}],
              "spiffe_id": "spiffe://example.org/x",
              "parent_id": "spiffe://example.org/y"}}
        ]}}"#
    );
    let (ok, out, err) = cli_stdin(&server, &["entry", "update", "-data", "-"], &update).await;
    assert!(!ok);
    assert_eq!(entry_ids(&out), std::slice::from_ref(blog_id), "{out}");
    assert!(
        out.contains("Selector                : unix:uid:2222\n"),
        "{out}"
    );
    assert!(out.contains("X509-SVID TTL           : 300\n"), "{out}");
    assert!(out.contains("Revision                : 1\n"), "{out}");
    assert!(
        err.starts_with("Failed to update the following entry (code: NotFound, msg: "),
        "{err}"
    );
    assert!(
        err.contains("Entry ID                : no-such-entry\n"),
        "{err}"
    );
    assert!(
        err.ends_with("Error: failed to update one or more entries\n"),
        "{err}"
    );

    // JSON output: a failed result carries the entry as it was sent, as SPIRE's CLI.
    let (ok, out, _) = cli_stdin(
        &server,
        &["entry", "update", "-data", "-", "-output", "json"],
        &update,
    )
    .await;
    // The JSON printer reports per-entry statuses; it does not fail the command.
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["results"][0]["status"]["code"], 0, "{out}");
    assert_eq!(json["results"][1]["status"]["code"], 5, "{out}");
    assert_eq!(json["results"][1]["entry"]["id"], "no-such-entry", "{out}");
    assert_eq!(
        json["results"][1]["entry"]["spiffe_id"]["path"], "/x",
        "{out}"
    );

    let (ok, out, _) = cli(&server, &["entry", "show", "-entryID", blog_id]).await;
    assert!(ok);
    assert!(
        out.contains("Selector                : unix:uid:2222\n"),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_documents_are_refused_before_anything_is_sent() {
    let server = TestServer::start().await;
    let cases: &[(&str, &str)] = &[
        ("{", "failed to parse entries JSON"),
        (r#"{"entries": [null]}"#, "missing registration entry"),
        (
            r#"{"entries": [{"spiffe_id": "spiffe://example.org/a", "parent_id": "host"}]}"#,
            "invalid parent ID",
        ),
    ];
    for (doc, want) in cases {
        let (ok, out, err) = cli_stdin(&server, &["entry", "create", "-data", "-"], doc).await;
        assert!(!ok, "{doc}: {out}");
        assert!(
            err.starts_with("Error: ") && err.contains(want),
            "{doc}: {err}"
        );
    }
    let (ok, _, err) = cli(&server, &["entry", "create", "-data", "/no/such/file.json"]).await;
    assert!(!ok);
    assert!(err.contains("/no/such/file.json"), "{err}");
    let (ok, out, _) = cli(&server, &["entry", "count"]).await;
    assert!(ok);
    assert_eq!(out, "0 registration entries\n");
    server.stop().await;
}

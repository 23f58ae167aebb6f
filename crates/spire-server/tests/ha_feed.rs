//! The HA change feed: two in-process servers share one database (a SQLite file always;
//! PostgreSQL / MySQL when `SPIRE_RS_TEST_POSTGRES_URL` / `SPIRE_RS_TEST_MYSQL_URL` name
//! a server, in a database created and dropped by the test). A change made through
//! server A (a registration entry, a federated bundle, a revoked X.509-SVID) reaches an
//! agent watching server B's `WatchChanges` stream, through B's follower of the shared
//! database (PostgreSQL: woken by LISTEN/NOTIFY; SQLite and MySQL: polling).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, UPSTREAM_CRT, agent_channel, attest_with_svid, cli_ok};

use std::time::Duration;

use spire_proto::spirers::server::notify::v1::notify_client::NotifyClient;
use spire_proto::spirers::server::notify::v1::{ChangeNotification, WatchChangesRequest};
use sqlx::Connection;
use tonic::Streaming;

/// A server database (PostgreSQL or MySQL) made for one test and dropped after it,
/// even when the test fails.
struct SharedDatabase {
    admin_url: String,
    name: String,
    postgres: bool,
    url: String,
}

impl SharedDatabase {
    /// A fresh database on the server `var` names, or `None` (with a message) when it is
    /// unset.
    async fn create(var: &str, postgres: bool) -> Option<SharedDatabase> {
        let admin_url = match std::env::var(var) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                println!("skipped: {var} not set");
                return None;
            }
        };
        sqlx::any::install_default_drivers();
        let name = format!("spire_rs_ha_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_database(&admin_url, &name);
        Some(SharedDatabase {
            admin_url,
            name,
            postgres,
            url,
        })
    }
}

impl Drop for SharedDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let sql = if self.postgres {
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        } else {
            format!("DROP DATABASE IF EXISTS {name}")
        };
        // Its own thread and runtime: Drop cannot await, and may run mid-panic.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await else {
                    return;
                };
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            });
        })
        .join();
    }
}

/// Replaces the database name (the URL path) of a server URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Two servers on the datastore `plugin_data` body `datastore` with `extra_server` in
/// their `server` blocks, A started (and its schema made) before B.
async fn two_servers(datastore: &str, extra_server: &str) -> (TestServer, TestServer) {
    let setup = || Setup {
        datastore: Some(datastore.to_owned()),
        extra_server: extra_server.to_owned(),
        ..Setup::default()
    };
    let a = TestServer::start_with(setup()).await;
    let b = TestServer::start_with(setup()).await;
    (a, b)
}

/// An agent attested to `server`, watching its change feed, once the stream has gone
/// quiet (the first notification and any for the agent's own attestation consumed).
async fn quiet_watch(server: &TestServer) -> Streaming<ChangeNotification> {
    let (_id, chain, key) = attest_with_svid(server).await;
    let channel = agent_channel(server, &chain, &key).await;
    let mut stream = NotifyClient::new(channel)
        .watch_changes(WatchChangesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.entries_changed && first.bundles_changed && first.revocations_changed);
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
            Err(_) => return stream,
            Ok(note) => {
                note.unwrap().unwrap();
            }
        }
    }
    panic!("the change feed never went quiet");
}

/// Waits (generously) for a notification that `wanted` accepts.
async fn expect_note(
    stream: &mut Streaming<ChangeNotification>,
    what: &str,
    wanted: impl Fn(&ChangeNotification) -> bool,
) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let note = stream
                .message()
                .await
                .unwrap()
                .expect("the change feed closed");
            if wanted(&note) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "server B never notified its agent of {what}");
}

/// Makes each kind of change through A and checks B's watcher hears of it.
async fn changes_through_a_reach_b(a: &TestServer, b: &TestServer) {
    let mut watch = quiet_watch(b).await;

    cli_ok(
        a,
        &[
            "entry",
            "create",
            "-parentID",
            "spiffe://example.org/spire/agent/join_token/ha",
            "-spiffeID",
            "spiffe://example.org/ha-workload",
            "-selector",
            "unix:uid:1000",
        ],
    )
    .await;
    expect_note(&mut watch, "an entry created through A", |n| {
        n.entries_changed
    })
    .await;
    // B reads the entry A wrote.
    let shown = cli_ok(
        b,
        &[
            "entry",
            "show",
            "-spiffeID",
            "spiffe://example.org/ha-workload",
        ],
    )
    .await;
    assert!(
        shown.contains("spiffe://example.org/ha-workload"),
        "{shown}"
    );

    cli_ok(
        a,
        &[
            "bundle",
            "set",
            "-id",
            "spiffe://other.example",
            "-path",
            UPSTREAM_CRT,
        ],
    )
    .await;
    expect_note(&mut watch, "a bundle set through A", |n| n.bundles_changed).await;

    cli_ok(a, &["svid", "revoke", "-serial", "abc123"]).await;
    expect_note(&mut watch, "an X.509-SVID revoked through A", |n| {
        n.revocations_changed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_change_through_one_server_reaches_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let datastore = format!(
        "database_type = \"sqlite3\"\n connection_string = \"{}\"",
        dir.path().join("shared.sqlite3").display()
    );
    let (a, b) = two_servers(&datastore, "").await;
    changes_through_a_reach_b(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_change_through_one_server_reaches_the_other() {
    let Some(db) = SharedDatabase::create("SPIRE_RS_TEST_POSTGRES_URL", true).await else {
        return;
    };
    let datastore = format!(
        "database_type = \"postgres\"\n connection_string = \"{}\"",
        db.url
    );
    // The fallback poll is an hour away: only LISTEN/NOTIFY can wake B in time.
    let (a, b) = two_servers(
        &datastore,
        "experimental {\n cache_reload_interval = \"1h\"\n }",
    )
    .await;
    changes_through_a_reach_b(&a, &b).await;
    b.stop().await;
    a.stop().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_change_through_one_server_reaches_the_other() {
    let Some(db) = SharedDatabase::create("SPIRE_RS_TEST_MYSQL_URL", false).await else {
        return;
    };
    let datastore = format!(
        "database_type = \"mysql\"\n connection_string = \"{}\"",
        db.url
    );
    let (a, b) = two_servers(&datastore, "").await;
    changes_through_a_reach_b(&a, &b).await;
    b.stop().await;
    a.stop().await;
    drop(db);
}

/// Waits (generously) for `rx` to announce the entry `id`.
async fn expect_entry(
    rx: &mut tokio::sync::broadcast::Receiver<spire_server::datastore::DataStoreChange>,
    id: &str,
) {
    use spire_server::datastore::DataStoreChange;
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match rx.recv().await {
                Ok(DataStoreChange::EntryChanged { id: got }) if got == id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("change feed closed: {e}"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the follower never announced entry {id}");
}

/// An entry event that commits after a later one (a gap in event IDs when the follower
/// first reads) is still announced once it commits (PostgreSQL: sequences hand out IDs
/// at insert, so transactions commit out of ID order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_event_committed_out_of_order_is_announced() {
    use spire_server::datastore::{
        DataStoreChange, DataStoreConfig, Dialect, FollowOptions, RegistrationEntry, SqlStore,
    };
    use std::sync::Arc;

    let Some(db) = SharedDatabase::create("SPIRE_RS_TEST_POSTGRES_URL", true).await else {
        return;
    };
    let cfg = DataStoreConfig::new("postgres", db.url.clone());
    let a = SqlStore::open(&cfg).await.unwrap();
    let b = Arc::new(SqlStore::open(&cfg).await.unwrap());
    let mut rx = b.subscribe();
    let stop = tokio_util::sync::CancellationToken::new();
    let options = FollowOptions::new(
        Dialect::Postgres,
        Duration::from_secs(3600),
        Duration::from_secs(900),
    );
    tokio::spawn(b.clone().follow(options, stop.clone()));
    let entry = |path: &str| RegistrationEntry {
        spiffe_id: format!("spiffe://example.org{path}"),
        parent_id: "spiffe://example.org/agent".into(),
        selectors: vec![spire_server::datastore::Selector::new("unix", "uid:1")],
        ..RegistrationEntry::default()
    };

    // Writes through A until B's follower (reading and listening) announces one.
    let mut ready = false;
    for n in 0..60 {
        let warm = a
            .create_registration_entry(&entry(&format!("/warm-{n}")))
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Ok(DataStoreChange::EntryChanged { id }) = rx.recv().await
                    && id == warm.id
                {
                    return;
                }
            }
        })
        .await;
        if heard.is_ok() {
            ready = true;
            break;
        }
    }
    assert!(ready, "B's follower never announced A's writes");

    // Another server's transaction takes the next event ID but has not committed yet.
    let mut raw = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut slow = raw.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO registered_entries_events (created_at, updated_at, entry_id) \
         VALUES (CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'late-entry')",
    )
    .execute(&mut *slow)
    .await
    .unwrap();

    // A later transaction commits first: B reads past the uncommitted ID.
    let after = a.create_registration_entry(&entry("/after")).await.unwrap();
    expect_entry(&mut rx, &after.id).await;

    // The slow one commits (notifying, as every server's write does): B fills the gap.
    sqlx::query("SELECT pg_notify('spirers_changes', '')")
        .execute(&mut *slow)
        .await
        .unwrap();
    slow.commit().await.unwrap();
    expect_entry(&mut rx, "late-entry").await;

    stop.cancel();
    a.close().await;
    b.close().await;
    raw.close().await.unwrap();
    drop(db);
}

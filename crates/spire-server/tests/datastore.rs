//! The SQL datastore against real databases: SQLite in a temporary directory always;
//! PostgreSQL and MySQL/MariaDB when `SPIRE_RS_TEST_POSTGRES_URL` /
//! `SPIRE_RS_TEST_MYSQL_URL` name a server (each test creates and drops its own
//! uniquely named database). The same behaviour suite runs on every dialect.

#![allow(clippy::unwrap_used, clippy::type_complexity, missing_docs)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use spire_server::datastore::*;
use sqlx::Connection;

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// Drops the per-test server database when the test ends (even by panic).
struct DbGuard {
    backend: Backend,
    admin_url: String,
    name: String,
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        let (backend, admin_url, name) = (self.backend, self.admin_url.clone(), self.name.clone());
        // Runs on its own thread and runtime: Drop cannot await, and may run mid-panic.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                sqlx::any::install_default_drivers();
                let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await else {
                    return;
                };
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            });
        })
        .join();
    }
}

struct Ctx {
    backend: Backend,
    cfg: DataStoreConfig,
    /// A URL sqlx opens directly, for poking at the schema.
    raw_url: String,
    /// One direct connection, opened on first use.
    raw_conn: tokio::sync::Mutex<Option<sqlx::AnyConnection>>,
    store: SqlStore,
    // Dropped after `store`.
    _db: Option<DbGuard>,
    _dir: Option<tempfile::TempDir>,
}

impl Ctx {
    async fn reopen(&self) -> Result<SqlStore> {
        SqlStore::open(&self.cfg).await
    }

    async fn raw_conn(&self) -> tokio::sync::MappedMutexGuard<'_, sqlx::AnyConnection> {
        let mut guard = self.raw_conn.lock().await;
        if guard.is_none() {
            sqlx::any::install_default_drivers();
            *guard = Some(sqlx::AnyConnection::connect(&self.raw_url).await.unwrap());
        }
        tokio::sync::MutexGuard::map(guard, |c| c.as_mut().unwrap())
    }

    async fn raw_exec(&self, sql: &str) {
        let mut conn = self.raw_conn().await;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    async fn raw_count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        let mut conn = self.raw_conn().await;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        row.try_get::<i64, _>(0).unwrap()
    }
}

fn env_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return Some(String::new()),
        Backend::Postgres => "SPIRE_RS_TEST_POSTGRES_URL",
        Backend::MySql => "SPIRE_RS_TEST_MYSQL_URL",
    };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            println!("skipped: {var} not set");
            None
        }
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

/// Creates a fresh empty database (a file, or a uniquely named server database).
async fn fresh(
    backend: Backend,
) -> Option<(
    DataStoreConfig,
    String,
    Option<DbGuard>,
    Option<tempfile::TempDir>,
)> {
    let admin_url = env_url(backend)?;
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data").join("datastore.sqlite3");
            let cfg = DataStoreConfig::new("sqlite3", path.to_string_lossy().to_string());
            let raw = format!("sqlite://{}?mode=rwc", path.display());
            Some((cfg, raw, None, Some(dir)))
        }
        Backend::Postgres | Backend::MySql => {
            sqlx::any::install_default_drivers();
            let name = format!("spire_rs_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
            let url = with_database(&admin_url, &name);
            let ty = if backend == Backend::Postgres {
                "postgres"
            } else {
                "mysql"
            };
            let mut cfg = DataStoreConfig::new(ty, url.clone());
            cfg.max_open_conns = Some(24);
            Some((
                cfg,
                url,
                Some(DbGuard {
                    backend,
                    admin_url,
                    name,
                }),
                None,
            ))
        }
    }
}

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((cfg, raw_url, db, dir)) = fresh(backend).await else {
        return;
    };
    let store = SqlStore::open(&cfg).await.unwrap();
    test(Ctx {
        backend,
        cfg,
        raw_url,
        raw_conn: tokio::sync::Mutex::new(None),
        store,
        _db: db,
        _dir: dir,
    })
    .await;
}

macro_rules! dialect_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(super::Backend::Sqlite, super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(super::Backend::Postgres, super::$name).await })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(super::Backend::MySql, super::$name).await })*
        }
    };
}

dialect_tests![
    schema_fresh_reopen_and_version_checks,
    schema_migrates_from_23,
    entry_create_similar_and_get,
    entry_list_filters_and_match_modes,
    entry_pagination_survives_concurrent_inserts,
    entry_update_bumps_revision_and_honours_mask,
    entry_delete_and_prune,
    events_are_written_with_each_change,
    authorized_entries_aliases_recursion_and_cycles,
    nodes_crud_ban_and_evict,
    node_list_filters_and_pagination,
    join_token_single_use_under_race,
    join_token_expiry_and_prune,
    bundles_append_dedupe_prune_taint_revoke,
    bundle_delete_modes,
    change_feed_after_commit,
    federation_relationships_and_ca_journals,
    revoked_x509_svids_round_trip,
];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const TD: &str = "spiffe://example.org";

fn sel(t: &str, v: &str) -> Selector {
    Selector::new(t, v)
}

fn entry(spiffe: &str, parent: &str, sels: &[(&str, &str)]) -> RegistrationEntry {
    RegistrationEntry {
        spiffe_id: format!("{TD}{spiffe}"),
        parent_id: format!("{TD}{parent}"),
        selectors: sels.iter().map(|(t, v)| sel(t, v)).collect(),
        ..RegistrationEntry::default()
    }
}

fn ids(entries: &[RegistrationEntry]) -> BTreeSet<String> {
    entries
        .iter()
        .map(|e| e.spiffe_id.trim_start_matches(TD).to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn node(id: &str, serial: &str, not_after: i64) -> AttestedNode {
    AttestedNode {
        spiffe_id: format!("{TD}/spire/agent/{id}"),
        attestation_data_type: "join_token".into(),
        cert_serial_number: serial.into(),
        cert_not_after: not_after,
        ..AttestedNode::default()
    }
}

async fn list(store: &SqlStore, req: ListEntriesRequest) -> BTreeSet<String> {
    ids(&store.list_registration_entries(&req).await.unwrap().entries)
}

/// A self-signed certificate valid until `not_after` (unix seconds), and its PKIX key.
fn cert(not_after: i64) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_after - 86_400 * 30).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let spki = x509_parser::parse_x509_certificate(&der)
        .unwrap()
        .1
        .public_key()
        .raw
        .to_vec();
    (der, spki)
}

fn jwt(kid: &str, expires_at: i64) -> JwtKey {
    JwtKey {
        public_key: format!("pkix-{kid}").into_bytes(),
        key_id: kid.into(),
        expires_at,
        tainted: false,
    }
}

// ---------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------

async fn schema_fresh_reopen_and_version_checks(ctx: Ctx) {
    assert_eq!(
        ctx.store.schema_version().await.unwrap(),
        schema::SCHEMA_VERSION
    );
    for table in schema::table_names() {
        assert_eq!(
            ctx.raw_count(&format!("SELECT COUNT(*) FROM {table} WHERE 1 = 0"))
                .await,
            0,
            "{table}"
        );
    }
    assert_eq!(ctx.raw_count("SELECT COUNT(*) FROM migrations").await, 1);

    let created = ctx
        .store
        .create_registration_entry(&entry("/w", "/spire/agent/a", &[("unix", "uid:1")]))
        .await
        .unwrap();
    ctx.store.close().await;

    // Re-open: no second migrations row, data still there.
    let again = ctx.reopen().await.unwrap();
    assert_eq!(ctx.raw_count("SELECT COUNT(*) FROM migrations").await, 1);
    assert_eq!(
        again
            .fetch_registration_entry(&created.id)
            .await
            .unwrap()
            .unwrap(),
        created
    );
    again.close().await;

    // A newer schema is refused with a clear error.
    ctx.raw_exec("UPDATE migrations SET version = 26").await;
    let err = ctx.reopen().await.unwrap_err();
    assert!(
        matches!(err, DataStoreError::FailedPrecondition(_)),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");

    // Too old to migrate.
    ctx.raw_exec("UPDATE migrations SET version = 21").await;
    let err = ctx.reopen().await.unwrap_err();
    assert!(err.to_string().contains("too old"), "{err}");

    // Migration disabled on an out-of-date schema.
    ctx.raw_exec("UPDATE migrations SET version = 24").await;
    let mut cfg = ctx.cfg.clone();
    cfg.disable_migration = true;
    let err = SqlStore::open(&cfg).await.unwrap_err();
    assert!(err.to_string().contains("migration is disabled"), "{err}");
}

async fn schema_migrates_from_23(ctx: Ctx) {
    ctx.store.close().await;
    // Rebuild the database as SPIRE 1.8 left it.
    for table in schema::table_names() {
        ctx.raw_exec(&format!("DROP TABLE {table}")).await;
    }
    let d = ctx.store.dialect();
    for stmt in schema::schema_23_statements(d) {
        ctx.raw_exec(&stmt).await;
    }
    ctx.raw_exec("INSERT INTO migrations (version, code_version) VALUES (23, '1.8.0')")
        .await;
    ctx.raw_exec(
        "INSERT INTO attested_node_entries (spiffe_id, data_type, serial_number, can_reattest) \
         VALUES ('spiffe://example.org/spire/agent/old', 'x509pop', '42', true)",
    )
    .await;

    let store = ctx.reopen().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 25);
    let old = store
        .fetch_attested_node(&format!("{TD}/spire/agent/old"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            old.cert_serial_number.as_str(),
            old.agent_version.as_str(),
            old.can_reattest
        ),
        ("42", "", true)
    );
    let mask = AttestedNodeMask {
        agent_version: true,
        ..Default::default()
    };
    let updated = store
        .update_attested_node(
            &AttestedNode {
                agent_version: "1.14.0".into(),
                ..old
            },
            Some(&mask),
        )
        .await
        .unwrap();
    assert_eq!(updated.agent_version, "1.14.0");
    let mut e = entry("/w", "/a", &[("unix", "uid:0")]);
    e.jwt_svid_include_jti = true;
    assert!(
        store
            .create_registration_entry(&e)
            .await
            .unwrap()
            .jwt_svid_include_jti
    );
    assert_eq!(
        ctx.raw_count("SELECT COUNT(*) FROM migrations WHERE version = 25")
            .await,
        1
    );
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------

async fn entry_create_similar_and_get(ctx: Ctx) {
    let s = &ctx.store;
    s.create_bundle(&Bundle {
        trust_domain: "fed.org".into(),
        ..Bundle::default()
    })
    .await
    .unwrap();
    let mut e = entry(
        "/web",
        "/spire/agent/a",
        &[("unix", "uid:1"), ("unix", "gid:2")],
    );
    e.x509_svid_ttl = 3600;
    e.jwt_svid_ttl = 300;
    e.federates_with = vec!["fed.org".into()];
    e.admin = true;
    e.downstream = true;
    e.expires_at = 2_000_000_000;
    e.dns_names = vec!["web.example.org".into(), "b.example.org".into()];
    e.store_svid = true;
    e.hint = "external".into();
    e.disable_x509_svid_prefetch = true;
    let created = s.create_registration_entry(&e).await.unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(&created.id)
            .unwrap()
            .get_version_num(),
        4
    );
    assert_eq!(created.revision_number, 0);
    assert!(
        created.created_at > 1_600_000_000,
        "created_at = {}",
        created.created_at
    );
    let expected = RegistrationEntry {
        id: created.id.clone(),
        created_at: created.created_at,
        ..e.clone()
    };
    assert_eq!(created, expected);
    assert_eq!(
        s.fetch_registration_entry(&created.id)
            .await
            .unwrap()
            .unwrap(),
        expected
    );
    assert!(s.fetch_registration_entry("nope").await.unwrap().is_none());

    // Same SPIFFE ID, parent and selector set (in another order): similar.
    let mut again = entry(
        "/web",
        "/spire/agent/a",
        &[("unix", "gid:2"), ("unix", "uid:1")],
    );
    again.hint = "other".into();
    match s.create_registration_entry(&again).await.unwrap_err() {
        DataStoreError::AlreadyExists { message, existing } => {
            assert_eq!(message, "similar entry already exists");
            assert_eq!(existing.unwrap().id, created.id);
        }
        other => panic!("{other:?}"),
    }
    let (returned, existing) = s.create_or_return_registration_entry(&again).await.unwrap();
    assert!(existing);
    assert_eq!(returned.id, created.id);

    // A subset or superset of the selectors is not similar.
    s.create_registration_entry(&entry("/web", "/spire/agent/a", &[("unix", "uid:1")]))
        .await
        .unwrap();
    s.create_registration_entry(&entry(
        "/web",
        "/spire/agent/a",
        &[("unix", "uid:1"), ("unix", "gid:2"), ("unix", "x:3")],
    ))
    .await
    .unwrap();

    // Caller-supplied IDs.
    let mut custom = entry("/custom", "/spire/agent/a", &[("unix", "uid:9")]);
    custom.id = "my-entry_1.0".into();
    assert_eq!(
        s.create_registration_entry(&custom).await.unwrap().id,
        "my-entry_1.0"
    );
    let mut dup = entry("/custom2", "/spire/agent/a", &[("unix", "uid:10")]);
    dup.id = "my-entry_1.0".into();
    assert!(matches!(
        s.create_registration_entry(&dup).await,
        Err(DataStoreError::AlreadyExists { .. })
    ));
    dup.id = "bad id!".into();
    assert!(matches!(
        s.create_registration_entry(&dup).await,
        Err(DataStoreError::InvalidArgument(_))
    ));

    // Validation and unknown federated bundles.
    assert!(matches!(
        s.create_registration_entry(&entry("/x", "/a", &[])).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    let mut fed = entry("/x", "/a", &[("unix", "uid:5")]);
    fed.federates_with = vec!["unknown.org".into()];
    let err = s.create_registration_entry(&fed).await.unwrap_err();
    assert!(
        err.to_string().contains("unable to find federated bundle"),
        "{err}"
    );
    let mut mixed = entry("/x", "/a", &[("unix", "uid:5"), ("k8s", "ns:a")]);
    mixed.store_svid = true;
    assert!(matches!(
        s.create_registration_entry(&mixed).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    // Nothing half-written by the failures.
    assert_eq!(
        s.count_registration_entries(&ListEntriesRequest::default())
            .await
            .unwrap(),
        4
    );

    let got = s
        .fetch_registration_entries(&[created.id.clone(), "my-entry_1.0".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
}

async fn entry_list_filters_and_match_modes(ctx: Ctx) {
    let s = &ctx.store;
    for td in ["a.org", "b.org", "c.org"] {
        s.create_bundle(&Bundle {
            trust_domain: td.into(),
            ..Bundle::default()
        })
        .await
        .unwrap();
    }
    let specs: &[(&str, &str, &[(&str, &str)], &[&str], &str, bool)] = &[
        ("/e1", "/p1", &[("a", "1")], &["a.org"], "h1", false),
        (
            "/e2",
            "/p1",
            &[("a", "1"), ("b", "2")],
            &["a.org", "b.org"],
            "h1",
            true,
        ),
        (
            "/e3",
            "/p2",
            &[("a", "1"), ("b", "2"), ("c", "3")],
            &["a.org", "b.org", "c.org"],
            "",
            false,
        ),
        ("/e4", "/p2", &[("b", "2")], &["b.org"], "h2", true),
        ("/e5", "/p3", &[("c", "3")], &[], "", false),
    ];
    for (id, parent, sels, feds, hint, downstream) in specs {
        let mut e = entry(id, parent, sels);
        e.federates_with = feds.iter().map(|s| s.to_string()).collect();
        e.hint = hint.to_string();
        e.downstream = *downstream;
        s.create_registration_entry(&e).await.unwrap();
    }
    let all = ListEntriesRequest::default();
    assert_eq!(
        list(s, all.clone()).await,
        set(&["/e1", "/e2", "/e3", "/e4", "/e5"])
    );
    assert_eq!(
        list(
            s,
            ListEntriesRequest {
                by_spiffe_id: Some(format!("{TD}/e2")),
                ..all.clone()
            }
        )
        .await,
        set(&["/e2"])
    );
    assert_eq!(
        list(
            s,
            ListEntriesRequest {
                by_parent_id: Some(format!("{TD}/p2")),
                ..all.clone()
            }
        )
        .await,
        set(&["/e3", "/e4"])
    );
    assert_eq!(
        list(
            s,
            ListEntriesRequest {
                by_hint: Some("h1".into()),
                ..all.clone()
            }
        )
        .await,
        set(&["/e1", "/e2"])
    );
    assert_eq!(
        list(
            s,
            ListEntriesRequest {
                by_downstream: Some(true),
                ..all.clone()
            }
        )
        .await,
        set(&["/e2", "/e4"])
    );
    assert_eq!(
        list(
            s,
            ListEntriesRequest {
                by_downstream: Some(false),
                ..all.clone()
            }
        )
        .await,
        set(&["/e1", "/e3", "/e5"])
    );

    let by_sel = |sels: &[(&str, &str)], m: MatchBehavior| ListEntriesRequest {
        by_selectors: Some(SelectorMatch {
            selectors: sels.iter().map(|(t, v)| sel(t, v)).collect(),
            r#match: m,
        }),
        ..ListEntriesRequest::default()
    };
    let ab = [("a", "1"), ("b", "2")];
    assert_eq!(
        list(s, by_sel(&ab, MatchBehavior::Exact)).await,
        set(&["/e2"])
    );
    assert_eq!(
        list(s, by_sel(&ab, MatchBehavior::Subset)).await,
        set(&["/e1", "/e2", "/e4"])
    );
    assert_eq!(
        list(s, by_sel(&ab, MatchBehavior::Superset)).await,
        set(&["/e2", "/e3"])
    );
    assert_eq!(
        list(s, by_sel(&ab, MatchBehavior::Any)).await,
        set(&["/e1", "/e2", "/e3", "/e4"])
    );
    assert_eq!(
        list(s, by_sel(&[("a", "1"), ("a", "1")], MatchBehavior::Exact)).await,
        set(&["/e1"])
    );
    assert_eq!(
        list(s, by_sel(&[("z", "9")], MatchBehavior::Any)).await,
        set(&[])
    );
    assert!(matches!(
        s.list_registration_entries(&by_sel(&[], MatchBehavior::Any))
            .await,
        Err(DataStoreError::InvalidArgument(_))
    ));

    let by_fed = |tds: &[&str], m: MatchBehavior| ListEntriesRequest {
        by_federates_with: Some(FederatesWithMatch {
            trust_domains: tds.iter().map(|s| s.to_string()).collect(),
            r#match: m,
        }),
        ..ListEntriesRequest::default()
    };
    let fab = ["a.org", "spiffe://b.org"];
    assert_eq!(
        list(s, by_fed(&fab, MatchBehavior::Exact)).await,
        set(&["/e2"])
    );
    assert_eq!(
        list(s, by_fed(&fab, MatchBehavior::Subset)).await,
        set(&["/e1", "/e2", "/e4"])
    );
    assert_eq!(
        list(s, by_fed(&fab, MatchBehavior::Superset)).await,
        set(&["/e2", "/e3"])
    );
    assert_eq!(
        list(s, by_fed(&fab, MatchBehavior::Any)).await,
        set(&["/e1", "/e2", "/e3", "/e4"])
    );

    // Filters combine; count agrees with list.
    let combined = ListEntriesRequest {
        by_parent_id: Some(format!("{TD}/p1")),
        ..by_sel(&ab, MatchBehavior::Superset)
    };
    assert_eq!(list(s, combined.clone()).await, set(&["/e2"]));
    assert_eq!(s.count_registration_entries(&combined).await.unwrap(), 1);
    assert_eq!(
        s.count_registration_entries(&by_sel(&ab, MatchBehavior::Any))
            .await
            .unwrap(),
        4
    );
    assert_eq!(s.count_registration_entries(&all).await.unwrap(), 5);

    // Federated trust domains come back as names.
    let e3 = s
        .list_registration_entries(&ListEntriesRequest {
            by_spiffe_id: Some(format!("{TD}/e3")),
            ..all
        })
        .await
        .unwrap();
    assert_eq!(
        e3.entries[0].federates_with,
        vec!["a.org", "b.org", "c.org"]
    );
}

async fn entry_pagination_survives_concurrent_inserts(ctx: Ctx) {
    let store = Arc::new(ctx.store);
    for i in 0..25 {
        store
            .create_registration_entry(&entry(
                &format!("/seed{i:02}"),
                "/p",
                &[("k", &i.to_string())],
            ))
            .await
            .unwrap();
    }
    // Writers keep inserting (from several tasks) while a reader pages through.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .create_registration_entry(&entry(
                            &format!("/w{w}-{i}"),
                            "/p",
                            &[("w", &format!("{w}-{i}"))],
                        ))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let req = ListEntriesRequest {
            pagination: Some(Pagination {
                page_size: 7,
                token: token.clone(),
            }),
            ..Default::default()
        };
        let page = store.list_registration_entries(&req).await.unwrap();
        assert!(page.entries.len() <= 7);
        seen.extend(page.entries.iter().map(|e| e.id.clone()));
        if page.entries.is_empty() {
            assert_eq!(page.next_page_token, "");
            break;
        }
        token = page.next_page_token;
    }
    for w in writers {
        w.await.unwrap();
    }
    // No duplicates, every seed entry seen, in creation order.
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len());
    let all = store
        .list_registration_entries(&ListEntriesRequest::default())
        .await
        .unwrap()
        .entries;
    assert_eq!(all.len(), 65);
    let seeds: Vec<_> = all
        .iter()
        .filter(|e| e.spiffe_id.contains("/seed"))
        .map(|e| e.id.clone())
        .collect();
    assert!(seeds.iter().all(|id| unique.contains(id)));
    let positions: Vec<usize> = seeds
        .iter()
        .map(|id| seen.iter().position(|s| s == id).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));

    // Pages of a filtered list; bad tokens and sizes.
    let filtered = ListEntriesRequest {
        by_selectors: Some(SelectorMatch {
            selectors: vec![sel("k", "3"), sel("k", "4"), sel("k", "5")],
            r#match: MatchBehavior::Any,
        }),
        pagination: Some(Pagination::first(2)),
        ..Default::default()
    };
    let p1 = store.list_registration_entries(&filtered).await.unwrap();
    assert_eq!(ids(&p1.entries), set(&["/seed03", "/seed04"]));
    let p2 = store
        .list_registration_entries(&ListEntriesRequest {
            pagination: Some(Pagination {
                page_size: 2,
                token: p1.next_page_token,
            }),
            ..filtered.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(&p2.entries), set(&["/seed05"]));
    let bad = ListEntriesRequest {
        pagination: Some(Pagination {
            page_size: 2,
            token: "x".into(),
        }),
        ..Default::default()
    };
    assert!(matches!(
        store.list_registration_entries(&bad).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    let zero = ListEntriesRequest {
        pagination: Some(Pagination::first(0)),
        ..Default::default()
    };
    assert!(matches!(
        store.list_registration_entries(&zero).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
}

async fn entry_update_bumps_revision_and_honours_mask(ctx: Ctx) {
    let s = &ctx.store;
    s.create_bundle(&Bundle {
        trust_domain: "fed.org".into(),
        ..Bundle::default()
    })
    .await
    .unwrap();
    let mut e = entry("/w", "/p", &[("unix", "uid:1")]);
    e.hint = "h".into();
    e.dns_names = vec!["a.example".into()];
    let created = s.create_registration_entry(&e).await.unwrap();

    // Mask: only the hint and selectors; other fields of the input are ignored.
    let change = RegistrationEntry {
        id: created.id.clone(),
        hint: "new-hint".into(),
        selectors: vec![sel("unix", "uid:2"), sel("unix", "uid:3")],
        spiffe_id: format!("{TD}/ignored"),
        ..RegistrationEntry::default()
    };
    let mask = EntryMask {
        hint: true,
        selectors: true,
        ..EntryMask::default()
    };
    let u1 = s
        .update_registration_entry(&change, Some(&mask))
        .await
        .unwrap();
    assert_eq!(u1.revision_number, 1);
    assert_eq!(u1.hint, "new-hint");
    assert_eq!(
        u1.selectors,
        vec![sel("unix", "uid:2"), sel("unix", "uid:3")]
    );
    assert_eq!(u1.spiffe_id, created.spiffe_id);
    assert_eq!(u1.dns_names, created.dns_names);
    assert_eq!(u1.created_at, created.created_at);

    // No mask: everything is written.
    let mut full = u1.clone();
    full.spiffe_id = format!("{TD}/w2");
    full.federates_with = vec!["fed.org".into()];
    full.dns_names = vec![];
    full.x509_svid_ttl = 60;
    full.jwt_svid_include_jti = true;
    let u2 = s.update_registration_entry(&full, None).await.unwrap();
    assert_eq!(u2.revision_number, 2);
    assert_eq!(
        u2,
        RegistrationEntry {
            revision_number: 2,
            ..full
        }
    );
    assert_eq!(
        s.fetch_registration_entry(&created.id)
            .await
            .unwrap()
            .unwrap(),
        u2
    );

    // Errors leave the entry untouched.
    let missing = RegistrationEntry {
        id: "missing".into(),
        ..u2.clone()
    };
    assert!(matches!(
        s.update_registration_entry(&missing, None).await,
        Err(DataStoreError::NotFound(_))
    ));
    let bad_fed = RegistrationEntry {
        federates_with: vec!["nope.org".into()],
        ..u2.clone()
    };
    assert!(s.update_registration_entry(&bad_fed, None).await.is_err());
    let store_svid = RegistrationEntry {
        store_svid: true,
        selectors: vec![sel("a", "1"), sel("b", "2")],
        ..u2.clone()
    };
    assert!(matches!(
        s.update_registration_entry(&store_svid, None).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    let empty = RegistrationEntry {
        selectors: vec![],
        ..u2.clone()
    };
    assert!(matches!(
        s.update_registration_entry(&empty, None).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    assert_eq!(
        s.fetch_registration_entry(&created.id)
            .await
            .unwrap()
            .unwrap(),
        u2
    );
}

async fn entry_delete_and_prune(ctx: Ctx) {
    let s = &ctx.store;
    let keep = s
        .create_registration_entry(&entry("/keep", "/p", &[("u", "1")]))
        .await
        .unwrap();
    let gone = s
        .create_registration_entry(&entry("/gone", "/p", &[("u", "2")]))
        .await
        .unwrap();
    let mut old = entry("/old", "/p", &[("u", "3")]);
    old.expires_at = 1_000;
    let old = s.create_registration_entry(&old).await.unwrap();
    let mut later = entry("/later", "/p", &[("u", "4")]);
    later.expires_at = 5_000;
    s.create_registration_entry(&later).await.unwrap();

    assert_eq!(s.delete_registration_entry(&gone.id).await.unwrap(), gone);
    assert!(
        s.fetch_registration_entry(&gone.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        s.delete_registration_entry(&gone.id).await,
        Err(DataStoreError::NotFound(_))
    ));
    // Child rows went with it.
    assert_eq!(
        ctx.raw_count("SELECT COUNT(*) FROM selectors WHERE value = '2'")
            .await,
        0
    );

    let pruned = s.prune_registration_entries(2_000).await.unwrap();
    assert_eq!(pruned, vec![old]);
    let left = ids(&s
        .list_registration_entries(&ListEntriesRequest::default())
        .await
        .unwrap()
        .entries);
    assert_eq!(left, set(&["/keep", "/later"]));
    assert!(
        s.prune_registration_entries(2_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.fetch_registration_entry(&keep.id)
            .await
            .unwrap()
            .is_some()
    );
}

async fn events_are_written_with_each_change(ctx: Ctx) {
    let s = &ctx.store;
    let e = s
        .create_registration_entry(&entry("/w", "/p", &[("u", "1")]))
        .await
        .unwrap();
    s.update_registration_entry(
        &RegistrationEntry {
            hint: "x".into(),
            ..e.clone()
        },
        None,
    )
    .await
    .unwrap();
    // A failed write leaves no event.
    assert!(
        s.create_registration_entry(&entry("/w", "/p", &[("u", "1")]))
            .await
            .is_err()
    );
    s.delete_registration_entry(&e.id).await.unwrap();
    let events = s.list_entry_events(0, None).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|ev| ev.entry_id.as_str())
            .collect::<Vec<_>>(),
        vec![e.id.as_str(); 3]
    );
    assert!(events.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert!(events[0].created_at > 1_600_000_000);
    let after_first = s.list_entry_events(events[0].event_id, None).await.unwrap();
    assert_eq!(after_first.len(), 2);
    let between = s
        .list_entry_events(events[0].event_id, Some(events[2].event_id))
        .await
        .unwrap();
    assert_eq!(between, vec![events[1].clone()]);
    assert_eq!(
        s.fetch_entry_event(events[1].event_id)
            .await
            .unwrap()
            .unwrap(),
        events[1]
    );
    assert!(s.fetch_entry_event(999_999).await.unwrap().is_none());

    let n = node("n1", "1", 2_000_000_000);
    s.create_attested_node(&n).await.unwrap();
    s.set_node_selectors(&n.spiffe_id, &[sel("t", "v")])
        .await
        .unwrap();
    s.update_attested_node(
        &AttestedNode {
            cert_serial_number: "2".into(),
            ..n.clone()
        },
        None,
    )
    .await
    .unwrap();
    s.ban_attested_node(&n.spiffe_id).await.unwrap();
    s.delete_attested_node(&n.spiffe_id).await.unwrap();
    let node_events = s.list_node_events(0, None).await.unwrap();
    assert_eq!(node_events.len(), 5);
    assert!(node_events.iter().all(|ev| ev.spiffe_id == n.spiffe_id));
    assert_eq!(
        s.fetch_node_event(node_events[0].event_id)
            .await
            .unwrap()
            .unwrap(),
        node_events[0]
    );

    // Pruning by age: nothing is older than an hour ago; everything is older than the future.
    assert_eq!(
        s.prune_events(events[0].created_at - 3_600).await.unwrap(),
        0
    );
    assert_eq!(
        s.prune_events(events[0].created_at + 3_600).await.unwrap(),
        8
    );
    assert!(s.list_entry_events(0, None).await.unwrap().is_empty());
    assert!(s.list_node_events(0, None).await.unwrap().is_empty());
}

async fn authorized_entries_aliases_recursion_and_cycles(ctx: Ctx) {
    let s = &ctx.store;
    let agent = format!("{TD}/spire/agent/k8s/node1");
    let add = |id: &str, parent: &str, sels: &[(&str, &str)]| {
        let mut e = entry(id, "/", sels);
        e.parent_id = if parent.starts_with("spiffe://") {
            parent.to_string()
        } else {
            format!("{TD}{parent}")
        };
        e
    };
    let entries = [
        add("/direct", &agent, &[("unix", "uid:1")]),
        add("/child-of-direct", "/direct", &[("unix", "uid:2")]),
        add("/grandchild", "/child-of-direct", &[("unix", "uid:3")]),
        // Node aliases: the agent has cluster:a and region:eu.
        add(
            "/alias/cluster-a",
            "/spire/server",
            &[("k8s_psat", "cluster:a")],
        ),
        add(
            "/alias/cluster-a-eu",
            "/spire/server",
            &[("k8s_psat", "cluster:a"), ("k8s_psat", "region:eu")],
        ),
        add(
            "/alias/cluster-b",
            "/spire/server",
            &[("k8s_psat", "cluster:b")],
        ),
        add(
            "/alias/needs-more",
            "/spire/server",
            &[("k8s_psat", "cluster:a"), ("k8s_psat", "zone:1")],
        ),
        add("/via-alias", "/alias/cluster-a", &[("k8s", "ns:a")]),
        add("/via-alias-eu", "/alias/cluster-a-eu", &[("k8s", "ns:eu")]),
        add("/via-alias-b", "/alias/cluster-b", &[("k8s", "ns:b")]),
        add("/via-needs-more", "/alias/needs-more", &[("k8s", "ns:x")]),
        add("/under-via-alias", "/via-alias", &[("k8s", "ns:deep")]),
        // A cycle: c1 <- c2 <- c1, reached from the agent.
        add("/c1", &agent, &[("c", "1")]),
        add("/c2", "/c1", &[("c", "2")]),
        add("/c1", "/c2", &[("c", "3")]),
        // Another agent's entries.
        add("/other", "/spire/agent/k8s/node2", &[("unix", "uid:9")]),
    ];
    for e in &entries {
        s.create_registration_entry(e).await.unwrap();
    }
    let node_sels = [
        sel("k8s_psat", "cluster:a"),
        sel("k8s_psat", "region:eu"),
        sel("k8s_psat", "extra"),
    ];
    let got = s.list_authorized_entries(&agent, &node_sels).await.unwrap();
    assert_eq!(
        ids(&got),
        set(&[
            "/direct",
            "/child-of-direct",
            "/grandchild",
            "/via-alias",
            "/via-alias-eu",
            "/under-via-alias",
            "/c1",
            "/c2",
        ])
    );
    // Both /c1 entries (the one under the agent and the one under /c2) are there, once each.
    assert_eq!(
        got.iter().filter(|e| e.spiffe_id.ends_with("/c1")).count(),
        2
    );
    let unique: BTreeSet<_> = got.iter().map(|e| e.id.clone()).collect();
    assert_eq!(unique.len(), got.len());
    // Full rows come back.
    assert!(
        got.iter()
            .all(|e| !e.selectors.is_empty() && !e.id.is_empty())
    );

    // Without node selectors: no aliases.
    let plain = s.list_authorized_entries(&agent, &[]).await.unwrap();
    assert_eq!(
        ids(&plain),
        set(&["/direct", "/child-of-direct", "/grandchild", "/c1", "/c2"])
    );
    // An agent with nothing.
    assert!(
        s.list_authorized_entries(&format!("{TD}/spire/agent/none"), &[])
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------

async fn nodes_crud_ban_and_evict(ctx: Ctx) {
    let s = &ctx.store;
    let mut n = node("join_token/tok1", "1234", 1_900_000_000);
    n.can_reattest = false;
    n.agent_version = "1.0.0".into();
    n.selectors = vec![sel("join_token", "tok1"), sel("join_token", "tok1")];
    let created = s.create_attested_node(&n).await.unwrap();
    assert_eq!(created.selectors, vec![sel("join_token", "tok1")]);
    assert_eq!(
        created,
        AttestedNode {
            selectors: vec![sel("join_token", "tok1")],
            ..n.clone()
        }
    );
    assert!(matches!(
        s.create_attested_node(&n).await,
        Err(DataStoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        s.fetch_attested_node(&n.spiffe_id).await.unwrap().unwrap(),
        created
    );
    assert!(
        s.fetch_attested_node("spiffe://example.org/nope")
            .await
            .unwrap()
            .is_none()
    );

    // Renewal bookkeeping through a mask.
    let renewal = AttestedNode {
        new_cert_serial_number: "5678".into(),
        new_cert_not_after: 1_950_000_000,
        cert_serial_number: "ignored".into(),
        ..n.clone()
    };
    let mask = AttestedNodeMask {
        new_cert_serial_number: true,
        new_cert_not_after: true,
        ..Default::default()
    };
    let u = s.update_attested_node(&renewal, Some(&mask)).await.unwrap();
    assert_eq!(
        (
            u.cert_serial_number.as_str(),
            u.new_cert_serial_number.as_str()
        ),
        ("1234", "5678")
    );
    assert_eq!(
        (u.cert_not_after, u.new_cert_not_after),
        (1_900_000_000, 1_950_000_000)
    );
    // Promote the new certificate, clear the pending one.
    let promoted = AttestedNode {
        cert_serial_number: "5678".into(),
        cert_not_after: 1_950_000_000,
        new_cert_serial_number: String::new(),
        new_cert_not_after: 0,
        ..u.clone()
    };
    let p = s.update_attested_node(&promoted, None).await.unwrap();
    assert_eq!(p, promoted);
    assert!(matches!(
        s.update_attested_node(&node("missing", "1", 1), None).await,
        Err(DataStoreError::NotFound(_))
    ));

    // Node selectors: replace, de-duplicate.
    s.set_node_selectors(&n.spiffe_id, &[sel("a", "1"), sel("b", "2"), sel("a", "1")])
        .await
        .unwrap();
    assert_eq!(
        s.get_node_selectors(&n.spiffe_id).await.unwrap(),
        vec![sel("a", "1"), sel("b", "2")]
    );
    s.set_node_selectors(&n.spiffe_id, &[sel("c", "3")])
        .await
        .unwrap();
    assert_eq!(
        s.get_node_selectors(&n.spiffe_id).await.unwrap(),
        vec![sel("c", "3")]
    );

    // Ban.
    let banned = s.ban_attested_node(&n.spiffe_id).await.unwrap();
    assert!(banned.is_banned());
    assert_eq!(banned.new_cert_serial_number, "");
    assert!(matches!(
        s.ban_attested_node("spiffe://example.org/x").await,
        Err(DataStoreError::NotFound(_))
    ));

    // The join token alias entry (parent = node, sole selector spiffe_id:<node>) goes
    // with the node; look-alikes stay.
    let alias = RegistrationEntry {
        spiffe_id: format!("{TD}/workload-host"),
        parent_id: n.spiffe_id.clone(),
        selectors: vec![sel("spiffe_id", &n.spiffe_id)],
        ..Default::default()
    };
    let alias = s.create_registration_entry(&alias).await.unwrap();
    let two_selectors = RegistrationEntry {
        selectors: vec![sel("spiffe_id", &n.spiffe_id), sel("unix", "uid:0")],
        ..alias.clone()
    };
    let two_selectors = s
        .create_registration_entry(&RegistrationEntry {
            id: String::new(),
            ..two_selectors
        })
        .await
        .unwrap();
    let workload = s
        .create_registration_entry(&RegistrationEntry {
            id: String::new(),
            spiffe_id: format!("{TD}/w"),
            selectors: vec![sel("unix", "uid:1")],
            ..alias.clone()
        })
        .await
        .unwrap();

    let deleted = s.delete_attested_node(&n.spiffe_id).await.unwrap();
    assert_eq!(deleted.spiffe_id, n.spiffe_id);
    assert_eq!(deleted.selectors, vec![sel("c", "3")]);
    assert!(s.fetch_attested_node(&n.spiffe_id).await.unwrap().is_none());
    assert!(s.get_node_selectors(&n.spiffe_id).await.unwrap().is_empty());
    assert!(
        s.fetch_registration_entry(&alias.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.fetch_registration_entry(&two_selectors.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.fetch_registration_entry(&workload.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        s.delete_attested_node(&n.spiffe_id).await,
        Err(DataStoreError::NotFound(_))
    ));
}

async fn node_list_filters_and_pagination(ctx: Ctx) {
    let s = &ctx.store;
    let specs = [
        (
            "a",
            "x509pop",
            "11",
            1_800_000_000,
            true,
            &[("x509pop", "cn:a"), ("x509pop", "ca:1")][..],
        ),
        (
            "b",
            "x509pop",
            "",
            1_800_000_000,
            true,
            &[("x509pop", "cn:b")][..],
        ),
        ("c", "join_token", "33", 1_700_000_000, false, &[][..]),
        (
            "d",
            "k8s_psat",
            "44",
            1_900_000_000,
            true,
            &[("x509pop", "ca:1")][..],
        ),
    ];
    for (id, ty, serial, not_after, reattest, sels) in specs {
        let mut n = node(id, serial, not_after);
        n.attestation_data_type = ty.into();
        n.can_reattest = reattest;
        n.selectors = sels.iter().map(|(t, v)| sel(t, v)).collect();
        s.create_attested_node(&n).await.unwrap();
    }
    let names = |r: ListAttestedNodesResponse| -> Vec<String> {
        r.nodes
            .iter()
            .map(|n| n.spiffe_id.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    let q = |req: ListAttestedNodesRequest| async move {
        names(s.list_attested_nodes(&req).await.unwrap())
    };
    let all = ListAttestedNodesRequest::default();
    assert_eq!(q(all.clone()).await, ["a", "b", "c", "d"]);
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_attestation_type: Some("x509pop".into()),
            ..all.clone()
        })
        .await,
        ["a", "b"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_banned: Some(true),
            ..all.clone()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_banned: Some(false),
            ..all.clone()
        })
        .await,
        ["a", "c", "d"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_can_reattest: Some(false),
            ..all.clone()
        })
        .await,
        ["c"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_expires_before: Some(1_800_000_000),
            ..all.clone()
        })
        .await,
        ["c"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            by_expires_before: Some(1_800_000_001),
            ..all.clone()
        })
        .await,
        ["a", "b", "c"]
    );
    assert_eq!(
        q(ListAttestedNodesRequest {
            valid_at: Some(1_850_000_000),
            ..all.clone()
        })
        .await,
        ["d"]
    );
    let by_sel = |sels: &[(&str, &str)], m| ListAttestedNodesRequest {
        by_selector_match: Some(SelectorMatch {
            selectors: sels.iter().map(|(t, v)| sel(t, v)).collect(),
            r#match: m,
        }),
        ..ListAttestedNodesRequest::default()
    };
    let sels = [("x509pop", "cn:a"), ("x509pop", "ca:1")];
    assert_eq!(q(by_sel(&sels, MatchBehavior::Exact)).await, ["a"]);
    assert_eq!(q(by_sel(&sels, MatchBehavior::Subset)).await, ["a", "d"]);
    assert_eq!(
        q(by_sel(&[("x509pop", "ca:1")], MatchBehavior::Superset)).await,
        ["a", "d"]
    );
    assert_eq!(
        q(by_sel(
            &[("x509pop", "cn:b"), ("x509pop", "ca:1")],
            MatchBehavior::Any
        ))
        .await,
        ["a", "b", "d"]
    );

    // Selectors only when asked for.
    let plain = s.list_attested_nodes(&all).await.unwrap();
    assert!(plain.nodes.iter().all(|n| n.selectors.is_empty()));
    let with = s
        .list_attested_nodes(&ListAttestedNodesRequest {
            fetch_selectors: true,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        with.nodes[0].selectors,
        vec![sel("x509pop", "cn:a"), sel("x509pop", "ca:1")]
    );

    // Counting with filters.
    assert_eq!(s.count_attested_nodes(&all).await.unwrap(), 4);
    assert_eq!(
        s.count_attested_nodes(&by_sel(&sels, MatchBehavior::Subset))
            .await
            .unwrap(),
        2
    );

    // Pages.
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let r = s
            .list_attested_nodes(&ListAttestedNodesRequest {
                pagination: Some(Pagination {
                    page_size: 3,
                    token,
                }),
                ..all.clone()
            })
            .await
            .unwrap();
        if r.nodes.is_empty() {
            break;
        }
        token = r.next_page_token.clone();
        pages.push(names(r));
    }
    assert_eq!(pages, vec![vec!["a", "b", "c"], vec!["d"]]);

    // Node selectors of valid nodes (the full cache's query).
    let valid = s.list_node_selectors(Some(1_750_000_000)).await.unwrap();
    assert_eq!(valid.len(), 3);
    assert_eq!(
        valid[&format!("{TD}/spire/agent/d")],
        vec![sel("x509pop", "ca:1")]
    );
    assert_eq!(s.list_node_selectors(None).await.unwrap().len(), 3);

    // Pruning expired nodes keeps banned and (by default) non-reattestable ones.
    assert_eq!(
        s.prune_attested_nodes(1_850_000_000, false).await.unwrap(),
        vec![format!("{TD}/spire/agent/a")]
    );
    assert_eq!(
        s.prune_attested_nodes(1_850_000_000, true).await.unwrap(),
        vec![format!("{TD}/spire/agent/c")]
    );
    assert_eq!(q(all).await, ["b", "d"]);
}

// ---------------------------------------------------------------------------------------
// Join tokens
// ---------------------------------------------------------------------------------------

async fn join_token_single_use_under_race(ctx: Ctx) {
    let store = Arc::new(ctx.store);
    for round in 0..3 {
        let token = format!("race-token-{round}");
        store
            .create_join_token(&JoinToken {
                token: token.clone(),
                expiry: 2_000_000_000,
            })
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, token, barrier) = (store.clone(), token.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.consume_join_token(&token, 1_900_000_000).await
                })
            })
            .collect();
        let mut consumed = 0;
        let mut not_found = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(JoinTokenOutcome::Consumed(tok)) => {
                    assert_eq!(tok.token, token);
                    consumed += 1;
                }
                Ok(JoinTokenOutcome::NotFound) => not_found += 1,
                // A database may abort a loser with a serialization error: it did not win.
                Err(DataStoreError::Conflict(_)) => not_found += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(
            (consumed, not_found),
            (1, 15),
            "round {round} on {:?}",
            ctx.backend
        );
        assert!(store.fetch_join_token(&token).await.unwrap().is_none());
    }
}

async fn join_token_expiry_and_prune(ctx: Ctx) {
    let s = &ctx.store;
    s.create_join_token(&JoinToken {
        token: "old".into(),
        expiry: 1_000,
    })
    .await
    .unwrap();
    s.create_join_token(&JoinToken {
        token: "edge".into(),
        expiry: 2_000,
    })
    .await
    .unwrap();
    s.create_join_token(&JoinToken {
        token: "new".into(),
        expiry: 5_000,
    })
    .await
    .unwrap();
    assert!(matches!(
        s.create_join_token(&JoinToken {
            token: "new".into(),
            expiry: 9_000
        })
        .await,
        Err(DataStoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.create_join_token(&JoinToken {
            token: String::new(),
            expiry: 1
        })
        .await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    assert_eq!(
        s.fetch_join_token("new").await.unwrap().unwrap().expiry,
        5_000
    );

    // Expired: reported, and deleted anyway.
    assert_eq!(
        s.consume_join_token("old", 2_000).await.unwrap(),
        JoinTokenOutcome::Expired(JoinToken {
            token: "old".into(),
            expiry: 1_000
        })
    );
    assert_eq!(
        s.consume_join_token("old", 2_000).await.unwrap(),
        JoinTokenOutcome::NotFound
    );
    // Valid through its expiry second.
    assert!(matches!(
        s.consume_join_token("edge", 2_000).await.unwrap(),
        JoinTokenOutcome::Consumed(_)
    ));
    assert_eq!(
        s.consume_join_token("never", 2_000).await.unwrap(),
        JoinTokenOutcome::NotFound
    );

    s.create_join_token(&JoinToken {
        token: "stale".into(),
        expiry: 3_000,
    })
    .await
    .unwrap();
    assert_eq!(s.prune_join_tokens(4_000).await.unwrap(), 1);
    assert!(s.fetch_join_token("stale").await.unwrap().is_none());
    assert!(s.fetch_join_token("new").await.unwrap().is_some());
    s.delete_join_token("new").await.unwrap();
    assert!(matches!(
        s.delete_join_token("new").await,
        Err(DataStoreError::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------

async fn bundles_append_dedupe_prune_taint_revoke(ctx: Ctx) {
    let s = &ctx.store;
    let (old_root, old_key) = cert(1_700_000_000);
    let (root, root_key) = cert(2_000_000_000);
    let b = Bundle {
        trust_domain: "example.org".into(),
        x509_authorities: vec![X509Authority {
            asn1: old_root.clone(),
            tainted: false,
        }],
        jwt_authorities: vec![jwt("k1", 1_700_000_000)],
        refresh_hint: 300,
        sequence_number: 1,
        ..Bundle::default()
    };
    assert_eq!(s.create_bundle(&b).await.unwrap(), b);
    assert!(matches!(
        s.create_bundle(&b).await,
        Err(DataStoreError::AlreadyExists { .. })
    ));
    // Stored under the trust domain ID, as SPIRE does; fetched by name or ID.
    assert_eq!(
        ctx.raw_count("SELECT COUNT(*) FROM bundles WHERE trust_domain = 'spiffe://example.org'")
            .await,
        1
    );
    assert_eq!(
        s.fetch_bundle("spiffe://example.org")
            .await
            .unwrap()
            .unwrap(),
        b
    );

    // Append: only new material counts, and bumps the sequence number once.
    let appended = s
        .append_bundle(&Bundle {
            trust_domain: "example.org".into(),
            x509_authorities: vec![
                X509Authority {
                    asn1: old_root.clone(),
                    tainted: false,
                },
                X509Authority {
                    asn1: root.clone(),
                    tainted: false,
                },
            ],
            jwt_authorities: vec![
                jwt("k1", 1_700_000_000),
                jwt("k2", 0),
                jwt("k3", 2_000_000_000),
            ],
            ..Bundle::default()
        })
        .await
        .unwrap();
    assert_eq!(appended.sequence_number, 2);
    assert_eq!(appended.x509_authorities.len(), 2);
    assert_eq!(
        appended
            .jwt_authorities
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2", "k3"]
    );
    assert_eq!(appended.refresh_hint, 300);
    let same = s
        .append_bundle(&Bundle {
            trust_domain: "example.org".into(),
            jwt_authorities: vec![jwt("k2", 0)],
            ..Bundle::default()
        })
        .await
        .unwrap();
    assert_eq!(same, appended);
    // Append creates a missing bundle.
    let fresh = s
        .append_bundle(&Bundle {
            trust_domain: "fresh.org".into(),
            jwt_authorities: vec![jwt("f", 0)],
            ..Bundle::default()
        })
        .await
        .unwrap();
    assert_eq!(s.fetch_bundle("fresh.org").await.unwrap().unwrap(), fresh);

    // Prune: the expired root and key go (k2 never expires); sequence bumps.
    assert!(s.prune_bundle("example.org", 1_800_000_000).await.unwrap());
    let pruned = s.fetch_bundle("example.org").await.unwrap().unwrap();
    assert_eq!(
        pruned.x509_authorities,
        vec![X509Authority {
            asn1: root.clone(),
            tainted: false
        }]
    );
    assert_eq!(
        pruned
            .jwt_authorities
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        ["k2", "k3"]
    );
    assert_eq!(pruned.sequence_number, 3);
    assert!(!s.prune_bundle("example.org", 1_800_000_000).await.unwrap());
    // Never every root.
    let err = s
        .prune_bundle("example.org", 2_100_000_000)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("would prune all certificates"),
        "{err}"
    );
    assert!(!s.prune_bundle("missing.org", 1).await.unwrap());

    // Taint / revoke.
    assert!(matches!(
        s.taint_x509_authority("example.org", &old_key).await,
        Err(DataStoreError::NotFound(_))
    ));
    assert!(matches!(
        s.revoke_x509_authority("example.org", &root_key).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    s.taint_x509_authority("example.org", &root_key)
        .await
        .unwrap();
    assert!(matches!(
        s.taint_x509_authority("example.org", &root_key).await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    let tainted = s.fetch_bundle("example.org").await.unwrap().unwrap();
    assert!(tainted.x509_authorities[0].tainted);
    assert_eq!(tainted.sequence_number, 4);
    s.revoke_x509_authority("example.org", &root_key)
        .await
        .unwrap();
    assert!(
        s.fetch_bundle("example.org")
            .await
            .unwrap()
            .unwrap()
            .x509_authorities
            .is_empty()
    );

    assert!(matches!(
        s.revoke_jwt_key("example.org", "k3").await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    assert!(s.taint_jwt_key("example.org", "k3").await.unwrap().tainted);
    assert!(matches!(
        s.taint_jwt_key("example.org", "k3").await,
        Err(DataStoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.taint_jwt_key("example.org", "nope").await,
        Err(DataStoreError::NotFound(_))
    ));
    assert_eq!(
        s.revoke_jwt_key("example.org", "k3").await.unwrap().key_id,
        "k3"
    );
    let after = s.fetch_bundle("example.org").await.unwrap().unwrap();
    assert_eq!(
        after
            .jwt_authorities
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        ["k2"]
    );

    // Set replaces wholesale; update honours its mask.
    let replaced = Bundle {
        trust_domain: "spiffe://example.org".into(),
        refresh_hint: 60,
        sequence_number: 10,
        ..Bundle::default()
    };
    let set_result = s.set_bundle(&replaced).await.unwrap();
    assert_eq!(set_result.trust_domain, "example.org");
    assert_eq!(
        s.fetch_bundle("example.org").await.unwrap().unwrap(),
        set_result
    );
    let mask = BundleMask {
        refresh_hint: true,
        ..Default::default()
    };
    let u = s
        .update_bundle(
            &Bundle {
                refresh_hint: 99,
                sequence_number: 0,
                ..set_result.clone()
            },
            Some(&mask),
        )
        .await
        .unwrap();
    assert_eq!((u.refresh_hint, u.sequence_number), (99, 10));
    assert!(matches!(
        s.update_bundle(
            &Bundle {
                trust_domain: "zzz.org".into(),
                ..Bundle::default()
            },
            None
        )
        .await,
        Err(DataStoreError::NotFound(_))
    ));

    // Listing and counting.
    assert_eq!(s.count_bundles().await.unwrap(), 2);
    let p1 = s.list_bundles(Some(&Pagination::first(1))).await.unwrap();
    assert_eq!(p1.bundles[0].trust_domain, "example.org");
    let p2 = s
        .list_bundles(Some(&Pagination {
            page_size: 1,
            token: p1.next_page_token,
        }))
        .await
        .unwrap();
    assert_eq!(p2.bundles[0].trust_domain, "fresh.org");
    assert_eq!(s.list_bundles(None).await.unwrap().bundles.len(), 2);
}

async fn bundle_delete_modes(ctx: Ctx) {
    let s = &ctx.store;
    for td in ["restrict.org", "delete.org", "dissociate.org", "lonely.org"] {
        s.create_bundle(&Bundle {
            trust_domain: td.into(),
            ..Bundle::default()
        })
        .await
        .unwrap();
    }
    let make = |name: &str, feds: &[&str]| {
        let mut e = entry(name, "/p", &[("u", name)]);
        e.federates_with = feds.iter().map(|s| s.to_string()).collect();
        e
    };
    let r = s
        .create_registration_entry(&make("/r", &["restrict.org"]))
        .await
        .unwrap();
    let d = s
        .create_registration_entry(&make("/d", &["delete.org", "dissociate.org"]))
        .await
        .unwrap();
    let x = s
        .create_registration_entry(&make("/x", &["dissociate.org"]))
        .await
        .unwrap();

    let err = s
        .delete_bundle("restrict.org", DeleteMode::Restrict)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DataStoreError::FailedPrecondition(_)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("federated with 1 registration entries"),
        "{err}"
    );
    assert!(s.fetch_bundle("restrict.org").await.unwrap().is_some());
    s.delete_bundle("lonely.org", DeleteMode::Restrict)
        .await
        .unwrap();
    assert!(s.fetch_bundle("lonely.org").await.unwrap().is_none());

    s.delete_bundle("spiffe://dissociate.org", DeleteMode::Dissociate)
        .await
        .unwrap();
    let d2 = s.fetch_registration_entry(&d.id).await.unwrap().unwrap();
    assert_eq!(d2.federates_with, vec!["delete.org"]);
    assert_eq!(d2.revision_number, d.revision_number + 1);
    assert!(
        s.fetch_registration_entry(&x.id)
            .await
            .unwrap()
            .unwrap()
            .federates_with
            .is_empty()
    );

    s.delete_bundle("delete.org", DeleteMode::Delete)
        .await
        .unwrap();
    assert!(s.fetch_registration_entry(&d.id).await.unwrap().is_none());
    assert!(s.fetch_registration_entry(&r.id).await.unwrap().is_some());
    assert!(matches!(
        s.delete_bundle("delete.org", DeleteMode::Delete).await,
        Err(DataStoreError::NotFound(_))
    ));
    assert_eq!(
        ctx.raw_count("SELECT COUNT(*) FROM federated_registration_entries")
            .await,
        1
    );
}

// ---------------------------------------------------------------------------------------
// Change feed, federation, journals
// ---------------------------------------------------------------------------------------

async fn change_feed_after_commit(ctx: Ctx) {
    let s = &ctx.store;
    let mut rx = s.subscribe();
    let e = s
        .create_registration_entry(&entry("/w", "/p", &[("u", "1")]))
        .await
        .unwrap();
    // The change is visible to a reader as soon as it is announced.
    assert_eq!(
        rx.try_recv().unwrap(),
        DataStoreChange::EntryChanged { id: e.id.clone() }
    );
    assert!(s.fetch_registration_entry(&e.id).await.unwrap().is_some());

    // Failed writes announce nothing.
    assert!(
        s.create_registration_entry(&entry("/w", "/p", &[("u", "1")]))
            .await
            .is_err()
    );
    assert!(
        s.update_registration_entry(
            &RegistrationEntry {
                id: "missing".into(),
                ..e.clone()
            },
            None
        )
        .await
        .is_err()
    );
    assert!(rx.try_recv().is_err());

    let n = node("n", "1", 2_000_000_000);
    s.create_attested_node(&n).await.unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        DataStoreChange::NodeChanged {
            spiffe_id: n.spiffe_id.clone()
        }
    );
    s.set_node_selectors(&n.spiffe_id, &[sel("a", "b")])
        .await
        .unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        DataStoreChange::NodeChanged {
            spiffe_id: n.spiffe_id.clone()
        }
    );
    s.append_bundle(&Bundle {
        trust_domain: "spiffe://td.org".into(),
        jwt_authorities: vec![jwt("k", 0)],
        ..Bundle::default()
    })
    .await
    .unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        DataStoreChange::BundleChanged {
            trust_domain: "td.org".into()
        }
    );
    // An append that changes nothing announces nothing.
    s.append_bundle(&Bundle {
        trust_domain: "td.org".into(),
        jwt_authorities: vec![jwt("k", 0)],
        ..Bundle::default()
    })
    .await
    .unwrap();
    assert!(rx.try_recv().is_err());

    // Evicting a node that has a join-token alias announces both.
    let alias = RegistrationEntry {
        spiffe_id: format!("{TD}/host"),
        parent_id: n.spiffe_id.clone(),
        selectors: vec![sel("spiffe_id", &n.spiffe_id)],
        ..Default::default()
    };
    let alias = s.create_registration_entry(&alias).await.unwrap();
    rx.try_recv().unwrap();
    s.delete_attested_node(&n.spiffe_id).await.unwrap();
    let mut got = vec![rx.try_recv().unwrap(), rx.try_recv().unwrap()];
    got.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        got,
        vec![
            DataStoreChange::EntryChanged { id: alias.id },
            DataStoreChange::NodeChanged {
                spiffe_id: n.spiffe_id
            }
        ]
    );

    // A subscriber in another task sees changes made elsewhere promptly.
    let mut rx2 = s.subscribe();
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx2.recv()).await
    });
    s.delete_registration_entry(&e.id).await.unwrap();
    assert_eq!(
        waiter.await.unwrap().unwrap().unwrap(),
        DataStoreChange::EntryChanged { id: e.id }
    );
}

async fn federation_relationships_and_ca_journals(ctx: Ctx) {
    let s = &ctx.store;
    let web = FederationRelationship {
        trust_domain: "web.org".into(),
        bundle_endpoint_url: "https://web.org/bundle".into(),
        bundle_endpoint_profile: BundleEndpointProfile::HttpsWeb,
        trust_domain_bundle: None,
    };
    let created = s.create_federation_relationship(&web).await.unwrap();
    assert_eq!(created, web);
    assert!(matches!(
        s.create_federation_relationship(&web).await,
        Err(DataStoreError::AlreadyExists { .. })
    ));
    let bundle = Bundle {
        trust_domain: "spiffe.org".into(),
        jwt_authorities: vec![jwt("k", 0)],
        sequence_number: 3,
        ..Bundle::default()
    };
    let spiffe = FederationRelationship {
        trust_domain: "spiffe://spiffe.org".into(),
        bundle_endpoint_url: "https://spiffe.org:8443".into(),
        bundle_endpoint_profile: BundleEndpointProfile::HttpsSpiffe {
            endpoint_spiffe_id: "spiffe://spiffe.org/spire/server".into(),
        },
        trust_domain_bundle: Some(bundle.clone()),
    };
    let created = s.create_federation_relationship(&spiffe).await.unwrap();
    assert_eq!(created.trust_domain, "spiffe.org");
    assert_eq!(created.trust_domain_bundle, Some(bundle.clone()));
    assert_eq!(s.fetch_bundle("spiffe.org").await.unwrap(), Some(bundle));
    assert_eq!(
        s.fetch_federation_relationship("spiffe.org")
            .await
            .unwrap()
            .unwrap(),
        created
    );
    assert!(
        s.fetch_federation_relationship("none.org")
            .await
            .unwrap()
            .is_none()
    );

    let p1 = s
        .list_federation_relationships(Some(&Pagination::first(1)))
        .await
        .unwrap();
    assert_eq!(p1.relationships[0].trust_domain, "web.org");
    let p2 = s
        .list_federation_relationships(Some(&Pagination {
            page_size: 1,
            token: p1.next_page_token,
        }))
        .await
        .unwrap();
    assert_eq!(p2.relationships[0].trust_domain, "spiffe.org");
    assert_eq!(
        s.list_federation_relationships(None)
            .await
            .unwrap()
            .relationships
            .len(),
        2
    );

    let moved = FederationRelationship {
        bundle_endpoint_url: "https://new.web.org".into(),
        bundle_endpoint_profile: BundleEndpointProfile::HttpsSpiffe {
            endpoint_spiffe_id: "spiffe://web.org/x".into(),
        },
        ..web.clone()
    };
    let mask = FederationRelationshipMask {
        bundle_endpoint_url: true,
        ..Default::default()
    };
    let u = s
        .update_federation_relationship(&moved, &mask)
        .await
        .unwrap();
    assert_eq!(
        (u.bundle_endpoint_url.as_str(), &u.bundle_endpoint_profile),
        ("https://new.web.org", &BundleEndpointProfile::HttpsWeb)
    );
    let all = FederationRelationshipMask {
        bundle_endpoint_url: true,
        bundle_endpoint_profile: true,
        trust_domain_bundle: true,
    };
    assert_eq!(
        s.update_federation_relationship(&moved, &all)
            .await
            .unwrap(),
        moved
    );
    s.delete_federation_relationship("web.org").await.unwrap();
    assert!(matches!(
        s.delete_federation_relationship("web.org").await,
        Err(DataStoreError::NotFound(_))
    ));
    // The bundle outlives its relationship.
    s.delete_federation_relationship("spiffe.org")
        .await
        .unwrap();
    assert!(s.fetch_bundle("spiffe.org").await.unwrap().is_some());

    // CA journals.
    let j = s
        .set_ca_journal(&CaJournal {
            id: 0,
            data: vec![1, 2, 3],
            active_x509_authority_id: "ab01".into(),
            active_jwt_authority_id: "kid".into(),
        })
        .await
        .unwrap();
    assert!(j.id > 0);
    assert_eq!(s.fetch_ca_journal("ab01").await.unwrap().unwrap(), j);
    let j2 = s
        .set_ca_journal(&CaJournal {
            data: vec![9; 100_000],
            active_x509_authority_id: "cd02".into(),
            ..j.clone()
        })
        .await
        .unwrap();
    assert_eq!(j2.id, j.id);
    assert!(s.fetch_ca_journal("ab01").await.unwrap().is_none());
    assert_eq!(
        s.fetch_ca_journal("cd02")
            .await
            .unwrap()
            .unwrap()
            .data
            .len(),
        100_000
    );
    assert_eq!(s.list_ca_journals().await.unwrap(), vec![j2.clone()]);
    assert!(matches!(
        s.set_ca_journal(&CaJournal {
            id: 999,
            ..j2.clone()
        })
        .await,
        Err(DataStoreError::NotFound(_))
    ));
    s.delete_ca_journal(j2.id).await.unwrap();
    assert!(s.list_ca_journals().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Connection strings (no database needed beyond SQLite)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_connection_string_forms() {
    let dir = tempfile::tempdir().unwrap();
    // A relative-style path with go-sqlite3 parameters, in a directory that does not exist yet.
    let path = dir.path().join("nested/dir/datastore.sqlite3");
    let cs = format!("file:{}?_foreign_keys=on&_journal_mode=WAL", path.display());
    let store = SqlStore::open(&DataStoreConfig::new("sqlite3", cs))
        .await
        .unwrap();
    assert!(path.exists());
    store
        .create_join_token(&JoinToken {
            token: "t".into(),
            expiry: 10,
        })
        .await
        .unwrap();
    store.close().await;

    // In-memory shared-cache databases live while the store does.
    let mem = SqlStore::open(&DataStoreConfig::new(
        "sqlite3",
        "file:memdb_test?mode=memory&cache=shared",
    ))
    .await
    .unwrap();
    mem.create_join_token(&JoinToken {
        token: "m".into(),
        expiry: 10,
    })
    .await
    .unwrap();
    assert!(mem.fetch_join_token("m").await.unwrap().is_some());

    let err = SqlStore::open(&DataStoreConfig::new("oracle", "x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported database_type"),
        "{err}"
    );
    assert!(
        SqlStore::open(&DataStoreConfig::new("sqlite3", ""))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn postgres_key_value_connection_string() {
    let Some((cfg, _, guard, _)) = fresh(Backend::Postgres).await else {
        return;
    };
    // postgres://user[:pass]@host[:port]/db -> lib/pq key=value
    let rest = cfg.connection_string.split_once("://").unwrap().1;
    let (auth, hostdb) = rest.split_once('@').unwrap();
    let (hostport, db) = hostdb.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    let mut kv = format!("dbname={db} host={host} port={port} sslmode=disable");
    match auth.split_once(':') {
        Some((user, pass)) => kv.push_str(&format!(" user={user} password='{pass}'")),
        None => kv.push_str(&format!(" user={auth}")),
    }
    let store = SqlStore::open(&DataStoreConfig::new("postgres", kv))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 25);
    store.close().await;
    drop(guard);
}

#[tokio::test]
async fn mysql_go_dsn_connection_string() {
    let Some((cfg, _, guard, _)) = fresh(Backend::MySql).await else {
        return;
    };
    // mysql://user[:pass]@host:port/db -> user[:pass]@tcp(host:port)/db?parseTime=true
    let rest = cfg.connection_string.split_once("://").unwrap().1;
    let (auth, hostdb) = rest.split_once('@').unwrap();
    let (hostport, db) = hostdb.split_once('/').unwrap();
    let dsn = format!("{auth}@tcp({hostport})/{db}?parseTime=true");
    let store = SqlStore::open(&DataStoreConfig::new("mysql", dsn))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 25);
    store.close().await;
    drop(guard);
}

async fn revoked_x509_svids_round_trip(ctx: Ctx) {
    let s = &ctx.store;
    // The extension table sits next to SPIRE's schema without changing its version.
    assert_eq!(s.schema_version().await.unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(
        ctx.raw_count(&format!(
            "SELECT COUNT(*) FROM {REVOKED_X509_SVIDS_TABLE} WHERE 1 = 0"
        ))
        .await,
        0
    );
    let mut rx = s.subscribe();
    let a = s.revoke_x509_svid("1f2e", 1_000, 5_000).await.unwrap();
    assert_eq!(
        a,
        RevokedX509Svid {
            serial: "1f2e".into(),
            revoked_at: 1_000,
            expires_at: 5_000
        }
    );
    assert_eq!(rx.try_recv().unwrap(), DataStoreChange::RevocationsChanged);
    s.revoke_x509_svid("a0", 1_100, 2_000).await.unwrap();
    // Revoking again keeps the first revocation time and only extends the expiry.
    let again = s.revoke_x509_svid("1f2e", 1_200, 4_000).await.unwrap();
    assert_eq!((again.revoked_at, again.expires_at), (1_000, 5_000));
    let again = s.revoke_x509_svid("1f2e", 1_300, 9_000).await.unwrap();
    assert_eq!((again.revoked_at, again.expires_at), (1_000, 9_000));
    let listed = s.list_revoked_x509_svids().await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.serial.as_str()).collect::<Vec<_>>(),
        ["1f2e", "a0"]
    );
    assert_eq!(listed[0].expires_at, 9_000);

    // Malformed serials are refused and write nothing.
    for bad in ["", "01", "ABC", "xyz", &"f".repeat(41)] {
        let err = s.revoke_x509_svid(bad, 1, 2).await.unwrap_err();
        assert!(
            matches!(err, DataStoreError::InvalidArgument(_)),
            "{bad}: {err}"
        );
    }
    assert!(s.revoke_x509_svid("ab", 10, 5).await.is_err());
    assert_eq!(s.list_revoked_x509_svids().await.unwrap().len(), 2);

    // Pruning drops what expired, survives a reopen for the rest.
    while rx.try_recv().is_ok() {}
    assert_eq!(s.prune_revoked_x509_svids(3_000).await.unwrap(), 1);
    assert_eq!(rx.try_recv().unwrap(), DataStoreChange::RevocationsChanged);
    assert_eq!(s.prune_revoked_x509_svids(3_000).await.unwrap(), 0);
    assert!(rx.try_recv().is_err());
    s.close().await;
    let again = ctx.reopen().await.unwrap();
    let listed = again.list_revoked_x509_svids().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].serial, "1f2e");
    again.close().await;
}

//! `SqlStore`: the pool, transactions, the change feed, and the small query toolkit the
//! per-table modules share.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row};
use tokio::sync::{Mutex, MutexGuard, broadcast};
use tracing::{info, warn};

use super::config::{DataStoreConfig, resolve};
use super::dialect::Dialect;
use super::error::{DataStoreError, Result};
use super::model::{DataStoreChange, MatchBehavior, Pagination, Selector, td_id};
use super::schema;

/// Capacity of the change feed; a subscriber that falls further behind gets
/// `RecvError::Lagged` and should resynchronise from the database.
const CHANGE_FEED_CAPACITY: usize = 4096;

/// SPIRE's default `max_open_conns`.
const DEFAULT_MAX_OPEN_CONNS: u32 = 100;

/// The SQL datastore: SQLite, PostgreSQL or MySQL behind one async API.
///
/// Every write runs in one transaction; writes to registration entries and attested nodes
/// append to the events tables in that same transaction. After each commit the change is
/// announced on the change feed ([`SqlStore::subscribe`]).
#[derive(Debug)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    /// SQLite allows one writer at a time: writers queue here instead of failing busy.
    write_lock: Option<Mutex<()>>,
    changes: broadcast::Sender<DataStoreChange>,
    /// The resolved connection URL (the change follower's PostgreSQL listener opens its
    /// own connection with it).
    pub(crate) url: ConnectionUrl,
}

impl SqlStore {
    /// Connects to the configured database, creating (SQLite file) or migrating the schema
    /// as needed. Fails on a schema newer than this code or too old to migrate.
    pub async fn open(cfg: &DataStoreConfig) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let target = resolve(cfg)?;
        let d = target.dialect;
        if cfg
            .ro_connection_string
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            warn!("ro_connection_string is set but not used: all reads go to the primary database");
        }
        let max_open = cfg
            .max_open_conns
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_OPEN_CONNS);
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(max_open)
            .max_lifetime(cfg.conn_max_lifetime);
        if d == Dialect::Sqlite {
            pool_opts = if target.in_memory {
                // The database lives as long as one connection to it does.
                pool_opts
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                pool_opts.idle_timeout(Duration::from_secs(30))
            };
            let wal = !target.in_memory && !target.read_only;
            pool_opts = pool_opts.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    if wal {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            });
        }
        let connect_opts = AnyConnectOptions::from_str(&target.url).map_err(|e| {
            DataStoreError::InvalidArgument(format!(
                "datastore-sql: invalid connection string: {e}"
            ))
        })?;
        info!(database_type = d.name(), "Opening SQL database");
        let pool = pool_opts.connect_with(connect_opts).await?;
        let store = Self {
            pool,
            dialect: d,
            write_lock: (d == Dialect::Sqlite).then(|| Mutex::new(())),
            changes: broadcast::channel(CHANGE_FEED_CAPACITY).0,
            url: ConnectionUrl(target.url.clone()),
        };
        {
            let _guard = store.lock_writes().await;
            let mut conn = store.pool.acquire().await?;
            let before = schema::migrate(&mut conn, d, cfg.disable_migration).await?;
            super::revocations::ensure_table(&mut conn, d, cfg.disable_migration).await?;
            info!(
                database_type = d.name(),
                schema = schema::SCHEMA_VERSION,
                previous_schema = before.unwrap_or(0),
                "Connected to SQL database"
            );
        }
        Ok(store)
    }

    /// The database behind this store.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Subscribes to committed changes. Each change is sent once, after its transaction
    /// committed. A receiver that lags more than the feed capacity gets
    /// `RecvError::Lagged` and should resynchronise from the database.
    pub fn subscribe(&self) -> broadcast::Receiver<DataStoreChange> {
        self.changes.subscribe()
    }

    /// Sends a change on the feed without a commit of this store (the follower of other
    /// servers' commits uses it). No subscribers is fine.
    pub(crate) fn announce(&self, change: DataStoreChange) {
        let _ = self.changes.send(change);
    }

    /// Closes every connection. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The schema version recorded in the `migrations` table.
    pub async fn schema_version(&self) -> Result<i64> {
        let mut tx = self.read().await?;
        let row = tx
            .one("SELECT version FROM migrations ORDER BY id", vec![])
            .await?;
        col_i64(&row, 0)
    }

    async fn lock_writes(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// Starts a write transaction (serialized with other writers on SQLite).
    ///
    /// On SQLite it begins IMMEDIATE, taking the write lock up front: a deferred
    /// transaction that reads first and then writes cannot wait for the lock (SQLite
    /// answers SQLITE_BUSY at once to avoid a deadlock), and the previous writer's
    /// rollback-on-drop may still be in flight on another connection.
    pub(crate) async fn write(&self) -> Result<Tx<'_>> {
        let guard = self.lock_writes().await;
        let tx = if self.dialect == Dialect::Sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        };
        Ok(Tx {
            tx,
            d: self.dialect,
            changes: Vec::new(),
            _guard: guard,
        })
    }

    /// Starts a read transaction (one snapshot on SQLite; statement-level on others).
    pub(crate) async fn read(&self) -> Result<Tx<'_>> {
        let tx = self.pool.begin().await?;
        Ok(Tx {
            tx,
            d: self.dialect,
            changes: Vec::new(),
            _guard: None,
        })
    }

    /// Commits and then announces the transaction's changes.
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> Result<()> {
        let Tx {
            mut tx,
            changes,
            _guard,
            ..
        } = tx;
        if self.dialect == Dialect::Postgres && !changes.is_empty() {
            // Wakes the followers of other servers (LISTEN) when this transaction
            // commits; PostgreSQL drops the notification if it rolls back.
            sqlx::query(AssertSqlSafe(format!(
                "SELECT pg_notify('{}', '')",
                super::follow::CHANGE_CHANNEL
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        drop(_guard);
        for change in changes {
            // No subscribers is fine.
            let _ = self.changes.send(change);
        }
        Ok(())
    }
}

/// A connection URL, kept out of `Debug` output (it may hold a password).
#[derive(Clone)]
pub(crate) struct ConnectionUrl(pub(crate) String);

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionUrl(<redacted>)")
    }
}

/// A bound query argument.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    I64(i64),
    I32(i32),
    Str(String),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::I64(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Self::I32(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Str(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Self::Str(v.clone())
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Self::Bytes(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(Some(v))
    }
}

/// `vec![Arg::from(a), ...]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::datastore::store::Arg::from($a)),*] };
}
pub(crate) use args;

fn build(
    d: Dialect,
    sql: &str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(AssertSqlSafe(d.rebind(sql).into_owned()));
    for a in args {
        q = match a {
            Arg::I64(v) => q.bind(v),
            Arg::I32(v) => q.bind(v),
            Arg::Str(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
        };
    }
    q
}

/// A transaction plus the changes to announce once it commits. Dropping it without
/// [`SqlStore::commit`] rolls back.
pub(crate) struct Tx<'s> {
    // Field order matters: the transaction drops (and rolls back) before the write lock.
    tx: sqlx::Transaction<'static, Any>,
    pub(crate) d: Dialect,
    changes: Vec<DataStoreChange>,
    _guard: Option<MutexGuard<'s, ()>>,
}

impl Tx<'_> {
    /// Records a change to announce after commit (deduplicated).
    pub(crate) fn changed(&mut self, change: DataStoreChange) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    /// Executes a statement; returns the number of affected rows.
    pub(crate) async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        Ok(build(self.d, sql, args)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    /// Fetches every row.
    pub(crate) async fn all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<AnyRow>> {
        Ok(build(self.d, sql, args).fetch_all(&mut *self.tx).await?)
    }

    /// Fetches at most one row.
    pub(crate) async fn opt(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<AnyRow>> {
        Ok(build(self.d, sql, args)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Fetches exactly one row.
    pub(crate) async fn one(&mut self, sql: &str, args: Vec<Arg>) -> Result<AnyRow> {
        Ok(build(self.d, sql, args).fetch_one(&mut *self.tx).await?)
    }

    /// Runs a `SELECT COUNT(*) ...`.
    pub(crate) async fn count(&mut self, sql: &str, args: Vec<Arg>) -> Result<i64> {
        let row = self.one(sql, args).await?;
        col_i64(&row, 0)
    }

    /// Runs an `INSERT` into a table with an `id` column; returns the new ID.
    pub(crate) async fn insert(&mut self, sql: &str, args: Vec<Arg>) -> Result<i64> {
        if self.d.returning_id() {
            let sql = format!("{sql} RETURNING id");
            let row = build(self.d, &sql, args).fetch_one(&mut *self.tx).await?;
            return col_i64(&row, 0);
        }
        let result = build(self.d, sql, args).execute(&mut *self.tx).await?;
        result.last_insert_id().ok_or_else(|| {
            DataStoreError::Internal("datastore-sql: the database returned no insert ID".into())
        })
    }

    /// The current time as a column value.
    pub(crate) fn now(&self) -> &'static str {
        self.d.now()
    }
}

/// Integer column; NULL reads as 0.
pub(crate) fn col_i64(row: &AnyRow, i: usize) -> Result<i64> {
    Ok(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0))
}

/// Integer column that must fit an `i32`; NULL reads as 0.
pub(crate) fn col_i32(row: &AnyRow, i: usize) -> Result<i32> {
    let v = col_i64(row, i)?;
    i32::try_from(v)
        .map_err(|_| DataStoreError::Internal(format!("datastore-sql: value {v} out of range")))
}

/// Text column; NULL reads as "".
pub(crate) fn col_str(row: &AnyRow, i: usize) -> Result<String> {
    Ok(row.try_get::<Option<String>, _>(i)?.unwrap_or_default())
}

/// Blob column.
pub(crate) fn col_bytes(row: &AnyRow, i: usize) -> Result<Option<Vec<u8>>> {
    Ok(row.try_get::<Option<Vec<u8>>, _>(i)?)
}

/// A boolean read through [`Dialect::bool_of`].
pub(crate) fn col_bool(row: &AnyRow, i: usize) -> Result<bool> {
    Ok(col_i64(row, i)? != 0)
}

/// `?, ?, ?` for `n` placeholders.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Validates a page request; returns the internal ID after which the page starts.
pub(crate) fn page_start(p: &Pagination) -> Result<i64> {
    if p.page_size == 0 {
        return Err(DataStoreError::InvalidArgument(
            "cannot paginate with pagesize = 0".into(),
        ));
    }
    if p.token.is_empty() {
        return Ok(0);
    }
    p.token
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| {
            DataStoreError::InvalidArgument(format!("could not parse token '{}'", p.token))
        })
}

/// Selectors without duplicates, first occurrence kept.
pub(crate) fn dedup_selectors(selectors: &[Selector]) -> Vec<Selector> {
    let mut seen = std::collections::HashSet::new();
    selectors
        .iter()
        .filter(|s| seen.insert((*s).clone()))
        .cloned()
        .collect()
}

/// Strings without duplicates, first occurrence kept.
pub(crate) fn dedup_strings(values: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect()
}

/// A SQL condition on `outer` (the key of the filtered row, e.g. `E.id`) that holds when
/// the `(type, value)` rows of `table` whose `fk` equals `outer` match `selectors` under
/// `behavior`. Appends the bound values to `args` in placeholder order.
pub(crate) fn selector_condition(
    table: &str,
    fk: &str,
    outer: &str,
    selectors: &[Selector],
    behavior: MatchBehavior,
    args: &mut Vec<Arg>,
) -> Result<String> {
    let sels = dedup_selectors(selectors);
    if sels.is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "cannot list by empty selector set".into(),
        ));
    }
    let member = |alias: &str, args: &mut Vec<Arg>| -> String {
        let mut parts = Vec::with_capacity(sels.len());
        for s in &sels {
            parts.push(format!("({alias}.type = ? AND {alias}.value = ?)"));
            args.push(Arg::Str(s.r#type.clone()));
            args.push(Arg::Str(s.value.clone()));
        }
        parts.join(" OR ")
    };
    let n = sels.len();
    let mut cond = match behavior {
        MatchBehavior::Any | MatchBehavior::Subset => {
            let m = member("S", args);
            format!("{outer} IN (SELECT S.{fk} FROM {table} S WHERE {m})")
        }
        MatchBehavior::Superset | MatchBehavior::Exact => {
            let m = member("S", args);
            format!(
                "{outer} IN (SELECT S.{fk} FROM {table} S WHERE {m} GROUP BY S.{fk} HAVING COUNT(*) = {n})"
            )
        }
    };
    if matches!(behavior, MatchBehavior::Subset | MatchBehavior::Exact) {
        let m = member("S2", args);
        cond = format!(
            "{cond} AND NOT EXISTS (SELECT 1 FROM {table} S2 WHERE S2.{fk} = {outer} AND NOT ({m}))"
        );
    }
    Ok(format!("({cond})"))
}

/// Like [`selector_condition`] for the trust domains an entry (`outer` = `E.id`)
/// federates with. An empty filter matches everything (as in SPIRE).
pub(crate) fn federates_condition(
    outer: &str,
    trust_domains: &[String],
    behavior: MatchBehavior,
    args: &mut Vec<Arg>,
) -> Option<String> {
    let ids = dedup_strings(&trust_domains.iter().map(|t| td_id(t)).collect::<Vec<_>>());
    if ids.is_empty() {
        return None;
    }
    let n = ids.len();
    let push_ids = |args: &mut Vec<Arg>| {
        for id in &ids {
            args.push(Arg::Str(id.clone()));
        }
        placeholders(n)
    };
    let join = "federated_registration_entries F JOIN bundles B ON B.id = F.bundle_id";
    let mut cond = match behavior {
        MatchBehavior::Any | MatchBehavior::Subset => {
            let p = push_ids(args);
            format!(
                "{outer} IN (SELECT F.registered_entry_id FROM {join} WHERE B.trust_domain IN ({p}))"
            )
        }
        MatchBehavior::Superset | MatchBehavior::Exact => {
            let p = push_ids(args);
            format!(
                "{outer} IN (SELECT F.registered_entry_id FROM {join} WHERE B.trust_domain IN ({p}) \
                 GROUP BY F.registered_entry_id HAVING COUNT(*) = {n})"
            )
        }
    };
    if matches!(behavior, MatchBehavior::Subset | MatchBehavior::Exact) {
        let p = push_ids(args);
        cond = format!(
            "{cond} AND NOT EXISTS (SELECT 1 FROM federated_registration_entries F2 JOIN bundles B2 \
             ON B2.id = F2.bundle_id WHERE F2.registered_entry_id = {outer} AND B2.trust_domain NOT IN ({p}))"
        );
    }
    Some(format!("({cond})"))
}

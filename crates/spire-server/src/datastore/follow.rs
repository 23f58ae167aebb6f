//! Following the changes other servers commit to a shared database (HA deployments).
//!
//! Every server of an HA deployment writes to one database. A server learns of its own
//! writes from its commit path ([`SqlStore::subscribe`]); the follower here learns of
//! everyone else's and announces them on the same feed, so agents connected to any
//! server hear of a change made through any other:
//! - entries and nodes: the events tables (`registered_entries_events`,
//!   `attested_node_entries_events`), read past the last seen event ID. IDs may have
//!   gaps (transactions commit out of order), so skipped IDs are re-checked until
//!   `event_timeout`, as SPIRE's events-based cache does;
//! - bundles and the X.509-SVID revocation list, which have no events table: a cheap
//!   fingerprint (per-bundle hash; revocation count and time bounds) compared with the
//!   last one read.
//!
//! One implementation with a dialect switch for how the follower wakes: on PostgreSQL
//! every write transaction that changed something runs `pg_notify` on
//! [`CHANGE_CHANNEL`] and followers `LISTEN` there, so they read at once (and still poll
//! at `cache_reload_interval` as a safety net); SQLite and MySQL followers poll at a
//! short interval.
//!
//! A server's follower also reads the events its own writes appended, so its agents may
//! hear of a local change twice; a notification only makes an agent sync, so a repeat
//! costs one sync and loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::dialect::Dialect;
use super::error::Result;
use super::model::DataStoreChange;
use super::revocations::REVOKED_X509_SVIDS_TABLE;
use super::store::{SqlStore, col_bytes, col_i64, col_str};

/// The PostgreSQL `NOTIFY` channel write transactions signal on.
pub const CHANGE_CHANNEL: &str = "spirers_changes";

/// The longest a SQLite or MySQL follower waits between two reads.
const SHORT_POLL: Duration = Duration::from_millis(500);

/// The most skipped event IDs remembered per table (a larger jump is treated as IDs
/// that will never come, e.g. after a restore).
const MAX_GAPS: i64 = 10_000;

/// How a server follows the shared database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowOptions {
    /// The longest the follower waits between two reads when nothing woke it.
    pub poll_interval: Duration,
    /// How long a skipped event ID is waited for (SPIRE's `event_timeout`).
    pub event_timeout: Duration,
}

impl FollowOptions {
    /// The options for `dialect` from the server's `cache_reload_interval` and
    /// `event_timeout`: PostgreSQL polls at `cache_reload_interval` (LISTEN wakes it
    /// first); the others at the shorter of that and half a second.
    pub fn new(dialect: Dialect, cache_reload_interval: Duration, event_timeout: Duration) -> Self {
        let reload = if cache_reload_interval.is_zero() {
            Duration::from_secs(5)
        } else {
            cache_reload_interval
        };
        let poll_interval = match dialect {
            Dialect::Postgres => reload,
            Dialect::Sqlite | Dialect::MySql => reload.min(SHORT_POLL),
        };
        FollowOptions {
            poll_interval,
            event_timeout,
        }
    }
}

/// The last event ID read from one events table, and the skipped IDs below it still
/// awaited.
#[derive(Debug, Default)]
struct Cursor {
    last: i64,
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    /// Records that event `id` was read; returns whether it is news.
    fn observe(&mut self, id: i64, now: Instant) -> bool {
        if id <= self.last {
            return self.gaps.remove(&id).is_some();
        }
        let skipped = id - self.last - 1;
        if skipped > 0 && skipped <= MAX_GAPS {
            for g in self.last + 1..id {
                self.gaps.insert(g, now);
            }
        }
        self.last = id;
        true
    }

    /// Forgets skipped IDs awaited longer than `timeout`.
    fn expire(&mut self, now: Instant, timeout: Duration) {
        self.gaps
            .retain(|_, since| now.duration_since(*since) < timeout);
    }
}

/// What the follower last read.
#[derive(Debug, Default)]
struct FollowState {
    entries: Cursor,
    nodes: Cursor,
    bundles: HashMap<String, u64>,
    revocations: (i64, i64, i64, i64),
}

impl FollowState {
    /// The database as it is now (nothing announced).
    async fn load(store: &SqlStore) -> Result<Self> {
        Ok(FollowState {
            entries: Cursor {
                last: store.max_event_id("registered_entries_events").await?,
                gaps: BTreeMap::new(),
            },
            nodes: Cursor {
                last: store.max_event_id("attested_node_entries_events").await?,
                gaps: BTreeMap::new(),
            },
            bundles: store.bundle_fingerprints().await?,
            revocations: store.revocation_fingerprint().await?,
        })
    }

    /// Reads what changed since the last call and announces it.
    async fn poll(&mut self, store: &SqlStore, event_timeout: Duration) -> Result<()> {
        let now = Instant::now();

        let mut entry_events = store.list_entry_events(self.entries.last, None).await?;
        for id in self.entries.gaps.keys().copied().collect::<Vec<_>>() {
            if let Some(e) = store.fetch_entry_event(id).await? {
                entry_events.push(e);
            }
        }
        for e in entry_events {
            if self.entries.observe(e.event_id, now) {
                store.announce(DataStoreChange::EntryChanged { id: e.entry_id });
            }
        }
        self.entries.expire(now, event_timeout);

        let mut node_events = store.list_node_events(self.nodes.last, None).await?;
        for id in self.nodes.gaps.keys().copied().collect::<Vec<_>>() {
            if let Some(e) = store.fetch_node_event(id).await? {
                node_events.push(e);
            }
        }
        for e in node_events {
            if self.nodes.observe(e.event_id, now) {
                store.announce(DataStoreChange::NodeChanged {
                    spiffe_id: e.spiffe_id,
                });
            }
        }
        self.nodes.expire(now, event_timeout);

        let bundles = store.bundle_fingerprints().await?;
        for (td, hash) in &bundles {
            if self.bundles.get(td) != Some(hash) {
                store.announce(DataStoreChange::BundleChanged {
                    trust_domain: td.clone(),
                });
            }
        }
        for td in self.bundles.keys() {
            if !bundles.contains_key(td) {
                store.announce(DataStoreChange::BundleChanged {
                    trust_domain: td.clone(),
                });
            }
        }
        self.bundles = bundles;

        let revocations = store.revocation_fingerprint().await?;
        if revocations != self.revocations {
            store.announce(DataStoreChange::RevocationsChanged);
            self.revocations = revocations;
        }
        Ok(())
    }
}

impl SqlStore {
    /// Follows the changes other servers commit to this database until `stop`,
    /// announcing them on [`SqlStore::subscribe`] (see the module docs). Read errors are
    /// logged and retried at the next poll.
    pub async fn follow(self: Arc<Self>, options: FollowOptions, stop: CancellationToken) {
        let mut state = loop {
            match FollowState::load(&self).await {
                Ok(s) => break s,
                Err(e) => {
                    warn!(error = %e, "Could not read the shared change feed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(options.poll_interval) => {}
                    }
                }
            }
        };
        let mut listener = self.listen().await;
        let mut tick = tokio::time::interval(options.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                }
                woke = recv(&mut listener) => {
                    if let Err(e) = woke {
                        warn!(error = %e, "Lost the PostgreSQL change listener; polling until it reconnects");
                        listener = None;
                    }
                }
            }
            if let Err(e) = state.poll(&self, options.event_timeout).await {
                warn!(error = %e, "Could not read the shared change feed");
            }
        }
    }

    /// A listener on [`CHANGE_CHANNEL`] (PostgreSQL only; `None` elsewhere or when it
    /// cannot connect, which is logged).
    async fn listen(&self) -> Option<PgListener> {
        if self.dialect != Dialect::Postgres {
            return None;
        }
        let attempt = async {
            let mut l = PgListener::connect(&self.url.0).await?;
            l.listen(CHANGE_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match attempt.await {
            Ok(l) => {
                debug!(
                    channel = CHANGE_CHANNEL,
                    "Listening for changes of other servers"
                );
                Some(l)
            }
            Err(e) => {
                warn!(error = %e, "Could not LISTEN for changes of other servers; polling");
                None
            }
        }
    }

    /// The highest ID in an events table (0 when empty).
    async fn max_event_id(&self, table: &str) -> Result<i64> {
        let mut tx = self.read().await?;
        let row = tx
            .one(&format!("SELECT MAX(id) FROM {table}"), vec![])
            .await?;
        col_i64(&row, 0)
    }

    /// A hash of every bundle's stored bytes, by trust domain.
    async fn bundle_fingerprints(&self) -> Result<HashMap<String, u64>> {
        let mut tx = self.read().await?;
        tx.all("SELECT trust_domain, data FROM bundles", vec![])
            .await?
            .iter()
            .map(|r| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                col_bytes(r, 1)?.hash(&mut h);
                Ok((col_str(r, 0)?, h.finish()))
            })
            .collect()
    }

    /// Count, latest revocation and earliest/latest expiry of the revocation list:
    /// a revocation raises the count or the latest time, a prune lowers the count and
    /// raises the earliest expiry.
    async fn revocation_fingerprint(&self) -> Result<(i64, i64, i64, i64)> {
        let mut tx = self.read().await?;
        let row = tx
            .one(
                &format!(
                    "SELECT COUNT(*), MAX(revoked_at), MIN(expires_at), MAX(expires_at) \
                     FROM {REVOKED_X509_SVIDS_TABLE}"
                ),
                vec![],
            )
            .await?;
        Ok((
            col_i64(&row, 0)?,
            col_i64(&row, 1)?,
            col_i64(&row, 2)?,
            col_i64(&row, 3)?,
        ))
    }
}

/// The next notification, or never without a listener.
async fn recv(listener: &mut Option<PgListener>) -> std::result::Result<(), sqlx::Error> {
    match listener {
        Some(l) => l.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reports_late_commits_in_gaps_once() {
        let now = Instant::now();
        let mut c = Cursor::default();
        assert!(c.observe(1, now));
        assert!(c.observe(4, now));
        assert_eq!(c.gaps.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert!(c.observe(3, now));
        assert!(!c.observe(3, now));
        assert!(!c.observe(4, now));
        c.expire(now + Duration::from_secs(61), Duration::from_secs(60));
        assert!(c.gaps.is_empty());
    }

    #[test]
    fn postgres_polls_at_reload_interval_others_short() {
        let t = Duration::from_secs(900);
        let five = Duration::from_secs(5);
        assert_eq!(
            FollowOptions::new(Dialect::Postgres, five, t).poll_interval,
            five
        );
        assert_eq!(
            FollowOptions::new(Dialect::Sqlite, five, t).poll_interval,
            SHORT_POLL
        );
        let fast = Duration::from_millis(100);
        assert_eq!(
            FollowOptions::new(Dialect::MySql, fast, t).poll_interval,
            fast
        );
    }
}

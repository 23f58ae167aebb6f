//! The events tables: the change log other servers (and the events-based entry cache)
//! follow. Event IDs grow but may have gaps (transactions commit out of order).

use super::error::Result;
use super::model::{EntryEvent, NodeEvent};
use super::store::{SqlStore, args, col_i64, col_str};

impl SqlStore {
    /// Entry events with `greater_than < event_id` (and `< less_than` if given), oldest first.
    pub async fn list_entry_events(
        &self,
        greater_than: i64,
        less_than: Option<i64>,
    ) -> Result<Vec<EntryEvent>> {
        let mut tx = self.read().await?;
        let mut sql = format!(
            "SELECT id, entry_id, {} FROM registered_entries_events WHERE id > ?",
            tx.d.unix_of("created_at")
        );
        let mut a = args![greater_than];
        if let Some(lt) = less_than {
            sql.push_str(" AND id < ?");
            a.push(lt.into());
        }
        sql.push_str(" ORDER BY id");
        tx.all(&sql, a)
            .await?
            .iter()
            .map(|r| {
                Ok(EntryEvent {
                    event_id: col_i64(r, 0)?,
                    entry_id: col_str(r, 1)?,
                    created_at: col_i64(r, 2)?,
                })
            })
            .collect()
    }

    /// One entry event (to re-check a gap in event IDs).
    pub async fn fetch_entry_event(&self, event_id: i64) -> Result<Option<EntryEvent>> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT id, entry_id, {} FROM registered_entries_events WHERE id = ?",
            tx.d.unix_of("created_at")
        );
        tx.opt(&sql, args![event_id])
            .await?
            .map(|r| {
                Ok(EntryEvent {
                    event_id: col_i64(&r, 0)?,
                    entry_id: col_str(&r, 1)?,
                    created_at: col_i64(&r, 2)?,
                })
            })
            .transpose()
    }

    /// Node events with `greater_than < event_id` (and `< less_than` if given), oldest first.
    pub async fn list_node_events(
        &self,
        greater_than: i64,
        less_than: Option<i64>,
    ) -> Result<Vec<NodeEvent>> {
        let mut tx = self.read().await?;
        let mut sql = format!(
            "SELECT id, spiffe_id, {} FROM attested_node_entries_events WHERE id > ?",
            tx.d.unix_of("created_at")
        );
        let mut a = args![greater_than];
        if let Some(lt) = less_than {
            sql.push_str(" AND id < ?");
            a.push(lt.into());
        }
        sql.push_str(" ORDER BY id");
        tx.all(&sql, a)
            .await?
            .iter()
            .map(|r| {
                Ok(NodeEvent {
                    event_id: col_i64(r, 0)?,
                    spiffe_id: col_str(r, 1)?,
                    created_at: col_i64(r, 2)?,
                })
            })
            .collect()
    }

    /// One node event (to re-check a gap in event IDs).
    pub async fn fetch_node_event(&self, event_id: i64) -> Result<Option<NodeEvent>> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT id, spiffe_id, {} FROM attested_node_entries_events WHERE id = ?",
            tx.d.unix_of("created_at")
        );
        tx.opt(&sql, args![event_id])
            .await?
            .map(|r| {
                Ok(NodeEvent {
                    event_id: col_i64(&r, 0)?,
                    spiffe_id: col_str(&r, 1)?,
                    created_at: col_i64(&r, 2)?,
                })
            })
            .transpose()
    }

    /// Deletes entry and node events created before `older_than` (unix seconds); returns
    /// how many rows went.
    pub async fn prune_events(&self, older_than: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let cond = tx.d.ts_cmp("created_at", "<");
        let mut n = tx
            .exec(
                &format!("DELETE FROM registered_entries_events WHERE {cond}"),
                args![older_than],
            )
            .await?;
        n += tx
            .exec(
                &format!("DELETE FROM attested_node_entries_events WHERE {cond}"),
                args![older_than],
            )
            .await?;
        self.commit(tx).await?;
        Ok(n)
    }
}

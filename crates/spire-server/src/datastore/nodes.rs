//! Attested nodes (`attested_node_entries`), their selectors
//! (`node_resolver_map_entries`) and `attested_node_entries_events`.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::entries::delete_entry_rows;
use super::error::{DataStoreError, Result};
use super::model::{
    AttestedNode, AttestedNodeMask, DataStoreChange, ListAttestedNodesRequest,
    ListAttestedNodesResponse, MatchBehavior, Selector,
};
use super::store::{
    Arg, SqlStore, Tx, args, col_bool, col_i64, col_str, dedup_selectors, page_start, placeholders,
    selector_condition,
};

const CHUNK: usize = 500;

impl SqlStore {
    /// Stores a new attested node (and its `selectors`, if any). `AlreadyExists` if a node
    /// with that SPIFFE ID exists.
    pub async fn create_attested_node(&self, node: &AttestedNode) -> Result<AttestedNode> {
        if node.spiffe_id.is_empty() {
            return Err(DataStoreError::InvalidArgument(
                "invalid request: missing attested node SPIFFE ID".into(),
            ));
        }
        let mut tx = self.write().await?;
        let d = tx.d;
        let new_expires = if node.new_cert_not_after == 0 {
            "NULL"
        } else {
            d.ts_param()
        };
        let sql = format!(
            "INSERT INTO attested_node_entries (created_at, updated_at, spiffe_id, data_type, serial_number, \
             expires_at, new_serial_number, new_expires_at, can_reattest, agent_version) \
             VALUES ({now}, {now}, ?, ?, ?, {ts}, ?, {new_expires}, ?, ?)",
            now = d.now(),
            ts = d.ts_param(),
        );
        let mut a = args![
            &node.spiffe_id,
            &node.attestation_data_type,
            &node.cert_serial_number,
            node.cert_not_after
        ];
        a.push(Arg::Str(node.new_cert_serial_number.clone()));
        if node.new_cert_not_after != 0 {
            a.push(Arg::I64(node.new_cert_not_after));
        }
        a.push(Arg::Bool(node.can_reattest));
        a.push(Arg::Str(node.agent_version.clone()));
        match tx.exec(&sql, a).await {
            Err(DataStoreError::AlreadyExists { .. }) => {
                return Err(DataStoreError::already_exists(format!(
                    "datastore-sql: attested node {:?} already exists",
                    node.spiffe_id
                )));
            }
            other => other?,
        };
        if !node.selectors.is_empty() {
            replace_node_selectors(&mut tx, &node.spiffe_id, &node.selectors).await?;
        }
        node_event(&mut tx, &node.spiffe_id).await?;
        let created = load_node(&mut tx, &node.spiffe_id, true).await?;
        self.commit(tx).await?;
        created
            .ok_or_else(|| DataStoreError::Internal("datastore-sql: created node vanished".into()))
    }

    /// The node with this SPIFFE ID, with its selectors.
    pub async fn fetch_attested_node(&self, spiffe_id: &str) -> Result<Option<AttestedNode>> {
        let mut tx = self.read().await?;
        load_node(&mut tx, spiffe_id, true).await
    }

    /// Lists nodes matching every given filter, in attestation order, optionally paged.
    pub async fn list_attested_nodes(
        &self,
        req: &ListAttestedNodesRequest,
    ) -> Result<ListAttestedNodesResponse> {
        let mut tx = self.read().await?;
        let mut args = Vec::new();
        let filter = node_filter(tx.d, req, &mut args)?;
        let mut sql = format!("{} WHERE {filter}", node_select(tx.d));
        if let Some(p) = &req.pagination {
            let after = page_start(p)?;
            sql.push_str(&format!(
                " AND N.id > ? ORDER BY N.id LIMIT {}",
                p.page_size
            ));
            args.push(Arg::I64(after));
        } else {
            sql.push_str(" ORDER BY N.id");
        }
        let rows = tx.all(&sql, args).await?;
        let mut last_id = 0;
        let mut nodes = Vec::with_capacity(rows.len());
        for r in &rows {
            last_id = col_i64(r, 0)?;
            nodes.push(node_from_row(r)?);
        }
        if req.fetch_selectors && !nodes.is_empty() {
            let ids: Vec<String> = nodes.iter().map(|n| n.spiffe_id.clone()).collect();
            let mut sels = selectors_of(&mut tx, &ids).await?;
            for n in &mut nodes {
                n.selectors = sels.remove(&n.spiffe_id).unwrap_or_default();
            }
        }
        let next_page_token = if req.pagination.is_some() && !nodes.is_empty() {
            last_id.to_string()
        } else {
            String::new()
        };
        Ok(ListAttestedNodesResponse {
            nodes,
            next_page_token,
        })
    }

    /// Counts nodes matching every given filter (pagination is ignored).
    pub async fn count_attested_nodes(&self, req: &ListAttestedNodesRequest) -> Result<i64> {
        let mut tx = self.read().await?;
        let mut args = Vec::new();
        let filter = node_filter(tx.d, req, &mut args)?;
        tx.count(
            &format!("SELECT COUNT(*) FROM attested_node_entries N WHERE {filter}"),
            args,
        )
        .await
    }

    /// Updates the fields of node `node.spiffe_id` selected by `mask` (all when `None`);
    /// returns the stored result (with selectors).
    pub async fn update_attested_node(
        &self,
        node: &AttestedNode,
        mask: Option<&AttestedNodeMask>,
    ) -> Result<AttestedNode> {
        let mask = mask.copied().unwrap_or(AttestedNodeMask::ALL);
        let mut tx = self.write().await?;
        let d = tx.d;
        let sql = format!(
            "SELECT id FROM attested_node_entries WHERE spiffe_id = ?{}",
            d.for_update()
        );
        let Some(row) = tx.opt(&sql, args![&node.spiffe_id]).await? else {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: attested node {:?} not found",
                node.spiffe_id
            )));
        };
        let id = col_i64(&row, 0)?;
        let mut sets = vec![format!("updated_at = {}", d.now())];
        let mut a: Vec<Arg> = Vec::new();
        if mask.attestation_data_type {
            sets.push("data_type = ?".into());
            a.push(Arg::Str(node.attestation_data_type.clone()));
        }
        if mask.cert_serial_number {
            sets.push("serial_number = ?".into());
            a.push(Arg::Str(node.cert_serial_number.clone()));
        }
        if mask.cert_not_after {
            sets.push(format!("expires_at = {}", d.ts_param()));
            a.push(Arg::I64(node.cert_not_after));
        }
        if mask.new_cert_serial_number {
            sets.push("new_serial_number = ?".into());
            a.push(Arg::Str(node.new_cert_serial_number.clone()));
        }
        if mask.new_cert_not_after {
            if node.new_cert_not_after == 0 {
                sets.push("new_expires_at = NULL".into());
            } else {
                sets.push(format!("new_expires_at = {}", d.ts_param()));
                a.push(Arg::I64(node.new_cert_not_after));
            }
        }
        if mask.can_reattest {
            sets.push("can_reattest = ?".into());
            a.push(Arg::Bool(node.can_reattest));
        }
        if mask.agent_version {
            sets.push("agent_version = ?".into());
            a.push(Arg::Str(node.agent_version.clone()));
        }
        a.push(Arg::I64(id));
        tx.exec(
            &format!(
                "UPDATE attested_node_entries SET {} WHERE id = ?",
                sets.join(", ")
            ),
            a,
        )
        .await?;
        node_event(&mut tx, &node.spiffe_id).await?;
        let updated = load_node(&mut tx, &node.spiffe_id, true).await?;
        self.commit(tx).await?;
        updated
            .ok_or_else(|| DataStoreError::Internal("datastore-sql: updated node vanished".into()))
    }

    /// Bans a node: clears its serial numbers, so its SVIDs stop being accepted and it
    /// cannot re-attest until evicted.
    pub async fn ban_attested_node(&self, spiffe_id: &str) -> Result<AttestedNode> {
        let node = AttestedNode {
            spiffe_id: spiffe_id.to_string(),
            ..AttestedNode::default()
        };
        let mask = AttestedNodeMask {
            cert_serial_number: true,
            new_cert_serial_number: true,
            ..Default::default()
        };
        self.update_attested_node(&node, Some(&mask)).await
    }

    /// Deletes (evicts) a node with its node selectors and, for a join-token node, the
    /// alias entry whose parent is the node and whose sole selector is
    /// `spiffe_id:<node id>`. Returns the deleted node (with its selectors).
    pub async fn delete_attested_node(&self, spiffe_id: &str) -> Result<AttestedNode> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT id FROM attested_node_entries WHERE spiffe_id = ?{}",
            tx.d.for_update()
        );
        if tx.opt(&sql, args![spiffe_id]).await?.is_none() {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: attested node {spiffe_id:?} not found"
            )));
        }
        let Some(node) = load_node(&mut tx, spiffe_id, true).await? else {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: attested node {spiffe_id:?} not found"
            )));
        };
        delete_node_rows(&mut tx, spiffe_id).await?;
        self.commit(tx).await?;
        Ok(node)
    }

    /// Deletes nodes whose SVID expired before `expired_before` (unix seconds). Banned
    /// nodes are kept (deleting them would unban them); non-reattestable nodes only with
    /// `include_non_reattestable`. Returns the deleted SPIFFE IDs.
    pub async fn prune_attested_nodes(
        &self,
        expired_before: i64,
        include_non_reattestable: bool,
    ) -> Result<Vec<String>> {
        let mut tx = self.write().await?;
        let d = tx.d;
        let mut sql = format!(
            "SELECT N.spiffe_id FROM attested_node_entries N WHERE {} AND COALESCE(N.serial_number, '') <> ''",
            d.ts_cmp("N.expires_at", "<")
        );
        if !include_non_reattestable {
            sql.push_str(" AND N.can_reattest = ?");
        }
        let mut a = args![expired_before];
        if !include_non_reattestable {
            a.push(Arg::Bool(true));
        }
        let ids: Vec<String> = tx
            .all(&sql, a)
            .await?
            .iter()
            .map(|r| col_str(r, 0))
            .collect::<Result<_>>()?;
        for id in &ids {
            delete_node_rows(&mut tx, id).await?;
        }
        self.commit(tx).await?;
        Ok(ids)
    }

    /// Replaces the node selectors of `spiffe_id` (de-duplicated). The node row need not
    /// exist yet (attestation stores selectors first).
    pub async fn set_node_selectors(&self, spiffe_id: &str, selectors: &[Selector]) -> Result<()> {
        let mut tx = self.write().await?;
        replace_node_selectors(&mut tx, spiffe_id, selectors).await?;
        node_event(&mut tx, spiffe_id).await?;
        self.commit(tx).await
    }

    /// The node selectors of `spiffe_id`, in insertion order.
    pub async fn get_node_selectors(&self, spiffe_id: &str) -> Result<Vec<Selector>> {
        let mut tx = self.read().await?;
        Ok(selectors_of(&mut tx, &[spiffe_id.to_string()])
            .await?
            .remove(spiffe_id)
            .unwrap_or_default())
    }

    /// Node selectors of every node (with `valid_at`: of nodes whose SVID is valid then),
    /// keyed by node SPIFFE ID.
    pub async fn list_node_selectors(
        &self,
        valid_at: Option<i64>,
    ) -> Result<HashMap<String, Vec<Selector>>> {
        let mut tx = self.read().await?;
        let (sql, a) = match valid_at {
            Some(t) => (
                format!(
                    "SELECT NS.spiffe_id, NS.type, NS.value FROM node_resolver_map_entries NS \
                     JOIN attested_node_entries N ON N.spiffe_id = NS.spiffe_id WHERE {} ORDER BY NS.id",
                    tx.d.ts_cmp("N.expires_at", ">")
                ),
                args![t],
            ),
            None => ("SELECT NS.spiffe_id, NS.type, NS.value FROM node_resolver_map_entries NS ORDER BY NS.id".into(), vec![]),
        };
        let mut out: HashMap<String, Vec<Selector>> = HashMap::new();
        for r in tx.all(&sql, a).await? {
            out.entry(col_str(&r, 0)?)
                .or_default()
                .push(Selector::new(col_str(&r, 1)?, col_str(&r, 2)?));
        }
        Ok(out)
    }
}

fn node_select(d: super::dialect::Dialect) -> String {
    format!(
        "SELECT N.id, N.spiffe_id, N.data_type, N.serial_number, {}, N.new_serial_number, {}, {}, N.agent_version \
         FROM attested_node_entries N",
        d.unix_of("N.expires_at"),
        d.unix_of("N.new_expires_at"),
        d.bool_of("N.can_reattest"),
    )
}

fn node_from_row(r: &AnyRow) -> Result<AttestedNode> {
    Ok(AttestedNode {
        spiffe_id: col_str(r, 1)?,
        attestation_data_type: col_str(r, 2)?,
        cert_serial_number: col_str(r, 3)?,
        cert_not_after: col_i64(r, 4)?,
        new_cert_serial_number: col_str(r, 5)?,
        new_cert_not_after: col_i64(r, 6)?,
        can_reattest: col_bool(r, 7)?,
        agent_version: col_str(r, 8)?,
        selectors: Vec::new(),
    })
}

fn node_filter(
    d: super::dialect::Dialect,
    req: &ListAttestedNodesRequest,
    args: &mut Vec<Arg>,
) -> Result<String> {
    let mut conds = vec!["1 = 1".to_string()];
    if let Some(t) = &req.by_attestation_type {
        conds.push("N.data_type = ?".into());
        args.push(Arg::Str(t.clone()));
    }
    if let Some(banned) = req.by_banned {
        conds.push(
            if banned {
                "COALESCE(N.serial_number, '') = ''"
            } else {
                "COALESCE(N.serial_number, '') <> ''"
            }
            .into(),
        );
    }
    if let Some(v) = req.by_can_reattest {
        conds.push("N.can_reattest = ?".into());
        args.push(Arg::Bool(v));
    }
    if let Some(t) = req.by_expires_before {
        conds.push(d.ts_cmp("N.expires_at", "<"));
        args.push(Arg::I64(t));
    }
    if let Some(t) = req.valid_at {
        conds.push(d.ts_cmp("N.expires_at", ">"));
        args.push(Arg::I64(t));
    }
    if let Some(m) = &req.by_selector_match {
        conds.push(selector_condition(
            "node_resolver_map_entries",
            "spiffe_id",
            "N.spiffe_id",
            &m.selectors,
            m.r#match,
            args,
        )?);
    }
    Ok(conds.join(" AND "))
}

async fn load_node(
    tx: &mut Tx<'_>,
    spiffe_id: &str,
    with_selectors: bool,
) -> Result<Option<AttestedNode>> {
    let sql = format!("{} WHERE N.spiffe_id = ?", node_select(tx.d));
    let Some(row) = tx.opt(&sql, args![spiffe_id]).await? else {
        return Ok(None);
    };
    let mut node = node_from_row(&row)?;
    if with_selectors {
        node.selectors = selectors_of(tx, &[spiffe_id.to_string()])
            .await?
            .remove(spiffe_id)
            .unwrap_or_default();
    }
    Ok(Some(node))
}

async fn selectors_of(
    tx: &mut Tx<'_>,
    spiffe_ids: &[String],
) -> Result<HashMap<String, Vec<Selector>>> {
    let mut out: HashMap<String, Vec<Selector>> = HashMap::new();
    for chunk in spiffe_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT NS.spiffe_id, NS.type, NS.value FROM node_resolver_map_entries NS \
             WHERE NS.spiffe_id IN ({}) ORDER BY NS.id",
            placeholders(chunk.len())
        );
        for r in tx
            .all(&sql, chunk.iter().map(|s| Arg::Str(s.clone())).collect())
            .await?
        {
            out.entry(col_str(&r, 0)?)
                .or_default()
                .push(Selector::new(col_str(&r, 1)?, col_str(&r, 2)?));
        }
    }
    Ok(out)
}

/// Deletes a node's selector rows by primary key (MySQL takes gap locks on a delete by
/// `spiffe_id`, which deadlocks concurrent attestations, as SPIRE found).
async fn delete_node_selector_rows(tx: &mut Tx<'_>, spiffe_id: &str) -> Result<()> {
    let ids: Vec<i64> = tx
        .all(
            "SELECT id FROM node_resolver_map_entries WHERE spiffe_id = ?",
            args![spiffe_id],
        )
        .await?
        .iter()
        .map(|r| col_i64(r, 0))
        .collect::<Result<_>>()?;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM node_resolver_map_entries WHERE id IN ({})",
            placeholders(chunk.len())
        );
        tx.exec(&sql, chunk.iter().map(|id| Arg::I64(*id)).collect())
            .await?;
    }
    Ok(())
}

async fn replace_node_selectors(
    tx: &mut Tx<'_>,
    spiffe_id: &str,
    selectors: &[Selector],
) -> Result<()> {
    delete_node_selector_rows(tx, spiffe_id).await?;
    let sql = format!(
        "INSERT INTO node_resolver_map_entries (created_at, updated_at, spiffe_id, type, value) \
         VALUES ({now}, {now}, ?, ?, ?)",
        now = tx.now()
    );
    for s in dedup_selectors(selectors) {
        tx.exec(&sql, args![spiffe_id, s.r#type, s.value]).await?;
    }
    Ok(())
}

/// Deletes a node row, its selectors and its join-token alias entry, with events.
async fn delete_node_rows(tx: &mut Tx<'_>, spiffe_id: &str) -> Result<()> {
    delete_node_selector_rows(tx, spiffe_id).await?;
    tx.exec(
        "DELETE FROM attested_node_entries WHERE spiffe_id = ?",
        args![spiffe_id],
    )
    .await?;
    let mut a = args![spiffe_id];
    let alias = [Selector::new("spiffe_id", spiffe_id)];
    let cond = selector_condition(
        "selectors",
        "registered_entry_id",
        "E.id",
        &alias,
        MatchBehavior::Exact,
        &mut a,
    )?;
    let sql = format!(
        "SELECT E.id, E.entry_id FROM registered_entries E WHERE E.parent_id = ? AND {cond}"
    );
    let doomed: Vec<(i64, String)> = tx
        .all(&sql, a)
        .await?
        .iter()
        .map(|r| Ok((col_i64(r, 0)?, col_str(r, 1)?)))
        .collect::<Result<_>>()?;
    delete_entry_rows(tx, &doomed).await?;
    node_event(tx, spiffe_id).await
}

/// Appends an `attested_node_entries_events` row and queues the change announcement.
pub(crate) async fn node_event(tx: &mut Tx<'_>, spiffe_id: &str) -> Result<()> {
    let sql = format!(
        "INSERT INTO attested_node_entries_events (created_at, updated_at, spiffe_id) VALUES ({now}, {now}, ?)",
        now = tx.now()
    );
    tx.exec(&sql, args![spiffe_id]).await?;
    tx.changed(DataStoreChange::NodeChanged {
        spiffe_id: spiffe_id.to_string(),
    });
    Ok(())
}

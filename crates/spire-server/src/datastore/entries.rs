//! Registration entries: `registered_entries` plus its `selectors`, `dns_names` and
//! `federated_registration_entries` rows, and `registered_entries_events`.

use std::collections::HashMap;

use super::codec::{decode_additional_attributes, encode_additional_attributes};
use super::error::{DataStoreError, Result};
use super::model::{
    DataStoreChange, EntryMask, ListEntriesRequest, ListEntriesResponse, MatchBehavior,
    RegistrationEntry, Selector, td_id, td_name,
};
use super::store::{
    Arg, SqlStore, Tx, args, col_bool, col_bytes, col_i32, col_i64, col_str, dedup_selectors,
    dedup_strings, federates_condition, page_start, placeholders, selector_condition,
};

/// IDs per `IN (...)` list.
const CHUNK: usize = 500;

impl SqlStore {
    /// Creates an entry (a new UUIDv4 ID unless `entry.id` is set). Fails with
    /// `AlreadyExists { existing }` when an entry with the same SPIFFE ID, parent ID and
    /// exact selector set exists (`similar entry already exists`) or the ID is taken.
    /// The store sets `revision_number` (0) and `created_at`.
    pub async fn create_registration_entry(
        &self,
        entry: &RegistrationEntry,
    ) -> Result<RegistrationEntry> {
        match self.create_or_return_registration_entry(entry).await? {
            (created, false) => Ok(created),
            (existing, true) => Err(DataStoreError::AlreadyExists {
                message: "similar entry already exists".into(),
                existing: Some(Box::new(existing)),
            }),
        }
    }

    /// Like [`SqlStore::create_registration_entry`], but a similar existing entry is
    /// returned (with `true`) instead of an error.
    pub async fn create_or_return_registration_entry(
        &self,
        entry: &RegistrationEntry,
    ) -> Result<(RegistrationEntry, bool)> {
        validate_entry(entry)?;
        let mut tx = self.write().await?;
        if let Some(existing) = find_similar(&mut tx, entry).await? {
            return Ok((existing, true));
        }
        let entry_id = if entry.id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            entry.id.clone()
        };
        if let Some(existing) = load_entries_where(&mut tx, "E.entry_id = ?", args![&entry_id])
            .await?
            .pop()
        {
            return Err(DataStoreError::AlreadyExists {
                message: format!("an entry with ID {entry_id:?} already exists"),
                existing: Some(Box::new(existing.1)),
            });
        }
        let created = insert_entry(&mut tx, entry, &entry_id).await?;
        self.commit(tx).await?;
        Ok((created, false))
    }

    /// The entry with this ID, if any.
    pub async fn fetch_registration_entry(&self, id: &str) -> Result<Option<RegistrationEntry>> {
        let mut tx = self.read().await?;
        let found = load_entries_where(&mut tx, "E.entry_id = ?", args![id])
            .await?
            .pop()
            .map(|(_, e)| e);
        drop(tx);
        Ok(found)
    }

    /// The entries with these IDs that exist, keyed by ID.
    pub async fn fetch_registration_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, RegistrationEntry>> {
        let mut tx = self.read().await?;
        let mut out = HashMap::new();
        for chunk in dedup_strings(ids).chunks(CHUNK) {
            let cond = format!("E.entry_id IN ({})", placeholders(chunk.len()));
            let args = chunk.iter().map(|s| Arg::Str(s.clone())).collect();
            for (_, e) in load_entries_where(&mut tx, &cond, args).await? {
                out.insert(e.id.clone(), e);
            }
        }
        Ok(out)
    }

    /// Lists entries matching every given filter, in creation order, optionally paged.
    pub async fn list_registration_entries(
        &self,
        req: &ListEntriesRequest,
    ) -> Result<ListEntriesResponse> {
        let mut args = Vec::new();
        let filter = entry_filter(req, &mut args)?;
        let mut tx = self.read().await?;
        let Some(p) = &req.pagination else {
            let entries = load_entries_where(&mut tx, &filter, args)
                .await?
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            return Ok(ListEntriesResponse {
                entries,
                next_page_token: String::new(),
            });
        };
        let after = page_start(p)?;
        args.push(Arg::I64(after));
        let sql = format!(
            "SELECT E.id FROM registered_entries E WHERE {filter} AND E.id > ? ORDER BY E.id LIMIT {}",
            p.page_size
        );
        let ids: Vec<i64> = tx
            .all(&sql, args)
            .await?
            .iter()
            .map(|r| col_i64(r, 0))
            .collect::<Result<_>>()?;
        let next_page_token = ids.last().map(|id| id.to_string()).unwrap_or_default();
        let entries = load_entries_by_ids(&mut tx, &ids).await?;
        Ok(ListEntriesResponse {
            entries,
            next_page_token,
        })
    }

    /// Counts entries matching every given filter (pagination is ignored).
    pub async fn count_registration_entries(&self, req: &ListEntriesRequest) -> Result<i64> {
        let mut args = Vec::new();
        let filter = entry_filter(req, &mut args)?;
        let mut tx = self.read().await?;
        tx.count(
            &format!("SELECT COUNT(*) FROM registered_entries E WHERE {filter}"),
            args,
        )
        .await
    }

    /// Updates the fields of entry `entry.id` selected by `mask` (all when `None`) and
    /// bumps its revision number. Returns the stored result.
    pub async fn update_registration_entry(
        &self,
        entry: &RegistrationEntry,
        mask: Option<&EntryMask>,
    ) -> Result<RegistrationEntry> {
        let mask = mask.copied().unwrap_or(EntryMask::ALL);
        validate_entry_for_update(entry, &mask)?;
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT id FROM registered_entries WHERE entry_id = ?{}",
            tx.d.for_update()
        );
        let Some(row) = tx.opt(&sql, args![&entry.id]).await? else {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: entry {:?} not found",
                entry.id
            )));
        };
        let rid = col_i64(&row, 0)?;

        let mut sets = vec![
            format!("updated_at = {}", tx.now()),
            "revision_number = revision_number + 1".to_string(),
        ];
        let mut args: Vec<Arg> = Vec::new();
        let mut set = |col: &str, v: Arg| {
            sets.push(format!("{col} = ?"));
            args.push(v);
        };
        if mask.spiffe_id {
            set("spiffe_id", Arg::Str(entry.spiffe_id.clone()));
        }
        if mask.parent_id {
            set("parent_id", Arg::Str(entry.parent_id.clone()));
        }
        if mask.x509_svid_ttl {
            set("ttl", Arg::I32(entry.x509_svid_ttl));
        }
        if mask.jwt_svid_ttl {
            set("jwt_svid_ttl", Arg::I32(entry.jwt_svid_ttl));
        }
        if mask.admin {
            set("admin", Arg::Bool(entry.admin));
        }
        if mask.downstream {
            set("downstream", Arg::Bool(entry.downstream));
        }
        if mask.expires_at {
            set("expiry", Arg::I64(entry.expires_at));
        }
        if mask.store_svid {
            set("store_svid", Arg::Bool(entry.store_svid));
        }
        if mask.hint {
            set("hint", Arg::Str(entry.hint.clone()));
        }
        if mask.additional_attributes {
            set(
                "additional_attributes",
                Arg::Bytes(encode_additional_attributes(
                    entry.disable_x509_svid_prefetch,
                    entry.jwt_svid_include_jti,
                )),
            );
        }
        args.push(Arg::I64(rid));
        tx.exec(
            &format!(
                "UPDATE registered_entries SET {} WHERE id = ?",
                sets.join(", ")
            ),
            args,
        )
        .await?;

        if mask.selectors {
            tx.exec(
                "DELETE FROM selectors WHERE registered_entry_id = ?",
                args![rid],
            )
            .await?;
            insert_selectors(&mut tx, rid, &entry.selectors).await?;
        }
        if mask.dns_names {
            tx.exec(
                "DELETE FROM dns_names WHERE registered_entry_id = ?",
                args![rid],
            )
            .await?;
            insert_dns_names(&mut tx, rid, &entry.dns_names).await?;
        }
        if mask.federates_with {
            tx.exec(
                "DELETE FROM federated_registration_entries WHERE registered_entry_id = ?",
                args![rid],
            )
            .await?;
            insert_federates_with(&mut tx, rid, &entry.federates_with).await?;
        }
        let Some((_, updated)) = load_entries_where(&mut tx, "E.id = ?", args![rid])
            .await?
            .pop()
        else {
            return Err(DataStoreError::Internal(
                "datastore-sql: updated entry vanished".into(),
            ));
        };
        if updated.store_svid && !same_selector_types(&updated.selectors) {
            return Err(DataStoreError::InvalidArgument(
                "invalid registration entry: selector types must be the same when store SVID is enabled".into(),
            ));
        }
        entry_event(&mut tx, &updated.id).await?;
        self.commit(tx).await?;
        Ok(updated)
    }

    /// Deletes an entry; returns what was deleted.
    pub async fn delete_registration_entry(&self, id: &str) -> Result<RegistrationEntry> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT id FROM registered_entries WHERE entry_id = ?{}",
            tx.d.for_update()
        );
        if tx.opt(&sql, args![id]).await?.is_none() {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: entry {id:?} not found"
            )));
        }
        let Some((rid, entry)) = load_entries_where(&mut tx, "E.entry_id = ?", args![id])
            .await?
            .pop()
        else {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: entry {id:?} not found"
            )));
        };
        delete_entry_rows(&mut tx, &[(rid, entry.id.clone())]).await?;
        self.commit(tx).await?;
        Ok(entry)
    }

    /// Deletes every entry whose expiry (non-zero) is before `expires_before` (unix
    /// seconds); returns the deleted entries.
    pub async fn prune_registration_entries(
        &self,
        expires_before: i64,
    ) -> Result<Vec<RegistrationEntry>> {
        let mut tx = self.write().await?;
        let doomed = load_entries_where(
            &mut tx,
            "E.expiry <> 0 AND E.expiry < ?",
            args![expires_before],
        )
        .await?;
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<(i64, String)> = doomed.iter().map(|(rid, e)| (*rid, e.id.clone())).collect();
        delete_entry_rows(&mut tx, &keys).await?;
        self.commit(tx).await?;
        for (_, e) in &doomed {
            tracing::info!(entry_id = %e.id, spiffe_id = %e.spiffe_id, parent_id = %e.parent_id, "Pruned an expired registration");
        }
        Ok(doomed.into_iter().map(|(_, e)| e).collect())
    }
}

const VALID_ID_PUNCT: &[char] = &['-', '.', '_'];

fn validate_entry(entry: &RegistrationEntry) -> Result<()> {
    let invalid = |m: &str| {
        Err(DataStoreError::InvalidArgument(format!(
            "invalid registration entry: {m}"
        )))
    };
    if entry.selectors.is_empty() {
        return invalid("missing selector list");
    }
    if entry.store_svid && !same_selector_types(&entry.selectors) {
        return invalid("selector types must be the same when store SVID is enabled");
    }
    if entry.id.len() > 255 {
        return invalid("entry ID too long");
    }
    if !entry
        .id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || VALID_ID_PUNCT.contains(&c))
    {
        return invalid("entry ID contains invalid characters");
    }
    if entry.spiffe_id.is_empty() {
        return invalid("missing SPIFFE ID");
    }
    if entry.x509_svid_ttl < 0 {
        return invalid("X509SvidTtl is not set");
    }
    if entry.jwt_svid_ttl < 0 {
        return invalid("JwtSvidTtl is not set");
    }
    Ok(())
}

fn validate_entry_for_update(entry: &RegistrationEntry, mask: &EntryMask) -> Result<()> {
    let invalid = |m: &str| {
        Err(DataStoreError::InvalidArgument(format!(
            "invalid registration entry: {m}"
        )))
    };
    if entry.id.is_empty() {
        return invalid("missing entry ID");
    }
    if mask.selectors && entry.selectors.is_empty() {
        return invalid("missing selector list");
    }
    if mask.spiffe_id && entry.spiffe_id.is_empty() {
        return invalid("missing SPIFFE ID");
    }
    if mask.x509_svid_ttl && entry.x509_svid_ttl < 0 {
        return invalid("X509SvidTtl is not set");
    }
    if mask.jwt_svid_ttl && entry.jwt_svid_ttl < 0 {
        return invalid("JwtSvidTtl is not set");
    }
    Ok(())
}

fn same_selector_types(selectors: &[Selector]) -> bool {
    selectors.windows(2).all(|w| w[0].r#type == w[1].r#type)
}

/// The WHERE condition (on alias `E`) of a list/count request.
fn entry_filter(req: &ListEntriesRequest, args: &mut Vec<Arg>) -> Result<String> {
    let mut conds = vec!["1 = 1".to_string()];
    if let Some(v) = &req.by_spiffe_id {
        conds.push("E.spiffe_id = ?".into());
        args.push(Arg::Str(v.clone()));
    }
    if let Some(v) = &req.by_parent_id {
        conds.push("E.parent_id = ?".into());
        args.push(Arg::Str(v.clone()));
    }
    if let Some(v) = &req.by_hint {
        conds.push("E.hint = ?".into());
        args.push(Arg::Str(v.clone()));
    }
    if let Some(v) = req.by_downstream {
        conds.push("E.downstream = ?".into());
        args.push(Arg::Bool(v));
    }
    if let Some(m) = &req.by_selectors {
        conds.push(selector_condition(
            "selectors",
            "registered_entry_id",
            "E.id",
            &m.selectors,
            m.r#match,
            args,
        )?);
    }
    if let Some(m) = &req.by_federates_with
        && let Some(c) = federates_condition("E.id", &m.trust_domains, m.r#match, args)
    {
        conds.push(c);
    }
    Ok(conds.join(" AND "))
}

/// An entry with the same SPIFFE ID, parent ID and exact selector set.
async fn find_similar(
    tx: &mut Tx<'_>,
    entry: &RegistrationEntry,
) -> Result<Option<RegistrationEntry>> {
    let mut args = args![&entry.spiffe_id, &entry.parent_id];
    let cond = selector_condition(
        "selectors",
        "registered_entry_id",
        "E.id",
        &entry.selectors,
        MatchBehavior::Exact,
        &mut args,
    )?;
    let sql = format!(
        "SELECT E.id FROM registered_entries E WHERE E.spiffe_id = ? AND E.parent_id = ? AND {cond} ORDER BY E.id"
    );
    let Some(row) = tx.opt(&sql, args).await? else {
        return Ok(None);
    };
    let rid = col_i64(&row, 0)?;
    Ok(load_entries_where(tx, "E.id = ?", args![rid])
        .await?
        .pop()
        .map(|(_, e)| e))
}

/// Inserts a validated entry with its child rows and an event; returns it as stored.
pub(crate) async fn insert_entry(
    tx: &mut Tx<'_>,
    entry: &RegistrationEntry,
    entry_id: &str,
) -> Result<RegistrationEntry> {
    let sql = format!(
        "INSERT INTO registered_entries (created_at, updated_at, entry_id, spiffe_id, parent_id, ttl, admin, \
         downstream, expiry, revision_number, store_svid, hint, jwt_svid_ttl, additional_attributes) \
         VALUES ({now}, {now}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        now = tx.now()
    );
    let rid = tx
        .insert(
            &sql,
            args![
                entry_id,
                &entry.spiffe_id,
                &entry.parent_id,
                entry.x509_svid_ttl,
                entry.admin,
                entry.downstream,
                entry.expires_at,
                0i64,
                entry.store_svid,
                &entry.hint,
                entry.jwt_svid_ttl,
                encode_additional_attributes(
                    entry.disable_x509_svid_prefetch,
                    entry.jwt_svid_include_jti
                ),
            ],
        )
        .await?;
    insert_federates_with(tx, rid, &entry.federates_with).await?;
    insert_selectors(tx, rid, &entry.selectors).await?;
    insert_dns_names(tx, rid, &entry.dns_names).await?;
    entry_event(tx, entry_id).await?;
    load_entries_where(tx, "E.id = ?", args![rid])
        .await?
        .pop()
        .map(|(_, e)| e)
        .ok_or_else(|| DataStoreError::Internal("datastore-sql: created entry vanished".into()))
}

async fn insert_selectors(tx: &mut Tx<'_>, rid: i64, selectors: &[Selector]) -> Result<()> {
    let sql = format!(
        "INSERT INTO selectors (created_at, updated_at, registered_entry_id, type, value) VALUES ({now}, {now}, ?, ?, ?)",
        now = tx.now()
    );
    for s in dedup_selectors(selectors) {
        tx.exec(&sql, args![rid, s.r#type, s.value]).await?;
    }
    Ok(())
}

async fn insert_dns_names(tx: &mut Tx<'_>, rid: i64, names: &[String]) -> Result<()> {
    let sql = format!(
        "INSERT INTO dns_names (created_at, updated_at, registered_entry_id, value) VALUES ({now}, {now}, ?, ?)",
        now = tx.now()
    );
    for name in dedup_strings(names) {
        tx.exec(&sql, args![rid, name]).await?;
    }
    Ok(())
}

async fn insert_federates_with(tx: &mut Tx<'_>, rid: i64, trust_domains: &[String]) -> Result<()> {
    let ids = dedup_strings(&trust_domains.iter().map(|t| td_id(t)).collect::<Vec<_>>());
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT id, trust_domain FROM bundles WHERE trust_domain IN ({})",
        placeholders(ids.len())
    );
    let rows = tx
        .all(&sql, ids.iter().map(|s| Arg::Str(s.clone())).collect())
        .await?;
    let mut found = HashMap::new();
    for r in &rows {
        found.insert(col_str(r, 1)?, col_i64(r, 0)?);
    }
    for id in &ids {
        let Some(bundle_id) = found.get(id) else {
            return Err(DataStoreError::InvalidArgument(format!(
                "unable to find federated bundle {id:?}"
            )));
        };
        tx.exec(
            "INSERT INTO federated_registration_entries (bundle_id, registered_entry_id) VALUES (?, ?)",
            args![*bundle_id, rid],
        )
        .await?;
    }
    Ok(())
}

/// Appends a `registered_entries_events` row and queues the change announcement.
pub(crate) async fn entry_event(tx: &mut Tx<'_>, entry_id: &str) -> Result<()> {
    let sql = format!(
        "INSERT INTO registered_entries_events (created_at, updated_at, entry_id) VALUES ({now}, {now}, ?)",
        now = tx.now()
    );
    tx.exec(&sql, args![entry_id]).await?;
    tx.changed(DataStoreChange::EntryChanged {
        id: entry_id.to_string(),
    });
    Ok(())
}

/// Deletes entries `(internal id, entry id)` with all their child rows, with events.
pub(crate) async fn delete_entry_rows(tx: &mut Tx<'_>, rows: &[(i64, String)]) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let p = placeholders(chunk.len());
        let ids = || {
            chunk
                .iter()
                .map(|(rid, _)| Arg::I64(*rid))
                .collect::<Vec<_>>()
        };
        tx.exec(
            &format!("DELETE FROM selectors WHERE registered_entry_id IN ({p})"),
            ids(),
        )
        .await?;
        tx.exec(
            &format!("DELETE FROM dns_names WHERE registered_entry_id IN ({p})"),
            ids(),
        )
        .await?;
        tx.exec(
            &format!(
                "DELETE FROM federated_registration_entries WHERE registered_entry_id IN ({p})"
            ),
            ids(),
        )
        .await?;
        tx.exec(
            &format!("DELETE FROM registered_entries WHERE id IN ({p})"),
            ids(),
        )
        .await?;
    }
    for (_, entry_id) in rows {
        entry_event(tx, entry_id).await?;
    }
    Ok(())
}

/// Loads full entries by internal IDs, in the given order (missing ones skipped).
pub(crate) async fn load_entries_by_ids(
    tx: &mut Tx<'_>,
    ids: &[i64],
) -> Result<Vec<RegistrationEntry>> {
    let mut by_id = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let cond = format!("E.id IN ({})", placeholders(chunk.len()));
        let args = chunk.iter().map(|id| Arg::I64(*id)).collect();
        for (rid, e) in load_entries_where(tx, &cond, args).await? {
            by_id.insert(rid, e);
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Loads full entries whose row (alias `E`) satisfies `cond`, ordered by internal ID.
/// Four queries whatever the number of entries.
pub(crate) async fn load_entries_where(
    tx: &mut Tx<'_>,
    cond: &str,
    args: Vec<Arg>,
) -> Result<Vec<(i64, RegistrationEntry)>> {
    let d = tx.d;
    let sql = format!(
        "SELECT E.id, E.entry_id, E.spiffe_id, E.parent_id, E.ttl, {admin}, {downstream}, E.expiry, \
         E.revision_number, {store_svid}, E.hint, E.jwt_svid_ttl, E.additional_attributes, {created} \
         FROM registered_entries E WHERE {cond} ORDER BY E.id",
        admin = d.bool_of("E.admin"),
        downstream = d.bool_of("E.downstream"),
        store_svid = d.bool_of("E.store_svid"),
        created = d.unix_of("E.created_at"),
    );
    let rows = tx.all(&sql, args.clone()).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut order = Vec::with_capacity(rows.len());
    let mut entries: HashMap<i64, RegistrationEntry> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let rid = col_i64(r, 0)?;
        let attrs = col_bytes(r, 12)?;
        let (disable_prefetch, include_jti) = decode_additional_attributes(attrs.as_deref())?;
        order.push(rid);
        entries.insert(
            rid,
            RegistrationEntry {
                id: col_str(r, 1)?,
                spiffe_id: col_str(r, 2)?,
                parent_id: col_str(r, 3)?,
                x509_svid_ttl: col_i32(r, 4)?,
                admin: col_bool(r, 5)?,
                downstream: col_bool(r, 6)?,
                expires_at: col_i64(r, 7)?,
                revision_number: col_i64(r, 8)?,
                store_svid: col_bool(r, 9)?,
                hint: col_str(r, 10)?,
                jwt_svid_ttl: col_i32(r, 11)?,
                disable_x509_svid_prefetch: disable_prefetch,
                jwt_svid_include_jti: include_jti,
                created_at: col_i64(r, 13)?,
                ..RegistrationEntry::default()
            },
        );
    }
    let (scope, child_args) = if cond == "1 = 1" {
        (String::new(), Vec::new())
    } else {
        (
            format!(" IN (SELECT E.id FROM registered_entries E WHERE {cond})"),
            args,
        )
    };
    let where_child = |col: &str| {
        if scope.is_empty() {
            String::new()
        } else {
            format!(" WHERE {col}{scope}")
        }
    };

    let sql = format!(
        "SELECT S.registered_entry_id, S.type, S.value FROM selectors S{} ORDER BY S.id",
        where_child("S.registered_entry_id")
    );
    for r in tx.all(&sql, child_args.clone()).await? {
        if let Some(e) = entries.get_mut(&col_i64(&r, 0)?) {
            e.selectors
                .push(Selector::new(col_str(&r, 1)?, col_str(&r, 2)?));
        }
    }
    let sql = format!(
        "SELECT D.registered_entry_id, D.value FROM dns_names D{} ORDER BY D.id",
        where_child("D.registered_entry_id")
    );
    for r in tx.all(&sql, child_args.clone()).await? {
        if let Some(e) = entries.get_mut(&col_i64(&r, 0)?) {
            e.dns_names.push(col_str(&r, 1)?);
        }
    }
    let sql = format!(
        "SELECT F.registered_entry_id, B.trust_domain FROM federated_registration_entries F \
         JOIN bundles B ON B.id = F.bundle_id{} ORDER BY B.trust_domain",
        where_child("F.registered_entry_id")
    );
    for r in tx.all(&sql, child_args).await? {
        if let Some(e) = entries.get_mut(&col_i64(&r, 0)?) {
            e.federates_with.push(td_name(&col_str(&r, 1)?));
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|rid| entries.remove(&rid).map(|e| (rid, e)))
        .collect())
}

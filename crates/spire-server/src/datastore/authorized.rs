//! Authorized entries of an agent (SPIRE's entry cache semantics, server.md §5.4):
//! entries parented to the agent, plus entries parented to each node alias the agent
//! belongs to (an alias is an entry parented to `spiffe://<td>/spire/server` whose
//! selectors are all among the agent's node selectors; its SPIFFE ID becomes a parent to
//! look under), plus, recursively, entries parented to any entry found (by SPIFFE ID).
//! The walk is cycle-safe; alias entries themselves are not returned.

use std::collections::{HashMap, HashSet, VecDeque};

use super::entries::load_entries_by_ids;
use super::error::Result;
use super::model::{RegistrationEntry, Selector};
use super::store::{SqlStore, args, col_i64, col_str};

impl SqlStore {
    /// The entries agent `agent_id` may serve, given its node selectors. One pass over
    /// the (id, SPIFFE ID, parent ID) of all entries, an in-memory walk, then the full
    /// rows of the result only.
    pub async fn list_authorized_entries(
        &self,
        agent_id: &str,
        agent_node_selectors: &[Selector],
    ) -> Result<Vec<RegistrationEntry>> {
        let server_id = server_id_of(agent_id);
        let mut tx = self.read().await?;

        // parent SPIFFE ID -> [(internal id, SPIFFE ID)]
        let mut children: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for r in tx
            .all(
                "SELECT id, spiffe_id, parent_id FROM registered_entries",
                vec![],
            )
            .await?
        {
            children
                .entry(col_str(&r, 2)?)
                .or_default()
                .push((col_i64(&r, 0)?, col_str(&r, 1)?));
        }

        let mut roots = vec![agent_id.to_string()];
        if let Some(server_id) = &server_id
            && children.contains_key(server_id)
        {
            let node_set: HashSet<(&str, &str)> = agent_node_selectors
                .iter()
                .map(|s| (s.r#type.as_str(), s.value.as_str()))
                .collect();
            let mut alias_selectors: HashMap<i64, Vec<(String, String)>> = HashMap::new();
            let sql = "SELECT S.registered_entry_id, S.type, S.value FROM selectors S \
                       JOIN registered_entries E ON E.id = S.registered_entry_id WHERE E.parent_id = ?";
            for r in tx.all(sql, args![server_id]).await? {
                alias_selectors
                    .entry(col_i64(&r, 0)?)
                    .or_default()
                    .push((col_str(&r, 1)?, col_str(&r, 2)?));
            }
            for (rid, alias_id) in children.get(server_id).into_iter().flatten() {
                let matches = alias_selectors.get(rid).is_some_and(|sels| {
                    !sels.is_empty()
                        && sels
                            .iter()
                            .all(|(t, v)| node_set.contains(&(t.as_str(), v.as_str())))
                });
                if matches {
                    roots.push(alias_id.clone());
                }
            }
        }

        let mut seen_parents: HashSet<String> = HashSet::new();
        let mut found: Vec<i64> = Vec::new();
        let mut found_set: HashSet<i64> = HashSet::new();
        let mut queue: VecDeque<String> = roots.into();
        while let Some(parent) = queue.pop_front() {
            if !seen_parents.insert(parent.clone()) {
                continue;
            }
            for (rid, spiffe_id) in children.get(&parent).into_iter().flatten() {
                if found_set.insert(*rid) {
                    found.push(*rid);
                }
                if !seen_parents.contains(spiffe_id) {
                    queue.push_back(spiffe_id.clone());
                }
            }
        }
        found.sort_unstable();
        load_entries_by_ids(&mut tx, &found).await
    }
}

/// `spiffe://<td>/spire/server` for the trust domain of `id`.
fn server_id_of(id: &str) -> Option<String> {
    let rest = id.strip_prefix("spiffe://")?;
    let td = rest.split('/').next().filter(|td| !td.is_empty())?;
    Some(format!("spiffe://{td}/spire/server"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn server_id() {
        assert_eq!(
            super::server_id_of("spiffe://td/spire/agent/x").as_deref(),
            Some("spiffe://td/spire/server")
        );
        assert_eq!(super::server_id_of("bogus"), None);
    }
}

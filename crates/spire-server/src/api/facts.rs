//! Caller facts for authorization, looked up in the datastore.

use std::collections::HashSet;
use std::sync::Arc;

use spiffe_core::SpiffeId;

use super::authz_layer::CallerFactSource;
use super::store_status;
use crate::authz::{Allow, CallerFacts, NodeSerials};
use crate::datastore::{AttestedNodeMask, ListEntriesRequest, SqlStore};

/// Facts from `admin_ids` and the datastore.
pub struct StoreFacts {
    /// The datastore.
    pub store: Arc<SqlStore>,
    /// `admin_ids` from the configuration.
    pub admin_ids: HashSet<SpiffeId>,
}

#[tonic::async_trait]
impl CallerFactSource for StoreFacts {
    async fn facts(&self, id: &SpiffeId, allow: Allow) -> Result<CallerFacts, tonic::Status> {
        let mut facts = CallerFacts {
            in_admin_ids: self.admin_ids.contains(id),
            ..Default::default()
        };
        if (allow.admin && !facts.in_admin_ids) || allow.downstream {
            let entries = self
                .store
                .list_registration_entries(&ListEntriesRequest {
                    by_spiffe_id: Some(id.to_string()),
                    ..Default::default()
                })
                .await
                .map_err(store_status)?;
            facts.admin_entry = entries.entries.iter().any(|e| e.admin);
            facts.downstream_entry = entries.entries.iter().any(|e| e.downstream);
        }
        if allow.agent {
            facts.node = self
                .store
                .fetch_attested_node(id.as_str())
                .await
                .map_err(store_status)?
                .map(|node| NodeSerials {
                    serial: node.cert_serial_number,
                    new_serial: node.new_cert_serial_number,
                });
        }
        Ok(facts)
    }

    async fn promote_new_serial(&self, id: &SpiffeId) -> Result<(), tonic::Status> {
        let Some(node) = self
            .store
            .fetch_attested_node(id.as_str())
            .await
            .map_err(store_status)?
        else {
            return Ok(());
        };
        let promoted = crate::datastore::AttestedNode {
            cert_serial_number: node.new_cert_serial_number.clone(),
            cert_not_after: node.new_cert_not_after,
            new_cert_serial_number: String::new(),
            new_cert_not_after: 0,
            ..node
        };
        self.store
            .update_attested_node(
                &promoted,
                Some(&AttestedNodeMask {
                    cert_serial_number: true,
                    cert_not_after: true,
                    new_cert_serial_number: true,
                    new_cert_not_after: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(store_status)?;
        Ok(())
    }
}

//! CA journals (`ca_journals`): one opaque protobuf blob per server, found by the
//! active X.509 authority ID.

use sqlx::any::AnyRow;

use super::error::{DataStoreError, Result};
use super::model::CaJournal;
use super::store::{SqlStore, args, col_bytes, col_i64, col_str};

const SELECT: &str =
    "SELECT id, data, active_x509_authority_id, active_jwt_authority_id FROM ca_journals";

fn from_row(r: &AnyRow) -> Result<CaJournal> {
    Ok(CaJournal {
        id: col_i64(r, 0)?,
        data: col_bytes(r, 1)?.unwrap_or_default(),
        active_x509_authority_id: col_str(r, 2)?,
        active_jwt_authority_id: col_str(r, 3)?,
    })
}

impl SqlStore {
    /// Creates (`id == 0`) or replaces (`id` of a stored row) a journal; returns it with
    /// its ID.
    pub async fn set_ca_journal(&self, journal: &CaJournal) -> Result<CaJournal> {
        if journal.active_x509_authority_id.is_empty() {
            return Err(DataStoreError::InvalidArgument(
                "active X509 authority ID is required".into(),
            ));
        }
        let mut tx = self.write().await?;
        let id = if journal.id == 0 {
            let sql = format!(
                "INSERT INTO ca_journals (created_at, updated_at, data, active_x509_authority_id, \
                 active_jwt_authority_id) VALUES ({now}, {now}, ?, ?, ?)",
                now = tx.now()
            );
            tx.insert(
                &sql,
                args![
                    journal.data.clone(),
                    &journal.active_x509_authority_id,
                    &journal.active_jwt_authority_id
                ],
            )
            .await?
        } else {
            let sql = format!(
                "UPDATE ca_journals SET data = ?, active_x509_authority_id = ?, active_jwt_authority_id = ?, \
                 updated_at = {} WHERE id = ?",
                tx.now()
            );
            let n = tx
                .exec(
                    &sql,
                    args![
                        journal.data.clone(),
                        &journal.active_x509_authority_id,
                        &journal.active_jwt_authority_id,
                        journal.id
                    ],
                )
                .await?;
            if n == 0 {
                return Err(DataStoreError::NotFound(format!(
                    "datastore-sql: CA journal {} not found",
                    journal.id
                )));
            }
            journal.id
        };
        self.commit(tx).await?;
        Ok(CaJournal {
            id,
            ..journal.clone()
        })
    }

    /// The journal whose active X.509 authority is `active_x509_authority_id`.
    pub async fn fetch_ca_journal(
        &self,
        active_x509_authority_id: &str,
    ) -> Result<Option<CaJournal>> {
        if active_x509_authority_id.is_empty() {
            return Err(DataStoreError::InvalidArgument(
                "active X509 authority ID is required".into(),
            ));
        }
        let mut tx = self.read().await?;
        let sql = format!("{SELECT} WHERE active_x509_authority_id = ? ORDER BY id");
        tx.opt(&sql, args![active_x509_authority_id])
            .await?
            .map(|r| from_row(&r))
            .transpose()
    }

    /// Every journal.
    pub async fn list_ca_journals(&self) -> Result<Vec<CaJournal>> {
        let mut tx = self.read().await?;
        tx.all(&format!("{SELECT} ORDER BY id"), vec![])
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Deletes a journal. `NotFound` if missing.
    pub async fn delete_ca_journal(&self, id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        if tx
            .exec("DELETE FROM ca_journals WHERE id = ?", args![id])
            .await?
            == 0
        {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: CA journal {id} not found"
            )));
        }
        self.commit(tx).await
    }
}

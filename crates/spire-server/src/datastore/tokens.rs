//! Join tokens (`join_tokens`). Token values are secrets: they are bound, never logged.

use super::error::{DataStoreError, Result};
use super::model::{JoinToken, JoinTokenOutcome};
use super::store::{SqlStore, args, col_i64, col_str};

impl SqlStore {
    /// Stores a new join token. `AlreadyExists` if the value is taken.
    pub async fn create_join_token(&self, token: &JoinToken) -> Result<()> {
        if token.token.is_empty() || token.expiry == 0 {
            return Err(DataStoreError::InvalidArgument(
                "token and expiry are required".into(),
            ));
        }
        let mut tx = self.write().await?;
        let sql = format!(
            "INSERT INTO join_tokens (created_at, updated_at, token, expiry) VALUES ({now}, {now}, ?, ?)",
            now = tx.now()
        );
        match tx.exec(&sql, args![&token.token, token.expiry]).await {
            Err(DataStoreError::AlreadyExists { .. }) => {
                return Err(DataStoreError::already_exists(
                    "datastore-sql: join token already exists",
                ));
            }
            other => other?,
        };
        self.commit(tx).await
    }

    /// The stored token, if any (does not consume it).
    pub async fn fetch_join_token(&self, token: &str) -> Result<Option<JoinToken>> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                "SELECT token, expiry FROM join_tokens WHERE token = ?",
                args![token],
            )
            .await?;
        row.map(|r| {
            Ok(JoinToken {
                token: col_str(&r, 0)?,
                expiry: col_i64(&r, 1)?,
            })
        })
        .transpose()
    }

    /// Deletes a token. `NotFound` if there is none.
    pub async fn delete_join_token(&self, token: &str) -> Result<()> {
        let mut tx = self.write().await?;
        if tx
            .exec("DELETE FROM join_tokens WHERE token = ?", args![token])
            .await?
            == 0
        {
            return Err(DataStoreError::NotFound(
                "datastore-sql: join token not found".into(),
            ));
        }
        self.commit(tx).await
    }

    /// Uses a token once: reads it, deletes it, and reports whether it was valid at
    /// `now` (unix seconds). Of any number of concurrent callers with the same token,
    /// exactly one sees `Consumed`/`Expired`; the rest see `NotFound`. Expired tokens are
    /// deleted too (SPIRE deletes a token on the first attempt, valid or not).
    pub async fn consume_join_token(&self, token: &str, now: i64) -> Result<JoinTokenOutcome> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT token, expiry FROM join_tokens WHERE token = ?{}",
            tx.d.for_update()
        );
        let Some(row) = tx.opt(&sql, args![token]).await? else {
            return Ok(JoinTokenOutcome::NotFound);
        };
        let found = JoinToken {
            token: col_str(&row, 0)?,
            expiry: col_i64(&row, 1)?,
        };
        // Only the transaction whose DELETE removed the row owns the token.
        if tx
            .exec("DELETE FROM join_tokens WHERE token = ?", args![token])
            .await?
            != 1
        {
            return Ok(JoinTokenOutcome::NotFound);
        }
        self.commit(tx).await?;
        Ok(if found.expiry < now {
            JoinTokenOutcome::Expired(found)
        } else {
            JoinTokenOutcome::Consumed(found)
        })
    }

    /// Deletes tokens that expired before `expires_before` (unix seconds); returns how many.
    pub async fn prune_join_tokens(&self, expires_before: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                "DELETE FROM join_tokens WHERE expiry < ?",
                args![expires_before],
            )
            .await?;
        self.commit(tx).await?;
        Ok(n)
    }
}

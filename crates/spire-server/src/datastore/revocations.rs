//! The X.509-SVID revocation list (a spire-rs extension; SPIRE has no such table).
//!
//! It lives in its own table, `spirers_revoked_x509_svids`, created next to SPIRE's
//! schema without touching it: the schema version stays SPIRE's, and a SPIRE server
//! opening the database ignores the extra table. Times are Unix seconds in `bigint`
//! columns, the same on every dialect.

use super::dialect::Dialect;
use super::error::{DataStoreError, Result};
use super::model::{DataStoreChange, RevokedX509Svid};
use super::store::{SqlStore, args, col_i64, col_str};

/// The table holding revoked X.509-SVID serial numbers.
pub const REVOKED_X509_SVIDS_TABLE: &str = "spirers_revoked_x509_svids";

/// The `CREATE TABLE IF NOT EXISTS` statement of the revocation table.
pub(crate) fn create_statement(d: Dialect) -> String {
    let suffix = if d == Dialect::MySql {
        " ENGINE=InnoDB DEFAULT CHARSET=utf8"
    } else {
        ""
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {REVOKED_X509_SVIDS_TABLE} (\
         serial varchar(64) NOT NULL, revoked_at bigint NOT NULL, \
         expires_at bigint NOT NULL, PRIMARY KEY (serial)){suffix}"
    )
}

/// Checks a serial is in the stored form: lowercase hex, no leading zero, at most 20
/// bytes (RFC 5280 §4.1.2.2), not zero.
fn check_serial(serial: &str) -> Result<()> {
    let ok = !serial.is_empty()
        && serial.len() <= 40
        && !serial.starts_with('0')
        && serial
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DataStoreError::InvalidArgument(format!(
            "invalid X.509-SVID serial number {serial:?}: want lowercase hexadecimal without leading zeros"
        )))
    }
}

fn row_to_revoked(r: &sqlx::any::AnyRow) -> Result<RevokedX509Svid> {
    Ok(RevokedX509Svid {
        serial: col_str(r, 0)?,
        revoked_at: col_i64(r, 1)?,
        expires_at: col_i64(r, 2)?,
    })
}

impl SqlStore {
    /// Revokes the X.509-SVID with `serial` (stored form: see [`RevokedX509Svid`]).
    /// A serial already revoked keeps its first `revoked_at`; its `expires_at` becomes
    /// the later of the two. Announces [`DataStoreChange::RevocationsChanged`].
    pub async fn revoke_x509_svid(
        &self,
        serial: &str,
        revoked_at: i64,
        expires_at: i64,
    ) -> Result<RevokedX509Svid> {
        check_serial(serial)?;
        if expires_at < revoked_at {
            return Err(DataStoreError::InvalidArgument(
                "the revocation expires before it was made".into(),
            ));
        }
        let mut tx = self.write().await?;
        let existing = tx
            .opt(
                &format!(
                    "SELECT serial, revoked_at, expires_at FROM {REVOKED_X509_SVIDS_TABLE} \
                     WHERE serial = ?{}",
                    tx.d.for_update()
                ),
                args![serial],
            )
            .await?
            .map(|r| row_to_revoked(&r))
            .transpose()?;
        let revoked = match existing {
            Some(mut old) => {
                if expires_at > old.expires_at {
                    tx.exec(
                        &format!(
                            "UPDATE {REVOKED_X509_SVIDS_TABLE} SET expires_at = ? WHERE serial = ?"
                        ),
                        args![expires_at, serial],
                    )
                    .await?;
                    old.expires_at = expires_at;
                }
                old
            }
            None => {
                tx.exec(
                    &format!(
                        "INSERT INTO {REVOKED_X509_SVIDS_TABLE} (serial, revoked_at, expires_at) \
                         VALUES (?, ?, ?)"
                    ),
                    args![serial, revoked_at, expires_at],
                )
                .await?;
                RevokedX509Svid {
                    serial: serial.to_owned(),
                    revoked_at,
                    expires_at,
                }
            }
        };
        tx.changed(DataStoreChange::RevocationsChanged);
        self.commit(tx).await?;
        Ok(revoked)
    }

    /// Every revoked X.509-SVID serial not yet pruned, by serial.
    pub async fn list_revoked_x509_svids(&self) -> Result<Vec<RevokedX509Svid>> {
        let mut tx = self.read().await?;
        tx.all(
            &format!(
                "SELECT serial, revoked_at, expires_at FROM {REVOKED_X509_SVIDS_TABLE} \
                 ORDER BY serial"
            ),
            vec![],
        )
        .await?
        .iter()
        .map(row_to_revoked)
        .collect()
    }

    /// Deletes revocations whose `expires_at` is before `now` (Unix seconds): no
    /// certificate with their serial is valid any more. Returns how many went, and
    /// announces [`DataStoreChange::RevocationsChanged`] when any did.
    pub async fn prune_revoked_x509_svids(&self, now: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                &format!("DELETE FROM {REVOKED_X509_SVIDS_TABLE} WHERE expires_at < ?"),
                args![now],
            )
            .await?;
        if n > 0 {
            tx.changed(DataStoreChange::RevocationsChanged);
        }
        self.commit(tx).await?;
        Ok(n)
    }
}

/// Creates the revocation table if it is missing. With `disable_migration` the schema
/// is left alone: a missing table is reported and revocation calls fail until it exists.
pub(crate) async fn ensure_table(
    conn: &mut sqlx::AnyConnection,
    d: Dialect,
    disable_migration: bool,
) -> Result<()> {
    if disable_migration {
        let probe = format!("SELECT COUNT(*) FROM {REVOKED_X509_SVIDS_TABLE} WHERE 1 = 0");
        if sqlx::query(sqlx::AssertSqlSafe(probe))
            .fetch_one(&mut *conn)
            .await
            .is_err()
        {
            tracing::warn!(
                table = REVOKED_X509_SVIDS_TABLE,
                "X.509-SVID revocation is unavailable: its table is missing and migration is disabled"
            );
        }
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(create_statement(d)))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

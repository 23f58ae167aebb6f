//! Schema and migrations. The tables, columns and index names are SPIRE's (gorm models of
//! `pkg/server/datastore/sqlstore`, schema version 25), so an operator can inspect the
//! database exactly as a SPIRE one, and a database SPIRE created at schema 23..=25 opens
//! here (and is migrated forward to 25).

use sqlx::{AnyConnection, Row};
use tracing::{info, warn};

use super::dialect::Dialect;
use super::error::{DataStoreError, Result};

/// The schema version this code writes (SPIRE's `latestSchemaVersion`).
pub const SCHEMA_VERSION: i64 = 25;
/// The oldest schema version this code migrates from (SPIRE 1.8.x).
pub const MIN_MIGRATABLE_SCHEMA_VERSION: i64 = 23;
/// The SPIRE release whose datastore behaviour this code implements; stored in
/// `migrations.code_version`.
pub const CODE_VERSION: &str = "1.14.0";

#[derive(Clone, Copy)]
enum Col {
    /// Autoincrement primary key.
    Id,
    /// created_at / updated_at style timestamp.
    Time,
    /// varchar(255).
    Str,
    /// varchar(255) NOT NULL.
    StrNotNull,
    Bool,
    Int,
    BigInt,
    /// Small blob (<= 64 KiB).
    Blob,
    /// Blob up to 16 MiB.
    MediumBlob,
}

struct Index {
    name: &'static str,
    unique: bool,
    cols: &'static [&'static str],
}

struct Table {
    name: &'static str,
    cols: &'static [(&'static str, Col)],
    /// Composite primary key instead of an `id` column.
    primary_key: Option<&'static str>,
    indexes: &'static [Index],
}

const fn ix(name: &'static str, cols: &'static [&'static str]) -> Index {
    Index {
        name,
        unique: false,
        cols,
    }
}

const fn uix(name: &'static str, cols: &'static [&'static str]) -> Index {
    Index {
        name,
        unique: true,
        cols,
    }
}

macro_rules! cols {
    ($($name:literal : $ty:ident),* $(,)?) => {
        &[("id", Col::Id), ("created_at", Col::Time), ("updated_at", Col::Time), $(($name, Col::$ty)),*]
    };
}

const TABLES: &[Table] = &[
    Table {
        name: "federated_registration_entries",
        cols: &[("bundle_id", Col::Int), ("registered_entry_id", Col::Int)],
        primary_key: Some("bundle_id, registered_entry_id"),
        indexes: &[ix(
            "idx_federated_registration_entries_registered_entry_id",
            &["registered_entry_id"],
        )],
    },
    Table {
        name: "bundles",
        cols: cols!["trust_domain": StrNotNull, "data": MediumBlob],
        primary_key: None,
        indexes: &[uix("uix_bundles_trust_domain", &["trust_domain"])],
    },
    Table {
        name: "attested_node_entries",
        cols: cols![
            "spiffe_id": Str,
            "data_type": Str,
            "serial_number": Str,
            "expires_at": Time,
            "new_serial_number": Str,
            "new_expires_at": Time,
            "can_reattest": Bool,
            "agent_version": Str,
        ],
        primary_key: None,
        indexes: &[
            ix("idx_attested_node_entries_expires_at", &["expires_at"]),
            uix("uix_attested_node_entries_spiffe_id", &["spiffe_id"]),
        ],
    },
    Table {
        name: "attested_node_entries_events",
        cols: cols!["spiffe_id": Str],
        primary_key: None,
        indexes: &[],
    },
    Table {
        name: "node_resolver_map_entries",
        cols: cols!["spiffe_id": Str, "type": Str, "value": Str],
        primary_key: None,
        indexes: &[uix(
            "idx_node_resolver_map",
            &["spiffe_id", "type", "value"],
        )],
    },
    Table {
        name: "registered_entries",
        cols: cols![
            "entry_id": Str,
            "spiffe_id": Str,
            "parent_id": Str,
            "ttl": Int,
            "admin": Bool,
            "downstream": Bool,
            "expiry": BigInt,
            "revision_number": BigInt,
            "store_svid": Bool,
            "hint": Str,
            "jwt_svid_ttl": Int,
            "additional_attributes": Blob,
        ],
        primary_key: None,
        indexes: &[
            ix("idx_registered_entries_hint", &["hint"]),
            ix("idx_registered_entries_spiffe_id", &["spiffe_id"]),
            ix("idx_registered_entries_parent_id", &["parent_id"]),
            ix("idx_registered_entries_expiry", &["expiry"]),
            uix("uix_registered_entries_entry_id", &["entry_id"]),
        ],
    },
    Table {
        name: "registered_entries_events",
        cols: cols!["entry_id": Str],
        primary_key: None,
        indexes: &[],
    },
    Table {
        name: "join_tokens",
        cols: cols!["token": Str, "expiry": BigInt],
        primary_key: None,
        indexes: &[uix("uix_join_tokens_token", &["token"])],
    },
    Table {
        name: "selectors",
        cols: cols!["registered_entry_id": Int, "type": Str, "value": Str],
        primary_key: None,
        indexes: &[
            ix("idx_selectors_type_value", &["type", "value"]),
            uix(
                "idx_selector_entry",
                &["registered_entry_id", "type", "value"],
            ),
        ],
    },
    Table {
        name: "migrations",
        cols: cols!["version": Int, "code_version": Str],
        primary_key: None,
        indexes: &[],
    },
    Table {
        name: "dns_names",
        cols: cols!["registered_entry_id": Int, "value": Str],
        primary_key: None,
        indexes: &[uix("idx_dns_entry", &["registered_entry_id", "value"])],
    },
    Table {
        name: "federated_trust_domains",
        cols: cols![
            "trust_domain": StrNotNull,
            "bundle_endpoint_url": Str,
            "bundle_endpoint_profile": Str,
            "endpoint_spiffe_id": Str,
            "implicit": Bool,
        ],
        primary_key: None,
        indexes: &[uix(
            "uix_federated_trust_domains_trust_domain",
            &["trust_domain"],
        )],
    },
    Table {
        name: "ca_journals",
        cols: cols!["data": MediumBlob, "active_x509_authority_id": Str, "active_jwt_authority_id": Str],
        primary_key: None,
        indexes: &[
            ix(
                "idx_ca_journals_active_x509_authority_id",
                &["active_x509_authority_id"],
            ),
            ix(
                "idx_ca_journals_active_jwt_authority_id",
                &["active_jwt_authority_id"],
            ),
        ],
    },
];

/// The names of every table of the schema.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.name)
}

fn col_type(d: Dialect, c: Col) -> &'static str {
    match (d, c) {
        (Dialect::Sqlite, Col::Id) => "integer primary key autoincrement",
        (Dialect::Postgres, Col::Id) => "serial primary key",
        (Dialect::MySql, Col::Id) => "int unsigned AUTO_INCREMENT",
        (Dialect::Sqlite, Col::Time) => "datetime",
        (Dialect::Postgres, Col::Time) => "timestamp with time zone",
        (Dialect::MySql, Col::Time) => "datetime NULL",
        (_, Col::Str) => "varchar(255)",
        (_, Col::StrNotNull) => "varchar(255) NOT NULL",
        (Dialect::Sqlite, Col::Bool) => "bool",
        (_, Col::Bool) => "boolean",
        (Dialect::MySql, Col::Int) => "int",
        (_, Col::Int) => "integer",
        (_, Col::BigInt) => "bigint",
        (Dialect::Sqlite, Col::Blob | Col::MediumBlob) => "blob",
        (Dialect::Postgres, Col::Blob | Col::MediumBlob) => "bytea",
        (Dialect::MySql, Col::Blob) => "blob",
        (Dialect::MySql, Col::MediumBlob) => "mediumblob",
    }
}

/// DDL creating every table and index (idempotent: `IF NOT EXISTS`).
fn create_statements(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        let mut parts: Vec<String> = t
            .cols
            .iter()
            .map(|(n, c)| format!("{n} {}", col_type(d, *c)))
            .collect();
        if let Some(pk) = t.primary_key {
            parts.push(format!("PRIMARY KEY ({pk})"));
        } else if d == Dialect::MySql {
            parts.push("PRIMARY KEY (id)".into());
        }
        if d == Dialect::MySql {
            // MySQL has no CREATE INDEX IF NOT EXISTS: declare indexes with the table.
            for i in t.indexes {
                parts.push(format!(
                    "{}INDEX {} ({})",
                    if i.unique { "UNIQUE " } else { "" },
                    i.name,
                    i.cols.join(", ")
                ));
            }
        }
        let suffix = if d == Dialect::MySql {
            " ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8"
        } else {
            ""
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} ({}){suffix}",
            t.name,
            parts.join(", ")
        ));
        if d != Dialect::MySql {
            for i in t.indexes {
                out.push(format!(
                    "CREATE {}INDEX IF NOT EXISTS {} ON {} ({})",
                    if i.unique { "UNIQUE " } else { "" },
                    i.name,
                    t.name,
                    i.cols.join(", ")
                ));
            }
        }
    }
    out
}

async fn table_exists(conn: &mut AnyConnection, d: Dialect, table: &str) -> Result<bool> {
    let sql = match d {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
        }
        Dialect::MySql => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
        }
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(d.rebind(sql).into_owned()))
        .bind(table.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

async fn exec(conn: &mut AnyConnection, d: Dialect, sql: &str) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(d.rebind(sql).into_owned()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`]: creates a new database in one transaction,
/// migrates 23/24 forward one version per transaction, and refuses newer or too-old
/// schemas with an explanation. Returns the schema version found before migrating
/// (`None` for a new database).
pub(crate) async fn migrate(
    conn: &mut AnyConnection,
    d: Dialect,
    disable_migration: bool,
) -> Result<Option<i64>> {
    if !table_exists(conn, d, "migrations").await? {
        if disable_migration {
            return Err(DataStoreError::FailedPrecondition(
                "datastore-sql: the database has no schema and migration is disabled (disable_migration = true)"
                    .into(),
            ));
        }
        info!(database_type = d.name(), "Initializing new database");
        // PostgreSQL and SQLite run DDL transactionally; MySQL commits each statement.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for stmt in create_statements(d) {
            exec(&mut tx, d, &stmt).await?;
        }
        let sql = format!(
            "INSERT INTO migrations (created_at, updated_at, version, code_version) VALUES ({now}, {now}, ?, ?)",
            now = d.now()
        );
        sqlx::query(sqlx::AssertSqlSafe(d.rebind(&sql).into_owned()))
            .bind(SCHEMA_VERSION)
            .bind(CODE_VERSION.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }

    let row = sqlx::query("SELECT id, version, code_version FROM migrations ORDER BY id")
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Err(DataStoreError::FailedPrecondition(
            "datastore-sql: the migrations table is empty; refusing to guess the schema version"
                .into(),
        ));
    };
    let id: i64 = row.try_get(0)?;
    let version: i64 = row.try_get::<Option<i64>, _>(1)?.unwrap_or(0);
    let stored_code: String = row.try_get::<Option<String>, _>(2)?.unwrap_or_default();

    if version > SCHEMA_VERSION {
        return Err(DataStoreError::FailedPrecondition(format!(
            "datastore-sql: the database schema version {version} (written by SPIRE {stored_code}) is newer than \
             the newest this server supports ({SCHEMA_VERSION}); upgrade the server or restore a compatible database"
        )));
    }
    if version < MIN_MIGRATABLE_SCHEMA_VERSION {
        return Err(DataStoreError::FailedPrecondition(format!(
            "datastore-sql: the database schema version {version} (SPIRE {stored_code}) is too old to migrate: \
             the oldest supported is {MIN_MIGRATABLE_SCHEMA_VERSION} (SPIRE 1.8.x); upgrade through an \
             intermediate SPIRE release first"
        )));
    }
    if version < SCHEMA_VERSION && disable_migration {
        return Err(DataStoreError::FailedPrecondition(format!(
            "datastore-sql: the database schema version {version} needs migrating to {SCHEMA_VERSION}, but \
             migration is disabled (disable_migration = true)"
        )));
    }

    let mut current = version;
    while current < SCHEMA_VERSION {
        let next = current + 1;
        info!(from = current, to = next, "Migrating database schema");
        let stmt = match next {
            24 => format!(
                "ALTER TABLE attested_node_entries ADD COLUMN agent_version {}",
                col_type(d, Col::Str)
            ),
            25 => format!(
                "ALTER TABLE registered_entries ADD COLUMN additional_attributes {}",
                col_type(d, Col::Blob)
            ),
            _ => {
                return Err(DataStoreError::Internal(format!(
                    "datastore-sql: no migration to schema {next}"
                )));
            }
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        exec(&mut tx, d, &stmt).await?;
        let sql = format!(
            "UPDATE migrations SET version = ?, code_version = ?, updated_at = {} WHERE id = ?",
            d.now()
        );
        sqlx::query(sqlx::AssertSqlSafe(d.rebind(&sql).into_owned()))
            .bind(next)
            .bind(CODE_VERSION.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        current = next;
    }
    if version == SCHEMA_VERSION && stored_code != CODE_VERSION {
        if disable_migration {
            warn!(stored = %stored_code, ours = CODE_VERSION, "Database code version differs; migration disabled, leaving it");
        } else {
            let sql = format!(
                "UPDATE migrations SET code_version = ?, updated_at = {} WHERE id = ?",
                d.now()
            );
            sqlx::query(sqlx::AssertSqlSafe(d.rebind(&sql).into_owned()))
                .bind(CODE_VERSION.to_string())
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(Some(version))
}

/// `CREATE TABLE` statements of schema 23 (before `agent_version` and
/// `additional_attributes`), for migration tests.
#[doc(hidden)]
pub fn schema_23_statements(d: Dialect) -> Vec<String> {
    create_statements(d)
        .into_iter()
        .map(|s| {
            s.replace(&format!(", agent_version {}", col_type(d, Col::Str)), "")
                .replace(
                    &format!(", additional_attributes {}", col_type(d, Col::Blob)),
                    "",
                )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ddl_mentions_every_table() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let ddl = create_statements(d).join(";\n");
            for t in table_names() {
                assert!(
                    ddl.contains(&format!("CREATE TABLE IF NOT EXISTS {t} (")),
                    "{t} in {d:?}"
                );
            }
            assert!(!schema_23_statements(d).join(";").contains("agent_version"));
        }
    }
}

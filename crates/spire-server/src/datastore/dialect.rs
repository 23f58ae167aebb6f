//! The three SQL dialects. Queries are written once with `?` placeholders and portable
//! SQL; this module supplies the few pieces that differ (placeholders, time and boolean
//! expressions, row locking, DDL types).
//!
//! sqlx's `Any` driver only decodes integers, text and blobs portably, so every
//! time column is read through [`Dialect::unix_of`] (epoch seconds) and every boolean
//! column through [`Dialect::bool_of`] (0/1).

use std::borrow::Cow;

/// A supported database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3 (embedded, bundled library).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// SPIRE's name of the database type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite3",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// Rewrites `?` placeholders to `$1, $2, ...` for PostgreSQL. Our SQL never contains a
    /// literal `?` (values are always bound).
    pub(crate) fn rebind(self, sql: &str) -> Cow<'_, str> {
        if self != Self::Postgres || !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// The current UTC time as a column value.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Self::Sqlite | Self::Postgres => "CURRENT_TIMESTAMP",
            Self::MySql => "UTC_TIMESTAMP()",
        }
    }

    /// A time column value from one bound unix-seconds placeholder.
    pub(crate) fn ts_param(self) -> &'static str {
        match self {
            Self::Sqlite => "datetime(?, 'unixepoch')",
            Self::Postgres => "to_timestamp(?)",
            Self::MySql => "DATE_ADD('1970-01-01 00:00:00', INTERVAL ? SECOND)",
        }
    }

    /// Unix seconds of a time column (NULL stays NULL).
    pub(crate) fn unix_of(self, col: &str) -> String {
        match self {
            Self::Sqlite => format!("CAST(strftime('%s', {col}) AS INTEGER)"),
            Self::Postgres => format!("CAST(EXTRACT(EPOCH FROM {col}) AS BIGINT)"),
            Self::MySql => format!("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {col})"),
        }
    }

    /// `col <op> <time from one bound unix-seconds placeholder>`.
    pub(crate) fn ts_cmp(self, col: &str, op: &str) -> String {
        match self {
            // Text timestamps written by different SQLite clients have different shapes:
            // compare epoch seconds instead of strings.
            Self::Sqlite => format!("{} {op} ?", self.unix_of(col)),
            _ => format!("{col} {op} {}", self.ts_param()),
        }
    }

    /// A boolean column read as 0/1.
    pub(crate) fn bool_of(self, col: &str) -> String {
        format!("(CASE WHEN {col} THEN 1 ELSE 0 END)")
    }

    /// Suffix that locks selected rows until the transaction ends (SQLite serializes
    /// writers instead).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres | Self::MySql => " FOR UPDATE",
        }
    }

    /// Whether inserted IDs come back through `RETURNING id` (the `Any` driver reports no
    /// last insert ID for SQLite; MySQL has no `RETURNING`).
    pub(crate) fn returning_id(self) -> bool {
        self != Self::MySql
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Dialect;

    #[test]
    fn rebind_numbers_placeholders() {
        assert_eq!(
            Dialect::Postgres.rebind("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(Dialect::MySql.rebind("a = ?"), "a = ?");
    }
}

//! `DataStore "sql"` configuration and the translation of SPIRE's connection strings
//! (SQLite paths and `file:` URIs, lib/pq key=value strings, go-sql-driver DSNs) into
//! the URLs sqlx understands.

use std::path::Path;
use std::time::Duration;

use super::dialect::Dialect;
use super::error::{DataStoreError, Result};

/// Settings of the SQL datastore, as in SPIRE's `DataStore "sql" { plugin_data { ... } }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataStoreConfig {
    /// `sqlite3`, `postgres` or `mysql`.
    pub database_type: String,
    /// Connection string in SPIRE's form for that database type (URL forms work too).
    pub connection_string: String,
    /// Read replica connection string; accepted for compatibility, reads use the primary.
    pub ro_connection_string: Option<String>,
    /// MySQL TLS: CA certificate path.
    pub root_ca_path: Option<String>,
    /// MySQL TLS: client certificate path.
    pub client_cert_path: Option<String>,
    /// MySQL TLS: client key path.
    pub client_key_path: Option<String>,
    /// Maximum open connections (SPIRE default 100).
    pub max_open_conns: Option<u32>,
    /// Maximum idle connections; accepted for compatibility (the pool closes idle
    /// connections after a fixed idle time instead).
    pub max_idle_conns: Option<u32>,
    /// Maximum lifetime of a connection (unlimited by default).
    pub conn_max_lifetime: Option<Duration>,
    /// Refuse to migrate: opening fails unless the schema is already current.
    pub disable_migration: bool,
}

impl DataStoreConfig {
    /// A configuration with just a type and a connection string.
    pub fn new(database_type: impl Into<String>, connection_string: impl Into<String>) -> Self {
        Self {
            database_type: database_type.into(),
            connection_string: connection_string.into(),
            ..Self::default()
        }
    }
}

/// A connection target resolved from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub dialect: Dialect,
    /// URL for sqlx's `Any` driver. Contains the password: never log it.
    pub url: String,
    /// SQLite only: an in-memory database (keep one connection open).
    pub in_memory: bool,
    /// SQLite only: opened read-only.
    pub read_only: bool,
}

/// Resolves the configured database type and connection string.
pub(crate) fn resolve(cfg: &DataStoreConfig) -> Result<Target> {
    if cfg.database_type.is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "datastore-sql: database_type must be set".into(),
        ));
    }
    if cfg.connection_string.is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "datastore-sql: connection_string must be set".into(),
        ));
    }
    match cfg.database_type.as_str() {
        "sqlite3" | "sqlite" => sqlite_target(&cfg.connection_string),
        "postgres" | "postgresql" => Ok(Target {
            dialect: Dialect::Postgres,
            url: postgres_url(&cfg.connection_string)?,
            in_memory: false,
            read_only: false,
        }),
        "mysql" => Ok(Target {
            dialect: Dialect::MySql,
            url: mysql_url(&cfg.connection_string, cfg)?,
            in_memory: false,
            read_only: false,
        }),
        other => Err(DataStoreError::InvalidArgument(format!(
            "datastore-sql: unsupported database_type: {other} (expected sqlite3, postgres or mysql)"
        ))),
    }
}

/// Percent-encodes everything outside the URL "unreserved" set, plus keeps `/` and `:`
/// when `keep_path` is set.
fn pct(s: &str, keep_path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_path && matches!(b, b'/' | b':'));
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn pct_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SQLite: a path (`./.data/datastore.sqlite3`), a `file:` URI
/// (`file:memdb?mode=memory&cache=shared`), `:memory:`, or an `sqlite:` URL. go-sqlite3's
/// private `_name=value` parameters are dropped (we always set foreign keys and WAL).
fn sqlite_target(conn: &str) -> Result<Target> {
    let rest = if let Some(r) = conn.strip_prefix("sqlite://") {
        r
    } else if let Some(r) = conn.strip_prefix("sqlite:") {
        r
    } else if let Some(r) = conn.strip_prefix("file:") {
        r
    } else {
        conn
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut mode: Option<String> = None;
    let mut cache: Option<String> = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "mode" => mode = Some(v.to_ascii_lowercase()),
            "cache" => cache = Some(v.to_ascii_lowercase()),
            _ => {} // `_foreign_keys`, `_journal_mode`, `_busy_timeout`, ...: we set our own
        }
    }
    let path = pct_decode(path);
    let in_memory = path == ":memory:" || path.is_empty() || mode.as_deref() == Some("memory");
    if in_memory {
        let name = if path.is_empty() || path == ":memory:" {
            "spire-rs-memdb".to_string()
        } else {
            path
        };
        return Ok(Target {
            dialect: Dialect::Sqlite,
            // `file:` makes SQLite treat the name as a URI, so every pooled connection opens
            // the same shared-cache memory database.
            url: format!("sqlite:file:{}?mode=memory&cache=shared", pct(&name, false)),
            in_memory: true,
            read_only: false,
        });
    }
    let mode = match mode.as_deref() {
        None | Some("rwc") => "rwc",
        Some("rw") => "rw",
        Some("ro") => "ro",
        Some(other) => {
            return Err(DataStoreError::InvalidArgument(format!(
                "datastore-sql: unsupported sqlite mode {other:?}"
            )));
        }
    };
    let abs = std::path::absolute(Path::new(&path)).map_err(|e| {
        DataStoreError::InvalidArgument(format!("datastore-sql: invalid sqlite path {path:?}: {e}"))
    })?;
    if mode == "rwc"
        && let Some(parent) = abs.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            DataStoreError::InvalidArgument(format!(
                "datastore-sql: cannot create directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    let abs = abs.to_string_lossy().into_owned();
    let mut url = format!("sqlite://{}?mode={mode}", pct(&abs, true));
    if let Some(c) = cache.filter(|c| c == "shared" || c == "private") {
        url.push_str("&cache=");
        url.push_str(&c);
    }
    Ok(Target {
        dialect: Dialect::Sqlite,
        url,
        in_memory: false,
        read_only: mode == "ro",
    })
}

/// Splits a lib/pq `key=value key2='quoted value'` string.
fn parse_kv(conn: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DataStoreError::InvalidArgument(format!(
                "datastore-sql: malformed connection string: missing \"=\" after {key:?}"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(DataStoreError::InvalidArgument(
                    "datastore-sql: malformed connection string: unterminated quoted value".into(),
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// PostgreSQL: `postgres://` / `postgresql://` URLs pass through; lib/pq key=value strings
/// become a URL whose query carries the same keys.
fn postgres_url(conn: &str) -> Result<String> {
    let trimmed = conn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return Ok(trimmed.to_string());
    }
    let mut params = Vec::new();
    for (k, v) in parse_kv(trimmed)? {
        let key = match k.as_str() {
            "host" | "hostaddr" | "port" | "dbname" | "user" | "password" | "sslmode"
            | "sslrootcert" | "sslcert" | "sslkey" | "application_name" | "options" => k.clone(),
            // lib/pq knobs without a sqlx equivalent (connect_timeout, fallback_application_name, ...)
            _ => continue,
        };
        params.push(format!("{}={}", key, pct(&v, false)));
    }
    Ok(format!("postgres:///?{}", params.join("&")))
}

/// MySQL: `mysql://` URLs pass through; go-sql-driver DSNs
/// (`user:pass@tcp(host:3306)/db?parseTime=true`) become URLs.
fn mysql_url(conn: &str, cfg: &DataStoreConfig) -> Result<String> {
    let trimmed = conn.trim();
    let mut url = if trimmed.starts_with("mysql://") || trimmed.starts_with("mariadb://") {
        trimmed.replacen("mariadb://", "mysql://", 1)
    } else {
        mysql_dsn_to_url(trimmed)?
    };
    let mut extra = Vec::new();
    if let Some(ca) = &cfg.root_ca_path {
        extra.push(format!("ssl-mode=VERIFY_CA&ssl-ca={}", pct(ca, false)));
    }
    if let Some(cert) = &cfg.client_cert_path {
        extra.push(format!("ssl-cert={}", pct(cert, false)));
    }
    if let Some(key) = &cfg.client_key_path {
        extra.push(format!("ssl-key={}", pct(key, false)));
    }
    if !extra.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&extra.join("&"));
    }
    Ok(url)
}

fn mysql_dsn_to_url(dsn: &str) -> Result<String> {
    let bad = |why: &str| {
        DataStoreError::InvalidArgument(format!("datastore-sql: invalid MySQL DSN: {why}"))
    };
    // The database name ends at the last '/' (it cannot contain one); params follow '?'.
    let slash = dsn
        .rfind('/')
        .ok_or_else(|| bad("missing the slash before the database name"))?;
    let (head, tail) = (&dsn[..slash], &dsn[slash + 1..]);
    let (db, params) = match tail.split_once('?') {
        Some((d, p)) => (d, p),
        None => (tail, ""),
    };
    let (userinfo, netaddr) = match head.rfind('@') {
        Some(at) => (Some(&head[..at]), &head[at + 1..]),
        None => (None, head),
    };
    let (user, pass) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        },
        None => ("", None),
    };
    let (net, addr) = match netaddr.split_once('(') {
        Some((n, rest)) => (
            n,
            rest.strip_suffix(')')
                .ok_or_else(|| bad("unterminated address"))?,
        ),
        None => (netaddr, ""),
    };
    let mut query: Vec<String> = Vec::new();
    let mut host = String::from("localhost");
    match net {
        "" | "tcp" | "tcp6" | "tcp4" => {
            if !addr.is_empty() {
                host = addr.to_string();
            }
        }
        "unix" => {
            query.push(format!("socket={}", pct(addr, false)));
        }
        other => return Err(bad(&format!("unsupported network {other:?}"))),
    }
    let mut ssl_mode = None;
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "tls" => {
                ssl_mode = Some(match v {
                    "true" => "VERIFY_IDENTITY",
                    "skip-verify" => "REQUIRED",
                    "preferred" => "PREFERRED",
                    "false" => "DISABLED",
                    // a registered custom TLS config: TLS with the configured CA
                    _ => "VERIFY_CA",
                });
            }
            "charset" => {
                // go-sql-driver accepts a comma-separated preference list.
                let first = v.split(',').next().unwrap_or(v);
                query.push(format!("charset={}", pct(first, false)));
            }
            "collation" => query.push(format!("collation={}", pct(v, false))),
            _ => {} // parseTime, loc, timeout, ...: not needed here
        }
    }
    if let Some(mode) = ssl_mode {
        query.push(format!("ssl-mode={mode}"));
    }
    let mut url = String::from("mysql://");
    if !user.is_empty() {
        url.push_str(&pct(user, false));
        if let Some(p) = pass {
            url.push(':');
            url.push_str(&pct(p, false));
        }
        url.push('@');
    }
    url.push_str(&host);
    url.push('/');
    url.push_str(&pct(db, false));
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lib_pq_key_value() {
        let url = postgres_url(
            "dbname=spire user=root host=127.0.0.1 password='a b\\'c' sslmode=disable",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres:///?dbname=spire&user=root&host=127.0.0.1&password=a%20b%27c&sslmode=disable"
        );
        assert_eq!(
            postgres_url("postgres://u@h/db").unwrap(),
            "postgres://u@h/db"
        );
        assert!(postgres_url("dbname").is_err());
    }

    #[test]
    fn go_mysql_dsn() {
        let cfg = DataStoreConfig::default();
        assert_eq!(
            mysql_url(
                "spire:p@ss@tcp(db.local:3306)/spire?parseTime=true&charset=utf8",
                &cfg
            )
            .unwrap(),
            "mysql://spire:p%40ss@db.local:3306/spire?charset=utf8"
        );
        assert_eq!(
            mysql_url("root@/spire", &cfg).unwrap(),
            "mysql://root@localhost/spire"
        );
        assert_eq!(
            mysql_url("u@unix(/run/mysqld.sock)/db?tls=skip-verify", &cfg).unwrap(),
            "mysql://u@localhost/db?socket=%2Frun%2Fmysqld.sock&ssl-mode=REQUIRED"
        );
        assert_eq!(
            mysql_url("mysql://root@127.0.0.1:3306/t", &cfg).unwrap(),
            "mysql://root@127.0.0.1:3306/t"
        );
        assert!(mysql_url("no-slash", &cfg).is_err());
    }

    #[test]
    fn sqlite_forms() {
        let t = sqlite_target("file:memdb?mode=memory&cache=shared").unwrap();
        assert!(t.in_memory);
        assert_eq!(t.url, "sqlite:file:memdb?mode=memory&cache=shared");
        let t = sqlite_target("/nonexistent dir/d.sqlite3?mode=rw&_foreign_keys=on").unwrap();
        assert_eq!(t.url, "sqlite:///nonexistent%20dir/d.sqlite3?mode=rw");
        assert_eq!(pct_decode("a%20b%zz%"), "a b%zz%");
        let t = sqlite_target("file:/var/lib/spire/d.db?mode=ro").unwrap();
        assert!(t.read_only);
    }
}

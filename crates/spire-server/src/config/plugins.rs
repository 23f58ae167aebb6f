//! Typed `plugin_data` of the built-in server plugins the quickstart uses.
//!
//! Each view is built from a [`PluginConfig`] with `from_plugin`; errors name the plugin.
//! Values follow HCL v1's weak typing (`max_open_conns = "10"` works).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use spire_common::duration;
use spire_common::hcl::{ConfigError, PluginConfig, de};

use super::{ServerConfig, ServerConfigError};

fn plugin_error(plugin: &PluginConfig, message: impl Into<String>) -> ServerConfigError {
    ServerConfigError::Config(ConfigError::Plugin {
        plugin_type: plugin.plugin_type.clone(),
        name: plugin.name.clone(),
        message: message.into(),
    })
}

/// `database_type` of the SQL datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseType {
    /// `sqlite3`.
    Sqlite3,
    /// `postgres`.
    Postgres,
    /// `mysql`.
    Mysql,
    /// `database_type "aws_postgres" { region = "..." }` (IAM authentication).
    AwsPostgres {
        /// AWS region.
        region: String,
    },
    /// `database_type "aws_mysql" { region = "..." }` (IAM authentication).
    AwsMysql {
        /// AWS region.
        region: String,
    },
}

impl DatabaseType {
    /// The dialect: `sqlite3`, `postgres` or `mysql`.
    pub fn dialect(&self) -> &'static str {
        match self {
            DatabaseType::Sqlite3 => "sqlite3",
            DatabaseType::Postgres | DatabaseType::AwsPostgres { .. } => "postgres",
            DatabaseType::Mysql | DatabaseType::AwsMysql { .. } => "mysql",
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDatabaseType {
    Name(String),
    Aws(std::collections::BTreeMap<String, RawAws>),
}

#[derive(Deserialize, Default)]
struct RawAws {
    #[serde(default, deserialize_with = "de::opt_string")]
    region: Option<String>,
}

#[derive(Deserialize)]
struct RawSql {
    database_type: Option<RawDatabaseType>,
    #[serde(default, deserialize_with = "de::opt_string")]
    connection_string: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    ro_connection_string: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    root_ca_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    client_cert_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    client_key_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_int")]
    max_open_conns: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_int")]
    max_idle_conns: Option<u32>,
    #[serde(default, with = "duration::serde_go_option")]
    conn_max_lifetime: Option<Duration>,
    #[serde(default, deserialize_with = "de::bool")]
    disable_migration: bool,
    #[serde(default, deserialize_with = "de::bool")]
    log_sql: bool,
}

/// `DataStore "sql"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlDataStoreConfig {
    /// `database_type` (required).
    pub database_type: DatabaseType,
    /// `connection_string` (required): a file path for SQLite, a DSN otherwise.
    pub connection_string: String,
    /// `ro_connection_string`: read-only replica (not for SQLite).
    pub ro_connection_string: Option<String>,
    /// `root_ca_path` (MySQL TLS).
    pub root_ca_path: Option<PathBuf>,
    /// `client_cert_path` (MySQL TLS).
    pub client_cert_path: Option<PathBuf>,
    /// `client_key_path` (MySQL TLS).
    pub client_key_path: Option<PathBuf>,
    /// `max_open_conns` (default 100).
    pub max_open_conns: u32,
    /// `max_idle_conns` (default 100).
    pub max_idle_conns: u32,
    /// `conn_max_lifetime` (default unlimited).
    pub conn_max_lifetime: Option<Duration>,
    /// `disable_migration` (default false).
    pub disable_migration: bool,
    /// `log_sql` (default false).
    pub log_sql: bool,
}

impl SqlDataStoreConfig {
    /// Reads the `DataStore "sql"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, ServerConfigError> {
        let raw: RawSql = plugin.decode_data()?;
        let database_type = match raw.database_type {
            None => return Err(plugin_error(plugin, "database_type must be set")),
            Some(RawDatabaseType::Name(name)) => match name.as_str() {
                "sqlite3" => DatabaseType::Sqlite3,
                "postgres" => DatabaseType::Postgres,
                "mysql" => DatabaseType::Mysql,
                "" => return Err(plugin_error(plugin, "database_type must be set")),
                other => {
                    return Err(plugin_error(
                        plugin,
                        format!("unsupported database_type: \"{other}\""),
                    ));
                }
            },
            Some(RawDatabaseType::Aws(map)) => {
                let mut entries = map.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((name, aws)), None) => {
                        let region = aws.region.unwrap_or_default();
                        match name.as_str() {
                            "aws_postgres" => DatabaseType::AwsPostgres { region },
                            "aws_mysql" => DatabaseType::AwsMysql { region },
                            other => {
                                return Err(plugin_error(
                                    plugin,
                                    format!("unsupported database_type: \"{other}\""),
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(plugin_error(
                            plugin,
                            "exactly one database_type block is expected",
                        ));
                    }
                }
            }
        };
        let Some(connection_string) = raw.connection_string else {
            return Err(plugin_error(plugin, "connection_string must be set"));
        };
        Ok(SqlDataStoreConfig {
            database_type,
            connection_string,
            ro_connection_string: raw.ro_connection_string,
            root_ca_path: raw.root_ca_path.map(PathBuf::from),
            client_cert_path: raw.client_cert_path.map(PathBuf::from),
            client_key_path: raw.client_key_path.map(PathBuf::from),
            max_open_conns: raw.max_open_conns.unwrap_or(100),
            max_idle_conns: raw.max_idle_conns.unwrap_or(100),
            conn_max_lifetime: raw.conn_max_lifetime.filter(|d| !d.is_zero()),
            disable_migration: raw.disable_migration,
            log_sql: raw.log_sql,
        })
    }
}

/// `KeyManager "memory"`: no options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryKeyManagerConfig;

impl MemoryKeyManagerConfig {
    /// Reads the (empty) plugin data.
    pub fn from_plugin(_plugin: &PluginConfig) -> Result<Self, ServerConfigError> {
        Ok(MemoryKeyManagerConfig)
    }
}

#[derive(Deserialize)]
struct RawDiskKeyManager {
    #[serde(default, deserialize_with = "de::opt_string")]
    keys_path: Option<String>,
}

/// `KeyManager "disk"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskKeyManagerConfig {
    /// `keys_path` (required): the JSON file holding the keys.
    pub keys_path: PathBuf,
}

impl DiskKeyManagerConfig {
    /// Reads the `KeyManager "disk"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, ServerConfigError> {
        let raw: RawDiskKeyManager = plugin.decode_data()?;
        let Some(keys_path) = raw.keys_path else {
            return Err(plugin_error(plugin, "keys_path is required"));
        };
        Ok(DiskKeyManagerConfig {
            keys_path: PathBuf::from(keys_path),
        })
    }
}

#[derive(Deserialize)]
struct RawDiskUpstream {
    #[serde(default, deserialize_with = "de::opt_string")]
    key_file_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    cert_file_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    bundle_file_path: Option<String>,
}

/// `UpstreamAuthority "disk"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUpstreamAuthorityConfig {
    /// `key_file_path` (required): the upstream CA key (PEM, EC or RSA, PKCS#1/SEC1/PKCS#8).
    pub key_file_path: PathBuf,
    /// `cert_file_path` (required): the upstream CA certificate (and chain).
    pub cert_file_path: PathBuf,
    /// `bundle_file_path`: upstream roots when the CA is not self-signed.
    pub bundle_file_path: Option<PathBuf>,
}

impl DiskUpstreamAuthorityConfig {
    /// Reads the `UpstreamAuthority "disk"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, ServerConfigError> {
        let raw: RawDiskUpstream = plugin.decode_data()?;
        let Some(key_file_path) = raw.key_file_path else {
            return Err(plugin_error(plugin, "key_file_path is required"));
        };
        let Some(cert_file_path) = raw.cert_file_path else {
            return Err(plugin_error(plugin, "cert_file_path is required"));
        };
        Ok(DiskUpstreamAuthorityConfig {
            key_file_path: PathBuf::from(key_file_path),
            cert_file_path: PathBuf::from(cert_file_path),
            bundle_file_path: raw.bundle_file_path.map(PathBuf::from),
        })
    }
}

/// `NodeAttestor "join_token"`: no options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JoinTokenAttestorConfig;

impl JoinTokenAttestorConfig {
    /// Reads the (empty) plugin data.
    pub fn from_plugin(_plugin: &PluginConfig) -> Result<Self, ServerConfigError> {
        Ok(JoinTokenAttestorConfig)
    }
}

impl ServerConfig {
    /// The enabled `DataStore "sql"` configuration, if that is the datastore.
    pub fn sql_datastore(&self) -> Result<Option<SqlDataStoreConfig>, ServerConfigError> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.plugin_type == "DataStore" && p.name == "sql")
            .map(SqlDataStoreConfig::from_plugin)
            .transpose()
    }

    /// The enabled `UpstreamAuthority "disk"` configuration, if configured.
    pub fn disk_upstream_authority(
        &self,
    ) -> Result<Option<DiskUpstreamAuthorityConfig>, ServerConfigError> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.plugin_type == "UpstreamAuthority" && p.name == "disk")
            .map(DiskUpstreamAuthorityConfig::from_plugin)
            .transpose()
    }
}

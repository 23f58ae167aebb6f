//! Typed `plugin_data` of the built-in agent plugins the quickstart uses.

use std::path::PathBuf;

use serde::Deserialize;
use spire_common::hcl::{ConfigError, PluginConfig, de};

use super::{AgentConfig, AgentConfigError};

fn plugin_error(plugin: &PluginConfig, message: impl Into<String>) -> AgentConfigError {
    AgentConfigError::Config(ConfigError::Plugin {
        plugin_type: plugin.plugin_type.clone(),
        name: plugin.name.clone(),
        message: message.into(),
    })
}

/// `KeyManager "memory"`: no options (the agent key is lost on restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryKeyManagerConfig;

impl MemoryKeyManagerConfig {
    /// Reads the (empty) plugin data.
    pub fn from_plugin(_plugin: &PluginConfig) -> Result<Self, AgentConfigError> {
        Ok(MemoryKeyManagerConfig)
    }
}

#[derive(Deserialize)]
struct RawDisk {
    #[serde(default, deserialize_with = "de::opt_string")]
    directory: Option<String>,
}

/// `KeyManager "disk"`: keys in `<directory>/keys.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskKeyManagerConfig {
    /// `directory` (required).
    pub directory: PathBuf,
}

impl DiskKeyManagerConfig {
    /// Reads the `KeyManager "disk"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, AgentConfigError> {
        let raw: RawDisk = plugin.decode_data()?;
        let Some(directory) = raw.directory else {
            return Err(plugin_error(plugin, "directory must be configured"));
        };
        Ok(DiskKeyManagerConfig {
            directory: PathBuf::from(directory),
        })
    }

    /// The key file, `<directory>/keys.json`.
    pub fn keys_path(&self) -> PathBuf {
        self.directory.join("keys.json")
    }
}

/// `NodeAttestor "join_token"`: no options (the token is `join_token` / `-joinToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JoinTokenAttestorConfig;

impl JoinTokenAttestorConfig {
    /// Reads the (empty) plugin data.
    pub fn from_plugin(_plugin: &PluginConfig) -> Result<Self, AgentConfigError> {
        Ok(JoinTokenAttestorConfig)
    }
}

#[derive(Deserialize)]
struct RawUnix {
    #[serde(default, deserialize_with = "de::bool")]
    discover_workload_path: bool,
    #[serde(default, deserialize_with = "de::opt_int")]
    workload_size_limit: Option<i64>,
}

/// `WorkloadAttestor "unix"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnixWorkloadAttestorConfig {
    /// `discover_workload_path` (default false): add `path` and `sha256` selectors.
    pub discover_workload_path: bool,
    /// `workload_size_limit` (default 0 = no limit; negative = never hash).
    pub workload_size_limit: i64,
}

impl UnixWorkloadAttestorConfig {
    /// Reads the `WorkloadAttestor "unix"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, AgentConfigError> {
        let raw: RawUnix = plugin.decode_data()?;
        Ok(UnixWorkloadAttestorConfig {
            discover_workload_path: raw.discover_workload_path,
            workload_size_limit: raw.workload_size_limit.unwrap_or(0),
        })
    }
}

impl AgentConfig {
    /// The enabled `KeyManager "disk"` configuration, if that is the key manager.
    pub fn disk_key_manager(&self) -> Result<Option<DiskKeyManagerConfig>, AgentConfigError> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.plugin_type == "KeyManager" && p.name == "disk")
            .map(DiskKeyManagerConfig::from_plugin)
            .transpose()
    }

    /// The enabled `WorkloadAttestor "unix"` configuration, if configured.
    pub fn unix_workload_attestor(
        &self,
    ) -> Result<Option<UnixWorkloadAttestorConfig>, AgentConfigError> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.plugin_type == "WorkloadAttestor" && p.name == "unix")
            .map(UnixWorkloadAttestorConfig::from_plugin)
            .transpose()
    }
}

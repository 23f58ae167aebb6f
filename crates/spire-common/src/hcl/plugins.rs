//! The `plugins { ... }` section, shared by server and agent.
//!
//! ```hcl
//! plugins {
//!     <PluginType> "<name>" {
//!         plugin_cmd       = "/path/bin"   # external plugin; omitted for built-ins
//!         plugin_args      = ["..."]
//!         plugin_checksum  = "<sha256 hex>"
//!         plugin_data { ... }              # or plugin_data = { ... }
//!         plugin_data_file = "file.conf"   # exclusive with plugin_data
//!         enabled          = true          # default true
//!     }
//! }
//! ```
//!
//! As in SPIRE (`pkg/common/catalog/config.go`), plugins are kept in document order, the
//! nested forms `Type { name { ... } }` and `Type = { name = { ... } }` are accepted too,
//! a type/name pair may appear only once, and unknown keys inside a plugin block are not
//! checked. Plugin names are not checked here either: the plugin catalog does that.

use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::ConfigError;
use super::node::{ConfigNode, ConfigObject};
use super::section::Section;

/// One plugin declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The plugin type, e.g. `DataStore`, `KeyManager`, `NodeAttestor`.
    pub plugin_type: String,
    /// The plugin name, e.g. `sql`, `memory`, `join_token`.
    pub name: String,
    /// `plugin_cmd`: the external plugin binary; `None` for a built-in.
    pub plugin_cmd: Option<String>,
    /// `plugin_args`: arguments for the external plugin binary.
    pub plugin_args: Vec<String>,
    /// `plugin_checksum`: optional SHA-256 (hex) of the external binary.
    pub plugin_checksum: Option<String>,
    /// `plugin_data`: the plugin's own configuration (empty when not given).
    pub data: PluginData,
    /// `plugin_data_file`: a file holding the plugin's configuration instead of
    /// `plugin_data` (re-read on SIGUSR1).
    pub data_file: Option<PathBuf>,
    /// `enabled` (default `true`); disabled plugins are skipped by the catalog.
    pub enabled: bool,
}

impl PluginConfig {
    /// Whether this plugin is an external binary (`plugin_cmd` set).
    pub fn is_external(&self) -> bool {
        self.plugin_cmd.is_some()
    }

    /// `"Type"/"name"`, as SPIRE names plugins in errors.
    pub fn ident(&self) -> String {
        format!("\"{}\"/\"{}\"", self.plugin_type, self.name)
    }

    /// Decodes `plugin_data` into a typed configuration (see [`PluginData::decode`]), with
    /// errors naming this plugin.
    pub fn decode_data<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.data.decode().map_err(|e| ConfigError::Plugin {
            plugin_type: self.plugin_type.clone(),
            name: self.name.clone(),
            message: e.to_string(),
        })
    }
}

/// The `plugin_data` of a plugin: the HCL body as written, plus helpers to decode it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginData {
    body: hcl::Body,
    object: ConfigObject,
}

impl PluginData {
    /// Plugin data from a normalized object (the body is the block as written when the
    /// object came from a block).
    pub fn from_object(object: ConfigObject) -> Self {
        PluginData {
            body: object.to_body(),
            object,
        }
    }

    /// Plugin data parsed from HCL (or JSON) text, e.g. the contents of `plugin_data_file`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let body = super::parse_body(text)?;
        let object = ConfigObject::from_body(&body)?;
        Ok(PluginData { body, object })
    }

    /// The HCL body of `plugin_data`.
    pub fn body(&self) -> &hcl::Body {
        &self.body
    }

    /// The normalized object of `plugin_data` (blocks and `= { }` objects alike).
    pub fn object(&self) -> &ConfigObject {
        &self.object
    }

    /// Whether `plugin_data` is empty or absent.
    pub fn is_empty(&self) -> bool {
        self.object.is_empty()
    }

    /// A [`Section`] over the data, for plugins that read their options one by one with
    /// HCL v1's weak typing and want unknown-key detection.
    pub fn section(&self, name: &str) -> Section {
        Section::new(name, "plugin_data", self.object.clone())
    }

    /// The data as a JSON value, with HCL v1's merging of repeated blocks.
    pub fn to_json(&self) -> serde_json::Value {
        self.object.to_json()
    }

    /// Decodes the data into a typed plugin configuration with serde.
    ///
    /// `plugin_data { ... }` and `plugin_data = { ... }` decode alike; a labelled block
    /// `x "a" { ... }` appears as a map `{"x": {"a": {...}}}`; repeated blocks merge. Values
    /// keep their written type: use the helpers of [`super::de`] on fields that SPIRE
    /// reads with HCL v1's weak typing (numbers written as strings and the like), and
    /// [`crate::duration::serde_go`] for durations. Unknown fields are ignored unless the
    /// type says `#[serde(deny_unknown_fields)]`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_json::from_value(self.to_json()).map_err(|e| ConfigError::PluginData(e.to_string()))
    }

    /// The data printed back as HCL text, as SPIRE hands it to a plugin's `Configure`.
    /// Empty data prints as the empty string.
    pub fn to_hcl_string(&self) -> Result<String, ConfigError> {
        if self.body.0.is_empty() {
            return Ok(String::new());
        }
        hcl::to_string(&self.body).map_err(|e| ConfigError::PluginData(e.to_string()))
    }
}

/// Reads the `plugins` section into an ordered list of plugin declarations.
pub fn parse_plugins(plugins: &ConfigNode) -> Result<Vec<PluginConfig>, ConfigError> {
    let mut out: Vec<PluginConfig> = Vec::new();
    let types: Vec<(&str, &ConfigNode)> = match plugins {
        ConfigNode::Object(o) => o.entries().iter().map(|(k, v)| (k.as_str(), v)).collect(),
        ConfigNode::List(items) => items
            .iter()
            .filter_map(ConfigNode::as_object)
            .flat_map(|o| o.entries().iter().map(|(k, v)| (k.as_str(), v)))
            .collect(),
        ConfigNode::Null => Vec::new(),
        other => {
            return Err(ConfigError::Value {
                key: "plugins".to_owned(),
                message: format!("expected a block, found {}", other.kind()),
            });
        }
    };
    for (plugin_type, node) in types {
        let named: Vec<(&str, &ConfigNode)> = match node {
            ConfigNode::Object(o) => o.entries().iter().map(|(k, v)| (k.as_str(), v)).collect(),
            ConfigNode::List(items) => items
                .iter()
                .filter_map(ConfigNode::as_object)
                .flat_map(|o| o.entries().iter().map(|(k, v)| (k.as_str(), v)))
                .collect(),
            other => {
                return Err(ConfigError::Value {
                    key: format!("plugins.{plugin_type}"),
                    message: format!(
                        "expected plugin blocks such as {plugin_type} \"name\" {{ ... }}, found {}",
                        other.kind()
                    ),
                });
            }
        };
        for (name, body) in named {
            if out
                .iter()
                .any(|p| p.plugin_type == plugin_type && p.name == name)
            {
                return Err(ConfigError::DuplicatePlugin {
                    plugin_type: plugin_type.to_owned(),
                    name: name.to_owned(),
                });
            }
            let plugin = plugin_from_node(plugin_type, name, body).map_err(|e| match e {
                ConfigError::Plugin { .. } => e,
                other => ConfigError::Plugin {
                    plugin_type: plugin_type.to_owned(),
                    name: name.to_owned(),
                    message: other.to_string(),
                },
            })?;
            out.push(plugin);
        }
    }
    Ok(out)
}

fn plugin_from_node(
    plugin_type: &str,
    name: &str,
    node: &ConfigNode,
) -> Result<PluginConfig, ConfigError> {
    let object = match node {
        ConfigNode::Object(o) => o.clone(),
        other => {
            return Err(ConfigError::Syntax(format!(
                "expected a plugin block, found {}",
                other.kind()
            )));
        }
    };
    let section = Section::new(name, format!("plugins.{plugin_type}.{name}"), object);
    let plugin_cmd = section.non_empty_string("plugin_cmd")?;
    let plugin_args = section.strings("plugin_args")?.unwrap_or_default();
    let plugin_checksum = section.non_empty_string("plugin_checksum")?;
    let data_file = section.string("plugin_data_file")?;
    let enabled = section.bool("enabled")?.unwrap_or(true);
    let data_node = section.raw("plugin_data");
    if data_node.is_some() && data_file.is_some() {
        return Err(ConfigError::Syntax(
            "only one of [plugin_data, plugin_data_file] can be used".to_owned(),
        ));
    }
    let data = match data_node {
        None | Some(ConfigNode::Null) => PluginData::default(),
        Some(ConfigNode::Object(o)) => PluginData::from_object(o),
        Some(ConfigNode::List(items)) if items.iter().all(|i| i.as_object().is_some()) => {
            let mut entries = Vec::new();
            for item in items {
                if let ConfigNode::Object(o) = item {
                    entries.extend(o.entries().iter().cloned());
                }
            }
            PluginData::from_object(ConfigObject::from_entries(entries))
        }
        Some(other) => {
            return Err(ConfigError::Syntax(format!(
                "plugin_data: expected a block, found {}",
                other.kind()
            )));
        }
    };
    Ok(PluginConfig {
        plugin_type: plugin_type.to_owned(),
        name: name.to_owned(),
        plugin_cmd,
        plugin_args,
        plugin_checksum,
        data,
        data_file: data_file.map(PathBuf::from),
        enabled,
    })
}

/// How many plugins of one type a catalog requires, with SPIRE's wording when violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginConstraint {
    /// The minimum; 0 means optional.
    pub min: usize,
    /// The maximum; 0 means unbounded.
    pub max: usize,
}

impl PluginConstraint {
    /// Exactly one (DataStore, server and agent KeyManager, agent NodeAttestor).
    pub const EXACTLY_ONE: PluginConstraint = PluginConstraint { min: 1, max: 1 };
    /// Zero or one (UpstreamAuthority).
    pub const MAYBE_ONE: PluginConstraint = PluginConstraint { min: 0, max: 1 };
    /// One or more (agent WorkloadAttestor).
    pub const AT_LEAST_ONE: PluginConstraint = PluginConstraint { min: 1, max: 0 };
    /// Any number.
    pub const ZERO_OR_MORE: PluginConstraint = PluginConstraint { min: 0, max: 0 };

    /// Checks a count, failing with SPIRE's `expected exactly 1 but got 0` wording.
    pub fn check(&self, count: usize) -> Result<(), String> {
        if self.max > 0 && self.min == self.max && self.min != count {
            return Err(format!("expected exactly {} but got {count}", self.min));
        }
        if self.min > 0 && self.min > count {
            return Err(format!("expected at least {} but got {count}", self.min));
        }
        if self.max > 0 && self.max < count {
            return Err(format!("expected at most {} but got {count}", self.max));
        }
        Ok(())
    }
}

impl fmt::Display for PluginConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (a, b) if a == b && b > 0 => write!(f, "exactly {a}"),
            (0, 0) => f.write_str("any number"),
            (a, 0) => write!(f, "at least {a}"),
            (0, b) => write!(f, "at most {b}"),
            (a, b) => write!(f, "between {a} and {b}"),
        }
    }
}

/// Checks the number of **enabled** plugins of each constrained type, failing with
/// `plugin type "DataStore" constraint not satisfied: expected exactly 1 but got 0`.
pub fn check_plugin_counts(
    plugins: &[PluginConfig],
    constraints: &[(&str, PluginConstraint)],
) -> Result<(), ConfigError> {
    for (plugin_type, constraint) in constraints {
        let count = plugins
            .iter()
            .filter(|p| p.enabled && p.plugin_type == *plugin_type)
            .count();
        constraint
            .check(count)
            .map_err(|message| ConfigError::PluginCount {
                plugin_type: (*plugin_type).to_owned(),
                message,
            })?;
    }
    Ok(())
}

/// The plugins of one type, in document order (disabled ones included).
pub fn plugins_of_type<'a>(
    plugins: &'a [PluginConfig],
    plugin_type: &'a str,
) -> impl Iterator<Item = &'a PluginConfig> + 'a {
    plugins.iter().filter(move |p| p.plugin_type == plugin_type)
}

/// The plugin with this type and name.
pub fn find_plugin<'a>(
    plugins: &'a [PluginConfig],
    plugin_type: &str,
    name: &str,
) -> Option<&'a PluginConfig> {
    plugins
        .iter()
        .find(|p| p.plugin_type == plugin_type && p.name == name)
}

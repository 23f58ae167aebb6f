//! Loading SPIRE's HCL configuration files.
//!
//! The steps SPIRE takes (`cmd/spire-{server,agent}/cli/run/run.go`), and the functions
//! that take them here:
//!
//! 1. Read the file; a missing file fails with `could not find config file <abs path>:
//!    please use the -config flag` ([`read_config_file`]).
//! 2. With `-expandEnv`, replace `$VAR` and `${VAR}` with environment values, as Go's
//!    `os.Expand` does, `$$` giving `$` ([`expand_env`]).
//! 3. Parse as HCL v1, or as JSON ([`parse_body`]). HCL goes through hcl-rs (HCL2 native
//!    syntax), which reads every configuration shape SPIRE ships. For the HCL v1 forms
//!    that HCL2 refuses (commas between block items, one-line blocks holding blocks,
//!    `{ a = 1 b = 2 }`, quoted keys, repeated attributes, hex numbers), a rewriting pass
//!    ([`hcl1`]) turns the text into HCL2 and the parse is retried. JSON files (HCL v1
//!    reads those too) are detected by a leading `{`.
//! 4. Normalize into a [`ConfigObject`] tree where blocks and `= { }` objects are alike,
//!    and read it section by section with [`Section`], which tracks unknown keys for
//!    [`UnknownKeyCheck`]; plugins are read by [`parse_plugins`].
//!
//! Which sections reject unknown keys is decided by the server and agent loaders (SPIRE
//! checks the top level, `server`/`agent`, `ca_subject`, `ratelimit`,
//! `federation.bundle_endpoint` and its `acme`, each telemetry collector and
//! `health_checks`; not `experimental`, `federation`, `federates_with`, plugin blocks or
//! telemetry's top level).

pub mod de;
pub mod hcl1;
mod node;
mod plugins;
mod section;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use node::{ConfigNode, ConfigObject, sanitize_body};
pub use plugins::{
    PluginConfig, PluginConstraint, PluginData, check_plugin_counts, find_plugin, parse_plugins,
    plugins_of_type,
};
pub use section::{Section, UnknownKeyCheck, UnknownKeys, parse_go_int};

/// Errors of configuration loading, worded as SPIRE words them where SPIRE has a message.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file does not exist (path made absolute).
    #[error("could not find config file {}: please use the -config flag", .0.display())]
    NotFound(PathBuf),
    /// The file could not be read.
    #[error("unable to read configuration at \"{path}\": {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid HCL (or JSON).
    #[error("unable to decode configuration at \"{path}\": {message}")]
    Decode {
        /// The path as given.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// Text that is not valid configuration syntax (no file involved).
    #[error("{0}")]
    Syntax(String),
    /// A value of the wrong type or out of range.
    #[error("invalid value for {key}: {message}")]
    Value {
        /// Dotted path of the key, e.g. `server.bind_port`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Keys SPIRE does not know, in sections where SPIRE rejects them. SPIRE's own message
    /// is just `unknown configuration detected` (with the details logged); ours names the
    /// sections and keys.
    #[error("unknown configuration detected: {}", DisplayUnknown(.0))]
    UnknownConfiguration(Vec<UnknownKeys>),
    /// The same plugin type and name declared twice.
    #[error("plugin \"{plugin_type}\"/\"{name}\" declared more than once")]
    DuplicatePlugin {
        /// Plugin type.
        plugin_type: String,
        /// Plugin name.
        name: String,
    },
    /// A malformed plugin declaration.
    #[error("failed to create plugin config for \"{plugin_type}\"/\"{name}\": {message}")]
    Plugin {
        /// Plugin type.
        plugin_type: String,
        /// Plugin name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Plugin data that does not decode into the plugin's configuration type.
    #[error("{0}")]
    PluginData(String),
    /// Too few or too many plugins of a type.
    #[error("plugin type \"{plugin_type}\" constraint not satisfied: {message}")]
    PluginCount {
        /// Plugin type.
        plugin_type: String,
        /// SPIRE's wording, e.g. `expected exactly 1 but got 0`.
        message: String,
    },
}

struct DisplayUnknown<'a>(&'a [UnknownKeys]);

impl fmt::Display for DisplayUnknown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{u}")?;
        }
        Ok(())
    }
}

/// Reads a configuration file, applying `-expandEnv` if asked.
pub fn read_config_file(path: &Path, expand: bool) -> Result<String, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?;
            Ok(if expand { expand_env(&text) } else { text })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConfigError::NotFound(
            std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        )),
        Err(e) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

/// Replaces `$VAR` and `${VAR}` with the process environment, exactly as SPIRE's
/// `config.ExpandEnv` (Go's `os.Expand` with `$$` meaning `$`): unset variables become
/// empty, `${}` and an unclosed `${` are dropped, a `$` followed by anything else is kept.
pub fn expand_env(s: &str) -> String {
    expand_env_with(s, |name| std::env::var(name).ok())
}

/// [`expand_env`] with a custom variable lookup.
pub fn expand_env_with<F>(s: &str, mut lookup: F) -> String
where
    F: FnMut(&str) -> Option<String>,
{
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0; // start of the pending literal run
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[i..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            match name {
                None if width > 0 => {} // bad syntax: eat the characters
                None => out.push('$'),  // `$` not followed by a name: keep it
                Some("$") => out.push('$'),
                Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    if i < s.len() {
        out.push_str(&s[i..]);
    }
    out
}

fn is_shell_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// Go's `getShellName`: the variable name after a `$`, and how many bytes it spans.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        for (i, &c) in b.iter().enumerate().skip(1) {
            if c == b'}' {
                if i == 1 {
                    return (None, 2); // bad syntax: eat "${}"
                }
                return (Some(&s[1..i]), i + 1);
            }
        }
        return (None, 1); // bad syntax: eat "${"
    }
    if is_shell_special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

/// Parses configuration text (HCL, or JSON when it starts with `{`) into an HCL body
/// holding HCL v1 meanings only (see [`sanitize_body`]).
pub fn parse_body(text: &str) -> Result<hcl::Body, ConfigError> {
    if text.trim_start().starts_with('{') {
        return json_to_body(text);
    }
    let mut body = match hcl::parse(text) {
        Ok(body) => body,
        Err(original) => {
            // HCL v1 forms HCL2 refuses: rewrite and retry; report the original error if
            // that does not help.
            let rewritten =
                hcl1::to_hcl2(text).map_err(|_| ConfigError::Syntax(original.to_string()))?;
            hcl::parse(&rewritten).map_err(|_| ConfigError::Syntax(original.to_string()))?
        }
    };
    sanitize_body(&mut body)?;
    Ok(body)
}

fn json_to_body(text: &str) -> Result<hcl::Body, ConfigError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    match ConfigNode::from_json(&value) {
        ConfigNode::Object(o) => Ok(o.to_body()),
        _ => Err(ConfigError::Syntax(
            "a JSON configuration must be an object".to_owned(),
        )),
    }
}

/// Parses configuration text into the normalized tree.
pub fn parse_str(text: &str) -> Result<ConfigObject, ConfigError> {
    if text.trim_start().starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        return match ConfigNode::from_json(&value) {
            ConfigNode::Object(o) => Ok(o),
            _ => Err(ConfigError::Syntax(
                "a JSON configuration must be an object".to_owned(),
            )),
        };
    }
    ConfigObject::from_body(&parse_body(text)?)
}

/// Reads, expands (with `expand_env`) and parses a configuration file into the normalized
/// tree; syntax errors name the file like SPIRE's `unable to decode configuration at`.
pub fn load_file(path: &Path, expand_env: bool) -> Result<ConfigObject, ConfigError> {
    let text = read_config_file(path, expand_env)?;
    parse_str(&text).map_err(|e| match e {
        ConfigError::Syntax(message) => ConfigError::Decode {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })
}

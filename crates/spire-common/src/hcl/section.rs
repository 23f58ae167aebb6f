//! Typed, HCL-v1-tolerant reading of one configuration section, with unknown-key tracking.
//!
//! A [`Section`] wraps a [`ConfigObject`] and remembers every key a reader asked for.
//! Whatever was never asked for is an unknown key ([`Section::unknown_keys`]), which is how
//! HCL v1's `unusedKeyPositions` works in SPIRE. [`UnknownKeyCheck`] collects those per
//! section and fails the way SPIRE does.
//!
//! Values are read with HCL v1's weak typing: a string field accepts a number (`"8081"` or
//! `8081`), an integer field accepts a numeric string (`bind_port = "8081"`, also `0x1f`
//! and the other prefixes of Go's `strconv.ParseInt(s, 0, 64)`), a bool field wants a bool.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;

use super::ConfigError;
use super::node::{ConfigNode, ConfigObject, merge_values};

/// A configuration section being read.
#[derive(Debug)]
pub struct Section {
    name: String,
    path: String,
    object: ConfigObject,
    used: RefCell<BTreeSet<String>>,
}

impl Section {
    /// A section named `name` (the name SPIRE reports unknown keys under, e.g. `server` or
    /// `top-level`) at dotted `path` (used in value errors, e.g. `server.ca_subject`).
    pub fn new(name: impl Into<String>, path: impl Into<String>, object: ConfigObject) -> Self {
        Section {
            name: name.into(),
            path: path.into(),
            object,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    /// The document root, reported as `top-level` like SPIRE does.
    pub fn root(object: ConfigObject) -> Self {
        Section::new("top-level", "", object)
    }

    /// The name unknown keys are reported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dotted path of this section in the document.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The underlying object.
    pub fn object(&self) -> &ConfigObject {
        &self.object
    }

    /// Whether the section has no keys at all.
    pub fn is_empty(&self) -> bool {
        self.object.is_empty()
    }

    /// Whether `key` is present (does not mark it as known).
    pub fn has(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    /// Marks keys as known without reading them.
    pub fn touch(&self, keys: &[&str]) {
        let mut used = self.used.borrow_mut();
        for k in keys {
            used.insert((*k).to_owned());
        }
    }

    /// The keys present but never read or touched, sorted.
    pub fn unknown_keys(&self) -> Vec<String> {
        let used = self.used.borrow();
        let mut keys: Vec<String> = self
            .object
            .keys()
            .into_iter()
            .filter(|k| !used.contains(*k))
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The dotted path of a key of this section.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn value_error(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::Value {
            key: self.key_path(key),
            message: message.to_string(),
        }
    }

    /// The raw value under `key` (merged as HCL v1 does), marking the key as known.
    pub fn raw(&self, key: &str) -> Option<ConfigNode> {
        self.used.borrow_mut().insert(key.to_owned());
        self.object.get(key)
    }

    /// A string value. Numbers are accepted and read as their text (HCL v1). `null` is
    /// treated as absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(key) {
            None | Some(ConfigNode::Null) => Ok(None),
            Some(ConfigNode::String(s)) => Ok(Some(s)),
            Some(ConfigNode::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => {
                Err(self.value_error(key, format!("expected a string, found {}", other.kind())))
            }
        }
    }

    /// A string value where the empty string means "not set" (Go's zero value).
    pub fn non_empty_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.string(key)?.filter(|s| !s.is_empty()))
    }

    /// An integer value. Numeric strings are accepted (HCL v1), with Go's base prefixes.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.raw(key) {
            None | Some(ConfigNode::Null) => Ok(None),
            Some(ConfigNode::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(self.value_error(key, format!("expected an integer, found {n}"))),
            },
            Some(ConfigNode::String(s)) => parse_go_int(&s)
                .map(Some)
                .map_err(|e| self.value_error(key, e)),
            Some(other) => {
                Err(self.value_error(key, format!("expected an integer, found {}", other.kind())))
            }
        }
    }

    /// An integer value converted to a narrower type, with a range check.
    pub fn int_as<T: TryFrom<i64>>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.int(key)? {
            None => Ok(None),
            Some(i) => T::try_from(i)
                .map(Some)
                .map_err(|_| self.value_error(key, format!("value {i} is out of range"))),
        }
    }

    /// A boolean value. The strings `"true"` and `"false"` are accepted too.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.raw(key) {
            None | Some(ConfigNode::Null) => Ok(None),
            Some(ConfigNode::Bool(b)) => Ok(Some(b)),
            Some(ConfigNode::String(s)) if s == "true" => Ok(Some(true)),
            Some(ConfigNode::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => {
                Err(self.value_error(key, format!("expected a bool, found {}", other.kind())))
            }
        }
    }

    /// A list of strings (numbers accepted as their text).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.raw(key) {
            None | Some(ConfigNode::Null) => Ok(None),
            Some(ConfigNode::List(items)) => items
                .into_iter()
                .map(|item| match item {
                    ConfigNode::String(s) => Ok(s),
                    ConfigNode::Number(n) => Ok(n.to_string()),
                    other => Err(self.value_error(
                        key,
                        format!(
                            "expected a list of strings, found {} in the list",
                            other.kind()
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.value_error(
                key,
                format!("expected a list of strings, found {}", other.kind()),
            )),
        }
    }

    /// A sub-section (`key { ... }` or `key = { ... }`); repeated blocks merge, as in HCL
    /// v1. `name` is what unknown keys inside it are reported under.
    pub fn section(&self, key: &str, name: &str) -> Result<Option<Section>, ConfigError> {
        let node = match self.raw(key) {
            None | Some(ConfigNode::Null) => return Ok(None),
            Some(node) => node,
        };
        let object = match node {
            ConfigNode::Object(o) => o,
            ConfigNode::List(items) if items.iter().all(|i| matches!(i, ConfigNode::Object(_))) => {
                let refs: Vec<&ConfigNode> = items.iter().collect();
                match merge_values(&refs) {
                    Some(ConfigNode::Object(o)) => o,
                    _ => ConfigObject::default(),
                }
            }
            other => {
                return Err(
                    self.value_error(key, format!("expected a block, found {}", other.kind()))
                );
            }
        };
        Ok(Some(Section::new(name, self.key_path(key), object)))
    }

    /// Every occurrence of a repeatable section: each `key { ... }` block, and each object
    /// of a `key = [ {...}, {...} ]` list, in order (e.g. telemetry's `DogStatsd`).
    pub fn section_list(&self, key: &str, name: &str) -> Result<Vec<Section>, ConfigError> {
        self.used.borrow_mut().insert(key.to_owned());
        let mut out = Vec::new();
        for node in self.object.get_all(key) {
            match node {
                ConfigNode::Object(o) => {
                    out.push(Section::new(name, self.key_path(key), o.clone()))
                }
                ConfigNode::List(items) => {
                    for item in items {
                        match item {
                            ConfigNode::Object(o) => {
                                out.push(Section::new(name, self.key_path(key), o.clone()))
                            }
                            other => {
                                return Err(self.value_error(
                                    key,
                                    format!(
                                        "expected a list of blocks, found {} in the list",
                                        other.kind()
                                    ),
                                ));
                            }
                        }
                    }
                }
                ConfigNode::Null => {}
                other => {
                    return Err(
                        self.value_error(key, format!("expected a block, found {}", other.kind()))
                    );
                }
            }
        }
        Ok(out)
    }

    /// A map of labelled sections: `key "label" { ... }` (repeatable), `key { label { ... } }`
    /// or `key = { label = { ... } }`, in document order. A label given twice merges.
    pub fn labeled(&self, key: &str, name: &str) -> Result<Vec<(String, Section)>, ConfigError> {
        self.used.borrow_mut().insert(key.to_owned());
        let mut labels: Vec<(String, Vec<ConfigNode>)> = Vec::new();
        let mut add = |label: &str, node: &ConfigNode| {
            if let Some((_, nodes)) = labels.iter_mut().find(|(l, _)| l == label) {
                nodes.push(node.clone());
            } else {
                labels.push((label.to_owned(), vec![node.clone()]));
            }
        };
        for node in self.object.get_all(key) {
            let objects: Vec<&ConfigObject> = match node {
                ConfigNode::Object(o) => vec![o],
                ConfigNode::List(items) => items.iter().filter_map(ConfigNode::as_object).collect(),
                ConfigNode::Null => vec![],
                other => {
                    return Err(self.value_error(
                        key,
                        format!("expected labelled blocks, found {}", other.kind()),
                    ));
                }
            };
            for o in objects {
                for (label, value) in o.entries() {
                    add(label, value);
                }
            }
        }
        let mut out = Vec::new();
        for (label, nodes) in labels {
            let refs: Vec<&ConfigNode> = nodes.iter().collect();
            let object = match merge_values(&refs) {
                Some(ConfigNode::Object(o)) => o,
                Some(other) => {
                    return Err(self.value_error(
                        &format!("{key}.{label}"),
                        format!("expected a block, found {}", other.kind()),
                    ));
                }
                None => ConfigObject::default(),
            };
            let path = format!("{}.{label}", self.key_path(key));
            out.push((label, Section::new(name, path, object)));
        }
        Ok(out)
    }
}

/// Parses an integer as Go's `strconv.ParseInt(s, 0, 64)` does: optional sign, then
/// decimal, `0x`/`0X` hex, `0o`/`0O` or leading-`0` octal, `0b`/`0B` binary; underscores
/// allowed between digits only with a base prefix.
pub fn parse_go_int(s: &str) -> Result<i64, String> {
    let err = || format!("strconv.ParseInt: parsing \"{s}\": invalid syntax");
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return Err(err());
    }
    let lower = rest.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_')
        && (!prefixed || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__"))
    {
        return Err(err());
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(err());
    }
    let magnitude = u64::from_str_radix(&digits, radix).map_err(|_| err())?;
    if neg {
        if magnitude > i64::MAX as u64 + 1 {
            return Err(format!(
                "strconv.ParseInt: parsing \"{s}\": value out of range"
            ));
        }
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude)
            .map_err(|_| format!("strconv.ParseInt: parsing \"{s}\": value out of range"))
    }
}

/// Unknown keys found in one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKeys {
    /// The section, named as SPIRE names it (`top-level`, `server`, `agent`, `ca_subject`,
    /// `ratelimit`, `bundle endpoint`, `health check`, `Prometheus`, ...).
    pub section: String,
    /// The unknown keys, sorted.
    pub keys: Vec<String>,
}

impl fmt::Display for UnknownKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "section \"{}\": keys [{}]",
            self.section,
            self.keys.join(", ")
        )
    }
}

/// Collects unknown keys over the sections SPIRE checks, then fails like SPIRE: one report
/// per section, and the error `unknown configuration detected`.
#[derive(Debug, Default)]
pub struct UnknownKeyCheck {
    found: Vec<UnknownKeys>,
}

impl UnknownKeyCheck {
    /// A check with nothing found yet.
    pub fn new() -> Self {
        UnknownKeyCheck::default()
    }

    /// Records the unknown keys of a section that has been completely read.
    pub fn check(&mut self, section: &Section) {
        let keys = section.unknown_keys();
        if !keys.is_empty() {
            self.found.push(UnknownKeys {
                section: section.name().to_owned(),
                keys,
            });
        }
    }

    /// Records a report found elsewhere.
    pub fn push(&mut self, report: UnknownKeys) {
        if !report.keys.is_empty() {
            self.found.push(report);
        }
    }

    /// Appends everything another check found, after what this one found.
    pub fn extend(&mut self, other: UnknownKeyCheck) {
        self.found.extend(other.found);
    }

    /// What has been found so far.
    pub fn reports(&self) -> &[UnknownKeys] {
        &self.found
    }

    /// `Err(ConfigError::UnknownConfiguration)` if any section had unknown keys.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::UnknownConfiguration(self.found))
        }
    }
}

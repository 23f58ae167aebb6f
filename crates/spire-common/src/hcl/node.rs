//! A normalized view of an HCL (or JSON) configuration document.
//!
//! HCL v1, which SPIRE uses, does not distinguish `name { ... }` from `name = { ... }`,
//! nor `type "label" { ... }` from `type { label { ... } }` or `type = { label = { ... } }`:
//! they all decode to the same object. hcl-rs parses HCL2, where blocks and attributes
//! differ. [`ConfigObject`] folds both into one tree of ordered `(key, value)` entries,
//! keeping repeated keys (repeated blocks) in order, so that readers can apply HCL v1's
//! rules: a repeated block merges into one object, a labelled block becomes a map keyed by
//! label.

use hcl::expr::{HeredocStripMode, TemplateExpr};
use hcl::{Attribute, Block, Body, Expression, Identifier, Number, ObjectKey, Structure};

use super::ConfigError;

/// One value of the configuration tree.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigNode {
    /// `null` (HCL2 only; never produced by HCL v1 files).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer or float literal.
    Number(Number),
    /// A string (quoted, heredoc, or a JSON string), taken literally: `${...}` is not
    /// interpolated, as in HCL v1.
    String(String),
    /// A list `[ ... ]`.
    List(Vec<ConfigNode>),
    /// A block body or an object.
    Object(ConfigObject),
}

impl ConfigNode {
    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigNode::Null => "null",
            ConfigNode::Bool(_) => "a bool",
            ConfigNode::Number(_) => "a number",
            ConfigNode::String(_) => "a string",
            ConfigNode::List(_) => "a list",
            ConfigNode::Object(_) => "a block",
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&ConfigObject> {
        match self {
            ConfigNode::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Converts to a JSON value, following HCL v1's decoding: repeated keys whose values
    /// are all objects merge (deeply), otherwise the last one wins.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ConfigNode::Null => serde_json::Value::Null,
            ConfigNode::Bool(b) => serde_json::Value::Bool(*b),
            ConfigNode::Number(n) => number_to_json(n),
            ConfigNode::String(s) => serde_json::Value::String(s.clone()),
            ConfigNode::List(items) => {
                serde_json::Value::Array(items.iter().map(ConfigNode::to_json).collect())
            }
            ConfigNode::Object(o) => o.to_json(),
        }
    }

    /// Converts to an HCL expression (objects become object expressions).
    pub fn to_expression(&self) -> Expression {
        match self {
            ConfigNode::Null => Expression::Null,
            ConfigNode::Bool(b) => Expression::Bool(*b),
            ConfigNode::Number(n) => Expression::Number(*n),
            ConfigNode::String(s) => Expression::String(s.clone()),
            ConfigNode::List(items) => {
                Expression::Array(items.iter().map(ConfigNode::to_expression).collect())
            }
            ConfigNode::Object(o) => {
                let mut map = hcl::Object::new();
                for (k, v) in o.merged_entries() {
                    let key = match Identifier::new(k.as_str()) {
                        Ok(id) => ObjectKey::Identifier(id),
                        Err(_) => ObjectKey::Expression(Expression::String(k.clone())),
                    };
                    map.insert(key, v.to_expression());
                }
                Expression::Object(map)
            }
        }
    }

    /// Builds a node from a JSON value (for JSON configuration files).
    pub fn from_json(value: &serde_json::Value) -> ConfigNode {
        match value {
            serde_json::Value::Null => ConfigNode::Null,
            serde_json::Value::Bool(b) => ConfigNode::Bool(*b),
            serde_json::Value::Number(n) => ConfigNode::Number(json_number(n)),
            serde_json::Value::String(s) => ConfigNode::String(s.clone()),
            serde_json::Value::Array(items) => {
                ConfigNode::List(items.iter().map(ConfigNode::from_json).collect())
            }
            serde_json::Value::Object(map) => ConfigNode::Object(ConfigObject {
                entries: map
                    .iter()
                    .map(|(k, v)| (k.clone(), ConfigNode::from_json(v)))
                    .collect(),
                source: None,
            }),
        }
    }
}

fn json_number(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::from(i)
    } else if let Some(u) = n.as_u64() {
        Number::from(u)
    } else {
        n.as_f64()
            .and_then(Number::from_f64)
            .unwrap_or(Number::from(0))
    }
}

fn number_to_json(n: &Number) -> serde_json::Value {
    if let Some(i) = n.as_i64() {
        serde_json::Value::from(i)
    } else if let Some(u) = n.as_u64() {
        serde_json::Value::from(u)
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// A block body or object: ordered entries, repeated keys kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigObject {
    entries: Vec<(String, ConfigNode)>,
    /// The HCL body this object was read from, when it was a block body, kept so that
    /// `plugin_data { ... }` can be handed on exactly as written.
    source: Option<Body>,
}

impl ConfigObject {
    /// An object with these entries.
    pub fn from_entries(entries: Vec<(String, ConfigNode)>) -> Self {
        ConfigObject {
            entries,
            source: None,
        }
    }

    /// The entries, in document order; a key may appear more than once.
    pub fn entries(&self) -> &[(String, ConfigNode)] {
        &self.entries
    }

    /// Whether the object has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All values under `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a ConfigNode> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value under `key` as HCL v1 decodes it: repeated objects merge, otherwise the
    /// last value wins.
    pub fn get(&self, key: &str) -> Option<ConfigNode> {
        let values: Vec<&ConfigNode> = self.get_all(key).collect();
        merge_values(&values)
    }

    /// Whether `key` appears at all.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The distinct keys, in first-appearance order.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in &self.entries {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        keys
    }

    /// The HCL body this object was read from, if it was a block body.
    pub fn source_body(&self) -> Option<&Body> {
        self.source.as_ref()
    }

    /// One entry per distinct key, merged as [`ConfigObject::get`] does.
    pub fn merged_entries(&self) -> Vec<(String, ConfigNode)> {
        self.keys()
            .into_iter()
            .filter_map(|k| self.get(k).map(|v| (k.to_owned(), v)))
            .collect()
    }

    /// Converts to a JSON object (see [`ConfigNode::to_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (k, v) in self.merged_entries() {
            map.insert(k, v.to_json());
        }
        serde_json::Value::Object(map)
    }

    /// The object as an HCL body: the original block body when there is one, otherwise one
    /// attribute per key.
    pub fn to_body(&self) -> Body {
        if let Some(body) = &self.source {
            return body.clone();
        }
        let mut structures = Vec::new();
        for (k, v) in self.merged_entries() {
            let key = Identifier::new(k.as_str()).unwrap_or_else(|_| Identifier::unchecked(k));
            structures.push(Structure::Attribute(Attribute::new(key, v.to_expression())));
        }
        Body(structures)
    }

    /// Reads a parsed HCL body (already passed through [`sanitize_body`]).
    pub fn from_body(body: &Body) -> Result<Self, ConfigError> {
        Self::from_body_at(body, "")
    }

    fn from_body_at(body: &Body, path: &str) -> Result<Self, ConfigError> {
        let mut entries = Vec::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key().to_owned();
                    let node = node_from_expr(attr.expr(), &join(path, &key))?;
                    entries.push((key, node));
                }
                Structure::Block(block) => {
                    let key = block.identifier.as_str().to_owned();
                    let labels: Vec<String> =
                        block.labels.iter().map(|l| l.as_str().to_owned()).collect();
                    let node = block_node(&labels, block, &join(path, &key))?;
                    entries.push((key, node));
                }
            }
        }
        Ok(ConfigObject {
            entries,
            source: Some(body.clone()),
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn block_node(labels: &[String], block: &Block, path: &str) -> Result<ConfigNode, ConfigError> {
    match labels.split_first() {
        None => Ok(ConfigNode::Object(ConfigObject::from_body_at(
            &block.body,
            path,
        )?)),
        Some((first, rest)) => {
            let inner = block_node(rest, block, &join(path, first))?;
            Ok(ConfigNode::Object(ConfigObject {
                entries: vec![(first.clone(), inner)],
                source: None,
            }))
        }
    }
}

/// Merges values found under one key following HCL v1: if they are all objects, one
/// object with all their entries; otherwise the last value.
pub(crate) fn merge_values(values: &[&ConfigNode]) -> Option<ConfigNode> {
    match values {
        [] => None,
        [one] => Some((*one).clone()),
        many => {
            if many.iter().all(|v| matches!(v, ConfigNode::Object(_))) {
                let mut entries = Vec::new();
                for v in many {
                    if let ConfigNode::Object(o) = v {
                        entries.extend(o.entries.iter().cloned());
                    }
                }
                Some(ConfigNode::Object(ConfigObject {
                    entries,
                    source: None,
                }))
            } else {
                many.last().map(|v| (*v).clone())
            }
        }
    }
}

fn node_from_expr(expr: &Expression, path: &str) -> Result<ConfigNode, ConfigError> {
    Ok(match expr {
        Expression::Null => ConfigNode::Null,
        Expression::Bool(b) => ConfigNode::Bool(*b),
        Expression::Number(n) => ConfigNode::Number(*n),
        Expression::String(s) => ConfigNode::String(s.clone()),
        Expression::TemplateExpr(t) => ConfigNode::String(template_literal(t)),
        Expression::Parenthesis(inner) => node_from_expr(inner, path)?,
        Expression::Array(items) => ConfigNode::List(
            items
                .iter()
                .map(|e| node_from_expr(e, path))
                .collect::<Result<_, _>>()?,
        ),
        Expression::Object(map) => {
            let mut entries = Vec::new();
            for (k, v) in map.iter() {
                let key = object_key_string(k, path)?;
                let node = node_from_expr(v, &join(path, &key))?;
                entries.push((key, node));
            }
            ConfigNode::Object(ConfigObject {
                entries,
                source: None,
            })
        }
        other => return Err(unsupported(other, path)),
    })
}

fn object_key_string(key: &ObjectKey, path: &str) -> Result<String, ConfigError> {
    match key {
        ObjectKey::Identifier(id) => Ok(id.as_str().to_owned()),
        ObjectKey::Expression(Expression::String(s)) => Ok(s.clone()),
        ObjectKey::Expression(Expression::TemplateExpr(t)) => Ok(template_literal(t)),
        ObjectKey::Expression(Expression::Variable(v)) => Ok(v.as_str().to_owned()),
        ObjectKey::Expression(Expression::Number(n)) => Ok(n.to_string()),
        ObjectKey::Expression(Expression::Bool(b)) => Ok(b.to_string()),
        ObjectKey::Expression(other) => Err(unsupported(other, path)),
        _ => Err(ConfigError::Syntax(format!(
            "{path}: unsupported object key"
        ))),
    }
}

fn unsupported(expr: &Expression, path: &str) -> ConfigError {
    let what = match expr {
        Expression::Variable(v) => format!("bare identifier `{}`", v.as_str()),
        Expression::Traversal(_) => "attribute or index traversal".to_owned(),
        Expression::FuncCall(_) => "function call".to_owned(),
        Expression::Conditional(_) => "conditional expression".to_owned(),
        Expression::Operation(_) => "operator expression".to_owned(),
        Expression::ForExpr(_) => "for expression".to_owned(),
        _ => "expression".to_owned(),
    };
    ConfigError::Syntax(format!(
        "{path}: unsupported {what}: SPIRE configuration files are HCL v1, where values are \
         literals (strings, numbers, bools, lists and objects)"
    ))
}

/// The literal text of a quoted string or heredoc, without template evaluation: HCL v1
/// has no interpolation at decode time, so `"${HOME}"` is the 7 characters `${HOME}`.
fn template_literal(t: &TemplateExpr) -> String {
    match t {
        TemplateExpr::QuotedString(s) => s.clone(),
        TemplateExpr::Heredoc(h) => match h.strip {
            HeredocStripMode::None => h.template.clone(),
            HeredocStripMode::Indent => dedent(&h.template),
        },
    }
}

/// Removes the indentation common to all non-blank lines (for `<<-` heredocs). Idempotent.
fn dedent(s: &str) -> String {
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    if indent == 0 {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let strip = line
            .char_indices()
            .take_while(|(i, c)| *i < indent && (*c == ' ' || *c == '\t'))
            .count();
        out.push_str(&line[strip..]);
    }
    out
}

/// Rewrites a parsed HCL body in place so that it holds HCL v1 meanings only: quoted
/// strings and heredocs containing `${...}` become plain strings (no interpolation), and
/// parentheses are dropped. Fails on HCL2-only expressions (variables, function calls,
/// operators, conditionals, `for`).
pub fn sanitize_body(body: &mut Body) -> Result<(), ConfigError> {
    sanitize_body_at(body, "")
}

fn sanitize_body_at(body: &mut Body, path: &str) -> Result<(), ConfigError> {
    for structure in body.iter_mut() {
        match structure {
            Structure::Attribute(attr) => {
                let p = join(path, attr.key());
                sanitize_expr(&mut attr.expr, &p)?;
            }
            Structure::Block(block) => {
                let p = join(path, block.identifier.as_str());
                sanitize_body_at(&mut block.body, &p)?;
            }
        }
    }
    Ok(())
}

fn sanitize_expr(expr: &mut Expression, path: &str) -> Result<(), ConfigError> {
    match expr {
        Expression::TemplateExpr(t) => {
            *expr = Expression::String(template_literal(t));
        }
        Expression::Parenthesis(inner) => {
            let mut inner = (**inner).clone();
            sanitize_expr(&mut inner, path)?;
            *expr = inner;
        }
        Expression::Array(items) => {
            for item in items.iter_mut() {
                sanitize_expr(item, path)?;
            }
        }
        Expression::Object(map) => {
            let mut rebuilt = hcl::Object::new();
            for (k, v) in map.iter() {
                let key_str = object_key_string(k, path)?;
                let key = match k {
                    ObjectKey::Identifier(id) => ObjectKey::Identifier(id.clone()),
                    ObjectKey::Expression(Expression::Variable(v)) => {
                        ObjectKey::Identifier(v.clone().into_inner())
                    }
                    _ => ObjectKey::Expression(Expression::String(key_str.clone())),
                };
                let mut value = v.clone();
                sanitize_expr(&mut value, &join(path, &key_str))?;
                rebuilt.insert(key, value);
            }
            *map = rebuilt;
        }
        Expression::Null | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => {}
        other => return Err(unsupported(other, path)),
    }
    Ok(())
}

//! Agent path templates (`agent_path_template`): the subset of Go's `text/template`
//! that SPIRE's documented templates use — literal text and `{{ .Field.Path }}`
//! actions. Anything else (pipelines, functions, `if`, `range`, variables) is refused
//! when the template is parsed, rather than rendered differently from SPIRE. A missing
//! field is an error when rendering, as SPIRE runs templates with `missingkey=error`.

use std::collections::BTreeMap;

/// A value in template data: a string or a map of named values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A leaf value.
    Str(String),
    /// A struct or map (`.Subject`, `.URISanSelectors`).
    Map(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Vec<String>),
}

/// A parsed agent path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    parts: Vec<Part>,
}

impl PathTemplate {
    /// Parses a template, refusing constructs outside the supported subset.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template {source:?}: unclosed action"))?;
            let action = after[..end].trim();
            let path = action
                .strip_prefix('.')
                .filter(|p| {
                    !p.is_empty()
                        && p.split('.').all(|s| {
                            !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                        })
                })
                .ok_or_else(|| {
                    format!(
                        "template {source:?}: unsupported action {{{{ {action} }}}}: spire-rs supports field references such as {{{{ .Fingerprint }}}}"
                    )
                })?;
            parts.push(Part::Field(path.split('.').map(str::to_owned).collect()));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err(format!("template {source:?}: unexpected \"}}}}\""));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(PathTemplate {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template over `data`.
    pub fn render(&self, data: &BTreeMap<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(path) => {
                    let mut map = data;
                    let mut value = None;
                    for (i, name) in path.iter().enumerate() {
                        let missing = || {
                            format!(
                                "template: agent-path: can't evaluate field .{}",
                                path[..=i].join(".")
                            )
                        };
                        match map.get(name) {
                            Some(Value::Map(inner)) if i + 1 < path.len() => map = inner,
                            Some(Value::Str(s)) if i + 1 == path.len() => value = Some(s),
                            _ => return Err(missing()),
                        }
                    }
                    if let Some(value) = value {
                        out.push_str(value);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Value> {
        let mut subject = BTreeMap::new();
        subject.insert("CommonName".to_owned(), Value::Str("node1".into()));
        let mut data = BTreeMap::new();
        data.insert("PluginName".to_owned(), Value::Str("x509pop".into()));
        data.insert("Fingerprint".to_owned(), Value::Str("abcd".into()));
        data.insert("Subject".to_owned(), Value::Map(subject));
        data
    }

    #[test]
    fn renders_fields_and_text() {
        let t = PathTemplate::parse("{{ .PluginName }}/{{ .Fingerprint }}").expect("parse");
        assert_eq!(t.render(&data()).expect("render"), "x509pop/abcd");
        let t = PathTemplate::parse("/cn/{{.Subject.CommonName}}").expect("parse");
        assert_eq!(t.render(&data()).expect("render"), "/cn/node1");
    }

    #[test]
    fn refuses_unsupported_and_missing() {
        assert!(PathTemplate::parse("{{ if .X }}a{{ end }}").is_err());
        assert!(PathTemplate::parse("{{ .A | lower }}").is_err());
        assert!(PathTemplate::parse("{{ .A").is_err());
        let t = PathTemplate::parse("/{{ .Foo }}").expect("parse");
        assert!(t.render(&data()).is_err());
        let t = PathTemplate::parse("/{{ .Subject }}").expect("parse");
        assert!(t.render(&data()).is_err());
    }
}

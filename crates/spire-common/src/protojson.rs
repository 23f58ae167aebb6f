//! SPIRE's `-output json`: protobuf messages rendered exactly as SPIRE's `cliprinter`
//! prints them.
//!
//! SPIRE marshals each response with Go's `protojson` (`UseProtoNames`,
//! `EmitUnpopulated`), then decodes the result into a Go map, drops every `null`, and
//! re-encodes it with `encoding/json`. The observable result, reproduced here:
//!
//! - proto field names (`spiffe_id`, not `spiffeId`);
//! - unpopulated scalars, repeated fields and maps are emitted (`""`, `0`, `false`,
//!   `[]`, `{}`); unset singular message fields and unset `oneof`/`optional` members
//!   are omitted;
//! - 64-bit integers as decimal strings, bytes as padded standard base64, enums by name;
//! - the well-known types (`google.protobuf.*`) in their special JSON forms;
//! - object keys sorted, one line, and `<`, `>`, `&`, U+2028, U+2029 escaped as
//!   `\u003c`... as Go's `encoding/json` does.
//!
//! Printing a rendered value with `println!` adds the trailing newline Go's
//! `json.Encoder` writes.

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MapKey, ReflectMessage as _, SerializeOptions, Value,
};
use serde_json::Value as Json;

/// Why a message could not be rendered as JSON.
#[derive(Debug, thiserror::Error)]
pub enum ProtoJsonError {
    /// The embedded descriptor set did not decode (a build defect).
    #[error("invalid embedded descriptor set: {0}")]
    Descriptors(String),
    /// The message type is not in the embedded descriptor set.
    #[error("unknown message type {0}")]
    UnknownMessage(String),
    /// The message bytes did not decode against their descriptor.
    #[error("cannot decode {name}: {source}")]
    Decode {
        /// Full name of the message type.
        name: String,
        /// The decode failure.
        source: prost::DecodeError,
    },
    /// A well-known type could not be serialized.
    #[error("cannot serialize {name}: {source}")]
    Serialize {
        /// Full name of the message type.
        name: String,
        /// The serialization failure.
        source: serde_json::Error,
    },
}

/// The descriptor pool of every message in `spire-proto`, decoded once.
fn pool() -> Result<&'static DescriptorPool, ProtoJsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(spire_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| ProtoJsonError::Descriptors(e.clone()))
}

/// Renders `msg` as one line of SPIRE-compatible JSON (no trailing newline).
pub fn to_json<M: prost::Message + prost::Name>(msg: &M) -> Result<String, ProtoJsonError> {
    Ok(render(&to_value(msg)?))
}

/// Converts `msg` into the JSON value SPIRE prints for it (before rendering).
///
/// Several values can be combined, e.g. into an array, and then [`render`]ed: SPIRE
/// prints `[a, b]` when a command outputs two messages.
pub fn to_value<M: prost::Message + prost::Name>(msg: &M) -> Result<Json, ProtoJsonError> {
    let name = M::full_name();
    let desc = pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| ProtoJsonError::UnknownMessage(name.clone()))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|source| ProtoJsonError::Decode { name, source })?;
    let mut value = message_value(&dynamic)?;
    remove_nulls(&mut value);
    Ok(value)
}

/// Converts one decoded message; the well-known types use their special forms.
fn message_value(msg: &DynamicMessage) -> Result<Json, ProtoJsonError> {
    let desc = msg.descriptor();
    if desc.full_name().starts_with("google.protobuf.") {
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(false);
        return msg
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|source| ProtoJsonError::Serialize {
                name: desc.full_name().to_owned(),
                source,
            });
    }
    let mut object = serde_json::Map::new();
    for field in desc.fields() {
        let has = msg.has_field(&field);
        // Go's EmitUnpopulated skips unset oneof members (proto3 `optional` included)
        // and emits unset singular messages as null, which SPIRE then removes.
        let presence = field.containing_oneof().is_some()
            || (!field.is_list() && !field.is_map() && matches!(field.kind(), Kind::Message(_)));
        if presence && !has {
            continue;
        }
        let value = msg.get_field(&field);
        object.insert(field.name().to_owned(), field_value(&value, &field.kind())?);
    }
    Ok(Json::Object(object))
}

/// Converts one field value of protobuf kind `kind`.
fn field_value(value: &Value, kind: &Kind) -> Result<Json, ProtoJsonError> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::I64(n) => Json::String(n.to_string()),
        Value::U64(n) => Json::String(n.to_string()),
        Value::F32(f) => float_value(f64::from(*f)),
        Value::F64(f) => float_value(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => Json::String(v.name().to_owned()),
                None => Json::from(*n),
            },
            _ => Json::from(*n),
        },
        Value::Message(m) => message_value(m)?,
        Value::List(items) => Json::Array(
            items
                .iter()
                .map(|item| field_value(item, kind))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut object = serde_json::Map::new();
            for (key, value) in entries {
                object.insert(map_key(key), field_value(value, &value_kind)?);
            }
            Json::Object(object)
        }
    })
}

/// A map key as the JSON object key protojson uses.
fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// A float as protojson writes it: non-finite values are strings.
fn float_value(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".into())
    } else if f == f64::INFINITY {
        Json::String("Infinity".into())
    } else if f == f64::NEG_INFINITY {
        Json::String("-Infinity".into())
    } else {
        serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

/// Drops `null` object members and array elements, recursively, as SPIRE does.
fn remove_nulls(value: &mut Json) {
    match value {
        Json::Object(object) => {
            object.retain(|_, v| !v.is_null());
            object.values_mut().for_each(remove_nulls);
        }
        Json::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(remove_nulls);
        }
        _ => {}
    }
}

/// Renders `value` as Go's `encoding/json` would: one line, object keys sorted,
/// HTML-sensitive characters escaped. No trailing newline.
pub fn render(value: &Json) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => write_number(out, n),
        Json::String(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Json::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(v) = object.get(key) {
                    write_value(out, v);
                }
            }
            out.push('}');
        }
    }
}

/// Numbers went through Go's `float64`: integral values print without a fraction.
fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < 1e21 {
            let _ = write!(out, "{f:.0}");
        } else {
            let _ = write!(out, "{f}");
        }
    }
}

/// A JSON string with Go's escaping (HTML-safe, `\u00XX` for other controls).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use spire_proto::spire::api::server::agent::v1::{CountAgentsResponse, ListAgentsResponse};
    use spire_proto::spire::api::server::bundle::v1::{
        BatchDeleteFederatedBundleRequest, batch_delete_federated_bundle_request,
    };
    use spire_proto::spire::api::types::{Agent, JoinToken, Spiffeid, Status};
    use spire_proto::workload::{JwtBundlesResponse, X509svid, X509svidResponse};

    fn parse(s: &str) -> Json {
        serde_json::from_str(s).unwrap_or(Json::Null)
    }

    #[test]
    fn int64_as_string_and_proto_names() -> Result<(), ProtoJsonError> {
        let json = to_json(&JoinToken {
            value: "abc".into(),
            expires_at: 1_700_000_000,
        })?;
        assert_eq!(json, r#"{"expires_at":"1700000000","value":"abc"}"#);
        Ok(())
    }

    #[test]
    fn int32_as_number() -> Result<(), ProtoJsonError> {
        assert_eq!(
            to_json(&CountAgentsResponse { count: 3 })?,
            r#"{"count":3}"#
        );
        Ok(())
    }

    #[test]
    fn unpopulated_fields_emitted_and_messages_omitted() -> Result<(), ProtoJsonError> {
        let json = parse(&to_json(&Agent::default())?);
        assert_eq!(json["x509svid_serial_number"], "");
        assert_eq!(json["x509svid_expires_at"], "0");
        assert_eq!(json["banned"], false);
        assert_eq!(json["selectors"], Json::Array(vec![]));
        // Unset singular message fields are omitted (null removed).
        assert!(json.get("id").is_none());
        Ok(())
    }

    #[test]
    fn nested_messages() -> Result<(), ProtoJsonError> {
        let agent = Agent {
            id: Some(Spiffeid {
                trust_domain: "example.org".into(),
                path: "/a".into(),
            }),
            ..Default::default()
        };
        let json = parse(&to_json(&ListAgentsResponse {
            agents: vec![agent],
            next_page_token: String::new(),
        })?);
        assert_eq!(json["agents"][0]["id"]["trust_domain"], "example.org");
        assert_eq!(json["agents"][0]["id"]["path"], "/a");
        assert_eq!(json["next_page_token"], "");
        Ok(())
    }

    #[test]
    fn bytes_base64_and_maps() -> Result<(), ProtoJsonError> {
        let mut bundles = std::collections::HashMap::new();
        bundles.insert("spiffe://b.org".to_owned(), vec![0xfb, 0xff]);
        let json = to_json(&JwtBundlesResponse { bundles })?;
        assert_eq!(json, r#"{"bundles":{"spiffe://b.org":"+/8="}}"#);

        let resp = X509svidResponse {
            svids: vec![X509svid {
                spiffe_id: "spiffe://a.org/w".into(),
                x509_svid: vec![1, 2, 3],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = parse(&to_json(&resp)?);
        assert_eq!(json["svids"][0]["x509_svid"], "AQID");
        assert_eq!(json["svids"][0]["hint"], "");
        assert_eq!(json["crl"], Json::Array(vec![]));
        assert_eq!(json["federated_bundles"], Json::Object(Default::default()));
        Ok(())
    }

    #[test]
    fn enums_by_name() -> Result<(), ProtoJsonError> {
        let req = BatchDeleteFederatedBundleRequest {
            trust_domains: vec![],
            mode: batch_delete_federated_bundle_request::Mode::Dissociate as i32,
        };
        let json = parse(&to_json(&req)?);
        assert_eq!(json["mode"], "DISSOCIATE");
        Ok(())
    }

    #[test]
    fn keys_sorted_and_html_escaped() -> Result<(), ProtoJsonError> {
        let json = to_json(&Status {
            code: 0,
            message: "a<b>&\u{1}".into(),
        })?;
        assert_eq!(json, r#"{"code":0,"message":"a\u003cb\u003e\u0026\u0001"}"#);
        Ok(())
    }

    #[test]
    fn render_arrays() {
        let value = Json::Array(vec![parse(r#"{"b":1,"a":2}"#), parse("{}")]);
        assert_eq!(render(&value), r#"[{"a":2,"b":1},{}]"#);
    }
}

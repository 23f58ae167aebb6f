//! The `-data <file|->` document of `entry create` and `entry update`: SPIRE's
//! `{"entries": [...]}` with each entry a `spire.common.RegistrationEntry` in Go's
//! `encoding/json` form (snake_case field names, `entryExpiry`, selectors as
//! `{"type", "value"}`).
//!
//! As Go's decoder, field names match case-insensitively and unknown fields are ignored.
//! As SPIRE's `RegistrationEntryToProto`, the SPIFFE ID and parent ID must parse (any
//! trust domain: the server decides membership) and `federates_with` accepts trust domain
//! names or `spiffe://` trust domain IDs.

use serde::Deserialize;
use spiffe_core::{SpiffeId, TrustDomain};
use spire_common::convert::id_to_proto;
use spire_proto::spire::api::types::{Entry, Selector};

use super::CliError;

/// The whole document.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntriesDoc {
    entries: Option<Vec<Option<FileEntry>>>,
}

/// One `spire.common.RegistrationEntry`, keys already lowercased.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileEntry {
    selectors: Option<Vec<Option<FileSelector>>>,
    parent_id: String,
    spiffe_id: String,
    x509_svid_ttl: i32,
    federates_with: Option<Vec<String>>,
    entry_id: String,
    admin: bool,
    downstream: bool,
    entryexpiry: i64,
    dns_names: Option<Vec<String>>,
    revision_number: i64,
    store_svid: bool,
    jwt_svid_ttl: i32,
    hint: String,
    created_at: i64,
}

/// One `spire.common.Selector`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileSelector {
    r#type: String,
    value: String,
}

/// Parses a `-data` document into the entries to send, in file order.
pub(crate) fn parse_entries(data: &[u8]) -> Result<Vec<Entry>, CliError> {
    let mut value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| CliError(format!("failed to parse entries JSON: {e}")))?;
    lowercase_keys(&mut value);
    let doc: EntriesDoc = serde_json::from_value(value)
        .map_err(|e| CliError(format!("failed to parse entries JSON: {e}")))?;
    doc.entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| entry.ok_or_else(|| CliError("missing registration entry".into())))
        .map(|entry| entry.and_then(to_proto))
        .collect()
}

/// Go's `encoding/json` matches object keys to field names case-insensitively; every
/// field name of the document is lowercase once `entryExpiry` is, so lowercasing the keys
/// gives the same matching. On duplicate keys (in any case) the last one wins, as in Go.
fn lowercase_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (key, mut v) in old {
                lowercase_keys(&mut v);
                map.insert(key.to_lowercase(), v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(lowercase_keys),
        _ => {}
    }
}

fn to_proto(e: FileEntry) -> Result<Entry, CliError> {
    let spiffe_id = SpiffeId::parse(&e.spiffe_id)
        .map_err(|err| CliError(format!("invalid SPIFFE ID {:?}: {err}", e.spiffe_id)))?;
    let parent_id = SpiffeId::parse(&e.parent_id)
        .map_err(|err| CliError(format!("invalid parent ID {:?}: {err}", e.parent_id)))?;
    let federates_with = e
        .federates_with
        .unwrap_or_default()
        .iter()
        .map(|td| {
            TrustDomain::parse(td)
                .map(|td| td.name().to_owned())
                .map_err(|err| CliError(format!("invalid federated trust domain {td:?}: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let selectors = e
        .selectors
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|s| Selector {
            r#type: s.r#type,
            value: s.value,
        })
        .collect();
    Ok(Entry {
        id: e.entry_id,
        spiffe_id: Some(id_to_proto(&spiffe_id)),
        parent_id: Some(id_to_proto(&parent_id)),
        selectors,
        x509_svid_ttl: e.x509_svid_ttl,
        federates_with,
        admin: e.admin,
        downstream: e.downstream,
        expires_at: e.entryexpiry,
        dns_names: e.dns_names.unwrap_or_default(),
        revision_number: e.revision_number,
        store_svid: e.store_svid,
        jwt_svid_ttl: e.jwt_svid_ttl,
        hint: e.hint,
        created_at: e.created_at,
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_spire_registration_entries_json() {
        let doc = br#"{
            "entries": [
                {
                    "selectors": [{"type": "unix", "value": "uid:1111"}],
                    "spiffe_id": "spiffe://example.org/Blog",
                    "parent_id": "spiffe://example.org/spire/agent/join_token/TokenBlog",
                    "x509_svid_ttl": 200,
                    "jwt_svid_ttl": 30,
                    "admin": true,
                    "entryExpiry": 1552410266,
                    "dns_names": ["a.example.org"],
                    "federates_with": ["spiffe://domain1.test", "domain2.test"],
                    "hint": "blog",
                    "unknown_field": 1
                },
                {
                    "SELECTORS": [{"Type": "unix", "VALUE": "uid:1112"}],
                    "Spiffe_Id": "spiffe://example.org/Database",
                    "parent_id": "spiffe://example.org/host",
                    "downstream": true,
                    "store_svid": true,
                    "entry_id": "my-id"
                }
            ]
        }"#;
        let entries = parse_entries(doc).unwrap();
        assert_eq!(entries.len(), 2);
        let blog = &entries[0];
        assert_eq!(blog.spiffe_id.as_ref().unwrap().path, "/Blog");
        assert_eq!(blog.selectors[0].value, "uid:1111");
        assert_eq!(blog.x509_svid_ttl, 200);
        assert_eq!(blog.jwt_svid_ttl, 30);
        assert!(blog.admin);
        assert_eq!(blog.expires_at, 1552410266);
        assert_eq!(blog.dns_names, ["a.example.org"]);
        assert_eq!(blog.federates_with, ["domain1.test", "domain2.test"]);
        assert_eq!(blog.hint, "blog");
        let db = &entries[1];
        assert_eq!(db.selectors[0].r#type, "unix");
        assert_eq!(db.spiffe_id.as_ref().unwrap().path, "/Database");
        assert!(db.downstream && db.store_svid);
        assert_eq!(db.id, "my-id");
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "failed to parse entries JSON"),
            (br#"{"entries": {}}"#, "failed to parse entries JSON"),
            (br#"{"entries": [null]}"#, "missing registration entry"),
            (
                br#"{"entries": [{"spiffe_id": "example.org/x", "parent_id": "spiffe://example.org/p"}]}"#,
                "invalid SPIFFE ID",
            ),
            (
                br#"{"entries": [{"spiffe_id": "spiffe://example.org/x"}]}"#,
                "invalid parent ID",
            ),
            (
                br#"{"entries": [{"spiffe_id": "spiffe://example.org/x", "parent_id": "spiffe://example.org/p", "federates_with": ["Bad TD"]}]}"#,
                "invalid federated trust domain",
            ),
            (
                br#"{"entries": [{"x509_svid_ttl": "ten"}]}"#,
                "failed to parse entries JSON",
            ),
        ];
        for (doc, want) in cases {
            let err = parse_entries(doc).unwrap_err().0;
            assert!(
                err.contains(want),
                "{}: {err}",
                String::from_utf8_lossy(doc)
            );
        }
        assert!(parse_entries(b"{}").unwrap().is_empty());
    }
}

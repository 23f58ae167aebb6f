//! KeyManagers (server.md §4.8): key types, the `memory` plugin, and the `disk` plugin's
//! `keys.json` (format, mode 0600, reload, corrupt files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use spire_server::keymanager::{
    DiskKeyManager, DiskKeyManagerConfig, KeyManager, KeyManagerError, KeyType, ManagedKey,
    MemoryKeyManager, jwt_signer_key_id, x509_ca_key_id,
};

#[test]
fn key_type_names() {
    for (name, key_type) in [
        ("ec-p256", KeyType::EcP256),
        ("ec-p384", KeyType::EcP384),
        ("rsa-2048", KeyType::Rsa2048),
        ("rsa-4096", KeyType::Rsa4096),
    ] {
        assert_eq!(name.parse::<KeyType>().unwrap(), key_type);
        assert_eq!(name.to_uppercase().parse::<KeyType>().unwrap(), key_type);
        assert_eq!(key_type.to_string(), name);
    }
    assert_eq!(KeyType::default(), KeyType::EcP256);
    let err = "rsa-1024".parse::<KeyType>().unwrap_err();
    assert!(err.to_string().contains("is unknown"), "{err}");
    assert_eq!(x509_ca_key_id("A"), "x509-CA-A");
    assert_eq!(jwt_signer_key_id("B"), "JWT-Signer-B");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn managed_keys() {
    for key_type in KeyType::ALL {
        let key = ManagedKey::generate("x509-CA-A", key_type).unwrap();
        assert_eq!(key.id(), "x509-CA-A");
        assert_eq!(key.key_type(), key_type);
        // Fingerprint: hex SHA-256 of the PKIX public key.
        assert_eq!(
            key.fingerprint(),
            hex(digest::digest(&digest::SHA256, key.public_key_der()).as_ref())
        );
        // The PKIX DER is what spiffe-core reads, and what the JWT key publishes.
        let public = spiffe_core::PublicKey::from_spki_der(key.public_key_der()).unwrap();
        assert_eq!(&public, key.jwt_signing_key().public_key());
        // The type is inferred back from the PKCS#8 key.
        let again = ManagedKey::from_pkcs8("k", key.key_pair().serialized_der()).unwrap();
        assert_eq!(again.key_type(), key_type);
        assert_eq!(again.public_key_der(), key.public_key_der());
        // Debug never shows key material.
        let debug = format!("{key:?}");
        assert!(debug.contains("x509-CA-A") && debug.contains(key.fingerprint()));
        assert!(!debug.contains(&STANDARD.encode(key.key_pair().serialized_der())));
    }
    assert!(matches!(
        ManagedKey::from_pkcs8("bad", b"not a key"),
        Err(KeyManagerError::InvalidKey { .. })
    ));
}

#[test]
fn memory_key_manager() {
    let km = MemoryKeyManager::new();
    assert_eq!(km.name(), "memory");
    assert!(km.get_key("x509-CA-A").unwrap().is_none());
    let a = km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
    let b = km.generate_key("JWT-Signer-A", KeyType::EcP384).unwrap();
    assert_eq!(
        km.get_key("x509-CA-A").unwrap().unwrap().public_key_der(),
        a.public_key_der()
    );
    let ids: Vec<String> = km
        .get_keys()
        .unwrap()
        .iter()
        .map(|k| k.id().to_owned())
        .collect();
    assert_eq!(ids, vec!["JWT-Signer-A", "x509-CA-A"]);
    // Regenerating replaces the key.
    let a2 = km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
    assert_ne!(a2.public_key_der(), a.public_key_der());
    assert_eq!(km.get_keys().unwrap().len(), 2);
    assert_eq!(b.key_type(), KeyType::EcP384);
    assert!(matches!(
        km.generate_key("", KeyType::EcP256),
        Err(KeyManagerError::EmptyKeyId)
    ));
}

#[test]
fn disk_key_file_format_mode_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let km = DiskKeyManager::open(&path).unwrap();
    assert_eq!(km.name(), "disk");
    assert!(km.get_keys().unwrap().is_empty());
    assert!(!path.exists(), "nothing is written before the first key");

    let mut generated = BTreeMap::new();
    for (id, key_type) in [
        ("x509-CA-A", KeyType::EcP256),
        ("JWT-Signer-A", KeyType::EcP384),
        ("x509-CA-B", KeyType::Rsa2048),
        ("JWT-Signer-B", KeyType::Rsa4096),
    ] {
        let key = km.generate_key(id, key_type).unwrap();
        generated.insert(id.to_owned(), key);
    }

    // Mode 0600, no temporary file left behind.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["keys.json"]);

    // SPIRE's format: {"keys": {"<id>": "<base64 std of PKCS#8 DER>"}}, sorted, tab-indented
    // exactly as Go's json.MarshalIndent(data, "", "\t"), no trailing newline.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut expected = String::from("{\n\t\"keys\": {\n");
    let lines: Vec<String> = generated
        .iter()
        .map(|(id, key)| {
            format!(
                "\t\t\"{id}\": \"{}\"",
                STANDARD.encode(key.key_pair().serialized_der())
            )
        })
        .collect();
    expected.push_str(&lines.join(",\n"));
    expected.push_str("\n\t}\n}");
    assert_eq!(text, expected);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc.as_object().unwrap().len(), 1);
    assert_eq!(doc["keys"].as_object().unwrap().len(), 4);

    // Reopening gives the same keys, types inferred from the keys themselves.
    let reopened = DiskKeyManager::open(&path).unwrap();
    let keys = reopened.get_keys().unwrap();
    assert_eq!(keys.len(), 4);
    for key in keys {
        let original = &generated[key.id()];
        assert_eq!(key.public_key_der(), original.public_key_der());
        assert_eq!(key.fingerprint(), original.fingerprint());
        assert_eq!(key.key_type(), original.key_type());
    }

    // Replacing a key rewrites the file; the file stays 0600.
    let replaced = reopened.generate_key("x509-CA-A", KeyType::EcP384).unwrap();
    let third = DiskKeyManager::open(&path).unwrap();
    let stored = third.get_key("x509-CA-A").unwrap().unwrap();
    assert_eq!(stored.public_key_der(), replaced.public_key_der());
    assert_eq!(stored.key_type(), KeyType::EcP384);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn disk_key_manager_reads_go_written_keys() {
    // A file as SPIRE writes it: Go's x509.MarshalPKCS8PrivateKey output, base64 std.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let ec = ManagedKey::generate("x", KeyType::EcP256).unwrap();
    let rsa = ManagedKey::generate("y", KeyType::Rsa2048).unwrap();
    let doc = serde_json::json!({
        "keys": {
            "x509-CA-A": STANDARD.encode(ec.key_pair().serialized_der()),
            "JWT-Signer-A": STANDARD.encode(rsa.key_pair().serialized_der()),
        }
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let km = DiskKeyManager::open(&path).unwrap();
    let x = km.get_key("x509-CA-A").unwrap().unwrap();
    assert_eq!(x.key_type(), KeyType::EcP256);
    assert_eq!(x.public_key_der(), ec.public_key_der());
    let j = km.get_key("JWT-Signer-A").unwrap().unwrap();
    assert_eq!(j.key_type(), KeyType::Rsa2048);
    assert_eq!(j.jwt_signing_key().algorithm().as_str(), "RS256");
}

#[test]
fn disk_key_manager_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");

    // keys_path is required.
    let err = DiskKeyManager::from_config(&DiskKeyManagerConfig::default()).unwrap_err();
    assert_eq!(err.to_string(), "keys_path is required");
    let config: DiskKeyManagerConfig =
        serde_json::from_str(&format!("{{\"keys_path\": {:?}}}", path.to_string_lossy())).unwrap();
    assert!(DiskKeyManager::from_config(&config).is_ok());

    // Corrupt JSON.
    std::fs::write(&path, "{ not json").unwrap();
    let err = DiskKeyManager::open(&path).unwrap_err();
    assert!(matches!(err, KeyManagerError::Decode { .. }), "{err}");
    assert!(
        err.to_string().contains("unable to decode keys JSON"),
        "{err}"
    );

    // Invalid base64.
    std::fs::write(&path, r#"{"keys": {"x509-CA-A": "***"}}"#).unwrap();
    let err = DiskKeyManager::open(&path).unwrap_err();
    assert!(
        matches!(&err, KeyManagerError::InvalidKey { id, .. } if id == "x509-CA-A"),
        "{err}"
    );

    // Valid base64 of something that is not a key.
    std::fs::write(
        &path,
        format!(
            r#"{{"keys": {{"x509-CA-A": "{}"}}}}"#,
            STANDARD.encode(b"nope")
        ),
    )
    .unwrap();
    let err = DiskKeyManager::open(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("unable to parse key \"x509-CA-A\""),
        "{err}"
    );

    // A key file in a directory that cannot be written: generation fails, and the
    // KeyManager keeps its previous state.
    let missing_dir = dir.path().join("no/such/dir/keys.json");
    let km = DiskKeyManager::open(&missing_dir).unwrap();
    let err = km.generate_key("x509-CA-A", KeyType::EcP256).unwrap_err();
    assert!(matches!(err, KeyManagerError::Write { .. }), "{err}");
    assert!(km.get_key("x509-CA-A").unwrap().is_none());

    // A stale temporary file with loose permissions does not leak into the key file.
    let good = dir.path().join("good.json");
    let tmp = dir.path().join("good.json.tmp");
    std::fs::write(&tmp, "stale").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let km: Arc<dyn KeyManager> = Arc::new(DiskKeyManager::open(&good).unwrap());
    km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&good).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!tmp.exists());
}

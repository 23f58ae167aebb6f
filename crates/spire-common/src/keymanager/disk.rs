//! The `disk` KeyManager: keys kept in a JSON file, in SPIRE's exact format.
//!
//! The file (`keys_path`) is `{"keys": {"<key id>": "<base64 std of PKCS#8 DER>"}}`,
//! tab-indented and with keys sorted, as Go's `json.MarshalIndent(data, "", "\t")`
//! writes it. It is loaded once when the KeyManager is opened and rewritten atomically
//! (temporary file, fsync, rename) with mode 0600 on every key generation; the temporary
//! file is created with mode 0600, so key material is never world-readable, even briefly.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{KeyManager, KeyManagerError, KeyType, ManagedKey};

/// The `plugin_data` of `KeyManager "disk"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DiskKeyManagerConfig {
    /// Path of the JSON key file (required).
    #[serde(default)]
    pub keys_path: Option<String>,
}

/// The `disk` KeyManager.
#[derive(Debug)]
pub struct DiskKeyManager {
    path: PathBuf,
    keys: Mutex<BTreeMap<String, Arc<ManagedKey>>>,
}

/// The key file document.
#[derive(Serialize, Deserialize)]
struct KeysFile {
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

impl DiskKeyManager {
    /// The plugin name.
    pub const NAME: &'static str = "disk";

    /// Opens the KeyManager described by its plugin configuration: `keys_path` is
    /// required.
    pub fn from_config(config: &DiskKeyManagerConfig) -> Result<Self, KeyManagerError> {
        match config.keys_path.as_deref() {
            Some(path) if !path.is_empty() => Self::open(path),
            _ => Err(KeyManagerError::Config("keys_path is required".to_owned())),
        }
    }

    /// Opens the KeyManager on `keys_path`, loading the keys in it. A missing file is an
    /// empty KeyManager (the file is created at the first key generation); an unreadable
    /// or invalid file is an error.
    pub fn open(keys_path: impl AsRef<Path>) -> Result<Self, KeyManagerError> {
        let path = keys_path.as_ref().to_path_buf();
        let keys = load(&path)?;
        Ok(DiskKeyManager {
            path,
            keys: Mutex::new(keys),
        })
    }

    /// The key file path.
    pub fn keys_path(&self) -> &Path {
        &self.path
    }

    fn keys(&self) -> MutexGuard<'_, BTreeMap<String, Arc<ManagedKey>>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KeyManager for DiskKeyManager {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn generate_key(
        &self,
        id: &str,
        key_type: KeyType,
    ) -> Result<Arc<ManagedKey>, KeyManagerError> {
        if id.is_empty() {
            return Err(KeyManagerError::EmptyKeyId);
        }
        let key = Arc::new(ManagedKey::generate(id, key_type)?);
        let mut keys = self.keys();
        let previous = keys.insert(id.to_owned(), Arc::clone(&key));
        if let Err(err) = write(&self.path, &keys) {
            match previous {
                Some(previous) => keys.insert(id.to_owned(), previous),
                None => keys.remove(id),
            };
            return Err(err);
        }
        Ok(key)
    }

    fn get_key(&self, id: &str) -> Result<Option<Arc<ManagedKey>>, KeyManagerError> {
        if id.is_empty() {
            return Err(KeyManagerError::EmptyKeyId);
        }
        Ok(self.keys().get(id).cloned())
    }

    fn get_keys(&self) -> Result<Vec<Arc<ManagedKey>>, KeyManagerError> {
        Ok(self.keys().values().cloned().collect())
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn load(path: &Path) -> Result<BTreeMap<String, Arc<ManagedKey>>, KeyManagerError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(KeyManagerError::Read {
                path: display(path),
                source,
            });
        }
    };
    let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| KeyManagerError::Decode {
        path: display(path),
        reason: e.to_string(),
    })?;
    let mut keys = BTreeMap::new();
    for (id, encoded) in file.keys {
        let der = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| KeyManagerError::InvalidKey {
                id: id.clone(),
                reason: format!("invalid base64: {e}"),
            })?;
        let key = ManagedKey::from_pkcs8(&id, &der)?;
        keys.insert(id, Arc::new(key));
    }
    Ok(keys)
}

/// Serializes the keys as Go's `json.MarshalIndent(data, "", "\t")` does.
fn serialize(keys: &BTreeMap<String, Arc<ManagedKey>>) -> Result<Vec<u8>, serde_json::Error> {
    let file = KeysFile {
        keys: keys
            .iter()
            .map(|(id, key)| (id.clone(), STANDARD.encode(key.pkcs8_der())))
            .collect(),
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    file.serialize(&mut serializer)?;
    Ok(out)
}

fn write(path: &Path, keys: &BTreeMap<String, Arc<ManagedKey>>) -> Result<(), KeyManagerError> {
    let write_error = |source: std::io::Error| KeyManagerError::Write {
        path: display(path),
        source,
    };
    let bytes = serialize(keys).map_err(|e| write_error(std::io::Error::other(e)))?;
    atomic_write_private(path, &bytes).map_err(write_error)
}

/// Writes `bytes` to `path` atomically: a temporary file next to it, created with mode
/// 0600, written and synced, then renamed over `path`; finally the directory is synced.
fn atomic_write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    // A stale temporary file from a crash may carry other permissions: start afresh, so
    // that the file holding key material is always created with mode 0600.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

//! The `memory` KeyManager: keys in process memory only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{KeyManager, KeyManagerError, KeyType, ManagedKey};

/// The `memory` KeyManager. Keys live as long as the process; a restart mints new CA and
/// JWT keys (SPIRE's quickstart behaviour).
#[derive(Debug, Default)]
pub struct MemoryKeyManager {
    keys: Mutex<BTreeMap<String, Arc<ManagedKey>>>,
}

impl MemoryKeyManager {
    /// The plugin name.
    pub const NAME: &'static str = "memory";

    /// An empty KeyManager.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> MutexGuard<'_, BTreeMap<String, Arc<ManagedKey>>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KeyManager for MemoryKeyManager {
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
        self.keys().insert(id.to_owned(), Arc::clone(&key));
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

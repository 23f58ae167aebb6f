//! The agent's state in `data_dir/agent-data.json` (agent.md §5.4): the agent SVID
//! chain, the trust bundle and whether the agent can re-attest, so that a restart needs
//! no new join token. Written atomically with mode 0600.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// File name of the agent state inside `data_dir`.
pub const FILE_NAME: &str = "agent-data.json";

/// A failure to read or write the agent state.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file could not be read or written.
    #[error("agent state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's content is not valid agent state.
    #[error("agent state {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What the agent keeps across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    /// The agent SVID chain, leaf first.
    pub svid: Vec<CertificateDer<'static>>,
    /// The trust domain's X.509 roots.
    pub bundle: Vec<CertificateDer<'static>>,
    /// Whether the agent can attest again (false for join tokens).
    pub reattestable: bool,
}

/// The JSON form: certificates as PEM, each JSON-encoded as base64 bytes (Go's
/// `[][]byte` encoding), as SPIRE writes it.
#[derive(Serialize, Deserialize, Default)]
struct Document {
    #[serde(default)]
    svid: Vec<String>,
    #[serde(default)]
    bundle: Vec<String>,
    #[serde(default)]
    reattestable: bool,
}

/// The state file of a data directory.
#[derive(Debug, Clone)]
pub struct Storage {
    path: PathBuf,
}

impl Storage {
    /// The state file in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Storage {
            path: data_dir.join(FILE_NAME),
        }
    }

    /// Loads the state; `None` when no state was ever written.
    pub fn load(&self) -> Result<Option<AgentState>, StorageError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        let doc: Document =
            serde_json::from_slice(&bytes).map_err(|e| self.corrupt(e.to_string()))?;
        Ok(Some(AgentState {
            svid: self.certs(&doc.svid)?,
            bundle: self.certs(&doc.bundle)?,
            reattestable: doc.reattestable,
        }))
    }

    /// Writes the state atomically (a 0600 temporary file renamed over the old one).
    pub fn save(&self, state: &AgentState) -> Result<(), StorageError> {
        let encode = |certs: &[CertificateDer<'static>]| -> Vec<String> {
            certs
                .iter()
                .map(|c| STANDARD.encode(pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec()))))
                .collect()
        };
        let doc = Document {
            svid: encode(&state.svid),
            bundle: encode(&state.bundle),
            reattestable: state.reattestable,
        };
        let json = serde_json::to_vec_pretty(&doc).map_err(|e| self.corrupt(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        file.write_all(&json).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    /// Removes the state (after a ban, or when the SVID can no longer be used).
    pub fn clear(&self) -> Result<(), StorageError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn certs(&self, items: &[String]) -> Result<Vec<CertificateDer<'static>>, StorageError> {
        let mut out = Vec::new();
        for item in items {
            let pem_bytes = STANDARD
                .decode(item)
                .map_err(|e| self.corrupt(format!("bad base64: {e}")))?;
            for block in pem::parse_many(&pem_bytes).map_err(|e| self.corrupt(e.to_string()))? {
                out.push(CertificateDer::from(block.into_contents()));
            }
        }
        Ok(out)
    }

    fn io(&self, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }
}

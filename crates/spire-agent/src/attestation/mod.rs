//! Agent node attestors (agent.md §5.3): the `NodeAttestor` plugin type. An attestor
//! produces the first `AttestAgent` payload and answers the server's challenges.
//! Join tokens are handled by the client directly, as SPIRE does.

pub mod x509pop;

use std::sync::Arc;

use crate::config::AgentConfig;

/// A node attestor failed to produce a payload or an answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AttestorError(pub String);

/// An agent `NodeAttestor` plugin.
pub trait NodeAttestor: Send + Sync {
    /// The SPIRE plugin name, sent as the attestation data type.
    fn name(&self) -> &str;

    /// The attestation payload for a new attestation.
    fn payload(&self) -> Result<Vec<u8>, AttestorError>;

    /// The answer to one server challenge.
    fn respond(&self, challenge: &[u8]) -> Result<Vec<u8>, AttestorError>;
}

/// The configured node attestor other than `join_token`, if any.
pub fn configured(config: &AgentConfig) -> Result<Option<Arc<dyn NodeAttestor>>, AttestorError> {
    let Some(plugin) = config
        .plugins
        .iter()
        .find(|p| p.enabled && p.plugin_type == "NodeAttestor")
    else {
        return Ok(None);
    };
    match plugin.name.as_str() {
        "join_token" => Ok(None),
        "x509pop" => {
            let cfg = x509pop::X509PopConfig::from_plugin(plugin)?;
            Ok(Some(Arc::new(x509pop::X509PopAttestor::new(cfg))))
        }
        other => Err(AttestorError(format!(
            "unknown NodeAttestor plugin {other:?}: spire-rs provides join_token, x509pop"
        ))),
    }
}

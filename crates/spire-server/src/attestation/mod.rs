//! Server node attestors (server.md §6): the `NodeAttestor` plugin type. The API's
//! `AttestAgent` handler hands an attestor the first payload and a [`Challenger`] that
//! relays challenges to the agent over the same stream; the attestor answers with the
//! agent ID, its node selectors and whether the agent may re-attest.
//!
//! `join_token` stays inline in the API, as in SPIRE.

pub mod aws_iid;
pub mod template;
pub mod x509pop;

use std::collections::BTreeMap;
use std::sync::Arc;

use spiffe_core::{SpiffeId, TrustDomain};
use tonic::Status;

/// What a successful attestation establishes about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestResult {
    /// The agent ID (`spiffe://<td>/spire/agent/...`).
    pub agent_id: SpiffeId,
    /// Node selector values, stored typed by the attestor's name.
    pub selectors: Vec<String>,
    /// Whether the agent re-attests instead of calling `RenewAgent`.
    pub can_reattest: bool,
}

/// Relays challenges to the attesting agent over the `AttestAgent` stream.
#[tonic::async_trait]
pub trait Challenger: Send {
    /// Sends `challenge` and waits for the agent's response.
    async fn challenge(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status>;
}

/// A server `NodeAttestor` plugin.
#[tonic::async_trait]
pub trait NodeAttestor: Send + Sync {
    /// The SPIRE plugin name, which is also the attestation data type.
    fn name(&self) -> &str;

    /// Attests a node from its first payload, challenging it through `challenger` if
    /// the method needs proof of possession. Errors are the statuses the agent sees.
    async fn attest(
        &self,
        payload: &[u8],
        challenger: &mut dyn Challenger,
    ) -> Result<AttestResult, Status>;
}

/// The configured node attestors, by name.
#[derive(Clone, Default)]
pub struct NodeAttestors {
    by_name: BTreeMap<String, Arc<dyn NodeAttestor>>,
}

impl std::fmt::Debug for NodeAttestors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl NodeAttestors {
    /// An empty set (join tokens only).
    pub fn new() -> Self {
        NodeAttestors::default()
    }

    /// Adds an attestor under its name.
    pub fn insert(&mut self, attestor: Arc<dyn NodeAttestor>) {
        self.by_name.insert(attestor.name().to_owned(), attestor);
    }

    /// The attestor for an attestation data type.
    pub fn get(&self, name: &str) -> Option<Arc<dyn NodeAttestor>> {
        self.by_name.get(name).cloned()
    }
}

/// Builds `spiffe://<td>/spire/agent/<rendered path>` as SPIRE's `agentpathtemplate`
/// does: the rendered path is joined under `/spire/agent`.
pub(crate) fn agent_id_from_path(td: &TrustDomain, rendered: &str) -> Result<SpiffeId, Status> {
    let path = format!("/spire/agent/{}", rendered.trim_start_matches('/'));
    SpiffeId::new(td, &path).map_err(|e| Status::internal(format!("failed to make spiffe id: {e}")))
}

/// A PEM file of certificates, as SPIRE's `util.LoadCertPool`.
pub(crate) fn load_pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    let text =
        std::fs::read(path).map_err(|e| format!("unable to read {}: {e}", path.display()))?;
    let blocks =
        pem::parse_many(&text).map_err(|e| format!("unable to parse {}: {e}", path.display()))?;
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| rustls_pki_types::CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(format!("no certificates found in {}", path.display()));
    }
    Ok(certs)
}

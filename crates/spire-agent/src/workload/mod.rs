//! Workload attestation: who is calling the Workload API, and which selectors describe it.
//!
//! - [`peer`]: the caller's pid/uid/gid from `SO_PEERCRED` and SPIRE's PID-reuse
//!   protection ([`PeerWatcher`]).
//! - [`WorkloadAttestor`]: one trait per SPIRE WorkloadAttestor plugin; [`unix`] is the
//!   first built-in; [`docker`], [`k8s`] and [`systemd`] plug in the same way ([`cgroup`] holds
//!   their shared `/proc/<pid>/cgroup` and mountinfo parsing).
//! - [`WorkloadAttestors`]: runs every configured attestor in parallel and merges their
//!   selectors, as SPIRE's `pkg/agent/attestor/workload` does.

pub mod cgroup;
pub mod docker;
pub mod k8s;
pub mod peer;
pub mod systemd;
pub mod unix;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;

pub use docker::{DockerAttestor, DockerAttestorConfig};
pub use k8s::{K8sAttestor, K8sAttestorConfig};
pub use peer::{CallerInfo, PeerError, PeerWatcher};
pub use spire_common::selector::Selector;
pub use systemd::SystemdAttestor;
pub use unix::{UnixAttestor, UnixAttestorConfig};

/// The future returned by [`WorkloadAttestor::attest`]: selector values of the plugin.
pub type AttestFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<String>, AttestorError>> + Send + 'a>>;

/// Boxes a plugin's attestation as an [`AttestFuture`], the plugin's own error becoming
/// [`AttestorError::Other`].
pub(crate) fn boxed_attestation<'a, E>(
    values: impl Future<Output = Result<Vec<String>, E>> + Send + 'a,
) -> AttestFuture<'a>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Box::pin(async move { values.await.map_err(|e| AttestorError::Other(Box::new(e))) })
}

/// The `WorkloadAttestor "<name>"` plugin block of an otherwise minimal agent config
/// whose `plugin_data` holds `data` (HCL), as the plugin's config parsing sees it.
#[cfg(test)]
pub(crate) fn attestor_plugin_from_hcl(
    name: &str,
    data: &str,
) -> Result<spire_common::hcl::PluginConfig, Box<dyn std::error::Error>> {
    let text = format!(
        "agent {{\n server_address = \"127.0.0.1\"\n server_port = \"8081\"\n \
         trust_domain = \"example.org\"\n trust_bundle_path = \"/b.pem\"\n}}\n\
         plugins {{\n NodeAttestor \"join_token\" {{\n plugin_data {{}}\n }}\n \
         KeyManager \"memory\" {{\n plugin_data {{}}\n }}\n \
         WorkloadAttestor \"{name}\" {{\n plugin_data {{\n{data}\n }}\n }}\n}}\n"
    );
    let config = crate::config::AgentConfig::parse(&text, &Default::default())?;
    config
        .plugins_of_type("WorkloadAttestor")
        .next()
        .cloned()
        .ok_or_else(|| "no plugin".into())
}

/// A workload attestor plugin (SPIRE's `WorkloadAttestor` plugin type).
///
/// A plugin returns selector *values* (`uid:1000`); the selector type is always the
/// plugin's [name](Self::name), exactly as in SPIRE, so a plugin cannot mint selectors of
/// another type.
pub trait WorkloadAttestor: Send + Sync {
    /// The plugin name, e.g. `unix`: the type of every selector it produces.
    fn name(&self) -> &str;

    /// Attests the process `pid`. Blocking work must be moved off the async runtime.
    fn attest(&self, pid: i32) -> AttestFuture<'_>;
}

/// Why one attestor plugin failed.
#[derive(Debug, Error)]
pub enum AttestorError {
    /// The `unix` attestor failed.
    #[error(transparent)]
    Unix(#[from] unix::UnixAttestorError),
    /// A plugin's blocking task panicked or was cancelled.
    #[error("attestor task failed: {0}")]
    Task(String),
    /// Any other plugin error.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Why workload attestation as a whole failed.
#[derive(Debug, Error)]
pub enum AttestationError {
    /// Every configured attestor failed (each failure is logged).
    #[error("workload attestation failed")]
    AllFailed,
}

/// The configured workload attestors, run together for every Workload API call.
#[derive(Clone, Default)]
pub struct WorkloadAttestors {
    plugins: Vec<Arc<dyn WorkloadAttestor>>,
}

impl std::fmt::Debug for WorkloadAttestors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl WorkloadAttestors {
    /// A set of attestor plugins.
    pub fn new(plugins: Vec<Arc<dyn WorkloadAttestor>>) -> Self {
        WorkloadAttestors { plugins }
    }

    /// The plugin names, in configuration order.
    pub fn names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// Runs every attestor on `pid` concurrently and concatenates their selectors (in
    /// plugin order; no de-duplication, as SPIRE). A failing plugin is logged and
    /// skipped; only when every plugin fails is the result an error. With no plugins the
    /// result is an empty selector set.
    pub async fn attest(&self, pid: i32) -> Result<Vec<Selector>, AttestationError> {
        let results = futures::future::join_all(
            self.plugins
                .iter()
                .map(|plugin| async move { (plugin.name(), plugin.attest(pid).await) }),
        )
        .await;

        let mut selectors = Vec::new();
        let mut failures = 0usize;
        for (name, result) in results {
            match result {
                Ok(values) => selectors.extend(values.into_iter().map(|value| Selector {
                    r#type: name.to_owned(),
                    value,
                })),
                Err(error) => {
                    failures += 1;
                    tracing::error!(
                        pid,
                        error = %format!("workload attestor {name:?} failed: {error}"),
                        "Failed to collect all selectors for PID"
                    );
                }
            }
        }
        if failures > 0 && failures == self.plugins.len() {
            return Err(AttestationError::AllFailed);
        }
        // The agent's own health check calls the Workload API; keep it out of the logs.
        if u32::try_from(pid).ok() != Some(std::process::id()) {
            tracing::debug!(
                pid,
                selectors = %selectors.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                "PID attested to have selectors"
            );
        }
        Ok(selectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Result<Vec<&'static str>, ()>);

    impl WorkloadAttestor for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn attest(&self, _pid: i32) -> AttestFuture<'_> {
            let result = self
                .1
                .clone()
                .map(|v| v.into_iter().map(str::to_owned).collect())
                .map_err(|()| AttestorError::Other("boom".into()));
            Box::pin(async move { result })
        }
    }

    #[tokio::test]
    async fn selectors_are_merged_and_failures_skipped() -> Result<(), AttestationError> {
        let attestors = WorkloadAttestors::new(vec![
            Arc::new(Fixed("a", Ok(vec!["x:1", "y:2"]))),
            Arc::new(Fixed("b", Err(()))),
            Arc::new(Fixed("c", Ok(vec!["x:1"]))),
        ]);
        let selectors: Vec<String> = attestors
            .attest(1)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(selectors, vec!["a:x:1", "a:y:2", "c:x:1"]);
        Ok(())
    }

    #[tokio::test]
    async fn all_failing_is_an_error_and_none_is_empty() {
        let failing = WorkloadAttestors::new(vec![
            Arc::new(Fixed("a", Err(()))),
            Arc::new(Fixed("b", Err(()))),
        ]);
        assert!(matches!(
            failing.attest(1).await,
            Err(AttestationError::AllFailed)
        ));
        let none = WorkloadAttestors::default();
        assert!(none.attest(1).await.is_ok_and(|s| s.is_empty()));
    }
}

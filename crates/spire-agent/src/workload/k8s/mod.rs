//! The `k8s` workload attestor (SPIRE's `pkg/agent/plugin/workloadattestor/k8s`, doc
//! `plugin_agent_workloadattestor_k8s.md`, agent.md §6.5).
//!
//! The caller's pod UID and container ID come from its cgroups
//! ([`cgroup::pod_uid_and_container_id`]); the kubelet's `/pods` list is then searched
//! for the container, polling up to `max_poll_attempts` times `poll_retry_interval`
//! apart while the container is not (yet) listed. The selectors are SPIRE's:
//! `sa`, `ns`, `node-name`, `pod-uid`, `pod-name`, `pod-image-count`,
//! `pod-init-image-count`, `pod-image`, `pod-init-image`, `pod-label`, `pod-owner`,
//! `pod-owner-uid`, and for the calling container `container-name` and
//! `container-image` (unless `disable_container_selectors`).
//!
//! - [`config`]: the `plugin_data` options and their defaults;
//! - [`kubelet`]: the kubelet client (read-only HTTP port, or the secure HTTPS port
//!   with a service-account token or a client certificate);
//! - [`pods`]: the kubelet's pod JSON and the selectors derived from it.

pub mod config;
pub mod kubelet;
pub mod pods;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

pub use config::{K8sAttestorConfig, KubeletPort};
use kubelet::KubeletClient;
use pods::{ContainerLookup, Pod};

use super::cgroup::{self, CgroupError};
use super::unix::HOST_PROC_ENV;
use super::{AttestFuture, WorkloadAttestor};

/// The plugin name, which is also the type of every selector it produces.
pub const PLUGIN_NAME: &str = "k8s";

/// Why the `k8s` attestor (or its configuration) failed.
#[derive(Debug, Error)]
pub enum K8sAttestorError {
    /// Invalid `plugin_data`, or credentials/CA files that cannot be loaded.
    #[error("invalid k8s workload attestor configuration: {0}")]
    Config(String),
    /// The pod UID or container ID could not be determined from the cgroups.
    #[error("workloadattestor/k8s: {0}")]
    Cgroup(#[from] CgroupError),
    /// The kubelet could not be queried or answered something unusable.
    #[error("workloadattestor/k8s: {0}")]
    Kubelet(String),
    /// The container was not found in the kubelet's pod list in time (SPIRE answers
    /// `DeadlineExceeded`).
    #[error("no selectors found after max poll attempts")]
    NotFound,
    /// The container was found in more than one pod (SPIRE answers `Internal`).
    #[error("two pods found with same container Id")]
    TwoPods,
}

/// A cached pod list, shared by concurrent attestations.
struct PodListCache {
    fetched: Instant,
    pods: Arc<Vec<Pod>>,
}

/// The `k8s` workload attestor.
pub struct K8sAttestor {
    config: K8sAttestorConfig,
    proc_root: PathBuf,
    client: std::sync::Mutex<Arc<KubeletClient>>,
    /// Held while fetching, so that concurrent attestations share one request
    /// (SPIRE's singleflight), and caching the answer for half a retry interval.
    pod_list: tokio::sync::Mutex<Option<PodListCache>>,
}

impl std::fmt::Debug for K8sAttestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sAttestor")
            .field("config", &self.config)
            .field("proc_root", &self.proc_root)
            .finish_non_exhaustive()
    }
}

impl K8sAttestor {
    /// An attestor reading `/proc` (or `$HOST_PROC`). Loads the kubelet credentials
    /// now, so that a missing token or CA fails the agent's startup as in SPIRE.
    pub fn new(config: K8sAttestorConfig) -> Result<Self, K8sAttestorError> {
        let proc_root = std::env::var_os(HOST_PROC_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/proc"), PathBuf::from);
        Self::with_proc_root(config, proc_root)
    }

    /// An attestor reading the given proc mount.
    pub fn with_proc_root(
        config: K8sAttestorConfig,
        proc_root: impl Into<PathBuf>,
    ) -> Result<Self, K8sAttestorError> {
        let client = KubeletClient::load(&config)?;
        Ok(K8sAttestor {
            config,
            proc_root: proc_root.into(),
            client: std::sync::Mutex::new(Arc::new(client)),
            pod_list: tokio::sync::Mutex::new(None),
        })
    }

    /// The kubelet client, reloaded from disk (token, certificates) once it is older
    /// than `reload_interval`; a failed reload keeps the previous client with a warning.
    fn client(&self) -> Arc<KubeletClient> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if client.is_stale(self.config.reload_interval) {
            match KubeletClient::load(&self.config) {
                Ok(fresh) => *client = Arc::new(fresh),
                Err(error) => tracing::warn!(%error, "Unable to load kubelet client"),
            }
        }
        client.clone()
    }

    /// The kubelet's pods, from the cache when fetched less than half a retry interval
    /// ago.
    async fn pods(&self) -> Result<Arc<Vec<Pod>>, K8sAttestorError> {
        let mut cache = self.pod_list.lock().await;
        let cache_for = self.config.poll_retry_interval / 2;
        if let Some(cached) = cache.as_ref()
            && cached.fetched.elapsed() < cache_for
        {
            return Ok(cached.pods.clone());
        }
        let pods = Arc::new(self.client().pod_list().await?);
        *cache = Some(PodListCache {
            fetched: Instant::now(),
            pods: pods.clone(),
        });
        Ok(pods)
    }

    /// Attests `pid`, returning selector values (`ns:default`, ...). A process that is
    /// not in a container yields no selectors and no error, as in SPIRE.
    pub async fn attest_values(&self, pid: i32) -> Result<Vec<String>, K8sAttestorError> {
        let proc_root = self.proc_root.clone();
        let verbose = self.config.verbose_container_locator_logs;
        let (pod_uid, container_id) = tokio::task::spawn_blocking(move || {
            let found = cgroup::pod_uid_and_container_id(&proc_root, pid);
            if verbose {
                tracing::debug!(pid, ?found, "k8s container locator result");
            }
            found
        })
        .await
        .map_err(|e| K8sAttestorError::Kubelet(format!("container locator task: {e}")))??;
        let Some(container_id) = container_id else {
            return Ok(Vec::new());
        };

        let mut attempt = 1u32;
        loop {
            let pods = self.pods().await?;
            if let Some(values) = self.select(&pods, pod_uid.as_deref(), &container_id)? {
                return Ok(values);
            }
            if attempt >= self.config.max_poll_attempts {
                tracing::warn!(
                    pod_uid = pod_uid.as_deref().unwrap_or_default(),
                    container_id,
                    attempt,
                    "Container id not found; giving up"
                );
                return Err(K8sAttestorError::NotFound);
            }
            tracing::debug!(
                pod_uid = pod_uid.as_deref().unwrap_or_default(),
                container_id,
                attempt,
                retry_interval = ?self.config.poll_retry_interval,
                "Container id not found"
            );
            attempt += 1;
            tokio::time::sleep(self.config.poll_retry_interval).await;
        }
    }

    /// The selectors of the one pod holding `container_id` (restricted to `pod_uid`
    /// when known), `None` when no pod does yet.
    fn select(
        &self,
        pods: &[Pod],
        pod_uid: Option<&str>,
        container_id: &str,
    ) -> Result<Option<Vec<String>>, K8sAttestorError> {
        let mut found: Option<Vec<String>> = None;
        for pod in pods {
            if pod_uid.is_some_and(|uid| uid != pod.metadata.uid) {
                continue;
            }
            let values = match pod.find_container(container_id) {
                ContainerLookup::Found(status) => {
                    let mut values = pod.selector_values();
                    if !self.config.disable_container_selectors {
                        values.extend(status.selector_values());
                    }
                    values
                }
                ContainerLookup::NotFound
                    if pod_uid.is_some() && self.config.disable_container_selectors =>
                {
                    pod.selector_values()
                }
                ContainerLookup::NotFound => continue,
            };
            if found.is_some() {
                tracing::warn!(container_id, "Two pods found with same container Id");
                return Err(K8sAttestorError::TwoPods);
            }
            found = Some(values);
        }
        Ok(found)
    }
}

impl WorkloadAttestor for K8sAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn attest(&self, pid: i32) -> AttestFuture<'_> {
        super::boxed_attestation(self.attest_values(pid))
    }
}

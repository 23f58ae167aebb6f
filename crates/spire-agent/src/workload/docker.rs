//! The `docker` WorkloadAttestor (SPIRE's `pkg/agent/plugin/workloadattestor/docker`).
//!
//! 1. The container ID of the pid is found in `/proc/<pid>/mountinfo` and
//!    `/proc/<pid>/cgroup` (or `$HOST_PROC`) with SPIRE's new container locator (see
//!    [`cgroup`](super::cgroup)). A pid in no container gives no selectors, not an error.
//! 2. The container is inspected through the Docker Engine API on its Unix socket
//!    (`GET /v<docker_version>/containers/<id>/json`, HTTP/1.1; without
//!    `docker_version` the unversioned path, which the daemon serves at its own API
//!    version). Failure to inspect fails the plugin.
//! 3. The image named by `Config.Image` is inspected (`GET /images/<name>/json`) for
//!    `image_config_digest`; a failure there only drops that selector, as in SPIRE.
//!
//! Selectors, in SPIRE's emission order:
//!
//! | Selector | Source |
//! |---|---|
//! | `docker:label:<key>:<value>` | one per `Config.Labels` entry (sorted by key here; SPIRE's order is Go map order) |
//! | `docker:env:<VAR>=<value>` | one per `Config.Env` entry, as given |
//! | `docker:image_id:<image>` | `Config.Image` as given (e.g. `envoyproxy/envoy:contrib-v1.29.1`), when not empty |
//! | `docker:image_config_digest:<Id>` | the image's `Id` (`sha256:…`), when the image inspect succeeds |
//!
//! Not implemented (documented gaps): Podman sockets, sigstore selectors, SPIRE's
//! retry/back-off around the container inspect, and the legacy
//! `container_id_cgroup_matchers` finder (the keys are accepted; matchers are ignored
//! with a warning and the new locator, SPIRE's default, is used).

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use spire_common::hcl::{PluginConfig, de};
use thiserror::Error;
use tokio::net::UnixStream;

use super::cgroup::{self, CgroupError};
use super::unix::HOST_PROC_ENV;
use super::{AttestFuture, WorkloadAttestor};

/// The plugin name, which is also the type of every selector it produces.
pub const PLUGIN_NAME: &str = "docker";
/// The default `docker_socket_path`.
pub const DEFAULT_DOCKER_SOCKET_PATH: &str = "unix:///var/run/docker.sock";
/// How long one Docker API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest Docker API response body accepted.
const MAX_BODY: usize = 16 << 20;

/// Why the `docker` attestor (or its configuration) failed.
#[derive(Debug, Error)]
pub enum DockerAttestorError {
    /// Invalid `plugin_data`.
    #[error("invalid docker attestor configuration: {0}")]
    Config(String),
    /// The container ID could not be determined.
    #[error("workloadattestor/docker: {0}")]
    Cgroup(#[from] CgroupError),
    /// The Docker API request failed.
    #[error("docker API {path}: {reason}")]
    Api {
        /// The request path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDocker {
    #[serde(default, deserialize_with = "de::opt_string")]
    docker_socket_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    docker_version: Option<String>,
    #[serde(default)]
    container_id_cgroup_matchers: Vec<String>,
    // Accepted for SPIRE compatibility, not used (see the module docs).
    #[serde(default)]
    podman_socket_path: Option<IgnoredAny>,
    #[serde(default)]
    podman_socket_path_template: Option<IgnoredAny>,
    #[serde(default)]
    use_new_container_locator: Option<IgnoredAny>,
    #[serde(default)]
    verbose_container_locator_logs: Option<IgnoredAny>,
    #[serde(default)]
    sigstore: Option<IgnoredAny>,
}

/// `plugin_data` of `WorkloadAttestor "docker"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerAttestorConfig {
    /// The Docker daemon socket (from `docker_socket_path`, `unix://` stripped).
    pub socket_path: PathBuf,
    /// `docker_version`: the API version to request, e.g. `1.41`.
    pub docker_version: Option<String>,
    /// `container_id_cgroup_matchers`: accepted but not used (new locator only).
    pub container_id_cgroup_matchers: Vec<String>,
}

impl Default for DockerAttestorConfig {
    fn default() -> Self {
        DockerAttestorConfig {
            socket_path: PathBuf::from("/var/run/docker.sock"),
            docker_version: None,
            container_id_cgroup_matchers: Vec::new(),
        }
    }
}

impl DockerAttestorConfig {
    /// Reads the `WorkloadAttestor "docker"` plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, DockerAttestorError> {
        let raw: RawDocker = plugin
            .decode_data()
            .map_err(|e| DockerAttestorError::Config(e.to_string()))?;
        let ignored = [
            ("podman_socket_path", raw.podman_socket_path.is_some()),
            (
                "podman_socket_path_template",
                raw.podman_socket_path_template.is_some(),
            ),
            (
                "use_new_container_locator",
                raw.use_new_container_locator.is_some(),
            ),
            (
                "verbose_container_locator_logs",
                raw.verbose_container_locator_logs.is_some(),
            ),
            ("sigstore", raw.sigstore.is_some()),
            (
                "container_id_cgroup_matchers",
                !raw.container_id_cgroup_matchers.is_empty(),
            ),
        ];
        for (key, set) in ignored {
            if set {
                tracing::warn!(
                    key,
                    "docker workload attestor: option not supported by spire-rs; ignored"
                );
            }
        }
        Self::new(
            raw.docker_socket_path.as_deref(),
            raw.docker_version,
            raw.container_id_cgroup_matchers,
        )
    }

    /// Validates the options: `socket` must be a `unix://` URL (default
    /// [`DEFAULT_DOCKER_SOCKET_PATH`]), `version` digits and dots.
    pub fn new(
        socket: Option<&str>,
        version: Option<String>,
        container_id_cgroup_matchers: Vec<String>,
    ) -> Result<Self, DockerAttestorError> {
        let socket = socket
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_DOCKER_SOCKET_PATH);
        let path = socket
            .strip_prefix("unix://")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                DockerAttestorError::Config(format!(
                    "docker_socket_path {socket:?}: only unix:// sockets are supported"
                ))
            })?;
        let version = version.filter(|v| !v.is_empty());
        if let Some(v) = &version {
            let v = v.strip_prefix('v').unwrap_or(v);
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(DockerAttestorError::Config(format!(
                    "docker_version {v:?} is not an API version such as 1.41"
                )));
            }
        }
        Ok(DockerAttestorConfig {
            socket_path: PathBuf::from(path),
            docker_version: version.map(|v| v.trim_start_matches('v').to_owned()),
            container_id_cgroup_matchers,
        })
    }
}

/// The parts of `GET /containers/<id>/json` the attestor uses.
#[derive(Debug, Default, Deserialize)]
struct ContainerJson {
    #[serde(rename = "Config", default)]
    config: Option<ContainerConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Image", default)]
    image: Option<String>,
}

/// The part of `GET /images/<name>/json` the attestor uses.
#[derive(Debug, Default, Deserialize)]
struct ImageJson {
    #[serde(rename = "Id", default)]
    id: String,
}

/// The `docker` workload attestor.
#[derive(Debug, Clone)]
pub struct DockerAttestor {
    config: DockerAttestorConfig,
    proc_root: PathBuf,
}

impl DockerAttestor {
    /// An attestor reading `/proc` (or `$HOST_PROC`).
    pub fn new(config: DockerAttestorConfig) -> Self {
        let proc_root = std::env::var_os(HOST_PROC_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/proc"), PathBuf::from);
        Self::with_proc_root(config, proc_root)
    }

    /// An attestor reading the given proc mount.
    pub fn with_proc_root(config: DockerAttestorConfig, proc_root: impl Into<PathBuf>) -> Self {
        DockerAttestor {
            config,
            proc_root: proc_root.into(),
        }
    }

    /// Attests `pid`, returning selector values (`label:k:v`, ...) in SPIRE's order.
    pub async fn attest_values(&self, pid: i32) -> Result<Vec<String>, DockerAttestorError> {
        let proc_root = self.proc_root.clone();
        let container_id =
            tokio::task::spawn_blocking(move || cgroup::container_id(&proc_root, pid))
                .await
                .map_err(|e| {
                    DockerAttestorError::Config(format!("container locator task: {e}"))
                })??;
        let Some(container_id) = container_id else {
            // Not a container workload: nothing to say, as in SPIRE.
            return Ok(Vec::new());
        };

        let container: ContainerJson = self
            .get_json(&format!("/containers/{container_id}/json"))
            .await?;
        let config = container.config.unwrap_or_default();
        let mut values = Vec::new();
        for (key, value) in config.labels.unwrap_or_default() {
            values.push(format!("label:{key}:{value}"));
        }
        for env in config.env.unwrap_or_default() {
            values.push(format!("env:{env}"));
        }
        let image = config.image.unwrap_or_default();
        if !image.is_empty() {
            values.push(format!("image_id:{image}"));
            match self
                .get_json::<ImageJson>(&format!("/images/{}/json", escape_path(&image)))
                .await
            {
                Ok(img) if !img.id.is_empty() => {
                    values.push(format!("image_config_digest:{}", img.id));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, image, "docker image inspect failed; no image_config_digest");
                }
            }
        }
        Ok(values)
    }

    /// `GET <path>` (prefixed with `/v<version>`) on the Docker socket, decoded as JSON.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
    ) -> Result<T, DockerAttestorError> {
        let full_path = match &self.config.docker_version {
            Some(v) => format!("/v{v}{path}"),
            None => path.to_owned(),
        };
        let api_error = |reason: String| DockerAttestorError::Api {
            path: full_path.clone(),
            reason,
        };
        let body = tokio::time::timeout(REQUEST_TIMEOUT, self.get(&full_path))
            .await
            .map_err(|_| api_error("timed out".to_owned()))?
            .map_err(api_error)?;
        serde_json::from_slice(&body).map_err(|e| api_error(format!("invalid JSON: {e}")))
    }

    async fn get(&self, path: &str) -> Result<Bytes, String> {
        let stream = UnixStream::connect(&self.config.socket_path)
            .await
            .map_err(|e| format!("connect {}: {e}", self.config.socket_path.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let request = Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status != StatusCode::OK {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(format!("status {status}: {message}"));
            }
            Ok(body)
        }
        .await;
        conn.abort();
        result
    }
}

/// Percent-encodes `s` for a URL path, keeping the characters image references use.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/:@.-_".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl WorkloadAttestor for DockerAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn attest(&self, pid: i32) -> AttestFuture<'_> {
        super::boxed_attestation(self.attest_values(pid))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let cfg = DockerAttestorConfig::new(None, None, Vec::new());
        assert_eq!(cfg.ok(), Some(DockerAttestorConfig::default()));
        let cfg =
            DockerAttestorConfig::new(Some("unix:///run/d.sock"), Some("1.41".into()), Vec::new());
        assert!(cfg.is_ok_and(|c| c.socket_path == Path::new("/run/d.sock")
            && c.docker_version.as_deref() == Some("1.41")));
        assert!(DockerAttestorConfig::new(Some("tcp://1.2.3.4:2375"), None, Vec::new()).is_err());
        assert!(DockerAttestorConfig::new(None, Some("1.41/../x".into()), Vec::new()).is_err());
    }

    fn plugin_from_hcl(data: &str) -> Result<Vec<PluginConfig>, Box<dyn std::error::Error>> {
        Ok(vec![crate::workload::attestor_plugin_from_hcl(
            "docker", data,
        )?])
    }

    #[test]
    fn config_from_plugin_data() -> Result<(), Box<dyn std::error::Error>> {
        let plugins = plugin_from_hcl(
            "docker_socket_path = \"unix:///run/docker.sock\"\n\
             docker_version = \"1.43\"\n\
             container_id_cgroup_matchers = [\"/docker/<id>\"]\n\
             use_new_container_locator = true",
        )?;
        let cfg = DockerAttestorConfig::from_plugin(&plugins[0])?;
        assert_eq!(cfg.socket_path, Path::new("/run/docker.sock"));
        assert_eq!(cfg.docker_version.as_deref(), Some("1.43"));
        assert_eq!(cfg.container_id_cgroup_matchers, vec!["/docker/<id>"]);

        let plugins = plugin_from_hcl("")?;
        assert_eq!(
            DockerAttestorConfig::from_plugin(&plugins[0])?,
            DockerAttestorConfig::default()
        );
        let plugins = plugin_from_hcl("no_such_key = 1")?;
        assert!(DockerAttestorConfig::from_plugin(&plugins[0]).is_err());
        Ok(())
    }

    #[test]
    fn escape_keeps_image_references() {
        assert_eq!(
            escape_path("envoyproxy/envoy:v1@sha256:ab"),
            "envoyproxy/envoy:v1@sha256:ab"
        );
        assert_eq!(escape_path("a b?"), "a%20b%3F");
    }
}

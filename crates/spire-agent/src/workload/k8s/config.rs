//! `plugin_data` of `WorkloadAttestor "k8s"`, with SPIRE's defaults and checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use spire_common::hcl::{PluginConfig, de};

use super::K8sAttestorError;

/// Default `max_poll_attempts`.
pub const DEFAULT_MAX_POLL_ATTEMPTS: u32 = 60;
/// Default `poll_retry_interval`.
pub const DEFAULT_POLL_RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Default kubelet secure port.
pub const DEFAULT_SECURE_KUBELET_PORT: u16 = 10250;
/// Default `kubelet_ca_path` (the cluster CA of the pod's service account).
pub const DEFAULT_KUBELET_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// Default `token_path` (the pod's service-account token).
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Default `node_name_env`.
pub const DEFAULT_NODE_NAME_ENV: &str = "MY_NODE_NAME";
/// Default `reload_interval`.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawK8s {
    #[serde(default, deserialize_with = "de::opt_int")]
    kubelet_read_only_port: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_int")]
    kubelet_secure_port: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_int")]
    max_poll_attempts: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    poll_retry_interval: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    kubelet_ca_path: Option<String>,
    #[serde(default, deserialize_with = "de::bool")]
    skip_kubelet_verification: bool,
    #[serde(default, deserialize_with = "de::opt_string")]
    token_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    certificate_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    private_key_path: Option<String>,
    #[serde(default, deserialize_with = "de::bool")]
    use_anonymous_authentication: bool,
    #[serde(default, deserialize_with = "de::opt_string")]
    node_name_env: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    node_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    reload_interval: Option<String>,
    #[serde(default, deserialize_with = "de::bool")]
    disable_container_selectors: bool,
    #[serde(default)]
    use_new_container_locator: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "de::bool")]
    verbose_container_locator_logs: bool,
    #[serde(default)]
    experimental: Option<serde_json::Value>,
}

/// Which kubelet port is queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeletPort {
    /// `kubelet_read_only_port`: plain HTTP on `127.0.0.1`, no authentication.
    ReadOnly(u16),
    /// `kubelet_secure_port` (default 10250): HTTPS on the node name (or
    /// `127.0.0.1`), authenticated with a token or a client certificate.
    Secure(u16),
}

/// The options of `WorkloadAttestor "k8s"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sAttestorConfig {
    /// The kubelet port and its protocol.
    pub port: KubeletPort,
    /// `max_poll_attempts` (default 60; 0 or less means the default).
    pub max_poll_attempts: u32,
    /// `poll_retry_interval` (default 500ms).
    pub poll_retry_interval: Duration,
    /// `kubelet_ca_path` (default the service account's `ca.crt`).
    pub kubelet_ca_path: PathBuf,
    /// `skip_kubelet_verification`: accept any kubelet certificate.
    pub skip_kubelet_verification: bool,
    /// `token_path` (default the service account's token), used unless a client
    /// certificate or anonymous authentication is configured.
    pub token_path: PathBuf,
    /// `certificate_path` (with `private_key_path`): client certificate.
    pub certificate_path: Option<PathBuf>,
    /// `private_key_path` (with `certificate_path`): the client certificate's key.
    pub private_key_path: Option<PathBuf>,
    /// `use_anonymous_authentication`: send no credentials to the secure port.
    pub use_anonymous_authentication: bool,
    /// The node name (`node_name`, else the `node_name_env` variable, default
    /// `MY_NODE_NAME`); empty means `127.0.0.1` and no host-name check of the
    /// kubelet's certificate (its chain is still verified).
    pub node_name: String,
    /// `reload_interval` (default 1m): how often credentials are re-read from disk.
    pub reload_interval: Duration,
    /// `disable_container_selectors`: only pod selectors, and a known pod is enough
    /// even before its container is listed.
    pub disable_container_selectors: bool,
    /// `verbose_container_locator_logs`: log what the container locator found.
    pub verbose_container_locator_logs: bool,
}

impl Default for K8sAttestorConfig {
    fn default() -> Self {
        K8sAttestorConfig {
            port: KubeletPort::Secure(DEFAULT_SECURE_KUBELET_PORT),
            max_poll_attempts: DEFAULT_MAX_POLL_ATTEMPTS,
            poll_retry_interval: DEFAULT_POLL_RETRY_INTERVAL,
            kubelet_ca_path: PathBuf::from(DEFAULT_KUBELET_CA_PATH),
            skip_kubelet_verification: false,
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
            certificate_path: None,
            private_key_path: None,
            use_anonymous_authentication: false,
            node_name: String::new(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            disable_container_selectors: false,
            verbose_container_locator_logs: false,
        }
    }
}

fn config_error(message: impl Into<String>) -> K8sAttestorError {
    K8sAttestorError::Config(message.into())
}

/// A positive Go duration, or `None` for unset/zero/negative (meaning the default).
fn positive_duration(key: &str, value: Option<&str>) -> Result<Option<Duration>, K8sAttestorError> {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let nanos = spire_common::duration::parse_nanos(text)
        .map_err(|e| config_error(format!("unable to parse {key}: {e}")))?;
    Ok(u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_nanos))
}

fn port(key: &str, value: Option<i64>) -> Result<Option<u16>, K8sAttestorError> {
    match value {
        None => Ok(None),
        Some(v) if v <= 0 => Ok(None),
        Some(v) => u16::try_from(v)
            .map(Some)
            .map_err(|_| config_error(format!("{key} {v} is not a port number"))),
    }
}

impl K8sAttestorConfig {
    /// Reads the `WorkloadAttestor "k8s"` plugin data, taking the node name from the
    /// process environment when `node_name` is not set.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, K8sAttestorError> {
        Self::from_plugin_with_env(plugin, |name| std::env::var(name).ok())
    }

    /// As [`from_plugin`](Self::from_plugin), with `getenv` for the environment.
    pub fn from_plugin_with_env(
        plugin: &PluginConfig,
        getenv: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, K8sAttestorError> {
        let raw: RawK8s = plugin
            .decode_data()
            .map_err(|e| config_error(format!("unable to decode configuration: {e}")))?;

        if let Some(experimental) = &raw.experimental
            && experimental.as_object().is_none_or(|o| !o.is_empty())
        {
            return Err(config_error(
                "experimental.sigstore (image signature verification) is not implemented in spire-rs",
            ));
        }
        if raw.use_new_container_locator.is_some() {
            tracing::warn!(
                "k8s workload attestor: use_new_container_locator is ignored; spire-rs always uses the new container locator"
            );
        }

        let read_only = port("kubelet_read_only_port", raw.kubelet_read_only_port)?;
        let secure = port("kubelet_secure_port", raw.kubelet_secure_port)?;
        let port = match (read_only, secure) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    "cannot use both the read-only and secure port",
                ));
            }
            (Some(p), None) => KubeletPort::ReadOnly(p),
            (None, Some(p)) => KubeletPort::Secure(p),
            (None, None) => KubeletPort::Secure(DEFAULT_SECURE_KUBELET_PORT),
        };

        let max_poll_attempts = raw
            .max_poll_attempts
            .filter(|n| *n > 0)
            .map_or(DEFAULT_MAX_POLL_ATTEMPTS, |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            });
        let poll_retry_interval =
            positive_duration("poll retry interval", raw.poll_retry_interval.as_deref())?
                .unwrap_or(DEFAULT_POLL_RETRY_INTERVAL);
        let reload_interval = positive_duration("reload interval", raw.reload_interval.as_deref())?
            .unwrap_or(DEFAULT_RELOAD_INTERVAL);

        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let certificate_path = nonempty(raw.certificate_path).map(PathBuf::from);
        let private_key_path = nonempty(raw.private_key_path).map(PathBuf::from);
        let token_path = nonempty(raw.token_path);
        if raw.use_anonymous_authentication
            && (certificate_path.is_some() || private_key_path.is_some() || token_path.is_some())
        {
            return Err(config_error(
                "use_anonymous_authentication cannot be combined with token_path, certificate_path or private_key_path",
            ));
        }

        let node_name = match nonempty(raw.node_name) {
            Some(name) => name,
            None => {
                let env = nonempty(raw.node_name_env);
                getenv(env.as_deref().unwrap_or(DEFAULT_NODE_NAME_ENV)).unwrap_or_default()
            }
        };

        Ok(K8sAttestorConfig {
            port,
            max_poll_attempts,
            poll_retry_interval,
            kubelet_ca_path: nonempty(raw.kubelet_ca_path)
                .map_or_else(|| PathBuf::from(DEFAULT_KUBELET_CA_PATH), PathBuf::from),
            skip_kubelet_verification: raw.skip_kubelet_verification,
            token_path: token_path.map_or_else(|| PathBuf::from(DEFAULT_TOKEN_PATH), PathBuf::from),
            certificate_path,
            private_key_path,
            use_anonymous_authentication: raw.use_anonymous_authentication,
            node_name,
            reload_interval,
            disable_container_selectors: raw.disable_container_selectors,
            verbose_container_locator_logs: raw.verbose_container_locator_logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_from_hcl(data: &str) -> Result<PluginConfig, Box<dyn std::error::Error>> {
        crate::workload::attestor_plugin_from_hcl("k8s", data)
    }

    fn parse(data: &str) -> Result<K8sAttestorConfig, Box<dyn std::error::Error>> {
        let plugin = plugin_from_hcl(data)?;
        Ok(K8sAttestorConfig::from_plugin_with_env(&plugin, |name| {
            (name == "MY_NODE_NAME").then(|| "node-a".to_owned())
        })?)
    }

    #[test]
    fn defaults_are_spire_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let cfg = parse("")?;
        assert_eq!(
            cfg,
            K8sAttestorConfig {
                node_name: "node-a".to_owned(),
                ..K8sAttestorConfig::default()
            }
        );
        Ok(())
    }

    #[test]
    fn options_are_read() -> Result<(), Box<dyn std::error::Error>> {
        let cfg = parse(
            "kubelet_read_only_port = 10255\n max_poll_attempts = 5\n \
             poll_retry_interval = \"250ms\"\n reload_interval = \"2m\"\n \
             node_name_env = \"NODE\"\n disable_container_selectors = true\n \
             use_new_container_locator = true",
        )?;
        assert_eq!(cfg.port, KubeletPort::ReadOnly(10255));
        assert_eq!(cfg.max_poll_attempts, 5);
        assert_eq!(cfg.poll_retry_interval, Duration::from_millis(250));
        assert_eq!(cfg.reload_interval, Duration::from_secs(120));
        assert_eq!(cfg.node_name, "");
        assert!(cfg.disable_container_selectors);

        let cfg = parse(
            "kubelet_secure_port = 11250\n node_name = \"n1\"\n skip_kubelet_verification = true\n \
             certificate_path = \"/c.pem\"\n private_key_path = \"/k.pem\"\n max_poll_attempts = -3",
        )?;
        assert_eq!(cfg.port, KubeletPort::Secure(11250));
        assert_eq!(cfg.node_name, "n1");
        assert!(cfg.skip_kubelet_verification);
        assert_eq!(cfg.certificate_path, Some(PathBuf::from("/c.pem")));
        assert_eq!(cfg.max_poll_attempts, DEFAULT_MAX_POLL_ATTEMPTS);
        Ok(())
    }

    #[test]
    fn invalid_options_are_refused() {
        for (data, message) in [
            (
                "kubelet_read_only_port = 1\n kubelet_secure_port = 2",
                "cannot use both the read-only and secure port",
            ),
            (
                "poll_retry_interval = \"soon\"",
                "unable to parse poll retry interval",
            ),
            ("reload_interval = \"x\"", "unable to parse reload interval"),
            ("kubelet_secure_port = 70000", "not a port number"),
            (
                "use_anonymous_authentication = true\n token_path = \"/t\"",
                "use_anonymous_authentication cannot be combined",
            ),
            (
                "experimental {\n sigstore {\n rekor_url = \"https://r\"\n }\n }",
                "experimental.sigstore",
            ),
            ("no_such_option = 1", "no_such_option"),
        ] {
            let error = parse(data).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(message), "{data}: {error}");
        }
    }
}

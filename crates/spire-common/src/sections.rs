//! Configuration sections that server and agent share: `health_checks` and `telemetry`.

use crate::hcl::{ConfigError, ConfigNode, Section, UnknownKeyCheck};

/// `health_checks { ... }`: the HTTP liveness/readiness listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChecksConfig {
    /// `listener_enabled` (default false).
    pub listener_enabled: bool,
    /// `bind_address` (default `localhost`).
    pub bind_address: String,
    /// `bind_port` (a string in SPIRE; default `"80"`).
    pub bind_port: String,
    /// `live_path` (default `/live`).
    pub live_path: String,
    /// `ready_path` (default `/ready`).
    pub ready_path: String,
}

impl Default for HealthChecksConfig {
    fn default() -> Self {
        HealthChecksConfig {
            listener_enabled: false,
            bind_address: "localhost".to_owned(),
            bind_port: "80".to_owned(),
            live_path: "/live".to_owned(),
            ready_path: "/ready".to_owned(),
        }
    }
}

impl HealthChecksConfig {
    /// Reads `health_checks` from the document root; unknown keys are reported under the
    /// section name SPIRE uses, `health check`.
    pub fn read(root: &Section, unknown: &mut UnknownKeyCheck) -> Result<Self, ConfigError> {
        let mut config = HealthChecksConfig::default();
        let Some(section) = root.section("health_checks", "health check")? else {
            return Ok(config);
        };
        if let Some(v) = section.bool("listener_enabled")? {
            config.listener_enabled = v;
        }
        if let Some(v) = section.non_empty_string("bind_address")? {
            config.bind_address = v;
        }
        if let Some(v) = section.non_empty_string("bind_port")? {
            config.bind_port = v;
        }
        if let Some(v) = section.non_empty_string("live_path")? {
            config.live_path = v;
        }
        if let Some(v) = section.non_empty_string("ready_path")? {
            config.ready_path = v;
        }
        unknown.check(&section);
        Ok(config)
    }
}

/// `telemetry { ... }`: metrics collectors. Kept raw as well as read, since the metrics
/// code owns the details; SPIRE checks unknown keys in each collector block but not at
/// the top of `telemetry`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryConfig {
    /// The whole `telemetry` section as written.
    pub raw: Option<ConfigNode>,
    /// `Prometheus { host, port, tls { ... } }`.
    pub prometheus: Option<PrometheusConfig>,
    /// `DogStatsd = [ { address = "..." } ]`.
    pub dogstatsd: Vec<String>,
    /// `Statsd = [ { address = "..." } ]`.
    pub statsd: Vec<String>,
    /// `M3 = [ { address = "...", env = "..." } ]`.
    pub m3: Vec<M3Config>,
    /// `InMem { enabled = ... }`; `Some` when the block is present.
    pub in_mem: Option<InMemConfig>,
    /// `MetricPrefix` (default: the service name, e.g. `spire_server`).
    pub metric_prefix: Option<String>,
    /// `EnableTrustDomainLabel` (default false).
    pub enable_trust_domain_label: Option<bool>,
    /// `EnableHostnameLabel` (default true).
    pub enable_hostname_label: Option<bool>,
    /// `AllowedPrefixes`.
    pub allowed_prefixes: Vec<String>,
    /// `BlockedPrefixes`.
    pub blocked_prefixes: Vec<String>,
    /// `AllowedLabels`.
    pub allowed_labels: Vec<String>,
    /// `BlockedLabels`.
    pub blocked_labels: Vec<String>,
}

/// The Prometheus collector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrometheusConfig {
    /// `host` (default `localhost`).
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// The `tls { ... }` block as written.
    pub tls: Option<ConfigNode>,
}

/// One M3 collector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct M3Config {
    /// `address`.
    pub address: String,
    /// `env`.
    pub env: String,
}

/// The in-memory collector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InMemConfig {
    /// `enabled` (default true).
    pub enabled: Option<bool>,
}

impl TelemetryConfig {
    /// Reads `telemetry` from the document root, checking each collector block for
    /// unknown keys (sections `Prometheus`, `DogStatsd`, `Statsd`, `M3`, `InMem`).
    pub fn read(root: &Section, unknown: &mut UnknownKeyCheck) -> Result<Self, ConfigError> {
        let raw = root.raw("telemetry");
        let Some(section) = root.section("telemetry", "telemetry")? else {
            return Ok(TelemetryConfig::default());
        };
        let mut config = TelemetryConfig {
            raw,
            ..TelemetryConfig::default()
        };
        if let Some(p) = section.section("Prometheus", "Prometheus")? {
            config.prometheus = Some(PrometheusConfig {
                host: p.non_empty_string("host")?,
                port: p.int_as("port")?,
                tls: p.raw("tls"),
            });
            unknown.check(&p);
        }
        for s in section.section_list("DogStatsd", "DogStatsd")? {
            config
                .dogstatsd
                .push(s.string("address")?.unwrap_or_default());
            unknown.check(&s);
        }
        for s in section.section_list("Statsd", "Statsd")? {
            config.statsd.push(s.string("address")?.unwrap_or_default());
            unknown.check(&s);
        }
        for s in section.section_list("M3", "M3")? {
            config.m3.push(M3Config {
                address: s.string("address")?.unwrap_or_default(),
                env: s.string("env")?.unwrap_or_default(),
            });
            unknown.check(&s);
        }
        if let Some(s) = section.section("InMem", "InMem")? {
            config.in_mem = Some(InMemConfig {
                enabled: s.bool("enabled")?,
            });
            unknown.check(&s);
        }
        config.metric_prefix = section.non_empty_string("MetricPrefix")?;
        config.enable_trust_domain_label = section.bool("EnableTrustDomainLabel")?;
        config.enable_hostname_label = section.bool("EnableHostnameLabel")?;
        config.allowed_prefixes = section.strings("AllowedPrefixes")?.unwrap_or_default();
        config.blocked_prefixes = section.strings("BlockedPrefixes")?.unwrap_or_default();
        config.allowed_labels = section.strings("AllowedLabels")?.unwrap_or_default();
        config.blocked_labels = section.strings("BlockedLabels")?.unwrap_or_default();
        // The top level of `telemetry` is not checked for unknown keys (spiffe/spire#1101).
        Ok(config)
    }
}

/// The undocumented `profiling_enabled`, `profiling_port`, `profiling_freq` and
/// `profiling_names` options of `server` and `agent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfilingConfig {
    /// `profiling_enabled`.
    pub enabled: bool,
    /// `profiling_port`.
    pub port: u16,
    /// `profiling_freq` (seconds between dumps).
    pub freq: u32,
    /// `profiling_names`.
    pub names: Vec<String>,
}

impl ProfilingConfig {
    /// Reads the `profiling_*` keys of a `server` or `agent` section.
    pub fn read(section: &Section) -> Result<Self, ConfigError> {
        Ok(ProfilingConfig {
            enabled: section.bool("profiling_enabled")?.unwrap_or(false),
            port: section.int_as("profiling_port")?.unwrap_or(0),
            freq: section.int_as("profiling_freq")?.unwrap_or(0),
            names: section.strings("profiling_names")?.unwrap_or_default(),
        })
    }
}

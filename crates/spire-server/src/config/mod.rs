//! `server.conf`: SPIRE server configuration, read as SPIRE reads it.
//!
//! [`ServerConfig::load`] follows `cmd/spire-server/cli/run/run.go`: read the file
//! (`-expandEnv` applied), merge the `run` flags over it and defaults under it (a flag
//! left at its zero value does not override), validate in SPIRE's order with SPIRE's
//! messages, and fail on unknown keys in the sections SPIRE checks (top level, `server`,
//! `ca_subject`, `ratelimit`, `federation.bundle_endpoint` and its deprecated `acme`,
//! each telemetry collector, `health_checks`). Non-fatal findings are returned in
//! [`ServerConfig::warnings`] for the caller to log once logging is up.
//!
//! As in SPIRE, a missing `server { }` section is not reported as such: the flags and
//! defaults make up a section, so the first error is `trust_domain must be configured`
//! unless `-trustDomain` is given.

mod federation;
mod plugins;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use spiffe_core::{SpiffeId, TrustDomain};
use spire_common::duration::{self, format_go};
use spire_common::flags::{given_path as flag_path, given_str as flag_str};
use spire_common::hcl::{
    self, ConfigError, ConfigObject, PluginConfig, PluginConstraint, Section, UnknownKeyCheck,
    check_plugin_counts, parse_plugins,
};
use spire_common::key_type::KeyType;
use spire_common::logging::{Level, LogFormat};
pub use spire_common::sections::ProfilingConfig;
use spire_common::sections::{HealthChecksConfig, TelemetryConfig};
use thiserror::Error;

pub use federation::{
    AcmeConfig, BundleEndpointConfig, BundleEndpointProfile, FederatesWithConfig,
    FederatesWithProfile, FederationConfig, ServingCertFileConfig,
};
pub use plugins::{
    DatabaseType, DiskKeyManagerConfig, DiskUpstreamAuthorityConfig, JoinTokenAttestorConfig,
    MemoryKeyManagerConfig, SqlDataStoreConfig,
};

/// Where `spire-server run` looks for its configuration without `-config`.
pub const DEFAULT_CONFIG_PATH: &str = "conf/server/server.conf";
/// The default admin API socket.
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/spire-server/private/api.sock";
/// The default TCP listener address.
pub const DEFAULT_BIND_ADDRESS: &str = "0.0.0.0";
/// The default TCP listener port.
pub const DEFAULT_BIND_PORT: u16 = 8081;
/// Default X.509-SVID lifetime.
pub const DEFAULT_X509_SVID_TTL: Duration = Duration::from_secs(3600);
/// Default JWT-SVID lifetime.
pub const DEFAULT_JWT_SVID_TTL: Duration = Duration::from_secs(300);
/// Default CA (and JWT signing key) lifetime.
pub const DEFAULT_CA_TTL: Duration = Duration::from_secs(24 * 3600);
/// SPIRE caps the SVID lifetime it can guarantee at 7 days...
pub const MAX_SVID_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// ... and at a sixth of the CA lifetime.
pub const CA_TTL_DIVISOR: u32 = 6;

/// Errors of loading `server.conf`.
#[derive(Debug, Error)]
pub enum ServerConfigError {
    /// Reading or parsing failed, or unknown keys were found.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A validation error, worded as SPIRE words it.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ServerConfigError {
    ServerConfigError::Invalid(msg.into())
}

/// The flags of `spire-server run` (and `validate`) that override the file.
///
/// Declared with their Go names for clap (rewrite the arguments with
/// [`spire_common::flags::go_style_args`] first). As with SPIRE's mergo merge, a flag left
/// empty (or `false`) does not override the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServerFlags {
    /// Path to a SPIRE config file.
    #[arg(long = "config", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// IP address or DNS name of the SPIRE server.
    #[arg(long = "bindAddress")]
    pub bind_address: Option<String>,
    /// Port number of the SPIRE server.
    #[arg(long = "serverPort")]
    pub server_port: Option<u16>,
    /// Directory to store runtime data to.
    #[arg(long = "dataDir")]
    pub data_dir: Option<PathBuf>,
    /// File to write logs to.
    #[arg(long = "logFile")]
    pub log_file: Option<PathBuf>,
    /// 'text' or 'json'.
    #[arg(long = "logFormat")]
    pub log_format: Option<String>,
    /// 'debug', 'info', 'warn', or 'error'.
    #[arg(long = "logLevel")]
    pub log_level: Option<String>,
    /// Include source file, line number and function name in log lines.
    #[arg(
        long = "logSourceLocation",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = clap::ArgAction::Set
    )]
    pub log_source_location: bool,
    /// The trust domain that this server belongs to.
    #[arg(long = "trustDomain")]
    pub trust_domain: Option<String>,
    /// Path to bind the SPIRE Server API socket to.
    #[arg(long = "socketPath")]
    pub socket_path: Option<PathBuf>,
    /// Expand environment variables in SPIRE config file.
    #[arg(
        long = "expandEnv",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = clap::ArgAction::Set
    )]
    pub expand_env: bool,
}

/// `ca_subject { country, organization, common_name }`: the CA's subject type.
pub use crate::ca::CaSubject;

/// `ratelimit { attestation, signing }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Limit AttestAgent to 1/s per client IP (default true).
    pub attestation: bool,
    /// Limit the signing RPCs to 500/s per client IP (default true).
    pub signing: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            attestation: true,
            signing: true,
        }
    }
}

/// `experimental { ... }` (keys here are not checked: unknown ones are kept in
/// [`ExperimentalConfig::unknown_keys`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentalConfig {
    /// `cache_reload_interval` (default 5s).
    pub cache_reload_interval: Duration,
    /// `full_cache_reload_interval` (default 24h).
    pub full_cache_reload_interval: Duration,
    /// `events_based_cache` (default false).
    pub events_based_cache: bool,
    /// `prune_events_older_than` (default 12h).
    pub prune_events_older_than: Duration,
    /// `event_timeout`, or its deprecated alias `sql_transaction_timeout` (default 15m).
    pub event_timeout: Duration,
    /// `agent_spiffe_id_as_selector` (default false).
    pub agent_spiffe_id_as_selector: bool,
    /// `auth_opa_policy_engine { local { rego_path, policy_data_path } }`.
    pub auth_opa_policy_engine: Option<OpaPolicyEngineConfig>,
    /// `require_pq_kem` (default false).
    pub require_pq_kem: bool,
    /// `wit_issuer`.
    pub wit_issuer: Option<String>,
    /// `wit_key_type`.
    pub wit_key_type: Option<KeyType>,
    /// `feature_flags`.
    pub feature_flags: Vec<String>,
    /// Keys of the block that are not known (accepted, as SPIRE does not check them).
    pub unknown_keys: Vec<String>,
}

impl Default for ExperimentalConfig {
    fn default() -> Self {
        ExperimentalConfig {
            cache_reload_interval: Duration::from_secs(5),
            full_cache_reload_interval: Duration::from_secs(24 * 3600),
            events_based_cache: false,
            prune_events_older_than: Duration::from_secs(12 * 3600),
            event_timeout: Duration::from_secs(15 * 60),
            agent_spiffe_id_as_selector: false,
            auth_opa_policy_engine: None,
            require_pq_kem: false,
            wit_issuer: None,
            wit_key_type: None,
            feature_flags: Vec::new(),
            unknown_keys: Vec::new(),
        }
    }
}

/// `auth_opa_policy_engine { local { rego_path, policy_data_path } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaPolicyEngineConfig {
    /// `local.rego_path`.
    pub rego_path: Option<PathBuf>,
    /// `local.policy_data_path`.
    pub policy_data_path: Option<PathBuf>,
}

/// `tls_config { min_tls_version, cipher_suites, curve_preferences }` for the server's
/// TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// `min_tls_version`, e.g. `VersionTLS13`.
    pub min_tls_version: Option<String>,
    /// `cipher_suites`, Go names.
    pub cipher_suites: Vec<String>,
    /// `curve_preferences`, Go names.
    pub curve_preferences: Vec<String>,
}

/// An IP network in CIDR notation (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address as written.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr { addr, prefix })
    }
}

/// The server configuration, with SPIRE's defaults applied and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `trust_domain` (required).
    pub trust_domain: TrustDomain,
    /// `bind_address` (default `0.0.0.0`; surrounding `[]` removed).
    pub bind_address: String,
    /// `bind_port` (default 8081; a string such as `"8081"` is accepted).
    pub bind_port: u16,
    /// `socket_path`, made absolute (default `/tmp/spire-server/private/api.sock`).
    pub socket_path: PathBuf,
    /// `data_dir` (required).
    pub data_dir: PathBuf,
    /// `log_level` (default INFO).
    pub log_level: Level,
    /// `log_format` (default text).
    pub log_format: LogFormat,
    /// `log_file` (standard error when unset).
    pub log_file: Option<PathBuf>,
    /// `log_source_location` (default false).
    pub log_source_location: bool,
    /// `admin_ids`.
    pub admin_ids: Vec<SpiffeId>,
    /// `agent_ttl`; defaults to `default_x509_svid_ttl`.
    pub agent_ttl: Duration,
    /// `default_x509_svid_ttl` (default 1h).
    pub default_x509_svid_ttl: Duration,
    /// `default_jwt_svid_ttl` (default 5m).
    pub default_jwt_svid_ttl: Duration,
    /// `ca_ttl` (default 24h).
    pub ca_ttl: Duration,
    /// `ca_key_type` (default ec-p256); also the server SVID key type.
    pub ca_key_type: KeyType,
    /// `jwt_key_type` (default: `ca_key_type`).
    pub jwt_key_type: KeyType,
    /// `jwt_issuer`.
    pub jwt_issuer: Option<String>,
    /// `disable_jwt_svids`.
    pub disable_jwt_svids: bool,
    /// `ca_subject` (default `C=US, O=SPIFFE`).
    pub ca_subject: CaSubject,
    /// `audit_log_enabled`.
    pub audit_log_enabled: bool,
    /// `ratelimit`.
    pub ratelimit: RateLimitConfig,
    /// `federation`.
    pub federation: Option<FederationConfig>,
    /// `experimental`.
    pub experimental: ExperimentalConfig,
    /// `prune_attested_nodes_expired_for` (unset: pruning off).
    pub prune_attested_nodes_expired_for: Option<Duration>,
    /// `prune_attested_nodes_batch_size` (default 1000).
    pub prune_attested_nodes_batch_size: u32,
    /// `prune_tofu_nodes`.
    pub prune_tofu_nodes: bool,
    /// `max_attested_node_info_staleness` (default 0s: no node cache).
    pub max_attested_node_info_staleness: Duration,
    /// `proxy_protocol_trusted_cidrs`.
    pub proxy_protocol_trusted_cidrs: Vec<Cidr>,
    /// `profiling_*`.
    pub profiling: ProfilingConfig,
    /// `tls_config`.
    pub tls_config: Option<TlsConfig>,
    /// `health_checks`.
    pub health_checks: HealthChecksConfig,
    /// `telemetry`.
    pub telemetry: TelemetryConfig,
    /// `plugins`, in document order.
    pub plugins: Vec<PluginConfig>,
    /// Non-fatal findings (SPIRE logs these as warnings at startup).
    pub warnings: Vec<String>,
}

impl ServerConfig {
    /// Loads `path` (with `-expandEnv` if `expand_env`), applies `flags`, validates.
    pub fn load(
        path: &Path,
        expand_env: bool,
        flags: &ServerFlags,
    ) -> Result<ServerConfig, ServerConfigError> {
        let object = hcl::load_file(path, expand_env)?;
        ServerConfig::from_object(object, flags)
    }

    /// Loads the file named by `-config` (default `conf/server/server.conf`) with the
    /// flags' `-expandEnv`.
    pub fn load_with_flags(flags: &ServerFlags) -> Result<ServerConfig, ServerConfigError> {
        let path = flags
            .config
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        ServerConfig::load(&path, flags.expand_env, flags)
    }

    /// Reads configuration text (HCL or JSON) instead of a file.
    pub fn parse(text: &str, flags: &ServerFlags) -> Result<ServerConfig, ServerConfigError> {
        ServerConfig::from_object(hcl::parse_str(text)?, flags)
    }

    /// The plugins of one type, in document order (disabled ones included).
    pub fn plugins_of_type<'a>(
        &'a self,
        plugin_type: &'a str,
    ) -> impl Iterator<Item = &'a PluginConfig> + 'a {
        hcl::plugins_of_type(&self.plugins, plugin_type)
    }

    /// The plugin with this type and name.
    pub fn plugin(&self, plugin_type: &str, name: &str) -> Option<&PluginConfig> {
        hcl::find_plugin(&self.plugins, plugin_type, name)
    }

    /// Builds the configuration from a parsed document.
    pub fn from_object(
        object: ConfigObject,
        flags: &ServerFlags,
    ) -> Result<ServerConfig, ServerConfigError> {
        let root = Section::root(object);
        let mut unknown = UnknownKeyCheck::new();
        let mut warnings = Vec::new();

        let server = root
            .section("server", "server")?
            .unwrap_or_else(|| Section::new("server", "server", ConfigObject::default()));
        let plugins_node = root.raw("plugins");

        // Merge: flag > file > default, zero values meaning unset.
        let bind_address = flag_str(&flags.bind_address)
            .or(server.non_empty_string("bind_address")?)
            .unwrap_or_else(|| DEFAULT_BIND_ADDRESS.to_owned());
        let file_port = server.int("bind_port")?.filter(|p| *p != 0);
        let bind_port: i64 = flags
            .server_port
            .filter(|p| *p != 0)
            .map(i64::from)
            .or(file_port)
            .unwrap_or(i64::from(DEFAULT_BIND_PORT));
        let trust_domain =
            flag_str(&flags.trust_domain).or(server.non_empty_string("trust_domain")?);
        let data_dir = flag_path(&flags.data_dir).or(server.non_empty_string("data_dir")?);
        let log_file = flag_path(&flags.log_file).or(server.non_empty_string("log_file")?);
        let log_format = flag_str(&flags.log_format).or(server.non_empty_string("log_format")?);
        let log_level = flag_str(&flags.log_level)
            .or(server.non_empty_string("log_level")?)
            .unwrap_or_else(|| "INFO".to_owned());
        let log_source_location =
            flags.log_source_location || server.bool("log_source_location")?.unwrap_or(false);
        let socket_path = flag_path(&flags.socket_path)
            .or(server.non_empty_string("socket_path")?)
            .unwrap_or_else(|| DEFAULT_SOCKET_PATH.to_owned());

        let admin_ids_raw = server.strings("admin_ids")?.unwrap_or_default();
        let agent_ttl_raw = server.non_empty_string("agent_ttl")?;
        let x509_ttl_raw = server.non_empty_string("default_x509_svid_ttl")?;
        let jwt_ttl_raw = server.non_empty_string("default_jwt_svid_ttl")?;
        let ca_ttl_raw = server.non_empty_string("ca_ttl")?;
        let ca_key_type_raw = server.non_empty_string("ca_key_type")?;
        let jwt_key_type_raw = server.non_empty_string("jwt_key_type")?;
        let jwt_issuer = server.non_empty_string("jwt_issuer")?;
        let disable_jwt_svids = server.bool("disable_jwt_svids")?.unwrap_or(false);
        let audit_log_enabled = server.bool("audit_log_enabled")?.unwrap_or(false);
        let prune_expired_raw = server.non_empty_string("prune_attested_nodes_expired_for")?;
        let prune_batch = server
            .int_as::<u32>("prune_attested_nodes_batch_size")?
            .filter(|n| *n != 0)
            .unwrap_or(1000);
        let prune_tofu_nodes = server.bool("prune_tofu_nodes")?.unwrap_or(false);
        let staleness_raw = server.non_empty_string("max_attested_node_info_staleness")?;
        let cidrs_raw = server
            .strings("proxy_protocol_trusted_cidrs")?
            .unwrap_or_default();
        let profiling = ProfilingConfig::read(&server)?;
        let tls_config = match server.section("tls_config", "tls_config")? {
            None => None,
            Some(s) => Some(TlsConfig {
                min_tls_version: s.non_empty_string("min_tls_version")?,
                cipher_suites: s.strings("cipher_suites")?.unwrap_or_default(),
                curve_preferences: s.strings("curve_preferences")?.unwrap_or_default(),
            }),
        };
        let ca_subject_section = server.section("ca_subject", "ca_subject")?;
        let ratelimit_section = server.section("ratelimit", "ratelimit")?;
        let federation_section = server.section("federation", "federation")?;
        let experimental_section = server.section("experimental", "experimental")?;

        // Read the experimental block now (its errors come later, in SPIRE's order).
        let exp = read_experimental_raw(experimental_section.as_ref())?;

        // validateConfig
        let Some(trust_domain_str) = trust_domain else {
            return Err(invalid("trust_domain must be configured"));
        };
        if bind_address.is_empty() || bind_port == 0 {
            return Err(invalid("bind_address and bind_port must be configured"));
        }
        let Some(data_dir) = data_dir else {
            return Err(invalid("data_dir must be configured"));
        };
        let Some(plugins_node) = plugins_node else {
            return Err(invalid("plugins section must be configured"));
        };
        let federation_raw = match &federation_section {
            Some(s) => Some(federation::read_raw(s)?),
            None => None,
        };
        if let Some(raw) = &federation_raw {
            raw.validate()?;
        }
        if exp.event_timeout.is_some() && exp.sql_transaction_timeout.is_some() {
            return Err(invalid(
                "both experimental sql_transaction_timeout and event_timeout set, only set event_timeout",
            ));
        }
        if exp.named_pipe_name.is_some() {
            return Err(invalid(
                "invalid configuration: named_pipe_name is not supported in this platform; please use socket_path instead",
            ));
        }

        // NewServerConfig
        let log_level = Level::parse(&log_level)
            .map_err(|e| invalid(format!("could not start logger: {e}")))?;
        let log_format = LogFormat::parse(log_format.as_deref().unwrap_or(""))
            .map_err(|e| invalid(format!("could not start logger: {e}")))?;

        let bind_address = bind_address.trim_matches(['[', ']']).to_owned();
        let bind_port = u16::try_from(bind_port).map_err(|_| {
            invalid(format!(
                "could not resolve bind address \"{bind_address}:{bind_port}\": address {bind_port}: invalid port"
            ))
        })?;
        let socket_path = std::path::absolute(&socket_path)
            .map_err(|e| invalid(format!("failed to get absolute path for socket_path: {e}")))?;

        let trust_domain = TrustDomain::parse(&trust_domain_str).map_err(|e| {
            invalid(format!(
                "could not parse trust_domain \"{trust_domain_str}\": {e}"
            ))
        })?;

        let mut ratelimit = RateLimitConfig::default();
        if let Some(s) = &ratelimit_section {
            if let Some(v) = s.bool("attestation")? {
                ratelimit.attestation = v;
            }
            if let Some(v) = s.bool("signing")? {
                ratelimit.signing = v;
            }
        }

        let federation = match &federation_raw {
            Some(raw) => Some(raw.build(Path::new(&data_dir), &mut warnings)?),
            None => None,
        };

        let mut admin_ids = Vec::new();
        for id in &admin_ids_raw {
            let parsed = SpiffeId::parse(id)
                .map_err(|e| invalid(format!("could not parse admin ID \"{id}\": {e}")))?;
            admin_ids.push(parsed);
        }

        let parse_ttl =
            |raw: &Option<String>, what: &str| -> Result<Option<Duration>, ServerConfigError> {
                match raw {
                    None => Ok(None),
                    Some(s) => duration::parse(s)
                        .map(Some)
                        .map_err(|e| invalid(format!("could not parse {what} \"{s}\": {e}"))),
                }
            };
        let agent_ttl = parse_ttl(&agent_ttl_raw, "agent ttl")?;
        let default_x509_svid_ttl =
            parse_ttl(&x509_ttl_raw, "default X509 SVID ttl")?.unwrap_or(DEFAULT_X509_SVID_TTL);
        let default_jwt_svid_ttl =
            parse_ttl(&jwt_ttl_raw, "default JWT SVID ttl")?.unwrap_or(DEFAULT_JWT_SVID_TTL);
        let ca_ttl = parse_ttl(&ca_ttl_raw, "default CA ttl")?.unwrap_or(DEFAULT_CA_TTL);

        let mut ttl_checks = vec![
            ("default_x509_svid_ttl", default_x509_svid_ttl),
            ("default_jwt_svid_ttl", default_jwt_svid_ttl),
        ];
        if let Some(t) = agent_ttl {
            ttl_checks.push(("agent_ttl", t));
        }
        for (name, ttl) in ttl_checks {
            if let Some(w) = ttl_warning(name, ttl, ca_ttl) {
                warnings.push(w);
            }
        }

        let ca_key_type = match &ca_key_type_raw {
            Some(s) => KeyType::parse_server(s)
                .map_err(|e| invalid(format!("error parsing ca_key_type: {e}")))?,
            None => KeyType::EcP256,
        };
        let jwt_key_type = match &jwt_key_type_raw {
            Some(s) => KeyType::parse_server(s)
                .map_err(|e| invalid(format!("error parsing jwt_key_type: {e}")))?,
            None => ca_key_type,
        };

        let mut ca_subject = CaSubject::default();
        if let Some(s) = &ca_subject_section {
            let subject = CaSubject {
                country: s.strings("country")?.unwrap_or_default(),
                organization: s.strings("organization")?.unwrap_or_default(),
                common_name: s.string("common_name")?.unwrap_or_default(),
            };
            if subject.country.is_empty()
                && subject.organization.is_empty()
                && subject.common_name.is_empty()
            {
                warnings.push(
                    "ca_subject configurable is set but empty; the default will be used".to_owned(),
                );
            } else {
                ca_subject = subject;
            }
        }

        let plugins = parse_plugins(&plugins_node)?;

        let telemetry = TelemetryConfig::read(&root, &mut unknown)?;
        let health_checks = HealthChecksConfig::read(&root, &mut unknown)?;

        // checkForUnknownConfig, in SPIRE's order of sections.
        let mut checked = UnknownKeyCheck::new();
        checked.check(&root);
        checked.check(&server);
        if let Some(s) = &ca_subject_section {
            checked.check(s);
        }
        if let Some(s) = &ratelimit_section {
            checked.check(s);
        }
        if let Some(raw) = &federation_raw {
            federation::check_unknown(raw, &mut checked);
        }
        checked.extend(unknown);
        checked.finish()?;

        // Experimental.
        let experimental = exp.build(&mut warnings)?;

        let mut proxy_protocol_trusted_cidrs = Vec::new();
        for c in &cidrs_raw {
            let cidr = c.parse::<Cidr>().map_err(|e| {
                invalid(format!(
                    "could not parse proxy_protocol_trusted_cidrs \"{c}\": {e}"
                ))
            })?;
            proxy_protocol_trusted_cidrs.push(cidr);
        }
        let prune_attested_nodes_expired_for =
            parse_ttl(&prune_expired_raw, "prune_attested_nodes_expired_for")?;
        let max_attested_node_info_staleness =
            parse_ttl(&staleness_raw, "max_attested_node_info_staleness")?.unwrap_or_default();

        // Plugin catalog cardinality (pkg/server/catalog).
        check_plugin_counts(
            &plugins,
            &[
                ("DataStore", PluginConstraint::EXACTLY_ONE),
                ("KeyManager", PluginConstraint::EXACTLY_ONE),
                ("UpstreamAuthority", PluginConstraint::MAYBE_ONE),
            ],
        )?;

        Ok(ServerConfig {
            trust_domain,
            bind_address,
            bind_port,
            socket_path,
            data_dir: PathBuf::from(data_dir),
            log_level,
            log_format,
            log_file: log_file.map(PathBuf::from),
            log_source_location,
            admin_ids,
            agent_ttl: agent_ttl.unwrap_or(default_x509_svid_ttl),
            default_x509_svid_ttl,
            default_jwt_svid_ttl,
            ca_ttl,
            ca_key_type,
            jwt_key_type,
            jwt_issuer,
            disable_jwt_svids,
            ca_subject,
            audit_log_enabled,
            ratelimit,
            federation,
            experimental,
            prune_attested_nodes_expired_for,
            prune_attested_nodes_batch_size: prune_batch,
            prune_tofu_nodes,
            max_attested_node_info_staleness,
            proxy_protocol_trusted_cidrs,
            profiling,
            tls_config,
            health_checks,
            telemetry,
            plugins,
            warnings,
        })
    }
}

/// The longest SVID lifetime a CA lifetime can guarantee (SPIRE's `MaxSVIDTTLForCATTL`).
pub fn max_svid_ttl_for_ca_ttl(ca_ttl: Duration) -> Duration {
    (ca_ttl / CA_TTL_DIVISOR).min(MAX_SVID_TTL)
}

/// The shortest CA lifetime that guarantees an SVID lifetime (`MinCATTLForSVIDTTL`).
pub fn min_ca_ttl_for_svid_ttl(svid_ttl: Duration) -> Duration {
    svid_ttl.saturating_mul(CA_TTL_DIVISOR)
}

/// SPIRE's `printDuration`: whole seconds, with `m0s` and `h0m` tails trimmed.
fn print_duration(d: Duration) -> String {
    let mut s = format_go(Duration::from_secs(d.as_secs()));
    if s.ends_with("m0s") {
        s.truncate(s.len() - 2);
    }
    if s.ends_with("h0m") {
        s.truncate(s.len() - 2);
    }
    s
}

/// The warning SPIRE logs when an SVID TTL may be cut short by CA rotation, if any.
pub fn ttl_warning(name: &str, ttl: Duration, ca_ttl: Duration) -> Option<String> {
    if ttl <= max_svid_ttl_for_ca_ttl(ca_ttl) {
        return None;
    }
    let message = if ttl < MAX_SVID_TTL {
        format!(
            "{name} is too high for the configured ca_ttl value. SVIDs with shorter lifetimes may be issued. Please set {name} to {} or less, or the ca_ttl to {} or more, to guarantee the full {name} lifetime when CA rotations are scheduled.",
            print_duration(max_svid_ttl_for_ca_ttl(ca_ttl)),
            print_duration(min_ca_ttl_for_svid_ttl(ttl)),
        )
    } else if ca_ttl < min_ca_ttl_for_svid_ttl(MAX_SVID_TTL) {
        format!(
            "{name} is too high and the ca_ttl is too low. SVIDs with shorter lifetimes may be issued. Please set {name} to {} or less, and the ca_ttl to {} or more, to guarantee the full {name} lifetime when CA rotations are scheduled.",
            print_duration(MAX_SVID_TTL),
            print_duration(min_ca_ttl_for_svid_ttl(MAX_SVID_TTL)),
        )
    } else {
        format!(
            "{name} is too high. SVIDs with shorter lifetimes may be issued. Please set {name} to {} or less to guarantee the full {name} lifetime when CA rotations are scheduled.",
            print_duration(max_svid_ttl_for_ca_ttl(ca_ttl)),
        )
    };
    Some(message)
}

/// The experimental block as written, before validation.
#[derive(Default)]
struct RawExperimental {
    present: bool,
    cache_reload_interval: Option<String>,
    full_cache_reload_interval: Option<String>,
    events_based_cache: bool,
    prune_events_older_than: Option<String>,
    event_timeout: Option<String>,
    sql_transaction_timeout: Option<String>,
    agent_spiffe_id_as_selector: bool,
    auth_opa_policy_engine: Option<OpaPolicyEngineConfig>,
    require_pq_kem: bool,
    wit_issuer: Option<String>,
    wit_key_type: Option<String>,
    feature_flags: Vec<String>,
    named_pipe_name: Option<String>,
    unknown_keys: Vec<String>,
}

/// Developer feature flags SPIRE knows.
const KNOWN_FEATURE_FLAGS: &[&str] = &["wit-svid"];

fn read_experimental_raw(section: Option<&Section>) -> Result<RawExperimental, ServerConfigError> {
    let Some(s) = section else {
        return Ok(RawExperimental::default());
    };
    let auth_opa_policy_engine = match s
        .section("auth_opa_policy_engine", "auth_opa_policy_engine")?
    {
        None => None,
        Some(engine) => {
            let local = engine.section("local", "local")?;
            Some(match local {
                None => OpaPolicyEngineConfig::default(),
                Some(l) => OpaPolicyEngineConfig {
                    rego_path: l.non_empty_string("rego_path")?.map(PathBuf::from),
                    policy_data_path: l.non_empty_string("policy_data_path")?.map(PathBuf::from),
                },
            })
        }
    };
    let raw = RawExperimental {
        present: true,
        cache_reload_interval: s.non_empty_string("cache_reload_interval")?,
        full_cache_reload_interval: s.non_empty_string("full_cache_reload_interval")?,
        events_based_cache: s.bool("events_based_cache")?.unwrap_or(false),
        prune_events_older_than: s.non_empty_string("prune_events_older_than")?,
        event_timeout: s.non_empty_string("event_timeout")?,
        sql_transaction_timeout: s.non_empty_string("sql_transaction_timeout")?,
        agent_spiffe_id_as_selector: s.bool("agent_spiffe_id_as_selector")?.unwrap_or(false),
        auth_opa_policy_engine,
        require_pq_kem: s.bool("require_pq_kem")?.unwrap_or(false),
        wit_issuer: s.non_empty_string("wit_issuer")?,
        wit_key_type: s.non_empty_string("wit_key_type")?,
        feature_flags: s.strings("feature_flags")?.unwrap_or_default(),
        named_pipe_name: s.non_empty_string("named_pipe_name")?,
        unknown_keys: Vec::new(),
    };
    Ok(RawExperimental {
        unknown_keys: s.unknown_keys(),
        ..raw
    })
}

impl RawExperimental {
    fn is_set(&self) -> bool {
        self.cache_reload_interval.is_some()
            || self.full_cache_reload_interval.is_some()
            || self.events_based_cache
            || self.prune_events_older_than.is_some()
            || self.event_timeout.is_some()
            || self.sql_transaction_timeout.is_some()
            || self.agent_spiffe_id_as_selector
            || self.auth_opa_policy_engine.is_some()
            || self.require_pq_kem
            || self.wit_issuer.is_some()
            || self.wit_key_type.is_some()
            || !self.feature_flags.is_empty()
            || self.named_pipe_name.is_some()
    }

    fn build(self, warnings: &mut Vec<String>) -> Result<ExperimentalConfig, ServerConfigError> {
        let mut c = ExperimentalConfig::default();
        if !self.present {
            return Ok(c);
        }
        for flag in &self.feature_flags {
            if !KNOWN_FEATURE_FLAGS.contains(&flag.as_str()) {
                return Err(invalid(format!(
                    "error loading feature flags: unknown feature flag \"{flag}\""
                )));
            }
        }
        if self.is_set() {
            warnings.push("Experimental features have been enabled. Please see doc/upgrading.md for upgrade and compatibility considerations for experimental features.".to_owned());
        }
        let parse =
            |raw: &Option<String>, what: &str| -> Result<Option<Duration>, ServerConfigError> {
                match raw {
                    None => Ok(None),
                    Some(s) => duration::parse(s)
                        .map(Some)
                        .map_err(|e| invalid(format!("could not parse {what}: {e}"))),
                }
            };
        if let Some(d) = parse(&self.cache_reload_interval, "cache reload interval")? {
            c.cache_reload_interval = d;
        }
        if let Some(d) = parse(&self.prune_events_older_than, "prune events interval")? {
            c.prune_events_older_than = d;
        }
        if self.sql_transaction_timeout.is_some() {
            warnings.push(
                "experimental.sql_transaction_timeout is deprecated, use experimental.event_timeout instead"
                    .to_owned(),
            );
        }
        if let Some(d) = parse(
            &self.sql_transaction_timeout,
            "SQL transaction timeout interval",
        )? {
            c.event_timeout = d;
        }
        if let Some(d) = parse(&self.event_timeout, "event timeout interval")? {
            c.event_timeout = d;
        }
        if let Some(d) = parse(
            &self.full_cache_reload_interval,
            "full cache reload interval",
        )? {
            c.full_cache_reload_interval = d;
        }
        if self.events_based_cache && c.full_cache_reload_interval <= c.cache_reload_interval {
            return Err(invalid(
                "full_cache_reload_interval must be greater than cache_reload_interval",
            ));
        }
        c.events_based_cache = self.events_based_cache;
        c.agent_spiffe_id_as_selector = self.agent_spiffe_id_as_selector;
        c.auth_opa_policy_engine = self.auth_opa_policy_engine;
        c.require_pq_kem = self.require_pq_kem;
        c.wit_issuer = self.wit_issuer;
        c.wit_key_type = match &self.wit_key_type {
            None => None,
            Some(s) => Some(
                KeyType::parse_server(s)
                    .map_err(|e| invalid(format!("error parsing wit_key_type: {e}")))?,
            ),
        };
        for flag in &self.feature_flags {
            warnings.push(format!(
                "Developer feature flag \"{flag}\" has been enabled"
            ));
        }
        c.feature_flags = self.feature_flags;
        c.unknown_keys = self.unknown_keys;
        Ok(c)
    }
}

//! `server { federation { ... } }`: the bundle endpoint this server serves and the trust
//! domains it federates with, validated with SPIRE's messages.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spiffe_core::{SpiffeId, TrustDomain};
use spire_common::duration;
use spire_common::hcl::{Section, UnknownKeyCheck};

use super::{ServerConfigError, invalid};

/// Let's Encrypt's production ACME v2 directory, SPIRE's default `directory_url`.
pub const DEFAULT_ACME_DIRECTORY_URL: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// The refresh hint advertised when none is configured.
pub const DEFAULT_REFRESH_HINT: Duration = Duration::from_secs(300);
/// Bundle clients do not refresh more often than this.
pub const MINIMUM_REFRESH_HINT: Duration = Duration::from_secs(60);

/// `federation { bundle_endpoint { ... } federates_with "td" { ... } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FederationConfig {
    /// This server's bundle endpoint, if served.
    pub bundle_endpoint: Option<BundleEndpointConfig>,
    /// Static federation relationships, in document order.
    pub federates_with: Vec<FederatesWithConfig>,
}

/// `bundle_endpoint { address, port, refresh_hint, profile ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEndpointConfig {
    /// `address` as written (SPIRE listens on all addresses when it is not an IP).
    pub address: String,
    /// `address` parsed as an IP address.
    pub ip: Option<IpAddr>,
    /// `port`.
    pub port: u16,
    /// `refresh_hint` (default 5m).
    pub refresh_hint: Duration,
    /// The serving profile.
    pub profile: BundleEndpointProfile,
}

/// How the bundle endpoint authenticates itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleEndpointProfile {
    /// `profile "https_spiffe" {}` (also the default when no profile is set): serve with
    /// the server's own X509-SVID.
    HttpsSpiffe,
    /// `profile "https_web" { acme { ... } }` (or the deprecated `acme` directly under
    /// `bundle_endpoint`).
    HttpsWebAcme(AcmeConfig),
    /// `profile "https_web" { serving_cert_file { ... } }`.
    HttpsWebServingCert(ServingCertFileConfig),
}

/// ACME settings for the https_web profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// `directory_url` (default Let's Encrypt production).
    pub directory_url: String,
    /// `domain_name`.
    pub domain_name: String,
    /// `email`.
    pub email: String,
    /// `tos_accepted` (default false).
    pub tos_accepted: bool,
    /// Where certificates are cached: `<data_dir>/bundle-acme`.
    pub cache_dir: PathBuf,
}

/// `serving_cert_file { cert_file_path, key_file_path, file_sync_interval }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingCertFileConfig {
    /// `cert_file_path`.
    pub cert_file_path: PathBuf,
    /// `key_file_path`.
    pub key_file_path: PathBuf,
    /// `file_sync_interval` (default 1h).
    pub file_sync_interval: Duration,
}

/// `federates_with "<trust domain>" { bundle_endpoint_url, bundle_endpoint_profile ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatesWithConfig {
    /// The federated trust domain.
    pub trust_domain: TrustDomain,
    /// `bundle_endpoint_url` (https).
    pub bundle_endpoint_url: String,
    /// `bundle_endpoint_profile`.
    pub profile: FederatesWithProfile,
}

/// How the remote bundle endpoint is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FederatesWithProfile {
    /// `bundle_endpoint_profile "https_web" {}`: Web PKI.
    HttpsWeb,
    /// `bundle_endpoint_profile "https_spiffe" { endpoint_spiffe_id = "..." }`.
    HttpsSpiffe {
        /// `endpoint_spiffe_id`.
        endpoint_spiffe_id: SpiffeId,
    },
}

struct RawAcme {
    section: Section,
    directory_url: Option<String>,
    domain_name: String,
    email: String,
    tos_accepted: bool,
}

fn read_acme(section: Section) -> Result<RawAcme, ServerConfigError> {
    Ok(RawAcme {
        directory_url: section.non_empty_string("directory_url")?,
        domain_name: section.string("domain_name")?.unwrap_or_default(),
        email: section.string("email")?.unwrap_or_default(),
        tos_accepted: section.bool("tos_accepted")?.unwrap_or(false),
        section,
    })
}

impl RawAcme {
    fn build(&self, data_dir: &Path) -> AcmeConfig {
        AcmeConfig {
            directory_url: self
                .directory_url
                .clone()
                .unwrap_or_else(|| DEFAULT_ACME_DIRECTORY_URL.to_owned()),
            domain_name: self.domain_name.clone(),
            email: self.email.clone(),
            tos_accepted: self.tos_accepted,
            cache_dir: data_dir.join("bundle-acme"),
        }
    }
}

struct RawBundleEndpoint {
    section: Section,
    address: String,
    port: i64,
    refresh_hint: Option<String>,
    acme: Option<RawAcme>,
    profiles: Option<Vec<(String, Section)>>,
}

struct RawFederatesWith {
    name: String,
    url: String,
    profiles: Option<Vec<(String, Section)>>,
}

/// The `federation` block as written.
pub(super) struct RawFederation {
    bundle_endpoint: Option<RawBundleEndpoint>,
    federates_with: Vec<RawFederatesWith>,
}

/// Reads the `federation` block (no validation yet).
pub(super) fn read_raw(section: &Section) -> Result<RawFederation, ServerConfigError> {
    let bundle_endpoint = match section.section("bundle_endpoint", "bundle endpoint")? {
        None => None,
        Some(be) => {
            let acme = match be.section("acme", "bundle endpoint ACME")? {
                Some(a) => Some(read_acme(a)?),
                None => None,
            };
            let profiles = if be.has("profile") {
                Some(be.labeled("profile", "profile")?)
            } else {
                be.touch(&["profile"]);
                None
            };
            Some(RawBundleEndpoint {
                address: be.string("address")?.unwrap_or_default(),
                port: be.int("port")?.unwrap_or(0),
                refresh_hint: be.non_empty_string("refresh_hint")?,
                acme,
                profiles,
                section: be,
            })
        }
    };
    let mut federates_with = Vec::new();
    for (name, fw) in section.labeled("federates_with", "federates_with")? {
        let profiles = if fw.has("bundle_endpoint_profile") {
            Some(fw.labeled("bundle_endpoint_profile", "bundle_endpoint_profile")?)
        } else {
            None
        };
        federates_with.push(RawFederatesWith {
            name,
            url: fw.string("bundle_endpoint_url")?.unwrap_or_default(),
            profiles,
        });
    }
    Ok(RawFederation {
        bundle_endpoint,
        federates_with,
    })
}

/// SPIRE checks `bundle_endpoint` and its deprecated `acme` for unknown keys, not the
/// rest of `federation`.
pub(super) fn check_unknown(raw: &RawFederation, check: &mut UnknownKeyCheck) {
    if let Some(be) = &raw.bundle_endpoint {
        check.check(&be.section);
        if let Some(acme) = &be.acme {
            check.check(&acme.section);
        }
    }
}

impl RawFederation {
    /// SPIRE's `validateConfig` checks on `federation`.
    pub(super) fn validate(&self) -> Result<(), ServerConfigError> {
        if let Some(acme) = self.bundle_endpoint.as_ref().and_then(|b| b.acme.as_ref()) {
            if acme.domain_name.is_empty() {
                return Err(invalid(
                    "federation.bundle_endpoint.acme.domain_name must be configured",
                ));
            }
            if acme.email.is_empty() {
                return Err(invalid(
                    "federation.bundle_endpoint.acme.email must be configured",
                ));
            }
        }
        for fw in &self.federates_with {
            if fw.url.is_empty() {
                return Err(invalid(format!(
                    "federation.federates_with[\"{}\"].bundle_endpoint_url must be configured",
                    fw.name
                )));
            }
            if !fw.url.to_ascii_lowercase().starts_with("https://") {
                return Err(invalid(format!(
                    "federation.federates_with[\"{}\"].bundle_endpoint_url must use the HTTPS protocol; URL found: \"{}\"",
                    fw.name, fw.url
                )));
            }
        }
        Ok(())
    }

    /// SPIRE's `NewServerConfig` handling of `federation`.
    pub(super) fn build(
        &self,
        data_dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<FederationConfig, ServerConfigError> {
        let bundle_endpoint = match &self.bundle_endpoint {
            None => None,
            Some(be) => Some(build_bundle_endpoint(be, data_dir, warnings)?),
        };
        let mut federates_with = Vec::new();
        for fw in &self.federates_with {
            let trust_domain = TrustDomain::parse(&fw.name)
                .map_err(|e| invalid(format!("{e}: \"{}\"", fw.name)))?;
            let Some(profiles) = &fw.profiles else {
                return Err(invalid(format!(
                    "federation configuration for trust domain \"{}\": missing bundle endpoint configuration",
                    fw.name
                )));
            };
            let wrap = |msg: String| {
                invalid(format!(
                    "error parsing federation relationship for trust domain \"{}\": {msg}",
                    fw.name
                ))
            };
            if profiles.len() != 1 {
                return Err(wrap(
                    "exactly one bundle endpoint profile is expected".to_owned(),
                ));
            }
            let (label, section) = &profiles[0];
            let profile = match label.as_str() {
                "https_web" => FederatesWithProfile::HttpsWeb,
                "https_spiffe" => {
                    let id = section.string("endpoint_spiffe_id")?.unwrap_or_default();
                    let endpoint_spiffe_id = SpiffeId::parse(&id)
                        .map_err(|e| wrap(format!("could not get endpoint SPIFFE ID: {e}")))?;
                    FederatesWithProfile::HttpsSpiffe { endpoint_spiffe_id }
                }
                _ => {
                    return Err(wrap(
                        "no bundle endpoint profile defined; current supported profiles are \"https_spiffe\" and 'https_web\""
                            .to_owned(),
                    ));
                }
            };
            federates_with.push(FederatesWithConfig {
                trust_domain,
                bundle_endpoint_url: fw.url.clone(),
                profile,
            });
        }
        Ok(FederationConfig {
            bundle_endpoint,
            federates_with,
        })
    }
}

fn build_bundle_endpoint(
    be: &RawBundleEndpoint,
    data_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<BundleEndpointConfig, ServerConfigError> {
    let refresh_hint = match &be.refresh_hint {
        None => DEFAULT_REFRESH_HINT,
        Some(s) => {
            let hint = duration::parse(s)
                .map_err(|e| invalid(format!("could not parse refresh_hint \"{s}\": {e}")))?;
            if hint >= Duration::from_secs(24 * 3600) {
                warnings.push("Bundle endpoint refresh hint set to a high value. To cover the case of unscheduled trust bundle updates, it's recommended to have a smaller value, e.g. 5m".to_owned());
            }
            if hint < MINIMUM_REFRESH_HINT {
                warnings.push(
                    "Bundle endpoint refresh hint set too low. SPIRE will not refresh more often than 1 minute"
                        .to_owned(),
                );
            }
            hint
        }
    };
    let port = u16::try_from(be.port).map_err(|_| {
        invalid(format!(
            "invalid value for server.federation.bundle_endpoint.port: {} is out of range",
            be.port
        ))
    })?;
    let profile = match (&be.acme, &be.profiles) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "either bundle endpoint 'acme' or 'profile' can be set, but not both",
            ));
        }
        (Some(acme), None) => {
            warnings.push("ACME configuration within the bundle_endpoint is deprecated. Please use ACME configuration as part of the https_web profile instead.".to_owned());
            BundleEndpointProfile::HttpsWebAcme(acme.build(data_dir))
        }
        (None, None) => {
            warnings.push("Bundle endpoint is configured but has no profile set, using https_spiffe as default; please configure a profile explicitly. This will be fatal in a future release.".to_owned());
            BundleEndpointProfile::HttpsSpiffe
        }
        (None, Some(profiles)) => {
            if profiles.len() != 1 {
                return Err(invalid("exactly one bundle endpoint profile is expected"));
            }
            let (label, section) = &profiles[0];
            match label.as_str() {
                "https_web" => {
                    if let Some(acme) = section.section("acme", "acme")? {
                        BundleEndpointProfile::HttpsWebAcme(read_acme(acme)?.build(data_dir))
                    } else if let Some(scf) =
                        section.section("serving_cert_file", "serving_cert_file")?
                    {
                        let interval = match scf.non_empty_string("file_sync_interval")? {
                            None => Duration::ZERO,
                            Some(s) => duration::parse(&s).map_err(|e| invalid(e.to_string()))?,
                        };
                        BundleEndpointProfile::HttpsWebServingCert(ServingCertFileConfig {
                            cert_file_path: PathBuf::from(
                                scf.string("cert_file_path")?.unwrap_or_default(),
                            ),
                            key_file_path: PathBuf::from(
                                scf.string("key_file_path")?.unwrap_or_default(),
                            ),
                            file_sync_interval: if interval.is_zero() {
                                Duration::from_secs(3600)
                            } else {
                                interval
                            },
                        })
                    } else {
                        return Err(invalid(
                            "malformed https_web profile configuration: 'acme' or 'serving_cert_file' is required",
                        ));
                    }
                }
                "https_spiffe" => BundleEndpointProfile::HttpsSpiffe,
                _ => {
                    return Err(invalid(
                        "unknown bundle endpoint profile configured; current supported profiles are \"https_spiffe\" and 'https_web\"",
                    ));
                }
            }
        }
    };
    Ok(BundleEndpointConfig {
        ip: be.address.parse().ok(),
        address: be.address.clone(),
        port,
        refresh_hint,
        profile,
    })
}

//! `spire.agent.debug.v1.Debug/GetInfo` (SPIRE's `pkg/agent/api/debug/v1`): the agent's
//! own SVID chain, uptime, last successful sync and cache sizes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use spire_proto::spire::agent::debug::v1::debug_server::Debug as DebugApi;
use spire_proto::spire::agent::debug::v1::{GetInfoRequest, GetInfoResponse, get_info_response};
use spire_proto::spire::api::types::Spiffeid;
use tonic::{Request, Response, Status};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::manager::{Cache, JwtSvidCache};

/// Where the Debug service reads the agent's state.
#[derive(Clone)]
pub struct DebugSources {
    /// When the agent started.
    pub started: Instant,
    /// The current agent SVID chain (DER, leaf first).
    pub svid_chain: Arc<dyn Fn() -> Vec<Vec<u8>> + Send + Sync>,
    /// The Unix time of the last successful sync with the server (0: none yet).
    pub last_sync_success: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The workload X.509-SVID cache.
    pub cache: Arc<Cache>,
    /// The JWT-SVID cache.
    pub jwt_cache: Arc<JwtSvidCache>,
}

/// The Debug service.
#[derive(Clone)]
pub struct DebugService {
    sources: DebugSources,
}

impl std::fmt::Debug for DebugService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugService").finish_non_exhaustive()
    }
}

impl DebugService {
    /// A service over `sources`.
    pub fn new(sources: DebugSources) -> Self {
        DebugService { sources }
    }
}

/// Go's `pkix.Name.String()`: the RDNs in reverse order, `,`-separated, with the
/// usual short attribute names (`CN`, `O`, `C`, ...) and dotted OIDs otherwise.
pub fn go_subject(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        let mut part = String::new();
        for (i, attr) in rdn.iter().enumerate() {
            if i > 0 {
                part.push('+');
            }
            let oid = attr.attr_type().to_id_string();
            let label = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.5" => "SERIALNUMBER",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.17" => "POSTALCODE",
                other => other,
            };
            let value = attr.as_str().unwrap_or_default();
            let _ = write!(part, "{label}={value}");
        }
        parts.push(part);
    }
    parts.reverse();
    parts.join(",")
}

/// One chain certificate as `GetInfo` reports it.
fn cert_info(der: &[u8]) -> Result<get_info_response::Cert, Status> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Status::internal(format!("failed to parse agent SVID chain: {e}")))?;
    let id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => {
                    spiffe_core::SpiffeId::parse(uri).ok()
                }
                _ => None,
            })
        })
        .map(|id| Spiffeid {
            trust_domain: id.trust_domain().name().to_owned(),
            path: id.path().to_owned(),
        });
    Ok(get_info_response::Cert {
        id,
        expires_at: cert.validity().not_after.timestamp(),
        subject: go_subject(cert.subject()),
    })
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[tonic::async_trait]
impl DebugApi for DebugService {
    async fn get_info(
        &self,
        _request: Request<GetInfoRequest>,
    ) -> Result<Response<GetInfoResponse>, Status> {
        let sources = &self.sources;
        let svid_chain = (sources.svid_chain)()
            .iter()
            .map(|der| cert_info(der))
            .collect::<Result<Vec<_>, _>>()?;
        let cached_x509 = sources
            .cache
            .entries()
            .iter()
            .filter(|entry| entry.svid.is_some())
            .count();
        let uptime = sources.started.elapsed().as_secs();
        #[allow(deprecated)]
        let response = GetInfoResponse {
            svid_chain,
            uptime: i32::try_from(uptime).unwrap_or(i32::MAX),
            svids_count: count(cached_x509),
            last_sync_success: (sources.last_sync_success)(),
            cached_x509_svids_count: count(cached_x509),
            cached_jwt_svids_count: count(sources.jwt_cache.len()),
            // spire-rs has no SVIDStore plugins.
            cached_svidstore_x509_svids_count: 0,
        };
        Ok(Response::new(response))
    }
}

/// The current Unix time, for recording a successful sync.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_print_as_go_does() -> Result<(), Box<dyn std::error::Error>> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "SPIRE");
        dn.push(rcgen::DnType::CommonName, "agent");
        params.distinguished_name = dn;
        let cert = params.self_signed(&rcgen::KeyPair::generate()?)?;
        let (_, parsed) = X509Certificate::from_der(cert.der())?;
        assert_eq!(go_subject(parsed.subject()), "CN=agent,O=SPIRE,C=US");
        Ok(())
    }
}

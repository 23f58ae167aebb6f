//! `spire.api.server.debug.v1.Debug` (server.md §3.4): uptime, datastore counts and the
//! server's own X509-SVID chain. Served on the admin Unix socket only (server.md §3.1).
//! As SPIRE does, the answer is cached for five seconds.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use spiffe_core::SpiffeId;
use spire_common::convert::id_to_proto;
use spire_proto::spire::api::server::debug::v1 as pb;
use spire_proto::spire::api::server::debug::v1::debug_server::Debug as DebugApi;
use tonic::{Request, Response, Status};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use super::{ApiContext, store_status};
use crate::datastore::{ListAttestedNodesRequest, ListEntriesRequest};

/// How long a GetInfo answer is reused (SPIRE's `cacheExpiry`).
const CACHE_EXPIRY: Duration = Duration::from_secs(5);

/// The server's current X509-SVID chain (leaf first), kept up to date by the rotator.
pub type ServerSvidChain = Arc<RwLock<Vec<CertificateDer<'static>>>>;

/// The Debug service.
#[derive(Clone)]
pub struct DebugService {
    ctx: Arc<ApiContext>,
    started: Instant,
    svid: ServerSvidChain,
    cache: Arc<Mutex<Option<(Instant, pb::GetInfoResponse)>>>,
}

impl DebugService {
    /// The service for a server started at `started` whose SVID chain is `svid`.
    pub fn new(ctx: Arc<ApiContext>, started: Instant, svid: ServerSvidChain) -> Self {
        DebugService {
            ctx,
            started,
            svid,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    async fn compute(&self) -> Result<pb::GetInfoResponse, Status> {
        let store = &self.ctx.store;
        let agents = store
            .count_attested_nodes(&ListAttestedNodesRequest::default())
            .await
            .map_err(store_status)?;
        let entries = store
            .count_registration_entries(&ListEntriesRequest::default())
            .await
            .map_err(store_status)?;
        let bundles = store.count_bundles().await.map_err(store_status)?;
        Ok(pb::GetInfoResponse {
            svid_chain: self.svid_chain(),
            uptime: clamp(self.started.elapsed().as_secs()),
            agents_count: clamp(agents),
            federated_bundles_count: clamp(bundles),
            entries_count: clamp(entries),
        })
    }

    /// The server SVID chain up to and including its root, as SPIRE reports the verified
    /// chain.
    fn svid_chain(&self) -> Vec<pb::get_info_response::Cert> {
        let mut chain = self
            .svid
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(root) = chain
            .last()
            .and_then(|last| issuing_root(last, &self.ctx.ca.x509_authorities()))
        {
            chain.push(root);
        }
        chain.iter().filter_map(describe).collect()
    }
}

/// The root among `roots` whose subject is the issuer of `cert` (none when `cert` is
/// itself one of the roots).
fn issuing_root(
    cert: &CertificateDer<'static>,
    roots: &[CertificateDer<'static>],
) -> Option<CertificateDer<'static>> {
    if roots.iter().any(|r| r.as_ref() == cert.as_ref()) {
        return None;
    }
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let issuer = parsed.issuer().as_raw();
    roots
        .iter()
        .find(|root| {
            X509Certificate::from_der(root.as_ref())
                .is_ok_and(|(_, r)| r.subject().as_raw() == issuer)
        })
        .cloned()
}

fn describe(der: &CertificateDer<'static>) -> Option<pb::get_info_response::Cert> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    Some(pb::get_info_response::Cert {
        id: uri_san_id(&cert).map(|id| id_to_proto(&id)),
        expires_at: cert.validity().not_after.timestamp(),
        subject: go_name_string(cert.subject()),
    })
}

/// The SPIFFE ID in a certificate's single URI SAN, as go-spiffe's `x509svid.IDFromCert`.
fn uri_san_id(cert: &X509Certificate<'_>) -> Option<SpiffeId> {
    let san = cert.subject_alternative_name().ok()??;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let uri = uris.next()?;
    if uris.next().is_some() {
        return None;
    }
    SpiffeId::parse(uri).ok()
}

/// A distinguished name as Go's `pkix.Name.String()` prints it: RFC 2253 order (last RDN
/// first), comma-separated, short attribute names.
fn go_name_string(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter().collect::<Vec<_>>().into_iter().rev() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type().to_id_string();
                let key = match oid.as_str() {
                    "2.5.4.6" => "C".to_owned(),
                    "2.5.4.10" => "O".to_owned(),
                    "2.5.4.11" => "OU".to_owned(),
                    "2.5.4.3" => "CN".to_owned(),
                    "2.5.4.5" => "SERIALNUMBER".to_owned(),
                    "2.5.4.7" => "L".to_owned(),
                    "2.5.4.8" => "ST".to_owned(),
                    "2.5.4.9" => "STREET".to_owned(),
                    "2.5.4.17" => "POSTALCODE".to_owned(),
                    other => other.to_owned(),
                };
                let value = attr
                    .as_str()
                    .map_or_else(|_| format!("#{}", hex(attr.attr_value().data)), escape);
                format!("{key}={value}")
            })
            .collect();
        parts.push(attrs.join("+"));
    }
    parts.join(",")
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn clamp<T: TryInto<i32>>(value: T) -> i32 {
    value.try_into().unwrap_or(i32::MAX)
}

#[tonic::async_trait]
impl DebugApi for DebugService {
    async fn get_info(
        &self,
        _request: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        if let Some((at, cached)) = &*self.cache.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < CACHE_EXPIRY
        {
            return Ok(Response::new(cached.clone()));
        }
        let fresh = self.compute().await?;
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), fresh.clone()));
        Ok(Response::new(fresh))
    }
}

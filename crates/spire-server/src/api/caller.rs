//! Who is calling: the admin socket, or a TCP peer with or without a verified SVID.

use std::time::SystemTime;

use http::Extensions;
use spiffe_core::parse_leaf_spiffe_id;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::authz::Caller;

/// Classifies the caller of a request from the connection info tonic attaches. A TCP
/// peer's certificate chain was already verified against the trust bundle during the
/// TLS handshake; here its SPIFFE ID, serial and expiry are read.
pub fn caller_of(extensions: &Extensions, now: SystemTime) -> Caller {
    if extensions.get::<UdsConnectInfo>().is_some() {
        return Caller::Local;
    }
    let Some(certs) = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
    else {
        return Caller::Anonymous;
    };
    let Some(leaf) = certs.first() else {
        return Caller::Anonymous;
    };
    let (Ok(id), Ok((_, cert))) = (
        parse_leaf_spiffe_id(leaf.as_ref()),
        X509Certificate::from_der(leaf.as_ref()),
    ) else {
        return Caller::Anonymous;
    };
    let not_after = cert.validity().not_after.timestamp();
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Caller::Svid {
        id,
        serial: cert.tbs_certificate.serial.to_string(),
        expired: not_after < now_secs,
    }
}

//! `spirers.server.revocation.v1.Revocation` (a spire-rs extension): revoke single
//! X.509-SVIDs by serial number and publish the revocation list as CRLs, one per local
//! X.509 CA (see [`crate::ca::crl`]). Agents fetch the CRLs on every sync and pass them
//! to workloads in the Workload API's `crl` field.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spire_proto::spirers::server::revocation::v1 as pb;
use spire_proto::spirers::server::revocation::v1::revocation_server::Revocation;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{ApiContext, store_status};
use crate::ca::crl::CrlPublisher;
use crate::datastore::{RevokedX509Svid, SqlStore};

/// How often revocations past their expiry are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Why a serial number is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid serial number {input:?}: {reason}")]
pub struct SerialError {
    input: String,
    reason: &'static str,
}

/// The stored form of a hexadecimal serial number: lowercase, no leading zeros. Accepts
/// an optional `0x` prefix and `:` separators (as `openssl x509 -text` prints serials).
/// Refuses empty, non-hex, zero, and serials longer than 20 bytes (RFC 5280 §4.1.2.2).
pub fn normalize_hex_serial(input: &str) -> Result<String, SerialError> {
    let err = |reason| SerialError {
        input: input.to_owned(),
        reason,
    };
    let trimmed = input.trim();
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed)
        .replace(':', "");
    if digits.is_empty() {
        return Err(err("it is empty"));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err("it is not hexadecimal"));
    }
    let serial = digits.trim_start_matches('0').to_ascii_lowercase();
    if serial.is_empty() {
        return Err(err("a serial number cannot be zero"));
    }
    if serial.len() > 40 {
        return Err(err("it is longer than 20 bytes"));
    }
    Ok(serial)
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn to_proto(r: &RevokedX509Svid) -> pb::RevokedX509svid {
    pb::RevokedX509svid {
        serial: r.serial.clone(),
        revoked_at: r.revoked_at,
        expires_at: r.expires_at,
    }
}

/// The revocation service.
#[derive(Clone)]
pub struct RevocationService {
    ctx: Arc<ApiContext>,
    crls: Arc<CrlPublisher>,
}

impl RevocationService {
    /// The service over the shared API context; `crls` caches the signed CRLs and should
    /// be shared by every listener of the server.
    pub fn new(ctx: Arc<ApiContext>, crls: Arc<CrlPublisher>) -> Self {
        RevocationService { ctx, crls }
    }

    /// When a revocation made now may be pruned by default: the latest expiry of the
    /// server's X.509 CAs (no SVID outlives its CA), or now plus the CA TTL when no CA
    /// is loaded.
    fn default_expiry(&self, now: SystemTime) -> SystemTime {
        let ca = &self.ctx.ca;
        ca.latest_x509_ca_expiry(now)
            .unwrap_or_else(|| now + ca.config().ca_ttl)
    }

    /// Every revocation in the datastore, as a gRPC result.
    async fn revoked(&self) -> Result<Vec<RevokedX509Svid>, Status> {
        self.ctx
            .store
            .list_revoked_x509_svids()
            .await
            .map_err(store_status)
    }
}

#[tonic::async_trait]
impl Revocation for RevocationService {
    async fn revoke_x509svid(
        &self,
        request: Request<pb::RevokeX509svidRequest>,
    ) -> Result<Response<pb::RevokeX509svidResponse>, Status> {
        let request = request.into_inner();
        let serial = normalize_hex_serial(&request.serial)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let now = self.ctx.ca.clock().now();
        let now_secs = unix_secs(now);
        let expires_at = match request.expires_at {
            0 => unix_secs(self.default_expiry(now)),
            t if t <= now_secs => {
                return Err(Status::invalid_argument(format!(
                    "expires_at {t} is not in the future"
                )));
            }
            t => t,
        };
        let revoked = self
            .ctx
            .store
            .revoke_x509_svid(&serial, now_secs, expires_at)
            .await
            .map_err(store_status)?;
        tracing::info!(
            serial = %revoked.serial,
            expires_at = revoked.expires_at,
            "X509-SVID revoked"
        );
        Ok(Response::new(pb::RevokeX509svidResponse {
            revoked: Some(to_proto(&revoked)),
        }))
    }

    async fn list_revoked_x509svi_ds(
        &self,
        _request: Request<pb::ListRevokedRequest>,
    ) -> Result<Response<pb::ListRevokedResponse>, Status> {
        let revoked = self.revoked().await?;
        Ok(Response::new(pb::ListRevokedResponse {
            revoked: revoked.iter().map(to_proto).collect(),
        }))
    }

    async fn get_x509cr_ls(
        &self,
        _request: Request<pb::CrlRequest>,
    ) -> Result<Response<pb::CrlResponse>, Status> {
        let revoked = self.revoked().await?;
        let crls = self.crls.crls(&self.ctx.ca, &revoked).map_err(|e| {
            tracing::error!(error = %e, "Unable to sign X509 CRLs");
            Status::internal(format!("unable to sign X509 CRLs: {e}"))
        })?;
        Ok(Response::new(pb::CrlResponse {
            crls: crls
                .into_iter()
                .map(|crl| pb::X509crl {
                    der: crl.der,
                    authority_id: crl.authority_id,
                })
                .collect(),
        }))
    }
}

/// Prunes revocations past their expiry every [`PRUNE_INTERVAL`] until `stop`.
pub async fn prune_loop(store: Arc<SqlStore>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                match store.prune_revoked_x509_svids(unix_secs(SystemTime::now())).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(pruned = n, "Pruned expired X509-SVID revocations"),
                    Err(e) => tracing::warn!(error = %e, "Unable to prune X509-SVID revocations"),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::normalize_hex_serial;

    #[test]
    fn hex_serials_are_normalized_or_refused() {
        assert_eq!(normalize_hex_serial("0x00AB:cd").unwrap(), "abcd");
        assert_eq!(normalize_hex_serial(" 1F ").unwrap(), "1f");
        assert_eq!(normalize_hex_serial("0A:0B").unwrap(), "a0b");
        for bad in ["", "0x", "00", "xyz", "12g4", &"1".repeat(41)] {
            assert!(normalize_hex_serial(bad).is_err(), "{bad}");
        }
    }
}

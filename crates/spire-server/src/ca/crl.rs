//! Certificate revocation lists for per-SVID revocation (a spire-rs extension).
//!
//! The server keeps a list of revoked X.509-SVID serial numbers in its datastore and
//! publishes it as one CRL per local X.509 CA it holds a key for (the active one, a
//! prepared next one and a rotated-out one that has not expired): the CRL's issuer is
//! that CA's subject, its authority key identifier is the CA's subject key identifier,
//! and it is signed through the KeyManager with the CA's key, so a workload checks it
//! with the same CA certificate that verifies its SVIDs.
//!
//! CRLs are cached by [`CrlPublisher`] and signed again only when the revocation list
//! or the set of CAs changes, or half of a CRL's validity has passed, so agents see a
//! new CRL (and re-send it to workloads) only when something changed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};

use super::profile::{self, to_offset};
use super::{CaError, ServerCa, X509Ca};
use crate::datastore::RevokedX509Svid;

/// How long a CRL is valid (`nextUpdate − thisUpdate`). Agents fetch CRLs on every sync
/// (seconds apart), and the server signs a fresh one after half of this, so a CRL a
/// workload holds is never older than this unless its agent lost the server.
pub const CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// One signed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCrl {
    /// The local authority ID (subject key ID, hex) of the CA that signed it.
    pub authority_id: String,
    /// The DER `CertificateList`.
    pub der: Vec<u8>,
    /// Its `thisUpdate`.
    pub this_update: SystemTime,
}

impl ServerCa {
    /// The local X.509 CAs whose key the server holds and that have not expired at
    /// `now`: active, prepared and rotated-out ones, current slot first.
    pub fn local_x509_cas(&self, now: SystemTime) -> Vec<Arc<X509Ca>> {
        let state = self.read();
        [&state.x509.current, &state.x509.next]
            .into_iter()
            .filter_map(|slot| slot.value.clone())
            .filter(|ca| now < ca.not_after)
            .collect()
    }

    /// The latest expiry of the local X.509 CAs: no X.509-SVID this server signed
    /// outlives it (every SVID's lifetime is capped at its CA's notAfter).
    pub fn latest_x509_ca_expiry(&self, now: SystemTime) -> Option<SystemTime> {
        self.local_x509_cas(now).iter().map(|ca| ca.not_after).max()
    }
}

/// The bytes of a serial in the stored form (lowercase hex without leading zeros).
fn serial_bytes(serial: &str) -> Result<Vec<u8>, String> {
    let padded = if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&padded[i..i + 2], 16)
                .map_err(|_| format!("invalid serial number {serial:?}"))
        })
        .collect()
}

fn unix_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Signs a CRL listing `revoked` with `ca`'s key.
pub fn sign_crl(
    ca: &X509Ca,
    revoked: &[RevokedX509Svid],
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, CaError> {
    let issue = CaError::issue("X509 CRL");
    let revoked_certs = revoked
        .iter()
        .map(|r| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial_bytes(&r.serial)?),
                revocation_time: to_offset(unix_time(r.revoked_at)).map_err(|e| e.to_string())?,
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(&issue)?;
    let key_id = ca
        .subject_key_id
        .clone()
        .unwrap_or_else(|| profile::subject_key_id(ca.key.public_key_raw()));
    let params = CertificateRevocationListParams {
        this_update: to_offset(this_update).map_err(|e| issue(e.to_string()))?,
        next_update: to_offset(next_update).map_err(|e| issue(e.to_string()))?,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(key_id),
    };
    let crl = params
        .signed_by(&ca.issuer)
        .map_err(|e| issue(e.to_string()))?;
    Ok(crl.der().to_vec())
}

#[derive(Debug, Default)]
struct Published {
    /// The CRL number of the last signing round.
    last_number: u64,
    /// The revocation list the CRLs were signed for.
    revoked: Vec<RevokedX509Svid>,
    crls: Vec<SignedCrl>,
}

/// Signs and caches the CRLs of the server's local X.509 CAs.
#[derive(Debug, Default)]
pub struct CrlPublisher {
    published: Mutex<Published>,
}

impl CrlPublisher {
    /// A publisher that has signed nothing yet.
    pub fn new() -> Self {
        CrlPublisher::default()
    }

    /// The CRLs for `revoked` (sorted by serial, as the datastore lists them), one per
    /// local X.509 CA of `ca`. Returns the cached ones when nothing changed and they are
    /// less than half of [`CRL_VALIDITY`] old; otherwise signs new ones with a CRL number
    /// greater than any before (seconds since the epoch, bumped if needed, so numbers
    /// keep growing across restarts).
    pub fn crls(
        &self,
        ca: &ServerCa,
        revoked: &[RevokedX509Svid],
    ) -> Result<Vec<SignedCrl>, CaError> {
        let now = profile::truncate_to_second(ca.clock().now());
        let cas = ca.local_x509_cas(now);
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let same_cas = published.crls.len() == cas.len()
            && published
                .crls
                .iter()
                .zip(&cas)
                .all(|(crl, ca)| crl.authority_id == ca.authority_id);
        let fresh = published
            .crls
            .iter()
            .all(|crl| now < crl.this_update + CRL_VALIDITY / 2);
        if same_cas && fresh && published.revoked == revoked {
            return Ok(published.crls.clone());
        }
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let number = now_secs.max(published.last_number + 1);
        let crls = cas
            .iter()
            .map(|x509_ca| {
                Ok(SignedCrl {
                    authority_id: x509_ca.authority_id.clone(),
                    der: sign_crl(x509_ca, revoked, number, now, now + CRL_VALIDITY)?,
                    this_update: now,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        tracing::debug!(
            crl_number = number,
            revoked = revoked.len(),
            authorities = crls.len(),
            "Signed X509 CRLs"
        );
        *published = Published {
            last_number: number,
            revoked: revoked.to_vec(),
            crls: crls.clone(),
        };
        Ok(crls)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::serial_bytes;

    #[test]
    fn serials_decode_with_odd_lengths() {
        assert_eq!(serial_bytes("1f2e").unwrap(), vec![0x1f, 0x2e]);
        assert_eq!(serial_bytes("abc").unwrap(), vec![0x0a, 0xbc]);
        assert!(serial_bytes("zz").is_err());
    }
}

//! Signing the X.509 CA of a downstream SPIRE server (SPIRE's `CA.SignDownstreamX509CA`,
//! spec server.md §4.5): an intermediate under this server's active CA, returned with
//! the chain up to (not including) the trust bundle roots.

use std::time::Duration;

use rcgen::{DnType, SubjectPublicKeyInfo};
use rustls_pki_types::CertificateDer;
use spiffe_core::PublicKey;

use super::profile::{
    capped_lifetime, downstream_ca_params, downstream_subject, new_serial, truncate_to_second,
};
use super::{CaError, ServerCa, rfc3339, verify};

const WHAT: &str = "downstream X509 CA";

impl ServerCa {
    /// Signs a downstream CA for `public_key_spki_der` (PKIX DER). `ttl` `None` or zero
    /// means `default_x509_svid_ttl` (SPIRE has always given downstream CAs the X509-SVID
    /// lifetime); the lifetime is capped at the active CA's notAfter. Returns the new CA
    /// followed by the active CA's upstream chain.
    pub fn sign_downstream_x509_ca(
        &self,
        public_key_spki_der: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        PublicKey::from_spki_der(public_key_spki_der)
            .map_err(|e| CaError::InvalidPublicKey(e.to_string()))?;
        let public_key = SubjectPublicKeyInfo::from_der(public_key_spki_der)
            .map_err(|e| CaError::InvalidPublicKey(e.to_string()))?;
        let ca = self
            .read()
            .x509
            .current
            .active()
            .cloned()
            .ok_or(CaError::NoX509Ca)?;
        let issue = CaError::issue(WHAT);
        let ttl = ttl
            .filter(|t| !t.is_zero())
            .unwrap_or(self.config.default_x509_svid_ttl);
        let now = self.clock.now();

        // The parent chain: the upstream chain when there is one, else the CA itself.
        let parent_chain: Vec<&CertificateDer<'static>> = if ca.upstream_chain.is_empty() {
            vec![&ca.certificate]
        } else {
            ca.upstream_chain.iter().collect()
        };
        let parent = subject_attributes(parent_chain[0])
            .map_err(|e| issue(format!("unreadable CA certificate subject: {e}")))?;
        let subject = downstream_subject(&parent, parent_chain.len());

        let serial = new_serial().map_err(|e| issue(e.to_string()))?;
        let (not_before, not_after) = capped_lifetime(now, ttl, Some(ca.not_after));
        let params = downstream_ca_params(
            &self.config.trust_domain,
            subject,
            serial,
            rcgen::PublicKeyData::der_bytes(&public_key),
            not_before,
            not_after,
            ca.subject_key_id.is_some(),
        )
        .map_err(|e| issue(e.to_string()))?;
        let cert = params
            .signed_by(&public_key, &ca.issuer)
            .map_err(|e| issue(e.to_string()))?;
        let cert: CertificateDer<'static> = cert.into();
        verify::validate_x509_ca(&cert, &self.config.trust_domain, public_key_spki_der, now)
            .map_err(CaError::validation(WHAT))?;

        let mut chain = Vec::with_capacity(1 + ca.upstream_chain.len());
        chain.push(cert);
        chain.extend(ca.upstream_chain.iter().cloned());
        tracing::debug!(
            expires_at = %rfc3339(truncate_to_second(not_after)),
            "Signed downstream X509 CA"
        );
        Ok(chain)
    }
}

/// The subject attributes of a certificate as (type, string value), in order.
fn subject_attributes(der: &[u8]) -> Result<Vec<(DnType, String)>, String> {
    let cert = verify::parse_cert(der)?;
    cert.subject()
        .iter_attributes()
        .map(|attr| {
            let value = attr
                .as_str()
                .map_err(|e| format!("non-string subject attribute: {e}"))?;
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .map(|arcs| arcs.collect())
                .ok_or_else(|| "subject attribute OID too large".to_owned())?;
            let ty = match oid.as_slice() {
                [2, 5, 4, 6] => DnType::CountryName,
                [2, 5, 4, 8] => DnType::StateOrProvinceName,
                [2, 5, 4, 7] => DnType::LocalityName,
                [2, 5, 4, 10] => DnType::OrganizationName,
                [2, 5, 4, 11] => DnType::OrganizationalUnitName,
                [2, 5, 4, 3] => DnType::CommonName,
                _ => DnType::CustomDnType(oid),
            };
            Ok((ty, value.to_owned()))
        })
        .collect()
}

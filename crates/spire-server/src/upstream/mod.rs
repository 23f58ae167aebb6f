//! UpstreamAuthority plugins: an outside CA that signs the server's intermediate X.509
//! CA (spec server.md §4.4).
//!
//! When an UpstreamAuthority is configured, the server does not self-sign its CA: it
//! sends a CSR for each new CA key to [`UpstreamAuthority::mint_x509_ca`] and signs SVIDs
//! with the returned intermediate. The trust bundle is then the upstream roots.
//!
//! Built-in implementation: [`DiskUpstreamAuthority`] (`disk`), which signs with a CA key
//! and certificate read from files.

mod disk;

use std::fmt;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use thiserror::Error;

pub use disk::{DiskUpstreamAuthority, DiskUpstreamConfig};

/// What [`UpstreamAuthority::mint_x509_ca`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedCa {
    /// The new intermediate CA first, then any upstream intermediates up to (not
    /// including) the roots.
    pub x509_ca_chain: Vec<CertificateDer<'static>>,
    /// The upstream trust roots, which become the trust domain's X.509 authorities.
    pub upstream_x509_roots: Vec<CertificateDer<'static>>,
}

/// Why an UpstreamAuthority call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The plugin configuration is invalid.
    #[error("upstreamauthority({plugin}): {reason}")]
    Config {
        /// The plugin name.
        plugin: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The CSR was refused.
    #[error("upstreamauthority({plugin}): {reason}")]
    InvalidCsr {
        /// The plugin name.
        plugin: &'static str,
        /// Why.
        reason: String,
    },
    /// The upstream CA material could not be loaded and no earlier copy is available.
    #[error("upstreamauthority({plugin}): {reason}")]
    Unavailable {
        /// The plugin name.
        plugin: &'static str,
        /// Why.
        reason: String,
    },
    /// Signing failed.
    #[error("upstreamauthority({plugin}): unable to sign: {reason}")]
    Signing {
        /// The plugin name.
        plugin: &'static str,
        /// Why.
        reason: String,
    },
}

/// An UpstreamAuthority plugin.
pub trait UpstreamAuthority: Send + Sync + fmt::Debug {
    /// The plugin name (`disk`, ...).
    fn name(&self) -> &'static str;

    /// Signs the intermediate CA requested by `csr_der` (PKCS#10 DER), with a lifetime of
    /// `preferred_ttl` if the authority allows it (an authority picks its own default for
    /// a zero TTL).
    fn mint_x509_ca(
        &self,
        csr_der: &[u8],
        preferred_ttl: Duration,
    ) -> Result<MintedCa, UpstreamError>;
}

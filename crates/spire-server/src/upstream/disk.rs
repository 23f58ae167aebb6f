//! The `disk` UpstreamAuthority: signs the server's intermediate CA with a CA key and
//! certificate read from files (SPIRE's `upstreamauthority/disk`).
//!
//! - `key_file_path`: PEM private key, EC (SEC1 `EC PRIVATE KEY` or PKCS#8) or RSA
//!   (PKCS#1 `RSA PRIVATE KEY` or PKCS#8). It must match the certificate.
//! - `cert_file_path`: PEM certificates. Without `bundle_file_path` it must hold exactly
//!   one certificate, which becomes the trust root. With `bundle_file_path`, it is the
//!   signing certificate followed by the intermediates up to the roots in the bundle
//!   file, and the chain is verified.
//! - `bundle_file_path` (optional): PEM root certificates.
//!
//! The files are re-read on every mint; if that fails, the last good copy is used.

use std::fs;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateSigningRequestParams, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ECDSA_P521_SHA512, PKCS_RSA_SHA256, PublicKeyData,
    SignatureAlgorithm, SubjectPublicKeyInfo,
};
use rustls_pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, PrivatePkcs1KeyDer,
    PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use serde::Deserialize;
use spiffe_core::{SpiffeId, TrustDomain};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};

use super::{MintedCa, UpstreamAuthority, UpstreamError};
use crate::ca::clock::Clock;
use crate::ca::profile::{capped_lifetime, new_serial, upstream_intermediate_params};
use crate::ca::verify::{
    check_simple_name, not_after, parse_and_verify_csr, parse_cert, subject_key_id, verify_ca_chain,
};

/// The plugin name.
const NAME: &str = "disk";

/// The TTL of a minted CA when the request has none (`x509svid.DefaultUpstreamCATTL`).
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The `plugin_data` of `UpstreamAuthority "disk"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DiskUpstreamConfig {
    /// PEM private key of the upstream CA (required).
    #[serde(default)]
    pub key_file_path: String,
    /// PEM certificate(s) of the upstream CA (required).
    #[serde(default)]
    pub cert_file_path: String,
    /// PEM root certificates, when the upstream CA is not itself a root.
    #[serde(default)]
    pub bundle_file_path: Option<String>,
}

/// The `disk` UpstreamAuthority.
#[derive(Debug)]
pub struct DiskUpstreamAuthority {
    config: DiskUpstreamConfig,
    trust_domain: TrustDomain,
    clock: Arc<dyn Clock>,
    loaded: Mutex<Arc<Loaded>>,
}

/// The upstream CA material, as last loaded.
struct Loaded {
    key_pair: KeyPair,
    /// The signing certificate (first of the cert file).
    cert: CertificateDer<'static>,
    /// With a bundle: every certificate of the cert file, signing certificate first.
    /// Without one: empty (the signing certificate is the root).
    cert_chain: Vec<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
    not_after: SystemTime,
    has_subject_key_id: bool,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("cert_chain_len", &self.cert_chain.len())
            .field("roots", &self.roots.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn config_error(reason: impl Into<String>) -> UpstreamError {
    UpstreamError::Config {
        plugin: NAME,
        reason: reason.into(),
    }
}

impl DiskUpstreamAuthority {
    /// Configures the plugin for `trust_domain` and loads the CA material; fails if the
    /// files cannot be loaded or do not form a valid CA.
    pub fn new(
        config: DiskUpstreamConfig,
        trust_domain: TrustDomain,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, UpstreamError> {
        if config.key_file_path.is_empty() {
            return Err(config_error("key_file_path is required"));
        }
        if config.cert_file_path.is_empty() {
            return Err(config_error("cert_file_path is required"));
        }
        let loaded = load(&config, clock.now())
            .map_err(|e| config_error(format!("failed to load upstream CA: {e}")))?;
        Ok(DiskUpstreamAuthority {
            config,
            trust_domain,
            clock,
            loaded: Mutex::new(Arc::new(loaded)),
        })
    }

    fn loaded(&self) -> MutexGuard<'_, Arc<Loaded>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-reads the files; keeps the last good material when that fails.
    fn reload(&self, now: SystemTime) -> Arc<Loaded> {
        match load(&self.config, now) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.loaded() = Arc::clone(&fresh);
                fresh
            }
            Err(err) => {
                tracing::warn!(
                    plugin = NAME,
                    error = %err,
                    "Unable to reload upstream CA; using the last loaded copy"
                );
                Arc::clone(&self.loaded())
            }
        }
    }

    /// Checks the CSR's URI SANs: exactly one, the trust domain's own ID.
    fn check_csr_uris(&self, uris: &[String]) -> Result<(), UpstreamError> {
        let invalid = |reason: String| UpstreamError::InvalidCsr {
            plugin: NAME,
            reason,
        };
        let [uri] = uris else {
            return Err(invalid("CSR must have exactly one URI SAN".to_owned()));
        };
        let id = SpiffeId::parse(uri).map_err(|e| invalid(format!("{uri:?}: {e}")))?;
        if !id.is_member_of(&self.trust_domain) {
            return Err(invalid(format!(
                "{uri:?} does not belong to trust domain {:?}",
                self.trust_domain.name()
            )));
        }
        if !id.is_root() {
            return Err(invalid(format!(
                "{uri:?} is not a valid trust domain SPIFFE ID: path is not empty"
            )));
        }
        Ok(())
    }
}

impl UpstreamAuthority for DiskUpstreamAuthority {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mint_x509_ca(
        &self,
        csr_der: &[u8],
        preferred_ttl: Duration,
    ) -> Result<MintedCa, UpstreamError> {
        let now = self.clock.now();
        let loaded = self.reload(now);
        let invalid = |reason: String| UpstreamError::InvalidCsr {
            plugin: NAME,
            reason,
        };
        let signing = |reason: String| UpstreamError::Signing {
            plugin: NAME,
            reason,
        };

        let csr = parse_and_verify_csr(csr_der).map_err(invalid)?;
        self.check_csr_uris(&csr.uris)?;
        if let Some(err) = csr.subject_error {
            return Err(invalid(err));
        }
        let requested =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|e| invalid(format!("unable to parse CSR: {e}")))?;
        let public_key = SubjectPublicKeyInfo::from_der(&csr.spki_der)
            .map_err(|e| invalid(format!("unsupported CSR public key: {e}")))?;

        let ttl = if preferred_ttl.is_zero() {
            DEFAULT_TTL
        } else {
            preferred_ttl
        };
        let (not_before, not_after) = capped_lifetime(now, ttl, Some(loaded.not_after));
        let serial = new_serial().map_err(|e| signing(e.to_string()))?;
        let params = upstream_intermediate_params(
            requested.params.distinguished_name,
            &csr.uris,
            serial,
            public_key.der_bytes(),
            not_before,
            not_after,
            loaded.has_subject_key_id,
        )
        .map_err(|e| signing(e.to_string()))?;
        let issuer = Issuer::from_ca_cert_der(&loaded.cert, &loaded.key_pair)
            .map_err(|e| signing(format!("unusable upstream certificate: {e}")))?;
        let cert = params
            .signed_by(&public_key, &issuer)
            .map_err(|e| signing(e.to_string()))?;
        let cert: CertificateDer<'static> = cert.into();

        // rcgen re-encodes the issuer name from the upstream certificate; make sure it
        // came out byte-identical, or path building would fail downstream.
        let issued = parse_cert(&cert).map_err(signing)?;
        let upstream = parse_cert(&loaded.cert).map_err(signing)?;
        if issued.issuer().as_raw() != upstream.subject().as_raw() {
            return Err(signing(
                "the upstream certificate's subject name cannot be reproduced exactly".to_owned(),
            ));
        }

        let mut x509_ca_chain = Vec::with_capacity(1 + loaded.cert_chain.len());
        x509_ca_chain.push(cert);
        x509_ca_chain.extend(loaded.cert_chain.iter().cloned());
        Ok(MintedCa {
            x509_ca_chain,
            upstream_x509_roots: loaded.roots.clone(),
        })
    }
}

/// Reads and checks the key, certificate and bundle files.
fn load(config: &DiskUpstreamConfig, now: SystemTime) -> Result<Loaded, String> {
    let key_pem = fs::read(&config.key_file_path)
        .map_err(|e| format!("unable to read {}: {e}", config.key_file_path))?;
    let cert_pem = fs::read(&config.cert_file_path)
        .map_err(|e| format!("unable to read {}: {e}", config.cert_file_path))?;
    let mut certs = load_certificates(&cert_pem, &config.cert_file_path)?;
    let cert = certs
        .first()
        .cloned()
        .ok_or_else(|| format!("no certificates found in {}", config.cert_file_path))?;

    let roots = match config.bundle_file_path.as_deref().filter(|p| !p.is_empty()) {
        None => {
            if certs.len() != 1 {
                return Err(
                    "with no bundle_file_path configured only self-signed CAs are supported"
                        .to_owned(),
                );
            }
            std::mem::take(&mut certs)
        }
        Some(bundle_path) => {
            let bundle_pem =
                fs::read(bundle_path).map_err(|e| format!("unable to read {bundle_path}: {e}"))?;
            load_certificates(&bundle_pem, bundle_path)?
        }
    };

    let parsed = parse_cert(&cert)?;
    check_simple_name(parsed.subject(), "the upstream certificate's subject")?;
    let alg = signature_algorithm_for(&parsed)?;
    let key_pair = load_private_key(&key_pem, alg, &config.key_file_path)?;
    if key_pair.der_bytes() != parsed.public_key().subject_public_key.data.as_ref() {
        return Err("certificate and private key does not match".to_owned());
    }

    let chain: &[CertificateDer<'static>] = if certs.is_empty() {
        std::slice::from_ref(&cert)
    } else {
        &certs
    };
    verify_ca_chain(chain, &roots, now).map_err(|e| {
        format!(
            "certificate cannot be validated with the provided bundle or is not self-signed: {e}"
        )
    })?;

    let not_after = not_after(&parsed);
    let has_subject_key_id = subject_key_id(&parsed).is_some();
    drop(parsed);
    Ok(Loaded {
        key_pair,
        cert,
        cert_chain: certs,
        roots,
        not_after,
        has_subject_key_id,
    })
}

/// The `CERTIFICATE` blocks of a PEM file (at least one).
fn load_certificates(pem_bytes: &[u8], path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| format!("unable to parse {path}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(format!("no certificates found in {path}"));
    }
    for cert in &certs {
        parse_cert(cert).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(certs)
}

/// The signature algorithm the CA key signs with, Go's default for the key: ECDSA with
/// the curve's hash (P-256 → SHA-256, P-384 → SHA-384, P-521 → SHA-512), RSA PKCS#1 v1.5
/// with SHA-256.
fn signature_algorithm_for(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<&'static SignatureAlgorithm, String> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(&PKCS_RSA_SHA256);
    }
    if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(&PKCS_ECDSA_P256_SHA256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(&PKCS_ECDSA_P384_SHA384),
            Some(c) if c == OID_NIST_EC_P521 => Ok(&PKCS_ECDSA_P521_SHA512),
            _ => Err("unsupported EC curve in the upstream certificate".to_owned()),
        };
    }
    Err(format!(
        "unsupported public key algorithm {} in the upstream certificate",
        spki.algorithm.algorithm
    ))
}

/// The first private key block of a PEM file: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY`
/// (SEC1) or `RSA PRIVATE KEY` (PKCS#1). Other blocks (`EC PARAMETERS`) are skipped.
fn load_private_key(
    pem_bytes: &[u8],
    alg: &'static SignatureAlgorithm,
    path: &str,
) -> Result<KeyPair, String> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| format!("unable to parse {path}: {e}"))?;
    for block in blocks {
        let der: PrivateKeyDer<'_> = match block.tag() {
            "PRIVATE KEY" => PrivatePkcs8KeyDer::from(block.contents()).into(),
            "EC PRIVATE KEY" => PrivateSec1KeyDer::from(block.contents()).into(),
            "RSA PRIVATE KEY" => PrivatePkcs1KeyDer::from(block.contents()).into(),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(format!("{path}: encrypted private keys are not supported"));
            }
            _ => continue,
        };
        return KeyPair::from_der_and_sign_algo(&der, alg)
            .map_err(|_| "certificate and private key does not match".to_owned());
    }
    Err(format!("no private key found in {path}"))
}

//! Agent `NodeAttestor "x509pop"` (SPIRE's `doc/plugin_agent_nodeattestor_x509pop.md`):
//! sends the node's certificate chain and proves possession of its private key by
//! signing the server's nonce challenge. Files are read at every attestation, so a
//! re-provisioned certificate is picked up by the next re-attestation.
//!
//! Keys: RSA and ECDSA P-256, in PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
//! PKCS#1 (`RSA PRIVATE KEY`) PEM.

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
use serde::Deserialize;
use spire_common::hcl::PluginConfig;
use spire_common::x509pop::{self as pop, PrivateKey};

use super::{AttestorError, NodeAttestor};

/// The plugin name.
pub const PLUGIN_NAME: &str = "x509pop";

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    private_key_path: Option<String>,
    #[serde(default)]
    certificate_path: Option<String>,
    #[serde(default)]
    intermediates_path: Option<String>,
}

/// The plugin data of the agent's `NodeAttestor "x509pop"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509PopConfig {
    /// `private_key_path`: PEM private key of the node certificate.
    pub private_key_path: PathBuf,
    /// `certificate_path`: PEM node certificate, optionally followed by intermediates.
    pub certificate_path: PathBuf,
    /// `intermediates_path`: optional PEM intermediates.
    pub intermediates_path: Option<PathBuf>,
}

impl X509PopConfig {
    /// Reads the plugin data; both key and certificate paths are required.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, AttestorError> {
        let raw: RawConfig = plugin
            .decode_data()
            .map_err(|e| AttestorError(format!("x509pop: unable to decode configuration: {e}")))?;
        let private_key_path = raw
            .private_key_path
            .filter(|p| !p.is_empty())
            .ok_or_else(|| AttestorError("x509pop: private_key_path is required".into()))?;
        let certificate_path = raw
            .certificate_path
            .filter(|p| !p.is_empty())
            .ok_or_else(|| AttestorError("x509pop: certificate_path is required".into()))?;
        Ok(X509PopConfig {
            private_key_path: PathBuf::from(private_key_path),
            certificate_path: PathBuf::from(certificate_path),
            intermediates_path: raw
                .intermediates_path
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// The agent x509pop attestor.
#[derive(Debug, Clone)]
pub struct X509PopAttestor {
    config: X509PopConfig,
}

impl X509PopAttestor {
    /// The attestor over its configuration.
    pub fn new(config: X509PopConfig) -> Self {
        X509PopAttestor { config }
    }

    fn certificates(&self) -> Result<Vec<Vec<u8>>, AttestorError> {
        let mut certs = read_pem(&self.config.certificate_path, "certificate")?
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(pem::Pem::into_contents)
            .collect::<Vec<_>>();
        if certs.is_empty() {
            return Err(AttestorError(format!(
                "x509pop: no certificate found in {}",
                self.config.certificate_path.display()
            )));
        }
        if let Some(path) = &self.config.intermediates_path {
            certs.extend(
                read_pem(path, "intermediates")?
                    .into_iter()
                    .filter(|b| b.tag() == "CERTIFICATE")
                    .map(pem::Pem::into_contents),
            );
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKey, AttestorError> {
        let blocks = read_pem(&self.config.private_key_path, "private key")?;
        let block = blocks.first().ok_or_else(|| {
            AttestorError(format!(
                "x509pop: no private key found in {}",
                self.config.private_key_path.display()
            ))
        })?;
        let der = block.contents();
        let key = match block.tag() {
            "PRIVATE KEY" => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(PrivateKey::EcdsaP256)
                .ok()
                .or_else(|| RsaKeyPair::from_pkcs8(der).map(PrivateKey::Rsa).ok()),
            "EC PRIVATE KEY" => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map(PrivateKey::EcdsaP256)
                    .ok()
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(der).map(PrivateKey::Rsa).ok(),
            _ => None,
        };
        key.ok_or_else(|| {
            AttestorError(format!(
                "x509pop: unsupported private key in {} (RSA or ECDSA P-256 expected)",
                self.config.private_key_path.display()
            ))
        })
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<pem::Pem>, AttestorError> {
    let bytes = std::fs::read(path).map_err(|e| {
        AttestorError(format!(
            "x509pop: unable to read {what} {}: {e}",
            path.display()
        ))
    })?;
    pem::parse_many(&bytes).map_err(|e| {
        AttestorError(format!(
            "x509pop: unable to parse {what} {}: {e}",
            path.display()
        ))
    })
}

impl NodeAttestor for X509PopAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn payload(&self) -> Result<Vec<u8>, AttestorError> {
        let data = pop::AttestationData {
            certificates: self.certificates()?,
        };
        serde_json::to_vec(&data)
            .map_err(|e| AttestorError(format!("x509pop: unable to marshal attestation data: {e}")))
    }

    fn respond(&self, challenge: &[u8]) -> Result<Vec<u8>, AttestorError> {
        let challenge: pop::Challenge = serde_json::from_slice(challenge)
            .map_err(|e| AttestorError(format!("x509pop: unable to unmarshal challenge: {e}")))?;
        let key = self.private_key()?;
        let response = pop::calculate_response(&key, &challenge).map_err(|e| {
            AttestorError(format!(
                "x509pop: failed to calculate challenge response: {e}"
            ))
        })?;
        serde_json::to_vec(&response).map_err(|e| {
            AttestorError(format!(
                "x509pop: unable to marshal challenge response: {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, KeyUsagePurpose};

    fn attestor(dir: &tempfile::TempDir, key: &KeyPair, key_pem: String) -> X509PopAttestor {
        let mut params = CertificateParams::default();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(key).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write");
        std::fs::write(dir.path().join("key.pem"), key_pem).expect("write");
        X509PopAttestor::new(X509PopConfig {
            private_key_path: dir.path().join("key.pem"),
            certificate_path: dir.path().join("cert.pem"),
            intermediates_path: None,
        })
    }

    #[test]
    fn payload_and_responses_verify() {
        let dir = tempfile::tempdir().expect("dir");
        for key in [
            KeyPair::generate().expect("ec"),
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa"),
        ] {
            let a = attestor(&dir, &key, key.serialize_pem());
            let data: pop::AttestationData =
                serde_json::from_slice(&a.payload().expect("payload")).expect("json");
            assert_eq!(data.certificates.len(), 1);
            let raw = key.public_key_raw().to_vec();
            let public = if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
                pop::PublicKey::Rsa(&raw)
            } else {
                pop::PublicKey::EcdsaP256(&raw)
            };
            let challenge = pop::generate_challenge(&public).expect("challenge");
            let answer = a
                .respond(&serde_json::to_vec(&challenge).expect("json"))
                .expect("respond");
            let response: pop::Response = serde_json::from_slice(&answer).expect("json");
            pop::verify_response(&public, &challenge, &response).expect("verify");
        }
    }

    #[test]
    fn missing_files_and_bad_keys_are_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let key = KeyPair::generate().expect("ec");
        let a = attestor(
            &dir,
            &key,
            "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n".into(),
        );
        assert!(
            a.respond(br#"{"ecdsa_signature":{"nonce":"AAAA"}}"#)
                .is_err()
        );
        assert!(a.respond(b"not json").is_err());
        let missing = X509PopAttestor::new(X509PopConfig {
            private_key_path: dir.path().join("none"),
            certificate_path: dir.path().join("none"),
            intermediates_path: None,
        });
        assert!(missing.payload().is_err());
    }
}

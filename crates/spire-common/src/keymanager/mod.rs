//! KeyManagers: where the server's CA and JWT signing keys live (spec server.md §4.8).
//!
//! A [`KeyManager`] generates and holds private keys under string key IDs. The server CA
//! uses the IDs `x509-CA-A` / `x509-CA-B` for its X.509 CA slots and `JWT-Signer-A` /
//! `JWT-Signer-B` for its JWT key slots, as SPIRE does ([`x509_ca_key_id`],
//! [`jwt_signer_key_id`]). A key is handed out as an [`Arc<ManagedKey>`](ManagedKey),
//! which signs X.509 structures through rcgen (it implements [`rcgen::SigningKey`]) and
//! JWT-SVIDs through spiffe-core's [`JwtSigningKey`].
//!
//! Built-in implementations, registered under their SPIRE plugin names:
//! - [`MemoryKeyManager`] (`memory`): keys live in process memory only; every restart
//!   mints new CA and JWT keys.
//! - [`DiskKeyManager`] (`disk`): keys are kept in a JSON file (`keys_path`) with SPIRE's
//!   exact format, so a SPIRE `keys.json` loads here and the other way round.
//!
//! Key material is never logged: [`ManagedKey`]'s `Debug` shows its ID, type and
//! fingerprint only.

mod disk;
mod memory;

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, RsaKeyPair,
};
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize, SignatureAlgorithm, SigningKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use spiffe_core::JwtSigningKey;
use thiserror::Error;

pub use crate::key_type::KeyType;
pub use disk::{DiskKeyManager, DiskKeyManagerConfig};
pub use memory::MemoryKeyManager;

/// The KeyManager key ID of an X.509 CA slot (`x509-CA-A`, `x509-CA-B`).
pub fn x509_ca_key_id(slot: &str) -> String {
    format!("x509-CA-{slot}")
}

/// The KeyManager key ID of a JWT signing key slot (`JWT-Signer-A`, `JWT-Signer-B`).
pub fn jwt_signer_key_id(slot: &str) -> String {
    format!("JWT-Signer-{slot}")
}

/// Why a KeyManager operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyManagerError {
    /// A key ID was empty.
    #[error("key id is required")]
    EmptyKeyId,
    /// Generating a key failed in the crypto library.
    #[error("unable to generate {key_type} key: {reason}")]
    Generate {
        /// The key type asked for.
        key_type: KeyType,
        /// What the crypto library said.
        reason: String,
    },
    /// A stored private key could not be used.
    #[error("unable to parse key {id:?}: {reason}")]
    InvalidKey {
        /// The key ID.
        id: String,
        /// Why the key was refused.
        reason: String,
    },
    /// The plugin configuration was invalid.
    #[error("{0}")]
    Config(String),
    /// The disk KeyManager's key file could not be read.
    #[error("unable to read keys file {path}: {source}")]
    Read {
        /// The key file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The disk KeyManager's key file is not valid.
    #[error("unable to decode keys JSON in {path}: {reason}")]
    Decode {
        /// The key file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The disk KeyManager's key file could not be written.
    #[error("unable to write entries to {path}: {source}")]
    Write {
        /// The key file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A KeyManager: generates, holds and hands out the server's signing keys.
///
/// Implementations are synchronous and thread-safe; key generation (RSA-4096 takes up to
/// a second or two) happens only at CA preparation, a few times a day.
pub trait KeyManager: Send + Sync + fmt::Debug {
    /// The plugin name (`memory`, `disk`).
    fn name(&self) -> &'static str;

    /// Generates a new key of `key_type` under `id`, replacing any key with that ID, and
    /// returns it. A persistent KeyManager stores it before returning; if that fails the
    /// previous key (if any) is kept and the error returned.
    fn generate_key(&self, id: &str, key_type: KeyType)
    -> Result<Arc<ManagedKey>, KeyManagerError>;

    /// The key with this ID, if any.
    fn get_key(&self, id: &str) -> Result<Option<Arc<ManagedKey>>, KeyManagerError>;

    /// All keys, ordered by key ID.
    fn get_keys(&self) -> Result<Vec<Arc<ManagedKey>>, KeyManagerError>;
}

/// A private key held by a [`KeyManager`], ready to sign X.509 certificates (through
/// rcgen) and JWT-SVIDs (through spiffe-core).
pub struct ManagedKey {
    id: String,
    key_type: KeyType,
    key_pair: KeyPair,
    jwt_key: JwtSigningKey,
    spki_der: Vec<u8>,
    fingerprint: String,
}

impl ManagedKey {
    /// Generates a fresh key of `key_type` under `id`, in memory.
    pub fn generate(id: &str, key_type: KeyType) -> Result<Self, KeyManagerError> {
        let generate_error = |reason: rcgen::Error| KeyManagerError::Generate {
            key_type,
            reason: reason.to_string(),
        };
        let pair = match key_type {
            KeyType::EcP256 | KeyType::EcP384 => {
                KeyPair::generate_for(key_type.signature_algorithm()).map_err(generate_error)?
            }
            KeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
                .map_err(generate_error)?,
            KeyType::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096)
                .map_err(generate_error)?,
        };
        Self::from_pkcs8_with_type(id, pair.serialized_der(), key_type)
    }

    /// Loads an unencrypted PKCS#8 DER private key and infers its type (P-256, P-384,
    /// RSA-2048 or RSA-4096), as SPIRE's disk KeyManager does when it loads `keys.json`.
    pub fn from_pkcs8(id: &str, pkcs8_der: &[u8]) -> Result<Self, KeyManagerError> {
        let key_type = infer_key_type(id, pkcs8_der)?;
        Self::from_pkcs8_with_type(id, pkcs8_der, key_type)
    }

    fn from_pkcs8_with_type(
        id: &str,
        pkcs8_der: &[u8],
        key_type: KeyType,
    ) -> Result<Self, KeyManagerError> {
        if id.is_empty() {
            return Err(KeyManagerError::EmptyKeyId);
        }
        let invalid = |reason: String| KeyManagerError::InvalidKey {
            id: id.to_owned(),
            reason,
        };
        let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8_der),
            key_type.signature_algorithm(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        let jwt_key =
            JwtSigningKey::from_pkcs8_der(pkcs8_der).map_err(|e| invalid(e.to_string()))?;
        let spki_der = key_pair.subject_public_key_info();
        let fingerprint = hex(digest::digest(&digest::SHA256, &spki_der).as_ref());
        Ok(ManagedKey {
            id: id.to_owned(),
            key_type,
            key_pair,
            jwt_key,
            spki_der,
            fingerprint,
        })
    }

    /// The key ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The public key as SubjectPublicKeyInfo (PKIX) DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The contents of the SubjectPublicKeyInfo's `subjectPublicKey` BIT STRING (the EC
    /// point, or the PKCS#1 RSA public key).
    pub fn public_key_raw(&self) -> &[u8] {
        self.key_pair.der_bytes()
    }

    /// SPIRE's key fingerprint: lowercase hex SHA-256 of the PKIX public key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The rcgen key pair, to sign certificates and CSRs with.
    pub fn key_pair(&self) -> &KeyPair {
        &self.key_pair
    }

    /// The JWT signing key (ES256 for P-256, ES384 for P-384, RS256 for RSA).
    pub fn jwt_signing_key(&self) -> &JwtSigningKey {
        &self.jwt_key
    }

    /// The private key as unencrypted PKCS#8 DER: what persistent KeyManagers store and
    /// what TLS needs to present the key. Never log it.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.key_pair.serialized_der()
    }
}

impl PublicKeyData for ManagedKey {
    fn der_bytes(&self) -> &[u8] {
        self.key_pair.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.key_pair.algorithm()
    }
}

impl SigningKey for ManagedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key_pair.sign(msg)
    }
}

impl fmt::Debug for ManagedKey {
    /// Shows the ID, type and fingerprint; never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedKey")
            .field("id", &self.id)
            .field("key_type", &self.key_type)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Infers the key type of a PKCS#8 private key.
fn infer_key_type(id: &str, pkcs8_der: &[u8]) -> Result<KeyType, KeyManagerError> {
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der).is_ok() {
        return Ok(KeyType::EcP256);
    }
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8_der).is_ok() {
        return Ok(KeyType::EcP384);
    }
    match RsaKeyPair::from_pkcs8(pkcs8_der) {
        Ok(pair) => {
            let bits = pair.public_modulus_len() * 8;
            if bits == KeySize::Rsa2048.len() * 8 {
                Ok(KeyType::Rsa2048)
            } else if bits == KeySize::Rsa4096.len() * 8 {
                Ok(KeyType::Rsa4096)
            } else {
                Err(KeyManagerError::InvalidKey {
                    id: id.to_owned(),
                    reason: format!("no RSA key type for key bit length: {bits}"),
                })
            }
        }
        Err(_) => Err(KeyManagerError::InvalidKey {
            id: id.to_owned(),
            reason: "not a PKCS#8 EC P-256, EC P-384 or RSA private key".to_owned(),
        }),
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

//! Key types as SPIRE's configuration names them (`ca_key_type`, `jwt_key_type`,
//! `workload_x509_svid_key_type`).

use std::fmt;
use std::str::FromStr;

use rcgen::{PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, SignatureAlgorithm};
use thiserror::Error;

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum KeyType {
    /// `ec-p256`: ECDSA P-256 (SPIRE's default everywhere).
    #[default]
    EcP256,
    /// `ec-p384`: ECDSA P-384.
    EcP384,
    /// `rsa-2048`: RSA 2048 bits.
    Rsa2048,
    /// `rsa-4096`: RSA 4096 bits (server keys only).
    Rsa4096,
}

/// A key type name that is not allowed where it was used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("key type \"{given}\" is unknown; must be one of [{allowed}]")]
pub struct KeyTypeError {
    /// The name given.
    pub given: String,
    /// The names allowed there, comma-separated.
    pub allowed: &'static str,
}

impl KeyType {
    /// All key types.
    pub const ALL: [KeyType; 4] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa4096,
    ];

    /// The X.509 signature algorithm a key of this type signs with: Go's default for the
    /// signer, as SPIRE uses it (P-256 → ecdsa-with-SHA256, P-384 → ecdsa-with-SHA384,
    /// RSA → sha256WithRSAEncryption).
    pub fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcP256 => &PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &PKCS_ECDSA_P384_SHA384,
            KeyType::Rsa2048 | KeyType::Rsa4096 => &PKCS_RSA_SHA256,
        }
    }

    /// Whether this is an RSA key type.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa4096)
    }

    /// The configuration name (`ec-p256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Parses a server key type (`ca_key_type`, `jwt_key_type`), case-insensitively:
    /// `rsa-2048`, `rsa-4096`, `ec-p256` or `ec-p384`.
    pub fn parse_server(s: &str) -> Result<KeyType, KeyTypeError> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-2048" => Ok(KeyType::Rsa2048),
            "rsa-4096" => Ok(KeyType::Rsa4096),
            "ec-p256" => Ok(KeyType::EcP256),
            "ec-p384" => Ok(KeyType::EcP384),
            _ => Err(KeyTypeError {
                given: s.to_owned(),
                allowed: "rsa-2048, rsa-4096, ec-p256, ec-p384",
            }),
        }
    }

    /// Parses an agent workload key type (`workload_x509_svid_key_type`),
    /// case-insensitively: `rsa-2048`, `ec-p256` or `ec-p384`.
    pub fn parse_workload(s: &str) -> Result<KeyType, KeyTypeError> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-2048" => Ok(KeyType::Rsa2048),
            "ec-p256" => Ok(KeyType::EcP256),
            "ec-p384" => Ok(KeyType::EcP384),
            _ => Err(KeyTypeError {
                given: s.to_owned(),
                allowed: "rsa-2048, ec-p256, ec-p384",
            }),
        }
    }
}

impl FromStr for KeyType {
    type Err = KeyTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::parse_server(s)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

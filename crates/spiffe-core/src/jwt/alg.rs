//! The JWS algorithms a JWT-SVID may use (JWT-03).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{self, RsaParameters};

use crate::jwk::{EcCurve, PublicKey};
use crate::jwt::JwtError;

/// A JWS `alg` allowed for JWT-SVIDs: RS256/384/512, ES256/384/512 or PS256/384/512
/// (RFC 7518 §3.3–3.5, JWT-03). Anything else, `none`, the HMAC family, EdDSA and
/// lowercase spellings included, is refused when parsing (JWT-04).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwtAlgorithm {
    /// ECDSA using P-256 and SHA-256.
    ES256,
    /// ECDSA using P-384 and SHA-384.
    ES384,
    /// ECDSA using P-521 and SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 using SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 using SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 using SHA-512.
    RS512,
    /// RSASSA-PSS using SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS using SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS using SHA-512 and MGF1 with SHA-512.
    PS512,
}

impl JwtAlgorithm {
    /// All nine algorithms.
    pub const ALL: [JwtAlgorithm; 9] = [
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::ES512,
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
    ];

    /// The `alg` header value, e.g. `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
            JwtAlgorithm::ES512 => "ES512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
        }
    }

    /// The curve an ECDSA algorithm requires, `None` for the RSA algorithms.
    pub fn ec_curve(self) -> Option<EcCurve> {
        match self {
            JwtAlgorithm::ES256 => Some(EcCurve::P256),
            JwtAlgorithm::ES384 => Some(EcCurve::P384),
            JwtAlgorithm::ES512 => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// Whether the algorithm is one of the RSA ones (RS* or PS*).
    pub fn is_rsa(self) -> bool {
        self.ec_curve().is_none()
    }

    /// The ECDSA algorithm for keys on `curve`: ES256, ES384 or ES512.
    pub fn for_ec_curve(curve: EcCurve) -> Self {
        match curve {
            EcCurve::P256 => JwtAlgorithm::ES256,
            EcCurve::P384 => JwtAlgorithm::ES384,
            EcCurve::P521 => JwtAlgorithm::ES512,
        }
    }

    /// Whether `key` has the right type for the algorithm: an EC key on the algorithm's
    /// curve for ES*, an RSA key for RS* and PS*.
    pub fn matches_key(self, key: &PublicKey) -> bool {
        match self.ec_curve() {
            Some(curve) => key.ec_curve() == Some(curve),
            None => key.rsa_bits().is_some(),
        }
    }

    /// Verifies a JWS signature over `message` with `key`. Returns `false` when the key
    /// does not fit the algorithm or the signature does not verify.
    pub(crate) fn verify(self, key: &PublicKey, message: &[u8], sig: &[u8]) -> bool {
        match self.ec_curve() {
            Some(curve) => key.verify_ecdsa(curve, message, sig),
            None => self
                .rsa_verification_parameters()
                .is_some_and(|params| key.verify_rsa(params, message, sig)),
        }
    }

    fn rsa_verification_parameters(self) -> Option<&'static RsaParameters> {
        match self {
            JwtAlgorithm::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            JwtAlgorithm::RS384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            JwtAlgorithm::RS512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            JwtAlgorithm::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            JwtAlgorithm::PS384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
            JwtAlgorithm::PS512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            JwtAlgorithm::ES256 | JwtAlgorithm::ES384 | JwtAlgorithm::ES512 => None,
        }
    }
}

impl FromStr for JwtAlgorithm {
    type Err = JwtError;

    /// Parses an `alg` value with exact case (JWT-03, JWT-04).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JwtAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| JwtError::UnsupportedAlgorithm(s.to_owned()))
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

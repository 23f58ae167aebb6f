//! Errors from signing, parsing and validating JWT-SVIDs.

use thiserror::Error;

use crate::id::IdError;
use crate::trust_domain::TrustDomain;

/// Why a JWT-SVID could not be signed, parsed or validated.
///
/// Each validation rule has its own variant, in the order the checks run (see
/// [`JwtSvid::parse_and_validate`](crate::JwtSvid::parse_and_validate)).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwtError {
    /// No expected audience was given to the validator, or one of them was empty
    /// (the Workload API answers `InvalidArgument`, WAPI-28).
    #[error("at least one non-empty expected audience is required")]
    NoExpectedAudience,
    /// The token is in the JWS JSON serialization (general or flattened) (JWT-01).
    #[error("JWS JSON serialization is not allowed; a JWT-SVID uses the compact serialization")]
    JsonSerialization,
    /// The token is not three dot-separated parts (JWT-01).
    #[error("token is not a JWS compact serialization: expected 3 dot-separated parts, found {0}")]
    WrongPartCount(usize),
    /// A part is not valid base64url without padding.
    #[error("token {0} is not valid base64url without padding")]
    InvalidBase64(&'static str),
    /// The JOSE header is not a JSON object with well-typed members.
    #[error("invalid JOSE header: {0}")]
    InvalidHeader(String),
    /// The header has no `alg`.
    #[error("header parameter \"alg\" is missing")]
    MissingAlgorithm,
    /// The `alg` is not one of the nine JWT-SVID algorithms (JWT-03, JWT-04).
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header has a parameter other than `alg`, `kid` and `typ` (JWT-02, A-5).
    #[error("header parameter {0:?} is not allowed in a JWT-SVID")]
    HeaderParameterNotAllowed(String),
    /// The `typ` header is present and not exactly `JWT` or `JOSE` (JWT-07, A-9).
    #[error("header parameter \"typ\" is {0:?}; only \"JWT\" and \"JOSE\" are allowed")]
    InvalidType(String),
    /// The header has no `kid`, or an empty one.
    #[error("header parameter \"kid\" is missing or empty")]
    MissingKeyId,
    /// The claims set is not a JSON object.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A required claim (`sub`, `aud`, `exp`) is missing (JWT-08, JWT-09, JWT-12).
    #[error("required claim {0:?} is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type.
    #[error("claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `sub` is not a valid SPIFFE ID (JWT-08).
    #[error("subject {sub:?} is not a valid SPIFFE ID: {source}")]
    InvalidSubject {
        /// The `sub` value.
        sub: String,
        /// Why it is not a SPIFFE ID.
        source: IdError,
    },
    /// `aud` is an empty array or an empty string (JWT-09).
    #[error("claim \"aud\" is empty")]
    EmptyAudience,
    /// There is no JWT bundle for the subject's trust domain (JWT-23).
    #[error("no JWT bundle for trust domain \"{0}\"")]
    NoBundle(TrustDomain),
    /// The subject's trust domain has a JWT bundle without keys: every token from it is
    /// invalid (BUN-11, JWT-20).
    #[error("the JWT bundle of \"{0}\" has no keys")]
    EmptyBundle(TrustDomain),
    /// The `kid` is not in the bundle of the subject's trust domain.
    #[error("key {kid:?} not found in the JWT bundle of \"{trust_domain}\"")]
    KeyNotFound {
        /// The token's `kid`.
        kid: String,
        /// The subject's trust domain.
        trust_domain: TrustDomain,
    },
    /// The bundle key does not fit the token's `alg` (wrong key type or curve).
    #[error("key {kid:?} ({key}) cannot verify {alg} signatures")]
    KeyAlgorithmMismatch {
        /// The token's `kid`.
        kid: String,
        /// The token's `alg`.
        alg: &'static str,
        /// The key's type, e.g. `EC P-384` or `RSA`.
        key: String,
    },
    /// The signature does not verify (JWT-15).
    #[error("token signature is invalid")]
    InvalidSignature,
    /// `exp` is in the past, beyond the leeway (JWT-13).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway (JWT-15).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInTheFuture,
    /// The validator's audience is not in `aud` (JWT-10).
    #[error("audience {audience:?} does not contain {expected:?}")]
    AudienceMismatch {
        /// The token's `aud`.
        audience: Vec<String>,
        /// The expected audience that is missing.
        expected: String,
    },
    /// Signing was asked with no non-empty audience.
    #[error("cannot sign a JWT-SVID without a non-empty audience")]
    EmptyAudienceToSign,
    /// Signing was asked with an empty key ID.
    #[error("cannot sign a JWT-SVID without a key ID")]
    EmptyKeyIdToSign,
    /// The extra claims try to set `sub`, `aud`, `exp` or `iat`.
    #[error("extra claim {0:?} would override a JWT-SVID claim")]
    ReservedClaim(String),
    /// The private key could not be loaded or does not fit the requested algorithm.
    #[error("invalid signing key: {0}")]
    InvalidSigningKey(&'static str),
    /// The crypto library failed to generate a key or to sign.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

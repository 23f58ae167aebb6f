//! SPIFFE primitives for spire-rs.
//!
//! Everything here is pure and synchronous: parsing, validation and serialization of
//! SPIFFE IDs and trust domains, X.509-SVIDs, JWT-SVIDs, and the X.509, JWT and SPIFFE
//! (JWKS) bundles. The rules followed are those of the SPIFFE standards as listed in the
//! project's conformance checklist; where the standards leave room, the behaviour of
//! go-spiffe (and so SPIRE) is followed, and the rule IDs (`ID-07`, `X5-14`, ...) are
//! cited where they are enforced.

mod bundle_set;
mod id;
mod jwk;
pub mod jwt;
mod spiffe_bundle;
mod trust_domain;
pub mod x509;

pub use bundle_set::BundleSet;
pub use id::{IdError, MAX_SPIFFE_ID_LEN, SpiffeId};
pub use jwk::{EcCurve, Jwk, JwkError, MAX_RSA_BITS, MIN_RSA_BITS, PublicKey};
pub use jwt::{
    JWT_LEEWAY, JWT_SVID_USE, JwtAlgorithm, JwtBundle, JwtBundleError, JwtBundleSource, JwtError,
    JwtSigningKey, JwtSvid, JwtSvidClaims,
};
pub use spiffe_bundle::{
    BundleError, IgnoredKey, SpiffeBundle, USE_JWT_SVID, USE_X509_SVID, bundle_map_to_json,
    parse_bundle_map,
};
pub use trust_domain::{MAX_TRUST_DOMAIN_LEN, TrustDomain};
pub use x509::{
    X509Bundle, X509BundleSource, X509Error, X509Svid, parse_leaf_spiffe_id, verify_chain,
};

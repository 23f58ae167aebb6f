//! JWT-SVIDs (`JWT-SVID.md`) and JWT bundles.
//!
//! JWS compact serialization is implemented here directly on aws-lc-rs: base64url
//! without padding, JSON through serde_json, and only the nine JWT-SVID algorithms. The
//! parser is strict and never panics on malformed input.

mod alg;
mod bundle;
mod error;
mod svid;

pub use alg::JwtAlgorithm;
pub use bundle::{JWT_SVID_USE, JwtBundle, JwtBundleError, JwtBundleSource};
pub use error::JwtError;
pub use svid::{JWT_LEEWAY, JwtSigningKey, JwtSvid, JwtSvidClaims, sign};

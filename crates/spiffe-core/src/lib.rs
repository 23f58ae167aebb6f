//! SPIFFE primitives for spire-rs.
//!
//! Everything here is pure and synchronous: parsing, validation and serialization of
//! SPIFFE IDs and trust domains, X.509-SVIDs, JWT-SVIDs, and the X.509, JWT and SPIFFE
//! (JWKS) bundles. The rules followed are those of the SPIFFE standards as listed in the
//! project's conformance checklist; where the standards leave room, the behaviour of
//! go-spiffe (and so SPIRE) is followed, and the rule IDs (`ID-07`, `X5-14`, ...) are
//! cited where they are enforced.

mod id;
mod trust_domain;

pub use id::{IdError, MAX_SPIFFE_ID_LEN, SpiffeId};
pub use trust_domain::{MAX_TRUST_DOMAIN_LEN, TrustDomain};

//! The agent's manager: the identity cache shared by the sync loop and the Workload API.
//!
//! [`cache::Cache`] is the contract between the two: the sync loop writes entries,
//! bundles and SVIDs into it; every Workload API stream subscribes to its version and
//! rebuilds its response when it moves.

pub mod cache;
pub mod jwt_cache;
pub mod rotation;
pub mod sync;
pub mod taint;

pub use cache::{
    Cache, CacheError, CachedEntry, DEFAULT_ROTATION_FRACTION, DEFAULT_X509_SVID_CACHE_MAX_SIZE,
    Identity, Subscriber, WorkloadBundles, WorkloadUpdate,
};
pub use jwt_cache::{JwtSvidCache, JwtSvidMinter, MintedJwtSvid};
pub use taint::TaintedAuthorities;

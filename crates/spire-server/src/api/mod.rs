//! The SPIRE server APIs (server.md §3): the services, the authorization layer in front
//! of them, and the spire-rs push channel.

pub mod agent;
pub mod authz_layer;
pub mod bundle;
pub mod caller;
pub mod debug;
pub mod downstream;
pub mod entry;
pub mod entry_mask;
pub mod facts;
pub mod health;
pub mod localauthority;
pub mod logger;
pub mod notify;
pub mod peer_trust;
pub mod revocation;
pub mod status;
pub mod svid;
pub mod trustdomain;

use std::sync::Arc;

use spiffe_core::TrustDomain;

use crate::ca::ServerCa;
use crate::datastore::{DataStoreError, SqlStore};

/// What every service shares.
pub struct ApiContext {
    /// The server's trust domain.
    pub trust_domain: TrustDomain,
    /// The datastore.
    pub store: Arc<SqlStore>,
    /// The CA.
    pub ca: Arc<ServerCa>,
}

/// The gRPC status for a datastore failure (details are logged, not leaked).
pub fn store_status(error: DataStoreError) -> tonic::Status {
    let code = tonic::Code::from_i32(error.grpc_code());
    if code == tonic::Code::Internal {
        tracing::error!(error = %error, "Datastore operation failed");
        return tonic::Status::internal("datastore operation failed");
    }
    tonic::Status::new(code, error.to_string())
}

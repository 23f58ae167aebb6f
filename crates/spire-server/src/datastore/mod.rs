//! The server's SQL datastore (SPIRE's `DataStore "sql"` plugin): registration entries,
//! attested nodes and their selectors, join tokens, trust bundles, federation
//! relationships, CA journals and the events tables, in SQLite (embedded, the default),
//! PostgreSQL or MySQL/MariaDB.
//!
//! [`SqlStore`] is the one implementation. Its tables, columns and protobuf blobs are
//! SPIRE's (schema version 25), so an operator reads the database as a SPIRE one.
//!
//! Two guarantees the rest of the server builds on:
//! - every write to entries and nodes appends to `registered_entries_events` /
//!   `attested_node_entries_events` in the same transaction (the change log other
//!   servers of an HA deployment follow);
//! - after each commit the store announces what changed on [`SqlStore::subscribe`], so
//!   the server pushes changes to connected agents at once instead of polling.

mod authorized;
mod bundles;
mod codec;
mod config;
mod dialect;
mod entries;
mod error;
mod events;
mod federation;
mod follow;
mod journal;
mod model;
mod nodes;
mod revocations;
pub mod schema;
mod store;
mod tokens;

pub use config::DataStoreConfig;
pub use dialect::Dialect;
pub use error::{DataStoreError, Result};
pub use follow::{CHANGE_CHANNEL, FollowOptions};
pub use model::*;
pub use revocations::REVOKED_X509_SVIDS_TABLE;
pub use store::SqlStore;

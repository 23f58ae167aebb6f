//! The datastore's error type, shaped so the API layer can map each variant to the gRPC
//! status code SPIRE returns for it.

use super::model::RegistrationEntry;

/// Everything a datastore operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DataStoreError {
    /// The addressed record does not exist (gRPC `NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// A record with the same identity already exists (gRPC `ALREADY_EXISTS`). For a
    /// registration entry that collides with a similar one (same SPIFFE ID, parent ID and
    /// selector set) or with the same entry ID, `existing` carries the stored entry.
    #[error("{message}")]
    AlreadyExists {
        /// Human-readable reason, e.g. `similar entry already exists`.
        message: String,
        /// The entry already stored, when the collision is with a registration entry.
        existing: Option<Box<RegistrationEntry>>,
    },
    /// The request is malformed (gRPC `INVALID_ARGUMENT`).
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is well-formed but the stored state forbids it (gRPC
    /// `FAILED_PRECONDITION`), e.g. deleting a bundle that entries still federate with.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent transaction won a race (serialization failure or deadlock); retrying
    /// may succeed (gRPC `ABORTED`).
    #[error("{0}")]
    Conflict(String),
    /// Stored data could not be interpreted, or an internal invariant broke (gRPC
    /// `INTERNAL`).
    #[error("{0}")]
    Internal(String),
    /// The database driver failed (gRPC `INTERNAL`, or `UNAVAILABLE` for pool time-outs).
    #[error("datastore-sql: {0}")]
    Sql(#[source] sqlx::Error),
}

/// The datastore's result type.
pub type Result<T, E = DataStoreError> = std::result::Result<T, E>;

impl DataStoreError {
    /// The numeric gRPC status code SPIRE uses for this error (`tonic::Code as i32`).
    pub fn grpc_code(&self) -> i32 {
        match self {
            Self::NotFound(_) => 5,
            Self::AlreadyExists { .. } => 6,
            Self::InvalidArgument(_) => 3,
            Self::FailedPrecondition(_) => 9,
            Self::Conflict(_) => 10,
            Self::Internal(_) => 13,
            Self::Sql(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => {
                14
            }
            Self::Sql(_) => 13,
        }
    }

    /// A plain `AlreadyExists` without an existing entry attached.
    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::AlreadyExists {
            message: message.into(),
            existing: None,
        }
    }
}

impl From<sqlx::Error> for DataStoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return Self::already_exists(format!("datastore-sql: {}", db.message()));
            }
            // PostgreSQL serialization_failure / deadlock_detected, MySQL/MariaDB
            // ER_LOCK_DEADLOCK / ER_LOCK_WAIT_TIMEOUT, SQLite SQLITE_BUSY.
            let code = db.code();
            if matches!(
                code.as_deref(),
                Some("40001" | "40P01" | "1213" | "1205" | "5" | "517")
            ) {
                return Self::Conflict(format!("datastore-sql: {}", db.message()));
            }
        }
        Self::Sql(err)
    }
}

impl From<prost::DecodeError> for DataStoreError {
    fn from(err: prost::DecodeError) -> Self {
        Self::Internal(format!(
            "datastore-sql: cannot decode stored protobuf: {err}"
        ))
    }
}

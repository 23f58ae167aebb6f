//! gRPC statuses as SPIRE shapes them: per-item `types.Status` in batch replies, and
//! `PermissionDeniedDetails` attached to agent authorization failures so agents know
//! whether to re-attest or stop (server.md §3.5).

use spire_proto::spire::api::types::Status as ItemStatus;

pub use spire_common::status::{permission_denied_reason, permission_denied_with_reason};

/// An OK per-item status.
pub fn ok() -> ItemStatus {
    ItemStatus {
        code: tonic::Code::Ok as i32,
        message: "OK".into(),
    }
}

/// A per-item status for a failure.
pub fn item(code: tonic::Code, message: impl Into<String>) -> ItemStatus {
    ItemStatus {
        code: code as i32,
        message: message.into(),
    }
}

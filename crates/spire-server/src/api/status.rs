//! gRPC statuses as SPIRE shapes them: per-item `types.Status` in batch replies, and
//! `PermissionDeniedDetails` attached to agent authorization failures so agents know
//! whether to re-attest or stop (server.md §3.5).

use prost::Message;
use spire_proto::spire::api::types::{PermissionDeniedDetails, Status as ItemStatus};

/// `google.rpc.Status`, the payload of the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// PermissionDenied with a `PermissionDeniedDetails { reason }` detail.
pub fn permission_denied_with_reason(message: &str, reason: i32) -> tonic::Status {
    let details = PermissionDeniedDetails { reason };
    let any = prost_types::Any {
        type_url: <PermissionDeniedDetails as prost::Name>::type_url(),
        value: details.encode_to_vec(),
    };
    let rpc = RpcStatus {
        code: tonic::Code::PermissionDenied as i32,
        message: message.to_owned(),
        details: vec![any],
    };
    tonic::Status::with_details(
        tonic::Code::PermissionDenied,
        message,
        rpc.encode_to_vec().into(),
    )
}

/// The `PermissionDeniedDetails.reason` carried by a status, if any.
pub fn permission_denied_reason(status: &tonic::Status) -> Option<i32> {
    let rpc = RpcStatus::decode(status.details()).ok()?;
    rpc.details
        .iter()
        .find(|d| d.type_url == <PermissionDeniedDetails as prost::Name>::type_url())
        .and_then(|d| PermissionDeniedDetails::decode(d.value.as_slice()).ok())
        .map(|d| d.reason)
}

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

//! `PermissionDeniedDetails` carried in gRPC statuses: the server attaches the reason an
//! agent is refused (banned, expired, must re-attest, ...) and the agent reads it to know
//! whether to re-attest or stop (server.md §3.5 item 6). The detail travels in the
//! `grpc-status-details-bin` trailer as a `google.rpc.Status`.

use prost::Message;
use spire_proto::spire::api::types::PermissionDeniedDetails;

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

/// The `PermissionDeniedDetails.reason` a PermissionDenied status carries, if any.
pub fn permission_denied_reason(status: &tonic::Status) -> Option<i32> {
    if status.code() != tonic::Code::PermissionDenied {
        return None;
    }
    let rpc = RpcStatus::decode(status.details()).ok()?;
    rpc.details
        .iter()
        .find(|d| d.type_url == <PermissionDeniedDetails as prost::Name>::type_url())
        .and_then(|d| PermissionDeniedDetails::decode(d.value.as_slice()).ok())
        .map(|d| d.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_round_trips_through_the_status_details() {
        let status = permission_denied_with_reason("agent is banned", 4);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "agent is banned");
        assert_eq!(permission_denied_reason(&status), Some(4));
        assert_eq!(
            permission_denied_reason(&tonic::Status::permission_denied("plain")),
            None
        );
        assert_eq!(
            permission_denied_reason(&tonic::Status::internal("other code")),
            None
        );
    }
}

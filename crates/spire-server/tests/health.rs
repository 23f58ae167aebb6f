//! `grpc.health.v1.Health` as SPIRE's server serves it: on the admin socket only, `Check`
//! for the whole server, `Watch` and `List` unimplemented.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{TestServer, tcp_channel};

use spire_proto::health::health_check_response::ServingStatus;
use spire_proto::health::health_client::HealthClient;
use spire_proto::health::{HealthCheckRequest, HealthCheckResponse};
use tonic::Code;
use tonic::transport::Channel;

/// Calls `grpc.health.v1.Health/List`, which the generated client lacks (its request,
/// `HealthListRequest`, is empty, as an empty `HealthCheckRequest` encodes).
async fn list(channel: Channel) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    grpc.unary(
        tonic::Request::new(HealthCheckRequest::default()),
        http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/List"),
        codec,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn check_serves_the_whole_server_on_the_admin_socket() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel());
    let response = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.status, ServingStatus::Serving as i32);

    let status = health
        .check(HealthCheckRequest {
            service: "spire.api.server.agent.v1.Agent".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "per-service health is not supported");
}

#[tokio::test]
async fn watch_and_list_are_unimplemented_as_in_spire() {
    let server = TestServer::start().await;
    let status = HealthClient::new(server.channel())
        .watch(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = list(server.channel()).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn health_is_not_served_over_tcp() {
    let server = TestServer::start().await;
    let channel = tcp_channel(&server, None).await;
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(status.message(), "unknown service grpc.health.v1.Health");
    let status = list(channel).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

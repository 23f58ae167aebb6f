//! `grpc.health.v1.Health` on the admin socket (server.md §3.4), as SPIRE's server serves
//! it: only `Check`, for the whole server (`service` must be empty), `SERVING` when the
//! server's own trust bundle can be read from the datastore and `NOT_SERVING` otherwise.
//!
//! SPIRE's health service implements `Check` alone; `Watch` and `List` answer
//! `Unimplemented` there, and so here (`List` is not in the generated service, whose
//! router answers unknown methods with `Unimplemented`).

use std::pin::Pin;
use std::sync::Arc;

use spire_proto::health::health_check_response::ServingStatus;
use spire_proto::health::health_server::Health;
use spire_proto::health::{HealthCheckRequest, HealthCheckResponse};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::ApiContext;

/// The server's Health service.
#[derive(Clone)]
pub struct HealthService {
    ctx: Arc<ApiContext>,
}

impl HealthService {
    /// The service over the server's datastore.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        HealthService { ctx }
    }
}

/// The `Watch` stream type (never produced: `Watch` is unimplemented, as in SPIRE).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if !request.into_inner().service.is_empty() {
            return Err(Status::invalid_argument(
                "per-service health is not supported",
            ));
        }
        let reason = match self
            .ctx
            .store
            .fetch_bundle(self.ctx.trust_domain.name())
            .await
        {
            Ok(Some(_)) => None,
            Ok(None) => Some("bundle is missing".to_owned()),
            Err(e) => Some(format!("unable to fetch bundle: {e}")),
        };
        let status = match reason {
            None => ServingStatus::Serving,
            Some(reason) => {
                tracing::warn!(reason = %reason, "Health check failed");
                ServingStatus::NotServing
            }
        };
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("method Watch not implemented"))
    }
}

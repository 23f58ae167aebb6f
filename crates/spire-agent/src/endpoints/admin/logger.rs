//! `spire.api.agent.logger.v1.Logger`: reads and changes the agent's log level at run
//! time (SPIRE's `pkg/agent/api/logger/v1`), over spire-common's [`LogLevelControl`].

use spire_common::api_log_level::LogLevelControl;
use spire_common::logging::{Level, LogGuard};
use spire_proto::spire::api::agent::logger::v1 as pb;
use spire_proto::spire::api::agent::logger::v1::logger_server::Logger as LoggerApi;
use spire_proto::spire::api::types::Logger;
use tonic::{Request, Response, Status};

/// The Logger service over the agent's [`LogGuard`] (none: levels are tracked only).
#[derive(Clone, Debug)]
pub struct LoggerService(LogLevelControl);

impl LoggerService {
    /// The service for an agent launched at `launch_level` (its `log_level`).
    pub fn new(guard: Option<LogGuard>, launch_level: Level) -> Self {
        LoggerService(LogLevelControl::new(guard, launch_level))
    }
}

#[tonic::async_trait]
impl LoggerApi for LoggerService {
    async fn get_logger(
        &self,
        _request: Request<pb::GetLoggerRequest>,
    ) -> Result<Response<Logger>, Status> {
        Ok(Response::new(self.0.logger()))
    }

    async fn set_log_level(
        &self,
        request: Request<pb::SetLogLevelRequest>,
    ) -> Result<Response<Logger>, Status> {
        self.0
            .set(request.into_inner().new_level)
            .map(Response::new)
    }

    async fn reset_log_level(
        &self,
        _request: Request<pb::ResetLogLevelRequest>,
    ) -> Result<Response<Logger>, Status> {
        self.0.reset().map(Response::new)
    }
}

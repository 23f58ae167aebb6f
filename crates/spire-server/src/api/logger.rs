//! `spire.api.server.logger.v1.Logger` (server.md §3.4): reads and changes the server's
//! log level at run time. Served on the admin Unix socket only (server.md §3.1).

use spire_common::api_log_level::LogLevelControl;
use spire_common::logging::{Level, LogGuard};
use spire_proto::spire::api::server::logger::v1 as pb;
use spire_proto::spire::api::server::logger::v1::logger_server::Logger as LoggerApi;
use spire_proto::spire::api::types::Logger;
use tonic::{Request, Response, Status};

/// The Logger service over the run's [`LogGuard`], with spire-common's
/// [`LogLevelControl`] (shared with the agent's Logger API).
///
/// Without a guard (a server embedded in a test, whose logging is not ours to change) the
/// levels are tracked but no filter is reloaded.
#[derive(Clone)]
pub struct LoggerService(LogLevelControl);

impl LoggerService {
    /// The service for a server launched at `launch_level` (the configured `log_level`).
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

#[cfg(test)]
mod tests {
    use spire_proto::spire::api::types::LogLevel;

    use super::*;

    #[tokio::test]
    async fn set_and_reset_round_trip() {
        let service = LoggerService::new(None, Level::Info);
        let got = service
            .get_logger(Request::new(pb::GetLoggerRequest {}))
            .await
            .map(Response::into_inner);
        assert_eq!(
            got.ok(),
            Some(Logger {
                current_level: LogLevel::Info as i32,
                launch_level: LogLevel::Info as i32,
            })
        );
        let set = service
            .set_log_level(Request::new(pb::SetLogLevelRequest {
                new_level: LogLevel::Debug as i32,
            }))
            .await
            .map(Response::into_inner);
        assert_eq!(
            set.ok().map(|l| l.current_level),
            Some(LogLevel::Debug as i32)
        );
        let bad = service
            .set_log_level(Request::new(pb::SetLogLevelRequest { new_level: 0 }))
            .await;
        assert_eq!(
            bad.err().map(|s| s.code()),
            Some(tonic::Code::InvalidArgument)
        );
        let reset = service
            .reset_log_level(Request::new(pb::ResetLogLevelRequest {}))
            .await
            .map(Response::into_inner);
        assert_eq!(
            reset.ok().map(|l| l.current_level),
            Some(LogLevel::Info as i32)
        );
    }
}

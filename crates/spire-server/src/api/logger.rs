//! `spire.api.server.logger.v1.Logger` (server.md §3.4): reads and changes the server's
//! log level at run time. Served on the admin Unix socket only (server.md §3.1).

use std::sync::{Arc, Mutex, PoisonError};

use spire_common::logging::{Level, LogGuard};
use spire_proto::spire::api::server::logger::v1 as pb;
use spire_proto::spire::api::server::logger::v1::logger_server::Logger as LoggerApi;
use spire_proto::spire::api::types::{LogLevel, Logger};
use tonic::{Request, Response, Status};

/// The Logger service over the run's [`LogGuard`].
///
/// Without a guard (a server embedded in a test, whose logging is not ours to change) the
/// levels are tracked but no filter is reloaded.
#[derive(Clone)]
pub struct LoggerService {
    guard: Option<LogGuard>,
    launch: LogLevel,
    current: Arc<Mutex<LogLevel>>,
}

impl LoggerService {
    /// The service for a server launched at `launch_level` (the configured `log_level`).
    pub fn new(guard: Option<LogGuard>, launch_level: Level) -> Self {
        let launch = api_level(launch_level);
        LoggerService {
            guard,
            launch,
            current: Arc::new(Mutex::new(launch)),
        }
    }

    fn current(&self) -> LogLevel {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn logger(&self) -> Logger {
        Logger {
            current_level: self.current() as i32,
            launch_level: self.launch as i32,
        }
    }

    fn apply(&self, level: LogLevel) -> Result<(), Status> {
        let filter = filter_level(level).ok_or_else(|| {
            Status::invalid_argument("newLevel value cannot be LogLevel_UNSPECIFIED")
        })?;
        if let Some(guard) = &self.guard {
            guard
                .set_level(filter)
                .map_err(|e| Status::internal(format!("failed to set log level: {e}")))?;
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = level;
        Ok(())
    }
}

/// The API level for a logger level (panic and fatal are reported as set, see
/// [`LoggerService::apply`]; a configured level maps one to one).
fn api_level(level: Level) -> LogLevel {
    match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

/// The filter for an API level; `None` for UNSPECIFIED. Panic and fatal filter as error
/// (nothing is logged at those levels that is not also an error).
fn filter_level(level: LogLevel) -> Option<Level> {
    match level {
        LogLevel::Unspecified => None,
        LogLevel::Panic | LogLevel::Fatal | LogLevel::Error => Some(Level::Error),
        LogLevel::Warn => Some(Level::Warn),
        LogLevel::Info => Some(Level::Info),
        LogLevel::Debug => Some(Level::Debug),
        LogLevel::Trace => Some(Level::Trace),
    }
}

#[tonic::async_trait]
impl LoggerApi for LoggerService {
    async fn get_logger(
        &self,
        _request: Request<pb::GetLoggerRequest>,
    ) -> Result<Response<Logger>, Status> {
        Ok(Response::new(self.logger()))
    }

    async fn set_log_level(
        &self,
        request: Request<pb::SetLogLevelRequest>,
    ) -> Result<Response<Logger>, Status> {
        let value = request.into_inner().new_level;
        let level = LogLevel::try_from(value)
            .map_err(|_| Status::invalid_argument(format!("unknown log level {value}")))?;
        self.apply(level)?;
        tracing::info!(new_level = level.as_str_name(), "Log level changed");
        Ok(Response::new(self.logger()))
    }

    async fn reset_log_level(
        &self,
        _request: Request<pb::ResetLogLevelRequest>,
    ) -> Result<Response<Logger>, Status> {
        self.apply(self.launch)?;
        tracing::info!(launch_level = self.launch.as_str_name(), "Log level reset");
        Ok(Response::new(self.logger()))
    }
}

#[cfg(test)]
mod tests {
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

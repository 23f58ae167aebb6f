//! `spire.api.agent.logger.v1.Logger`: reads and changes the agent's log level at run
//! time (SPIRE's `pkg/agent/api/logger/v1`).

use std::sync::{Arc, Mutex, PoisonError};

use spire_common::logging::{Level, LogGuard};
use spire_proto::spire::api::agent::logger::v1 as pb;
use spire_proto::spire::api::agent::logger::v1::logger_server::Logger as LoggerApi;
use spire_proto::spire::api::types::{LogLevel, Logger};
use tonic::{Request, Response, Status};

/// The Logger service over the agent's [`LogGuard`].
///
/// Without a guard (an agent embedded in a test, whose logging is not its own) the
/// levels are tracked but no filter is reloaded.
#[derive(Clone)]
pub struct LoggerService {
    guard: Option<LogGuard>,
    launch: LogLevel,
    current: Arc<Mutex<LogLevel>>,
}

impl std::fmt::Debug for LoggerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggerService")
            .field("launch", &self.launch)
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl LoggerService {
    /// The service for an agent launched at `launch_level` (its `log_level`).
    pub fn new(guard: Option<LogGuard>, launch_level: Level) -> Self {
        let launch = match launch_level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
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

    /// Applies `level`; panic and fatal filter as error (nothing is logged at those
    /// levels that is not also an error) but are reported as set, as in SPIRE.
    fn apply(&self, level: LogLevel) -> Result<(), Status> {
        let filter = match level {
            LogLevel::Unspecified => {
                return Err(Status::invalid_argument(
                    "newLevel value cannot be UNSPECIFIED",
                ));
            }
            LogLevel::Panic | LogLevel::Fatal | LogLevel::Error => Level::Error,
            LogLevel::Warn => Level::Warn,
            LogLevel::Info => Level::Info,
            LogLevel::Debug => Level::Debug,
            LogLevel::Trace => Level::Trace,
        };
        if let Some(guard) = &self.guard {
            guard
                .set_level(filter)
                .map_err(|e| Status::internal(format!("failed to set log level: {e}")))?;
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = level;
        Ok(())
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

//! The `spire.api.types.LogLevel` names the `logger` commands of both command lines
//! read and print (logrus's names, as SPIRE's `pkg/common/api/logger`), and the state
//! behind both Logger APIs ([`LogLevelControl`]).

use spire_proto::spire::api::types::{LogLevel, Logger};

/// A `-level` value as logrus's `ParseLevel` reads it, case-insensitively.
pub fn parse_level(value: &str) -> Option<LogLevel> {
    Some(match value.to_ascii_lowercase().as_str() {
        "panic" => LogLevel::Panic,
        "fatal" => LogLevel::Fatal,
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

/// The name logrus prints for a level (`warning` for WARN); `None` for UNSPECIFIED and
/// unknown values.
pub fn level_name(value: i32) -> Option<&'static str> {
    match LogLevel::try_from(value).ok()? {
        LogLevel::Panic => Some("panic"),
        LogLevel::Fatal => Some("fatal"),
        LogLevel::Error => Some("error"),
        LogLevel::Warn => Some("warning"),
        LogLevel::Info => Some("info"),
        LogLevel::Debug => Some("debug"),
        LogLevel::Trace => Some("trace"),
        LogLevel::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "panic", "fatal", "error", "warning", "info", "debug", "trace",
        ] {
            let level = parse_level(&name.to_uppercase());
            assert_eq!(level.and_then(|l| level_name(l as i32)), Some(name));
        }
        assert_eq!(parse_level("verbose"), None);
        assert_eq!(level_name(0), None);
    }
}

/// The state behind the server's and the agent's Logger APIs: the level the process
/// was launched with, the current one, and the installed logger to reload.
///
/// Without a guard (a server or agent embedded in a test, whose logging is not its
/// own) the levels are tracked but no filter is reloaded.
#[derive(Clone)]
pub struct LogLevelControl {
    guard: Option<crate::logging::LogGuard>,
    launch: LogLevel,
    current: std::sync::Arc<std::sync::Mutex<LogLevel>>,
}

impl std::fmt::Debug for LogLevelControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevelControl")
            .field("launch", &self.launch)
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl LogLevelControl {
    /// Control for a process launched at `launch_level` (its configured `log_level`).
    pub fn new(
        guard: Option<crate::logging::LogGuard>,
        launch_level: crate::logging::Level,
    ) -> Self {
        use crate::logging::Level;
        let launch = match launch_level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        LogLevelControl {
            guard,
            launch,
            current: std::sync::Arc::new(std::sync::Mutex::new(launch)),
        }
    }

    fn current(&self) -> LogLevel {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `spire.api.types.Logger` answer: current and launch levels.
    pub fn logger(&self) -> Logger {
        Logger {
            current_level: self.current() as i32,
            launch_level: self.launch as i32,
        }
    }

    /// Applies `level`; panic and fatal filter as error (nothing is logged at those
    /// levels that is not also an error) but are reported as set, as in SPIRE.
    fn apply(&self, level: LogLevel) -> Result<(), tonic::Status> {
        use crate::logging::Level;
        let filter = match level {
            LogLevel::Unspecified => {
                return Err(tonic::Status::invalid_argument(
                    "newLevel value cannot be LogLevel_UNSPECIFIED",
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
                .map_err(|e| tonic::Status::internal(format!("failed to set log level: {e}")))?;
        }
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = level;
        Ok(())
    }

    /// `SetLogLevel(new_level)`: `InvalidArgument` for UNSPECIFIED or an unknown value.
    pub fn set(&self, new_level: i32) -> Result<Logger, tonic::Status> {
        let level = LogLevel::try_from(new_level).map_err(|_| {
            tonic::Status::invalid_argument(format!("unknown log level {new_level}"))
        })?;
        self.apply(level)?;
        tracing::info!(new_level = level.as_str_name(), "Log level changed");
        Ok(self.logger())
    }

    /// `ResetLogLevel`: back to the launch level.
    pub fn reset(&self) -> Result<Logger, tonic::Status> {
        self.apply(self.launch)?;
        tracing::info!(launch_level = self.launch.as_str_name(), "Log level reset");
        Ok(self.logger())
    }
}

/// The Logger API of both processes (SPIRE's `pkg/server/api/logger/v1` and
/// `pkg/agent/api/logger/v1`): `spire.api.server.logger.v1.Logger` and
/// `spire.api.agent.logger.v1.Logger` over one [`LogLevelControl`]. The two services
/// differ only in their package, so one type serves both.
#[derive(Clone, Debug)]
pub struct LoggerService(LogLevelControl);

impl LoggerService {
    /// The service for a process launched at `launch_level` (its configured
    /// `log_level`); without a guard the levels are tracked but no filter is reloaded.
    pub fn new(
        guard: Option<crate::logging::LogGuard>,
        launch_level: crate::logging::Level,
    ) -> Self {
        LoggerService(LogLevelControl::new(guard, launch_level))
    }
}

/// Implements one package's generated `Logger` trait for [`LoggerService`].
macro_rules! logger_api {
    ($($pb:ident)::+) => {
        #[tonic::async_trait]
        impl $($pb)::+::logger_server::Logger for LoggerService {
            async fn get_logger(
                &self,
                _request: tonic::Request<$($pb)::+::GetLoggerRequest>,
            ) -> Result<tonic::Response<Logger>, tonic::Status> {
                Ok(tonic::Response::new(self.0.logger()))
            }

            async fn set_log_level(
                &self,
                request: tonic::Request<$($pb)::+::SetLogLevelRequest>,
            ) -> Result<tonic::Response<Logger>, tonic::Status> {
                self.0
                    .set(request.into_inner().new_level)
                    .map(tonic::Response::new)
            }

            async fn reset_log_level(
                &self,
                _request: tonic::Request<$($pb)::+::ResetLogLevelRequest>,
            ) -> Result<tonic::Response<Logger>, tonic::Status> {
                self.0.reset().map(tonic::Response::new)
            }
        }
    };
}

logger_api!(spire_proto::spire::api::server::logger::v1);
logger_api!(spire_proto::spire::api::agent::logger::v1);

#[cfg(test)]
mod logger_service_tests {
    use spire_proto::spire::api::server::logger::v1 as pb;
    use spire_proto::spire::api::server::logger::v1::logger_server::Logger as _;
    use tonic::{Request, Response};

    use super::*;
    use crate::logging::Level;

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

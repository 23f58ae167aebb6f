//! `spire.api.agent.logger.v1.Logger`: reads and changes the agent's log level at run
//! time (SPIRE's `pkg/agent/api/logger/v1`). spire-common's [`LoggerService`] serves it,
//! the same type as the server's Logger API.

pub use spire_common::api_log_level::LoggerService;

//! `spire.api.server.logger.v1.Logger` (server.md §3.4): reads and changes the server's
//! log level at run time. Served on the admin Unix socket only (server.md §3.1).
//! spire-common's [`LoggerService`] serves it, the same type as the agent's Logger API.

pub use spire_common::api_log_level::LoggerService;

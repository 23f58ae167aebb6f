//! What the spire-rs server and agent share: SPIRE's HCL configuration conventions,
//! Go-style durations and command-line flags, logging, and selectors.
//!
//! - [`duration`]: Go's `time.ParseDuration` and `Duration.String()`, exactly.
//! - [`hcl`]: reading `server.conf` / `agent.conf` (HCL v1 or JSON), `-expandEnv`,
//!   unknown-key detection, and the `plugins { }` section.
//! - [`sections`]: the `health_checks` and `telemetry` sections both daemons have.
//! - [`flags`]: Go-style single-dash flags (`-socketPath x`) for clap.
//! - [`logging`]: SPIRE's text and JSON log lines over `tracing`, with a run-time level.
//! - [`selector`]: `type:value` selectors and selector sets.
//! - [`key_type`]: the key type names of the configuration (`ec-p256`, ...).
//! - [`protojson`]: `-output json`, protobuf messages printed as SPIRE prints them.

pub mod api_log_level;
pub mod cli;
pub mod convert;
pub mod duration;
pub mod flags;
pub mod grpc_tls;
pub mod hcl;
pub mod key_type;
pub mod keymanager;
pub mod logging;
pub mod protojson;
pub mod sections;
pub mod selector;
pub mod signals;
pub mod status;
pub mod tls;
pub mod uds;
pub mod umask;
pub mod x509pop;

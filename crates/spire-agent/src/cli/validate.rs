//! `spire-agent validate` (agent.md §7.5, SPIRE's `cmd/spire-agent/cli/validate`): loads
//! `agent.conf` with the `run` flags exactly as `run` does, without starting anything.

use super::CliError;
use crate::config::{AgentConfig, AgentFlags};

/// Validates the configuration named by `flags` and prints SPIRE's messages. An
/// invalid configuration exits with status 1 and SPIRE's message on stderr (without the
/// `Error:` prefix other commands use).
pub(crate) fn run(flags: &AgentFlags) -> Result<(), CliError> {
    if let Err(e) = AgentConfig::load_with_flags(flags) {
        eprintln!("SPIRE agent configuration file is invalid: {e}");
        std::process::exit(1);
    }
    println!("SPIRE agent configuration file is valid.");
    Ok(())
}

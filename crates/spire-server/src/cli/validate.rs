//! `spire-server validate` (server.md §2.2): loads the configuration as `run` does and
//! checks its plugins, without starting anything.

use super::CliError;
use crate::config::{ServerConfig, ServerFlags};

/// Validates the configuration named by `flags` and prints SPIRE's messages. An invalid
/// configuration exits with status 1 and SPIRE's message (without the `Error:` prefix
/// other commands use).
pub(crate) fn run(flags: &ServerFlags) -> Result<(), CliError> {
    let config = match ServerConfig::load_with_flags(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("SPIRE server configuration file is invalid: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = crate::run::validate(&config) {
        // SPIRE prints the notes as a Go slice and no final newline.
        eprint!("SPIRE server configuration file is invalid.\nValidation notes: [{e}]");
        std::process::exit(1);
    }
    println!("SPIRE server configuration file is valid.");
    Ok(())
}

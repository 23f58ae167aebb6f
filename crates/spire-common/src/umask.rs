//! The restrictive umask SPIRE's server and agent set at startup (`common_cli.SetUmask`),
//! so data files, databases and logs are never world-readable.

use rustix::fs::Mode;

/// The bits that are always masked: group write and all of "other".
pub const RESTRICTED_BITS: u32 = 0o027;

/// Adds [`RESTRICTED_BITS`] to the process umask, keeping anything stricter, and returns
/// the new umask.
pub fn restrict() -> u32 {
    // umask() can only be read by setting it; set it straight back with the extra bits.
    let current = rustix::process::umask(Mode::from_raw_mode(RESTRICTED_BITS));
    let wanted = Mode::from_raw_mode(current.as_raw_mode() | RESTRICTED_BITS);
    rustix::process::umask(wanted);
    wanted.as_raw_mode()
}

//! The Debug and Logger services of the agent's admin socket (agent.md §3.2), served
//! next to the Delegated Identity API by
//! [`serve_admin_with`](super::delegated::serve_admin_with).

pub mod debug;
pub mod logger;

pub use debug::{DebugService, DebugSources};
pub use logger::LoggerService;

//! The `systemd` WorkloadAttestor (SPIRE's `pkg/agent/plugin/workloadattestor/systemd`).
//!
//! | Selector | Source |
//! |---|---|
//! | `systemd:id:<unit>` | the unit the process belongs to, e.g. `nginx.service` |
//! | `systemd:fragment_path:<path>` | **not emitted** (see below) |
//!
//! SPIRE asks the system manager over D-Bus (`GetUnitByPID`, then the unit's `Id` and
//! `FragmentPath` properties). spire-rs has no D-Bus client, so the unit is read from the
//! process's systemd cgroup instead, which is where systemd itself derives the answer of
//! `GetUnitByPID`: in `/proc/<pid>/cgroup` (or `$HOST_PROC`), the `name=systemd` line
//! (cgroup v1 / hybrid) or else the `0::` line (cgroup v2), the first path segment that
//! names a unit other than a slice (`nginx.service`, `session-2.scope`,
//! `docker-<id>.scope`; a process deeper in a delegated subtree such as
//! `user@1000.service/app.slice/x.service` belongs to `user@1000.service` for the system
//! manager). A process sitting directly in a slice belongs to that slice, one in the
//! root cgroup to `-.slice`.
//!
//! Gaps against SPIRE, documented rather than faked:
//! - `fragment_path` (the unit file systemd loaded, after aliases, templates and
//!   precedence between `/etc`, `/run` and `/usr/lib`) is only knowable from systemd, so
//!   it is not emitted; registration entries using it will not match.
//! - The cgroup path is relative to the agent's cgroup namespace: run the agent in the
//!   host cgroup namespace (as SPIRE's D-Bus access requires the host's bus anyway).
//! - A process without a systemd hierarchy (systemd not the init system) is an error, as
//!   the D-Bus call fails in SPIRE.

use std::path::PathBuf;

use thiserror::Error;

use super::cgroup::{self, CgroupEntry, CgroupError};
use super::unix::HOST_PROC_ENV;
use super::{AttestFuture, AttestorError, WorkloadAttestor};

/// The plugin name, which is also the type of every selector it produces.
pub const PLUGIN_NAME: &str = "systemd";

/// Why the `systemd` attestor failed.
#[derive(Debug, Error)]
pub enum SystemdAttestorError {
    /// `/proc/<pid>/cgroup` is missing (the process is gone) or unusable.
    #[error("failed to get unit for pid {pid}: {reason}")]
    NoUnit {
        /// The attested pid.
        pid: i32,
        /// What went wrong.
        reason: String,
    },
    /// The cgroup file could not be read or parsed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// Unit suffixes that can own processes, besides slices.
const PROCESS_UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];

/// The systemd unit owning a process, from its `/proc/<pid>/cgroup` entries, or `None`
/// when no entry belongs to a systemd hierarchy.
pub fn unit_from_cgroups(entries: &[CgroupEntry]) -> Option<String> {
    let systemd_v1 = entries
        .iter()
        .find(|e| e.controllers.iter().any(|c| c == "name=systemd"));
    let unified = entries
        .iter()
        .find(|e| e.hierarchy_id == "0" && e.controllers.is_empty());
    let path = systemd_v1.or(unified)?.path.as_str();

    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(unit) = segments.iter().find(|s| {
        PROCESS_UNIT_SUFFIXES
            .iter()
            .any(|suffix| s.ends_with(suffix))
    }) {
        return Some((*unit).to_owned());
    }
    match segments.iter().rev().find(|s| s.ends_with(".slice")) {
        Some(slice) => Some((*slice).to_owned()),
        None if segments.is_empty() => Some("-.slice".to_owned()),
        None => None,
    }
}

/// The `systemd` workload attestor.
#[derive(Debug, Clone)]
pub struct SystemdAttestor {
    proc_root: PathBuf,
}

impl Default for SystemdAttestor {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemdAttestor {
    /// An attestor reading `/proc` (or `$HOST_PROC`).
    pub fn new() -> Self {
        let proc_root = std::env::var_os(HOST_PROC_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/proc"), PathBuf::from);
        Self::with_proc_root(proc_root)
    }

    /// An attestor reading the given proc mount.
    pub fn with_proc_root(proc_root: impl Into<PathBuf>) -> Self {
        SystemdAttestor {
            proc_root: proc_root.into(),
        }
    }

    /// Attests `pid` synchronously: `["id:<unit>"]`.
    pub fn attest_values(&self, pid: i32) -> Result<Vec<String>, SystemdAttestorError> {
        let path = self.proc_root.join(pid.to_string()).join("cgroup");
        let text = cgroup::read_optional(&path)?.ok_or(SystemdAttestorError::NoUnit {
            pid,
            reason: format!("{} does not exist", path.display()),
        })?;
        let entries = cgroup::parse_cgroups(&text)?;
        let unit = unit_from_cgroups(&entries).ok_or(SystemdAttestorError::NoUnit {
            pid,
            reason: "the process is in no systemd cgroup hierarchy".to_owned(),
        })?;
        Ok(vec![format!("id:{unit}")])
    }
}

impl WorkloadAttestor for SystemdAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn attest(&self, pid: i32) -> AttestFuture<'_> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.attest_values(pid))
                .await
                .map_err(|e| AttestorError::Task(e.to_string()))?
                .map_err(|e| AttestorError::Other(Box::new(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Option<String> {
        unit_from_cgroups(&cgroup::parse_cgroups(text).unwrap_or_default())
    }

    #[test]
    fn unit_from_v2_and_v1() {
        assert_eq!(
            unit("0::/system.slice/nginx.service\n").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit("12:memory:/system.slice/nginx.service\n1:name=systemd:/system.slice/sshd.service\n0::/system.slice/x.service\n")
                .as_deref(),
            Some("sshd.service")
        );
        assert_eq!(
            unit("0::/user.slice/user-1000.slice/session-2.scope\n").as_deref(),
            Some("session-2.scope")
        );
        assert_eq!(
            unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/a.service\n")
                .as_deref(),
            Some("user@1000.service")
        );
        assert_eq!(unit("0::/init.scope\n").as_deref(), Some("init.scope"));
        assert_eq!(unit("0::/system.slice\n").as_deref(), Some("system.slice"));
        assert_eq!(unit("0::/\n").as_deref(), Some("-.slice"));
        // cgroup v1 without the systemd hierarchy: no answer.
        assert_eq!(unit("4:memory:/docker/abc\n"), None);
    }

    #[test]
    fn attest_values_from_fixture_root() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("42"))?;
        std::fs::write(
            root.path().join("42/cgroup"),
            "0::/system.slice/spire-agent.service\n",
        )?;
        let attestor = SystemdAttestor::with_proc_root(root.path());
        assert_eq!(attestor.attest_values(42)?, vec!["id:spire-agent.service"]);
        assert!(attestor.attest_values(43).is_err());
        Ok(())
    }
}

//! Caller identification and PID-reuse protection for Unix-socket callers.
//!
//! This follows SPIRE's Linux peer tracker (`pkg/common/peertracker/tracker_linux.go`):
//!
//! 1. When a connection is accepted, the peer's pid/uid/gid are read with `SO_PEERCRED`
//!    (a pid of 0 is refused).
//! 2. A [`PeerWatcher`] opens `/proc/<pid>` as a directory and keeps that descriptor for
//!    the life of the connection, and records the process start time (field 22 of
//!    `/proc/<pid>/stat`).
//! 3. After every attestation, [`PeerWatcher::is_alive`] checks that the original caller
//!    is still the process behind the pid: `getdents` on the kept descriptor must still
//!    succeed (the kernel fails it with `ENOENT` once that process has exited, even if the
//!    pid has been reused since), the start time must be unchanged, and the owner of
//!    `/proc/<pid>` must still be the `SO_PEERCRED` uid and gid.
//!
//! `pidfd_open` (or `SO_PEERPIDFD`) would be an alternative; SPIRE does not use it, and the
//! checks above give the same guarantee for the attestation window, so we mirror SPIRE.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rustix::fs::{RawDir, SeekFrom};
use thiserror::Error;

/// Fewer fields than this in `/proc/<pid>/stat` means an unsupported kernel (SPIRE's
/// threshold: field 38 appeared in Linux 2.1.22).
const MIN_STAT_FIELDS: usize = 38;
/// Index of `starttime` (field 22, 1-based) among the fields of `/proc/<pid>/stat`.
const START_TIME_INDEX: usize = 21;

/// The kernel-reported identity of a Unix-socket peer (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerInfo {
    /// The peer's process ID.
    pub pid: i32,
    /// The peer's effective user ID at `connect` time.
    pub uid: u32,
    /// The peer's effective group ID at `connect` time.
    pub gid: u32,
}

/// Why a caller could not be tracked or is no longer the process that connected.
///
/// The messages are SPIRE's, since they reach clients inside the `Unauthenticated` status
/// `could not verify existence of the original caller: ...`.
#[derive(Debug, Error)]
pub enum PeerError {
    /// `SO_PEERCRED` could not be read.
    #[error("could not read caller credentials: {0}")]
    PeerCred(#[source] io::Error),
    /// `SO_PEERCRED` gave no pid, or pid 0.
    #[error("could not resolve caller information")]
    NoPid,
    /// `/proc/<pid>` could not be opened.
    #[error("could not open caller's proc directory: {0}")]
    OpenProc(#[source] io::Error),
    /// `/proc/<pid>/stat` could not be read.
    #[error("could not read caller stat: {0}")]
    ReadStat(#[source] io::Error),
    /// `/proc/<pid>/stat` has no parenthesized task name.
    #[error("bad stat data: task name is not parenthesized")]
    StatNotParenthesized,
    /// `/proc/<pid>/stat` has too few fields.
    #[error("bad stat data or unsupported platform")]
    StatTooShort,
    /// The watcher was closed after an earlier failed check.
    #[error("caller is no longer being watched")]
    NoLongerWatched,
    /// `getdents` on the kept `/proc/<pid>` descriptor failed: the process exited.
    #[error("caller exit suspected due to failed readdirent: {0}")]
    ReadDirent(#[source] io::Error),
    /// The start time could not be read again.
    #[error("caller exit suspected due to failure to get starttime: {0}")]
    StartTimeUnavailable(#[source] Box<PeerError>),
    /// The process behind the pid started at another time: a new process.
    #[error(
        "new process detected: process starttime {current} does not match original caller {original}"
    )]
    StartTimeMismatch {
        /// The start time now.
        current: String,
        /// The start time when the connection was accepted.
        original: String,
    },
    /// `stat(/proc/<pid>)` failed.
    #[error("caller exit suspected due to failed proc stat: {0}")]
    ProcStat(#[source] io::Error),
    /// `/proc/<pid>` is owned by another uid than the connecting one.
    #[error(
        "new process detected: process uid {current} does not match original caller {original}"
    )]
    UidMismatch {
        /// The owner uid now.
        current: u32,
        /// The `SO_PEERCRED` uid.
        original: u32,
    },
    /// `/proc/<pid>` is owned by another gid than the connecting one.
    #[error(
        "new process detected: process gid {current} does not match original caller {original}"
    )]
    GidMismatch {
        /// The owner gid now.
        current: u32,
        /// The `SO_PEERCRED` gid.
        original: u32,
    },
}

/// Watches one connected caller so that attestation results can be trusted to describe
/// the process that opened the connection (see the [module documentation](self)).
#[derive(Debug)]
pub struct PeerWatcher {
    caller: CallerInfo,
    proc_path: PathBuf,
    start_time: String,
    /// The `/proc/<pid>` directory, open for the life of the connection; `None` once
    /// closed.
    proc_dir: Mutex<Option<File>>,
}

impl PeerWatcher {
    /// Starts watching a caller: opens `/proc/<pid>` and records its start time.
    pub fn new(caller: CallerInfo) -> Result<Self, PeerError> {
        if caller.pid <= 0 {
            return Err(PeerError::NoPid);
        }
        let proc_path = PathBuf::from(format!("/proc/{}", caller.pid));
        // Grab the directory handle first: it is the fastest thing to do.
        let proc_dir = File::open(&proc_path).map_err(PeerError::OpenProc)?;
        let start_time = read_start_time(caller.pid)?;
        Ok(PeerWatcher {
            caller,
            proc_path,
            start_time,
            proc_dir: Mutex::new(Some(proc_dir)),
        })
    }

    /// The caller's `SO_PEERCRED` credentials.
    pub fn caller(&self) -> CallerInfo {
        self.caller
    }

    /// The caller's process ID.
    pub fn pid(&self) -> i32 {
        self.caller.pid
    }

    /// Checks that the process behind the pid is still the original caller. On failure
    /// the caller must be treated as unauthenticated; the watcher should then be
    /// [closed](Self::close) so that later calls on the same connection fail too.
    pub fn is_alive(&self) -> Result<(), PeerError> {
        let guard = self.proc_dir.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = guard.as_ref().ok_or(PeerError::NoLongerWatched)?;

        // Reading the original directory handle fails once that process has exited.
        rustix::fs::seek(dir.as_fd(), SeekFrom::Start(0))
            .map_err(|e| PeerError::ReadDirent(e.into()))?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
        let mut entries = RawDir::new(dir.as_fd(), &mut buf);
        if let Some(Err(e)) = entries.next() {
            return Err(PeerError::ReadDirent(e.into()));
        }

        // Belt and braces, as SPIRE: the start time must not have changed.
        let current = read_start_time(self.caller.pid)
            .map_err(|e| PeerError::StartTimeUnavailable(Box::new(e)))?;
        if current != self.start_time {
            return Err(PeerError::StartTimeMismatch {
                current,
                original: self.start_time.clone(),
            });
        }

        // Even if a pid race was lost when the handle was opened, the winner must at least
        // run as the same user and group as the connecting process.
        let meta = std::fs::metadata(&self.proc_path).map_err(PeerError::ProcStat)?;
        if meta.uid() != self.caller.uid {
            return Err(PeerError::UidMismatch {
                current: meta.uid(),
                original: self.caller.uid,
            });
        }
        if meta.gid() != self.caller.gid {
            return Err(PeerError::GidMismatch {
                current: meta.gid(),
                original: self.caller.gid,
            });
        }
        Ok(())
    }

    /// Stops watching: releases the `/proc/<pid>` descriptor; every later
    /// [`is_alive`](Self::is_alive) fails.
    pub fn close(&self) {
        self.proc_dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Reads the start time of `pid` from `/proc/<pid>/stat`.
fn read_start_time(pid: i32) -> Result<String, PeerError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(PeerError::ReadStat)?;
    parse_start_time(&stat)
}

/// Extracts `starttime` (field 22) from the text of a `/proc/<pid>/stat` file.
///
/// The task name (field 2) is parenthesized and may itself contain spaces and
/// parentheses, so the fields are split around the first `(` and the last `)`.
pub fn parse_start_time(stat: &str) -> Result<String, PeerError> {
    let open = stat.find('(').ok_or(PeerError::StatNotParenthesized)?;
    let close = stat.rfind(')').ok_or(PeerError::StatNotParenthesized)?;
    if close < open {
        return Err(PeerError::StatNotParenthesized);
    }
    let mut fields: Vec<&str> = Vec::with_capacity(52);
    fields.extend(stat[..open].split_whitespace());
    fields.push(&stat[open + 1..close]);
    fields.extend(stat[close + 1..].split_whitespace());
    if fields.len() < MIN_STAT_FIELDS {
        return Err(PeerError::StatTooShort);
    }
    fields
        .get(START_TIME_INDEX)
        .map(|s| (*s).to_owned())
        .ok_or(PeerError::StatTooShort)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        assert_eq!(parse_start_time(STAT).ok().as_deref(), Some("987654"));
    }

    #[test]
    fn malformed_stat_is_refused() {
        assert!(matches!(
            parse_start_time("4242 prog S 1"),
            Err(PeerError::StatNotParenthesized)
        ));
        assert!(matches!(
            parse_start_time("4242 (prog) S 1 2 3"),
            Err(PeerError::StatTooShort)
        ));
        assert!(matches!(
            parse_start_time(") 4242 (prog"),
            Err(PeerError::StatNotParenthesized)
        ));
    }

    #[test]
    fn own_process_is_alive() -> Result<(), PeerError> {
        let meta = std::fs::metadata("/proc/self").map_err(PeerError::ProcStat)?;
        let watcher = PeerWatcher::new(CallerInfo {
            pid: std::process::id() as i32,
            uid: meta.uid(),
            gid: meta.gid(),
        })?;
        watcher.is_alive()?;
        watcher.is_alive()?;
        watcher.close();
        assert!(matches!(
            watcher.is_alive(),
            Err(PeerError::NoLongerWatched)
        ));
        Ok(())
    }

    #[test]
    fn pid_zero_is_refused() {
        assert!(matches!(
            PeerWatcher::new(CallerInfo {
                pid: 0,
                uid: 0,
                gid: 0
            }),
            Err(PeerError::NoPid)
        ));
    }

    #[test]
    fn uid_mismatch_is_detected() -> Result<(), PeerError> {
        let meta = std::fs::metadata("/proc/self").map_err(PeerError::ProcStat)?;
        let watcher = PeerWatcher::new(CallerInfo {
            pid: std::process::id() as i32,
            uid: meta.uid().wrapping_add(1),
            gid: meta.gid(),
        })?;
        assert!(matches!(
            watcher.is_alive(),
            Err(PeerError::UidMismatch { .. })
        ));
        Ok(())
    }

    #[test]
    fn exited_process_is_detected() -> Result<(), Box<dyn std::error::Error>> {
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        let pid = i32::try_from(child.id())?;
        let meta = std::fs::metadata(format!("/proc/{pid}"))?;
        let watcher = PeerWatcher::new(CallerInfo {
            pid,
            uid: meta.uid(),
            gid: meta.gid(),
        })?;
        watcher.is_alive()?;
        child.kill()?;
        child.wait()?;
        assert!(watcher.is_alive().is_err());
        Ok(())
    }
}

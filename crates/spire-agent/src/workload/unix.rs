//! The `unix` WorkloadAttestor (SPIRE's `pkg/agent/plugin/workloadattestor/unix`).
//!
//! Selectors, in SPIRE's emission order:
//!
//! | Selector | Source |
//! |---|---|
//! | `unix:uid:<n>` | effective UID: 2nd value of `Uid:` in `/proc/<pid>/status` (the only one if there is one) |
//! | `unix:user:<name>` | the UID's name in `/etc/passwd`, if it has one |
//! | `unix:gid:<n>` | effective GID: 2nd value of `Gid:` |
//! | `unix:group:<name>` | the GID's name in `/etc/group`, if it has one |
//! | `unix:supplementary_gid:<n>` | one per value of `Groups:`, as written there |
//! | `unix:supplementary_group:<name>` | after each supplementary GID whose name is known |
//! | `unix:path:<path>` | with `discover_workload_path`: the target of `/proc/<pid>/exe` |
//! | `unix:sha256:<hex>` | with `discover_workload_path` and `workload_size_limit >= 0`: SHA-256 of the binary read through `/proc/<pid>/exe` |
//!
//! `HOST_PROC` overrides `/proc`, as in SPIRE. Names are resolved by parsing
//! `/etc/passwd` and `/etc/group` the way Go's pure-Go `os/user` does (first matching
//! line wins; `#` comments and NIS `+`/`-` lines are skipped); NSS sources such as LDAP,
//! which SPIRE reaches through cgo, are not consulted.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::{AttestFuture, AttestorError, WorkloadAttestor};

/// The plugin name, which is also the type of every selector it produces.
pub const PLUGIN_NAME: &str = "unix";
/// Environment variable that overrides the `/proc` mount point.
pub const HOST_PROC_ENV: &str = "HOST_PROC";

/// `plugin_data` of `WorkloadAttestor "unix"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UnixAttestorConfig {
    /// Also emit `unix:path` and `unix:sha256` selectors (needs permission to read
    /// `/proc/<pid>/exe`). Default false.
    pub discover_workload_path: bool,
    /// Largest binary hashed for `unix:sha256`, in bytes: 0 (the default) means no limit,
    /// a negative value disables the hash.
    pub workload_size_limit: i64,
}

/// Why the `unix` attestor failed. Messages follow SPIRE's.
#[derive(Debug, Error)]
pub enum UnixAttestorError {
    /// `/proc/<pid>/status` could not be read (the process is gone, or no permission).
    #[error("failed to get process: {0}")]
    Process(#[source] io::Error),
    /// The `Uid:` line is missing or malformed.
    #[error("UIDs lookup: {0}")]
    Uids(String),
    /// The `Gid:` line is missing or malformed.
    #[error("GIDs lookup: {0}")]
    Gids(String),
    /// `/proc/<pid>/exe` could not be resolved.
    #[error("path lookup: {0}")]
    Path(#[source] io::Error),
    /// The binary could not be read for hashing.
    #[error("SHA256 digest: {0}")]
    Digest(#[source] io::Error),
    /// The binary is larger than `workload_size_limit`.
    #[error("SHA256 digest: workload {path} exceeds size limit ({size} > {limit})")]
    SizeLimit {
        /// The path that was hashed (`/proc/<pid>/exe`).
        path: String,
        /// The binary's size.
        size: u64,
        /// The configured limit.
        limit: i64,
    },
}

/// The parts of `/proc/<pid>/status` the attestor uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// `Uid:` values: real, effective, saved, filesystem.
    pub uids: Vec<u32>,
    /// `Gid:` values: real, effective, saved, filesystem.
    pub gids: Vec<u32>,
    /// `Groups:` values, kept as written (SPIRE does not parse them).
    pub groups: Vec<String>,
}

impl ProcStatus {
    /// Parses the text of a `/proc/<pid>/status` file. Lines other than `Uid:`, `Gid:`
    /// and `Groups:` are ignored; a malformed `Uid:` or `Gid:` value is an error.
    pub fn parse(text: &str) -> Result<Self, UnixAttestorError> {
        let mut status = ProcStatus::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "uid" => status.uids = parse_ids(value).map_err(UnixAttestorError::Uids)?,
                "gid" => status.gids = parse_ids(value).map_err(UnixAttestorError::Gids)?,
                "groups" => {
                    status.groups = value.split_whitespace().map(str::to_owned).collect();
                }
                _ => {}
            }
        }
        Ok(status)
    }

    /// The effective UID (the second `Uid:` value, or the only one).
    pub fn effective_uid(&self) -> Result<u32, UnixAttestorError> {
        effective(&self.uids)
            .ok_or_else(|| UnixAttestorError::Uids("no UIDs for process".to_owned()))
    }

    /// The effective GID (the second `Gid:` value, or the only one).
    pub fn effective_gid(&self) -> Result<u32, UnixAttestorError> {
        effective(&self.gids)
            .ok_or_else(|| UnixAttestorError::Gids("no GIDs for process".to_owned()))
    }
}

fn parse_ids(value: &str) -> Result<Vec<u32>, String> {
    value
        .split_whitespace()
        .map(|v| {
            v.parse::<u32>()
                .map_err(|e| format!("invalid id {v:?}: {e}"))
        })
        .collect()
}

fn effective(ids: &[u32]) -> Option<u32> {
    match ids {
        [] => None,
        [only] => Some(*only),
        [_, effective, ..] => Some(*effective),
    }
}

/// Finds the user name of `uid` in the text of an `/etc/passwd` file.
pub fn lookup_user_name(passwd: &str, uid: &str) -> Option<String> {
    colon_lines(passwd).find_map(|line| {
        let parts: Vec<&str> = line.splitn(7, ':').collect();
        let ok = parts.len() >= 6
            && parts[2] == uid
            && parts[2].parse::<i64>().is_ok()
            && parts[3].parse::<i64>().is_ok();
        ok.then(|| parts[0].to_owned())
    })
}

/// Finds the group name of `gid` in the text of an `/etc/group` file.
pub fn lookup_group_name(group: &str, gid: &str) -> Option<String> {
    colon_lines(group).find_map(|line| {
        let parts: Vec<&str> = line.splitn(4, ':').collect();
        let ok = parts.len() >= 4 && parts[2] == gid && parts[2].parse::<i64>().is_ok();
        ok.then(|| parts[0].to_owned())
    })
}

/// The usable lines of a colon-separated database: no blanks, comments, NIS entries or
/// entries with an empty name.
fn colon_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|line| {
        !line.is_empty()
            && !line.starts_with('#')
            && !line.starts_with('+')
            && !line.starts_with('-')
            && !line.starts_with(':')
    })
}

/// The `unix` workload attestor.
#[derive(Debug, Clone)]
pub struct UnixAttestor {
    config: UnixAttestorConfig,
    proc_root: PathBuf,
    passwd_path: PathBuf,
    group_path: PathBuf,
}

impl UnixAttestor {
    /// An attestor reading `/proc` (or `$HOST_PROC`), `/etc/passwd` and `/etc/group`.
    pub fn new(config: UnixAttestorConfig) -> Self {
        let proc_root = std::env::var_os(HOST_PROC_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/proc"), PathBuf::from);
        Self::with_paths(config, proc_root, "/etc/passwd", "/etc/group")
    }

    /// An attestor reading the given proc mount and user/group databases (for tests and
    /// containers that mount the host's files elsewhere).
    pub fn with_paths(
        config: UnixAttestorConfig,
        proc_root: impl Into<PathBuf>,
        passwd_path: impl Into<PathBuf>,
        group_path: impl Into<PathBuf>,
    ) -> Self {
        UnixAttestor {
            config,
            proc_root: proc_root.into(),
            passwd_path: passwd_path.into(),
            group_path: group_path.into(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &UnixAttestorConfig {
        &self.config
    }

    /// Attests `pid` synchronously, returning selector values (`uid:1000`, ...) in
    /// SPIRE's order; the selector type is [`PLUGIN_NAME`].
    pub fn attest_values(&self, pid: i32) -> Result<Vec<String>, UnixAttestorError> {
        let proc_dir = self.proc_root.join(pid.to_string());
        let status_text =
            std::fs::read_to_string(proc_dir.join("status")).map_err(UnixAttestorError::Process)?;
        let status = ProcStatus::parse(&status_text)?;
        // A missing or unreadable database just means that no name resolves.
        let passwd = std::fs::read_to_string(&self.passwd_path).unwrap_or_default();
        let group = std::fs::read_to_string(&self.group_path).unwrap_or_default();

        let mut values = Vec::new();
        let uid = status.effective_uid()?.to_string();
        values.push(format!("uid:{uid}"));
        if let Some(name) = lookup_user_name(&passwd, &uid) {
            values.push(format!("user:{name}"));
        }

        let gid = status.effective_gid()?.to_string();
        values.push(format!("gid:{gid}"));
        if let Some(name) = lookup_group_name(&group, &gid) {
            values.push(format!("group:{name}"));
        }

        for sgid in &status.groups {
            values.push(format!("supplementary_gid:{sgid}"));
            if let Some(name) = lookup_group_name(&group, sgid) {
                values.push(format!("supplementary_group:{name}"));
            }
        }

        if self.config.discover_workload_path {
            let exe = proc_dir.join("exe");
            let path = std::fs::read_link(&exe).map_err(UnixAttestorError::Path)?;
            values.push(format!("path:{}", path.to_string_lossy()));
            if self.config.workload_size_limit >= 0 {
                let digest = sha256_file(&exe, self.config.workload_size_limit)?;
                values.push(format!("sha256:{digest}"));
            }
        }
        Ok(values)
    }
}

impl WorkloadAttestor for UnixAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn attest(&self, pid: i32) -> AttestFuture<'_> {
        let this = self.clone();
        Box::pin(async move {
            // /proc reads and hashing a binary are blocking file I/O.
            tokio::task::spawn_blocking(move || this.attest_values(pid))
                .await
                .map_err(|e| AttestorError::Task(e.to_string()))?
                .map_err(AttestorError::from)
        })
    }
}

/// Hex SHA-256 of the file at `path`, refusing files over `limit` bytes when `limit > 0`.
pub fn sha256_file(path: &Path, limit: i64) -> Result<String, UnixAttestorError> {
    let mut file = File::open(path).map_err(UnixAttestorError::Digest)?;
    if limit > 0 {
        let size = file.metadata().map_err(UnixAttestorError::Digest)?.len();
        if i64::try_from(size).map_or(true, |s| s > limit) {
            return Err(UnixAttestorError::SizeLimit {
                path: path.to_string_lossy().into_owned(),
                size,
                limit,
            });
        }
    }
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnixAttestorError::Digest(e)),
        };
        context.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(context.finish().as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t1\n\
Uid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\nFDSize:\t64\nGroups:\t27 100 4000 \nNStgid:\t4242\n";

    const PASSWD: &str = "# comment\nroot:x:0:0:root:/root:/bin/bash\n+nis::::::\n\
alice:x:1001:2001:Alice:/home/alice:/bin/sh\nbogus:x:notanumber:1:::\nalice2:x:1001:2001::/:/bin/sh\n";

    const GROUP: &str =
        "root:x:0:\nsudo:x:27:alice\nusers:x:100:\nalice:x:2001:\n-nisgroup::4000:\nbroken\n";

    #[test]
    fn status_fixture_is_parsed() -> Result<(), UnixAttestorError> {
        let status = ProcStatus::parse(STATUS)?;
        assert_eq!(status.uids, vec![1000, 1001, 1002, 1003]);
        assert_eq!(status.gids, vec![2000, 2001, 2002, 2003]);
        assert_eq!(status.groups, vec!["27", "100", "4000"]);
        assert_eq!(status.effective_uid()?, 1001);
        assert_eq!(status.effective_gid()?, 2001);
        Ok(())
    }

    #[test]
    fn single_value_and_missing_lines() -> Result<(), UnixAttestorError> {
        let status = ProcStatus::parse("Uid:\t5\nGid:\t6\n")?;
        assert_eq!(status.effective_uid()?, 5);
        assert_eq!(status.effective_gid()?, 6);
        assert!(status.groups.is_empty());
        let empty = ProcStatus::parse("Name:\tx\n")?;
        assert_eq!(
            empty.effective_uid().map_err(|e| e.to_string()),
            Err("UIDs lookup: no UIDs for process".to_owned())
        );
        assert!(ProcStatus::parse("Uid:\t1\tx\n").is_err());
        Ok(())
    }

    #[test]
    fn passwd_and_group_lookup() {
        assert_eq!(lookup_user_name(PASSWD, "0").as_deref(), Some("root"));
        assert_eq!(lookup_user_name(PASSWD, "1001").as_deref(), Some("alice"));
        assert_eq!(lookup_user_name(PASSWD, "notanumber"), None);
        assert_eq!(lookup_user_name(PASSWD, "4"), None);
        assert_eq!(lookup_group_name(GROUP, "27").as_deref(), Some("sudo"));
        assert_eq!(lookup_group_name(GROUP, "4000"), None);
        assert_eq!(lookup_group_name(GROUP, "2001").as_deref(), Some("alice"));
    }

    fn fixture_proc(dir: &Path, pid: i32, exe_target: &Path) -> io::Result<()> {
        let proc_dir = dir.join("proc").join(pid.to_string());
        std::fs::create_dir_all(&proc_dir)?;
        std::fs::write(proc_dir.join("status"), STATUS)?;
        std::os::unix::fs::symlink(exe_target, proc_dir.join("exe"))?;
        std::fs::write(dir.join("passwd"), PASSWD)?;
        std::fs::write(dir.join("group"), GROUP)
    }

    #[test]
    fn selectors_from_a_fixture_proc_tree() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let binary = dir.path().join("workload-bin");
        std::fs::write(&binary, b"abc")?;
        fixture_proc(dir.path(), 4242, &binary)?;

        let attestor = |config| {
            UnixAttestor::with_paths(
                config,
                dir.path().join("proc"),
                dir.path().join("passwd"),
                dir.path().join("group"),
            )
        };
        let plain = attestor(UnixAttestorConfig::default()).attest_values(4242)?;
        assert_eq!(
            plain,
            vec![
                "uid:1001",
                "user:alice",
                "gid:2001",
                "group:alice",
                "supplementary_gid:27",
                "supplementary_group:sudo",
                "supplementary_gid:100",
                "supplementary_group:users",
                "supplementary_gid:4000",
            ]
        );

        let with_path = attestor(UnixAttestorConfig {
            discover_workload_path: true,
            workload_size_limit: 0,
        })
        .attest_values(4242)?;
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            with_path[with_path.len() - 2..],
            [
                format!("path:{}", binary.display()),
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                    .to_owned(),
            ]
        );

        let no_hash = attestor(UnixAttestorConfig {
            discover_workload_path: true,
            workload_size_limit: -1,
        })
        .attest_values(4242)?;
        assert!(no_hash.last().is_some_and(|v| v.starts_with("path:")));

        let too_big = attestor(UnixAttestorConfig {
            discover_workload_path: true,
            workload_size_limit: 2,
        })
        .attest_values(4242);
        assert!(matches!(
            too_big,
            Err(UnixAttestorError::SizeLimit {
                size: 3,
                limit: 2,
                ..
            })
        ));

        assert!(matches!(
            attestor(UnixAttestorConfig::default()).attest_values(4343),
            Err(UnixAttestorError::Process(_))
        ));
        Ok(())
    }

    #[test]
    fn config_deserializes_with_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let config: UnixAttestorConfig =
            serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
                _,
                serde::de::value::Error,
            >::new(
                [("discover_workload_path", true)].into_iter()
            ))?;
        assert_eq!(
            config,
            UnixAttestorConfig {
                discover_workload_path: true,
                workload_size_limit: 0
            }
        );
        Ok(())
    }
}

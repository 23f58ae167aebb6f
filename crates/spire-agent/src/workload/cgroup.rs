//! Reading a process's cgroup membership from `/proc/<pid>/cgroup` and
//! `/proc/<pid>/mountinfo`, shared by the `docker` and `systemd` attestors.
//!
//! The container-ID search follows SPIRE's "new container locator"
//! (`spiffe/spire:pkg/common/containerinfo/extract.go`):
//!
//! 1. the roots of the `cgroup`/`cgroup2` mounts in `/proc/<pid>/mountinfo` are searched
//!    first (a containerised process sees its own cgroup as the mount root);
//! 2. only when none yields an ID are the paths of `/proc/<pid>/cgroup` searched;
//! 3. in each path, segments are walked from the last to the first, and the first
//!    segment holding a 64-hex-digit word (`\b[[:xdigit:]]{64}\b`) gives the ID, so
//!    `/docker/<id>`, `/system.slice/docker-<id>.scope`,
//!    `/kubepods/.../cri-containerd-<id>.scope` and `/<id>` all match;
//! 4. every entry must agree: as in SPIRE, once an ID is found a later entry with another
//!    (or no) ID is a conflict, which fails attestation instead of guessing.
//!
//! A missing file means "no information" (not an error), as in SPIRE.

use std::io;
use std::path::Path;

use thiserror::Error;

/// Why the cgroup files of a process could not be used.
#[derive(Debug, Error)]
pub enum CgroupError {
    /// A file exists but could not be read.
    #[error("unable to read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A `/proc/<pid>/cgroup` line does not have the `id:controllers:path` shape.
    #[error("invalid cgroup entry {0:?}")]
    Malformed(String),
    /// The cgroup entries name different containers.
    #[error("multiple container IDs found ({0:?}, {1:?})")]
    Conflict(String, String),
    /// The cgroup entries name different Kubernetes pods.
    #[error("multiple pod UIDs found ({0:?}, {1:?})")]
    PodConflict(String, String),
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// The hierarchy ID (`0` for the cgroup v2 unified hierarchy).
    pub hierarchy_id: String,
    /// The controllers bound to the hierarchy (empty for v2; `name=systemd` for the
    /// systemd v1 hierarchy).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the hierarchy's mount (and cgroup namespace).
    pub path: String,
}

/// Parses the text of `/proc/<pid>/cgroup`. Blank lines are skipped; a line without two
/// `:` separators is an error. The path may itself contain `:`.
pub fn parse_cgroups(text: &str) -> Result<Vec<CgroupEntry>, CgroupError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(controllers), Some(path)) => Ok(CgroupEntry {
                    hierarchy_id: id.to_owned(),
                    controllers: controllers
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    path: path.to_owned(),
                }),
                _ => Err(CgroupError::Malformed(line.to_owned())),
            }
        })
        .collect()
}

/// The roots of the `cgroup` and `cgroup2` mounts listed in the text of
/// `/proc/<pid>/mountinfo`, in file order. Lines that do not parse are skipped.
pub fn cgroup_mount_roots(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent major:minor root mount-point options [optional...] - fstype source super-options`
            let (left, right) = line.split_once(" - ")?;
            let root = left.split(' ').nth(3)?;
            let fstype = right.split(' ').next()?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| unescape_octal(root))
        })
        .collect()
}

/// Undoes the `\ooo` escaping the kernel applies to spaces, tabs, newlines and `\` in
/// mountinfo paths.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where the first 64-hex-digit word in `segment` starts (regexp
/// `\b([[:xdigit:]]{64})\b`).
fn find_container_id_start(segment: &str) -> Option<usize> {
    let bytes = segment.as_bytes();
    (0..bytes.len().saturating_sub(63)).find(|&start| {
        let end = start + 64;
        let boundary_before = start == 0 || !is_word_byte(bytes[start - 1]);
        let boundary_after = end == bytes.len() || !is_word_byte(bytes[end]);
        boundary_before && boundary_after && bytes[start..end].iter().all(u8::is_ascii_hexdigit)
    })
}

/// The first 64-hex-digit word in `segment` (regexp `\b([[:xdigit:]]{64})\b`).
fn find_container_id_word(segment: &str) -> Option<&str> {
    find_container_id_start(segment).and_then(|start| segment.get(start..start + 64))
}

/// The first Kubernetes pod UID in `segment`, in its cgroupfs (`pod<uid>`) or systemd
/// (`pod<uid with _ for ->`) rendering, returned with dashes (regexp
/// `\bpod([[:xdigit:]]{8}[-_][[:xdigit:]]{4}[-_][[:xdigit:]]{4}[-_][[:xdigit:]]{4}[-_][[:xdigit:]]{12})\b`).
fn find_pod_uid(segment: &str) -> Option<String> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let bytes = segment.as_bytes();
    let matches_at = |start: usize| -> Option<String> {
        if start > 0 && is_word_byte(bytes[start - 1]) {
            return None;
        }
        let uid = segment.get(start..)?.strip_prefix("pod")?;
        let uid_bytes = uid.as_bytes();
        let mut i = 0;
        for (n, len) in GROUPS.iter().enumerate() {
            if n > 0 {
                if !matches!(uid_bytes.get(i), Some(b'-' | b'_')) {
                    return None;
                }
                i += 1;
            }
            let group = uid_bytes.get(i..i + len)?;
            if !group.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            i += len;
        }
        if uid_bytes.get(i).is_some_and(|b| is_word_byte(*b)) {
            return None;
        }
        Some(uid[..i].replace('_', "-"))
    };
    (0..bytes.len()).find_map(matches_at)
}

/// Go's `path.Split` followed by trimming the directory's trailing `/`.
fn split_last_segment(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((rest, segment)) => (rest, segment),
        None => ("", path),
    }
}

/// The pod UID and container ID in one cgroup path or mount root, as SPIRE's
/// container-info extractor finds them: segments are walked backwards to the first
/// holding a container ID; the pod UID is then searched in what precedes the ID in that
/// segment and in the segments before it.
pub fn pod_and_container_in_path(path: &str) -> (Option<String>, Option<String>) {
    let (mut rest, mut segment) = split_last_segment(path);
    let mut container_id = None;
    while !segment.is_empty() {
        if let Some(start) = find_container_id_start(segment) {
            container_id = segment.get(start..start + 64).map(str::to_owned);
            segment = &segment[..start];
            break;
        }
        (rest, segment) = split_last_segment(rest);
    }
    if container_id.is_none() {
        return (None, None);
    }
    if segment.is_empty() {
        (rest, segment) = split_last_segment(rest);
    }
    while !segment.is_empty() {
        if let Some(uid) = find_pod_uid(segment) {
            return (Some(uid), container_id);
        }
        (rest, segment) = split_last_segment(rest);
    }
    (None, container_id)
}

/// Folds the pod UIDs and container IDs of several paths with SPIRE's rules: an entry
/// with a pod UID overrides earlier entries without one and entries without one are
/// then ignored; otherwise differing pod UIDs or container IDs are a conflict.
#[derive(Debug, Default)]
struct PodContainerFold {
    pod_uid: Option<String>,
    container_id: Option<String>,
}

impl PodContainerFold {
    fn add(&mut self, path: &str) -> Result<(), CgroupError> {
        let (pod_uid, container_id) = pod_and_container_in_path(path);
        match (&self.pod_uid, &pod_uid) {
            (Some(_), None) => return Ok(()),
            (None, Some(_)) => {
                self.pod_uid.clone_from(&pod_uid);
                self.container_id.clone_from(&container_id);
            }
            _ => {}
        }
        if let (Some(new), Some(old)) = (&pod_uid, &self.pod_uid)
            && new != old
        {
            return Err(CgroupError::PodConflict(old.clone(), new.clone()));
        }
        if let Some(old) = &self.container_id
            && container_id.as_ref() != Some(old)
        {
            return Err(CgroupError::Conflict(
                old.clone(),
                container_id.unwrap_or_default(),
            ));
        }
        self.pod_uid = pod_uid;
        self.container_id = container_id;
        Ok(())
    }
}

/// The Kubernetes pod UID and container ID of `pid` under the proc mount `proc_root`
/// (SPIRE's `GetPodUIDAndContainerID`): cgroup mount roots in mountinfo first, then
/// `/proc/<pid>/cgroup` when those hold no container ID. `(None, None)` means the
/// process is not in a container; a container ID without a pod UID is possible (e.g. a
/// process of the agent's own pod, or CRI-O without pod UIDs in its paths).
pub fn pod_uid_and_container_id(
    proc_root: &Path,
    pid: i32,
) -> Result<(Option<String>, Option<String>), CgroupError> {
    let dir = proc_root.join(pid.to_string());
    if let Some(mountinfo) = read_optional(&dir.join("mountinfo"))? {
        let mut fold = PodContainerFold::default();
        for root in cgroup_mount_roots(&mountinfo) {
            fold.add(&root)?;
        }
        if fold.container_id.is_some() {
            return Ok((fold.pod_uid, fold.container_id));
        }
    }
    let Some(text) = read_optional(&dir.join("cgroup"))? else {
        return Ok((None, None));
    };
    let mut fold = PodContainerFold::default();
    for entry in parse_cgroups(&text)? {
        fold.add(&entry.path)?;
    }
    Ok((fold.pod_uid, fold.container_id))
}

/// The container ID in one cgroup path or mount root: the 64-hex word of the last
/// segment that has one.
pub fn container_id_in_path(path: &str) -> Option<String> {
    path.rsplit('/')
        .find_map(find_container_id_word)
        .map(str::to_owned)
}

/// Folds the IDs found in a list of paths with SPIRE's consistency rule.
fn consistent_container_id<'a>(
    paths: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, CgroupError> {
    let mut found: Option<String> = None;
    for path in paths {
        let candidate = container_id_in_path(path);
        if let Some(previous) = &found
            && candidate.as_ref() != Some(previous)
        {
            return Err(CgroupError::Conflict(
                previous.clone(),
                candidate.unwrap_or_default(),
            ));
        }
        found = candidate;
    }
    Ok(found)
}

/// Reads a file, mapping "does not exist" to `None`.
pub fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The container ID of `pid` under the proc mount `proc_root`, or `None` when the
/// process is not in a container (or its files are gone).
pub fn container_id(proc_root: &Path, pid: i32) -> Result<Option<String>, CgroupError> {
    let dir = proc_root.join(pid.to_string());
    if let Some(mountinfo) = read_optional(&dir.join("mountinfo"))? {
        let roots = cgroup_mount_roots(&mountinfo);
        if let Some(id) = consistent_container_id(roots.iter().map(String::as_str))? {
            return Ok(Some(id));
        }
    }
    let Some(text) = read_optional(&dir.join("cgroup"))? else {
        return Ok(None);
    };
    let entries = parse_cgroups(&text)?;
    consistent_container_id(entries.iter().map(|e| e.path.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d";

    #[test]
    fn container_id_shapes() {
        for path in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
            format!("/kubepods/besteffort/pod1234/cri-containerd-{ID}.scope"),
            format!("/{ID}"),
            format!("/docker/{ID}/init.scope"),
        ] {
            assert_eq!(container_id_in_path(&path).as_deref(), Some(ID), "{path}");
        }
        for path in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            // 63 and 65 digits are not IDs.
            &format!("/docker/{}", &ID[1..]),
            &format!("/docker/{ID}a"),
        ] {
            assert_eq!(container_id_in_path(path), None, "{path}");
        }
    }

    #[test]
    fn pod_uid_and_container_id_shapes() {
        let uid = "2c48913c-b29f-11e7-9350-020968147796";
        let systemd_uid = uid.replace('-', "_");
        for path in [
            format!("/kubepods/burstable/pod{uid}/{ID}"),
            format!(
                "/docker/{}/kubepods/besteffort/pod{uid}/{ID}",
                ID.replace('9', "1")
            ),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods-besteffort-pod{systemd_uid}.slice:cri-containerd:{ID}"),
            format!("/../../pod{uid}/{ID}"),
        ] {
            assert_eq!(
                pod_and_container_in_path(&path),
                (Some(uid.to_owned()), Some(ID.to_owned())),
                "{path}"
            );
        }
        // The agent's own pod (cgroup namespace) and CRI-O without pod UIDs.
        assert_eq!(
            pod_and_container_in_path(&format!("/../crio-{ID}.scope")),
            (None, Some(ID.to_owned()))
        );
        assert_eq!(pod_and_container_in_path("/kubepods/pod1234"), (None, None));
        // A pod UID after the container ID is not the container's pod.
        assert_eq!(
            pod_and_container_in_path(&format!("/{ID}/pod{uid}")),
            (None, Some(ID.to_owned()))
        );
    }

    #[test]
    fn pod_fold_prefers_entries_with_a_pod_and_refuses_conflicts() {
        let uid = "2c48913c-b29f-11e7-9350-020968147796";
        let host = ID.replace('9', "1");
        let mut fold = PodContainerFold::default();
        let kind = format!("/docker/{host}/kubepods/besteffort/pod{uid}/{ID}");
        assert!(
            fold.add(&format!("/docker/{host}/system.slice/containerd.service"))
                .is_ok()
        );
        assert!(fold.add(&kind).is_ok());
        assert!(
            fold.add(&format!("/docker/{host}/system.slice/containerd.service"))
                .is_ok()
        );
        assert_eq!(fold.pod_uid.as_deref(), Some(uid));
        assert_eq!(fold.container_id.as_deref(), Some(ID));
        let other_pod = format!("/kubepods/pod{}/{ID}", uid.replace('2', "3"));
        assert!(matches!(
            fold.add(&other_pod),
            Err(CgroupError::PodConflict(..))
        ));
        let other_container = format!("/kubepods/pod{uid}/{host}");
        assert!(matches!(
            fold.add(&other_container),
            Err(CgroupError::Conflict(..))
        ));
    }

    #[test]
    fn parse_rejects_malformed_and_keeps_colons_in_paths() {
        assert!(parse_cgroups("garbage\n").is_err());
        let entries = parse_cgroups("1:name=systemd:/a:b\n\n0::/\n").unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].path, "/a:b");
        assert_eq!(entries[0].controllers, vec!["name=systemd"]);
        assert!(entries[1].controllers.is_empty());
    }

    #[test]
    fn mountinfo_roots_and_conflicts() {
        let text = format!(
            "30 25 0:26 /docker/{ID} /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n\
             31 25 0:27 / /tmp rw - tmpfs tmpfs rw\n\
             32 25 0:28 /a\\040b /x rw shared:1 - cgroup cgroup rw,memory\n"
        );
        assert_eq!(
            cgroup_mount_roots(&text),
            vec![format!("/docker/{ID}"), "/a b".to_owned()]
        );
        let other = ID.replace('9', "8");
        assert!(matches!(
            consistent_container_id([
                format!("/docker/{ID}").as_str(),
                &format!("/docker/{other}")
            ]),
            Err(CgroupError::Conflict(..))
        ));
        assert!(matches!(
            consistent_container_id(["/", &format!("/docker/{ID}")]),
            Ok(Some(id)) if id == ID
        ));
    }
}

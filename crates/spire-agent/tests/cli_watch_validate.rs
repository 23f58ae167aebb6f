//! `spire-agent api watch` and `spire-agent validate`, run as the real binary: the
//! watch against a Workload API on a real Unix socket (attesting the binary's process
//! by its uid), the validation against configuration files.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{Agent, Ca, TestResult, add_entry, cache_for, entry, uid_selector};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_spire-agent");
/// Generous: an update is normally printed within milliseconds.
const LINE_DEADLINE: Duration = Duration::from_secs(20);

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<String, common::BoxError> {
    tokio::time::timeout(LINE_DEADLINE, lines.next_line())
        .await
        .map_err(|_| "no output from api watch in time")??
        .ok_or_else(|| "api watch closed its output".into())
}

/// Reads one printed update: from its `Received ...` line to its closing blank line.
async fn next_update(
    lines: &mut Lines<BufReader<ChildStdout>>,
) -> Result<Vec<String>, common::BoxError> {
    let mut update = vec![next_line(lines).await?];
    let svids = update[0]
        .strip_prefix("Received ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| format!("unexpected first line {:?}", update[0]))?;
    // Each SVID block opens with a blank line; one more closes the update.
    let mut blanks = 0;
    while blanks < svids + 1 {
        let line = next_line(lines).await?;
        if line.is_empty() {
            blanks += 1;
        }
        update.push(line);
    }
    Ok(update)
}

#[tokio::test]
async fn api_watch_prints_every_update_until_interrupted() -> TestResult {
    let ca = Ca::new("example.org")?;
    let fed = Ca::new("fed.example")?;
    let cache = cache_for(&ca)?;
    cache.set_federated_bundles([fed.bundle()?]);
    let mut first = entry(&ca, "a", "/workload/a", vec![uid_selector()])?;
    first.federates_with = vec![fed.td.clone()];
    add_entry(&cache, first, Some(ca.svid("/workload/a")?))?;
    let agent = Agent::start(Arc::clone(&cache)).await?;

    let mut child = Command::new(BIN)
        .args(["api", "watch", "-socketPath"])
        .arg(&agent.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();

    let update = next_update(&mut lines).await?;
    assert!(
        update[0].starts_with("Received 1 svid after "),
        "{update:?}"
    );
    assert_eq!(update[1], "");
    assert_eq!(update[2], "SPIFFE ID:\t\tspiffe://example.org/workload/a");
    assert!(update[3].starts_with("SVID Valid After:\t") && update[3].ends_with(" +0000 UTC"));
    assert!(update[4].starts_with("SVID Valid Until:\t"));
    assert!(update[5].starts_with("CA #1 Valid After:\t"));
    assert!(update[6].starts_with("CA #1 Valid Until:\t"));
    // Federated bundles are labelled with the trust domain name.
    assert!(
        update[7].starts_with("[fed.example] CA #1 Valid After:\t"),
        "{update:?}"
    );
    assert!(update[8].starts_with("[fed.example] CA #1 Valid Until:\t"));
    assert_eq!(update.len(), 10);

    // A new identity for the caller is printed as a new update.
    add_entry(
        &cache,
        entry(&ca, "b", "/workload/b", vec![uid_selector()])?,
        Some(ca.svid("/workload/b")?),
    )?;
    let update = next_update(&mut lines).await?;
    assert!(
        update[0].starts_with("Received 2 svids after "),
        "{update:?}"
    );
    let ids: Vec<&String> = update
        .iter()
        .filter(|l| l.starts_with("SPIFFE ID:"))
        .collect();
    assert_eq!(
        ids,
        vec![
            "SPIFFE ID:\t\tspiffe://example.org/workload/a",
            "SPIFFE ID:\t\tspiffe://example.org/workload/b"
        ]
    );

    // SIGINT ends the watch as SPIRE's does: "context canceled", exit status 1.
    let pid = child.id().ok_or("watch exited early")?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid)?).ok_or("bad pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
    let status = tokio::time::timeout(LINE_DEADLINE, child.wait()).await??;
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .ok_or("no stderr")?
        .read_to_string(&mut stderr)
        .await?;
    assert_eq!(stderr, "context canceled\n");
    agent.shutdown().await
}

#[tokio::test]
async fn api_watch_reports_errors_and_keeps_watching() -> TestResult {
    // No entry for the caller yet: the agent answers PermissionDenied, which the watch
    // prints on stderr before retrying; once an entry exists the update is printed.
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let agent = Agent::start(Arc::clone(&cache)).await?;
    let mut child = Command::new(BIN)
        .args(["api", "watch", "-socketPath"])
        .arg(&agent.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut errors = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let first_error = tokio::time::timeout(LINE_DEADLINE, errors.next_line())
        .await??
        .unwrap_or_default();
    assert_eq!(
        first_error,
        "rpc error: code = PermissionDenied desc = no identity issued"
    );

    add_entry(
        &cache,
        entry(&ca, "a", "/workload/a", vec![uid_selector()])?,
        Some(ca.svid("/workload/a")?),
    )?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let update = next_update(&mut lines).await?;
    assert!(
        update[0].starts_with("Received 1 svid after "),
        "{update:?}"
    );
    assert_eq!(update[2], "SPIFFE ID:\t\tspiffe://example.org/workload/a");
    child.kill().await?;
    agent.shutdown().await
}

fn agent_conf(extra: &str) -> String {
    format!(
        "agent {{\n  data_dir = \"./.data\"\n  server_address = \"127.0.0.1\"\n  server_port = \"8081\"\n  \
         socket_path = \"/tmp/spire-agent/public/api.sock\"\n  trust_bundle_path = \"./root.crt\"\n  \
         trust_domain = \"example.org\"\n{extra}}}\n\
         plugins {{\n  NodeAttestor \"join_token\" {{\n    plugin_data {{}}\n  }}\n  \
         KeyManager \"memory\" {{\n    plugin_data {{}}\n  }}\n  \
         WorkloadAttestor \"unix\" {{\n    plugin_data {{}}\n  }}\n}}\n"
    )
}

#[test]
fn validate_prints_spire_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.conf");
    std::fs::write(&good, agent_conf(""))?;
    let out = std::process::Command::new(BIN)
        .args(["validate", "-config"])
        .arg(&good)
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout)?,
        "SPIRE agent configuration file is valid.\n"
    );
    assert!(out.stderr.is_empty());

    // Flags are merged as for `run`: a flag can make a valid file invalid.
    let out = std::process::Command::new(BIN)
        .args(["validate", "-config"])
        .arg(&good)
        .args(["-logFormat", "yaml"])
        .output()?;
    assert_eq!(out.status.code(), Some(1));

    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, agent_conf("  no_such_option = true\n"))?;
    let out = std::process::Command::new(BIN)
        .args(["validate", "-config"])
        .arg(&bad)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr.starts_with("SPIRE agent configuration file is invalid: ")
            && stderr.contains("no_such_option"),
        "{stderr}"
    );

    let out = std::process::Command::new(BIN)
        .args(["validate", "-config"])
        .arg(dir.path().join("missing.conf"))
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)?.starts_with("SPIRE agent configuration file is invalid: ")
    );
    Ok(())
}

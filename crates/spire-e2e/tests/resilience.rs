//! The agent's resilience with the real binaries (agent.md §5.6, §5.9, §5.3): workloads
//! keep their SVIDs while the server is down, the agent resyncs by itself when the server
//! comes back (with a new CA), and a banned agent deletes its SVID and exits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spiffe_core::{TrustDomain, X509Bundle, X509Svid};
use spire_e2e::{Process, Quickstart, stderr, stdout, tail};

const AGENT_ID: &str = "spiffe://example.org/myagent";

/// A server and an agent attested with a join token, syncing every second; returns the
/// agent, its Workload API socket, its data dir and its SPIFFE ID.
fn server_and_agent(qs: &Quickstart) -> (Process, PathBuf, PathBuf, String) {
    let token = qs.generate_token(AGENT_ID);
    let (config, socket) = qs.agent_config("agent");
    let text = std::fs::read_to_string(&config).expect("read agent.conf");
    let text = text.replacen(
        "agent {\n",
        "agent {\n    experimental {\n        sync_interval = \"1s\"\n    }\n",
        1,
    );
    std::fs::write(&config, text).expect("write agent.conf");
    let agent = qs.start_agent(&config, Some(&token), "agent.log");
    qs.wait_for_socket(&socket);
    let data_dir = qs.dir.path().join("agent/data");
    let agent_id = format!("spiffe://example.org/spire/agent/join_token/{token}");
    (agent, socket, data_dir, agent_id)
}

fn create_entry(qs: &Quickstart, path: &str) {
    qs.create_uid_entry(AGENT_ID, &format!("spiffe://example.org{path}"), &[]);
}

/// `spire-agent api fetch x509 -write <dir>`: the SVIDs (parsed, each verified against
/// the written bundle) by SPIFFE ID, or the CLI's error.
fn fetch_verified(qs: &Quickstart, socket: &Path) -> Result<Vec<X509Svid>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir_str = dir.path().to_str().unwrap_or_default().to_owned();
    let out = qs.agent_cli(socket, &["api", "fetch", "x509", "-write", &dir_str]);
    if !out.status.success() {
        return Err(format!("{}{}", stdout(&out), stderr(&out)));
    }
    let td = TrustDomain::new("example.org").map_err(|e| e.to_string())?;
    let mut svids = Vec::new();
    for i in 0.. {
        let Ok(chain) = std::fs::read(dir.path().join(format!("svid.{i}.pem"))) else {
            break;
        };
        let key =
            std::fs::read(dir.path().join(format!("svid.{i}.key"))).map_err(|e| e.to_string())?;
        let roots =
            std::fs::read(dir.path().join(format!("bundle.{i}.pem"))).map_err(|e| e.to_string())?;
        let svid = X509Svid::parse_pem(&chain, &key).map_err(|e| e.to_string())?;
        let bundle = X509Bundle::parse_pem(td.clone(), &roots).map_err(|e| e.to_string())?;
        svid.verify(&bundle, std::time::SystemTime::now())
            .map_err(|e| format!("svid.{i}: {e}"))?;
        svids.push(svid);
    }
    Ok(svids)
}

fn find<'a>(svids: &'a [X509Svid], id: &str) -> Option<&'a X509Svid> {
    svids.iter().find(|s| s.spiffe_id().as_str() == id)
}

#[test]
fn agent_serves_through_server_outage_and_resyncs_with_new_ca() {
    let mut qs = Quickstart::start("");
    let (mut agent, socket, _, _) = server_and_agent(&qs);
    create_entry(&qs, "/before");
    let mut before = None;
    qs.wait_until("the first SVID", Duration::from_secs(30), || {
        before = fetch_verified(&qs, &socket)
            .ok()
            .and_then(|s| find(&s, "spiffe://example.org/before").cloned());
        before.is_some()
    });
    let before = before.unwrap_or_else(|| unreachable!());

    // Down for several sync intervals: the workload keeps getting a valid SVID.
    qs.restart_server(|qs| {
        let down_until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < down_until {
            let svids = fetch_verified(qs, &socket).expect("fetch while the server is down");
            let svid = find(&svids, "spiffe://example.org/before").expect("cached SVID");
            assert_eq!(
                svid.cert_chain(),
                before.cert_chain(),
                "served from the cache"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    assert!(
        agent.try_exit().is_none(),
        "the agent must survive the outage:\n{}",
        tail(&agent.log(), 40)
    );

    // Without an agent restart, a new entry reaches the workload, signed by the new CA.
    create_entry(&qs, "/after");
    let mut after = None;
    qs.wait_until(
        "the SVID of an entry created after the restart",
        Duration::from_secs(30),
        || {
            after = fetch_verified(&qs, &socket)
                .ok()
                .and_then(|s| find(&s, "spiffe://example.org/after").cloned());
            after.is_some()
        },
    );
    let after = after.unwrap_or_else(|| unreachable!());
    assert_ne!(
        after.cert_chain().get(1),
        before.cert_chain().get(1),
        "the new SVID must be signed by the restarted server's new CA"
    );
    let log = agent.log();
    assert!(
        log.contains("Synchronization failed"),
        "sync errors are logged while the server is down:\n{}",
        tail(&log, 40)
    );
    assert!(agent.try_exit().is_none(), "{}", tail(&log, 40));
}

#[test]
fn banned_agent_deletes_its_svid_and_exits() {
    let qs = Quickstart::start("");
    let (mut agent, socket, data_dir, agent_id) = server_and_agent(&qs);
    create_entry(&qs, "/workload");
    qs.wait_until("the workload SVID", Duration::from_secs(30), || {
        fetch_verified(&qs, &socket).is_ok_and(|s| !s.is_empty())
    });
    let stored = || -> serde_json::Value {
        let text = std::fs::read_to_string(data_dir.join("agent-data.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    };
    assert!(
        stored()["svid"].as_array().is_some_and(|a| !a.is_empty()),
        "the agent SVID is stored"
    );

    let out = qs.server_cli(&["agent", "ban", "-spiffeID", &agent_id]);
    assert!(out.status.success(), "agent ban: {}", stderr(&out));
    assert!(stdout(&out).contains("Agent banned successfully"));

    let mut status = None;
    qs.wait_until("the banned agent to exit", Duration::from_secs(30), || {
        status = agent.try_exit();
        status.is_some()
    });
    let log = agent.log();
    assert!(
        status.is_some_and(|s| !s.success()),
        "a banned agent exits with an error: {status:?}\n{}",
        tail(&log, 40)
    );
    assert!(
        log.contains("Agent is banned: removing SVID and shutting down"),
        "{}",
        tail(&log, 40)
    );
    assert!(
        stored()["svid"].as_array().is_none_or(Vec::is_empty),
        "the agent SVID is deleted: {}",
        stored()
    );
}

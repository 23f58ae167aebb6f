//! `WorkloadAttestor "k8s"` in a real `agent.conf`: a secure-port configuration whose
//! token cannot be read stops the agent at startup (as SPIRE's Configure does), and a
//! read-only-port configuration starts.

use std::time::{Duration, Instant};

use spire_e2e::Quickstart;

/// Writes an agent config with `k8s_data` as the k8s attestor's `plugin_data`.
fn agent_with_k8s(
    qs: &Quickstart,
    name: &str,
    k8s_data: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (config, socket) = qs.agent_config(name);
    let text = std::fs::read_to_string(&config).expect("read agent.conf").replacen(
        "WorkloadAttestor \"unix\" {",
        &format!("WorkloadAttestor \"k8s\" {{\n        plugin_data {{\n{k8s_data}\n        }}\n    }}\n    WorkloadAttestor \"unix\" {{"),
        1,
    );
    std::fs::write(&config, text).expect("write agent.conf");
    (config, socket)
}

#[test]
fn k8s_attestor_configuration_is_checked_at_startup() {
    let qs = Quickstart::start("");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-token");

    let token = qs.generate_token("spiffe://example.org/k8s-bad");
    let (config, _) = agent_with_k8s(
        &qs,
        "bad",
        &format!(
            "            skip_kubelet_verification = true\n            token_path = \"{}\"",
            missing.display()
        ),
    );
    let mut agent = qs.start_agent(&config, Some(&token), "bad.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = agent.try_exit() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "agent kept running:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let log = agent.log();
    assert!(
        log.contains("unable to load token") && log.contains("no-token"),
        "{log}"
    );

    let token = qs.generate_token("spiffe://example.org/k8s-good");
    let (config, socket) =
        agent_with_k8s(&qs, "good", "            kubelet_read_only_port = 10255");
    let mut agent = qs.start_agent(&config, Some(&token), "good.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(agent.try_exit().is_none(), "agent exited:\n{}", agent.log());
        assert!(Instant::now() < deadline, "no socket:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

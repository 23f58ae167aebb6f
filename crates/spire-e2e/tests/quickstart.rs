//! SPIRE's Getting Started flow with the real binaries: server, join token, agent,
//! registration entry, `api fetch x509`; plus the behaviours a user relies on around it.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use spire_e2e::{Quickstart, binary, current_uid, stderr, stdout, tail};

const AGENT_ID: &str = "spiffe://example.org/myagent";
const SERVICE_ID: &str = "spiffe://example.org/myservice";

fn create_entry(qs: &Quickstart, spiffe_id: &str, extra: &[&str]) -> String {
    qs.create_uid_entry(AGENT_ID, spiffe_id, extra)
}

#[test]
fn quickstart_flow() {
    let qs = Quickstart::start("");
    let token = qs.generate_token(AGENT_ID);
    let (config, socket) = qs.agent_config("agent");
    let mut agent = qs.start_agent(&config, Some(&token), "agent.log");

    let created = create_entry(&qs, SERVICE_ID, &[]);
    assert!(created.contains("SPIFFE ID               : spiffe://example.org/myservice"));
    assert!(created.contains("Parent ID               : spiffe://example.org/myagent"));
    assert!(created.contains(&format!(
        "Selector                : unix:uid:{}",
        current_uid()
    )));

    // The workload fetches its SVID and writes it out.
    let out_dir = qs.dir.path().join("svids");
    std::fs::create_dir_all(&out_dir).expect("svid dir");
    let out_dir_str = out_dir.to_str().unwrap_or_default().to_owned();
    let mut fetched = None;
    qs.wait_until("the workload SVID", Duration::from_secs(30), || {
        let out = qs.agent_cli(&socket, &["api", "fetch", "x509", "-write", &out_dir_str]);
        let ok = out.status.success();
        fetched = Some(out);
        ok || agent.try_exit().is_some()
    });
    let out = fetched.expect("fetched");
    assert!(
        out.status.success(),
        "api fetch x509: {}\n--- agent log ---\n{}",
        stderr(&out),
        tail(&agent.log(), 30)
    );
    let text = stdout(&out);
    assert!(text.starts_with("Received 1 svid after "), "{text}");
    assert!(
        text.contains("SPIFFE ID:\t\tspiffe://example.org/myservice"),
        "{text}"
    );
    assert!(text.contains("Intermediate #1 Valid After:\t"), "{text}");
    assert!(text.contains(&format!(
        "Writing SVID #0 to file {out_dir_str}/svid.0.pem."
    )));

    // The URI SAN is the registered ID, and openssl validates the chain.
    let svid = out_dir.join("svid.0.pem");
    let bundle = out_dir.join("bundle.0.pem");
    let san = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&svid)
        .output();
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&bundle)
        .arg("-untrusted")
        .arg(&svid)
        .arg(&svid)
        .output();
    match (san, verify) {
        (Ok(san), Ok(verify)) => {
            assert!(stdout(&san).contains("URI:spiffe://example.org/myservice"));
            assert!(
                verify.status.success(),
                "openssl verify: {}{}",
                stdout(&verify),
                stderr(&verify)
            );
        }
        _ => {
            // No openssl on this machine: validate with our own chain check instead.
            let chain = std::fs::read(&svid).expect("svid");
            let key = std::fs::read(out_dir.join("svid.0.key")).expect("key");
            let roots = std::fs::read(&bundle).expect("bundle");
            let td = spiffe_core::TrustDomain::new("example.org").expect("td");
            let parsed = spiffe_core::X509Svid::parse_pem(&chain, &key).expect("parse");
            let bundle = spiffe_core::X509Bundle::parse_pem(td, &roots).expect("bundle");
            parsed
                .verify(&bundle, std::time::SystemTime::now())
                .expect("chain verifies");
        }
    }
    let key_mode = std::fs::metadata(out_dir.join("svid.0.key"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0);
    assert_eq!(key_mode, 0o600, "svid.0.key must be private");

    // A process of a uid with no entry gets PermissionDenied.
    if current_uid() == 0 {
        // A copy the other uid can execute wherever the checkout lives.
        let agent_copy = qs.dir.path().join("spire-agent-copy");
        std::fs::copy(binary("spire-agent"), &agent_copy).expect("copy spire-agent");
        let other = Command::new(&agent_copy)
            .args(["api", "fetch", "x509", "-socketPath"])
            .arg(&socket)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run as nobody");
        assert!(!other.status.success());
        assert!(
            stderr(&other).contains("code = PermissionDenied desc = no identity issued"),
            "{}",
            stderr(&other)
        );
    } else {
        eprintln!("skipped the other-uid check: it needs root to switch uid");
    }

    // A second use of the join token fails.
    let (second_config, _) = qs.agent_config("agent2");
    let mut second = qs.start_agent(&second_config, Some(&token), "agent2.log");
    qs.wait_until("the second agent to exit", Duration::from_secs(30), || {
        second.try_exit().is_some()
    });
    let status = second.try_exit().expect("exited");
    assert!(!status.success());
    assert!(
        second
            .log()
            .contains("join token does not exist or has already been used"),
        "{}",
        second.log()
    );

    // The agent restarts without a token and still serves.
    agent.stop();
    let restarted = qs.start_agent(&config, None, "agent-restart.log");
    qs.wait_until(
        "the restarted agent to serve",
        Duration::from_secs(30),
        || {
            qs.agent_cli(&socket, &["api", "fetch", "x509", "-silent"])
                .status
                .success()
        },
    );
    assert!(
        restarted
            .log()
            .contains("Resuming with the stored agent SVID"),
        "{}",
        restarted.log()
    );
}

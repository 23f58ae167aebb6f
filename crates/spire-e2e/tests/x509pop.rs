//! x509pop node attestation with the real binaries: the server trusts an agent CA, the
//! agent proves possession of its node certificate's key, gets
//! `spiffe://example.org/spire/agent/x509pop/<fingerprint>`, and serves a workload whose
//! entry is parented to that ID. With a 20s `agent_ttl` the agent renews its SVID by
//! attesting again in process (x509pop is re-attestable), keeps its ID and keeps syncing.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use spire_e2e::{Quickstart, current_uid, stderr, stdout, tail};

#[test]
fn agent_attests_with_x509pop_and_serves_workloads() {
    // The node PKI, provisioned out of band.
    let pki = tempfile::tempdir().expect("pki dir");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "agent-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let node_key = KeyPair::generate().expect("node key");
    let mut node = CertificateParams::default();
    node.distinguished_name.push(DnType::CommonName, "node-1");
    node.is_ca = IsCa::ExplicitNoCa;
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let node_cert = node.signed_by(&node_key, &issuer).expect("node cert");
    let ca_path = pki.path().join("ca.pem");
    let cert_path = pki.path().join("node.pem");
    let key_path = pki.path().join("node.key");
    std::fs::write(&ca_path, ca_cert.pem()).expect("write ca");
    std::fs::write(&cert_path, node_cert.pem()).expect("write cert");
    std::fs::write(&key_path, node_key.serialize_pem()).expect("write key");
    let fingerprint = spire_common::x509pop::fingerprint(node_cert.der());
    let agent_id = format!("spiffe://example.org/spire/agent/x509pop/{fingerprint}");

    let qs = Quickstart::start_with_plugins(
        "agent_ttl = \"20s\"",
        &format!(
            "NodeAttestor \"x509pop\" {{\n plugin_data {{\n ca_bundle_path = \"{}\"\n }}\n }}",
            ca_path.display()
        ),
    );
    let (config, socket) = qs.agent_config_with(
        "agent",
        &format!(
            "NodeAttestor \"x509pop\" {{\n plugin_data {{\n private_key_path = \"{}\"\n certificate_path = \"{}\"\n }}\n }}",
            key_path.display(),
            cert_path.display()
        ),
    );
    let mut agent = qs.start_agent(&config, None, "agent.log");

    let selector = format!("unix:uid:{}", current_uid());
    let out = qs.server_cli(&[
        "entry",
        "create",
        "-parentID",
        &agent_id,
        "-spiffeID",
        "spiffe://example.org/popservice",
        "-selector",
        &selector,
    ]);
    assert!(out.status.success(), "entry create: {}", stderr(&out));

    let mut fetched = None;
    qs.wait_until("the workload SVID", Duration::from_secs(30), || {
        let out = qs.agent_cli(&socket, &["api", "fetch", "x509"]);
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
    assert!(
        stdout(&out).contains("SPIFFE ID:\t\tspiffe://example.org/popservice"),
        "{}",
        stdout(&out)
    );

    // The server recorded the node as x509pop-attested, with its selectors.
    let shown = qs.server_cli(&["agent", "show", "-spiffeID", &agent_id]);
    assert!(shown.status.success(), "agent show: {}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains(&agent_id), "{text}");
    assert!(text.contains("x509pop"), "{text}");
    assert!(text.contains("subject:cn:node-1"), "{text}");
    assert!(agent.log().contains(&agent_id) || text.contains(&agent_id));

    // Past half life the agent attests again instead of exiting or calling RenewAgent.
    qs.wait_until("the agent SVID rotation", Duration::from_secs(60), || {
        agent.log().contains("Agent SVID rotated") || agent.try_exit().is_some()
    });
    assert!(
        agent.try_exit().is_none(),
        "the agent exited:\n{}",
        tail(&agent.log(), 30)
    );
    assert!(
        agent.log().contains("Agent SVID rotated"),
        "{}",
        tail(&agent.log(), 30)
    );
    // Past the first SVID's expiry the renewed one still syncs new entries.
    std::thread::sleep(Duration::from_secs(12));
    let out = qs.server_cli(&[
        "entry",
        "create",
        "-parentID",
        &agent_id,
        "-spiffeID",
        "spiffe://example.org/after-renewal",
        "-selector",
        &selector,
    ]);
    assert!(out.status.success(), "entry create: {}", stderr(&out));
    qs.wait_until("the new entry's SVID", Duration::from_secs(30), || {
        let out = qs.agent_cli(&socket, &["api", "fetch", "x509"]);
        stdout(&out).contains("spiffe://example.org/after-renewal") || agent.try_exit().is_some()
    });
    assert!(agent.try_exit().is_none(), "{}", tail(&agent.log(), 30));
    let shown = qs.server_cli(&["agent", "show", "-spiffeID", &agent_id]);
    assert!(shown.status.success(), "agent show: {}", stderr(&shown));
}

/// `mode = "spiffe"`: the node proves possession of an X509-SVID this server minted under
/// `/spire-exchange/` (no CA bundle configured; the server's own bundle is the trust
/// root) and is attested as `spire/agent/x509pop/<path after the prefix>`.
#[test]
fn agent_exchanges_a_spire_exchange_svid_in_spiffe_mode() {
    let qs = Quickstart::start_with_plugins(
        "",
        "NodeAttestor \"x509pop\" {\n plugin_data {\n mode = \"spiffe\"\n }\n }",
    );
    let minted = tempfile::tempdir().expect("mint dir");
    let dir = minted.path().display().to_string();
    let out = qs.server_cli(&[
        "x509",
        "mint",
        "-spiffeID",
        "spiffe://example.org/spire-exchange/node-1",
        "-write",
        &dir,
    ]);
    assert!(out.status.success(), "x509 mint: {}", stderr(&out));
    let (config, _socket) = qs.agent_config_with(
        "agent",
        &format!(
            "NodeAttestor \"x509pop\" {{\n plugin_data {{\n private_key_path = \"{dir}/key.pem\"\n certificate_path = \"{dir}/svid.pem\"\n }}\n }}",
        ),
    );
    let mut agent = qs.start_agent(&config, None, "agent.log");
    let agent_id = "spiffe://example.org/spire/agent/x509pop/node-1";
    qs.wait_until("the agent attested", Duration::from_secs(30), || {
        let shown = qs.server_cli(&["agent", "show", "-spiffeID", agent_id]);
        shown.status.success() || agent.try_exit().is_some()
    });
    let shown = qs.server_cli(&["agent", "show", "-spiffeID", agent_id]);
    assert!(
        shown.status.success(),
        "agent show: {}\n--- agent log ---\n{}",
        stderr(&shown),
        tail(&agent.log(), 30)
    );
    let text = stdout(&shown);
    assert!(text.contains("Attestation type  : x509pop"), "{text}");
}

/// In `spiffe` mode an SVID outside the prefix is refused, and the agent does not start.
#[test]
fn spiffe_mode_refuses_an_svid_outside_the_prefix() {
    let qs = Quickstart::start_with_plugins(
        "",
        "NodeAttestor \"x509pop\" {\n plugin_data {\n mode = \"spiffe\"\n }\n }",
    );
    let minted = tempfile::tempdir().expect("mint dir");
    let dir = minted.path().display().to_string();
    let out = qs.server_cli(&[
        "x509",
        "mint",
        "-spiffeID",
        "spiffe://example.org/elsewhere/node-1",
        "-write",
        &dir,
    ]);
    assert!(out.status.success(), "x509 mint: {}", stderr(&out));
    let (config, _socket) = qs.agent_config_with(
        "agent",
        &format!(
            "NodeAttestor \"x509pop\" {{\n plugin_data {{\n private_key_path = \"{dir}/key.pem\"\n certificate_path = \"{dir}/svid.pem\"\n }}\n }}",
        ),
    );
    let mut agent = qs.start_agent(&config, None, "agent.log");
    qs.wait_until("the refusal", Duration::from_secs(60), || {
        agent.try_exit().is_some() || agent.log().contains("doesnt match SVID prefix")
    });
    let log = agent.log();
    assert!(
        log.contains("x509 cert doesnt match SVID prefix"),
        "{}",
        tail(&log, 30)
    );
    let listed = qs.server_cli(&["agent", "count"]);
    assert_eq!(
        stdout(&listed).trim(),
        "0 attested agents",
        "{}",
        stdout(&listed)
    );
}

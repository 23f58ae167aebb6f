//! CA rotation as a workload sees it, with the real binaries: a forced rotation through
//! `spire-server localauthority x509|jwt prepare/activate/taint/revoke` (the agent
//! re-signs everything the tainted CA signed, its own SVID included, and drops JWT-SVIDs
//! of the tainted key), and the scheduled rotation of a short `ca_ttl` (prepare,
//! activate, prune). Every X509SVIDResponse a workload receives must validate against
//! the bundle in the same response.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use spiffe_core::{TrustDomain, X509Bundle, X509Svid, verify_chain};
use spire_e2e::workload::{open_x509_stream, retry, with_header, workload_client};
use spire_e2e::{Process, Quickstart, stderr, stdout, tail};
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{JwtBundlesRequest, JwtsvidRequest, X509svidRequest};
use tokio::sync::mpsc;
use tonic::transport::Channel;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";
const WORKLOAD_ID: &str = "spiffe://example.org/rotating";

/// Generous bound for anything that one sync (push, or the 5 s safety net) delivers.
const ONE_SYNC: Duration = Duration::from_secs(30);

fn td() -> TrustDomain {
    TrustDomain::new("example.org").expect("valid trust domain")
}

/// A self-signed server, an attested agent and an entry for this test's uid.
fn setup(extra_server: &str) -> (Quickstart, Process, std::path::PathBuf) {
    let qs = Quickstart::start_self_signed(extra_server);
    let (agent, socket) = qs.start_attested_agent(AGENT_ID);
    qs.create_uid_entry(AGENT_ID, WORKLOAD_ID, &[]);
    (qs, agent, socket)
}

/// One X509SVIDResponse, checked: its SVID chain and its bundle.
#[derive(Debug, Clone)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
}

impl Seen {
    /// Whether the SVID chain verifies against `root` alone.
    fn chained_to(&self, root: &CertificateDer<'static>) -> bool {
        X509Bundle::from_authorities(td(), vec![root.clone()])
            .is_ok_and(|b| verify_chain(&self.chain, &b, SystemTime::now()).is_ok())
    }

    /// The bundle's root that is not `old`: the next CA once it was prepared.
    fn other_root(&self, old: &CertificateDer<'static>) -> Result<CertificateDer<'static>, String> {
        self.roots
            .iter()
            .find(|r| *r != old)
            .cloned()
            .ok_or_else(|| "no new root".to_owned())
    }
}

/// Streams FetchX509SVID in the background. Every response is checked against the
/// bundle it carries (no gap); a response that fails ends the stream with the reason.
async fn watch_x509(
    socket: &std::path::Path,
) -> Result<mpsc::UnboundedReceiver<Result<Seen, String>>, Box<dyn std::error::Error + Send + Sync>>
{
    // The entry may not have reached the agent yet: retry until the stream answers
    // with an identity.
    let (mut stream, first) = open_x509_stream(socket, ONE_SYNC)
        .await
        .map_err(|e| format!("FetchX509SVID: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(check_response(&first));
    tokio::spawn(async move {
        loop {
            let seen = match stream.message().await {
                Ok(Some(response)) => check_response(&response),
                Ok(None) => Err("the stream ended".to_owned()),
                Err(status) => Err(format!("the stream failed: {status}")),
            };
            let stop = seen.is_err();
            if tx.send(seen).is_err() || stop {
                return;
            }
        }
    });
    Ok(rx)
}

fn check_response(response: &spire_proto::workload::X509svidResponse) -> Result<Seen, String> {
    let svid = response
        .svids
        .iter()
        .find(|s| s.spiffe_id == WORKLOAD_ID)
        .ok_or_else(|| format!("no SVID for {WORKLOAD_ID} in the response"))?;
    let parsed = X509Svid::parse_der(&svid.x509_svid, &svid.x509_svid_key)
        .map_err(|e| format!("unparsable SVID: {e}"))?;
    let bundle =
        X509Bundle::parse_der(td(), &svid.bundle).map_err(|e| format!("unparsable bundle: {e}"))?;
    parsed.verify(&bundle, SystemTime::now()).map_err(|e| {
        format!(
            "the SVID does not verify against the bundle of the same response \
             ({} roots): {e}",
            bundle.authorities().len()
        )
    })?;
    Ok(Seen {
        chain: parsed.cert_chain().to_vec(),
        roots: bundle.authorities().to_vec(),
    })
}

/// Reads responses until one satisfies `want`, failing on a bad response or timeout.
async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<Result<Seen, String>>,
    qs: &Quickstart,
    limit: Duration,
    what: &str,
    want: impl Fn(&Seen) -> bool,
) -> Result<Seen, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Ok(seen))) if want(&seen) => return Ok(seen),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(format!("while waiting for {what}: {e}").into()),
            Ok(None) => return Err(format!("stream gone while waiting for {what}").into()),
            Err(_) => {
                return Err(format!(
                    "timed out waiting for {what}\n--- agent log ---\n{}\n--- server log ---\n{}",
                    tail(
                        &std::fs::read_to_string(qs.dir.path().join("agent.log"))
                            .unwrap_or_default(),
                        40
                    ),
                    tail(&qs.server.log(), 40)
                )
                .into());
            }
        }
    }
}

/// Runs `spire-server localauthority <kind> <args>` and returns the authority ID it
/// printed (`Authority ID: ...`, the first one for `show`).
fn localauthority(qs: &Quickstart, kind: &str, args: &[&str]) -> String {
    let mut all = vec!["localauthority", kind];
    all.extend(args);
    let out = qs.server_cli(&all);
    assert!(
        out.status.success(),
        "localauthority {kind} {args:?}: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Authority ID: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no authority ID in {}", stdout(&out)))
}

/// The agent SVID chain the agent persisted in `agent-data.json`.
fn agent_svid_chain(qs: &Quickstart) -> Vec<CertificateDer<'static>> {
    let path = qs.dir.path().join("agent/data/agent-data.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["svid"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .flat_map(|pem| {
            CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn verifies(chain: &[CertificateDer<'static>], root: &CertificateDer<'static>) -> bool {
    X509Bundle::from_authorities(td(), vec![root.clone()])
        .is_ok_and(|b| verify_chain(chain, &b, SystemTime::now()).is_ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_x509_rotation_reaches_workloads_and_the_agent() -> TestResult {
    let (qs, _agent, socket) = setup("");
    let mut rx = watch_x509(&socket).await?;
    let first = next_matching(&mut rx, &qs, ONE_SYNC, "a first SVID", |_| true).await?;
    assert_eq!(first.roots.len(), 1, "one CA before any rotation");
    let old_root = first.roots[0].clone();
    assert!(first.chained_to(&old_root));
    assert!(verifies(&agent_svid_chain(&qs), &old_root));

    // Prepare: the bundle gains the next CA, SVIDs still chain to the old one.
    let old_id = localauthority(&qs, "x509", &["show"]);
    let new_id = localauthority(&qs, "x509", &["prepare"]);
    assert_ne!(old_id, new_id);
    let prepared = next_matching(
        &mut rx,
        &qs,
        ONE_SYNC,
        "the prepared CA in the bundle",
        |s| s.roots.len() == 2,
    )
    .await?;
    let new_root = prepared.other_root(&old_root)?;
    assert!(prepared.chained_to(&old_root));

    // Activate, then taint the old CA: the workload gets an SVID of the new CA at once
    // (without the taint it would wait for half of its one-hour lifetime).
    localauthority(&qs, "x509", &["activate", "-authorityID", &new_id]);
    let tainted = localauthority(&qs, "x509", &["taint", "-authorityID", &old_id]);
    assert_eq!(tainted, old_id);
    let resigned = next_matching(
        &mut rx,
        &qs,
        ONE_SYNC,
        "an SVID signed by the new CA",
        |s| s.chained_to(&new_root),
    )
    .await?;
    assert!(!resigned.chained_to(&old_root));
    let bundle = qs.server_cli(&["bundle", "show", "-output", "json"]);
    assert!(bundle.status.success(), "{}", stderr(&bundle));
    let json: serde_json::Value = serde_json::from_str(&stdout(&bundle))?;
    assert_eq!(
        json["x509_authorities"]
            .as_array()
            .map(|a| a.iter().filter(|r| r["tainted"] == true).count()),
        Some(1),
        "the bundle marks the old CA tainted: {json}"
    );

    // The agent's own SVID is re-issued by the new CA too.
    qs.wait_until("the agent SVID from the new CA", ONE_SYNC, || {
        verifies(&agent_svid_chain(&qs), &new_root)
    });

    // Revoke: the old CA leaves the bundle the workload receives, and the agent still
    // talks to the server (its SVID and the server's no longer depend on the old CA).
    localauthority(&qs, "x509", &["revoke", "-authorityID", &old_id]);
    let revoked = next_matching(
        &mut rx,
        &qs,
        ONE_SYNC,
        "the bundle without the old CA",
        |s| !s.roots.contains(&old_root),
    )
    .await?;
    assert_eq!(revoked.roots, vec![new_root.clone()]);
    assert!(revoked.chained_to(&new_root));
    qs.create_uid_entry(AGENT_ID, "spiffe://example.org/after-revoke", &[]);
    let client = workload_client(&socket)?;
    retry(ONE_SYNC, || {
        let mut client = client.clone();
        async move {
            let response = client
                .fetch_x509svid(with_header(X509svidRequest {}))
                .await?
                .into_inner()
                .message()
                .await?
                .ok_or("empty stream")?;
            if response
                .svids
                .iter()
                .any(|s| s.spiffe_id == "spiffe://example.org/after-revoke")
            {
                TestResult::Ok(())
            } else {
                Err("the agent no longer syncs after the revoke".into())
            }
        }
    })
    .await
}

/// The `kid` of a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

async fn fetch_jwt_kid(client: &mut SpiffeWorkloadApiClient<Channel>) -> Option<String> {
    let response = client
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["rotation-test".into()],
            spiffe_id: String::new(),
        }))
        .await
        .ok()?
        .into_inner();
    response.svids.first().map(|s| kid_of(&s.svid))
}

async fn jwt_bundle_kids(client: &mut SpiffeWorkloadApiClient<Channel>) -> Vec<String> {
    let Ok(response) = client
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
    else {
        return Vec::new();
    };
    let Ok(Some(bundles)) = response.into_inner().message().await else {
        return Vec::new();
    };
    let Some(jwks) = bundles.bundles.get("spiffe://example.org") else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_slice(jwks).unwrap_or_default();
    let mut kids: Vec<String> = json["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    kids.sort();
    kids
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_jwt_rotation_purges_tokens_of_the_tainted_key() -> TestResult {
    let (qs, _agent, socket) = setup("");
    let mut client = workload_client(&socket)?;
    let first_kid = retry(ONE_SYNC, || {
        let mut client = client.clone();
        async move {
            fetch_jwt_kid(&mut client)
                .await
                .ok_or("no JWT-SVID in time")
        }
    })
    .await?;
    let old_id = localauthority(&qs, "jwt", &["show"]);
    assert_eq!(first_kid, old_id, "tokens are signed by the active JWT key");

    let new_id = localauthority(&qs, "jwt", &["prepare"]);
    localauthority(&qs, "jwt", &["activate", "-authorityID", &new_id]);
    // Still cached: the token of the old key is served until it is tainted.
    assert_eq!(
        fetch_jwt_kid(&mut client).await.as_deref(),
        Some(old_id.as_str())
    );
    localauthority(&qs, "jwt", &["taint", "-authorityID", &old_id]);
    retry(ONE_SYNC, || {
        let mut client = client.clone();
        let new_id = new_id.clone();
        async move {
            let kid = fetch_jwt_kid(&mut client).await;
            if kid.as_deref() == Some(new_id.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "still served a token with kid {kid:?} after the taint"
                ))
            }
        }
    })
    .await?;

    // Revoke: the old kid leaves the JWT bundle.
    let mut before = vec![old_id.clone(), new_id.clone()];
    before.sort();
    assert_eq!(jwt_bundle_kids(&mut client).await, before);
    localauthority(&qs, "jwt", &["revoke", "-authorityID", &old_id]);
    qs.wait_until("the old kid to leave the JWT bundle", ONE_SYNC, || {
        let kids = futures_block(jwt_bundle_kids(&mut client.clone()));
        kids == vec![new_id.clone()]
    });
    Ok(())
}

/// Runs a future to completion from synchronous code inside the multi-threaded runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// When a root certificate expires.
fn not_after(root: &CertificateDer<'static>) -> SystemTime {
    let (_, cert) = x509_parser::parse_x509_certificate(root.as_ref()).expect("a certificate");
    let secs = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// SPIRE's schedule on a short CA lifetime: prepare at 1/2 of `ca_ttl` (90 s), activate
/// at 5/6 (150 s), expiry at 180 s. The server checks its schedule on a 10 s tick and the
/// agent re-signs 10 s SVIDs at half life, so new-CA SVIDs arrive at the latest about
/// 15 s after activation: `ca_ttl` leaves that much margin even on a loaded machine.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_rotation_with_a_short_ca_ttl_has_no_gap() -> TestResult {
    let (qs, _agent, socket) = setup(
        r#"ca_ttl = "3m"
    default_x509_svid_ttl = "10s"
    default_jwt_svid_ttl = "10s""#,
    );
    let mut rx = watch_x509(&socket).await?;
    let first = next_matching(&mut rx, &qs, ONE_SYNC, "a first SVID", |_| true).await?;
    assert_eq!(first.roots.len(), 1, "one CA before any rotation");
    let old_root = first.roots[0].clone();
    let old_expiry = not_after(&old_root);

    // Prepare: the next CA joins the bundle while SVIDs still chain to the old one.
    let prepared = next_matching(
        &mut rx,
        &qs,
        Duration::from_secs(120),
        "the next CA in the bundle",
        |s| s.roots.len() == 2,
    )
    .await?;
    let new_root = prepared.other_root(&old_root)?;
    assert!(
        SystemTime::now() < old_expiry,
        "the next CA must be published before the current one expires"
    );

    // Activate: SVIDs chain to the next CA before the old one expires.
    next_matching(
        &mut rx,
        &qs,
        Duration::from_secs(90),
        "an SVID of the next CA",
        |s| s.chained_to(&new_root),
    )
    .await?;
    assert!(
        SystemTime::now() < old_expiry,
        "SVIDs of the next CA must arrive before the current CA expires"
    );

    // Past the old CA's expiry: every response still validates (checked as they
    // arrive) and chains to the new CA.
    let settle = old_expiry + Duration::from_secs(15);
    let limit = settle.duration_since(SystemTime::now()).unwrap_or_default() + ONE_SYNC;
    let after = next_matching(
        &mut rx,
        &qs,
        limit,
        "a response after the old CA expired",
        |s| SystemTime::now() > settle && s.chained_to(&new_root),
    )
    .await?;
    assert!(after.roots.contains(&new_root));
    Ok(())
}

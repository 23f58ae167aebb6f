//! `x509_svid_cache_max_size` with the real binaries: the agent prefetches X.509-SVIDs
//! only up to the limit, signs the SVID of a workload that connects even when the cache
//! is full, and evicts an unused SVID instead; Debug `GetInfo` on the admin socket
//! reports the count.

use std::path::Path;
use std::time::{Duration, Instant};

use spire_e2e::{Quickstart, current_uid, stderr};
use spire_proto::spire::agent::debug::v1::GetInfoRequest;
use spire_proto::spire::agent::debug::v1::debug_client::DebugClient;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";

fn create_entry(qs: &Quickstart, path: &str, uid: u32) {
    let id = format!("spiffe://example.org{path}");
    let selector = format!("unix:uid:{uid}");
    let out = qs.server_cli(&[
        "entry",
        "create",
        "-parentID",
        AGENT_ID,
        "-spiffeID",
        &id,
        "-selector",
        &selector,
    ]);
    assert!(out.status.success(), "entry create: {}", stderr(&out));
}

async fn cached_svids(admin: &Path) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    let info = DebugClient::new(spire_common::uds::channel(admin)?)
        .get_info(GetInfoRequest {})
        .await?
        .into_inner();
    Ok(info.cached_x509_svids_count)
}

#[tokio::test(flavor = "multi_thread")]
async fn svid_cache_max_size_bounds_prefetch_and_serves_connecting_workloads() -> TestResult {
    let qs = Quickstart::start("");
    let token = qs.generate_token(AGENT_ID);
    let (config, socket) = qs.agent_config("agent");
    let admin = socket
        .parent()
        .and_then(Path::parent)
        .ok_or("socket has no directory")?
        .join("agent-admin")
        .join("admin.sock");
    let text = std::fs::read_to_string(&config)?.replacen(
        "agent {",
        &format!(
            "agent {{\n    admin_socket_path = \"{}\"\n    x509_svid_cache_max_size = 2",
            admin.display()
        ),
        1,
    );
    std::fs::write(&config, text)?;
    let agent = qs.start_agent(&config, Some(&token), "agent.log");
    let uid = current_uid();
    for (i, path) in ["/other-1", "/other-2", "/other-3"].iter().enumerate() {
        let other = uid.wrapping_add(1000 + u32::try_from(i)?);
        create_entry(&qs, path, other);
    }

    // Prefetch stops at the limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cached_svids(&admin).await {
            Ok(2) => break,
            Ok(n) if n > 2 => return Err(format!("{n} SVIDs cached, limit 2").into()),
            _ if Instant::now() > deadline => {
                return Err(format!("no SVIDs prefetched; agent log:\n{}", agent.log()).into());
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    // A workload of this uid connects to a full cache and still gets its SVID.
    create_entry(&qs, "/mine", uid);
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", socket.display())).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let svid = loop {
        match client.fetch_x509_svid().await {
            Ok(svid) => break svid,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(format!("no SVID: {e}; agent log:\n{}", agent.log()).into());
            }
        }
    };
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/mine");
    // An unused SVID made room: the count is back at the limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cached_svids(&admin).await? != 2 {
        if Instant::now() > deadline {
            return Err(format!("{} SVIDs cached", cached_svids(&admin).await?).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

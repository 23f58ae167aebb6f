//! Push propagation: the time from an entry being created over the server's admin API to
//! the new X509-SVID arriving on a workload's open `FetchX509SVID` stream, through the
//! real server and agent binaries. SPIRE's agents poll every 5 s, so a new identity
//! takes 0–5 s (plus the SVID sync tick) to reach a workload there.
//!
//! Run: `cargo bench -p spire-e2e --bench propagation` (`-- <entries>` to change the
//! count, default 200). Prints p50, p90, p99 and max.

use std::time::{Duration, Instant};

use spire_common::convert::id_to_proto;
use spire_e2e::{Quickstart, current_uid};
use spire_proto::spire::api::server::entry::v1::BatchCreateEntryRequest;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::types::{Entry, Selector};
use spire_proto::workload::X509svidRequest;
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;

type BenchResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";

fn entry(n: usize) -> Result<Entry, spiffe_core::IdError> {
    Ok(Entry {
        spiffe_id: Some(id_to_proto(&spiffe_core::SpiffeId::parse(&format!(
            "spiffe://example.org/bench/{n}"
        ))?)),
        parent_id: Some(id_to_proto(&spiffe_core::SpiffeId::parse(AGENT_ID)?)),
        selectors: vec![Selector {
            r#type: "unix".into(),
            value: format!("uid:{}", current_uid()),
        }],
        ..Default::default()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> BenchResult {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let qs = Quickstart::start("log_level = \"WARN\"");
    let token = qs.generate_token(AGENT_ID);
    let (config, socket) = qs.agent_config("agent");
    let _agent = qs.start_agent(&config, Some(&token), "agent.log");
    qs.wait_until("the agent socket", Duration::from_secs(30), || {
        socket.exists()
    });

    let mut entries = EntryClient::new(spire_common::uds::channel(qs.server_socket())?);
    entries
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![entry(0)?],
            output_mask: None,
        })
        .await?;
    let mut workload = SpiffeWorkloadApiClient::new(spire_common::uds::channel(&socket)?);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        let mut request = tonic::Request::new(X509svidRequest {});
        request.metadata_mut().insert(
            "workload.spiffe.io",
            tonic::metadata::MetadataValue::from_static("true"),
        );
        let attempt = async {
            let mut stream = workload.fetch_x509svid(request).await?.into_inner();
            stream.message().await?;
            Ok::<_, tonic::Status>(stream)
        }
        .await;
        match attempt {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status.into()),
        }
    };

    let mut latencies = Vec::with_capacity(count);
    for n in 1..=count {
        let want = n + 1;
        let started = Instant::now();
        entries
            .batch_create_entry(BatchCreateEntryRequest {
                entries: vec![entry(n)?],
                output_mask: None,
            })
            .await?;
        loop {
            let response = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .map_err(|_| format!("entry {n} did not reach the stream within 30 s"))??
                .ok_or("stream ended")?;
            if response.svids.len() >= want {
                break;
            }
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!("propagation: entry create -> X509-SVID on an open FetchX509SVID stream");
    println!("entries: {count} (real spire-server + spire-agent, SQLite, loopback)");
    for (name, p) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        println!(
            "{name}: {:.1} ms",
            percentile(&latencies, p).as_secs_f64() * 1000.0
        );
    }
    println!(
        "max: {:.1} ms",
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    let p50 = percentile(&latencies, 0.5).as_secs_f64();
    println!(
        "SPIRE reference: agents poll every 5 s (spec anchors), i.e. ~2.5 s average: {:.0}x the p50 here",
        2.5 / p50.max(1e-6)
    );
    Ok(())
}

//! Workload API latency and agent memory, through the real server and agent binaries,
//! beside a bare tonic call over a Unix socket measured in the same run:
//! - new connection + attestation + first `FetchX509SVID` response, against a new
//!   connection + one unary `grpc.health.v1.Health/Check` to an in-process tonic server;
//! - a cached `FetchJWTSVID` on an open connection, against a unary call on an open
//!   connection;
//! - the agent's resident memory with 1000 cached X509-SVIDs.
//!
//! Run: `cargo bench -p spire-e2e --bench workload_api` (`-- <calls>`, default 1000).

use std::path::Path;
use std::time::{Duration, Instant};

use spire_common::convert::id_to_proto;
use spire_e2e::{Quickstart, current_uid};
use spire_proto::health::HealthCheckRequest;
use spire_proto::health::health_client::HealthClient;
use spire_proto::spire::api::server::entry::v1::BatchCreateEntryRequest;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::types::{Entry, Selector};
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{JwtsvidRequest, X509svidRequest};
use tonic::metadata::MetadataValue;

type BenchResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";
const CACHED_SVIDS: usize = 1000;

fn entry(n: usize) -> Result<Entry, spiffe_core::IdError> {
    Ok(Entry {
        spiffe_id: Some(id_to_proto(&spiffe_core::SpiffeId::parse(&format!(
            "spiffe://example.org/w/{n}"
        ))?)),
        parent_id: Some(id_to_proto(&spiffe_core::SpiffeId::parse(AGENT_ID)?)),
        selectors: vec![Selector {
            r#type: "unix".into(),
            value: format!("uid:{}", current_uid()),
        }],
        ..Default::default()
    })
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", MetadataValue::from_static("true"));
    request
}

struct Stats(Vec<Duration>);

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn line(&self, name: &str, baseline: Option<&Stats>) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (p50, p99) = (self.percentile(0.5), self.percentile(0.99));
        let ratio = baseline
            .map(|b| {
                format!(
                    "  ({:.1}x / {:.1}x the baseline)",
                    p50.as_secs_f64() / b.percentile(0.5).as_secs_f64().max(1e-9),
                    p99.as_secs_f64() / b.percentile(0.99).as_secs_f64().max(1e-9)
                )
            })
            .unwrap_or_default();
        format!(
            "{name}: p50 {:.3} ms, p99 {:.3} ms{ratio}",
            ms(p50),
            ms(p99)
        )
    }
}

/// A bare tonic server on a Unix socket: the floor any gRPC-over-UDS service pays.
async fn baseline_server(path: &Path) -> BenchResult {
    let listener = spire_common::uds::bind(path, 0o755, 0o777)?;
    let (reporter, service) = spire_proto::health::health_reporter();
    reporter
        .set_service_status("", spire_proto::health::ServingStatus::Serving)
        .await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult {
    let calls: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let qs = Quickstart::start("log_level = \"WARN\"");
    let token = qs.generate_token(AGENT_ID);
    let (config, socket) = qs.agent_config("agent");
    let agent = qs.start_agent(&config, Some(&token), "agent.log");
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
    let baseline_socket = qs.dir.path().join("baseline.sock");
    baseline_server(&baseline_socket).await?;

    // Wait for the first SVID.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut client = SpiffeWorkloadApiClient::new(spire_common::uds::channel(&socket)?);
        let ok = async {
            let mut stream = client
                .fetch_x509svid(with_header(X509svidRequest {}))
                .await?
                .into_inner();
            stream.message().await
        }
        .await
        .is_ok();
        if ok {
            break;
        }
        if Instant::now() > deadline {
            return Err("no SVID in time".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // New connection + one call, both sides.
    let mut fetch = Vec::with_capacity(calls);
    let mut bare = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let mut client = SpiffeWorkloadApiClient::new(spire_common::uds::channel(&socket)?);
        let mut stream = client
            .fetch_x509svid(with_header(X509svidRequest {}))
            .await?
            .into_inner();
        stream.message().await?.ok_or("stream ended")?;
        fetch.push(started.elapsed());

        let started = Instant::now();
        let mut health = HealthClient::new(spire_common::uds::channel(&baseline_socket)?);
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        bare.push(started.elapsed());
    }

    // Cached JWT-SVID on an open connection, against a unary call on an open connection.
    let mut client = SpiffeWorkloadApiClient::new(spire_common::uds::channel(&socket)?);
    let mut health = HealthClient::new(spire_common::uds::channel(&baseline_socket)?);
    let jwt_request = || {
        with_header(JwtsvidRequest {
            audience: vec!["bench".into()],
            spiffe_id: String::new(),
        })
    };
    client.fetch_jwtsvid(jwt_request()).await?;
    let mut jwt = Vec::with_capacity(calls);
    let mut warm = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client.fetch_jwtsvid(jwt_request()).await?;
        jwt.push(started.elapsed());
        let started = Instant::now();
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        warm.push(started.elapsed());
    }

    // Agent memory with 1000 cached SVIDs.
    let rss_before = agent.rss_kib().unwrap_or(0);
    for chunk in (1..=CACHED_SVIDS).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|n| entry(*n))
            .collect::<Result<Vec<_>, _>>()?;
        entries
            .batch_create_entry(BatchCreateEntryRequest {
                entries: batch,
                output_mask: None,
            })
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut cached = 0;
    while Instant::now() < deadline {
        let mut stream = client
            .fetch_x509svid(with_header(X509svidRequest {}))
            .await?
            .into_inner();
        cached = stream.message().await?.map_or(0, |r| r.svids.len());
        if cached > CACHED_SVIDS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss_after = agent.rss_kib().unwrap_or(0);

    let bare = Stats(bare);
    let warm = Stats(warm);
    println!("Workload API latency, {calls} calls each (release binaries, loopback UDS)");
    println!(
        "{}",
        Stats(fetch).line(
            "new connection + attestation + first FetchX509SVID",
            Some(&bare)
        )
    );
    println!(
        "{}",
        bare.line("baseline: new connection + bare tonic unary call", None)
    );
    println!(
        "{}",
        Stats(jwt).line("cached FetchJWTSVID on an open connection", Some(&warm))
    );
    println!(
        "{}",
        warm.line("baseline: bare tonic unary call, open connection", None)
    );
    println!(
        "agent RSS: {:.1} MiB with 1 SVID, {:.1} MiB with {cached} cached X509-SVIDs",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    Ok(())
}

//! `spire-agent api fetch x509` (agent.md §7.1): one `FetchX509SVID` message, verified,
//! printed as SPIRE prints it, and optionally written to files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use spiffe_core::{TrustDomain, X509Bundle, X509Svid};
use spire_proto::workload::X509svidRequest;
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CliError;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FetchX509Args {
    /// Path to the SPIRE Agent API socket.
    #[arg(long = "socketPath", default_value = crate::endpoints::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
    /// Time to wait for a response.
    #[arg(long = "timeout", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Suppress stdout.
    #[arg(long = "silent")]
    silent: bool,
    /// Write SVID data to the specified path (optional; only available for pretty output).
    #[arg(long = "write", default_value = "")]
    write: String,
    /// Desired output format (pretty, json).
    #[arg(long = "output", default_value = "pretty")]
    output: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    spire_common::duration::parse(s).map_err(|e| e.to_string())
}

/// One SVID as received, parsed and verified.
pub(crate) struct Received {
    /// The SVID.
    pub(crate) svid: X509Svid,
    /// Its trust domain's bundle.
    pub(crate) bundle: X509Bundle,
    /// Federated bundles, sorted by the label printed for them.
    pub(crate) federated: Vec<(String, X509Bundle)>,
    /// The hint (empty: not printed).
    pub(crate) hint: String,
}

pub(crate) async fn run(args: FetchX509Args) -> Result<(), CliError> {
    let json = super::wants_json(&args.output)?;
    let channel = spire_common::uds::channel(&args.socket_path)
        .map_err(|e| CliError(format!("cannot reach {}: {e}", args.socket_path.display())))?;
    let mut client = SpiffeWorkloadApiClient::new(channel);
    let started = Instant::now();
    let mut request = tonic::Request::new(X509svidRequest {});
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request.set_timeout(args.timeout);
    let response = tokio::time::timeout(args.timeout, async {
        let mut stream = client.fetch_x509svid(request).await?.into_inner();
        stream
            .message()
            .await?
            .ok_or_else(|| tonic::Status::unavailable("stream closed before a response"))
    })
    .await
    .map_err(|_| {
        CliError("rpc error: code = DeadlineExceeded desc = context deadline exceeded".into())
    })??;
    let elapsed = started.elapsed();
    if response.svids.is_empty() {
        return Err(CliError("no SVIDs received".into()));
    }
    if json {
        // SPIRE prints the X509SVIDResponse as received (agent.md §7.1).
        super::print_json_value(&super::json_value(&response)?);
        return Ok(());
    }
    let mut received = Vec::new();
    for svid in &response.svids {
        let parsed = X509Svid::parse_der(&svid.x509_svid, &svid.x509_svid_key)
            .map_err(|e| CliError(format!("failed to parse SVID {:?}: {e}", svid.spiffe_id)))?;
        let td = parsed.spiffe_id().trust_domain();
        let bundle = X509Bundle::parse_der(td, &svid.bundle)
            .map_err(|e| CliError(format!("failed to parse bundle: {e}")))?;
        if bundle.is_empty() {
            return Err(CliError(format!("{:?} bundle is empty", svid.spiffe_id)));
        }
        parsed.verify(&bundle, SystemTime::now()).map_err(|e| {
            CliError(format!(
                "{:?} SVID failed verification against bundle: {e}",
                svid.spiffe_id
            ))
        })?;
        let mut federated = Vec::new();
        for (td_id, der) in &response.federated_bundles {
            let td = TrustDomain::parse(td_id)
                .map_err(|e| CliError(format!("invalid federated trust domain {td_id:?}: {e}")))?;
            let fed = X509Bundle::parse_der(td, der)
                .map_err(|e| CliError(format!("failed to parse federated bundle: {e}")))?;
            federated.push((td_id.clone(), fed));
        }
        federated.sort_by(|a, b| a.0.cmp(&b.0));
        received.push(Received {
            svid: parsed,
            bundle,
            federated,
            hint: svid.hint.clone(),
        });
    }
    if !args.silent {
        print!("{}", render(&received, elapsed));
    }
    if !args.write.is_empty() {
        write_files(Path::new(&args.write), &received)?;
    }
    Ok(())
}

/// Go's `time.Time.String()` for a UTC instant: `2006-01-02 15:04:05 +0000 UTC`.
fn go_time(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

fn validity(der: &[u8]) -> (String, String) {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => (
            go_time(cert.validity().not_before.timestamp()),
            go_time(cert.validity().not_after.timestamp()),
        ),
        Err(_) => ("unknown".into(), "unknown".into()),
    }
}

/// SPIRE's pretty output (agent.md §7.1).
pub(crate) fn render(received: &[Received], elapsed: Duration) -> String {
    let mut out = String::new();
    let noun = if received.len() == 1 { "svid" } else { "svids" };
    let _ = writeln!(
        out,
        "Received {} {noun} after {}",
        received.len(),
        spire_common::duration::format_go(elapsed)
    );
    for r in received {
        out.push('\n');
        let _ = writeln!(out, "SPIFFE ID:\t\t{}", r.svid.spiffe_id());
        if !r.hint.is_empty() {
            let _ = writeln!(out, "Hint:\t\t\t{}", r.hint);
        }
        let (after, until) = validity(r.svid.leaf().as_ref());
        let _ = writeln!(out, "SVID Valid After:\t{after}");
        let _ = writeln!(out, "SVID Valid Until:\t{until}");
        for (i, cert) in r.svid.cert_chain().iter().skip(1).enumerate() {
            let (after, until) = validity(cert.as_ref());
            let _ = writeln!(out, "Intermediate #{} Valid After:\t{after}", i + 1);
            let _ = writeln!(out, "Intermediate #{} Valid Until:\t{until}", i + 1);
        }
        for (i, cert) in r.bundle.authorities().iter().enumerate() {
            let (after, until) = validity(cert.as_ref());
            let _ = writeln!(out, "CA #{} Valid After:\t{after}", i + 1);
            let _ = writeln!(out, "CA #{} Valid Until:\t{until}", i + 1);
        }
        for (td, bundle) in &r.federated {
            for (i, cert) in bundle.authorities().iter().enumerate() {
                let (after, until) = validity(cert.as_ref());
                let _ = writeln!(out, "[{td}] CA #{} Valid After:\t{after}", i + 1);
                let _ = writeln!(out, "[{td}] CA #{} Valid Until:\t{until}", i + 1);
            }
        }
    }
    out.push('\n');
    out
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CliError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CliError(format!("error writing {}: {e}", path.display())))?;
    file.write_all(contents)
        .map_err(|e| CliError(format!("error writing {}: {e}", path.display())))
}

/// `svid.<i>.pem` (0644), `svid.<i>.key` (0600), `bundle.<i>.pem` (0644) and
/// `federated_bundle.<i>.<j>.pem`, as SPIRE names them.
fn write_files(dir: &Path, received: &[Received]) -> Result<(), CliError> {
    for (i, r) in received.iter().enumerate() {
        let svid_path = dir.join(format!("svid.{i}.pem"));
        println!("Writing SVID #{i} to file {}.", svid_path.display());
        write_file(&svid_path, r.svid.chain_pem().as_bytes(), 0o644)?;
        let key_path = dir.join(format!("svid.{i}.key"));
        println!("Writing key #{i} to file {}.", key_path.display());
        write_file(&key_path, r.svid.key_pem().as_bytes(), 0o600)?;
        let bundle_path = dir.join(format!("bundle.{i}.pem"));
        println!("Writing bundle #{i} to file {}.", bundle_path.display());
        write_file(&bundle_path, r.bundle.to_pem().as_bytes(), 0o644)?;
        for (j, (td, bundle)) in r.federated.iter().enumerate() {
            let path = dir.join(format!("federated_bundle.{i}.{j}.pem"));
            println!(
                "Writing federated bundle #{j} for trust domain {td} to file {}.",
                path.display()
            );
            write_file(&path, bundle.to_pem().as_bytes(), 0o644)?;
        }
    }
    Ok(())
}

//! `spire-agent api fetch jwt` (agent.md §7.2): one `FetchJWTBundles` message, then
//! `FetchJWTSVID`, printed as SPIRE prints them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse,
};
use tonic::transport::Channel;

use super::CliError;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FetchJwtArgs {
    /// Comma separated list of audience values.
    #[arg(long = "audience", default_value = "")]
    audience: String,
    /// SPIFFE ID subject (optional).
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
    /// Path to the SPIRE Agent API socket.
    #[arg(long = "socketPath", default_value = crate::endpoints::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
    /// Time to wait for a response.
    #[arg(long = "timeout", default_value = "5s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// Desired output format (pretty, json).
    #[arg(long = "output", default_value = "pretty")]
    output: String,
}

/// A Workload API client on `socket_path`.
pub(crate) fn workload_client(
    socket_path: &std::path::Path,
) -> Result<SpiffeWorkloadApiClient<Channel>, CliError> {
    let channel = spire_common::uds::channel(socket_path)
        .map_err(|e| CliError(format!("cannot reach {}: {e}", socket_path.display())))?;
    Ok(SpiffeWorkloadApiClient::new(channel))
}

/// `message` with the Workload API security header and a deadline.
pub(crate) fn with_header<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        crate::endpoints::workload_api::SECURITY_HEADER,
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request.set_timeout(timeout);
    request
}

/// The error of a call that ran out of time, as Go prints it.
pub(crate) fn deadline_exceeded() -> CliError {
    CliError("rpc error: code = DeadlineExceeded desc = context deadline exceeded".into())
}

pub(crate) async fn run(args: FetchJwtArgs) -> Result<(), CliError> {
    let audience: Vec<String> = args
        .audience
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if audience.is_empty() {
        return Err(CliError("audience must be specified".into()));
    }
    let json = super::wants_json(&args.output)?;
    let mut client = workload_client(&args.socket_path)?;
    let timeout = args.timeout;
    let (svids, bundles) = tokio::time::timeout(timeout, async {
        let mut stream = client
            .fetch_jwt_bundles(with_header(JwtBundlesRequest {}, timeout))
            .await?
            .into_inner();
        let bundles = stream
            .message()
            .await?
            .ok_or_else(|| tonic::Status::unavailable("stream closed before a response"))?;
        let svids = client
            .fetch_jwtsvid(with_header(
                JwtsvidRequest {
                    audience,
                    spiffe_id: args.spiffe_id.clone(),
                },
                timeout,
            ))
            .await?
            .into_inner();
        Ok::<_, tonic::Status>((svids, bundles))
    })
    .await
    .map_err(|_| deadline_exceeded())??;
    if json {
        // SPIRE prints both messages as one array (agent.md §7.2).
        super::print_json_value(&serde_json::Value::Array(vec![
            super::json_value(&svids)?,
            super::json_value(&bundles)?,
        ]));
        return Ok(());
    }
    print!("{}", render(&svids, &bundles));
    Ok(())
}

/// SPIRE's pretty output: every token (and hint), then every bundle.
fn render(svids: &JwtsvidResponse, bundles: &JwtBundlesResponse) -> String {
    let mut out = String::new();
    for svid in &svids.svids {
        let _ = write!(out, "token({}):\n\t{}\n", svid.spiffe_id, svid.svid);
        if !svid.hint.is_empty() {
            let _ = write!(out, "hint({}):\n\t{}\n", svid.spiffe_id, svid.hint);
        }
    }
    let mut tds: Vec<&String> = bundles.bundles.keys().collect();
    tds.sort();
    for td in tds {
        let jwks = bundles
            .bundles
            .get(td)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let _ = write!(out, "bundle({td}):\n\t{jwks}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use spire_proto::workload::Jwtsvid;

    #[test]
    fn renders_tokens_hints_and_bundles() {
        let svids = JwtsvidResponse {
            svids: vec![
                Jwtsvid {
                    spiffe_id: "spiffe://example.org/a".into(),
                    svid: "t.a.s".into(),
                    hint: String::new(),
                },
                Jwtsvid {
                    spiffe_id: "spiffe://example.org/b".into(),
                    svid: "t.b.s".into(),
                    hint: "internal".into(),
                },
            ],
        };
        let bundles = JwtBundlesResponse {
            bundles: [("spiffe://example.org".to_owned(), b"{\"keys\":[]}".to_vec())]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            render(&svids, &bundles),
            "token(spiffe://example.org/a):\n\tt.a.s\n\
             token(spiffe://example.org/b):\n\tt.b.s\n\
             hint(spiffe://example.org/b):\n\tinternal\n\
             bundle(spiffe://example.org):\n\t{\"keys\":[]}\n"
        );
    }
}

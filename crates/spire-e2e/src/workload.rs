//! Workload API helpers the end-to-end tests share: the security header every call
//! carries, a client on the agent's socket, opening a `FetchX509SVID` stream once the
//! agent has an identity for the caller, reading a stream until a message matches, and
//! retrying a call until it succeeds.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{X509svidRequest, X509svidResponse};
use tonic::Streaming;
use tonic::transport::Channel;

/// How long to wait between two attempts of a retried call.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Wraps `message` in a request carrying the `workload.spiffe.io: true` header the
/// Workload API requires.
pub fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

/// A Workload API client on the agent's Unix socket.
pub fn workload_client(
    socket: &Path,
) -> Result<SpiffeWorkloadApiClient<Channel>, tonic::transport::Error> {
    Ok(SpiffeWorkloadApiClient::new(spire_common::uds::channel(
        socket,
    )?))
}

/// Runs `attempt` every 200 ms until it succeeds or `limit` has passed, then returns
/// its last error.
pub async fn retry<T, E, F, Fut>(limit: Duration, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens a `FetchX509SVID` stream and returns it with its first message. Until the agent
/// has synced an entry for the caller the stream answers "no identity issued", so this
/// retries for up to `limit` (each attempt bounded by `limit` too).
pub async fn open_x509_stream(
    socket: &Path,
    limit: Duration,
) -> Result<(Streaming<X509svidResponse>, X509svidResponse), tonic::Status> {
    let client = workload_client(socket)
        .map_err(|e| tonic::Status::unavailable(format!("workload API socket: {e}")))?;
    retry(limit, || {
        let mut client = client.clone();
        async move {
            let attempt = async {
                let mut stream = client
                    .fetch_x509svid(with_header(X509svidRequest {}))
                    .await?
                    .into_inner();
                let first = stream
                    .message()
                    .await?
                    .ok_or_else(|| tonic::Status::unavailable("the stream ended"))?;
                Ok((stream, first))
            };
            tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded(format!(
                        "no X509-SVID within {limit:?}"
                    )))
                })
        }
    })
    .await
}

/// Reads `stream` until a message satisfies `want` and returns it; fails with a message
/// naming `what` when the stream ends or fails, `want` fails, or `limit` passes.
pub async fn next_message<T>(
    stream: &mut Streaming<T>,
    limit: Duration,
    what: &str,
    mut want: impl FnMut(&T) -> Result<bool, String>,
) -> Result<T, String> {
    let wait = async {
        loop {
            match stream.message().await {
                Ok(Some(message)) if want(&message)? => return Ok(message),
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("the stream ended while waiting for {what}")),
                Err(status) => {
                    return Err(format!(
                        "the stream failed while waiting for {what}: {status}"
                    ));
                }
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| format!("no {what} within {limit:?}"))?
}

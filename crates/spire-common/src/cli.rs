//! What the `spire-server` and `spire-agent` command lines share: Go-style flag parsing,
//! the async runtime, and SPIRE's error convention (`Error: <message>` on stderr, exit
//! status 1).

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

/// A command failure, printed as `Error: <message>`.
#[derive(Debug)]
pub struct CliError(pub String);

impl From<tonic::Status> for CliError {
    /// gRPC errors read as Go's `rpc error: code = X desc = Y`, as in SPIRE's output.
    fn from(status: tonic::Status) -> Self {
        CliError(format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        ))
    }
}

impl CliError {
    /// Maps a gRPC failure to `<context>: rpc error: code = X desc = Y`, for
    /// `.map_err(CliError::rpc("unable to list X"))`.
    pub fn rpc(context: &str) -> impl Fn(tonic::Status) -> CliError + '_ {
        move |status| CliError(format!("{context}: {}", CliError::from(status).0))
    }
}

/// A Unix timestamp as an RFC 3339 UTC time, as the command lines print times; the
/// seconds themselves when out of range.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Parses `args` (program name first) with single-dash Go-style flags into `C`, runs
/// `command` on a multi-threaded runtime, and maps the outcome to SPIRE's exit codes.
pub fn run<C, F, Fut>(args: Vec<OsString>, command: F) -> ExitCode
where
    C: clap::Parser,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = Result<(), CliError>>,
{
    let cli = match C::try_parse_from(crate::flags::go_style_args(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

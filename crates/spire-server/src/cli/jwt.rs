//! `spire-server jwt mint` (server.md §2.8): a JWT-SVID from `SVID.MintJWTSVID`.

use std::time::Duration;

use spire_common::convert::id_to_proto;
use spire_proto::spire::api::server::svid::v1::MintJwtsvidRequest;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;

use super::x509::{parse_go_duration, ttl_seconds, warn_if_capped};
use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum JwtCommand {
    /// Mints a JWT-SVID.
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct MintArgs {
    #[command(flatten)]
    socket: SocketArgs,
    /// SPIFFE ID of the JWT-SVID.
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
    /// TTL of the JWT-SVID.
    #[arg(long = "ttl", value_parser = parse_go_duration, default_value = "0s")]
    ttl: Duration,
    /// Audience claim that will be included in the SVID. Can be used more than once.
    #[arg(long = "audience")]
    audience: Vec<String>,
    /// File to write token to instead of stdout.
    #[arg(long = "write", default_value = "")]
    write: String,
    #[command(flatten)]
    output: OutputArgs,
}

impl JwtCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            JwtCommand::Mint(args) => mint(args).await,
        }
    }
}

/// The token's `exp` claim, read without verification (only to warn about capping).
fn expiry(token: &str) -> Result<i64, String> {
    let parsed = spiffe_core::JwtSvid::parse_insecure(token, &[], std::time::SystemTime::now())
        .map_err(|e| e.to_string())?;
    Ok(parsed.expiry_unix())
}

async fn mint(args: MintArgs) -> Result<(), CliError> {
    if args.spiffe_id.is_empty() {
        return Err(CliError("spiffeID must be specified".into()));
    }
    if args.audience.is_empty() {
        return Err(CliError("at least one audience must be specified".into()));
    }
    let format = args.output.format()?;
    let id = spiffe_core::SpiffeId::parse(&args.spiffe_id).map_err(|e| CliError(e.to_string()))?;
    let response = SvidClient::new(args.socket.channel()?)
        .mint_jwtsvid(MintJwtsvidRequest {
            id: Some(id_to_proto(&id)),
            audience: args.audience.clone(),
            ttl: ttl_seconds(args.ttl),
        })
        .await
        .map_err(CliError::rpc("unable to mint SVID"))?
        .into_inner();
    let token = response
        .svid
        .as_ref()
        .map(|s| s.token.clone())
        .unwrap_or_default();
    if token.is_empty() {
        return Err(CliError("server response missing token".into()));
    }
    match expiry(&token) {
        Ok(exp) => warn_if_capped("JWT-SVID", exp, args.ttl),
        Err(e) => eprintln!("Unable to determine JWT-SVID lifetime: {e}"),
    }
    // As SPIRE: `-write` wins; otherwise the token (pretty) or the response (json).
    if args.write.is_empty() {
        if format == OutputFormat::Json {
            return print_json(&response);
        }
        println!("{token}");
        return Ok(());
    }
    write_private(&args.write, &token)
        .map_err(|e| CliError(format!("unable to write token: {e}")))?;
    println!("JWT-SVID written to {}", args.write);
    Ok(())
}

fn write_private(path: &str, contents: &str) -> Result<(), std::io::Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

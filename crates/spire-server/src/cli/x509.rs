//! `spire-server x509 mint` (server.md §2.8): the CLI makes an EC P-256 key and a CSR for
//! the SPIFFE ID, and the server signs it through `SVID.MintX509SVID`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use spire_proto::spire::api::server::bundle::v1::GetBundleRequest;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::svid::v1::MintX509svidRequest;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;

use super::{CliError, OutputArgs, OutputFormat, SocketArgs};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum X509Command {
    /// Mints an X509-SVID.
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct MintArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// SPIFFE ID of the X509-SVID.
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
    /// TTL of the X509-SVID.
    #[arg(long = "ttl", value_parser = parse_go_duration, default_value = "0s")]
    ttl: Duration,
    /// DNS name that will be included in SVID. Can be used more than once.
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Directory to write output to instead of stdout.
    #[arg(long = "write", default_value = "")]
    write: String,
}

impl X509Command {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            X509Command::Mint(args) => mint(args).await,
        }
    }
}

/// Parses a Go duration flag value (`1h`, `90s`, `0`).
pub(crate) fn parse_go_duration(value: &str) -> Result<Duration, String> {
    spire_common::duration::parse(value).map_err(|e| e.to_string())
}

/// Seconds in `ttl`, rounded up (SPIRE's `ttlToSeconds`).
pub(crate) fn ttl_seconds(ttl: Duration) -> i32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Warns when the credential ends before `ttl` from now (its lifetime was capped). Whole
/// seconds are compared, with a second of slack for the time the request took.
pub(crate) fn warn_if_capped(what: &str, expires_at: i64, ttl: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let wanted = i64::from(ttl_seconds(ttl));
    if expires_at.saturating_sub(now).saturating_add(1) < wanted {
        let eol = spire_common::cli::rfc3339(expires_at);
        eprintln!("{what} lifetime was capped shorter than specified ttl; expires {eol:?}");
    }
}

fn csr(
    spiffe_id: &spiffe_core::SpiffeId,
    dns: &[String],
    key: &KeyPair,
) -> Result<Vec<u8>, CliError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let uri = spiffe_id
        .as_str()
        .try_into()
        .map_err(|e| CliError(format!("unable to generate CSR: {e}")))?;
    params.subject_alt_names.push(SanType::URI(uri));
    for name in dns {
        let name = name.as_str().try_into().map_err(|e| {
            CliError(format!(
                "unable to generate CSR: invalid DNS name {name:?}: {e}"
            ))
        })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    let request = params
        .serialize_request(key)
        .map_err(|e| CliError(format!("unable to generate CSR: {e}")))?;
    Ok(request.der().to_vec())
}

fn pem_blocks(tag: &str, ders: &[Vec<u8>]) -> String {
    ders.iter()
        .map(|der| {
            pem::encode_config(
                &pem::Pem::new(tag, der.clone()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .collect()
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), std::io::Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

async fn mint(args: MintArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    if args.spiffe_id.is_empty() {
        return Err(CliError("spiffeID must be specified".into()));
    }
    let id = spiffe_core::SpiffeId::parse(&args.spiffe_id).map_err(|e| CliError(e.to_string()))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CliError(format!("unable to generate key: {e}")))?;
    let csr = csr(&id, &args.dns, &key)?;

    let channel = args.socket.channel()?;
    let svid = SvidClient::new(channel.clone())
        .mint_x509svid(MintX509svidRequest {
            csr,
            ttl: ttl_seconds(args.ttl),
        })
        .await
        .map_err(CliError::rpc("unable to mint SVID"))?
        .into_inner()
        .svid
        .unwrap_or_default();
    if svid.cert_chain.is_empty() {
        return Err(CliError("server response missing SVID chain".into()));
    }
    let bundle = BundleClient::new(channel)
        .get_bundle(GetBundleRequest::default())
        .await
        .map_err(CliError::rpc("unable to get bundle"))?
        .into_inner();
    if bundle.x509_authorities.is_empty() {
        return Err(CliError("server response missing X509 Authorities".into()));
    }
    warn_if_capped("X509-SVID", svid.expires_at, args.ttl);

    let key_der = key.serialize_der();
    let roots: Vec<Vec<u8>> = bundle
        .x509_authorities
        .into_iter()
        .map(|a| a.asn1)
        .collect();
    let svid_pem = pem_blocks("CERTIFICATE", &svid.cert_chain);
    let key_pem = pem_blocks("PRIVATE KEY", std::slice::from_ref(&key_der));
    let bundle_pem = pem_blocks("CERTIFICATE", &roots);

    if args.write.is_empty() {
        match format {
            OutputFormat::Pretty => {
                print!(
                    "X509-SVID:\n{svid_pem}\nPrivate key:\n{key_pem}\nRoot CAs:\n{bundle_pem}\n"
                );
            }
            OutputFormat::Json => {
                let b64 = |v: &Vec<u8>| serde_json::Value::String(STANDARD.encode(v));
                let json = serde_json::json!({
                    "x509_svid": svid.cert_chain.iter().map(b64).collect::<Vec<_>>(),
                    "private_key": b64(&key_der),
                    "root_cas": roots.iter().map(b64).collect::<Vec<_>>(),
                });
                println!("{json}");
            }
        }
        return Ok(());
    }

    let dir = PathBuf::from(&args.write);
    let svid_path = dir.join("svid.pem");
    let key_path = dir.join("key.pem");
    let bundle_path = dir.join("bundle.pem");
    write_file(&svid_path, &svid_pem, 0o644)
        .map_err(|e| CliError(format!("unable to write SVID: {e}")))?;
    println!("X509-SVID written to {}", svid_path.display());
    write_file(&key_path, &key_pem, 0o600)
        .map_err(|e| CliError(format!("unable to write key: {e}")))?;
    println!("Private key written to {}", key_path.display());
    write_file(&bundle_path, &bundle_pem, 0o644)
        .map_err(|e| CliError(format!("unable to write bundle: {e}")))?;
    println!("Root CAs written to {}", bundle_path.display());
    Ok(())
}

//! `spire-server bundle show|list|set|delete|count` (server.md §2.6).

use serde::Serialize;
use spiffe_core::{SpiffeBundle, TrustDomain};
use spire_common::convert::{bundle_from_proto, bundle_to_proto};
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::bundle::v1::{
    BatchDeleteFederatedBundleRequest, BatchSetFederatedBundleRequest, CountBundlesRequest,
    GetBundleRequest, GetFederatedBundleRequest, ListFederatedBundlesRequest,
    ListFederatedBundlesResponse, batch_delete_federated_bundle_request::Mode,
};
use spire_proto::spire::api::types::{Bundle, X509Certificate};

use super::entry::read_input;
use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BundleCommand {
    /// Prints server CA bundle to stdout.
    Show(ShowArgs),
    /// Lists federated bundle data.
    List(ListArgs),
    /// Creates or updates federated bundle data.
    Set(SetArgs),
    /// Deletes federated bundle data.
    Delete(DeleteArgs),
    /// Count bundles.
    Count(CountArgs),
}

impl BundleCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            BundleCommand::Show(args) => show(args).await,
            BundleCommand::List(args) => list(args).await,
            BundleCommand::Set(args) => set(args).await,
            BundleCommand::Delete(args) => delete(args).await,
            BundleCommand::Count(args) => count(args).await,
        }
    }
}

/// The `-format` flag: `pem` or `spiffe`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FormatArgs {
    /// The format to show the bundle (only pretty output format supports this flag).
    /// Either "pem" or "spiffe".
    #[arg(long = "format", default_value = "pem")]
    format: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pem,
    Spiffe,
}

impl FormatArgs {
    fn format(&self) -> Result<Format, CliError> {
        match self.format.to_lowercase().as_str() {
            "pem" => Ok(Format::Pem),
            "spiffe" => Ok(Format::Spiffe),
            _ => Err(CliError(format!("invalid format: {:?}", self.format))),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    format: FormatArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    format: FormatArgs,
    /// SPIFFE ID of the trust domain.
    #[arg(long = "id", default_value = "")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    format: FormatArgs,
    /// SPIFFE ID of the trust domain.
    #[arg(long = "id", default_value = "")]
    id: String,
    /// Path to the bundle data (stdin when unset).
    #[arg(long = "path", default_value = "")]
    path: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// SPIFFE ID of the trust domain.
    #[arg(long = "id", default_value = "")]
    id: String,
    /// Deletion mode: one of restrict, delete, or dissociate.
    #[arg(long = "mode", default_value = "restrict")]
    mode: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// The trust domain of an `-id` flag (`spiffe://td` or a bare name).
fn trust_domain(id: &str) -> Result<TrustDomain, CliError> {
    if id.is_empty() {
        return Err(CliError("id is required".into()));
    }
    TrustDomain::parse(id).map_err(|e| CliError(format!("invalid trust domain ID {id:?}: {e}")))
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let format = args.format.format()?;
    let mut client = BundleClient::new(args.socket.channel()?);
    let bundle = client
        .get_bundle(GetBundleRequest { output_mask: None })
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        // SPIRE prints the types.Bundle; -format only applies to pretty output.
        return print_json(&bundle);
    }
    print!("{}", render(&bundle, format)?);
    Ok(())
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let format = args.format.format()?;
    let mut client = BundleClient::new(args.socket.channel()?);
    let bundles = if args.id.is_empty() {
        let mut bundles = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_federated_bundles(ListFederatedBundlesRequest {
                    output_mask: None,
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            bundles.extend(page.bundles);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        if output == OutputFormat::Json {
            // Every page gathered into one ListFederatedBundlesResponse.
            return print_json(&ListFederatedBundlesResponse {
                bundles,
                next_page_token: String::new(),
            });
        }
        bundles
    } else {
        let td = trust_domain(&args.id)?;
        vec![
            client
                .get_federated_bundle(GetFederatedBundleRequest {
                    trust_domain: td.name().to_owned(),
                    output_mask: None,
                })
                .await?
                .into_inner(),
        ]
    };
    if output == OutputFormat::Json {
        // With -id, SPIRE prints the single types.Bundle.
        if let Some(bundle) = bundles.first() {
            return print_json(bundle);
        }
    }
    let mut out = String::new();
    for (i, bundle) in bundles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&header(&bundle.trust_domain));
        out.push_str(&render(bundle, format)?);
    }
    print!("{out}");
    Ok(())
}

async fn set(args: SetArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let td = trust_domain(&args.id)?;
    let format = args.format.format()?;
    let data = read_input(if args.path.is_empty() {
        "-"
    } else {
        &args.path
    })?;
    let bundle = match format {
        Format::Pem => {
            let blocks = pem::parse_many(&data)
                .map_err(|e| CliError(format!("unable to parse bundle data: {e}")))?;
            let certs: Vec<X509Certificate> = blocks
                .into_iter()
                .filter(|b| b.tag() == "CERTIFICATE")
                .map(|b| X509Certificate {
                    asn1: b.into_contents(),
                    tainted: false,
                })
                .collect();
            if certs.is_empty() {
                return Err(CliError(
                    "unable to parse bundle data: no PEM blocks".into(),
                ));
            }
            Bundle {
                trust_domain: td.name().to_owned(),
                x509_authorities: certs,
                ..Default::default()
            }
        }
        Format::Spiffe => {
            let parsed = SpiffeBundle::parse(td.clone(), &data)
                .map_err(|e| CliError(format!("unable to parse bundle data: {e}")))?;
            bundle_to_proto(&parsed)
        }
    };
    let mut client = BundleClient::new(args.socket.channel()?);
    let response = client
        .batch_set_federated_bundle(BatchSetFederatedBundleRequest {
            bundle: vec![bundle],
            output_mask: None,
        })
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        // The whole response, per-bundle statuses included.
        return print_json(&response);
    }
    for result in response.results {
        let status = result.status.unwrap_or_default();
        if status.code != 0 {
            return Err(CliError(format!(
                "failed to set federated bundle: {}",
                status.message
            )));
        }
    }
    println!("bundle set.");
    Ok(())
}

async fn delete(args: DeleteArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let td = trust_domain(&args.id)?;
    let mode = match args.mode.as_str() {
        "restrict" => Mode::Restrict,
        "delete" => Mode::Delete,
        "dissociate" => Mode::Dissociate,
        other => return Err(CliError(format!("unsupported mode {other:?}"))),
    };
    let mut client = BundleClient::new(args.socket.channel()?);
    let response = client
        .batch_delete_federated_bundle(BatchDeleteFederatedBundleRequest {
            trust_domains: vec![td.name().to_owned()],
            mode: mode as i32,
        })
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        // The whole response, per-trust-domain statuses included.
        return print_json(&response);
    }
    for result in response.results {
        let status = result.status.unwrap_or_default();
        if status.code != 0 {
            return Err(CliError(format!(
                "failed to delete federated bundle {:?}: {}",
                result.trust_domain, status.message
            )));
        }
    }
    println!("bundle deleted.");
    Ok(())
}

async fn count(args: CountArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let mut client = BundleClient::new(args.socket.channel()?);
    let response = client
        .count_bundles(CountBundlesRequest {})
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        return print_json(&response);
    }
    let count = response.count;
    let noun = if count == 1 { "bundle" } else { "bundles" };
    println!("{count} {noun}");
    Ok(())
}

/// The banner `bundle list` prints above each bundle.
fn header(trust_domain: &str) -> String {
    let stars = "*".repeat(40);
    format!("{stars}\n* {trust_domain}\n{stars}\n")
}

/// A bundle as `pem` (the X.509 authorities as `CERTIFICATE` blocks) or `spiffe` (the
/// JWKS document as SPIRE prints it).
fn render(bundle: &Bundle, format: Format) -> Result<String, CliError> {
    match format {
        Format::Pem => Ok(bundle
            .x509_authorities
            .iter()
            .map(|a| {
                pem::encode_config(
                    &pem::Pem::new("CERTIFICATE", a.asn1.clone()),
                    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
                )
            })
            .collect()),
        Format::Spiffe => spiffe_json(bundle),
    }
}

/// A JWK in go-jose's field order.
#[derive(Serialize)]
struct GoJwk {
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
}

/// SPIRE's bundle document field order.
#[derive(Serialize)]
struct GoDocument {
    keys: Vec<GoJwk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_refresh_hint: Option<u64>,
}

/// The SPIFFE bundle document, indented 4 spaces in SPIRE's key order.
fn spiffe_json(bundle: &Bundle) -> Result<String, CliError> {
    let parsed = bundle_from_proto(bundle).map_err(|e| CliError(e.to_string()))?;
    let json = parsed.to_json().map_err(|e| CliError(e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<spiffe_core::Jwk>,
        spiffe_refresh_hint: Option<u64>,
        spiffe_sequence: Option<u64>,
    }
    let doc: Doc = serde_json::from_slice(&json).map_err(|e| CliError(e.to_string()))?;
    let go = GoDocument {
        keys: doc
            .keys
            .into_iter()
            .map(|k| GoJwk {
                use_: k.use_,
                kty: k.kty,
                kid: k.kid,
                crv: k.crv,
                x: k.x,
                y: k.y,
                n: k.n,
                e: k.e,
                x5c: k.x5c,
            })
            .collect(),
        spiffe_sequence: doc.spiffe_sequence,
        spiffe_refresh_hint: doc.spiffe_refresh_hint,
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    go.serialize(&mut ser)
        .map_err(|e| CliError(e.to_string()))?;
    let mut text = String::from_utf8(out).map_err(|e| CliError(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

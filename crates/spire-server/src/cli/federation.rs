//! `spire-server federation create|update|delete|list|show|refresh` (server.md §2.7).

use serde::Deserialize;
use spiffe_core::{SpiffeBundle, SpiffeId, TrustDomain};
use spire_common::convert::bundle_to_proto;
use spire_proto::spire::api::server::trustdomain::v1 as pb;
use spire_proto::spire::api::server::trustdomain::v1::trust_domain_client::TrustDomainClient;
use spire_proto::spire::api::types::federation_relationship::BundleEndpointProfile;
use spire_proto::spire::api::types::{
    self, Bundle, FederationRelationship, HttpsWebProfile, HttpsspiffeProfile, X509Certificate,
};

use super::entry::read_input;
use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

const PROFILE_WEB: &str = "https_web";
const PROFILE_SPIFFE: &str = "https_spiffe";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FederationCommand {
    /// Creates a dynamic federation relationship with a foreign trust domain.
    Create(EditArgs),
    /// Updates a dynamic federation relationship with a foreign trust domain.
    Update(EditArgs),
    /// Deletes a dynamic federation relationship.
    Delete(IdArgs),
    /// List federation relationships.
    List(ListArgs),
    /// Show a federation relationship.
    Show(ShowArgs),
    /// Refreshes the bundle from the specified federated trust domain.
    Refresh(IdArgs),
}

impl FederationCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            FederationCommand::Create(args) => edit(args, false).await,
            FederationCommand::Update(args) => edit(args, true).await,
            FederationCommand::Delete(args) => delete(args).await,
            FederationCommand::List(args) => list(args).await,
            FederationCommand::Show(args) => show(args).await,
            FederationCommand::Refresh(args) => refresh(args).await,
        }
    }
}

/// The relationship flags of `create` and `update`.
#[derive(Debug, clap::Args)]
pub(crate) struct EditArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Path to a file containing federation relationships in JSON format (optional). If
    /// set to '-', read the JSON from stdin.
    #[arg(long = "data", default_value = "")]
    data: String,
    /// Name of the trust domain to federate with (e.g., example.org).
    #[arg(long = "trustDomain", default_value = "")]
    trust_domain: String,
    /// URL of the SPIFFE bundle endpoint that provides the trust bundle (must use the
    /// HTTPS protocol).
    #[arg(long = "bundleEndpointURL", default_value = "")]
    bundle_endpoint_url: String,
    /// Endpoint profile type (either "https_web" or "https_spiffe").
    #[arg(long = "bundleEndpointProfile", default_value = "")]
    bundle_endpoint_profile: String,
    /// SPIFFE ID of the SPIFFE bundle endpoint server. Only used for 'spiffe' profile.
    #[arg(long = "endpointSpiffeID", default_value = "")]
    endpoint_spiffe_id: String,
    /// Path to the trust domain bundle data (optional).
    #[arg(long = "trustDomainBundlePath", default_value = "")]
    trust_domain_bundle_path: String,
    /// The format of the bundle data (optional). Either "pem" or "spiffe".
    #[arg(long = "trustDomainBundleFormat", default_value = "pem")]
    trust_domain_bundle_format: String,
}

/// `delete` and `refresh`: `-id`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// SPIFFE ID of the trust domain.
    #[arg(long = "id", default_value = "")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The trust domain name of the federation relationship to show.
    #[arg(long = "trustDomain", default_value = "")]
    trust_domain: String,
}

/// One relationship of a `-data` document (or of the flags).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelationshipConfig {
    #[serde(default)]
    trust_domain: String,
    #[serde(default, rename = "bundleEndpointURL")]
    bundle_endpoint_url: String,
    #[serde(default)]
    bundle_endpoint_profile: String,
    #[serde(default, rename = "endpointSPIFFEID")]
    endpoint_spiffe_id: String,
    #[serde(default)]
    trust_domain_bundle: Option<serde_json::Value>,
    #[serde(default)]
    trust_domain_bundle_format: String,
    #[serde(skip)]
    trust_domain_bundle_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataDocument {
    #[serde(default)]
    federation_relationships: Vec<RelationshipConfig>,
}

/// SPIRE's `util.ParseBundle`: a PEM or SPIFFE bundle for `td`.
fn parse_bundle(data: &[u8], format: &str, td: &str) -> Result<Bundle, CliError> {
    let trust_domain =
        TrustDomain::parse(td).map_err(|e| CliError(format!("invalid trust domain: {e}")))?;
    match format {
        "pem" => {
            let blocks = pem::parse_many(data)
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
            Ok(Bundle {
                trust_domain: trust_domain.name().to_owned(),
                x509_authorities: certs,
                ..Default::default()
            })
        }
        "spiffe" => {
            let parsed = SpiffeBundle::parse(trust_domain, data)
                .map_err(|e| CliError(format!("unable to parse bundle data: {e}")))?;
            Ok(bundle_to_proto(&parsed))
        }
        other => Err(CliError(format!("bundle format {other:?} is unsupported"))),
    }
}

fn to_proto(fr: &RelationshipConfig) -> Result<FederationRelationship, CliError> {
    if fr.trust_domain.is_empty() {
        return Err(CliError("trust domain is required".into()));
    }
    if fr.bundle_endpoint_url.is_empty() {
        return Err(CliError("bundle endpoint URL is required".into()));
    }
    let mut bundle_td = fr.trust_domain.clone();
    let profile = match fr.bundle_endpoint_profile.as_str() {
        PROFILE_WEB => BundleEndpointProfile::HttpsWeb(HttpsWebProfile {}),
        PROFILE_SPIFFE => {
            if fr.endpoint_spiffe_id.is_empty() {
                return Err(CliError(
                    "endpoint SPIFFE ID is required if 'https_spiffe' endpoint profile is set"
                        .into(),
                ));
            }
            let id = SpiffeId::parse(&fr.endpoint_spiffe_id)
                .map_err(|e| CliError(format!("cannot parse bundle endpoint SPIFFE ID: {e}")))?;
            bundle_td = id.trust_domain_name().to_owned();
            BundleEndpointProfile::HttpsSpiffe(HttpsspiffeProfile {
                endpoint_spiffe_id: fr.endpoint_spiffe_id.clone(),
            })
        }
        other => {
            return Err(CliError(format!(
                "unknown bundle endpoint profile type: {other:?}"
            )));
        }
    };
    let format = if fr.trust_domain_bundle_format.is_empty() {
        "pem"
    } else {
        fr.trust_domain_bundle_format.as_str()
    };
    let trust_domain_bundle = if !fr.trust_domain_bundle_path.is_empty() {
        let data = std::fs::read(&fr.trust_domain_bundle_path)
            .map_err(|e| CliError(format!("cannot read bundle file: {e}")))?;
        Some(
            parse_bundle(&data, format, &bundle_td)
                .map_err(|e| CliError(format!("cannot parse bundle file: {}", e.0)))?,
        )
    } else if let Some(raw) = &fr.trust_domain_bundle {
        let data = match format {
            "pem" => match raw {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                _ => {
                    return Err(CliError(
                        "cannot parse bundle raw message: failed to unmarshal json: expected a string"
                            .into(),
                    ));
                }
            },
            "spiffe" => serde_json::to_vec(raw).map_err(|e| CliError(e.to_string()))?,
            other => {
                return Err(CliError(format!(
                    "cannot parse bundle raw message: bundle format {other:?} is unsupported"
                )));
            }
        };
        Some(
            parse_bundle(&data, format, &bundle_td)
                .map_err(|e| CliError(format!("cannot parse bundle raw message: {}", e.0)))?,
        )
    } else {
        None
    };
    Ok(FederationRelationship {
        trust_domain: fr.trust_domain.clone(),
        bundle_endpoint_url: fr.bundle_endpoint_url.clone(),
        bundle_endpoint_profile: Some(profile),
        trust_domain_bundle,
    })
}

fn relationships(args: &EditArgs) -> Result<Vec<FederationRelationship>, CliError> {
    if !args.data.is_empty() {
        let flags_empty = args.trust_domain.is_empty()
            && args.bundle_endpoint_url.is_empty()
            && args.bundle_endpoint_profile.is_empty()
            && args.endpoint_spiffe_id.is_empty()
            && args.trust_domain_bundle_path.is_empty()
            && args.trust_domain_bundle_format == "pem";
        if !flags_empty {
            return Err(CliError(
                "cannot use other flags to specify relationship fields when 'data' flag is set"
                    .into(),
            ));
        }
        let data = read_input(&args.data)?;
        let doc: DataDocument = serde_json::from_slice(&data)
            .map_err(|e| CliError(format!("failed to parse JSON: {e}")))?;
        return doc
            .federation_relationships
            .iter()
            .enumerate()
            .map(|(i, fr)| {
                to_proto(fr).map_err(|e| CliError(format!("could not parse item {i}: {}", e.0)))
            })
            .collect();
    }
    Ok(vec![to_proto(&RelationshipConfig {
        trust_domain: args.trust_domain.clone(),
        bundle_endpoint_url: args.bundle_endpoint_url.clone(),
        bundle_endpoint_profile: args.bundle_endpoint_profile.clone(),
        endpoint_spiffe_id: args.endpoint_spiffe_id.clone(),
        trust_domain_bundle: None,
        trust_domain_bundle_format: args.trust_domain_bundle_format.clone(),
        trust_domain_bundle_path: args.trust_domain_bundle_path.clone(),
    })?])
}

/// SPIRE's relationship block.
pub(crate) fn render_relationship(fr: &FederationRelationship) -> String {
    let mut out = format!(
        "Trust domain              : {}\nBundle endpoint URL       : {}\n",
        fr.trust_domain, fr.bundle_endpoint_url
    );
    match &fr.bundle_endpoint_profile {
        Some(BundleEndpointProfile::HttpsWeb(_)) => {
            out.push_str("Bundle endpoint profile   : https_web\n");
        }
        Some(BundleEndpointProfile::HttpsSpiffe(p)) => {
            out.push_str("Bundle endpoint profile   : https_spiffe\n");
            out.push_str(&format!(
                "Endpoint SPIFFE ID        : {}\n",
                p.endpoint_spiffe_id
            ));
        }
        None => {}
    }
    out
}

fn code_name(code: i32) -> String {
    format!("{:?}", tonic::Code::from_i32(code))
}

/// Prints the results of a batch create/update as SPIRE does.
fn print_batch(
    verb: &str,
    requested: &[FederationRelationship],
    results: Vec<(Option<types::Status>, Option<FederationRelationship>)>,
) -> Result<(), CliError> {
    let mut failed = Vec::new();
    for (i, (status, fr)) in results.into_iter().enumerate() {
        let status = status.unwrap_or_default();
        if status.code == 0 {
            println!();
            print!("{}", render_relationship(&fr.unwrap_or_default()));
        } else {
            failed.push((status, requested.get(i).cloned().unwrap_or_default()));
        }
    }
    let any_failed = !failed.is_empty();
    for (status, fr) in failed {
        println!();
        eprintln!(
            "Failed to {verb} the following federation relationship (code: {}, msg: {:?}):",
            code_name(status.code),
            status.message
        );
        eprint!("{}", render_relationship(&fr));
    }
    if any_failed {
        return Err(CliError(format!(
            "failed to {verb} one or more federation relationships"
        )));
    }
    Ok(())
}

async fn edit(args: EditArgs, update: bool) -> Result<(), CliError> {
    let output = args.output.format()?;
    let requested = relationships(&args)?;
    let mut client = TrustDomainClient::new(args.socket.channel()?);
    let request_failed = CliError::rpc("request failed");
    if update {
        let response = client
            .batch_update_federation_relationship(pb::BatchUpdateFederationRelationshipRequest {
                federation_relationships: requested.clone(),
                input_mask: None,
                output_mask: None,
            })
            .await
            .map_err(request_failed)?
            .into_inner();
        if output == OutputFormat::Json {
            return print_json(&response);
        }
        print_batch(
            "update",
            &requested,
            response
                .results
                .into_iter()
                .map(|r| (r.status, r.federation_relationship))
                .collect(),
        )
    } else {
        let response = client
            .batch_create_federation_relationship(pb::BatchCreateFederationRelationshipRequest {
                federation_relationships: requested.clone(),
                output_mask: None,
            })
            .await
            .map_err(request_failed)?
            .into_inner();
        if output == OutputFormat::Json {
            return print_json(&response);
        }
        print_batch(
            "create",
            &requested,
            response
                .results
                .into_iter()
                .map(|r| (r.status, r.federation_relationship))
                .collect(),
        )
    }
}

async fn delete(args: IdArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    if args.id.is_empty() {
        return Err(CliError("id is required".into()));
    }
    let mut client = TrustDomainClient::new(args.socket.channel()?);
    let response = client
        .batch_delete_federation_relationship(pb::BatchDeleteFederationRelationshipRequest {
            trust_domains: vec![args.id.clone()],
        })
        .await
        .map_err(CliError::rpc("failed to delete federation relationship"))?
        .into_inner();
    if output == OutputFormat::Json {
        return print_json(&response);
    }
    let Some(result) = response.results.first() else {
        return Err(CliError("internal error: no result".into()));
    };
    let status = result.status.clone().unwrap_or_default();
    if status.code != 0 {
        return Err(CliError(format!(
            "failed to delete federation relationship {:?}: {}",
            result.trust_domain, status.message
        )));
    }
    println!("federation relationship deleted.");
    Ok(())
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let mut client = TrustDomainClient::new(args.socket.channel()?);
    let response = client
        .list_federation_relationships(pb::ListFederationRelationshipsRequest::default())
        .await
        .map_err(CliError::rpc("error listing federation relationship"))?
        .into_inner();
    if output == OutputFormat::Json {
        return print_json(&response);
    }
    let n = response.federation_relationships.len();
    println!(
        "Found {n} {}",
        if n == 1 {
            "federation relationship"
        } else {
            "federation relationships"
        }
    );
    for fr in &response.federation_relationships {
        println!();
        print!("{}", render_relationship(fr));
    }
    Ok(())
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    if args.trust_domain.is_empty() {
        return Err(CliError("a trust domain name is required".into()));
    }
    let mut client = TrustDomainClient::new(args.socket.channel()?);
    let fr = client
        .get_federation_relationship(pb::GetFederationRelationshipRequest {
            trust_domain: args.trust_domain.clone(),
            output_mask: None,
        })
        .await
        .map_err(CliError::rpc("error showing federation relationship"))?
        .into_inner();
    if output == OutputFormat::Json {
        return print_json(&fr);
    }
    println!(
        "Found a federation relationship with trust domain {}:\n",
        args.trust_domain
    );
    print!("{}", render_relationship(&fr));
    Ok(())
}

async fn refresh(args: IdArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    if args.id.is_empty() {
        return Err(CliError("id is required".into()));
    }
    let mut client = TrustDomainClient::new(args.socket.channel()?);
    match client
        .refresh_bundle(pb::RefreshBundleRequest {
            trust_domain: args.id.clone(),
        })
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::NotFound => {
            return Err(CliError(format!(
                "there is no federation relationship with trust domain {:?}",
                args.id
            )));
        }
        Err(e) => {
            return Err(CliError::rpc("failed to refresh bundle")(e));
        }
    }
    if output == OutputFormat::Json {
        return print_json(&types::Status {
            code: 0,
            message: "OK".into(),
        });
    }
    println!("Bundle refreshed");
    Ok(())
}

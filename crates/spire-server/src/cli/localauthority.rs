//! `spire-server localauthority x509|jwt show|prepare|activate|taint|revoke` and
//! `spire-server upstreamauthority taint|revoke` (server.md §2.9), with SPIRE's output.

use spire_proto::spire::api::server::localauthority::v1 as pb;
use spire_proto::spire::api::server::localauthority::v1::local_authority_client::LocalAuthorityClient;
use tonic::transport::Channel;

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

/// `localauthority` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LocalAuthorityCommand {
    /// Manages the local X.509 authorities.
    X509 {
        #[command(subcommand)]
        command: AuthorityCommand,
    },
    /// Manages the local JWT authorities.
    Jwt {
        #[command(subcommand)]
        command: AuthorityCommand,
    },
}

/// The operations on one kind of local authority.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuthorityCommand {
    /// Shows the local authorities.
    Show(CommonArgs),
    /// Prepares a new local authority for use by adding it to the bundle.
    Prepare(CommonArgs),
    /// Activates a prepared local authority.
    Activate(AuthorityIdArgs),
    /// Marks the previously active local authority as being tainted.
    Taint(AuthorityIdArgs),
    /// Revokes the previously active local authority by removing it from the bundle.
    Revoke(AuthorityIdArgs),
}

/// Flags of every command here.
#[derive(Debug, clap::Args)]
pub(crate) struct CommonArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Flags of the commands naming an authority.
#[derive(Debug, clap::Args)]
pub(crate) struct AuthorityIdArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The authority ID of the local authority.
    #[arg(long = "authorityID", default_value = "")]
    authority_id: String,
}

/// `upstreamauthority` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UpstreamAuthorityCommand {
    /// Marks the provided X.509 upstream authority as being tainted.
    Taint(SubjectKeyIdArgs),
    /// Revokes the previously active X.509 upstream authority by removing it from the
    /// bundle.
    Revoke(SubjectKeyIdArgs),
}

/// Flags of the upstream authority commands.
#[derive(Debug, clap::Args)]
pub(crate) struct SubjectKeyIdArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The X.509 Subject Key Identifier (SKID) of the upstream authority's CA
    /// certificate.
    #[arg(long = "subjectKeyID", default_value = "")]
    subject_key_id: String,
}

impl CommonArgs {
    /// A client and the requested output format (`-output json` prints the response's
    /// protojson, as SPIRE does).
    fn client_and_format(&self) -> Result<(LocalAuthorityClient<Channel>, OutputFormat), CliError> {
        let format = self.output.format()?;
        Ok((LocalAuthorityClient::new(self.socket.channel()?), format))
    }
}

/// Go's `time.Unix(secs, 0).UTC().String()`: `2006-01-02 15:04:05 +0000 UTC`.
fn go_time(secs: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
    );
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// SPIRE's `authoritycommon.PrettyPrintAuthorityState`.
fn print_state(state: &pb::AuthorityState, with_upstream: bool) {
    println!("  Authority ID: {}", state.authority_id);
    println!("  Expires at: {}", go_time(state.expires_at));
    if !with_upstream {
        return;
    }
    if state.upstream_authority_subject_key_id.is_empty() {
        println!("  Upstream authority ID: No upstream authority");
    } else {
        println!(
            "  Upstream authority Subject Key ID: {}",
            state.upstream_authority_subject_key_id
        );
    }
}

fn print_show(
    kind: &str,
    with_upstream: bool,
    active: Option<&pb::AuthorityState>,
    prepared: Option<&pb::AuthorityState>,
    old: Option<&pb::AuthorityState>,
) {
    for (i, (title, lower, state)) in [
        ("Active", "active", active),
        ("Prepared", "prepared", prepared),
        ("Old", "old", old),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            println!();
        }
        println!("{title} {kind} authority:");
        match state {
            Some(state) => print_state(state, with_upstream),
            None => println!("  No {lower} {kind} authority found"),
        }
    }
}

/// Prints `<Title> <kind> authority:` with the ID and expiry.
fn print_one(title: &str, kind: &str, state: Option<&pb::AuthorityState>) -> Result<(), CliError> {
    println!("{title} {kind} authority:");
    let Some(state) = state else {
        return Err(CliError(format!(
            "internal error: expected to have {} {kind} authority information",
            title.to_lowercase()
        )));
    };
    print_state(state, false);
    Ok(())
}

fn require_id(id: &str) -> Result<(), CliError> {
    if id.is_empty() {
        return Err(CliError("an authority ID is required".into()));
    }
    Ok(())
}

fn rpc(what: &str) -> impl Fn(tonic::Status) -> CliError + '_ {
    move |status| CliError(format!("could not {what}: {}", CliError::from(status).0))
}

impl LocalAuthorityCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            LocalAuthorityCommand::X509 { command } => command.run_x509().await,
            LocalAuthorityCommand::Jwt { command } => command.run_jwt().await,
        }
    }
}

/// The five commands of one authority kind (X.509 or JWT): the same flow over the
/// kind's own LocalAuthority RPCs and messages.
macro_rules! authority_commands {
    (
        $name:ident,
        $kind:literal,
        $upstream:literal,
        $get:ident: $get_req:ident,
        $prepare:ident: $prepare_req:ident,
        $activate:ident: $activate_req:ident,
        $taint:ident: $taint_req:ident,
        $revoke:ident: $revoke_req:ident $(,)?
    ) => {
        async fn $name(self) -> Result<(), CliError> {
            const KIND: &str = $kind;
            match self {
                AuthorityCommand::Show(args) => {
                    let (mut client, format) = args.client_and_format()?;
                    let r = client
                        .$get(pb::$get_req::default())
                        .await
                        .map_err(rpc(concat!("get ", $kind, " authorities")))?
                        .into_inner();
                    if format == OutputFormat::Json {
                        return print_json(&r);
                    }
                    print_show(
                        KIND,
                        $upstream,
                        r.active.as_ref(),
                        r.prepared.as_ref(),
                        r.old.as_ref(),
                    );
                    Ok(())
                }
                AuthorityCommand::Prepare(args) => {
                    let (mut client, format) = args.client_and_format()?;
                    let r = client
                        .$prepare(pb::$prepare_req::default())
                        .await
                        .map_err(rpc(concat!("prepare ", $kind, " authority")))?
                        .into_inner();
                    if format == OutputFormat::Json {
                        return print_json(&r);
                    }
                    print_one("Prepared", KIND, r.prepared_authority.as_ref())
                }
                AuthorityCommand::Activate(args) => {
                    require_id(&args.authority_id)?;
                    let (mut client, format) = args.common.client_and_format()?;
                    let r = client
                        .$activate(pb::$activate_req {
                            authority_id: args.authority_id,
                        })
                        .await
                        .map_err(rpc(concat!("activate ", $kind, " authority")))?
                        .into_inner();
                    if format == OutputFormat::Json {
                        return print_json(&r);
                    }
                    print_one("Activated", KIND, r.activated_authority.as_ref())
                }
                AuthorityCommand::Taint(args) => {
                    require_id(&args.authority_id)?;
                    let (mut client, format) = args.common.client_and_format()?;
                    let r = client
                        .$taint(pb::$taint_req {
                            authority_id: args.authority_id,
                        })
                        .await
                        .map_err(rpc(concat!("taint ", $kind, " authority")))?
                        .into_inner();
                    if format == OutputFormat::Json {
                        return print_json(&r);
                    }
                    print_one("Tainted", KIND, r.tainted_authority.as_ref())
                }
                AuthorityCommand::Revoke(args) => {
                    require_id(&args.authority_id)?;
                    let (mut client, format) = args.common.client_and_format()?;
                    let r = client
                        .$revoke(pb::$revoke_req {
                            authority_id: args.authority_id,
                        })
                        .await
                        .map_err(rpc(concat!("revoke ", $kind, " authority")))?
                        .into_inner();
                    if format == OutputFormat::Json {
                        return print_json(&r);
                    }
                    print_one("Revoked", KIND, r.revoked_authority.as_ref())
                }
            }
        }
    };
}

impl AuthorityCommand {
    authority_commands!(
        run_x509,
        "X.509",
        true,
        get_x509_authority_state: GetX509AuthorityStateRequest,
        prepare_x509_authority: PrepareX509AuthorityRequest,
        activate_x509_authority: ActivateX509AuthorityRequest,
        taint_x509_authority: TaintX509AuthorityRequest,
        revoke_x509_authority: RevokeX509AuthorityRequest,
    );

    authority_commands!(
        run_jwt,
        "JWT",
        false,
        get_jwt_authority_state: GetJwtAuthorityStateRequest,
        prepare_jwt_authority: PrepareJwtAuthorityRequest,
        activate_jwt_authority: ActivateJwtAuthorityRequest,
        taint_jwt_authority: TaintJwtAuthorityRequest,
        revoke_jwt_authority: RevokeJwtAuthorityRequest,
    );
}

impl UpstreamAuthorityCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        let (args, taint) = match self {
            UpstreamAuthorityCommand::Taint(args) => (args, true),
            UpstreamAuthorityCommand::Revoke(args) => (args, false),
        };
        let format = args.common.output.format()?;
        if args.subject_key_id.is_empty() {
            return Err(CliError(
                "the Subject Key ID of the X.509 upstream authority is required".into(),
            ));
        }
        let mut client = LocalAuthorityClient::new(args.common.socket.channel()?);
        let skid = if taint {
            let response = client
                .taint_x509_upstream_authority(pb::TaintX509UpstreamAuthorityRequest {
                    subject_key_id: args.subject_key_id,
                })
                .await
                .map_err(rpc("taint X.509 upstream authority"))?
                .into_inner();
            if format == OutputFormat::Json {
                return print_json(&response);
            }
            response.upstream_authority_subject_key_id
        } else {
            let response = client
                .revoke_x509_upstream_authority(pb::RevokeX509UpstreamAuthorityRequest {
                    subject_key_id: args.subject_key_id,
                })
                .await
                .map_err(rpc("revoke X.509 upstream authority"))?
                .into_inner();
            if format == OutputFormat::Json {
                return print_json(&response);
            }
            response.upstream_authority_subject_key_id
        };
        let title = if taint { "Tainted" } else { "Revoked" };
        println!("{title} X.509 upstream authority:");
        println!("  Subject Key ID: {skid}");
        Ok(())
    }
}

//! `spire-server agent list|show|ban|evict|count|purge` (server.md §2.5).

use spire_common::convert::{id_from_proto, id_to_proto};
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::agent::v1::{
    BanAgentRequest, CountAgentsRequest, DeleteAgentRequest, GetAgentRequest, ListAgentsRequest,
    ListAgentsResponse, count_agents_request, list_agents_request,
};
use spire_proto::spire::api::types::{Agent, SelectorMatch};

use super::entry::{format_expiry, match_mode, parse_id, parse_selectors};
use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};

/// The `ListAgents` page size SPIRE's CLI uses.
pub(crate) const PAGE_SIZE: i32 = 1000;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AgentCommand {
    /// Lists attested agents and their SPIFFE IDs.
    List(ListArgs),
    /// Shows the details of an attested agent given its SPIFFE ID.
    Show(IdArgs),
    /// Ban an attested agent given its SPIFFE ID.
    Ban(IdArgs),
    /// Evicts an attested agent given its SPIFFE ID.
    Evict(IdArgs),
    /// Count attested agents.
    Count(ListArgs),
    /// Purge expired agents that were attested using a non-TOFU security model based on a
    /// given time.
    Purge(PurgeArgs),
}

impl AgentCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            AgentCommand::List(args) => list(args).await,
            AgentCommand::Show(args) => show(args).await,
            AgentCommand::Ban(args) => ban(args).await,
            AgentCommand::Evict(args) => evict(args).await,
            AgentCommand::Count(args) => count(args).await,
            AgentCommand::Purge(args) => super::agent_purge::purge(args).await,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// A colon-delimited type:value selector. Can be used more than once.
    #[arg(long = "selector")]
    selectors: Vec<String>,
    /// The match mode used when filtering by selectors: exact, any, superset or subset.
    #[arg(long = "matchSelectorsOn", default_value = "superset")]
    match_selectors_on: String,
    /// Filter by attestation type, like join_token or x509pop.
    #[arg(long = "attestationType", default_value = "")]
    attestation_type: String,
    /// Filter based on string received, 'true': agents that can re-attest, 'false': agents
    /// that can't re-attest, other value will return all.
    #[arg(long = "canReattest", default_value = "")]
    can_reattest: String,
    /// Filter based on string received, 'true': banned agents, 'false': not banned agents,
    /// other value will return all.
    #[arg(long = "banned", default_value = "")]
    banned: String,
    /// Filter by expiration time (format: "2006-01-02 15:04:05 -0700 -07").
    #[arg(long = "expiresBefore", default_value = "")]
    expires_before: String,
}

/// `true`/`false` filter flags; anything else means "all".
fn tristate(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl ListArgs {
    fn filter(&self) -> Result<list_agents_request::Filter, CliError> {
        let mut filter = list_agents_request::Filter {
            by_attestation_type: self.attestation_type.clone(),
            by_banned: tristate(&self.banned),
            by_can_reattest: tristate(&self.can_reattest),
            by_expires_before: self.expires_before.clone(),
            ..Default::default()
        };
        if !self.selectors.is_empty() {
            filter.by_selector_match = Some(SelectorMatch {
                selectors: parse_selectors(&self.selectors)?,
                r#match: match_mode("matchSelectorsOn", &self.match_selectors_on)?,
            });
        }
        Ok(filter)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    /// Amount of time that has passed since the agent's SVID has expired. It is used to
    /// determine which agents to purge.
    #[arg(long = "expiredFor", default_value = "720h0m0s")]
    pub(crate) expired_for: String,
    /// Indicates that the command will not perform any action, but will print the agents
    /// that would be purged.
    #[arg(long = "dryRun")]
    pub(crate) dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The SPIFFE ID of the agent (SPIFFE ID of the agent).
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
}

impl IdArgs {
    fn id(&self) -> Result<spire_proto::spire::api::types::Spiffeid, CliError> {
        if self.spiffe_id.is_empty() {
            return Err(CliError("a SPIFFE ID is required".into()));
        }
        Ok(id_to_proto(&parse_id("spiffeID", &self.spiffe_id)?))
    }
}

/// `N attested agent` / `N attested agents`, as SPIRE's `util.Pluralizer`.
pub(crate) fn attested_agents(count: usize) -> String {
    let noun = if count == 1 { "agent" } else { "agents" };
    format!("{count} attested {noun}")
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let filter = args.filter()?;
    let mut client = AgentClient::new(args.socket.channel()?);
    let mut agents = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_agents(ListAgentsRequest {
                filter: Some(filter.clone()),
                output_mask: None,
                page_size: PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        agents.extend(page.agents);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if format == OutputFormat::Json {
        // SPIRE prints every page gathered into one ListAgentsResponse.
        return print_json(&ListAgentsResponse {
            agents,
            next_page_token: String::new(),
        });
    }
    if agents.is_empty() {
        println!("No attested agents found");
        return Ok(());
    }
    println!("Found {}:\n", attested_agents(agents.len()));
    for agent in &agents {
        print!("{}", format_agent(agent));
    }
    Ok(())
}

async fn show(args: IdArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let id = args.id()?;
    let mut client = AgentClient::new(args.socket.channel()?);
    let agent = client
        .get_agent(GetAgentRequest {
            id: Some(id),
            output_mask: None,
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&agent);
    }
    println!("Found an attested agent given its SPIFFE ID\n");
    print!("{}", format_agent(&agent));
    for s in &agent.selectors {
        println!("Selectors         : {}:{}", s.r#type, s.value);
    }
    Ok(())
}

async fn ban(args: IdArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let id = args.id()?;
    let mut client = AgentClient::new(args.socket.channel()?);
    client.ban_agent(BanAgentRequest { id: Some(id) }).await?;
    if format == OutputFormat::Json {
        // The response is a google.protobuf.Empty.
        println!("{{}}");
        return Ok(());
    }
    println!("Agent banned successfully");
    Ok(())
}

async fn evict(args: IdArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let id = args.id()?;
    let mut client = AgentClient::new(args.socket.channel()?);
    client
        .delete_agent(DeleteAgentRequest { id: Some(id) })
        .await?;
    if format == OutputFormat::Json {
        // The response is a google.protobuf.Empty.
        println!("{{}}");
        return Ok(());
    }
    println!("Agent evicted successfully");
    Ok(())
}

async fn count(args: ListArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let f = args.filter()?;
    let mut client = AgentClient::new(args.socket.channel()?);
    let count = client
        .count_agents(CountAgentsRequest {
            filter: Some(count_agents_request::Filter {
                by_attestation_type: f.by_attestation_type,
                by_selector_match: f.by_selector_match,
                by_banned: f.by_banned,
                by_can_reattest: f.by_can_reattest,
                by_expires_before: f.by_expires_before,
            }),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&count);
    }
    let count = count.count;
    println!("{}", attested_agents(usize::try_from(count).unwrap_or(0)));
    Ok(())
}

/// One agent as SPIRE prints it, with a trailing blank line.
fn format_agent(agent: &Agent) -> String {
    let id = agent
        .id
        .as_ref()
        .and_then(|id| id_from_proto(id).ok())
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut out = format!(
        "SPIFFE ID         : {id}\nAttestation type  : {}\nExpiration time   : {}\n",
        agent.attestation_type,
        format_expiry(agent.x509svid_expires_at)
    );
    if agent.banned {
        out.push_str("Banned            : true\n");
    } else {
        out.push_str(&format!(
            "Serial number     : {}\n",
            agent.x509svid_serial_number
        ));
    }
    out.push_str(&format!("Can re-attest     : {}\n", agent.can_reattest));
    if !agent.agent_version.is_empty() {
        out.push_str(&format!("Agent version     : {}\n", agent.agent_version));
    }
    out.push('\n');
    out
}

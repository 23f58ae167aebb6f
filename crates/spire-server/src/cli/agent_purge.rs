//! `spire-server agent purge`: evicts agents that re-attest (non-TOFU) and whose SVID
//! expired more than `-expiredFor` ago, through `ListAgents` and `DeleteAgent`, as SPIRE's
//! (server.md §2.5). `-dryRun` only lists them.

use std::time::{SystemTime, UNIX_EPOCH};

use spire_common::convert::id_from_proto;
use spire_proto::spire::api::server::agent::v1::agent_client::AgentClient;
use spire_proto::spire::api::server::agent::v1::{
    DeleteAgentRequest, ListAgentsRequest, list_agents_request,
};
use spire_proto::spire::api::types::AgentMask;

use super::agent::{PAGE_SIZE, PurgeArgs};
use super::{CliError, OutputFormat};

/// SPIRE's `-output json` document.
#[derive(Debug, serde::Serialize)]
struct ExpiredAgents {
    expired_agents: Vec<ExpiredAgent>,
}

/// One agent found expired and what happened to it.
#[derive(Debug, serde::Serialize)]
struct ExpiredAgent {
    agent_id: String,
    deleted: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// Runs `agent purge`.
pub(crate) async fn purge(args: PurgeArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let expired_for = spire_common::duration::parse_nanos(&args.expired_for).map_err(|e| {
        CliError(format!(
            "invalid value {:?} for flag -expiredFor: {e}",
            args.expired_for
        ))
    })?;
    let mut client = AgentClient::new(args.socket.channel()?);
    let mut agents = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_agents(ListAgentsRequest {
                filter: Some(list_agents_request::Filter {
                    by_can_reattest: Some(true),
                    ..Default::default()
                }),
                output_mask: Some(AgentMask {
                    x509svid_expires_at: true,
                    ..Default::default()
                }),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await
            .map_err(CliError::rpc("failed to list agents"))?
            .into_inner();
        agents.extend(page.agents);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    let now_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        .unwrap_or(0);
    let mut result = ExpiredAgents {
        expired_agents: Vec::new(),
    };
    for agent in agents {
        let proto_id = agent.id.unwrap_or_default();
        let id = id_from_proto(&proto_id)
            .map_err(|e| CliError(format!("invalid agent ID in the server's answer: {e}")))?;
        let since_expiry = now_nanos - i128::from(agent.x509svid_expires_at) * 1_000_000_000;
        if since_expiry <= i128::from(expired_for) {
            continue;
        }
        let mut expired = ExpiredAgent {
            agent_id: id.to_string(),
            deleted: false,
            error: String::new(),
        };
        if !args.dry_run {
            match client
                .delete_agent(DeleteAgentRequest { id: Some(proto_id) })
                .await
            {
                Ok(_) => expired.deleted = true,
                Err(status) => expired.error = CliError::from(status).0,
            }
        }
        result.expired_agents.push(expired);
    }

    if format == OutputFormat::Json {
        let json = serde_json::to_string(&result)
            .map_err(|e| CliError(format!("cannot render JSON output: {e}")))?;
        println!("{json}");
        return Ok(());
    }
    print!("{}", pretty(&result, args.dry_run));
    Ok(())
}

/// SPIRE's pretty output of a purge.
fn pretty(result: &ExpiredAgents, dry_run: bool) -> String {
    let agents = &result.expired_agents;
    if agents.is_empty() {
        return "No agents to purge.\n".to_owned();
    }
    let noun = if agents.len() == 1 { "agent" } else { "agents" };
    let mut out = format!("Found {} expired {noun}\n\n", agents.len());
    let line = |id: &str| format!("SPIFFE ID         : {id}\n");
    if dry_run {
        out.push_str("\nAgents that can be purged:\n");
        agents.iter().for_each(|a| out.push_str(&line(&a.agent_id)));
        return out;
    }
    let (purged, not_purged): (Vec<_>, Vec<_>) = agents.iter().partition(|a| a.deleted);
    if !purged.is_empty() {
        out.push_str("Agents purged:\n");
        purged.iter().for_each(|a| out.push_str(&line(&a.agent_id)));
    }
    if !not_purged.is_empty() {
        out.push_str("Agents not purged:\n");
        for a in not_purged {
            out.push_str(&line(&a.agent_id));
            out.push_str(&format!("Error             : {}\n", a.error));
        }
    }
    out
}

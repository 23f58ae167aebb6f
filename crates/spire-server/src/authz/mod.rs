//! Authorization of every server API call: SPIRE's policy table (`policy_data.json`,
//! server.md §3.3) as one data structure, and the reconciliation order of
//! `authorization_opa.go` (§3.2).

mod policy;

pub use policy::{Allow, POLICY, allow_for};

use spiffe_core::SpiffeId;

/// Why an agent's SVID does not authorize it, sent to the agent as
/// `PermissionDeniedDetails.reason` so it knows whether to re-attest or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentDenial {
    /// The SVID has expired (`AGENT_EXPIRED`).
    Expired,
    /// No attested node has this ID (`AGENT_NOT_ATTESTED`).
    NotAttested,
    /// The node's serial matches neither the current nor the new SVID (`AGENT_NOT_ACTIVE`).
    NotActive,
    /// The node is banned (`AGENT_BANNED`).
    Banned,
}

impl AgentDenial {
    /// The `spire.api.types.PermissionDeniedDetails.Reason` value.
    pub fn reason_code(self) -> i32 {
        match self {
            AgentDenial::Expired => 1,
            AgentDenial::NotAttested => 2,
            AgentDenial::NotActive => 3,
            AgentDenial::Banned => 4,
        }
    }

    /// The log and status message SPIRE uses.
    pub fn message(self) -> &'static str {
        match self {
            AgentDenial::Expired => "agent SVID is expired",
            AgentDenial::NotAttested => "agent is not attested",
            AgentDenial::NotActive => "agent is not active",
            AgentDenial::Banned => "agent is banned",
        }
    }
}

/// What the server knows about a caller before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A caller on the admin Unix socket.
    Local,
    /// A caller over TCP without a client certificate.
    Anonymous,
    /// A caller over TCP with a verified X509-SVID.
    Svid {
        /// The SVID's SPIFFE ID.
        id: SpiffeId,
        /// The leaf certificate's serial number, decimal.
        serial: String,
        /// Whether the SVID has expired (always false after a fresh handshake, but long
        /// connections outlive certificates).
        expired: bool,
    },
}

/// Facts about an SVID caller gathered from the datastore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerFacts {
    /// The caller's ID is listed in `admin_ids`.
    pub in_admin_ids: bool,
    /// A registration entry for the caller's ID has `admin = true`.
    pub admin_entry: bool,
    /// A registration entry for the caller's ID has `downstream = true`.
    pub downstream_entry: bool,
    /// The attested node of the caller's ID: its current and new SVID serials.
    pub node: Option<NodeSerials>,
}

/// The serials recorded for an attested node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSerials {
    /// Serial of the node's current SVID; empty when banned.
    pub serial: String,
    /// Serial of an SVID issued by RenewAgent and not yet used; may be empty.
    pub new_serial: String,
}

/// The class a call was authorized as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// Anyone may call the method.
    Any,
    /// The caller is on the admin socket.
    Local,
    /// The caller is an admin.
    Admin(SpiffeId),
    /// The caller is an attested agent. `promote` is set when it used the SVID from
    /// RenewAgent for the first time, whose serial must now become the current one.
    Agent {
        /// The agent's ID.
        id: SpiffeId,
        /// Whether the node's new serial should be promoted to current.
        promote: bool,
    },
    /// The caller is a downstream server.
    Downstream(SpiffeId),
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The method is not in the policy table, or no class allowed the caller.
    Method(String),
    /// The caller tried as an agent and its SVID was refused, for this reason.
    Agent(AgentDenial),
}

/// Decides a call in SPIRE's order (server.md §3.2): any, local, admin (`admin_ids`,
/// then admin entries), downstream entries, agent check; otherwise denied.
pub fn authorize(method: &str, caller: &Caller, facts: &CallerFacts) -> Result<Authorized, Denied> {
    let denied = || Denied::Method(method.to_owned());
    let allow = allow_for(method).ok_or_else(denied)?;
    if allow.any {
        return Ok(Authorized::Any);
    }
    let (id, serial, expired) = match caller {
        Caller::Local if allow.local => return Ok(Authorized::Local),
        Caller::Local | Caller::Anonymous => return Err(denied()),
        Caller::Svid {
            id,
            serial,
            expired,
        } => (id, serial, *expired),
    };
    if allow.admin && (facts.in_admin_ids || facts.admin_entry) {
        return Ok(Authorized::Admin(id.clone()));
    }
    if allow.downstream && facts.downstream_entry {
        return Ok(Authorized::Downstream(id.clone()));
    }
    if allow.agent {
        if expired {
            return Err(Denied::Agent(AgentDenial::Expired));
        }
        let node = facts
            .node
            .as_ref()
            .ok_or(Denied::Agent(AgentDenial::NotAttested))?;
        if node.serial.is_empty() {
            return Err(Denied::Agent(AgentDenial::Banned));
        }
        if node.serial == *serial {
            return Ok(Authorized::Agent {
                id: id.clone(),
                promote: false,
            });
        }
        if !node.new_serial.is_empty() && node.new_serial == *serial {
            return Ok(Authorized::Agent {
                id: id.clone(),
                promote: true,
            });
        }
        return Err(Denied::Agent(AgentDenial::NotActive));
    }
    Err(denied())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn svid(serial: &str) -> Caller {
        Caller::Svid {
            id: SpiffeId::parse("spiffe://example.org/spire/agent/join_token/t").unwrap(),
            serial: serial.into(),
            expired: false,
        }
    }

    fn node(serial: &str, new_serial: &str) -> CallerFacts {
        CallerFacts {
            node: Some(NodeSerials {
                serial: serial.into(),
                new_serial: new_serial.into(),
            }),
            ..Default::default()
        }
    }

    /// Every method of the table: the classes it names are allowed, the others refused.
    #[test]
    fn every_policy_row_allows_exactly_its_classes() {
        let admin = CallerFacts {
            in_admin_ids: true,
            ..Default::default()
        };
        let downstream = CallerFacts {
            downstream_entry: true,
            ..Default::default()
        };
        for (method, allow) in POLICY {
            let any_ok =
                |caller: &Caller, facts: &CallerFacts| authorize(method, caller, facts).is_ok();
            assert_eq!(
                any_ok(&Caller::Anonymous, &CallerFacts::default()),
                allow.any,
                "{method} anonymous"
            );
            assert_eq!(
                any_ok(&Caller::Local, &CallerFacts::default()),
                allow.any || allow.local,
                "{method} local"
            );
            assert_eq!(
                any_ok(&svid("1"), &admin),
                allow.any || allow.admin,
                "{method} admin"
            );
            assert_eq!(
                any_ok(&svid("1"), &downstream),
                allow.any || allow.downstream,
                "{method} downstream"
            );
            assert_eq!(
                any_ok(&svid("1"), &node("1", "")),
                allow.any || allow.agent,
                "{method} agent"
            );
        }
    }

    #[test]
    fn unknown_methods_are_denied_even_locally() {
        let denied = authorize("/x.Y/Z", &Caller::Local, &CallerFacts::default());
        assert_eq!(denied, Err(Denied::Method("/x.Y/Z".into())));
    }

    #[test]
    fn agent_checks_follow_spire_order() {
        let m = "/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries";
        let expired = Caller::Svid {
            id: SpiffeId::parse("spiffe://example.org/a").unwrap(),
            serial: "1".into(),
            expired: true,
        };
        assert_eq!(
            authorize(m, &expired, &node("1", "")),
            Err(Denied::Agent(AgentDenial::Expired))
        );
        assert_eq!(
            authorize(m, &svid("1"), &CallerFacts::default()),
            Err(Denied::Agent(AgentDenial::NotAttested))
        );
        assert_eq!(
            authorize(m, &svid("1"), &node("", "")),
            Err(Denied::Agent(AgentDenial::Banned))
        );
        assert_eq!(
            authorize(m, &svid("2"), &node("1", "")),
            Err(Denied::Agent(AgentDenial::NotActive))
        );
        assert!(matches!(
            authorize(m, &svid("2"), &node("1", "2")),
            Ok(Authorized::Agent { promote: true, .. })
        ));
        assert!(matches!(
            authorize(m, &svid("1"), &node("1", "2")),
            Ok(Authorized::Agent { promote: false, .. })
        ));
    }
}

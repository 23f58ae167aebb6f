//! SPIRE's authorization table (`pkg/server/authpolicy/policy_data.json`), one row per
//! full gRPC method. Methods missing from the table are denied.
//!
//! One deliberate difference: SPIRE leaves `Agent/PostStatus` out of its table (its
//! handler is unimplemented; its endpoint tests mark agent access as a TODO, #3908), so
//! every caller is refused. spire-rs implements PostStatus and lets agents call it.
//! `tests/authz_classes.rs` checks every row over the real endpoints.

/// Which caller classes may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    /// Anyone, authenticated or not.
    pub any: bool,
    /// Callers on the admin Unix socket.
    pub local: bool,
    /// Admins: IDs in `admin_ids` or with an admin entry.
    pub admin: bool,
    /// Attested agents presenting their current SVID.
    pub agent: bool,
    /// Downstream servers (IDs with a downstream entry).
    pub downstream: bool,
}

const ANY: Allow = Allow {
    any: true,
    local: false,
    admin: false,
    agent: false,
    downstream: false,
};
const LOCAL: Allow = Allow {
    local: true,
    ..NONE
};
const LOCAL_ADMIN: Allow = Allow {
    local: true,
    admin: true,
    ..NONE
};
const LOCAL_ADMIN_AGENT: Allow = Allow {
    local: true,
    admin: true,
    agent: true,
    ..NONE
};
const LOCAL_ADMIN_AGENT_DOWNSTREAM: Allow = Allow {
    local: true,
    admin: true,
    agent: true,
    downstream: true,
    ..NONE
};
const AGENT: Allow = Allow {
    agent: true,
    ..NONE
};
const DOWNSTREAM: Allow = Allow {
    downstream: true,
    ..NONE
};
const NONE: Allow = Allow {
    any: false,
    local: false,
    admin: false,
    agent: false,
    downstream: false,
};

macro_rules! rows {
    ($($service:literal => { $($method:literal : $allow:expr),* $(,)? })*) => {
        &[$($((concat!("/", $service, "/", $method), $allow),)*)*]
    };
}

/// The policy: `(full method, allowed classes)`.
pub const POLICY: &[(&str, Allow)] = rows! {
    "spire.api.server.agent.v1.Agent" => {
        "CountAgents": LOCAL_ADMIN, "ListAgents": LOCAL_ADMIN, "GetAgent": LOCAL_ADMIN,
        "DeleteAgent": LOCAL_ADMIN, "BanAgent": LOCAL_ADMIN, "CreateJoinToken": LOCAL_ADMIN,
        "AttestAgent": ANY, "RenewAgent": AGENT, "PostStatus": AGENT,
    }
    "spire.api.server.bundle.v1.Bundle" => {
        "GetBundle": ANY, "AppendBundle": LOCAL_ADMIN, "CountBundles": LOCAL_ADMIN,
        "ListFederatedBundles": LOCAL_ADMIN, "GetFederatedBundle": LOCAL_ADMIN_AGENT,
        "BatchCreateFederatedBundle": LOCAL_ADMIN, "BatchUpdateFederatedBundle": LOCAL_ADMIN,
        "BatchSetFederatedBundle": LOCAL_ADMIN, "BatchDeleteFederatedBundle": LOCAL_ADMIN,
        "PublishJWTAuthority": DOWNSTREAM, "PublishWITAuthority": DOWNSTREAM,
    }
    "spire.api.server.debug.v1.Debug" => { "GetInfo": LOCAL }
    "spire.api.server.entry.v1.Entry" => {
        "CountEntries": LOCAL_ADMIN, "ListEntries": LOCAL_ADMIN, "GetEntry": LOCAL_ADMIN,
        "BatchCreateEntry": LOCAL_ADMIN, "BatchUpdateEntry": LOCAL_ADMIN,
        "BatchDeleteEntry": LOCAL_ADMIN, "GetAuthorizedEntries": AGENT,
        "SyncAuthorizedEntries": AGENT,
    }
    "spire.api.server.logger.v1.Logger" => {
        "GetLogger": LOCAL, "SetLogLevel": LOCAL, "ResetLogLevel": LOCAL,
    }
    "spire.api.server.svid.v1.SVID" => {
        "MintX509SVID": LOCAL_ADMIN, "MintJWTSVID": LOCAL_ADMIN, "MintWITSVID": LOCAL_ADMIN,
        "BatchNewX509SVID": AGENT, "NewJWTSVID": AGENT, "BatchNewWITSVID": AGENT,
        "NewDownstreamX509CA": DOWNSTREAM,
    }
    "spire.api.server.trustdomain.v1.TrustDomain" => {
        "ListFederationRelationships": LOCAL_ADMIN, "GetFederationRelationship": LOCAL_ADMIN,
        "BatchCreateFederationRelationship": LOCAL_ADMIN,
        "BatchUpdateFederationRelationship": LOCAL_ADMIN,
        "BatchDeleteFederationRelationship": LOCAL_ADMIN, "RefreshBundle": LOCAL_ADMIN,
    }
    "spire.api.server.localauthority.v1.LocalAuthority" => {
        "GetJWTAuthorityState": LOCAL_ADMIN, "PrepareJWTAuthority": LOCAL_ADMIN,
        "ActivateJWTAuthority": LOCAL_ADMIN, "TaintJWTAuthority": LOCAL_ADMIN,
        "RevokeJWTAuthority": LOCAL_ADMIN, "GetX509AuthorityState": LOCAL_ADMIN,
        "PrepareX509Authority": LOCAL_ADMIN, "ActivateX509Authority": LOCAL_ADMIN,
        "TaintX509Authority": LOCAL_ADMIN, "TaintX509UpstreamAuthority": LOCAL_ADMIN,
        "RevokeX509Authority": LOCAL_ADMIN, "RevokeX509UpstreamAuthority": LOCAL_ADMIN,
        "GetWITAuthorityState": LOCAL_ADMIN, "PrepareWITAuthority": LOCAL_ADMIN,
        "ActivateWITAuthority": LOCAL_ADMIN, "TaintWITAuthority": LOCAL_ADMIN,
        "RevokeWITAuthority": LOCAL_ADMIN,
    }
    "grpc.health.v1.Health" => { "Check": LOCAL, "List": LOCAL, "Watch": LOCAL }
    "spirers.server.notify.v1.Notify" => { "WatchChanges": AGENT }
    "spirers.server.revocation.v1.Revocation" => {
        "RevokeX509SVID": LOCAL_ADMIN, "ListRevokedX509SVIDs": LOCAL_ADMIN,
        "GetX509CRLs": LOCAL_ADMIN_AGENT_DOWNSTREAM,
    }
};

/// The allowed classes of a full method (`/package.Service/Method`), if it is listed.
pub fn allow_for(method: &str) -> Option<Allow> {
    POLICY
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, allow)| *allow)
}

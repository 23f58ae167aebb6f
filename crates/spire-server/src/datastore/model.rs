//! Plain domain types the datastore reads and writes. They mirror SPIRE's
//! `spire.common` / `spire.api.types` messages field for field, but carry no protobuf
//! machinery; the API layer converts.
//!
//! SPIFFE IDs are plain strings (`spiffe://td/path`): validation is the API layer's job.
//! Trust domains are given and returned by name (`example.org`); the store also accepts
//! the trust domain ID form (`spiffe://example.org`) wherever a trust domain is taken.

/// A selector: `type:value`, e.g. `unix:uid:1000` has type `unix`, value `uid:1000`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    /// The selector type (the attestor name), e.g. `unix`, `k8s`, `spiffe_id`.
    pub r#type: String,
    /// The selector value, e.g. `uid:1000`.
    pub value: String,
}

impl Selector {
    /// Builds a selector from its type and value.
    pub fn new(r#type: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            r#type: r#type.into(),
            value: value.into(),
        }
    }
}

/// How a set of selectors (or trust domains) in a filter is matched against a record's
/// own set (`spire.api.types.SelectorMatch.MatchBehavior`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatchBehavior {
    /// The record's set equals the filter set (`MATCH_EXACT = 0`).
    #[default]
    Exact,
    /// The record's set is a subset of the filter set (`MATCH_SUBSET = 1`).
    Subset,
    /// The record's set contains every element of the filter set (`MATCH_SUPERSET = 2`).
    Superset,
    /// The record's set shares at least one element with the filter set (`MATCH_ANY = 3`).
    Any,
}

impl MatchBehavior {
    /// Maps the protobuf enum value; unknown values are `None`.
    pub fn from_proto(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Exact),
            1 => Some(Self::Subset),
            2 => Some(Self::Superset),
            3 => Some(Self::Any),
            _ => None,
        }
    }
}

/// A selector filter (`spire.api.types.SelectorMatch`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectorMatch {
    /// The selectors to match against.
    pub selectors: Vec<Selector>,
    /// How they are matched.
    pub r#match: MatchBehavior,
}

/// A federates-with filter (`spire.api.types.FederatesWithMatch`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FederatesWithMatch {
    /// Trust domain names (or IDs) to match against.
    pub trust_domains: Vec<String>,
    /// How they are matched.
    pub r#match: MatchBehavior,
}

/// A page request. The token is opaque to callers: it is the last internal row ID seen,
/// so pages stay consistent while rows are inserted or deleted concurrently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pagination {
    /// Maximum number of items in the page; must be positive.
    pub page_size: u32,
    /// Token from the previous page; empty for the first page.
    pub token: String,
}

impl Pagination {
    /// The first page of `page_size` items.
    pub fn first(page_size: u32) -> Self {
        Self {
            page_size,
            token: String::new(),
        }
    }
}

/// A registration entry (`spire.api.types.Entry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrationEntry {
    /// The entry ID (a UUIDv4 unless supplied by the caller).
    pub id: String,
    /// The SPIFFE ID of the identity the entry describes.
    pub spiffe_id: String,
    /// The SPIFFE ID of the agent (or alias) authorized to serve the entry.
    pub parent_id: String,
    /// The workload selectors.
    pub selectors: Vec<Selector>,
    /// X509-SVID TTL in seconds (0 = server default).
    pub x509_svid_ttl: i32,
    /// JWT-SVID TTL in seconds (0 = server default).
    pub jwt_svid_ttl: i32,
    /// Trust domain names the workload federates with.
    pub federates_with: Vec<String>,
    /// Whether the workload is a server API admin.
    pub admin: bool,
    /// Whether the workload is a downstream SPIRE server.
    pub downstream: bool,
    /// Expiry of the entry itself (unix seconds; 0 = never).
    pub expires_at: i64,
    /// DNS names put into X509-SVIDs.
    pub dns_names: Vec<String>,
    /// Bumped by every update.
    pub revision_number: i64,
    /// Whether SVIDs are stored through an SVIDStore plugin.
    pub store_svid: bool,
    /// Operator hint to tell SVIDs apart.
    pub hint: String,
    /// Creation time (unix seconds), set by the store.
    pub created_at: i64,
    /// `additional_attributes.disable_x509_svid_prefetch`.
    pub disable_x509_svid_prefetch: bool,
    /// `additional_attributes.jwt_svid_include_jti`.
    pub jwt_svid_include_jti: bool,
}

/// Which fields of a [`RegistrationEntry`] an update writes. `None` as a mask means all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one flag per RegistrationEntry field of the same name
pub struct EntryMask {
    pub spiffe_id: bool,
    pub parent_id: bool,
    pub selectors: bool,
    pub x509_svid_ttl: bool,
    pub jwt_svid_ttl: bool,
    pub federates_with: bool,
    pub admin: bool,
    pub downstream: bool,
    pub expires_at: bool,
    pub dns_names: bool,
    pub store_svid: bool,
    pub hint: bool,
    /// Covers both additional attributes.
    pub additional_attributes: bool,
}

impl EntryMask {
    /// Every field.
    pub const ALL: Self = Self {
        spiffe_id: true,
        parent_id: true,
        selectors: true,
        x509_svid_ttl: true,
        jwt_svid_ttl: true,
        federates_with: true,
        admin: true,
        downstream: true,
        expires_at: true,
        dns_names: true,
        store_svid: true,
        hint: true,
        additional_attributes: true,
    };
}

/// Filters and paging of `list_registration_entries` / `count_registration_entries`.
/// All given filters must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListEntriesRequest {
    /// Entries with exactly this SPIFFE ID.
    pub by_spiffe_id: Option<String>,
    /// Entries with exactly this parent ID.
    pub by_parent_id: Option<String>,
    /// Entries whose selectors match.
    pub by_selectors: Option<SelectorMatch>,
    /// Entries whose federated trust domains match.
    pub by_federates_with: Option<FederatesWithMatch>,
    /// Entries with exactly this hint.
    pub by_hint: Option<String>,
    /// Entries with this downstream flag.
    pub by_downstream: Option<bool>,
    /// Page to return (`None` = everything).
    pub pagination: Option<Pagination>,
}

/// A page of entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListEntriesResponse {
    /// The entries, in creation order.
    pub entries: Vec<RegistrationEntry>,
    /// Token for the next page: empty when the page was empty (or no pagination was asked).
    pub next_page_token: String,
}

/// An attested node (agent) (`spire.common.AttestedNode`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttestedNode {
    /// The agent's SPIFFE ID.
    pub spiffe_id: String,
    /// The node attestor that attested it (e.g. `join_token`, `x509pop`).
    pub attestation_data_type: String,
    /// Serial number (decimal) of the current agent SVID; empty when banned.
    pub cert_serial_number: String,
    /// Expiry of the current agent SVID (unix seconds).
    pub cert_not_after: i64,
    /// Serial number of a renewed SVID not yet used by the agent; empty if none.
    pub new_cert_serial_number: String,
    /// Expiry of that renewed SVID (unix seconds; 0 if none).
    pub new_cert_not_after: i64,
    /// Whether the agent re-attests instead of renewing.
    pub can_reattest: bool,
    /// Version reported by the agent (`PostStatus`).
    pub agent_version: String,
    /// Node selectors (filled where documented).
    pub selectors: Vec<Selector>,
}

impl AttestedNode {
    /// A banned node has an empty serial number.
    pub fn is_banned(&self) -> bool {
        self.cert_serial_number.is_empty()
    }
}

/// Which fields of an [`AttestedNode`] an update writes. `None` as a mask means all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one flag per AttestedNode field of the same name
pub struct AttestedNodeMask {
    pub attestation_data_type: bool,
    pub cert_serial_number: bool,
    pub cert_not_after: bool,
    pub new_cert_serial_number: bool,
    pub new_cert_not_after: bool,
    pub can_reattest: bool,
    pub agent_version: bool,
}

impl AttestedNodeMask {
    /// Every field.
    pub const ALL: Self = Self {
        attestation_data_type: true,
        cert_serial_number: true,
        cert_not_after: true,
        new_cert_serial_number: true,
        new_cert_not_after: true,
        can_reattest: true,
        agent_version: true,
    };
}

/// Filters and paging of `list_attested_nodes` / `count_attested_nodes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListAttestedNodesRequest {
    /// Nodes attested by this attestor.
    pub by_attestation_type: Option<String>,
    /// Banned (`true`) or not banned (`false`) nodes.
    pub by_banned: Option<bool>,
    /// Nodes with this can-reattest flag.
    pub by_can_reattest: Option<bool>,
    /// Nodes whose SVID expires before this time (unix seconds).
    pub by_expires_before: Option<i64>,
    /// Nodes whose SVID is still valid at this time (unix seconds).
    pub valid_at: Option<i64>,
    /// Nodes whose node selectors match.
    pub by_selector_match: Option<SelectorMatch>,
    /// Fill `selectors` of the returned nodes.
    pub fetch_selectors: bool,
    /// Page to return (`None` = everything).
    pub pagination: Option<Pagination>,
}

/// A page of attested nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListAttestedNodesResponse {
    /// The nodes, in attestation order.
    pub nodes: Vec<AttestedNode>,
    /// Token for the next page: empty when the page was empty (or no pagination was asked).
    pub next_page_token: String,
}

/// A join token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinToken {
    /// The secret token value. Never log it.
    pub token: String,
    /// Expiry (unix seconds).
    pub expiry: i64,
}

/// What `consume_join_token` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinTokenOutcome {
    /// The token existed, was unexpired, and has now been deleted: this caller (and only
    /// this caller) may attest with it.
    Consumed(JoinToken),
    /// The token existed but had expired; it has been deleted.
    Expired(JoinToken),
    /// No such token (never created, or already used by someone else).
    NotFound,
}

/// An X.509 authority of a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct X509Authority {
    /// The certificate, ASN.1 DER.
    pub asn1: Vec<u8>,
    /// Whether its key has been tainted (forced rotation).
    pub tainted: bool,
}

/// A JWT (or WIT) authority of a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtKey {
    /// PKIX (SubjectPublicKeyInfo) DER of the public key.
    pub public_key: Vec<u8>,
    /// The key ID (`kid`).
    pub key_id: String,
    /// Expiry (unix seconds; 0 = never).
    pub expires_at: i64,
    /// Whether the key has been tainted.
    pub tainted: bool,
}

/// A trust bundle (`spire.api.types.Bundle`). Stored in `bundles.data` as SPIRE's
/// `spire.common.Bundle` protobuf, keyed by the trust domain ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// Trust domain name (`example.org`).
    pub trust_domain: String,
    /// X.509 roots.
    pub x509_authorities: Vec<X509Authority>,
    /// JWT signing keys.
    pub jwt_authorities: Vec<JwtKey>,
    /// WIT signing keys.
    pub wit_authorities: Vec<JwtKey>,
    /// Refresh hint in seconds.
    pub refresh_hint: i64,
    /// Incremented whenever the content changes through append/prune/taint/revoke.
    pub sequence_number: u64,
}

/// Which fields of a [`Bundle`] an update writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one flag per Bundle field of the same name
pub struct BundleMask {
    pub x509_authorities: bool,
    pub jwt_authorities: bool,
    pub wit_authorities: bool,
    pub refresh_hint: bool,
    pub sequence_number: bool,
}

impl BundleMask {
    /// Every field.
    pub const ALL: Self = Self {
        x509_authorities: true,
        jwt_authorities: true,
        wit_authorities: true,
        refresh_hint: true,
        sequence_number: true,
    };
}

/// What deleting a bundle does to the entries that federate with it
/// (`BatchDeleteFederatedBundleRequest.Mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteMode {
    /// Refuse when any entry federates with it (`RESTRICT = 0`).
    #[default]
    Restrict,
    /// Delete those entries too (`DELETE = 1`).
    Delete,
    /// Remove the association from those entries (`DISSOCIATE = 2`).
    Dissociate,
}

/// A page of bundles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListBundlesResponse {
    /// The bundles.
    pub bundles: Vec<Bundle>,
    /// Token for the next page (empty when the page was empty).
    pub next_page_token: String,
}

/// How a federated trust domain's bundle endpoint authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleEndpointProfile {
    /// `https_web`: Web PKI.
    HttpsWeb,
    /// `https_spiffe`: SPIFFE authentication with the endpoint's SPIFFE ID.
    HttpsSpiffe {
        /// Expected SPIFFE ID of the bundle endpoint server.
        endpoint_spiffe_id: String,
    },
}

/// A federation relationship (`federated_trust_domains` row plus the stored bundle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationRelationship {
    /// Trust domain name.
    pub trust_domain: String,
    /// URL of its SPIFFE bundle endpoint.
    pub bundle_endpoint_url: String,
    /// Endpoint profile.
    pub bundle_endpoint_profile: BundleEndpointProfile,
    /// Its current bundle, if one is stored (on create/update: a bundle to store).
    pub trust_domain_bundle: Option<Bundle>,
}

/// Which fields of a [`FederationRelationship`] an update writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one flag per FederationRelationship field of the same name
pub struct FederationRelationshipMask {
    pub bundle_endpoint_url: bool,
    pub bundle_endpoint_profile: bool,
    pub trust_domain_bundle: bool,
}

/// A page of federation relationships.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListFederationRelationshipsResponse {
    /// The relationships.
    pub relationships: Vec<FederationRelationship>,
    /// Token for the next page (empty when the page was empty).
    pub next_page_token: String,
}

/// A CA journal row: the protobuf journal blob of one server's CA slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaJournal {
    /// Row ID; 0 for a journal not stored yet.
    pub id: i64,
    /// Protobuf `journal.Entries`.
    pub data: Vec<u8>,
    /// Hex SKID of the active X.509 authority.
    pub active_x509_authority_id: String,
    /// Key ID of the active JWT authority.
    pub active_jwt_authority_id: String,
}

/// A row of `registered_entries_events`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryEvent {
    /// Event ID (monotonic per database, may have gaps).
    pub event_id: i64,
    /// The entry that changed.
    pub entry_id: String,
    /// When (unix seconds).
    pub created_at: i64,
}

/// A row of `attested_node_entries_events`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeEvent {
    /// Event ID (monotonic per database, may have gaps).
    pub event_id: i64,
    /// The node that changed.
    pub spiffe_id: String,
    /// When (unix seconds).
    pub created_at: i64,
}

/// A committed change, announced on the store's change feed right after the commit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataStoreChange {
    /// A registration entry was created, updated or deleted.
    EntryChanged {
        /// The entry ID.
        id: String,
    },
    /// An attested node (or its selectors) was created, updated or deleted.
    NodeChanged {
        /// The agent SPIFFE ID.
        spiffe_id: String,
    },
    /// A bundle was created, changed or deleted.
    BundleChanged {
        /// The trust domain name.
        trust_domain: String,
    },
    /// A federation relationship was created, changed or deleted.
    FederationRelationshipChanged {
        /// The trust domain name.
        trust_domain: String,
    },
    /// The X.509-SVID revocation list changed (spire-rs extension).
    RevocationsChanged,
}

/// A revoked X.509-SVID (spire-rs extension, table `spirers_revoked_x509_svids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedX509Svid {
    /// The certificate serial number: lowercase hexadecimal without leading zeros.
    pub serial: String,
    /// When it was revoked (Unix seconds).
    pub revoked_at: i64,
    /// After this time (Unix seconds) no certificate with the serial is valid, so the
    /// revocation may be pruned.
    pub expires_at: i64,
}

/// Trust domain ID (`spiffe://td`) from a name or an ID.
pub(crate) fn td_id(td: &str) -> String {
    if td.starts_with("spiffe://") {
        td.trim_end_matches('/').to_string()
    } else {
        format!("spiffe://{td}")
    }
}

/// Trust domain name from a name or an ID.
pub(crate) fn td_name(td: &str) -> String {
    td.strip_prefix("spiffe://")
        .unwrap_or(td)
        .trim_end_matches('/')
        .to_string()
}

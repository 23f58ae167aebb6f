//! `spire.api.server.entry.v1.Entry`: registration entries (server.md §3.4).

use std::pin::Pin;
use std::sync::Arc;

use spiffe_core::{SpiffeId, TrustDomain};
use spire_common::convert::{id_from_proto, id_to_proto};
use spire_proto::spire::api::server::entry::v1 as pb;
use spire_proto::spire::api::server::entry::v1::entry_server::Entry as EntryApi;
use spire_proto::spire::api::types::{self, entry::AdditionalAttributes};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::authz_layer::authorized;
use super::entry_mask::{apply_entry_mask, with_updatable_entry_fields};
use super::{ApiContext, store_status};
use crate::authz::Authorized;
use crate::datastore::DataStoreError;
use crate::datastore::{
    EntryMask, FederatesWithMatch, ListEntriesRequest, MatchBehavior, Pagination,
    RegistrationEntry, Selector, SelectorMatch,
};

/// Most entries in one `ListEntries` page or one `SyncAuthorizedEntries` message.
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest hint accepted (characters).
const MAX_HINT_LEN: usize = 1024;

/// The Entry service.
#[derive(Clone)]
pub struct EntryService {
    ctx: Arc<ApiContext>,
}

impl EntryService {
    /// The service over the shared API context.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        EntryService { ctx }
    }
}

/// The API form of a stored entry.
pub fn entry_to_proto(entry: &RegistrationEntry) -> types::Entry {
    let id = |s: &str| SpiffeId::parse(s).ok().map(|id| id_to_proto(&id));
    types::Entry {
        id: entry.id.clone(),
        spiffe_id: id(&entry.spiffe_id),
        parent_id: id(&entry.parent_id),
        selectors: entry
            .selectors
            .iter()
            .map(|s| types::Selector {
                r#type: s.r#type.clone(),
                value: s.value.clone(),
            })
            .collect(),
        x509_svid_ttl: entry.x509_svid_ttl,
        federates_with: entry.federates_with.clone(),
        admin: entry.admin,
        downstream: entry.downstream,
        expires_at: entry.expires_at,
        dns_names: entry.dns_names.clone(),
        revision_number: entry.revision_number,
        store_svid: entry.store_svid,
        jwt_svid_ttl: entry.jwt_svid_ttl,
        hint: entry.hint.clone(),
        created_at: entry.created_at,
        additional_attributes: (entry.disable_x509_svid_prefetch || entry.jwt_svid_include_jti)
            .then_some(AdditionalAttributes {
                disable_x509_svid_prefetch: entry.disable_x509_svid_prefetch,
                jwt_svid_include_jti: entry.jwt_svid_include_jti,
            }),
    }
}

/// Validates an entry from the API and converts it (server.md §3.4 "Validation").
pub fn entry_from_proto(
    entry: &types::Entry,
    td: &TrustDomain,
) -> Result<RegistrationEntry, String> {
    let id = |name: &str, value: &Option<types::Spiffeid>| -> Result<SpiffeId, String> {
        let value = value
            .as_ref()
            .ok_or_else(|| format!("invalid {name}: request must specify SPIFFE ID"))?;
        id_from_proto(value).map_err(|e| format!("invalid {name}: {e}"))
    };
    let parent_id = id("parent ID", &entry.parent_id)?;
    let spiffe_id = id("spiffe ID", &entry.spiffe_id)?;
    if !parent_id.is_member_of(td) {
        return Err(format!(
            "invalid parent ID: \"{parent_id}\" is not a member of trust domain \"{td}\""
        ));
    }
    if !spiffe_id.is_member_of(td) {
        return Err(format!(
            "invalid spiffe ID: \"{spiffe_id}\" is not a member of trust domain \"{td}\""
        ));
    }
    if spiffe_id.is_root() {
        return Err(format!(
            "invalid spiffe ID: \"{spiffe_id}\" has no path: an entry's SPIFFE ID needs one"
        ));
    }
    if spiffe_id.path() == "/spire" || spiffe_id.path().starts_with("/spire/") {
        return Err(format!(
            "invalid spiffe ID: \"{spiffe_id}\" is in the reserved /spire/ namespace"
        ));
    }
    if entry.selectors.is_empty() {
        return Err("invalid selectors: at least one selector is required".into());
    }
    let mut selectors = Vec::with_capacity(entry.selectors.len());
    for s in &entry.selectors {
        spire_common::selector::Selector::new(s.r#type.clone(), s.value.clone())
            .map_err(|e| format!("invalid selector: {e}"))?;
        selectors.push(Selector::new(s.r#type.clone(), s.value.clone()));
    }
    for dns in &entry.dns_names {
        validate_dns_name(dns).map_err(|e| format!("invalid DNS name {dns:?}: {e}"))?;
    }
    let mut federates_with = Vec::with_capacity(entry.federates_with.len());
    for name in &entry.federates_with {
        let fed = TrustDomain::parse(name)
            .map_err(|e| format!("invalid federated trust domain {name:?}: {e}"))?;
        federates_with.push(fed.name().to_owned());
    }
    if entry.x509_svid_ttl < 0 || entry.jwt_svid_ttl < 0 {
        return Err("invalid TTL: TTLs cannot be negative".into());
    }
    if entry.hint.chars().count() > MAX_HINT_LEN {
        return Err(format!(
            "invalid hint: longer than {MAX_HINT_LEN} characters"
        ));
    }
    let attrs = entry.additional_attributes.unwrap_or_default();
    Ok(RegistrationEntry {
        id: entry.id.clone(),
        spiffe_id: spiffe_id.to_string(),
        parent_id: parent_id.to_string(),
        selectors,
        x509_svid_ttl: entry.x509_svid_ttl,
        jwt_svid_ttl: entry.jwt_svid_ttl,
        federates_with,
        admin: entry.admin,
        downstream: entry.downstream,
        expires_at: entry.expires_at,
        dns_names: entry.dns_names.clone(),
        revision_number: 0,
        store_svid: entry.store_svid,
        hint: entry.hint.clone(),
        created_at: 0,
        disable_x509_svid_prefetch: attrs.disable_x509_svid_prefetch,
        jwt_svid_include_jti: attrs.jwt_svid_include_jti,
    })
}

/// DNS names as SPIRE's x509util.ValidateLabel: labels of letters, digits and `-`, not
/// starting or ending with `-`, at most 63 characters; a `*` only as the whole first label.
pub(crate) fn validate_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters");
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err("labels must be 1 to 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels cannot start or end with a dash");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("labels may contain only letters, digits and dashes");
        }
    }
    Ok(())
}

fn match_behavior(value: i32) -> Result<MatchBehavior, Status> {
    MatchBehavior::from_proto(value)
        .ok_or_else(|| Status::invalid_argument(format!("unknown match behavior {value}")))
}

/// A datastore query from a ListEntries/CountEntries filter, refusing what SPIRE refuses
/// with its messages (`malformed <filter> filter: <reason>`).
fn list_request(
    td: &TrustDomain,
    filter: Option<pb::list_entries_request::Filter>,
) -> Result<ListEntriesRequest, Status> {
    let mut req = ListEntriesRequest::default();
    let Some(filter) = filter else {
        return Ok(req);
    };
    let malformed = |what: &str, reason: String| {
        Status::invalid_argument(format!("malformed {what} filter: {reason}"))
    };
    let member = |what: &str, v: &types::Spiffeid| {
        let id = id_from_proto(v).map_err(|e| malformed(what, e.to_string()))?;
        if !id.is_member_of(td) {
            return Err(malformed(
                what,
                format!("\"{id}\" is not a member of trust domain \"{td}\""),
            ));
        }
        Ok(id.to_string())
    };
    if let Some(v) = &filter.by_parent_id {
        req.by_parent_id = Some(member("parent ID", v)?);
    }
    if let Some(v) = &filter.by_spiffe_id {
        req.by_spiffe_id = Some(member("SPIFFE ID", v)?);
    }
    if let Some(m) = filter.by_selectors {
        let mut selectors = Vec::with_capacity(m.selectors.len());
        for s in m.selectors {
            let reason = if s.r#type.is_empty() {
                Some("missing selector type")
            } else if s.r#type.contains(':') {
                Some("selector type contains ':'")
            } else if s.value.is_empty() {
                Some("missing selector value")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(malformed("selectors", reason.into()));
            }
            selectors.push(Selector::new(s.r#type, s.value));
        }
        if selectors.is_empty() {
            return Err(malformed("selectors", "empty selector set".into()));
        }
        req.by_selectors = Some(SelectorMatch {
            selectors,
            r#match: match_behavior(m.r#match)?,
        });
    }
    if let Some(m) = filter.by_federates_with {
        for name in &m.trust_domains {
            TrustDomain::parse(name).map_err(|e| malformed("federates with", e.to_string()))?;
        }
        if m.trust_domains.is_empty() {
            return Err(malformed("federates with", "empty trust domain set".into()));
        }
        req.by_federates_with = Some(FederatesWithMatch {
            trust_domains: m.trust_domains,
            r#match: match_behavior(m.r#match)?,
        });
    }
    req.by_hint = filter.by_hint;
    req.by_downstream = filter.by_downstream;
    Ok(req)
}

type SyncStream =
    Pin<Box<dyn Stream<Item = Result<pb::SyncAuthorizedEntriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EntryApi for EntryService {
    type SyncAuthorizedEntriesStream = SyncStream;

    async fn count_entries(
        &self,
        request: Request<pb::CountEntriesRequest>,
    ) -> Result<Response<pb::CountEntriesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .map(|f| pb::list_entries_request::Filter {
                by_spiffe_id: f.by_spiffe_id,
                by_parent_id: f.by_parent_id,
                by_selectors: f.by_selectors,
                by_federates_with: f.by_federates_with,
                by_hint: f.by_hint,
                by_downstream: f.by_downstream,
            });
        let count = self
            .ctx
            .store
            .count_registration_entries(&list_request(&self.ctx.trust_domain, filter)?)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::CountEntriesResponse {
            count: i32::try_from(count).unwrap_or(i32::MAX),
        }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let request = request.into_inner();
        let mask = request.output_mask;
        let mut req = list_request(&self.ctx.trust_domain, request.filter)?;
        if request.page_size < 0 {
            return Err(Status::invalid_argument("page size must not be negative"));
        }
        if request.page_size > 0 || !request.page_token.is_empty() {
            req.pagination = Some(Pagination {
                page_size: if request.page_size > 0 {
                    request.page_size as u32
                } else {
                    MAX_PAGE_SIZE as u32
                },
                token: request.page_token,
            });
        }
        let page = self
            .ctx
            .store
            .list_registration_entries(&req)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListEntriesResponse {
            entries: page
                .entries
                .iter()
                .map(|e| apply_entry_mask(entry_to_proto(e), mask.as_ref()))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<types::Entry>, Status> {
        let pb::GetEntryRequest { id, output_mask } = request.into_inner();
        if id.is_empty() {
            return Err(Status::invalid_argument("missing ID"));
        }
        match self
            .ctx
            .store
            .fetch_registration_entry(&id)
            .await
            .map_err(store_status)?
        {
            Some(entry) => Ok(Response::new(apply_entry_mask(
                entry_to_proto(&entry),
                output_mask.as_ref(),
            ))),
            None => Err(Status::not_found("entry not found")),
        }
    }

    async fn batch_create_entry(
        &self,
        request: Request<pb::BatchCreateEntryRequest>,
    ) -> Result<Response<pb::BatchCreateEntryResponse>, Status> {
        let request = request.into_inner();
        let mask = request.output_mask;
        let masked = |e: &RegistrationEntry| apply_entry_mask(entry_to_proto(e), mask.as_ref());
        let mut results = Vec::new();
        for entry in request.entries {
            let result = match entry_from_proto(&entry, &self.ctx.trust_domain) {
                Err(message) => pb::batch_create_entry_response::Result {
                    status: Some(super::status::item(
                        tonic::Code::InvalidArgument,
                        format!("failed to convert entry: {message}"),
                    )),
                    entry: None,
                },
                Ok(entry) => match self.create_entry(&entry).await {
                    Ok(created) => pb::batch_create_entry_response::Result {
                        status: Some(super::status::ok()),
                        entry: Some(masked(&created)),
                    },
                    Err(DataStoreError::AlreadyExists { message, existing }) => {
                        pb::batch_create_entry_response::Result {
                            status: Some(super::status::item(tonic::Code::AlreadyExists, message)),
                            entry: existing.as_ref().map(|e| masked(e)),
                        }
                    }
                    Err(e) => pb::batch_create_entry_response::Result {
                        status: Some(super::status::item(
                            tonic::Code::from_i32(e.grpc_code()),
                            format!("failed to create entry: {e}"),
                        )),
                        entry: None,
                    },
                },
            };
            results.push(result);
        }
        Ok(Response::new(pb::BatchCreateEntryResponse { results }))
    }

    async fn batch_update_entry(
        &self,
        request: Request<pb::BatchUpdateEntryRequest>,
    ) -> Result<Response<pb::BatchUpdateEntryResponse>, Status> {
        let request = request.into_inner();
        let mut results = Vec::with_capacity(request.entries.len());
        for entry in &request.entries {
            let result = match self.update_entry(entry, request.input_mask.as_ref()).await {
                Ok(updated) => pb::batch_update_entry_response::Result {
                    status: Some(super::status::ok()),
                    entry: Some(apply_entry_mask(
                        entry_to_proto(&updated),
                        request.output_mask.as_ref(),
                    )),
                },
                Err(status) => pb::batch_update_entry_response::Result {
                    status: Some(status),
                    entry: None,
                },
            };
            results.push(result);
        }
        Ok(Response::new(pb::BatchUpdateEntryResponse { results }))
    }

    async fn batch_delete_entry(
        &self,
        request: Request<pb::BatchDeleteEntryRequest>,
    ) -> Result<Response<pb::BatchDeleteEntryResponse>, Status> {
        let mut results = Vec::new();
        for id in request.into_inner().ids {
            let status = if id.is_empty() {
                super::status::item(tonic::Code::InvalidArgument, "missing entry ID")
            } else {
                match self.ctx.store.delete_registration_entry(&id).await {
                    Ok(_) => super::status::ok(),
                    Err(DataStoreError::NotFound(_)) => {
                        super::status::item(tonic::Code::NotFound, "entry not found")
                    }
                    Err(e) => super::status::item(
                        tonic::Code::from_i32(e.grpc_code()),
                        format!("failed to delete entry: {e}"),
                    ),
                }
            };
            results.push(pb::batch_delete_entry_response::Result {
                status: Some(status),
                id,
            });
        }
        Ok(Response::new(pb::BatchDeleteEntryResponse { results }))
    }

    async fn get_authorized_entries(
        &self,
        request: Request<pb::GetAuthorizedEntriesRequest>,
    ) -> Result<Response<pb::GetAuthorizedEntriesResponse>, Status> {
        let agent = agent_id(&request)?;
        let mask = request.into_inner().output_mask;
        let entries = self.authorized_entries(&agent).await?;
        Ok(Response::new(pb::GetAuthorizedEntriesResponse {
            entries: entries
                .iter()
                .map(|e| apply_entry_mask(entry_to_proto(e), mask.as_ref()))
                .collect(),
        }))
    }

    async fn sync_authorized_entries(
        &self,
        request: Request<Streaming<pb::SyncAuthorizedEntriesRequest>>,
    ) -> Result<Response<Self::SyncAuthorizedEntriesStream>, Status> {
        let agent = agent_id(&request)?;
        let mut requests = request.into_inner();
        let first = requests
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("no request received"))?;
        if !first.ids.is_empty() {
            return Err(Status::invalid_argument(
                "specifying IDs on initial message is not supported",
            ));
        }
        if first.output_mask.is_some_and(|mask| !mask.revision_number) {
            return Err(Status::invalid_argument("revision number cannot be masked"));
        }
        let mask = first.output_mask;
        let entries: Vec<types::Entry> = self
            .authorized_entries(&agent)
            .await?
            .iter()
            .map(entry_to_proto)
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            if entries.len() <= MAX_PAGE_SIZE {
                let _ = tx
                    .send(Ok(pb::SyncAuthorizedEntriesResponse {
                        entries: entries
                            .into_iter()
                            .map(|e| apply_entry_mask(e, mask.as_ref()))
                            .collect(),
                        ..Default::default()
                    }))
                    .await;
                return;
            }
            // Sparse revisions first, then full entries for the IDs the agent asks for.
            let revisions: Vec<pb::EntryRevision> = entries
                .iter()
                .map(|e| pb::EntryRevision {
                    id: e.id.clone(),
                    revision_number: e.revision_number,
                    created_at: e.created_at,
                })
                .collect();
            let pages = revisions.chunks(MAX_PAGE_SIZE).count();
            for (i, page) in revisions.chunks(MAX_PAGE_SIZE).enumerate() {
                let message = pb::SyncAuthorizedEntriesResponse {
                    entry_revisions: page.to_vec(),
                    more: i + 1 < pages,
                    ..Default::default()
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            let by_id: std::collections::HashMap<&str, &types::Entry> =
                entries.iter().map(|e| (e.id.as_str(), e)).collect();
            while let Ok(Some(req)) = requests.message().await {
                let wanted: Vec<types::Entry> = req
                    .ids
                    .iter()
                    .filter_map(|id| {
                        by_id
                            .get(id.as_str())
                            .map(|e| apply_entry_mask((*e).clone(), mask.as_ref()))
                    })
                    .collect();
                let pages = wanted.chunks(MAX_PAGE_SIZE).count().max(1);
                let mut chunks = wanted.chunks(MAX_PAGE_SIZE);
                for i in 0..pages {
                    let message = pb::SyncAuthorizedEntriesResponse {
                        entries: chunks.next().map(<[_]>::to_vec).unwrap_or_default(),
                        more: i + 1 < pages,
                        ..Default::default()
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// The stored entry's API form with the fields selected by `mask` (all when `None`)
/// taken from `update`, so the result can be validated as a whole entry.
fn merge_masked(
    current: &types::Entry,
    update: &types::Entry,
    mask: Option<&types::EntryMask>,
) -> types::Entry {
    let mut merged = current.clone();
    macro_rules! take {
        ($($field:ident),*) => {
            $(if mask.is_none_or(|m| m.$field) {
                merged.$field = update.$field.clone();
            })*
        };
    }
    with_updatable_entry_fields!(take);
    merged
}

/// The datastore mask for an API input mask (`None` = every field).
fn store_mask(mask: Option<&types::EntryMask>) -> EntryMask {
    match mask {
        None => EntryMask::ALL,
        Some(m) => EntryMask {
            spiffe_id: m.spiffe_id,
            parent_id: m.parent_id,
            selectors: m.selectors,
            x509_svid_ttl: m.x509_svid_ttl,
            jwt_svid_ttl: m.jwt_svid_ttl,
            federates_with: m.federates_with,
            admin: m.admin,
            downstream: m.downstream,
            expires_at: m.expires_at,
            dns_names: m.dns_names,
            store_svid: m.store_svid,
            hint: m.hint,
            additional_attributes: m.additional_attributes,
        },
    }
}

impl EntryService {
    /// One item of `BatchUpdateEntry`: the fields in `mask` are validated as on create
    /// (merged over the stored entry) and written; the revision number goes up by one.
    async fn update_entry(
        &self,
        entry: &types::Entry,
        mask: Option<&types::EntryMask>,
    ) -> Result<RegistrationEntry, types::Status> {
        let invalid = |message: String| {
            super::status::item(
                tonic::Code::InvalidArgument,
                format!("failed to convert entry: {message}"),
            )
        };
        if entry.id.is_empty() {
            return Err(invalid("missing entry ID".into()));
        }
        let failed = |e: DataStoreError| {
            super::status::item(
                tonic::Code::from_i32(e.grpc_code()),
                format!("failed to update entry: {e}"),
            )
        };
        let current = match self.ctx.store.fetch_registration_entry(&entry.id).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                return Err(failed(DataStoreError::NotFound(format!(
                    "datastore-sql: entry {:?} not found",
                    entry.id
                ))));
            }
            Err(e) => return Err(failed(e)),
        };
        let merged = merge_masked(&entry_to_proto(&current), entry, mask);
        let converted = entry_from_proto(&merged, &self.ctx.trust_domain).map_err(invalid)?;
        let mask = store_mask(mask);
        if mask.federates_with {
            for td in &converted.federates_with {
                match self.ctx.store.fetch_bundle(td).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(failed(DataStoreError::InvalidArgument(format!(
                            "unable to find federated bundle \"{td}\""
                        ))));
                    }
                    Err(e) => return Err(failed(e)),
                }
            }
        }
        self.ctx
            .store
            .update_registration_entry(&converted, Some(&mask))
            .await
            .map_err(failed)
    }

    async fn create_entry(
        &self,
        entry: &RegistrationEntry,
    ) -> Result<RegistrationEntry, DataStoreError> {
        for td in &entry.federates_with {
            if self.ctx.store.fetch_bundle(td).await?.is_none() {
                return Err(DataStoreError::InvalidArgument(format!(
                    "unable to find federated bundle \"{td}\""
                )));
            }
        }
        self.ctx.store.create_registration_entry(entry).await
    }

    async fn authorized_entries(&self, agent: &SpiffeId) -> Result<Vec<RegistrationEntry>, Status> {
        let selectors = self
            .ctx
            .store
            .get_node_selectors(agent.as_str())
            .await
            .map_err(store_status)?;
        self.ctx
            .store
            .list_authorized_entries(agent.as_str(), &selectors)
            .await
            .map_err(store_status)
    }
}

/// The calling agent's ID; the authorization layer let only agents through.
pub(crate) fn agent_id<T>(request: &Request<T>) -> Result<SpiffeId, Status> {
    match authorized(request)? {
        Authorized::Agent { id, .. } => Ok(id.clone()),
        other => Err(Status::internal(format!(
            "expected an agent caller, authorized as {other:?}"
        ))),
    }
}

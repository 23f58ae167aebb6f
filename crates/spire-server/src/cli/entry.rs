//! `spire-server entry create|update|delete|show|count` (server.md §2.4).

use std::fmt::Write as _;

use spiffe_core::SpiffeId;
use spire_common::selector::Selector as CliSelector;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchDeleteEntryRequest, BatchUpdateEntryRequest, CountEntriesRequest,
    GetEntryRequest, ListEntriesRequest, ListEntriesResponse, count_entries_request,
    list_entries_request,
};
use spire_proto::spire::api::types::{
    Entry, FederatesWithMatch, Selector, SelectorMatch, entry::AdditionalAttributes, selector_match,
};

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};
use spire_common::convert::{id_from_proto, id_to_proto};

/// The `ListEntries` page size the CLI uses, as SPIRE's.
const PAGE_SIZE: i32 = 500;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EntryCommand {
    /// Creates registration entries.
    Create(CreateArgs),
    /// Updates registration entries.
    Update(UpdateArgs),
    /// Deletes registration entries.
    Delete(DeleteArgs),
    /// Displays configured registration entries.
    Show(ShowArgs),
    /// Counts registration entries.
    Count(CountArgs),
}

impl EntryCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            EntryCommand::Create(args) => create(args).await,
            EntryCommand::Update(args) => update(args).await,
            EntryCommand::Delete(args) => delete(args).await,
            EntryCommand::Show(args) => show(args).await,
            EntryCommand::Count(args) => count(args).await,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// If set, this entry will be applied to matching nodes rather than workloads.
    #[arg(long = "node")]
    node: bool,
    #[command(flatten)]
    fields: EntryFields,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    fields: EntryFields,
}

/// The entry flags `entry create` and `entry update` share.
#[derive(Debug, clap::Args)]
pub(crate) struct EntryFields {
    /// The registration entry ID (required by update; optional for create).
    #[arg(long = "entryID", default_value = "")]
    entry_id: String,
    /// The SPIFFE ID of this record's parent.
    #[arg(long = "parentID", default_value = "")]
    parent_id: String,
    /// The SPIFFE ID that this record represents.
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
    /// A colon-delimited type:value selector. Can be used more than once.
    #[arg(long = "selector")]
    selectors: Vec<String>,
    /// SPIFFE ID of a trust domain to federate with. Can be used more than once.
    #[arg(long = "federatesWith")]
    federates_with: Vec<String>,
    /// A DNS name included in SVIDs issued based on this entry. Can be used more than once.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// The lifetime, in seconds, for x509-SVIDs issued based on this entry.
    #[arg(long = "x509SVIDTTL", default_value_t = 0)]
    x509_svid_ttl: i32,
    /// The lifetime, in seconds, for JWT-SVIDs issued based on this entry.
    #[arg(long = "jwtSVIDTTL", default_value_t = 0)]
    jwt_svid_ttl: i32,
    /// If set, the SPIFFE ID in this entry will be granted access to the server APIs.
    #[arg(long = "admin")]
    admin: bool,
    /// If set, the entry describes a downstream SPIRE server.
    #[arg(long = "downstream")]
    downstream: bool,
    /// A boolean value that, when set, indicates that the entry's SVIDs are stored.
    #[arg(long = "storeSVID")]
    store_svid: bool,
    /// An expiry, from epoch in seconds, for the resulting registration entry.
    #[arg(long = "entryExpiry", default_value_t = 0)]
    entry_expiry: i64,
    /// The entry hint, used to disambiguate entries with the same SPIFFE ID.
    #[arg(long = "hint", default_value = "")]
    hint: String,
    /// If set, the X.509-SVID of this entry is not prefetched by agents.
    #[arg(long = "disableX509SVIDPrefetch")]
    disable_x509_svid_prefetch: bool,
    /// If set, JWT-SVIDs of this entry carry a jti claim.
    #[arg(long = "jwtSVIDIncludeJTI")]
    jwt_svid_include_jti: bool,
    /// Path to a file containing registration JSON; `-` reads stdin.
    #[arg(long = "data", default_value = "")]
    data: String,
}

pub(crate) fn parse_id(flag: &str, value: &str) -> Result<SpiffeId, CliError> {
    SpiffeId::parse(value).map_err(|e| CliError(format!("invalid {flag} {value:?}: {e}")))
}

pub(crate) fn parse_selectors(values: &[String]) -> Result<Vec<Selector>, CliError> {
    values
        .iter()
        .map(|s| {
            let selector = CliSelector::parse(s).map_err(|e| CliError(e.to_string()))?;
            Ok(Selector {
                r#type: selector.r#type,
                value: selector.value,
            })
        })
        .collect()
}

fn trust_domain_names(values: &[String]) -> Result<Vec<String>, CliError> {
    values
        .iter()
        .map(|v| {
            spiffe_core::TrustDomain::parse(v)
                .map(|td| td.name().to_owned())
                .map_err(|e| CliError(format!("invalid federatesWith {v:?}: {e}")))
        })
        .collect()
}

impl EntryFields {
    /// The entries to send: those of the `-data` document when given (the other flags
    /// are then ignored, as SPIRE's), else the one the flags describe.
    fn entries(&self, mode: EntryMode) -> Result<Vec<Entry>, CliError> {
        if self.data.is_empty() {
            return Ok(vec![self.entry(mode)?]);
        }
        super::entry_file::parse_entries(&read_input(&self.data)?)
    }

    /// Validates the flags as SPIRE's `entry create` / `entry update` do and builds the
    /// entry.
    fn entry(&self, mode: EntryMode) -> Result<Entry, CliError> {
        let node = mode == EntryMode::CreateNode;
        if mode == EntryMode::Update && self.entry_id.is_empty() {
            return Err(CliError("entry ID is required".into()));
        }
        if self.selectors.is_empty() {
            return Err(CliError("at least one selector is required".into()));
        }
        if node && !self.federates_with.is_empty() {
            return Err(CliError("node entries can not federate".into()));
        }
        if self.parent_id.is_empty() && mode == EntryMode::Update {
            return Err(CliError("a parent ID is required".into()));
        }
        if self.parent_id.is_empty() && !node {
            return Err(CliError(
                "a parent ID is required if the node flag is not set".into(),
            ));
        }
        if self.spiffe_id.is_empty() {
            return Err(CliError("a SPIFFE ID is required".into()));
        }
        if self.x509_svid_ttl < 0 {
            return Err(CliError("a positive x509-SVID TTL is required".into()));
        }
        if self.jwt_svid_ttl < 0 {
            return Err(CliError("a positive JWT-SVID TTL is required".into()));
        }
        let spiffe_id = parse_id("spiffeID", &self.spiffe_id)?;
        let parent_id = if node {
            SpiffeId::new(&spiffe_id.trust_domain(), "/spire/server")
                .map_err(|e| CliError(e.to_string()))?
        } else {
            parse_id("parentID", &self.parent_id)?
        };
        let additional = (self.disable_x509_svid_prefetch || self.jwt_svid_include_jti).then_some(
            AdditionalAttributes {
                disable_x509_svid_prefetch: self.disable_x509_svid_prefetch,
                jwt_svid_include_jti: self.jwt_svid_include_jti,
            },
        );
        Ok(Entry {
            id: self.entry_id.clone(),
            spiffe_id: Some(id_to_proto(&spiffe_id)),
            parent_id: Some(id_to_proto(&parent_id)),
            selectors: parse_selectors(&self.selectors)?,
            x509_svid_ttl: self.x509_svid_ttl,
            jwt_svid_ttl: self.jwt_svid_ttl,
            federates_with: trust_domain_names(&self.federates_with)?,
            admin: self.admin,
            downstream: self.downstream,
            expires_at: self.entry_expiry,
            dns_names: self.dns_names.clone(),
            store_svid: self.store_svid,
            hint: self.hint.clone(),
            additional_attributes: additional,
            ..Default::default()
        })
    }
}

/// What the entry flags are validated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryMode {
    /// `entry create` of a workload entry.
    Create,
    /// `entry create -node`: the parent is the server.
    CreateNode,
    /// `entry update`: the whole entry is replaced, so its ID is required.
    Update,
}

async fn create(args: CreateArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let mode = if args.node {
        EntryMode::CreateNode
    } else {
        EntryMode::Create
    };
    let entries = args.fields.entries(mode)?;
    let mut client = EntryClient::new(args.socket.channel()?);
    let mut response = client
        .batch_create_entry(BatchCreateEntryRequest {
            entries: entries.clone(),
            output_mask: None,
        })
        .await?
        .into_inner();
    // As SPIRE's CLI, a failed result shows the entry as it was sent.
    for (i, r) in response.results.iter_mut().enumerate() {
        if r.status.as_ref().is_some_and(|s| s.code != 0) {
            r.entry = entries.get(i).cloned();
        }
    }
    if output == OutputFormat::Json {
        // SPIRE prints the whole response, per-entry statuses included.
        return print_json(&response);
    }
    let results = response
        .results
        .into_iter()
        .map(|r| (r.status.unwrap_or_default(), r.entry))
        .collect();
    print_batch_results("create", &entries, results)
}

async fn update(args: UpdateArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let entries = args.fields.entries(EntryMode::Update)?;
    let mut client = EntryClient::new(args.socket.channel()?);
    let mut response = client
        .batch_update_entry(BatchUpdateEntryRequest {
            entries: entries.clone(),
            input_mask: None,
            output_mask: None,
        })
        .await?
        .into_inner();
    // As SPIRE's CLI, a failed result shows the entry as it was sent.
    for (i, r) in response.results.iter_mut().enumerate() {
        if r.status.as_ref().is_some_and(|s| s.code != 0) {
            r.entry = entries.get(i).cloned();
        }
    }
    if output == OutputFormat::Json {
        // SPIRE prints the whole response, per-entry statuses included.
        return print_json(&response);
    }
    let results = response
        .results
        .into_iter()
        .map(|r| (r.status.unwrap_or_default(), r.entry))
        .collect();
    print_batch_results("update", &entries, results)
}

/// Prints a batch create/update as SPIRE does: every entry that succeeded on stdout, then
/// every one that failed on stderr with its status, shown as it was sent (the API does
/// not return failed entries). Fails when any entry failed.
fn print_batch_results(
    verb: &str,
    sent: &[Entry],
    results: Vec<(spire_proto::spire::api::types::Status, Option<Entry>)>,
) -> Result<(), CliError> {
    let mut failed = Vec::new();
    for (i, (status, entry)) in results.into_iter().enumerate() {
        if status.code == 0 {
            print!("{}", format_entry(&entry.unwrap_or_default()));
        } else {
            failed.push((status, sent.get(i).cloned().unwrap_or_default()));
        }
    }
    for (status, entry) in &failed {
        eprintln!(
            "Failed to {verb} the following entry (code: {:?}, msg: {:?}):",
            tonic::Code::from_i32(status.code),
            status.message
        );
        eprint!("{}", format_entry(entry));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError(format!("failed to {verb} one or more entries")))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The Registration Entry ID of the record to delete.
    #[arg(long = "entryID", default_value = "")]
    entry_id: String,
    /// Path to a file containing a JSON structure for batch deletion (optional); `-` reads stdin.
    #[arg(long = "file", default_value = "")]
    file: String,
}

/// The `{"ids": [...]}` document of `entry delete -file`.
#[derive(Debug, serde::Deserialize)]
struct DeleteFile {
    #[serde(default)]
    ids: Vec<String>,
}

pub(crate) fn read_input(path: &str) -> Result<Vec<u8>, CliError> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError(format!("failed to read stdin: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| CliError(format!("failed to read file {path:?}: {e}")))
}

async fn delete(args: DeleteArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let ids = match (args.entry_id.is_empty(), args.file.is_empty()) {
        (true, true) => return Err(CliError("an entry ID or file is required".into())),
        (false, false) => {
            return Err(CliError(
                "the -entryID and -file flags are mutually exclusive".into(),
            ));
        }
        (false, true) => vec![args.entry_id.clone()],
        (true, false) => {
            let doc: DeleteFile = serde_json::from_slice(&read_input(&args.file)?)
                .map_err(|e| CliError(format!("failed to parse JSON: {e}")))?;
            doc.ids
        }
    };
    let mut client = EntryClient::new(args.socket.channel()?);
    let response = client
        .batch_delete_entry(BatchDeleteEntryRequest { ids })
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        // SPIRE prints the whole response, per-entry statuses included.
        return print_json(&response);
    }
    let mut failures = Vec::new();
    let mut deleted = 0usize;
    for result in &response.results {
        let status = result.status.clone().unwrap_or_default();
        if status.code == 0 {
            deleted += 1;
            println!("Deleted entry with ID: {}", result.id);
        } else {
            failures.push((result.id.clone(), status));
        }
    }
    if args.file.is_empty() {
        // One entry: its failure is the command's error, as SPIRE's.
        return match failures.first() {
            Some((_, status)) => Err(CliError(format!(
                "failed to delete entry: {}",
                status.message
            ))),
            None => Ok(()),
        };
    }
    for (id, status) in &failures {
        eprintln!(
            "Failed to delete entry with ID {id} (code: {:?}, msg: {:?})",
            tonic::Code::from_i32(status.code),
            status.message
        );
    }
    let noun = |n: usize| if n == 1 { "entry" } else { "entries" };
    if failures.is_empty() {
        println!("Deleted {deleted} {} successfully", noun(deleted));
        Ok(())
    } else {
        println!(
            "Deleted {deleted} {} successfully, but failed to delete {} {}",
            noun(deleted),
            failures.len(),
            noun(failures.len())
        );
        Err(CliError("failed to delete one or more entries".into()))
    }
}

async fn count(args: CountArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let mut client = EntryClient::new(args.socket.channel()?);
    let response = client
        .count_entries(CountEntriesRequest {
            filter: Some(count_filter(args.filter.filter()?)),
        })
        .await?
        .into_inner();
    if output == OutputFormat::Json {
        return print_json(&response);
    }
    let count = response.count;
    let noun = if count == 1 { "entry" } else { "entries" };
    println!("{count} registration {noun}");
    Ok(())
}

/// The same filter in `CountEntries` form.
fn count_filter(f: list_entries_request::Filter) -> count_entries_request::Filter {
    count_entries_request::Filter {
        by_spiffe_id: f.by_spiffe_id,
        by_parent_id: f.by_parent_id,
        by_selectors: f.by_selectors,
        by_federates_with: f.by_federates_with,
        by_hint: f.by_hint,
        by_downstream: f.by_downstream,
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The Entry ID of the records to show.
    #[arg(long = "entryID", default_value = "")]
    entry_id: String,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
}

/// The entry filters `entry show` and `entry count` share.
#[derive(Debug, clap::Args)]
pub(crate) struct FilterArgs {
    /// The Parent ID of the records to show.
    #[arg(long = "parentID", default_value = "")]
    parent_id: String,
    /// The SPIFFE ID of the records to show.
    #[arg(long = "spiffeID", default_value = "")]
    spiffe_id: String,
    /// A colon-delimited type:value selector. Can be used more than once.
    #[arg(long = "selector")]
    selectors: Vec<String>,
    /// The match mode used when filtering by selectors: exact, any, superset or subset.
    #[arg(long = "matchSelectorsOn", default_value = "superset")]
    match_selectors_on: String,
    /// SPIFFE ID of a trust domain an entry is federated with. Can be used more than once.
    #[arg(long = "federatesWith")]
    federates_with: Vec<String>,
    /// The match mode used when filtering by federates with.
    #[arg(long = "matchFederatesWithOn", default_value = "superset")]
    match_federates_with_on: String,
    /// The hint of the records to show.
    #[arg(long = "hint", default_value = "")]
    hint: String,
    /// Whether to show downstream entries only.
    #[arg(long = "downstream")]
    downstream: bool,
}

impl FilterArgs {
    /// The `ListEntries` filter; as SPIRE's CLI, `by_downstream` is always sent
    /// (server.md §2.4).
    fn filter(&self) -> Result<list_entries_request::Filter, CliError> {
        let mut filter = list_entries_request::Filter {
            by_downstream: Some(self.downstream),
            ..Default::default()
        };
        if !self.spiffe_id.is_empty() {
            filter.by_spiffe_id = Some(id_to_proto(&parse_id("spiffeID", &self.spiffe_id)?));
        }
        if !self.parent_id.is_empty() {
            filter.by_parent_id = Some(id_to_proto(&parse_id("parentID", &self.parent_id)?));
        }
        if !self.selectors.is_empty() {
            filter.by_selectors = Some(SelectorMatch {
                selectors: parse_selectors(&self.selectors)?,
                r#match: match_mode("matchSelectorsOn", &self.match_selectors_on)?,
            });
        }
        if !self.federates_with.is_empty() {
            filter.by_federates_with = Some(FederatesWithMatch {
                trust_domains: trust_domain_names(&self.federates_with)?,
                // FederatesWithMatch uses the same values as SelectorMatch.
                r#match: match_mode("matchFederatesWithOn", &self.match_federates_with_on)?,
            });
        }
        if !self.hint.is_empty() {
            filter.by_hint = Some(self.hint.clone());
        }
        Ok(filter)
    }
}

pub(crate) fn match_mode(flag: &str, value: &str) -> Result<i32, CliError> {
    Ok(match value {
        "exact" => selector_match::MatchBehavior::MatchExact as i32,
        "subset" => selector_match::MatchBehavior::MatchSubset as i32,
        "superset" => selector_match::MatchBehavior::MatchSuperset as i32,
        "any" => selector_match::MatchBehavior::MatchAny as i32,
        other => {
            return Err(CliError(format!(
                "unsupported match behavior {other:?} for -{flag}"
            )));
        }
    })
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    let output = args.output.format()?;
    let mut client = EntryClient::new(args.socket.channel()?);
    let mut entries = Vec::new();
    if !args.entry_id.is_empty() {
        let entry = client
            .get_entry(GetEntryRequest {
                id: args.entry_id.clone(),
                output_mask: None,
            })
            .await?
            .into_inner();
        entries.push(entry);
    } else {
        let filter = args.filter.filter()?;
        let mut page_token = String::new();
        loop {
            let page = client
                .list_entries(ListEntriesRequest {
                    filter: Some(filter.clone()),
                    output_mask: None,
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await?
                .into_inner();
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    entries.sort_by_key(sort_key);
    if output == OutputFormat::Json {
        // SPIRE prints a ListEntriesResponse, whether or not -entryID was given.
        return print_json(&ListEntriesResponse {
            entries,
            next_page_token: String::new(),
        });
    }
    let noun = if entries.len() == 1 {
        "entry"
    } else {
        "entries"
    };
    println!("Found {} {noun}", entries.len());
    for entry in &entries {
        print!("{}", format_entry(entry));
    }
    Ok(())
}

/// SPIRE's display order: SPIFFE ID, then parent ID, then TTLs and selectors.
fn sort_key(entry: &Entry) -> (String, String, String, String, i32, i32, Vec<String>) {
    let id = |p: &Option<spire_proto::spire::api::types::Spiffeid>| {
        p.as_ref()
            .map(|id| (id.trust_domain.clone(), id.path.clone()))
            .unwrap_or_default()
    };
    let (td, path) = id(&entry.spiffe_id);
    let (parent_td, parent_path) = id(&entry.parent_id);
    let selectors = entry
        .selectors
        .iter()
        .map(|s| format!("{}:{}", s.r#type, s.value))
        .collect();
    (
        td,
        path,
        parent_td,
        parent_path,
        entry.x509_svid_ttl,
        entry.jwt_svid_ttl,
        selectors,
    )
}

fn ttl(seconds: i32) -> String {
    if seconds == 0 {
        "default".into()
    } else {
        seconds.to_string()
    }
}

fn id_string(id: &Option<spire_proto::spire::api::types::Spiffeid>) -> String {
    id.as_ref()
        .and_then(|id| id_from_proto(id).ok())
        .map(|id| id.to_string())
        .unwrap_or_default()
}

/// One entry as SPIRE prints it: 24-character labels, optional lines only when set, and
/// a trailing blank line.
pub(crate) fn format_entry(entry: &Entry) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{label:<24}: {value}");
    };
    let id = if entry.id.is_empty() {
        "(none)"
    } else {
        &entry.id
    };
    line("Entry ID", &id);
    line("SPIFFE ID", &id_string(&entry.spiffe_id));
    line("Parent ID", &id_string(&entry.parent_id));
    line("Revision", &entry.revision_number);
    if entry.downstream {
        line("Downstream", &true);
    }
    line("X509-SVID TTL", &ttl(entry.x509_svid_ttl));
    line("JWT-SVID TTL", &ttl(entry.jwt_svid_ttl));
    if entry.expires_at != 0 {
        line("Expiration time", &format_expiry(entry.expires_at));
    }
    for s in &entry.selectors {
        line("Selector", &format!("{}:{}", s.r#type, s.value));
    }
    for td in &entry.federates_with {
        line("FederatesWith", td);
    }
    for dns in &entry.dns_names {
        line("DNS name", dns);
    }
    if entry.admin {
        line("Admin", &true);
    }
    if entry.store_svid {
        line("StoreSvid", &true);
    }
    if !entry.hint.is_empty() {
        line("Hint", &entry.hint);
    }
    if let Some(attrs) = &entry.additional_attributes {
        if attrs.disable_x509_svid_prefetch {
            line("DisableX509SvidPrefetch", &true);
        }
        if attrs.jwt_svid_include_jti {
            line("JwtSvidIncludeJti", &true);
        }
    }
    out.push('\n');
    out
}

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05 +0000 UTC`.
pub(crate) fn format_expiry(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

//! Envoy SDS v3 (`envoy.service.secret.v3.SecretDiscoveryService`) on the public socket,
//! as SPIRE implements it (`pkg/agent/endpoints/sdsv3/handler.go`).
//!
//! Callers are attested like Workload API callers (no security header). Each resource
//! is a `Secret` in PEM: a `TlsCertificate` per identity (by SPIFFE ID, or the first
//! identity under `default_svid_name`), a validation context per trust domain (by trust
//! domain ID, the own one also under `default_bundle_name`), and one holding every
//! trust domain under `default_all_bundles_name`. Validation contexts use Envoy's SPIFFE
//! certificate validator unless `disable_spiffe_cert_validation` (or the Envoy node
//! metadata key of that name, or an Envoy of 1.17 or older) asks for plain root CAs.
//!
//! `StreamSecrets` follows SPIRE's nonce/version state machine: the version counts the
//! workload's updates, each response carries a fresh random nonce, a request with the
//! last nonce and the same names is an ACK (no reply), a stale nonce is ignored, a NACK
//! is logged. Difference from SPIRE, on purpose: the cache wakes every stream on any
//! change, so a stream only counts (and pushes) an update when the caller's identities
//! or bundles actually changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    DataSource, Node, TypedExtensionConfig, data_source, node,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, SpiffeCertValidatorConfig, TlsCertificate, secret,
    spiffe_cert_validator_config,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use envoy_types::pb::google::protobuf::{Any, value};
use prost::{Message, Name};
use spiffe_core::SpiffeBundle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::workload_api::{ResponseStream, StreamState, attest_caller};
use crate::config::SdsConfig;
use crate::manager::{Cache, WorkloadUpdate};
use crate::workload::WorkloadAttestors;

/// The name of Envoy's SPIFFE certificate validator extension.
pub const SPIFFE_CERT_VALIDATOR_NAME: &str = "envoy.tls.cert_validator.spiffe";
/// The Envoy node metadata key that overrides `disable_spiffe_cert_validation`.
pub const DISABLE_SPIFFE_CERT_VALIDATION_KEY: &str = "disable_spiffe_cert_validation";

/// The SDS handler: serves the caller's identities and bundles from the [`Cache`].
#[derive(Debug, Clone)]
pub struct SdsHandler {
    cache: Arc<Cache>,
    attestors: Arc<WorkloadAttestors>,
    config: SdsConfig,
    shutdown: CancellationToken,
}

impl SdsHandler {
    /// A handler serving `cache` to callers attested by `attestors`, with the resource
    /// names and validator mode of `config` (the agent's `sds` block).
    pub fn new(cache: Arc<Cache>, attestors: Arc<WorkloadAttestors>, config: SdsConfig) -> Self {
        if config.default_bundle_name == config.default_all_bundles_name {
            tracing::warn!(
                name = %config.default_bundle_name,
                "The default bundle name and the default all bundles name are the same; the latter is ignored"
            );
        }
        SdsHandler {
            cache,
            attestors,
            config,
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends every open stream when `token` is cancelled (for graceful shutdown).
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }
}

/// What a `StreamSecrets` stream remembers between messages.
struct SdsStream {
    config: SdsConfig,
    state: StreamState,
    inbound: Streaming<DiscoveryRequest>,
    out: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    /// Counts the workload's updates; the `version_info` of the responses.
    version: u64,
    last_nonce: String,
    last_request: Option<DiscoveryRequest>,
    update: Option<WorkloadUpdate>,
    fingerprint: Option<Fingerprint>,
}

/// What makes two views of a workload the same for SDS: its identities and bundles.
type Fingerprint = (Vec<(String, String, Vec<u8>)>, Vec<String>);

fn fingerprint(update: &WorkloadUpdate) -> Fingerprint {
    let identities = update
        .identities
        .iter()
        .map(|i| {
            (
                i.entry.entry_id.clone(),
                i.entry.spiffe_id.to_string(),
                i.svid.chain_der(),
            )
        })
        .collect();
    let bundles = update
        .bundles
        .own
        .iter()
        .chain(update.bundles.federated.values())
        .map(|b| format!("{}\n{}", b.trust_domain(), b.x509_bundle().to_pem()))
        .collect();
    (identities, bundles)
}

impl SdsStream {
    /// Records the current view of the cache as an update; false when nothing changed.
    fn take_update(&mut self) -> bool {
        let Some(update) = self.state.view() else {
            return false;
        };
        let print = fingerprint(&update);
        if self.fingerprint.as_ref() == Some(&print) {
            return false;
        }
        self.fingerprint = Some(print);
        self.update = Some(update);
        self.version += 1;
        true
    }

    /// Handles one request; true when a response must be sent.
    fn on_request(&mut self, mut request: DiscoveryRequest) -> bool {
        let pid = self.state.caller.pid;
        tracing::debug!(
            pid,
            resource_names = ?request.resource_names,
            version_info = %request.version_info,
            nonce = %request.response_nonce,
            "Received StreamSecrets request"
        );
        if let Some(detail) = &request.error_detail {
            tracing::error!(
                pid,
                resource_names = ?request.resource_names,
                error = %detail.message,
                "Envoy reported errors applying secrets"
            );
        }
        if !self.last_nonce.is_empty() {
            if request.response_nonce != self.last_nonce {
                tracing::warn!(
                    pid,
                    nonce = %request.response_nonce,
                    expect = %self.last_nonce,
                    "Received unexpected nonce; ignoring request"
                );
                return false;
            }
            let current = self.version.to_string();
            if request.version_info.is_empty() || request.version_info != current {
                tracing::error!(
                    pid,
                    version_info = %request.version_info,
                    expect = %current,
                    "Client rejected expected version and rolled back"
                );
            }
        }
        if request.node.is_none() {
            request.node = self.last_request.as_ref().and_then(|r| r.node.clone());
        }
        let send = self
            .last_request
            .as_ref()
            .is_none_or(|last| names_changed(&last.resource_names, &request.resource_names));
        self.last_request = Some(request);
        send && self.update.is_some()
    }

    /// Sends the response for the last request; false when the stream must end.
    async fn respond(&mut self) -> bool {
        let (Some(request), Some(update)) = (&self.last_request, &self.update) else {
            return true;
        };
        let version = self.version.to_string();
        match build_response(&self.config, &version, request, update) {
            Ok(response) => {
                tracing::debug!(
                    pid = self.state.caller.pid,
                    version_info = %response.version_info,
                    nonce = %response.nonce,
                    count = response.resources.len(),
                    "Sending StreamSecrets response"
                );
                self.last_nonce.clone_from(&response.nonce);
                self.out.send(Ok(response)).await.is_ok()
            }
            Err(status) => {
                tracing::error!(pid = self.state.caller.pid, error = %status.message(), "Error building stream secrets response");
                let _ = self.out.send(Err(status)).await;
                false
            }
        }
    }

    async fn run(mut self) {
        self.take_update();
        loop {
            let send = tokio::select! {
                message = self.inbound.message() => match message {
                    Ok(Some(request)) => self.on_request(request),
                    Ok(None) => return,
                    Err(status) => {
                        if status.code() != tonic::Code::Cancelled {
                            tracing::error!(pid = self.state.caller.pid, error = %status.message(), "Received error from stream secrets server");
                        }
                        return;
                    }
                },
                changed = self.state.changed() => {
                    if !changed {
                        return;
                    }
                    self.take_update() && self.last_request.is_some()
                },
                () = self.out.closed() => return,
            };
            if send && !self.respond().await {
                return;
            }
        }
    }
}

/// Whether the requested names differ as sets (a length change counts).
fn names_changed(old: &[String], new: &[String]) -> bool {
    if old.len() != new.len() {
        return true;
    }
    let old: BTreeSet<&String> = old.iter().collect();
    new.iter().any(|name| !old.contains(name))
}

/// A fresh nonce: 4 random bytes as 8 hex characters.
fn next_nonce() -> Result<String, Status> {
    let mut bytes = [0u8; 4];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Status::internal("unable to generate a nonce"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Parses a bool as Go's `strconv.ParseBool` does.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether validation contexts use Envoy's SPIFFE certificate validator for this
/// request: not when disabled by config or by the node's metadata, nor for an Envoy of
/// 1.17 or older; a node without build version is assumed to support it.
fn use_spiffe_validator(config: &SdsConfig, node: Option<&Node>) -> bool {
    let mut disabled = config.disable_spiffe_cert_validation;
    if let Some(kind) = node
        .and_then(|n| n.metadata.as_ref())
        .and_then(|m| m.fields.get(DISABLE_SPIFFE_CERT_VALIDATION_KEY))
        .and_then(|v| v.kind.as_ref())
    {
        match kind {
            value::Kind::BoolValue(b) => disabled = *b,
            value::Kind::StringValue(s) => {
                if let Some(b) = parse_go_bool(s) {
                    disabled = b;
                }
            }
            _ => {}
        }
    }
    if disabled {
        return false;
    }
    match node
        .and_then(|n| n.user_agent_version_type.as_ref())
        .and_then(|v| match v {
            node::UserAgentVersionType::UserAgentBuildVersion(build) => build.version.as_ref(),
            node::UserAgentVersionType::UserAgentVersion(_) => None,
        }) {
        Some(v) => (v.major_number == 1 && v.minor_number > 17) || v.major_number > 1,
        None => true,
    }
}

fn inline_bytes(bytes: Vec<u8>) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes)),
        ..DataSource::default()
    })
}

fn to_any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

fn secret_any(name: &str, kind: secret::Type) -> Any {
    to_any(&Secret {
        name: name.to_owned(),
        r#type: Some(kind),
    })
}

/// A validation context named `name` for `bundles` (one trust domain, or all for the
/// all-bundles name).
fn validation_context(
    name: &str,
    bundles: &[&SpiffeBundle],
    spiffe_validator: bool,
) -> Result<Any, Status> {
    let context = if spiffe_validator {
        let mut trust_domains: Vec<_> = bundles
            .iter()
            .map(|b| spiffe_cert_validator_config::TrustDomain {
                name: b.trust_domain().name().to_owned(),
                trust_bundle: inline_bytes(b.x509_bundle().to_pem().into_bytes()),
                ..Default::default()
            })
            .collect();
        trust_domains.sort_by(|a, b| a.name.cmp(&b.name));
        let config = SpiffeCertValidatorConfig {
            trust_domains,
            ..Default::default()
        };
        CertificateValidationContext {
            custom_validator_config: Some(TypedExtensionConfig {
                name: SPIFFE_CERT_VALIDATOR_NAME.to_owned(),
                typed_config: Some(to_any(&config)),
            }),
            ..Default::default()
        }
    } else {
        let [bundle] = bundles else {
            return Err(Status::internal(
                "unable to use \"SPIFFE validator\" on Envoy below 1.17",
            ));
        };
        CertificateValidationContext {
            trusted_ca: inline_bytes(bundle.x509_bundle().to_pem().into_bytes()),
            ..Default::default()
        }
    };
    Ok(secret_any(name, secret::Type::ValidationContext(context)))
}

/// Builds the response to `request` from the caller's `update`; `version` empty means a
/// `FetchSecrets` response (no nonce). Names that match nothing fail the whole request
/// with `InvalidArgument`, as in SPIRE.
pub fn build_response(
    config: &SdsConfig,
    version: &str,
    request: &DiscoveryRequest,
    update: &WorkloadUpdate,
) -> Result<DiscoveryResponse, Status> {
    let mut response = DiscoveryResponse {
        version_info: version.to_owned(),
        type_url: request.type_url.clone(),
        ..DiscoveryResponse::default()
    };
    if !version.is_empty() {
        response.nonce = next_nonce()?;
    }
    let mut names: BTreeSet<&str> = request
        .resource_names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect();
    let all = names.is_empty();
    let spiffe_validator = use_spiffe_validator(config, request.node.as_ref());

    if let Some(own) = &update.bundles.own {
        let td_id = own.trust_domain().id_string();
        if all || names.contains(td_id.as_str()) {
            response
                .resources
                .push(validation_context(&td_id, &[own], spiffe_validator)?);
            names.remove(td_id.as_str());
        } else if names.contains(config.default_bundle_name.as_str()) {
            response.resources.push(validation_context(
                &config.default_bundle_name,
                &[own],
                spiffe_validator,
            )?);
            names.remove(config.default_bundle_name.as_str());
        } else if names.contains(config.default_all_bundles_name.as_str()) {
            let bundles: Vec<&SpiffeBundle> = std::iter::once(own.as_ref())
                .chain(update.bundles.federated.values().map(Arc::as_ref))
                .collect();
            response.resources.push(validation_context(
                &config.default_all_bundles_name,
                &bundles,
                spiffe_validator,
            )?);
            names.remove(config.default_all_bundles_name.as_str());
        }
    }

    for (td, bundle) in &update.bundles.federated {
        let td_id = td.id_string();
        if all || names.contains(td_id.as_str()) {
            response
                .resources
                .push(validation_context(&td_id, &[bundle], spiffe_validator)?);
            names.remove(td_id.as_str());
        }
    }

    for (i, identity) in update.identities.iter().enumerate() {
        let spiffe_id = identity.entry.spiffe_id.to_string();
        let name = if all || names.contains(spiffe_id.as_str()) {
            names.remove(spiffe_id.as_str());
            spiffe_id
        } else if i == 0 && names.contains(config.default_svid_name.as_str()) {
            names.remove(config.default_svid_name.as_str());
            config.default_svid_name.clone()
        } else {
            continue;
        };
        let certificate = TlsCertificate {
            certificate_chain: inline_bytes(identity.svid.chain_pem().into_bytes()),
            private_key: inline_bytes(identity.svid.key_pem().into_bytes()),
            ..Default::default()
        };
        response
            .resources
            .push(secret_any(&name, secret::Type::TlsCertificate(certificate)));
    }

    if !names.is_empty() {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        return Err(Status::invalid_argument(format!(
            "workload is not authorized for the requested identities [{}]",
            quoted.join(" ")
        )));
    }
    Ok(response)
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsHandler {
    type DeltaSecretsStream = ResponseStream<DeltaDiscoveryResponse>;
    type StreamSecretsStream = ResponseStream<DiscoveryResponse>;

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("Method is not implemented"))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let caller = attest_caller(&self.attestors, &request)
            .await
            .inspect_err(|status| {
                tracing::error!(error = %status.message(), "Failed to attest the workload");
            })?;
        let (out, responses) = mpsc::channel(4);
        let stream = SdsStream {
            config: self.config.clone(),
            state: StreamState::new(Arc::clone(&self.cache), caller, self.shutdown.clone()),
            inbound: request.into_inner(),
            out,
            version: 0,
            last_nonce: String::new(),
            last_request: None,
            update: None,
            fingerprint: None,
        };
        tokio::spawn(stream.run());
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let caller = attest_caller(&self.attestors, &request)
            .await
            .inspect_err(|status| {
                tracing::error!(error = %status.message(), "Failed to attest the workload");
            })?;
        let update = self.cache.workload_update(&caller.selectors);
        let response = build_response(&self.config, "", request.get_ref(), &update)
            .inspect_err(|status| {
                tracing::error!(pid = caller.pid, error = %status.message(), "Error building fetch secrets response");
            })?;
        tracing::debug!(
            pid = caller.pid,
            count = response.resources.len(),
            "Sending FetchSecrets response"
        );
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::BuildVersion;
    use envoy_types::pb::envoy::r#type::v3::SemanticVersion;
    use envoy_types::pb::google::protobuf::{Struct, Value};

    fn node(version: Option<(u32, u32)>, disable: Option<value::Kind>) -> Node {
        let mut node = Node::default();
        if let Some((major_number, minor_number)) = version {
            node.user_agent_version_type = Some(node::UserAgentVersionType::UserAgentBuildVersion(
                BuildVersion {
                    version: Some(SemanticVersion {
                        major_number,
                        minor_number,
                        patch: 0,
                    }),
                    metadata: None,
                },
            ));
        }
        if let Some(kind) = disable {
            let mut metadata = Struct::default();
            metadata.fields.insert(
                DISABLE_SPIFFE_CERT_VALIDATION_KEY.to_owned(),
                Value { kind: Some(kind) },
            );
            node.metadata = Some(metadata);
        }
        node
    }

    #[test]
    fn spiffe_validator_mode_follows_config_metadata_and_version() {
        let on = SdsConfig::default();
        let off = SdsConfig {
            disable_spiffe_cert_validation: true,
            ..SdsConfig::default()
        };
        assert!(use_spiffe_validator(&on, None));
        assert!(!use_spiffe_validator(&off, None));
        assert!(use_spiffe_validator(&on, Some(&node(Some((1, 18)), None))));
        assert!(!use_spiffe_validator(&on, Some(&node(Some((1, 17)), None))));
        assert!(use_spiffe_validator(&on, Some(&node(Some((2, 0)), None))));
        let t = value::Kind::StringValue("true".into());
        assert!(!use_spiffe_validator(&on, Some(&node(None, Some(t)))));
        let f = value::Kind::BoolValue(false);
        assert!(use_spiffe_validator(&off, Some(&node(None, Some(f)))));
        let junk = value::Kind::StringValue("maybe".into());
        assert!(!use_spiffe_validator(&off, Some(&node(None, Some(junk)))));
    }

    #[test]
    fn names_compare_as_sets() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(!names_changed(&a(&["x", "y"]), &a(&["y", "x"])));
        assert!(names_changed(&a(&["x"]), &a(&["x", "y"])));
        assert!(names_changed(&a(&["x"]), &a(&["y"])));
        assert!(!names_changed(&[], &[]));
    }

    #[test]
    fn nonces_are_8_hex_characters() {
        let nonce = next_nonce().unwrap_or_default();
        assert_eq!(nonce.len(), 8);
        assert!(nonce.chars().all(|c| c.is_ascii_hexdigit()));
    }
}

//! Envoy SDS v3 end to end over a real Unix socket: our cache and endpoint, the real
//! `unix` attestor attesting this test process, and envoy-types' generated
//! `SecretDiscoveryServiceClient` speaking the discovery protocol as Envoy does.

mod common;

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{DataSource, Node, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, SpiffeCertValidatorConfig, TlsCertificate, secret,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use envoy_types::pb::google::protobuf::{Struct, Value, value};
use envoy_types::pb::google::rpc;
use prost::{Message, Name};
use spiffe_core::{JwtBundle, SpiffeBundle, X509Bundle, X509Svid};
use spire_agent::config::SdsConfig;
use spire_agent::endpoints::WorkloadApiConfig;
use spire_agent::workload::{UnixAttestor, UnixAttestorConfig, WorkloadAttestors};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use common::*;

const SECRET_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

async fn sds_client(agent: &Agent) -> Result<SecretDiscoveryServiceClient<Channel>, BoxError> {
    Ok(SecretDiscoveryServiceClient::new(agent.channel().await?))
}

fn request(names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: SECRET_TYPE_URL.to_owned(),
        resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
        ..DiscoveryRequest::default()
    }
}

/// The ACK Envoy sends for `response`.
fn ack(names: &[&str], response: &DiscoveryResponse) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: response.version_info.clone(),
        response_nonce: response.nonce.clone(),
        ..request(names)
    }
}

/// A cache with `spiffe://example.org/web` (entry `a`) and `/db` (entry `b`) for this
/// process's uid, plus the federated bundle of `other.org` (federated with by `a`).
struct World {
    ca: Ca,
    other: Ca,
    cache: std::sync::Arc<spire_agent::manager::Cache>,
}

fn world() -> Result<World, BoxError> {
    let ca = Ca::new("example.org")?;
    let other = Ca::new("other.org")?;
    let cache = cache_for(&ca)?;
    cache.set_federated_bundles([other.bundle()?]);
    let mut web = entry(&ca, "a", "/web", vec![uid_selector()])?;
    web.federates_with = vec![other.td.clone()];
    add_entry(&cache, web, Some(ca.svid("/web")?))?;
    add_entry(
        &cache,
        entry(&ca, "b", "/db", vec![uid_selector()])?,
        Some(ca.svid("/db")?),
    )?;
    Ok(World { ca, other, cache })
}

fn unix_attestors() -> WorkloadAttestors {
    WorkloadAttestors::new(vec![std::sync::Arc::new(UnixAttestor::new(
        UnixAttestorConfig::default(),
    ))])
}

/// Opens a StreamSecrets stream; returns the request sender and the response stream.
async fn open_stream(
    agent: &Agent,
    first: DiscoveryRequest,
) -> Result<(mpsc::Sender<DiscoveryRequest>, Streaming<DiscoveryResponse>), BoxError> {
    let (tx, rx) = mpsc::channel(8);
    tx.send(first).await?;
    let mut client = sds_client(agent).await?;
    let responses = client
        .stream_secrets(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, responses))
}

fn secrets_of(response: &DiscoveryResponse) -> Result<Vec<Secret>, BoxError> {
    response
        .resources
        .iter()
        .map(|any| {
            if any.type_url != SECRET_TYPE_URL {
                return Err(format!("unexpected resource type {}", any.type_url).into());
            }
            Ok(Secret::decode(any.value.as_slice())?)
        })
        .collect()
}

fn inline(source: Option<&DataSource>) -> Result<Vec<u8>, BoxError> {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(data_source::Specifier::InlineBytes(bytes)) => Ok(bytes.clone()),
        other => Err(format!("expected inline bytes, got {other:?}").into()),
    }
}

fn tls_certificate(secret: &Secret) -> Result<&TlsCertificate, BoxError> {
    match &secret.r#type {
        Some(secret::Type::TlsCertificate(c)) => Ok(c),
        other => Err(format!("expected a TLS certificate, got {other:?}").into()),
    }
}

fn validation_context(secret: &Secret) -> Result<&CertificateValidationContext, BoxError> {
    match &secret.r#type {
        Some(secret::Type::ValidationContext(c)) => Ok(c),
        other => Err(format!("expected a validation context, got {other:?}").into()),
    }
}

/// Reads a TlsCertificate's PEM back into an SVID (checks chain and key together).
fn svid_of(secret: &Secret) -> Result<X509Svid, BoxError> {
    let cert = tls_certificate(secret)?;
    let chain = pem::parse_many(inline(cert.certificate_chain.as_ref())?)?;
    if chain.is_empty() || chain.iter().any(|p| p.tag() != "CERTIFICATE") {
        return Err("certificate chain is not PEM CERTIFICATE blocks".into());
    }
    let key = pem::parse(inline(cert.private_key.as_ref())?)?;
    if key.tag() != "PRIVATE KEY" {
        return Err(format!("private key is PEM {}", key.tag()).into());
    }
    let der: Vec<u8> = chain.iter().flat_map(|p| p.contents().to_vec()).collect();
    Ok(X509Svid::parse_der(&der, key.contents())?)
}

/// (trust domain name, CA DERs) pairs.
type Domains = Vec<(String, Vec<Vec<u8>>)>;

/// The trust domains of a SPIFFE validator config.
fn spiffe_validator_domains(context: &CertificateValidationContext) -> Result<Domains, BoxError> {
    if context.trusted_ca.is_some() {
        return Err("trusted_ca must be unset in SPIFFE validator mode".into());
    }
    let custom = context
        .custom_validator_config
        .as_ref()
        .ok_or("no custom validator config")?;
    assert_eq!(custom.name, "envoy.tls.cert_validator.spiffe");
    let typed = custom.typed_config.as_ref().ok_or("no typed config")?;
    assert_eq!(typed.type_url, SpiffeCertValidatorConfig::type_url());
    let config = SpiffeCertValidatorConfig::decode(typed.value.as_slice())?;
    config
        .trust_domains
        .iter()
        .map(|td| {
            let cas = pem::parse_many(inline(td.trust_bundle.as_ref())?)?
                .into_iter()
                .map(|p| p.into_contents())
                .collect();
            Ok((td.name.clone(), cas))
        })
        .collect()
}

fn roots(bundle: &SpiffeBundle) -> Vec<Vec<u8>> {
    bundle
        .x509_bundle()
        .authorities()
        .iter()
        .map(|a| a.to_vec())
        .collect()
}

#[tokio::test]
async fn default_is_the_first_identity_as_pem() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let (_tx, mut responses) = open_stream(&agent, request(&["default"])).await?;
    let response = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(response.type_url, SECRET_TYPE_URL);
    assert_eq!(response.version_info, "1");
    assert_eq!(response.nonce.len(), 8);
    let secrets = secrets_of(&response)?;
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].name, "default");
    let svid = svid_of(&secrets[0])?;
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/web");
    let cached = w
        .cache
        .entry("a")
        .and_then(|e| e.svid.clone())
        .ok_or("no svid")?;
    assert_eq!(svid.leaf(), cached.leaf());
    agent.shutdown().await
}

#[tokio::test]
async fn rootca_is_the_own_bundle_in_both_validator_modes() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let mut client = sds_client(&agent).await?;
    let own_roots = roots(&w.ca.bundle()?);

    // SPIFFE validator mode (the default).
    let response = client
        .fetch_secrets(request(&["ROOTCA"]))
        .await?
        .into_inner();
    let secrets = secrets_of(&response)?;
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].name, "ROOTCA");
    let domains = spiffe_validator_domains(validation_context(&secrets[0])?)?;
    assert_eq!(domains, vec![("example.org".to_owned(), own_roots.clone())]);

    // Root-CA mode, asked for by the Envoy node metadata.
    let mut metadata = Struct::default();
    metadata.fields.insert(
        "disable_spiffe_cert_validation".to_owned(),
        Value {
            kind: Some(value::Kind::BoolValue(true)),
        },
    );
    let mut req = request(&["ROOTCA"]);
    req.node = Some(Node {
        metadata: Some(metadata),
        ..Node::default()
    });
    let response = client.fetch_secrets(req).await?.into_inner();
    let secrets = secrets_of(&response)?;
    let context = validation_context(&secrets[0])?;
    assert!(context.custom_validator_config.is_none());
    let cas: Vec<Vec<u8>> = pem::parse_many(inline(context.trusted_ca.as_ref())?)?
        .into_iter()
        .map(|p| p.into_contents())
        .collect();
    assert_eq!(cas, own_roots);

    // And the own trust domain ID names the same bundle.
    let response = client
        .fetch_secrets(request(&["spiffe://example.org"]))
        .await?
        .into_inner();
    let secrets = secrets_of(&response)?;
    assert_eq!(secrets[0].name, "spiffe://example.org");
    agent.shutdown().await
}

#[tokio::test]
async fn all_holds_every_trust_domain_in_a_spiffe_validator() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let mut client = sds_client(&agent).await?;
    let response = client
        .fetch_secrets(request(&["ALL", "spiffe://example.org/db"]))
        .await?
        .into_inner();
    let secrets = secrets_of(&response)?;
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].name, "ALL");
    let domains = spiffe_validator_domains(validation_context(&secrets[0])?)?;
    assert_eq!(
        domains,
        vec![
            ("example.org".to_owned(), roots(&w.ca.bundle()?)),
            ("other.org".to_owned(), roots(&w.other.bundle()?)),
        ]
    );
    assert_eq!(secrets[1].name, "spiffe://example.org/db");
    assert_eq!(
        svid_of(&secrets[1])?.spiffe_id().to_string(),
        "spiffe://example.org/db"
    );

    // ALL needs the SPIFFE validator: an Envoy in root-CA mode cannot have it.
    let sds = SdsConfig {
        disable_spiffe_cert_validation: true,
        ..SdsConfig::default()
    };
    let root_ca =
        Agent::start_with_config(w.cache.clone(), unix_attestors(), |dir| WorkloadApiConfig {
            socket_path: dir.join("api.sock"),
            sds: Some(sds),
            ..WorkloadApiConfig::default()
        })
        .await?;
    let status = sds_client(&root_ca)
        .await?
        .fetch_secrets(request(&["ALL"]))
        .await
        .err()
        .ok_or("ALL in root-CA mode succeeded")?;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    root_ca.shutdown().await?;
    agent.shutdown().await
}

#[tokio::test]
async fn no_names_returns_every_bundle_and_identity() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let (_tx, mut responses) = open_stream(&agent, request(&[])).await?;
    let response = next_within(&mut responses, PUSH_DEADLINE).await??;
    let names: Vec<String> = secrets_of(&response)?.into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "spiffe://example.org",
            "spiffe://other.org",
            "spiffe://example.org/web",
            "spiffe://example.org/db",
        ]
    );
    agent.shutdown().await
}

#[tokio::test]
async fn unknown_names_fail_the_request_as_spire_does() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let mut client = sds_client(&agent).await?;
    let status = client
        .fetch_secrets(request(&["default", "spiffe://example.org/nope", "bogus"]))
        .await
        .err()
        .ok_or("unknown names were served")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        r#"workload is not authorized for the requested identities ["bogus" "spiffe://example.org/nope"]"#
    );

    // On a stream the error ends it.
    let (_tx, mut responses) = open_stream(&agent, request(&["nope"])).await?;
    let status = next_within(&mut responses, PUSH_DEADLINE)
        .await?
        .err()
        .ok_or("unknown name was served")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    agent.shutdown().await
}

#[tokio::test]
async fn rotation_pushes_a_new_version_and_acks_get_no_reply() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let names = ["default", "ROOTCA"];
    let (tx, mut responses) = open_stream(&agent, request(&names)).await?;
    let first = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(first.version_info, "1");
    // Bundles come first, then identities, as in SPIRE.
    let old = svid_of(&secrets_of(&first)?[1])?;

    // ACK (same names, names in another order too): nothing is sent.
    tx.send(ack(&names, &first)).await?;
    assert_quiet(&mut responses).await?;
    tx.send(ack(&["ROOTCA", "default"], &first)).await?;
    assert_quiet(&mut responses).await?;
    // A NACK with the same names is logged, and gets no reply either.
    let mut nack = ack(&names, &first);
    nack.error_detail = Some(rpc::Status {
        code: 3,
        message: "bad certificate".to_owned(),
        details: Vec::new(),
    });
    tx.send(nack).await?;
    assert_quiet(&mut responses).await?;

    // Rotation: the open stream gets the new certificate under a new version and nonce.
    w.cache.set_svid("a", w.ca.svid("/web")?)?;
    let second = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(second.version_info, "2");
    assert_ne!(second.nonce, first.nonce);
    let secrets2 = secrets_of(&second)?;
    assert_eq!(secrets2[0].name, "ROOTCA");
    assert_eq!(secrets2[1].name, "default");
    let new = svid_of(&secrets2[1])?;
    assert_eq!(new.spiffe_id().to_string(), "spiffe://example.org/web");
    assert_ne!(new.leaf(), old.leaf());
    tx.send(ack(&names, &second)).await?;
    assert_quiet(&mut responses).await?;

    // A stale nonce is ignored even with new names; the current nonce with new names
    // gets a response for them at the same version.
    let mut stale = ack(&["default"], &first);
    stale.version_info = second.version_info.clone();
    tx.send(stale).await?;
    assert_quiet(&mut responses).await?;
    tx.send(ack(&["spiffe://example.org/db"], &second)).await?;
    let third = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(third.version_info, "2");
    let names: Vec<String> = secrets_of(&third)?.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["spiffe://example.org/db"]);
    agent.shutdown().await
}

#[tokio::test]
async fn bundle_changes_push_new_versions_with_the_new_roots() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    // ROOTCA and ALL are alternatives in SPIRE (one validation context for the own
    // bundle per response), so Envoy asks for ALL and a federated trust domain.
    let names = ["ALL", "spiffe://other.org"];
    let (tx, mut responses) = open_stream(&agent, request(&names)).await?;
    let first = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(first.version_info, "1");
    tx.send(ack(&names, &first)).await?;
    assert_quiet(&mut responses).await?;

    // The own bundle gains a root (a new CA prepared on the server).
    let extra = Ca::new("example.org")?;
    let mut both = w.ca.root_der();
    both.extend_from_slice(&extra.root_der());
    let x509 = X509Bundle::parse_der(w.ca.td.clone(), &both)?;
    let own = SpiffeBundle::from_parts(x509, JwtBundle::new(w.ca.td.clone()))
        .ok_or("bundle parts disagree")?;
    w.cache.set_bundle(own.clone())?;
    let second = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(second.version_info, "2");
    assert_ne!(second.nonce, first.nonce);
    let secrets = secrets_of(&second)?;
    let got: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(got, ["ALL", "spiffe://other.org"]);
    assert_eq!(
        spiffe_validator_domains(validation_context(&secrets[0])?)?,
        vec![
            ("example.org".to_owned(), roots(&own)),
            ("other.org".to_owned(), roots(&w.other.bundle()?)),
        ]
    );
    assert_eq!(roots(&own).len(), 2);
    tx.send(ack(&names, &second)).await?;
    assert_quiet(&mut responses).await?;

    // The federated bundle rotates: ALL and the trust-domain resource carry its new root.
    let rotated = Ca::new("other.org")?;
    w.cache.set_federated_bundles([rotated.bundle()?]);
    let third = next_within(&mut responses, PUSH_DEADLINE).await??;
    assert_eq!(third.version_info, "3");
    assert_ne!(third.nonce, second.nonce);
    let secrets = secrets_of(&third)?;
    assert_eq!(
        spiffe_validator_domains(validation_context(&secrets[0])?)?,
        vec![
            ("example.org".to_owned(), roots(&own)),
            ("other.org".to_owned(), roots(&rotated.bundle()?)),
        ]
    );
    assert_eq!(
        spiffe_validator_domains(validation_context(&secrets[1])?)?,
        vec![("other.org".to_owned(), roots(&rotated.bundle()?))]
    );
    tx.send(ack(&names, &third)).await?;
    assert_quiet(&mut responses).await?;
    agent.shutdown().await
}

#[tokio::test]
async fn fetch_secrets_has_no_version_and_no_nonce() -> TestResult {
    let w = world()?;
    let agent = Agent::start(w.cache.clone()).await?;
    let mut client = sds_client(&agent).await?;
    let response = client
        .fetch_secrets(request(&["default", "spiffe://other.org"]))
        .await?
        .into_inner();
    assert_eq!(response.version_info, "");
    assert_eq!(response.nonce, "");
    let secrets = secrets_of(&response)?;
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].name, "spiffe://other.org");
    let domains = spiffe_validator_domains(validation_context(&secrets[0])?)?;
    assert_eq!(
        domains,
        vec![("other.org".to_owned(), roots(&w.other.bundle()?))]
    );
    assert_eq!(secrets[1].name, "default");

    let status = client
        .delta_secrets(futures::stream::iter(Vec::<DeltaDiscoveryRequest>::new()))
        .await
        .err()
        .ok_or("DeltaSecrets answered")?;
    assert_eq!(status.code(), Code::Unimplemented);
    agent.shutdown().await
}

#[tokio::test]
async fn a_configured_default_svid_name_is_honoured() -> TestResult {
    let w = world()?;
    let sds = SdsConfig {
        default_svid_name: "mysvid".to_owned(),
        ..SdsConfig::default()
    };
    let agent =
        Agent::start_with_config(w.cache.clone(), unix_attestors(), |dir| WorkloadApiConfig {
            socket_path: dir.join("api.sock"),
            sds: Some(sds),
            ..WorkloadApiConfig::default()
        })
        .await?;
    let mut client = sds_client(&agent).await?;
    let response = client
        .fetch_secrets(request(&["mysvid"]))
        .await?
        .into_inner();
    assert_eq!(secrets_of(&response)?[0].name, "mysvid");
    let status = client
        .fetch_secrets(request(&["default"]))
        .await
        .err()
        .ok_or("the default name still answered")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    agent.shutdown().await
}

#[tokio::test]
async fn disable_sds_api_leaves_the_service_unregistered() -> TestResult {
    let w = world()?;
    let agent =
        Agent::start_with_config(w.cache.clone(), unix_attestors(), |dir| WorkloadApiConfig {
            socket_path: dir.join("api.sock"),
            sds: None,
            ..WorkloadApiConfig::default()
        })
        .await?;
    let status = sds_client(&agent)
        .await?
        .fetch_secrets(request(&["default"]))
        .await
        .err()
        .ok_or("SDS answered although disabled")?;
    assert_eq!(status.code(), Code::Unimplemented);
    // The Workload API on the same socket still works.
    let context = agent.spiffe_client().await?.fetch_x509_context().await?;
    assert!(!context.svids().is_empty());
    tokio::time::timeout(Duration::from_secs(5), agent.shutdown()).await?
}

//! SPIFFE federation between two in-process servers: the TrustDomain API, the bundle
//! endpoint (https_spiffe and https_web), the bundle refresher and the federation CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, cli, cli_json, free_port};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use spiffe_core::{BundleSet, SpiffeBundle, SpiffeId, TrustDomain};
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::trustdomain::v1 as tdpb;
use spire_proto::spire::api::server::trustdomain::v1::trust_domain_client::TrustDomainClient;
use spire_proto::spire::api::types::federation_relationship::BundleEndpointProfile;
use spire_proto::spire::api::types::{self, FederationRelationship, HttpsspiffeProfile};
use spire_server::federation::client::{EndpointAuth, fetch_bundle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;

/// A server of its own trust domain (self-signed CA) with a bundle endpoint.
struct FedServer {
    server: TestServer,
    endpoint_port: u16,
}

impl std::ops::Deref for FedServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl FedServer {
    /// Starts a server of `td` whose bundle endpoint uses `profile` (an HCL block).
    async fn start(td: &str, profile: &str) -> FedServer {
        let endpoint_port = free_port();
        let federation = format!(
            r#"federation {{
        bundle_endpoint {{
            address = "127.0.0.1"
            port = {endpoint_port}
            refresh_hint = "2m"
            {profile}
        }}
    }}"#
        );
        let server = TestServer::start_with(Setup {
            trust_domain: td,
            upstream: false,
            extra_server: federation,
            ..Setup::default()
        })
        .await;
        FedServer {
            server,
            endpoint_port,
        }
    }

    fn trust_domains(&self) -> TrustDomainClient<Channel> {
        TrustDomainClient::new(self.channel())
    }

    fn endpoint_url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.endpoint_port)
    }

    async fn own_bundle(&self) -> types::Bundle {
        self.bundle().await
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

const SPIFFE_PROFILE: &str = r#"profile "https_spiffe" {}"#;

fn spiffe_relationship(
    td: &str,
    url: &str,
    endpoint_id: &str,
    bundle: Option<types::Bundle>,
) -> FederationRelationship {
    FederationRelationship {
        trust_domain: td.into(),
        bundle_endpoint_url: url.into(),
        bundle_endpoint_profile: Some(BundleEndpointProfile::HttpsSpiffe(HttpsspiffeProfile {
            endpoint_spiffe_id: endpoint_id.into(),
        })),
        trust_domain_bundle: bundle,
    }
}

async fn create(
    server: &FedServer,
    rels: Vec<FederationRelationship>,
) -> Vec<tdpb::batch_create_federation_relationship_response::Result> {
    server
        .trust_domains()
        .batch_create_federation_relationship(tdpb::BatchCreateFederationRelationshipRequest {
            federation_relationships: rels,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
}

/// X.509 roots (DER) and JWT keys (key ID, SPKI) of a bundle.
type Authorities = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn authorities(b: &types::Bundle) -> Authorities {
    (
        b.x509_authorities.iter().map(|a| a.asn1.clone()).collect(),
        b.jwt_authorities
            .iter()
            .map(|k| (k.key_id.clone(), k.public_key.clone()))
            .collect(),
    )
}

/// Sends one raw HTTP/1.1 request to a bundle endpoint that authenticates as
/// `expected` with `bundle`; returns the raw response.
async fn raw_request(port: u16, bundle: &types::Bundle, expected: &str, request: &str) -> String {
    let parsed = spire_common::convert::bundle_from_proto(bundle).unwrap();
    let mut set = BundleSet::new();
    set.insert(parsed);
    let trust = Arc::new(spire_common::tls::TrustStore::new(set));
    let config = rustls::ClientConfig::builder_with_provider(spire_common::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(spire_common::tls::SpiffeServerVerifier::new(
            trust,
            SpiffeId::parse(expected).unwrap(),
        )))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn federate_two_servers_over_https_spiffe() {
    let a = FedServer::start("td-a.test", SPIFFE_PROFILE).await;
    let b = FedServer::start("td-b.test", SPIFFE_PROFILE).await;
    let b_bundle = b.own_bundle().await;

    // A federates with B, bootstrapped with B's bundle.
    let results = create(
        &a,
        vec![spiffe_relationship(
            "td-b.test",
            &b.endpoint_url(),
            "spiffe://td-b.test/spire/server",
            Some(b_bundle.clone()),
        )],
    )
    .await;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{results:?}");
    let created = results[0].federation_relationship.clone().unwrap();
    assert_eq!(created.trust_domain, "td-b.test");
    assert_eq!(
        authorities(created.trust_domain_bundle.as_ref().unwrap()),
        authorities(&b_bundle)
    );

    // Drop the bootstrap copy's JWT keys so the refresh has something to change.
    let mut partial = b_bundle.clone();
    partial.jwt_authorities.clear();
    a.bundles()
        .batch_set_federated_bundle(bundlepb::BatchSetFederatedBundleRequest {
            bundle: vec![partial],
            output_mask: None,
        })
        .await
        .unwrap();

    a.trust_domains()
        .refresh_bundle(tdpb::RefreshBundleRequest {
            trust_domain: "td-b.test".into(),
        })
        .await
        .unwrap();
    let fetched = a
        .bundles()
        .get_federated_bundle(bundlepb::GetFederatedBundleRequest {
            trust_domain: "td-b.test".into(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(authorities(&fetched), authorities(&b_bundle));
    assert_eq!(fetched.refresh_hint, 120);
    assert_eq!(fetched.sequence_number, b_bundle.sequence_number);

    // Get/List reflect the relationship.
    let got = a
        .trust_domains()
        .get_federation_relationship(tdpb::GetFederationRelationshipRequest {
            trust_domain: "td-b.test".into(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.bundle_endpoint_url, b.endpoint_url());
    let listed = a
        .trust_domains()
        .list_federation_relationships(tdpb::ListFederationRelationshipsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.federation_relationships.len(), 1);

    // The wrong endpoint SPIFFE ID fails to authenticate B's endpoint.
    let update = a
        .trust_domains()
        .batch_update_federation_relationship(tdpb::BatchUpdateFederationRelationshipRequest {
            federation_relationships: vec![spiffe_relationship(
                "td-b.test",
                &b.endpoint_url(),
                "spiffe://td-b.test/not/the/server",
                None,
            )],
            input_mask: Some(types::FederationRelationshipMask {
                bundle_endpoint_url: false,
                bundle_endpoint_profile: true,
                trust_domain_bundle: false,
            }),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(update.results[0].status.as_ref().unwrap().code, 0);
    let err = a
        .trust_domains()
        .refresh_bundle(tdpb::RefreshBundleRequest {
            trust_domain: "td-b.test".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(
        err.message().contains("failed to refresh bundle"),
        "{err:?}"
    );

    // Unknown relationship.
    let err = a
        .trust_domains()
        .refresh_bundle(tdpb::RefreshBundleRequest {
            trust_domain: "td-c.test".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "no relationship with trust domain \"td-c.test\""
    );

    // Delete.
    let deleted = a
        .trust_domains()
        .batch_delete_federation_relationship(tdpb::BatchDeleteFederationRelationshipRequest {
            trust_domains: vec!["td-b.test".into(), "td-b.test".into(), String::new()],
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = deleted
        .results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(
        codes,
        vec![0, Code::NotFound as i32, Code::InvalidArgument as i32]
    );

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bundle_endpoint_serves_json_and_refuses_post() {
    let b = FedServer::start("td-b.test", SPIFFE_PROFILE).await;
    let bundle = b.own_bundle().await;
    let id = "spiffe://td-b.test/spire/server";

    let get = raw_request(
        b.endpoint_port,
        &bundle,
        id,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(get.starts_with("HTTP/1.1 200"), "{get}");
    assert!(
        get.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{get}"
    );
    let body = get.split("\r\n\r\n").nth(1).unwrap();
    let parsed =
        SpiffeBundle::parse(TrustDomain::parse("td-b.test").unwrap(), body.as_bytes()).unwrap();
    assert_eq!(parsed.refresh_hint(), Some(Duration::from_secs(120)));
    assert_eq!(
        parsed.x509_bundle().authorities().len(),
        bundle.x509_authorities.len()
    );

    let post = raw_request(
        b.endpoint_port,
        &bundle,
        id,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    let other = raw_request(
        b.endpoint_port,
        &bundle,
        id,
        "GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");

    // The https_spiffe client rejects an endpoint with another SPIFFE ID.
    let spiffe_bundle = spire_common::convert::bundle_from_proto(&bundle).unwrap();
    let err = fetch_bundle(
        &b.endpoint_url(),
        &TrustDomain::parse("td-b.test").unwrap(),
        &EndpointAuth::Spiffe {
            id: SpiffeId::parse("spiffe://td-b.test/other").unwrap(),
            bundle: spiffe_bundle,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    b.stop().await;
}

/// A local CA and a serving certificate for 127.0.0.1 written to `dir`.
fn web_pki(dir: &Path) -> (rustls::RootCertStore, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert_path = dir.join("serving.crt");
    let key_path = dir.join("serving.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (roots, cert_path, key_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_web_endpoint_with_serving_cert_file() {
    let pki = tempfile::tempdir().unwrap();
    let (roots, cert, key) = web_pki(pki.path());
    let profile = format!(
        r#"profile "https_web" {{
                serving_cert_file {{
                    cert_file_path = "{}"
                    key_file_path = "{}"
                }}
            }}"#,
        cert.display(),
        key.display()
    );
    let b = FedServer::start("td-b.test", &profile).await;
    let td = TrustDomain::parse("td-b.test").unwrap();
    let fetched = fetch_bundle(&b.endpoint_url(), &td, &EndpointAuth::Web(Arc::new(roots)))
        .await
        .unwrap();
    let own = b.own_bundle().await;
    assert_eq!(
        fetched.x509_bundle().authorities().len(),
        own.x509_authorities.len()
    );
    // Without the local CA the Web PKI check fails.
    let err = fetch_bundle(
        &b.endpoint_url(),
        &td,
        &EndpointAuth::Web(Arc::new(rustls::RootCertStore::empty())),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_domain_api_validation() {
    let a = FedServer::start("td-a.test", SPIFFE_PROFILE).await;
    let web = |td: &str, url: &str| FederationRelationship {
        trust_domain: td.into(),
        bundle_endpoint_url: url.into(),
        bundle_endpoint_profile: Some(BundleEndpointProfile::HttpsWeb(types::HttpsWebProfile {})),
        trust_domain_bundle: None,
    };
    let mut no_profile = web("td-x.test", "https://x.test/");
    no_profile.bundle_endpoint_profile = None;
    let mut other_bundle = web("td-y.test", "https://y.test/");
    other_bundle.trust_domain_bundle = Some(a.own_bundle().await);
    let results = create(
        &a,
        vec![
            web("td-b.test", "https://b.test/bundle"),
            web("td-b.test", "https://b.test/bundle"),
            web("td-a.test", "https://a.test/"),
            web("td-c.test", "http://c.test/"),
            web("Not A Domain", "https://d.test/"),
            spiffe_relationship("td-e.test", "https://e.test/", "not-an-id", None),
            no_profile,
            other_bundle,
        ],
    )
    .await;
    let got: Vec<(i32, String)> = results
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap();
            (s.code, s.message)
        })
        .collect();
    assert_eq!(got[0], (0, "OK".into()));
    assert_eq!(got[1].0, Code::Internal as i32, "{got:?}");
    assert_eq!(
        got[2],
        (
            Code::InvalidArgument as i32,
            "unable to create federation relationship for server trust domain".into()
        )
    );
    assert_eq!(
        got[3],
        (
            Code::InvalidArgument as i32,
            "failed to convert federation relationship: bundle endpoint URL must use the https scheme"
                .into()
        )
    );
    assert_eq!(got[4].0, Code::InvalidArgument as i32);
    assert!(
        got[4]
            .1
            .starts_with("failed to convert federation relationship: failed to parse trust domain"),
        "{got:?}"
    );
    assert!(
        got[5].1.contains("failed to parse endpoint SPIFFE ID"),
        "{got:?}"
    );
    assert!(
        got[6]
            .1
            .contains("unsupported bundle endpoint profile type"),
        "{got:?}"
    );
    assert!(got[7].1.contains("must match the trust domain"), "{got:?}");

    // Get of an unknown relationship.
    let err = a
        .trust_domains()
        .get_federation_relationship(tdpb::GetFederationRelationshipRequest {
            trust_domain: "td-z.test".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "federation relationship does not exist");

    // Update of an unknown relationship fails per item.
    let update = a
        .trust_domains()
        .batch_update_federation_relationship(tdpb::BatchUpdateFederationRelationshipRequest {
            federation_relationships: vec![web("td-z.test", "https://z.test/")],
            input_mask: None,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        update.results[0].status.as_ref().unwrap().code,
        Code::NotFound as i32
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn federation_cli() {
    let a = FedServer::start("td-a.test", SPIFFE_PROFILE).await;
    let b = FedServer::start("td-b.test", SPIFFE_PROFILE).await;
    let dir = tempfile::tempdir().unwrap();
    let b_pem: String = b
        .own_bundle()
        .await
        .x509_authorities
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.asn1.clone())))
        .collect();
    let bundle_path = dir.path().join("b.pem");
    std::fs::write(&bundle_path, b_pem).unwrap();
    let url = b.endpoint_url();

    let (ok, out, err) = cli(&a, &["federation", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "Found 0 federation relationships\n");

    let (ok, out, err) = cli(
        &a,
        &[
            "federation",
            "create",
            "-trustDomain",
            "td-b.test",
            "-bundleEndpointURL",
            &url,
            "-bundleEndpointProfile",
            "https_spiffe",
            "-endpointSpiffeID",
            "spiffe://td-b.test/spire/server",
            "-trustDomainBundlePath",
            bundle_path.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let block = format!(
        "Trust domain              : td-b.test\nBundle endpoint URL       : {url}\n\
         Bundle endpoint profile   : https_spiffe\nEndpoint SPIFFE ID        : spiffe://td-b.test/spire/server\n"
    );
    assert_eq!(out, format!("\n{block}"));

    let (ok, out, err) = cli(&a, &["federation", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, format!("Found 1 federation relationship\n\n{block}"));

    let (ok, out, err) = cli(&a, &["federation", "show", "-trustDomain", "td-b.test"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("Found a federation relationship with trust domain td-b.test:\n\n{block}")
    );

    let (ok, out, err) = cli(&a, &["federation", "list", "-output", "json"]).await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["federation_relationships"][0]["https_spiffe"]["endpoint_spiffe_id"],
        "spiffe://td-b.test/spire/server",
        "{out}"
    );

    let (ok, out, err) = cli(&a, &["federation", "refresh", "-id", "td-b.test"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "Bundle refreshed\n");

    let (ok, _, err) = cli(&a, &["federation", "refresh", "-id", "td-q.test"]).await;
    assert!(!ok);
    assert!(
        err.contains("there is no federation relationship with trust domain \"td-q.test\""),
        "{err}"
    );

    let (ok, out, err) = cli(
        &a,
        &[
            "federation",
            "update",
            "-trustDomain",
            "td-b.test",
            "-bundleEndpointURL",
            "https://127.0.0.1:1/",
            "-bundleEndpointProfile",
            "https_web",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "\nTrust domain              : td-b.test\nBundle endpoint URL       : https://127.0.0.1:1/\n\
         Bundle endpoint profile   : https_web\n"
    );

    let (ok, _, err) = cli(
        &a,
        &[
            "federation",
            "create",
            "-trustDomain",
            "td-a.test",
            "-bundleEndpointURL",
            "https://a.test/",
            "-bundleEndpointProfile",
            "https_web",
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("Failed to create the following federation relationship (code: InvalidArgument, msg: \"unable to create federation relationship for server trust domain\"):"),
        "{err}"
    );
    assert!(
        err.contains("failed to create one or more federation relationships"),
        "{err}"
    );

    let (ok, out, err) = cli(&a, &["federation", "delete", "-id", "td-b.test"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "federation relationship deleted.\n");
    let (ok, _, err) = cli(&a, &["federation", "delete", "-id", "td-b.test"]).await;
    assert!(!ok);
    assert!(
        err.contains("failed to delete federation relationship \"td-b.test\": federation relationship not found"),
        "{err}"
    );

    a.stop().await;
    b.stop().await;
}

/// `-output json` of the federation commands: each prints its response as protojson.
#[tokio::test(flavor = "multi_thread")]
async fn federation_cli_json() {
    let a = FedServer::start("td-a.test", SPIFFE_PROFILE).await;
    let b = FedServer::start("td-b.test", SPIFFE_PROFILE).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("b.pem");
    let b_pem: String = (b.own_bundle().await.x509_authorities.iter())
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.asn1.clone())))
        .collect();
    std::fs::write(&bundle_path, b_pem).unwrap();
    let url = b.endpoint_url();
    let ok = serde_json::json!({"code": 0, "message": "OK"});

    let created = cli_json(
        &a,
        &[
            "federation",
            "create",
            "-trustDomain",
            "td-b.test",
            "-bundleEndpointURL",
            &url,
            "-bundleEndpointProfile",
            "https_spiffe",
            "-endpointSpiffeID",
            "spiffe://td-b.test/spire/server",
            "-trustDomainBundlePath",
            bundle_path.to_str().unwrap(),
        ],
    )
    .await;
    let result = &created["results"][0];
    assert_eq!(result["status"], ok);
    let relationship = &result["federation_relationship"];
    assert_eq!(relationship["trust_domain"], "td-b.test");
    assert_eq!(relationship["bundle_endpoint_url"], url.as_str());
    assert_eq!(
        relationship["https_spiffe"]["endpoint_spiffe_id"],
        "spiffe://td-b.test/spire/server"
    );
    assert_eq!(
        relationship["trust_domain_bundle"]["trust_domain"],
        "td-b.test"
    );

    let shown = cli_json(&a, &["federation", "show", "-trustDomain", "td-b.test"]).await;
    assert_eq!(&shown, relationship);
    let refreshed = cli_json(&a, &["federation", "refresh", "-id", "td-b.test"]).await;
    assert_eq!(refreshed, ok);

    let updated = cli_json(
        &a,
        &[
            "federation",
            "update",
            "-trustDomain",
            "td-b.test",
            "-bundleEndpointURL",
            "https://127.0.0.1:1/",
            "-bundleEndpointProfile",
            "https_web",
        ],
    )
    .await;
    let result = &updated["results"][0];
    assert_eq!(result["status"], ok);
    assert_eq!(
        result["federation_relationship"]["https_web"],
        serde_json::json!({})
    );
    assert_eq!(
        result["federation_relationship"]["bundle_endpoint_url"],
        "https://127.0.0.1:1/"
    );

    let deleted = cli_json(&a, &["federation", "delete", "-id", "td-b.test"]).await;
    assert_eq!(
        deleted,
        serde_json::json!({"results": [{"status": ok, "trust_domain": "td-b.test"}]})
    );
    a.stop().await;
    b.stop().await;
}

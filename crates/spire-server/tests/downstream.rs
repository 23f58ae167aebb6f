//! What a downstream SPIRE server asks of its upstream server, over the real mTLS TCP
//! endpoint: `SVID.NewDownstreamX509CA` signs its CA, `Bundle.PublishJWTAuthority`
//! publishes its JWT key in the trust domain's bundle. The caller presents an X509-SVID
//! minted over the admin socket for the SPIFFE ID of an entry with `downstream = true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::TestServer;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{BundleSet, SpiffeId, TrustDomain, X509Svid};
use spire_common::tls::{SvidResolver, TrustStore, client_config};
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::bundle::v1::bundle_client::BundleClient;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::server::svid::v1 as svidpb;
use spire_proto::spire::api::server::svid::v1::svid_client::SvidClient;
use spire_proto::spire::api::types::{Entry, JwtKey, Selector, Spiffeid};
use tonic::Code;
use tonic::transport::Channel;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

const DOWNSTREAM_ID: &str = "spiffe://example.org/downstream-server";
const PLAIN_ID: &str = "spiffe://example.org/plain-workload";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn new_key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// The PKIX DER public key of `key`.
fn spki(key: &rcgen::KeyPair) -> Vec<u8> {
    pem::parse(key.public_key_pem()).unwrap().into_contents()
}

/// A CSR for `key`, with a URI SAN when `uri` is given.
fn csr(key: &rcgen::KeyPair, uri: Option<&str>) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    if let Some(uri) = uri {
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(uri.try_into().unwrap()));
    }
    params.serialize_request(key).unwrap().der().to_vec()
}

async fn create_entry(server: &TestServer, id: &str, downstream: bool, x509_ttl: i32) {
    let results = EntryClient::new(server.channel())
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![Entry {
                spiffe_id: Some(proto_id(id)),
                parent_id: Some(proto_id("spiffe://example.org/spire/server")),
                selectors: vec![Selector {
                    r#type: "unix".into(),
                    value: format!("uid:{}", id.len()),
                }],
                downstream,
                x509_svid_ttl: x509_ttl,
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{results:?}");
}

fn proto_id(id: &str) -> Spiffeid {
    spire_common::convert::id_to_proto(&SpiffeId::parse(id).unwrap())
}

/// An mTLS channel to the server's TCP endpoint presenting an X509-SVID for `id`,
/// minted over the admin socket.
async fn tls_channel_as(server: &TestServer, id: &str) -> Channel {
    let key = new_key();
    let svid = SvidClient::new(server.channel())
        .mint_x509svid(svidpb::MintX509svidRequest {
            csr: csr(&key, Some(id)),
            ttl: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    let chain = svid
        .cert_chain
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let svid = X509Svid::from_parts(
        chain,
        PrivatePkcs8KeyDer::from(key.serialized_der().to_vec()),
    )
    .unwrap();
    let bundle = spire_common::convert::bundle_from_proto(&server.bundle().await).unwrap();
    let mut set = BundleSet::new();
    set.insert(bundle);
    let resolver = Arc::new(SvidResolver::new());
    resolver.set_svid(&svid).unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let config = client_config(
        Arc::new(TrustStore::new(set)),
        SpiffeId::new(&td, "/spire/server").unwrap(),
        resolver,
    )
    .unwrap();
    spire_common::grpc_tls::tls_channel(&format!("127.0.0.1:{}", server.port), Arc::new(config))
        .unwrap()
}

fn ou_and_uris(der: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let ou = cert
        .subject()
        .iter_organizational_unit()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let mut uris = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::URI(u) = name {
                    uris.push((*u).to_owned());
                }
            }
        }
    }
    (ou, uris)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_server_gets_a_ca_and_publishes_jwt_keys() {
    let server = TestServer::start().await;
    create_entry(&server, DOWNSTREAM_ID, true, 1800).await;
    create_entry(&server, PLAIN_ID, false, 0).await;
    let channel = tls_channel_as(&server, DOWNSTREAM_ID).await;
    let mut svid = SvidClient::new(channel.clone());
    let roots: Vec<Vec<u8>> = server
        .bundle()
        .await
        .x509_authorities
        .into_iter()
        .map(|a| a.asn1)
        .collect();

    // No preferred TTL: the entry's x509_svid_ttl (1800 s).
    let ca_key = new_key();
    let response = svid
        .new_downstream_x509ca(svidpb::NewDownstreamX509caRequest {
            csr: csr(&ca_key, None),
            preferred_ttl: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.x509_authorities, roots);
    // The new CA, then the server's intermediate (the demo upstream is the root).
    assert_eq!(response.ca_cert_chain.len(), 2);
    let (_, ca) = X509Certificate::from_der(&response.ca_cert_chain[0]).unwrap();
    assert!(ca.is_ca());
    assert_eq!(ca.public_key().raw, spki(&ca_key));
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    let (ou, uris) = ou_and_uris(&response.ca_cert_chain[0]);
    assert_eq!(ou, ["DOWNSTREAM-1"]);
    assert_eq!(uris, ["spiffe://example.org"]);
    let lifetime = ca.validity().not_after.timestamp() - now();
    assert!((1700..=1800).contains(&lifetime), "lifetime {lifetime}");
    // Signed by the server's CA, which chains to the bundle root.
    let (_, server_ca) = X509Certificate::from_der(&response.ca_cert_chain[1]).unwrap();
    ca.verify_signature(Some(server_ca.public_key())).unwrap();
    assert_eq!(ca.issuer().as_raw(), server_ca.subject().as_raw());
    let (_, root) = X509Certificate::from_der(&roots[0]).unwrap();
    server_ca.verify_signature(Some(root.public_key())).unwrap();

    // A preferred TTL wins over the entry's.
    let response = svid
        .new_downstream_x509ca(svidpb::NewDownstreamX509caRequest {
            csr: csr(&new_key(), None),
            preferred_ttl: 600,
        })
        .await
        .unwrap()
        .into_inner();
    let (_, ca) = X509Certificate::from_der(&response.ca_cert_chain[0]).unwrap();
    let lifetime = ca.validity().not_after.timestamp() - now();
    assert!((500..=600).contains(&lifetime), "lifetime {lifetime}");

    // A malformed CSR is refused.
    let status = svid
        .new_downstream_x509ca(svidpb::NewDownstreamX509caRequest {
            csr: b"not a csr".to_vec(),
            preferred_ttl: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("malformed CSR"), "{status:?}");

    // PublishJWTAuthority appends the key to the bundle and returns its JWT keys.
    let jwt_key = new_key();
    let mut bundles = BundleClient::new(channel);
    let published = bundles
        .publish_jwt_authority(bundlepb::PublishJwtAuthorityRequest {
            jwt_authority: Some(JwtKey {
                public_key: spki(&jwt_key),
                key_id: "downstream-kid".into(),
                expires_at: now() + 3600,
                tainted: false,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        published
            .jwt_authorities
            .iter()
            .any(|k| k.key_id == "downstream-kid" && k.public_key == spki(&jwt_key))
    );
    // The server's own JWT key is there too.
    assert!(published.jwt_authorities.len() >= 2);
    let bundle = server.bundle().await;
    assert!(
        bundle
            .jwt_authorities
            .iter()
            .any(|k| k.key_id == "downstream-kid")
    );

    for (key, want) in [
        (
            JwtKey {
                public_key: spki(&jwt_key),
                key_id: String::new(),
                expires_at: 0,
                tainted: false,
            },
            "missing key ID",
        ),
        (
            JwtKey {
                public_key: b"junk".to_vec(),
                key_id: "k".into(),
                expires_at: 0,
                tainted: false,
            },
            "failed to parse public key",
        ),
    ] {
        let status = bundles
            .publish_jwt_authority(bundlepb::PublishJwtAuthorityRequest {
                jwt_authority: Some(key),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(want), "{status:?}");
    }

    // A caller whose entry is not downstream is refused both.
    let plain = tls_channel_as(&server, PLAIN_ID).await;
    let status = SvidClient::new(plain.clone())
        .new_downstream_x509ca(svidpb::NewDownstreamX509caRequest {
            csr: csr(&new_key(), None),
            preferred_ttl: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = BundleClient::new(plain)
        .publish_jwt_authority(bundlepb::PublishJwtAuthorityRequest {
            jwt_authority: Some(JwtKey {
                public_key: spki(&jwt_key),
                key_id: "plain-kid".into(),
                expires_at: 0,
                tainted: false,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_server_signs_downstream_ca_under_its_root() {
    let server = TestServer::start_with(common::Setup {
        upstream: false,
        ..Default::default()
    })
    .await;
    create_entry(&server, DOWNSTREAM_ID, true, 0).await;
    let channel = tls_channel_as(&server, DOWNSTREAM_ID).await;
    let response = SvidClient::new(channel)
        .new_downstream_x509ca(svidpb::NewDownstreamX509caRequest {
            csr: csr(&new_key(), None),
            preferred_ttl: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // Only the new CA: the server's CA is itself the root in the bundle.
    assert_eq!(response.ca_cert_chain.len(), 1);
    let (_, ca) = X509Certificate::from_der(&response.ca_cert_chain[0]).unwrap();
    let issuer = response
        .x509_authorities
        .iter()
        .map(|r| X509Certificate::from_der(r).unwrap().1)
        .find(|r| r.subject().as_raw() == ca.issuer().as_raw())
        .expect("issued by a bundle root");
    ca.verify_signature(Some(issuer.public_key())).unwrap();
    // The root's subject (C=US, O=SPIFFE, serialNumber) with OU=DOWNSTREAM-1, in
    // Go's attribute order.
    let subject = ca.subject().to_string();
    assert!(
        subject.starts_with("C=US, O=SPIFFE, OU=DOWNSTREAM-1"),
        "{subject}"
    );
    let root_serial = issuer
        .subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert!(subject.ends_with(&root_serial), "{subject}");
    // No preferred TTL and no entry TTL: the default X509-SVID TTL (1h).
    let lifetime = ca.validity().not_after.timestamp() - now();
    assert!((3500..=3600).contains(&lifetime), "lifetime {lifetime}");
    server.stop().await;
}

//! The authorization table (`spire_server::authz::POLICY`) enforced over the real
//! endpoints: every method is called with an empty request as each caller class, on the
//! admin Unix socket (local) and on the TCP TLS endpoint (admins by `admin_ids`, by an
//! admin entry and from a federated trust domain, an attested agent, a downstream server,
//! an anonymous client). An allowed call may fail validation, but is
//! never refused with PermissionDenied; a disallowed one always is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Setup, TestServer, attest_with_svid, mint_svid, tcp_channel};

use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use spire_proto::spire::api::server::bundle::v1 as bundlepb;
use spire_proto::spire::api::server::entry::v1 as entrypb;
use spire_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use spire_proto::spire::api::types::{self, Entry, Selector, Spiffeid};
use spire_server::authz::{Allow, POLICY};
use tonic::transport::Channel;
use tonic::{Code, Status};

const ADMIN_IDS_PATH: &str = "/ops/listed-admin";
const ADMIN_ENTRY_PATH: &str = "/ops/entry-admin";
const DOWNSTREAM_PATH: &str = "/nested/downstream";
const FEDERATED_ADMIN: &str = "spiffe://other.org/ops/admin";

/// A caller class: how it reaches the server and whether a policy row lets it in.
struct Class {
    name: &'static str,
    channel: Channel,
    allowed: fn(&Allow) -> bool,
}

fn spiffe_id(path: &str) -> String {
    format!("spiffe://example.org{path}")
}

/// Registers `path` under the server with the given admin/downstream flags.
async fn register(server: &TestServer, path: &str, admin: bool, downstream: bool) {
    let id = |path: &str| {
        Some(Spiffeid {
            trust_domain: "example.org".into(),
            path: path.into(),
        })
    };
    let entry = Entry {
        spiffe_id: id(path),
        parent_id: id("/spire/server"),
        selectors: vec![Selector {
            r#type: "unix".into(),
            value: "uid:0".into(),
        }],
        admin,
        downstream,
        ..Default::default()
    };
    let results = EntryClient::new(server.channel())
        .batch_create_entry(entrypb::BatchCreateEntryRequest {
            entries: vec![entry],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{path}");
}

/// A TLS channel presenting a freshly minted SVID for `path`.
async fn svid_channel(server: &TestServer, path: &str) -> Channel {
    let (chain, key) = mint_svid(server, &spiffe_id(path)).await;
    tcp_channel(server, Some((&chain, &key))).await
}

/// The CA of the federated trust domain `other.org`.
struct ForeignCa {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl ForeignCa {
    fn new() -> ForeignCa {
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.subject_alt_names = vec![uri("spiffe://other.org")];
        let der = ca.self_signed(&key).unwrap().der().to_vec();
        ForeignCa {
            der,
            issuer: Issuer::new(ca, key),
        }
    }

    /// Sets this CA as the federated bundle of `other.org` over the admin socket.
    async fn federate(&self, server: &TestServer) {
        let bundle = types::Bundle {
            trust_domain: "other.org".into(),
            x509_authorities: vec![types::X509Certificate {
                asn1: self.der.clone(),
                tainted: false,
            }],
            ..Default::default()
        };
        let results = server
            .bundles()
            .batch_set_federated_bundle(bundlepb::BatchSetFederatedBundleRequest {
                bundle: vec![bundle],
                output_mask: None,
            })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert_eq!(results[0].status.as_ref().unwrap().code, 0);
    }

    /// A TLS channel presenting an X509-SVID for `id` issued by this CA.
    async fn channel(&self, server: &TestServer, id: &str) -> Channel {
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::default();
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        leaf.subject_alt_names = vec![uri(id)];
        let leaf = leaf.signed_by(&key, &self.issuer).unwrap();
        tcp_channel(server, Some((leaf.der(), &key.serialize_der()))).await
    }
}

fn uri(id: &str) -> SanType {
    SanType::URI(Ia5String::try_from(id).unwrap())
}

/// Whether a GetBundle (allowed to anyone) over `channel` succeeds, i.e. whether the
/// server accepted the client certificate in the handshake.
async fn handshake_accepted(channel: Channel) -> bool {
    call(channel, "/spire.api.server.bundle.v1.Bundle/GetBundle")
        .await
        .is_ok()
}

/// The federated admin's channel, once the server trusts `other.org`'s bundle (it follows
/// bundle changes in the background).
async fn federated_admin_channel(server: &TestServer) -> Channel {
    let ca = ForeignCa::new();
    ca.federate(server).await;
    for _ in 0..100 {
        let channel = ca.channel(server, FEDERATED_ADMIN).await;
        if handshake_accepted(channel.clone()).await {
            // Only admin_ids of other trust domains get in, not their other IDs.
            let other = ca.channel(server, "spiffe://other.org/workload").await;
            assert!(!handshake_accepted(other).await);
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the federated admin was never accepted");
}

/// Calls `method` with one empty message (an empty protobuf message decodes as the
/// default of any request type), as a bidirectional stream so that one call shape
/// covers unary and streaming methods alike. Returns the first error status, if any;
/// a stream that stays open without one counts as accepted.
async fn call(channel: Channel, method: &str) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(method).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let request = tonic::Request::new(tokio_stream::iter([()]));
    let mut stream = grpc.streaming(request, path, codec).await?.into_inner();
    match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
        Ok(Err(status)) => Err(status),
        _ => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_method_admits_exactly_the_classes_of_its_policy_row() {
    let server = TestServer::start_with(Setup {
        extra_server: format!(
            "admin_ids = [\"{}\", \"{FEDERATED_ADMIN}\"]",
            spiffe_id(ADMIN_IDS_PATH)
        ),
        ..Setup::default()
    })
    .await;
    register(&server, ADMIN_ENTRY_PATH, true, false).await;
    register(&server, DOWNSTREAM_PATH, false, true).await;
    let (_, agent_chain, agent_key) = attest_with_svid(&server).await;

    let classes = [
        Class {
            name: "local",
            channel: server.channel(),
            allowed: |a| a.any || a.local,
        },
        Class {
            name: "admin (admin_ids)",
            channel: svid_channel(&server, ADMIN_IDS_PATH).await,
            allowed: |a| a.any || a.admin,
        },
        Class {
            name: "admin (admin entry)",
            channel: svid_channel(&server, ADMIN_ENTRY_PATH).await,
            allowed: |a| a.any || a.admin,
        },
        Class {
            name: "admin (federated, admin_ids)",
            channel: federated_admin_channel(&server).await,
            allowed: |a| a.any || a.admin,
        },
        Class {
            name: "agent",
            channel: tcp_channel(&server, Some((&agent_chain, &agent_key))).await,
            allowed: |a| a.any || a.agent,
        },
        Class {
            name: "downstream",
            channel: svid_channel(&server, DOWNSTREAM_PATH).await,
            allowed: |a| a.any || a.downstream,
        },
        Class {
            name: "anyone",
            channel: tcp_channel(&server, None).await,
            allowed: |a| a.any,
        },
    ];

    let mut wrong = Vec::new();
    for (method, allow) in POLICY {
        for class in &classes {
            let outcome = call(class.channel.clone(), method).await;
            // Refused: denied by the table, or (admin-socket-only services over TCP) not
            // served on that listener at all, as SPIRE, which does not register them there.
            let refused = matches!(&outcome, Err(s) if s.code() == Code::PermissionDenied
                || (s.code() == Code::Unimplemented && s.message().starts_with("unknown service")));
            // A failure below gRPC (handshake, connection) is no answer at all.
            let transport = matches!(&outcome, Err(s) if std::error::Error::source(s).is_some());
            if transport || refused == (class.allowed)(allow) {
                wrong.push(format!(
                    "{method} as {}: allowed by table = {}, got {outcome:?}",
                    class.name,
                    (class.allowed)(allow)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A method outside the table is refused to every caller, local ones included.
#[tokio::test(flavor = "multi_thread")]
async fn methods_outside_the_table_are_refused() {
    let server = TestServer::start().await;
    for channel in [server.channel(), tcp_channel(&server, None).await] {
        let status = call(
            channel,
            "/spire.api.server.entry.v1.Entry/ListCachedEntries",
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(
            status.message(),
            "authorization denied for method /spire.api.server.entry.v1.Entry/ListCachedEntries"
        );
    }
}

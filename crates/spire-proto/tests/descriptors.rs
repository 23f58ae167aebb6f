//! The compiled contracts keep SPIRE's exact gRPC method paths, streaming
//! shapes, field numbers and enum values (spec/server.md §3.3-3.6,
//! spec/agent.md §1.2-1.3 and §3.1-3.2).

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use spire_proto::spire::api::types::{self, Entry, Selector, Spiffeid, entry};

type TestResult = Result<(), Box<dyn Error>>;

/// Streaming shape of an RPC: (client streams, server streams).
type Shape = (bool, bool);
const UNARY: Shape = (false, false);
const SERVER_STREAM: Shape = (false, true);
const BIDI: Shape = (true, true);

struct Catalog {
    /// Full gRPC path -> streaming shape.
    methods: BTreeMap<String, Shape>,
    /// Full service name -> method names.
    services: BTreeMap<String, BTreeSet<String>>,
    /// Fully qualified message name (no leading dot) -> descriptor.
    messages: BTreeMap<String, DescriptorProto>,
    /// Fully qualified enum name -> descriptor.
    enums: BTreeMap<String, EnumDescriptorProto>,
    /// File name -> package.
    packages: BTreeMap<String, String>,
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

fn collect_message(scope: &str, message: &DescriptorProto, catalog: &mut Catalog) {
    let full = qualify(scope, message.name());
    for nested in &message.nested_type {
        collect_message(&full, nested, catalog);
    }
    for nested in &message.enum_type {
        catalog
            .enums
            .insert(qualify(&full, nested.name()), nested.clone());
    }
    catalog.messages.insert(full, message.clone());
}

fn catalog() -> Result<Catalog, Box<dyn Error>> {
    let set = FileDescriptorSet::decode(spire_proto::FILE_DESCRIPTOR_SET)?;
    let mut catalog = Catalog {
        methods: BTreeMap::new(),
        services: BTreeMap::new(),
        messages: BTreeMap::new(),
        enums: BTreeMap::new(),
        packages: BTreeMap::new(),
    };
    for file in &set.file {
        let package = file.package().to_string();
        catalog
            .packages
            .insert(file.name().to_string(), package.clone());
        for service in &file.service {
            let service_name = qualify(&package, service.name());
            let mut names = BTreeSet::new();
            for method in &service.method {
                names.insert(method.name().to_string());
                catalog.methods.insert(
                    format!("/{service_name}/{}", method.name()),
                    (method.client_streaming(), method.server_streaming()),
                );
            }
            catalog.services.insert(service_name, names);
        }
        for message in &file.message_type {
            collect_message(&package, message, &mut catalog);
        }
        for enumeration in &file.enum_type {
            catalog
                .enums
                .insert(qualify(&package, enumeration.name()), enumeration.clone());
        }
    }
    Ok(catalog)
}

#[test]
fn grpc_paths_and_streaming_shapes_are_spires() -> TestResult {
    let catalog = catalog()?;
    let expected: &[(&str, Shape)] = &[
        ("/SpiffeWorkloadAPI/FetchX509SVID", SERVER_STREAM),
        ("/SpiffeWorkloadAPI/FetchX509Bundles", SERVER_STREAM),
        ("/SpiffeWorkloadAPI/FetchJWTSVID", UNARY),
        ("/SpiffeWorkloadAPI/FetchJWTBundles", SERVER_STREAM),
        ("/SpiffeWorkloadAPI/ValidateJWTSVID", UNARY),
        ("/SpiffeWorkloadAPI/FetchWITSVID", SERVER_STREAM),
        ("/SpiffeWorkloadAPI/FetchWITBundles", SERVER_STREAM),
        ("/spire.api.server.agent.v1.Agent/AttestAgent", BIDI),
        ("/spire.api.server.agent.v1.Agent/RenewAgent", UNARY),
        ("/spire.api.server.agent.v1.Agent/PostStatus", UNARY),
        ("/spire.api.server.entry.v1.Entry/BatchCreateEntry", UNARY),
        (
            "/spire.api.server.entry.v1.Entry/GetAuthorizedEntries",
            UNARY,
        ),
        (
            "/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries",
            BIDI,
        ),
        ("/spire.api.server.bundle.v1.Bundle/GetBundle", UNARY),
        ("/spire.api.server.svid.v1.SVID/BatchNewX509SVID", UNARY),
        ("/spire.api.server.svid.v1.SVID/NewDownstreamX509CA", UNARY),
        (
            "/spire.api.server.trustdomain.v1.TrustDomain/RefreshBundle",
            UNARY,
        ),
        (
            "/spire.api.server.localauthority.v1.LocalAuthority/TaintX509UpstreamAuthority",
            UNARY,
        ),
        ("/spire.api.server.debug.v1.Debug/GetInfo", UNARY),
        ("/spire.api.server.logger.v1.Logger/SetLogLevel", UNARY),
        ("/spire.agent.debug.v1.Debug/GetInfo", UNARY),
        ("/spire.api.agent.logger.v1.Logger/ResetLogLevel", UNARY),
        (
            "/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToX509SVIDs",
            SERVER_STREAM,
        ),
        (
            "/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToX509Bundles",
            SERVER_STREAM,
        ),
        (
            "/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/FetchJWTSVIDs",
            UNARY,
        ),
        (
            "/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToJWTBundles",
            SERVER_STREAM,
        ),
        // spire-rs's own push service (not part of SPIRE).
        (
            "/spirers.server.notify.v1.Notify/WatchChanges",
            SERVER_STREAM,
        ),
    ];
    for (path, shape) in expected {
        assert_eq!(catalog.methods.get(*path), Some(shape), "{path}");
    }
    // Only the streams listed in the spec stream; everything else is unary.
    let streams: BTreeSet<_> = catalog
        .methods
        .iter()
        .filter(|(_, shape)| **shape != UNARY)
        .map(|(path, _)| path.as_str())
        .collect();
    let expected_streams: BTreeSet<_> = expected
        .iter()
        .filter(|(_, shape)| *shape != UNARY)
        .map(|(path, _)| *path)
        .collect();
    assert_eq!(streams, expected_streams);
    Ok(())
}

#[test]
fn every_service_has_exactly_the_spec_methods() -> TestResult {
    let catalog = catalog()?;
    let spec: &[(&str, &[&str])] = &[
        (
            "SpiffeWorkloadAPI",
            &[
                "FetchX509SVID",
                "FetchX509Bundles",
                "FetchJWTSVID",
                "FetchJWTBundles",
                "ValidateJWTSVID",
                "FetchWITSVID",
                "FetchWITBundles",
            ],
        ),
        (
            "spire.api.server.agent.v1.Agent",
            &[
                "CountAgents",
                "ListAgents",
                "GetAgent",
                "DeleteAgent",
                "BanAgent",
                "AttestAgent",
                "RenewAgent",
                "CreateJoinToken",
                "PostStatus",
            ],
        ),
        (
            "spire.api.server.bundle.v1.Bundle",
            &[
                "CountBundles",
                "GetBundle",
                "AppendBundle",
                "PublishJWTAuthority",
                "PublishWITAuthority",
                "ListFederatedBundles",
                "GetFederatedBundle",
                "BatchCreateFederatedBundle",
                "BatchUpdateFederatedBundle",
                "BatchSetFederatedBundle",
                "BatchDeleteFederatedBundle",
            ],
        ),
        ("spire.api.server.debug.v1.Debug", &["GetInfo"]),
        (
            "spire.api.server.entry.v1.Entry",
            &[
                "CountEntries",
                "ListEntries",
                "GetEntry",
                "BatchCreateEntry",
                "BatchUpdateEntry",
                "BatchDeleteEntry",
                "GetAuthorizedEntries",
                "SyncAuthorizedEntries",
            ],
        ),
        (
            "spire.api.server.logger.v1.Logger",
            &["GetLogger", "SetLogLevel", "ResetLogLevel"],
        ),
        (
            "spire.api.server.svid.v1.SVID",
            &[
                "MintX509SVID",
                "MintJWTSVID",
                "MintWITSVID",
                "BatchNewX509SVID",
                "NewJWTSVID",
                "BatchNewWITSVID",
                "NewDownstreamX509CA",
            ],
        ),
        ("spirers.server.notify.v1.Notify", &["WatchChanges"]),
        (
            "spirers.server.revocation.v1.Revocation",
            &["RevokeX509SVID", "ListRevokedX509SVIDs", "GetX509CRLs"],
        ),
        (
            "spire.api.server.trustdomain.v1.TrustDomain",
            &[
                "ListFederationRelationships",
                "GetFederationRelationship",
                "BatchCreateFederationRelationship",
                "BatchUpdateFederationRelationship",
                "BatchDeleteFederationRelationship",
                "RefreshBundle",
            ],
        ),
        (
            "spire.api.server.localauthority.v1.LocalAuthority",
            &[
                "GetJWTAuthorityState",
                "PrepareJWTAuthority",
                "ActivateJWTAuthority",
                "TaintJWTAuthority",
                "RevokeJWTAuthority",
                "GetX509AuthorityState",
                "PrepareX509Authority",
                "ActivateX509Authority",
                "TaintX509Authority",
                "TaintX509UpstreamAuthority",
                "RevokeX509Authority",
                "RevokeX509UpstreamAuthority",
                "GetWITAuthorityState",
                "PrepareWITAuthority",
                "ActivateWITAuthority",
                "TaintWITAuthority",
                "RevokeWITAuthority",
            ],
        ),
        (
            "spire.api.agent.delegatedidentity.v1.DelegatedIdentity",
            &[
                "SubscribeToX509SVIDs",
                "SubscribeToX509Bundles",
                "FetchJWTSVIDs",
                "SubscribeToJWTBundles",
            ],
        ),
        ("spire.agent.debug.v1.Debug", &["GetInfo"]),
        (
            "spire.api.agent.logger.v1.Logger",
            &["GetLogger", "SetLogLevel", "ResetLogLevel"],
        ),
    ];
    let expected: BTreeMap<String, BTreeSet<String>> = spec
        .iter()
        .map(|(service, methods)| {
            (
                (*service).to_string(),
                methods.iter().map(|m| (*m).to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(catalog.services, expected);
    Ok(())
}

#[test]
fn workload_file_has_no_package() -> TestResult {
    let catalog = catalog()?;
    assert_eq!(
        catalog
            .packages
            .get("spiffe/workload/workload.proto")
            .map(String::as_str),
        Some("")
    );
    Ok(())
}

#[test]
fn generated_services_carry_the_full_names() {
    use spire_proto::spire;
    assert_eq!(
        spire_proto::workload::spiffe_workload_api_server::SERVICE_NAME,
        "SpiffeWorkloadAPI"
    );
    assert_eq!(
        spire::api::server::entry::v1::entry_server::SERVICE_NAME,
        "spire.api.server.entry.v1.Entry"
    );
    assert_eq!(
        spire::api::server::agent::v1::agent_server::SERVICE_NAME,
        "spire.api.server.agent.v1.Agent"
    );
    assert_eq!(
        spire::api::server::svid::v1::svid_server::SERVICE_NAME,
        "spire.api.server.svid.v1.SVID"
    );
    assert_eq!(
        spire::api::server::localauthority::v1::local_authority_server::SERVICE_NAME,
        "spire.api.server.localauthority.v1.LocalAuthority"
    );
    assert_eq!(
        spire::agent::debug::v1::debug_server::SERVICE_NAME,
        "spire.agent.debug.v1.Debug"
    );
    assert_eq!(
        spire::api::agent::delegatedidentity::v1::delegated_identity_server::SERVICE_NAME,
        "spire.api.agent.delegatedidentity.v1.DelegatedIdentity"
    );
    assert_eq!(
        spire_proto::health::health_server::SERVICE_NAME,
        "grpc.health.v1.Health"
    );
}

/// Reads the first field key of an encoded message: (field number, wire type).
fn first_key(bytes: &[u8]) -> Option<(u64, u64)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value >> 3, value & 7));
        }
    }
    None
}

#[test]
fn entry_field_numbers_match_server_spec_by_tag_bytes() {
    const VARINT: u64 = 0;
    const LEN: u64 = 2;
    let id = || {
        Some(Spiffeid {
            trust_domain: "example.org".into(),
            path: "/w".into(),
        })
    };
    // spec/server.md §3.6: Entry { id=1, spiffe_id=2, ... additional_attributes=16 }.
    let cases: Vec<(&str, u64, u64, Entry)> = vec![
        (
            "id",
            1,
            LEN,
            Entry {
                id: "x".into(),
                ..Entry::default()
            },
        ),
        (
            "spiffe_id",
            2,
            LEN,
            Entry {
                spiffe_id: id(),
                ..Entry::default()
            },
        ),
        (
            "parent_id",
            3,
            LEN,
            Entry {
                parent_id: id(),
                ..Entry::default()
            },
        ),
        (
            "selectors",
            4,
            LEN,
            Entry {
                selectors: vec![Selector {
                    r#type: "unix".into(),
                    value: "uid:0".into(),
                }],
                ..Entry::default()
            },
        ),
        (
            "x509_svid_ttl",
            5,
            VARINT,
            Entry {
                x509_svid_ttl: 3600,
                ..Entry::default()
            },
        ),
        (
            "federates_with",
            6,
            LEN,
            Entry {
                federates_with: vec!["other.org".into()],
                ..Entry::default()
            },
        ),
        (
            "admin",
            7,
            VARINT,
            Entry {
                admin: true,
                ..Entry::default()
            },
        ),
        (
            "downstream",
            8,
            VARINT,
            Entry {
                downstream: true,
                ..Entry::default()
            },
        ),
        (
            "expires_at",
            9,
            VARINT,
            Entry {
                expires_at: 1_700_000_000,
                ..Entry::default()
            },
        ),
        (
            "dns_names",
            10,
            LEN,
            Entry {
                dns_names: vec!["w.example.org".into()],
                ..Entry::default()
            },
        ),
        (
            "revision_number",
            11,
            VARINT,
            Entry {
                revision_number: 7,
                ..Entry::default()
            },
        ),
        (
            "store_svid",
            12,
            VARINT,
            Entry {
                store_svid: true,
                ..Entry::default()
            },
        ),
        (
            "jwt_svid_ttl",
            13,
            VARINT,
            Entry {
                jwt_svid_ttl: 300,
                ..Entry::default()
            },
        ),
        (
            "hint",
            14,
            LEN,
            Entry {
                hint: "external".into(),
                ..Entry::default()
            },
        ),
        (
            "created_at",
            15,
            VARINT,
            Entry {
                created_at: 1_700_000_000,
                ..Entry::default()
            },
        ),
        (
            "additional_attributes",
            16,
            LEN,
            Entry {
                additional_attributes: Some(entry::AdditionalAttributes {
                    disable_x509_svid_prefetch: true,
                    jwt_svid_include_jti: false,
                }),
                ..Entry::default()
            },
        ),
    ];
    for (name, number, wire_type, message) in cases {
        let bytes = message.encode_to_vec();
        assert_eq!(
            first_key(&bytes),
            Some((number, wire_type)),
            "Entry.{name}: {bytes:02x?}"
        );
    }

    // Field 16 needs two bytes of key (16 << 3 | 2 = 0x82 0x01), and the
    // nested attributes carry disable_x509_svid_prefetch=1, jwt_svid_include_jti=2.
    let attributes = Entry {
        additional_attributes: Some(entry::AdditionalAttributes {
            disable_x509_svid_prefetch: true,
            jwt_svid_include_jti: true,
        }),
        ..Entry::default()
    };
    assert_eq!(
        attributes.encode_to_vec(),
        vec![0x82, 0x01, 0x04, 0x08, 0x01, 0x10, 0x01]
    );
}

/// (field name, number, protobuf type, repeated?)
type FieldSpec = (&'static str, i32, Type, bool);

fn assert_fields(catalog: &Catalog, message: &str, spec: &[FieldSpec]) {
    let descriptor = catalog
        .messages
        .get(message)
        .unwrap_or_else(|| panic!("message {message} missing"));
    let actual: BTreeMap<&str, (i32, Type, bool)> = descriptor
        .field
        .iter()
        .map(|f| {
            (
                f.name(),
                (f.number(), f.r#type(), f.label() == Label::Repeated),
            )
        })
        .collect();
    let expected: BTreeMap<&str, (i32, Type, bool)> = spec
        .iter()
        .map(|(name, number, ty, repeated)| (*name, (*number, *ty, *repeated)))
        .collect();
    assert_eq!(actual, expected, "{message}");
}

fn assert_enum(catalog: &Catalog, name: &str, spec: &[(&str, i32)]) {
    let descriptor = catalog
        .enums
        .get(name)
        .unwrap_or_else(|| panic!("enum {name} missing"));
    let actual: Vec<(&str, i32)> = descriptor
        .value
        .iter()
        .map(|v| (v.name(), v.number()))
        .collect();
    assert_eq!(actual, spec, "{name}");
}

#[test]
fn spire_types_match_server_and_agent_spec_tables() -> TestResult {
    use Type::{Bool, Bytes, Enum, Int32, Int64, Message, String as Str, Uint64};
    let catalog = catalog()?;

    assert_fields(
        &catalog,
        "spire.api.types.SPIFFEID",
        &[("trust_domain", 1, Str, false), ("path", 2, Str, false)],
    );
    assert_fields(
        &catalog,
        "spire.api.types.Selector",
        &[("type", 1, Str, false), ("value", 2, Str, false)],
    );
    assert_fields(
        &catalog,
        "spire.api.types.Agent",
        &[
            ("id", 1, Message, false),
            ("attestation_type", 2, Str, false),
            ("x509svid_serial_number", 3, Str, false),
            ("x509svid_expires_at", 4, Int64, false),
            ("selectors", 5, Message, true),
            ("banned", 6, Bool, false),
            ("can_reattest", 7, Bool, false),
            ("agent_version", 8, Str, false),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.types.AttestationData",
        &[("type", 1, Str, false), ("payload", 2, Bytes, false)],
    );
    assert_fields(
        &catalog,
        "spire.api.types.JoinToken",
        &[("value", 1, Str, false), ("expires_at", 2, Int64, false)],
    );
    assert_fields(
        &catalog,
        "spire.api.types.Bundle",
        &[
            ("trust_domain", 1, Str, false),
            ("x509_authorities", 2, Message, true),
            ("jwt_authorities", 3, Message, true),
            ("refresh_hint", 4, Int64, false),
            ("sequence_number", 5, Uint64, false),
            ("wit_authorities", 6, Message, true),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.types.X509Certificate",
        &[("asn1", 1, Bytes, false), ("tainted", 2, Bool, false)],
    );
    for key in ["spire.api.types.JWTKey", "spire.api.types.WITKey"] {
        assert_fields(
            &catalog,
            key,
            &[
                ("public_key", 1, Bytes, false),
                ("key_id", 2, Str, false),
                ("expires_at", 3, Int64, false),
                ("tainted", 4, Bool, false),
            ],
        );
    }
    assert_fields(
        &catalog,
        "spire.api.types.X509SVID",
        &[
            ("cert_chain", 1, Bytes, true),
            ("id", 2, Message, false),
            ("expires_at", 3, Int64, false),
            ("hint", 4, Str, false),
        ],
    );
    for svid in ["spire.api.types.JWTSVID", "spire.api.types.WITSVID"] {
        assert_fields(
            &catalog,
            svid,
            &[
                ("token", 1, Str, false),
                ("id", 2, Message, false),
                ("expires_at", 3, Int64, false),
                ("issued_at", 4, Int64, false),
                ("hint", 5, Str, false),
            ],
        );
    }
    assert_fields(
        &catalog,
        "spire.api.types.Status",
        &[("code", 1, Int32, false), ("message", 2, Str, false)],
    );
    assert_fields(
        &catalog,
        "spire.api.types.Entry.AdditionalAttributes",
        &[
            ("disable_x509_svid_prefetch", 1, Bool, false),
            ("jwt_svid_include_jti", 2, Bool, false),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.types.Logger",
        &[
            ("current_level", 1, Enum, false),
            ("launch_level", 2, Enum, false),
        ],
    );
    assert_enum(
        &catalog,
        "spire.api.types.LogLevel",
        &[
            ("UNSPECIFIED", 0),
            ("PANIC", 1),
            ("FATAL", 2),
            ("ERROR", 3),
            ("WARN", 4),
            ("INFO", 5),
            ("DEBUG", 6),
            ("TRACE", 7),
        ],
    );
    assert_enum(
        &catalog,
        "spire.api.types.PermissionDeniedDetails.Reason",
        &[
            ("UNKNOWN", 0),
            ("AGENT_EXPIRED", 1),
            ("AGENT_NOT_ATTESTED", 2),
            ("AGENT_NOT_ACTIVE", 3),
            ("AGENT_BANNED", 4),
            ("AGENT_MUST_REATTEST", 5),
        ],
    );
    let match_behavior = [
        ("MATCH_EXACT", 0),
        ("MATCH_SUBSET", 1),
        ("MATCH_SUPERSET", 2),
        ("MATCH_ANY", 3),
    ];
    assert_enum(
        &catalog,
        "spire.api.types.SelectorMatch.MatchBehavior",
        &match_behavior,
    );
    assert_enum(
        &catalog,
        "spire.api.types.FederatesWithMatch.MatchBehavior",
        &match_behavior,
    );
    assert_enum(
        &catalog,
        "spire.api.server.bundle.v1.BatchDeleteFederatedBundleRequest.Mode",
        &[("RESTRICT", 0), ("DELETE", 1), ("DISSOCIATE", 2)],
    );

    // Agent admin APIs (spec/agent.md §3.1-3.2).
    let di = "spire.api.agent.delegatedidentity.v1";
    assert_fields(
        &catalog,
        &format!("{di}.X509SVIDWithKey"),
        &[
            ("x509_svid", 1, Message, false),
            ("x509_svid_key", 2, Bytes, false),
        ],
    );
    assert_fields(
        &catalog,
        &format!("{di}.SubscribeToX509SVIDsRequest"),
        &[("selectors", 1, Message, true), ("pid", 2, Int32, false)],
    );
    assert_fields(
        &catalog,
        &format!("{di}.SubscribeToX509SVIDsResponse"),
        &[
            ("x509_svids", 1, Message, true),
            ("federates_with", 2, Str, true),
        ],
    );
    assert_fields(
        &catalog,
        &format!("{di}.FetchJWTSVIDsRequest"),
        &[
            ("audience", 1, Str, true),
            ("selectors", 2, Message, true),
            ("pid", 3, Int32, false),
        ],
    );
    assert_fields(
        &catalog,
        &format!("{di}.FetchJWTSVIDsResponse"),
        &[("svids", 1, Message, true)],
    );
    assert_fields(
        &catalog,
        "spire.agent.debug.v1.GetInfoResponse",
        &[
            ("svid_chain", 1, Message, true),
            ("uptime", 2, Int32, false),
            ("svids_count", 3, Int32, false),
            ("last_sync_success", 4, Int64, false),
            ("cached_x509_svids_count", 5, Int32, false),
            ("cached_jwt_svids_count", 6, Int32, false),
            ("cached_svidstore_x509_svids_count", 7, Int32, false),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.server.debug.v1.GetInfoResponse",
        &[
            ("svid_chain", 1, Message, true),
            ("uptime", 2, Int32, false),
            ("agents_count", 3, Int32, false),
            ("federated_bundles_count", 4, Int32, false),
            ("entries_count", 5, Int32, false),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.server.entry.v1.EntryRevision",
        &[
            ("id", 1, Str, false),
            ("revision_number", 2, Int64, false),
            ("created_at", 3, Int64, false),
        ],
    );
    assert_fields(
        &catalog,
        "spire.api.server.localauthority.v1.AuthorityState",
        &[
            ("authority_id", 1, Str, false),
            ("expires_at", 2, Int64, false),
            ("upstream_authority_subject_key_id", 3, Str, false),
        ],
    );
    Ok(())
}

#[test]
fn attest_agent_oneofs_keep_their_numbers() -> TestResult {
    use spire_proto::spire::api::server::agent::v1::{
        AgentX509svidParams, AttestAgentRequest, AttestAgentResponse, attest_agent_request,
        attest_agent_response,
    };
    let first = AttestAgentRequest {
        step: Some(attest_agent_request::Step::Params(
            attest_agent_request::Params {
                data: Some(types::AttestationData {
                    r#type: "join_token".into(),
                    payload: b"token".to_vec(),
                }),
                params: Some(AgentX509svidParams { csr: vec![0x30] }),
            },
        )),
    };
    assert_eq!(first_key(&first.encode_to_vec()), Some((1, 2)));
    let answer = AttestAgentRequest {
        step: Some(attest_agent_request::Step::ChallengeResponse(vec![1])),
    };
    assert_eq!(answer.encode_to_vec(), vec![0x12, 0x01, 0x01]);
    let challenge = AttestAgentResponse {
        step: Some(attest_agent_response::Step::Challenge(vec![9])),
    };
    assert_eq!(challenge.encode_to_vec(), vec![0x12, 0x01, 0x09]);
    Ok(())
}

#[tokio::test]
async fn health_reexport_answers_check() -> TestResult {
    use spire_proto::health::health_check_response::ServingStatus as Wire;
    use spire_proto::health::health_server::Health as _;
    use spire_proto::health::{HealthCheckRequest, HealthReporter, HealthService, ServingStatus};
    let reporter = HealthReporter::new();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let service = HealthService::from_health_reporter(reporter.clone());
    let check = || {
        tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        })
    };
    let answer = service.check(check()).await?.into_inner();
    assert_eq!(answer.status(), Wire::Serving);
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let answer = service.check(check()).await?.into_inner();
    assert_eq!(answer.status(), Wire::NotServing);
    Ok(())
}

#[test]
fn messages_carry_their_protobuf_type_urls() {
    use prost::Name as _;
    // Packed into google.rpc.Status details for PermissionDenied errors.
    assert_eq!(
        types::PermissionDeniedDetails::type_url(),
        "type.googleapis.com/spire.api.types.PermissionDeniedDetails"
    );
    assert_eq!(
        entry::AdditionalAttributes::full_name(),
        "spire.api.types.Entry.AdditionalAttributes"
    );
    assert_eq!(
        spire_proto::workload::X509svidResponse::full_name(),
        "X509SVIDResponse"
    );
}

//! Wire compatibility of the generated SPIFFE Workload API types.
//!
//! The Rust `spiffe` crate (0.19) keeps its generated prost types private, so
//! the oracle is twofold:
//!
//! 1. Bytes built by hand, field by field, from the field-number table of
//!    spec/agent.md §1.3 with a tiny protobuf encoder written here. Our
//!    encoding must equal them byte for byte, and our decoder must read them
//!    back (also with fields out of order and several map entries).
//! 2. A real round trip: our generated `SpiffeWorkloadAPI` server on a Unix
//!    socket, called by the `spiffe` crate's own `WorkloadApiClient`, which
//!    decodes our responses with its independently generated types (and
//!    encodes the requests that our types then decode).

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message as _;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use spire_proto::workload::spiffe_workload_api_server::{
    SERVICE_NAME, SpiffeWorkloadApi, SpiffeWorkloadApiServer,
};
use spire_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse,
    WitsvidRequest, WitsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid,
    X509svidRequest, X509svidResponse,
};
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

type TestResult = Result<(), Box<dyn Error>>;

// ---------------------------------------------------------------------------
// A minimal, independent protobuf encoder (proto3 wire format).
// ---------------------------------------------------------------------------

const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// Hand-built protobuf bytes.
#[derive(Default, Clone)]
struct Wire(Vec<u8>);

impl Wire {
    fn new() -> Self {
        Self::default()
    }

    fn varint(mut self, mut value: u64) -> Self {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return self;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn key(self, field: u32, wire_type: u8) -> Self {
        self.varint(u64::from(field) << 3 | u64::from(wire_type))
    }

    fn bytes(self, field: u32, data: &[u8]) -> Self {
        let mut out = self.key(field, LEN).varint(data.len() as u64);
        out.0.extend_from_slice(data);
        out
    }

    fn string(self, field: u32, text: &str) -> Self {
        self.bytes(field, text.as_bytes())
    }

    fn message(self, field: u32, inner: &Wire) -> Self {
        self.bytes(field, &inner.0)
    }

    fn double(self, field: u32, value: f64) -> Self {
        let mut out = self.key(field, FIXED64);
        out.0.extend_from_slice(&value.to_le_bytes());
        out
    }

    /// One entry of a `map<string, bytes>` / `map<string, string>` field:
    /// an embedded message `{1: key, 2: value}`.
    fn map_entry(self, field: u32, key: &str, value: &[u8]) -> Self {
        self.message(field, &Wire::new().string(1, key).bytes(2, value))
    }

    /// One entry of a `map<string, Message>` field.
    fn map_entry_message(self, field: u32, key: &str, value: &Wire) -> Self {
        self.message(field, &Wire::new().string(1, key).message(2, value))
    }
}

// Field numbers from spec/agent.md §1.3, written out independently of the
// generated code.
mod fields {
    pub mod x509_svid_response {
        pub const SVIDS: u32 = 1;
        pub const CRL: u32 = 2;
        pub const FEDERATED_BUNDLES: u32 = 3;
    }
    pub mod x509_svid {
        pub const SPIFFE_ID: u32 = 1;
        pub const X509_SVID: u32 = 2;
        pub const X509_SVID_KEY: u32 = 3;
        pub const BUNDLE: u32 = 4;
        pub const HINT: u32 = 5;
    }
    pub mod x509_bundles_response {
        pub const CRL: u32 = 1;
        pub const BUNDLES: u32 = 2;
    }
    pub mod jwt_svid_request {
        pub const AUDIENCE: u32 = 1;
        pub const SPIFFE_ID: u32 = 2;
    }
    pub mod jwt_svid_response {
        pub const SVIDS: u32 = 1;
    }
    pub mod jwt_svid {
        pub const SPIFFE_ID: u32 = 1;
        pub const SVID: u32 = 2;
        pub const HINT: u32 = 3;
    }
    pub mod jwt_bundles_response {
        pub const BUNDLES: u32 = 1;
    }
    pub mod validate_request {
        pub const AUDIENCE: u32 = 1;
        pub const SVID: u32 = 2;
    }
    pub mod validate_response {
        pub const SPIFFE_ID: u32 = 1;
        pub const CLAIMS: u32 = 2;
    }
    pub mod wit_svid_request {
        pub const SPIFFE_ID: u32 = 1;
    }
    pub mod wit_svid_response {
        pub const SVIDS: u32 = 1;
    }
    pub mod wit_svid {
        pub const SPIFFE_ID: u32 = 1;
        pub const WIT_SVID: u32 = 2;
        pub const WIT_SVID_KEY: u32 = 3;
        pub const HINT: u32 = 4;
    }
    pub mod wit_bundles_response {
        pub const BUNDLES: u32 = 1;
    }
    /// google.protobuf.Struct / Value / ListValue.
    pub mod structpb {
        pub const STRUCT_FIELDS: u32 = 1;
        pub const VALUE_NUMBER: u32 = 2;
        pub const VALUE_STRING: u32 = 3;
        pub const VALUE_LIST: u32 = 6;
        pub const LIST_VALUES: u32 = 1;
    }
}

fn sample_x509_svid() -> X509svid {
    X509svid {
        spiffe_id: "spiffe://example.org/workload".into(),
        x509_svid: vec![0x30, 0x82, 0x01, 0x0a, 0xde, 0xad],
        x509_svid_key: vec![0x30, 0x81, 0x87, 0x02, 0x01, 0x00],
        bundle: vec![0x30, 0x82, 0x02, 0x00, 0xbe, 0xef],
        hint: "internal".into(),
    }
}

fn x509_svid_wire(svid: &X509svid) -> Wire {
    use fields::x509_svid as f;
    Wire::new()
        .string(f::SPIFFE_ID, &svid.spiffe_id)
        .bytes(f::X509_SVID, &svid.x509_svid)
        .bytes(f::X509_SVID_KEY, &svid.x509_svid_key)
        .bytes(f::BUNDLE, &svid.bundle)
        .string(f::HINT, &svid.hint)
}

#[test]
fn x509_svid_response_encodes_exactly_as_the_field_table() -> TestResult {
    use fields::x509_svid_response as f;
    let svid = sample_x509_svid();
    let ours = X509svidResponse {
        svids: vec![svid.clone()],
        crl: vec![vec![0x30, 0x01, 0x01], vec![0x30, 0x02, 0x02, 0x02]],
        federated_bundles: HashMap::from([("spiffe://other.org".to_string(), vec![0x30, 0x09])]),
    };
    let expected = Wire::new()
        .message(f::SVIDS, &x509_svid_wire(&svid))
        .bytes(f::CRL, &[0x30, 0x01, 0x01])
        .bytes(f::CRL, &[0x30, 0x02, 0x02, 0x02])
        .map_entry(f::FEDERATED_BUNDLES, "spiffe://other.org", &[0x30, 0x09]);
    assert_eq!(ours.encode_to_vec(), expected.0);
    Ok(())
}

#[test]
fn x509_svid_response_decodes_hand_built_bytes() -> TestResult {
    use fields::x509_svid_response as f;
    let first = sample_x509_svid();
    let second = X509svid {
        spiffe_id: "spiffe://example.org/db".into(),
        x509_svid: vec![1, 2, 3],
        x509_svid_key: vec![4, 5, 6],
        bundle: vec![7, 8, 9],
        hint: "external".into(),
    };
    // Fields out of order, two map entries, a second SVID with its own
    // fields reversed: a conforming decoder accepts all of it.
    let reversed_second = {
        use fields::x509_svid as s;
        Wire::new()
            .string(s::HINT, &second.hint)
            .bytes(s::BUNDLE, &second.bundle)
            .bytes(s::X509_SVID_KEY, &second.x509_svid_key)
            .bytes(s::X509_SVID, &second.x509_svid)
            .string(s::SPIFFE_ID, &second.spiffe_id)
    };
    let bytes = Wire::new()
        .map_entry(f::FEDERATED_BUNDLES, "spiffe://a.org", b"A")
        .bytes(f::CRL, b"crl-1")
        .message(f::SVIDS, &x509_svid_wire(&first))
        .map_entry(f::FEDERATED_BUNDLES, "spiffe://b.org", b"BB")
        .message(f::SVIDS, &reversed_second)
        .bytes(f::CRL, b"crl-2");

    let decoded = X509svidResponse::decode(bytes.0.as_slice())?;
    assert_eq!(decoded.svids, vec![first, second]);
    assert_eq!(decoded.crl, vec![b"crl-1".to_vec(), b"crl-2".to_vec()]);
    assert_eq!(decoded.federated_bundles.len(), 2);
    assert_eq!(decoded.federated_bundles["spiffe://a.org"], b"A");
    assert_eq!(decoded.federated_bundles["spiffe://b.org"], b"BB");
    Ok(())
}

#[test]
fn x509_bundles_response_matches_the_field_table() -> TestResult {
    use fields::x509_bundles_response as f;
    let ours = X509BundlesResponse {
        crl: vec![b"crl".to_vec()],
        bundles: HashMap::from([("spiffe://example.org".to_string(), b"der".to_vec())]),
    };
    let expected =
        Wire::new()
            .bytes(f::CRL, b"crl")
            .map_entry(f::BUNDLES, "spiffe://example.org", b"der");
    assert_eq!(ours.encode_to_vec(), expected.0);
    assert_eq!(X509BundlesResponse::decode(expected.0.as_slice())?, ours);
    Ok(())
}

#[test]
fn jwt_svid_request_and_response_match_the_field_table() -> TestResult {
    let request = JwtsvidRequest {
        audience: vec!["aud-1".into(), "aud-2".into()],
        spiffe_id: "spiffe://example.org/workload".into(),
    };
    let request_wire = {
        use fields::jwt_svid_request as f;
        Wire::new()
            .string(f::AUDIENCE, "aud-1")
            .string(f::AUDIENCE, "aud-2")
            .string(f::SPIFFE_ID, "spiffe://example.org/workload")
    };
    assert_eq!(request.encode_to_vec(), request_wire.0);
    assert_eq!(JwtsvidRequest::decode(request_wire.0.as_slice())?, request);

    let response = JwtsvidResponse {
        svids: vec![
            Jwtsvid {
                spiffe_id: "spiffe://example.org/a".into(),
                svid: "header.claims.sig".into(),
                hint: "a-hint".into(),
            },
            Jwtsvid {
                spiffe_id: "spiffe://example.org/b".into(),
                svid: "h.c.s".into(),
                hint: String::new(),
            },
        ],
    };
    let response_wire = {
        use fields::jwt_svid as s;
        use fields::jwt_svid_response as f;
        Wire::new()
            .message(
                f::SVIDS,
                &Wire::new()
                    .string(s::SPIFFE_ID, "spiffe://example.org/a")
                    .string(s::SVID, "header.claims.sig")
                    .string(s::HINT, "a-hint"),
            )
            // An empty hint is simply absent on the wire (proto3 default).
            .message(
                f::SVIDS,
                &Wire::new()
                    .string(s::SPIFFE_ID, "spiffe://example.org/b")
                    .string(s::SVID, "h.c.s"),
            )
    };
    assert_eq!(response.encode_to_vec(), response_wire.0);
    assert_eq!(
        JwtsvidResponse::decode(response_wire.0.as_slice())?,
        response
    );
    Ok(())
}

#[test]
fn jwt_bundles_response_matches_the_field_table() -> TestResult {
    use fields::jwt_bundles_response as f;
    let jwks = br#"{"keys":[]}"#;
    let ours = JwtBundlesResponse {
        bundles: HashMap::from([("spiffe://example.org".to_string(), jwks.to_vec())]),
    };
    let expected = Wire::new().map_entry(f::BUNDLES, "spiffe://example.org", jwks);
    assert_eq!(ours.encode_to_vec(), expected.0);

    let two = Wire::new()
        .map_entry(f::BUNDLES, "spiffe://example.org", jwks)
        .map_entry(f::BUNDLES, "spiffe://other.org", b"{}");
    let decoded = JwtBundlesResponse::decode(two.0.as_slice())?;
    assert_eq!(decoded.bundles.len(), 2);
    assert_eq!(decoded.bundles["spiffe://example.org"], jwks);
    assert_eq!(decoded.bundles["spiffe://other.org"], b"{}");
    Ok(())
}

#[test]
fn validate_jwt_svid_messages_match_the_field_table() -> TestResult {
    let request = ValidateJwtsvidRequest {
        audience: "aud".into(),
        svid: "h.c.s".into(),
    };
    let request_wire = {
        use fields::validate_request as f;
        Wire::new()
            .string(f::AUDIENCE, "aud")
            .string(f::SVID, "h.c.s")
    };
    assert_eq!(request.encode_to_vec(), request_wire.0);

    // Response with claims {"sub": "...", "aud": ["a", "b"], "exp": 1.7e9}
    // built with the google.protobuf.Struct field numbers.
    use fields::structpb as s;
    use fields::validate_response as f;
    let string_value = |text: &str| Wire::new().string(s::VALUE_STRING, text);
    let claims = Wire::new()
        .map_entry_message(
            s::STRUCT_FIELDS,
            "sub",
            &string_value("spiffe://example.org/w"),
        )
        .map_entry_message(
            s::STRUCT_FIELDS,
            "aud",
            &Wire::new().message(
                s::VALUE_LIST,
                &Wire::new()
                    .message(s::LIST_VALUES, &string_value("a"))
                    .message(s::LIST_VALUES, &string_value("b")),
            ),
        )
        .map_entry_message(
            s::STRUCT_FIELDS,
            "exp",
            &Wire::new().double(s::VALUE_NUMBER, 1.7e9),
        );
    let response_wire = Wire::new()
        .string(f::SPIFFE_ID, "spiffe://example.org/w")
        .message(f::CLAIMS, &claims);

    let decoded = ValidateJwtsvidResponse::decode(response_wire.0.as_slice())?;
    assert_eq!(decoded.spiffe_id, "spiffe://example.org/w");
    let fields = decoded.claims.ok_or("claims missing")?.fields;
    assert_eq!(
        fields["sub"].kind,
        Some(Kind::StringValue("spiffe://example.org/w".into()))
    );
    assert_eq!(fields["exp"].kind, Some(Kind::NumberValue(1.7e9)));
    let Some(Kind::ListValue(aud)) = &fields["aud"].kind else {
        return Err("aud is not a list".into());
    };
    let aud: Vec<_> = aud.values.iter().map(|v| v.kind.clone()).collect();
    assert_eq!(
        aud,
        vec![
            Some(Kind::StringValue("a".into())),
            Some(Kind::StringValue("b".into()))
        ]
    );

    // Single-claim response: byte-exact in the other direction too.
    let one = ValidateJwtsvidResponse {
        spiffe_id: "spiffe://example.org/w".into(),
        claims: Some(Struct {
            fields: [(
                "exp".to_string(),
                Value {
                    kind: Some(Kind::NumberValue(1.7e9)),
                },
            )]
            .into(),
        }),
    };
    let one_wire = Wire::new()
        .string(f::SPIFFE_ID, "spiffe://example.org/w")
        .message(
            f::CLAIMS,
            &Wire::new().map_entry_message(
                s::STRUCT_FIELDS,
                "exp",
                &Wire::new().double(s::VALUE_NUMBER, 1.7e9),
            ),
        );
    assert_eq!(one.encode_to_vec(), one_wire.0);
    Ok(())
}

#[test]
fn wit_messages_match_the_field_table() -> TestResult {
    let request = WitsvidRequest {
        spiffe_id: "spiffe://example.org/w".into(),
    };
    assert_eq!(
        request.encode_to_vec(),
        Wire::new()
            .string(
                fields::wit_svid_request::SPIFFE_ID,
                "spiffe://example.org/w"
            )
            .0
    );

    let response = WitsvidResponse {
        svids: vec![spire_proto::workload::Witsvid {
            spiffe_id: "spiffe://example.org/w".into(),
            wit_svid: "h.c.s".into(),
            wit_svid_key: r#"{"kty":"EC"}"#.into(),
            hint: "h".into(),
        }],
    };
    let svid_wire = {
        use fields::wit_svid as s;
        Wire::new()
            .string(s::SPIFFE_ID, "spiffe://example.org/w")
            .string(s::WIT_SVID, "h.c.s")
            .string(s::WIT_SVID_KEY, r#"{"kty":"EC"}"#)
            .string(s::HINT, "h")
    };
    let expected = Wire::new().message(fields::wit_svid_response::SVIDS, &svid_wire);
    assert_eq!(response.encode_to_vec(), expected.0);

    // WIT bundle values are `string`, JWT bundle values `bytes`: the wire is
    // the same length-delimited form, the Rust type differs.
    let bundles = WitBundlesResponse {
        bundles: HashMap::from([("spiffe://example.org".to_string(), "{}".to_string())]),
    };
    assert_eq!(
        bundles.encode_to_vec(),
        Wire::new()
            .map_entry(
                fields::wit_bundles_response::BUNDLES,
                "spiffe://example.org",
                b"{}"
            )
            .0
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Live round trip against the `spiffe` crate's WorkloadApiClient.
// ---------------------------------------------------------------------------

/// Requests our server decoded, as the `spiffe` client encoded them.
#[derive(Default)]
struct Seen {
    jwt_requests: Vec<JwtsvidRequest>,
    validate_requests: Vec<ValidateJwtsvidRequest>,
    calls: Vec<&'static str>,
}

/// A `SpiffeWorkloadAPI` that answers every call with fixed responses and,
/// like SPIRE, insists on the `workload.spiffe.io: true` security header.
#[derive(Default, Clone)]
struct FixedWorkloadApi {
    x509: X509svidResponse,
    x509_bundles: X509BundlesResponse,
    jwt: JwtsvidResponse,
    jwt_bundles: JwtBundlesResponse,
    validate: ValidateJwtsvidResponse,
    seen: Arc<Mutex<Seen>>,
}

type OneShot<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, Status>>>;

impl FixedWorkloadApi {
    fn check<T>(&self, call: &'static str, request: &Request<T>) -> Result<(), Status> {
        let values: Vec<_> = request
            .metadata()
            .get_all("workload.spiffe.io")
            .iter()
            .collect();
        if values.len() != 1 || values[0] != "true" {
            return Err(Status::invalid_argument(
                "security header missing from request",
            ));
        }
        self.seen
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .calls
            .push(call);
        Ok(())
    }
}

fn one_message<T>(message: T) -> Response<OneShot<T>> {
    Response::new(tokio_stream::iter(vec![Ok(message)]))
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for FixedWorkloadApi {
    type FetchX509SVIDStream = OneShot<X509svidResponse>;
    type FetchX509BundlesStream = OneShot<X509BundlesResponse>;
    type FetchJWTBundlesStream = OneShot<JwtBundlesResponse>;
    type FetchWITSVIDStream = OneShot<WitsvidResponse>;
    type FetchWITBundlesStream = OneShot<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.check("FetchX509SVID", &request)?;
        Ok(one_message(self.x509.clone()))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.check("FetchX509Bundles", &request)?;
        Ok(one_message(self.x509_bundles.clone()))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        self.check("FetchJWTSVID", &request)?;
        self.seen
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .jwt_requests
            .push(request.into_inner());
        Ok(Response::new(self.jwt.clone()))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.check("FetchJWTBundles", &request)?;
        Ok(one_message(self.jwt_bundles.clone()))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        self.check("ValidateJWTSVID", &request)?;
        self.seen
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .validate_requests
            .push(request.into_inner());
        Ok(Response::new(self.validate.clone()))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        self.check("FetchWITSVID", &request)?;
        Err(Status::unimplemented(
            "fetching WIT-SVIDs is not implemented",
        ))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        self.check("FetchWITBundles", &request)?;
        Err(Status::unimplemented(
            "fetching WIT bundles is not implemented",
        ))
    }
}

/// Our generated server, listening on a Unix socket in a temporary directory.
struct RunningServer {
    _dir: tempfile::TempDir,
    address: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    fn start(api: FixedWorkloadApi) -> Result<Self, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SpiffeWorkloadApiServer::new(api))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        Ok(Self {
            _dir: dir,
            address: format!("unix://{}", path.display()),
            stop: Some(stop),
            task,
        })
    }

    async fn client(&self) -> Result<spiffe::WorkloadApiClient, Box<dyn Error>> {
        Ok(spiffe::WorkloadApiClient::connect_to(&self.address).await?)
    }

    async fn shutdown(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

/// A CA, an intermediate and a leaf X509-SVID made with rcgen.
struct Pki {
    root_der: Vec<u8>,
    chain_der: Vec<u8>,
    leaf_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
}

fn ca_params(trust_domain: &str) -> Result<CertificateParams, Box<dyn Error>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(format!(
        "spiffe://{trust_domain}"
    ))?)];
    Ok(params)
}

fn make_pki(trust_domain: &str, workload_path: &str) -> Result<Pki, Box<dyn Error>> {
    let root = CertifiedIssuer::self_signed(ca_params(trust_domain)?, KeyPair::generate()?)?;
    let intermediate =
        CertifiedIssuer::signed_by(ca_params(trust_domain)?, KeyPair::generate()?, &root)?;

    let mut leaf_params = CertificateParams::new(Vec::<String>::new())?;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(format!(
        "spiffe://{trust_domain}{workload_path}"
    ))?)];
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &intermediate)?;

    let leaf_der = leaf.der().to_vec();
    let intermediate_der = intermediate.der().to_vec();
    let mut chain_der = leaf_der.clone();
    chain_der.extend_from_slice(&intermediate_der);
    Ok(Pki {
        root_der: root.der().to_vec(),
        chain_der,
        leaf_der,
        intermediate_der,
        key_pkcs8: leaf_key.serialize_der(),
    })
}

/// An unsigned but well-formed compact JWS with SPIFFE JWT-SVID claims.
fn jwt(sub: &str, aud: &[&str], kid: &str) -> String {
    let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#);
    let aud = aud
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(",");
    let claims = format!(r#"{{"sub":"{sub}","aud":[{aud}],"exp":4102444800}}"#);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature")
    )
}

fn jwks(kid: &str) -> Vec<u8> {
    format!(
        r#"{{"keys":[{{"kty":"EC","kid":"{kid}","crv":"P-256","x":"{x}","y":"{y}"}}]}}"#,
        x = URL_SAFE_NO_PAD.encode([1u8; 32]),
        y = URL_SAFE_NO_PAD.encode([2u8; 32]),
    )
    .into_bytes()
}

#[tokio::test]
async fn spiffe_client_decodes_our_x509_svid_response() -> TestResult {
    let own = make_pki("example.org", "/workload")?;
    let other = make_pki("other.org", "/unused")?;
    let api = FixedWorkloadApi {
        x509: X509svidResponse {
            svids: vec![X509svid {
                spiffe_id: "spiffe://example.org/workload".into(),
                x509_svid: own.chain_der.clone(),
                x509_svid_key: own.key_pkcs8.clone(),
                bundle: own.root_der.clone(),
                hint: "internal".into(),
            }],
            crl: vec![b"ignored-by-the-client".to_vec()],
            federated_bundles: HashMap::from([(
                "spiffe://other.org".to_string(),
                other.root_der.clone(),
            )]),
        },
        ..FixedWorkloadApi::default()
    };
    let seen = Arc::clone(&api.seen);
    let server = RunningServer::start(api)?;
    let client = server.client().await?;

    let context = client.fetch_x509_context().await?;
    let svid = context.default_svid().ok_or("no default SVID")?;
    assert_eq!(
        svid.spiffe_id().to_string(),
        "spiffe://example.org/workload"
    );
    assert_eq!(svid.hint(), Some("internal"));
    let chain: Vec<&[u8]> = svid.cert_chain().iter().map(|c| c.as_bytes()).collect();
    assert_eq!(
        chain,
        vec![own.leaf_der.as_slice(), own.intermediate_der.as_slice()]
    );
    assert_eq!(svid.private_key().as_bytes(), own.key_pkcs8.as_slice());

    let bundles = context.bundle_set();
    assert_eq!(bundles.len(), 2);
    let own_td = spiffe::TrustDomain::new("example.org")?;
    let other_td = spiffe::TrustDomain::new("other.org")?;
    let own_bundle = bundles.get(&own_td).ok_or("own bundle missing")?;
    let other_bundle = bundles.get(&other_td).ok_or("federated bundle missing")?;
    assert_eq!(
        own_bundle.authorities()[0].as_bytes(),
        own.root_der.as_slice()
    );
    assert_eq!(
        other_bundle.authorities()[0].as_bytes(),
        other.root_der.as_slice()
    );

    // The one-shot X509-SVID fetch goes through the same path.
    let default = client.fetch_x509_svid().await?;
    assert_eq!(default.spiffe_id(), svid.spiffe_id());

    assert_eq!(
        seen.lock().map_err(|_| "poisoned")?.calls,
        vec!["FetchX509SVID", "FetchX509SVID"]
    );
    server.shutdown().await
}

#[tokio::test]
async fn spiffe_client_decodes_our_x509_bundles_response() -> TestResult {
    let own = make_pki("example.org", "/w")?;
    let other = make_pki("other.org", "/w")?;
    let api = FixedWorkloadApi {
        x509_bundles: X509BundlesResponse {
            crl: Vec::new(),
            bundles: HashMap::from([
                ("spiffe://example.org".to_string(), own.root_der.clone()),
                ("spiffe://other.org".to_string(), other.root_der.clone()),
            ]),
        },
        ..FixedWorkloadApi::default()
    };
    let server = RunningServer::start(api)?;
    let client = server.client().await?;

    let set = client.fetch_x509_bundles().await?;
    assert_eq!(set.len(), 2);
    for (td, der) in [
        ("example.org", &own.root_der),
        ("other.org", &other.root_der),
    ] {
        let bundle = set
            .get(&spiffe::TrustDomain::new(td)?)
            .ok_or("bundle missing")?;
        assert_eq!(bundle.authorities().len(), 1);
        assert_eq!(bundle.authorities()[0].as_bytes(), der.as_slice());
    }
    server.shutdown().await
}

#[tokio::test]
async fn spiffe_client_decodes_our_jwt_svid_response() -> TestResult {
    let token_a = jwt("spiffe://example.org/a", &["my-aud"], "kid-1");
    let token_b = jwt("spiffe://example.org/b", &["my-aud", "other"], "kid-1");
    let api = FixedWorkloadApi {
        jwt: JwtsvidResponse {
            svids: vec![
                Jwtsvid {
                    spiffe_id: "spiffe://example.org/a".into(),
                    svid: token_a.clone(),
                    hint: "first".into(),
                },
                Jwtsvid {
                    spiffe_id: "spiffe://example.org/b".into(),
                    svid: token_b.clone(),
                    hint: "second".into(),
                },
            ],
        },
        ..FixedWorkloadApi::default()
    };
    let seen = Arc::clone(&api.seen);
    let server = RunningServer::start(api)?;
    let client = server.client().await?;

    // Raw token of the default (first) SVID.
    let token = client.fetch_jwt_token(["my-aud"], None).await?;
    assert_eq!(token, token_a);

    // Every SVID, parsed by the client, with its hint.
    let wanted = spiffe::SpiffeId::new("spiffe://example.org/b")?;
    let all = client
        .fetch_all_jwt_svids(["my-aud", "other"], Some(&wanted))
        .await?;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].token(), token_a);
    assert_eq!(all[0].hint(), Some("first"));
    assert_eq!(all[0].spiffe_id().to_string(), "spiffe://example.org/a");
    assert_eq!(all[1].token(), token_b);
    assert_eq!(all[1].hint(), Some("second"));
    assert_eq!(
        all[1].audience(),
        ["my-aud".to_string(), "other".to_string()]
    );

    // The reverse direction: what the spiffe client encoded, our types decoded.
    let jwt_requests = seen.lock().map_err(|_| "poisoned")?.jwt_requests.clone();
    assert_eq!(
        jwt_requests,
        vec![
            JwtsvidRequest {
                audience: vec!["my-aud".into()],
                spiffe_id: String::new(),
            },
            JwtsvidRequest {
                audience: vec!["my-aud".into(), "other".into()],
                spiffe_id: "spiffe://example.org/b".into(),
            },
        ]
    );
    server.shutdown().await
}

#[tokio::test]
async fn spiffe_client_decodes_our_jwt_bundles_response() -> TestResult {
    let api = FixedWorkloadApi {
        jwt_bundles: JwtBundlesResponse {
            bundles: HashMap::from([
                ("spiffe://example.org".to_string(), jwks("own-kid")),
                ("spiffe://other.org".to_string(), jwks("other-kid")),
            ]),
        },
        ..FixedWorkloadApi::default()
    };
    let server = RunningServer::start(api)?;
    let client = server.client().await?;

    let set = client.fetch_jwt_bundles().await?;
    assert_eq!(set.len(), 2);
    for (td, kid) in [("example.org", "own-kid"), ("other.org", "other-kid")] {
        let bundle = set
            .get(&spiffe::TrustDomain::new(td)?)
            .ok_or("bundle missing")?;
        let authority = bundle.find_jwt_authority(kid).ok_or("kid missing")?;
        let jwk: serde_json::Value = serde_json::from_slice(authority.jwk_json())?;
        assert_eq!(jwk["kid"], kid);
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
    }
    server.shutdown().await
}

#[tokio::test]
async fn spiffe_client_reads_our_validate_jwt_svid_response() -> TestResult {
    let token = jwt("spiffe://example.org/w", &["my-aud"], "kid-1");
    let claims = Struct {
        fields: [
            (
                "sub".to_string(),
                Value {
                    kind: Some(Kind::StringValue("spiffe://example.org/w".into())),
                },
            ),
            (
                "aud".to_string(),
                Value {
                    kind: Some(Kind::ListValue(ListValue {
                        values: vec![Value {
                            kind: Some(Kind::StringValue("my-aud".into())),
                        }],
                    })),
                },
            ),
            (
                "exp".to_string(),
                Value {
                    kind: Some(Kind::NumberValue(4_102_444_800.0)),
                },
            ),
        ]
        .into(),
    };
    let api = FixedWorkloadApi {
        validate: ValidateJwtsvidResponse {
            spiffe_id: "spiffe://example.org/w".into(),
            claims: Some(claims),
        },
        ..FixedWorkloadApi::default()
    };
    let seen = Arc::clone(&api.seen);
    let server = RunningServer::start(api)?;
    let client = server.client().await?;

    // The client rejects a response without sub/aud/exp claims, so success
    // means it decoded our google.protobuf.Struct.
    let svid = client.validate_jwt_token("my-aud", &token).await?;
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/w");

    let validate_requests = seen
        .lock()
        .map_err(|_| "poisoned")?
        .validate_requests
        .clone();
    assert_eq!(
        validate_requests,
        vec![ValidateJwtsvidRequest {
            audience: "my-aud".into(),
            svid: token,
        }]
    );
    server.shutdown().await
}

#[test]
fn workload_service_name_has_no_package() {
    assert_eq!(SERVICE_NAME, "SpiffeWorkloadAPI");
}

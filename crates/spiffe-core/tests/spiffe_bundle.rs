//! Conformance tests for SPIFFE bundles, bundle maps and bundle sets, named by the rule
//! IDs of `spec/conformance.md` §2 (BUN-*, MAP-*, TD-*), §3d (X5-31..X5-36) and §4
//! (JWT-18..JWT-20).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData};
use rustls_pki_types::CertificateDer;
use serde_json::{Value, json};
use spiffe_core::{
    BundleError, BundleSet, JwtBundleSource, PublicKey, SpiffeBundle, TrustDomain,
    X509BundleSource, bundle_map_to_json, parse_bundle_map,
};

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

/// A self-signed CA certificate of the SPIRE shape, with a fresh P-256 key.
fn ca_cert(td_name: &str) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![rcgen::SanType::URI(
        format!("spiffe://{td_name}").try_into().unwrap(),
    )];
    params.self_signed(&key).unwrap().der().clone()
}

fn jwt_key() -> PublicKey {
    let key = KeyPair::generate().unwrap();
    PublicKey::from_spki_der(&key.subject_public_key_info()).unwrap()
}

fn ec_jwk(use_: Option<&str>, kid: Option<&str>) -> Value {
    let mut jwk = serde_json::to_value(jwt_key().to_jwk(kid, use_.unwrap_or("x"))).unwrap();
    if use_.is_none() {
        jwk.as_object_mut().unwrap().remove("use");
    }
    jwk
}

fn x509_jwk(cert: &CertificateDer<'_>) -> Value {
    let mut jwk = ec_jwk(Some("x509-svid"), None);
    jwk["x5c"] = json!([STANDARD.encode(cert.as_ref())]);
    jwk
}

fn parse(doc: &Value) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::parse(td("example.org"), doc.to_string().as_bytes())
}

fn full_bundle() -> SpiffeBundle {
    let mut bundle = SpiffeBundle::new(td("example.org"));
    bundle
        .x509_bundle_mut()
        .add_authority(ca_cert("example.org"))
        .unwrap();
    bundle
        .x509_bundle_mut()
        .add_authority(ca_cert("example.org"))
        .unwrap();
    bundle
        .jwt_bundle_mut()
        .add_authority("kid-1", jwt_key())
        .unwrap();
    bundle
        .jwt_bundle_mut()
        .add_authority("kid-2", jwt_key())
        .unwrap();
    bundle.set_refresh_hint(Some(Duration::from_secs(300)));
    bundle.set_sequence_number(Some(7));
    bundle
}

// BUN-01: a bundle is a JWK Set that does not carry its trust domain name; the name is
// kept beside it (TD-02).
#[test]
fn bun_01_bundle_is_jwks_without_trust_domain() {
    let bundle = full_bundle();
    let doc: Value = serde_json::from_slice(&bundle.to_json().unwrap()).unwrap();
    assert!(doc["keys"].is_array());
    assert!(
        !doc.to_string().contains("example.org\""),
        "no trust domain member"
    );
    let parsed = SpiffeBundle::parse(td("other.org"), &bundle.to_json().unwrap()).unwrap();
    assert_eq!(parsed.trust_domain(), &td("other.org"));
}

// BUN-02: extra top-level members are allowed, and not required.
#[test]
fn bun_02_accepts_extra_top_level_members() {
    let doc = json!({"keys": [], "custom": {"a": 1}, "spiffe_future": true});
    assert!(parse(&doc).unwrap().is_empty());
}

#[test]
fn bun_02_rejects_non_object_document() {
    assert_eq!(parse(&json!([1, 2])), Err(BundleError::NotAnObject));
    assert!(matches!(
        SpiffeBundle::parse(td("example.org"), b"{not json"),
        Err(BundleError::Json(_))
    ));
}

// BUN-03, BUN-04, BUN-05: `spiffe_sequence` is an integer of at least 64 bits.
#[test]
fn bun_04_accepts_integer_sequence_up_to_u64_max() {
    let b = parse(&json!({"keys": [], "spiffe_sequence": u64::MAX})).unwrap();
    assert_eq!(b.sequence_number(), Some(u64::MAX));
    let b = parse(&json!({"keys": [], "spiffe_sequence": 0})).unwrap();
    assert_eq!(b.sequence_number(), Some(0));
}

#[test]
fn bun_04_rejects_non_integer_sequence() {
    for bad in [json!("1"), json!(1.5), json!(-1), json!(null), json!([1])] {
        assert_eq!(
            parse(&json!({"keys": [], "spiffe_sequence": bad})),
            Err(BundleError::InvalidSequence),
            "{bad}"
        );
    }
}

#[test]
fn bun_03_publisher_writes_sequence() {
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    assert_eq!(doc["spiffe_sequence"], json!(7));
}

// BUN-06, BUN-07: `spiffe_refresh_hint` is an integer number of seconds.
#[test]
fn bun_07_accepts_integer_refresh_hint() {
    let b = parse(&json!({"keys": [], "spiffe_refresh_hint": 300})).unwrap();
    assert_eq!(b.refresh_hint(), Some(Duration::from_secs(300)));
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    assert_eq!(doc["spiffe_refresh_hint"], json!(300));
}

#[test]
fn bun_07_rejects_non_integer_refresh_hint() {
    for bad in [json!("5m"), json!(2.5), json!(-5), json!(true)] {
        assert_eq!(
            parse(&json!({"keys": [], "spiffe_refresh_hint": bad})),
            Err(BundleError::InvalidRefreshHint),
            "{bad}"
        );
    }
}

// BUN-08: `keys` is present and an array.
#[test]
fn bun_08_rejects_missing_or_non_array_keys() {
    assert_eq!(parse(&json!({})), Err(BundleError::MissingKeys));
    assert_eq!(parse(&json!({"keys": {}})), Err(BundleError::KeysNotArray));
    assert_eq!(parse(&json!({"keys": "x"})), Err(BundleError::KeysNotArray));
    assert_eq!(
        parse(&json!({"keys": [1]})),
        Err(BundleError::KeyNotObject { index: 0 })
    );
}

#[test]
fn bun_08_accepts_keys_array() {
    let cert = ca_cert("example.org");
    let b = parse(&json!({"keys": [x509_jwk(&cert)]})).unwrap();
    assert_eq!(b.x509_bundle().authorities(), &[cert]);
}

// BUN-09, BUN-15: a JWK of an unknown key type is ignored, the bundle is not rejected.
#[test]
fn bun_15_ignores_unknown_kty() {
    let cert = ca_cert("example.org");
    let mut okp = x509_jwk(&ca_cert("example.org"));
    okp["kty"] = json!("OKP");
    let mut oct = ec_jwk(Some("jwt-svid"), Some("hmac"));
    oct["kty"] = json!("oct");
    let doc = json!({"keys": [okp, oct, x509_jwk(&cert)]});
    let (b, ignored) =
        SpiffeBundle::parse_with_ignored(td("example.org"), doc.to_string().as_bytes()).unwrap();
    assert_eq!(b.x509_bundle().authorities(), &[cert]);
    assert!(b.jwt_bundle().is_empty());
    assert_eq!(ignored.len(), 2);
    assert!(ignored[0].reason.contains("OKP"), "{ignored:?}");
}

#[test]
fn bun_09_ignores_unknown_curve() {
    let mut jwk = ec_jwk(Some("jwt-svid"), Some("k"));
    jwk["crv"] = json!("secp256k1");
    let (b, ignored) = SpiffeBundle::parse_with_ignored(
        td("example.org"),
        json!({"keys": [jwk]}).to_string().as_bytes(),
    )
    .unwrap();
    assert!(b.is_empty());
    assert_eq!(ignored.len(), 1);
}

// BUN-10: `keys` may be empty: the trust domain revoked every key.
#[test]
fn bun_10_accepts_empty_keys() {
    let b = parse(&json!({"keys": []})).unwrap();
    assert!(b.is_empty());
    let doc: Value = serde_json::from_slice(&b.to_json().unwrap()).unwrap();
    assert_eq!(doc, json!({"keys": []}));
}

// BUN-11: a bundle with no usable key leaves nothing to trust: every lookup of its
// authorities comes back empty, whether `keys` was empty or every entry was ignored.
#[test]
fn bun_11_no_usable_keys_means_no_trust() {
    let mut jwk = ec_jwk(Some("jwt-svid"), Some("k"));
    jwk["kty"] = json!("OKP");
    let b = parse(&json!({"keys": [jwk, {"kty": "EC", "use": "unknown"}]})).unwrap();
    assert!(b.is_empty());
    assert!(b.x509_bundle().authorities().is_empty());
    assert!(b.jwt_bundle().find_authority("k").is_none());
    let with_keys = full_bundle();
    assert!(!with_keys.is_empty());
}

// BUN-12: each SVID type owns its `use`: x509-svid entries feed X.509 validation only and
// jwt-svid entries JWT validation only (also WAPI-16, JWT-20).
#[test]
fn bun_12_uses_are_kept_apart() {
    let cert = ca_cert("example.org");
    let doc = json!({"keys": [x509_jwk(&cert), ec_jwk(Some("jwt-svid"), Some("k1"))]});
    let b = parse(&doc).unwrap();
    assert_eq!(b.x509_bundle().authorities().len(), 1);
    assert_eq!(b.jwt_bundle().authorities().count(), 1);
    assert!(b.jwt_bundle().find_authority("k1").is_some());
}

// BUN-13: JWK members the spec does not define are tolerated.
#[test]
fn bun_13_tolerates_undefined_jwk_members() {
    let mut jwk = ec_jwk(Some("jwt-svid"), Some("k1"));
    jwk["alg"] = json!("ES256");
    jwk["x-vendor"] = json!({"nested": [1, 2]});
    let b = parse(&json!({"keys": [jwk]})).unwrap();
    assert!(b.jwt_bundle().find_authority("k1").is_some());
}

// BUN-14: every JWK sets `kty` (RFC 7517 §4.1 makes it required): a JWK without one is
// not a JWK and the bundle is refused; ours always write it.
#[test]
fn bun_14_rejects_jwk_without_kty() {
    let mut jwk = ec_jwk(Some("jwt-svid"), Some("k1"));
    jwk.as_object_mut().unwrap().remove("kty");
    assert!(matches!(
        parse(&json!({"keys": [jwk]})),
        Err(BundleError::MalformedKey { index: 0, .. })
    ));
}

#[test]
fn bun_14_kty_always_written() {
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    for key in doc["keys"].as_array().unwrap() {
        assert!(key["kty"].is_string(), "{key}");
    }
}

// BUN-16, BUN-17: `use` is case-sensitive; missing or unknown `use` means ignored.
#[test]
fn bun_17_ignores_missing_or_unknown_use() {
    let cert = ca_cert("example.org");
    let mut upper = x509_jwk(&cert);
    upper["use"] = json!("X509-SVID");
    let mut sig = ec_jwk(Some("sig"), Some("k2"));
    sig["use"] = json!("sig");
    let doc = json!({"keys": [upper, sig, ec_jwk(None, Some("k3"))]});
    let (b, ignored) =
        SpiffeBundle::parse_with_ignored(td("example.org"), doc.to_string().as_bytes()).unwrap();
    assert!(b.is_empty());
    assert_eq!(
        ignored.iter().map(|i| i.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn bun_16_known_uses_are_accepted_and_written() {
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    let uses: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["use"].as_str().unwrap())
        .collect();
    assert_eq!(uses, vec!["x509-svid", "x509-svid", "jwt-svid", "jwt-svid"]);
}

// X5-31: one `x509-svid` JWK per CA certificate.
#[test]
fn x5_31_one_entry_per_ca_certificate() {
    let bundle = full_bundle();
    let doc: Value = serde_json::from_slice(&bundle.to_json().unwrap()).unwrap();
    let x509: Vec<&Value> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "x509-svid")
        .collect();
    assert_eq!(x509.len(), bundle.x509_bundle().authorities().len());
}

// X5-32: `x509-svid` entries do not set `kid` (and a reader tolerates one that does).
#[test]
fn x5_32_x509_entries_have_no_kid() {
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    for key in doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "x509-svid")
    {
        assert!(key.get("kid").is_none(), "{key}");
    }
    let mut with_kid = x509_jwk(&ca_cert("example.org"));
    with_kid["kid"] = json!("unexpected");
    assert_eq!(
        parse(&json!({"keys": [with_kid]}))
            .unwrap()
            .x509_bundle()
            .authorities()
            .len(),
        1
    );
}

// X5-33: `x5c` holds exactly one standard base64 DER certificate.
#[test]
fn x5_33_x5c_is_one_standard_base64_certificate() {
    let bundle = full_bundle();
    let doc: Value = serde_json::from_slice(&bundle.to_json().unwrap()).unwrap();
    let first = &doc["keys"][0]["x5c"];
    assert_eq!(first.as_array().unwrap().len(), 1);
    let der = STANDARD.decode(first[0].as_str().unwrap()).unwrap();
    assert_eq!(der, bundle.x509_bundle().authorities()[0].as_ref());
}

#[test]
fn x5_33_rejects_base64url_or_garbage_certificate() {
    let cert = ca_cert("example.org");
    let mut url = x509_jwk(&cert);
    url["x5c"] = json!([URL_SAFE_NO_PAD.encode(cert.as_ref()) + "-_"]);
    assert!(matches!(
        parse(&json!({"keys": [url]})),
        Err(BundleError::InvalidX5c { index: 0, .. })
    ));
    let mut garbage = x509_jwk(&cert);
    garbage["x5c"] = json!([STANDARD.encode(b"not a certificate")]);
    assert!(matches!(
        parse(&json!({"keys": [garbage]})),
        Err(BundleError::InvalidX5c { index: 0, .. })
    ));
}

// X5-34: an `x509-svid` entry with a missing or empty `x5c` is ignored.
#[test]
fn x5_34_ignores_missing_or_empty_x5c() {
    let cert = ca_cert("example.org");
    let mut missing = x509_jwk(&cert);
    missing.as_object_mut().unwrap().remove("x5c");
    let mut empty = x509_jwk(&cert);
    empty["x5c"] = json!([]);
    let (b, ignored) = SpiffeBundle::parse_with_ignored(
        td("example.org"),
        json!({"keys": [missing, empty, x509_jwk(&cert)]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(b.x509_bundle().authorities(), &[cert]);
    assert_eq!(ignored.len(), 2);
}

// X5-35: only the first `x5c` value is used; the rest are ignored.
#[test]
fn x5_35_uses_only_first_x5c_value() {
    let first = ca_cert("example.org");
    let second = ca_cert("example.org");
    let mut jwk = x509_jwk(&first);
    jwk["x5c"] = json!([
        STANDARD.encode(first.as_ref()),
        STANDARD.encode(second.as_ref()),
        "not base64 at all!"
    ]);
    let b = parse(&json!({"keys": [jwk]})).unwrap();
    assert_eq!(b.x509_bundle().authorities(), &[first]);
}

// X5-36: the X.509 CA set is the union of every entry's first certificate; with none,
// the trust domain does not support X509-SVIDs.
#[test]
fn x5_36_ca_set_is_union_of_entries() {
    let a = ca_cert("example.org");
    let b = ca_cert("example.org");
    let bundle = parse(&json!({"keys": [x509_jwk(&a), x509_jwk(&b)]})).unwrap();
    assert_eq!(bundle.x509_bundle().authorities(), &[a, b]);
    let jwt_only = parse(&json!({"keys": [ec_jwk(Some("jwt-svid"), Some("k"))]})).unwrap();
    assert!(jwt_only.x509_bundle().is_empty());
}

// JWT-18, JWT-19: one `jwt-svid` JWK per signing key, each with its `kid`.
#[test]
fn jwt_19_jwt_entries_carry_kid() {
    let doc: Value = serde_json::from_slice(&full_bundle().to_json().unwrap()).unwrap();
    let kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "jwt-svid")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec!["kid-1", "kid-2"]);
}

#[test]
fn jwt_19_rejects_jwt_entry_without_kid() {
    assert_eq!(
        parse(&json!({"keys": [ec_jwk(Some("jwt-svid"), None)]})),
        Err(BundleError::MissingKeyId { index: 0 })
    );
    assert_eq!(
        parse(&json!({"keys": [ec_jwk(Some("jwt-svid"), Some(""))]})),
        Err(BundleError::MissingKeyId { index: 0 })
    );
}

#[test]
fn rejects_duplicate_jwt_kid_and_broken_jwt_key() {
    let doc =
        json!({"keys": [ec_jwk(Some("jwt-svid"), Some("k")), ec_jwk(Some("jwt-svid"), Some("k"))]});
    assert_eq!(parse(&doc), Err(BundleError::DuplicateKeyId("k".into())));
    let mut broken = ec_jwk(Some("jwt-svid"), Some("k"));
    broken["x"] = json!("AAAA");
    assert!(matches!(
        parse(&json!({"keys": [broken]})),
        Err(BundleError::InvalidJwtKey { index: 0, .. })
    ));
}

// JWT-20: only `jwt-svid` entries are JWT authorities.
#[test]
fn jwt_20_only_jwt_svid_entries_validate_jwts() {
    let b = parse(&json!({"keys": [x509_jwk(&ca_cert("example.org"))]})).unwrap();
    assert!(b.jwt_bundle().is_empty());
}

#[test]
fn round_trip_preserves_everything() {
    let bundle = full_bundle();
    let json = bundle.to_json().unwrap();
    assert_eq!(
        SpiffeBundle::parse(td("example.org"), &json).unwrap(),
        bundle
    );
    let pretty = bundle.to_json_pretty().unwrap();
    assert_eq!(
        SpiffeBundle::parse(td("example.org"), &pretty).unwrap(),
        bundle
    );
}

// MAP-01: a bundle map has a `trust_domains` object, which may be empty.
#[test]
fn map_01_parses_trust_domains_object() {
    assert!(
        parse_bundle_map(br#"{"trust_domains": {}}"#)
            .unwrap()
            .is_empty()
    );
    let a = full_bundle();
    let mut b = SpiffeBundle::new(td("other.org"));
    b.x509_bundle_mut()
        .add_authority(ca_cert("other.org"))
        .unwrap();
    let json = bundle_map_to_json([&a, &b]).unwrap();
    let parsed = parse_bundle_map(&json).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].trust_domain(), &td("example.org"));
    assert_eq!(parsed[1].x509_bundle(), b.x509_bundle());
}

#[test]
fn map_01_rejects_missing_trust_domains() {
    assert_eq!(
        parse_bundle_map(br#"{"keys": []}"#),
        Err(BundleError::MissingTrustDomains)
    );
    assert!(parse_bundle_map(br#"{"trust_domains": {"Bad TD": {"keys": []}}}"#).is_err());
}

// MAP-02: producers keep trust domain names unique.
#[test]
fn map_02_producer_refuses_duplicate_trust_domains() {
    let a = full_bundle();
    assert_eq!(
        bundle_map_to_json([&a, &a]),
        Err(BundleError::DuplicateTrustDomain("example.org".into()))
    );
}

// MAP-03: consumers reject a map with duplicate trust domain keys.
#[test]
fn map_03_rejects_duplicate_trust_domain_keys() {
    let dup = br#"{"trust_domains": {"a.org": {"keys": []}, "a.org": {"keys": []}}}"#;
    let err = parse_bundle_map(dup).unwrap_err();
    assert!(err.to_string().contains("a.org"), "{err}");
    let dup_forms =
        br#"{"trust_domains": {"a.org": {"keys": []}, "spiffe://a.org": {"keys": []}}}"#;
    assert_eq!(
        parse_bundle_map(dup_forms),
        Err(BundleError::DuplicateTrustDomain("spiffe://a.org".into()))
    );
    assert!(parse_bundle_map(br#"{"trust_domains": {}, "trust_domains": {}}"#).is_err());
}

// MAP-04: producers leave the refresh hint out of bundles in a map; MAP-05: a consumer
// accepts per-bundle hints but they are only data.
#[test]
fn map_04_map_bundles_have_no_refresh_hint() {
    let json = bundle_map_to_json([&full_bundle()]).unwrap();
    let doc: Value = serde_json::from_slice(&json).unwrap();
    let inner = &doc["trust_domains"]["example.org"];
    assert!(inner.get("spiffe_refresh_hint").is_none());
    assert_eq!(inner["spiffe_sequence"], json!(7));
    let with_hint = br#"{"trust_domains": {"a.org": {"keys": [], "spiffe_refresh_hint": 60}}}"#;
    assert_eq!(
        parse_bundle_map(with_hint).unwrap()[0].refresh_hint(),
        Some(Duration::from_secs(60))
    );
}

// TD-02 / FED-09: a bundle set keeps one bundle per trust domain and never merges them;
// lookups return only the bundle of the asked trust domain.
#[test]
fn td_02_bundle_set_keeps_trust_domains_apart() {
    let mut set = BundleSet::new();
    set.insert(full_bundle());
    let mut other = SpiffeBundle::new(td("other.org"));
    other
        .x509_bundle_mut()
        .add_authority(ca_cert("other.org"))
        .unwrap();
    set.insert(other.clone());
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.x509_bundle_for(&td("other.org")),
        Some(other.x509_bundle())
    );
    assert!(set.jwt_bundle_for(&td("other.org")).unwrap().is_empty());
    assert!(set.x509_bundle_for(&td("third.org")).is_none());
    let replaced = set.insert(SpiffeBundle::new(td("other.org")));
    assert_eq!(replaced, Some(other));
    assert!(set.get(&td("other.org")).unwrap().is_empty());
}

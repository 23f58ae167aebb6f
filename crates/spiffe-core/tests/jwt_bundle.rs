//! JWT bundles, JWKs and public keys against conformance.md §2 (BUN-02, BUN-08..BUN-17
//! for `jwt-svid` keys) and §4 (JWT-18..JWT-20).
//!
//! Test names carry the rule ID they cover.

#![allow(clippy::unwrap_used)]

mod jwt_common;

use std::collections::HashMap;

use jwt_common::*;
use rcgen::PublicKeyData as _;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::{Value, json};
use spiffe_core::{
    EcCurve, Jwk, JwkError, JwtAlgorithm, JwtBundle, JwtBundleError, JwtBundleSource, JwtError,
    JwtSvid, PublicKey,
};

/// A JWKS as SPIRE's Workload API returns it (from the rust-spiffe docs): no `use`.
const SPIRE_JWKS: &str = r#"{
    "keys": [
        {
            "kty": "EC",
            "kid": "C6vs25welZOx6WksNYfbMfiw9l96pMnD",
            "crv": "P-256",
            "x": "ngLYQnlfF6GsojUwqtcEE3WgTNG2RUlsGhK73RNEl5k",
            "y": "tKbiDSUSsQ3F1P7wteeHNXIcU-cx6CgSbroeQrQHTLM"
        }
    ]
}"#;

fn parse(doc: &Value) -> Result<JwtBundle, JwtBundleError> {
    JwtBundle::parse_jwks(td("example.org"), doc.to_string().as_bytes())
}

fn jwk_value(key: &TestKey, kid: Option<&str>, use_: Option<&str>) -> Value {
    let mut jwk = key.public_key().to_jwk(kid, "jwt-svid");
    jwk.use_ = use_.map(str::to_owned);
    serde_json::to_value(jwk).unwrap()
}

/// A token for SUB/AUD signed by `key` under `kid`.
fn token(key: &TestKey, kid: &str) -> String {
    let header = json!({"alg": key.alg.as_str(), "kid": kid, "typ": "JWT"});
    craft(&header, &good_claims(), key)
}

fn validate(token: &str, bundle: &JwtBundle) -> Result<JwtSvid, JwtError> {
    JwtSvid::parse_and_validate(token, bundle, &[AUD], now())
}

// ---------------------------------------------------------------------------------------
// Workload API JWKS

#[test]
fn parses_spire_workload_api_jwks() {
    // agent.md §1.5: the standard JWKS of FetchJWTBundles, without `use`, is read.
    let bundle = JwtBundle::parse_jwks(td("example.org"), SPIRE_JWKS.as_bytes()).unwrap();
    assert_eq!(bundle.len(), 1);
    let key = bundle
        .find_authority("C6vs25welZOx6WksNYfbMfiw9l96pMnD")
        .unwrap();
    assert_eq!(key.ec_curve(), Some(EcCurve::P256));
    assert_eq!(*bundle.trust_domain(), td("example.org"));
}

// ---------------------------------------------------------------------------------------
// BUN-08 / BUN-10: `keys` present and an array; `[]` allowed.

#[test]
fn bun_08_rejects_missing_or_non_array_keys() {
    // BUN-08: `keys` must be present and an array of JWKs.
    assert_eq!(parse(&json!({})), Err(JwtBundleError::MissingKeys));
    assert_eq!(
        parse(&json!({"spiffe_sequence": 1})),
        Err(JwtBundleError::MissingKeys)
    );
    assert_eq!(
        parse(&json!({"keys": {}})),
        Err(JwtBundleError::KeysNotArray)
    );
    assert_eq!(
        parse(&json!({"keys": null})),
        Err(JwtBundleError::KeysNotArray)
    );
    assert_eq!(parse(&json!([])), Err(JwtBundleError::NotAnObject));
    assert!(matches!(
        JwtBundle::parse_jwks(td("example.org"), b"{\"keys\":["),
        Err(JwtBundleError::InvalidJson(_))
    ));
    assert!(matches!(
        parse(&json!({"keys": ["not an object"]})),
        Err(JwtBundleError::InvalidEntry { index: 0, .. })
    ));
}

#[test]
fn bun_10_accepts_empty_keys() {
    // BUN-10: `keys` may be `[]`; the bundle is then empty (and BUN-11 applies).
    let bundle = parse(&json!({"keys": []})).unwrap();
    assert!(bundle.is_empty());
    assert_eq!(bundle.to_jwks_json(), br#"{"keys":[]}"#);
}

// ---------------------------------------------------------------------------------------
// BUN-02 / BUN-13: extra members tolerated.

#[test]
fn bun_02_accepts_extra_top_level_members() {
    // BUN-02: extra JWK Set members (spiffe_sequence, spiffe_refresh_hint, private ones)
    // are allowed and not required.
    let key = ec_key(JwtAlgorithm::ES256);
    let doc = json!({
        "keys": [jwk_value(&key, Some(KID), Some("jwt-svid"))],
        "spiffe_sequence": 42,
        "spiffe_refresh_hint": 300,
        "x-private": {"anything": true}
    });
    let bundle = parse(&doc).unwrap();
    assert_eq!(bundle.find_authority(KID), Some(&key.public_key()));
}

#[test]
fn bun_13_tolerates_and_round_trips_unknown_jwk_members() {
    // BUN-13: readers tolerate JWK members the specs do not define; `Jwk` keeps them.
    let key = ec_key(JwtAlgorithm::ES256);
    let mut entry = jwk_value(&key, Some(KID), Some("jwt-svid"));
    entry["alg"] = json!("ES256");
    entry["key_ops"] = json!(["verify"]);
    entry["x-vendor"] = json!({"n": [1, 2]});
    let bundle = parse(&json!({"keys": [entry.clone()]})).unwrap();
    assert_eq!(bundle.find_authority(KID), Some(&key.public_key()));

    let jwk: Jwk = serde_json::from_value(entry.clone()).unwrap();
    assert_eq!(jwk.extra["x-vendor"], json!({"n": [1, 2]}));
    assert_eq!(serde_json::to_value(&jwk).unwrap(), entry);
}

// ---------------------------------------------------------------------------------------
// BUN-09 / BUN-15: unknown key types ignored.

#[test]
fn bun_15_ignores_unknown_kty() {
    // BUN-15, BUN-09: a JWK with an unknown `kty` is ignored as a whole (even without a
    // kid); the bundle is not rejected.
    let key = ec_key(JwtAlgorithm::ES256);
    let doc = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "use": "jwt-svid", "kid": "ed",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "ec", "use": "jwt-svid", "kid": "lower"},
        {"kty": "AKP", "use": "jwt-svid"},
        jwk_value(&key, Some(KID), Some("jwt-svid"))
    ]});
    let bundle = parse(&doc).unwrap();
    assert_eq!(bundle.len(), 1);
    assert!(bundle.find_authority("hmac").is_none());
    assert!(bundle.find_authority(KID).is_some());
    validate(&token(&key, KID), &bundle).unwrap();
}

#[test]
fn bun_15_accepts_known_kty() {
    // BUN-15: `EC` and `RSA` keys are understood.
    let ec = ec_key(JwtAlgorithm::ES384);
    let rsa = rsa_key(JwtAlgorithm::RS256);
    let doc =
        json!({"keys": [jwk_value(&ec, Some("ec"), None), jwk_value(&rsa, Some("rsa"), None)]});
    let bundle = parse(&doc).unwrap();
    assert_eq!(bundle.find_authority("ec").unwrap().kty(), "EC");
    assert_eq!(bundle.find_authority("rsa").unwrap().kty(), "RSA");
}

#[test]
fn bun_09_ignores_unknown_curve() {
    // BUN-09: an EC key on a curve we do not know (secp256k1) is ignored like an unknown
    // key type; `from_jwk` says it is unsupported.
    let key = ec_key(JwtAlgorithm::ES256);
    let mut k1 = jwk_value(&key, Some("k1"), Some("jwt-svid"));
    k1["crv"] = json!("secp256k1");
    let bundle = parse(&json!({"keys": [k1.clone()]})).unwrap();
    assert!(bundle.is_empty());
    let jwk: Jwk = serde_json::from_value(k1).unwrap();
    let err = PublicKey::from_jwk(&jwk).unwrap_err();
    assert_eq!(err, JwkError::UnsupportedCurve("secp256k1".into()));
    assert!(err.is_unsupported());
}

// ---------------------------------------------------------------------------------------
// BUN-14: every JWK sets `kty`.

#[test]
fn bun_14_accepts_jwk_with_kty() {
    // BUN-14: `kty` present.
    let key = ec_key(JwtAlgorithm::ES256);
    assert_eq!(
        parse(&json!({"keys": [jwk_value(&key, Some(KID), None)]}))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bun_14_rejects_jwk_without_kty() {
    // BUN-14: a `jwt-svid` JWK without `kty` (or with a non-string one) is malformed.
    let key = ec_key(JwtAlgorithm::ES256);
    let mut entry = jwk_value(&key, Some(KID), Some("jwt-svid"));
    entry.as_object_mut().unwrap().remove("kty");
    assert!(matches!(
        parse(&json!({"keys": [entry.clone()]})),
        Err(JwtBundleError::InvalidEntry { index: 0, .. })
    ));
    entry["kty"] = json!(1);
    assert!(matches!(
        parse(&json!({"keys": [entry]})),
        Err(JwtBundleError::InvalidEntry { index: 0, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// BUN-16 / BUN-17 / JWT-18 / JWT-20: `use`.

#[test]
fn bun_16_accepts_jwt_svid_use_exact_case() {
    // BUN-16: `jwt-svid` is a known use value.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [jwk_value(&key, Some(KID), Some("jwt-svid"))]})).unwrap();
    validate(&token(&key, KID), &bundle).unwrap();
}

#[test]
fn bun_16_rejects_use_in_other_case() {
    // BUN-16: use values are case-sensitive: `JWT-SVID` is unknown, so the key is ignored.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [jwk_value(&key, Some(KID), Some("JWT-SVID"))]})).unwrap();
    assert!(bundle.is_empty());
}

#[test]
fn bun_17_ignores_unknown_or_other_use() {
    // BUN-17, BUN-09: a JWK whose `use` is unknown (`enc`, `sig`, `wit-svid`, non-string)
    // or another SVID type's (`x509-svid`) is ignored as a whole, kid or no kid.
    let key = ec_key(JwtAlgorithm::ES256);
    let doc = json!({"keys": [
        jwk_value(&key, Some("enc"), Some("enc")),
        jwk_value(&key, Some("sig"), Some("sig")),
        jwk_value(&key, None, Some("x509-svid")),
        jwk_value(&key, Some("wit"), Some("wit-svid")),
        {"kty": "EC", "use": 7, "x5c": [1, 2]}
    ]});
    let bundle = parse(&doc).unwrap();
    assert!(bundle.is_empty());
}

#[test]
fn bun_17_accepts_absent_use_in_workload_api_jwks() {
    // BUN-17 applies to SPIFFE bundles; the Workload API JWKS carries no `use` at all
    // (agent.md §1.5), so absent `use` is taken in this reader.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [jwk_value(&key, Some(KID), None)]})).unwrap();
    validate(&token(&key, KID), &bundle).unwrap();
}

#[test]
fn jwt_18_accepts_and_writes_jwt_svid_use() {
    // JWT-18: each JWT signing key is one JWK with `use` = `jwt-svid`.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let doc: Value = serde_json::from_slice(&bundle.to_jwks_json()).unwrap();
    assert_eq!(doc["keys"][0]["use"], "jwt-svid");
    assert_eq!(doc["keys"][0]["kid"], KID);
    // The standard (Workload API) form leaves `use` out.
    let doc: Value = serde_json::from_slice(&bundle.to_standard_jwks_json()).unwrap();
    assert!(doc["keys"][0].get("use").is_none());
}

#[test]
fn jwt_18_rejects_x509_svid_key_for_jwt() {
    // JWT-18: an `x509-svid` JWK is not a JWT signing key.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [jwk_value(&key, Some(KID), Some("x509-svid"))]})).unwrap();
    assert!(bundle.find_authority(KID).is_none());
}

#[test]
fn jwt_20_uses_only_jwt_svid_entries() {
    // JWT-20: validators use only `jwt-svid` entries; a token signed by the key of an
    // `x509-svid` entry with the same kid is not trusted.
    let jwt_key = ec_key(JwtAlgorithm::ES256);
    let x509_key = ec_key(JwtAlgorithm::ES256);
    let doc = json!({"keys": [
        jwk_value(&x509_key, Some("shared"), Some("x509-svid")),
        jwk_value(&jwt_key, Some("shared"), Some("jwt-svid"))
    ]});
    let bundle = parse(&doc).unwrap();
    validate(&token(&jwt_key, "shared"), &bundle).unwrap();
    assert_eq!(
        validate(&token(&x509_key, "shared"), &bundle),
        Err(JwtError::InvalidSignature)
    );
}

#[test]
fn jwt_20_rejects_all_tokens_without_jwt_svid_entries() {
    // JWT-20, BUN-11: no `jwt-svid` entries means no JWT-SVID support: all tokens fail.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [jwk_value(&key, Some(KID), Some("x509-svid"))]})).unwrap();
    assert_eq!(
        validate(&token(&key, KID), &bundle),
        Err(JwtError::EmptyBundle(td("example.org")))
    );
}

// ---------------------------------------------------------------------------------------
// JWT-19: every `jwt-svid` JWK sets `kid`.

#[test]
fn jwt_19_accepts_keys_with_kid() {
    // JWT-19: keys found by their kid.
    let a = ec_key(JwtAlgorithm::ES256);
    let b = rsa_key(JwtAlgorithm::RS256);
    let bundle = parse(&json!({"keys": [jwk_value(&a, Some("a"), None), jwk_value(&b, Some("b"), Some("jwt-svid"))]}))
        .unwrap();
    assert_eq!(bundle.find_authority("a"), Some(&a.public_key()));
    assert_eq!(bundle.find_authority("b"), Some(&b.public_key()));
}

#[test]
fn jwt_19_rejects_key_without_kid() {
    // JWT-19: a `jwt-svid` (or use-less) JWK without `kid`, or with an empty one, is an
    // error, as in go-spiffe's jwtbundle.Parse and SPIRE.
    let key = ec_key(JwtAlgorithm::ES256);
    let good = jwk_value(&key, Some(KID), None);
    for entry in [
        jwk_value(&key, None, Some("jwt-svid")),
        jwk_value(&key, None, None),
        jwk_value(&key, Some(""), None),
    ] {
        assert_eq!(
            parse(&json!({"keys": [good.clone(), entry]})),
            Err(JwtBundleError::MissingKid { index: 1 })
        );
    }
}

#[test]
fn rejects_conflicting_duplicate_kid_and_accepts_identical_duplicate() {
    // Two different keys under one kid would make validation ambiguous.
    let a = ec_key(JwtAlgorithm::ES256);
    let b = ec_key(JwtAlgorithm::ES256);
    assert_eq!(
        parse(&json!({"keys": [jwk_value(&a, Some(KID), None), jwk_value(&b, Some(KID), None)]})),
        Err(JwtBundleError::DuplicateKid(KID.into()))
    );
    let same =
        parse(&json!({"keys": [jwk_value(&a, Some(KID), None), jwk_value(&a, Some(KID), None)]}))
            .unwrap();
    assert_eq!(same.len(), 1);
}

// ---------------------------------------------------------------------------------------
// BUN-11: no usable keys → every SVID invalid (see also jwt_svid.rs).

#[test]
fn bun_11_rejects_tokens_when_every_entry_is_ignored() {
    // BUN-11: a bundle whose entries were all ignored is empty, and rejects every token.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [
        jwk_value(&key, Some(KID), Some("x509-svid")),
        {"kty": "OKP", "kid": KID, "crv": "Ed25519", "x": "AA"}
    ]}))
    .unwrap();
    assert!(bundle.is_empty());
    assert_eq!(
        validate(&token(&key, KID), &bundle),
        Err(JwtError::EmptyBundle(td("example.org")))
    );
}

#[test]
fn bun_11_accepts_tokens_with_a_usable_key() {
    // BUN-11: one usable key among ignored entries is enough.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = parse(&json!({"keys": [
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AA"},
        jwk_value(&key, Some(KID), None)
    ]}))
    .unwrap();
    validate(&token(&key, KID), &bundle).unwrap();
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn jwks_round_trip() {
    // to_jwks_json → parse_jwks gives the same bundle, for EC (all curves) and RSA keys,
    // in both the SPIFFE (`use`) and standard forms.
    let mut bundle = JwtBundle::new(td("example.org"));
    for (kid, key) in [
        ("p256", ec_key(JwtAlgorithm::ES256)),
        ("p384", ec_key(JwtAlgorithm::ES384)),
        ("p521", ec_key(JwtAlgorithm::ES512)),
        ("rsa", rsa_key(JwtAlgorithm::RS256)),
    ] {
        bundle.add_authority(kid, key.public_key()).unwrap();
    }
    let json = bundle.to_jwks_json();
    assert_eq!(
        JwtBundle::parse_jwks(td("example.org"), &json).unwrap(),
        bundle
    );
    let standard = bundle.to_standard_jwks_json();
    assert_eq!(
        JwtBundle::parse_jwks(td("example.org"), &standard).unwrap(),
        bundle
    );
    let doc: Value = serde_json::from_slice(&json).unwrap();
    let kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["p256", "p384", "p521", "rsa"]);
    assert_eq!(doc["keys"][2]["crv"], "P-521");
    assert_eq!(unb64(doc["keys"][2]["x"].as_str().unwrap()).len(), 66);
    assert_eq!(doc["keys"][3]["e"], "AQAB");
}

#[test]
fn spki_der_round_trip_matches_rcgen() {
    // SPIRE stores JWT keys as PKIX DER. Our SPKI parse/encode agrees byte for byte with
    // rcgen's for P-256, P-384, P-521 and RSA, and survives the JWK round trip.
    let cases = [
        (ec_key(JwtAlgorithm::ES256), &rcgen::PKCS_ECDSA_P256_SHA256),
        (ec_key(JwtAlgorithm::ES384), &rcgen::PKCS_ECDSA_P384_SHA384),
        (ec_key(JwtAlgorithm::ES512), &rcgen::PKCS_ECDSA_P521_SHA512),
        (rsa_key(JwtAlgorithm::RS256), &rcgen::PKCS_RSA_SHA256),
    ];
    for (key, rcgen_alg) in cases {
        let pkcs8 = PrivatePkcs8KeyDer::from(key.pkcs8.clone());
        let theirs = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, rcgen_alg).unwrap();
        let spki = theirs.subject_public_key_info();
        let ours = PublicKey::from_spki_der(&spki).unwrap();
        assert_eq!(ours, key.public_key(), "{}", key.alg);
        assert_eq!(ours.to_spki_der(), spki, "{}", key.alg);
        let jwk = ours.to_jwk(Some("k"), "jwt-svid");
        assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), ours);
    }
}

#[test]
fn spki_der_rejects_garbage_and_unsupported_algorithms() {
    // Malformed DER, trailing bytes and non-EC/RSA keys are refused.
    let key = ec_key(JwtAlgorithm::ES256).public_key();
    let mut spki = key.to_spki_der();
    assert!(matches!(
        PublicKey::from_spki_der(b"garbage"),
        Err(JwkError::InvalidSpki(_))
    ));
    assert!(PublicKey::from_spki_der(&[]).is_err());
    spki.push(0);
    assert!(matches!(
        PublicKey::from_spki_der(&spki),
        Err(JwkError::InvalidSpki(_))
    ));
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let err = PublicKey::from_spki_der(&ed.subject_public_key_info()).unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    // Every truncation of a valid SPKI fails cleanly.
    let spki = key.to_spki_der();
    for len in 0..spki.len() {
        assert!(PublicKey::from_spki_der(&spki[..len]).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// JWK validation

fn ec_jwk(key: &TestKey) -> Jwk {
    key.public_key().to_jwk(Some(KID), "jwt-svid")
}

#[test]
fn jwk_rejects_missing_members() {
    // RFC 7518 §6.2.1 / §6.3.1: EC needs crv, x, y; RSA needs n, e.
    let ec = ec_jwk(&ec_key(JwtAlgorithm::ES256));
    for (name, mut jwk) in [("crv", ec.clone()), ("x", ec.clone()), ("y", ec.clone())] {
        match name {
            "crv" => jwk.crv = None,
            "x" => jwk.x = None,
            _ => jwk.y = None,
        }
        assert_eq!(
            PublicKey::from_jwk(&jwk),
            Err(JwkError::MissingParameter(name))
        );
    }
    let rsa = rsa_key(JwtAlgorithm::RS256)
        .public_key()
        .to_jwk(None, "jwt-svid");
    let mut no_n = rsa.clone();
    no_n.n = None;
    assert_eq!(
        PublicKey::from_jwk(&no_n),
        Err(JwkError::MissingParameter("n"))
    );
    let mut no_e = rsa;
    no_e.e = None;
    assert_eq!(
        PublicKey::from_jwk(&no_e),
        Err(JwkError::MissingParameter("e"))
    );
}

#[test]
fn jwk_rejects_bad_coordinates_and_points() {
    // Coordinates must be base64url of the full coordinate length, and the point must be
    // on the curve. In a bundle such a key is an error, not ignored.
    let key = ec_key(JwtAlgorithm::ES256);
    let jwk = ec_jwk(&key);
    let x = unb64(jwk.x.as_deref().unwrap());

    let mut short = jwk.clone();
    short.x = Some(b64(&x[1..]));
    assert_eq!(
        PublicKey::from_jwk(&short),
        Err(JwkError::InvalidCoordinateLength {
            param: "x",
            expected: 32,
            actual: 31
        })
    );
    let mut padded = jwk.clone();
    padded.y = Some(format!("{}=", jwk.y.as_deref().unwrap()));
    assert_eq!(
        PublicKey::from_jwk(&padded),
        Err(JwkError::InvalidBase64("y"))
    );

    let mut off_curve = jwk.clone();
    let mut bad_x = x.clone();
    bad_x[31] ^= 1;
    off_curve.x = Some(b64(&bad_x));
    assert_eq!(
        PublicKey::from_jwk(&off_curve),
        Err(JwkError::InvalidEcPoint)
    );

    let mut wrong_curve = jwk.clone();
    wrong_curve.crv = Some("P-384".into());
    assert!(matches!(
        PublicKey::from_jwk(&wrong_curve),
        Err(JwkError::InvalidCoordinateLength { expected: 48, .. })
    ));

    let doc = json!({"keys": [serde_json::to_value(&off_curve).unwrap()]});
    assert!(matches!(
        parse(&doc),
        Err(JwtBundleError::InvalidKey { index: 0, .. })
    ));
}

#[test]
fn jwk_rejects_weak_or_malformed_rsa() {
    // RSA keys under 2048 bits (SPIRE refuses them) and malformed exponents are refused.
    let mut n = vec![0xC5; 128];
    n[127] |= 1;
    assert_eq!(
        PublicKey::from_rsa_components(&n, &[1, 0, 1]),
        Err(JwkError::RsaKeySize(1024))
    );
    let rsa = rsa_key(JwtAlgorithm::RS256)
        .public_key()
        .to_jwk(None, "jwt-svid");
    let n = unb64(rsa.n.as_deref().unwrap());
    assert!(PublicKey::from_rsa_components(&n, &[]).is_err());
    assert!(PublicKey::from_rsa_components(&n, &[2]).is_err());
    assert!(PublicKey::from_rsa_components(&n, &[1]).is_err());
    assert!(PublicKey::from_rsa_components(&[], &[1, 0, 1]).is_err());
    // A leading zero on the modulus is tolerated and dropped on output.
    let mut padded = vec![0];
    padded.extend_from_slice(&n);
    let key = PublicKey::from_rsa_components(&padded, &[0, 1, 0, 1]).unwrap();
    assert_eq!(key.to_jwk(None, "jwt-svid").n, rsa.n);
    assert_eq!(key.to_jwk(None, "jwt-svid").e.as_deref(), Some("AQAB"));
}

#[test]
fn jwk_rejects_private_key_material() {
    // A JWK carrying `d` is a leaked private key, never a bundle entry.
    let mut jwk = ec_jwk(&ec_key(JwtAlgorithm::ES256));
    jwk.extra.insert("d".into(), json!("AAAA"));
    assert_eq!(PublicKey::from_jwk(&jwk), Err(JwkError::PrivateKeyMaterial));
}

#[test]
fn jwk_serialization_skips_absent_members() {
    // Absent members are not written as null.
    let jwk = ec_jwk(&ec_key(JwtAlgorithm::ES256));
    let value = serde_json::to_value(&jwk).unwrap();
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["crv", "kid", "kty", "use", "x", "y"]);
}

// ---------------------------------------------------------------------------------------
// Bundle API

#[test]
fn bundle_crud_and_source() {
    // add/find/remove; JwtBundle is a source for its own trust domain only.
    let key = ec_key(JwtAlgorithm::ES256).public_key();
    let mut bundle = JwtBundle::new(td("example.org"));
    assert!(bundle.is_empty());
    assert_eq!(bundle.add_authority(KID, key.clone()), Ok(None));
    assert_eq!(
        bundle.add_authority(KID, key.clone()),
        Ok(Some(key.clone()))
    );
    assert_eq!(
        bundle.add_authority("", key.clone()),
        Err(JwtBundleError::EmptyKid)
    );
    assert_eq!(bundle.authorities().count(), 1);
    assert_eq!(bundle.find_authority(KID), Some(&key));
    assert!(bundle.jwt_bundle_for(&td("example.org")).is_some());
    assert!(bundle.jwt_bundle_for(&td("other.org")).is_none());
    let mut map = HashMap::new();
    map.insert(td("example.org"), bundle.clone());
    assert_eq!(map.jwt_bundle_for(&td("example.org")), Some(&bundle));
    assert_eq!(bundle.remove_authority(KID), Some(key));
    assert!(bundle.is_empty());
}

//! JWT-SVID signing and validation against conformance.md §4 (JWT-01..JWT-23), the
//! JWT-related bundle rules (BUN-11) and the divergence notes A-4, A-5, A-6 and A-9.
//!
//! Test names carry the rule ID they cover. Bad tokens are hand-crafted and signed with
//! aws-lc-rs directly (see `jwt_common`), so they are independent of the signer under test.

#![allow(clippy::unwrap_used)]

mod jwt_common;

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_lc_rs::hmac;
use jwt_common::*;
use serde_json::{Value, json};
use spiffe_core::jwt::sign;
use spiffe_core::{
    JwtAlgorithm, JwtBundle, JwtBundleSource, JwtError, JwtSigningKey, JwtSvid, JwtSvidClaims,
    TrustDomain,
};

// ---------------------------------------------------------------------------------------
// helpers

fn validate(token: &str, bundles: &impl JwtBundleSource) -> Result<JwtSvid, JwtError> {
    JwtSvid::parse_and_validate(token, bundles, &[AUD], now())
}

fn validate_at(
    token: &str,
    bundles: &impl JwtBundleSource,
    time: SystemTime,
) -> Result<JwtSvid, JwtError> {
    JwtSvid::parse_and_validate(token, bundles, &[AUD], time)
}

/// A valid ES256 key, its bundle, and a token with `claims`.
fn es256_with_claims(claims: &Value) -> (String, JwtBundle) {
    let key = ec_key(JwtAlgorithm::ES256);
    (token_with_claims(claims, &key), example_bundle(&key))
}

/// A token with `header` and the good claims, signed with ES256, and its bundle.
fn es256_with_header(header: &Value) -> (String, JwtBundle) {
    let key = ec_key(JwtAlgorithm::ES256);
    (craft(header, &good_claims(), &key), example_bundle(&key))
}

fn claims_with(name: &str, value: Value) -> Value {
    let mut claims = good_claims();
    claims[name] = value;
    claims
}

fn claims_without(name: &str) -> Value {
    let mut claims = good_claims();
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn header_without(name: &str) -> Value {
    let mut header = header(JwtAlgorithm::ES256);
    header.as_object_mut().unwrap().remove(name);
    header
}

fn header_with(name: &str, value: Value) -> Value {
    let mut header = header(JwtAlgorithm::ES256);
    header[name] = value;
    header
}

/// Signs with the library signer.
fn library_token(key: &TestKey, aud: &[&str]) -> String {
    let claims = JwtSvidClaims::new(
        id(SUB),
        aud.iter().map(|a| (*a).to_owned()).collect(),
        NOW + 300,
        NOW,
    );
    sign(&key.signing_key(), KID, &claims).unwrap()
}

/// An HMAC-SHA256 token, the classic algorithm-confusion attack: signed with the bytes of
/// the public key as the secret.
fn hs256_token(secret: &[u8]) -> String {
    let header = json!({"alg": "HS256", "kid": KID, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

// ---------------------------------------------------------------------------------------
// JWT-01: JWS Compact Serialization only.

#[test]
fn jwt_01_accepts_compact_serialization() {
    // JWT-01: three base64url parts separated by dots.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    assert_eq!(token.split('.').count(), 3);
    let svid = validate(&token, &example_bundle(&key)).unwrap();
    assert_eq!(svid.token(), token);
}

#[test]
fn jwt_01_rejects_json_general_serialization() {
    // JWT-01: the JWS JSON (general) serialization must not be used.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    let parts: Vec<&str> = token.split('.').collect();
    let general = json!({
        "payload": parts[1],
        "signatures": [{"protected": parts[0], "signature": parts[2]}]
    })
    .to_string();
    assert_eq!(
        validate(&general, &example_bundle(&key)),
        Err(JwtError::JsonSerialization)
    );
}

#[test]
fn jwt_01_rejects_json_flattened_serialization_and_unprotected_header() {
    // JWT-01: flattened JSON serialization and unprotected headers must not be used.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    let parts: Vec<&str> = token.split('.').collect();
    let flattened = json!({
        "protected": parts[0],
        "header": {"kid": KID},
        "payload": parts[1],
        "signature": parts[2]
    })
    .to_string();
    assert_eq!(
        validate(&flattened, &example_bundle(&key)),
        Err(JwtError::JsonSerialization)
    );
    // Leading whitespace does not hide it.
    assert_eq!(
        validate(&format!("  \n{flattened}"), &example_bundle(&key)),
        Err(JwtError::JsonSerialization)
    );
}

#[test]
fn jwt_01_rejects_two_part_token() {
    // JWT-01: a compact JWS has exactly three parts.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    let two = token.rsplit_once('.').unwrap().0;
    assert_eq!(
        validate(two, &example_bundle(&key)),
        Err(JwtError::WrongPartCount(2))
    );
}

#[test]
fn jwt_01_rejects_four_and_five_part_tokens() {
    // JWT-01: four parts is not a JWS; five parts is a JWE.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    assert_eq!(
        validate(&format!("{token}.AAAA"), &example_bundle(&key)),
        Err(JwtError::WrongPartCount(4))
    );
    assert_eq!(
        validate(&format!("{token}.AAAA.BBBB"), &example_bundle(&key)),
        Err(JwtError::WrongPartCount(5))
    );
}

#[test]
fn jwt_01_rejects_garbage() {
    // JWT-01: anything that is not a compact JWS is refused, without panicking.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    for garbage in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "not a token",
        "eyJ.eyJ.",
        "\u{0}\u{0}\u{0}",
        "ü.ö.ä",
        "Bearer x.y.z",
        "[]",
        "null",
    ] {
        assert!(validate(garbage, &bundle).is_err(), "{garbage:?} accepted");
    }
}

#[test]
fn jwt_01_rejects_padded_or_non_url_safe_base64() {
    // JWT-01 (RFC 7515 §2): base64url without padding; `=`, `+` and `/` are not allowed.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let token = library_token(&key, &[AUD]);
    let parts: Vec<&str> = token.split('.').collect();
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert_eq!(
        validate(&padded, &bundle),
        Err(JwtError::InvalidBase64("header"))
    );
    let sig_std = parts[2].replace('-', "+").replace('_', "/");
    if sig_std != parts[2] {
        let std_token = format!("{}.{}.{}", parts[0], parts[1], sig_std);
        assert_eq!(
            validate(&std_token, &bundle),
            Err(JwtError::InvalidBase64("signature"))
        );
    }
    let payload_space = format!("{}.{} .{}", parts[0], parts[1], parts[2]);
    assert_eq!(
        validate(&payload_space, &bundle),
        Err(JwtError::InvalidBase64("payload"))
    );
}

// ---------------------------------------------------------------------------------------
// JWT-02 / A-5: only `alg`, `kid` and `typ` in the header.

#[test]
fn jwt_02_accepts_header_with_only_alg_kid_typ() {
    // JWT-02: exactly the three allowed parameters.
    let (token, bundle) = es256_with_header(&header(JwtAlgorithm::ES256));
    validate(&token, &bundle).unwrap();
}

#[test]
fn jwt_02_rejects_crit_header() {
    // JWT-02, A-5, RFC 7515 §4.1.11: `crit` is refused.
    let (token, bundle) = es256_with_header(&header_with("crit", json!(["exp"])));
    let err = validate(&token, &bundle).unwrap_err();
    assert_eq!(err, JwtError::HeaderParameterNotAllowed("crit".into()));
    assert_eq!(
        err.to_string(),
        "header parameter \"crit\" is not allowed in a JWT-SVID"
    );
}

#[test]
fn jwt_02_rejects_jku_header() {
    // JWT-02, A-5: `jku` is refused (a key URL chosen by the token would be a trust hole).
    let (token, bundle) = es256_with_header(&header_with("jku", json!("https://evil/jwks")));
    assert_eq!(
        validate(&token, &bundle),
        Err(JwtError::HeaderParameterNotAllowed("jku".into()))
    );
}

#[test]
fn jwt_02_rejects_every_other_registered_or_private_header() {
    // JWT-02, A-5: `x5u`, `jwk`, `cty`, `x5c`, `x5t`, `x5t#S256`, `b64`, `zip` and private
    // parameters are all refused.
    for name in [
        "x5u", "jwk", "cty", "x5c", "x5t", "x5t#S256", "b64", "zip", "foo",
    ] {
        let (token, bundle) = es256_with_header(&header_with(name, json!("x")));
        assert_eq!(
            validate(&token, &bundle),
            Err(JwtError::HeaderParameterNotAllowed(name.into())),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// JWT-03: the nine algorithms, sign and verify round trips.

macro_rules! round_trip {
    ($name:ident, $alg:ident) => {
        #[test]
        fn $name() {
            // JWT-03: the algorithm is supported end to end: the library signer produces
            // a token that the validator accepts with the key from the bundle.
            let key = key_for(JwtAlgorithm::$alg);
            let token = library_token(&key, &[AUD]);
            let header: Value =
                serde_json::from_slice(&unb64(token.split('.').next().unwrap())).unwrap();
            assert_eq!(header["alg"], stringify!($alg));
            let svid = validate(&token, &example_bundle(&key)).unwrap();
            assert_eq!(svid.algorithm(), JwtAlgorithm::$alg);
            assert_eq!(svid.spiffe_id().as_str(), SUB);
            assert_eq!(svid.audience(), [AUD.to_owned()]);
            assert_eq!(svid.kid(), KID);
            assert_eq!(svid.expiry_unix(), NOW + 300);
            assert_eq!(svid.expiry(), at(NOW + 300));
            // And a token hand-signed with aws-lc-rs directly also validates.
            let crafted = craft(&header, &good_claims(), &key);
            validate(&crafted, &example_bundle(&key)).unwrap();
        }
    };
}

round_trip!(jwt_03_accepts_es256_round_trip, ES256);
round_trip!(jwt_03_accepts_es384_round_trip, ES384);
round_trip!(jwt_03_accepts_es512_round_trip, ES512);
round_trip!(jwt_03_accepts_rs256_round_trip, RS256);
round_trip!(jwt_03_accepts_rs384_round_trip, RS384);
round_trip!(jwt_03_accepts_rs512_round_trip, RS512);
round_trip!(jwt_03_accepts_ps256_round_trip, PS256);
round_trip!(jwt_03_accepts_ps384_round_trip, PS384);
round_trip!(jwt_03_accepts_ps512_round_trip, PS512);

#[test]
fn jwt_03_algorithm_names_parse_with_exact_case() {
    // JWT-03: the nine names, exact case, parse and print back.
    for alg in JwtAlgorithm::ALL {
        assert_eq!(alg.as_str().parse::<JwtAlgorithm>(), Ok(alg));
        assert_eq!(alg.to_string(), alg.as_str());
    }
}

// ---------------------------------------------------------------------------------------
// JWT-04: every other `alg` is rejected.

#[test]
fn jwt_04_rejects_alg_none() {
    // JWT-04: `none` (an unsecured JWS with an empty signature) is refused.
    let header = json!({"alg": "none", "kid": KID, "typ": "JWT"});
    let token = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let key = ec_key(JwtAlgorithm::ES256);
    let err = validate(&token, &example_bundle(&key)).unwrap_err();
    assert_eq!(err, JwtError::UnsupportedAlgorithm("none".into()));
    assert_eq!(err.to_string(), "unsupported algorithm \"none\"");
    // Also through parse_insecure, which skips the signature.
    assert_eq!(
        JwtSvid::parse_insecure(&token, &[AUD], now()),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
}

#[test]
fn jwt_04_rejects_hs256() {
    // JWT-04: HMAC tokens are refused, including the key-confusion attack where the
    // public key bytes are the HMAC secret.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = hs256_token(&key.public_key().to_spki_der());
    let err = validate(&token, &example_bundle(&key)).unwrap_err();
    assert_eq!(err, JwtError::UnsupportedAlgorithm("HS256".into()));
    assert_eq!(err.to_string(), "unsupported algorithm \"HS256\"");
}

#[test]
fn jwt_04_rejects_other_algorithms_and_case_variants() {
    // JWT-04: HS384/HS512, EdDSA, ES256K, lowercase and mixed-case spellings, padded
    // names and non-string values are refused.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    for alg in [
        "HS384", "HS512", "EdDSA", "ES256K", "es256", "Es256", "rs256", "ps256", "ES256 ",
        " ES256", "RS1", "NONE", "None", "",
    ] {
        let token = craft_raw(
            &json!({"alg": alg, "kid": KID}).to_string(),
            &good_claims().to_string(),
            &key,
            JwtAlgorithm::ES256,
        );
        assert_eq!(
            validate(&token, &bundle),
            Err(JwtError::UnsupportedAlgorithm(alg.into())),
            "{alg:?}"
        );
        assert!(alg.parse::<JwtAlgorithm>().is_err());
    }
    for alg in [
        json!(null),
        json!(256),
        json!(["ES256"]),
        json!({"alg": "ES256"}),
    ] {
        let (token, bundle) = es256_with_header(&header_with("alg", alg.clone()));
        assert!(
            matches!(
                validate(&token, &bundle),
                Err(JwtError::UnsupportedAlgorithm(_))
            ),
            "{alg}"
        );
    }
    let (token, bundle) = es256_with_header(&header_without("alg"));
    assert_eq!(validate(&token, &bundle), Err(JwtError::MissingAlgorithm));
}

// ---------------------------------------------------------------------------------------
// JWT-05: `alg` is checked before any other processing.

#[test]
fn jwt_05_rejects_unsupported_alg_before_anything_else() {
    // JWT-05: with an HS256 header that also has `crit`, a bad `typ`, no `kid`, and a
    // payload that is not even base64, the error is still the algorithm.
    let header = json!({"alg": "HS256", "crit": ["x"], "typ": "at+jwt"});
    let token = format!("{}.%%%not-base64%%%.", b64(header.to_string().as_bytes()));
    let key = ec_key(JwtAlgorithm::ES256);
    assert_eq!(
        validate(&token, &example_bundle(&key)),
        Err(JwtError::UnsupportedAlgorithm("HS256".into()))
    );
}

#[test]
fn jwt_05_accepts_supported_alg_then_runs_other_checks() {
    // JWT-05: once `alg` is known to be supported, processing continues and the next
    // check (here the header allow-list) is the one that reports.
    let bad = json!({"alg": "ES256", "crit": ["x"], "typ": "at+jwt"});
    let token = format!("{}.%%%not-base64%%%.", b64(bad.to_string().as_bytes()));
    let key = ec_key(JwtAlgorithm::ES256);
    assert_eq!(
        validate(&token, &example_bundle(&key)),
        Err(JwtError::HeaderParameterNotAllowed("crit".into()))
    );
    // And a supported alg with everything else right validates.
    let (token, bundle) = es256_with_header(&header(JwtAlgorithm::ES256));
    validate(&token, &bundle).unwrap();
}

// ---------------------------------------------------------------------------------------
// JWT-06 / A-4: `kid` is optional in the spec but required by every reference validator.

#[test]
fn jwt_06_accepts_token_with_kid() {
    // JWT-06: a `kid` in the header is allowed and selects the bundle key.
    let (token, bundle) = es256_with_header(&header(JwtAlgorithm::ES256));
    assert_eq!(validate(&token, &bundle).unwrap().kid(), KID);
}

#[test]
fn a_4_rejects_token_without_kid() {
    // A-4 (over JWT-06): go-spiffe, SPIRE and rust-spiffe all reject a missing `kid`.
    let (token, bundle) = es256_with_header(&header_without("kid"));
    assert_eq!(validate(&token, &bundle), Err(JwtError::MissingKeyId));
    assert_eq!(
        JwtSvid::parse_insecure(&token, &[AUD], now()),
        Err(JwtError::MissingKeyId)
    );
}

#[test]
fn a_4_rejects_empty_or_non_string_kid() {
    // A-4: an empty `kid` is as good as none; a non-string one is malformed.
    let (token, bundle) = es256_with_header(&header_with("kid", json!("")));
    assert_eq!(validate(&token, &bundle), Err(JwtError::MissingKeyId));
    let (token, bundle) = es256_with_header(&header_with("kid", json!(1)));
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidHeader(_))
    ));
}

// ---------------------------------------------------------------------------------------
// JWT-07 / A-9: `typ` absent, or exactly `JWT` or `JOSE`.

#[test]
fn jwt_07_accepts_absent_jwt_and_jose_typ() {
    // JWT-07: `typ` is optional; `JWT` and `JOSE` are the allowed values.
    let (token, bundle) = es256_with_header(&header_without("typ"));
    validate(&token, &bundle).unwrap();
    for typ in ["JWT", "JOSE"] {
        let (token, bundle) = es256_with_header(&header_with("typ", json!(typ)));
        validate(&token, &bundle).unwrap();
    }
}

#[test]
fn jwt_07_rejects_lowercase_jwt_typ() {
    // JWT-07, A-9: compared exactly, so `jwt` and `jose` are refused.
    for typ in ["jwt", "jose", "Jwt"] {
        let (token, bundle) = es256_with_header(&header_with("typ", json!(typ)));
        assert_eq!(
            validate(&token, &bundle),
            Err(JwtError::InvalidType(typ.into()))
        );
    }
}

#[test]
fn jwt_07_rejects_other_typ_values() {
    // JWT-07: `at+jwt`, media types, empty and non-string values are refused.
    for typ in ["at+jwt", "application/jwt", "JWS", ""] {
        let (token, bundle) = es256_with_header(&header_with("typ", json!(typ)));
        assert_eq!(
            validate(&token, &bundle),
            Err(JwtError::InvalidType(typ.into())),
            "{typ}"
        );
    }
    let (token, bundle) = es256_with_header(&header_with("typ", json!(null)));
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidType(_))
    ));
}

// ---------------------------------------------------------------------------------------
// JWT-08: `sub` is required and is a SPIFFE ID.

#[test]
fn jwt_08_accepts_spiffe_id_subject() {
    // JWT-08: the subject is exposed as a SpiffeId.
    let (token, bundle) = es256_with_claims(&good_claims());
    let svid = validate(&token, &bundle).unwrap();
    assert_eq!(*svid.spiffe_id(), id(SUB));
}

#[test]
fn jwt_08_rejects_missing_sub() {
    // JWT-08: the schema marks `sub` as required.
    let (token, bundle) = es256_with_claims(&claims_without("sub"));
    assert_eq!(
        validate(&token, &bundle),
        Err(JwtError::MissingClaim("sub"))
    );
}

#[test]
fn jwt_08_rejects_sub_that_is_not_a_spiffe_id() {
    // JWT-08: `sub` must be a valid SPIFFE ID.
    for sub in [
        "https://example.org/workload",
        "spiffe://EXAMPLE.org/workload",
        "spiffe://example.org/a//b",
        "workload",
        "",
    ] {
        let (token, bundle) = es256_with_claims(&claims_with("sub", json!(sub)));
        assert!(
            matches!(
                validate(&token, &bundle),
                Err(JwtError::InvalidSubject { .. })
            ),
            "{sub}"
        );
    }
    let (token, bundle) = es256_with_claims(&claims_with("sub", json!(["spiffe://example.org/w"])));
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidClaim { claim: "sub", .. })
    ));
}

// ---------------------------------------------------------------------------------------
// JWT-09: `aud` present with at least one value, as a string or an array.

#[test]
fn jwt_09_accepts_aud_as_string() {
    // JWT-09: RFC 7519 allows a single string.
    let (token, bundle) = es256_with_claims(&claims_with("aud", json!(AUD)));
    assert_eq!(validate(&token, &bundle).unwrap().audience(), [AUD]);
}

#[test]
fn jwt_09_accepts_aud_as_array() {
    // JWT-09: or an array of strings.
    let (token, bundle) = es256_with_claims(&claims_with("aud", json!(["other", AUD])));
    assert_eq!(
        validate(&token, &bundle).unwrap().audience(),
        ["other", AUD]
    );
}

#[test]
fn jwt_09_rejects_empty_aud() {
    // JWT-09: `aud` holds at least one value.
    for aud in [json!([]), json!("")] {
        let (token, bundle) = es256_with_claims(&claims_with("aud", aud));
        assert_eq!(validate(&token, &bundle), Err(JwtError::EmptyAudience));
    }
}

#[test]
fn jwt_09_rejects_aud_of_wrong_type() {
    // JWT-09: numbers, objects or arrays with non-strings are not audiences.
    for aud in [
        json!(1),
        json!({"a": AUD}),
        json!([AUD, 1]),
        json!(null),
        json!(true),
    ] {
        let (token, bundle) = es256_with_claims(&claims_with("aud", aud.clone()));
        assert!(
            matches!(
                validate(&token, &bundle),
                Err(JwtError::InvalidClaim { claim: "aud", .. })
            ),
            "{aud}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// JWT-10: validators reject a missing `aud` or one without their own audience.

#[test]
fn jwt_10_accepts_when_own_audience_is_included() {
    // JWT-10: the expected audience is one of several.
    let (token, bundle) = es256_with_claims(&claims_with("aud", json!(["a", AUD, "b"])));
    validate(&token, &bundle).unwrap();
    // Several expected audiences: all must be present.
    JwtSvid::parse_and_validate(&token, &bundle, &["a", "b"], now()).unwrap();
}

#[test]
fn jwt_10_rejects_missing_aud() {
    // JWT-10: no `aud` at all.
    let (token, bundle) = es256_with_claims(&claims_without("aud"));
    assert_eq!(
        validate(&token, &bundle),
        Err(JwtError::MissingClaim("aud"))
    );
}

#[test]
fn jwt_10_rejects_wrong_audience() {
    // JWT-10: `aud` does not include the validator's audience.
    let (token, bundle) = es256_with_claims(&claims_with("aud", json!(["x"])));
    let err = JwtSvid::parse_and_validate(&token, &bundle, &["y"], now()).unwrap_err();
    assert_eq!(
        err,
        JwtError::AudienceMismatch {
            audience: vec!["x".into()],
            expected: "y".into()
        }
    );
    assert_eq!(err.to_string(), "audience [\"x\"] does not contain \"y\"");
    // One of two expected audiences missing.
    assert!(matches!(
        JwtSvid::parse_and_validate(&token, &bundle, &["x", "y"], now()),
        Err(JwtError::AudienceMismatch { .. })
    ));
    // Prefixes and case variants are not matches.
    let (token, bundle) = es256_with_claims(&claims_with("aud", json!(["audience"])));
    for expected in ["Audience", "audienc", "audience2", " audience"] {
        assert!(
            JwtSvid::parse_and_validate(&token, &bundle, &[expected], now()).is_err(),
            "{expected}"
        );
    }
}

#[test]
fn jwt_10_rejects_validation_without_expected_audience() {
    // JWT-10, WAPI-28: a validator must have an audience; none (or an empty one) is an
    // invalid argument, whatever the token.
    let (token, bundle) = es256_with_claims(&good_claims());
    assert_eq!(
        JwtSvid::parse_and_validate(&token, &bundle, &[], now()),
        Err(JwtError::NoExpectedAudience)
    );
    assert_eq!(
        JwtSvid::parse_and_validate(&token, &bundle, &[""], now()),
        Err(JwtError::NoExpectedAudience)
    );
}

// ---------------------------------------------------------------------------------------
// JWT-11 (SHOULD): a single audience.

#[test]
fn jwt_11_signer_writes_single_audience_as_string() {
    // JWT-11: a single audience is recommended; like go-jose (and so SPIRE), a single
    // audience is written as a string, several as an array.
    let key = ec_key(JwtAlgorithm::ES256);
    let one = library_token(&key, &[AUD]);
    let claims: Value = serde_json::from_slice(&unb64(one.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["aud"], json!(AUD));
    let two = library_token(&key, &[AUD, "other"]);
    let claims: Value = serde_json::from_slice(&unb64(two.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["aud"], json!([AUD, "other"]));
}

// ---------------------------------------------------------------------------------------
// JWT-12: `exp` is required.

#[test]
fn jwt_12_accepts_numeric_exp() {
    // JWT-12: integer and fractional NumericDates are numbers.
    for exp in [json!(NOW + 300), json!(NOW as f64 + 300.5), json!(1e12)] {
        let (token, bundle) = es256_with_claims(&claims_with("exp", exp));
        validate(&token, &bundle).unwrap();
    }
}

#[test]
fn jwt_12_rejects_missing_exp() {
    // JWT-12: validators reject tokens without `exp`.
    let (token, bundle) = es256_with_claims(&claims_without("exp"));
    assert_eq!(
        validate(&token, &bundle),
        Err(JwtError::MissingClaim("exp"))
    );
}

#[test]
fn jwt_12_rejects_non_numeric_exp() {
    // JWT-12: `exp` is a NumericDate; strings, null, booleans and arrays are not.
    for exp in [
        json!((NOW + 300).to_string()),
        json!(null),
        json!(true),
        json!([NOW + 300]),
    ] {
        let (token, bundle) = es256_with_claims(&claims_with("exp", exp.clone()));
        assert!(
            matches!(
                validate(&token, &bundle),
                Err(JwtError::InvalidClaim { claim: "exp", .. })
            ),
            "{exp}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// JWT-13 / A-6: `exp` in the past is rejected, with one minute of leeway.

#[test]
fn jwt_13_accepts_within_leeway() {
    // JWT-13, A-6: expired 30 s ago, and exactly 60 s ago, is still within the leeway.
    let (token, bundle) = es256_with_claims(&claims_with("exp", json!(NOW)));
    validate_at(&token, &bundle, at(NOW + 30)).unwrap();
    validate_at(&token, &bundle, at(NOW + 60)).unwrap();
}

#[test]
fn jwt_13_rejects_expired() {
    // JWT-13, A-6: 61 s past `exp`, or far past, is expired.
    let (token, bundle) = es256_with_claims(&claims_with("exp", json!(NOW)));
    let err = validate_at(&token, &bundle, at(NOW + 61)).unwrap_err();
    assert_eq!(err, JwtError::Expired);
    assert_eq!(err.to_string(), "token has expired");
    assert_eq!(
        validate_at(&token, &bundle, at(NOW + 86_400)),
        Err(JwtError::Expired)
    );
    // Fractional `exp`: 60.5 s past is beyond the leeway.
    let (token, bundle) = es256_with_claims(&claims_with("exp", json!(NOW as f64 - 60.5)));
    assert_eq!(validate(&token, &bundle), Err(JwtError::Expired));
    // Negative and zero `exp` are long expired.
    for exp in [json!(-1), json!(0), json!(-1e300)] {
        let (token, bundle) = es256_with_claims(&claims_with("exp", exp));
        assert_eq!(validate(&token, &bundle), Err(JwtError::Expired));
    }
}

#[test]
fn jwt_13_accepts_far_future_exp() {
    // JWT-13: the spec sets no upper limit on `exp`; huge values must not overflow.
    for exp in [
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e300),
        json!(253_402_300_800i64),
    ] {
        let (token, bundle) = es256_with_claims(&claims_with("exp", exp.clone()));
        let svid = validate(&token, &bundle).unwrap();
        assert!(svid.expiry() > now(), "{exp}");
        assert!(svid.expiry_unix() > NOW, "{exp}");
    }
}

// ---------------------------------------------------------------------------------------
// JWT-14 / JWT-21: other claims may be present.

#[test]
fn jwt_14_accepts_and_exposes_extra_claims() {
    // JWT-14, JWT-21: registered (`iss`, `jti`) and private claims are allowed and kept.
    let mut claims = good_claims();
    claims["iss"] = json!("https://issuer.example.org");
    claims["jti"] = json!("6b1e9f1c-2b2f-4f5e-8c3a-1d2e3f4a5b6c");
    claims["https://example.org/claims"] = json!({"role": ["a", "b"], "n": 1});
    let (token, bundle) = es256_with_claims(&claims);
    let svid = validate(&token, &bundle).unwrap();
    assert_eq!(svid.claims()["iss"], "https://issuer.example.org");
    assert_eq!(svid.claims()["https://example.org/claims"]["role"][1], "b");
    assert_eq!(svid.claims(), claims.as_object().unwrap());
}

#[test]
fn jwt_14_signer_includes_extra_claims() {
    // JWT-14: the signer adds extra claims such as `iss` and `jti`.
    let key = ec_key(JwtAlgorithm::ES256);
    let mut claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], NOW + 300, NOW);
    claims.extra.insert("iss".into(), json!("issuer"));
    claims.extra.insert("jti".into(), json!("id-1"));
    let token = sign(&key.signing_key(), KID, &claims).unwrap();
    let svid = validate(&token, &example_bundle(&key)).unwrap();
    assert_eq!(svid.claims()["iss"], "issuer");
    assert_eq!(svid.claims()["jti"], "id-1");
    assert_eq!(svid.claims()["iat"], NOW);
}

#[test]
fn jwt_14_signer_rejects_extra_claims_overriding_svid_claims() {
    // JWT-14: extra claims may not replace `sub`, `aud`, `exp` or `iat`.
    let key = ec_key(JwtAlgorithm::ES256).signing_key();
    for name in ["sub", "aud", "exp", "iat"] {
        let mut claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], NOW + 300, NOW);
        claims.extra.insert(name.into(), json!("x"));
        assert_eq!(
            sign(&key, KID, &claims),
            Err(JwtError::ReservedClaim(name.into()))
        );
    }
}

// ---------------------------------------------------------------------------------------
// JWT-15: signatures per RFC 7519 §7, `exp`/`aud`/`nbf` processing.

#[test]
fn jwt_15_accepts_valid_signature() {
    // JWT-15: a correct signature by the bundle key verifies.
    let (token, bundle) = es256_with_claims(&good_claims());
    validate(&token, &bundle).unwrap();
}

#[test]
fn jwt_15_rejects_signature_from_different_key_with_same_kid() {
    // JWT-15: the signature must come from the bundle key, not just any key named KID.
    for alg in [JwtAlgorithm::ES256, JwtAlgorithm::RS256] {
        let signer = if alg.is_rsa() {
            other_rsa_key(alg)
        } else {
            ec_key(alg)
        };
        let trusted = key_for(alg);
        let token = token_with_claims(&good_claims(), &signer);
        assert_eq!(
            validate(&token, &example_bundle(&trusted)),
            Err(JwtError::InvalidSignature),
            "{alg}"
        );
    }
}

#[test]
fn jwt_15_rejects_tampered_token() {
    // JWT-15: changing the payload, header or signature breaks the signature.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let token = token_with_claims(&good_claims(), &key);
    let parts: Vec<&str> = token.split('.').collect();

    let mut claims = good_claims();
    claims["sub"] = json!("spiffe://example.org/admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(validate(&forged, &bundle), Err(JwtError::InvalidSignature));

    let header = json!({"alg": "ES256", "kid": KID});
    let forged = format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert_eq!(validate(&forged, &bundle), Err(JwtError::InvalidSignature));

    let mut sig = unb64(parts[2]);
    sig[10] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(validate(&forged, &bundle), Err(JwtError::InvalidSignature));

    let forged = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(validate(&forged, &bundle), Err(JwtError::InvalidSignature));
}

#[test]
fn jwt_15_rejects_ecdsa_asn1_signature_format() {
    // JWT-15 (RFC 7518 §3.4): ECDSA JWS signatures are the fixed r || s form; a DER
    // (ASN.1) signature over the same input is not accepted.
    let key = ec_key(JwtAlgorithm::ES256);
    let header = header(JwtAlgorithm::ES256).to_string();
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &key.pkcs8,
    )
    .unwrap();
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    let token = format!("{input}.{}", b64(sig.as_ref()));
    assert_eq!(
        validate(&token, &example_bundle(&key)),
        Err(JwtError::InvalidSignature)
    );
}

#[test]
fn jwt_15_rejects_es256_header_signed_with_p384_key() {
    // JWT-15: the key must fit the algorithm: an ES256 header with a P-384 bundle key.
    let key = ec_key(JwtAlgorithm::ES384);
    let token = craft_raw(
        &header(JwtAlgorithm::ES256).to_string(),
        &good_claims().to_string(),
        &key,
        JwtAlgorithm::ES384,
    );
    let err = validate(&token, &example_bundle(&key)).unwrap_err();
    assert!(
        matches!(err, JwtError::KeyAlgorithmMismatch { alg: "ES256", .. }),
        "{err:?}"
    );
}

#[test]
fn jwt_15_rejects_rs256_header_with_ec_key_and_es256_with_rsa_key() {
    // JWT-15: RSA algorithms need an RSA key and ECDSA ones an EC key.
    let ec = ec_key(JwtAlgorithm::ES256);
    let token = craft_raw(
        &header(JwtAlgorithm::RS256).to_string(),
        &good_claims().to_string(),
        &ec,
        JwtAlgorithm::ES256,
    );
    assert!(matches!(
        validate(&token, &example_bundle(&ec)),
        Err(JwtError::KeyAlgorithmMismatch { alg: "RS256", .. })
    ));

    let rsa = rsa_key(JwtAlgorithm::RS256);
    let token = craft_raw(
        &header(JwtAlgorithm::ES256).to_string(),
        &good_claims().to_string(),
        &rsa,
        JwtAlgorithm::RS256,
    );
    assert!(matches!(
        validate(&token, &example_bundle(&rsa)),
        Err(JwtError::KeyAlgorithmMismatch { alg: "ES256", .. })
    ));
}

#[test]
fn jwt_15_rejects_padding_scheme_mismatch() {
    // JWT-15: an RS256 header with a PSS signature (and the reverse) does not verify.
    let rsa = rsa_key(JwtAlgorithm::RS256);
    let token = craft_raw(
        &header(JwtAlgorithm::RS256).to_string(),
        &good_claims().to_string(),
        &rsa,
        JwtAlgorithm::PS256,
    );
    assert_eq!(
        validate(&token, &example_bundle(&rsa)),
        Err(JwtError::InvalidSignature)
    );
    let token = craft_raw(
        &header(JwtAlgorithm::PS256).to_string(),
        &good_claims().to_string(),
        &rsa,
        JwtAlgorithm::RS256,
    );
    assert_eq!(
        validate(&token, &example_bundle(&rsa)),
        Err(JwtError::InvalidSignature)
    );
    // RS384 header over an RS256 signature.
    let token = craft_raw(
        &header(JwtAlgorithm::RS384).to_string(),
        &good_claims().to_string(),
        &rsa,
        JwtAlgorithm::RS256,
    );
    assert_eq!(
        validate(&token, &example_bundle(&rsa)),
        Err(JwtError::InvalidSignature)
    );
}

#[test]
fn jwt_15_accepts_nbf_in_past_or_within_leeway() {
    // JWT-15 (RFC 7519 §4.1.5), A-6: `nbf` now, in the past, or up to 60 s ahead.
    for nbf in [NOW - 100, NOW, NOW + 60] {
        let (token, bundle) = es256_with_claims(&claims_with("nbf", json!(nbf)));
        validate(&token, &bundle).unwrap();
    }
}

#[test]
fn jwt_15_rejects_nbf_in_the_future() {
    // JWT-15 (RFC 7519 §4.1.5), A-6: `nbf` more than 60 s ahead.
    let (token, bundle) = es256_with_claims(&claims_with("nbf", json!(NOW + 61)));
    assert_eq!(validate(&token, &bundle), Err(JwtError::NotYetValid));
    let (token, bundle) = es256_with_claims(&claims_with("nbf", json!("soon")));
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidClaim { claim: "nbf", .. })
    ));
}

#[test]
fn a_6_accepts_iat_within_leeway() {
    // A-6: `iat` up to 60 s in the future is tolerated, as go-jose does.
    for iat in [NOW - 1000, NOW, NOW + 60] {
        let (token, bundle) = es256_with_claims(&claims_with("iat", json!(iat)));
        validate(&token, &bundle).unwrap();
    }
}

#[test]
fn a_6_rejects_iat_in_the_future() {
    // A-6: go-jose rejects `iat` in the future beyond the leeway.
    let (token, bundle) = es256_with_claims(&claims_with("iat", json!(NOW + 61)));
    assert_eq!(validate(&token, &bundle), Err(JwtError::IssuedInTheFuture));
    let (token, bundle) = es256_with_claims(&claims_with("iat", json!({})));
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidClaim { claim: "iat", .. })
    ));
}

// ---------------------------------------------------------------------------------------
// JWT-23 / BUN-11: the bundle of the subject's trust domain.

#[test]
fn jwt_23_accepts_with_bundle_of_subject_trust_domain() {
    // JWT-23: with several bundles, the one of `sub`'s trust domain is used.
    let ours = ec_key(JwtAlgorithm::ES256);
    let theirs = ec_key(JwtAlgorithm::ES256);
    let mut bundles = BTreeMap::new();
    bundles.insert(td("example.org"), bundle("example.org", KID, &ours));
    bundles.insert(td("other.org"), bundle("other.org", KID, &theirs));
    let token = token_with_claims(&good_claims(), &ours);
    validate(&token, &bundles).unwrap();

    let claims = claims_with("sub", json!("spiffe://other.org/w"));
    let token = token_with_claims(&claims, &theirs);
    assert_eq!(
        validate(&token, &bundles)
            .unwrap()
            .spiffe_id()
            .trust_domain(),
        td("other.org")
    );
}

#[test]
fn jwt_23_rejects_when_no_bundle_for_subject_trust_domain() {
    // JWT-23: no bundle for `sub`'s trust domain means untrusted, even if another
    // trust domain's bundle holds the signing key under the same kid.
    let key = ec_key(JwtAlgorithm::ES256);
    let claims = claims_with("sub", json!("spiffe://other.org/w"));
    let token = token_with_claims(&claims, &key);
    let err = validate(&token, &example_bundle(&key)).unwrap_err();
    assert_eq!(err, JwtError::NoBundle(td("other.org")));
    assert_eq!(
        err.to_string(),
        "no JWT bundle for trust domain \"other.org\""
    );
}

#[test]
fn jwt_23_rejects_key_of_another_trust_domain() {
    // JWT-23: `sub` in other.org, signed with example.org's key; other.org's bundle does
    // not hold that kid, so the token is refused.
    let example = ec_key(JwtAlgorithm::ES256);
    let other = ec_key(JwtAlgorithm::ES256);
    let mut bundles = BTreeMap::new();
    bundles.insert(td("example.org"), bundle("example.org", KID, &example));
    bundles.insert(td("other.org"), bundle("other.org", "other-kid", &other));
    let claims = claims_with("sub", json!("spiffe://other.org/w"));
    let token = token_with_claims(&claims, &example);
    let err = validate(&token, &bundles).unwrap_err();
    assert_eq!(
        err,
        JwtError::KeyNotFound {
            kid: KID.into(),
            trust_domain: td("other.org")
        }
    );
    assert_eq!(
        err.to_string(),
        "key \"authority-1\" not found in the JWT bundle of \"other.org\""
    );
}

#[test]
fn jwt_23_rejects_unknown_kid() {
    // JWT-23: the kid must be in the subject's bundle.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = token_with_claims(&good_claims(), &key);
    assert!(matches!(
        validate(&token, &bundle("example.org", "another-kid", &key)),
        Err(JwtError::KeyNotFound { .. })
    ));
}

#[test]
fn jwt_23_rejects_bundle_source_returning_wrong_trust_domain() {
    // JWT-23: a source that hands back a bundle of another trust domain is not trusted.
    struct Liar(JwtBundle);
    impl JwtBundleSource for Liar {
        fn jwt_bundle_for(&self, _: &TrustDomain) -> Option<&JwtBundle> {
            Some(&self.0)
        }
    }
    let key = ec_key(JwtAlgorithm::ES256);
    let token = token_with_claims(&good_claims(), &key);
    assert_eq!(
        validate(&token, &Liar(bundle("other.org", KID, &key))),
        Err(JwtError::NoBundle(td("example.org")))
    );
}

#[test]
fn bun_11_accepts_bundle_with_keys() {
    // BUN-11: a bundle with a usable key validates its tokens.
    let (token, bundle) = es256_with_claims(&good_claims());
    assert!(!bundle.is_empty());
    validate(&token, &bundle).unwrap();
}

#[test]
fn bun_11_rejects_every_token_with_empty_bundle() {
    // BUN-11, JWT-20: a bundle with no usable keys makes every SVID of the trust domain
    // invalid, whether `keys` is `[]` or every entry was ignored.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = token_with_claims(&good_claims(), &key);
    let empty = JwtBundle::parse_jwks(td("example.org"), br#"{"keys":[]}"#).unwrap();
    let err = validate(&token, &empty).unwrap_err();
    assert_eq!(err, JwtError::EmptyBundle(td("example.org")));
    let all_ignored = json!({"keys": [
        key.public_key().to_jwk(Some(KID), "x509-svid"),
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    ]});
    let ignored =
        JwtBundle::parse_jwks(td("example.org"), all_ignored.to_string().as_bytes()).unwrap();
    assert_eq!(
        validate(&token, &ignored),
        Err(JwtError::EmptyBundle(td("example.org")))
    );
}

// ---------------------------------------------------------------------------------------
// parse_insecure

#[test]
fn parse_insecure_accepts_without_bundle_or_signature() {
    // Like go-spiffe's ParseInsecure: every check except the bundle and the signature.
    let key = ec_key(JwtAlgorithm::ES256);
    let token = token_with_claims(&good_claims(), &key);
    let (input, _) = token.rsplit_once('.').unwrap();
    let unsigned = format!("{input}.AAAA");
    let svid = JwtSvid::parse_insecure(&unsigned, &[AUD], now()).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), SUB);
    // An empty expected audience skips the audience check.
    JwtSvid::parse_insecure(&unsigned, &[], now()).unwrap();
}

#[test]
fn parse_insecure_rejects_bad_claims_and_headers() {
    // parse_insecure still enforces JWT-02/04/07/08/09/10/12/13 and A-4.
    let key = ec_key(JwtAlgorithm::ES256);
    let expired = token_with_claims(&claims_with("exp", json!(NOW - 3600)), &key);
    assert_eq!(
        JwtSvid::parse_insecure(&expired, &[AUD], now()),
        Err(JwtError::Expired)
    );
    let token = token_with_claims(&good_claims(), &key);
    assert!(matches!(
        JwtSvid::parse_insecure(&token, &["other"], now()),
        Err(JwtError::AudienceMismatch { .. })
    ));
    let bad_typ = craft(&header_with("typ", json!("jwt")), &good_claims(), &key);
    assert_eq!(
        JwtSvid::parse_insecure(&bad_typ, &[AUD], now()),
        Err(JwtError::InvalidType("jwt".into()))
    );
    let no_sub = token_with_claims(&claims_without("sub"), &key);
    assert_eq!(
        JwtSvid::parse_insecure(&no_sub, &[AUD], now()),
        Err(JwtError::MissingClaim("sub"))
    );
    assert_eq!(
        JwtSvid::parse_insecure(&token, &[""], now()),
        Err(JwtError::NoExpectedAudience)
    );
}

// ---------------------------------------------------------------------------------------
// Signer

#[test]
fn signer_writes_spire_header_exactly() {
    // SPIRE writes `{"alg":…,"kid":…,"typ":"JWT"}` (agent.md §8).
    let key = ec_key(JwtAlgorithm::ES256);
    let token = library_token(&key, &[AUD]);
    let header = unb64(token.split('.').next().unwrap());
    assert_eq!(
        header,
        br#"{"alg":"ES256","kid":"authority-1","typ":"JWT"}"#
    );
    let claims: Value = serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(
        claims,
        json!({"sub": SUB, "aud": AUD, "exp": NOW + 300, "iat": NOW})
    );
}

#[test]
fn signer_refuses_empty_audience_and_kid() {
    // JWT-09: never issue a token without an audience; A-4: never without a kid.
    let key = ec_key(JwtAlgorithm::ES256).signing_key();
    let claims = JwtSvidClaims::new(id(SUB), vec![], NOW + 300, NOW);
    assert_eq!(sign(&key, KID, &claims), Err(JwtError::EmptyAudienceToSign));
    let claims = JwtSvidClaims::new(id(SUB), vec![String::new()], NOW + 300, NOW);
    assert_eq!(sign(&key, KID, &claims), Err(JwtError::EmptyAudienceToSign));
    // Empty audiences are dropped, as SPIRE does.
    let claims = JwtSvidClaims::new(id(SUB), vec![String::new(), AUD.into()], NOW + 300, NOW);
    let token = sign(&key, KID, &claims).unwrap();
    let claims: Value = serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["aud"], json!(AUD));
    let claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], NOW + 300, NOW);
    assert_eq!(sign(&key, "", &claims), Err(JwtError::EmptyKeyIdToSign));
}

#[test]
fn signing_key_loads_pkcs8_and_picks_algorithm() {
    // EC keys sign with their curve's algorithm; RSA keys with RS256 by default or any
    // RS*/PS* when asked; a mismatched request is refused.
    for alg in [
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::ES512,
    ] {
        let key = ec_key(alg);
        let loaded = JwtSigningKey::from_pkcs8_der(&key.pkcs8).unwrap();
        assert_eq!(loaded.algorithm(), alg);
        assert_eq!(loaded.public_key().ec_curve(), alg.ec_curve());
        assert_eq!(loaded.to_pkcs8_der().unwrap(), key.pkcs8);
        for other in JwtAlgorithm::ALL.into_iter().filter(|a| *a != alg) {
            assert!(JwtSigningKey::from_pkcs8_der_with_algorithm(&key.pkcs8, other).is_err());
        }
    }
    let rsa = rsa_key(JwtAlgorithm::RS256);
    let loaded = JwtSigningKey::from_pkcs8_der(&rsa.pkcs8).unwrap();
    assert_eq!(loaded.algorithm(), JwtAlgorithm::RS256);
    assert_eq!(loaded.public_key().rsa_bits(), Some(2048));
    let pss =
        JwtSigningKey::from_pkcs8_der_with_algorithm(&rsa.pkcs8, JwtAlgorithm::PS256).unwrap();
    assert_eq!(pss.algorithm(), JwtAlgorithm::PS256);
    assert!(JwtSigningKey::from_pkcs8_der_with_algorithm(&rsa.pkcs8, JwtAlgorithm::ES256).is_err());
    assert!(JwtSigningKey::from_pkcs8_der(b"not a key").is_err());
    assert!(JwtSigningKey::from_pkcs8_der(&[]).is_err());
}

#[test]
fn signing_key_generate_covers_ec_algorithms() {
    // `generate` gives a key on the algorithm's curve whose tokens validate.
    for alg in [
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::ES512,
    ] {
        let key = JwtSigningKey::generate(alg).unwrap();
        assert_eq!(key.algorithm(), alg);
        let claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], NOW + 300, NOW);
        let token = sign(&key, KID, &claims).unwrap();
        let mut bundle = JwtBundle::new(td("example.org"));
        bundle.add_authority(KID, key.public_key().clone()).unwrap();
        validate(&token, &bundle).unwrap();
    }
}

#[test]
fn jwt_svid_debug_does_not_leak_token() {
    // The token is a bearer credential: Debug leaves it out.
    let (token, bundle) = es256_with_claims(&good_claims());
    let svid = validate(&token, &bundle).unwrap();
    let debug = format!("{svid:?}");
    assert!(!debug.contains(&token));
    assert!(!debug.contains(token.split('.').nth(2).unwrap()));
}

// ---------------------------------------------------------------------------------------
// Robustness: never panic, never accept malformed input.

#[test]
fn rejects_non_object_header_and_claims() {
    // A header or claims set that is not a JSON object (or not JSON) is refused.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    for header in [
        "[]",
        "\"ES256\"",
        "1",
        "null",
        "{",
        "",
        "{\"alg\":\"ES256\"}x",
    ] {
        let token = craft_raw(
            header,
            &good_claims().to_string(),
            &key,
            JwtAlgorithm::ES256,
        );
        assert!(
            matches!(validate(&token, &bundle), Err(JwtError::InvalidHeader(_))),
            "{header}"
        );
    }
    let header = header(JwtAlgorithm::ES256).to_string();
    for claims in ["[]", "\"x\"", "1e999", "null", "{\"sub\":", "\u{feff}{}"] {
        let token = craft_raw(&header, claims, &key, JwtAlgorithm::ES256);
        assert!(
            matches!(validate(&token, &bundle), Err(JwtError::InvalidClaims(_))),
            "{claims}"
        );
    }
    // Invalid UTF-8 in the header bytes.
    let token = format!(
        "{}.{}.AAAA",
        b64(b"{\"alg\":\"ES256\xff\"}"),
        b64(good_claims().to_string().as_bytes())
    );
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidHeader(_))
    ));
}

#[test]
fn rejects_duplicate_members() {
    // Duplicate header or claim names are refused (RFC 7515 §5.2 lets us), so a parser
    // that keeps the first value and one that keeps the last never disagree.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let header = r#"{"alg":"ES256","kid":"authority-1","alg":"none"}"#;
    let token = craft_raw(
        header,
        &good_claims().to_string(),
        &key,
        JwtAlgorithm::ES256,
    );
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidHeader(_))
    ));
    let claims = format!(
        r#"{{"sub":"{SUB}","sub":"spiffe://example.org/admin","aud":"{AUD}","exp":{}}}"#,
        NOW + 300
    );
    let token = craft_raw(
        &jwt_common::header(JwtAlgorithm::ES256).to_string(),
        &claims,
        &key,
        JwtAlgorithm::ES256,
    );
    assert!(matches!(
        validate(&token, &bundle),
        Err(JwtError::InvalidClaims(_))
    ));
}

#[test]
fn survives_deeply_nested_and_huge_inputs() {
    // Deep nesting hits serde_json's recursion limit as an error, not a stack overflow;
    // big tokens are just refused.
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let deep = format!(
        r#"{{"sub":"{SUB}","aud":"{AUD}","exp":{},"x":{}{}}}"#,
        NOW + 300,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let token = craft_raw(
        &jwt_common::header(JwtAlgorithm::ES256).to_string(),
        &deep,
        &key,
        JwtAlgorithm::ES256,
    );
    assert!(validate(&token, &bundle).is_err());
    let huge = "A".repeat(5_000_000);
    assert!(validate(&format!("{huge}.{huge}.{huge}"), &bundle).is_err());
    assert!(validate(&".".repeat(100_000), &bundle).is_err());
}

#[test]
fn every_single_character_mutation_is_rejected_without_panic() {
    // Flip, drop or duplicate every character of a valid token: nothing panics, and
    // nothing but the original validates (base64url of the last character may have
    // unused bits, which strict decoding refuses too).
    let key = ec_key(JwtAlgorithm::ES256);
    let bundle = example_bundle(&key);
    let token = token_with_claims(&good_claims(), &key);
    validate(&token, &bundle).unwrap();
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b'A', b'.', b'-', b'_', b'=', b'{'] {
            if bytes[i] == replacement {
                continue;
            }
            let mut mutated = bytes.to_vec();
            mutated[i] = replacement;
            let mutated = String::from_utf8(mutated).unwrap();
            assert!(validate(&mutated, &bundle).is_err(), "{mutated}");
            let _ = JwtSvid::parse_insecure(&mutated, &[AUD], now());
        }
        let mut dropped = bytes.to_vec();
        dropped.remove(i);
        let dropped = String::from_utf8(dropped).unwrap();
        assert!(validate(&dropped, &bundle).is_err(), "{dropped}");
    }
}

// ---------------------------------------------------------------------------------------
// Interoperability with independent implementations.

#[test]
fn interop_spiffe_crate_validates_our_es256_token() {
    // Our ES256 token and our JWKS, validated by the independent `spiffe` crate 0.19
    // (rust-spiffe), with the JWKS both with `use` and in the standard form.
    let key = JwtSigningKey::generate(JwtAlgorithm::ES256).unwrap();
    let mut bundle = JwtBundle::new(td("example.org"));
    bundle.add_authority(KID, key.public_key().clone()).unwrap();
    let now_secs = i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], now_secs + 300, now_secs);
    let token = sign(&key, KID, &claims).unwrap();

    for jwks in [bundle.to_jwks_json(), bundle.to_standard_jwks_json()] {
        let their_td = spiffe::TrustDomain::new("example.org").unwrap();
        let their_bundle = spiffe::JwtBundle::from_jwt_authorities(their_td, &jwks).unwrap();
        let mut set = spiffe::JwtBundleSet::new();
        set.add_bundle(their_bundle);
        let svid = spiffe::JwtSvid::parse_and_validate(&token, &set, &[AUD]).unwrap();
        assert_eq!(svid.spiffe_id().to_string(), SUB);
        assert_eq!(svid.audience(), [AUD.to_owned()]);
        assert!(spiffe::JwtSvid::parse_and_validate(&token, &set, &["wrong"]).is_err());
    }
}

#[test]
fn interop_spiffe_crate_validates_our_rsa_and_es384_tokens() {
    // The same for ES384, RS256 and PS256 (rust-spiffe has no ES512).
    let now_secs = i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    for alg in [
        JwtAlgorithm::ES384,
        JwtAlgorithm::RS256,
        JwtAlgorithm::PS256,
    ] {
        let key = key_for(alg).signing_key();
        let mut bundle = JwtBundle::new(td("example.org"));
        bundle.add_authority(KID, key.public_key().clone()).unwrap();
        let claims = JwtSvidClaims::new(id(SUB), vec![AUD.into()], now_secs + 300, now_secs);
        let token = sign(&key, KID, &claims).unwrap();
        let their_td = spiffe::TrustDomain::new("example.org").unwrap();
        let their_bundle =
            spiffe::JwtBundle::from_jwt_authorities(their_td, &bundle.to_jwks_json()).unwrap();
        let mut set = spiffe::JwtBundleSet::new();
        set.add_bundle(their_bundle);
        spiffe::JwtSvid::parse_and_validate(&token, &set, &[AUD])
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (what jsonwebtoken wants).
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    use x509_parser::der_parser::parse_der;
    let (_, info) = parse_der(pkcs8).unwrap();
    let seq = info.as_sequence().unwrap();
    seq[2].as_slice().unwrap().to_vec()
}

#[test]
fn interop_we_validate_jsonwebtoken_tokens() {
    // Tokens minted by the independent jsonwebtoken crate validate here, for every
    // algorithm it supports (all but ES512).
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let cases = [
        (JwtAlgorithm::ES256, Algorithm::ES256),
        (JwtAlgorithm::ES384, Algorithm::ES384),
        (JwtAlgorithm::RS256, Algorithm::RS256),
        (JwtAlgorithm::RS384, Algorithm::RS384),
        (JwtAlgorithm::RS512, Algorithm::RS512),
        (JwtAlgorithm::PS256, Algorithm::PS256),
        (JwtAlgorithm::PS384, Algorithm::PS384),
        (JwtAlgorithm::PS512, Algorithm::PS512),
    ];
    for (ours, theirs) in cases {
        let key = key_for(ours);
        let encoding_key = if ours.is_rsa() {
            EncodingKey::from_rsa_der(&pkcs1_from_pkcs8(&key.pkcs8))
        } else {
            EncodingKey::from_ec_der(&key.pkcs8)
        };
        let mut header = Header::new(theirs);
        header.kid = Some(KID.into());
        let token = jsonwebtoken::encode(&header, &good_claims(), &encoding_key).unwrap();
        let svid =
            validate(&token, &example_bundle(&key)).unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert_eq!(svid.algorithm(), ours);
        // And jsonwebtoken with a different key of the same type is refused.
        let stranger = if ours.is_rsa() {
            other_rsa_key(ours)
        } else {
            ec_key(ours)
        };
        assert_eq!(
            validate(&token, &example_bundle(&stranger)),
            Err(JwtError::InvalidSignature)
        );
    }
}

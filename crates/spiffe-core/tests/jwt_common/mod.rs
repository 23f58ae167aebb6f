//! Helpers shared by the JWT-SVID and JWT bundle tests: keys, a fixed clock, and a way to
//! hand-craft (possibly invalid) tokens signed with aws-lc-rs directly, independently of
//! the code under test.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use spiffe_core::{JwtAlgorithm, JwtBundle, JwtSigningKey, PublicKey, SpiffeId, TrustDomain};

/// The fixed "now" of the tests: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;
/// The audience the tests validate for.
pub const AUD: &str = "spiffe://example.org/service";
/// The subject of the test tokens.
pub const SUB: &str = "spiffe://example.org/workload";
/// The key ID of the test authority.
pub const KID: &str = "authority-1";

pub fn now() -> SystemTime {
    at(NOW)
}

pub fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// A private key kept both as PKCS#8 (to sign hand-crafted tokens with aws-lc-rs
/// directly) and as the library's signing key.
pub struct TestKey {
    pub pkcs8: Vec<u8>,
    pub alg: JwtAlgorithm,
}

impl TestKey {
    pub fn signing_key(&self) -> JwtSigningKey {
        JwtSigningKey::from_pkcs8_der_with_algorithm(&self.pkcs8, self.alg).unwrap()
    }

    pub fn public_key(&self) -> PublicKey {
        self.signing_key().public_key().clone()
    }

    /// The same key, signing with another algorithm (RSA: RS*/PS*).
    pub fn with_alg(&self, alg: JwtAlgorithm) -> TestKey {
        TestKey {
            pkcs8: self.pkcs8.clone(),
            alg,
        }
    }

    /// A raw JWS signature over `message` with `alg`, computed with aws-lc-rs directly.
    pub fn raw_sign(&self, alg: JwtAlgorithm, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let ec = match alg {
            JwtAlgorithm::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            JwtAlgorithm::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            JwtAlgorithm::ES512 => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
            _ => None,
        };
        if let Some(ec) = ec {
            let pair = EcdsaKeyPair::from_pkcs8(ec, &self.pkcs8).unwrap();
            return pair.sign(&rng, message).unwrap().as_ref().to_vec();
        }
        let encoding: &'static dyn signature::RsaEncoding = match alg {
            JwtAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
            JwtAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
            JwtAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
            JwtAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
            JwtAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
            _ => &signature::RSA_PSS_SHA512,
        };
        let pair = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(encoding, &rng, message, &mut sig).unwrap();
        sig
    }
}

/// A fresh EC key for ES256/ES384/ES512.
pub fn ec_key(alg: JwtAlgorithm) -> TestKey {
    let curve = match alg {
        JwtAlgorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        JwtAlgorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        JwtAlgorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        other => panic!("{other} is not an EC algorithm"),
    };
    let pair = EcdsaKeyPair::generate(curve).unwrap();
    TestKey {
        pkcs8: pair.to_pkcs8v1().unwrap().as_ref().to_vec(),
        alg,
    }
}

fn rsa_pkcs8(slot: &'static OnceLock<Vec<u8>>) -> Vec<u8> {
    slot.get_or_init(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        AsDer::<Pkcs8V1Der<'static>>::as_der(&pair)
            .unwrap()
            .as_ref()
            .to_vec()
    })
    .clone()
}

/// The shared 2048-bit RSA test key (generated once per test binary), signing with `alg`.
pub fn rsa_key(alg: JwtAlgorithm) -> TestKey {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    TestKey {
        pkcs8: rsa_pkcs8(&KEY),
        alg,
    }
}

/// A second, different 2048-bit RSA key.
pub fn other_rsa_key(alg: JwtAlgorithm) -> TestKey {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    TestKey {
        pkcs8: rsa_pkcs8(&KEY),
        alg,
    }
}

/// A key for any of the nine algorithms.
pub fn key_for(alg: JwtAlgorithm) -> TestKey {
    if alg.is_rsa() {
        rsa_key(alg)
    } else {
        ec_key(alg)
    }
}

/// The claims of a valid token: `sub` SUB, `aud` [AUD], `exp` in 5 minutes, `iat` now.
pub fn good_claims() -> Value {
    json!({"sub": SUB, "aud": [AUD], "exp": NOW + 300, "iat": NOW})
}

/// The header SPIRE writes.
pub fn header(alg: JwtAlgorithm) -> Value {
    json!({"alg": alg.as_str(), "kid": KID, "typ": "JWT"})
}

/// A token from raw header and claims JSON text, signed by `key` with `alg`.
pub fn craft_raw(header: &str, claims: &str, key: &TestKey, alg: JwtAlgorithm) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = key.raw_sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A token from header and claims values, signed by `key` with the key's algorithm.
pub fn craft(header: &Value, claims: &Value, key: &TestKey) -> String {
    craft_raw(&header.to_string(), &claims.to_string(), key, key.alg)
}

/// A token with the standard header and `claims`, signed by `key`.
pub fn token_with_claims(claims: &Value, key: &TestKey) -> String {
    craft(&header(key.alg), claims, key)
}

/// A bundle for `trust_domain` holding `key` under `kid`.
pub fn bundle(trust_domain: &str, kid: &str, key: &TestKey) -> JwtBundle {
    let mut bundle = JwtBundle::new(td(trust_domain));
    bundle.add_authority(kid, key.public_key()).unwrap();
    bundle
}

/// The bundle of example.org with `key` as KID.
pub fn example_bundle(key: &TestKey) -> JwtBundle {
    bundle("example.org", KID, key)
}

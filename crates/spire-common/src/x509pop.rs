//! The `x509pop` node attestation wire format and proof-of-possession, shared by the
//! server and agent plugins (SPIRE's `pkg/common/plugin/x509pop`; server.md §6).
//!
//! The agent sends `{"certificates":[<DER>...]}` (leaf first). The server answers with
//! a challenge holding a 32-byte nonce (`rsa_signature` or `ecdsa_signature`); the agent
//! picks its own 32-byte nonce and signs SHA-256(challenge nonce ‖ response nonce) as a
//! digest: RSA-PSS with SHA-256, or ECDSA returning big-endian `r` and `s`. Byte fields
//! are standard base64 in JSON, as Go encodes `[]byte`.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, RsaPssSaltLength, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Length of both nonces.
pub const NONCE_LEN: usize = 32;

/// The attestation payload: DER certificates, leaf first, then intermediates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationData {
    /// The chain, each certificate DER encoded.
    #[serde(with = "b64_list", default)]
    pub certificates: Vec<Vec<u8>>,
}

/// A nonce chosen by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceChallenge {
    /// The server's nonce.
    #[serde(with = "b64", default)]
    pub nonce: Vec<u8>,
}

/// The challenge: exactly one member is set, by the leaf's key type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// For RSA keys.
    #[serde(default)]
    pub rsa_signature: Option<NonceChallenge>,
    /// For ECDSA keys.
    #[serde(default)]
    pub ecdsa_signature: Option<NonceChallenge>,
}

/// An RSA-PSS answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaSignatureResponse {
    /// The agent's nonce.
    #[serde(with = "b64", default)]
    pub nonce: Vec<u8>,
    /// RSA-PSS (SHA-256) signature of the combined nonces.
    #[serde(with = "b64", default)]
    pub signature: Vec<u8>,
}

/// An ECDSA answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSignatureResponse {
    /// The agent's nonce.
    #[serde(with = "b64", default)]
    pub nonce: Vec<u8>,
    /// `r`, big-endian.
    #[serde(with = "b64", default)]
    pub r: Vec<u8>,
    /// `s`, big-endian.
    #[serde(with = "b64", default)]
    pub s: Vec<u8>,
}

/// The agent's response to a [`Challenge`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// For RSA keys.
    #[serde(default)]
    pub rsa_signature: Option<RsaSignatureResponse>,
    /// For ECDSA keys.
    #[serde(default)]
    pub ecdsa_signature: Option<EcdsaSignatureResponse>,
}

/// A leaf public key the server can challenge: the raw key of the SubjectPublicKeyInfo
/// (PKCS#1 `RSAPublicKey` DER for RSA, the uncompressed point for EC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An RSA key.
    Rsa(&'a [u8]),
    /// An ECDSA P-256 key.
    EcdsaP256(&'a [u8]),
    /// An ECDSA P-384 key.
    EcdsaP384(&'a [u8]),
}

/// An agent key able to answer challenges.
pub enum PrivateKey {
    /// An RSA key (answers with RSA-PSS, maximal salt as Go's `rsa.SignPSS`).
    Rsa(signature::RsaKeyPair),
    /// An ECDSA P-256 key.
    EcdsaP256(signature::EcdsaKeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrivateKey::Rsa(_) => "PrivateKey::Rsa(..)",
            PrivateKey::EcdsaP256(_) => "PrivateKey::EcdsaP256(..)",
        })
    }
}

/// RSA-PSS with SHA-256 and the largest salt, as Go signs with `PSSSaltLengthAuto`.
static PSS_SIGN_MAX_SALT: signature::RsaSignatureEncoding =
    signature::RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
/// Verification with the digest-length salt (what most signers use).
static PSS_VERIFY_DIGEST_SALT: signature::RsaParameters = signature::RSA_PSS_2048_8192_SHA256;
/// Verification with the largest salt (what Go's `rsa.SignPSS` uses by default).
static PSS_VERIFY_MAX_SALT: signature::RsaParameters =
    signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);

fn nonce() -> Result<Vec<u8>, String> {
    let mut n = vec![0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| "unable to generate nonce".to_owned())?;
    Ok(n)
}

/// A fresh challenge for a leaf key.
pub fn generate_challenge(key: &PublicKey<'_>) -> Result<Challenge, String> {
    let challenge = NonceChallenge { nonce: nonce()? };
    Ok(match key {
        PublicKey::Rsa(_) => Challenge {
            rsa_signature: Some(challenge),
            ecdsa_signature: None,
        },
        PublicKey::EcdsaP256(_) | PublicKey::EcdsaP384(_) => Challenge {
            rsa_signature: None,
            ecdsa_signature: Some(challenge),
        },
    })
}

/// SHA-256 of the challenge nonce followed by the response nonce (both 32 bytes).
pub fn combine_nonces(challenge: &[u8], response: &[u8]) -> Result<Digest, String> {
    if challenge.len() != NONCE_LEN {
        return Err("invalid challenge nonce".into());
    }
    if response.len() != NONCE_LEN {
        return Err("invalid response nonce".into());
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(challenge);
    ctx.update(response);
    Ok(ctx.finish())
}

/// The agent's answer to `challenge` with `key`.
pub fn calculate_response(key: &PrivateKey, challenge: &Challenge) -> Result<Response, String> {
    match key {
        PrivateKey::Rsa(pair) => {
            let c = challenge
                .rsa_signature
                .as_ref()
                .ok_or("expecting RSA challenge")?;
            let n = nonce()?;
            let combined = combine_nonces(&c.nonce, &n)?;
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign_digest(&PSS_SIGN_MAX_SALT, &combined, &mut sig)
                .map_err(|_| "RSA signing failed".to_owned())?;
            Ok(Response {
                rsa_signature: Some(RsaSignatureResponse {
                    nonce: n,
                    signature: sig,
                }),
                ecdsa_signature: None,
            })
        }
        PrivateKey::EcdsaP256(pair) => {
            let c = challenge
                .ecdsa_signature
                .as_ref()
                .ok_or("expecting ECDSA challenge")?;
            let n = nonce()?;
            let combined = combine_nonces(&c.nonce, &n)?;
            let sig = pair
                .sign_digest(&combined)
                .map_err(|_| "ECDSA signing failed".to_owned())?;
            let (r, s) = sig.as_ref().split_at(sig.as_ref().len() / 2);
            Ok(Response {
                rsa_signature: None,
                ecdsa_signature: Some(EcdsaSignatureResponse {
                    nonce: n,
                    r: strip_zeros(r).to_vec(),
                    s: strip_zeros(s).to_vec(),
                }),
            })
        }
    }
}

/// Verifies the agent's response to `challenge` with the leaf's public key.
pub fn verify_response(
    key: &PublicKey<'_>,
    challenge: &Challenge,
    response: &Response,
) -> Result<(), String> {
    match key {
        PublicKey::Rsa(raw) => {
            let c = challenge
                .rsa_signature
                .as_ref()
                .ok_or("expecting RSA challenge")?;
            let r = response
                .rsa_signature
                .as_ref()
                .ok_or("expecting RSA response")?;
            let combined = combine_nonces(&c.nonce, &r.nonce)?;
            let ok = [&PSS_VERIFY_DIGEST_SALT, &PSS_VERIFY_MAX_SALT]
                .into_iter()
                .any(|alg| {
                    UnparsedPublicKey::new(alg, raw)
                        .verify_digest(&combined, &r.signature)
                        .is_ok()
                });
            if ok {
                Ok(())
            } else {
                Err("RSA signature verify failed".into())
            }
        }
        PublicKey::EcdsaP256(raw) | PublicKey::EcdsaP384(raw) => {
            let c = challenge
                .ecdsa_signature
                .as_ref()
                .ok_or("expecting ECDSA challenge")?;
            let r = response
                .ecdsa_signature
                .as_ref()
                .ok_or("expecting ECDSA response")?;
            let combined = combine_nonces(&c.nonce, &r.nonce)?;
            let alg = match key {
                PublicKey::EcdsaP384(_) => &signature::ECDSA_P384_SHA256_ASN1,
                _ => &signature::ECDSA_P256_SHA256_ASN1,
            };
            let der = ecdsa_der(&r.r, &r.s).ok_or("ECDSA signature verify failed")?;
            UnparsedPublicKey::new(alg, raw)
                .verify_digest(&combined, &der)
                .map_err(|_| "ECDSA signature verify failed".to_owned())
        }
    }
}

/// Lowercase hex SHA-1 of a certificate's DER, SPIRE's x509pop fingerprint.
pub fn fingerprint(der: &[u8]) -> String {
    hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian magnitudes.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    fn integer(v: &[u8]) -> Option<Vec<u8>> {
        let v = strip_zeros(v);
        if v.is_empty() || v.len() > 66 {
            return None;
        }
        let mut out = vec![0x02];
        let pad = v[0] & 0x80 != 0;
        out.push(u8::try_from(v.len() + usize::from(pad)).ok()?);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        Some(out)
    }
    let mut body = integer(r)?;
    body.extend(integer(s)?);
    let mut out = vec![0x30];
    if body.len() < 0x80 {
        out.push(u8::try_from(body.len()).ok()?);
    } else {
        out.push(0x81);
        out.push(u8::try_from(body.len()).ok()?);
    }
    out.extend(body);
    Some(out)
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(Vec::new()),
            Some(t) => STANDARD.decode(t).map_err(serde::de::Error::custom),
        }
    }
}

mod b64_list {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&STANDARD.encode(item))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let items: Option<Vec<String>> = Option::deserialize(d)?;
        items
            .unwrap_or_default()
            .into_iter()
            .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::KeyPair;

    #[test]
    fn ecdsa_round_trip_and_wrong_nonce() {
        let rng = SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .expect("key");
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
        )
        .expect("pair");
        let public = pair.public_key().as_ref().to_vec();
        let key = PrivateKey::EcdsaP256(pair);
        let pk = PublicKey::EcdsaP256(&public);
        for _ in 0..20 {
            let challenge = generate_challenge(&pk).expect("challenge");
            let wire = serde_json::to_vec(&challenge).expect("json");
            let parsed: Challenge = serde_json::from_slice(&wire).expect("parse");
            let response = calculate_response(&key, &parsed).expect("respond");
            verify_response(&pk, &challenge, &response).expect("verify");
            let other = generate_challenge(&pk).expect("challenge");
            assert!(verify_response(&pk, &other, &response).is_err());
        }
        let json = serde_json::to_string(&Challenge::default()).expect("json");
        assert_eq!(json, r#"{"rsa_signature":null,"ecdsa_signature":null}"#);
    }

    #[test]
    fn fingerprint_is_sha1_hex() {
        assert_eq!(fingerprint(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}

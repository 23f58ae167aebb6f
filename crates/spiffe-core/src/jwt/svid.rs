//! Signing, parsing and validating JWT-SVIDs (JWS compact serialization).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _, RsaEncoding, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::id::SpiffeId;
use crate::jwk::{EcCurve, PublicKey};
use crate::jwt::{JwtAlgorithm, JwtBundleSource, JwtError};

/// Clock skew tolerated on `exp`, `nbf` and `iat`: one minute, as go-jose (and so
/// go-spiffe and SPIRE) allows (JWT-13, A-6).
pub const JWT_LEEWAY: Duration = Duration::from_secs(60);

/// Claims that [`sign`] sets itself and that `extra` may not override.
const RESERVED_CLAIMS: [&str; 4] = ["sub", "aud", "exp", "iat"];

/// The claims of a JWT-SVID to sign.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSvidClaims {
    /// The subject, the workload's SPIFFE ID (JWT-08).
    pub sub: SpiffeId,
    /// The audience (JWT-09). Empty strings are dropped, as SPIRE does; at least one
    /// value must remain.
    pub aud: Vec<String>,
    /// Expiry, seconds since the Unix epoch (JWT-12).
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Further claims, such as `iss` or `jti` (JWT-14, JWT-21). They may not set `sub`,
    /// `aud`, `exp` or `iat`.
    pub extra: Map<String, Value>,
}

impl JwtSvidClaims {
    /// Claims with no extra members.
    pub fn new(sub: SpiffeId, aud: Vec<String>, exp: i64, iat: i64) -> Self {
        JwtSvidClaims {
            sub,
            aud,
            exp,
            iat,
            extra: Map::new(),
        }
    }
}

/// A private key that signs JWT-SVIDs, with the JWS algorithm it signs with.
///
/// EC keys sign with their curve's algorithm (P-256 → ES256, P-384 → ES384, P-521 →
/// ES512); RSA keys (2048 bits or more) with RS256 unless another RS* or PS* algorithm is
/// chosen.
pub struct JwtSigningKey {
    pair: KeyPair,
    alg: JwtAlgorithm,
    public: PublicKey,
}

enum KeyPair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl JwtSigningKey {
    /// Loads an unencrypted PKCS#8 DER private key: EC P-256/P-384/P-521 or RSA. The
    /// algorithm is the curve's ES* one for EC keys and RS256 for RSA keys.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, JwtError> {
        for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(ec_signing_algorithm(curve), der) {
                return Self::from_ec(pair, JwtAlgorithm::for_ec_curve(curve));
            }
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(pair) => Self::from_rsa(pair, JwtAlgorithm::RS256),
            Err(_) => Err(JwtError::InvalidSigningKey(
                "not a PKCS#8 EC P-256/P-384/P-521 or RSA private key",
            )),
        }
    }

    /// Loads an unencrypted PKCS#8 DER private key to sign with `alg`, which must fit the
    /// key: the curve's ES* algorithm for EC keys, any RS* or PS* algorithm for RSA keys.
    pub fn from_pkcs8_der_with_algorithm(der: &[u8], alg: JwtAlgorithm) -> Result<Self, JwtError> {
        match alg.ec_curve() {
            Some(curve) => match EcdsaKeyPair::from_pkcs8(ec_signing_algorithm(curve), der) {
                Ok(pair) => Self::from_ec(pair, alg),
                Err(_) => Err(JwtError::InvalidSigningKey(
                    "not a PKCS#8 EC private key on the algorithm's curve",
                )),
            },
            None => match RsaKeyPair::from_pkcs8(der) {
                Ok(pair) => Self::from_rsa(pair, alg),
                Err(_) => Err(JwtError::InvalidSigningKey("not a PKCS#8 RSA private key")),
            },
        }
    }

    /// Generates a fresh key for `alg`: an EC key on the algorithm's curve, or a 2048-bit
    /// RSA key for the RS* and PS* algorithms.
    pub fn generate(alg: JwtAlgorithm) -> Result<Self, JwtError> {
        match alg.ec_curve() {
            Some(curve) => {
                let pair = EcdsaKeyPair::generate(ec_signing_algorithm(curve))
                    .map_err(|_| JwtError::Crypto("EC key generation failed"))?;
                Self::from_ec(pair, alg)
            }
            None => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| JwtError::Crypto("RSA key generation failed"))?;
                Self::from_rsa(pair, alg)
            }
        }
    }

    fn from_ec(pair: EcdsaKeyPair, alg: JwtAlgorithm) -> Result<Self, JwtError> {
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| JwtError::Crypto("encoding the public key failed"))?;
        let public = PublicKey::from_spki_der(spki.as_ref())
            .map_err(|_| JwtError::InvalidSigningKey("unusable EC public key"))?;
        Ok(JwtSigningKey {
            pair: KeyPair::Ec(pair),
            alg,
            public,
        })
    }

    fn from_rsa(pair: RsaKeyPair, alg: JwtAlgorithm) -> Result<Self, JwtError> {
        if !alg.is_rsa() {
            return Err(JwtError::InvalidSigningKey(
                "an RSA key signs with RS* or PS* only",
            ));
        }
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| JwtError::Crypto("encoding the public key failed"))?;
        let public = PublicKey::from_spki_der(spki.as_ref())
            .map_err(|_| JwtError::InvalidSigningKey("RSA keys must be 2048 to 8192 bits long"))?;
        Ok(JwtSigningKey {
            pair: KeyPair::Rsa(pair),
            alg,
            public,
        })
    }

    /// The key as unencrypted PKCS#8 v1 DER.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, JwtError> {
        match &self.pair {
            KeyPair::Ec(pair) => pair.to_pkcs8v1().map(|doc| doc.as_ref().to_vec()),
            KeyPair::Rsa(pair) => {
                AsDer::<Pkcs8V1Der<'static>>::as_der(pair).map(|doc| doc.as_ref().to_vec())
            }
        }
        .map_err(|_| JwtError::Crypto("PKCS#8 encoding failed"))
    }

    /// The public key, to publish in the trust domain's JWT bundle.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The JWS signature of `message` (fixed r || s for ECDSA).
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, JwtError> {
        let rng = SystemRandom::new();
        match &self.pair {
            KeyPair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| JwtError::Crypto("ECDSA signing failed")),
            KeyPair::Rsa(pair) => {
                let encoding = rsa_encoding(self.alg).ok_or(JwtError::InvalidSigningKey(
                    "an RSA key signs with RS* or PS* only",
                ))?;
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut sig)
                    .map_err(|_| JwtError::Crypto("RSA signing failed"))?;
                Ok(sig)
            }
        }
    }
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigningKey")
            .field("alg", &self.alg)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn ec_signing_algorithm(curve: EcCurve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn rsa_encoding(alg: JwtAlgorithm) -> Option<&'static dyn RsaEncoding> {
    match alg {
        JwtAlgorithm::RS256 => Some(&signature::RSA_PKCS1_SHA256),
        JwtAlgorithm::RS384 => Some(&signature::RSA_PKCS1_SHA384),
        JwtAlgorithm::RS512 => Some(&signature::RSA_PKCS1_SHA512),
        JwtAlgorithm::PS256 => Some(&signature::RSA_PSS_SHA256),
        JwtAlgorithm::PS384 => Some(&signature::RSA_PSS_SHA384),
        JwtAlgorithm::PS512 => Some(&signature::RSA_PSS_SHA512),
        JwtAlgorithm::ES256 | JwtAlgorithm::ES384 | JwtAlgorithm::ES512 => None,
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// Signs a JWT-SVID and returns it in JWS compact serialization.
///
/// The header is exactly `{"alg":…,"kid":…,"typ":"JWT"}` as SPIRE writes it. The claims
/// are `sub`, `aud` (a string for a single audience, an array otherwise, as go-jose
/// writes it), `exp`, `iat` and the extra claims. Refuses an empty `kid`, an audience
/// with no non-empty value, and extra claims that would override the four above.
pub fn sign(key: &JwtSigningKey, kid: &str, claims: &JwtSvidClaims) -> Result<String, JwtError> {
    if kid.is_empty() {
        return Err(JwtError::EmptyKeyIdToSign);
    }
    let aud: Vec<Value> = claims
        .aud
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| Value::String(a.clone()))
        .collect();
    if aud.is_empty() {
        return Err(JwtError::EmptyAudienceToSign);
    }
    if let Some(name) = RESERVED_CLAIMS
        .iter()
        .find(|name| claims.extra.contains_key(**name))
    {
        return Err(JwtError::ReservedClaim((*name).to_owned()));
    }
    let mut payload = claims.extra.clone();
    payload.insert("sub".to_owned(), Value::String(claims.sub.to_string()));
    let aud = match <[Value; 1]>::try_from(aud) {
        Ok([single]) => single,
        Err(many) => Value::Array(many),
    };
    payload.insert("aud".to_owned(), aud);
    payload.insert("exp".to_owned(), Value::from(claims.exp));
    payload.insert("iat".to_owned(), Value::from(claims.iat));

    let header = Header {
        alg: key.alg.as_str(),
        kid,
        typ: "JWT",
    };
    let header =
        serde_json::to_vec(&header).map_err(|_| JwtError::Crypto("header serialization failed"))?;
    let payload = serde_json::to_vec(&payload)
        .map_err(|_| JwtError::Crypto("claims serialization failed"))?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign_message(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(token)
}

/// A parsed and validated JWT-SVID.
#[derive(Clone, PartialEq)]
pub struct JwtSvid {
    token: String,
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    exp: f64,
    kid: String,
    alg: JwtAlgorithm,
    claims: Map<String, Value>,
}

impl JwtSvid {
    /// Parses and validates a JWT-SVID against the bundle of its subject's trust domain.
    ///
    /// Every value of `audience` must be in the token's `aud` (JWT-10); an empty
    /// `audience`, or an empty value in it, is refused as an invalid argument. The checks
    /// run in this order:
    ///
    /// 1. JWS compact serialization, exactly three base64url parts (JWT-01).
    /// 2. The header is a JSON object; its `alg` is one of the nine JWT-SVID algorithms,
    ///    checked before anything else (JWT-03, JWT-04, JWT-05).
    /// 3. No header parameter other than `alg`, `kid` and `typ` (JWT-02, A-5).
    /// 4. `typ` absent, `JWT` or `JOSE`, exact case (JWT-07, A-9).
    /// 5. `kid` present and non-empty.
    /// 6. The claims are a JSON object with `sub` a SPIFFE ID (JWT-08), `aud` a non-empty
    ///    string or array of strings (JWT-09) and `exp` a number (JWT-12); `nbf` and `iat`,
    ///    when present, numbers.
    /// 7. The subject's trust domain has a bundle (JWT-23) with keys (BUN-11) holding
    ///    `kid`, and that key fits `alg`.
    /// 8. The signature verifies (JWT-15).
    /// 9. `exp`, `nbf` and `iat` hold at `now`, with [`JWT_LEEWAY`] (JWT-13, A-6).
    /// 10. The audience (JWT-10).
    pub fn parse_and_validate<B: JwtBundleSource + ?Sized>(
        token: &str,
        bundles: &B,
        audience: &[&str],
        now: SystemTime,
    ) -> Result<JwtSvid, JwtError> {
        check_expected_audience(audience)?;
        let parsed = parse_unverified(token)?;
        let trust_domain = parsed.spiffe_id.trust_domain();
        let bundle = bundles
            .jwt_bundle_for(&trust_domain)
            .filter(|bundle| *bundle.trust_domain() == trust_domain)
            .ok_or_else(|| JwtError::NoBundle(trust_domain.clone()))?;
        if bundle.is_empty() {
            return Err(JwtError::EmptyBundle(trust_domain));
        }
        let key = bundle
            .find_authority(&parsed.kid)
            .ok_or_else(|| JwtError::KeyNotFound {
                kid: parsed.kid.clone(),
                trust_domain: trust_domain.clone(),
            })?;
        if !parsed.alg.matches_key(key) {
            let key = match (key.ec_curve(), key.rsa_bits()) {
                (Some(curve), _) => format!("EC {curve}"),
                (None, Some(bits)) => format!("RSA {bits} bits"),
                (None, None) => key.kty().to_owned(),
            };
            return Err(JwtError::KeyAlgorithmMismatch {
                kid: parsed.kid,
                alg: parsed.alg.as_str(),
                key,
            });
        }
        if !parsed
            .alg
            .verify(key, parsed.signing_input.as_bytes(), &parsed.signature)
        {
            return Err(JwtError::InvalidSignature);
        }
        parsed.check_times(now)?;
        check_audience(&parsed.audience, audience)?;
        Ok(parsed.into_svid(token))
    }

    /// Parses a JWT-SVID and runs every check of
    /// [`parse_and_validate`](JwtSvid::parse_and_validate) except the bundle lookup and
    /// the signature. The token is NOT authenticated: use only on tokens from a trusted
    /// channel (e.g. the Workload API). An empty `audience` skips the audience check.
    pub fn parse_insecure(
        token: &str,
        audience: &[&str],
        now: SystemTime,
    ) -> Result<JwtSvid, JwtError> {
        if audience.iter().any(|a| a.is_empty()) {
            return Err(JwtError::NoExpectedAudience);
        }
        let parsed = parse_unverified(token)?;
        parsed.check_times(now)?;
        check_audience(&parsed.audience, audience)?;
        Ok(parsed.into_svid(token))
    }

    /// The subject, the SPIFFE ID the token was issued to.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The audience (`aud`), as a list even when the token holds a single string.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The expiry (`exp`), saturated at 9999-12-31T23:59:59Z; a time the platform cannot
    /// represent gives the Unix epoch.
    pub fn expiry(&self) -> SystemTime {
        unix_to_system_time(self.exp)
    }

    /// The expiry (`exp`) in whole seconds since the Unix epoch, rounded down.
    pub fn expiry_unix(&self) -> i64 {
        // `as` saturates; `exp` is finite.
        self.exp.floor() as i64
    }

    /// Every claim of the token, SPIFFE and private ones alike (JWT-14).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The token as received.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The header's key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The header's algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }
}

impl fmt::Debug for JwtSvid {
    /// Leaves the token out: it is a bearer credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("audience", &self.audience)
            .field("exp", &self.exp)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A token whose structure, header and claims have been checked, not its signature.
struct Unverified<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    alg: JwtAlgorithm,
    kid: String,
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    claims: Map<String, Value>,
}

impl Unverified<'_> {
    fn check_times(&self, now: SystemTime) -> Result<(), JwtError> {
        let now = system_time_to_unix(now);
        let leeway = JWT_LEEWAY.as_secs_f64();
        if now > self.exp + leeway {
            return Err(JwtError::Expired);
        }
        if self.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(JwtError::NotYetValid);
        }
        if self.iat.is_some_and(|iat| now + leeway < iat) {
            return Err(JwtError::IssuedInTheFuture);
        }
        Ok(())
    }

    fn into_svid(self, token: &str) -> JwtSvid {
        JwtSvid {
            token: token.to_owned(),
            spiffe_id: self.spiffe_id,
            audience: self.audience,
            exp: self.exp,
            kid: self.kid,
            alg: self.alg,
            claims: self.claims,
        }
    }
}

fn check_expected_audience(audience: &[&str]) -> Result<(), JwtError> {
    if audience.is_empty() || audience.iter().any(|a| a.is_empty()) {
        Err(JwtError::NoExpectedAudience)
    } else {
        Ok(())
    }
}

fn check_audience(aud: &[String], expected: &[&str]) -> Result<(), JwtError> {
    match expected.iter().find(|e| !aud.iter().any(|a| a == **e)) {
        Some(missing) => Err(JwtError::AudienceMismatch {
            audience: aud.to_vec(),
            expected: (*missing).to_owned(),
        }),
        None => Ok(()),
    }
}

fn parse_unverified(token: &str) -> Result<Unverified<'_>, JwtError> {
    // JWT-01: only the compact serialization. Name the JSON serialization explicitly.
    if token.trim_start().starts_with('{') {
        return Err(JwtError::JsonSerialization);
    }
    let parts = token.split('.').count();
    let (Some((signing_input, signature_b64)), 3) = (token.rsplit_once('.'), parts) else {
        return Err(JwtError::WrongPartCount(parts));
    };
    let Some((header_b64, payload_b64)) = signing_input.split_once('.') else {
        return Err(JwtError::WrongPartCount(parts));
    };

    // Header; `alg` is checked before anything else (JWT-05).
    let header = decode_part(header_b64, "header")?;
    let header = parse_object(&header).map_err(JwtError::InvalidHeader)?;
    let alg = match header.get("alg") {
        None => return Err(JwtError::MissingAlgorithm),
        Some(Value::String(alg)) => alg.parse::<JwtAlgorithm>()?,
        Some(other) => return Err(JwtError::UnsupportedAlgorithm(other.to_string())),
    };
    if let Some(name) = header
        .keys()
        .find(|name| !matches!(name.as_str(), "alg" | "kid" | "typ"))
    {
        return Err(JwtError::HeaderParameterNotAllowed(name.clone()));
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if typ == "JWT" || typ == "JOSE" => {}
        Some(Value::String(typ)) => return Err(JwtError::InvalidType(typ.clone())),
        Some(other) => return Err(JwtError::InvalidType(other.to_string())),
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        None | Some(Value::String(_)) => return Err(JwtError::MissingKeyId),
        Some(_) => {
            return Err(JwtError::InvalidHeader(
                "\"kid\" is not a string".to_owned(),
            ));
        }
    };

    // Claims.
    let payload = decode_part(payload_b64, "payload")?;
    let claims = parse_object(&payload).map_err(JwtError::InvalidClaims)?;
    let spiffe_id = match claims.get("sub") {
        None => return Err(JwtError::MissingClaim("sub")),
        Some(Value::String(sub)) => {
            SpiffeId::parse(sub).map_err(|source| JwtError::InvalidSubject {
                sub: sub.clone(),
                source,
            })?
        }
        Some(_) => {
            return Err(JwtError::InvalidClaim {
                claim: "sub",
                reason: "not a string",
            });
        }
    };
    let audience = parse_audience(claims.get("aud"))?;
    let exp = match claims.get("exp") {
        None => return Err(JwtError::MissingClaim("exp")),
        Some(exp) => numeric_date(exp, "exp")?,
    };
    let nbf = claims
        .get("nbf")
        .map(|v| numeric_date(v, "nbf"))
        .transpose()?;
    let iat = claims
        .get("iat")
        .map(|v| numeric_date(v, "iat"))
        .transpose()?;
    let signature = decode_part(signature_b64, "signature")?;

    Ok(Unverified {
        signing_input,
        signature,
        alg,
        kid,
        spiffe_id,
        audience,
        exp,
        nbf,
        iat,
        claims,
    })
}

fn parse_audience(aud: Option<&Value>) -> Result<Vec<String>, JwtError> {
    const REASON: &str = "not a string or an array of strings";
    match aud {
        None => Err(JwtError::MissingClaim("aud")),
        Some(Value::String(aud)) if aud.is_empty() => Err(JwtError::EmptyAudience),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(values)) if values.is_empty() => Err(JwtError::EmptyAudience),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or(JwtError::InvalidClaim {
                    claim: "aud",
                    reason: REASON,
                })
            })
            .collect(),
        Some(_) => Err(JwtError::InvalidClaim {
            claim: "aud",
            reason: REASON,
        }),
    }
}

/// A NumericDate (RFC 7519 §2): any JSON number, fractional or negative included.
fn numeric_date(value: &Value, claim: &'static str) -> Result<f64, JwtError> {
    value
        .as_f64()
        .filter(|secs| secs.is_finite())
        .ok_or(JwtError::InvalidClaim {
            claim,
            reason: "not a number",
        })
}

fn decode_part(part: &str, name: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::InvalidBase64(name))
}

/// Parses a JSON object, refusing duplicate member names (RFC 7515 §5.2 allows either
/// rejecting them or keeping the last; rejecting leaves no room for confusion).
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    serde_json::from_slice::<StrictObject>(bytes)
        .map(|object| object.0)
        .map_err(|e| e.to_string())
}

struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StrictObjectVisitor)
    }
}

struct StrictObjectVisitor;

impl<'de> Visitor<'de> for StrictObjectVisitor {
    type Value = StrictObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate member {key:?}")));
            }
            let value: Value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(StrictObject(map))
    }
}

/// Seconds since the Unix epoch, negative before it.
fn system_time_to_unix(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

fn unix_to_system_time(secs: f64) -> SystemTime {
    // 9999-12-31T23:59:59Z, representable on every platform.
    const MAX_SECS: f64 = 253_402_300_799.0;
    if secs >= 0.0 {
        Duration::try_from_secs_f64(secs.min(MAX_SECS))
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .unwrap_or(UNIX_EPOCH)
    } else {
        Duration::try_from_secs_f64(-secs)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_sub(d))
            .unwrap_or(UNIX_EPOCH)
    }
}

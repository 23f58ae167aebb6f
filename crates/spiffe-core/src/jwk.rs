//! JSON Web Keys (RFC 7517, RFC 7518 §6) and the validated public keys they carry.
//!
//! [`Jwk`] is the loose, serde-level view of one JWK: every member is kept, unknown ones
//! included, so a bundle survives a parse/serialize round trip (BUN-02, BUN-13).
//! [`PublicKey`] is a validated verification key: an EC P-256, P-384 or P-521 point or an
//! RSA key of at least 2048 bits. It converts to and from JWKs and SubjectPublicKeyInfo
//! DER, the form SPIRE stores JWT authorities in (`spire.api.types.JWTKey.public_key`).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    self, EcdsaVerificationAlgorithm, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as X509PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Smallest RSA modulus accepted, in bits (SPIRE rejects RSA keys under 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (the verifier's upper bound).
pub const MAX_RSA_BITS: usize = 8192;

/// One JSON Web Key (RFC 7517 §4) as it appears in a JWK Set.
///
/// Only the members SPIFFE bundles use are typed; everything else is kept in
/// [`extra`](Jwk::extra), so unknown members are tolerated and round-trip (BUN-02, BUN-13).
/// Absent members are left out when serializing. Decoding this struct does not validate
/// the key: use [`PublicKey::from_jwk`] for that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `EC` or `RSA` for the keys understood here (RFC 7517 §4.1, BUN-14).
    pub kty: String,
    /// Public key use: `jwt-svid` or `x509-svid` in SPIFFE bundles (BUN-16); absent in the
    /// standard JWKS the Workload API returns.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Key ID; required for `jwt-svid` keys (JWT-19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// EC curve name: `P-256`, `P-384` or `P-521`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, base64url without padding, full coordinate length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url without padding, full coordinate length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url without padding, big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url without padding, big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// X.509 certificate chain, each entry standard (not URL-safe) base64 of DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// Every other member, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a JWK or SubjectPublicKeyInfo is not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwkError {
    /// The key type is not one this implementation understands (not `EC` or `RSA`).
    /// Bundle readers ignore such entries (BUN-09, BUN-15).
    #[error("unsupported key type {0:?}")]
    UnsupportedKeyType(String),
    /// An EC key on a curve other than P-256, P-384 or P-521. Bundle readers ignore
    /// such entries like unknown key types (BUN-09).
    #[error("unsupported elliptic curve {0:?}")]
    UnsupportedCurve(String),
    /// A member the key type needs is missing.
    #[error("JWK is missing the {0:?} member")]
    MissingParameter(&'static str),
    /// A member is not valid base64url without padding.
    #[error("JWK member {0:?} is not valid base64url without padding")]
    InvalidBase64(&'static str),
    /// An EC coordinate does not have the curve's full coordinate length (RFC 7518 §6.2.1).
    #[error("EC coordinate {param:?} is {actual} bytes long; {expected} expected")]
    InvalidCoordinateLength {
        /// `x` or `y`.
        param: &'static str,
        /// The curve's coordinate length.
        expected: usize,
        /// The decoded length.
        actual: usize,
    },
    /// The EC point is malformed or not on the curve.
    #[error("invalid EC public key: the point is malformed or not on the curve")]
    InvalidEcPoint,
    /// The RSA modulus or exponent is malformed.
    #[error("invalid RSA public key: {0}")]
    InvalidRsaKey(&'static str),
    /// The RSA modulus is outside 2048..=8192 bits.
    #[error("RSA modulus is {0} bits; 2048 to 8192 bits are accepted")]
    RsaKeySize(usize),
    /// The JWK carries private key material, which never belongs in a bundle.
    #[error("JWK contains the private key member \"d\"")]
    PrivateKeyMaterial,
    /// The SubjectPublicKeyInfo DER is malformed.
    #[error("invalid SubjectPublicKeyInfo: {0}")]
    InvalidSpki(&'static str),
}

impl JwkError {
    /// Whether the error means "a key this implementation does not know" (unknown `kty`
    /// or curve) rather than "a broken key". Bundle readers ignore the former (BUN-15).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            JwkError::UnsupportedKeyType(_) | JwkError::UnsupportedCurve(_)
        )
    }
}

/// A NIST elliptic curve usable for JWT-SVIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EcCurve {
    /// P-256 (secp256r1), used by ES256.
    P256,
    /// P-384 (secp384r1), used by ES384.
    P384,
    /// P-521 (secp521r1), used by ES512.
    P521,
}

impl EcCurve {
    /// The JWK `crv` name: `P-256`, `P-384` or `P-521`.
    pub fn jwk_name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// Parses a JWK `crv` name, exact case.
    pub fn from_jwk_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(EcCurve::P256),
            "P-384" => Some(EcCurve::P384),
            "P-521" => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// Length of one coordinate in bytes (32, 48 or 66).
    pub fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The fixed-format (r || s) ECDSA verification algorithm JWS uses with the curve.
    pub(crate) fn verification_algorithm(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwk_name())
    }
}

/// A validated public verification key: EC P-256/P-384/P-521 or RSA (2048..=8192 bits).
///
/// Equality compares the key material only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    inner: KeyMaterial,
    /// SubjectPublicKeyInfo DER, computed once when the key is validated.
    spki: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum KeyMaterial {
    /// Uncompressed SEC1 point, `04 || x || y`.
    Ec { curve: EcCurve, point: Vec<u8> },
    /// Big-endian modulus and exponent without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8>, bits: usize },
}

impl PublicKey {
    /// Builds an EC key from an uncompressed SEC1 point (`04 || x || y`), checking the
    /// length and that the point is on the curve.
    pub fn from_ec_point(curve: EcCurve, point: &[u8]) -> Result<Self, JwkError> {
        if point.len() != 1 + 2 * curve.coordinate_len() || point.first() != Some(&0x04) {
            return Err(JwkError::InvalidEcPoint);
        }
        let parsed = ParsedPublicKey::new(curve.verification_algorithm(), point)
            .map_err(|_| JwkError::InvalidEcPoint)?;
        let spki = parsed
            .as_der()
            .map_err(|_| JwkError::InvalidEcPoint)?
            .as_ref()
            .to_vec();
        Ok(PublicKey {
            inner: KeyMaterial::Ec {
                curve,
                point: point.to_vec(),
            },
            spki,
        })
    }

    /// Builds an RSA key from its big-endian modulus and public exponent. Leading zero
    /// bytes are tolerated and dropped; the modulus must be 2048 to 8192 bits long and the
    /// exponent odd and greater than 1.
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Result<Self, JwkError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let Some(&first) = n.first() else {
            return Err(JwkError::InvalidRsaKey("the modulus is zero"));
        };
        let bits = (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(JwkError::RsaKeySize(bits));
        }
        match e.last() {
            None => return Err(JwkError::InvalidRsaKey("the exponent is zero")),
            Some(last) if last & 1 == 0 => {
                return Err(JwkError::InvalidRsaKey("the exponent is even"));
            }
            Some(_) if e == [1] => return Err(JwkError::InvalidRsaKey("the exponent is 1")),
            Some(_) => {}
        }
        if e.len() > 8 {
            return Err(JwkError::InvalidRsaKey("the exponent is too large"));
        }
        if n.last().is_some_and(|last| last & 1 == 0) {
            return Err(JwkError::InvalidRsaKey("the modulus is even"));
        }
        let components = RsaPublicKeyComponents { n, e };
        let spki = components
            .as_der()
            .map_err(|_| JwkError::InvalidRsaKey("the components do not form a key"))?
            .as_ref()
            .to_vec();
        Ok(PublicKey {
            inner: KeyMaterial::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
                bits,
            },
            spki,
        })
    }

    /// Parses a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), as SPIRE stores JWT
    /// authorities. Accepts id-ecPublicKey with a named P-256/P-384/P-521 curve and an
    /// uncompressed point, and rsaEncryption. Other algorithms give
    /// [`JwkError::UnsupportedKeyType`] naming the algorithm OID.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, JwkError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|_| JwkError::InvalidSpki("not a DER SubjectPublicKeyInfo"))?;
        if !rest.is_empty() {
            return Err(JwkError::InvalidSpki("trailing data after the structure"));
        }
        if spki.subject_public_key.unused_bits != 0 {
            return Err(JwkError::InvalidSpki("the key bit string has unused bits"));
        }
        let oid = &spki.algorithm.algorithm;
        if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or(JwkError::InvalidSpki("EC key without a named curve"))?;
            let curve = if curve_oid == OID_EC_P256 {
                EcCurve::P256
            } else if curve_oid == OID_NIST_EC_P384 {
                EcCurve::P384
            } else if curve_oid == OID_NIST_EC_P521 {
                EcCurve::P521
            } else {
                return Err(JwkError::UnsupportedCurve(curve_oid.to_id_string()));
            };
            PublicKey::from_ec_point(curve, &spki.subject_public_key.data)
        } else if *oid == OID_PKCS1_RSAENCRYPTION {
            match spki.parsed() {
                Ok(X509PublicKey::RSA(rsa)) => {
                    PublicKey::from_rsa_components(rsa.modulus, rsa.exponent)
                }
                _ => Err(JwkError::InvalidSpki("malformed RSA public key")),
            }
        } else {
            Err(JwkError::UnsupportedKeyType(oid.to_id_string()))
        }
    }

    /// The DER SubjectPublicKeyInfo of the key.
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    /// Builds a key from a JWK (RFC 7518 §6.2, §6.3). `EC` needs `crv`, `x` and `y` with
    /// the curve's full coordinate length; `RSA` needs `n` and `e`. Members that do not
    /// describe the key (`use`, `kid`, `x5c`, unknown members) are not looked at, except
    /// that a private key (`d`) is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JwkError> {
        match jwk.kty.as_str() {
            "EC" => {
                let crv = jwk
                    .crv
                    .as_deref()
                    .ok_or(JwkError::MissingParameter("crv"))?;
                let curve = EcCurve::from_jwk_name(crv)
                    .ok_or_else(|| JwkError::UnsupportedCurve(crv.to_owned()))?;
                refuse_private(jwk)?;
                let x = decode_param(jwk.x.as_deref(), "x")?;
                let y = decode_param(jwk.y.as_deref(), "y")?;
                for (param, value) in [("x", &x), ("y", &y)] {
                    if value.len() != curve.coordinate_len() {
                        return Err(JwkError::InvalidCoordinateLength {
                            param,
                            expected: curve.coordinate_len(),
                            actual: value.len(),
                        });
                    }
                }
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                PublicKey::from_ec_point(curve, &point)
            }
            "RSA" => {
                refuse_private(jwk)?;
                let n = decode_param(jwk.n.as_deref(), "n")?;
                let e = decode_param(jwk.e.as_deref(), "e")?;
                PublicKey::from_rsa_components(&n, &e)
            }
            other => Err(JwkError::UnsupportedKeyType(other.to_owned())),
        }
    }

    /// The key as a JWK with the given `kid` (if any) and `use`.
    pub fn to_jwk(&self, kid: Option<&str>, use_: &str) -> Jwk {
        let mut jwk = Jwk {
            use_: Some(use_.to_owned()),
            kid: kid.map(str::to_owned),
            ..Jwk::default()
        };
        match &self.inner {
            KeyMaterial::Ec { curve, point } => {
                // The point was validated as `04 || x || y` with equal-length halves.
                let xy = point.get(1..).unwrap_or_default();
                let (x, y) = xy.split_at(xy.len() / 2);
                jwk.kty = "EC".to_owned();
                jwk.crv = Some(curve.jwk_name().to_owned());
                jwk.x = Some(URL_SAFE_NO_PAD.encode(x));
                jwk.y = Some(URL_SAFE_NO_PAD.encode(y));
            }
            KeyMaterial::Rsa { n, e, .. } => {
                jwk.kty = "RSA".to_owned();
                jwk.n = Some(URL_SAFE_NO_PAD.encode(n));
                jwk.e = Some(URL_SAFE_NO_PAD.encode(e));
            }
        }
        jwk
    }

    /// The JWK key type: `EC` or `RSA`.
    pub fn kty(&self) -> &'static str {
        match self.inner {
            KeyMaterial::Ec { .. } => "EC",
            KeyMaterial::Rsa { .. } => "RSA",
        }
    }

    /// The curve of an EC key, `None` for RSA.
    pub fn ec_curve(&self) -> Option<EcCurve> {
        match self.inner {
            KeyMaterial::Ec { curve, .. } => Some(curve),
            KeyMaterial::Rsa { .. } => None,
        }
    }

    /// The modulus length of an RSA key in bits, `None` for EC.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self.inner {
            KeyMaterial::Ec { .. } => None,
            KeyMaterial::Rsa { bits, .. } => Some(bits),
        }
    }

    /// Verifies an ECDSA fixed-format (r || s) signature; `false` for an RSA key or a
    /// curve other than `curve`.
    pub(crate) fn verify_ecdsa(&self, curve: EcCurve, message: &[u8], sig: &[u8]) -> bool {
        match &self.inner {
            KeyMaterial::Ec { curve: c, point } if *c == curve => {
                UnparsedPublicKey::new(curve.verification_algorithm(), point)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }

    /// Verifies an RSA signature with the given parameters; `false` for an EC key.
    pub(crate) fn verify_rsa(&self, params: &RsaParameters, message: &[u8], sig: &[u8]) -> bool {
        match &self.inner {
            KeyMaterial::Rsa { n, e, .. } => RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok(),
            KeyMaterial::Ec { .. } => false,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            KeyMaterial::Ec { curve, point } => f
                .debug_struct("PublicKey")
                .field("kty", &"EC")
                .field("crv", &curve.jwk_name())
                .field("point", &URL_SAFE_NO_PAD.encode(point))
                .finish(),
            KeyMaterial::Rsa { n, e, bits } => f
                .debug_struct("PublicKey")
                .field("kty", &"RSA")
                .field("bits", bits)
                .field("n", &URL_SAFE_NO_PAD.encode(n))
                .field("e", &URL_SAFE_NO_PAD.encode(e))
                .finish(),
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn refuse_private(jwk: &Jwk) -> Result<(), JwkError> {
    if jwk.extra.contains_key("d") {
        Err(JwkError::PrivateKeyMaterial)
    } else {
        Ok(())
    }
}

fn decode_param(value: Option<&str>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    let value = value.ok_or(JwkError::MissingParameter(name))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| JwkError::InvalidBase64(name))
}

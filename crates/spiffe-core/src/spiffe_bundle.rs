//! SPIFFE bundles: the JWK Set document of `SPIFFE_Trust_Domain_and_Bundle.md` §4 that
//! carries a trust domain's X.509 and JWT authorities, as served by bundle endpoints and
//! printed by `spire-server bundle show -format spiffe`.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::jwk::{Jwk, JwkError, PublicKey};
use crate::jwt::JwtBundle;
use crate::trust_domain::TrustDomain;
use crate::x509::{X509Bundle, X509Error};

/// The `use` value of X.509 CA entries (X5-31).
pub const USE_X509_SVID: &str = "x509-svid";
/// The `use` value of JWT signing key entries (JWT-18).
pub const USE_JWT_SVID: &str = "jwt-svid";

/// Why a SPIFFE bundle document could not be parsed or produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// The input is not valid JSON.
    #[error("bundle is not valid JSON: {0}")]
    Json(String),
    /// The document is not a JSON object.
    #[error("bundle must be a JSON object (a JWK Set)")]
    NotAnObject,
    /// The `keys` member is missing (BUN-08).
    #[error("bundle has no \"keys\" member")]
    MissingKeys,
    /// The `keys` member is not an array (BUN-08).
    #[error("bundle \"keys\" member must be an array")]
    KeysNotArray,
    /// An element of `keys` is not a JSON object.
    #[error("bundle key #{index} is not a JSON object")]
    KeyNotObject {
        /// Position in `keys`.
        index: usize,
    },
    /// A member of a key has the wrong JSON type.
    #[error("bundle key #{index} is malformed: {reason}")]
    MalformedKey {
        /// Position in `keys`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// `spiffe_sequence` is not a non-negative integer (BUN-04, BUN-05).
    #[error("\"spiffe_sequence\" must be a non-negative integer of at most 64 bits")]
    InvalidSequence,
    /// `spiffe_refresh_hint` is not a non-negative integer number of seconds (BUN-07).
    #[error("\"spiffe_refresh_hint\" must be a non-negative integer number of seconds")]
    InvalidRefreshHint,
    /// A `jwt-svid` entry has no `kid` (JWT-19).
    #[error("bundle key #{index} (jwt-svid) is missing \"kid\"")]
    MissingKeyId {
        /// Position in `keys`.
        index: usize,
    },
    /// Two `jwt-svid` entries share a `kid`.
    #[error("duplicate JWT authority key ID {0:?}")]
    DuplicateKeyId(String),
    /// A `jwt-svid` entry's key material is invalid.
    #[error("bundle key #{index} (jwt-svid) is invalid: {source}")]
    InvalidJwtKey {
        /// Position in `keys`.
        index: usize,
        /// The key error.
        source: JwkError,
    },
    /// An `x509-svid` entry's first `x5c` value is not a base64 DER certificate.
    #[error("bundle key #{index} (x509-svid) has an invalid x5c certificate: {reason}")]
    InvalidX5c {
        /// Position in `keys`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An X.509 authority's public key cannot be written as a JWK (not EC or RSA).
    #[error("X.509 authority cannot be written as a JWK: {0}")]
    UnsupportedAuthorityKey(JwkError),
    /// A bundle map names the same trust domain twice (MAP-03).
    #[error("bundle map lists trust domain {0:?} more than once")]
    DuplicateTrustDomain(String),
    /// A bundle map lacks its `trust_domains` object (MAP-01).
    #[error("bundle map must have a \"trust_domains\" object")]
    MissingTrustDomains,
    /// A bundle map key is not a valid trust domain.
    #[error("bundle map key {key:?} is not a trust domain: {reason}")]
    InvalidTrustDomain {
        /// The key as written.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A bundle inside a bundle map is invalid.
    #[error("bundle of trust domain {trust_domain:?}: {source}")]
    InMap {
        /// The trust domain the bundle was listed under.
        trust_domain: String,
        /// The error in that bundle.
        source: Box<BundleError>,
    },
}

/// A JWK that a parser skipped, and why; the spec says to ignore such entries rather than
/// reject the bundle (BUN-09, BUN-15, BUN-17, X5-34). Callers log these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Position in `keys`.
    pub index: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// A trust domain's SPIFFE bundle: X.509 authorities, JWT authorities, and the optional
/// `spiffe_refresh_hint` and `spiffe_sequence`.
///
/// The bundle document itself does not name its trust domain (BUN-01); it is supplied
/// on parse and kept beside the keys (TD-02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeBundle {
    x509: X509Bundle,
    jwt: JwtBundle,
    refresh_hint: Option<Duration>,
    sequence_number: Option<u64>,
}

impl SpiffeBundle {
    /// An empty bundle for a trust domain.
    pub fn new(trust_domain: TrustDomain) -> Self {
        SpiffeBundle {
            x509: X509Bundle::new(trust_domain.clone()),
            jwt: JwtBundle::new(trust_domain),
            refresh_hint: None,
            sequence_number: None,
        }
    }

    /// A bundle from its X.509 and JWT parts, which must belong to the same trust domain.
    pub fn from_parts(x509: X509Bundle, jwt: JwtBundle) -> Option<Self> {
        (x509.trust_domain() == jwt.trust_domain()).then_some(SpiffeBundle {
            x509,
            jwt,
            refresh_hint: None,
            sequence_number: None,
        })
    }

    /// Parses a SPIFFE bundle document, ignoring the entries the spec says to ignore.
    pub fn parse(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        Self::parse_with_ignored(trust_domain, json).map(|(bundle, _)| bundle)
    }

    /// Parses a SPIFFE bundle document and also returns the entries that were skipped,
    /// with the reason for each, so that callers can log them.
    pub fn parse_with_ignored(
        trust_domain: TrustDomain,
        json: &[u8],
    ) -> Result<(Self, Vec<IgnoredKey>), BundleError> {
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| BundleError::Json(e.to_string()))?;
        Self::from_document(trust_domain, &doc)
    }

    fn from_document(
        trust_domain: TrustDomain,
        doc: &Value,
    ) -> Result<(Self, Vec<IgnoredKey>), BundleError> {
        let doc = doc.as_object().ok_or(BundleError::NotAnObject)?;
        let mut bundle = SpiffeBundle::new(trust_domain);
        // BUN-04, BUN-05: an integer of at least 64 bits.
        if let Some(v) = doc.get("spiffe_sequence") {
            bundle.sequence_number = Some(v.as_u64().ok_or(BundleError::InvalidSequence)?);
        }
        // BUN-07: an integer number of seconds.
        if let Some(v) = doc.get("spiffe_refresh_hint") {
            let secs = v.as_u64().ok_or(BundleError::InvalidRefreshHint)?;
            bundle.refresh_hint = Some(Duration::from_secs(secs));
        }
        // BUN-08: `keys` is present and an array; BUN-10: it may be empty.
        let keys = doc
            .get("keys")
            .ok_or(BundleError::MissingKeys)?
            .as_array()
            .ok_or(BundleError::KeysNotArray)?;
        let mut ignored = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            if !key.is_object() {
                return Err(BundleError::KeyNotObject { index });
            }
            let jwk: Jwk =
                serde_json::from_value(key.clone()).map_err(|e| BundleError::MalformedKey {
                    index,
                    reason: e.to_string(),
                })?;
            if let Some(reason) = bundle.add_jwk(index, &jwk)? {
                ignored.push(IgnoredKey { index, reason });
            }
        }
        Ok((bundle, ignored))
    }

    /// Adds one JWK; returns `Some(reason)` when the spec says to ignore it.
    fn add_jwk(&mut self, index: usize, jwk: &Jwk) -> Result<Option<String>, BundleError> {
        // BUN-16, BUN-17: a missing or unknown `use` means the entry is ignored.
        let Some(use_) = jwk.use_.as_deref() else {
            return Ok(Some("no \"use\" member".into()));
        };
        match use_ {
            USE_X509_SVID => self.add_x509_jwk(index, jwk),
            USE_JWT_SVID => self.add_jwt_jwk(index, jwk),
            other => Ok(Some(format!("unknown use {other:?}"))),
        }
    }

    fn add_x509_jwk(&mut self, index: usize, jwk: &Jwk) -> Result<Option<String>, BundleError> {
        // BUN-15: an unknown key type makes the entry ignored, whatever else it carries.
        if let Some(reason) = unknown_kty(jwk) {
            return Ok(Some(reason));
        }
        // X5-34: a missing or empty x5c is ignored; X5-35: only the first value counts.
        let Some(first) = jwk.x5c.as_ref().and_then(|x5c| x5c.first()) else {
            return Ok(Some("x509-svid entry without an x5c certificate".into()));
        };
        // X5-33: standard base64, not base64url.
        let der = STANDARD
            .decode(first)
            .map_err(|e| BundleError::InvalidX5c {
                index,
                reason: format!("not standard base64: {e}"),
            })?;
        self.x509
            .add_authority(CertificateDer::from(der))
            .map_err(|e: X509Error| BundleError::InvalidX5c {
                index,
                reason: e.to_string(),
            })?;
        Ok(None)
    }

    fn add_jwt_jwk(&mut self, index: usize, jwk: &Jwk) -> Result<Option<String>, BundleError> {
        if let Some(reason) = unknown_kty(jwk) {
            return Ok(Some(reason));
        }
        // JWT-19: every jwt-svid key has a key ID.
        let kid = match jwk.kid.as_deref() {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(BundleError::MissingKeyId { index }),
        };
        let key = match PublicKey::from_jwk(jwk) {
            Ok(key) => key,
            // An unknown curve is an unknown key type in all but name (BUN-09).
            Err(e) if e.is_unsupported() => return Ok(Some(e.to_string())),
            Err(source) => return Err(BundleError::InvalidJwtKey { index, source }),
        };
        if self.jwt.find_authority(kid).is_some() {
            return Err(BundleError::DuplicateKeyId(kid.to_owned()));
        }
        self.jwt
            .add_authority(kid, key)
            .map_err(|_| BundleError::MissingKeyId { index })?;
        Ok(None)
    }

    /// Serializes the bundle as a SPIFFE bundle document: one `x509-svid` JWK per CA
    /// certificate with a single-element `x5c` and no `kid` (X5-31..X5-33), one
    /// `jwt-svid` JWK per JWT authority with its `kid` (JWT-18, JWT-19), and the refresh
    /// hint and sequence number when set.
    pub fn to_json(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec(&self.document(true)?).map_err(|e| BundleError::Json(e.to_string()))
    }

    /// The same document, indented for people to read (`bundle show -format spiffe`).
    pub fn to_json_pretty(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec_pretty(&self.document(true)?)
            .map_err(|e| BundleError::Json(e.to_string()))
    }

    fn document(&self, with_refresh_hint: bool) -> Result<Document, BundleError> {
        let mut keys = Vec::new();
        for cert in self.x509.authorities() {
            // X509Bundle only holds certificates that parsed when they were added.
            let spki = x509_parser::parse_x509_certificate(cert.as_ref())
                .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
                .map_err(|_| {
                    BundleError::UnsupportedAuthorityKey(JwkError::InvalidSpki(
                        "malformed certificate",
                    ))
                })?;
            let key =
                PublicKey::from_spki_der(&spki).map_err(BundleError::UnsupportedAuthorityKey)?;
            let mut jwk = key.to_jwk(None, USE_X509_SVID);
            jwk.x5c = Some(vec![STANDARD.encode(cert.as_ref())]);
            keys.push(jwk);
        }
        for (kid, key) in self.jwt.authorities() {
            keys.push(key.to_jwk(Some(kid), USE_JWT_SVID));
        }
        Ok(Document {
            keys,
            spiffe_refresh_hint: self
                .refresh_hint
                .filter(|_| with_refresh_hint)
                .map(|d| d.as_secs()),
            spiffe_sequence: self.sequence_number,
        })
    }

    /// The trust domain the bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        self.x509.trust_domain()
    }

    /// The X.509 authorities, as an [`X509Bundle`].
    pub fn x509_bundle(&self) -> &X509Bundle {
        &self.x509
    }

    /// Mutable access to the X.509 authorities.
    pub fn x509_bundle_mut(&mut self) -> &mut X509Bundle {
        &mut self.x509
    }

    /// The JWT authorities, as a [`JwtBundle`].
    pub fn jwt_bundle(&self) -> &JwtBundle {
        &self.jwt
    }

    /// Mutable access to the JWT authorities.
    pub fn jwt_bundle_mut(&mut self) -> &mut JwtBundle {
        &mut self.jwt
    }

    /// The `spiffe_refresh_hint`, if set.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint
    }

    /// Sets or clears the refresh hint (whole seconds are kept).
    pub fn set_refresh_hint(&mut self, hint: Option<Duration>) {
        self.refresh_hint = hint.map(|d| Duration::from_secs(d.as_secs()));
    }

    /// The `spiffe_sequence`, if set.
    pub fn sequence_number(&self) -> Option<u64> {
        self.sequence_number
    }

    /// Sets or clears the sequence number. Publishers increase it on every change (BUN-04).
    pub fn set_sequence_number(&mut self, sequence: Option<u64>) {
        self.sequence_number = sequence;
    }

    /// Whether the bundle has no usable authority at all; every SVID of its trust domain
    /// is then untrusted (BUN-11).
    pub fn is_empty(&self) -> bool {
        self.x509.is_empty() && self.jwt.is_empty()
    }
}

/// The reason to ignore a JWK whose `kty` is not one we know (BUN-15). A JWK without
/// `kty` at all does not deserialize and is refused (BUN-14).
fn unknown_kty(jwk: &Jwk) -> Option<String> {
    match jwk.kty.as_str() {
        "EC" | "RSA" => None,
        other => Some(format!("unsupported key type {other:?}")),
    }
}

/// The serialized form of a bundle document.
#[derive(Serialize)]
struct Document {
    keys: Vec<Jwk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_refresh_hint: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_sequence: Option<u64>,
}

/// Parses a SPIFFE bundle map (`{"trust_domains": {"<name>": <bundle>, ...}}`, §5.1.1),
/// rejecting duplicate trust domains (MAP-03). Keys may be trust domain names or their
/// `spiffe://` IDs. Per-bundle refresh hints are kept but carry no meaning for how often
/// the map itself is refreshed (MAP-05).
pub fn parse_bundle_map(json: &[u8]) -> Result<Vec<SpiffeBundle>, BundleError> {
    let doc: DuplicateCheckedMap =
        serde_json::from_slice(json).map_err(|e| BundleError::Json(e.to_string()))?;
    let trust_domains = match doc.0.into_iter().find(|(k, _)| k == "trust_domains") {
        Some((_, Value::Object(map))) => map,
        _ => return Err(BundleError::MissingTrustDomains),
    };
    let mut seen = BTreeSet::new();
    let mut bundles = Vec::new();
    for (key, value) in trust_domains {
        let td = TrustDomain::parse(&key).map_err(|e| BundleError::InvalidTrustDomain {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        if !seen.insert(td.clone()) {
            return Err(BundleError::DuplicateTrustDomain(key));
        }
        let (bundle, _) =
            SpiffeBundle::from_document(td, &value).map_err(|e| BundleError::InMap {
                trust_domain: key.clone(),
                source: Box::new(e),
            })?;
        bundles.push(bundle);
    }
    Ok(bundles)
}

/// Serializes bundles as a SPIFFE bundle map, each under its trust domain name, with the
/// per-bundle refresh hints left out (MAP-02, MAP-04).
pub fn bundle_map_to_json<'a>(
    bundles: impl IntoIterator<Item = &'a SpiffeBundle>,
) -> Result<Vec<u8>, BundleError> {
    let mut trust_domains = Map::new();
    for bundle in bundles {
        let name = bundle.trust_domain().name().to_owned();
        if trust_domains.contains_key(&name) {
            return Err(BundleError::DuplicateTrustDomain(name));
        }
        let doc = serde_json::to_value(bundle.document(false)?)
            .map_err(|e| BundleError::Json(e.to_string()))?;
        trust_domains.insert(name, doc);
    }
    let mut top = Map::new();
    top.insert("trust_domains".into(), Value::Object(trust_domains));
    serde_json::to_vec(&Value::Object(top)).map_err(|e| BundleError::Json(e.to_string()))
}

/// A JSON object read with a check that no key appears twice at this level or in the
/// `trust_domains` object below it (MAP-03): serde_json's own maps keep the last value.
struct DuplicateCheckedMap(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for DuplicateCheckedMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DuplicateCheckedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some(key) = access.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate member {key:?}"
                        )));
                    }
                    let value = if key == "trust_domains" {
                        let inner: DuplicateCheckedMap = access.next_value()?;
                        Value::Object(inner.0.into_iter().collect())
                    } else {
                        access.next_value()?
                    };
                    entries.push((key, value));
                }
                Ok(DuplicateCheckedMap(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

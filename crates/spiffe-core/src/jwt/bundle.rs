//! JWT bundles: the JWT authorities (`kid` → public key) of one trust domain.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use thiserror::Error;

use crate::jwk::{Jwk, JwkError, PublicKey};
use crate::trust_domain::TrustDomain;

/// The JWK `use` value of JWT-SVID signing keys (JWT-18, BUN-16).
pub const JWT_SVID_USE: &str = "jwt-svid";

/// Why a JWKS document could not be read as a JWT bundle, or an authority not added.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwtBundleError {
    /// The document is not JSON.
    #[error("JWKS is not valid JSON: {0}")]
    InvalidJson(String),
    /// The document is not a JSON object.
    #[error("JWKS is not a JSON object")]
    NotAnObject,
    /// The `keys` member is missing (BUN-08).
    #[error("JWKS has no \"keys\" member")]
    MissingKeys,
    /// The `keys` member is not an array (BUN-08).
    #[error("JWKS member \"keys\" is not an array")]
    KeysNotArray,
    /// An entry of `keys` is not a JWK object with a string `kty` (BUN-14).
    #[error("JWKS key {index} is not a valid JWK: {reason}")]
    InvalidEntry {
        /// Position in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A JWT authority has no `kid`, or an empty one (JWT-19).
    #[error("JWKS key {index} has no \"kid\"; every JWT authority needs one")]
    MissingKid {
        /// Position in `keys`.
        index: usize,
    },
    /// A JWT authority's key material is invalid.
    #[error("JWKS key {index} ({kid:?}) is invalid: {source}")]
    InvalidKey {
        /// Position in `keys`.
        index: usize,
        /// Its `kid`.
        kid: String,
        /// Why the key is invalid.
        source: JwkError,
    },
    /// Two different keys share one `kid`.
    #[error("JWKS has two different keys with kid {0:?}")]
    DuplicateKid(String),
    /// An authority was added with an empty key ID.
    #[error("a JWT authority needs a non-empty key ID")]
    EmptyKid,
}

/// The JWT authorities of one trust domain, indexed by key ID.
///
/// An empty bundle means the trust domain has no valid JWT signing key: every JWT-SVID
/// from it is rejected (BUN-11, JWT-20).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtBundle {
    trust_domain: TrustDomain,
    authorities: BTreeMap<String, PublicKey>,
}

impl JwtBundle {
    /// An empty bundle for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        JwtBundle {
            trust_domain,
            authorities: BTreeMap::new(),
        }
    }

    /// The trust domain the bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Adds or replaces the authority with key ID `kid`. Returns the key it replaced.
    pub fn add_authority(
        &mut self,
        kid: impl Into<String>,
        key: PublicKey,
    ) -> Result<Option<PublicKey>, JwtBundleError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(JwtBundleError::EmptyKid);
        }
        Ok(self.authorities.insert(kid, key))
    }

    /// The authority with key ID `kid`.
    pub fn find_authority(&self, kid: &str) -> Option<&PublicKey> {
        self.authorities.get(kid)
    }

    /// Removes the authority with key ID `kid` and returns it.
    pub fn remove_authority(&mut self, kid: &str) -> Option<PublicKey> {
        self.authorities.remove(kid)
    }

    /// The authorities, ordered by key ID.
    pub fn authorities(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.authorities
            .iter()
            .map(|(kid, key)| (kid.as_str(), key))
    }

    /// The number of authorities.
    pub fn len(&self) -> usize {
        self.authorities.len()
    }

    /// Whether the bundle has no authority.
    pub fn is_empty(&self) -> bool {
        self.authorities.is_empty()
    }

    /// Reads a JWKS document as the Workload API's `FetchJWTBundles` sends it.
    ///
    /// - The document must be an object with a `keys` array (BUN-08); `[]` gives an empty
    ///   bundle (BUN-10). Other top-level members are ignored (BUN-02).
    /// - Each entry must be an object with a string `kty` (BUN-14).
    /// - Entries whose `use` is present and not exactly `jwt-svid` are ignored (BUN-09,
    ///   BUN-16, BUN-17, JWT-20). An absent `use` is taken: the standard JWKS of the
    ///   Workload API carries none.
    /// - Entries whose key type (or EC curve) is not supported are ignored (BUN-15).
    /// - Every remaining entry must have a non-empty `kid` (JWT-19) and a valid key.
    /// - Two entries may share a `kid` only if they hold the same key.
    pub fn parse_jwks(trust_domain: TrustDomain, jwks: &[u8]) -> Result<Self, JwtBundleError> {
        let doc: Value =
            serde_json::from_slice(jwks).map_err(|e| JwtBundleError::InvalidJson(e.to_string()))?;
        let doc = doc.as_object().ok_or(JwtBundleError::NotAnObject)?;
        let keys = doc
            .get("keys")
            .ok_or(JwtBundleError::MissingKeys)?
            .as_array()
            .ok_or(JwtBundleError::KeysNotArray)?;
        let mut bundle = JwtBundle::new(trust_domain);
        for (index, entry) in keys.iter().enumerate() {
            let Some(object) = entry.as_object() else {
                return Err(JwtBundleError::InvalidEntry {
                    index,
                    reason: "not a JSON object".to_owned(),
                });
            };
            // Another `use` (or a malformed one) marks a key for something else: ignore the
            // whole entry before looking at anything in it (BUN-17, JWT-20).
            if let Some(use_) = object.get("use")
                && use_.as_str() != Some(JWT_SVID_USE)
            {
                continue;
            }
            let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| {
                JwtBundleError::InvalidEntry {
                    index,
                    reason: e.to_string(),
                }
            })?;
            let key = match PublicKey::from_jwk(&jwk) {
                Err(e) if e.is_unsupported() => continue,
                other => other,
            };
            let kid = match jwk.kid {
                Some(kid) if !kid.is_empty() => kid,
                _ => return Err(JwtBundleError::MissingKid { index }),
            };
            let key = key.map_err(|source| JwtBundleError::InvalidKey {
                index,
                kid: kid.clone(),
                source,
            })?;
            match bundle.authorities.get(&kid) {
                Some(existing) if *existing != key => {
                    return Err(JwtBundleError::DuplicateKid(kid));
                }
                Some(_) => {}
                None => {
                    bundle.authorities.insert(kid, key);
                }
            }
        }
        Ok(bundle)
    }

    /// The bundle as a JWKS document: `{"keys":[...]}` with every key carrying
    /// `"use":"jwt-svid"` and its `kid` (JWT-18, JWT-19). `keys` is `[]` when the bundle
    /// is empty.
    pub fn to_jwks_json(&self) -> Vec<u8> {
        self.jwks_json(Some(JWT_SVID_USE))
    }

    /// The bundle as a standard RFC 7517 JWKS without `use` members, the form SPIRE's
    /// Workload API `FetchJWTBundles` returns.
    pub fn to_standard_jwks_json(&self) -> Vec<u8> {
        self.jwks_json(None)
    }

    /// The JWKs of the bundle, ordered by key ID, with `use` set to `jwt-svid`.
    pub fn to_jwks(&self) -> Vec<Jwk> {
        self.authorities
            .iter()
            .map(|(kid, key)| key.to_jwk(Some(kid), JWT_SVID_USE))
            .collect()
    }

    fn jwks_json(&self, use_: Option<&str>) -> Vec<u8> {
        let keys: Vec<Value> = self
            .to_jwks()
            .into_iter()
            .map(|mut jwk| {
                jwk.use_ = use_.map(str::to_owned);
                serde_json::to_value(jwk).unwrap_or(Value::Null)
            })
            .collect();
        let mut doc = serde_json::Map::new();
        doc.insert("keys".to_owned(), Value::Array(keys));
        serde_json::to_vec(&Value::Object(doc)).unwrap_or_else(|_| b"{\"keys\":[]}".to_vec())
    }
}

/// Something that can hand out the JWT bundle of a trust domain, to validate JWT-SVIDs.
pub trait JwtBundleSource {
    /// The JWT bundle of `trust_domain`, if there is one.
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle>;
}

impl JwtBundleSource for JwtBundle {
    /// `Some(self)` for the bundle's own trust domain only.
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        (self.trust_domain == *trust_domain).then_some(self)
    }
}

impl JwtBundleSource for BTreeMap<TrustDomain, JwtBundle> {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        self.get(trust_domain)
    }
}

impl<S: std::hash::BuildHasher> JwtBundleSource for HashMap<TrustDomain, JwtBundle, S> {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        self.get(trust_domain)
    }
}

impl<T: JwtBundleSource + ?Sized> JwtBundleSource for &T {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        (**self).jwt_bundle_for(trust_domain)
    }
}

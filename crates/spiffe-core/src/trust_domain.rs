//! Trust domain names (SPIFFE-ID.md §2.1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{IdError, SCHEME_PREFIX, SpiffeId};

/// The longest trust domain name accepted, in bytes (ID-20, A-2).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A validated SPIFFE trust domain name, such as `example.org`.
///
/// The name is lowercase and made only of `a-z 0-9 . - _` (ID-07, ID-08). It is treated
/// as an opaque string: names that look like IP addresses or DNS names get no special
/// treatment (ID-10, ID-11).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrustDomain {
    name: String,
}

impl TrustDomain {
    /// Parses a bare trust domain name (`example.org`).
    pub fn new(name: &str) -> Result<Self, IdError> {
        validate_name(name)?;
        Ok(TrustDomain {
            name: name.to_owned(),
        })
    }

    /// Parses either a bare trust domain name or a SPIFFE ID, as go-spiffe's
    /// `TrustDomainFromString` does; for a SPIFFE ID the trust domain is taken from it.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.contains(":/") {
            Ok(SpiffeId::parse(s)?.trust_domain())
        } else {
            TrustDomain::new(s)
        }
    }

    pub(crate) fn from_validated(name: &str) -> Self {
        TrustDomain {
            name: name.to_owned(),
        }
    }

    /// The trust domain name, e.g. `example.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trust domain's own SPIFFE ID string, e.g. `spiffe://example.org`, which is
    /// also the key used for bundle maps in the Workload API (WAPI-15).
    pub fn id_string(&self) -> String {
        format!("{SCHEME_PREFIX}{}", self.name)
    }

    /// The trust domain's SPIFFE ID (no path), as used by signing authorities.
    pub fn spiffe_id(&self) -> SpiffeId {
        SpiffeId::from_validated(self.id_string(), self.name.len())
    }
}

/// Checks a trust domain name against ID-02, ID-07, ID-08, ID-09 and ID-20.
pub(crate) fn validate_name(name: &str) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::MissingTrustDomain);
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdError::TrustDomainTooLong { len: name.len() });
    }
    for c in name.chars() {
        if !is_trust_domain_char(c) {
            return Err(match c {
                '%' => IdError::PercentEncodedTrustDomain,
                '@' => IdError::Userinfo,
                ':' => IdError::Port,
                'A'..='Z' => IdError::UppercaseTrustDomain,
                _ => IdError::BadTrustDomainChar(c),
            });
        }
    }
    Ok(())
}

fn is_trust_domain_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_')
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustDomain({})", self.name)
    }
}

impl FromStr for TrustDomain {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::parse(s)
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        TrustDomain::parse(&s).map_err(serde::de::Error::custom)
    }
}

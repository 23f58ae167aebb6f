//! SPIFFE IDs (SPIFFE-ID.md §2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::trust_domain::{self, TrustDomain};

/// The longest SPIFFE ID accepted or generated, in bytes, `spiffe://` included (ID-18,
/// ID-19, A-2).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// The only accepted scheme prefix. Upper-case schemes are refused.
pub(crate) const SCHEME_PREFIX: &str = "spiffe://";

/// Why a string is not a valid SPIFFE ID or trust domain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The input was empty.
    #[error("SPIFFE ID cannot be empty")]
    Empty,
    /// The input did not start with exactly `spiffe://` (ID-01, A-1).
    #[error("scheme is missing or invalid: a SPIFFE ID starts with \"spiffe://\"")]
    WrongScheme,
    /// The trust domain part was empty (ID-02).
    #[error("trust domain is missing")]
    MissingTrustDomain,
    /// The trust domain was longer than 255 bytes (ID-20).
    #[error("trust domain is {len} bytes long; the maximum is 255")]
    TrustDomainTooLong {
        /// The length seen.
        len: usize,
    },
    /// The trust domain had an upper-case letter (ID-07, A-1).
    #[error("trust domain must be lowercase")]
    UppercaseTrustDomain,
    /// The trust domain had a character outside `a-z 0-9 . - _` (ID-08).
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores (found {0:?})"
    )]
    BadTrustDomainChar(char),
    /// The trust domain had a percent-encoded character (ID-09).
    #[error("trust domain cannot contain percent-encoded characters")]
    PercentEncodedTrustDomain,
    /// The authority had userinfo (ID-05).
    #[error("SPIFFE ID cannot contain userinfo")]
    Userinfo,
    /// The authority had a port (ID-06).
    #[error("SPIFFE ID cannot contain a port")]
    Port,
    /// The URI had a query component (ID-03).
    #[error("SPIFFE ID cannot contain a query")]
    Query,
    /// The URI had a fragment component (ID-04).
    #[error("SPIFFE ID cannot contain a fragment")]
    Fragment,
    /// The path had a percent-encoded character (ID-12).
    #[error("path cannot contain percent-encoded characters")]
    PercentEncodedPath,
    /// The path had an empty segment, `//` (ID-13).
    #[error("path cannot contain empty segments")]
    EmptySegment,
    /// The path had a `.` or `..` segment (ID-14).
    #[error("path cannot contain dot segments")]
    DotSegment,
    /// The path ended with `/` (ID-15).
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    /// A path given on its own did not start with `/`.
    #[error("path must have a leading slash")]
    NoLeadingSlash,
    /// The path had a character outside `a-z A-Z 0-9 . - _` (ID-16).
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and underscores (found {0:?})"
    )]
    BadPathChar(char),
    /// The whole ID was longer than 2048 bytes (ID-18, ID-19).
    #[error("SPIFFE ID is {len} bytes long; the maximum is 2048")]
    TooLong {
        /// The length seen.
        len: usize,
    },
}

/// A validated SPIFFE ID, such as `spiffe://example.org/ns/web`.
///
/// Holds its canonical string form; the trust domain and path are slices of it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    repr: String,
    /// Byte length of the trust domain name, which starts right after the scheme.
    td_len: usize,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID string.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_SPIFFE_ID_LEN {
            return Err(IdError::TooLong { len: s.len() });
        }
        let rest = s.strip_prefix(SCHEME_PREFIX).ok_or(IdError::WrongScheme)?;
        // Neither `?` nor `#` may appear anywhere, so the first one starts a query or a
        // fragment (ID-03, ID-04); name it as such rather than as a bad character.
        if let Some(pos) = rest.find(['?', '#']) {
            return Err(if rest.as_bytes()[pos] == b'?' {
                IdError::Query
            } else {
                IdError::Fragment
            });
        }
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        trust_domain::validate_name(td)?;
        validate_path(path)?;
        Ok(SpiffeId {
            repr: s.to_owned(),
            td_len: td.len(),
        })
    }

    /// Builds a SPIFFE ID from a trust domain and a path (`""` or `/a/b`), validating the
    /// path and refusing to generate an ID longer than 2048 bytes (ID-19).
    pub fn new(td: &TrustDomain, path: &str) -> Result<Self, IdError> {
        validate_path(path)?;
        let repr = format!("{SCHEME_PREFIX}{}{path}", td.name());
        if repr.len() > MAX_SPIFFE_ID_LEN {
            return Err(IdError::TooLong { len: repr.len() });
        }
        Ok(SpiffeId {
            repr,
            td_len: td.name().len(),
        })
    }

    /// Builds a SPIFFE ID from a trust domain and path segments (each without `/`).
    pub fn from_segments(td: &TrustDomain, segments: &[&str]) -> Result<Self, IdError> {
        let mut path = String::new();
        for segment in segments {
            validate_segment(segment)?;
            path.push('/');
            path.push_str(segment);
        }
        SpiffeId::new(td, &path)
    }

    pub(crate) fn from_validated(repr: String, td_len: usize) -> Self {
        SpiffeId { repr, td_len }
    }

    /// The trust domain the ID belongs to.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain::from_validated(self.trust_domain_name())
    }

    /// The trust domain name as a string slice, without allocating.
    pub fn trust_domain_name(&self) -> &str {
        &self.repr[SCHEME_PREFIX.len()..SCHEME_PREFIX.len() + self.td_len]
    }

    /// The path, `""` for the root ID of a trust domain, otherwise starting with `/`.
    pub fn path(&self) -> &str {
        &self.repr[SCHEME_PREFIX.len() + self.td_len..]
    }

    /// Whether the ID has no path, i.e. names the trust domain itself.
    pub fn is_root(&self) -> bool {
        self.path().is_empty()
    }

    /// Whether the ID belongs to the given trust domain.
    pub fn is_member_of(&self, td: &TrustDomain) -> bool {
        self.trust_domain_name() == td.name()
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.repr
    }
}

/// Validates a SPIFFE ID path: empty, or `/`-separated non-empty segments (ID-12..ID-16).
pub fn validate_path(path: &str) -> Result<(), IdError> {
    if path.is_empty() {
        return Ok(());
    }
    let rest = path.strip_prefix('/').ok_or(IdError::NoLeadingSlash)?;
    if rest.is_empty() {
        return Err(IdError::TrailingSlash);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return Err(if i == last {
                IdError::TrailingSlash
            } else {
                IdError::EmptySegment
            });
        }
        validate_segment(segment)?;
    }
    Ok(())
}

/// Validates one path segment: non-empty, not `.` or `..`, characters `a-zA-Z0-9.-_`.
fn validate_segment(segment: &str) -> Result<(), IdError> {
    match segment {
        "" => return Err(IdError::EmptySegment),
        "." | ".." => return Err(IdError::DotSegment),
        _ => {}
    }
    for c in segment.chars() {
        if !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_') {
            return Err(match c {
                '%' => IdError::PercentEncodedPath,
                '?' => IdError::Query,
                '#' => IdError::Fragment,
                _ => IdError::BadPathChar(c),
            });
        }
    }
    Ok(())
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpiffeId({})", self.repr)
    }
}

impl FromStr for SpiffeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.repr
    }
}

impl Serialize for SpiffeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.repr)
    }
}

impl<'de> Deserialize<'de> for SpiffeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        SpiffeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

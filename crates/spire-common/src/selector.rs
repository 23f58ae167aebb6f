//! Selectors: the `type:value` facts that attestors produce and registration entries match.
//!
//! A selector is written `type:value` and split at the **first** colon, so the value may
//! itself contain colons (`unix:uid:1000`, `k8s:ns:default`, `docker:label:a:b`), as in
//! SPIRE's CLI (`strings.SplitAfterN(s, ":", 2)`). An entry matches a workload when every
//! selector of the entry is among the workload's selectors ([`SelectorSet::is_subset_of`]).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a string is not a selector.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectorError {
    /// No colon at all (SPIRE CLI wording).
    #[error("selector \"{0}\" must be formatted as type:value")]
    MissingColon(String),
    /// Nothing before the first colon (SPIRE API wording).
    #[error("missing selector type")]
    EmptyType,
    /// Nothing after the first colon (SPIRE API wording).
    #[error("missing selector value")]
    EmptyValue,
}

/// One selector, e.g. `unix:uid:1000` (type `unix`, value `uid:1000`).
///
/// Ordered by type, then value, which is the order SPIRE sorts selectors in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Selector {
    /// The selector type, usually the attestor plugin name (`unix`, `k8s`, `spiffe_id`).
    pub r#type: String,
    /// The value; may contain colons.
    pub value: String,
}

impl Selector {
    /// Builds a selector from its parts, refusing an empty type or value.
    pub fn new(r#type: impl Into<String>, value: impl Into<String>) -> Result<Self, SelectorError> {
        let r#type = r#type.into();
        let value = value.into();
        if r#type.is_empty() {
            return Err(SelectorError::EmptyType);
        }
        if value.is_empty() {
            return Err(SelectorError::EmptyValue);
        }
        Ok(Selector { r#type, value })
    }

    /// Parses `type:value`, splitting at the first colon.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let (t, v) = s
            .split_once(':')
            .ok_or_else(|| SelectorError::MissingColon(s.to_owned()))?;
        Selector::new(t, v)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.r#type, self.value)
    }
}

/// A sorted set of selectors without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SelectorSet(BTreeSet<Selector>);

impl SelectorSet {
    /// An empty set.
    pub fn new() -> Self {
        SelectorSet(BTreeSet::new())
    }

    /// Parses each `type:value` string; duplicates collapse.
    pub fn parse_all<I, S>(items: I) -> Result<Self, SelectorError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        items
            .into_iter()
            .map(|s| Selector::parse(s.as_ref()))
            .collect()
    }

    /// Adds a selector; returns `false` if it was already there.
    pub fn insert(&mut self, selector: Selector) -> bool {
        self.0.insert(selector)
    }

    /// Whether the set holds this selector.
    pub fn contains(&self, selector: &Selector) -> bool {
        self.0.contains(selector)
    }

    /// Whether every selector of `self` is in `other`. This is SPIRE's entry matching
    /// rule: an entry applies to a workload when the entry's selectors are a subset of the
    /// workload's. The empty set is a subset of every set.
    pub fn is_subset_of(&self, other: &SelectorSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether every selector of `other` is in `self`.
    pub fn is_superset_of(&self, other: &SelectorSet) -> bool {
        self.0.is_superset(&other.0)
    }

    /// The number of distinct selectors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The selectors in order (type, then value).
    pub fn iter(&self) -> impl Iterator<Item = &Selector> {
        self.0.iter()
    }

    /// The selectors of one type, in value order.
    pub fn of_type<'a>(&'a self, r#type: &'a str) -> impl Iterator<Item = &'a Selector> + 'a {
        self.0.iter().filter(move |s| s.r#type == r#type)
    }

    /// Consumes the set into a sorted, deduplicated vector.
    pub fn into_vec(self) -> Vec<Selector> {
        self.0.into_iter().collect()
    }
}

impl FromIterator<Selector> for SelectorSet {
    fn from_iter<I: IntoIterator<Item = Selector>>(iter: I) -> Self {
        SelectorSet(iter.into_iter().collect())
    }
}

impl Extend<Selector> for SelectorSet {
    fn extend<I: IntoIterator<Item = Selector>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl IntoIterator for SelectorSet {
    type Item = Selector;
    type IntoIter = std::collections::btree_set::IntoIter<Selector>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a SelectorSet {
    type Item = &'a Selector;
    type IntoIter = std::collections::btree_set::Iter<'a, Selector>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Sorts and removes duplicates from a list of selectors in place (type, then value).
pub fn dedupe(selectors: &mut Vec<Selector>) {
    selectors.sort();
    selectors.dedup();
}

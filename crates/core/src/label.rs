//! Confidentiality and integrity labels.
//!
//! Confidentiality is the ordered lattice `public < internal < confidential <
//! highly_confidential` plus a set of categories (`pii`, `customer`, …). A session's
//! label only rises: [`SessionLabel::join`] is the least upper bound, and nothing in
//! this module can lower a label. Integrity is `trusted` until untrusted content
//! (the open web, inbound mail, any tool marked untrusted) enters the session.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A confidentiality level, ordered from least to most sensitive.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Anyone may see it.
    #[default]
    Public,
    /// Anyone inside the organisation may see it.
    Internal,
    /// Only those with a need to know may see it.
    Confidential,
    /// The organisation's most sensitive data.
    HighlyConfidential,
}

impl Label {
    /// Every label, lowest first.
    pub const ALL: [Label; 4] = [
        Label::Public,
        Label::Internal,
        Label::Confidential,
        Label::HighlyConfidential,
    ];

    /// The label's position in the lattice (0 = public), as used in Cedar policies.
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The label at `rank`, if there is one.
    pub fn from_rank(rank: i64) -> Option<Label> {
        usize::try_from(rank)
            .ok()
            .and_then(|r| Label::ALL.get(r).copied())
    }

    /// The least upper bound of two labels.
    #[must_use]
    pub fn join(self, other: Label) -> Label {
        self.max(other)
    }

    /// The label's name as written in inventories and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Public => "public",
            Label::Internal => "internal",
            Label::Confidential => "confidential",
            Label::HighlyConfidential => "highly_confidential",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown label `{s}`, expected one of `public`, `internal`, `confidential`, `highly_confidential`"
                )
            })
    }
}

/// A data category such as `pii`, `pci`, `phi` or `customer`.
///
/// Categories are lowercase identifiers (`a-z`, `0-9`, `_`, `-`), so that the same
/// category cannot be spelt two ways in two places.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Category(String);

impl Category {
    /// Checks and wraps a category name.
    pub fn new(name: &str) -> Result<Category, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Category(name.to_owned()))
        } else {
            Err(format!(
                "invalid category `{name}`, expected 1 to 64 characters of `a-z`, `0-9`, `_` or `-`"
            ))
        }
    }

    /// The category's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names joined with `, ` for messages (empty for none).
    pub fn join<'a>(categories: impl IntoIterator<Item = &'a Category>) -> String {
        categories
            .into_iter()
            .map(Category::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Category::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether content can be trusted to carry no instructions for the agent.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// Only trusted content has entered the session.
    #[default]
    Trusted,
    /// Untrusted content (web pages, inbound mail, untrusted tool output) has entered.
    Untrusted,
}

impl Integrity {
    /// The lower of two integrities: once untrusted, always untrusted.
    #[must_use]
    pub fn join(self, other: Integrity) -> Integrity {
        self.max(other)
    }
}

/// The information-flow state of a session: the high-water mark of everything read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLabel {
    /// The highest confidentiality label read so far.
    pub confidentiality: Label,
    /// Every data category read so far.
    pub categories: BTreeSet<Category>,
    /// Whether untrusted content has entered the session.
    pub integrity: Integrity,
}

impl SessionLabel {
    /// The least upper bound of two session labels.
    #[must_use]
    pub fn join(&self, other: &SessionLabel) -> SessionLabel {
        SessionLabel {
            confidentiality: self.confidentiality.join(other.confidentiality),
            categories: self.categories.union(&other.categories).cloned().collect(),
            integrity: self.integrity.join(other.integrity),
        }
    }

    /// Whether `self` is at or above `other` in every component.
    pub fn dominates(&self, other: &SessionLabel) -> bool {
        self.confidentiality >= other.confidentiality
            && self.categories.is_superset(&other.categories)
            && self.integrity >= other.integrity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(names: &[&str]) -> BTreeSet<Category> {
        names.iter().map(|n| Category::new(n).unwrap()).collect()
    }

    #[test]
    fn labels_are_ordered_and_join_is_max() {
        assert!(Label::Public < Label::Internal);
        assert!(Label::Confidential < Label::HighlyConfidential);
        assert_eq!(
            Label::Internal.join(Label::Confidential),
            Label::Confidential
        );
        assert_eq!(
            Label::HighlyConfidential.join(Label::Public),
            Label::HighlyConfidential
        );
        for l in Label::ALL {
            assert_eq!(Label::from_rank(l.rank()), Some(l));
            assert_eq!(l.as_str().parse::<Label>().unwrap(), l);
        }
        assert_eq!(Label::from_rank(4), None);
        assert_eq!(Label::from_rank(-1), None);
    }

    #[test]
    fn session_join_only_rises() {
        let a = SessionLabel {
            confidentiality: Label::Confidential,
            categories: cats(&["pii"]),
            integrity: Integrity::Trusted,
        };
        let b = SessionLabel {
            confidentiality: Label::Internal,
            categories: cats(&["customer"]),
            integrity: Integrity::Untrusted,
        };
        let j = a.join(&b);
        assert_eq!(j.confidentiality, Label::Confidential);
        assert_eq!(j.categories, cats(&["customer", "pii"]));
        assert_eq!(j.integrity, Integrity::Untrusted);
        assert!(j.dominates(&a) && j.dominates(&b));
        assert!(!a.dominates(&j));
        assert_eq!(j.join(&SessionLabel::default()), j);
    }

    #[test]
    fn category_names_are_checked() {
        assert!(Category::new("pii").is_ok());
        assert!(Category::new("PII").is_err());
        assert!(Category::new("").is_err());
        assert!(Category::new("a b").is_err());
    }
}

//! Custom dictionaries: an organisation's own sensitive terms (customer
//! names, project code names, internal host names), each list reported as a
//! finding type of its own.
//!
//! All terms of all dictionaries go into two anchored Aho-Corasick automata,
//! one case-sensitive and one ASCII-case-insensitive. The word pass
//! ([`super::words`]) asks [`Dictionaries::at`] at each word start whose first
//! two bytes begin some term (a 64 Kibit set answers that without touching
//! the automata), so text without the terms costs a table look-up per word. A
//! match counts only as a whole word (no letter, digit or `_` on either side,
//! Unicode-aware); of terms that start at the same place the longest whole
//! word wins. For case-insensitive terms with non-ASCII letters the ASCII
//! folding is not enough, so their lower-, upper- and title-case forms are
//! added too. Terms must start with a letter or digit.

use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, MatchKind, StartKind};
use serde::{Deserialize, Serialize};

use super::types::SensitiveType;
use super::{Hit, SensitiveError};

/// A list of terms to report as one finding type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dictionary {
    /// The finding type (`customer_name`): lowercase letters, digits and `_`,
    /// starting with a letter, not the name of a built-in type.
    pub name: String,
    /// The category a finding of this type adds to a session (`customer`, `pii`, …).
    pub category: String,
    /// The terms. Leading and trailing whitespace is ignored; none may be empty.
    pub terms: Vec<String>,
    /// Whether case must match exactly (`BLUEBIRD` but not `bluebird`).
    #[serde(default)]
    pub case_sensitive: bool,
}

/// The compiled dictionaries.
#[derive(Clone)]
pub(super) struct Dictionaries {
    types: Vec<SensitiveType>,
    exact: Option<Matcher>,
    folded: Option<Matcher>,
    /// Which (ASCII-lower-cased) first two bytes begin a term.
    starts: Box<[u64; 1024]>,
}

impl std::fmt::Debug for Dictionaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.types.iter().map(SensitiveType::name))
            .finish()
    }
}

/// One automaton and the dictionary each of its patterns belongs to.
#[derive(Debug, Clone)]
struct Matcher {
    automaton: AhoCorasick,
    owner: Vec<usize>,
}

impl Dictionaries {
    /// Validates and compiles `dictionaries`.
    pub(super) fn new(dictionaries: Vec<Dictionary>) -> Result<Dictionaries, SensitiveError> {
        let mut types = Vec::with_capacity(dictionaries.len());
        let mut exact: (Vec<String>, Vec<usize>) = (Vec::new(), Vec::new());
        let mut folded: (Vec<String>, Vec<usize>) = (Vec::new(), Vec::new());
        for (index, d) in dictionaries.into_iter().enumerate() {
            validate_name(index, &d.name)?;
            if types.iter().any(|t: &SensitiveType| t.name() == d.name) {
                return Err(SensitiveError::DuplicateDictionary { name: d.name });
            }
            if d.category.trim().is_empty() {
                return Err(SensitiveError::EmptyCategory { name: d.name });
            }
            if d.terms.is_empty() {
                return Err(SensitiveError::NoTerms { name: d.name });
            }
            let (patterns, owner) = if d.case_sensitive {
                (&mut exact.0, &mut exact.1)
            } else {
                (&mut folded.0, &mut folded.1)
            };
            for (position, term) in d.terms.iter().enumerate() {
                let term = term.trim();
                if term.is_empty() {
                    return Err(SensitiveError::EmptyTerm {
                        name: d.name.clone(),
                        position,
                    });
                }
                if !term.chars().next().is_some_and(char::is_alphanumeric) {
                    return Err(SensitiveError::TermStart {
                        name: d.name.clone(),
                        position,
                    });
                }
                let mut forms = vec![term.to_owned()];
                if !d.case_sensitive && !term.is_ascii() {
                    forms.push(term.to_lowercase());
                    forms.push(term.to_uppercase());
                    forms.push(title_case(term));
                    forms.sort();
                    forms.dedup();
                }
                for form in forms {
                    patterns.push(form);
                    owner.push(types.len());
                }
            }
            types.push(SensitiveType::Custom {
                name: d.name,
                category: d.category,
            });
        }
        let mut starts = Box::new([0u64; 1024]);
        for term in exact.0.iter().chain(&folded.0) {
            let b = term.as_bytes();
            let first = b.first().copied().unwrap_or(0).to_ascii_lowercase();
            match b.get(1) {
                Some(&second) => set_bit(&mut starts, first, second.to_ascii_lowercase()),
                None => (0..=255).for_each(|second| set_bit(&mut starts, first, second)),
            }
        }
        Ok(Dictionaries {
            types,
            exact: Matcher::new(exact.0, exact.1, false)?,
            folded: Matcher::new(folded.0, folded.1, true)?,
            starts,
        })
    }

    /// Whether a term may start at `i`: a look-up of its first two bytes.
    #[inline]
    pub(super) fn may_start(&self, bytes: &[u8], i: usize) -> bool {
        let first = bytes[i].to_ascii_lowercase();
        let second = bytes.get(i + 1).map_or(0, u8::to_ascii_lowercase);
        let key = usize::from(first) << 8 | usize::from(second);
        self.starts[key >> 6] & (1 << (key & 63)) != 0
    }

    /// Reports the longest whole-word term starting at `i`, if any.
    pub(super) fn at(&self, text: &str, i: usize, out: &mut Vec<Hit>) {
        let mut best: Option<(usize, usize)> = None;
        for matcher in [&self.exact, &self.folded].into_iter().flatten() {
            if let Some((end, dict)) = matcher.longest_word_at(text, i)
                && best.is_none_or(|(e, _)| end > e)
            {
                best = Some((end, dict));
            }
        }
        if let Some((end, dict)) = best
            && let Some(ty) = self.types.get(dict)
        {
            out.push(Hit::new(ty.clone(), i, end, 0.9, "dictionary"));
        }
    }

    /// The dictionary type named `kind`, if there is one.
    pub(super) fn get(&self, kind: &str) -> Option<&SensitiveType> {
        self.types.iter().find(|t| t.name() == kind)
    }
}

impl Matcher {
    /// An automaton over `patterns`, or `None` if there are none.
    fn new(
        patterns: Vec<String>,
        owner: Vec<usize>,
        fold: bool,
    ) -> Result<Option<Matcher>, SensitiveError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .ascii_case_insensitive(fold)
            .kind(if patterns.len() <= 1000 {
                Some(AhoCorasickKind::DFA)
            } else {
                None
            })
            .build(&patterns)
            .map_err(|source| SensitiveError::Automaton {
                what: "dictionary terms",
                source,
            })?;
        Ok(Some(Matcher { automaton, owner }))
    }

    /// The end and dictionary of the longest term that starts at `i` and is
    /// a whole word there.
    fn longest_word_at(&self, text: &str, i: usize) -> Option<(usize, usize)> {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        // INVARIANT: `i` is a char boundary (the word pass only asks at ASCII
        // bytes and UTF-8 lead bytes); `get` checks anyway.
        if text.get(..i)?.chars().next_back().is_some_and(word) {
            return None;
        }
        let mut limit = text.len();
        while limit > i {
            let input = Input::new(text).span(i..limit).anchored(Anchored::Yes);
            let m = self.automaton.try_find(input).ok()??;
            // Patterns and text are UTF-8 and ASCII folding keeps lead bytes,
            // so the match ends on a char boundary.
            let whole = !text.get(m.end()..)?.chars().next().is_some_and(word);
            if whole {
                return Some((m.end(), *self.owner.get(m.pattern().as_usize())?));
            }
            // A shorter term may still be a whole word (`Acme` in `Acme Corporation`).
            limit = m.end() - 1;
        }
        None
    }
}

fn set_bit(set: &mut [u64; 1024], first: u8, second: u8) {
    let key = usize::from(first) << 8 | usize::from(second);
    set[key >> 6] |= 1 << (key & 63);
}

/// Checks a dictionary's name: snake_case, not a built-in type's.
fn validate_name(index: usize, name: &str) -> Result<(), SensitiveError> {
    let shaped = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !shaped {
        return Err(SensitiveError::InvalidDictionaryName {
            index,
            name: name.to_owned(),
        });
    }
    if SensitiveType::from_name(name).is_some() || name.starts_with("classification_") {
        return Err(SensitiveError::ReservedDictionaryName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// `müller gmbh` → `Müller Gmbh`.
fn title_case(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    let mut at_start = true;
    for c in term.chars() {
        if at_start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        at_start = !c.is_alphanumeric();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(name: &str, terms: &[&str], case_sensitive: bool) -> Dictionary {
        Dictionary {
            name: name.into(),
            category: "customer".into(),
            terms: terms.iter().map(|t| (*t).to_owned()).collect(),
            case_sensitive,
        }
    }

    fn found(d: &Dictionaries, text: &str) -> Vec<(String, String)> {
        let mut hits = Vec::new();
        crate::sensitive::words::scan(text, Some(d), &mut hits);
        hits.retain(|h| matches!(h.ty, SensitiveType::Custom { .. }));
        hits.iter()
            .map(|h| (h.ty.name().to_owned(), text[h.start..h.end].to_owned()))
            .collect()
    }

    #[test]
    fn whole_words_are_found_in_any_case_unless_case_sensitive() {
        let d = Dictionaries::new(vec![
            dict(
                "customer_name",
                &["Acme Corp", "Acme", "Müller GmbH"],
                false,
            ),
            dict("project_codename", &["BLUEBIRD"], true),
        ])
        .unwrap();
        assert_eq!(
            found(&d, "Met ACME CORP and müller gmbh; BLUEBIRD ships."),
            [
                ("customer_name".into(), "ACME CORP".into()),
                ("customer_name".into(), "müller gmbh".into()),
                ("project_codename".into(), "BLUEBIRD".into()),
            ]
        );
        assert_eq!(
            found(&d, "Acme Corporation"),
            [("customer_name".into(), "Acme".into())]
        );
        assert!(found(&d, "bluebird acmes _acme MÜLLER_GMBH").is_empty());
    }

    #[test]
    fn invalid_dictionaries_are_rejected() {
        let bad = |d: Dictionary| Dictionaries::new(vec![d]).unwrap_err().to_string();
        assert!(bad(dict("Customer", &["x"], false)).contains("`Customer`"));
        assert!(bad(dict("email", &["x"], false)).contains("built-in"));
        assert!(bad(dict("c", &[], false)).contains("no terms"));
        assert!(bad(dict("c", &["a", " "], false)).contains("position 1"));
        assert!(bad(dict("c", &["a", "#tag"], false)).contains("position 1"));
        let twice = Dictionaries::new(vec![dict("c", &["a"], false), dict("c", &["b"], true)]);
        assert!(twice.unwrap_err().to_string().contains("twice"));
    }
}

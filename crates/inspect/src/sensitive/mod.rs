//! Sensitive-data detectors: contact details, payment cards, IBANs, SSNs, IP
//! addresses, cloud and SaaS credentials, private keys, JWTs, secrets assigned
//! to key-like names, document classification markings, and custom
//! dictionaries.
//!
//! The pipeline scans every tool result and model output with one shared
//! [`SensitiveScanner`]; what it finds raises the session's label
//! ([`classify`] maps a finding kind to a category and a label) and is
//! recorded in the audit log. Two requirements shape the design:
//!
//! - **Precision.** A false positive raises a label and can block a legitimate
//!   action, so every detector validates what it matches with the format's own
//!   rules (Luhn and issuer ranges, the IBAN mod-97 check, the SSA's SSN rules,
//!   ITU country codes, documented token prefixes and lengths, decoding a JWT)
//!   and rejects placeholders, version strings, dates and ids.
//! - **Throughput.** Every byte an agent reads passes through here, so the scan
//!   must run at well over 100 MB/s on one core. No detector runs a regular
//!   expression over the whole text. The text is read by a few linear passes
//!   that stop only where something can start: `memchr` for `@` (e-mail),
//!   `:` (IPv6) and `Q~` (Entra ID secrets), and one walk over the words
//!   ([`words`]) that looks at each word's first bytes (numbers, IBANs,
//!   credential prefixes, markings, dictionary terms) and at what follows it
//!   (key names such as `password=`). Each candidate is validated locally by
//!   hand-written code. (Aho-Corasick over the whole text was tried first for
//!   the prefixes and key words; case-insensitive matching leaves it no
//!   prefilter, and it ran at about 300 MB/s per automaton.)
//!
//! Findings never hold the matched text. They carry its span (into the
//! caller's text) and a keyed digest, HMAC-SHA-256 under the scanner's key,
//! hex, truncated to 16 bytes, so that the same value is recognisable across
//! records without being stored. The digest is taken over a canonical form
//! where a value has several spellings: digits only for card, phone and SSN
//! numbers; upper case without spaces for IBANs; lower case for e-mail and
//! IPv6 addresses; the text as written otherwise.
//!
//! Where findings overlap, the more specific one is kept: a key block over
//! the base64 inside it, a token with a documented prefix over a generic
//! secret, a checked number over a phone-shaped guess. Dictionary findings are
//! kept beside the others.

mod credentials;
mod dictionary;
mod email;
mod iban;
mod keyword;
mod marking;
mod network;
mod numeric;
mod text;
mod types;
mod words;

#[cfg(any(test, feature = "sensitive-corpus"))]
pub mod corpus;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use dictionary::Dictionary;
pub use types::{Marking, SensitiveType, classify};

use crate::{Finding, FindingKind, Span, Via};

/// Why a scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SensitiveError {
    /// A dictionary name is not snake_case.
    #[error(
        "dictionary #{index} has the invalid name `{name}`: expected lowercase letters, digits and `_`, starting with a letter"
    )]
    InvalidDictionaryName {
        /// The dictionary's position in the list.
        index: usize,
        /// The name given.
        name: String,
    },
    /// A dictionary is named like a built-in type.
    #[error("dictionary `{name}` has the name of a built-in type")]
    ReservedDictionaryName {
        /// The name given.
        name: String,
    },
    /// Two dictionaries have the same name.
    #[error("dictionary `{name}` is defined twice")]
    DuplicateDictionary {
        /// The name given twice.
        name: String,
    },
    /// A dictionary has no category.
    #[error("dictionary `{name}` has an empty category")]
    EmptyCategory {
        /// The dictionary.
        name: String,
    },
    /// A dictionary has no terms.
    #[error("dictionary `{name}` has no terms")]
    NoTerms {
        /// The dictionary.
        name: String,
    },
    /// A dictionary term does not start with a letter or digit.
    #[error("dictionary `{name}` has a term at position {position} that does not start with a letter or digit")]
    TermStart {
        /// The dictionary.
        name: String,
        /// The term's position in the list.
        position: usize,
    },
    /// A dictionary term is empty or only whitespace.
    #[error("dictionary `{name}` has an empty term at position {position}")]
    EmptyTerm {
        /// The dictionary.
        name: String,
        /// The term's position in the list.
        position: usize,
    },
    /// An automaton could not be built (too many or too long patterns).
    #[error("cannot build the matcher for {what}")]
    Automaton {
        /// Which patterns.
        what: &'static str,
        /// Why.
        #[source]
        source: aho_corasick::BuildError,
    },
    /// The digest key was refused by HMAC.
    #[error("the digest key was refused: {0}")]
    DigestKey(#[from] hmac::digest::InvalidLength),
}

/// Finds sensitive data in text.
///
/// Built once (the automata are compiled in [`SensitiveScanner::new`]) and
/// shared: it is `Send + Sync`, and [`SensitiveScanner::scan`] takes `&self`
/// and allocates only for what it finds.
#[derive(Clone)]
pub struct SensitiveScanner {
    dictionaries: dictionary::Dictionaries,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SensitiveScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest key stays out of logs.
        f.debug_struct("SensitiveScanner")
            .field("dictionaries", &self.dictionaries)
            .finish_non_exhaustive()
    }
}

impl SensitiveScanner {
    /// A scanner with the built-in detectors, the given dictionaries, and
    /// `key` for the findings' digests.
    ///
    /// The key should be a secret of the deployment: with it, anyone holding
    /// an audit log could confirm a guessed value by its digest.
    pub fn new(dictionaries: Vec<Dictionary>, key: [u8; 32]) -> Result<Self, SensitiveError> {
        Ok(SensitiveScanner {
            dictionaries: dictionary::Dictionaries::new(dictionaries)?,
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key)?,
        })
    }

    /// Every piece of sensitive data in `text`, in order of position.
    ///
    /// Spans are byte ranges of `text` on `char` boundaries; `via` is
    /// [`Via::Text`] (the caller maps findings in decoded views back).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let bytes = text.as_bytes();
        let mut hits = Vec::new();
        email::scan(bytes, &mut hits);
        network::scan_ipv6(bytes, &mut hits);
        credentials::scan_client_secrets(bytes, &mut hits);
        words::scan(text, Some(&self.dictionaries), &mut hits);
        let mut kept = resolve(hits);
        kept.sort_by_key(|h| (h.start, h.end));
        kept.into_iter()
            .filter(|h| text.is_char_boundary(h.start) && text.is_char_boundary(h.end))
            .map(|h| self.finding(text, h))
            .collect()
    }

    /// The category and label of a finding kind, built-in or from one of
    /// this scanner's dictionaries.
    pub fn classify(&self, kind: &str) -> Option<(&str, &'static str)> {
        if let Some(builtin) = classify(kind) {
            return Some(builtin);
        }
        self.dictionaries
            .get(kind)
            .map(|ty| (ty.category(), ty.label()))
    }

    /// The digest of `value` as findings carry it: hex HMAC-SHA-256 under the
    /// scanner's key, truncated to 16 bytes. Findings digest a canonical form
    /// of what they matched (see the module documentation).
    pub fn digest(&self, value: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for b in tag.iter().take(16) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Turns a kept hit into a finding, with its digest.
    fn finding(&self, text: &str, h: Hit) -> Finding {
        let value = &text.as_bytes()[h.start..h.end];
        let digest = self.digest(&canonical(&h.ty, value));
        Finding {
            kind: FindingKind::Sensitive(h.ty.name().to_owned()),
            span: Span::new(h.start, h.end),
            score: h.score,
            via: Via::Text,
            rule: h.rule.to_owned(),
            digest: Some(digest),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What one detector found, before overlaps are resolved.
#[derive(Debug, Clone)]
struct Hit {
    ty: SensitiveType,
    start: usize,
    end: usize,
    score: f32,
    rule: &'static str,
}

impl Hit {
    fn new(ty: SensitiveType, start: usize, end: usize, score: f32, rule: &'static str) -> Hit {
        Hit {
            ty,
            start,
            end,
            score,
            rule,
        }
    }
}

/// Keeps, of overlapping hits, the one of higher rank (then the longer, then
/// the more confident). Dictionary hits are only weighed against each other:
/// a customer's name in an e-mail address is both.
fn resolve(hits: Vec<Hit>) -> Vec<Hit> {
    let (custom, builtin): (Vec<Hit>, Vec<Hit>) = hits
        .into_iter()
        .partition(|h| matches!(h.ty, SensitiveType::Custom { .. }));
    let mut kept = keep_disjoint(builtin);
    kept.extend(keep_disjoint(custom));
    kept
}

/// The greedy choice of disjoint hits by rank, length and confidence.
fn keep_disjoint(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort_by(|a, b| {
        b.ty.rank()
            .cmp(&a.ty.rank())
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(b.score.total_cmp(&a.score))
            .then(a.start.cmp(&b.start))
    });
    // Kept spans, disjoint, by start.
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(hits.len());
    for h in hits {
        // INVARIANT: `taken` holds disjoint spans, so the only one that can
        // overlap `h` is the last that starts before `h` ends.
        let overlaps = taken
            .range(..h.end.max(h.start + 1))
            .next_back()
            .is_some_and(|(_, &end)| end > h.start);
        if !overlaps {
            taken.insert(h.start, h.end);
            kept.push(h);
        }
    }
    kept
}

/// The form of a matched value that is digested.
fn canonical(ty: &SensitiveType, value: &[u8]) -> Vec<u8> {
    match ty {
        SensitiveType::PaymentCard | SensitiveType::Phone | SensitiveType::UsSsn => {
            value.iter().copied().filter(u8::is_ascii_digit).collect()
        }
        SensitiveType::Iban => value
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_uppercase)
            .collect(),
        SensitiveType::Email | SensitiveType::IpAddress => value.to_ascii_lowercase(),
        _ => value.to_vec(),
    }
}

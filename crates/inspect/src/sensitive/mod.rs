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
//!   `:` (IPv6) and `~` (Entra ID secrets), and one walk over the words
//!   (`words`) that looks at each word's first bytes (numbers, IBANs,
//!   credential prefixes, markings, dictionary terms) and at what follows it
//!   (key names such as `password=`). Each candidate is validated locally by
//!   hand-written code. (Unanchored Aho-Corasick over the whole text was tried
//!   first for the prefixes and key words: with case-insensitive patterns it
//!   gets no prefilter and ran at 250–320 MB/s per automaton, so three of them
//!   alone missed the budget. Dictionaries still use Aho-Corasick, anchored at
//!   the word starts their first two bytes allow.)
//!
//! Findings never hold the matched text. They carry its span (into the
//! caller's text) and a keyed digest, HMAC-SHA-256 under the scanner's key,
//! hex, truncated to 16 bytes, so that the same value is recognisable across
//! records without being stored. The digest is taken over a canonical form
//! where a value has several spellings: digits only for card, phone and SSN
//! numbers; upper case without spaces for IBANs; lower case for e-mail and
//! IP addresses; the text as written otherwise. [`SensitiveScanner::digest`]
//! computes the same digest for a value the caller holds.
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
    #[error(
        "dictionary `{name}` has a term at position {position} that does not start with a letter or digit"
    )]
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
        zt4ai_core::hex(&tag[..16])
    }

    /// Turns a kept hit into a finding, with its digest.
    fn finding(&self, text: &str, h: Hit) -> Finding {
        let value = &text.as_bytes()[h.start..h.end];
        let mut buf = [0u8; 256];
        let digest = match canonical(&h.ty, value, &mut buf) {
            Some(short) => self.digest(short),
            None => self.digest(value),
        };
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

/// Disjoint hits: of overlapping ones, the better by rank, length and
/// confidence. One sweep by position; overlaps are rare and short-lived.
fn keep_disjoint(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort_by_key(|h| (h.start, h.end));
    let better = |a: &Hit, b: &Hit| {
        (a.ty.rank(), a.end - a.start, a.score) > (b.ty.rank(), b.end - b.start, b.score)
    };
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        // INVARIANT: `kept` is disjoint and sorted, so `h` (which starts at
        // or after every kept hit) can only overlap the last ones.
        let mut wins = true;
        while let Some(last) = kept.last() {
            if last.end <= h.start {
                break;
            }
            if better(&h, last) {
                kept.pop();
            } else {
                wins = false;
                break;
            }
        }
        if wins {
            kept.push(h);
        }
    }
    kept
}

/// The form of a matched value that is digested, written into `buf`, for
/// the types whose values have several spellings (`None`: the value as it is).
fn canonical<'b>(ty: &SensitiveType, value: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let keep: fn(u8) -> Option<u8> = match ty {
        SensitiveType::PaymentCard | SensitiveType::Phone | SensitiveType::UsSsn => {
            |b| b.is_ascii_digit().then_some(b)
        }
        SensitiveType::Iban => |b| b.is_ascii_alphanumeric().then(|| b.to_ascii_uppercase()),
        SensitiveType::Email | SensitiveType::IpAddress => |b| Some(b.to_ascii_lowercase()),
        _ => return None,
    };
    let mut n = 0;
    for b in value.iter().filter_map(|&b| keep(b)) {
        // These values are short (an e-mail address has at most 254 bytes);
        // a longer match is digested as written.
        *buf.get_mut(n)? = b;
        n += 1;
    }
    Some(&buf[..n])
}

//! A labelled, generated corpus for measuring the detectors' precision and
//! recall (test fixture; behind the `sensitive-corpus` feature).
//!
//! For every type, [`generate`] makes *positives* — valid values (random,
//! built from the format's public rules: Luhn check digits, IBAN check digits,
//! SSA number ranges, documented token prefixes and lengths) embedded in the
//! text they turn up in (sentences, JSON, YAML, env files, CSV, Markdown,
//! log lines, HTTP headers), each labelled with its type and span — and
//! *near-misses*: text that resembles the type but is not it (Luhn-invalid
//! card numbers, wrong IBAN check digits, SSN areas 000/666/9xx, `256.1.1.1`,
//! version strings, wrong-length keys, placeholders, "confidential" as an
//! ordinary word, dates and order numbers shaped like phone numbers, …).
//!
//! The generator is written from the formats and from how such data appears
//! in real text, not from the detectors: the layouts vary (spaces, dashes,
//! dots, parentheses, quotes, line starts and ends, escaped JSON), and a
//! near-miss is whatever a careful reader would not call that type.
//!
//! [`evaluate`] scans every example and counts, per type: a finding is a true
//! positive if a label of the same kind overlaps it, a false positive
//! otherwise; a label is recalled if a finding of its kind overlaps it.

mod carriers;
mod families;
mod secrets;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Dictionary, SensitiveScanner};
use crate::{FindingKind, Span};

/// A deterministic xorshift64* generator: the same seed gives the same corpus.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` bytes drawn from `alphabet`.
    pub fn string(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }

    /// `lo..=hi` bytes drawn from `alphabet`.
    pub fn string_in(&mut self, lo: u32, hi: u32, alphabet: &[u8]) -> String {
        let n = self.range(lo, hi) as usize;
        self.string(n, alphabet)
    }

    /// `n` decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        self.string(n, DIGITS)
    }
}

pub(crate) const DIGITS: &[u8] = b"0123456789";
pub(crate) const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const B64URL: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(crate) const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const HEX: &[u8] = b"0123456789abcdef";

/// An expected finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The finding kind.
    pub kind: String,
    /// Where.
    pub span: Span,
}

/// One generated text and what should be found in it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The type the example was made for.
    pub family: &'static str,
    /// Whether it is a positive (else a near-miss).
    pub positive: bool,
    /// The text.
    pub text: String,
    /// What must be found.
    pub labels: Vec<Label>,
    /// Kinds that may be found without counting either way: a near-miss
    /// for one type can rightly be another (a 41-character value assigned
    /// to `aws_secret_access_key` is not an AWS key, but is a secret).
    pub tolerated: Vec<&'static str>,
}

/// A text under construction.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    pub(crate) text: String,
    pub(crate) labels: Vec<Label>,
    pub(crate) tolerated: Vec<&'static str>,
}

impl Doc {
    /// Appends unlabelled text.
    pub(crate) fn s(&mut self, t: &str) -> &mut Doc {
        self.text.push_str(t);
        self
    }

    /// Appends a value labelled `kind` (unlabelled if `kind` is `None`).
    pub(crate) fn v(&mut self, kind: Option<&str>, value: &str) -> &mut Doc {
        let start = self.text.len();
        self.text.push_str(value);
        if let Some(kind) = kind {
            self.labels.push(Label {
                kind: kind.to_owned(),
                span: Span::new(start, self.text.len()),
            });
        }
        self
    }
}

/// The families the corpus covers: one per built-in type, one for all
/// marking levels, and one per evaluation dictionary.
pub const FAMILIES: [&str; 31] = [
    "email",
    "phone",
    "payment_card",
    "iban",
    "us_ssn",
    "ip_address",
    "aws_access_key",
    "aws_secret_key",
    "gcp_api_key",
    "gcp_service_account",
    "google_oauth_secret",
    "azure_storage_key",
    "azure_connection_string",
    "azure_client_secret",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "stripe_key",
    "openai_key",
    "anthropic_key",
    "npm_token",
    "pypi_token",
    "sendgrid_key",
    "twilio_key",
    "private_key",
    "jwt",
    "generic_secret",
    "classification_marking",
    "customer_name",
    "project_codename",
];

/// The family a finding kind is counted under.
pub fn family_of(kind: &str) -> &str {
    if kind.starts_with("classification_") {
        "classification_marking"
    } else {
        kind
    }
}

/// The dictionaries the corpus's dictionary families are generated for.
pub fn dictionaries() -> Vec<Dictionary> {
    vec![
        Dictionary {
            name: "customer_name".into(),
            category: "customer".into(),
            terms: families::CUSTOMERS
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            case_sensitive: false,
        },
        Dictionary {
            name: "project_codename".into(),
            category: "project".into(),
            terms: families::CODENAMES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            case_sensitive: true,
        },
    ]
}

/// `positives` positives and `near_misses` near-misses for every family.
pub fn generate(seed: u64, positives: usize, near_misses: usize) -> Vec<Example> {
    let mut out = Vec::with_capacity(FAMILIES.len() * (positives + near_misses));
    for (i, family) in FAMILIES.iter().enumerate() {
        let mut rng = Rng::new(seed.wrapping_add(1000 * i as u64));
        for n in 0..positives + near_misses {
            let positive = n < positives;
            let doc = families::make(family, &mut rng, positive);
            out.push(Example {
                family,
                positive,
                text: doc.text,
                labels: doc.labels,
                tolerated: doc.tolerated,
            });
        }
    }
    out
}

/// Counts for one family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Findings that match a label.
    pub true_positives: usize,
    /// Findings that match none.
    pub false_positives: usize,
    /// Labels some finding matches.
    pub recalled: usize,
    /// Labels no finding matches.
    pub missed: usize,
}

impl Counts {
    /// True positives over all findings (1 if there were none).
    pub fn precision(&self) -> f64 {
        let found = self.true_positives + self.false_positives;
        if found == 0 {
            1.0
        } else {
            self.true_positives as f64 / found as f64
        }
    }

    /// Recalled labels over all labels (1 if there were none).
    pub fn recall(&self) -> f64 {
        let labels = self.recalled + self.missed;
        if labels == 0 {
            1.0
        } else {
            self.recalled as f64 / labels as f64
        }
    }

    fn add(&mut self, other: Counts) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.recalled += other.recalled;
        self.missed += other.missed;
    }
}

/// A false positive or a missed label, for inspection.
#[derive(Debug, Clone)]
pub struct Miss {
    /// The family it is counted under.
    pub family: String,
    /// `"false positive"` or `"missed"`.
    pub what: &'static str,
    /// The example's text.
    pub text: String,
    /// The span concerned.
    pub span: Span,
}

/// Scans every example and counts per family; also returns the errors.
pub fn evaluate(
    scanner: &SensitiveScanner,
    examples: &[Example],
) -> (BTreeMap<String, Counts>, Vec<Miss>) {
    let mut table: BTreeMap<String, Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    for ex in examples {
        let findings: Vec<(String, Span)> = scanner
            .scan(&ex.text)
            .into_iter()
            .filter_map(|f| match f.kind {
                FindingKind::Sensitive(kind) => Some((kind, f.span)),
                FindingKind::PromptInjection => None,
            })
            .collect();
        let overlaps = |a: Span, b: Span| a.start < b.end && b.start < a.end;
        for (kind, span) in &findings {
            let family = family_of(kind).to_owned();
            let matched = ex
                .labels
                .iter()
                .any(|l| &l.kind == kind && overlaps(l.span, *span));
            if matched {
                table.entry(family).or_default().true_positives += 1;
            } else if !ex.tolerated.contains(&kind.as_str()) {
                table.entry(family.clone()).or_default().false_positives += 1;
                misses.push(Miss {
                    family,
                    what: "false positive",
                    text: ex.text.clone(),
                    span: *span,
                });
            }
        }
        for label in &ex.labels {
            let family = family_of(&label.kind).to_owned();
            let found = findings
                .iter()
                .any(|(kind, span)| kind == &label.kind && overlaps(label.span, *span));
            if found {
                table.entry(family).or_default().recalled += 1;
            } else {
                table.entry(family.clone()).or_default().missed += 1;
                misses.push(Miss {
                    family,
                    what: "missed",
                    text: ex.text.clone(),
                    span: label.span,
                });
            }
        }
    }
    (table, misses)
}

/// The counts as a Markdown table, with an overall row.
pub fn markdown(table: &BTreeMap<String, Counts>) -> String {
    let mut out = String::from(
        "| type | labelled | recalled | findings | false positives | precision | recall |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut total = Counts::default();
    let row = |out: &mut String, name: &str, c: &Counts| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {:.4} | {:.4} |",
            c.recalled + c.missed,
            c.recalled,
            c.true_positives + c.false_positives,
            c.false_positives,
            c.precision(),
            c.recall()
        );
    };
    for family in FAMILIES {
        let c = table.get(family).copied().unwrap_or_default();
        row(&mut out, family, &c);
        total.add(c);
    }
    for (family, c) in table {
        if !FAMILIES.contains(&family.as_str()) {
            row(&mut out, family, c);
            total.add(*c);
        }
    }
    row(&mut out, "**overall**", &total);
    out
}

#[cfg(test)]
mod tests;

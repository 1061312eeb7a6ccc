//! Document classification markings: `TOP SECRET//NOFORN`, `CONFIDENTIAL`,
//! `INTERNAL USE ONLY`, `TLP:AMBER`, ….
//!
//! A marking is written in capitals, so the patterns are case-sensitive; they
//! are looked up at word starts with the credential prefixes
//! ([`super::credentials::at_word`]). Phrases that are
//! only ever markings (`TOP SECRET`, `STRICTLY CONFIDENTIAL`, `FOR OFFICIAL
//! USE ONLY`, `TLP:RED`, anything with `//` caveats) are reported wherever they
//! stand as words. Single words that also occur in shouted prose (`SECRET`,
//! `CONFIDENTIAL`, `RESTRICTED`, `CUI`, `INTERNAL ONLY`) are reported only
//! where markings are put: alone on a line or in a banner (`**CONFIDENTIAL**`,
//! `=== SECRET ===`), at a line's start before a separator (`CONFIDENTIAL -
//! do not forward`), at its end after one (`Page 3 | CONFIDENTIAL`), in
//! brackets (`[RESTRICTED] Q3 plan`), or as the value of a field such as
//! `Classification:`. The ordinary word in a sentence is never a marking.

use super::text::{before, is_word};
use super::types::Marking;
use super::{Hit, SensitiveType};

/// A marking phrase and whether it is unambiguous on its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct MarkingPattern {
    marking: Marking,
    strong: bool,
}

const fn strong(marking: Marking) -> MarkingPattern {
    MarkingPattern {
        marking,
        strong: true,
    }
}

const fn weak(marking: Marking) -> MarkingPattern {
    MarkingPattern {
        marking,
        strong: false,
    }
}

/// `TOP SECRET`.
pub(super) const TOP_SECRET: MarkingPattern = strong(Marking::TopSecret);
/// `SECRET`.
pub(super) const SECRET: MarkingPattern = weak(Marking::Secret);
/// `STRICTLY CONFIDENTIAL`.
pub(super) const STRICTLY_CONFIDENTIAL: MarkingPattern = strong(Marking::StrictlyConfidential);
/// `HIGHLY CONFIDENTIAL`.
pub(super) const HIGHLY_CONFIDENTIAL: MarkingPattern = strong(Marking::StrictlyConfidential);
/// `COMPANY CONFIDENTIAL`.
pub(super) const COMPANY_CONFIDENTIAL: MarkingPattern = strong(Marking::Confidential);
/// `CONFIDENTIAL`.
pub(super) const CONFIDENTIAL: MarkingPattern = weak(Marking::Confidential);
/// `RESTRICTED`.
pub(super) const RESTRICTED: MarkingPattern = weak(Marking::Restricted);
/// `CUI`.
pub(super) const CUI: MarkingPattern = weak(Marking::Cui);
/// `CONTROLLED UNCLASSIFIED INFORMATION`.
pub(super) const CONTROLLED_UNCLASSIFIED: MarkingPattern = strong(Marking::Cui);
/// `FOR OFFICIAL USE ONLY`.
pub(super) const FOR_OFFICIAL_USE_ONLY: MarkingPattern = strong(Marking::OfficialUseOnly);
/// `FOUO`.
pub(super) const FOUO: MarkingPattern = strong(Marking::OfficialUseOnly);
/// `FOR INTERNAL USE ONLY`.
pub(super) const FOR_INTERNAL_USE_ONLY: MarkingPattern = strong(Marking::InternalUseOnly);
/// `INTERNAL USE ONLY`.
pub(super) const INTERNAL_USE_ONLY: MarkingPattern = strong(Marking::InternalUseOnly);
/// `INTERNAL ONLY`.
pub(super) const INTERNAL_ONLY: MarkingPattern = weak(Marking::InternalUseOnly);
/// `TLP:RED`.
pub(super) const TLP_RED: MarkingPattern = strong(Marking::TlpRed);
/// `TLP:AMBER`.
pub(super) const TLP_AMBER: MarkingPattern = strong(Marking::TlpAmber);
/// `TLP: AMBER`.
pub(super) const TLP_AMBER_SPACED: MarkingPattern = strong(Marking::TlpAmber);
/// `TLP:GREEN`.
pub(super) const TLP_GREEN: MarkingPattern = strong(Marking::TlpGreen);

/// How far to look for a line's start or end.
const REACH: usize = 200;

/// Checks the marking phrase at `s..e`.
pub(super) fn check(bytes: &[u8], s: usize, e: usize, pattern: MarkingPattern) -> Option<Hit> {
    // A word of its own: not inside `CONFIDENTIALITY`, `NON-SECRET`, `SECRET_KEY`.
    if before(bytes, s).is_some_and(is_word) || bytes.get(e).is_some_and(|&b| is_word(b)) {
        return None;
    }
    if before(bytes, s) == Some(b'-') && s >= 2 && is_word(bytes[s - 2]) {
        return None;
    }
    if bytes.get(e) == Some(&b'-') && bytes.get(e + 1).is_some_and(|&b| is_word(b)) {
        return None;
    }
    let mut end = e;
    // Caveats: `SECRET//NOFORN`, `CUI//SP-PRVCY`, `TOP SECRET//SI//REL TO USA, FVEY`.
    while bytes[end..].starts_with(b"//") {
        let c_end = super::text::run(bytes, end + 2, 64, |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b' ' | b',' | b'-')
        });
        let mut c_end = c_end;
        while c_end > end + 2 && matches!(bytes[c_end - 1], b' ' | b',' | b'-') {
            c_end -= 1;
        }
        if c_end == end + 2 {
            break;
        }
        end = c_end;
    }
    if bytes[end..].starts_with(b"+STRICT") {
        end += 7;
    }
    // `SECRET=…`, `CONFIDENTIAL := …`: a variable, not a marking.
    let next = super::text::run(bytes, end, 4, |b| b == b' ');
    if matches!(bytes.get(next), Some(b'=' | b'(' | b'[')) && !bytes[next..].starts_with(b"==") {
        return None;
    }
    let caveated = end > e;
    let score = if pattern.strong || caveated {
        0.9
    } else {
        weak_context(bytes, s, end)?
    };
    Some(Hit::new(
        SensitiveType::Classification(pattern.marking),
        s,
        end,
        score,
        "marking",
    ))
}

/// Where a single-word marking stands as one: its confidence, or `None`.
fn weak_context(bytes: &[u8], s: usize, end: usize) -> Option<f32> {
    let left = strip_tags_end(&bytes[line_start(bytes, s)..s]);
    let right = strip_tags_start(&bytes[end..line_end(bytes, end)]);
    let left_deco = left.iter().all(|&b| deco(b));
    let right_deco = right.iter().all(|&b| deco(b));
    if left_deco && right_deco {
        return Some(0.9);
    }
    let left_trim = trim_end(left);
    let right_trim = trim_start(right);
    let right_sep = [
        &b"- "[..],
        b"--",
        b"\xe2\x80\x93",
        b"\xe2\x80\x94",
        b"|",
        b":",
        b"/",
        b"\xc2\xb7",
    ]
    .iter()
    .any(|p| right_trim.starts_with(p))
        || right_trim == b"-";
    let left_sep = [
        &b"-"[..],
        b"\xe2\x80\x93",
        b"\xe2\x80\x94",
        b"|",
        b"/",
        b"\xc2\xb7",
        b":",
    ]
    .iter()
    .any(|p| left_trim.ends_with(p));
    let bracketed = (left_trim.ends_with(b"[") && right_trim.starts_with(b"]"))
        || (left_trim.ends_with(b"(") && right_trim.starts_with(b")"));
    let accepted =
        (left_deco && right_sep) || (right_deco && left_sep) || bracketed || field_value(left_trim);
    accepted.then_some(0.8)
}

/// Whether `left` (trimmed) ends with `Classification:` or a similar field name.
fn field_value(left: &[u8]) -> bool {
    const FIELDS: [&[u8]; 9] = [
        b"classification",
        b"classified",
        b"marking",
        b"markings",
        b"security level",
        b"sensitivity",
        b"label",
        b"handling",
        b"clearance",
    ];
    let Some(head) = left.strip_suffix(b":").or_else(|| left.strip_suffix(b"=")) else {
        return false;
    };
    let head = trim_end(head);
    FIELDS.iter().any(|f| {
        head.len() >= f.len()
            && head[head.len() - f.len()..].eq_ignore_ascii_case(f)
            && !head
                .len()
                .checked_sub(f.len() + 1)
                .is_some_and(|i| head[i].is_ascii_alphabetic())
    })
}

/// Banner decoration: whitespace and punctuation (and anything non-ASCII,
/// such as dashes and bullets).
fn deco(b: u8) -> bool {
    b >= 0x80
        || matches!(
            b,
            b' ' | b'\t'
                | b'\r'
                | b'#'
                | b'*'
                | b'/'
                | b'='
                | b'_'
                | b'-'
                | b'|'
                | b'['
                | b']'
                | b'('
                | b')'
                | b'<'
                | b'>'
                | b'!'
                | b':'
                | b'\''
                | b'`'
                | b'~'
                | b'.'
                | b','
                | b'+'
                | b'{'
                | b'}'
        )
}

/// Trims whitespace, quotes and markup emphasis from the end.
fn trim_end(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && matches!(s[end - 1], b' ' | b'\t' | b'"' | b'\'' | b'*' | b'_' | b'`') {
        end -= 1;
    }
    &s[..end]
}

/// Trims whitespace, quotes and markup emphasis from the start.
fn trim_start(s: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < s.len() && matches!(s[start], b' ' | b'\t' | b'"' | b'\'' | b'*' | b'_' | b'`') {
        start += 1;
    }
    &s[start..]
}

/// Removes HTML tags at the end of `s` (`<div class="banner">`).
fn strip_tags_end(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let Some(open) = trim_end(s)
        .strip_suffix(b">")
        .and_then(|t| memchr::memrchr(b'<', t))
    {
        s = &s[..open];
    }
    s
}

/// Removes HTML tags at the start of `s` (`</div>`).
fn strip_tags_start(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let Some(close) = trim_start(s)
        .strip_prefix(b"<")
        .and_then(|t| memchr::memchr(b'>', t))
    {
        let skipped = s.len() - trim_start(s).len();
        s = &s[skipped + close + 2..];
    }
    s
}

/// The start of the line holding `s`: after a newline, an escaped `\n`, or
/// the opening quote of a JSON string value (`": "`).
fn line_start(bytes: &[u8], s: usize) -> usize {
    let from = s.saturating_sub(REACH);
    let mut i = s;
    while i > from {
        let b = bytes[i - 1];
        let escaped_newline = b == b'n' && i >= 2 && bytes[i - 2] == b'\\';
        let json_value = b == b'"' && trim_end(&bytes[from..i - 1]).ends_with(b":");
        if b == b'\n' || escaped_newline || json_value {
            return i;
        }
        i -= 1;
    }
    from
}

/// The end of the line holding `e`: a newline, an escaped `\n`, or the
/// closing quote of a JSON string value (`",` `"}`).
fn line_end(bytes: &[u8], e: usize) -> usize {
    let to = bytes.len().min(e + REACH);
    let mut i = e;
    while i < to {
        let b = bytes[i];
        let escaped_newline = b == b'\\' && bytes.get(i + 1) == Some(&b'n');
        let json_value = b == b'"'
            && matches!(
                trim_start(&bytes[i + 1..to]).first(),
                None | Some(b',' | b'}' | b']')
            );
        if b == b'\n' || escaped_newline || json_value {
            return i;
        }
        i += 1;
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;
    fn markings(text: &str) -> Vec<(String, &str)> {
        let mut hits = Vec::new();
        crate::sensitive::words::scan(text, None, &mut hits);
        hits.iter()
            .filter(|h| matches!(h.ty, SensitiveType::Classification(_)))
            .map(|h| (h.ty.name().to_owned(), &text[h.start..h.end]))
            .collect()
    }

    #[test]
    fn banners_headers_and_fields_are_markings() {
        for (text, kind, span) in [
            (
                "TOP SECRET//NOFORN\nBody",
                "classification_top_secret",
                "TOP SECRET//NOFORN",
            ),
            (
                "SECRET//REL TO USA, FVEY\n",
                "classification_secret",
                "SECRET//REL TO USA, FVEY",
            ),
            (
                "CONFIDENTIAL\n\nQ3 numbers",
                "classification_confidential",
                "CONFIDENTIAL",
            ),
            ("**RESTRICTED**", "classification_restricted", "RESTRICTED"),
            (
                "Page 3 of 9 | CONFIDENTIAL",
                "classification_confidential",
                "CONFIDENTIAL",
            ),
            (
                "CONFIDENTIAL - do not forward",
                "classification_confidential",
                "CONFIDENTIAL",
            ),
            ("Classification: SECRET", "classification_secret", "SECRET"),
            (
                r#"{"classification": "RESTRICTED"}"#,
                "classification_restricted",
                "RESTRICTED",
            ),
            (
                "[CONFIDENTIAL] Board deck",
                "classification_confidential",
                "CONFIDENTIAL",
            ),
            (
                "This memo is STRICTLY CONFIDENTIAL and",
                "classification_strictly_confidential",
                "STRICTLY CONFIDENTIAL",
            ),
            ("TLP:RED\n", "classification_tlp_red", "TLP:RED"),
            (
                "Shared under TLP:GREEN.",
                "classification_tlp_green",
                "TLP:GREEN",
            ),
            (
                "TLP:AMBER+STRICT",
                "classification_tlp_amber",
                "TLP:AMBER+STRICT",
            ),
            ("CUI//SP-PRVCY", "classification_cui", "CUI//SP-PRVCY"),
            (
                "FOR OFFICIAL USE ONLY",
                "classification_official_use_only",
                "FOR OFFICIAL USE ONLY",
            ),
            (
                "-- INTERNAL USE ONLY --",
                "classification_internal_use_only",
                "INTERNAL USE ONLY",
            ),
        ] {
            assert_eq!(markings(text), [(kind.to_owned(), span)], "{text}");
        }
    }

    #[test]
    fn ordinary_words_are_not_markings() {
        for text in [
            "Please keep this confidential.",
            "the secret to good bread",
            "Please keep this CONFIDENTIAL between us.",
            "CONFIDENTIAL information includes customer lists",
            "CONFIDENTIALITY AGREEMENT",
            "NON-CONFIDENTIAL",
            "AWS_SECRET_ACCESS_KEY",
            "Restricted access area",
            "a top secret recipe",
            "The CUI program office",
            "SECRET SANTA SIGNUPS ARE OPEN",
        ] {
            assert!(markings(text).is_empty(), "{text}: {:?}", markings(text));
        }
    }
}

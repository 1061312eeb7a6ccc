//! Phone numbers, matched against a cluster of digit groups.
//!
//! Accepted shapes, most certain first:
//!
//! - international: `+` (or `00`) and an assigned ITU country calling code,
//!   then 9–15 digits in all (E.164's maximum), in any grouping;
//!   `+44 (0)20 …` trunk prefixes are allowed; `+1` numbers must have a
//!   valid NANP area code and exchange;
//! - NANP: `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `415 555 2671`,
//!   optionally after a `1`;
//! - a parenthesised area code (`(02) 9876 5432`, `(11) 91234-5678`) and 10–11
//!   digits;
//! - a national trunk prefix `0` (`020 7946 0958`, `030/1234567`,
//!   `06 12 34 56 78`) and 10–11 digits, with one kind of separator, not
//!   shaped like a date.
//!
//! A run of digits without any separator or `+` is never a phone number here:
//! it is far more often an id, an amount or a timestamp.

use super::{Cluster, Digits, Sep};
use crate::sensitive::{Hit, SensitiveType};

/// A phone number starting at group `k`, and the group after it.
pub(super) fn phone(
    bytes: &[u8],
    c: &Cluster,
    k: usize,
    digits: &mut Digits,
) -> Option<(usize, Hit)> {
    let (e, score, rule) = if k == 0 && c.plus {
        international(bytes, c, false, digits)?
    } else if k == 0 && starts_with_00(bytes, c) {
        international(bytes, c, true, digits)?
    } else {
        nanp(bytes, c, k)
            .or_else(|| paren_area(bytes, c, k))
            .or_else(|| trunk(bytes, c, k))?
    };
    // Not a piece of a longer run of digit groups (`6223 9007 0222 8872 159`).
    if !(k == 0 && (c.plus || rule == "phone_international")) && embedded(c, k, e) {
        return None;
    }
    let start = c.window_start(k);
    Some((
        e,
        Hit::new(SensitiveType::Phone, start, c.window_end(e), score, rule),
    ))
}

/// Whether the window `k..e` continues a longer run of groups: a group of
/// three or more digits before or after it, set off the way its own groups are.
fn embedded(c: &Cluster, k: usize, e: usize) -> bool {
    let inner = if e > k + 1 { c.seps[k + 1] } else { Sep::Space };
    let inner = if inner == Sep::Close {
        Sep::Space
    } else {
        inner
    };
    let before = k > 0 && c.seps[k] == inner && c.groups[k - 1].len() >= 3;
    let after = e < c.n && c.seps[e] == inner && c.groups[e].len() >= 3;
    before || after
}

/// Whether the cluster starts with the `00` international prefix and a code.
fn starts_with_00(bytes: &[u8], c: &Cluster) -> bool {
    let g = c.groups[0];
    (3..=5).contains(&g.len())
        && c.n > 1
        && bytes[g.start..].starts_with(b"00")
        && bytes[g.start + 2] != b'0'
}

/// `+CC …` or `00CC …`.
fn international(
    bytes: &[u8],
    c: &Cluster,
    zero_zero: bool,
    digits: &mut Digits,
) -> Option<(usize, f32, &'static str)> {
    if c.groups[0].paren {
        return None;
    }
    let skip = if zero_zero { 2 } else { 0 };
    for e in (1..=c.n.min(8)).rev() {
        if !c.right_ok(bytes, e) {
            continue;
        }
        c.digits(bytes, 0, e, true, digits);
        let Some(all) = digits.get() else { continue };
        let d = &all[skip..];
        if !(9..=15).contains(&d.len()) {
            continue;
        }
        let first = c.groups[0].len() - skip;
        let cc_len = if e > 1 && (1..=3).contains(&first) {
            if !country_code_valid(&d[..first]) {
                return None;
            }
            first
        } else {
            country_code_len(d)?
        };
        let national = &d[cc_len..];
        if national.len() < 6 {
            continue;
        }
        if d[..cc_len] == [1] && !(national.len() == 10 && nanp_valid(national)) {
            continue;
        }
        // `0040-5096-5444-9158` is a number in groups of four, not a call.
        if zero_zero && e > 2 && c.groups[..e].iter().all(|g| g.len() == 4) {
            return None;
        }
        return Some(if zero_zero {
            (e, 0.8, "phone_international")
        } else {
            (e, 0.9, "phone_e164")
        });
    }
    None
}

/// `(415) 555-2671`, `415-555-2671`, `1-800-555-0199`, `415.555.2671`, `415 555 2671`.
fn nanp(bytes: &[u8], c: &Cluster, k: usize) -> Option<(usize, f32, &'static str)> {
    let mut j = k;
    let mut lead = None;
    if c.groups[j].len() == 1 && bytes[c.groups[j].start] == b'1' && j + 1 < c.n {
        lead = Some(c.seps[j + 1]);
        j += 1;
    }
    if j + 3 > c.n {
        return None;
    }
    let (area, exchange, line) = (c.groups[j], c.groups[j + 1], c.groups[j + 2]);
    if area.len() != 3 || exchange.len() != 3 || line.len() != 4 || exchange.paren || line.paren {
        return None;
    }
    let (s1, s2) = (c.seps[j + 1], c.seps[j + 2]);
    let score = if area.paren {
        if s1 != Sep::Close || !matches!(s2, Sep::Dash | Sep::Space | Sep::Dot) {
            return None;
        }
        0.8
    } else {
        match (s1, s2) {
            (Sep::Dash, Sep::Dash) => 0.75,
            (Sep::Dot, Sep::Dot) => 0.7,
            (Sep::Space, Sep::Dash) => 0.65,
            (Sep::Space, Sep::Space) => 0.6,
            _ => return None,
        }
    };
    if let Some(lead) = lead {
        let fits = if area.paren {
            matches!(lead, Sep::Open)
        } else {
            lead == s1 || (lead == Sep::Dash && s1 == Sep::Dash)
        };
        if !fits {
            return None;
        }
    }
    let first_digit = |g: super::Group| bytes[g.start] - b'0';
    if !(2..=9).contains(&first_digit(area)) || !(2..=9).contains(&first_digit(exchange)) {
        return None;
    }
    let e = j + 3;
    c.right_ok(bytes, e).then_some((e, score, "phone_nanp"))
}

/// `(02) 9876 5432`, `(030) 1234567`, `(11) 91234-5678`.
fn paren_area(bytes: &[u8], c: &Cluster, k: usize) -> Option<(usize, f32, &'static str)> {
    let area = c.groups[k];
    if !area.paren || !(2..=5).contains(&area.len()) || k + 1 >= c.n {
        return None;
    }
    let mut total = area.len();
    for e in k + 1..c.n.min(k + 5) {
        let g = c.groups[e];
        if g.paren || !(2..=8).contains(&g.len()) {
            return None;
        }
        if e > k + 1 && !matches!(c.seps[e], Sep::Space | Sep::Dash | Sep::Dot) {
            return None;
        }
        total += g.len();
        if total > 11 {
            return None;
        }
        if total >= 10 && c.right_ok(bytes, e + 1) {
            return Some((e + 1, 0.7, "phone_national"));
        }
    }
    None
}

/// `020 7946 0958`, `030/1234567`, `06 12 34 56 78`, `0171-1234567`.
fn trunk(bytes: &[u8], c: &Cluster, k: usize) -> Option<(usize, f32, &'static str)> {
    let first = c.groups[k];
    if first.paren
        || !(2..=5).contains(&first.len())
        || bytes[first.start] != b'0'
        || bytes[first.start + 1] == b'0'
        || k + 1 >= c.n
    {
        return None;
    }
    let sep = c.seps[k + 1];
    if !matches!(sep, Sep::Space | Sep::Dash | Sep::Dot | Sep::Slash) {
        return None;
    }
    // Groups of three or more digits (`020 7946 0958`, `090-1234-5678`), or
    // the French pairs (`06 12 34 56 78`).
    let pairs =
        first.len() == 2 && k + 5 <= c.n && c.groups[k + 1..k + 5].iter().all(|g| g.len() == 2);
    let mut total = first.len();
    for e in k + 1..c.n.min(k + 6) {
        let g = c.groups[e];
        let size_ok = if pairs {
            g.len() == 2
        } else {
            (3..=8).contains(&g.len())
        };
        if g.paren || c.seps[e] != sep || !size_ok {
            return None;
        }
        total += g.len();
        if total > 11 {
            return None;
        }
        if total >= 10 && c.right_ok(bytes, e + 1) && !date_like(bytes, c, k, e + 1) {
            return Some((e + 1, 0.65, "phone_national"));
        }
    }
    None
}

/// Whether groups `k..e` contain a date: `dd-mm-yyyy` or `yyyy-mm-dd` (any
/// one separator).
fn date_like(bytes: &[u8], c: &Cluster, k: usize, e: usize) -> bool {
    let year = |g: super::Group| {
        g.len() == 4 && (bytes[g.start..].starts_with(b"19") || bytes[g.start..].starts_with(b"20"))
    };
    (k..e.saturating_sub(2)).any(|i| {
        let (a, b, d) = (c.groups[i], c.groups[i + 1], c.groups[i + 2]);
        let small = |g: super::Group| g.len() <= 2;
        (small(a) && small(b) && year(d)) || (year(a) && small(b) && small(d))
    })
}

/// Whether a 10-digit NANP number has a valid area code and exchange
/// (neither starts with 0 or 1).
fn nanp_valid(d: &[u8]) -> bool {
    d.len() == 10 && (2..=9).contains(&d[0]) && (2..=9).contains(&d[3])
}

/// Two-digit ITU-T E.164 country calling codes.
const CC2: [u8; 44] = [
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];

/// First two digits of the three-digit country calling codes.
const CC3_ZONES: [u8; 23] = [
    21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99,
];

/// Whether `d` (1–3 digit values) is an assigned country calling code.
fn country_code_valid(d: &[u8]) -> bool {
    match d {
        [1] | [7] => true,
        [a, b] => CC2.contains(&(a * 10 + b)),
        [a, b, _] => CC3_ZONES.contains(&(a * 10 + b)),
        _ => false,
    }
}

/// The length of the country calling code at the start of `d`: E.164 codes
/// are a prefix code, so the first digits decide it.
fn country_code_len(d: &[u8]) -> Option<usize> {
    match d {
        [1 | 7, ..] => Some(1),
        [a, b, ..] if CC2.contains(&(a * 10 + b)) => Some(2),
        [a, b, _, ..] if CC3_ZONES.contains(&(a * 10 + b)) => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    fn phones(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        crate::sensitive::words::scan(text, None, &mut hits);
        hits.iter()
            .filter(|h| h.ty.name() == "phone")
            .map(|h| &text[h.start..h.end])
            .collect()
    }

    #[test]
    fn international_and_national_formats_are_found() {
        for (text, want) in [
            ("Call +1 415-555-2671 now", "+1 415-555-2671"),
            ("tel:+14155552671", "+14155552671"),
            ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
            ("+44 20 7946 0958.", "+44 20 7946 0958"),
            ("+49 30 12345678", "+49 30 12345678"),
            ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
            ("+91 98765 43210", "+91 98765 43210"),
            ("0044 20 7946 0958", "0044 20 7946 0958"),
            ("(415) 555-2671", "(415) 555-2671"),
            ("at 415.555.2671", "415.555.2671"),
            ("1-800-555-0199", "1-800-555-0199"),
            ("020 7946 0958", "020 7946 0958"),
            ("030/1234567", "030/1234567"),
            ("06 12 34 56 78", "06 12 34 56 78"),
            ("(02) 9876 5432", "(02) 9876 5432"),
            ("(11) 91234-5678", "(11) 91234-5678"),
            ("03-1234-5678", "03-1234-5678"),
        ] {
            assert_eq!(phones(text), [want], "{text}");
        }
    }

    #[test]
    fn dates_versions_ids_and_amounts_are_not_phones() {
        for t in [
            "2024-03-15",
            "15.03.2024 10:30",
            "03/15/2024",
            "05-06-2024 1234",
            "1.24.3",
            "ORD-2024-0057731",
            "id 4155552671",
            "1710499200",
            "94105-1234",
            "978-3-16-148410-0",
            "+1 123 456 7890",
            "+100 200 300 400",
            "555-1234",
            "pages 120-145",
            "4111 1111 1111 1112",
            "6223 9007 0222 8872 159",
        ] {
            assert!(phones(t).is_empty(), "{t}: {:?}", phones(t));
        }
    }
}

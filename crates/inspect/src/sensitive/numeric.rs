//! Numbers: payment cards, phone numbers, US SSNs and IPv4 addresses.
//!
//! The word pass ([`super::words`]) calls [`cluster_at`] where a word starts
//! with a digit (or a `+`/`(` comes before one). That begins a *cluster*: digit groups joined
//! by single separators (space, `-`, `.`, `/`, parentheses), such as
//! `+44 (0)20 7946 0958` or `4111-1111-1111-1111`. Most numbers in prose, JSON
//! and logs are short single groups and are dropped at once; a cluster that
//! could hold something is matched group by group against the shapes of the
//! types (IPv4, card, SSN, phone, in that order) and validated by hand: Luhn
//! and issuer ranges for cards, the SSA's area/group/serial rules for SSNs,
//! country calling codes and national shapes for phones. Numbers glued to a
//! word (`v1.2.3.4`, `ORD-2024-0001`, `id42`) are skipped whole ([`glued`]).

mod phone;

use super::network::ipv4_score;
use super::text::{before, is_word, run};
use super::{Hit, SensitiveType};

/// The most groups a cluster holds; longer runs of numbers are cut (the
/// longest shape, a phone number in pairs, has seven).
const MAX_GROUPS: usize = 8;
/// The longest digit group worth reading (a card number is at most 19).
const MAX_GROUP_LEN: usize = 24;

/// What separates a digit group from the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// The first group.
    Start,
    /// One space.
    Space,
    /// `-`.
    Dash,
    /// `.`.
    Dot,
    /// `/`.
    Slash,
    /// After a parenthesised group: `)`, `) `, `)-`, `).`.
    Close,
    /// Before a parenthesised group: `(` or ` (`.
    Open,
}

/// One run of digits.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    /// Written in parentheses (`(415)`, `(0)`).
    paren: bool,
}

impl Group {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// Digit groups joined by single separators.
#[derive(Debug)]
struct Cluster {
    /// The first byte: a digit, or the `+` or `(` before one.
    start: usize,
    /// Starts with `+`.
    plus: bool,
    groups: [Group; MAX_GROUPS],
    /// `seps[i]` is the separator before group `i`.
    seps: [Sep; MAX_GROUPS],
    n: usize,
}

impl Cluster {
    /// Where a window starting at group `k` begins, with its `+` or `(`.
    fn window_start(&self, k: usize) -> usize {
        if k == 0 {
            self.start
        } else if self.groups[k].paren {
            self.groups[k].start - 1
        } else {
            self.groups[k].start
        }
    }

    /// The end of group `e - 1`, the end of a window `k..e`.
    fn window_end(&self, e: usize) -> usize {
        self.groups[e - 1].end
    }

    /// The digits of groups `k..e`, skipping a parenthesised lone `0` (the
    /// trunk prefix in `+44 (0)20 …`) when `skip_trunk`.
    fn digits(&self, bytes: &[u8], k: usize, e: usize, skip_trunk: bool, out: &mut Digits) {
        out.len = 0;
        for g in &self.groups[k..e] {
            let d = &bytes[g.start..g.end];
            if skip_trunk && g.paren && d == b"0" {
                continue;
            }
            for &b in d {
                if out.len < out.buf.len() {
                    out.buf[out.len] = b - b'0';
                }
                out.len += 1;
            }
        }
    }

    /// Whether a window `k..e` may end at `e`: the next group is set off by a
    /// space, or after the last group comes nothing that continues the token.
    fn right_ok(&self, bytes: &[u8], e: usize) -> bool {
        if e < self.n {
            return matches!(self.seps[e], Sep::Space | Sep::Open);
        }
        let end = self.window_end(e);
        match bytes.get(end) {
            None => true,
            Some(&b) if is_word(b) || b == b'@' => false,
            Some(b'.' | b'-' | b'/' | b':') => !bytes.get(end + 1).is_some_and(|b| is_word(*b)),
            Some(_) => true,
        }
    }

    /// Whether the separators before groups `k+1..e` are all `sep`.
    fn seps_all(&self, k: usize, e: usize, sep: Sep) -> bool {
        self.seps[k + 1..e].iter().all(|&s| s == sep)
    }

    /// Whether any group in `k..e` is parenthesised.
    fn any_paren(&self, k: usize, e: usize) -> bool {
        self.groups[k..e].iter().any(|g| g.paren)
    }
}

/// Up to 24 decimal digits (values 0–9) and how many there were in all.
#[derive(Debug, Default)]
struct Digits {
    buf: [u8; 24],
    len: usize,
}

impl Digits {
    /// The digits, if they all fit.
    fn get(&self) -> Option<&[u8]> {
        self.buf.get(..self.len)
    }
}

/// Whether the number starting at `i` continues a token before it:
/// `v1.2`, `ORD-2024`, `a.1`.
pub(super) fn glued(bytes: &[u8], i: usize) -> bool {
    matches!(before(bytes, i), Some(b'.' | b'-')) && i >= 2 && is_word(bytes[i - 2])
}

/// Reads the cluster starting at `p` (a digit, or `+`/`(` before one),
/// reports what it holds, and returns its end.
pub(super) fn cluster_at(bytes: &[u8], p: usize, out: &mut Vec<Hit>) -> usize {
    // Most numbers are one short group (`"id":4821,`, `12:30`): nothing to
    // parse.
    let first_end = run(bytes, p, 9, |b| b.is_ascii_digit());
    if first_end > p
        && first_end - p < 9
        && !matches!(
            bytes.get(first_end),
            Some(b' ' | b'-' | b'.' | b'/' | b'(' | b')')
        )
    {
        return first_end;
    }
    // An ISO 8601 date (`2024-05-14`, in nearly every log line and JSON
    // record) holds none of the types.
    if first_end - p == 4 && iso_date(bytes, p) {
        return p + 10;
    }
    let c = parse(bytes, p);
    if c.n == 0 {
        return p + 1;
    }
    let total: usize = c.groups[..c.n].iter().map(|g| g.len()).sum();
    // Nothing we look for has fewer than 9 digits except an IPv4 address,
    // which has four groups.
    if total < 9 && c.n < 4 {
        return c.window_end(c.n);
    }
    let mut digits = Digits::default();
    let mut k = 0;
    while k < c.n {
        if k > 0 && !matches!(c.seps[k], Sep::Space | Sep::Open) {
            k += 1;
            continue;
        }
        let found = ipv4(bytes, &c, k)
            .or_else(|| card(bytes, &c, k, &mut digits))
            .or_else(|| ssn(bytes, &c, k, &mut digits))
            .or_else(|| phone::phone(bytes, &c, k, &mut digits));
        match found {
            Some((e, hit)) => {
                out.push(hit);
                k = e;
            }
            None => k += 1,
        }
    }
    c.window_end(c.n)
}

/// Whether `yyyy-mm-dd` (19xx or 20xx, not followed by another digit) starts at `p`.
fn iso_date(bytes: &[u8], p: usize) -> bool {
    let Some(d) = bytes.get(p..p + 10) else {
        return false;
    };
    let digit = |i: usize| d[i].is_ascii_digit();
    (d.starts_with(b"19") || d.starts_with(b"20"))
        && digit(2)
        && digit(3)
        && d[4] == b'-'
        && digit(5)
        && digit(6)
        && d[7] == b'-'
        && digit(8)
        && digit(9)
        && !bytes.get(p + 10).is_some_and(u8::is_ascii_digit)
}

/// Parses the cluster at `p` (a digit, or `+`/`(` before a digit).
fn parse(bytes: &[u8], p: usize) -> Cluster {
    let mut c = Cluster {
        start: p,
        plus: false,
        groups: [Group::default(); MAX_GROUPS],
        seps: [Sep::Start; MAX_GROUPS],
        n: 0,
    };
    let mut i = p;
    if bytes.get(i) == Some(&b'+') {
        c.plus = true;
        i += 1;
    }
    let mut open = false;
    if bytes.get(i) == Some(&b'(') {
        open = true;
        i += 1;
    }
    let mut sep = Sep::Start;
    loop {
        let end = run(bytes, i, MAX_GROUP_LEN + 1, |b| b.is_ascii_digit());
        if end == i {
            break;
        }
        let mut group = Group {
            start: i,
            end,
            paren: false,
        };
        let mut next: Option<(Sep, usize, bool)> = None;
        if open {
            if bytes.get(end) == Some(&b')') {
                group.paren = true;
                let after = bytes.get(end + 1).copied();
                let after2 = bytes.get(end + 2).copied();
                if after.is_some_and(|b| b.is_ascii_digit()) {
                    next = Some((Sep::Close, end + 1, false));
                } else if matches!(after, Some(b' ' | b'-' | b'.'))
                    && after2.is_some_and(|b| b.is_ascii_digit())
                {
                    next = Some((Sep::Close, end + 2, false));
                }
            } else if c.n == 0 && !c.plus {
                // An unclosed `(` is punctuation before the number.
                c.start = i;
            } else {
                // An unclosed `(` inside: the cluster ends before it.
                break;
            }
        } else {
            let b1 = bytes.get(end).copied();
            let b2 = bytes.get(end + 1).copied();
            let b3 = bytes.get(end + 2).copied();
            let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
            next = match (b1, b2) {
                (Some(b' '), Some(b'(')) if digit(b3) => Some((Sep::Open, end + 2, true)),
                (Some(b'('), _) if digit(b2) => Some((Sep::Open, end + 1, true)),
                (Some(b' '), _) if digit(b2) => Some((Sep::Space, end + 1, false)),
                (Some(b'-'), _) if digit(b2) => Some((Sep::Dash, end + 1, false)),
                (Some(b'.'), _) if digit(b2) => Some((Sep::Dot, end + 1, false)),
                (Some(b'/'), _) if digit(b2) => Some((Sep::Slash, end + 1, false)),
                _ => None,
            };
        }
        c.groups[c.n] = group;
        c.seps[c.n] = sep;
        c.n += 1;
        match next {
            Some((s, at, opens)) if c.n < MAX_GROUPS => {
                sep = s;
                i = at;
                open = opens;
            }
            _ => break,
        }
    }
    c
}

/// An IPv4 address: four dot-separated octets at `k`.
fn ipv4(bytes: &[u8], c: &Cluster, k: usize) -> Option<(usize, Hit)> {
    let e = k + 4;
    if e > c.n || (k == 0 && c.plus) || c.any_paren(k, e) || !c.seps_all(k, e, Sep::Dot) {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, g) in octets.iter_mut().zip(&c.groups[k..e]) {
        let d = &bytes[g.start..g.end];
        if d.len() > 3 || (d.len() > 1 && d[0] == b'0') {
            return None;
        }
        let v = d
            .iter()
            .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'));
        *o = u8::try_from(v).ok()?;
    }
    // A port (`:8080`) or prefix length (`/24`) may follow; another group may not.
    let ok = if e < c.n {
        matches!(c.seps[e], Sep::Space | Sep::Slash | Sep::Open)
    } else {
        match bytes.get(c.window_end(e)) {
            None => true,
            Some(&b) if is_word(b) || b == b'@' => false,
            Some(b'.' | b'-') => !bytes.get(c.window_end(e) + 1).is_some_and(|b| is_word(*b)),
            Some(_) => true,
        }
    };
    if !ok {
        return None;
    }
    let (score, rule) = ipv4_score(octets)?;
    let start = c.window_start(k);
    Some((
        e,
        Hit::new(
            SensitiveType::IpAddress,
            start,
            c.window_end(e),
            score,
            rule,
        ),
    ))
}

/// A payment card number at `k`: 13–19 digits, either one run or groups of
/// four (the last shorter) or 4-6-5/4-6-4 (Amex, Diners) set off by spaces or
/// dashes, Luhn-valid, with a known issuer prefix and a length that issuer uses.
fn card(bytes: &[u8], c: &Cluster, k: usize, digits: &mut Digits) -> Option<(usize, Hit)> {
    if k == 0 && c.plus {
        return None;
    }
    let max_e = (k + 6).min(c.n);
    for e in (k + 1..=max_e).rev() {
        let total: usize = c.groups[k..e].iter().map(|g| g.len()).sum();
        if !(13..=19).contains(&total) || c.any_paren(k, e) {
            continue;
        }
        let parts = e - k;
        if parts > 1 {
            let sep = c.seps[k + 1];
            if !matches!(sep, Sep::Space | Sep::Dash) || !c.seps_all(k, e, sep) {
                continue;
            }
            let sizes = || c.groups[k..e].iter().map(|g| g.len());
            let fours =
                sizes().take(parts - 1).all(|l| l == 4) && (1..=4).contains(&c.groups[e - 1].len());
            let amex = parts == 3
                && c.groups[k].len() == 4
                && c.groups[k + 1].len() == 6
                && (4..=5).contains(&c.groups[k + 2].len());
            if !(fours || amex) {
                continue;
            }
            // Not cut out of a longer number written in the same groups.
            let longer_before = k > 0 && c.seps[k] == sep && c.groups[k - 1].len() == 4;
            // (An expiry date may follow: `4111 1111 1111 1111 09/27`.)
            let expiry = e + 1 < c.n && c.seps[e + 1] == Sep::Slash;
            let longer_after = e < c.n && c.seps[e] == sep && c.groups[e].len() <= 4 && !expiry;
            if longer_before || longer_after {
                continue;
            }
        }
        if !c.right_ok(bytes, e) {
            continue;
        }
        c.digits(bytes, k, e, false, digits);
        let Some(d) = digits.get() else { continue };
        if card_number_valid(d) {
            let score = if parts == 1 && total > 16 { 0.7 } else { 0.95 };
            let start = c.window_start(k);
            return Some((
                e,
                Hit::new(
                    SensitiveType::PaymentCard,
                    start,
                    c.window_end(e),
                    score,
                    "luhn",
                ),
            ));
        }
    }
    None
}

/// Whether `d` (digit values) is a Luhn-valid number with a known issuer
/// prefix and a length that issuer uses.
pub(super) fn card_number_valid(d: &[u8]) -> bool {
    let len = d.len();
    if !(13..=19).contains(&len) || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let prefix = |n: usize| d[..n].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let known = match d[0] {
        // Visa.
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard.
        5 => (51..=55).contains(&p2) && len == 16,
        2 => (2221..=2720).contains(&p4) && len == 16,
        // Amex, JCB, Diners Club.
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || ((3528..=3589).contains(&p4) && len >= 16)
                || ((p2 == 36 || p2 == 38 || (300..=305).contains(&p3)) && len >= 14)
        }
        // Discover, UnionPay.
        6 => (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || p2 == 62) && len >= 16,
        _ => false,
    };
    known && luhn(d)
}

/// The Luhn (mod 10) check over digit values.
pub(super) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A US SSN at `k`: `AAA-GG-SSSS` or `AAA GG SSSS`, or nine digits in a row
/// right after a word such as "SSN" or "social security".
fn ssn(bytes: &[u8], c: &Cluster, k: usize, digits: &mut Digits) -> Option<(usize, Hit)> {
    if k == 0 && c.plus {
        return None;
    }
    let start = c.window_start(k);
    if k + 3 <= c.n && !c.any_paren(k, k + 3) {
        let sizes = [
            c.groups[k].len(),
            c.groups[k + 1].len(),
            c.groups[k + 2].len(),
        ];
        let sep = c.seps[k + 1];
        if sizes == [3, 2, 4]
            && matches!(sep, Sep::Dash | Sep::Space)
            && c.seps[k + 2] == sep
            && c.right_ok(bytes, k + 3)
        {
            c.digits(bytes, k, k + 3, false, digits);
            if digits.get().is_some_and(ssn_valid) {
                let mut score: f32 = if sep == Sep::Dash { 0.85 } else { 0.6 };
                if ssn_context(bytes, start) {
                    score += 0.1;
                }
                let end = c.window_end(k + 3);
                return Some((
                    k + 3,
                    Hit::new(SensitiveType::UsSsn, start, end, score, "ssn_rules"),
                ));
            }
        }
    }
    if c.groups[k].len() == 9 && !c.groups[k].paren && c.right_ok(bytes, k + 1) {
        c.digits(bytes, k, k + 1, false, digits);
        if digits.get().is_some_and(ssn_valid) && ssn_context(bytes, start) {
            let end = c.window_end(k + 1);
            return Some((
                k + 1,
                Hit::new(SensitiveType::UsSsn, start, end, 0.8, "ssn_keyword"),
            ));
        }
    }
    None
}

/// The SSA's rules for an issued number: area not 000, 666 or 900–999,
/// group not 00, serial not 0000.
pub(super) fn ssn_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Whether a word naming an SSN comes shortly before `start`.
fn ssn_context(bytes: &[u8], start: usize) -> bool {
    const WORDS: [&[u8]; 5] = [
        b"ssn",
        b"social security",
        b"social_security",
        b"soc sec",
        b"ss#",
    ];
    let from = start.saturating_sub(40);
    let mut buf = [0u8; 40];
    let window = &bytes[from..start];
    for (d, s) in buf.iter_mut().zip(window) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &buf[..window.len()];
    WORDS.iter().any(|w| {
        memchr::memmem::find_iter(lower, w)
            .any(|at| at == 0 || !lower[at - 1].is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, &str)> {
        let mut hits = Vec::new();
        crate::sensitive::words::scan(text, None, &mut hits);
        hits.iter()
            .map(|h| (h.ty.name().to_owned(), &text[h.start..h.end]))
            .collect()
    }

    fn kinds(text: &str, kind: &str) -> Vec<String> {
        found(text)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.to_owned())
            .collect()
    }

    #[test]
    fn card_numbers_in_common_layouts_are_found() {
        assert_eq!(
            kinds("card 4111 1111 1111 1111 exp 09/27", "payment_card"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            kinds("card 4111 1111 1111 1111 09/27", "payment_card"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            kinds(r#"{"pan":"5500-0000-0000-0004"}"#, "payment_card"),
            ["5500-0000-0000-0004"]
        );
        assert_eq!(
            kinds("amex 3782 822463 10005.", "payment_card"),
            ["3782 822463 10005"]
        );
        assert_eq!(
            kinds("pan=6011111111111117,", "payment_card"),
            ["6011111111111117"]
        );
        assert_eq!(
            kinds("mc 2223 0000 4841 0010", "payment_card"),
            ["2223 0000 4841 0010"]
        );
    }

    #[test]
    fn card_near_misses_are_not_cards() {
        for t in [
            "4111 1111 1111 1112",        // Luhn
            "1234 5678 9012 3452",        // unknown issuer (Luhn-valid)
            "3400 0000 0000 0009",        // Amex prefix, 16 digits
            "4111 1111 1111",             // too short
            "id 41111111111111111111111", // too long
            "ORD-4111111111111111",       // glued to a word
            "4111.1111.1111.1111",        // dots
            "6255 2368 2712 9957 5",      // 17 digits, not 16 and one
        ] {
            assert!(kinds(t, "payment_card").is_empty(), "{t}");
        }
    }

    #[test]
    fn ssns_follow_the_ssa_rules() {
        assert_eq!(kinds("SSN: 123-45-6789", "us_ssn"), ["123-45-6789"]);
        assert_eq!(kinds("ssn 123 45 6789", "us_ssn"), ["123 45 6789"]);
        assert_eq!(kinds(r#""ssn": "078051120""#, "us_ssn"), ["078051120"]);
        for t in [
            "666-12-3456",
            "000-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "order 123456789",
            "123-45-67890",
            "classname 123456789",
        ] {
            assert!(kinds(t, "us_ssn").is_empty(), "{t}");
        }
    }

    #[test]
    fn ipv4_addresses_are_found_and_version_strings_are_not() {
        assert_eq!(
            kinds("from 203.0.113.9 port 22", "ip_address"),
            ["203.0.113.9"]
        );
        assert_eq!(kinds("http://10.0.0.1:8080/x", "ip_address"), ["10.0.0.1"]);
        assert_eq!(kinds("net 192.168.1.0/24.", "ip_address"), ["192.168.1.0"]);
        for t in [
            "256.1.1.1",
            "1.2.3.4.5",
            "v1.2.3.4",
            "10.0.0",
            "mask 255.255.255.0",
            "1.02.3.4",
            "version 10.0.19041.1",
        ] {
            assert!(kinds(t, "ip_address").is_empty(), "{t}");
        }
    }

    #[test]
    fn luhn_matches_known_values() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }
}

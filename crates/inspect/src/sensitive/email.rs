//! E-mail addresses: found from each `@` (located with `memchr`), then
//! validated by hand: a dot-atom local part, and a domain of at least two
//! labels whose last is alphabetic and at least two letters long, so that
//! `user@localhost`, `x@10.0.0.1`, `lodash@4.17.21` and `@handle` are not
//! addresses. Image names such as `icon@2x.png` are rejected by their
//! file-extension "TLD".

use super::text::before;
use super::{Hit, SensitiveType};

/// The longest local part RFC 5321 allows.
const MAX_LOCAL: usize = 64;
/// The longest domain RFC 5321 allows.
const MAX_DOMAIN: usize = 253;

/// File extensions that follow an `@` in asset names (`logo@2x.png`); none is
/// a top-level domain.
const FILE_EXTENSIONS: [&[u8]; 14] = [
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"css", b"js", b"json",
    b"txt", b"pdf", b"tiff",
];

/// Every e-mail address in `bytes`.
pub(super) fn scan(bytes: &[u8], out: &mut Vec<Hit>) {
    let mut next_free = 0;
    for at in memchr::memchr_iter(b'@', bytes) {
        if at < next_free {
            continue;
        }
        if let Some((start, end)) = address_at(bytes, at) {
            out.push(Hit::new(SensitiveType::Email, start, end, 0.95, "email"));
            next_free = end;
        }
    }
}

/// `[A-Za-z0-9._%+-]` plus the other atext characters that appear in practice.
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

/// The address around the `@` at `at`, as a byte range.
fn address_at(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    // Local part: back from the `@`.
    let mut start = at;
    while start > 0 && at - start < MAX_LOCAL + 1 && is_local(bytes[start - 1]) {
        start -= 1;
    }
    // A leading quote or dot is punctuation around the address, not part of it.
    while start < at && matches!(bytes[start], b'.' | b'\'' | b'-' | b'+') {
        start += 1;
    }
    let local = &bytes[start..at];
    if local.is_empty() || local.len() > MAX_LOCAL {
        return None;
    }
    if local.last() == Some(&b'.') || local.windows(2).any(|w| w == b"..") {
        return None;
    }
    if !local.iter().any(u8::is_ascii_alphanumeric) {
        return None;
    }
    // Preceded by something that glues it to a longer token (`a@b@c.com`,
    // a non-ASCII letter)?
    if let Some(p) = before(bytes, start)
        && (p == b'@' || p >= 0x80)
    {
        return None;
    }

    // `scheme://user:password@host` and `scheme://token@host` are URLs with
    // credentials, not addresses.
    if bytes[..start].ends_with(b"//")
        || (before(bytes, start) == Some(b':') && in_url(bytes, start))
    {
        return None;
    }

    // Domain: labels of `[A-Za-z0-9-]` separated by single dots.
    let domain_start = at + 1;
    let mut i = domain_start;
    let mut labels = 0usize;
    let mut last_label;
    loop {
        let label_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
            i += 1;
        }
        let label = &bytes[label_start..i];
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
        labels += 1;
        last_label = (label_start, i);
        // INVARIANT: the loop only goes on over `.` followed by a label byte,
        // so a trailing dot (end of sentence) is never part of the domain.
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        break;
    }
    let end = last_label.1;
    if labels < 2 || end - domain_start > MAX_DOMAIN {
        return None;
    }
    // What follows must not continue the token (`a@b.com@c`, `a@b.com_x`).
    if let Some(&b) = bytes.get(end)
        && (b == b'@' || b == b'_' || b >= 0x80)
    {
        return None;
    }
    let tld = &bytes[last_label.0..last_label.1];
    if tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut lower = [0u8; 8];
    if tld.len() <= lower.len() {
        for (d, s) in lower.iter_mut().zip(tld) {
            *d = s.to_ascii_lowercase();
        }
        if FILE_EXTENSIONS.contains(&&lower[..tld.len()]) {
            return None;
        }
    }
    Some((start, end))
}

/// Whether the token that ends at `i` (just after a `:`) holds a `://`.
fn in_url(bytes: &[u8], i: usize) -> bool {
    let from = i.saturating_sub(256);
    let token = &bytes[from..i];
    let token_start = token
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'('))
        .map_or(0, |p| p + 1);
    memchr::memmem::find(&token[token_start..], b"://").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        scan(text.as_bytes(), &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn addresses_in_prose_json_and_angle_brackets_are_found() {
        assert_eq!(
            found("Mail jane.doe@example.com."),
            ["jane.doe@example.com"]
        );
        assert_eq!(
            found(r#"{"email":"J.Smith+billing@mail.acme.co.uk"}"#),
            ["J.Smith+billing@mail.acme.co.uk"]
        );
        assert_eq!(
            found("From: Ann <ann_o-neil@corp.io>"),
            ["ann_o-neil@corp.io"]
        );
        assert_eq!(found("mailto:bob@x.org?subject=hi"), ["bob@x.org"]);
    }

    #[test]
    fn near_misses_are_not_addresses() {
        for t in [
            "foo@bar",
            "user@localhost",
            "@handle says hi",
            "x@1.2.3.4",
            "lodash@4.17.21",
            "logo@2x.png",
            "a@b.c",
            "first..last@example.com",
            "user@@example.com",
            "name@domain.",
            "@scope/package",
            "https://admin:hunter2@db.example.com/",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}

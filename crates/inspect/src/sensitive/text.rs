//! Byte-level helpers the detectors share: word boundaries, character runs,
//! entropy and placeholder tests.
//!
//! Every detector matches ASCII only, so a span that starts and ends on ASCII
//! bytes (or the end of the text) is always on a `char` boundary.

/// Whether `b` belongs to an identifier-like word (`[A-Za-z0-9_]`).
pub(super) const fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `i`, if any.
pub(super) fn before(bytes: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| bytes.get(j).copied())
}

/// Whether the byte before `i` is not a word byte (or there is none).
pub(super) fn word_start(bytes: &[u8], i: usize) -> bool {
    !before(bytes, i).is_some_and(is_word)
}

/// Whether the byte at `i` is not a word byte (or there is none).
pub(super) fn word_end(bytes: &[u8], i: usize) -> bool {
    !bytes.get(i).copied().is_some_and(is_word)
}

/// The end of the run of bytes from `start` that satisfy `pred`, at most
/// `max` bytes long.
pub(super) fn run(bytes: &[u8], start: usize, max: usize, pred: impl Fn(u8) -> bool) -> usize {
    let limit = bytes.len().min(start.saturating_add(max));
    let mut i = start;
    while i < limit && pred(bytes[i]) {
        i += 1;
    }
    i
}

/// `[A-Za-z0-9]`.
pub(super) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9_-]`, the base64url alphabet.
pub(super) fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `[A-Za-z0-9+/]`, the standard base64 alphabet without padding.
pub(super) fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
pub(super) fn entropy(s: &[u8]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u16; 256];
    for &b in s {
        counts[usize::from(b)] = counts[usize::from(b)].saturating_add(1);
    }
    let n = s.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f32::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The number of distinct bytes in `s`.
pub(super) fn distinct(s: &[u8]) -> usize {
    let mut seen = [false; 256];
    let mut n = 0;
    for &b in s {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            n += 1;
        }
    }
    n
}

/// Which character classes `s` uses: lower, upper, digit, other.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Classes {
    pub(super) lower: bool,
    pub(super) upper: bool,
    pub(super) digit: bool,
    pub(super) other: bool,
}

impl Classes {
    /// The classes of `s`.
    pub(super) fn of(s: &[u8]) -> Classes {
        let mut c = Classes::default();
        for &b in s {
            match b {
                b'a'..=b'z' => c.lower = true,
                b'A'..=b'Z' => c.upper = true,
                b'0'..=b'9' => c.digit = true,
                _ => c.other = true,
            }
        }
        c
    }

    /// How many classes are used.
    pub(super) fn count(self) -> usize {
        usize::from(self.lower)
            + usize::from(self.upper)
            + usize::from(self.digit)
            + usize::from(self.other)
    }
}

/// Whether `rest` (lower-case) starts with a word that marks a value as a
/// stand-in for a real secret (`example`, `changeme`, `your_`, `xxxxxx`, …).
fn placeholder_word_at(rest: &[u8]) -> bool {
    let words: &[&[u8]] = match rest[0] {
        b'e' => &[b"example"],
        b'p' => &[b"placeholder"],
        b'r' => &[b"redacted", b"replace"],
        b'c' => &[b"changeme", b"change_me", b"change-me"],
        b'i' => &[b"insert"],
        b'd' => &[b"dummy"],
        b'y' => &[b"your_", b"your-", b"yourtoken", b"yourkey"],
        b'x' => &[b"xxxxxx"],
        b'*' => &[b"****"],
        b'.' => &[b"..."],
        _ => return false,
    };
    words.iter().any(|w| rest.starts_with(w))
}

/// Whether a token body or a value is an obvious placeholder: a template
/// variable, an angle-bracketed hint, a word like `example` or `changeme`,
/// masking characters, or too few distinct characters to be random.
pub(super) fn is_placeholder(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let templated = v.windows(2).any(|w| {
        matches!(
            (w[0], w[1]),
            (b'$', b'{' | b'(') | (b'{', b'{') | (b'}', b'}') | (b'%', b'(' | b'>') | (b'#', b'{')
        )
    });
    if templated || v.contains(&b'<') || v.contains(&b'>') {
        return true;
    }
    if v[0] == b'$' && v.len() > 1 && v[1..].iter().all(|&b| is_word(b)) {
        return true;
    }
    if v.iter().any(|&b| b >= 0x80) && v.iter().all(|&b| b >= 0x80 || b == b' ') {
        // Only non-ASCII: masking bullets and the like.
        return true;
    }
    // A placeholder says so early: the first 128 bytes are enough.
    let mut lower = [0u8; 128];
    let n = v.len().min(lower.len());
    for (d, s) in lower.iter_mut().zip(v.iter()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &lower[..n];
    if (0..n).any(|i| placeholder_word_at(&lower[i..])) {
        return true;
    }
    distinct(v) < 5.min(v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_uniform_and_constant_strings() {
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-6);
        assert_eq!(entropy(b""), 0.0);
    }

    #[test]
    fn placeholders_are_recognised() {
        for p in [
            "<your-token>",
            "xxxxxxxxxxxx",
            "changeme",
            "${DB_PASSWORD}",
            "************",
            "{{ secrets.TOKEN }}",
            "$API_TOKEN",
            "your_api_key_here",
            "aaaaaaaaaaaaaaaa",
            "EXAMPLEKEY123",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
        }
        for s in ["k8Jd2mQz9xLp4Tb7", "hunter2hunter2"] {
            assert!(!is_placeholder(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn runs_stop_at_the_limit() {
        assert_eq!(run(b"abc123!", 0, 100, is_alnum), 6);
        assert_eq!(run(b"abc123!", 0, 2, is_alnum), 2);
        assert_eq!(run(b"abc", 5, 2, is_alnum), 5);
    }
}

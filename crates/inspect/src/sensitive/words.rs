//! The word pass: one linear walk over the text that stops only where
//! something can start, and hands each place to the detector that can start
//! there.
//!
//! Almost everything the scanner looks for begins a word or ends a key name:
//! numbers (cards, phones, SSNs, IPv4), IBANs, documented credential prefixes
//! (`AKIA`, `ghp_`, `eyJ`, …), classification markings, dictionary terms, and
//! the key names secrets are assigned to (`password=`). So the walk skips
//! whole words with a table look-up per byte and, at each word,
//!
//! - at its first byte: a digit starts a number cluster
//!   ([`super::numeric::cluster_at`]); a capital may start an IBAN
//!   ([`super::iban::at`]); the credential prefixes and markings that begin
//!   with that byte are compared ([`super::credentials::at_word`]); the
//!   dictionaries are asked if a term starts with its first two bytes;
//! - at its end: if what follows can introduce a value, the key-name check
//!   runs ([`super::keyword::at_word_end`]).
//!
//! Between words, `+`/`(` before a digit starts a number and `-----BEGIN `
//! a key block. Everything else about a byte costs one comparison.

use super::dictionary::Dictionaries;
use super::text::is_word;
use super::{Hit, credentials, iban, keyword, numeric};

/// Runs the word pass over `text`.
pub(super) fn scan(text: &str, dictionaries: Option<&Dictionaries>, out: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let b = bytes[i];
        if !WORD[usize::from(b)] {
            match b {
                b'+' | b'('
                    if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                        && (i == 0 || !WORD[usize::from(bytes[i - 1])]) =>
                {
                    let end = numeric::cluster_at(bytes, i, out);
                    i = skip_word(bytes, end);
                    continue;
                }
                b'-' => {
                    if let Some(end) = credentials::at_dashes(bytes, i, out) {
                        // The block's base64 holds nothing else to find.
                        i = end;
                        continue;
                    }
                }
                0xc0.. => {
                    if let Some(d) = dictionaries.filter(|d| d.may_start(bytes, i)) {
                        d.at(text, i, out);
                    }
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        // INVARIANT: a word starts at `i`: the walk only stops at a word
        // byte after a non-word byte (or at the start), since it skips words
        // whole.
        let start = i;
        if let Some(d) = dictionaries.filter(|d| d.may_start(bytes, i)) {
            d.at(text, i, out);
        }
        if b.is_ascii_digit() {
            if !numeric::glued(bytes, i) {
                let end = numeric::cluster_at(bytes, i, out);
                i = skip_word(bytes, end);
                continue;
            }
        } else {
            if let Some(end) = credentials::at_word(bytes, i, out) {
                // A token or marking is not read again for its parts
                // (`SECRET` in `TOP SECRET`, the segments of a JWT).
                i = skip_word(bytes, end.max(i + 1));
                continue;
            }
            if b.is_ascii_uppercase()
                && let Some(end) = iban::at(bytes, i, out)
            {
                i = skip_word(bytes, end);
                continue;
            }
        }
        let end = skip_word(bytes, i);
        keyword::at_word_end(bytes, start, end, out);
        i = end;
    }
}

/// The end of the word at `i` (or `i` if none starts there).
#[inline]
fn skip_word(bytes: &[u8], i: usize) -> usize {
    bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| !WORD[usize::from(b)]))
        .map_or(bytes.len().max(i), |p| i + p)
}

/// `[A-Za-z0-9_]`, as a table.
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = is_word(b as u8);
        b += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_table_matches_is_word() {
        for b in 0..=255u8 {
            assert_eq!(WORD[usize::from(b)], is_word(b), "{b}");
        }
    }
}

//! IBANs (ISO 13616): a country code, two check digits and a BBAN of the
//! length the country registered, written in one run or in groups of four
//! separated by single spaces, whose mod-97 check (ISO 7064) is 1.
//!
//! The word pass ([`super::words`]) calls [`at`] at every word that starts
//! with a capital letter.

use super::text::{is_word, word_start};
use super::{Hit, SensitiveType};

/// The longest IBAN of any country.
const MAX_IBAN: usize = 34;

/// Reads an IBAN-shaped token at `p`. Returns where it ends if it has the
/// shape (country code, check digits, the country's length), reporting it in
/// `out` if its check passes too; `None` if `p` does not start one.
///
/// A token with the shape but a failed check or a wrong length (at least 12
/// characters read) is still consumed, so that its digits are not read again
/// as a card or phone number.
pub(super) fn at(bytes: &[u8], p: usize, out: &mut Vec<Hit>) -> Option<usize> {
    let head = bytes.get(p..p + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit()
        && word_start(bytes, p))
    {
        return None;
    }
    let Some(len) = length(head[0], head[1]) else {
        return grouped_shape(bytes, p);
    };
    let len = usize::from(len);
    let mut chars = [0u8; MAX_IBAN];
    let mut count = 0;
    let mut spaced = false;
    let mut i = p;
    while count < len && i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            chars[count] = b;
            count += 1;
            i += 1;
            continue;
        }
        let group_boundary = count % 4 == 0;
        let next_is_char = bytes
            .get(i + 1)
            .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if b == b' ' && group_boundary && next_is_char {
            spaced = true;
            i += 1;
            continue;
        }
        break;
    }
    // Written in groups, every group boundary has its space.
    let complete = count == len
        && !is_word(bytes.get(i).copied().unwrap_or(b' '))
        && !(spaced && i - p != len + (len - 1) / 4);
    if !complete {
        // A mistyped or cut IBAN is still not a card or phone number (but a
        // token that merely starts like one, `SK0123abcd…`, is not an IBAN).
        let token_ends = !bytes.get(i).copied().is_some_and(is_word);
        return (count >= 12 && token_ends).then_some(i);
    }
    let iban = &chars[..len];
    let check = u32::from(iban[2] - b'0') * 10 + u32::from(iban[3] - b'0');
    if (2..=98).contains(&check) && mod97(iban) == 1 {
        out.push(Hit::new(SensitiveType::Iban, p, i, 0.95, "iban_mod97"));
    }
    Some(i)
}

/// The end of an IBAN-shaped token with an unregistered country code
/// (`ZZ90 6947 0361 8115 855`): two letters, two digits and at least three
/// more space-separated groups of four, so that its digits are not read as a
/// card or phone number.
fn grouped_shape(bytes: &[u8], p: usize) -> Option<usize> {
    let is_char = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut i = p + 4;
    let mut groups = 0;
    while bytes.get(i) == Some(&b' ') {
        let end = super::text::run(bytes, i + 1, 5, is_char);
        let len = end - i - 1;
        if len == 0 || len > 4 || bytes.get(end).is_some_and(|&b| is_word(b)) {
            break;
        }
        groups += 1;
        i = end;
        if len < 4 {
            break;
        }
    }
    (groups >= 3).then_some(i)
}

/// The IBAN's remainder mod 97 after moving the first four characters to the
/// end and replacing letters with 10–35 (ISO 7064 MOD 97-10).
pub(super) fn mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    tail.iter().chain(head).fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            (acc * 10 + u32::from(b - b'0')) % 97
        } else {
            let v = u32::from(b.to_ascii_uppercase() - b'A') + 10;
            (acc * 100 + v) % 97
        }
    })
}

/// The IBAN length registered for a country (ISO 13616 registry).
pub(super) fn length(a: u8, b: u8) -> Option<u8> {
    Some(match [a, b] {
        [b'N', b'O'] => 15,
        [b'B', b'E'] => 16,
        [b'D', b'K'] | [b'F', b'I'] | [b'F', b'O'] | [b'G', b'L'] | [b'N', b'L'] => 18,
        [b'M', b'K'] | [b'S', b'I'] => 19,
        [b'A', b'T']
        | [b'B', b'A']
        | [b'E', b'E']
        | [b'K', b'Z']
        | [b'L', b'T']
        | [b'L', b'U']
        | [b'X', b'K'] => 20,
        [b'C', b'H'] | [b'H', b'R'] | [b'L', b'I'] | [b'L', b'V'] => 21,
        [b'B', b'G']
        | [b'B', b'H']
        | [b'C', b'R']
        | [b'D', b'E']
        | [b'G', b'B']
        | [b'G', b'E']
        | [b'I', b'E']
        | [b'M', b'E']
        | [b'R', b'S']
        | [b'V', b'A'] => 22,
        [b'A', b'E'] | [b'G', b'I'] | [b'I', b'L'] | [b'I', b'Q'] | [b'T', b'L'] => 23,
        [b'A', b'D']
        | [b'C', b'Z']
        | [b'E', b'S']
        | [b'M', b'D']
        | [b'P', b'K']
        | [b'R', b'O']
        | [b'S', b'A']
        | [b'S', b'E']
        | [b'S', b'K']
        | [b'T', b'N']
        | [b'V', b'G'] => 24,
        [b'P', b'T'] | [b'S', b'T'] => 25,
        [b'I', b'S'] | [b'T', b'R'] => 26,
        [b'F', b'R'] | [b'G', b'R'] | [b'I', b'T'] | [b'M', b'C'] | [b'M', b'R'] | [b'S', b'M'] => {
            27
        }
        [b'A', b'L']
        | [b'A', b'Z']
        | [b'B', b'Y']
        | [b'C', b'Y']
        | [b'D', b'O']
        | [b'G', b'T']
        | [b'H', b'U']
        | [b'L', b'B']
        | [b'P', b'L']
        | [b'S', b'V'] => 28,
        [b'B', b'R'] | [b'E', b'G'] | [b'P', b'S'] | [b'Q', b'A'] | [b'U', b'A'] => 29,
        [b'J', b'O'] | [b'K', b'W'] | [b'M', b'U'] => 30,
        [b'M', b'T'] | [b'S', b'C'] => 31,
        [b'L', b'C'] => 32,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        let mut i = 0;
        while i < text.len() {
            i = at(text.as_bytes(), i, &mut hits).unwrap_or(i + 1);
        }
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn ibans_with_and_without_spaces_are_found() {
        assert_eq!(
            found("IBAN: DE89 3704 0044 0532 0130 00."),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            found(r#""iban":"GB29NWBK60161331926819""#),
            ["GB29NWBK60161331926819"]
        );
        assert_eq!(
            found("to CH93 0076 2011 6238 5295 7"),
            ["CH93 0076 2011 6238 5295 7"]
        );
        assert_eq!(
            found("FR1420041010050500013M02606"),
            ["FR1420041010050500013M02606"]
        );
        assert_eq!(found("NO9386011117947 ok"), ["NO9386011117947"]);
    }

    #[test]
    fn wrong_checks_lengths_and_countries_are_not_ibans() {
        for t in [
            "DE88 3704 0044 0532 0130 00",
            "DE89 3704 0044 0532 0130 0",
            "DE89 3704 0044 0532 0130 001",
            "XX89 3704 0044 0532 0130 00",
            "DE89 37040044 0532 0130 00",
            "GB29NWBK6016133192681",
        ] {
            assert!(found(t).is_empty(), "{t}");
        }
    }
}

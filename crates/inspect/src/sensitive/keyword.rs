//! Secrets known only by the name they are assigned to: `password=…`,
//! `"api_key": "…"`, `Authorization: Bearer …`, `aws_secret_access_key = …`.
//!
//! The word pass ([`super::words`]) calls [`at_word_end`] at the end of every
//! word; only a word followed by what can introduce a value (`=`, `:`, a
//! closing quote then `:`, `|`, a `--flag` space, a CSV comma or line end) is
//! looked at further, so prose costs one byte comparison per word. The key
//! name is then split into parts (`DB_PASSWORD` → `db`, `password`;
//! `accessToken` → `access`, `token`) and names a secret if a part is a
//! secret's word (`password`, `token`, `secret`, `auth`, …; not `tokenizer` or
//! `author`) or two adjacent parts are (`api key`), and no part names a
//! property of the secret rather than the secret (`token_type`,
//! `password_policy`, `secret_name`). The value must then look like a secret:
//! 12–512 bytes without spaces, not a placeholder (`<your-token>`,
//! `${VAR}`, `changeme`, `****`) or a reference (`env.X`, a URL, a path), at
//! least three character classes (or two, 16+ bytes, with digits or random
//! mixed case), and a
//! Shannon entropy of at least 2.8–3.0 bits per byte. A key word heading a
//! CSV column (`id,api_key,owner`) makes the cells below it values.
//!
//! Names that point at a provider's format are checked for it first: an AWS
//! secret access key (40 base64 characters) after `aws_secret_access_key` or
//! `SecretAccessKey`, an Azure storage key (88 characters ending `==`) after
//! `AccountKey` or `storage_key`.

use super::text::{Classes, before, entropy, is_b64, is_placeholder, is_word, run};
use super::{Hit, SensitiveType};

/// What a key name promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    /// Any secret.
    Generic,
    /// An AWS secret access key.
    Aws,
    /// An Azure storage account key.
    Azure,
    /// `Bearer <token>`, with or without a header name before it.
    Bearer,
}

/// Whether a name part makes a name a secret's.
fn secret_part(p: &[u8]) -> bool {
    matches!(
        p,
        b"password"
            | b"passwd"
            | b"passphrase"
            | b"passcode"
            | b"pwd"
            | b"secret"
            | b"token"
            | b"auth"
            | b"authorization"
            | b"credential"
            | b"credentials"
            | b"bearer"
            | b"apikey"
            | b"accesskey"
            | b"clientsecret"
            | b"privatekey"
            | b"signingkey"
            | b"secretkey"
            | b"authtoken"
            | b"accesstoken"
            | b"apitoken"
    )
}

/// Whether a part that comes before `key` makes the name a secret's
/// (`api_key`, `access_key`, …).
fn key_qualifier(p: &[u8]) -> bool {
    matches!(p, b"api" | b"access" | b"private" | b"signing" | b"session")
}

/// Whether a name part names a property of a secret, not the secret.
fn property_part(p: &[u8]) -> bool {
    matches!(
        p,
        b"id"
            | b"ids"
            | b"type"
            | b"count"
            | b"length"
            | b"len"
            | b"url"
            | b"uri"
            | b"endpoint"
            | b"path"
            | b"file"
            | b"name"
            | b"expires"
            | b"expiry"
            | b"expiration"
            | b"ttl"
            | b"format"
            | b"method"
            | b"policy"
            | b"version"
            | b"header"
            | b"field"
            | b"prefix"
            | b"hint"
            | b"limit"
            | b"size"
            | b"usage"
            | b"mode"
            | b"provider"
            | b"kind"
            | b"scope"
            | b"scopes"
            | b"status"
            | b"enabled"
            | b"required"
            | b"reset"
            | b"min"
            | b"max"
            | b"lifetime"
            | b"timeout"
            | b"at"
            | b"rotation"
            | b"label"
            | b"store"
    )
}

/// Value prefixes that refer to a secret kept elsewhere.
const REFERENCES: [&[u8]; 12] = [
    b"env.",
    b"secrets.",
    b"process.env",
    b"os.environ",
    b"os.getenv",
    b"vault:",
    b"arn:",
    b"projects/",
    b"ref+",
    b"sm://",
    b"file:",
    b"keyvault",
];

/// The longest value considered.
const MAX_VALUE: usize = 512;
/// The longest key name considered.
const MAX_KEY: usize = 64;

/// Called by the word pass at the end of every word that does not start with
/// a digit (`start..end`): if the word ends a key name that is followed by an
/// assignment, a flag value, a table cell or a CSV column, reports the secret
/// assigned to it.
#[inline]
pub(super) fn at_word_end(bytes: &[u8], start: usize, end: usize, out: &mut Vec<Hit>) {
    // The common cases, decided without a call: a word in a sentence, a
    // word in a longer name.
    match bytes.get(end).copied() {
        Some(b' ' | b'\t') => {
            let then = bytes.get(end + 1).copied().unwrap_or(b' ');
            let plain = is_word(then) || then == b'(' || then == b'"';
            if plain && bytes.get(start.wrapping_sub(1)) != Some(&b'-') && end - start != 6 {
                return;
            }
        }
        Some(b'-' | b'.') if bytes.get(end + 1).is_some_and(|&b| is_word(b)) => return,
        None | Some(b',' | b'\n' | b'\r' | b':' | b'=' | b'|' | b'"' | b'\'' | b'\\') => {}
        Some(_) => return,
    }
    key_end(bytes, start, end, out);
}

/// [`at_word_end`] past its quick tests.
#[inline(never)]
fn key_end(bytes: &[u8], start: usize, end: usize, out: &mut Vec<Hit>) {
    let next = bytes.get(end).copied();
    let csv = matches!(next, None | Some(b',' | b'\n' | b'\r'));
    let candidate = match next {
        None | Some(b',' | b'\n' | b'\r' | b':' | b'=' | b'|') => true,
        Some(b'"' | b'\'' | b'\\') => {
            let after = run(bytes, end, 2, |b| matches!(b, b'"' | b'\'' | b'\\'));
            let after = run(bytes, after, 8, |b| b == b' ' || b == b'\t');
            matches!(bytes.get(after), Some(b':' | b'=' | b'|'))
        }
        Some(b' ' | b'\t') => {
            let after = run(bytes, end, 8, |b| b == b' ' || b == b'\t');
            matches!(bytes.get(after), Some(b':' | b'=' | b'|'))
                // `--password value`, `Bearer token`.
                || before(bytes, start) == Some(b'-')
                || (end - start == 6 && bytes[start..end].eq_ignore_ascii_case(b"bearer"))
        }
        _ => false,
    };
    if !candidate {
        return;
    }
    let key_start = key_start(bytes, start);
    // A CSV header cell stands alone between commas or line ends.
    if csv && key_start > 0 && !matches!(bytes[key_start - 1], b',' | b'\n') {
        return;
    }
    let Some(kw) = key_kind(&bytes[key_start..end]) else {
        return;
    };
    if let Some(hit) = assigned(bytes, key_start, end, kw) {
        out.push(hit);
    } else if csv {
        csv_column(bytes, key_start, end, kw, out);
    }
}

/// Where the key name ending in the word at `start` begins: back over
/// `[A-Za-z0-9_.-]`, without a leading `-` or `.` (`--password`, `.token`).
fn key_start(bytes: &[u8], start: usize) -> usize {
    let ident = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut key_start = start;
    while key_start > 0 && start - key_start < MAX_KEY && ident(bytes[key_start - 1]) {
        key_start -= 1;
    }
    while key_start < start && matches!(bytes[key_start], b'-' | b'.') {
        key_start += 1;
    }
    key_start
}

/// What a key name promises, from its parts (split at `_`, `-`, `.` and
/// lower-to-upper case changes, lower-cased, trailing digits dropped):
/// `DB_PASSWORD`, `accessToken`, `X-Api-Key` name secrets; `token_type`,
/// `tokenizer`, `author` do not.
fn key_kind(key: &[u8]) -> Option<Kw> {
    const MAX_PARTS: usize = 8;
    // Every secret word holds one of these pairs (`pa`ssword, `pw`d,
    // se`cr`et, `cr`edential, t`ok`en, a`ut`h, b`ea`rer, `ke`y): most names
    // hold none and are turned away without being split.
    let hinted = key.windows(2).any(|w| {
        matches!(
            [w[0].to_ascii_lowercase(), w[1].to_ascii_lowercase()],
            [b'p', b'a']
                | [b'p', b'w']
                | [b'c', b'r']
                | [b'o', b'k']
                | [b'u', b't']
                | [b'e', b'a']
                | [b'k', b'e']
        )
    });
    if !hinted {
        return None;
    }
    let mut lower = [0u8; MAX_KEY];
    let key = &key[..key.len().min(MAX_KEY)];
    for (d, s) in lower.iter_mut().zip(key) {
        *d = s.to_ascii_lowercase();
    }
    let mut parts: [(usize, usize); MAX_PARTS] = [(0, 0); MAX_PARTS];
    let mut n = 0;
    let mut i = 0;
    while i < key.len() && n < MAX_PARTS {
        while i < key.len() && !key[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let start = i;
        while i < key.len() && key[i].is_ascii_alphanumeric() {
            let camel = i > start && key[i].is_ascii_uppercase() && key[i - 1].is_ascii_lowercase();
            if camel {
                break;
            }
            i += 1;
        }
        let mut end = i;
        while end > start && key[end - 1].is_ascii_digit() {
            end -= 1;
        }
        if end > start {
            parts[n] = (start, end);
            n += 1;
        }
    }
    let parts = &parts[..n];
    let part = |k: usize| &lower[parts[k].0..parts[k].1];
    // Most names name no secret: decide that first, with one match per part.
    let mut generic = false;
    let mut key = false;
    for k in 0..n {
        let p = part(k);
        generic |= secret_part(p);
        key |= p == b"key" || p == b"accountkey" || p == b"storagekey" || p == b"secretaccesskey";
    }
    if !generic && !key {
        return None;
    }
    if (0..n).any(|k| property_part(part(k))) {
        return None;
    }
    let has = |word: &[u8]| (0..n).any(|k| part(k) == word);
    let pair = |a: &[u8], b: &[u8]| (1..n).any(|k| part(k - 1) == a && part(k) == b);
    if has(b"secretaccesskey")
        || (has(b"aws") && has(b"secret"))
        || (has(b"secret") && pair(b"access", b"key"))
    {
        return Some(Kw::Aws);
    }
    if has(b"accountkey")
        || has(b"storagekey")
        || pair(b"account", b"key")
        || pair(b"storage", b"key")
    {
        return Some(Kw::Azure);
    }
    if n == 1 && part(0) == b"bearer" {
        return Some(Kw::Bearer);
    }
    let generic = generic || (1..n).any(|k| part(k) == b"key" && key_qualifier(part(k - 1)));
    generic.then_some(Kw::Generic)
}

/// The secret assigned to the key `key_start..key_end`.
fn assigned(bytes: &[u8], key_start: usize, key_end: usize, kw: Kw) -> Option<Hit> {
    let flag = bytes[..key_start].ends_with(b"--");
    // A URL query parameter ends at `&`; elsewhere `&` is part of a value.
    let query = matches!(before(bytes, key_start), Some(b'?' | b'&'));
    // A Markdown or ASCII table row: `| api_key | value |`.
    let cell = bytes[..key_start]
        .iter()
        .rev()
        .find(|&&b| b != b' ' && b != b'\t')
        == Some(&b'|');
    let (value_start, value_end) = if kw == Kw::Bearer {
        // `Bearer <token>`: exactly one space, then the token.
        if bytes.get(key_end) != Some(&b' ') {
            return None;
        }
        let end = run(bytes, key_end + 1, MAX_VALUE + 1, token_byte);
        (key_end + 1, end)
    } else {
        value_after(bytes, key_end, flag, cell, query)?
    };
    let (ty, score, rule) = judge(kw, &bytes[value_start..value_end])?;
    Some(Hit::new(ty, value_start, value_end, score, rule))
}

/// What a value assigned to a key word is, if it is a secret.
fn judge(kw: Kw, value: &[u8]) -> Option<(SensitiveType, f32, &'static str)> {
    if value.len() > MAX_VALUE {
        return None;
    }
    match kw {
        Kw::Aws if aws_secret(value) => {
            return Some((SensitiveType::AwsSecretKey, 0.9, "aws_secret_access_key"));
        }
        Kw::Azure if azure_storage_key(value) => {
            return Some((SensitiveType::AzureStorageKey, 0.85, "azure_storage_key"));
        }
        _ => {}
    }
    Some((
        SensitiveType::GenericSecret,
        secret_like(value)?,
        "keyword_entropy",
    ))
}

/// A key that heads a CSV column (`id,api_key,owner`): reports the secrets
/// in that column of the rows below.
fn csv_column(bytes: &[u8], key_start: usize, key_end: usize, kw: Kw, out: &mut Vec<Hit>) {
    const MAX_ROWS: usize = 1000;
    let line_start = memchr::memrchr(b'\n', &bytes[..key_start]).map_or(0, |p| p + 1);
    let line_end = memchr::memchr(b'\n', &bytes[key_end..]).map_or(bytes.len(), |p| key_end + p);
    let whole_cell = (key_start == line_start || bytes[key_start - 1] == b',')
        && (key_end == line_end || matches!(bytes[key_end], b',' | b'\r'));
    if !whole_cell || !bytes[line_start..line_end].contains(&b',') {
        return;
    }
    let column = bytes[line_start..key_start]
        .iter()
        .filter(|&&b| b == b',')
        .count();
    let mut row_start = line_end + 1;
    for _ in 0..MAX_ROWS {
        if row_start >= bytes.len() {
            break;
        }
        let row_end =
            memchr::memchr(b'\n', &bytes[row_start..]).map_or(bytes.len(), |p| row_start + p);
        let row = &bytes[row_start..row_end];
        if !row.contains(&b',') {
            break;
        }
        let cell_start = if column == 0 {
            Some(row_start)
        } else {
            memchr::memchr_iter(b',', row)
                .nth(column - 1)
                .map(|p| row_start + p + 1)
        };
        if let Some(mut start) = cell_start {
            let mut end =
                memchr::memchr(b',', &bytes[start..row_end]).map_or(row_end, |p| start + p);
            while start < end && matches!(bytes[start], b' ' | b'"') {
                start += 1;
            }
            while end > start && matches!(bytes[end - 1], b' ' | b'"' | b'\r') {
                end -= 1;
            }
            if let Some((ty, score, rule)) = judge(kw, &bytes[start..end]) {
                out.push(Hit::new(ty, start, end, score, rule));
            }
        }
        row_start = row_end + 1;
    }
}

/// Where the value assigned after `key_end` is: past a closing quote,
/// an operator and an opening quote. `None` if no assignment follows. A
/// `--flag` may take its value after a space, a table cell after `|`.
fn value_after(
    bytes: &[u8],
    key_end: usize,
    flag: bool,
    cell: bool,
    query: bool,
) -> Option<(usize, usize)> {
    let blank = |b: u8| b == b' ' || b == b'\t';
    let mut i = run(bytes, key_end, 2, |b| matches!(b, b'"' | b'\'' | b'\\'));
    let spaces = run(bytes, i, 8, blank);
    let had_space = spaces > i;
    i = spaces;
    let rest = &bytes[i.min(bytes.len())..];
    let op = if rest.starts_with(b"==") || rest.starts_with(b"=~") {
        return None;
    } else if rest.starts_with(b":=") || rest.starts_with(b"=>") {
        2
    } else if rest.starts_with(b"=") || rest.starts_with(b":") || (cell && rest.starts_with(b"|")) {
        1
    } else if flag && had_space {
        0
    } else {
        return None;
    };
    i = run(bytes, i + op, 8, blank);
    // An opening quote, possibly escaped (`\"`).
    let escaped = bytes[i.min(bytes.len())..].starts_with(b"\\\"");
    if escaped {
        i += 1;
    }
    let quote = bytes
        .get(i)
        .copied()
        .filter(|b| matches!(b, b'"' | b'\'' | b'`'));
    let (start, end) = match quote {
        Some(q) => {
            let start = i + 1;
            let end = run(bytes, start, MAX_VALUE + 1, |b| {
                b != q && b != b'\n' && b != b'\r'
            });
            if bytes.get(end) != Some(&q) {
                return None;
            }
            let end = if escaped && end > start && bytes[end - 1] == b'\\' {
                end - 1
            } else {
                end
            };
            (start, end)
        }
        None => {
            let end = run(bytes, i, MAX_VALUE + 1, |b| {
                !(b.is_ascii_whitespace()
                    || (b == b'&' && query)
                    || matches!(
                        b,
                        b',' | b';'
                            | b')'
                            | b'('
                            | b'}'
                            | b'{'
                            | b']'
                            | b'['
                            | b'<'
                            | b'>'
                            | b'"'
                            | b'\''
                            | b'`'
                            | b'|'
                    ))
            });
            let mut end = end;
            while end > i && matches!(bytes[end - 1], b'.' | b':') {
                end -= 1;
            }
            (i, end)
        }
    };
    // `Bearer <token>`, `Basic <credentials>`, `token <token>`.
    let value = &bytes[start..end];
    for scheme in [&b"bearer "[..], b"basic ", b"token ", b"digest "] {
        if value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some((start + scheme.len(), end));
        }
    }
    if quote.is_none() {
        for scheme in [&b"bearer"[..], b"basic", b"token"] {
            if value.eq_ignore_ascii_case(scheme) && bytes.get(end) == Some(&b' ') {
                let token_end = run(bytes, end + 1, MAX_VALUE + 1, token_byte);
                return Some((end + 1, token_end));
            }
        }
    }
    Some((start, end))
}

/// A byte of an HTTP bearer token (RFC 6750 `b64token`).
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Whether `v` has the shape of an AWS secret access key.
fn aws_secret(v: &[u8]) -> bool {
    let c = Classes::of(v);
    v.len() == 40 && v.iter().all(|&b| is_b64(b)) && c.lower && c.upper && !is_placeholder(v)
}

/// Whether `v` has the shape of an Azure storage account key.
fn azure_storage_key(v: &[u8]) -> bool {
    v.len() == 88 && v.ends_with(b"==") && v[..86].iter().all(|&b| is_b64(b)) && !is_placeholder(v)
}

/// Whether `v` is a file path (`/run/secrets/db`, `~/.aws/credentials`):
/// it starts like one and its segments read like names, where base64 (which
/// may also start with `/`) has `+`, `=`, empty segments or random case.
fn is_path(v: &[u8]) -> bool {
    if !matches!(v[0], b'/' | b'~' | b'.') || !v[1..].contains(&b'/') {
        return false;
    }
    if v.contains(&b'+') || v.contains(&b'=') || v.windows(2).any(|w| w == b"//") {
        return false;
    }
    v.split(|&b| b == b'/').all(|segment| {
        let humps = segment
            .windows(2)
            .filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
            .count();
        let digit_switches = segment
            .windows(2)
            .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
            .count();
        humps <= 1 && digit_switches <= 2
    })
}

/// The confidence that `v` is a secret, or `None` if it does not look like one.
fn secret_like(v: &[u8]) -> Option<f32> {
    if !(12..=MAX_VALUE).contains(&v.len()) || v.iter().any(u8::is_ascii_whitespace) {
        return None;
    }
    if is_placeholder(v) || is_path(v) || v.windows(3).any(|w| w == b"://") {
        return None;
    }
    let mut lower = [0u8; 16];
    for (d, s) in lower.iter_mut().zip(v) {
        *d = s.to_ascii_lowercase();
    }
    if REFERENCES.iter().any(|r| lower.starts_with(r)) {
        return None;
    }
    let c = Classes::of(v);
    let n = c.count();
    // Two classes: digits and letters (hex, ids) at 16+ bytes, or random
    // mixed case at 16+ bytes, where capitals are neither rare nor most (a
    // CamelCase name such as `TokenExpiredError` has few).
    let uppers = v.iter().filter(|b| b.is_ascii_uppercase()).count();
    let mixed_case = c.lower && c.upper && (v.len() / 4..=v.len() * 3 / 4).contains(&uppers);
    if !(n >= 3 || (n == 2 && v.len() >= 16 && (c.digit || mixed_case))) {
        return None;
    }
    let h = entropy(v);
    let min = if v.len() < 16 { 2.8 } else { 3.0 };
    if h < min {
        return None;
    }
    let mut score = 0.6 + 0.05 * (n as f32 - 2.0);
    if v.len() >= 20 {
        score += 0.1;
    }
    if h >= 4.0 {
        score += 0.1;
    }
    Some(score.min(0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(text: &str) -> Vec<(String, &str)> {
        let mut hits = Vec::new();
        crate::sensitive::words::scan(text, None, &mut hits);
        let hits: Vec<Hit> = crate::sensitive::resolve(hits)
            .into_iter()
            .filter(|h| {
                matches!(
                    h.ty,
                    SensitiveType::GenericSecret | SensitiveType::AwsSecretKey
                )
            })
            .collect();
        hits.iter()
            .map(|h| (h.ty.name().to_owned(), &text[h.start..h.end]))
            .collect()
    }

    #[test]
    fn assigned_secrets_are_found() {
        for (text, value) in [
            ("DB_PASSWORD=Xk9#mP2$vL7qW", "Xk9#mP2$vL7qW"),
            (
                r#"{"api_key": "a3f9c2e17b4d8e6f0a1b2c3d"}"#,
                "a3f9c2e17b4d8e6f0a1b2c3d",
            ),
            ("password: 'T0p$ecret-Pa55'", "T0p$ecret-Pa55"),
            (
                "accessToken := \"Zm9vYmFyMTIzNDU2Nzg5MA\"",
                "Zm9vYmFyMTIzNDU2Nzg5MA",
            ),
            (
                "Authorization: Bearer abcDEF123456ghiJKL789",
                "abcDEF123456ghiJKL789",
            ),
            (
                "curl --password 9f8e7d6c5b4a3210ffee",
                "9f8e7d6c5b4a3210ffee",
            ),
            ("/cb?client_secret=Qw3rTy!uI0pAs&x=1", "Qw3rTy!uI0pAs"),
            ("client_secret: Qw3rTy!uI0pAs&x=1", "Qw3rTy!uI0pAs&x=1"),
            (r#"{\"token\": \"Ab3dEf6hIj9kLm2n\"}"#, "Ab3dEf6hIj9kLm2n"),
        ] {
            assert_eq!(
                secrets(text),
                [("generic_secret".to_owned(), value)],
                "{text}"
            );
        }
    }

    #[test]
    fn provider_shapes_are_named() {
        assert_eq!(
            secrets("aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYzKEYq1b2C3d4"),
            [(
                "aws_secret_key".to_owned(),
                "wJalrXUtnFEMIK7MDENGbPxRfiCYzKEYq1b2C3d4"
            )]
        );
    }

    #[test]
    fn placeholders_references_and_properties_are_not_secrets() {
        for text in [
            "password=<your-password>",
            "API_TOKEN=${API_TOKEN}",
            "password: changeme",
            "secret: xxxxxxxxxxxxxxxx",
            "token: '************'",
            "\"token_type\": \"Bearer\"",
            "\"token_count\": 123456789012",
            "\"tokenizer\": \"bert-base-uncased-v2\"",
            "\"password_policy\": \"Min12Chars-Upper1\"",
            "secret = os.environ[\"SECRET\"]",
            "token: ${{ secrets.GITHUB_TOKEN }}",
            "the token budget is 4096 tokens",
            "author: JaneDoe2024-Writer",
            "auth_url=https://login.example.com/oauth2/token",
            "password: correct horse battery staple",
            "password=hunter2",
            "secret_file: /run/secrets/db_password",
            "token_path=~/.config/gh/hosts.yml",
            "if password == Xk9mP2vL7qW3 {",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ] {
            assert!(secrets(text).is_empty(), "{text}: {:?}", secrets(text));
        }
    }
}

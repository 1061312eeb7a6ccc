//! Credentials with documented formats, private key blocks and JWTs, found
//! from their literal prefixes.
//!
//! Every documented prefix (`AKIA`, `ghp_`, `xoxb-`, `-----BEGIN `, `eyJ`, …)
//! starts a word, so the word pass ([`super::words`]) looks them up by the
//! word's first two bytes ([`at_word`], which also starts the classification
//! markings of [`super::marking`]): one bit test per word, and a comparison or
//! two for the few words that pass it. Entra ID client secrets, whose marker
//! `Q~` sits inside the token, are found from the `~` with `memchr`. Each
//! candidate is checked by hand against the provider's format: alphabet,
//! length, word boundaries, and for composite secrets (a service-account key
//! file, a connection string, a PEM block) the parts around it. Bodies that
//! are placeholders (`AKIAXXXXXXXXXXXXXXXX`, `…EXAMPLE…`) are not reported.

use base64::Engine as _;

use super::marking::{self, MarkingPattern};
use super::text::{before, is_alnum, is_b64, is_b64url, is_placeholder, is_word, run, word_start};
use super::{Hit, SensitiveType};

/// What a literal prefix starts.
#[derive(Debug, Clone, Copy)]
enum Lit {
    AwsAccessKey,
    GcpApiKey,
    GcpServiceAccount,
    AzureAccountKey,
    AzureSharedAccessKey,
    Github,
    GithubPat,
    Slack,
    SlackWebhook,
    StripeLive,
    StripeTest,
    StripeWebhook,
    SkDash,
    GoogleOauth,
    Npm,
    Pypi,
    Sendgrid,
    Twilio,
    Gitlab,
    Jwt,
    Marking(MarkingPattern),
}

/// The prefixes that can start at a word beginning with each byte, longest
/// first where one is a prefix of another. Every prefix is at least two bytes.
const fn prefixes(first: u8) -> &'static [(&'static [u8], Lit)] {
    use super::marking::{
        COMPANY_CONFIDENTIAL, CONFIDENTIAL, CONTROLLED_UNCLASSIFIED, CUI, FOR_INTERNAL_USE_ONLY,
        FOR_OFFICIAL_USE_ONLY, FOUO, HIGHLY_CONFIDENTIAL, INTERNAL_ONLY, INTERNAL_USE_ONLY,
        RESTRICTED, SECRET, STRICTLY_CONFIDENTIAL, TLP_AMBER, TLP_AMBER_SPACED, TLP_GREEN, TLP_RED,
        TOP_SECRET,
    };
    use Lit::Marking as M;
    match first {
        b'A' => &[
            (b"AccountKey=", Lit::AzureAccountKey),
            (b"AKIA", Lit::AwsAccessKey),
            (b"ASIA", Lit::AwsAccessKey),
            (b"AIza", Lit::GcpApiKey),
        ],
        b'C' => &[
            (
                b"CONTROLLED UNCLASSIFIED INFORMATION",
                M(CONTROLLED_UNCLASSIFIED),
            ),
            (b"COMPANY CONFIDENTIAL", M(COMPANY_CONFIDENTIAL)),
            (b"CONFIDENTIAL", M(CONFIDENTIAL)),
            (b"CUI", M(CUI)),
        ],
        b'F' => &[
            (b"FOR INTERNAL USE ONLY", M(FOR_INTERNAL_USE_ONLY)),
            (b"FOR OFFICIAL USE ONLY", M(FOR_OFFICIAL_USE_ONLY)),
            (b"FOUO", M(FOUO)),
        ],
        b'G' => &[(b"GOCSPX-", Lit::GoogleOauth)],
        b'H' => &[(b"HIGHLY CONFIDENTIAL", M(HIGHLY_CONFIDENTIAL))],
        b'I' => &[
            (b"INTERNAL USE ONLY", M(INTERNAL_USE_ONLY)),
            (b"INTERNAL ONLY", M(INTERNAL_ONLY)),
        ],
        b'R' => &[(b"RESTRICTED", M(RESTRICTED))],
        b'S' => &[
            (b"STRICTLY CONFIDENTIAL", M(STRICTLY_CONFIDENTIAL)),
            (b"SharedAccessKey=", Lit::AzureSharedAccessKey),
            (b"SECRET", M(SECRET)),
            (b"SG.", Lit::Sendgrid),
            (b"SK", Lit::Twilio),
        ],
        b'T' => &[
            (b"TOP SECRET", M(TOP_SECRET)),
            (b"TLP:AMBER", M(TLP_AMBER)),
            (b"TLP: AMBER", M(TLP_AMBER_SPACED)),
            (b"TLP:GREEN", M(TLP_GREEN)),
            (b"TLP:RED", M(TLP_RED)),
        ],
        b'e' => &[(b"eyJ", Lit::Jwt)],
        b'g' => &[
            (b"github_pat_", Lit::GithubPat),
            (b"ghp_", Lit::Github),
            (b"gho_", Lit::Github),
            (b"ghu_", Lit::Github),
            (b"ghs_", Lit::Github),
            (b"ghr_", Lit::Github),
            (b"glpat-", Lit::Gitlab),
        ],
        b'h' => &[(b"hooks.slack.com/services/", Lit::SlackWebhook)],
        b'n' => &[(b"npm_", Lit::Npm)],
        b'p' => &[(b"pypi-AgEIcHlwaS5vcmc", Lit::Pypi)],
        b'r' => &[
            (b"rk_live_", Lit::StripeLive),
            (b"rk_test_", Lit::StripeTest),
        ],
        b's' => &[
            (b"service_account", Lit::GcpServiceAccount),
            (b"sk_live_", Lit::StripeLive),
            (b"sk_test_", Lit::StripeTest),
            (b"sk-", Lit::SkDash),
        ],
        b'w' => &[(b"whsec_", Lit::StripeWebhook)],
        b'x' => &[
            (b"xoxb-", Lit::Slack),
            (b"xoxp-", Lit::Slack),
            (b"xoxa-", Lit::Slack),
            (b"xoxr-", Lit::Slack),
            (b"xoxs-", Lit::Slack),
            (b"xoxe-", Lit::Slack),
        ],
        _ => &[],
    }
}

/// Every prefix's first two bytes, for [`at_word`] to turn most words away
/// with one bit test.
static PAIRS: [u64; 1024] = {
    let mut set = [0u64; 1024];
    let mut first = 0;
    while first < 256 {
        let list = prefixes(first as u8);
        let mut i = 0;
        while i < list.len() {
            let key = first << 8 | list[i].0[1] as usize;
            set[key >> 6] |= 1 << (key & 63);
            i += 1;
        }
        first += 1;
    }
    set
};

/// Checks the credential prefixes and markings that can start at the word
/// beginning at `s`; returns the end of what it found.
#[inline]
pub(super) fn at_word(bytes: &[u8], s: usize, out: &mut Vec<Hit>) -> Option<usize> {
    let key = usize::from(bytes[s]) << 8 | usize::from(*bytes.get(s + 1)?);
    if PAIRS[key >> 6] & (1 << (key & 63)) == 0 {
        return None;
    }
    word_prefix(bytes, s, out)
}

/// [`at_word`] past its bit test.
fn word_prefix(bytes: &[u8], s: usize, out: &mut Vec<Hit>) -> Option<usize> {
    let rest = &bytes[s..];
    let &(prefix, lit) = prefixes(bytes[s])
        .iter()
        .find(|(p, _)| rest.starts_with(p))?;
    let e = s + prefix.len();
    let hit = match lit {
        Lit::Marking(pattern) => marking::check(bytes, s, e, pattern),
        _ => check(lit, bytes, s, e),
    }?;
    let end = hit.end;
    out.push(hit);
    Some(end)
}

/// Checks a `-----BEGIN ` at `s`; returns the end of the key block found.
#[inline]
pub(super) fn at_dashes(bytes: &[u8], s: usize, out: &mut Vec<Hit>) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if bytes.get(s + 4) != Some(&b'-') || !bytes[s..].starts_with(BEGIN) {
        return None;
    }
    let hit = private_key(bytes, s, s + BEGIN.len())?;
    let end = hit.end;
    out.push(hit);
    Some(end)
}

/// Every Entra ID client secret (found from its `Q~`, which is inside the
/// token rather than at its start).
pub(super) fn scan_client_secrets(bytes: &[u8], out: &mut Vec<Hit>) {
    for tilde in memchr::memchr_iter(b'~', bytes) {
        if tilde > 0 && bytes[tilde - 1] == b'Q' {
            out.extend(azure_client_secret(bytes, tilde - 1));
        }
    }
}

/// Checks the credential whose prefix is at `s..e`.
fn check(lit: Lit, bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    let hit = |ty, end, score, rule| Some(Hit::new(ty, s, end, score, rule));
    match lit {
        Lit::AwsAccessKey => {
            let end = token(
                bytes,
                s,
                e,
                |b| b.is_ascii_uppercase() || b.is_ascii_digit(),
                16,
                16,
            )?;
            hit(SensitiveType::AwsAccessKey, end, 0.95, "aws_access_key_id")
        }
        Lit::GcpApiKey => {
            let end = token(bytes, s, e, is_b64url, 35, 35)?;
            hit(SensitiveType::GcpApiKey, end, 0.95, "gcp_api_key")
        }
        Lit::Github => {
            let end = token(bytes, s, e, is_alnum, 36, 36)?;
            hit(SensitiveType::GithubToken, end, 0.95, "github_token")
        }
        Lit::GithubPat => {
            let end = token(bytes, s, e, is_word, 82, 82)?;
            hit(
                SensitiveType::GithubToken,
                end,
                0.95,
                "github_fine_grained_pat",
            )
        }
        Lit::Slack => slack_token(bytes, s, e),
        Lit::SlackWebhook => slack_webhook(bytes, s, e),
        Lit::StripeLive => {
            let end = token(bytes, s, e, is_alnum, 24, 247)?;
            hit(SensitiveType::StripeKey, end, 0.95, "stripe_live_key")
        }
        Lit::StripeTest => {
            let end = token(bytes, s, e, is_alnum, 24, 247)?;
            hit(SensitiveType::StripeKey, end, 0.7, "stripe_test_key")
        }
        Lit::StripeWebhook => {
            let end = token(bytes, s, e, is_alnum, 32, 64)?;
            hit(SensitiveType::StripeKey, end, 0.9, "stripe_webhook_secret")
        }
        Lit::SkDash => sk_dash(bytes, s, e),
        Lit::GoogleOauth => {
            let end = token(bytes, s, e, is_b64url, 28, 32)?;
            hit(
                SensitiveType::GoogleOauthSecret,
                end,
                0.95,
                "google_oauth_client_secret",
            )
        }
        Lit::Npm => {
            let end = token(bytes, s, e, is_alnum, 36, 36)?;
            hit(SensitiveType::NpmToken, end, 0.9, "npm_token")
        }
        Lit::Pypi => {
            let end = token(bytes, s, e, is_b64url, 50, 300)?;
            hit(SensitiveType::PypiToken, end, 0.95, "pypi_token")
        }
        Lit::Sendgrid => sendgrid(bytes, s, e),
        Lit::Twilio => {
            let end = token(bytes, s, e, |b| b.is_ascii_hexdigit(), 32, 32)?;
            hit(SensitiveType::TwilioKey, end, 0.8, "twilio_api_key")
        }
        Lit::Gitlab => {
            let end = token(bytes, s, e, is_b64url, 20, 64)?;
            hit(SensitiveType::GitlabToken, end, 0.95, "gitlab_pat")
        }
        Lit::AzureAccountKey => azure_key(bytes, s, e, 86, 2, true),
        Lit::AzureSharedAccessKey => azure_key(bytes, s, e, 43, 1, false),
        Lit::Jwt => jwt(bytes, s),
        Lit::GcpServiceAccount => service_account(bytes, s, e),
        Lit::Marking(_) => None,
    }
}

/// A token made of the prefix at `s..e` and a body of `min..=max` bytes
/// matching `body`, standing alone: no word byte before the prefix, nothing
/// of the body's alphabet (or a word byte) after it, and not a placeholder.
/// Returns its end.
fn token(
    bytes: &[u8],
    s: usize,
    e: usize,
    body: impl Fn(u8) -> bool + Copy,
    min: usize,
    max: usize,
) -> Option<usize> {
    if !word_start(bytes, s) || before(bytes, s) == Some(b'-') {
        return None;
    }
    let end = run(bytes, e, max + 1, body);
    let len = end - e;
    if !(min..=max).contains(&len) {
        return None;
    }
    if bytes.get(end).is_some_and(|&b| body(b) || is_word(b)) {
        return None;
    }
    if is_placeholder(&bytes[e..end]) {
        return None;
    }
    Some(end)
}

/// `xoxb-<digits>-<digits>-<secret>` and the other Slack token types.
fn slack_token(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    let end = token(bytes, s, e, |b| is_alnum(b) || b == b'-', 20, 250)?;
    let body = &bytes[e..end];
    let mut parts = body.split(|&b| b == b'-');
    let first = parts.next()?;
    let last = body.split(|&b| b == b'-').next_back()?;
    let count = body.iter().filter(|&&b| b == b'-').count() + 1;
    if count < 3 || first.is_empty() || !first.iter().all(u8::is_ascii_digit) || last.len() < 8 {
        return None;
    }
    Some(Hit::new(
        SensitiveType::SlackToken,
        s,
        end,
        0.9,
        "slack_token",
    ))
}

/// `https://hooks.slack.com/services/T…/B…/…`.
fn slack_webhook(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    let upper = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let part = |from: usize, lead: u8| -> Option<usize> {
        if bytes.get(from) != Some(&lead) {
            return None;
        }
        let end = run(bytes, from + 1, 13, upper);
        ((8..=12).contains(&(end - from - 1)) && bytes.get(end) == Some(&b'/')).then_some(end + 1)
    };
    let b = part(e, b'T')?;
    let secret = part(b, b'B')?;
    let end = run(bytes, secret, 33, is_alnum);
    if end - secret != 24
        || bytes.get(end).is_some_and(|&b| is_word(b))
        || is_placeholder(&bytes[secret..end])
    {
        return None;
    }
    let start = if bytes[..s].ends_with(b"https://") {
        s - 8
    } else {
        s
    };
    Some(Hit::new(
        SensitiveType::SlackWebhook,
        start,
        end,
        0.95,
        "slack_webhook",
    ))
}

/// `sk-ant-…` (Anthropic), `sk-proj-…` and the other OpenAI project, service
/// and admin keys, and legacy OpenAI `sk-` + 48.
fn sk_dash(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    let rest = &bytes[e..];
    if rest.starts_with(b"ant-") {
        let end = token(bytes, s, e + 4, is_b64url, 40, 250)?;
        return Some(Hit::new(
            SensitiveType::AnthropicKey,
            s,
            end,
            0.95,
            "anthropic_key",
        ));
    }
    for kind in [&b"proj-"[..], b"svcacct-", b"admin-"] {
        if rest.starts_with(kind) {
            let end = token(bytes, s, e + kind.len(), is_b64url, 40, 250)?;
            return Some(Hit::new(
                SensitiveType::OpenaiKey,
                s,
                end,
                0.95,
                "openai_project_key",
            ));
        }
    }
    let end = token(bytes, s, e, is_b64url, 40, 250)?;
    let body = &bytes[e..end];
    let legacy = body.len() == 48 && body.iter().all(|&b| is_alnum(b));
    let marked = memchr::memmem::find(body, b"T3BlbkFJ").is_some();
    (legacy || marked).then(|| Hit::new(SensitiveType::OpenaiKey, s, end, 0.9, "openai_key"))
}

/// `SG.` + 22 + `.` + 43 (base64url).
fn sendgrid(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    if !word_start(bytes, s) {
        return None;
    }
    let mid = run(bytes, e, 23, is_b64url);
    if mid - e != 22 || bytes.get(mid) != Some(&b'.') {
        return None;
    }
    let end = run(bytes, mid + 1, 44, is_b64url);
    if end - mid - 1 != 43 || bytes.get(end).is_some_and(|&b| is_b64url(b)) {
        return None;
    }
    if is_placeholder(&bytes[e..mid]) {
        return None;
    }
    Some(Hit::new(
        SensitiveType::SendgridKey,
        s,
        end,
        0.95,
        "sendgrid_key",
    ))
}

/// `AccountKey=` + 86 base64 + `==` (a storage account key, 64 bytes), or
/// `SharedAccessKey=` + 43 + `=` (a Service Bus / Event Hubs key, 32 bytes,
/// reported only inside a connection string). Inside a connection string the
/// whole string is the finding.
fn azure_key(bytes: &[u8], s: usize, e: usize, len: usize, pad: usize, bare: bool) -> Option<Hit> {
    let body_end = run(bytes, e, len + 1, is_b64);
    let end = run(bytes, body_end, pad + 1, |b| b == b'=');
    if body_end - e != len || end - body_end != pad || bytes.get(end).is_some_and(|&b| is_b64(b)) {
        return None;
    }
    if is_placeholder(&bytes[e..body_end]) {
        return None;
    }
    // The token the key is part of: back to whitespace or a quote.
    let from = s.saturating_sub(1024);
    let token_start = bytes[from..s]
        .iter()
        .rposition(|&b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`'))
        .map_or(from, |p| from + p + 1);
    let head = &bytes[token_start..s];
    let key = [
        &b"DefaultEndpointsProtocol="[..],
        b"Endpoint=",
        b"AccountName=",
    ]
    .iter()
    .filter_map(|k| memchr::memmem::find(head, k))
    .min();
    if let Some(at) = key {
        let tail = run(bytes, end, 1024, |b| {
            !(b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`' | b','))
        });
        let mut stop = tail;
        while stop > end && matches!(bytes[stop - 1], b';' | b'.') {
            stop -= 1;
        }
        return Some(Hit::new(
            SensitiveType::AzureConnectionString,
            token_start + at,
            stop,
            0.95,
            "azure_connection_string",
        ));
    }
    bare.then(|| {
        Hit::new(
            SensitiveType::AzureStorageKey,
            e,
            end,
            0.9,
            "azure_account_key",
        )
    })
}

/// An Entra ID client secret: three characters, a digit, `Q~`, then 31–34
/// characters of `[A-Za-z0-9_~.-]`. `s` is where `Q~` is.
fn azure_client_secret(bytes: &[u8], s: usize) -> Option<Hit> {
    let charset = |b: u8| is_b64url(b) || b == b'~' || b == b'.';
    let start = s.checked_sub(4)?;
    if !bytes[start..s].iter().all(|&b| charset(b))
        || !bytes[s - 1].is_ascii_digit()
        || before(bytes, start).is_some_and(charset)
    {
        return None;
    }
    let mut end = run(bytes, s + 2, 36, charset);
    while end > s + 2 && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let body = &bytes[s + 2..end];
    if !(31..=34).contains(&body.len()) || bytes.get(end).is_some_and(|&b| charset(b) && b != b'.')
    {
        return None;
    }
    let classes = super::text::Classes::of(&bytes[start..end]);
    if !(classes.lower && classes.upper && classes.digit) || is_placeholder(body) {
        return None;
    }
    Some(Hit::new(
        SensitiveType::AzureClientSecret,
        start,
        end,
        0.8,
        "azure_client_secret",
    ))
}

/// `-----BEGIN … PRIVATE KEY-----` through its `-----END …-----` line (or,
/// when the end is cut off, through the base64 that follows).
fn private_key(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    const MAX_BLOCK: usize = 64 * 1024;
    let label_end = run(bytes, e, 40, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = &bytes[e..label_end];
    if !bytes[label_end..].starts_with(b"-----")
        || !(label.ends_with(b"PRIVATE KEY") || label == b"PGP PRIVATE KEY BLOCK")
    {
        return None;
    }
    let body_start = label_end + 5;
    let window = &bytes[body_start..bytes.len().min(body_start + MAX_BLOCK)];
    let mut end_marker = None;
    for at in memchr::memmem::find_iter(window, b"-----END ") {
        let rest = &window[at + 9..];
        if rest.starts_with(label) && rest[label.len()..].starts_with(b"-----") {
            end_marker = Some(body_start + at + 9 + label.len() + 5);
            break;
        }
    }
    let (end, body, score, rule) = match end_marker {
        Some(end) => (end, &bytes[body_start..end], 0.99, "pem_block"),
        None => {
            let end = run(bytes, body_start, MAX_BLOCK, |b| {
                is_b64(b) || matches!(b, b'=' | b'\r' | b'\n' | b'\\')
            });
            (end, &bytes[body_start..end], 0.85, "pem_block_truncated")
        }
    };
    let payload = body.iter().filter(|&&b| is_b64(b)).count();
    if payload < 40 || is_placeholder(body) {
        return None;
    }
    Some(Hit::new(SensitiveType::PrivateKey, s, end, score, rule))
}

/// A JWT: three base64url segments, the first two JSON objects, the header
/// naming its `alg`.
fn jwt(bytes: &[u8], s: usize) -> Option<Hit> {
    const MAX_SEGMENT: usize = 8 * 1024;
    if before(bytes, s).is_some_and(|b| is_b64url(b) || matches!(b, b'.' | b'/' | b'+')) {
        return None;
    }
    let h_end = run(bytes, s, MAX_SEGMENT, is_b64url);
    if bytes.get(h_end) != Some(&b'.') {
        return None;
    }
    let p_end = run(bytes, h_end + 1, MAX_SEGMENT, is_b64url);
    if p_end == h_end + 1 || bytes.get(p_end) != Some(&b'.') {
        return None;
    }
    let end = run(bytes, p_end + 1, MAX_SEGMENT, is_b64url);
    // A fourth segment would make it something else (a JWE has five).
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(|&b| is_b64url(b)) {
        return None;
    }
    let header = decode_json_object(&bytes[s..h_end])?;
    if !header.get("alg").is_some_and(serde_json::Value::is_string) {
        return None;
    }
    decode_json_object(&bytes[h_end + 1..p_end])?;
    let score = if end == p_end + 1 { 0.85 } else { 0.95 };
    Some(Hit::new(SensitiveType::Jwt, s, end, score, "jwt"))
}

/// Decodes a base64url segment (padded or not) into a JSON object.
fn decode_json_object(segment: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let trimmed = segment
        .strip_suffix(b"==")
        .or_else(|| segment.strip_suffix(b"="))
        .unwrap_or(segment);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// A Google Cloud service-account key file: `"type": "service_account"` and
/// a `"private_key"` holding a PEM block, in the same JSON object. `s..e` is
/// the `service_account` literal.
fn service_account(bytes: &[u8], s: usize, e: usize) -> Option<Hit> {
    const REACH: usize = 8 * 1024;
    // `"type"` then `": "` (or its escaped form) right before the literal.
    let from = s.saturating_sub(24);
    let lead = &bytes[from..s];
    let type_at = memchr::memmem::rfind(lead, b"type")?;
    if !lead[type_at + 4..]
        .iter()
        .all(|&b| matches!(b, b'"' | b'\\' | b':' | b' ' | b'\t'))
        || !lead.ends_with(b"\"")
    {
        return None;
    }
    let type_start = from + type_at - usize::from(type_at > 0 && lead[type_at - 1] == b'"');
    let lo = s.saturating_sub(REACH);
    let hi = bytes.len().min(e + REACH);
    let window = &bytes[lo..hi];
    for at in memchr::memmem::find_iter(window, b"private_key") {
        let key_start = lo + at;
        let after = key_start + 11;
        // Not `private_key_id`: the key must close with a quote.
        let sep_end = run(bytes, after, 8, |b| {
            matches!(b, b'"' | b'\\' | b':' | b' ' | b'\t')
        });
        if sep_end == after || !bytes[after..sep_end].contains(&b':') {
            continue;
        }
        if !bytes[sep_end..].starts_with(b"-----BEGIN") {
            continue;
        }
        let end_at = memchr::memmem::find(bytes.get(sep_end..hi)?, b"-----END")?;
        let quote = memchr::memchr(b'"', bytes.get(sep_end + end_at..hi)?)?;
        let pk_end = sep_end + end_at + quote + 1;
        let key_quote = key_start - usize::from(key_start > 0 && bytes[key_start - 1] == b'"');
        let start = type_start.min(key_quote);
        let end = pk_end.max(e + 1);
        return Some(Hit::new(
            SensitiveType::GcpServiceAccount,
            start,
            end.min(bytes.len()),
            0.97,
            "gcp_service_account",
        ));
    }
    None
}

#[cfg(test)]
mod tests;

//! What a detector reports.

use serde::{Deserialize, Serialize};

/// A byte range in the original (un-normalised) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the text a finding was made in was reached: directly, or by undoing an
/// encoding or extracting hidden markup. Stated in findings so that a reader
/// sees the obfuscation that was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The text as written (after Unicode normalisation).
    Text,
    /// Base64 decoded.
    Base64,
    /// Hex decoded.
    Hex,
    /// URL percent-decoding.
    Url,
    /// rot13.
    Rot13,
    /// An HTML comment.
    HtmlComment,
    /// An HTML attribute that is not shown (`alt`, `title`, `aria-label`, …).
    HtmlAttribute,
    /// HTML content styled to be invisible (`display:none`, zero font size, …).
    HtmlInvisible,
    /// A Markdown comment or link title, or an image's alt text.
    Markdown,
}

impl Via {
    /// Its name as it appears in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Text => "text",
            Via::Base64 => "base64",
            Via::Hex => "hex",
            Via::Url => "url",
            Via::Rot13 => "rot13",
            Via::HtmlComment => "html_comment",
            Via::HtmlAttribute => "html_attribute",
            Via::HtmlInvisible => "html_invisible",
            Via::Markdown => "markdown",
        }
    }
}

/// The kind of a finding: prompt injection, or one type of sensitive data.
/// Written `prompt_injection` or `sensitive.<type>` (as in verdicts and audit
/// records).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FindingKind {
    /// Instructions aimed at the model: a direct jailbreak or an injection
    /// hidden in content.
    PromptInjection,
    /// Sensitive data of the named type (`email`, `payment_card`, `aws_access_key`, …).
    Sensitive(String),
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindingKind::PromptInjection => f.write_str("prompt_injection"),
            FindingKind::Sensitive(t) => write!(f, "sensitive.{t}"),
        }
    }
}

impl From<FindingKind> for String {
    fn from(k: FindingKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for FindingKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s == "prompt_injection" {
            return Ok(FindingKind::PromptInjection);
        }
        match s.strip_prefix("sensitive.") {
            Some(t) if !t.is_empty() => Ok(FindingKind::Sensitive(t.to_owned())),
            _ => Err(format!(
                "unknown finding kind `{s}`, expected `prompt_injection` or `sensitive.<type>`"
            )),
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// Where, in the original text.
    pub span: Span,
    /// Calibrated probability (injection) or confidence (sensitive data), 0–1.
    pub score: f32,
    /// How the text was reached.
    pub via: Via,
    /// Which rule or detector fired (`pattern:ignore_previous`, `model`, `luhn`, …).
    pub rule: String,
    /// For sensitive data: a keyed hash (HMAC-SHA-256, hex, truncated to 16
    /// bytes) of the matched value, so that the same secret can be recognised
    /// across records without being stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

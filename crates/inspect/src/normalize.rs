//! Normalisation: the views of a text that the detectors scan.
//!
//! STUB (to be replaced): the contract is `views(text)` returns, first, the
//! whole text normalised (NFKC, zero-width and bidi controls removed,
//! homoglyphs folded), then hidden parts of HTML/Markdown and decoded embedded
//! encodings, each normalised too. `View::original` maps a byte range of the
//! view back to a span of the original text.

use crate::{Span, Via};

/// One text to scan, and where it came from.
#[derive(Debug, Clone)]
pub struct View {
    /// The normalised text.
    pub text: String,
    /// How it was reached.
    pub via: Via,
    /// The span of the original text it was made from.
    pub source: Span,
}

impl View {
    /// The span of the original text that the view's bytes `start..end` came from.
    pub fn original(&self, start: usize, end: usize) -> Span {
        if self.via == Via::Text {
            Span::new(start, end)
        } else {
            self.source
        }
    }
}

/// The views of `text`, the whole normalised text first.
pub fn views(text: &str) -> Vec<View> {
    vec![View {
        text: text.to_owned(),
        via: Via::Text,
        source: Span::new(0, text.len()),
    }]
}

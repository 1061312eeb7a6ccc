//! Content inspection: the probabilistic layer of "assume breach".
//!
//! - [`normalize`] turns a text into the *views* the detectors scan: the text
//!   itself with Unicode tricks undone (NFKC, zero-width and bidi controls
//!   removed, homoglyphs folded), the hidden parts of HTML and Markdown
//!   (comments, alt text, invisible styling, link titles), and the payloads of
//!   embedded encodings (base64, hex, URL-encoding, rot13), decoded.
//! - [`injection`] scores each view for prompt injection: a pattern tier and a
//!   small learned linear model ([`model`]) over hashed n-grams, calibrated to a
//!   probability.
//! - [`sensitive`] finds sensitive data (contact details, payment cards, IBANs,
//!   SSNs, credentials, private keys, JWTs, classification markings, custom
//!   dictionaries) with validators that keep near-misses out.
//! - [`spotlight`] marks untrusted text as data before a model sees it.
//!
//! Findings carry a kind, a span in the original text and a score; they never
//! carry the matched text itself, only a keyed hash of it ([`Finding::digest`]).

pub mod hidden;
pub mod injection;
mod inspector;
pub mod model;
pub mod normalize;
pub mod sensitive;
pub mod spotlight;

mod finding;

pub use finding::{Finding, FindingKind, Span, Via};
pub use injection::Provenance;
pub use inspector::{Detectors, InspectError, Inspector};

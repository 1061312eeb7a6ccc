//! The inspector: both detectors behind one call, configured from the inventory.

use std::collections::BTreeMap;

use zt4ai_core::inventory::Inspection;
use zt4ai_core::{Category, Label};

use crate::injection::{InjectionDetector, Provenance};
use crate::model::ModelError;
use crate::normalize;
use crate::sensitive::{self, Dictionary, SensitiveScanner};
use crate::{Finding, FindingKind};

/// Sensitive types that raise no label on their own.
const CONTACT: [&str; 3] = ["email", "phone", "ip_address"];

/// Which detectors to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detectors {
    /// Prompt injection only.
    Injection,
    /// Sensitive data only.
    Sensitive,
    /// Both.
    All,
}

/// Why an inspector cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The injection model is unusable.
    #[error("injection model: {0}")]
    Model(#[from] ModelError),
    /// The sensitive-data scanner could not be built (a dictionary is unusable).
    #[error("sensitive-data scanner: {0}")]
    Sensitive(#[from] sensitive::SensitiveError),
}

/// Both detectors, and what their findings mean for a session's label.
#[derive(Debug)]
pub struct Inspector {
    injection: InjectionDetector,
    sensitive: SensitiveScanner,
    /// Label and category of each custom dictionary.
    dictionaries: BTreeMap<String, (Label, Category)>,
}

impl Inspector {
    /// The inspector an inventory asks for: the built-in model (at the
    /// inventory's threshold, if it sets one) and its dictionaries. `key` keys
    /// the hashes that findings carry instead of the values they found.
    pub fn from_inventory(
        inspection: &Inspection,
        key: [u8; 32],
    ) -> Result<Inspector, InspectError> {
        let mut injection = InjectionDetector::builtin()?;
        if let Some(t) = inspection.injection_threshold {
            injection = injection.with_threshold(t);
        }
        let dictionaries = inspection
            .dictionaries
            .iter()
            .map(|d| Dictionary {
                name: d.name.clone(),
                category: d.category.as_str().to_owned(),
                terms: d.terms.clone(),
                case_sensitive: d.case_sensitive,
            })
            .collect();
        Ok(Inspector {
            injection,
            sensitive: SensitiveScanner::new(dictionaries, key)?,
            dictionaries: inspection
                .dictionaries
                .iter()
                .map(|d| (d.name.clone(), (d.label, d.category.clone())))
                .collect(),
        })
    }

    /// Runs the chosen detectors over untrusted `text`: injection findings
    /// first (best first), then sensitive data in order of position.
    pub fn inspect(&self, text: &str, detectors: Detectors) -> Vec<Finding> {
        self.inspect_as(text, detectors, Provenance::Untrusted)
    }

    /// [`Self::inspect`] for text of `provenance` (which sets the injection
    /// threshold; sensitive data is found alike).
    pub fn inspect_as(
        &self,
        text: &str,
        detectors: Detectors,
        provenance: Provenance,
    ) -> Vec<Finding> {
        // One normalisation for both detectors.
        let views = normalize::views(text);
        let mut out = Vec::new();
        if detectors != Detectors::Sensitive {
            out.extend(self.injection.scan_views(&views, provenance));
        }
        if detectors != Detectors::Injection {
            out.extend(self.sensitive_in(&views));
        }
        out
    }

    /// The injection detector.
    pub fn injection(&self) -> &InjectionDetector {
        &self.injection
    }

    /// Sensitive data in every view of `text` (so a card number split by
    /// zero-width characters or base64-encoded is still found), with spans in
    /// the original text and duplicates across views dropped.
    fn sensitive_in(&self, views: &[normalize::View]) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        for view in views {
            for mut f in self.sensitive.scan(&view.text) {
                f.span = view.original(f.span.start, f.span.end);
                f.via = view.via;
                if !out
                    .iter()
                    .any(|g| g.kind == f.kind && g.digest == f.digest && g.span == f.span)
                {
                    out.push(f);
                }
            }
        }
        out.sort_by_key(|f| (f.span.start, f.span.end));
        out
    }

    /// The label and category a sensitive finding gives what holds it; `None`
    /// for injection findings.
    pub fn classify(&self, kind: &FindingKind) -> Option<(Label, Category)> {
        let FindingKind::Sensitive(name) = kind else {
            return None;
        };
        if let Some(d) = self.dictionaries.get(name) {
            return Some(d.clone());
        }
        let (category, label) = sensitive::classify(name)?;
        // Contact details are everywhere in ordinary mail (signatures,
        // addresses, hosts in logs): they add their category, so a policy can
        // act on it, but no confidentiality on their own. Otherwise every
        // outgoing mail with a signature would be stopped.
        let label = if CONTACT.contains(&name.as_str()) {
            Label::Public
        } else {
            label.parse().ok()?
        };
        Some((label, Category::new(category).ok()?))
    }
}

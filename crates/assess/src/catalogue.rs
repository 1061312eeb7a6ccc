//! The control catalogue, kept as data in `catalogue/controls.yaml`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::model::{Assessment, Control};

/// The catalogue shipped with zt4ai.
pub const CONTROLS_YAML: &str = include_str!("../catalogue/controls.yaml");
/// The framework identifiers controls may refer to.
pub const REFERENCES_YAML: &str = include_str!("../catalogue/references.yaml");

/// The catalogue file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Catalogue version (`YYYY.MM.N`).
    pub version: String,
    /// The controls, in report order.
    pub controls: Vec<Control>,
}

/// Valid identifiers per framework, each with its title.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSets {
    /// NIST AI RMF 1.0 subcategories.
    pub nist_ai_rmf: BTreeMap<String, String>,
    /// OWASP Top 10 for LLM Applications 2025.
    pub owasp_llm: BTreeMap<String, String>,
    /// OWASP Agentic AI threats.
    pub owasp_agentic: BTreeMap<String, String>,
    /// MITRE ATLAS techniques.
    pub mitre_atlas: BTreeMap<String, String>,
    /// CISA Zero Trust Maturity Model pillars and functions.
    pub cisa_ztmm: BTreeMap<String, String>,
}

/// Why the catalogue is not well formed.
#[derive(Debug, thiserror::Error)]
#[error("control catalogue: {0}")]
pub struct CatalogueError(pub String);

impl Catalogue {
    /// The built-in catalogue, checked.
    pub fn builtin() -> Result<Catalogue, CatalogueError> {
        let c: Catalogue = serde_yaml_ng::from_str(CONTROLS_YAML)
            .map_err(|e| CatalogueError(format!("catalogue/controls.yaml: {e}")))?;
        let refs = ReferenceSets::builtin()?;
        let problems = c.problems(&refs);
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(CatalogueError(problems.join("; ")))
        }
    }

    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// Everything wrong with the catalogue: duplicate ids, unknown references,
    /// automated controls whose check does not exist, dependencies on unknown
    /// controls or in a cycle.
    pub fn problems(&self, refs: &ReferenceSets) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = BTreeSet::new();
        for c in &self.controls {
            if !ids.insert(c.id.as_str()) {
                out.push(format!("{}: duplicate id", c.id));
            }
            if c.title.trim().is_empty()
                || c.description.trim().is_empty()
                || c.remediation.trim().is_empty()
            {
                out.push(format!(
                    "{}: title, description and remediation must not be empty",
                    c.id
                ));
            }
            let r = &c.references;
            for (set, valid, name) in [
                (&r.nist_ai_rmf, &refs.nist_ai_rmf, "nist_ai_rmf"),
                (&r.owasp_llm, &refs.owasp_llm, "owasp_llm"),
                (&r.owasp_agentic, &refs.owasp_agentic, "owasp_agentic"),
                (&r.mitre_atlas, &refs.mitre_atlas, "mitre_atlas"),
                (&r.cisa_ztmm, &refs.cisa_ztmm, "cisa_ztmm"),
            ] {
                for id in set {
                    if !valid.contains_key(id) {
                        out.push(format!("{}: unknown {name} reference `{id}`", c.id));
                    }
                }
            }
            if let Assessment::Automated { check } = &c.assessment
                && crate::checks::find(check).is_none()
            {
                out.push(format!("{}: no automated check `{check}`", c.id));
            }
        }
        for c in &self.controls {
            for d in &c.depends_on {
                if !ids.contains(d.as_str()) {
                    out.push(format!("{}: depends on unknown control `{d}`", c.id));
                }
            }
        }
        if let Some(cycle) = self.dependency_cycle() {
            out.push(format!("dependency cycle through {cycle}"));
        }
        out
    }

    fn dependency_cycle(&self) -> Option<String> {
        // 0 unvisited, 1 on the stack, 2 done.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        fn visit<'a>(c: &'a Catalogue, id: &'a str, state: &mut BTreeMap<&'a str, u8>) -> bool {
            match state.get(id) {
                Some(1) => return true,
                Some(2) => return false,
                _ => {}
            }
            state.insert(id, 1);
            if let Some(ctl) = c.control(id) {
                for d in &ctl.depends_on {
                    if visit(c, d, state) {
                        return true;
                    }
                }
            }
            state.insert(id, 2);
            false
        }
        self.controls
            .iter()
            .find(|c| visit(self, &c.id, &mut state))
            .map(|c| c.id.clone())
    }
}

impl ReferenceSets {
    /// The built-in reference sets.
    pub fn builtin() -> Result<ReferenceSets, CatalogueError> {
        serde_yaml_ng::from_str(REFERENCES_YAML)
            .map_err(|e| CatalogueError(format!("catalogue/references.yaml: {e}")))
    }
}

//! zt4ai posture assessment.
//!
//! Where does an AI deployment stand against Zero Trust for AI, and what should be
//! done next? This crate answers with a [control catalogue](catalogue) kept as
//! data, [automated checks](checks) against the inventory, the policies, the audit
//! log and a running gateway, [scores and maturity](score) per pillar, a phased
//! [roadmap], and [reports](report) as JSON, Markdown, SARIF 2.1.0 and a
//! self-contained HTML page.

pub mod catalogue;
pub mod checks;
pub mod model;
pub mod report;
pub mod roadmap;
pub mod score;
pub mod threat;

pub use catalogue::{Catalogue, CatalogueError};
pub use checks::{Check, Deployment, LoadError, Options};
pub use model::*;

use std::collections::BTreeMap;

/// Runs every control of `catalogue` against `deployment`.
///
/// `assessed_at` is the report's timestamp (RFC 3339). `progress` is called
/// before each control with its position, the total and its id, so long runs can
/// show where they are.
pub fn assess(
    deployment: &Deployment,
    catalogue: &Catalogue,
    assessed_at: &str,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Report {
    let total = catalogue.controls.len();
    let mut results = Vec::with_capacity(total);
    for (i, c) in catalogue.controls.iter().enumerate() {
        progress(i, total, &c.id);
        let (status, summary, evidence, check) = match &c.assessment {
            Assessment::Manual { question } => (Status::Manual, question.clone(), Vec::new(), None),
            Assessment::Automated { check } => match checks::find(check) {
                Some(ch) => {
                    let _span = tracing::debug_span!("check", id = ch.id).entered();
                    let o = (ch.run)(deployment);
                    (o.status, o.summary, o.evidence, Some(check.clone()))
                }
                // The built-in catalogue is checked by a test; a hand-edited one may not be.
                None => (
                    Status::Skipped,
                    format!("zt4ai has no check `{check}`"),
                    Vec::new(),
                    Some(check.clone()),
                ),
            },
        };
        results.push(ControlResult {
            control: c.id.clone(),
            title: c.title.clone(),
            pillar: c.pillar,
            severity: c.severity,
            status,
            summary,
            evidence,
            check,
            remediation: c.remediation.clone(),
        });
    }
    progress(total, total, "");
    let pillars = score::pillars(&results);
    let mut counts = Counts::default();
    for r in &results {
        counts.add(r.status);
    }
    let inv = &deployment.inventory;
    let policy_count = deployment.custom_policy_count();
    let target = Target {
        organisation: inv.organisation.clone(),
        inventory: deployment.inventory_file.clone(),
        policies: deployment.policies.iter().map(|p| p.name.clone()).collect(),
        data_dir: deployment.data_dir.clone(),
        gateway: deployment.gateway.clone(),
        counts: BTreeMap::from([
            ("agents".to_owned(), inv.agents.len()),
            ("users".to_owned(), inv.users.len()),
            ("tools".to_owned(), inv.tools.len()),
            ("datasets".to_owned(), inv.datasets.len()),
            ("destinations".to_owned(), inv.destinations.len()),
            ("models".to_owned(), inv.models.len()),
            ("policies".to_owned(), policy_count),
        ]),
    };
    Report {
        format: REPORT_FORMAT,
        zt4ai_version: env!("CARGO_PKG_VERSION").to_owned(),
        catalogue_version: catalogue.version.clone(),
        assessed_at: assessed_at.to_owned(),
        target,
        score: score::score(&results),
        maturity: score::overall_maturity(&pillars),
        counts,
        pillars,
        roadmap: roadmap::build(catalogue, &results),
        results,
        comparison: None,
        threat_model: Some(threat_summary(deployment, catalogue)),
    }
}

/// The threat model of `deployment`, in brief (no document link yet).
fn threat_summary(deployment: &Deployment, catalogue: &Catalogue) -> ThreatSummary {
    use threat::model::Mitigation;
    let m = threat::derive::derive(deployment, catalogue);
    let count = |s: Mitigation| m.threats.iter().filter(|t| t.status == s).count();
    ThreatSummary {
        document: None,
        threats: m.threats.len(),
        unmitigated: count(Mitigation::Unmitigated),
        partly_mitigated: count(Mitigation::PartlyMitigated),
        mitigated: count(Mitigation::Mitigated),
        open: m
            .threats
            .iter()
            .filter(|t| t.status == Mitigation::Unmitigated)
            .map(|t| OpenThreat {
                id: t.id.clone(),
                class: t.class.title().to_owned(),
                scenario: t.scenario.clone(),
            })
            .collect(),
    }
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2026-12-02T05:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}

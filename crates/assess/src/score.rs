//! Scores and maturity.
//!
//! **Score.** Each assessed result weighs its control's severity (critical 10,
//! high 6, medium 3, low 1). A passed control earns its full weight, one to
//! investigate half, a failed one nothing; skipped and manual controls are left
//! out. A score is the earned share of the weight, 0–100, per pillar and overall;
//! a pillar with nothing assessed has no score.
//!
//! **Maturity** per pillar, in the sense of the CISA Zero Trust Maturity Model's
//! stages, from the score and from what failed:
//!
//! | stage | rule |
//! |---|---|
//! | Optimal | score ≥ 90, no critical or high control failed, and at least 75 % of the pillar's automated controls could be assessed |
//! | Advanced | score ≥ 75 and no critical control failed |
//! | Initial | score ≥ 50 |
//! | Traditional | otherwise, or nothing assessed |
//!
//! Overall maturity is the lowest stage among the pillars that have a score: a
//! deployment is as mature as its weakest assessed pillar.

use crate::model::{ControlResult, Counts, Maturity, Pillar, PillarScore, Severity, Status};

/// Score (0–100) of some results; `None` when none was assessed.
pub fn score<'a>(results: impl IntoIterator<Item = &'a ControlResult>) -> Option<f64> {
    let (mut earned, mut total) = (0u32, 0u32);
    for r in results {
        let w = r.severity.weight();
        match r.status {
            Status::Passed => {
                earned += 2 * w;
                total += 2 * w;
            }
            Status::Investigate => {
                earned += w;
                total += 2 * w;
            }
            Status::Failed => total += 2 * w,
            Status::Skipped | Status::Manual => {}
        }
    }
    (total > 0).then(|| (f64::from(earned) * 1000.0 / f64::from(total)).round() / 10.0)
}

/// A pillar's maturity from its results (see the module docs for the rule).
pub fn maturity(results: &[&ControlResult]) -> Maturity {
    let Some(s) = score(results.iter().copied()) else {
        return Maturity::Traditional;
    };
    let failed = |sev: Severity| {
        results
            .iter()
            .any(|r| r.status == Status::Failed && r.severity == sev)
    };
    let automated = results.iter().filter(|r| r.check.is_some()).count();
    let assessed = results
        .iter()
        .filter(|r| r.check.is_some() && r.status != Status::Skipped)
        .count();
    let coverage_ok = automated == 0 || assessed * 4 >= automated * 3;
    if s >= 90.0 && !failed(Severity::Critical) && !failed(Severity::High) && coverage_ok {
        Maturity::Optimal
    } else if s >= 75.0 && !failed(Severity::Critical) {
        Maturity::Advanced
    } else if s >= 50.0 {
        Maturity::Initial
    } else {
        Maturity::Traditional
    }
}

/// Per-pillar scores, counts and maturity.
pub fn pillars(results: &[ControlResult]) -> Vec<PillarScore> {
    Pillar::ALL
        .iter()
        .map(|&p| {
            let mine: Vec<&ControlResult> = results.iter().filter(|r| r.pillar == p).collect();
            let mut counts = Counts::default();
            for r in &mine {
                counts.add(r.status);
            }
            PillarScore {
                pillar: p,
                score: score(mine.iter().copied()),
                maturity: maturity(&mine),
                counts,
            }
        })
        .collect()
}

/// Overall maturity: the lowest among pillars with a score.
pub fn overall_maturity(pillars: &[PillarScore]) -> Maturity {
    pillars
        .iter()
        .filter(|p| p.score.is_some())
        .map(|p| p.maturity)
        .min()
        .unwrap_or(Maturity::Traditional)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(sev: Severity, status: Status) -> ControlResult {
        ControlResult {
            control: "X".into(),
            title: "x".into(),
            pillar: Pillar::Identity,
            severity: sev,
            status,
            summary: String::new(),
            evidence: Vec::new(),
            check: Some("c".into()),
            remediation: String::new(),
        }
    }

    #[test]
    fn weights_and_half_credit() {
        assert_eq!(score(&[]), None);
        assert_eq!(score(&[r(Severity::Low, Status::Skipped)]), None);
        let rs = [
            r(Severity::Critical, Status::Passed),
            r(Severity::Critical, Status::Failed),
        ];
        assert_eq!(score(&rs), Some(50.0));
        let rs = [r(Severity::High, Status::Investigate)];
        assert_eq!(score(&rs), Some(50.0));
        let rs = [
            r(Severity::Critical, Status::Passed),
            r(Severity::Low, Status::Failed),
        ];
        assert_eq!(score(&rs), Some(90.9));
    }

    #[test]
    fn maturity_rules() {
        let all_pass = [
            r(Severity::High, Status::Passed),
            r(Severity::Low, Status::Passed),
        ];
        assert_eq!(
            maturity(&all_pass.iter().collect::<Vec<_>>()),
            Maturity::Optimal
        );
        // 90.9 but a high failed: advanced.
        let mut rs: Vec<ControlResult> =
            (0..10).map(|_| r(Severity::High, Status::Passed)).collect();
        rs.push(r(Severity::High, Status::Failed));
        assert_eq!(maturity(&rs.iter().collect::<Vec<_>>()), Maturity::Advanced);
        // A critical failure caps at initial, however high the score.
        let mut rs: Vec<ControlResult> = (0..20)
            .map(|_| r(Severity::Critical, Status::Passed))
            .collect();
        rs.push(r(Severity::Critical, Status::Failed));
        assert_eq!(maturity(&rs.iter().collect::<Vec<_>>()), Maturity::Initial);
        // Too little assessed for optimal.
        let mut rs: Vec<ControlResult> =
            (0..3).map(|_| r(Severity::Low, Status::Skipped)).collect();
        rs.push(r(Severity::Low, Status::Passed));
        assert_eq!(maturity(&rs.iter().collect::<Vec<_>>()), Maturity::Advanced);
        let rs = [r(Severity::Low, Status::Failed)];
        assert_eq!(
            maturity(&rs.iter().collect::<Vec<_>>()),
            Maturity::Traditional
        );
    }
}

//! `--compare`: what improved and what regressed since an earlier report.

use std::collections::HashMap;

use crate::model::{Change, Comparison, ControlResult, PillarDelta, Report, Status};

/// How good a status is, for deciding improved or regressed: failed < investigate
/// < passed. Skipped and manual are not ranked (a change to or from them is
/// "other").
fn rank(s: Status) -> Option<u8> {
    match s {
        Status::Failed => Some(0),
        Status::Investigate => Some(1),
        Status::Passed => Some(2),
        Status::Skipped | Status::Manual => None,
    }
}

fn change(r: &ControlResult, before: Option<Status>) -> Change {
    Change {
        control: r.control.clone(),
        title: r.title.clone(),
        severity: r.severity,
        before,
        after: r.status,
    }
}

/// Compares `now` with `earlier`.
pub fn compare(earlier: &Report, now: &Report) -> Comparison {
    let before: HashMap<&str, Status> = earlier
        .results
        .iter()
        .map(|r| (r.control.as_str(), r.status))
        .collect();
    let (mut improved, mut regressed, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for r in &now.results {
        let b = before.get(r.control.as_str()).copied();
        match b {
            Some(b) if b == r.status => {}
            Some(b) => match (rank(b), rank(r.status)) {
                (Some(x), Some(y)) if y > x => improved.push(change(r, Some(b))),
                (Some(x), Some(y)) if y < x => regressed.push(change(r, Some(b))),
                _ => other.push(change(r, Some(b))),
            },
            None => other.push(change(r, None)),
        }
    }
    // Most severe first.
    for v in [&mut improved, &mut regressed, &mut other] {
        v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.control.cmp(&b.control)));
    }
    let pillars = now
        .pillars
        .iter()
        .map(|p| PillarDelta {
            pillar: p.pillar,
            before: earlier
                .pillars
                .iter()
                .find(|q| q.pillar == p.pillar)
                .and_then(|q| q.score),
            after: p.score,
        })
        .collect();
    Comparison {
        earlier_assessed_at: earlier.assessed_at.clone(),
        earlier_score: earlier.score,
        earlier_maturity: earlier.maturity,
        improved,
        regressed,
        other,
        pillars,
    }
}

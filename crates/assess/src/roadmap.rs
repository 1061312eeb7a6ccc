//! The roadmap: what to do next, in four phases.
//!
//! * **Assess**: what is not known yet — controls to investigate, manual
//!   controls, and automated controls that were skipped (with what to provide).
//! * **Foundation**: failed critical and high controls of low or medium effort —
//!   the cheap way out of the worst exposures.
//! * **Controls**: the other failed critical, high and medium controls.
//! * **Optimise**: failed low-severity controls.
//!
//! Within a phase, items are ordered by severity (highest first), then effort
//! (lowest first), then id. A control that another roadmap item depends on is
//! pulled forward into that item's phase if it would come later, and placed
//! before it.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::Catalogue;
use crate::model::ControlResult;
use crate::model::{Level, Phase, RoadmapItem, Severity, Status};

fn phase_of(status: Status, severity: Severity, effort: Level) -> Option<Phase> {
    match status {
        Status::Passed => None,
        Status::Investigate | Status::Manual | Status::Skipped => Some(Phase::Assess),
        Status::Failed => Some(match severity {
            Severity::Critical | Severity::High if effort != Level::High => Phase::Foundation,
            Severity::Critical | Severity::High | Severity::Medium => Phase::Controls,
            Severity::Low => Phase::Optimise,
        }),
    }
}

fn action(r: &ControlResult, remediation: &str) -> String {
    match r.status {
        Status::Investigate => {
            let stop = if r.summary.ends_with(['.', '!', '?']) {
                ""
            } else {
                "."
            };
            format!("Review: {}{stop} Then: {remediation}", r.summary)
        }
        Status::Manual => format!("Assess by hand: {}", r.summary),
        Status::Skipped => format!("Make it checkable: {}", r.summary),
        _ => remediation.to_owned(),
    }
}

/// Builds the roadmap from results (in catalogue order).
pub fn build(catalogue: &Catalogue, results: &[ControlResult]) -> Vec<RoadmapItem> {
    let mut items: BTreeMap<String, RoadmapItem> = BTreeMap::new();
    for r in results {
        let Some(c) = catalogue.control(&r.control) else {
            continue;
        };
        let Some(phase) = phase_of(r.status, c.severity, c.effort) else {
            continue;
        };
        items.insert(
            c.id.clone(),
            RoadmapItem {
                phase,
                control: c.id.clone(),
                title: c.title.clone(),
                severity: c.severity,
                effort: c.effort,
                action: action(r, &c.remediation),
                after: Vec::new(),
            },
        );
    }
    // Dependencies among roadmap items; pull each dependency forward to the
    // earliest phase that needs it (repeat until stable: chains are short).
    let deps: BTreeMap<String, Vec<String>> = items
        .keys()
        .map(|id| {
            let ds = catalogue
                .control(id)
                .map(|c| {
                    c.depends_on
                        .iter()
                        .filter(|d| items.contains_key(*d))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (id.clone(), ds)
        })
        .collect();
    for _ in 0..items.len() {
        let mut changed = false;
        for (id, ds) in &deps {
            let Some(phase) = items.get(id).map(|i| i.phase) else {
                continue;
            };
            for d in ds {
                if let Some(dep) = items.get_mut(d)
                    && dep.phase > phase
                {
                    dep.phase = phase;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (id, ds) in &deps {
        if let Some(item) = items.get_mut(id) {
            item.after = ds.clone();
        }
    }
    // Order: phase, then a topological order by (severity desc, effort asc, id).
    let key = |i: &RoadmapItem| {
        (
            i.phase,
            std::cmp::Reverse(i.severity),
            i.effort,
            i.control.clone(),
        )
    };
    let mut pending: Vec<RoadmapItem> = items.into_values().collect();
    pending.sort_by_key(key);
    let mut out: Vec<RoadmapItem> = Vec::with_capacity(pending.len());
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while !pending.is_empty() {
        // The first item (in key order) whose dependencies are placed; the
        // catalogue has no cycles, so one always exists — if not, take the first.
        let pick = pending
            .iter()
            .position(|i| i.after.iter().all(|d| placed.contains(d)))
            .unwrap_or(0);
        let item = pending.remove(pick);
        placed.insert(item.control.clone());
        out.push(item);
    }
    out
}

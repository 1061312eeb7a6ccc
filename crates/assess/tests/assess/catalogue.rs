//! The catalogue is well formed.

use std::collections::BTreeSet;

use zt4ai_assess::{Assessment, Catalogue, checks};

#[test]
fn builtin_catalogue_is_well_formed_and_covers_every_check() {
    let c = Catalogue::builtin().unwrap();
    assert!(c.controls.len() >= 80, "{} controls", c.controls.len());
    let automated: Vec<&str> = c
        .controls
        .iter()
        .filter_map(|c| match &c.assessment {
            Assessment::Automated { check } => Some(check.as_str()),
            Assessment::Manual { .. } => None,
        })
        .collect();
    assert!(automated.len() >= 50, "{} automated", automated.len());
    let used: BTreeSet<&str> = automated.iter().copied().collect();
    assert_eq!(
        used.len(),
        automated.len(),
        "a check is used by two controls"
    );
    let unused: Vec<&str> = checks::all()
        .map(|c| c.id)
        .filter(|id| !used.contains(id))
        .collect();
    assert!(unused.is_empty(), "checks no control uses: {unused:?}");
}

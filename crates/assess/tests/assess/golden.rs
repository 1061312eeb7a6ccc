//! Golden snapshots of the JSON and Markdown reports for the example inventory
//! and for the deliberately weak one. `ZT4AI_BLESS=1` rewrites them; review the
//! diff before committing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::path::{Path, PathBuf};

use zt4ai_assess::report::{compare, json, markdown};
use zt4ai_assess::{Catalogue, Deployment, Options, Report, Status, assess, rfc3339};
use zt4ai_policy::PolicySource;

/// A fixed "now": 2026-12-01T00:00:00Z.
pub const NOW: u64 = 1_796_083_200;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads `examples/<name>` with paths relative to the repository root, so the
/// evidence in snapshots does not depend on where the checkout is.
pub fn deployment(name: &str) -> Deployment {
    let dir = format!("examples/{name}");
    let inventory = format!("{dir}/inventory.yaml");
    let text = std::fs::read_to_string(root().join(&inventory)).unwrap();
    let mut policies: Vec<PolicySource> = std::fs::read_dir(root().join(&dir).join("policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".cedar"))
        .map(|f| {
            let name = format!("{dir}/policies/{f}");
            PolicySource {
                text: std::fs::read_to_string(root().join(&name)).unwrap(),
                name,
            }
        })
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Deployment::load(
        &text,
        &inventory,
        policies,
        Options {
            dormant_days: 30,
            now: NOW,
        },
    )
    .unwrap()
}

pub fn report(name: &str) -> Report {
    let c = Catalogue::builtin().unwrap();
    assess(&deployment(name), &c, &rfc3339(NOW), &mut |_, _, _| {})
}

fn check_golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("ZT4AI_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with ZT4AI_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{file} differs from its snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n(ZT4AI_BLESS=1 rewrites it)",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn acme_reports_match_their_snapshots() {
    let r = report("acme");
    check_golden("acme.json", &json::render(&r));
    check_golden("acme.md", &markdown::render(&r));
}

#[test]
fn weak_reports_match_their_snapshots() {
    let r = report("weak");
    check_golden("weak.json", &json::render(&r));
    check_golden("weak.md", &markdown::render(&r));
}

#[test]
fn weak_inventory_fails_what_it_was_written_to_fail() {
    let r = report("weak");
    let status = |check: &str| {
        r.results
            .iter()
            .find(|x| x.check.as_deref() == Some(check))
            .unwrap_or_else(|| panic!("no result for {check}"))
            .status
    };
    for check in [
        "agent-owner",
        "agent-grants-within-owner",
        "token-lifetime",
        "chain-depth",
        "delegation-acyclic",
        "wildcard-tool-grants",
        "group-wildcard-grants",
        "approver-group",
        "approval-ttl",
        "risk-thresholds",
        "pii-dataset-labels",
        "untrusted-output-spotlight",
        "injection-threshold",
        "egress-bindings",
        "external-destination-clearance",
        "broad-destination-patterns",
        "model-attestation",
        "external-model-clearance",
        "mcp-transport-security",
        "mcp-timeouts",
        "mcp-inline-secrets",
        "tool-description-injection",
        "unconstrained-permits",
        "never-applicable-policies",
        "exfiltration-paths-guarded",
    ] {
        assert_eq!(status(check), Status::Failed, "{check}");
    }
    assert_eq!(status("shadowed-permits"), Status::Investigate);
    assert_eq!(status("mcp-server-operators"), Status::Investigate);
    // The example inventory is far better, and the weak one scores low.
    let acme = report("acme");
    assert!(
        acme.score.unwrap() > r.score.unwrap() + 20.0,
        "{:?} vs {:?}",
        acme.score,
        r.score
    );
    // Every failed inventory finding names a line in the inventory file.
    for res in r.results.iter().filter(|x| x.status == Status::Failed) {
        for e in res.evidence.iter().filter(|e| e.problem) {
            assert!(
                e.file.is_some() && e.line.is_some(),
                "{}: {e:?}",
                res.control
            );
        }
    }
}

#[test]
fn comparison_shows_improvements_and_regressions() {
    let weak = report("weak");
    let acme = report("acme");
    let c = compare::compare(&weak, &acme);
    assert!(
        c.improved
            .iter()
            .any(|x| x.control == find(&acme, "wildcard-tool-grants"))
    );
    let back = compare::compare(&acme, &weak);
    assert!(
        back.regressed
            .iter()
            .any(|x| x.control == find(&acme, "wildcard-tool-grants"))
    );
    assert_eq!(c.improved.len(), back.regressed.len());
    // The JSON report reads back as it was written.
    let text = json::render(&acme);
    assert_eq!(json::read(&text, "acme.json").unwrap(), acme);
    let err = json::read("{\"format\": 99}", "old.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("old.json") && err.contains("format 99"),
        "{err}"
    );
    let err = json::read("[1, 2", "broken.json").unwrap_err().to_string();
    assert!(
        err.contains("broken.json") && err.contains("line 1"),
        "{err}"
    );
}

fn find(r: &Report, check: &str) -> String {
    r.results
        .iter()
        .find(|x| x.check.as_deref() == Some(check))
        .unwrap()
        .control
        .clone()
}

#[test]
fn roadmap_orders_phases_and_dependencies() {
    let r = report("weak");
    let phases: Vec<_> = r.roadmap.iter().map(|i| i.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "phases out of order");
    let pos = |id: &str| r.roadmap.iter().position(|i| i.control == id);
    for item in &r.roadmap {
        for dep in &item.after {
            assert!(
                pos(dep) < pos(&item.control),
                "{} before {dep}",
                item.control
            );
        }
    }
    // Every failed control is on the roadmap; no passed one is.
    for res in &r.results {
        let on = pos(&res.control).is_some();
        assert_eq!(on, res.status != Status::Passed, "{}", res.control);
    }
}

//! The threat model: golden snapshots for the example and the weak inventory,
//! and one change to the inventory changing exactly the threats it should.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use zt4ai_assess::threat::model::{Mitigation, Threat, ThreatModel};
use zt4ai_assess::threat::{derive, render};
use zt4ai_assess::{Catalogue, Deployment, Options};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model of `examples/<name>`, with `edit` applied to the inventory text.
fn model(name: &str, edit: impl Fn(String) -> String) -> ThreatModel {
    let d = crate::golden::deployment(name);
    let inventory = format!("examples/{name}/inventory.yaml");
    let text = edit(std::fs::read_to_string(root().join(&inventory)).unwrap());
    let d = Deployment::load(
        &text,
        &inventory,
        d.policies.clone(),
        Options {
            dormant_days: 30,
            now: crate::golden::NOW,
        },
    )
    .unwrap();
    derive::derive(&d, &Catalogue::builtin().unwrap())
}

fn threats(m: &ThreatModel) -> BTreeMap<String, Threat> {
    m.threats
        .iter()
        .map(|t| (t.id.clone(), t.clone()))
        .collect()
}

/// Ids of threats added, removed or changed between two models.
fn changed(a: &ThreatModel, b: &ThreatModel) -> BTreeSet<String> {
    let (x, y) = (threats(a), threats(b));
    x.keys()
        .chain(y.keys())
        .filter(|id| x.get(*id) != y.get(*id))
        .cloned()
        .collect()
}

fn check_golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("ZT4AI_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{file} differs from its snapshot (ZT4AI_BLESS=1 rewrites it); first difference at line {}",
        expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1)
    );
}

#[test]
fn threat_models_match_their_snapshots() {
    for name in ["acme", "weak"] {
        let m = model(name, |t| t);
        check_golden(&format!("{name}-threats.json"), &render::json(&m));
        check_golden(&format!("{name}-threats.md"), &render::markdown(&m));
        check_golden(&format!("{name}-threats.dot"), &render::dot(&m));
    }
}

#[test]
fn the_exfiltration_path_is_closed_in_the_example_and_open_in_the_weak_inventory() {
    let acme = threats(&model("acme", |t| t));
    let t = &acme["sensitive_information_disclosure:tool:mail.send_email->destination:internet"];
    assert_eq!(t.status, Mitigation::Mitigated);
    assert!(t.mitigations.contains(&"zt4ai.flow.send".to_owned()));
    assert!(t.scenario.contains("`customers`"), "{}", t.scenario);
    let flow = model("acme", |t| t)
        .flows
        .into_iter()
        .find(|f| f.id == "tool:mail.send_email->destination:internet")
        .unwrap();
    assert_eq!(flow.blocked_by.as_deref(), Some("zt4ai.flow.send"));

    let weak = threats(&model("weak", |t| t));
    let t = &weak["sensitive_information_disclosure:tool:mail.send->destination:competitor-drop"];
    assert_eq!(t.status, Mitigation::Unmitigated);
    assert!(t.scenario.contains("crm.export"), "{}", t.scenario);
    // Every threat names references and, unless mitigated, what is missing.
    for t in weak.values() {
        assert!(
            !t.owasp_llm.is_empty() || !t.owasp_agentic.is_empty(),
            "{}",
            t.id
        );
        assert_eq!(
            t.status == Mitigation::Mitigated,
            t.gaps.is_empty(),
            "{}",
            t.id
        );
    }
}

/// An agent that reads customers and may write the (internal) handbook has a
/// write flow that confidential data cannot take: the diagram marks it
/// blocked by the no-write-down guard.
#[test]
fn a_write_below_what_the_agent_holds_is_blocked_by_the_write_down_guard() {
    let m = model("acme", |t| {
        let t = t.replacen(
            "\ndatasets:\n",
            "  - server: wiki\n    name: edit\n    description: Edit a handbook page\n    annotations: { read_only: false, destructive: false, open_world: false }\n    bindings:\n      - { argument: space, resource: dataset, access: write }\n\ndatasets:\n",
            1,
        );
        let grants = "      tools: [crm.query, mail.send_email, web.fetch, files.delete_file]\n      datasets: [customers, sales_pipeline, handbook]\n";
        assert!(t.contains(grants));
        t.replacen(
            grants,
            "      tools: [crm.query, mail.send_email, web.fetch, files.delete_file, wiki.edit]\n      datasets: [customers, sales_pipeline, handbook]\n      writable_datasets: [handbook]\n",
            1,
        )
    });
    let flow = m
        .flows
        .iter()
        .find(|f| f.id == "tool:wiki.edit->dataset:handbook")
        .unwrap();
    assert_eq!(
        flow.blocked_by.as_deref(),
        Some("zt4ai.flow.write"),
        "{flow:?}"
    );
}

#[test]
fn unbinding_the_mail_recipient_changes_exactly_the_mail_threats() {
    let before = model("acme", |t| t);
    let after = model("acme", |t| {
        t.replace(
            "    bindings:\n      - { argument: to, resource: destination }\n      - { argument: cc, resource: destination, optional: true }\n      - { argument: bcc, resource: destination, optional: true }\n",
            "",
        )
    });
    assert_eq!(
        changed(&before, &after),
        BTreeSet::from([
            // The send flow is gone from the model, and with it its guard...
            "sensitive_information_disclosure:tool:mail.send_email->destination:internet"
                .to_owned(),
            // ...and the tool now sends wherever its arguments say,
            "sensitive_information_disclosure:tool:mail.send_email".to_owned(),
            // with arguments policy can no longer see.
            "improper_output_handling:tool:mail.send_email".to_owned(),
        ])
    );
    // Partly: each call is still checked as reaching the default destination,
    // but no policy can tell one recipient from another.
    let after = threats(&after);
    assert_eq!(
        after["sensitive_information_disclosure:tool:mail.send_email"].status,
        Mitigation::PartlyMitigated
    );
}

#[test]
fn clearing_an_external_model_for_confidential_data_opens_exactly_that_flow() {
    let before = model("acme", |t| t);
    let after = model("acme", |t| {
        t.replace(
            "    external: true\n    clearance: internal\n",
            "    external: true\n    clearance: confidential\n",
        )
    });
    let id = "sensitive_information_disclosure:agent:report-agent->model:frontier-llm";
    assert_eq!(changed(&before, &after), BTreeSet::from([id.to_owned()]));
    assert_eq!(threats(&before)[id].status, Mitigation::Mitigated);
    assert_eq!(threats(&after)[id].status, Mitigation::Unmitigated);
}

#[test]
fn dropping_spotlighting_changes_only_the_injection_threat_of_that_tool() {
    let before = model("acme", |t| t);
    let after = model("acme", |t| {
        t.replace(
            "output: { label: public, trusted: false, spotlight: true }",
            "output: { label: public, trusted: false }",
        )
    });
    let id = "indirect_prompt_injection:tool:web.fetch";
    assert_eq!(changed(&before, &after), BTreeSet::from([id.to_owned()]));
    assert!(
        threats(&after)[id]
            .gaps
            .iter()
            .any(|g| g.contains("not spotlighted"))
    );
}

/// Naming who runs the weak example's CRM server (`reaches`) closes exactly
/// the threat of its closed-world tool and the operator gap of its open-world
/// one.
#[test]
fn naming_who_runs_a_server_closes_the_threat_of_its_unseen_operator() {
    let before = model("weak", |t| t);
    let key = "sensitive_information_disclosure:tool:crm.export";
    let open = "sensitive_information_disclosure:tool:crm.wipe";
    let b = threats(&before);
    assert_eq!(b[key].status, Mitigation::PartlyMitigated);
    assert!(b[open].gaps.iter().any(|g| g.contains("server `crm`")));
    let after = model("weak", |t| {
        t.replace(
            "    url: http://crm.weak.example/mcp\n",
            "    url: http://crm.weak.example/mcp\n    reaches: internet\n",
        )
    });
    assert_eq!(
        changed(&before, &after),
        BTreeSet::from([key.to_owned(), open.to_owned()])
    );
    let a = threats(&after);
    assert!(!a.contains_key(key));
    assert!(!a[open].gaps.iter().any(|g| g.contains("server `crm`")));
}

/// Requiring DPoP-bound tokens removes exactly the bearer-token gap of each
/// agent's spoofing threat, and nothing else.
#[test]
fn requiring_bound_tokens_closes_the_bearer_gap_of_every_agent() {
    let before = model("weak", |t| t);
    let after = model("weak", |t| {
        t.replace(
            "  max_chain_depth: 8\n",
            "  max_chain_depth: 8\n  require_dpop: true\n",
        )
    });
    let changed = changed(&before, &after);
    assert!(!changed.is_empty());
    assert!(
        changed
            .iter()
            .all(|id| id.starts_with("agent_identity_spoofing:")),
        "{changed:?}"
    );
    let (b, a) = (threats(&before), threats(&after));
    for id in &changed {
        assert!(b[id].gaps.iter().any(|g| g.contains("bearer")), "{id}");
        assert!(!a[id].gaps.iter().any(|g| g.contains("bearer")), "{id}");
    }
}

/// A partner cleared for confidential data: its flows are open. Cleared for
/// confidential `customer` data only, while everything confidential the agent
/// can hold is also `pii`: the same flows are closed by the flow guard.
#[test]
fn a_partner_cleared_for_some_categories_closes_the_flow_of_others() {
    let partner = |categories: &'static str| {
        move |t: String| {
            t.replace(
                "    hosts: [portal.partner.example]\n    clearance: internal\n",
                &format!("    hosts: [portal.partner.example]\n    clearance: confidential\n{categories}"),
            )
            .replace(
                "      destinations: [acme-mail, internet]\n      models: [acme-llm, frontier-llm]\n    delegates_to",
                "      destinations: [acme-mail, partner-portal, internet]\n      models: [acme-llm, frontier-llm]\n    delegates_to",
            )
        }
    };
    let open = model("acme", partner(""));
    let closed = model("acme", partner("    categories: [customer]\n"));
    let id = "sensitive_information_disclosure:tool:mail.send_email->destination:partner-portal";
    let (o, c) = (threats(&open), threats(&closed));
    assert_eq!(o[id].status, Mitigation::Unmitigated, "{:?}", o[id]);
    assert_eq!(c[id].status, Mitigation::Mitigated, "{:?}", c[id]);
    assert!(
        c[id]
            .scenario
            .contains("or of a category other than customer"),
        "{}",
        c[id].scenario
    );
    let flow = |m: &ThreatModel| {
        m.flows
            .iter()
            .find(|f| f.id == "tool:mail.send_email->destination:partner-portal")
            .and_then(|f| f.blocked_by.clone())
    };
    assert_eq!(flow(&open), None);
    assert_eq!(flow(&closed).as_deref(), Some("zt4ai.flow.send"));
    // The same for the other tool that reaches the partner (a fetch), and
    // nothing else.
    let fetch = "sensitive_information_disclosure:tool:web.fetch->destination:partner-portal";
    assert_eq!(c[fetch].status, Mitigation::Mitigated, "{:?}", c[fetch]);
    assert_eq!(
        changed(&open, &closed),
        BTreeSet::from([id.to_owned(), fetch.to_owned()])
    );
}

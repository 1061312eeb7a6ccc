//! The policy checks on the shipped example, and on the example with a careless
//! policy file added.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use zt4ai_assess::{Deployment, Options, Outcome, Status, checks};
use zt4ai_policy::PolicySource;

const INVENTORY: &str = include_str!("../../../../examples/acme/inventory.yaml");
const ACME: &str = include_str!("../../../../examples/acme/policies/acme.cedar");

const POLICY_CHECKS: [&str; 7] = [
    "unconstrained-permits",
    "permit-any-principal",
    "never-applicable-policies",
    "shadowed-permits",
    "baseline-guards-intact",
    "policy-reasons",
    "policy-ids-namespaced",
];

fn acme_with(extra: Option<&str>) -> Deployment {
    load(INVENTORY, extra)
}

/// A deployment of `inventory` with the Acme policies and `extra` policy text.
fn load(inventory: &str, extra: Option<&str>) -> Deployment {
    let mut policies = vec![PolicySource {
        name: "policies/acme.cedar".into(),
        text: ACME.into(),
    }];
    if let Some(text) = extra {
        policies.push(PolicySource {
            name: "policies/hotfix.cedar".into(),
            text: text.into(),
        });
    }
    Deployment::load(
        inventory,
        "inventory.yaml",
        policies,
        Options {
            dormant_days: 30,
            now: 1_800_000_000,
        },
    )
    .unwrap()
}

fn run(d: &Deployment, id: &str) -> Outcome {
    (checks::find(id).unwrap().run)(d)
}

#[test]
fn the_shipped_example_passes_every_policy_check() {
    let d = acme_with(None);
    for id in POLICY_CHECKS {
        let o = run(&d, id);
        assert_eq!(o.status, Status::Passed, "{id}: {o:#?}");
    }
}

/// What a rushed change during an incident tends to look like.
const HOTFIX: &str = r#"// Quick fix, tidy up later.

@id("unblock_everything")
permit (principal, action, resource);

@id("acme.block_carol")
@reason("carol left")
forbid (principal == User::"carol", action, resource);

@id("acme.no_internet")
@reason("nothing goes to the open internet")
forbid (principal, action in [Action::"send", Action::"fetch"], resource == Destination::"internet");

@id("acme.bob_web")
@reason("bob may fetch the web")
permit (principal == User::"bob", action == Action::"fetch", resource == Destination::"internet");
"#;

#[test]
fn a_careless_policy_file_is_found_policy_by_policy_at_its_lines() {
    let d = acme_with(Some(HOTFIX));
    let expect = [
        (
            "unconstrained-permits",
            Status::Failed,
            vec![("unblock_everything", 3)],
        ),
        (
            "permit-any-principal",
            Status::Failed,
            vec![("unblock_everything", 3)],
        ),
        (
            "never-applicable-policies",
            Status::Failed,
            vec![("acme.block_carol", 6)],
        ),
        (
            "shadowed-permits",
            Status::Investigate,
            vec![("acme.bob_web", 14)],
        ),
        ("baseline-guards-intact", Status::Passed, vec![]),
        (
            "policy-reasons",
            Status::Failed,
            vec![("unblock_everything", 3)],
        ),
        (
            "policy-ids-namespaced",
            Status::Investigate,
            vec![("unblock_everything", 3)],
        ),
    ];
    for (id, status, located) in expect {
        let o = run(&d, id);
        assert_eq!(o.status, status, "{id}: {o:#?}");
        let found: Vec<(String, usize)> = o
            .evidence
            .iter()
            .filter(|e| e.problem)
            .map(|e| {
                assert_eq!(
                    e.file.as_deref(),
                    Some("policies/hotfix.cedar"),
                    "{id}: {e:?}"
                );
                assert_eq!(e.column, Some(1), "{id}: {e:?}");
                (e.field.clone().unwrap(), e.line.unwrap())
            })
            .collect();
        let located: Vec<(String, usize)> = located
            .into_iter()
            .map(|(p, l)| (p.to_owned(), l))
            .collect();
        assert_eq!(found, located, "{id}: {o:#?}");
    }
    let o = run(&d, "never-applicable-policies");
    assert!(o.evidence[0].message.contains("silent hole"), "{o:#?}");
    let o = run(&d, "shadowed-permits");
    assert!(o.evidence[0].message.contains("acme.no_internet"), "{o:#?}");
}

/// The Acme inventory with this `mcp_servers:` section, loaded.
fn acme_servers(section: &str) -> Deployment {
    load(
        &INVENTORY.replacen("settings:", &format!("{section}settings:"), 1),
        None,
    )
}

/// A server at an address outside the organisation's is asked who runs it;
/// one on a private address, at an internal destination's host, or naming its
/// operator is not.
#[test]
fn mcp_servers_outside_say_who_runs_them() {
    let o = run(
        &acme_servers(
            "mcp_servers:\n  - id: crm\n    url: https://mcp.crm-vendor.example/mcp\n  - id: mail\n    url: http://10.1.2.3:9000/mcp\n",
        ),
        "mcp-server-operators",
    );
    assert_eq!(o.status, Status::Investigate, "{o:?}");
    assert_eq!(o.evidence.len(), 1, "{o:?}");
    assert_eq!(o.evidence[0].field.as_deref(), Some("mcp_servers[0].url"));
    assert!(o.evidence[0].message.contains("`crm`"), "{o:?}");
    let o = run(
        &acme_servers(
            "mcp_servers:\n  - id: crm\n    url: https://mcp.crm-vendor.example/mcp\n    reaches: internet\n  - id: mail\n    url: https://mail.acme.example/mcp\n  - id: web\n    url: http://127.0.0.1:9/mcp\n",
        ),
        "mcp-server-operators",
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    // The report agent calls the mail server, which the partner runs, but
    // is not granted the partner's portal.
    let o = run(
        &acme_servers(
            "mcp_servers:\n  - id: mail\n    command: [mail-mcp]\n    reaches: partner-portal\n",
        ),
        "mcp-server-operators",
    );
    assert_eq!(o.status, Status::Investigate, "{o:?}");
    assert_eq!(o.evidence.len(), 1, "{o:?}");
    assert_eq!(
        o.evidence[0].field.as_deref(),
        Some("agents[0].grants.destinations")
    );
    assert!(
        o.evidence[0].message.contains(
            "`report-agent` may call `mail.send_email`, but server `mail` reaches `partner-portal`"
        ),
        "{o:?}"
    );
    assert_eq!(
        o.summary,
        "1 agent is granted the tools of a server whose operator it is not granted"
    );
}

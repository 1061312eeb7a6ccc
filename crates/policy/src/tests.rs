use std::collections::BTreeSet;
use std::sync::Arc;

use zt4ai_core::{Category, Decision, Integrity, Inventory, Label, SessionLabel};

use super::*;

const INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");
const ACME: &str = include_str!("../../../examples/acme/policies/acme.cedar");

fn inventory() -> Arc<Inventory> {
    Arc::new(Inventory::from_yaml_str(INVENTORY, "inventory.yaml").unwrap())
}

fn engine_with(extra: &str) -> Result<PolicyEngine, PolicyErrors> {
    let mut sources = vec![PolicySource {
        name: "acme.cedar".into(),
        text: ACME.into(),
    }];
    if !extra.is_empty() {
        sources.push(PolicySource {
            name: "extra.cedar".into(),
            text: extra.into(),
        });
    }
    PolicyEngine::new(inventory(), &sources)
}

fn engine() -> PolicyEngine {
    engine_with("").unwrap()
}

fn chain(e: &PolicyEngine, user: &str, agents: &[&str]) -> Vec<PrincipalRef> {
    let mut v = vec![e.user(&UserId::new(user).unwrap()).unwrap()];
    for a in agents {
        v.push(e.agent(&AgentId::new(*a).unwrap()).unwrap());
    }
    v
}

fn check(action: ActionKind, resource: &str) -> Check {
    Check {
        action,
        resource: resource.into(),
        target: None,
    }
}

fn session(label: Label, cats: &[&str], untrusted: bool) -> Facts {
    Facts {
        session: SessionLabel {
            confidentiality: label,
            categories: cats.iter().map(|c| Category::new(c).unwrap()).collect(),
            integrity: if untrusted {
                Integrity::Untrusted
            } else {
                Integrity::Trusted
            },
        },
        ..Facts::default()
    }
}

fn decide(
    e: &PolicyEngine,
    links: &[PrincipalRef],
    checks: &[Check],
    facts: &Facts,
) -> PolicyDecision {
    e.decide(links, checks, facts, &BTreeSet::new())
}

fn lifted(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn example_policies_validate_against_generated_schema() {
    let e = engine();
    assert!(
        e.schema_text()
            .contains("entity Group enum [\"analysts\", \"executives\"];")
    );
    assert!(
        e.schema_text()
            .contains("entity Server enum [\"crm\", \"files\", \"mail\", \"web\", \"wiki\"];")
    );
    let ids = e.policy_ids();
    for id in [
        "zt4ai.grant.tool",
        "zt4ai.lifecycle.inactive",
        "zt4ai.flow.send",
        "zt4ai.flow.model",
        "zt4ai.integrity.tool",
        "zt4ai.integrity.egress",
        "zt4ai.risk.high",
        "zt4ai.risk.medium",
        "zt4ai.inspect.injection",
        "acme.no_pii_to_external_models",
    ] {
        assert!(ids.iter().any(|i| i == id), "missing {id}");
    }
}

#[test]
fn default_deny_when_no_grant() {
    let e = engine();
    // Bob (analyst) has no grant for the frontier model, whatever the agent holds.
    let d = decide(
        &e,
        &chain(&e, "bob", &["report-agent"]),
        &[check(ActionKind::InvokeModel, "frontier-llm")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.policies, [DEFAULT_DENY]);
    assert!(
        d.reasons[0]
            .message
            .contains("no policy permits user `bob`"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn granted_tool_is_allowed_for_every_link() {
    let e = engine();
    let d = decide(
        &e,
        &chain(&e, "alice", &["report-agent"]),
        &[
            check(ActionKind::CallTool, "crm.query"),
            check(ActionKind::Read, "customers"),
        ],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Allow, "{:?}", d.reasons);
    assert_eq!(d.policies, ["zt4ai.grant.read", "zt4ai.grant.tool"]);
}

#[test]
fn inactive_agent_is_denied_everything() {
    let e = engine();
    let d = decide(
        &e,
        &chain(&e, "bob", &["legacy-bot"]),
        &[check(ActionKind::CallTool, "crm.query")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(
        d.policies.contains(&"zt4ai.lifecycle.inactive".to_string()),
        "{:?}",
        d.policies
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.message == "agent `legacy-bot` is suspended, not active"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn send_above_destination_clearance_is_denied() {
    let e = engine();
    let links = chain(&e, "alice", &["report-agent"]);
    let facts = session(Label::Confidential, &["customer", "pii"], false);
    let out = Check {
        action: ActionKind::Send,
        resource: "internet".into(),
        target: Some("eve@rival.example".into()),
    };
    let d = decide(&e, &links, &[out], &facts);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.policies, ["zt4ai.flow.send"]);
    assert_eq!(
        d.reasons[0].message,
        "the session holds confidential data (customer, pii) and destination `internet` (`eve@rival.example`) is cleared only for public"
    );
    let d = decide(&e, &links, &[check(ActionKind::Send, "acme-mail")], &facts);
    assert_eq!(d.decision, Decision::Allow, "{:?}", d.reasons);
}

#[test]
fn model_below_session_label_is_denied() {
    let e = engine();
    let links = chain(&e, "alice", &["report-agent"]);
    let facts = session(Label::Confidential, &[], false);
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::InvokeModel, "frontier-llm")],
        &facts,
    );
    assert_eq!(d.policies, ["zt4ai.flow.model"]);
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::InvokeModel, "acme-llm")],
        &facts,
    );
    assert_eq!(d.decision, Decision::Allow);
    // The inventory's own policy: pii never goes to an external model, whatever its clearance.
    let facts = session(Label::Internal, &["pii"], false);
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::InvokeModel, "frontier-llm")],
        &facts,
    );
    assert_eq!(d.policies, ["acme.no_pii_to_external_models"]);
}

#[test]
fn untrusted_session_needs_approval_for_consequential_tools_and_approval_lifts_only_that() {
    let e = engine();
    let links = chain(&e, "alice", &["report-agent"]);
    let facts = session(Label::Public, &[], true);
    let del = [check(ActionKind::CallTool, "files.delete_file")];
    let d = decide(&e, &links, &del, &facts);
    assert_eq!(d.decision, Decision::RequireApproval);
    assert_eq!(d.approvable, ["zt4ai.integrity.tool"]);
    let d = e.decide(&links, &del, &facts, &lifted(&["zt4ai.integrity.tool"]));
    assert_eq!(d.decision, Decision::Allow, "{:?}", d.reasons);
    assert!(d.policies.contains(&"zt4ai.integrity.tool".to_string()));
    // Read-only tools stay allowed in an untrusted session.
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::CallTool, "crm.query")],
        &facts,
    );
    assert_eq!(d.decision, Decision::Allow);
    // An approval for one policy does not lift another.
    let d = e.decide(&links, &del, &facts, &lifted(&["zt4ai.risk.medium"]));
    assert_eq!(d.decision, Decision::RequireApproval);
}

#[test]
fn approval_never_lifts_a_hard_forbid() {
    let e = engine();
    let links = chain(&e, "alice", &["report-agent"]);
    let facts = session(Label::Confidential, &["pii"], true);
    let send = [check(ActionKind::Send, "internet")];
    let d = e.decide(
        &links,
        &send,
        &facts,
        &lifted(&["zt4ai.integrity.egress", "zt4ai.flow.send"]),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(d.policies.contains(&"zt4ai.flow.send".to_string()));
}

#[test]
fn risk_thresholds() {
    let e = engine();
    let links = chain(&e, "alice", &["report-agent"]);
    let q = [check(ActionKind::CallTool, "crm.query")];
    let mut f = Facts {
        risk: 39,
        ..Facts::default()
    };
    assert_eq!(decide(&e, &links, &q, &f).decision, Decision::Allow);
    f.risk = 40;
    let d = decide(&e, &links, &q, &f);
    assert_eq!(
        (d.decision, d.policies.as_slice()),
        (
            Decision::RequireApproval,
            &["zt4ai.risk.medium".to_string()][..]
        )
    );
    f.risk = 70;
    let d = decide(&e, &links, &q, &f);
    assert_eq!(
        (d.decision, d.policies.as_slice()),
        (Decision::Deny, &["zt4ai.risk.high".to_string()][..])
    );
}

#[test]
fn injection_finding_denies() {
    let e = engine();
    let f = Facts {
        injection: true,
        ..Facts::default()
    };
    let d = decide(
        &e,
        &chain(&e, "alice", &["report-agent"]),
        &[check(ActionKind::CallTool, "crm.query")],
        &f,
    );
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.policies, ["zt4ai.inspect.injection"]);
}

#[test]
fn sub_agent_cannot_exceed_parent_or_its_own_grants() {
    let e = engine();
    // summariser may fetch the web, but not query the CRM: intersection with its own grants.
    let links = chain(&e, "alice", &["report-agent", "summariser"]);
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::CallTool, "crm.query")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(
        d.reasons.iter().any(|r| r.message.contains("`summariser`")),
        "{:?}",
        d.reasons
    );
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::CallTool, "web.fetch")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Allow);
    // summariser holds wiki.search, but its parent does not: denied through the parent.
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::CallTool, "wiki.search")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.message.contains("agent `report-agent`")),
        "{:?}",
        d.reasons
    );
    let direct = chain(&e, "alice", &["summariser"]);
    let d = decide(
        &e,
        &direct,
        &[check(ActionKind::CallTool, "wiki.search")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Allow);
}

#[test]
fn clearance_limits_reads() {
    let e = engine();
    // report-agent (confidential) holds no grant and no clearance for board minutes.
    let d = decide(
        &e,
        &chain(&e, "alice", &["report-agent"]),
        &[check(ActionKind::Read, "board_minutes")],
        &Facts::default(),
    );
    assert!(
        d.policies.contains(&"zt4ai.clearance.dataset".to_string()),
        "{:?}",
        d.policies
    );
}

#[test]
fn unknown_resource_is_denied() {
    let e = engine();
    let d = decide(
        &e,
        &chain(&e, "alice", &[]),
        &[check(ActionKind::Read, "nope")],
        &Facts::default(),
    );
    assert_eq!(d.policies, ["zt4ai.request.unknown_resource"]);
}

#[test]
fn analysts_rule_applies_to_user_link() {
    let e = engine();
    // Intersection: a policy about the user's group binds the agents acting for them.
    let d = decide(
        &e,
        &chain(&e, "bob", &["report-agent"]),
        &[check(ActionKind::CallTool, "crm.update_record")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
}

#[test]
fn evaluation_error_fails_closed() {
    // Overflow is a runtime error the validator cannot rule out; Cedar would skip
    // this forbid and allow, zt4ai denies.
    let e = engine_with(
        "@id(\"acme.overflow\")\nforbid (principal, action, resource is Tool) when { resource.output_label * 9223372036854775807 > 1 };\n",
    )
    .unwrap();
    let f = Facts {
        risk: 2,
        ..Facts::default()
    };
    let d = decide(
        &e,
        &chain(&e, "alice", &["report-agent"]),
        &[check(ActionKind::CallTool, "crm.query")],
        &f,
    );
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.policies, ["acme.overflow"]);
    assert!(d.reasons[0].message.contains("failing closed"));
}

#[test]
fn invalid_policy_stops_startup_with_location() {
    let err = engine_with("\n\n@id(\"acme.bad\")\nforbid (principal, action, resource is Tool) when { resource.colour == \"red\" };\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("extra.cedar:4:"), "{msg}");
    assert!(msg.contains("acme.bad") && msg.contains("colour"), "{msg}");
}

#[test]
fn misspelt_group_fails_validation() {
    let err = engine_with(
        "@id(\"acme.typo\")\nforbid (principal in Group::\"analyst\", action, resource);\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("analyst"), "{err}");
}

#[test]
fn policy_ids_are_required_unique_and_unreserved() {
    let err = engine_with("permit (principal, action, resource);").unwrap_err();
    assert!(
        err.to_string()
            .contains("extra.cedar:1:1: policy has no `@id"),
        "{err}"
    );
    let err = engine_with("@id(\"zt4ai.grant.tool\")\npermit (principal, action, resource);")
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    let err = engine_with(
        "@id(\"acme.no_pii_to_external_models\")\npermit (principal, action, resource);",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("already used in `acme.cedar`"),
        "{err}"
    );
    let err =
        engine_with("@id(\"a\")\n@approval(\"human\")\npermit (principal, action, resource);")
            .unwrap_err();
    assert!(err.to_string().contains("forbid"), "{err}");
    let err =
        engine_with("@id(\"a\") permit (principal, action, resource) when { nope };").unwrap_err();
    assert!(err.to_string().starts_with("extra.cedar:1:"), "{err}");
}

#[test]
fn slices_drop_policies_that_cannot_apply() {
    let e = engine_with("@id(\"acme.only_bob\")\nforbid (principal == User::\"bob\", action == Action::\"send\", resource);\n").unwrap();
    let alice = e.user(&UserId::new("alice").unwrap()).unwrap();
    let bob = e.user(&UserId::new("bob").unwrap()).unwrap();
    let has = |p, a, id: &str| {
        e.slice(p, a)
            .unwrap()
            .policy(&cedar_policy::PolicyId::new(id))
            .is_some()
    };
    assert!(has(bob, ActionKind::Send, "acme.only_bob"));
    assert!(!has(alice, ActionKind::Send, "acme.only_bob"));
    assert!(!has(bob, ActionKind::Read, "acme.only_bob"));
    assert!(
        !has(alice, ActionKind::CallTool, "zt4ai.lifecycle.inactive"),
        "agent-only guard"
    );
    assert!(has(
        bob,
        ActionKind::CallTool,
        "acme.analysts_no_destructive_tools"
    ));
    assert!(!has(
        alice,
        ActionKind::CallTool,
        "acme.analysts_no_destructive_tools"
    ));
}

#[test]
fn context_only_forbids_are_request_level_and_leave_the_slices() {
    let e = engine();
    let rl: Vec<String> = e
        .request_level_policies()
        .unwrap()
        .policies()
        .map(|p| p.id().to_string())
        .collect();
    for id in [
        "zt4ai.risk.high",
        "zt4ai.risk.medium",
        "zt4ai.inspect.injection",
    ] {
        assert!(
            rl.iter().any(|r| r == id),
            "{id} should be request-level: {rl:?}"
        );
    }
    assert!(
        !rl.iter().any(|r| r == "zt4ai.flow.send"),
        "reads resource: not request-level"
    );
    let alice = e.user(&UserId::new("alice").unwrap()).unwrap();
    assert!(
        e.slice(alice, ActionKind::CallTool)
            .unwrap()
            .policy(&cedar_policy::PolicyId::new("zt4ai.risk.high"))
            .is_none()
    );
}

#[test]
fn cached_and_uncached_decisions_agree() {
    let cached = engine();
    let cold = engine();
    cold.set_cache_capacity(0);
    let chains = [
        vec!["alice", "report-agent"],
        vec!["bob", "report-agent"],
        vec!["alice", "report-agent", "summariser"],
        vec!["bob", "legacy-bot"],
    ];
    let checks = [
        check(ActionKind::CallTool, "crm.query"),
        check(ActionKind::CallTool, "files.delete_file"),
        check(ActionKind::Send, "internet"),
        check(ActionKind::Send, "acme-mail"),
        check(ActionKind::InvokeModel, "frontier-llm"),
        check(ActionKind::Read, "customers"),
    ];
    let facts = [
        Facts::default(),
        session(Label::Confidential, &["pii"], false),
        session(Label::Public, &[], true),
        Facts {
            risk: 50,
            ..Facts::default()
        },
        Facts {
            injection: true,
            ..Facts::default()
        },
    ];
    for _ in 0..2 {
        for c in &chains {
            for k in &checks {
                for f in &facts {
                    let lc = chain(&cached, c[0], &c[1..]);
                    let lk = chain(&cold, c[0], &c[1..]);
                    let a = decide(&cached, &lc, std::slice::from_ref(k), f);
                    let b = decide(&cold, &lk, std::slice::from_ref(k), f);
                    assert_eq!(a, b, "{c:?} {k:?} {f:?}");
                }
            }
        }
    }
    let (hits, _) = cached.cache_stats();
    assert!(hits > 0);
    assert_eq!(cold.cache_stats().0, 0);
}

#[test]
fn principal_free_policies_are_evaluated_once_per_resource() {
    let e = engine();
    let alice = e.user(&UserId::new("alice").unwrap()).unwrap();
    let (shared, _) = e.resource_parts(ActionKind::Send, "internet");
    let shared = shared.expect("flow guards apply to every destination");
    for id in ["zt4ai.flow.send", "zt4ai.integrity.egress"] {
        assert!(
            shared.policy(&cedar_policy::PolicyId::new(id)).is_some(),
            "{id} reads no principal"
        );
        assert!(
            e.slice(alice, ActionKind::Send)
                .unwrap()
                .policy(&cedar_policy::PolicyId::new(id))
                .is_none(),
            "{id} is not in the principal's slice"
        );
    }
    assert!(
        shared
            .policy(&cedar_policy::PolicyId::new("zt4ai.grant.send"))
            .is_none(),
        "grants read the principal"
    );
}

#[test]
fn resource_scoped_policies_apply_only_to_their_resource() {
    let e = engine_with(
        "@id(\"x.crm_query_bob\")\nforbid (principal == User::\"bob\", action == Action::\"call_tool\", resource == Tool::\"crm.query\");\n\
         @id(\"x.no_files\")\nforbid (principal, action == Action::\"call_tool\", resource in Server::\"files\");\n",
    )
    .unwrap();
    let (_, specific) = e.resource_parts(ActionKind::CallTool, "crm.query");
    assert!(
        specific
            .unwrap()
            .policy(&cedar_policy::PolicyId::new("x.crm_query_bob"))
            .is_some()
    );
    let (shared, specific) = e.resource_parts(ActionKind::CallTool, "mail.send_email");
    assert!(specific.is_none(), "nothing names mail.send_email");
    assert!(
        shared
            .unwrap()
            .policy(&cedar_policy::PolicyId::new("x.no_files"))
            .is_none()
    );
    let (shared, _) = e.resource_parts(ActionKind::CallTool, "files.delete_file");
    assert!(
        shared
            .unwrap()
            .policy(&cedar_policy::PolicyId::new("x.no_files"))
            .is_some(),
        "`in Server` matches the server's tools"
    );
    let bob = e.user(&UserId::new("bob").unwrap()).unwrap();
    assert!(
        e.slice(bob, ActionKind::CallTool)
            .unwrap()
            .policy(&cedar_policy::PolicyId::new("x.crm_query_bob"))
            .is_none(),
        "resource-scoped policies leave the slices"
    );
    let d = decide(
        &e,
        &chain(&e, "bob", &["report-agent"]),
        &[check(ActionKind::CallTool, "crm.query")],
        &Facts::default(),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(d.policies.contains(&"x.crm_query_bob".to_owned()), "{d:?}");
    let d = decide(
        &e,
        &chain(&e, "alice", &["report-agent"]),
        &[check(ActionKind::CallTool, "files.delete_file")],
        &Facts::default(),
    );
    assert!(d.policies.contains(&"x.no_files".to_owned()), "{d:?}");
}

/// The partitioned, cached evaluation gives Cedar's own answer: for every link
/// and check, the whole policy set through `Authorizer::is_authorized`.
#[test]
fn partitioned_evaluation_agrees_with_cedar_over_the_whole_set() {
    use zt4ai_core::inventory::synthetic::{self, Sizes};
    let sizes = Sizes {
        agents: 20,
        tools: 120,
        policies: 60,
    };
    let (yaml, cedar) = synthetic::generate(sizes);
    let inv = Arc::new(Inventory::from_yaml_str(&yaml, "synthetic.yaml").unwrap());
    let e = PolicyEngine::new(
        Arc::clone(&inv),
        &[PolicySource {
            name: "synthetic.cedar".into(),
            text: cedar,
        }],
    )
    .unwrap();
    let authorizer = Authorizer::new();
    let users: Vec<&UserId> = inv.users.keys().take(6).collect();
    let agents: Vec<&AgentId> = inv.agents.keys().collect();
    let mut checks: Vec<Check> = inv
        .tools
        .keys()
        .step_by(7)
        .map(|t| check(ActionKind::CallTool, t))
        .collect();
    for d in inv.datasets.keys().step_by(5) {
        checks.push(check(ActionKind::Read, d));
        checks.push(check(ActionKind::Write, d));
    }
    for d in inv.destinations.keys() {
        checks.push(check(ActionKind::Send, d));
        checks.push(check(ActionKind::Fetch, d));
    }
    for m in inv.models.keys() {
        checks.push(check(ActionKind::InvokeModel, m));
    }
    let facts = [
        Facts::default(),
        session(Label::Confidential, &["pii"], false),
        session(Label::HighlyConfidential, &["pii", "pci"], true),
        Facts {
            risk: 50,
            findings: BTreeSet::from(["f3".to_owned()]),
            ..session(Label::Internal, &[], false)
        },
    ];
    // Cedar's own view, per link: does some permit hold, and which forbids fire?
    let permits = PolicySet::from_policies(
        e.policy_set()
            .policies()
            .filter(|p| p.effect() == cedar_policy::Effect::Permit)
            .cloned(),
    )
    .unwrap();
    let mut forbids: PolicySet = "@id(\"everything\") permit (principal, action, resource);"
        .parse()
        .unwrap();
    for p in e
        .policy_set()
        .policies()
        .filter(|p| p.effect() == cedar_policy::Effect::Forbid)
    {
        forbids.add(p.clone()).unwrap();
    }
    let mut compared = [0usize; 3];
    for (n, agent) in agents.iter().enumerate() {
        let user = users[n % users.len()];
        let links = vec![e.user(user).unwrap(), e.agent(agent).unwrap()];
        for c in checks.iter().skip(n % 3).step_by(3) {
            for f in &facts {
                let ours = decide(&e, &links, std::slice::from_ref(c), f);
                let context = e.context(f).unwrap();
                let mut fired = BTreeSet::new();
                let mut unpermitted = false;
                for &l in &links {
                    let r = e
                        .request(
                            e.principal_uid(l).unwrap(),
                            c.action,
                            e.resource_uid(c.action, &c.resource).unwrap(),
                            &context,
                        )
                        .unwrap();
                    let p = authorizer.is_authorized(&r, &permits, e.entities());
                    let f = authorizer.is_authorized(&r, &forbids, e.entities());
                    assert_eq!(
                        p.diagnostics().errors().count() + f.diagnostics().errors().count(),
                        0
                    );
                    unpermitted |= p.decision() != cedar_policy::Decision::Allow;
                    if f.decision() == cedar_policy::Decision::Deny {
                        fired.extend(f.diagnostics().reason().map(|p| p.to_string()));
                    }
                }
                let approvable = |id: &String| e.is_approvable(e.slot_of[id]);
                let expected = if unpermitted || !fired.iter().all(approvable) {
                    Decision::Deny
                } else if !fired.is_empty() {
                    Decision::RequireApproval
                } else {
                    Decision::Allow
                };
                assert_eq!(
                    ours.decision, expected,
                    "{user} {agent} {c:?} {f:?}: {ours:?}"
                );
                let reported: BTreeSet<String> = ours
                    .policies
                    .iter()
                    .filter(|p| *p != DEFAULT_DENY)
                    .cloned()
                    .collect();
                match expected {
                    Decision::Allow => {}
                    Decision::RequireApproval => assert_eq!(reported, fired),
                    Decision::Deny => assert!(
                        reported.is_subset(&fired) && (unpermitted || !reported.is_empty()),
                        "{user} {agent} {c:?} {f:?}: ours {ours:?}, Cedar {fired:?}"
                    ),
                }
                compared[match expected {
                    Decision::Allow => 0,
                    Decision::Deny => 1,
                    Decision::RequireApproval => 2,
                }] += 1;
            }
        }
    }
    assert!(
        compared.iter().all(|&n| n > 20),
        "every outcome exercised: {compared:?}"
    );
}

/// A label is a level and categories: a sink that lists the categories it is
/// cleared for receives no other, whatever its level, from the session or in
/// the request's own content.
#[test]
fn a_sink_cleared_for_some_categories_receives_no_other() {
    let text = INVENTORY
        .replace(
            "    hosts: [portal.partner.example]\n    clearance: internal\n",
            "    hosts: [portal.partner.example]\n    clearance: confidential\n    categories: [customer]\n",
        )
        .replace(
            "      destinations: [acme-mail, internet]\n      models: [acme-llm, frontier-llm]\n    delegates_to",
            "      destinations: [acme-mail, partner-portal, internet]\n      models: [acme-llm, frontier-llm]\n    delegates_to",
        );
    assert!(text.contains("categories: [customer]") && text.contains("partner-portal, internet]\n      models: [acme-llm, frontier-llm]\n    delegates_to"));
    let inv = Arc::new(Inventory::from_yaml_str(&text, "inventory.yaml").unwrap());
    let e = PolicyEngine::new(
        inv,
        &[PolicySource {
            name: "acme.cedar".into(),
            text: ACME.into(),
        }],
    )
    .unwrap();
    let links = chain(&e, "alice", &["report-agent"]);
    let portal = [check(ActionKind::Send, "partner-portal")];
    let customers = session(Label::Confidential, &["customer"], false);
    let d = decide(&e, &links, &portal, &customers);
    assert_eq!(d.decision, Decision::Allow, "{:?}", d.reasons);
    let with_pii = session(Label::Confidential, &["customer", "pii"], false);
    let d = decide(&e, &links, &portal, &with_pii);
    assert_eq!(d.policies, ["zt4ai.flow.send"]);
    assert_eq!(
        d.reasons[0].message,
        "the session holds confidential data (customer, pii) and destination `partner-portal` is cleared only for confidential data of categories customer"
    );
    // The same for what the request itself carries.
    let mut facts = customers.clone();
    facts.content = SessionLabel {
        confidentiality: Label::Internal,
        categories: [Category::new("pci").unwrap()].into(),
        integrity: Integrity::Trusted,
    };
    let d = decide(&e, &links, &portal, &facts);
    assert_eq!(d.policies, ["zt4ai.inspect.sensitive_egress"]);
    // A sink that lists no categories is decided by its level alone.
    let d = decide(
        &e,
        &links,
        &[check(ActionKind::Send, "acme-mail")],
        &with_pii,
    );
    assert_eq!(d.decision, Decision::Allow, "{:?}", d.reasons);
}

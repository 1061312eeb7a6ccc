//! Continuous verification through the whole pipeline: baselines learned from
//! a week of normal work, each anomaly raising the risk with its signal named
//! and changing the verdict, quarantine, declassification, and restarts.

use std::sync::atomic::{AtomicI64, Ordering};

use super::*;

const DAY: i64 = 86_400;
/// 2025-12-01 (a Monday), 00:00 UTC.
const MONDAY: i64 = 1_764_547_200;

/// The example inventory with every behaviour signal weighing 45: one
/// anomaly alone is medium risk (approval), two are high (deny).
fn weighted() -> String {
    INVENTORY
        .replacen(
            "  approval_ttl_seconds: 3600\n",
            "  approval_ttl_seconds: 3600\n  approvers: executives\n  risk:\n    learning_requests: 100\n    weights: { rate_burst: 45, volume_spike: 45, new_tool: 45, new_destination: 45, unusual_hour: 45, confidential_then_send: 45, repeated_denials: 45, injection: 45, sensitive_egress: 45, user_risk: 100 }\n",
            1,
        )
        // A second executive, whose report agent's label starts clean.
        .replacen(
            "users:\n",
            "users:\n  - id: carol\n    groups: [executives]\n    clearance: highly_confidential\n",
            1,
        )
}

fn query(session: &str) -> ActionRequest {
    req(
        "alice",
        &["report-agent"],
        session,
        tool("crm.query", json!({"table": "sales_pipeline"})),
    )
}

fn mail_team(session: &str) -> ActionRequest {
    req(
        "alice",
        &["report-agent"],
        session,
        tool(
            "mail.send_email",
            json!({"to": "team@acme.example", "subject": "pipeline", "body": "This week's pipeline report is attached."}),
        ),
    )
}

const OUTPUT: &str =
    "Pipeline summary: 14 open opportunities, 3 closing this week, forecast unchanged. ";

/// Five mornings of normal work, 09:00–10:00 UTC: four requests a minute
/// (queries and mails to the team), each query reading about 2 kB.
async fn normal_week(p: &Pipeline, now: &AtomicI64) {
    let text = OUTPUT.repeat(25);
    for day in 0..5 {
        let session = format!("week-{day}");
        for minute in 0..60 {
            for i in 0..4 {
                now.store(
                    MONDAY + day * DAY + 9 * 3600 + minute * 60 + i * 12,
                    Ordering::SeqCst,
                );
                let r = if i == 3 {
                    mail_team(&session)
                } else {
                    query(&session)
                };
                let v = p.decide(&r);
                assert_eq!(
                    v.decision,
                    Decision::Allow,
                    "day {day} minute {minute}: {:?}",
                    v.reasons
                );
                assert_eq!(v.risk.as_ref().map(|r| r.score), Some(0), "{:?}", v.risk);
                if i != 3 {
                    p.absorb_output(&r, "mcp", &[&text]).await.unwrap();
                }
            }
        }
    }
}

fn signals(v: &Verdict) -> Vec<&str> {
    v.risk
        .as_ref()
        .map(|r| r.signals.iter().map(|s| s.signal.as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_anomaly_after_a_normal_week_raises_the_risk_names_its_signal_and_changes_the_verdict()
{
    static NOW: AtomicI64 = AtomicI64::new(MONDAY);
    fn clock() -> i64 {
        NOW.load(Ordering::SeqCst)
    }
    let p = inspecting(&weighted()).with_clock(clock);
    normal_week(&p, &NOW).await;

    // Each anomaly on its own later morning (yesterday's risk has decayed):
    // the usual request is allowed at risk 0 first, and needs a human after.
    let anomalies: [(&str, &str); 9] = [
        ("burst", "rate_burst"),
        ("volume", "volume_spike"),
        ("new tool", "new_tool"),
        ("new destination", "new_destination"),
        ("probing", "repeated_denials"),
        ("injection", "injection"),
        ("sensitive egress", "sensitive_egress"),
        ("confidential then send", "confidential_then_send"),
        ("user risk", "user_risk"),
    ];
    for (k, (what, signal)) in anomalies.iter().enumerate() {
        let day = 7 + i64::try_from(k).unwrap();
        let t0 = MONDAY + day * DAY + 9 * 3600 + 30 * 60;
        NOW.store(t0, Ordering::SeqCst);
        let s = format!("anomaly-{k}");
        let v = p.decide(&query(&s));
        assert_eq!(
            (v.decision, v.risk.as_ref().unwrap().score),
            (Decision::Allow, 0),
            "{what}: before"
        );
        let mut usual = query(&s);
        match *what {
            "burst" => {
                for _ in 0..40 {
                    p.decide(&query(&s));
                }
            }
            "volume" => {
                let big = OUTPUT.repeat(8_000);
                p.absorb_output(&query(&s), "mcp", &[&big]).await.unwrap();
            }
            "new tool" => {
                // The wiki is inside Acme (a known destination): only the tool is new.
                let v = p.decide(&req(
                    "alice",
                    &["report-agent"],
                    &s,
                    tool(
                        "web.fetch",
                        json!({"url": "https://wiki.acme.example/pipeline"}),
                    ),
                ));
                assert_eq!(signals(&v), ["new_tool"], "{what}");
            }
            "new destination" => {
                // For Bob: a fresh session id of Alice's would shed nothing (it
                // stands on the label of what her report agent has read),
                // and the send would be `confidential_then_send` as well.
                let fresh = format!("{s}-fresh");
                let v = p.decide(&req(
                    "bob",
                    &["report-agent"],
                    &fresh,
                    tool(
                        "mail.send_email",
                        json!({"to": "someone@elsewhere.example", "body": "hello"}),
                    ),
                ));
                assert_eq!(signals(&v), ["new_destination"], "{what}");
            }
            "probing" => {
                for table in ["board_minutes", "payroll", "board_minutes"] {
                    let v = p.decide(&req(
                        "alice",
                        &["report-agent"],
                        &s,
                        tool("crm.query", json!({"table": table})),
                    ));
                    assert_eq!(v.decision, Decision::Deny);
                }
            }
            "injection" => {
                let mut r = mail_team(&s);
                r.findings = vec![Finding {
                    kind: "prompt_injection".into(),
                    location: None,
                    digest: None,
                }];
                let v = p.decide(&r);
                assert_eq!(v.decision, Decision::Deny);
                assert!(
                    v.policies.iter().any(|x| x == "zt4ai.inspect.injection"),
                    "{v:?}"
                );
            }
            "sensitive egress" => {
                // For Bob, as for the new destination above.
                let fresh = format!("{s}-fresh");
                let v = p.decide(&req(
                    "bob",
                    &["report-agent"],
                    &fresh,
                    mail_body("someone@elsewhere.example", &format!("card {CARD}")),
                ));
                assert_eq!(v.decision, Decision::Deny);
                assert!(signals(&v).contains(&"sensitive_egress"), "{v:?}");
            }
            "confidential then send" => {
                // For Carol: a fresh session of Alice's stands on the label of
                // everything her report agent has read (confidential: the
                // CRM's output), and Alice has never sent outside, so her send
                // would be a new destination as well.
                let fresh = format!("{s}-fresh");
                let read = req(
                    "carol",
                    &["report-agent"],
                    &fresh,
                    tool("crm.query", json!({"table": "customers"})),
                );
                assert!(p.decide(&read).is_allowed());
                let v = p.decide(&req(
                    "carol",
                    &["report-agent"],
                    &fresh,
                    tool(
                        "mail.send_email",
                        json!({"to": "team@partner.example", "body": "list"}),
                    ),
                ));
                assert_eq!(v.policies, ["zt4ai.flow.send"], "{:?}", v.risk);
            }
            "user risk" => usual.risk = Some(45),
            _ => unreachable!(),
        }
        let v = p.decide(&usual);
        assert_eq!(
            v.decision,
            Decision::RequireApproval,
            "{what}: after {:?}",
            v.reasons
        );
        assert_eq!(v.policies, ["zt4ai.risk.medium"], "{what}");
        let risk = v.risk.as_ref().unwrap();
        assert!(risk.score >= 40 && risk.score < 70, "{what}: {risk:?}");
        assert!(signals(&v).contains(signal), "{what}: {risk:?}");
        assert!(!risk.signals[0].detail.is_empty(), "{risk:?}");
    }

    // Working at 03:00 is itself the anomaly: the request that does it needs a human.
    NOW.store(MONDAY + 20 * DAY + 3 * 3600, Ordering::SeqCst);
    let v = p.decide(&query("night"));
    assert_eq!(v.decision, Decision::RequireApproval, "{:?}", v.risk);
    assert_eq!(signals(&v), ["unusual_hour"]);

    // Two anomalies the same morning are high risk: denied.
    NOW.store(MONDAY + 21 * DAY + 9 * 3600 + 1800, Ordering::SeqCst);
    let mut r = query("two");
    r.risk = Some(45);
    let v = p.decide(&req(
        "alice",
        &["report-agent"],
        "two",
        tool("files.delete_file", json!({"path": "/tmp/x"})),
    ));
    assert_eq!(signals(&v), ["new_tool"]);
    let v = p.decide(&r);
    assert_eq!(v.policies, ["zt4ai.risk.high"], "{:?}", v.risk);
    assert_eq!(signals(&v), ["new_tool", "user_risk"]);
}

#[tokio::test]
async fn an_exfiltration_attempt_quarantines_the_agent_until_a_human_resumes_it() {
    let (p, dir, _log) = audited();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = Arc::clone(&heard);
    let p = p.on_quarantine(QuarantineHook(Arc::new(move |q: &Quarantined| {
        h.lock().unwrap().push((q.agent.clone(), q.trigger));
    })));
    p.store()
        .seed_agent(
            "report-agent",
            "alice",
            "reports",
            zt4ai_core::inventory::AgentState::Active,
            1,
        )
        .unwrap();
    let exec = |s: &str, a| req("alice", &["report-agent"], s, a);
    assert!(
        p.enforce(
            &exec("x", tool("crm.query", json!({"table": "customers"}))),
            "mcp"
        )
        .await
        .is_allowed()
    );
    let v = p
        .enforce(&exec("x", mail("ceo@rival.example")), "mcp")
        .await;
    assert_eq!(v.policies, ["zt4ai.flow.send", reasons::QUARANTINED]);
    assert!(
        v.reasons
            .iter()
            .any(|r| r.message.contains("a human must resume it")),
        "{v:?}"
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [("report-agent".to_owned(), "exfiltration")]
    );
    let agent = p.store().agent("report-agent").unwrap();
    assert_eq!(agent.state, zt4ai_core::inventory::AgentState::Suspended);
    let events = p.store().agent_events("report-agent").unwrap();
    assert_eq!(events.last().unwrap().by, QUARANTINE_ACTOR);
    assert!(
        p.store()
            .revoked_agents()
            .unwrap()
            .iter()
            .any(|(a, _)| a == "report-agent"),
        "its tokens are revoked"
    );

    // Even a harmless request in a fresh session is refused now.
    let v = p
        .enforce(&exec("y", mail("team@acme.example")), "mcp")
        .await;
    assert_eq!(v.policies, [reasons::QUARANTINED]);
    assert_eq!(heard.lock().unwrap().len(), 1, "quarantined once");

    // A human resumes it: it works again, with its risk reset.
    p.store()
        .set_agent_state(
            "report-agent",
            zt4ai_core::inventory::AgentState::Active,
            "carol",
            Some("reviewed"),
            2,
        )
        .unwrap();
    let v = p
        .enforce(&exec("y", mail("team@acme.example")), "mcp")
        .await;
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(v.risk.unwrap().agent, 0);
    let recs = records(&dir);
    assert!(recs.iter().any(
        |r| matches!(&r.event, zt4ai_audit::Event::Lifecycle(l) if l.event == "agent.quarantined")
    ));
}

#[tokio::test]
async fn repeated_denials_quarantine_when_configured() {
    let inv = INVENTORY.replacen(
        "  approval_ttl_seconds: 3600\n",
        "  approval_ttl_seconds: 3600\n  quarantine:\n    on_exfiltration: false\n    denials: { count: 4, within_seconds: 60 }\n",
        1,
    );
    let p = pipeline_from(&inv, SessionStore::open_in_memory().unwrap());
    let probe = |i: usize| {
        req(
            "alice",
            &["report-agent"],
            &format!("p{i}"),
            tool("crm.query", json!({"table": "board_minutes"})),
        )
    };
    for i in 0..3 {
        let v = p.enforce(&probe(i), "mcp").await;
        assert_eq!(v.decision, Decision::Deny);
        assert!(
            !v.policies.iter().any(|x| x == reasons::QUARANTINED),
            "{v:?}"
        );
    }
    let v = p.enforce(&probe(3), "mcp").await;
    assert!(
        v.policies.iter().any(|x| x == reasons::QUARANTINED),
        "the fourth denial within a minute quarantines: {v:?}"
    );
    assert!(
        v.reasons.iter().any(|r| r.message.contains("4 denials")),
        "{v:?}"
    );
}

#[test]
fn a_declassification_lets_one_approved_send_out_and_nothing_else() {
    let p = pipeline();
    let exec = |a| req("alice", &["report-agent"], "d", a);
    assert!(
        p.decide(&exec(tool("crm.query", json!({"table": "customers"}))))
            .is_allowed()
    );
    let send = || {
        exec(tool(
            "mail.send_email",
            json!({"to": "buyer@partner.example", "body": "the approved extract"}),
        ))
    };
    assert_eq!(p.decide(&send()).policies, ["zt4ai.flow.send"]);

    // Asking for a declassification turns the deny into a request for a human.
    let mut ask = send();
    ask.declassify = true;
    let v = p.decide(&ask);
    assert_eq!(v.decision, Decision::RequireApproval, "{v:?}");
    assert_eq!(v.policies, [reasons::DECLASSIFICATION]);
    assert!(
        v.reasons[0].message.contains("to public"),
        "{:?}",
        v.reasons
    );
    let id = v.approval.clone().unwrap();
    let a = p.store().approval(id.as_str()).unwrap();
    assert_eq!(a.kind, zt4ai_session::ApprovalKind::Declassification);
    assert_eq!(a.lower_to, Some(Label::Public));
    assert_eq!(
        (a.requested_by.as_str(), a.resource.as_str()),
        ("alice", "mail.send_email")
    );
    assert_eq!(a.arguments_sha256.as_ref().map(String::len), Some(64));

    // Not by the user the agent acts for; by another approver, yes.
    let alice = zt4ai_session::Approver {
        user: "alice".into(),
        in_group: true,
    };
    assert!(matches!(
        p.store()
            .decide_approval(id.as_str(), true, &alice, None, 1_000),
        Err(zt4ai_session::ApprovalError::SelfApproval { .. })
    ));
    let carol = zt4ai_session::Approver {
        user: "carol".into(),
        in_group: true,
    };
    p.store()
        .decide_approval(id.as_str(), true, &carol, None, 1_000)
        .unwrap();

    // Another send (other arguments) cannot use it.
    let mut other = exec(tool(
        "mail.send_email",
        json!({"to": "buyer@partner.example", "body": "the whole customer table"}),
    ));
    other.approval = Some(id.clone());
    assert_eq!(p.decide(&other).policies, [reasons::APPROVAL_INVALID]);
    // Nor the same send from another session.
    let mut elsewhere = req("alice", &["report-agent"], "e", send().action);
    elsewhere.approval = Some(id.clone());
    assert_eq!(p.decide(&elsewhere).policies, [reasons::APPROVAL_INVALID]);

    let mut retry = send();
    retry.approval = Some(id.clone());
    let v = p.decide(&retry);
    assert_eq!(v.decision, Decision::Allow, "{v:?}");
    assert!(
        v.policies.iter().any(|x| x == reasons::DECLASSIFIED),
        "{v:?}"
    );
    assert_eq!(v.session.unwrap().confidentiality, Label::Public);
    assert_eq!(
        p.store().approval(id.as_str()).unwrap().status,
        zt4ai_session::ApprovalStatus::Used
    );
    // Once.
    assert_eq!(p.decide(&retry).policies, [reasons::APPROVAL_INVALID]);
}

#[tokio::test]
async fn baselines_and_pending_approvals_survive_a_restart() {
    static NOW: AtomicI64 = AtomicI64::new(MONDAY);
    fn clock() -> i64 {
        NOW.load(Ordering::SeqCst)
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let inv = weighted();
    let p = pipeline_from(&inv, SessionStore::open(&path).unwrap()).with_clock(clock);
    normal_week(&p, &NOW).await;
    let t = MONDAY + 8 * DAY + 9 * 3600 + 1800;
    NOW.store(t, Ordering::SeqCst);
    let mut risky = query("after");
    risky.risk = Some(45);
    let v = p.decide(&risky);
    assert_eq!(v.decision, Decision::RequireApproval);
    let id = v.approval.unwrap();
    assert!(p.monitor().flush(p.store(), t).unwrap() >= 2);
    drop(p);

    let p = pipeline_from(&inv, SessionStore::open(&path).unwrap()).with_clock(clock);
    let settings = &p.inventory().settings;
    let m = zt4ai_session::risk::Monitor::load(
        settings.risk.clone(),
        settings.quarantine.clone(),
        p.store(),
    )
    .unwrap();
    let p = p.with_monitor(Arc::new(m));
    // The pending approval is still there, and still works once granted.
    let a = p.store().approval(id.as_str()).unwrap();
    assert_eq!(a.status, zt4ai_session::ApprovalStatus::Pending);
    let carol = zt4ai_session::Approver {
        user: "carol".into(),
        in_group: true,
    };
    p.store()
        .decide_approval(id.as_str(), true, &carol, Some("executives"), t + 5)
        .unwrap();
    risky.approval = Some(id);
    let v = p.decide(&risky);
    assert!(v.is_allowed(), "{v:?}");
    // The baseline is back, mature: the usual is usual, a new tool is new.
    assert_eq!(p.decide(&query("again")).risk.unwrap().score, 0);
    let v = p.decide(&req(
        "alice",
        &["report-agent"],
        "again",
        tool("web.fetch", json!({"url": "https://wiki.acme.example/"})),
    ));
    assert_eq!(signals(&v), ["new_tool"]);
}

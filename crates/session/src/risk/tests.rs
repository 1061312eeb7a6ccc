use std::time::Duration;

use zt4ai_core::inventory::verification::Signal;

use super::*;

const DAY: i64 = 86_400;
/// 2025-12-01 (a Monday), 09:00 UTC.
const START: i64 = 1_764_576_000 + 9 * 3600;

fn settings() -> RiskSettings {
    RiskSettings {
        learning_requests: 20,
        ..RiskSettings::default()
    }
}

fn monitor() -> Monitor {
    Monitor::new(settings(), QuarantineSettings::default())
}

fn obs<'a>(tool: &'a str, destinations: &'a [&'a str]) -> Observation<'a> {
    Observation {
        session: "s1",
        user: "alice",
        agent: Some("report-agent"),
        tool: Some(tool),
        destinations,
        sends_out: false,
        label: Label::Internal,
        injection: false,
        sensitive_egress: false,
        user_risk: None,
    }
}

/// A working week of normal traffic: 4 requests a minute for an hour each
/// morning, over two tools, always the same destination, 2 kB read each.
/// Returns the time of the last request.
fn normal_week(m: &Monitor) -> i64 {
    let mut now = START;
    for day in 0..5 {
        for minute in 0..60 {
            for i in 0..4 {
                let tool = if i % 2 == 0 {
                    "crm.lookup"
                } else {
                    "wiki.search"
                };
                now = START + day * DAY + minute * 60 + i * 10;
                let a = m.assess(&obs(tool, &["intranet"]), now);
                m.output("s1", "alice", Some("report-agent"), 2_000, false, now);
                assert_eq!(a.score, 0, "normal traffic is not risky: {:?}", a.report);
            }
        }
    }
    now
}

fn names(a: &Assessment) -> Vec<&str> {
    a.report.signals.iter().map(|s| s.signal.as_str()).collect()
}

#[test]
fn novelty_fires_once_and_only_after_learning() {
    let m = monitor();
    // While learning, anything goes and is learned.
    assert_eq!(m.assess(&obs("files.delete", &[]), START - DAY).score, 0);
    let now = normal_week(&m);
    let a = m.assess(&obs("crm.export", &["intranet"]), now + 10);
    assert_eq!(names(&a), ["new_tool"]);
    assert_eq!(a.score, 10);
    assert!(a.report.signals[0].detail.contains("`crm.export`"), "{a:?}");
    // Learned now: a second call adds nothing.
    assert_eq!(
        m.assess(&obs("crm.export", &["intranet"]), now + 11).score,
        10
    );
    // A tool learned during the learning period is not new.
    assert_eq!(m.assess(&obs("files.delete", &[]), now + 12).score, 10);
    let c = m.assess(&obs("mail.send", &["competitor"]), now + 13);
    assert_eq!(names(&c), ["new_tool", "new_destination"]);
    assert_eq!(c.score, 35);
    assert_eq!(c.report.agent, 35);
}

#[test]
fn a_burst_fires_once_a_minute_and_is_not_learned() {
    let m = monitor();
    normal_week(&m);
    // Within the usual hour of a later day: 40 requests in one minute.
    let now = START + 7 * DAY + 30 * 60;
    let mut fired = Vec::new();
    for i in 0..40 {
        let a = m.assess(&obs("crm.lookup", &["intranet"]), now + i);
        fired.push(a.score);
    }
    let first = fired.iter().position(|s| *s > 0).expect("a burst fires");
    assert!(
        (9..=20).contains(&first),
        "fires once clearly above usual: at {first}"
    );
    assert_eq!(fired[first], 20);
    assert_eq!(fired[39], 20, "once a minute, not once a request");
    // The burst minute taught the baseline nothing: the same burst the next
    // minute fires again.
    let a = (0..40)
        .map(|i| m.assess(&obs("crm.lookup", &["intranet"]), now + 60 + i))
        .last()
        .expect("forty");
    assert!(names(&a).contains(&"rate_burst"));
    assert!(
        a.score >= 37,
        "two bursts add up (less a little decay): {}",
        a.score
    );
}

#[test]
fn a_volume_spike_and_an_odd_hour_are_signals() {
    let m = monitor();
    normal_week(&m);
    let now = START + 7 * DAY + 30 * 60;
    m.assess(&obs("crm.lookup", &["intranet"]), now);
    m.output("s1", "alice", Some("report-agent"), 500_000, false, now);
    let a = m.score("s1", Some("report-agent"), None, now + 1);
    assert_eq!(names(&a), ["volume_spike"]);
    assert!(a.report.signals[0].detail.contains("500000 bytes"), "{a:?}");
    // 03:00 UTC: never active then.
    let night = START + 7 * DAY - 6 * 3600;
    let b = m.assess(&obs("crm.lookup", &["intranet"]), night);
    assert!(names(&b).contains(&"unusual_hour"), "{b:?}");
}

#[test]
fn request_signals_and_user_risk_are_weighed_and_listed() {
    let m = monitor();
    let mut o = obs("mail.send", &["partner"]);
    o.sends_out = true;
    o.label = Label::Confidential;
    o.injection = true;
    o.sensitive_egress = true;
    o.user_risk = Some(50);
    let a = m.assess(&o, START);
    // Learning: no novelty, but what the request itself carries counts at once.
    assert_eq!(
        names(&a),
        [
            "user_risk",
            "injection",
            "sensitive_egress",
            "confidential_then_send"
        ]
    );
    let sum: f64 = a.report.signals.iter().map(|s| s.weight).sum();
    assert!((sum - 120.0).abs() < 0.01, "30 + 50 + 25 + 15");
    assert_eq!(a.score, 100, "capped");
    assert_eq!(a.report.session, 70, "user risk is not the session's");
}

#[test]
fn risk_decays_with_its_half_life() {
    let m = monitor();
    let mut o = obs("x.y", &[]);
    o.injection = true;
    assert_eq!(m.assess(&o, START).score, 30);
    let half = i64::try_from(settings().half_life.as_secs()).unwrap();
    assert_eq!(
        m.score("s1", Some("report-agent"), None, START + half)
            .score,
        15
    );
    assert_eq!(
        m.score("s1", Some("report-agent"), None, START + 10 * half)
            .score,
        0
    );
}

#[test]
fn sessions_and_agents_keep_their_own_risk() {
    let m = monitor();
    let mut o = obs("x.y", &[]);
    o.injection = true;
    m.assess(&o, START);
    // Another session of the same agent carries the agent's risk.
    let a = m.score("s2", Some("report-agent"), None, START);
    assert_eq!((a.score, a.report.session, a.report.agent), (30, 0, 30));
    // Another agent's session does not.
    assert_eq!(m.score("s3", Some("other"), None, START).score, 0);
}

#[test]
fn denials_signal_probing_and_quarantine_at_the_configured_count() {
    let q = QuarantineSettings {
        denials: Some((5, Duration::from_secs(60))),
        ..QuarantineSettings::default()
    };
    let m = Monitor::new(settings(), q);
    let denied = Outcome {
        session: "s1",
        agent: Some("report-agent"),
        denied: true,
        exfiltration: false,
    };
    assert_eq!(m.outcome(&denied, START).trigger, None);
    assert_eq!(m.outcome(&denied, START + 1).trigger, None);
    assert_eq!(
        m.score("s1", Some("report-agent"), None, START + 1).score,
        0
    );
    let third = m.outcome(&denied, START + 2);
    assert_eq!(third.trigger, None);
    assert_eq!(third.fired, [Signal::RepeatedDenials]);
    let a = m.score("s1", Some("report-agent"), None, START + 2);
    assert_eq!(
        names(&a),
        ["repeated_denials"],
        "third denial in the window"
    );
    assert_eq!(m.outcome(&denied, START + 3).trigger, None);
    let t = m
        .outcome(&denied, START + 4)
        .trigger
        .expect("fifth denial quarantines");
    assert_eq!((t.agent.as_str(), t.kind), ("report-agent", "denials"));
    // Spread out beyond the window, denials do not add up.
    let m = Monitor::new(settings(), QuarantineSettings::default());
    for i in 0..20 {
        assert_eq!(m.outcome(&denied, START + i * 400).trigger, None);
    }
}

#[test]
fn an_exfiltration_attempt_is_a_trigger_unless_switched_off() {
    let m = monitor();
    let exfil = Outcome {
        session: "s1",
        agent: Some("report-agent"),
        denied: true,
        exfiltration: true,
    };
    let t = m.outcome(&exfil, START).trigger.expect("quarantine");
    assert_eq!(t.kind, "exfiltration");
    m.mark_quarantined("report-agent", true);
    assert!(m.is_quarantined("report-agent"));
    assert_eq!(m.outcome(&exfil, START + 1).trigger, None, "once");
    m.release("report-agent");
    assert!(!m.is_quarantined("report-agent"));
    let off = QuarantineSettings {
        on_exfiltration: false,
        ..QuarantineSettings::default()
    };
    assert_eq!(
        Monitor::new(settings(), off).outcome(&exfil, START).trigger,
        None
    );
    // No agent, no quarantine.
    let user_only = Outcome {
        agent: None,
        ..exfil
    };
    assert_eq!(monitor().outcome(&user_only, START).trigger, None);
}

#[test]
fn quarantine_at_a_risk_threshold() {
    let q = QuarantineSettings {
        at_risk: Some(50),
        ..QuarantineSettings::default()
    };
    let m = Monitor::new(settings(), q);
    let mut o = obs("x.y", &[]);
    o.injection = true;
    let fine = Outcome {
        session: "s1",
        agent: Some("report-agent"),
        denied: false,
        exfiltration: false,
    };
    m.assess(&o, START);
    assert_eq!(m.outcome(&fine, START).trigger, None);
    m.assess(&o, START + 1);
    assert_eq!(
        m.outcome(&fine, START + 1).trigger.map(|t| t.kind),
        Some("risk")
    );
}

#[test]
fn baselines_and_risk_survive_a_restart() {
    let store = SessionStore::open_in_memory().unwrap();
    let m = monitor();
    let now = normal_week(&m);
    let mut o = obs("crm.lookup", &["intranet"]);
    o.injection = true;
    m.assess(&o, now + 1);
    let written = m.flush(&store, now + 1).unwrap();
    assert_eq!(written, 3, "agent, user and session");
    assert_eq!(
        m.flush(&store, now + 2).unwrap(),
        0,
        "nothing changed since"
    );

    let again = Monitor::load(settings(), QuarantineSettings::default(), &store).unwrap();
    assert_eq!(again.tracked(), (1, 1, 1));
    let a = again.assess(&obs("crm.lookup", &["intranet"]), now + 3);
    assert_eq!(
        names(&a),
        ["injection"],
        "the risk is back, nothing new: {a:?}"
    );
    let b = again.assess(&obs("crm.export", &["intranet"]), now + 4);
    assert!(
        names(&b).contains(&"new_tool"),
        "the baseline is mature: {b:?}"
    );

    // A session whose risk has faded is forgotten, in memory and in the store.
    let later = now + 100 * 900;
    again.flush(&store, later).unwrap();
    let reloaded = Monitor::load(settings(), QuarantineSettings::default(), &store).unwrap();
    assert_eq!(reloaded.tracked().2, 0);
}

#[test]
fn a_corrupt_state_row_is_an_error_not_a_blank_baseline() {
    let store = SessionStore::open_in_memory().unwrap();
    store
        .db()
        .execute(
            "INSERT INTO behaviour (subject, state, updated_at) VALUES ('agent:x', '{not json', 0)",
            [],
        )
        .unwrap();
    let e = Monitor::load(settings(), QuarantineSettings::default(), &store).unwrap_err();
    assert!(e.to_string().contains("agent:x"), "{e}");
}

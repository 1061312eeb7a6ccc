//! The decision record the audit benchmark and the `append_latency` example
//! write (included by both with `#[path]`).

use zt4ai_audit::{DecisionEvent, Event};
use zt4ai_core::{ActorChain, AgentId, Decision, Reason, UserId};

/// A typical decision record (~600 bytes of JSON).
#[allow(clippy::unwrap_used, reason = "constant, valid ids")]
pub fn event(i: u64) -> Event {
    Event::Decision(DecisionEvent {
        time_ms: zt4ai_audit::now_ms(),
        request_id: Some(format!("req-{i}")),
        point: "mcp".into(),
        session: format!("session-{}", i % 1000),
        chain: ActorChain {
            user: UserId::new("alice").unwrap(),
            agents: vec![AgentId::new("report-agent").unwrap()],
        },
        action: "call_tool".into(),
        resource: "mail.send".into(),
        decision: if i.is_multiple_of(10) {
            Decision::Deny
        } else {
            Decision::Allow
        },
        policies: vec!["zt4ai.guard.exfiltration".into()],
        reasons: vec![Reason {
            policy: "zt4ai.guard.exfiltration".into(),
            message: "the session has read confidential data and `mail:x@rival.example` is not cleared for it".into(),
        }],
        findings: Vec::new(),
        label_before: Some(zt4ai_core::SessionLabel::default()),
        label_after: Some(zt4ai_core::SessionLabel::default()),
        risk: Some(12),
        approval: None,
        arguments_sha256: Some("9f2c".repeat(16)),
        risk_signals: Vec::new(),
    })
}

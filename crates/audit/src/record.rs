//! What one audit record says: a decision, or a lifecycle event.
//!
//! A record is stored as the JSON of [`Record`], and those exact bytes are the
//! Merkle leaf. The index comes first (`{"index":N,…`), so that `verify` can name
//! a record that was moved without parsing it.

use serde::{Deserialize, Serialize};
use zt4ai_core::{ActorChain, Decision, Reason, SessionLabel};

/// One record of the audit log: its position and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, from 0.
    pub index: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per request and serialized at once; almost every event is a decision"
)]
pub enum Event {
    /// A verdict of the decision pipeline.
    Decision(DecisionEvent),
    /// A change to who may do what: an agent registered or suspended, an
    /// approval granted, a key rotated, the server started with a policy set.
    Lifecycle(LifecycleEvent),
}

/// One verdict, with everything needed to explain it afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// The caller's request id, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The enforcement point the request came through (`authzen`, `mcp`, …).
    pub point: String,
    /// The session (task or conversation).
    pub session: String,
    /// Who acted: the user and the agents, outermost first.
    pub chain: ActorChain,
    /// The action (`call_tool`, `read`, `send`, …).
    pub action: String,
    /// The resource the action names (tool, dataset, target or model).
    pub resource: String,
    /// Allow, deny or require approval.
    pub decision: Decision,
    /// The determining policy ids, sorted.
    pub policies: Vec<String>,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
    /// What inspection found. Never the raw content: a keyed hash at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<AuditFinding>,
    /// The session's label before the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_before: Option<SessionLabel>,
    /// The session's label after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_after: Option<SessionLabel>,
    /// The request's risk score, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<u8>,
    /// The signals that made up the risk score, with their weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_signals: Vec<zt4ai_core::SignalWeight>,
    /// The approval this request created or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// SHA-256 of the request's canonical arguments (the arguments themselves may
    /// hold secrets and are not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
}

/// One inspection finding as recorded: kind and place, never the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditFinding {
    /// Finding kind (`prompt_injection`, `secret`, …).
    pub kind: String,
    /// Where it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A keyed hash of the matched content, so two records can be matched up
    /// without the content being readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// A lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// What happened, dotted: `agent.registered`, `agent.suspended`,
    /// `approval.granted`, `keys.rotated`, `server.started`, …
    pub event: String,
    /// Who did it (`admin-api`, `cli:<user>`, `zt4ai`).
    pub actor: String,
    /// What it was done to (an agent id, an approval id, a key id…).
    pub subject: String,
    /// Anything else worth keeping, as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Event {
    /// Unix time in milliseconds.
    pub fn time_ms(&self) -> i64 {
        match self {
            Event::Decision(d) => d.time_ms,
            Event::Lifecycle(l) => l.time_ms,
        }
    }

    /// A lifecycle event at the current time.
    pub fn lifecycle(event: &str, actor: &str, subject: &str, detail: serde_json::Value) -> Event {
        Event::Lifecycle(LifecycleEvent {
            time_ms: now_ms(),
            event: event.to_owned(),
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            detail,
        })
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The stored bytes of record `index`: `{"index":N,` followed by the event's own
/// JSON object without its opening brace.
#[cfg(test)]
pub(crate) fn body(index: u64, event_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    body_into(index, event_json, &mut out);
    out
}

/// [`body`] into `out` (cleared first), which the writer reuses.
pub(crate) fn body_into(index: u64, event_json: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(index.to_string().as_bytes());
    // INVARIANT: `event_json` is a serialized `Event`, a JSON object with at
    // least its `kind` field, so it starts with `{` and is not empty.
    if event_json.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(event_json.get(1..).unwrap_or(b"}"));
}

/// The prefix every stored body of record `index` starts with.
pub(crate) fn body_prefix(index: u64) -> String {
    format!("{{\"index\":{index},")
}

//! Continuous verification in the pipeline: the observation a request makes
//! for the [risk monitor](zt4ai_session::risk), what its outcome feeds back,
//! and the quarantine of an agent when a trigger fires.

use std::sync::Arc;

use tracing::{error, warn};
use zt4ai_audit::Event;
use zt4ai_core::inventory::AgentState;
use zt4ai_core::{ActionRequest, Decision, Label, Reason, SessionLabel, Verdict};
use zt4ai_policy::ActionKind;
use zt4ai_session::risk::{Observation, Outcome, Trigger};

use crate::{Pipeline, Resolved, Trail, reasons};

/// Policies that deny a flow of data for the session's label alone: a human
/// may lift them by declassifying the session.
const FLOW_POLICIES: [&str; 3] = ["zt4ai.flow.send", "zt4ai.flow.write", "zt4ai.flow.model"];

/// The baseline guard that asks a human to approve medium-risk requests.
pub(crate) const RISK_MEDIUM: &str = "zt4ai.risk.medium";

/// Who the registry and the audit log name as having quarantined an agent.
pub const QUARANTINE_ACTOR: &str = "zt4ai.quarantine";

/// An agent just quarantined, for whoever must hear of it (the gateway drops
/// its cached credentials and sends the webhook).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Quarantined {
    /// The agent.
    pub agent: String,
    /// The trigger: `exfiltration`, `denials` or `risk`.
    pub trigger: &'static str,
    /// What happened.
    pub detail: String,
    /// The session whose request fired it.
    pub session: String,
    /// The user the agent acted for.
    pub user: String,
    /// The request that fired it, as `action resource`.
    pub request: String,
    /// The risk score at the time.
    pub risk: Option<u8>,
    /// Unix seconds.
    pub at: i64,
}

/// Called once for each agent quarantined.
#[derive(Clone)]
pub struct QuarantineHook(pub Arc<dyn Fn(&Quarantined) + Send + Sync>);

impl std::fmt::Debug for QuarantineHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuarantineHook")
    }
}

impl Pipeline {
    /// Judges the request against its agent's and user's baselines and
    /// returns the risk score to decide with. `sensitive` says whether the
    /// request carries sensitive data above a destination's clearance.
    pub(crate) fn assess(
        &self,
        req: &ActionRequest,
        resolved: &Resolved<'_>,
        before: &SessionLabel,
        trail: &Trail,
        sensitive: bool,
        now: i64,
    ) -> zt4ai_session::risk::Assessment {
        let destinations: Vec<&str> = resolved
            .checks
            .iter()
            .filter(|c| matches!(c.action, ActionKind::Send | ActionKind::Fetch))
            .map(|c| c.resource.as_str())
            .collect();
        let inv = self.inventory();
        let sends = resolved.checks.iter().any(|c| c.action == ActionKind::Send);
        let sends_out = resolved.checks.iter().any(|c| {
            c.action == ActionKind::Send
                && inv
                    .destinations
                    .get(&c.resource)
                    .is_some_and(|d| d.external)
        });
        let o = Observation {
            session: req.session.as_str(),
            user: req.chain.user.as_str(),
            agent: req.chain.agents.last().map(|a| a.as_str()),
            tool: resolved.tool.map(|t| t.id.as_str()),
            destinations: &destinations,
            sends_out,
            label: before.confidentiality,
            injection: trail
                .findings
                .iter()
                .any(|f| f.kind == zt4ai_core::request::PROMPT_INJECTION),
            sensitive_egress: sensitive && sends,
            user_risk: req.risk,
        };
        let a = self.monitor.assess(&o, now);
        count(&a.fired);
        a
    }

    /// The acting agent (the last of the chain) if the inventory knows it:
    /// only known agents are tracked, so a made-up name cannot grow the
    /// monitor's memory.
    pub(crate) fn tracked_agent<'r>(&self, req: &'r ActionRequest) -> Option<&'r str> {
        req.chain
            .agents
            .last()
            .filter(|a| self.inventory().agents.contains_key(*a))
            .map(|a| a.as_str())
    }

    /// Whether an agent the monitor quarantined is still quarantined: if the
    /// registry never took the quarantine, storing it is retried and the agent
    /// stays refused; if it did and a human has since resumed the agent, the
    /// monitor lets it go.
    pub(crate) fn still_quarantined(&self, agent: &str) -> bool {
        if !self.monitor.quarantine_stored(agent) {
            let now = (self.clock)();
            if self.store_quarantine(agent, "quarantined earlier; storing it had failed", now) {
                self.monitor.mark_quarantined(agent, true);
            }
            return true;
        }
        match self.store.agent(agent) {
            Ok(a) if a.state == AgentState::Active => {
                self.monitor.release(agent);
                false
            }
            _ => true,
        }
    }

    /// Suspends the agent and revokes its earlier tokens; whether both are stored.
    fn store_quarantine(&self, agent: &str, reason: &str, now: i64) -> bool {
        let suspended = match self.store.set_agent_state(
            agent,
            AgentState::Suspended,
            QUARANTINE_ACTOR,
            Some(reason),
            now,
        ) {
            Ok(_) | Err(zt4ai_session::RegistryError::InvalidTransition { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        let revoked = self
            .store
            .revoke_agent_tokens(agent, now, QUARANTINE_ACTOR, Some(reason), now)
            .map_err(|e| e.to_string());
        match suspended.and(revoked) {
            Ok(()) => true,
            Err(e) => {
                // The monitor still refuses the agent in this process, and
                // storing is retried on its next request.
                error!(agent, error = %e, "quarantine could not be stored");
                false
            }
        }
    }

    /// Feeds the verdict back to the monitor; a trigger is left in `trail`
    /// for [`Pipeline::enforce`] to carry out.
    pub(crate) fn feed_back(&self, req: &ActionRequest, verdict: &mut Verdict, trail: &mut Trail) {
        if verdict.risk.is_none() {
            verdict.risk.clone_from(&trail.risk);
        }
        let agent = self.tracked_agent(req);
        let o = Outcome {
            session: req.session.as_str(),
            agent,
            denied: verdict.decision == Decision::Deny,
            exfiltration: trail.exfiltration,
        };
        let feedback = self.monitor.outcome(&o, (self.clock)());
        count(&feedback.fired);
        trail.trigger = feedback.trigger;
    }

    /// Quarantines the agent of `trigger`: suspends it, revokes every token
    /// issued to it so far, records both durably, and tells the hook. The
    /// verdict (already a deny, or the next one) names the quarantine.
    pub(crate) async fn quarantine(
        &self,
        trigger: Trigger,
        req: &ActionRequest,
        mut verdict: Verdict,
    ) -> Verdict {
        let now = (self.clock)();
        let agent = trigger.agent.as_str();
        let reason = format!("quarantined ({}): {}", trigger.kind, trigger.detail);
        warn!(agent, trigger = trigger.kind, detail = %trigger.detail, session = %req.session, "quarantining agent");
        let stored = self.store_quarantine(agent, &reason, now);
        zt4ai_telemetry::metrics().quarantine(trigger.kind);
        self.monitor.mark_quarantined(agent, stored);
        let q = Quarantined {
            agent: agent.to_owned(),
            trigger: trigger.kind,
            detail: trigger.detail.clone(),
            session: req.session.to_string(),
            user: req.chain.user.to_string(),
            request: format!("{} {}", req.action.name(), crate::resource_of(req).0),
            risk: verdict.risk.as_ref().map(|r| r.score),
            at: now,
        };
        if let Some(log) = &self.audit {
            let event = Event::lifecycle(
                "agent.quarantined",
                QUARANTINE_ACTOR,
                agent,
                serde_json::json!({
                    "trigger": q.trigger,
                    "detail": q.detail,
                    "session": q.session,
                    "user": q.user,
                    "request": q.request,
                    "risk": q.risk,
                    "stored": stored,
                }),
            );
            if let Err(e) = log.append(&event).durable().await {
                error!(agent, error = %e, "the quarantine could not be recorded");
            }
        }
        let hooks = self.on_quarantine.read().clone();
        for hook in hooks {
            (hook.0)(&q);
        }
        if verdict.decision != Decision::Deny {
            verdict.decision = Decision::Deny;
            verdict.policies.clear();
            verdict.reasons.clear();
            verdict.obligations.clear();
            verdict.approval = None;
        }
        if !verdict.policies.iter().any(|p| p == reasons::QUARANTINED) {
            verdict.policies.push(reasons::QUARANTINED.to_owned());
            verdict.policies.sort();
        }
        verdict.reasons.push(Reason {
            policy: reasons::QUARANTINED.to_owned(),
            message: format!("agent `{agent}` is {reason}; a human must resume it"),
        });
        verdict
    }
}

/// Counts fired signals in the metrics.
pub(crate) fn count(fired: &[zt4ai_core::inventory::verification::Signal]) {
    for s in fired {
        zt4ai_telemetry::metrics().risk_signal(s.as_str());
    }
}

/// Whether a deny is for the session's label alone (what a declassification lifts).
pub(crate) fn flow_only(policies: &[String]) -> bool {
    !policies.is_empty() && policies.iter().all(|p| FLOW_POLICIES.contains(&p.as_str()))
}

/// Whether a deny refused a send of confidential data: the session's label
/// or the content's was above the destination's clearance.
pub(crate) fn is_exfiltration(policies: &[String], session: Label, content: Label) -> bool {
    let flow = policies.iter().any(|p| p == "zt4ai.flow.send") && session >= Label::Confidential;
    let sensitive =
        policies.iter().any(|p| p == reasons::SENSITIVE_EGRESS) && content >= Label::Confidential;
    flow || sensitive
}

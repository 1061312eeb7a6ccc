//! The decision pipeline: one [`ActionRequest`] in, one [`Verdict`] out.
//!
//! Every enforcement point (the AuthZEN API today; the MCP and LLM gateways next)
//! calls [`Pipeline::decide`], so a decision is the same whichever door a request
//! came through. The steps, as in the architecture:
//!
//! 1. **authenticate** — resolve the actor chain against the inventory (the caller
//!    states the chain until delegated credentials exist);
//! 2. **contextualise** — lock the session and read its label;
//! 3. **inspect** — run the [inspector](zt4ai_inspect) over the string values
//!    of a tool call's arguments, and add the caller's own findings: an
//!    injection finding denies; sensitive data in what a send carries is
//!    checked against the destination's clearance (deny, or redact when the
//!    inventory says so);
//! 4. **assess risk** — judge the request against its agent's and user's
//!    behaviour baselines ([`zt4ai_session::risk`]): the signals it fires add
//!    to the session's and the agent's decaying risk, and the score (with the
//!    user's reported risk) is what the risk guards read; a quarantined agent
//!    is refused here;
//! 5. **decide** — resolve the resources the request touches (tool bindings, send
//!    targets) and ask the [policy engine](zt4ai_policy) for every link and resource;
//! 6. **enforce** — on `require_approval`, record a pending approval; on a retry
//!    with a granted approval, lift exactly the policies it names, once (or,
//!    for a declassification, lower the session's label, once); a deny for
//!    the label alone becomes a declassification request when the caller asks;
//! 7. **absorb** — on allow, raise the session's label by what the request reads,
//!    durably, before the verdict is returned; once the tool has answered,
//!    [`Pipeline::absorb_output`] inspects its output: an injection makes the
//!    session untrusted, sensitive data raises its label and categories;
//! 8. **record** — [`Pipeline::enforce`] appends the verdict to the
//!    [audit log](zt4ai_audit) and returns it only once the record is durable;
//!    the verdict is fed back to the monitor, and a quarantine trigger
//!    (an exfiltration attempt, too many denials, too much risk) suspends the
//!    agent and revokes its tokens before the verdict is returned.
//!
//! Enforcement points call [`Pipeline::enforce`]; [`Pipeline::decide`] is the
//! same decision without the record, for what-if tools and benchmarks.
//!
//! Every failure on this path (unknown principal, malformed arguments, store error,
//! policy error) is a deny with a reason: the pipeline never fails open.

use std::collections::BTreeSet;
use std::sync::Arc;

use std::time::{Duration, Instant};

use tracing::{Instrument as _, debug, error, info};
use zt4ai_audit::{AuditLog, DecisionEvent, Event};
use zt4ai_core::inventory::{Access, BindingKind, Tool};
use zt4ai_core::request::{
    Finding, PROMPT_INJECTION, bound_values, provider_fetches, unbound_recipients,
};
use zt4ai_core::{
    Action, ActionRequest, Decision, Integrity, Inventory, Obligation, ScopeKind, SessionId,
    SessionLabel, Verdict, unix_now,
};
pub use zt4ai_policy::{ActionKind, Evaluation, Part, PrincipalRef};
use zt4ai_policy::{Check, Facts};
pub use zt4ai_policy::{PolicyEngine, PolicyErrors, PolicySource};
use zt4ai_session::SessionOwner;
pub use zt4ai_session::{SessionStore, StoreError};
use zt4ai_telemetry::{Stage, TRACE_TARGET};

pub use zt4ai_inspect as inspect;
use zt4ai_inspect::{Detectors, Inspector, Provenance};
use zt4ai_session::risk::Monitor;
use zt4ai_session::{ApprovalKind, NewApproval};

mod verify;
pub use verify::{QUARANTINE_ACTOR, QuarantineHook, Quarantined};

/// Reason ids the pipeline itself produces (policies produce the rest).
pub mod reasons {
    /// The user or an agent of the chain is not in the inventory.
    pub const UNKNOWN_PRINCIPAL: &str = "zt4ai.identity.unknown";
    /// The request cannot be evaluated as given (bad arguments, bad target).
    pub const INVALID_REQUEST: &str = "zt4ai.request.invalid";
    /// The request names a resource the inventory does not have.
    pub const UNKNOWN_RESOURCE: &str = "zt4ai.request.unknown_resource";
    /// The session belongs to another actor chain.
    pub const SESSION_OWNER: &str = "zt4ai.session.owner";
    /// The session store failed.
    pub const STORE_UNAVAILABLE: &str = "zt4ai.store.unavailable";
    /// The approval presented cannot be used.
    pub const APPROVAL_INVALID: &str = "zt4ai.approval.invalid";
    /// The request touches a resource outside its delegated token's task scope.
    pub const OUT_OF_SCOPE: &str = "zt4ai.identity.scope";
    /// The request's stated subject is not the one its token proves.
    pub const IDENTITY_MISMATCH: &str = "zt4ai.identity.mismatch";
    /// A genuine token bound to a key was presented without a valid proof of
    /// possession (as a bearer token, without a proof, or with a proof by
    /// another key, replayed, or for another request).
    pub const POSSESSION: &str = "zt4ai.identity.possession";
    /// The verdict could not be recorded durably in the audit log.
    pub const AUDIT_UNAVAILABLE: &str = "zt4ai.audit.unavailable";
    /// Sensitive data above the destination's clearance was redacted from a
    /// send (the policy that would have denied it).
    pub const SENSITIVE_EGRESS: &str = "zt4ai.inspect.sensitive_egress";
    /// Sensitive data in a model prompt above the model's clearance.
    pub const SENSITIVE_MODEL: &str = "zt4ai.inspect.sensitive_model";
    /// Sensitive data in what a call writes, above the dataset's label.
    pub const SENSITIVE_WRITE: &str = "zt4ai.inspect.sensitive_write";
    /// A tool's output carried findings that changed the session.
    pub const OUTPUT_FINDINGS: &str = "zt4ai.inspect.output";
    /// An agent of the chain is quarantined.
    pub const QUARANTINED: &str = "zt4ai.risk.quarantined";
    /// A human lowered the session's label for this request.
    pub const DECLASSIFIED: &str = "zt4ai.approval.declassified";
    /// The session's label stands in the way; a human may declassify it.
    pub const DECLASSIFICATION: &str = "zt4ai.approval.declassification";
}

/// The decision pipeline.
#[derive(Debug)]
pub struct Pipeline {
    engine: Arc<PolicyEngine>,
    store: Arc<SessionStore>,
    audit: Option<Arc<AuditLog>>,
    inspector: Option<Arc<Inspector>>,
    monitor: Arc<Monitor>,
    on_quarantine: parking_lot::RwLock<Vec<QuarantineHook>>,
    clock: fn() -> i64,
}

/// What a decision leaves for its audit record and its feedback: the
/// session's label as read, every finding about the request (the caller's and
/// the inspector's), the risk it was decided with, and what it means for the
/// agent.
#[derive(Debug, Default)]
struct Trail {
    before: Option<SessionLabel>,
    findings: Vec<Finding>,
    risk: Option<zt4ai_core::RiskReport>,
    exfiltration: bool,
    trigger: Option<zt4ai_session::risk::Trigger>,
}

/// A sensitive value found in an argument, with what it means for a label.
struct Sensitive {
    pointer: String,
    start: usize,
    end: usize,
    kind: String,
    label: zt4ai_core::Label,
    category: zt4ai_core::Category,
}

/// What a task scope calls the resource of `action`, and its name in messages.
fn scope_kind(action: ActionKind) -> (ScopeKind, &'static str) {
    match action {
        ActionKind::CallTool => (ScopeKind::Tool, "tool"),
        ActionKind::Read | ActionKind::Write => (ScopeKind::Dataset, "dataset"),
        ActionKind::Send | ActionKind::Fetch => (ScopeKind::Destination, "destination"),
        ActionKind::InvokeModel => (ScopeKind::Model, "model"),
    }
}

/// The keys of a model prompt's messages that hold structure, not content.
const STRUCTURAL_KEYS: [&str; 5] = ["role", "type", "id", "tool_call_id", "name"];

/// What inspecting a request's own content found.
#[derive(Default)]
struct Inspected {
    /// Sensitive values, with where they are.
    sensitive: Vec<Sensitive>,
    /// A prompt injection in an untrusted part of a model prompt.
    indirect_injection: bool,
    /// A prompt injection in a trusted part of a model prompt.
    direct_injection: bool,
}

/// A deny found while resolving a request: the reason id and the message.
struct Denial(&'static str, String);

/// What a request touches, resolved against the inventory.
struct Resolved<'a> {
    links: Vec<PrincipalRef>,
    checks: Vec<Check>,
    /// Labels of what this request reads (datasets, tool output).
    reads: SessionLabel,
    tool: Option<&'a Tool>,
}

impl Pipeline {
    /// A pipeline over a policy engine and a session store.
    pub fn new(engine: Arc<PolicyEngine>, store: Arc<SessionStore>) -> Self {
        let settings = &engine.inventory().settings;
        let monitor = Arc::new(Monitor::new(
            settings.risk.clone(),
            settings.quarantine.clone(),
        ));
        Pipeline {
            engine,
            store,
            audit: None,
            inspector: None,
            monitor,
            on_quarantine: parking_lot::RwLock::new(Vec::new()),
            clock: unix_now,
        }
    }

    /// Keeps baselines and risk in `monitor` (one loaded from the store, so
    /// they survive a restart).
    #[must_use]
    pub fn with_monitor(mut self, monitor: Arc<Monitor>) -> Self {
        self.monitor = monitor;
        self
    }

    /// Adds a hook called for each agent quarantined (the gateway adds one
    /// that makes its token verification see the suspension at once).
    pub fn add_quarantine_hook(&self, hook: QuarantineHook) {
        self.on_quarantine.write().push(hook);
    }

    /// The behaviour monitor.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// Calls `hook` for each agent quarantined, after it is stored and recorded.
    #[must_use]
    pub fn on_quarantine(self, hook: QuarantineHook) -> Self {
        self.add_quarantine_hook(hook);
        self
    }

    /// Inspects tool arguments and tool output with `inspector`.
    #[must_use]
    pub fn with_inspector(mut self, inspector: Arc<Inspector>) -> Self {
        self.inspector = Some(inspector);
        self
    }

    /// The inspector, when content is inspected.
    pub fn inspector(&self) -> Option<&Arc<Inspector>> {
        self.inspector.as_ref()
    }

    /// Records every verdict of [`Self::enforce`] in `log`.
    #[must_use]
    pub fn with_audit(mut self, log: Arc<AuditLog>) -> Self {
        self.audit = Some(log);
        self
    }

    /// The audit log, when verdicts are recorded.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// Replaces the clock (Unix seconds), for tests.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// The policy engine.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// The inventory.
    pub fn inventory(&self) -> &Arc<Inventory> {
        self.engine.inventory()
    }

    /// The session store.
    pub fn store(&self) -> &Arc<SessionStore> {
        &self.store
    }

    /// Decides one request and records the verdict in the audit log; returns once
    /// the record is durable, so an allowed action is never carried out
    /// unrecorded. If the record cannot be stored, the verdict is a deny
    /// ([`reasons::AUDIT_UNAVAILABLE`]). `point` names the enforcement point
    /// (`authzen`, `mcp`, …) in the record.
    pub async fn enforce(&self, req: &ActionRequest, point: &'static str) -> Verdict {
        let started = Instant::now();
        let span = tracing::debug_span!(target: TRACE_TARGET, "zt4ai.decision",
            zt4ai.point = point,
            zt4ai.action = req.action.name(),
            zt4ai.user = %req.chain.user,
            gen_ai.agent.id = req.chain.agents.last().map(|a| a.as_str()),
            gen_ai.conversation.id = %req.session,
            zt4ai.decision = tracing::field::Empty,
            zt4ai.policies = tracing::field::Empty,
        );
        let mut trail = Trail::default();
        let mut verdict = span.in_scope(|| self.decide_logged(req, &mut trail));
        if let Some(risk) = verdict.risk.as_ref().map(|r| r.score).or(req.risk) {
            zt4ai_telemetry::metrics().risk(risk);
        }
        if let Some(trigger) = trail.trigger.take() {
            verdict = self.quarantine(trigger, req, verdict).await;
        }
        let verdict = match &self.audit {
            None => verdict,
            Some(log) => {
                let event = record(req, point, &verdict, trail);
                let clock = Instant::now();
                let record_span =
                    tracing::debug_span!(target: TRACE_TARGET, parent: &span, "zt4ai.record");
                let verdict = durable(log, &event, req.request_id.as_deref(), verdict)
                    .instrument(record_span)
                    .await;
                zt4ai_telemetry::metrics().stage(Stage::record, clock.elapsed());
                verdict
            }
        };
        let guard = verdict.policies.first().map_or("", String::as_str);
        if !span.is_disabled() {
            span.record("zt4ai.decision", verdict.decision.as_str());
            span.record("zt4ai.policies", verdict.policies.join(" "));
        }
        zt4ai_telemetry::metrics().decision(
            point,
            verdict.decision.as_str(),
            guard,
            started.elapsed(),
        );
        verdict
    }

    /// Records a deny that the enforcement point gave before a request could be
    /// formed (the token's subject is not the one stated, the action cannot be
    /// read), so probing shows in the audit log too. Returns the verdict, or an
    /// audit-unavailable deny if it cannot be recorded.
    pub async fn record_refusal(&self, refusal: Refusal<'_>, verdict: Verdict) -> Verdict {
        let Some(log) = &self.audit else {
            return verdict;
        };
        let rid = refusal.request_id.clone();
        let event = Event::Decision(DecisionEvent {
            time_ms: zt4ai_audit::now_ms(),
            request_id: refusal.request_id,
            point: refusal.point.to_owned(),
            session: refusal.session.to_owned(),
            chain: refusal.chain.clone(),
            action: refusal.action.to_owned(),
            resource: refusal.resource.to_owned(),
            decision: verdict.decision,
            policies: verdict.policies.clone(),
            reasons: verdict.reasons.clone(),
            findings: Vec::new(),
            label_before: None,
            label_after: None,
            risk: None,
            approval: None,
            arguments_sha256: None,
            risk_signals: Vec::new(),
        });
        durable(log, &event, rid.as_deref(), verdict).await
    }

    /// Decides one request without recording it: for what-if tools, tests and
    /// benchmarks. Enforcement points use [`Self::enforce`]. Never panics and
    /// never fails open: every error is a deny.
    pub fn decide(&self, req: &ActionRequest) -> Verdict {
        self.decide_logged(req, &mut Trail::default())
    }

    /// Decides and logs (tracing); `trail` receives what the record needs.
    fn decide_logged(&self, req: &ActionRequest, trail: &mut Trail) -> Verdict {
        let mut verdict = self.decide_inner(req, trail);
        self.feed_back(req, &mut verdict, trail);
        let rid = req.request_id.as_deref().unwrap_or("-");
        if verdict.decision == Decision::Allow {
            debug!(request_id = rid, session = %req.session, chain = %req.chain.describe(),
                action = req.action.name(), decision = "allow", policies = ?verdict.policies, "decision");
        } else {
            info!(request_id = rid, session = %req.session, chain = %req.chain.describe(),
                action = req.action.name(), decision = verdict.decision.as_str(), policies = ?verdict.policies,
                reason = verdict.reasons.first().map_or("", |r| r.message.as_str()), "decision");
        }
        verdict
    }

    fn decide_inner(&self, req: &ActionRequest, trail: &mut Trail) -> Verdict {
        let metrics = zt4ai_telemetry::metrics();
        let mut clock = Instant::now();
        let mut stage = stage_span(Stage::authenticate);
        let resolved = match self.resolve(req) {
            Ok(r) => r,
            Err(Denial(policy, message)) => return Verdict::deny(policy, message),
        };
        if let Some(denied) = self.out_of_scope(req, &resolved) {
            return denied;
        }
        for a in &req.chain.agents {
            if self.monitor.is_quarantined(a.as_str()) && self.still_quarantined(a.as_str()) {
                return Verdict::deny(
                    reasons::QUARANTINED,
                    format!("agent `{a}` is quarantined; a human must resume it"),
                );
            }
        }
        metrics.stage(Stage::authenticate, lap(&mut clock));
        drop(stage);
        stage = stage_span(Stage::inspect);
        trail.findings.clone_from(&req.findings);
        let Inspected {
            sensitive,
            indirect_injection,
            direct_injection,
        } = self.inspect_arguments(req, resolved.tool, &mut trail.findings);
        metrics.stage(Stage::inspect, lap(&mut clock));
        drop(stage);
        stage = stage_span(Stage::contextualise);
        let mut session = match self.store.lock(&req.session) {
            Ok(s) => s,
            Err(e) => {
                return Verdict::deny(reasons::STORE_UNAVAILABLE, format!("{e}; failing closed"));
            }
        };
        let owner = SessionOwner {
            user: req.chain.user.clone(),
            agent: req.chain.agents.first().cloned(),
        };
        if let Some(existing) = session.owner()
            && existing != &owner
        {
            return Verdict::deny(
                reasons::SESSION_OWNER,
                format!("session `{}` belongs to another user or agent", req.session),
            );
        }
        let floor = floor_of(req);
        let before = match self.with_floor(session.label(), floor.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                return Verdict::deny(reasons::STORE_UNAVAILABLE, format!("{e}; failing closed"));
            }
        };
        trail.before = Some(before.clone());
        let now = (self.clock)();
        let mut lifted = BTreeSet::new();
        // The categories every sink the request reaches is cleared for.
        let cleared = self.cleared_categories(&resolved.checks);
        // A granted declassification: (approval, the label to lower to).
        let mut lower = None;
        let mut seen = before.clone();
        if let Some(id) = &req.approval {
            match self
                .store
                .check_approval(id, &req.session, &fingerprint(req), now)
            {
                Ok(a) if a.kind == ApprovalKind::Action => {
                    lifted = a.policies.into_iter().collect()
                }
                Ok(a) => match a.lower_to {
                    Some(to) => {
                        seen.confidentiality = seen.confidentiality.min(to);
                        // ... and down to the categories every sink reached
                        // is cleared for.
                        if let Some(cleared) = &cleared {
                            seen.categories.retain(|c| cleared.contains(c));
                        }
                        lower = Some((id.clone(), to));
                        // A human has approved this very request: that is the
                        // approval medium risk asks for (high risk still denies).
                        lifted.insert(verify::RISK_MEDIUM.to_owned());
                    }
                    None => {
                        return Verdict::deny(
                            reasons::APPROVAL_INVALID,
                            format!("declassification `{id}` names no label"),
                        );
                    }
                },
                Err(e) => return Verdict::deny(reasons::APPROVAL_INVALID, e.to_string()),
            }
        }
        // Sensitive data counts as a signal where it may not go (the guard
        // denies or redacts it); to a destination cleared for it, it is business.
        let content = content_label(sensitive.iter());
        let uncleared =
            |c: &zt4ai_core::Category| cleared.as_ref().is_some_and(|set| !set.contains(c));
        let beyond_clearance = !sensitive.is_empty()
            && (content.confidentiality > self.lowest_clearance(&resolved.checks)
                || content.categories.iter().any(uncleared));
        let risk = self.assess(req, &resolved, &seen, trail, beyond_clearance, now);
        trail.risk = Some(risk.report);
        metrics.stage(Stage::contextualise, lap(&mut clock));
        drop(stage);
        stage = stage_span(Stage::decide);
        let mut facts = facts_for(&trail.findings, Some(risk.score), &seen, &resolved);
        facts.content = content;
        if indirect_injection {
            // Indirect: it makes the session untrusted (below), it is not the
            // request's own injection.
            facts.injection =
                direct_injection || req.findings.iter().any(|f| f.kind == PROMPT_INJECTION);
        }
        let mut d = self
            .engine
            .decide(&resolved.links, &resolved.checks, &facts, &lifted);
        let mut obligations = Vec::new();
        if d.decision == Decision::Deny
            && self.inventory().inspection.sensitive_egress
                == zt4ai_core::inventory::SensitiveEgress::Redact
            && !sensitive.is_empty()
            && d.policies.iter().all(|p| {
                p == reasons::SENSITIVE_EGRESS
                    || p == reasons::SENSITIVE_MODEL
                    || p == reasons::SENSITIVE_WRITE
            })
        {
            // Only the sensitive values stand in the way: decide again as if
            // those above the lowest clearance the call reaches were gone, and if
            // that allows, the call goes out with them replaced.
            let floor = self.lowest_clearance(&resolved.checks);
            let (cut, kept): (Vec<&Sensitive>, Vec<&Sensitive>) = sensitive
                .iter()
                .partition(|s| s.label > floor || uncleared(&s.category));
            facts.content = content_label(kept.into_iter());
            let mut again = self
                .engine
                .decide(&resolved.links, &resolved.checks, &facts, &lifted);
            if again.decision == Decision::Allow {
                let kinds: BTreeSet<&str> = cut.iter().map(|s| s.kind.as_str()).collect();
                obligations = cut
                    .iter()
                    .map(|s| Obligation::Redact {
                        argument: s.pointer.clone(),
                        start: s.start,
                        end: s.end,
                        finding: s.kind.clone(),
                    })
                    .collect();
                let kinds = kinds.into_iter().collect::<Vec<_>>().join(", ");
                let mut reasons = Vec::new();
                for guard in &d.policies {
                    let sink = match guard.as_str() {
                        reasons::SENSITIVE_MODEL => "model's clearance",
                        reasons::SENSITIVE_WRITE => "dataset's label",
                        _ => "destination's clearance",
                    };
                    reasons.push(zt4ai_core::Reason {
                        policy: guard.clone(),
                        message: format!(
                            "{} sensitive value(s) ({kinds}) above the {sink} are redacted before the call goes out",
                            cut.len(),
                        ),
                    });
                }
                let guards = std::mem::take(&mut d.policies);
                reasons.append(&mut again.reasons);
                d = again;
                d.reasons = reasons;
                d.policies.extend(guards);
                d.policies.sort();
                d.policies.dedup();
            }
        }
        if d.decision == Decision::Deny {
            if req.declassify && lower.is_none() && verify::flow_only(&d.policies) {
                return self.declassification(req, &resolved, d.reasons, trail, now);
            }
            trail.exfiltration = verify::is_exfiltration(
                &d.policies,
                facts.session.confidentiality,
                facts.content.confidentiality,
            );
        }
        let mut verdict = Verdict {
            decision: d.decision,
            reasons: d.reasons,
            policies: d.policies,
            obligations,
            approval: None,
            session: Some(before.clone()),
            // Moved, not cloned: a later deny on this path goes without it.
            risk: trail.risk.take(),
        };
        metrics.stage(Stage::decide, lap(&mut clock));
        drop(stage);
        stage = stage_span(Stage::enforce);
        match d.decision {
            Decision::Deny => {}
            Decision::RequireApproval => {
                let new = self.new_approval(
                    req,
                    ApprovalKind::Action,
                    d.approvable,
                    verdict.reasons.clone(),
                    None,
                    now,
                );
                match self.store.create_approval(&new) {
                    Ok(id) => verdict.approval = Some(id),
                    Err(e) => {
                        return Verdict::deny(
                            reasons::STORE_UNAVAILABLE,
                            format!("{e}; failing closed"),
                        );
                    }
                }
                metrics.stage(Stage::enforce, lap(&mut clock));
            }
            Decision::Allow => {
                if let Some((id, to)) = &lower {
                    match session.declassify(id, *to, cleared.as_ref(), now, floor.as_ref()) {
                        Ok(lowered) => {
                            let dropped = zt4ai_core::Category::join(
                                before.categories.difference(&lowered.categories),
                            );
                            let dropped = if dropped.is_empty() {
                                String::new()
                            } else {
                                format!(", without categories {dropped}")
                            };
                            verdict.reasons.insert(
                                0,
                                zt4ai_core::Reason {
                                    policy: reasons::DECLASSIFIED.to_owned(),
                                    message: format!(
                                        "a human approved lowering the session from {} to {}{dropped} for this request (approval `{id}`)",
                                        before.confidentiality, lowered.confidentiality
                                    ),
                                },
                            );
                            verdict.policies.push(reasons::DECLASSIFIED.to_owned());
                            verdict.policies.sort();
                        }
                        Err(e) => return Verdict::deny(reasons::APPROVAL_INVALID, e.to_string()),
                    }
                } else if let Some(id) = &req.approval
                    && let Err(e) = self.store.use_approval(id, now)
                {
                    return Verdict::deny(reasons::APPROVAL_INVALID, e.to_string());
                }
                metrics.stage(Stage::enforce, lap(&mut clock));
                drop(stage);
                stage = stage_span(Stage::absorb);
                let untrusted_reads;
                let reads = if indirect_injection {
                    // The model is about to read an injection: from now on the
                    // session is untrusted, as after a tool's injected output.
                    untrusted_reads = SessionLabel {
                        integrity: Integrity::Untrusted,
                        ..resolved.reads.clone()
                    };
                    &untrusted_reads
                } else {
                    &resolved.reads
                };
                match session
                    .absorb(reads, &owner, now)
                    .and_then(|after| self.absorb_floor(after, reads, &owner, now, floor.as_ref()))
                {
                    Ok(after) => verdict.session = Some(after),
                    Err(e) => {
                        return Verdict::deny(
                            reasons::STORE_UNAVAILABLE,
                            format!("{e}; failing closed"),
                        );
                    }
                }
                if let Some(tool) = resolved.tool
                    && let Some(mode) = tool.spotlight
                    && !tool.output_trusted
                {
                    verdict.obligations.push(Obligation::Spotlight {
                        tool: tool.id.clone(),
                        mode,
                    });
                }
                metrics.stage(Stage::absorb, lap(&mut clock));
            }
        }
        drop(stage);
        verdict
    }

    /// `label` raised to the label of the `floor` session, if any.
    fn with_floor(
        &self,
        label: &SessionLabel,
        floor: Option<&SessionId>,
    ) -> Result<SessionLabel, StoreError> {
        Ok(match floor {
            None => label.clone(),
            Some(f) => label.join(self.store.lock(f)?.label()),
        })
    }

    /// Raises the `floor` session by `reads` as its session was (`after`),
    /// durably; returns the two joined.
    fn absorb_floor(
        &self,
        after: SessionLabel,
        reads: &SessionLabel,
        owner: &SessionOwner,
        now: i64,
        floor: Option<&SessionId>,
    ) -> Result<SessionLabel, StoreError> {
        Ok(match floor {
            None => after,
            Some(f) => after.join(&self.store.lock(f)?.absorb(reads, owner, now)?),
        })
    }

    /// The deny for a request that reaches beyond its token's task scope.
    fn out_of_scope(&self, req: &ActionRequest, resolved: &Resolved<'_>) -> Option<Verdict> {
        let scope = req.scope.as_ref()?;
        let inv = self.inventory();
        resolved.checks.iter().find_map(|c| {
            let (kind, name) = scope_kind(c.action);
            (!scope.allows(kind, &c.resource, inv)).then(|| {
                Verdict::deny(
                    reasons::OUT_OF_SCOPE,
                    format!(
                        "the delegated token's task scope does not include {name} `{}`",
                        c.resource
                    ),
                )
            })
        })
    }

    /// Decides `req` as [`Self::enforce`] would now, without any effect: no
    /// approval is created, the session is not changed, the behaviour
    /// baseline learns nothing and nothing is recorded. A `require_approval`
    /// verdict therefore carries no approval id. For a step an agent has not
    /// taken yet (a tool call a model proposes): the step itself is decided in
    /// full when it is made.
    pub fn preview(&self, req: &ActionRequest) -> Verdict {
        let resolved = match self.resolve(req) {
            Ok(r) => r,
            Err(Denial(policy, message)) => return Verdict::deny(policy, message),
        };
        if let Some(denied) = self.out_of_scope(req, &resolved) {
            return denied;
        }
        if let Some(a) = req
            .chain
            .agents
            .iter()
            .find(|a| self.monitor.is_quarantined(a.as_str()))
        {
            return Verdict::deny(
                reasons::QUARANTINED,
                format!("agent `{a}` is quarantined; a human must resume it"),
            );
        }
        let mut findings = req.findings.clone();
        let inspected = self.inspect_arguments(req, resolved.tool, &mut findings);
        let label = match self.store.lock(&req.session) {
            Ok(s) => {
                let owner = SessionOwner {
                    user: req.chain.user.clone(),
                    agent: req.chain.agents.first().cloned(),
                };
                if s.owner().is_some_and(|o| o != &owner) {
                    return Verdict::deny(
                        reasons::SESSION_OWNER,
                        format!("session `{}` belongs to another user or agent", req.session),
                    );
                }
                match self.with_floor(s.label(), floor_of(req).as_ref()) {
                    Ok(l) => l,
                    Err(e) => {
                        return Verdict::deny(
                            reasons::STORE_UNAVAILABLE,
                            format!("{e}; failing closed"),
                        );
                    }
                }
            }
            Err(e) => {
                return Verdict::deny(reasons::STORE_UNAVAILABLE, format!("{e}; failing closed"));
            }
        };
        let risk = self.monitor.score(
            req.session.as_str(),
            self.tracked_agent(req),
            req.risk,
            (self.clock)(),
        );
        let mut facts = facts_for(&findings, Some(risk.score), &label, &resolved);
        facts.content = content_label(inspected.sensitive.iter());
        if inspected.indirect_injection {
            facts.injection = inspected.direct_injection
                || req.findings.iter().any(|f| f.kind == PROMPT_INJECTION);
        }
        let d = self
            .engine
            .decide(&resolved.links, &resolved.checks, &facts, &BTreeSet::new());
        Verdict {
            decision: d.decision,
            reasons: d.reasons,
            policies: d.policies,
            obligations: Vec::new(),
            approval: None,
            session: Some(label),
            risk: Some(risk.report),
        }
    }

    /// Whether the chain may invoke `model` at all (grants, lifecycle,
    /// attestation, the task scope), whatever the session: what the LLM
    /// gateway's `GET /v1/models` shows. Each call is decided in full.
    pub fn may_invoke_model(
        &self,
        chain: &zt4ai_core::ActorChain,
        scope: Option<&zt4ai_core::Scope>,
        model: &str,
    ) -> bool {
        self.inventory().models.contains_key(model)
            && self.may_at_all(chain, scope, ActionKind::InvokeModel, model)
    }

    /// Whether the chain may take `action` on `resource` with an empty
    /// session and no content, within the task scope: the grant-level part
    /// of a decision, for listings.
    fn may_at_all(
        &self,
        chain: &zt4ai_core::ActorChain,
        scope: Option<&zt4ai_core::Scope>,
        action: ActionKind,
        resource: &str,
    ) -> bool {
        let (kind, _) = scope_kind(action);
        if scope.is_some_and(|s| !s.allows(kind, resource, self.inventory())) {
            return false;
        }
        let Ok(links) = self.links(chain) else {
            return false;
        };
        let check = Check {
            action,
            resource: resource.to_owned(),
            target: None,
        };
        let d = self
            .engine
            .decide(&links, &[check], &Facts::default(), &BTreeSet::new());
        d.decision != Decision::Deny
    }

    /// Inspects the string values of a tool call's arguments: every finding is
    /// added to `findings`; the sensitive ones are returned with where they are.
    fn inspect_arguments(
        &self,
        req: &ActionRequest,
        tool: Option<&Tool>,
        findings: &mut Vec<Finding>,
    ) -> Inspected {
        let Some(inspector) = &self.inspector else {
            return Inspected::default();
        };
        let arguments = match &req.action {
            Action::CallTool { arguments, .. } => arguments,
            Action::InvokeModel {
                prompt, untrusted, ..
            } => return self.inspect_prompt(inspector, prompt, untrusted, findings),
            _ => return Inspected::default(),
        };
        // Arguments that name the resources the call reaches (a recipient, a
        // URL) are what the destination checks decide on; they are not
        // content, so they are scanned for injection only.
        // The tool as resolve() found it: no second look-up.
        let bound: Vec<String> = tool
            .map(|t| {
                t.bindings
                    .iter()
                    .map(|b| {
                        b.path.iter().fold(String::new(), |mut p, seg| {
                            p.push('/');
                            p.push_str(&seg.replace('~', "~0").replace('/', "~1"));
                            p
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut values = Vec::new();
        strings(arguments, &mut String::new(), &mut values);
        let mut sensitive = Vec::new();
        for (pointer, text) in values {
            let is_bound = bound.iter().any(|b| {
                pointer == *b
                    || pointer
                        .strip_prefix(b.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            });
            let detectors = if is_bound {
                Detectors::Injection
            } else {
                Detectors::All
            };
            for f in inspector.inspect(text, detectors) {
                let location = format!("arguments{pointer}");
                findings.push(finding_of(&f, &location));
                if let Some((label, category)) = inspector.classify(&f.kind) {
                    sensitive.push(Sensitive {
                        pointer: pointer.clone(),
                        start: f.span.start,
                        end: f.span.end,
                        kind: f.kind.to_string(),
                        label,
                        category,
                    });
                }
            }
        }
        Inspected {
            sensitive,
            ..Inspected::default()
        }
    }

    /// Inspects what a model call would send: every string of `prompt`.
    /// Sensitive data anywhere is content (checked against the model's
    /// clearance); a prompt injection under one of the `untrusted` pointers
    /// is indirect (the session becomes untrusted if the call goes ahead),
    /// anywhere else it is the request's own (the injection guard decides),
    /// found at the detector's threshold for a principal's own words.
    fn inspect_prompt(
        &self,
        inspector: &Inspector,
        prompt: &serde_json::Value,
        untrusted: &[String],
        findings: &mut Vec<Finding>,
    ) -> Inspected {
        let mut values = Vec::new();
        strings(prompt, &mut String::new(), &mut values);
        let mut out = Inspected::default();
        // Beside `messages`, a prompt holds the request's other fields (tool
        // definitions, metadata): they go to the model too, so sensitive data
        // in them is checked, but they are not conversation: a function's
        // description is imperative by nature and is not read for injections.
        let has_messages = prompt.get("messages").is_some();
        for (pointer, text) in values {
            // A message's structure (`role`, `type`, ids, a function's
            // name) is not content; the learned detector scores bare words
            // like `assistant` as injections.
            let key = pointer.rsplit('/').next().unwrap_or_default();
            if STRUCTURAL_KEYS.contains(&key) {
                continue;
            }
            let in_messages = pointer
                .strip_prefix("/messages")
                .is_some_and(|r| r.is_empty() || r.starts_with('/'));
            let detectors = if has_messages && !in_messages {
                Detectors::Sensitive
            } else {
                Detectors::All
            };
            let is_untrusted = untrusted.iter().any(|u| {
                pointer == *u
                    || pointer
                        .strip_prefix(u.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            });
            // The principal's own words are held to the principal threshold:
            // a request ("send the report to …") is theirs to make.
            let provenance = if is_untrusted {
                Provenance::Untrusted
            } else {
                Provenance::Principal
            };
            for f in inspector.inspect_as(text, detectors, provenance) {
                if f.kind == zt4ai_inspect::FindingKind::PromptInjection {
                    if is_untrusted {
                        out.indirect_injection = true;
                        findings.push(finding_of(&f, &format!("prompt{pointer} (untrusted)")));
                        continue;
                    }
                    out.direct_injection = true;
                }
                findings.push(finding_of(&f, &format!("prompt{pointer}")));
                if let Some((label, category)) = inspector.classify(&f.kind) {
                    out.sensitive.push(Sensitive {
                        pointer: pointer.clone(),
                        start: f.span.start,
                        end: f.span.end,
                        kind: f.kind.to_string(),
                        label,
                        category,
                    });
                }
            }
        }
        out
    }

    /// The lowest clearance among the sinks a request reaches: destinations,
    /// models, and datasets it writes (at their label).
    fn lowest_clearance(&self, checks: &[Check]) -> zt4ai_core::Label {
        let inv = self.inventory();
        checks
            .iter()
            .filter_map(|c| match c.action {
                ActionKind::Send | ActionKind::Fetch => {
                    inv.destinations.get(&c.resource).map(|d| d.clearance)
                }
                ActionKind::InvokeModel => inv.models.get(&c.resource).map(|m| m.clearance),
                // A write's sink is the dataset, read later at its label.
                ActionKind::Write => inv.datasets.get(&c.resource).map(|d| d.label),
                _ => None,
            })
            .min()
            .unwrap_or(zt4ai_core::Label::Public)
    }

    /// The data categories every sink a request reaches is cleared for: the
    /// intersection over the destinations and models that list theirs; `None`
    /// if none does (their levels alone decide).
    fn cleared_categories(&self, checks: &[Check]) -> Option<BTreeSet<zt4ai_core::Category>> {
        let inv = self.inventory();
        checks
            .iter()
            .filter_map(|c| match c.action {
                ActionKind::Send | ActionKind::Fetch => {
                    inv.destinations.get(&c.resource)?.categories.as_ref()
                }
                ActionKind::InvokeModel => inv.models.get(&c.resource)?.categories.as_ref(),
                _ => None,
            })
            .fold(None, |acc: Option<BTreeSet<_>>, set| {
                Some(match acc {
                    None => set.clone(),
                    Some(a) => a.intersection(set).cloned().collect(),
                })
            })
    }

    /// The pending approval a request needs.
    fn new_approval(
        &self,
        req: &ActionRequest,
        kind: ApprovalKind,
        policies: Vec<String>,
        reasons: Vec<zt4ai_core::Reason>,
        lower_to: Option<zt4ai_core::Label>,
        now: i64,
    ) -> NewApproval {
        let (resource, arguments_sha256) = resource_of(req);
        NewApproval {
            session: req.session.clone(),
            fingerprint: fingerprint(req),
            kind,
            requested_by: req.chain.user.to_string(),
            chain: req.chain.describe(),
            action: req.action.name().to_owned(),
            resource,
            arguments_sha256,
            lower_to,
            summary: summary(req),
            policies,
            reasons,
            now,
            ttl: i64::try_from(self.inventory().settings.approval_ttl.as_secs())
                .unwrap_or(i64::MAX),
        }
    }

    /// A deny for the session's label alone, turned into a request for a
    /// human to declassify the session down to the lowest clearance the
    /// request reaches.
    fn declassification(
        &self,
        req: &ActionRequest,
        resolved: &Resolved<'_>,
        flow: Vec<zt4ai_core::Reason>,
        trail: &mut Trail,
        now: i64,
    ) -> Verdict {
        let to = self.lowest_clearance(&resolved.checks);
        let only = match self.cleared_categories(&resolved.checks) {
            None => String::new(),
            Some(c) if c.is_empty() => ", with no category of data".to_owned(),
            Some(c) => format!(
                ", with data of categories {} only",
                zt4ai_core::Category::join(&c)
            ),
        };
        let mut why = vec![zt4ai_core::Reason {
            policy: reasons::DECLASSIFICATION.to_owned(),
            message: format!(
                "the session's label is all that stands in the way; a human may declassify it to {to}{only} for this request"
            ),
        }];
        why.extend(flow);
        let new = self.new_approval(
            req,
            ApprovalKind::Declassification,
            Vec::new(),
            why.clone(),
            Some(to),
            now,
        );
        match self.store.create_approval(&new) {
            Ok(id) => Verdict {
                decision: Decision::RequireApproval,
                reasons: why,
                policies: vec![reasons::DECLASSIFICATION.to_owned()],
                obligations: Vec::new(),
                approval: Some(id),
                session: trail.before.clone(),
                risk: trail.risk.take(),
            },
            Err(e) => Verdict::deny(reasons::STORE_UNAVAILABLE, format!("{e}; failing closed")),
        }
    }

    /// Inspects what an allowed tool call (or model call) returned, before the
    /// agent sees it:
    /// a prompt injection makes the session untrusted; sensitive data raises
    /// its label and categories. A change is durable, and recorded durably in
    /// the audit log, before this returns the findings; if either fails, the
    /// answer is a deny and the output must not be passed on. Findings that
    /// change nothing (the session already holds that label) are recorded
    /// without waiting for the record's sync. The output's size (and any
    /// injection in it) feeds the agent's behaviour baseline, inspected or not.
    ///
    /// `texts` are the output's text parts, in order.
    pub async fn absorb_output(
        &self,
        req: &ActionRequest,
        point: &'static str,
        texts: &[&str],
    ) -> Result<Vec<zt4ai_inspect::Finding>, Verdict> {
        // What is absorbed: a tool's output, or a model's completion.
        let model = matches!(req.action, Action::InvokeModel { .. });
        let whose = if model { "model's" } else { "tool's" };
        let feed = |injection: bool| {
            let bytes: usize = texts.iter().map(|t| t.len()).sum();
            let fired = self.monitor.output(
                req.session.as_str(),
                req.chain.user.as_str(),
                self.tracked_agent(req),
                u64::try_from(bytes).unwrap_or(u64::MAX),
                injection,
                (self.clock)(),
            );
            verify::count(&fired);
        };
        let Some(inspector) = &self.inspector else {
            feed(false);
            return Ok(Vec::new());
        };
        let clock = Instant::now();
        let mut found = Vec::new();
        let mut core = Vec::new();
        let mut read = SessionLabel::default();
        for (i, text) in texts.iter().enumerate() {
            let location = format!("output/{i}");
            for f in inspector.inspect(text, Detectors::All) {
                core.push(finding_of(&f, &location));
                if f.kind == zt4ai_inspect::FindingKind::PromptInjection {
                    read.integrity = Integrity::Untrusted;
                } else if let Some((label, category)) = inspector.classify(&f.kind) {
                    read.confidentiality = read.confidentiality.join(label);
                    read.categories.insert(category);
                }
                found.push(f);
            }
        }
        zt4ai_telemetry::metrics().stage(Stage::inspect, clock.elapsed());
        feed(read.integrity == Integrity::Untrusted);
        if found.is_empty() {
            return Ok(found);
        }
        let owner = SessionOwner {
            user: req.chain.user.clone(),
            agent: req.chain.agents.first().cloned(),
        };
        let floor = floor_of(req);
        let now = (self.clock)();
        let (before, after) = match self.store.lock(&req.session) {
            Ok(mut session) => {
                let absorbed =
                    self.with_floor(session.label(), floor.as_ref())
                        .and_then(|before| {
                            let after = session.absorb(&read, &owner, now)?;
                            Ok((
                                before,
                                self.absorb_floor(after, &read, &owner, now, floor.as_ref())?,
                            ))
                        });
                match absorbed {
                    Ok(absorbed) => absorbed,
                    Err(e) => {
                        return Err(Verdict::deny(
                            reasons::STORE_UNAVAILABLE,
                            format!("{e}; the {whose} output is withheld"),
                        ));
                    }
                }
            }
            Err(e) => {
                return Err(Verdict::deny(
                    reasons::STORE_UNAVAILABLE,
                    format!("{e}; the {whose} output is withheld"),
                ));
            }
        };
        let changed = after != before;
        let mut what = Vec::new();
        if read.integrity == Integrity::Untrusted {
            what.push("a prompt injection: the session is now untrusted".to_owned());
        }
        if !read.categories.is_empty() {
            let cats: Vec<&str> = read.categories.iter().map(|c| c.as_str()).collect();
            // Say whether the label moved: an auditor reads "now labelled"
            // as a change.
            let label = if after.confidentiality == before.confidentiality
                && after.categories == before.categories
            {
                "the session's label stays"
            } else {
                "the session is now labelled"
            };
            what.push(format!(
                "data classified {} ({}): {label} {}",
                read.confidentiality,
                cats.join(", "),
                after.confidentiality
            ));
        }
        let message = format!("the {whose} output carried {}", what.join("; "));
        info!(session = %req.session, findings = found.len(), reason = %message, "tool output absorbed");
        let verdict = Verdict {
            decision: Decision::Allow,
            reasons: vec![zt4ai_core::Reason {
                policy: reasons::OUTPUT_FINDINGS.to_owned(),
                message,
            }],
            policies: vec![reasons::OUTPUT_FINDINGS.to_owned()],
            obligations: Vec::new(),
            approval: None,
            session: Some(after),
            risk: None,
        };
        if let Some(log) = &self.audit {
            let mut event = record(
                req,
                point,
                &verdict,
                Trail {
                    before: Some(before),
                    findings: core,
                    ..Trail::default()
                },
            );
            if let Event::Decision(d) = &mut event {
                d.action = if model { "model_output" } else { "tool_output" }.to_owned();
            }
            if changed {
                let v = durable(log, &event, req.request_id.as_deref(), verdict).await;
                if v.decision != Decision::Allow {
                    return Err(v);
                }
            } else {
                // The session already held all this: the output changes no
                // decision, so its record is deferred: committed with the next
                // record a request waits for, without a commit of its own.
                if let Err(e) = log.append_deferred(&event) {
                    tracing::error!(error = %e, "the output's audit record could not be queued");
                }
            }
        }
        Ok(found)
    }

    /// Whether the chain may call `tool` at all — grants, lifecycle, clearance and
    /// the task scope — whatever the arguments and the session: what an MCP
    /// `tools/list` shows. Each call is still decided in full by [`Self::decide`].
    pub fn may_call_tool(
        &self,
        chain: &zt4ai_core::ActorChain,
        scope: Option<&zt4ai_core::Scope>,
        tool: &str,
    ) -> bool {
        self.inventory().tools.contains_key(tool)
            && self.may_at_all(chain, scope, ActionKind::CallTool, tool)
    }

    /// The Cedar work for `req` with the session's current label, as if nothing
    /// were cached: the evaluations [`Self::decide`] performs, and the requests a
    /// plain Cedar integration would make. For benchmarks (the bare-Cedar
    /// baselines) and debugging; does not change the session.
    pub fn cedar_requests(&self, req: &ActionRequest) -> Result<CedarWork, String> {
        let resolved = self.resolve(req).map_err(|Denial(_, m)| m)?;
        let label = self
            .store
            .lock(&req.session)
            .and_then(|s| self.with_floor(s.label(), floor_of(req).as_ref()))
            .map_err(|e| e.to_string())?;
        let facts = facts_for(&req.findings, req.risk, &label, &resolved);
        Ok(CedarWork {
            evaluations: self
                .engine
                .evaluations(&resolved.links, &resolved.checks, &facts)?,
            plain: self
                .engine
                .plain_requests(&resolved.links, &resolved.checks, &facts)?,
        })
    }

    /// The chain's links as policy principals, user first.
    fn links(&self, chain: &zt4ai_core::ActorChain) -> Result<Vec<PrincipalRef>, Denial> {
        let mut links = Vec::with_capacity(1 + chain.agents.len());
        links.push(self.engine.user(&chain.user).ok_or_else(|| {
            Denial(
                reasons::UNKNOWN_PRINCIPAL,
                format!("unknown user `{}`", chain.user),
            )
        })?);
        for a in &chain.agents {
            links.push(self.engine.agent(a).ok_or_else(|| {
                Denial(reasons::UNKNOWN_PRINCIPAL, format!("unknown agent `{a}`"))
            })?);
        }
        Ok(links)
    }

    fn resolve<'a>(&'a self, req: &ActionRequest) -> Result<Resolved<'a>, Denial> {
        let inv = self.engine.inventory();
        let links = self.links(&req.chain)?;
        let mut checks = Vec::new();
        let mut reads = SessionLabel::default();
        let mut tool_ref = None;
        let unknown = |kind: &str, id: &str| {
            Denial(
                reasons::UNKNOWN_RESOURCE,
                format!("`{id}` is not a known {kind} in the inventory"),
            )
        };
        let dataset =
            |id: &str, access: Access, reads: &mut SessionLabel, checks: &mut Vec<Check>| {
                let ds = inv.datasets.get(id).ok_or_else(|| unknown("dataset", id))?;
                let action = match access {
                    Access::Read => {
                        *reads = reads.join(&label_of(ds.label, &ds.categories, ds.trusted));
                        ActionKind::Read
                    }
                    Access::Write => ActionKind::Write,
                };
                checks.push(Check {
                    action,
                    resource: ds.id.clone(),
                    target: None,
                });
                Ok::<(), Denial>(())
            };
        let destination = |target: &str, action: ActionKind, checks: &mut Vec<Check>| {
            let (dest, t) = inv
                .resolve_destination(target)
                .map_err(|e| Denial(reasons::INVALID_REQUEST, e.to_string()))?;
            checks.push(Check {
                action,
                resource: dest.id.clone(),
                target: Some(t.to_string()),
            });
            Ok::<(), Denial>(())
        };
        // A destination known by its id, reached by way of `via` (what the
        // call reaches it through: an open-world tool, a server's operator).
        let known = |id: &str, action: ActionKind, via: String, checks: &mut Vec<Check>| {
            let dest = inv
                .destinations
                .get(id)
                .ok_or_else(|| unknown("destination", id))?;
            checks.push(Check {
                action,
                resource: dest.id.clone(),
                target: Some(via),
            });
            Ok::<(), Denial>(())
        };
        match &req.action {
            Action::CallTool { tool, arguments } => {
                let t = inv.tools.get(tool).ok_or_else(|| unknown("tool", tool))?;
                tool_ref = Some(t);
                checks.push(Check {
                    action: ActionKind::CallTool,
                    resource: t.id.clone(),
                    target: None,
                });
                let values = bound_values(t, arguments)
                    .map_err(|e| Denial(reasons::INVALID_REQUEST, e.to_string()))?;
                // A read-only tool only reaches out (a fetch); any other tool sends.
                let reach = if t.read_only {
                    ActionKind::Fetch
                } else {
                    ActionKind::Send
                };
                for v in values {
                    match v.kind {
                        BindingKind::Dataset => {
                            dataset(&v.value, v.access, &mut reads, &mut checks)?
                        }
                        BindingKind::Destination => destination(&v.value, reach, &mut checks)?,
                    }
                }
                // Recipients in arguments the inventory did not bind (a `bcc`
                // it forgot) are sent to as well: each is checked the same way.
                for v in unbound_recipients(t, arguments) {
                    destination(&v.value, ActionKind::Send, &mut checks)?;
                }
                // An open-world tool that binds no destination (a web search)
                // still carries its arguments out, to wherever its server takes
                // them: the open world, the inventory's default destination.
                // (Not the server's own host: an internal server of an
                // open-world tool forwards what it gets.)
                if t.open_world
                    && !t
                        .bindings
                        .iter()
                        .any(|b| b.kind == BindingKind::Destination)
                {
                    let via = format!("{}: open world", t.id);
                    known(&inv.default_destination, reach, via, &mut checks)?;
                }
                // A server run by a third party (or a local one that is a
                // client of an outside service) receives every argument:
                // the call reaches that destination, whatever it binds.
                if let Some(id) = inv
                    .mcp_servers
                    .get(&t.server)
                    .and_then(|m| m.reaches.as_ref())
                {
                    let via = format!("{}: server {}", t.id, t.server);
                    known(id, reach, via, &mut checks)?;
                }
                reads = reads.join(&label_of(
                    t.output_label,
                    &t.output_categories,
                    t.output_trusted,
                ));
            }
            Action::Read { dataset: id } => dataset(id, Access::Read, &mut reads, &mut checks)?,
            Action::Write { dataset: id } => dataset(id, Access::Write, &mut reads, &mut checks)?,
            Action::Send { target } => destination(target, ActionKind::Send, &mut checks)?,
            Action::InvokeModel { model, prompt, .. } => {
                let m = inv
                    .models
                    .get(model)
                    .ok_or_else(|| unknown("model", model))?;
                checks.push(Check {
                    action: ActionKind::InvokeModel,
                    resource: m.id.clone(),
                    target: None,
                });
                // An image the prompt gives by URL is fetched by the
                // provider: a fetch from that address, with whatever its
                // path and query carry out.
                for url in provider_fetches(prompt) {
                    destination(url, ActionKind::Fetch, &mut checks)?;
                }
                // A model that searches the web (`web_search_options`) takes
                // queries made of the prompt to the open world: the
                // inventory's default destination, as for an open-world tool.
                if prompt
                    .get("web_search_options")
                    .is_some_and(|o| !o.is_null())
                {
                    let via = format!("{model}: web search");
                    known(
                        &inv.default_destination,
                        ActionKind::Fetch,
                        via,
                        &mut checks,
                    )?;
                }
            }
        }
        Ok(Resolved {
            links,
            checks,
            reads,
            tool: tool_ref,
        })
    }
}

/// The session whose label `req`'s may not fall below: the flow session of
/// its user and outermost agent ([`SessionId::flow`]), which the gateways
/// use, when `req` names another (an AuthZEN caller names its own). A session
/// id is the caller's choice, and an agent keeps what it read whichever it
/// names next, so what any session of the two reads raises this one too.
///
/// Locked after `req.session`: a request on a flow session locks no other,
/// so the order cannot deadlock.
fn floor_of(req: &ActionRequest) -> Option<SessionId> {
    let flow = SessionId::flow(&req.chain.user, req.chain.agents.first());
    (flow != req.session).then_some(flow)
}

fn facts_for(
    findings: &[Finding],
    risk: Option<u8>,
    before: &SessionLabel,
    resolved: &Resolved<'_>,
) -> Facts {
    let mut effective = before.join(&resolved.reads);
    // What this request itself reads counts for flow checks, but untrusted tool
    // *output* arrives only after the call, so it does not gate the call itself.
    effective.integrity = before.integrity.join(if resolved.tool.is_none() {
        resolved.reads.integrity
    } else {
        Integrity::Trusted
    });
    Facts {
        session: effective,
        risk: risk.unwrap_or(0).min(100),
        injection: findings.iter().any(|f| f.kind == PROMPT_INJECTION),
        findings: findings.iter().map(|f| f.kind.clone()).collect(),
        content: SessionLabel::default(),
    }
}

/// The label of the sensitive values in a request's content.
fn content_label<'a>(values: impl Iterator<Item = &'a Sensitive>) -> SessionLabel {
    let mut label = SessionLabel::default();
    for s in values {
        label.confidentiality = label.confidentiality.join(s.label);
        label.categories.insert(s.category.clone());
    }
    label
}

/// Carries out a verdict's redactions in `root` (a call's arguments, a model
/// prompt): each sensitive value it names is replaced by `[REDACTED:<kind>]`
/// in the string that holds it (overlapping values are cut as one). Fails, so that the call is not sent,
/// if a value is not where the verdict says.
pub fn redact(root: &mut serde_json::Value, obligations: &[Obligation]) -> Result<(), String> {
    let mut by_argument: std::collections::BTreeMap<&str, Vec<(usize, usize, &str)>> =
        std::collections::BTreeMap::new();
    for o in obligations {
        if let Obligation::Redact {
            argument,
            start,
            end,
            finding: kind,
        } = o
        {
            let kind = kind
                .strip_prefix(zt4ai_core::request::SENSITIVE_PREFIX)
                .unwrap_or(kind);
            by_argument
                .entry(argument.as_str())
                .or_default()
                .push((*start, *end, kind));
        }
    }
    if by_argument.is_empty() {
        return Ok(());
    }
    let mut result = Ok(());
    for (pointer, mut spans) in by_argument {
        spans.sort_unstable();
        // Merge overlapping spans, keeping every kind they hold.
        let mut merged: Vec<(usize, usize, Vec<&str>)> = Vec::new();
        for (start, end, kind) in spans {
            match merged.last_mut() {
                Some(m) if start < m.1 => {
                    m.1 = m.1.max(end);
                    if !m.2.contains(&kind) {
                        m.2.push(kind);
                    }
                }
                _ => merged.push((start, end, vec![kind])),
            }
        }
        let Some(serde_json::Value::String(text)) = root.pointer_mut(pointer) else {
            result = Err(format!("argument `{pointer}` is not a string"));
            break;
        };
        for (start, end, kinds) in merged.into_iter().rev() {
            if start > end
                || end > text.len()
                || !text.is_char_boundary(start)
                || !text.is_char_boundary(end)
            {
                result = Err(format!(
                    "span {start}..{end} is not in argument `{pointer}`"
                ));
                break;
            }
            text.replace_range(start..end, &format!("[REDACTED:{}]", kinds.join(",")));
        }
        if result.is_err() {
            break;
        }
    }
    result
}

/// Every string in `value` with its JSON pointer (RFC 6901), depth first.
fn strings<'a>(
    value: &'a serde_json::Value,
    pointer: &mut String,
    out: &mut Vec<(String, &'a str)>,
) {
    match value {
        serde_json::Value::String(s) => out.push((pointer.clone(), s)),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                strings(v, pointer, out);
                pointer.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                strings(v, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// A core finding (as verdicts, policies and audit records see it) of an
/// inspector finding at `location`.
fn finding_of(f: &zt4ai_inspect::Finding, location: &str) -> Finding {
    // The kind is named as verdicts and policies name it (PROMPT_INJECTION, or
    // SENSITIVE_PREFIX and the type), which is also how the inspector's kinds
    // display; the pipeline tests rely on both names. Written piece by piece:
    // a tool result can carry dozens of findings, and each `format!` would
    // grow its string several times.
    use std::fmt::Write as _;
    let kind = match &f.kind {
        zt4ai_inspect::FindingKind::PromptInjection => {
            zt4ai_core::request::PROMPT_INJECTION.to_owned()
        }
        zt4ai_inspect::FindingKind::Sensitive(t) => {
            let mut k =
                String::with_capacity(zt4ai_core::request::SENSITIVE_PREFIX.len() + t.len());
            k.push_str(zt4ai_core::request::SENSITIVE_PREFIX);
            k.push_str(t);
            k
        }
    };
    let via = f.via.as_str();
    let mut at = String::with_capacity(location.len() + via.len() + f.rule.len() + 32);
    at.push_str(location);
    let _ = write!(
        at,
        " {}..{} ({via}, {}, {:.2})",
        f.span.start, f.span.end, f.rule, f.score
    );
    Finding {
        kind,
        location: Some(at),
        digest: f.digest.clone(),
    }
}

/// A request refused before it reached the pipeline, as far as it was read.
#[derive(Debug)]
pub struct Refusal<'a> {
    /// The enforcement point.
    pub point: &'a str,
    /// The caller's request id.
    pub request_id: Option<String>,
    /// The actor chain the credential proves.
    pub chain: &'a zt4ai_core::ActorChain,
    /// The session, as stated (or empty).
    pub session: &'a str,
    /// The action, as stated.
    pub action: &'a str,
    /// The resource, as stated.
    pub resource: &'a str,
}

/// The Cedar work for one request (see [`Pipeline::cedar_requests`]).
#[derive(Debug)]
pub struct CedarWork {
    /// What zt4ai evaluates, part by part.
    pub evaluations: Vec<Evaluation>,
    /// One request per chain link and resource, as a plain integration makes them.
    pub plain: Vec<cedar_policy::Request>,
}

fn label_of(
    label: zt4ai_core::Label,
    categories: &BTreeSet<zt4ai_core::Category>,
    trusted: bool,
) -> SessionLabel {
    SessionLabel {
        confidentiality: label,
        categories: categories.clone(),
        integrity: if trusted {
            Integrity::Trusted
        } else {
            Integrity::Untrusted
        },
    }
}

/// Appends `event` and waits until it is durable: `verdict` if it is, else a
/// deny, since the request must not go ahead unrecorded.
async fn durable(
    log: &AuditLog,
    event: &Event,
    request_id: Option<&str>,
    verdict: Verdict,
) -> Verdict {
    match log.append(event).durable().await {
        Ok(_) => verdict,
        Err(e) => {
            error!(request_id = request_id.unwrap_or("-"), error = %e, "verdict not recorded; denying");
            Verdict::deny(
                reasons::AUDIT_UNAVAILABLE,
                format!("the audit log cannot record this request ({e}); failing closed"),
            )
        }
    }
}

/// The time since `clock`, which moves to now.
fn lap(clock: &mut Instant) -> Duration {
    let now = Instant::now();
    let took = now - *clock;
    *clock = now;
    took
}

/// The trace span of one pipeline stage, entered.
fn stage_span(stage: Stage) -> tracing::span::EnteredSpan {
    match stage {
        Stage::authenticate => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.authenticate"),
        Stage::inspect => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.inspect"),
        Stage::contextualise => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.contextualise"),
        Stage::decide => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.decide"),
        Stage::enforce => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.enforce"),
        Stage::absorb => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.absorb"),
        Stage::record => tracing::debug_span!(target: TRACE_TARGET, "zt4ai.record"),
    }
    .entered()
}

/// The audit record of one verdict. Tool arguments are recorded as a hash only:
/// they may hold the very data the log must not spread.
fn record(req: &ActionRequest, point: &str, verdict: &Verdict, trail: Trail) -> Event {
    let before = trail.before;
    let (resource, arguments_sha256) = resource_of(req);
    Event::Decision(DecisionEvent {
        time_ms: zt4ai_audit::now_ms(),
        request_id: req.request_id.clone(),
        point: point.to_owned(),
        session: req.session.to_string(),
        chain: req.chain.clone(),
        action: req.action.name().to_owned(),
        resource,
        decision: verdict.decision,
        policies: verdict.policies.clone(),
        reasons: verdict.reasons.clone(),
        findings: trail
            .findings
            .into_iter()
            .map(|f| zt4ai_audit::AuditFinding {
                kind: f.kind,
                location: f.location,
                hash: f.digest,
            })
            .collect(),
        label_after: verdict.session.clone().filter(|_| before.is_some()),
        label_before: before,
        risk: verdict.risk.as_ref().map(|r| r.score).or(req.risk),
        risk_signals: verdict
            .risk
            .as_ref()
            .map(|r| r.signals.clone())
            .unwrap_or_default(),
        approval: req
            .approval
            .as_ref()
            .or(verdict.approval.as_ref())
            .map(ToString::to_string),
        arguments_sha256,
    })
}

/// The resource a request names, and the SHA-256 of its canonical arguments.
fn resource_of(req: &ActionRequest) -> (String, Option<String>) {
    use sha2::Digest as _;
    match &req.action {
        Action::CallTool { tool, arguments } => {
            let canonical = zt4ai_core::canonical_json(arguments);
            let digest = sha2::Sha256::digest(canonical.as_bytes());
            (tool.clone(), Some(zt4ai_core::hex(&digest)))
        }
        Action::Read { dataset } | Action::Write { dataset } => (dataset.clone(), None),
        Action::Send { target } => (target.clone(), None),
        Action::InvokeModel { model, prompt, .. } if !prompt.is_null() => {
            let canonical = zt4ai_core::canonical_json(prompt);
            let digest = sha2::Sha256::digest(canonical.as_bytes());
            (model.clone(), Some(zt4ai_core::hex(&digest)))
        }
        Action::InvokeModel { model, .. } => (model.clone(), None),
    }
}

/// The hash (SHA-256, hex) of a canonical text of who asks for what: the
/// actor chain, the action, its resource and every argument. It binds an
/// approval to one request without storing the arguments themselves.
fn fingerprint(req: &ActionRequest) -> String {
    use sha2::Digest as _;
    // Keys sorted at every depth: the same arguments in another order are the
    // same request.
    let v = serde_json::to_value((&req.chain, &req.action)).unwrap_or_default();
    zt4ai_core::hex(&sha2::Sha256::digest(
        zt4ai_core::canonical_json(&v).as_bytes(),
    ))
}

fn summary(req: &ActionRequest) -> String {
    let what = match &req.action {
        Action::CallTool { tool, arguments } => {
            let mut args = arguments.to_string();
            if args.len() > 200 {
                let mut cut = 200;
                while !args.is_char_boundary(cut) {
                    cut -= 1;
                }
                args.truncate(cut);
                args.push('…');
            }
            format!("call_tool `{tool}` {args}")
        }
        Action::Read { dataset } => format!("read `{dataset}`"),
        Action::Write { dataset } => format!("write `{dataset}`"),
        Action::Send { target } => format!("send to `{target}`"),
        Action::InvokeModel { model, .. } => format!("invoke_model `{model}`"),
    };
    format!(
        "{}: {what} (session `{}`)",
        req.chain.describe(),
        req.session
    )
}

#[cfg(test)]
mod tests;

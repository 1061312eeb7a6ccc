//! zt4ai's policy engine: Cedar, with the schema generated from the inventory.
//!
//! This crate is step 5 of the pipeline ("decide"). It turns the inventory into a
//! Cedar schema and entities, loads the [baseline guards](BASELINE) and the
//! inventory's own `.cedar` files, validates every policy against the schema (an
//! invalid policy stops startup), and answers one question: given the actor chain,
//! the resources a request touches and the facts about its session, is it allowed,
//! denied, or does it need a human?
//!
//! Three design points matter:
//!
//! * **Authority is an intersection.** Each link of the actor chain (the user, then
//!   every agent) is evaluated as the Cedar principal in turn, for every resource
//!   the request touches, and the request is allowed only if every evaluation is.
//! * **Approval lives in Cedar.** A `forbid` annotated `@approval("human")` turns a
//!   deny into `require_approval`; a granted approval lifts exactly the policies it
//!   names, for that request, by evaluating without them. Nothing else can lift a
//!   forbid.
//! * **Evaluation is sliced.** Cedar evaluates every policy it is given. Policies
//!   whose principal or action scope cannot match a principal are dropped from that
//!   principal's slice when the engine is built, so decision cost tracks the
//!   policies that can apply, not the size of the policy set. Slicing is exact:
//!   scopes depend only on the entity hierarchy, which is fixed per inventory.
//!
//! Any evaluation error denies (fail closed): Cedar itself skips a policy that
//! errors, which for a `forbid` would mean failing open.

mod cache;
mod entities;
mod errors;
mod reason;
pub mod schema;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, EntityUid,
    PolicySet, PrincipalConstraint, Request, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
pub use errors::{PolicyError, PolicyErrors};
use zt4ai_core::{AgentId, Decision, Inventory, Reason, SessionLabel, UserId};

use crate::reason::render;

/// The baseline guards, shipped with zt4ai and always loaded.
pub const BASELINE: &str = include_str!("../policies/baseline.cedar");
/// The name the baseline guards carry in error messages.
pub const BASELINE_NAME: &str = "zt4ai:baseline.cedar";
/// Id reported when no policy permits a request.
pub const DEFAULT_DENY: &str = "zt4ai.default_deny";
/// Prefix reserved for zt4ai's own policies.
pub const RESERVED_PREFIX: &str = "zt4ai.";

/// A `.cedar` file's name and text.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// File name, for error messages.
    pub name: String,
    /// Cedar policy text.
    pub text: String,
}

/// An action zt4ai decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Call an MCP tool.
    CallTool = 0,
    /// Read a dataset.
    Read = 1,
    /// Write a dataset.
    Write = 2,
    /// Send data to a destination.
    Send = 3,
    /// Reach a destination to retrieve something (a URL in a read-only tool).
    Fetch = 4,
    /// Call a model.
    InvokeModel = 5,
}

impl ActionKind {
    /// The action's Cedar id.
    pub fn name(self) -> &'static str {
        schema::ACTIONS[self as usize].0
    }
    fn resource_type(self) -> &'static str {
        schema::ACTIONS[self as usize].1
    }
    const ALL: [ActionKind; 6] = [
        ActionKind::CallTool,
        ActionKind::Read,
        ActionKind::Write,
        ActionKind::Send,
        ActionKind::Fetch,
        ActionKind::InvokeModel,
    ];
}

/// A link of the actor chain, resolved against the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalRef(usize);

/// One resource a request touches, with the action done to it.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is done.
    pub action: ActionKind,
    /// The resource's inventory id (tool `server.name`, dataset, destination or model id).
    pub resource: String,
    /// What the request named, when it differs from the id (a mail address for a destination).
    pub target: Option<String>,
}

/// Per-request facts the policies see in `context`.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The session label joined with what this request reads.
    pub session: SessionLabel,
    /// Risk score 0–100.
    pub risk: u8,
    /// Whether the request's own content carries a prompt-injection finding.
    pub injection: bool,
    /// Kinds of findings about the request's content.
    pub findings: BTreeSet<String>,
}

/// The engine's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// Allow, deny or require approval.
    pub decision: Decision,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
    /// Determining policy ids, sorted.
    pub policies: Vec<String>,
    /// For `require_approval`: the policies a human approval would lift.
    pub approvable: Vec<String>,
}

#[derive(Debug)]
struct Meta {
    reason: Option<String>,
    approvable: bool,
    permit: bool,
}

#[derive(Debug)]
struct PrincipalEntry {
    uid: EntityUid,
    slices: [Arc<PolicySet>; 6],
}

/// A loaded, validated policy engine for one inventory.
#[derive(Debug)]
pub struct PolicyEngine {
    inventory: Arc<Inventory>,
    schema_text: String,
    schema: Schema,
    entities: Entities,
    policies: PolicySet,
    meta: HashMap<String, Meta>,
    principals: Vec<PrincipalEntry>,
    users: HashMap<UserId, PrincipalRef>,
    agents: HashMap<AgentId, PrincipalRef>,
    actions: [EntityUid; 6],
    resources: [HashMap<String, EntityUid>; 6],
    authorizer: Authorizer,
    warnings: Vec<String>,
    /// Forbids whose outcome cannot depend on principal, action or resource
    /// (unconstrained scope, conditions on `context` only): evaluated once per
    /// request instead of once per link and resource.
    request_level: PolicySet,
    cache: cache::DecisionCache,
}

impl PolicyEngine {
    /// Builds the engine: generates and parses the schema, builds the entities,
    /// parses the baseline guards and `sources`, and validates every policy.
    pub fn new(inventory: Arc<Inventory>, sources: &[PolicySource]) -> Result<Self, PolicyErrors> {
        let schema_text = schema::generate(&inventory);
        let schema = match Schema::from_cedarschema_str(&schema_text) {
            Ok((s, _warnings)) => s,
            Err(e) => {
                return Err(PolicyErrors::one(PolicyError::Internal {
                    what: format!("generated schema does not parse: {e}"),
                }));
            }
        };
        let entity_list = entities::build(&inventory).map_err(PolicyErrors::one)?;
        let entities = Entities::from_entities(entity_list, Some(&schema)).map_err(|e| {
            PolicyErrors::one(PolicyError::Internal {
                what: format!("inventory entities do not match the schema: {e}"),
            })
        })?;

        let mut all_sources = vec![PolicySource {
            name: BASELINE_NAME.to_owned(),
            text: BASELINE.to_owned(),
        }];
        all_sources.extend(sources.iter().cloned());
        let (policies, meta, origins) = errors::parse_all(&all_sources)?;

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errs = validation
                .validation_errors()
                .map(|e| errors::validation_error(e, &origins, &all_sources))
                .collect();
            return Err(PolicyErrors(errs));
        }
        let warnings = validation
            .validation_warnings()
            .map(|w| w.to_string())
            .collect();

        let actions = ActionKind::ALL.map(|a| entities::uid("Action", a.name()));
        let actions = match actions {
            [Ok(a), Ok(b), Ok(c), Ok(d), Ok(e), Ok(f)] => [a, b, c, d, e, f],
            _ => {
                return Err(PolicyErrors::one(PolicyError::Internal {
                    what: "action uids".into(),
                }));
            }
        };

        let mut engine = PolicyEngine {
            schema_text,
            schema,
            entities,
            meta,
            principals: Vec::new(),
            users: HashMap::new(),
            agents: HashMap::new(),
            actions,
            resources: Default::default(),
            authorizer: Authorizer::new(),
            warnings,
            request_level: PolicySet::new(),
            cache: cache::DecisionCache::new(cache::DEFAULT_CAPACITY),
            policies,
            inventory,
        };
        let request_level_ids: HashSet<String> = engine
            .policies
            .policies()
            .filter(|p| is_request_level(p))
            .map(|p| p.id().to_string())
            .collect();
        engine.request_level = PolicySet::from_policies(
            engine
                .policies
                .policies()
                .filter(|p| request_level_ids.contains(&p.id().to_string()))
                .cloned(),
        )
        .map_err(|e| {
            PolicyErrors::one(PolicyError::Internal {
                what: format!("request-level policies: {e}"),
            })
        })?;
        engine
            .index(&request_level_ids)
            .map_err(PolicyErrors::one)?;
        Ok(engine)
    }

    fn index(&mut self, request_level: &HashSet<String>) -> Result<(), PolicyError> {
        let inv = Arc::clone(&self.inventory);
        let mut shared = HashMap::new();
        for u in inv.users.keys() {
            let uid = entities::uid("User", u.as_str())?;
            let r = self.add_principal(uid, request_level, &mut shared)?;
            self.users.insert(u.clone(), r);
        }
        for a in inv.agents.keys() {
            let uid = entities::uid("Agent", a.as_str())?;
            let r = self.add_principal(uid, request_level, &mut shared)?;
            self.agents.insert(a.clone(), r);
        }
        for kind in ActionKind::ALL {
            let ids: Vec<&String> = match kind {
                ActionKind::CallTool => inv.tools.keys().collect(),
                ActionKind::Read | ActionKind::Write => inv.datasets.keys().collect(),
                ActionKind::Send | ActionKind::Fetch => inv.destinations.keys().collect(),
                ActionKind::InvokeModel => inv.models.keys().collect(),
            };
            for id in ids {
                let uid = entities::uid(kind.resource_type(), id)?;
                self.resources[kind as usize].insert(id.clone(), uid);
            }
        }
        Ok(())
    }

    fn add_principal(
        &mut self,
        uid: EntityUid,
        request_level: &HashSet<String>,
        shared: &mut HashMap<Vec<String>, Arc<PolicySet>>,
    ) -> Result<PrincipalRef, PolicyError> {
        let ancestors: BTreeSet<EntityUid> = self
            .entities
            .ancestors(&uid)
            .map(|it| it.cloned().collect())
            .unwrap_or_default();
        let mut slices: Vec<Arc<PolicySet>> = Vec::with_capacity(ActionKind::ALL.len());
        for action in ActionKind::ALL {
            let action_uid = &self.actions[action as usize];
            let applicable: Vec<&cedar_policy::Policy> = self
                .policies
                .policies()
                .filter(|p| {
                    !request_level.contains(&p.id().to_string())
                        && principal_may_match(&p.principal_constraint(), &uid, &ancestors)
                        && action_may_match(&p.action_constraint(), action_uid)
                })
                .collect();
            // Principals with the same applicable policies share one slice: most do.
            let mut ids: Vec<String> = applicable.iter().map(|p| p.id().to_string()).collect();
            ids.sort();
            ids.push(action.name().to_owned());
            let slice =
                match shared.get(&ids) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let set = PolicySet::from_policies(applicable.into_iter().cloned())
                            .map_err(|e| PolicyError::Internal {
                                what: format!("policy slice for {uid}: {e}"),
                            })?;
                        let set = Arc::new(set);
                        shared.insert(ids, Arc::clone(&set));
                        set
                    }
                };
            slices.push(slice);
        }
        let slices: [Arc<PolicySet>; 6] = slices.try_into().map_err(|_| PolicyError::Internal {
            what: format!("policy slices for {uid}"),
        })?;
        self.principals.push(PrincipalEntry { uid, slices });
        Ok(PrincipalRef(self.principals.len() - 1))
    }

    /// The inventory the engine was built from.
    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// The generated Cedar schema, in Cedar schema syntax.
    pub fn schema_text(&self) -> &str {
        &self.schema_text
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The inventory's entities.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// Every loaded policy, baseline first.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// Validator warnings (policies that validate but look wrong).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Bounds the decision cache (0 disables it). Decisions are a pure function of
    /// principal, action, resource and context over this engine's fixed entities and
    /// policies, so a cached outcome is exactly what Cedar would answer again.
    pub fn set_cache_capacity(&self, entries: usize) {
        self.cache.set_capacity(entries);
    }

    /// Decision-cache counters: (hits, misses).
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }

    /// The forbids evaluated once per request (see [`PolicyEngine`]).
    pub fn request_level_policies(&self) -> &PolicySet {
        &self.request_level
    }

    /// Ids of every loaded policy.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.meta.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The policies Cedar evaluates for `principal` doing `action` (the slice).
    pub fn slice(&self, principal: PrincipalRef, action: ActionKind) -> Option<&PolicySet> {
        self.principals
            .get(principal.0)
            .map(|p| p.slices[action as usize].as_ref())
    }

    /// The Cedar uid of a principal.
    pub fn principal_uid(&self, principal: PrincipalRef) -> Option<&EntityUid> {
        self.principals.get(principal.0).map(|p| &p.uid)
    }

    /// Resolves a user.
    pub fn user(&self, id: &UserId) -> Option<PrincipalRef> {
        self.users.get(id).copied()
    }

    /// Resolves an agent.
    pub fn agent(&self, id: &AgentId) -> Option<PrincipalRef> {
        self.agents.get(id).copied()
    }

    /// The Cedar uid of a resource, if the inventory has it.
    pub fn resource_uid(&self, action: ActionKind, id: &str) -> Option<&EntityUid> {
        self.resources[action as usize].get(id)
    }

    /// The Cedar uid of an action.
    pub fn action_uid(&self, action: ActionKind) -> &EntityUid {
        &self.actions[action as usize]
    }

    /// The risk level policies see for a score: `low`, `medium` or `high`, by the
    /// inventory's thresholds. Policies see only the level, never the exact score,
    /// so that contexts repeat and decisions stay cacheable; the score itself is
    /// reported in reasons.
    pub fn risk_level(&self, risk: u8) -> &'static str {
        let settings = &self.inventory.settings;
        if risk >= settings.risk_high {
            "high"
        } else if risk >= settings.risk_medium {
            "medium"
        } else {
            "low"
        }
    }

    /// Builds the Cedar context for a request's facts.
    pub fn context(&self, facts: &Facts) -> Result<Context, PolicyError> {
        let s = &facts.session;
        let session = RestrictedExpression::new_record([
            (
                "label".to_owned(),
                RestrictedExpression::new_long(s.confidentiality.rank()),
            ),
            (
                "categories".to_owned(),
                RestrictedExpression::new_set(
                    s.categories
                        .iter()
                        .map(|c| RestrictedExpression::new_string(c.as_str().to_owned())),
                ),
            ),
            (
                "untrusted".to_owned(),
                RestrictedExpression::new_bool(s.integrity == zt4ai_core::Integrity::Untrusted),
            ),
        ])
        .map_err(|e| PolicyError::Internal {
            what: format!("context record: {e}"),
        })?;
        let level = self.risk_level(facts.risk);
        Context::from_pairs([
            ("session".to_owned(), session),
            (
                "risk_level".to_owned(),
                RestrictedExpression::new_string(level.to_owned()),
            ),
            (
                "injection".to_owned(),
                RestrictedExpression::new_bool(facts.injection),
            ),
            (
                "findings".to_owned(),
                RestrictedExpression::new_set(
                    facts
                        .findings
                        .iter()
                        .map(|f| RestrictedExpression::new_string(f.clone())),
                ),
            ),
        ])
        .map_err(|e| PolicyError::Internal {
            what: format!("context: {e}"),
        })
    }

    /// Decides a request: every check, for every link of the chain.
    ///
    /// `lifted` holds policy ids a granted human approval lifts for this request;
    /// only `@approval` forbids are ever lifted.
    pub fn decide(
        &self,
        links: &[PrincipalRef],
        checks: &[Check],
        facts: &Facts,
        lifted: &BTreeSet<String>,
    ) -> PolicyDecision {
        let (context, context_id) =
            match self
                .cache
                .context(facts, self.risk_level(facts.risk), || self.context(facts))
            {
                Ok(c) => c,
                Err(e) => return hard_deny("zt4ai.policy.error", format!("{e}; failing closed")),
            };
        let mut permits: BTreeSet<String> = BTreeSet::new();
        let mut hard: Vec<Reason> = Vec::new();
        let mut hard_ids: BTreeSet<String> = BTreeSet::new();
        let mut soft: Vec<Reason> = Vec::new();
        let mut soft_ids: BTreeSet<String> = BTreeSet::new();
        let mut used_lifts: BTreeSet<String> = BTreeSet::new();
        let mut permit_reasons: Vec<Reason> = Vec::new();

        // Pairs to evaluate: the request-level forbids once, then every check for every link.
        let mut plan: Vec<(Option<&PolicySet>, &Check, PrincipalRef)> = Vec::new();
        if let (Some(first), Some(&link)) = (checks.first(), links.first())
            && !self.request_level.is_empty()
        {
            plan.push((Some(&self.request_level), first, link));
        }
        for check in checks {
            for &link in links {
                plan.push((None, check, link));
            }
        }
        for (fixed_set, check, link) in plan {
            let Some(resource) = self.resource_uid(check.action, &check.resource) else {
                hard_ids.insert("zt4ai.request.unknown_resource".into());
                hard.push(Reason {
                    policy: "zt4ai.request.unknown_resource".into(),
                    message: format!(
                        "`{}` is not a known {} in the inventory",
                        check.resource,
                        check.action.resource_type().to_lowercase()
                    ),
                });
                continue;
            };
            let Some(entry) = self.principals.get(link.0) else {
                hard_ids.insert("zt4ai.policy.error".into());
                hard.push(Reason {
                    policy: "zt4ai.policy.error".into(),
                    message: "unknown principal reference; failing closed".into(),
                });
                continue;
            };
            let slice: &PolicySet = match fixed_set {
                Some(set) => set,
                None => &entry.slices[check.action as usize],
            };
            let vars = Vars {
                engine: self,
                principal: &entry.uid,
                check,
                facts,
            };
            let key = cache::Key {
                principal: link.0,
                action: check.action as u8,
                request_level: fixed_set.is_some(),
                resource: check.resource.clone(),
                context: context_id,
            };
            let mut outcome = match self.cache.get(&key) {
                Some(o) => o,
                None => {
                    let o = self.eval(&entry.uid, check.action, resource, &context, slice);
                    self.cache.put(key, o.clone());
                    o
                }
            };
            if fixed_set.is_some() && matches!(outcome, Outcome::NoPermit | Outcome::Allowed(_)) {
                // The request-level set holds forbids only: nothing fired.
                continue;
            }
            if let Outcome::Forbidden(ref ids) = outcome {
                let all_approvable = ids.iter().all(|id| self.is_approvable(id));
                if all_approvable && !lifted.is_empty() && ids.iter().all(|id| lifted.contains(id))
                {
                    used_lifts.extend(ids.iter().cloned());
                    let reduced = PolicySet::from_policies(
                        slice
                            .policies()
                            .filter(|p| !lifted.contains(&p.id().to_string()))
                            .cloned(),
                    );
                    outcome = match reduced {
                        Ok(set) => self.eval(&entry.uid, check.action, resource, &context, &set),
                        Err(e) => Outcome::Error(vec![(
                            "zt4ai.policy.error".into(),
                            format!("could not lift approved policies: {e}"),
                        )]),
                    };
                }
            }
            match outcome {
                Outcome::Allowed(ids) => {
                    for id in ids {
                        permit_reasons.push(Reason {
                            message: self.message(&id, &vars),
                            policy: id.clone(),
                        });
                        permits.insert(id);
                    }
                }
                Outcome::NoPermit => {
                    hard_ids.insert(DEFAULT_DENY.into());
                    hard.push(Reason {
                        policy: DEFAULT_DENY.into(),
                        message: format!(
                            "no policy permits {} `{}` to {} `{}`",
                            entry.uid.type_name().to_string().to_lowercase(),
                            entry.uid.id().unescaped(),
                            check.action.name(),
                            check.target.as_deref().unwrap_or(&check.resource)
                        ),
                    });
                }
                Outcome::Forbidden(ids) => {
                    let approvable = ids.iter().all(|id| self.is_approvable(id));
                    for id in ids {
                        let message = self.message(&id, &vars);
                        let (list, set) = if approvable {
                            (&mut soft, &mut soft_ids)
                        } else {
                            (&mut hard, &mut hard_ids)
                        };
                        set.insert(id.clone());
                        let r = Reason {
                            policy: id,
                            message,
                        };
                        if !list.contains(&r) {
                            list.push(r);
                        }
                    }
                }
                Outcome::Error(errs) => {
                    for (id, msg) in errs {
                        hard_ids.insert(id.clone());
                        hard.push(Reason {
                            policy: id,
                            message: format!("{msg}; failing closed"),
                        });
                    }
                }
            }
        }

        if !hard.is_empty() {
            dedup(&mut hard);
            return PolicyDecision {
                decision: Decision::Deny,
                reasons: hard,
                policies: hard_ids.into_iter().collect(),
                approvable: Vec::new(),
            };
        }
        if !soft.is_empty() {
            return PolicyDecision {
                decision: Decision::RequireApproval,
                reasons: soft,
                approvable: soft_ids.iter().cloned().collect(),
                policies: soft_ids.into_iter().collect(),
            };
        }
        let mut reasons: Vec<Reason> = used_lifts
            .iter()
            .map(|id| Reason {
                policy: id.clone(),
                message: format!("`{id}` lifted by a human approval"),
            })
            .collect();
        if checks.is_empty() || links.is_empty() {
            return hard_deny(
                DEFAULT_DENY,
                "nothing to authorise: no principal or no resource".to_owned(),
            );
        }
        reasons.extend(permit_reasons);
        dedup(&mut reasons);
        let mut policies: BTreeSet<String> = permits;
        policies.extend(used_lifts);
        PolicyDecision {
            decision: Decision::Allow,
            reasons,
            policies: policies.into_iter().collect(),
            approvable: Vec::new(),
        }
    }

    fn is_approvable(&self, id: &str) -> bool {
        self.meta.get(id).is_some_and(|m| m.approvable && !m.permit)
    }

    fn message(&self, id: &str, vars: &Vars<'_>) -> String {
        match self.meta.get(id).and_then(|m| m.reason.as_deref()) {
            Some(template) => render(template, &|name| vars.get(name)),
            None => format!("decided by `{id}`"),
        }
    }

    /// The Cedar request for one principal, action and resource; the one place
    /// zt4ai builds them (evaluation, and [`Self::requests`] for the benchmarks).
    fn request(
        &self,
        principal: &EntityUid,
        action: ActionKind,
        resource: &EntityUid,
        context: &Context,
    ) -> Result<Request, String> {
        Request::new(
            principal.clone(),
            self.actions[action as usize].clone(),
            resource.clone(),
            context.clone(),
            None,
        )
        .map_err(|e| e.to_string())
    }

    /// The Cedar requests [`Self::decide`] evaluates per link and check (without
    /// the request-level forbids), each with the principal and action naming its
    /// slice. For benchmarks (the bare-Cedar baseline) and debugging.
    pub fn requests(
        &self,
        links: &[PrincipalRef],
        checks: &[Check],
        facts: &Facts,
    ) -> Result<Vec<(Request, PrincipalRef, ActionKind)>, String> {
        let context = self.context(facts).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for check in checks {
            let resource = self
                .resource_uid(check.action, &check.resource)
                .ok_or_else(|| format!("unknown resource `{}`", check.resource))?;
            for &link in links {
                let principal = self.principal_uid(link).ok_or("unknown principal")?;
                let request = self.request(principal, check.action, resource, &context)?;
                out.push((request, link, check.action));
            }
        }
        Ok(out)
    }

    fn eval(
        &self,
        principal: &EntityUid,
        action: ActionKind,
        resource: &EntityUid,
        context: &Context,
        set: &PolicySet,
    ) -> Outcome {
        let request = match self.request(principal, action, resource, context) {
            Ok(r) => r,
            Err(e) => return Outcome::Error(vec![("zt4ai.policy.error".into(), e)]),
        };
        let response = self.authorizer.is_authorized(&request, set, &self.entities);
        let diag = response.diagnostics();
        let errors: Vec<(String, String)> = diag
            .errors()
            .map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                let id = pe.policy_id().to_string();
                let msg = format!("policy `{id}` failed to evaluate: {}", pe.inner());
                (id, msg)
            })
            .collect();
        if !errors.is_empty() {
            return Outcome::Error(errors);
        }
        let mut ids: Vec<String> = diag.reason().map(|id| id.to_string()).collect();
        // Cedar reports a set; sort so verdicts are deterministic.
        ids.sort();
        match response.decision() {
            CedarDecision::Allow => Outcome::Allowed(ids),
            CedarDecision::Deny if ids.is_empty() => Outcome::NoPermit,
            CedarDecision::Deny => Outcome::Forbidden(ids),
        }
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Allowed(Vec<String>),
    NoPermit,
    Forbidden(Vec<String>),
    Error(Vec<(String, String)>),
}

fn dedup(reasons: &mut Vec<Reason>) {
    let mut seen = BTreeSet::new();
    reasons.retain(|r| seen.insert((r.policy.clone(), r.message.clone())));
}

fn hard_deny(id: &str, message: String) -> PolicyDecision {
    PolicyDecision {
        decision: Decision::Deny,
        reasons: vec![Reason {
            policy: id.to_owned(),
            message,
        }],
        policies: vec![id.to_owned()],
        approvable: Vec::new(),
    }
}

/// Values for `{…}` placeholders in reasons.
struct Vars<'a> {
    engine: &'a PolicyEngine,
    principal: &'a EntityUid,
    check: &'a Check,
    facts: &'a Facts,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let inv = &self.engine.inventory;
        let pid = self.principal.id().unescaped();
        let is_agent = self.principal.type_name().to_string() == "Agent";
        let rid = self.check.resource.as_str();
        Some(match name {
            "principal" => pid.to_owned(),
            "action" => self.check.action.name().to_owned(),
            "resource" => rid.to_owned(),
            "via" => match &self.check.target {
                Some(t) if t != rid => format!(" (`{t}`)"),
                _ => String::new(),
            },
            "target" => self.check.target.clone().unwrap_or_else(|| rid.to_owned()),
            "risk" => self.facts.risk.to_string(),
            "session.label" => self.facts.session.confidentiality.to_string(),
            "session.categories" => {
                let c: Vec<&str> = self
                    .facts
                    .session
                    .categories
                    .iter()
                    .map(|c| c.as_str())
                    .collect();
                if c.is_empty() {
                    "no categories".to_owned()
                } else {
                    c.join(", ")
                }
            }
            "principal.state" if is_agent => {
                let id = AgentId::new(pid).ok()?;
                inv.agents.get(&id)?.state.as_str().to_owned()
            }
            "principal.clearance" => {
                if is_agent {
                    inv.agents
                        .get(&AgentId::new(pid).ok()?)?
                        .clearance
                        .to_string()
                } else {
                    inv.users
                        .get(&UserId::new(pid).ok()?)?
                        .clearance
                        .to_string()
                }
            }
            "resource.clearance" => match self.check.action {
                ActionKind::Send | ActionKind::Fetch => {
                    inv.destinations.get(rid)?.clearance.to_string()
                }
                ActionKind::InvokeModel => inv.models.get(rid)?.clearance.to_string(),
                _ => return None,
            },
            "resource.label" => match self.check.action {
                ActionKind::Read | ActionKind::Write => inv.datasets.get(rid)?.label.to_string(),
                ActionKind::CallTool => inv.tools.get(rid)?.output_label.to_string(),
                _ => return None,
            },
            _ => return None,
        })
    }
}

fn principal_may_match(
    c: &PrincipalConstraint,
    uid: &EntityUid,
    ancestors: &BTreeSet<EntityUid>,
) -> bool {
    match c {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(e) => e == uid,
        PrincipalConstraint::In(e) => e == uid || ancestors.contains(e),
        PrincipalConstraint::Is(t) => t == uid.type_name(),
        PrincipalConstraint::IsIn(t, e) => {
            t == uid.type_name() && (e == uid || ancestors.contains(e))
        }
    }
}

fn action_may_match(c: &ActionConstraint, action: &EntityUid) -> bool {
    // zt4ai's actions have no action groups, so `in` is membership of the list.
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => a == action,
        ActionConstraint::In(list) => list.contains(action),
    }
}

/// Whether a policy's outcome is independent of principal, action and resource:
/// a forbid with an unconstrained scope whose conditions read only `context`.
fn is_request_level(p: &cedar_policy::Policy) -> bool {
    if p.effect() != cedar_policy::Effect::Forbid
        || p.principal_constraint() != PrincipalConstraint::Any
        || p.action_constraint() != ActionConstraint::Any
        || p.resource_constraint() != cedar_policy::ResourceConstraint::Any
    {
        return false;
    }
    fn only_context(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => m.iter().all(|(k, v)| {
                if k == "Var" {
                    v.as_str() == Some("context")
                } else {
                    only_context(v)
                }
            }),
            serde_json::Value::Array(a) => a.iter().all(only_context),
            _ => true,
        }
    }
    match p.to_json() {
        Ok(json) => json.get("conditions").is_some_and(only_context),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;

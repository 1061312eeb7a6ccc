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
//! * **Evaluation is partitioned.** Cedar's answer over a policy set follows from
//!   its answers over the parts of any partition, so each policy is evaluated only
//!   where its outcome can vary: context-only forbids once per request, policies
//!   that never read the principal once per resource, the rest once per link (see
//!   [`Part`]). Policies whose scopes cannot match a principal, action or resource
//!   are dropped from its parts when the engine is built; that is exact, since
//!   scopes depend only on the entity hierarchy, fixed per inventory.
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
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, EntityTypeName,
    EntityUid, PolicySet, PrincipalConstraint, Request, ResourceConstraint, RestrictedExpression,
    Schema, ValidationMode, Validator,
};
pub use errors::{PolicyError, PolicyErrors};
use zt4ai_core::{AgentId, Category, Decision, Inventory, Reason, SessionLabel, UserId};

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

impl Check {
    /// What the resource was reached through, when that says more than its
    /// id (a recipient, the tool whose server it is): `` (`x`)``, or nothing.
    fn via(&self) -> String {
        match &self.target {
            Some(t) if *t != self.resource => format!(" (`{t}`)"),
            _ => String::new(),
        }
    }
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
    /// The label and categories of the sensitive data found in the request's
    /// own content (its arguments): what a send would carry out.
    pub content: SessionLabel,
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

/// Which part of the policy set one Cedar evaluation covers.
///
/// Cedar's answer over a policy set is a function of the answers over the parts
/// of any partition of it: a request is denied if any part has a satisfied
/// `forbid`, allowed if none has and some part has a satisfied `permit`. So the
/// engine evaluates each policy only where its outcome can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Forbids that read only `context`: once per request.
    Request = 0,
    /// Policies that never read the principal (unconstrained principal scope, no
    /// `principal` in the conditions) and may apply to this resource: once per
    /// resource, whatever the length of the actor chain.
    Resource = 1,
    /// The principal's slice: policies whose principal and action scopes can match
    /// it and whose resource scope is only a type: once per link and resource.
    Principal = 2,
    /// Principal-dependent policies that name this resource (or an ancestor) in
    /// their resource scope: once per link, for resources that have any.
    Specific = 3,
}

#[derive(Debug)]
struct PrincipalEntry {
    uid: EntityUid,
    slices: [Option<Arc<PolicySet>>; 6],
}

#[derive(Debug)]
struct ResourceEntry {
    uid: EntityUid,
    /// Dense index, for cache keys.
    index: u32,
    /// [`Part::Resource`] policies, if any.
    shared: Option<Arc<PolicySet>>,
    /// [`Part::Specific`] policies, if any.
    specific: Option<Arc<PolicySet>>,
}

/// A loaded, validated policy engine for one inventory.
#[derive(Debug)]
pub struct PolicyEngine {
    inventory: Arc<Inventory>,
    schema_text: String,
    schema: Schema,
    entities: Entities,
    policies: PolicySet,
    /// Policy metadata by slot.
    meta: Vec<Meta>,
    /// Policy ids by slot; outcomes and the cache carry slots, not strings.
    slots: Vec<String>,
    slot_of: HashMap<String, u32>,
    principals: Vec<PrincipalEntry>,
    users: HashMap<UserId, PrincipalRef>,
    agents: HashMap<AgentId, PrincipalRef>,
    actions: [EntityUid; 6],
    resources: [HashMap<String, ResourceEntry>; 6],
    authorizer: Authorizer,
    warnings: Vec<String>,
    /// [`Part::Request`] policies, if any.
    request_level: Option<Arc<PolicySet>>,
    cache: cache::DecisionCache,
}

/// How each policy is partitioned (see [`Part`]).
struct Classes {
    request_level: HashSet<String>,
    principal_free: HashSet<String>,
}

/// Sets shared between principals and resources with the same policies: most are.
#[derive(Default)]
struct Shared(HashMap<Vec<String>, Arc<PolicySet>>);

/// A policy with what indexing asks of it computed once: its id as a string and
/// its scope constraints (each accessor clones entity uids, and an id's
/// `Display` escapes it: both far too slow to redo per principal and resource).
struct Indexed<'a> {
    policy: &'a cedar_policy::Policy,
    id: String,
    request_level: bool,
    principal_free: bool,
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
    /// For `resource is T`: `T`.
    resource_type: Option<String>,
}

impl Shared {
    fn get(
        &mut self,
        policies: Vec<&Indexed<'_>>,
        what: &dyn std::fmt::Display,
    ) -> Result<Option<Arc<PolicySet>>, PolicyError> {
        if policies.is_empty() {
            return Ok(None);
        }
        let mut ids: Vec<String> = policies.iter().map(|p| p.id.clone()).collect();
        ids.sort();
        if let Some(s) = self.0.get(&ids) {
            return Ok(Some(Arc::clone(s)));
        }
        let set = PolicySet::from_policies(policies.into_iter().map(|p| p.policy.clone()))
            .map_err(|e| PolicyError::Internal {
                what: format!("policy set for {what}: {e}"),
            })?;
        let set = Arc::new(set);
        self.0.insert(ids, Arc::clone(&set));
        Ok(Some(set))
    }
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
        let (policies, mut meta_by_id, origins) = errors::parse_all(&all_sources)?;

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
        let mut slots: Vec<String> = meta_by_id.keys().cloned().collect();
        slots.sort();
        let slot_of = (0u32..)
            .zip(&slots)
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let meta = slots
            .iter()
            .filter_map(|id| meta_by_id.remove(id))
            .collect();

        let mut engine = PolicyEngine {
            schema_text,
            schema,
            entities,
            meta,
            slots,
            slot_of,
            principals: Vec::new(),
            users: HashMap::new(),
            agents: HashMap::new(),
            actions,
            resources: Default::default(),
            authorizer: Authorizer::new(),
            warnings,
            request_level: None,
            cache: cache::DecisionCache::new(cache::DEFAULT_CAPACITY),
            policies,
            inventory,
        };
        let mut classes = Classes {
            request_level: HashSet::new(),
            principal_free: HashSet::new(),
        };
        for p in engine.policies.policies() {
            let id = p.id().to_string();
            if is_request_level(p) {
                classes.request_level.insert(id);
            } else if is_principal_free(p) {
                classes.principal_free.insert(id);
            }
        }
        engine.index(&classes).map_err(PolicyErrors::one)?;
        Ok(engine)
    }

    fn index(&mut self, classes: &Classes) -> Result<(), PolicyError> {
        let inv = Arc::clone(&self.inventory);
        let set = self.policies.clone();
        let indexed: Vec<Indexed<'_>> = set
            .policies()
            .map(|p| {
                let id = p.id().to_string();
                Indexed {
                    policy: p,
                    request_level: classes.request_level.contains(&id),
                    principal_free: classes.principal_free.contains(&id),
                    id,
                    principal: p.principal_constraint(),
                    action: p.action_constraint(),
                    resource_type: match p.resource_constraint() {
                        ResourceConstraint::Is(t) => Some(t.to_string()),
                        _ => None,
                    },
                    resource: p.resource_constraint(),
                }
            })
            .collect();
        let mut shared = Shared::default();
        let request_level: Vec<&Indexed<'_>> = indexed.iter().filter(|p| p.request_level).collect();
        self.request_level = shared.get(request_level, &"request-level forbids")?;
        for u in inv.users.keys() {
            let uid = entities::uid("User", u.as_str())?;
            let r = self.add_principal(uid, &indexed, &mut shared)?;
            self.users.insert(u.clone(), r);
        }
        for a in inv.agents.keys() {
            let uid = entities::uid("Agent", a.as_str())?;
            let r = self.add_principal(uid, &indexed, &mut shared)?;
            self.agents.insert(a.clone(), r);
        }
        for kind in ActionKind::ALL {
            let ids: Vec<&String> = match kind {
                ActionKind::CallTool => inv.tools.keys().collect(),
                ActionKind::Read | ActionKind::Write => inv.datasets.keys().collect(),
                ActionKind::Send | ActionKind::Fetch => inv.destinations.keys().collect(),
                ActionKind::InvokeModel => inv.models.keys().collect(),
            };
            let action_uid = self.actions[kind as usize].clone();
            for (index, id) in (0u32..).zip(ids) {
                let uid = entities::uid(kind.resource_type(), id)?;
                let ancestors: BTreeSet<EntityUid> = self
                    .entities
                    .ancestors(&uid)
                    .map(|it| it.cloned().collect())
                    .unwrap_or_default();
                let mut free = Vec::new();
                let mut specific = Vec::new();
                for p in &indexed {
                    if p.request_level
                        || !action_may_match(&p.action, &action_uid)
                        || !scope_may_match(&p.resource, &uid, &ancestors)
                    {
                        continue;
                    }
                    if p.principal_free {
                        free.push(p);
                    } else if !scope_is_type_only(&p.resource) {
                        specific.push(p);
                    }
                }
                let entry = ResourceEntry {
                    shared: shared.get(free, &uid)?,
                    specific: shared.get(specific, &uid)?,
                    uid,
                    index,
                };
                self.resources[kind as usize].insert(id.clone(), entry);
            }
        }
        Ok(())
    }

    fn add_principal(
        &mut self,
        uid: EntityUid,
        indexed: &[Indexed<'_>],
        shared: &mut Shared,
    ) -> Result<PrincipalRef, PolicyError> {
        let ancestors: BTreeSet<EntityUid> = self
            .entities
            .ancestors(&uid)
            .map(|it| it.cloned().collect())
            .unwrap_or_default();
        let mut slices: [Option<Arc<PolicySet>>; 6] = Default::default();
        for action in ActionKind::ALL {
            let action_uid = &self.actions[action as usize];
            let resource_type = action.resource_type();
            let applicable: Vec<&Indexed<'_>> = indexed
                .iter()
                .filter(|p| {
                    !p.request_level
                        && !p.principal_free
                        && scope_is_type_only(&p.resource)
                        && p.resource_type
                            .as_deref()
                            .is_none_or(|t| t == resource_type)
                        && scope_may_match(&p.principal, &uid, &ancestors)
                        && action_may_match(&p.action, action_uid)
                })
                .collect();
            slices[action as usize] = shared.get(applicable, &uid)?;
        }
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

    /// The forbids evaluated once per request ([`Part::Request`]), if any.
    pub fn request_level_policies(&self) -> Option<&PolicySet> {
        self.request_level.as_deref()
    }

    /// The policies evaluated once for a resource ([`Part::Resource`]) and the
    /// principal-dependent ones that name it ([`Part::Specific`]).
    pub fn resource_parts(
        &self,
        action: ActionKind,
        id: &str,
    ) -> (Option<&PolicySet>, Option<&PolicySet>) {
        match self.resources[action as usize].get(id) {
            Some(r) => (r.shared.as_deref(), r.specific.as_deref()),
            None => (None, None),
        }
    }

    /// Ids of every loaded policy.
    pub fn policy_ids(&self) -> Vec<String> {
        self.slots.clone()
    }

    /// The principal's slice for `action` ([`Part::Principal`]), if it has any policy.
    pub fn slice(&self, principal: PrincipalRef, action: ActionKind) -> Option<&PolicySet> {
        self.principals
            .get(principal.0)
            .and_then(|p| p.slices[action as usize].as_deref())
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
        self.resources[action as usize].get(id).map(|r| &r.uid)
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
        let content = RestrictedExpression::new_record([
            (
                "label".to_owned(),
                RestrictedExpression::new_long(facts.content.confidentiality.rank()),
            ),
            (
                "categories".to_owned(),
                RestrictedExpression::new_set(
                    facts
                        .content
                        .categories
                        .iter()
                        .map(|c| RestrictedExpression::new_string(c.as_str().to_owned())),
                ),
            ),
        ])
        .map_err(|e| PolicyError::Internal {
            what: format!("context record: {e}"),
        })?;
        let level = self.risk_level(facts.risk);
        Context::from_pairs([
            ("content".to_owned(), content),
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
        let (Some(&first), Some(first_check)) = (links.first(), checks.first()) else {
            return hard_deny(
                DEFAULT_DENY,
                "nothing to authorise: no principal or no resource".to_owned(),
            );
        };
        let (context, context_id) =
            match self
                .cache
                .context(facts, self.risk_level(facts.risk), || self.context(facts))
            {
                Ok(c) => c,
                Err(e) => return hard_deny("zt4ai.policy.error", format!("{e}; failing closed")),
            };
        let Some(first_entry) = self.principals.get(first.0) else {
            return hard_deny(
                "zt4ai.policy.error",
                "unknown principal reference; failing closed".into(),
            );
        };
        let mut acc = Verdicts::default();
        let env = Env {
            context: &context,
            context_id,
            lifted,
        };

        // Part::Request: the context-only forbids, once. They read neither
        // principal nor resource, so any link and check will do as the request.
        if let Some(set) = &self.request_level {
            match self.resources[first_check.action as usize].get(&first_check.resource) {
                Some(res) => {
                    let out = self.outcome(
                        Part::Request,
                        first,
                        first_entry,
                        first_check,
                        res,
                        set,
                        &env,
                        &mut acc.lifts,
                    );
                    let vars = Vars {
                        engine: self,
                        principal: &first_entry.uid,
                        check: first_check,
                        facts,
                    };
                    acc.part(self, out, &vars);
                }
                None => acc.unknown_resource(first_check),
            }
        }

        for check in checks {
            let Some(res) = self.resources[check.action as usize].get(&check.resource) else {
                acc.unknown_resource(check);
                continue;
            };
            // Part::Resource: the same for every link, so evaluated once.
            let shared = res.shared.as_deref().map(|set| {
                self.outcome(
                    Part::Resource,
                    first,
                    first_entry,
                    check,
                    res,
                    set,
                    &env,
                    &mut acc.lifts,
                )
            });
            for &link in links {
                let Some(entry) = self.principals.get(link.0) else {
                    acc.hard(
                        "zt4ai.policy.error",
                        "unknown principal reference; failing closed".into(),
                    );
                    continue;
                };
                let own = entry.slices[check.action as usize].as_deref().map(|set| {
                    self.outcome(
                        Part::Principal,
                        link,
                        entry,
                        check,
                        res,
                        set,
                        &env,
                        &mut acc.lifts,
                    )
                });
                let specific = res.specific.as_deref().map(|set| {
                    self.outcome(
                        Part::Specific,
                        link,
                        entry,
                        check,
                        res,
                        set,
                        &env,
                        &mut acc.lifts,
                    )
                });
                let vars = Vars {
                    engine: self,
                    principal: &entry.uid,
                    check,
                    facts,
                };
                // One link and one check: Cedar's answer over the union of the parts.
                let mut permits = Ids::new();
                let mut blocked = false;
                let mut only_approvable = true;
                let mut permit_unknown = false;
                let parts = [
                    (shared.as_ref(), res.shared.as_deref()),
                    (own.as_ref(), entry.slices[check.action as usize].as_deref()),
                    (specific.as_ref(), res.specific.as_deref()),
                ];
                for (out, set) in parts {
                    let Some(out) = out else { continue };
                    match out {
                        Outcome::Allowed(ids) => permits.extend(ids.iter().copied()),
                        Outcome::NoPermit => {}
                        Outcome::Forbidden(ids) => {
                            blocked = true;
                            only_approvable &= ids.iter().all(|&s| self.is_approvable(s));
                            // Cedar does not say whether a permit of a part whose
                            // forbid fired holds too.
                            permit_unknown |= set.is_some_and(|set| {
                                set.policies()
                                    .any(|p| p.effect() == cedar_policy::Effect::Permit)
                            });
                            acc.part(self, out.clone(), &vars);
                        }
                        Outcome::Error(_) => {
                            blocked = true;
                            only_approvable = false;
                            acc.part(self, out.clone(), &vars);
                        }
                    }
                }
                // A held request that no policy permits would be refused even
                // once approved: say so now rather than ask a human for nothing.
                let known_unpermitted = only_approvable && permits.is_empty() && !permit_unknown;
                if blocked && !known_unpermitted {
                    continue;
                }
                if permits.is_empty() {
                    acc.hard(
                        DEFAULT_DENY,
                        format!(
                            "no policy permits {} `{}` to {} `{}`{}",
                            entry.uid.type_name().to_string().to_lowercase(),
                            entry.uid.id().unescaped(),
                            check.action.name(),
                            check.resource,
                            check.via()
                        ),
                    );
                }
                if blocked {
                    continue;
                }
                for slot in permits {
                    acc.permit_reasons.push(Reason {
                        message: self.message(slot, &vars),
                        policy: self.slot_name(slot).to_owned(),
                    });
                    acc.permits.insert(slot);
                }
            }
        }
        acc.finish(self)
    }

    /// One part's outcome for one link and check: from the cache or from Cedar,
    /// then with the policies a granted approval lifts taken out, if every
    /// forbid that fired is one of them.
    #[allow(
        clippy::too_many_arguments,
        reason = "internal helper over the evaluation coordinates"
    )]
    fn outcome(
        &self,
        part: Part,
        link: PrincipalRef,
        entry: &PrincipalEntry,
        check: &Check,
        res: &ResourceEntry,
        set: &PolicySet,
        env: &Env<'_>,
        lifts: &mut BTreeSet<u32>,
    ) -> Outcome {
        let per_link = matches!(part, Part::Principal | Part::Specific);
        let per_resource = part != Part::Request;
        let key = cache::Key {
            principal: if per_link {
                u32::try_from(link.0).unwrap_or(u32::MAX)
            } else {
                u32::MAX
            },
            action: if per_resource { check.action as u8 } else { 0 },
            part: part as u8,
            resource: if per_resource { res.index } else { 0 },
            context: env.context_id,
        };
        let mut outcome = match self.cache.get(&key) {
            Some(o) => o,
            None => {
                let o = self.eval(&entry.uid, check.action, &res.uid, env.context, set);
                if !matches!(o, Outcome::Error(_)) {
                    self.cache.put(key, o.clone());
                }
                o
            }
        };
        if let Outcome::Forbidden(ids) = &outcome
            && !env.lifted.is_empty()
            && ids
                .iter()
                .all(|&s| self.is_approvable(s) && env.lifted.contains(self.slot_name(s)))
        {
            lifts.extend(ids.iter().copied());
            let reduced = PolicySet::from_policies(
                set.policies()
                    .filter(|p| !env.lifted.contains(&p.id().to_string()))
                    .cloned(),
            );
            outcome = match reduced {
                Ok(set) => self.eval(&entry.uid, check.action, &res.uid, env.context, &set),
                Err(e) => Outcome::Error(vec![(
                    "zt4ai.policy.error".into(),
                    format!("could not lift approved policies: {e}"),
                )]),
            };
        }
        outcome
    }

    fn slot_name(&self, slot: u32) -> &str {
        self.slots
            .get(slot as usize)
            .map_or("zt4ai.policy.unknown", String::as_str)
    }

    fn is_approvable(&self, slot: u32) -> bool {
        self.meta
            .get(slot as usize)
            .is_some_and(|m| m.approvable && !m.permit)
    }

    fn message(&self, slot: u32, vars: &Vars<'_>) -> String {
        match self
            .meta
            .get(slot as usize)
            .and_then(|m| m.reason.as_deref())
        {
            Some(template) => render(template, &|name| vars.get(name)),
            None => format!("decided by `{}`", self.slot_name(slot)),
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

    /// The Cedar evaluations [`Self::decide`] performs for a request when nothing is
    /// cached, in order, each with the policy set it runs over. For benchmarks (the
    /// bare-Cedar baselines) and debugging.
    pub fn evaluations(
        &self,
        links: &[PrincipalRef],
        checks: &[Check],
        facts: &Facts,
    ) -> Result<Vec<Evaluation>, String> {
        let context = self.context(facts).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let first = links
            .first()
            .and_then(|l| self.principals.get(l.0))
            .ok_or("no principal")?;
        let mut push = |part,
                        principal: &EntityUid,
                        check: &Check,
                        res: &ResourceEntry,
                        set: &Arc<PolicySet>| {
            let request = self.request(principal, check.action, &res.uid, &context)?;
            out.push(Evaluation {
                request,
                part,
                set: Arc::clone(set),
            });
            Ok::<(), String>(())
        };
        for (i, check) in checks.iter().enumerate() {
            let res = self.resources[check.action as usize]
                .get(&check.resource)
                .ok_or_else(|| format!("unknown resource `{}`", check.resource))?;
            if i == 0
                && let Some(set) = &self.request_level
            {
                push(Part::Request, &first.uid, check, res, set)?;
            }
            if let Some(set) = &res.shared {
                push(Part::Resource, &first.uid, check, res, set)?;
            }
            for link in links {
                let entry = self.principals.get(link.0).ok_or("unknown principal")?;
                if let Some(set) = &entry.slices[check.action as usize] {
                    push(Part::Principal, &entry.uid, check, res, set)?;
                }
                if let Some(set) = &res.specific {
                    push(Part::Specific, &entry.uid, check, res, set)?;
                }
            }
        }
        Ok(out)
    }

    /// The Cedar requests a plain integration would make for a request: one per
    /// chain link and resource, each to be evaluated over every policy. For the
    /// bare-Cedar baseline in the benchmarks.
    pub fn plain_requests(
        &self,
        links: &[PrincipalRef],
        checks: &[Check],
        facts: &Facts,
    ) -> Result<Vec<Request>, String> {
        let context = self.context(facts).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for check in checks {
            let res = self.resources[check.action as usize]
                .get(&check.resource)
                .ok_or_else(|| format!("unknown resource `{}`", check.resource))?;
            for link in links {
                let entry = self.principals.get(link.0).ok_or("unknown principal")?;
                out.push(self.request(&entry.uid, check.action, &res.uid, &context)?);
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
        let mut ids = Ids::new();
        for id in diag.reason() {
            match self.slot_of.get(AsRef::<str>::as_ref(id)) {
                Some(&slot) => ids.push(slot),
                None => {
                    return Outcome::Error(vec![(
                        "zt4ai.policy.error".into(),
                        format!("Cedar reported an unknown policy `{id}`"),
                    )]);
                }
            }
        }
        // Cedar reports a set; sort so verdicts are deterministic.
        ids.sort_unstable();
        match response.decision() {
            CedarDecision::Allow => Outcome::Allowed(ids),
            CedarDecision::Deny if ids.is_empty() => Outcome::NoPermit,
            CedarDecision::Deny => Outcome::Forbidden(ids),
        }
    }
}

/// One Cedar evaluation of a decision (see [`PolicyEngine::evaluations`]).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The Cedar request.
    pub request: Request,
    /// Which part of the policy set.
    pub part: Part,
    /// The policies evaluated.
    pub set: Arc<PolicySet>,
}

/// What every part of one decision shares.
struct Env<'a> {
    context: &'a Context,
    context_id: u64,
    lifted: &'a BTreeSet<String>,
}

/// Policy slots that fired, in one part.
type Ids = smallvec::SmallVec<[u32; 4]>;

/// What a decision has found so far.
#[derive(Default)]
struct Verdicts {
    permits: BTreeSet<u32>,
    permit_reasons: Vec<Reason>,
    hard: Vec<Reason>,
    hard_ids: BTreeSet<String>,
    soft: Vec<Reason>,
    soft_ids: BTreeSet<String>,
    lifts: BTreeSet<u32>,
}

impl Verdicts {
    fn hard(&mut self, id: &str, message: String) {
        self.hard_ids.insert(id.to_owned());
        self.hard.push(Reason {
            policy: id.to_owned(),
            message,
        });
    }

    fn unknown_resource(&mut self, check: &Check) {
        self.hard(
            "zt4ai.request.unknown_resource",
            format!(
                "`{}` is not a known {} in the inventory",
                check.resource,
                check.action.resource_type().to_lowercase()
            ),
        );
    }

    /// Records the forbids and errors of one part's outcome; permits are the
    /// caller's, since they count only when no part forbids.
    fn part(&mut self, engine: &PolicyEngine, out: Outcome, vars: &Vars<'_>) {
        match out {
            Outcome::Allowed(_) | Outcome::NoPermit => {}
            Outcome::Forbidden(ids) => {
                let approvable = ids.iter().all(|&s| engine.is_approvable(s));
                for slot in ids {
                    let r = Reason {
                        policy: engine.slot_name(slot).to_owned(),
                        message: engine.message(slot, vars),
                    };
                    let (list, set) = if approvable {
                        (&mut self.soft, &mut self.soft_ids)
                    } else {
                        (&mut self.hard, &mut self.hard_ids)
                    };
                    set.insert(r.policy.clone());
                    if !list.contains(&r) {
                        list.push(r);
                    }
                }
            }
            Outcome::Error(errs) => {
                for (id, msg) in errs {
                    self.hard(&id, format!("{msg}; failing closed"));
                }
            }
        }
    }

    fn finish(mut self, engine: &PolicyEngine) -> PolicyDecision {
        if !self.hard.is_empty() {
            dedup(&mut self.hard);
            return PolicyDecision {
                decision: Decision::Deny,
                reasons: self.hard,
                policies: self.hard_ids.into_iter().collect(),
                approvable: Vec::new(),
            };
        }
        if !self.soft.is_empty() {
            return PolicyDecision {
                decision: Decision::RequireApproval,
                reasons: self.soft,
                approvable: self.soft_ids.iter().cloned().collect(),
                policies: self.soft_ids.into_iter().collect(),
            };
        }
        let lifted: Vec<String> = self
            .lifts
            .iter()
            .map(|&s| engine.slot_name(s).to_owned())
            .collect();
        let mut reasons: Vec<Reason> = lifted
            .iter()
            .map(|id| Reason {
                policy: id.clone(),
                message: format!("`{id}` lifted by a human approval"),
            })
            .collect();
        reasons.extend(self.permit_reasons);
        dedup(&mut reasons);
        let mut policies: BTreeSet<String> = self
            .permits
            .iter()
            .map(|&s| engine.slot_name(s).to_owned())
            .collect();
        policies.extend(lifted);
        PolicyDecision {
            decision: Decision::Allow,
            reasons,
            policies: policies.into_iter().collect(),
            approvable: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Allowed(Ids),
    NoPermit,
    Forbidden(Ids),
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
            "via" => self.check.via(),
            "target" => self.check.target.clone().unwrap_or_else(|| rid.to_owned()),
            "risk" => self.facts.risk.to_string(),
            "session.label" => self.facts.session.confidentiality.to_string(),
            "content.label" => self.facts.content.confidentiality.to_string(),
            "content.categories" => categories(&self.facts.content),
            "session.categories" => categories(&self.facts.session),
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
            // The level, and the categories where the sink lists them.
            "resource.clearance" => {
                let (level, cats) = match self.check.action {
                    ActionKind::Send | ActionKind::Fetch => {
                        let d = inv.destinations.get(rid)?;
                        (d.clearance, d.categories.as_ref())
                    }
                    ActionKind::InvokeModel => {
                        let m = inv.models.get(rid)?;
                        (m.clearance, m.categories.as_ref())
                    }
                    _ => return None,
                };
                match cats {
                    None => level.to_string(),
                    Some(c) if c.is_empty() => format!("{level} data of no category"),
                    Some(c) => format!("{level} data of categories {}", Category::join(c)),
                }
            }
            "resource.label" => match self.check.action {
                ActionKind::Read | ActionKind::Write => inv.datasets.get(rid)?.label.to_string(),
                ActionKind::CallTool => inv.tools.get(rid)?.output_label.to_string(),
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// A principal or resource scope constraint, whichever it came from.
enum Scope<'a> {
    Any,
    Eq(&'a EntityUid),
    In(&'a EntityUid),
    Is(&'a EntityTypeName),
    IsIn(&'a EntityTypeName, &'a EntityUid),
}

trait AsScope {
    fn scope(&self) -> Scope<'_>;
}

impl AsScope for PrincipalConstraint {
    fn scope(&self) -> Scope<'_> {
        match self {
            PrincipalConstraint::Any => Scope::Any,
            PrincipalConstraint::Eq(e) => Scope::Eq(e),
            PrincipalConstraint::In(e) => Scope::In(e),
            PrincipalConstraint::Is(t) => Scope::Is(t),
            PrincipalConstraint::IsIn(t, e) => Scope::IsIn(t, e),
        }
    }
}

impl AsScope for ResourceConstraint {
    fn scope(&self) -> Scope<'_> {
        match self {
            ResourceConstraint::Any => Scope::Any,
            ResourceConstraint::Eq(e) => Scope::Eq(e),
            ResourceConstraint::In(e) => Scope::In(e),
            ResourceConstraint::Is(t) => Scope::Is(t),
            ResourceConstraint::IsIn(t, e) => Scope::IsIn(t, e),
        }
    }
}

/// Whether a scope constraint can match `uid`, whose ancestors are `ancestors`.
/// Exact: scopes depend only on the entity hierarchy, fixed per inventory.
fn scope_may_match(c: &impl AsScope, uid: &EntityUid, ancestors: &BTreeSet<EntityUid>) -> bool {
    match c.scope() {
        Scope::Any => true,
        Scope::Eq(e) => e == uid,
        Scope::In(e) => e == uid || ancestors.contains(e),
        Scope::Is(t) => t == uid.type_name(),
        Scope::IsIn(t, e) => t == uid.type_name() && (e == uid || ancestors.contains(e)),
    }
}

/// Whether a resource scope names no entity (unconstrained, or a type only).
fn scope_is_type_only(c: &ResourceConstraint) -> bool {
    matches!(c, ResourceConstraint::Any | ResourceConstraint::Is(_))
}

fn action_may_match(c: &ActionConstraint, action: &EntityUid) -> bool {
    // zt4ai's actions have no action groups, so `in` is membership of the list.
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => a == action,
        ActionConstraint::In(list) => list.contains(action),
    }
}

/// The variables a policy's conditions read (`principal`, `action`, `resource`,
/// `context`), from its JSON form; `None` if it cannot be converted.
fn condition_vars(p: &cedar_policy::Policy) -> Option<BTreeSet<String>> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        ("Var", Some(name)) => {
                            out.insert(name.to_owned());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let json = p.to_json().ok()?;
    let mut out = BTreeSet::new();
    walk(json.get("conditions")?, &mut out);
    Some(out)
}

/// Whether a policy's outcome is independent of principal, action and resource:
/// a forbid with an unconstrained scope whose conditions read only `context`.
fn is_request_level(p: &cedar_policy::Policy) -> bool {
    p.effect() == cedar_policy::Effect::Forbid
        && p.principal_constraint() == PrincipalConstraint::Any
        && p.action_constraint() == ActionConstraint::Any
        && p.resource_constraint() == ResourceConstraint::Any
        && condition_vars(p).is_some_and(|v| v.iter().all(|n| n == "context"))
}

/// Whether a policy's outcome is independent of the principal: an unconstrained
/// principal scope and no `principal` in its conditions.
fn is_principal_free(p: &cedar_policy::Policy) -> bool {
    p.principal_constraint() == PrincipalConstraint::Any
        && condition_vars(p).is_some_and(|v| !v.contains("principal"))
}

#[cfg(test)]
mod tests;

/// A label's categories for a reason: `pii, customer`, or `no categories`.
fn categories(label: &SessionLabel) -> String {
    if label.categories.is_empty() {
        "no categories".to_owned()
    } else {
        Category::join(&label.categories)
    }
}

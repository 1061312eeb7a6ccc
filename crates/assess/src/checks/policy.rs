//! Checks on the deployment's Cedar policies: least privilege in what they
//! permit, policies that can never apply, permits that a forbid always beats,
//! the baseline guards, and the annotations people read.
//!
//! The engine has already parsed and validated every policy against the schema
//! generated from the inventory, so what is left to find is what validates and is
//! still wrong. Scopes depend only on the entity hierarchy, which is fixed per
//! inventory, so "can never apply" and "always beaten" are computed exactly over
//! this inventory's principals, actions and resources. Conditions are read from
//! Cedar's JSON form and only their literal shapes are judged (`when { false }`,
//! `unless { true }`, a comparison with an entity that does not exist): anything
//! subtler counts as "may apply", so a finding here is never a guess.
//!
//! Evidence points at the policy: its file, the line and column where it starts
//! (its first annotation), and its `@id` as the field.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use cedar_policy::{
    ActionConstraint, Effect, EntityId, EntityTypeName, EntityUid, Policy, PolicySet,
    PrincipalConstraint, ResourceConstraint,
};
use serde_json::Value;
use zt4ai_policy::{BASELINE, BASELINE_NAME, PolicySource, RESERVED_PREFIX};

use super::{Check, Deployment, count};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "unconstrained-permits",
        about: "no custom permit allows every principal every action on every resource",
        run: unconstrained_permits,
    },
    Check {
        id: "permit-any-principal",
        about: "custom permits name who they are for",
        run: permit_any_principal,
    },
    Check {
        id: "never-applicable-policies",
        about: "no policy is dead under this inventory (a dead forbid is a silent hole)",
        run: never_applicable,
    },
    Check {
        id: "shadowed-permits",
        about: "no custom permit is always beaten by an unconditional forbid",
        run: shadowed_permits,
    },
    Check {
        id: "baseline-guards-intact",
        about: "every baseline guard is loaded as shipped, and no custom policy claims the reserved prefix",
        run: baseline_intact,
    },
    Check {
        id: "policy-reasons",
        about: "every custom policy says why it decides (`@reason`)",
        run: policy_reasons,
    },
    Check {
        id: "policy-ids-namespaced",
        about: "custom policy ids carry the organisation's namespace (`acme.…`)",
        run: ids_namespaced,
    },
];

/// One policy, where it is written.
struct Located {
    /// Its `@id` (the id verdicts and audit records use).
    id: String,
    /// Its file, as the deployment names it.
    file: String,
    /// 1-based line and column of its first character.
    line: usize,
    column: usize,
    /// Whether it is one of zt4ai's baseline guards.
    baseline: bool,
    policy: Policy,
}

impl Located {
    /// Evidence at this policy.
    fn at(&self, message: impl Into<String>) -> Evidence {
        Evidence {
            message: message.into(),
            file: Some(self.file.clone()),
            line: Some(self.line),
            column: Some(self.column),
            field: Some(self.id.clone()),
            problem: true,
        }
    }

    /// Supporting evidence at this policy (not itself a problem).
    fn note(&self, message: impl Into<String>) -> Evidence {
        Evidence {
            problem: false,
            ..self.at(message)
        }
    }

    fn is_permit(&self) -> bool {
        self.policy.effect() == Effect::Permit
    }
}

/// The policies of one file, in file order, with their positions.
fn locate(src: &PolicySource, baseline: bool) -> Result<Vec<Located>, String> {
    let set = PolicySet::from_str(&src.text)
        .map_err(|e| format!("`{}` does not parse as Cedar: {e}", src.name))?;
    // Cedar numbers a file's policies policy0, policy1, … in file order.
    let mut policies: Vec<&Policy> = set.policies().collect();
    policies.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut out = Vec::with_capacity(policies.len());
    let mut search_from = 0;
    for p in policies {
        // A parsed policy displays as its source text; find it after the last one.
        let text = p.to_string();
        let (line, column) = match src
            .text
            .get(search_from..)
            .and_then(|rest| rest.find(text.trim()))
        {
            Some(i) => {
                search_from += i;
                line_col(&src.text, search_from)
            }
            None => (1, 1),
        };
        out.push(Located {
            id: p
                .annotation("id")
                .map_or_else(|| p.id().to_string(), str::to_owned),
            file: src.name.clone(),
            line,
            column,
            baseline,
            policy: p.clone(),
        });
    }
    Ok(out)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, column)
}

/// The deployment's own policies.
fn custom(d: &Deployment) -> Result<Vec<Located>, Outcome> {
    let mut out = Vec::new();
    for src in &d.policies {
        out.extend(locate(src, false).map_err(unreadable)?);
    }
    Ok(out)
}

/// The baseline guards, then the deployment's own policies.
fn everything(d: &Deployment) -> Result<Vec<Located>, Outcome> {
    let mut out = locate(&baseline_source(), true).map_err(unreadable)?;
    out.extend(custom(d)?);
    Ok(out)
}

fn baseline_source() -> PolicySource {
    PolicySource {
        name: BASELINE_NAME.to_owned(),
        text: BASELINE.to_owned(),
    }
}

/// A policy file that loaded into the engine but does not parse here: it cannot
/// happen, and if it does nothing about the policies is known.
fn unreadable(message: String) -> Outcome {
    Outcome::failed(format!("the policies cannot be analysed: {message}"))
}

// --- Conditions --------------------------------------------------------------

/// What a policy's `when` and `unless` clauses amount to, as far as their literal
/// shape shows.
#[derive(Debug, Clone, Default)]
struct Conditions {
    /// Every clause is literally always satisfied (or there is none).
    trivial: bool,
    /// Some clause can never be satisfied; the message says which.
    never: Option<String>,
    /// Variables the clauses read (`principal`, `resource`, `context`, …).
    reads: BTreeSet<String>,
}

fn conditions(p: &Policy, entity_exists: &dyn Fn(&EntityUid) -> bool) -> Conditions {
    let Ok(json) = p.to_json() else {
        // Unreadable: it may do anything, so it is neither trivial nor dead.
        return Conditions::default();
    };
    let clauses = json
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Conditions {
        trivial: true,
        ..Conditions::default()
    };
    for clause in &clauses {
        let kind = clause.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(body) = clause.get("body") else {
            out.trivial = false;
            continue;
        };
        vars(body, &mut out.reads);
        let (always, never) = match kind {
            "when" => (always_true(body), never_true(body, entity_exists)),
            "unless" => (never_true(body, entity_exists), always_true(body)),
            _ => (None, None),
        };
        if always.is_none() {
            out.trivial = false;
        }
        if let Some(why) = never
            && out.never.is_none()
        {
            out.never = Some(format!("its `{kind}` clause {why}"));
        }
    }
    out
}

/// The variables an expression reads.
fn vars(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    ("Var", Some(name)) => {
                        out.insert(name.to_owned());
                    }
                    _ => vars(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| vars(v, out)),
        _ => {}
    }
}

/// The two operands of a binary operator node (`{"&&": {"left", "right"}}`).
fn operands<'a>(v: &'a Value, op: &str) -> Option<(&'a Value, &'a Value)> {
    let node = v.get(op)?;
    Some((node.get("left")?, node.get("right")?))
}

/// `Some(why)` if the expression is certainly `true`: the literal, or a
/// disjunction with a literally true side.
fn always_true(v: &Value) -> Option<String> {
    if v.get("Value") == Some(&Value::Bool(true)) {
        return Some("is the literal `true`".into());
    }
    let (l, r) = operands(v, "||")?;
    always_true(l).or_else(|| always_true(r))
}

/// `Some(why)` if the expression is certainly `false`: the literal, a
/// conjunction with a certainly false side, or `principal`/`resource` compared
/// (`==`, `in`) with an entity that does not exist.
fn never_true(v: &Value, entity_exists: &dyn Fn(&EntityUid) -> bool) -> Option<String> {
    if v.get("Value") == Some(&Value::Bool(false)) {
        return Some("is the literal `false`".into());
    }
    if let Some((l, r)) = operands(v, "&&") {
        return never_true(l, entity_exists).or_else(|| never_true(r, entity_exists));
    }
    for op in ["==", "in"] {
        let Some((l, r)) = operands(v, op) else {
            continue;
        };
        let var = |x: &Value| {
            x.get("Var")
                .and_then(Value::as_str)
                .is_some_and(|n| n == "principal" || n == "resource")
        };
        // `in` is directional: only `var in <missing entity>` is certainly false.
        let literal = if var(l) {
            Some(r)
        } else if op == "==" && var(r) {
            Some(l)
        } else {
            None
        };
        if let Some(uid) = literal.and_then(entity_literal)
            && !entity_exists(&uid)
        {
            return Some(format!(
                "compares with `{uid}`, which is not in the inventory"
            ));
        }
    }
    None
}

/// An entity literal (`{"Value": {"__entity": {"type", "id"}}}`).
fn entity_literal(v: &Value) -> Option<EntityUid> {
    let e = v.get("Value")?.get("__entity")?;
    let ty = EntityTypeName::from_str(e.get("type")?.as_str()?).ok()?;
    let id = EntityId::new(e.get("id")?.as_str()?);
    Some(EntityUid::from_type_name_and_id(ty, id))
}

// --- Scopes ------------------------------------------------------------------

/// A principal or resource scope, whichever it came from.
enum Scope {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(EntityTypeName),
    IsIn(EntityTypeName, EntityUid),
}

impl Scope {
    fn principal(p: &Policy) -> Scope {
        match p.principal_constraint() {
            PrincipalConstraint::Any => Scope::Any,
            PrincipalConstraint::Eq(e) => Scope::Eq(e),
            PrincipalConstraint::In(e) => Scope::In(e),
            PrincipalConstraint::Is(t) => Scope::Is(t),
            PrincipalConstraint::IsIn(t, e) => Scope::IsIn(t, e),
        }
    }

    fn resource(p: &Policy) -> Scope {
        match p.resource_constraint() {
            ResourceConstraint::Any => Scope::Any,
            ResourceConstraint::Eq(e) => Scope::Eq(e),
            ResourceConstraint::In(e) => Scope::In(e),
            ResourceConstraint::Is(t) => Scope::Is(t),
            ResourceConstraint::IsIn(t, e) => Scope::IsIn(t, e),
        }
    }

    /// The entity the scope names, if any.
    fn entity(&self) -> Option<&EntityUid> {
        match self {
            Scope::Eq(e) | Scope::In(e) | Scope::IsIn(_, e) => Some(e),
            Scope::Any | Scope::Is(_) => None,
        }
    }

    /// Whether the scope matches `e`. Exact: the hierarchy is the inventory's.
    fn matches(&self, e: &Node) -> bool {
        match self {
            Scope::Any => true,
            Scope::Eq(x) => *x == e.uid,
            Scope::In(x) => *x == e.uid || e.ancestors.contains(x),
            Scope::Is(t) => t == e.uid.type_name(),
            Scope::IsIn(t, x) => t == e.uid.type_name() && (*x == e.uid || e.ancestors.contains(x)),
        }
    }
}

/// Whether an action scope matches `action` (zt4ai's actions have no groups).
fn action_matches(c: &ActionConstraint, action: &EntityUid) -> bool {
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => a == action,
        ActionConstraint::In(list) => list.contains(action),
    }
}

/// An entity with its ancestors.
struct Node {
    uid: EntityUid,
    ancestors: BTreeSet<EntityUid>,
}

/// Everything a request can name under this inventory: its principals (users,
/// agents), its actions with the resource type each takes, its resources.
struct Universe {
    principals: Vec<Node>,
    actions: Vec<(EntityUid, String)>,
    resources: Vec<Node>,
}

impl Universe {
    fn of(d: &Deployment) -> Universe {
        let entities = d.engine.entities();
        let node = |uid: EntityUid| Node {
            ancestors: entities
                .ancestors(&uid)
                .map(|a| a.cloned().collect())
                .unwrap_or_default(),
            uid,
        };
        let mut principals = Vec::new();
        let mut resources = Vec::new();
        for e in entities.iter() {
            let uid = e.uid();
            match uid.type_name().to_string().as_str() {
                "User" | "Agent" => principals.push(node(uid)),
                "Tool" | "Dataset" | "Destination" | "Model" => resources.push(node(uid)),
                _ => {}
            }
        }
        let actions = zt4ai_policy::schema::ACTIONS
            .iter()
            .filter_map(|(name, ty)| {
                let t = EntityTypeName::from_str("Action").ok()?;
                let uid = EntityUid::from_type_name_and_id(t, EntityId::new(name));
                Some((uid, (*ty).to_owned()))
            })
            .collect();
        Universe {
            principals,
            actions,
            resources,
        }
    }

    /// The principals, actions and resources a policy's scope can match in a
    /// well-typed request, as index sets. Empty sets: it matches nothing.
    fn reach(&self, p: &Policy) -> Reach {
        let ps = Scope::principal(p);
        let rs = Scope::resource(p);
        let ac = p.action_constraint();
        let principals: BTreeSet<usize> = (0..self.principals.len())
            .filter(|&i| ps.matches(&self.principals[i]))
            .collect();
        let scoped_actions: Vec<usize> = (0..self.actions.len())
            .filter(|&i| action_matches(&ac, &self.actions[i].0))
            .collect();
        let scoped_resources: Vec<usize> = (0..self.resources.len())
            .filter(|&i| rs.matches(&self.resources[i]))
            .collect();
        // A request pairs an action only with a resource of the action's type.
        let type_of = |i: usize| self.resources[i].uid.type_name().to_string();
        let actions: BTreeSet<usize> = scoped_actions
            .iter()
            .copied()
            .filter(|&a| {
                scoped_resources
                    .iter()
                    .any(|&r| type_of(r) == self.actions[a].1)
            })
            .collect();
        let resources: BTreeSet<usize> = scoped_resources
            .iter()
            .copied()
            .filter(|&r| actions.iter().any(|&a| type_of(r) == self.actions[a].1))
            .collect();
        Reach {
            principals,
            actions,
            resources,
        }
    }
}

/// What a policy's scope reaches (see [`Universe::reach`]).
struct Reach {
    principals: BTreeSet<usize>,
    actions: BTreeSet<usize>,
    resources: BTreeSet<usize>,
}

impl Reach {
    fn is_empty(&self) -> bool {
        self.principals.is_empty() || self.actions.is_empty() || self.resources.is_empty()
    }

    /// Whether every request `self` can match, `wider` matches too. Scopes are
    /// products, so this is inclusion on each axis.
    fn within(&self, wider: &Reach) -> bool {
        self.principals.is_subset(&wider.principals)
            && self.actions.is_subset(&wider.actions)
            && self.resources.is_subset(&wider.resources)
    }
}

fn exists_in(d: &Deployment) -> impl Fn(&EntityUid) -> bool + '_ {
    |uid| d.engine.entities().get(uid).is_some()
}

fn list(ids: &[&str]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

// --- Checks ------------------------------------------------------------------

/// A custom `permit (principal, action, resource)` with no condition (or only
/// literally true ones): anything no forbid stops is allowed, to everyone.
fn unconstrained_permits(d: &Deployment) -> Outcome {
    let policies = match custom(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let exists = exists_in(d);
    let mut problems = Vec::new();
    for p in policies.iter().filter(|p| p.is_permit()) {
        let unscoped = p.policy.principal_constraint() == PrincipalConstraint::Any
            && p.policy.action_constraint() == ActionConstraint::Any
            && p.policy.resource_constraint() == ResourceConstraint::Any;
        if unscoped && conditions(&p.policy, &exists).trivial {
            problems.push(p.at(format!(
                "`{}` permits every principal every action on every resource, unconditionally: \
                 the grants no longer limit anything, only forbids do",
                p.id
            )));
        }
    }
    let permits = policies.iter().filter(|p| p.is_permit()).count();
    if problems.is_empty() {
        Outcome::passed(match permits {
            0 => "there are no custom permits".to_owned(),
            n => format!("no custom permit is unconstrained ({n} checked)"),
        })
    } else {
        Outcome::failed(format!(
            "{} anything that no forbid stops, overriding least privilege",
            count(
                problems.len(),
                "custom permit allows",
                "custom permits allow"
            )
        ))
        .with(problems)
    }
}

/// A custom permit whose principal scope is `principal` or `principal is T`
/// (every user, or every agent, is not a "who"): failed when no condition
/// reads `principal` (so nothing narrows who it is for), investigate when one
/// does (the condition may be the narrowing: a person must read it).
fn permit_any_principal(d: &Deployment) -> Outcome {
    let policies = match custom(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let exists = exists_in(d);
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    for p in policies.iter().filter(|p| p.is_permit()) {
        let any = match p.policy.principal_constraint() {
            PrincipalConstraint::Any => Some("any principal".to_owned()),
            PrincipalConstraint::Is(t) => Some(format!("any `{t}`")),
            _ => None,
        };
        let Some(any) = any else {
            continue;
        };
        let c = conditions(&p.policy, &exists);
        if c.reads.contains("principal") {
            soft.push(p.at(format!(
                "`{}` is for {any}; only its conditions narrow who, so check that they do",
                p.id
            )));
        } else {
            hard.push(p.at(format!(
                "`{}` is for {any}, and nothing in it narrows who: name the principals \
                 (`principal == …`, `principal in Group::\"…\"`)",
                p.id
            )));
        }
    }
    let n = hard.len() + soft.len();
    if !hard.is_empty() {
        Outcome::failed(format!(
            "{} to any principal, {} with nothing narrowing who",
            count(n, "custom permit applies", "custom permits apply"),
            hard.len()
        ))
        .with(hard)
        .with(soft)
    } else if !soft.is_empty() {
        Outcome::investigate(format!(
            "{} to any principal and narrow who only in conditions",
            count(n, "custom permit applies", "custom permits apply")
        ))
        .with(soft)
    } else {
        Outcome::passed("every custom permit names who it is for")
    }
}

/// Policies (baseline and custom) that can never apply under this inventory:
/// the scope names an entity the inventory does not have, or a condition is
/// literally never satisfied.
fn never_applicable(d: &Deployment) -> Outcome {
    let policies = match everything(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let exists = exists_in(d);
    let mut problems = Vec::new();
    let mut forbids = 0;
    for p in &policies {
        let mut why = None;
        for (what, scope) in [
            ("principal", Scope::principal(&p.policy)),
            ("resource", Scope::resource(&p.policy)),
        ] {
            if let Some(e) = scope.entity()
                && !exists(e)
            {
                why = Some(format!(
                    "its {what} scope names `{e}`, which is not in the inventory"
                ));
                break;
            }
        }
        if why.is_none() {
            why = conditions(&p.policy, &exists).never;
        }
        let Some(why) = why else {
            continue;
        };
        let whose = if p.baseline {
            "baseline guard"
        } else {
            "policy"
        };
        let message = if p.is_permit() {
            format!("{whose} `{}` can never apply: {why}", p.id)
        } else {
            forbids += 1;
            format!(
                "{whose} `{}` can never apply: {why}; it forbids nothing, a silent hole \
                 where it looks like a guard",
                p.id
            )
        };
        problems.push(p.at(message));
    }
    if problems.is_empty() {
        Outcome::passed(format!(
            "all {} policies (baseline and custom) can apply under this inventory",
            policies.len()
        ))
    } else if forbids > 0 {
        Outcome::failed(format!(
            "{} never apply under this inventory, {} that stop nothing",
            count(problems.len(), "policy can", "policies can"),
            count(forbids, "a forbid", "forbids")
        ))
        .with(problems)
    } else {
        Outcome::failed(format!(
            "{} never apply under this inventory",
            count(problems.len(), "permit can", "permits can")
        ))
        .with(problems)
    }
}

/// A custom permit every request of which an unconditional, non-approvable
/// forbid also matches: it can never allow anything.
fn shadowed_permits(d: &Deployment) -> Outcome {
    let policies = match everything(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let exists = exists_in(d);
    let universe = Universe::of(d);
    let forbids: Vec<(&Located, Reach)> = policies
        .iter()
        .filter(|p| {
            !p.is_permit()
                && p.policy.annotation("approval").is_none()
                && conditions(&p.policy, &exists).trivial
        })
        .map(|p| (p, universe.reach(&p.policy)))
        .collect();
    let mut problems = Vec::new();
    for p in policies.iter().filter(|p| !p.baseline && p.is_permit()) {
        let reach = universe.reach(&p.policy);
        if reach.is_empty() {
            // Dead already; never-applicable-policies says so when it is certain.
            continue;
        }
        if let Some((f, _)) = forbids.iter().find(|(_, fr)| reach.within(fr)) {
            problems.push(p.at(format!(
                "`{}` can never allow anything: the unconditional forbid `{}` ({}:{}) matches \
                 every request it matches, and a forbid always wins",
                p.id, f.id, f.file, f.line
            )));
            problems.push(f.note(format!("`{}` shadows `{}`", f.id, p.id)));
        }
    }
    if problems.is_empty() {
        Outcome::passed("no custom permit is always beaten by an unconditional forbid")
    } else {
        let n = problems.iter().filter(|e| e.problem).count();
        Outcome::investigate(format!(
            "{} always beaten by an unconditional forbid: dead, or a forbid wider than meant",
            count(n, "custom permit is", "custom permits are")
        ))
        .with(problems)
    }
}

/// Every guard of [`BASELINE`] is in the engine, as shipped; no custom policy
/// uses the reserved prefix (the loader refuses it, so this should hold).
fn baseline_intact(d: &Deployment) -> Outcome {
    let baseline = match locate(&baseline_source(), true) {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    let set = d.engine.policy_set();
    let mut problems = Vec::new();
    for g in &baseline {
        match set.policy(&cedar_policy::PolicyId::new(&g.id)) {
            None => problems.push(g.at(format!(
                "baseline guard `{}` is not in the engine's policy set",
                g.id
            ))),
            Some(loaded) => {
                let same = matches!(
                    (loaded.to_json(), g.policy.to_json()),
                    (Ok(a), Ok(b)) if a == b
                );
                if !same {
                    problems.push(g.at(format!(
                        "baseline guard `{}` is loaded, but not as shipped",
                        g.id
                    )));
                }
            }
        }
    }
    let custom = match custom(d) {
        Ok(c) => c,
        Err(o) => return o,
    };
    for p in custom.iter().filter(|p| p.id.starts_with(RESERVED_PREFIX)) {
        problems.push(p.at(format!(
            "custom policy `{}` uses the prefix `{RESERVED_PREFIX}`, reserved for zt4ai's baseline guards",
            p.id
        )));
    }
    if problems.is_empty() {
        Outcome::passed(format!(
            "all {} baseline guards are loaded as shipped",
            baseline.len()
        ))
        .with(vec![Evidence {
            file: Some(BASELINE_NAME.to_owned()),
            ..Evidence::note(format!(
                "{} baseline guards; no custom policy uses the reserved prefix `{RESERVED_PREFIX}` \
                 (the loader refuses one that does)",
                baseline.len()
            ))
        }])
    } else {
        Outcome::failed(format!(
            "{} with the baseline guards",
            count(problems.len(), "problem", "problems")
        ))
        .with(problems)
    }
}

/// Every custom policy carries a non-empty `@reason`: it is what a person reads
/// when the policy decides (without one, the verdict says only "decided by `id`").
fn policy_reasons(d: &Deployment) -> Outcome {
    let policies = match custom(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let problems: Vec<Evidence> = policies
        .iter()
        .filter(|p| {
            p.policy
                .annotation("reason")
                .is_none_or(|r| r.trim().is_empty())
        })
        .map(|p| {
            p.at(format!(
                "`{}` has no `@reason(\"…\")`: whoever it stops is told only its id",
                p.id
            ))
        })
        .collect();
    if policies.is_empty() {
        Outcome::passed("there are no custom policies")
    } else if problems.is_empty() {
        Outcome::passed(format!(
            "every custom policy says why it decides ({} checked)",
            policies.len()
        ))
    } else {
        Outcome::failed(format!(
            "{} of {} custom policies have no `@reason`",
            problems.len(),
            policies.len()
        ))
        .with(problems)
    }
}

/// Custom policy ids look like `org.name`: a `.`, with a first segment that is
/// not empty and not `zt4ai`. Verdicts and audit records carry the id; a
/// namespace says whose policy decided.
fn ids_namespaced(d: &Deployment) -> Outcome {
    let policies = match custom(d) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let mut namespaces: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in &policies {
        match p.id.split_once('.') {
            Some((ns, rest)) if !ns.is_empty() && !rest.is_empty() && ns != "zt4ai" => {
                *namespaces.entry(ns).or_default() += 1;
            }
            _ => problems.push(p.at(format!(
                "`{}` has no namespace: call it `<organisation>.{}`",
                p.id,
                p.id.trim_start_matches("zt4ai.").trim_matches('.')
            ))),
        }
    }
    if policies.is_empty() {
        Outcome::passed("there are no custom policies")
    } else if problems.is_empty() {
        let ns: Vec<&str> = namespaces.keys().copied().collect();
        let mut o = Outcome::passed(format!(
            "every custom policy id is namespaced ({} checked)",
            policies.len()
        ));
        if !ns.is_empty() {
            o = o.with(vec![Evidence::note(format!("namespaces: {}", list(&ns)))]);
        }
        o
    } else {
        Outcome::investigate(format!(
            "{} no namespace",
            count(
                problems.len(),
                "custom policy id carries",
                "custom policy ids carry"
            )
        ))
        .with(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use crate::checks::Options;

    const INVENTORY: &str = "\
organisation: Test
groups:
  - id: staff
    grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }
users:
  - id: alice
    groups: [staff]
    clearance: confidential
  - id: bob
    groups: [staff]
agents:
  - id: a1
    owner: alice
    purpose: Summarises customer accounts for account managers
    clearance: confidential
    grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }
tools:
  - server: crm
    name: query
    description: Run a read-only CRM query
    annotations: { read_only: true }
    output: { label: confidential, categories: [pii] }
    bindings: [{ argument: table, resource: dataset }]
datasets:
  - { id: customers, label: confidential, categories: [pii] }
destinations:
  - { id: mail, mail_domains: [test.example], clearance: confidential, external: false }
  - { id: internet, default: true, clearance: public, external: true }
";

    fn load(policies: &str) -> Deployment {
        let sources = if policies.is_empty() {
            Vec::new()
        } else {
            vec![PolicySource {
                name: "custom.cedar".into(),
                text: policies.into(),
            }]
        };
        Deployment::load(
            INVENTORY,
            "inventory.yaml",
            sources,
            Options {
                dormant_days: 30,
                now: 1_800_000_000,
            },
        )
        .unwrap()
    }

    fn run(id: &str, policies: &str) -> Outcome {
        let check = CHECKS.iter().find(|c| c.id == id).unwrap();
        (check.run)(&load(policies))
    }

    fn problems(o: &Outcome) -> Vec<&Evidence> {
        o.evidence.iter().filter(|e| e.problem).collect()
    }

    const GOOD: &str = r#"
@id("test.staff_read")
@reason("staff may read customers")
permit (principal in Group::"staff", action == Action::"read", resource == Dataset::"customers");

@id("test.no_internet_for_a1")
@reason("a1 never sends to the internet")
forbid (principal == Agent::"a1", action == Action::"send", resource == Destination::"internet");
"#;

    #[test]
    fn well_written_policies_pass_every_check() {
        for c in CHECKS {
            let o = (c.run)(&load(GOOD));
            assert_eq!(o.status, Status::Passed, "{}: {o:?}", c.id);
            assert!(problems(&o).is_empty(), "{}: {o:?}", c.id);
        }
    }

    #[test]
    fn baseline_alone_passes_every_check() {
        for c in CHECKS {
            let o = (c.run)(&load(""));
            assert_eq!(o.status, Status::Passed, "{}: {o:?}", c.id);
        }
    }

    #[test]
    fn unconstrained_permit_fails_at_its_line_and_id() {
        let text =
            "\n\n  @id(\"test.all\")\n@reason(\"x\")\npermit (principal, action, resource);\n";
        let o = run("unconstrained-permits", text);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        let e = problems(&o)[0];
        assert_eq!(e.file.as_deref(), Some("custom.cedar"));
        assert_eq!((e.line, e.column), (Some(3), Some(3)));
        assert_eq!(e.field.as_deref(), Some("test.all"));
        // `when { true }` is no condition at all.
        let o = run(
            "unconstrained-permits",
            "@id(\"test.all\") permit (principal, action, resource) when { true };",
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
    }

    #[test]
    fn a_condition_keeps_a_permit_from_being_unconstrained() {
        let o = run(
            "unconstrained-permits",
            "@id(\"test.low\") permit (principal, action, resource) when { context.risk_level == \"low\" };",
        );
        assert_eq!(o.status, Status::Passed, "{o:?}");
    }

    #[test]
    fn permit_for_any_principal_fails_unless_a_condition_reads_the_principal() {
        let o = run(
            "permit-any-principal",
            r#"@id("test.anyone") permit (principal, action == Action::"read", resource == Dataset::"customers");"#,
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert_eq!(problems(&o)[0].field.as_deref(), Some("test.anyone"));
        // `principal is Agent` is every agent: no narrower.
        let o = run(
            "permit-any-principal",
            r#"@id("test.agents") permit (principal is Agent, action == Action::"read", resource) when { context.risk_level == "low" };"#,
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
        let o = run(
            "permit-any-principal",
            r#"@id("test.cleared") permit (principal is Agent, action == Action::"read", resource) when { principal.clearance >= 2 };"#,
        );
        assert_eq!(o.status, Status::Investigate, "{o:?}");
    }

    #[test]
    fn forbid_naming_a_missing_user_is_a_silent_hole() {
        let o = run(
            "never-applicable-policies",
            r#"@id("test.no_carol") forbid (principal == User::"carol", action, resource);"#,
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
        let e = problems(&o)[0];
        assert!(e.message.contains("User::\"carol\""), "{}", e.message);
        assert!(e.message.contains("silent hole"), "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("test.no_carol"));
    }

    #[test]
    fn literal_conditions_and_missing_entities_in_conditions_are_never_applicable() {
        for text in [
            r#"@id("test.off") permit (principal in Group::"staff", action, resource) when { false };"#,
            r#"@id("test.off") forbid (principal, action, resource) unless { true };"#,
            r#"@id("test.off") forbid (principal, action, resource) when { context.injection && principal == User::"carol" };"#,
            r#"@id("test.off") forbid (principal, action, resource is Dataset) when { resource in Dataset::"gone" };"#,
        ] {
            let o = run("never-applicable-policies", text);
            assert_eq!(o.status, Status::Failed, "{text}: {o:?}");
            assert_eq!(problems(&o).len(), 1, "{text}: {o:?}");
        }
        // Disjunctions and existing entities may apply.
        for text in [
            r#"@id("test.on") forbid (principal, action, resource) when { context.injection || false };"#,
            r#"@id("test.on") forbid (principal, action, resource) when { principal == User::"bob" };"#,
        ] {
            let o = run("never-applicable-policies", text);
            assert_eq!(o.status, Status::Passed, "{text}: {o:?}");
        }
    }

    #[test]
    fn permit_under_an_unconditional_forbid_is_shadowed() {
        let text = r#"
@id("test.no_send") @reason("nobody sends") forbid (principal, action == Action::"send", resource);
@id("test.alice_mail") @reason("alice mails") permit (principal == User::"alice", action == Action::"send", resource == Destination::"mail");
"#;
        let o = run("shadowed-permits", text);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        let p = problems(&o);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field.as_deref(), Some("test.alice_mail"));
        assert!(p[0].message.contains("test.no_send"), "{}", p[0].message);
        // The group covers its members too.
        let text = r#"
@id("test.staff_no_read") forbid (principal in Group::"staff", action in [Action::"read", Action::"write"], resource);
@id("test.bob_reads") permit (principal == User::"bob", action == Action::"read", resource is Dataset);
"#;
        assert_eq!(run("shadowed-permits", text).status, Status::Investigate);
    }

    #[test]
    fn conditional_approvable_or_narrower_forbids_do_not_shadow() {
        for forbid in [
            r#"@id("test.f") forbid (principal, action == Action::"send", resource) when { context.injection };"#,
            r#"@id("test.f") @approval("human") forbid (principal, action == Action::"send", resource);"#,
            r#"@id("test.f") forbid (principal == User::"bob", action == Action::"send", resource);"#,
            r#"@id("test.f") forbid (principal, action == Action::"send", resource == Destination::"internet");"#,
        ] {
            let text = format!(
                "{forbid}\n@id(\"test.p\") permit (principal in Group::\"staff\", action == Action::\"send\", resource);"
            );
            let o = run("shadowed-permits", &text);
            assert_eq!(o.status, Status::Passed, "{forbid}: {o:?}");
        }
    }

    #[test]
    fn baseline_guards_are_counted() {
        let o = run("baseline-guards-intact", GOOD);
        assert_eq!(o.status, Status::Passed);
        let n = locate(&baseline_source(), true).unwrap().len();
        assert!(n >= 10);
        assert!(o.summary.contains(&n.to_string()), "{}", o.summary);
        assert!(!o.evidence.is_empty() && !o.evidence[0].problem);
    }

    #[test]
    fn policies_without_reasons_fail() {
        let text = r#"
@id("test.a") @reason("fine") permit (principal == User::"alice", action, resource);
@id("test.b") permit (principal == User::"bob", action, resource);
@id("test.c") @reason("  ") forbid (principal == User::"bob", action, resource);
"#;
        let o = run("policy-reasons", text);
        assert_eq!(o.status, Status::Failed);
        let ids: Vec<_> = problems(&o)
            .iter()
            .map(|e| e.field.clone().unwrap())
            .collect();
        assert_eq!(ids, ["test.b", "test.c"]);
        assert_eq!(problems(&o)[0].line, Some(3));
    }

    #[test]
    fn ids_without_a_namespace_are_investigated() {
        let text = r#"
@id("acme.fine") permit (principal == User::"alice", action, resource);
@id("loose") permit (principal == User::"bob", action, resource);
@id(".dot") permit (principal == User::"bob", action, resource);
"#;
        let o = run("policy-ids-namespaced", text);
        assert_eq!(o.status, Status::Investigate);
        let ids: Vec<_> = problems(&o)
            .iter()
            .map(|e| e.field.clone().unwrap())
            .collect();
        assert_eq!(ids, ["loose", ".dot"]);
    }
}

//! Deriving the threat model from the inventory and policies.
//!
//! Every element, flow and threat comes from the same inventory the gateway
//! enforces, so the model stays true as the deployment changes. A threat's status
//! is decided by what the configuration actually has: a baseline guard that
//! deterministically stops it (listed by id), a control of the catalogue that
//! reduces it, or nothing. Where detection is probabilistic (prompt injection),
//! the threat is at best partly mitigated, and says so.

use std::collections::{BTreeMap, BTreeSet};

use zt4ai_core::inventory::{Agent, BindingKind, Tool};
use zt4ai_core::{Category, Label, inventory::AgentState};

use super::model::{
    Boundary, Element, ElementKind, Flow, FlowKind, Mitigation, Threat, ThreatClass, ThreatModel,
};
use crate::catalogue::Catalogue;
use crate::checks::Deployment;
use crate::model::Assessment;

const ORG: &str = "organisation";
const EXTERNAL: &str = "external";
const HUMANS: &str = "humans";
const AGENTS: &str = "agents";
const UNTRUSTED: &str = "untrusted";
const GATEWAY: &str = "gateway:zt4ai";

/// Injection thresholds above this count as loosened (as the assessment's check).
const INJECTION_THRESHOLD_MAX: f32 = 0.9;

/// References per class: OWASP LLM 2025, OWASP agentic, MITRE ATLAS.
fn references(
    class: ThreatClass,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    match class {
        ThreatClass::Spoofing => (&[], &["T9"], &[]),
        ThreatClass::Tampering => (&[], &["T8"], &[]),
        ThreatClass::Repudiation => (&[], &["T8"], &[]),
        ThreatClass::InformationDisclosure => (&["LLM02:2025"], &["T3"], &["AML.T0085.001"]),
        ThreatClass::DenialOfService => (&["LLM10:2025"], &["T4"], &["AML.T0029"]),
        ThreatClass::ElevationOfPrivilege => (&["LLM06:2025"], &["T3"], &[]),
        ThreatClass::DirectPromptInjection => {
            (&["LLM01:2025"], &["T6"], &["AML.T0051.000", "AML.T0054"])
        }
        ThreatClass::IndirectPromptInjection => (
            &["LLM01:2025"],
            &["T6", "T2"],
            &["AML.T0051.001", "AML.T0080"],
        ),
        ThreatClass::SensitiveInformationDisclosure => {
            (&["LLM02:2025"], &["T2"], &["AML.T0086", "AML.T0057"])
        }
        ThreatClass::ExcessiveAgency => {
            (&["LLM06:2025"], &["T2", "T3"], &["AML.T0053", "AML.T0101"])
        }
        ThreatClass::DataModelPoisoning => (&["LLM04:2025"], &["T1"], &["AML.T0059", "AML.T0070"]),
        ThreatClass::SupplyChain => (&["LLM03:2025"], &["T2"], &["AML.T0010.005", "AML.T0110"]),
        ThreatClass::ImproperOutputHandling => (&["LLM05:2025"], &["T2", "T11"], &["AML.T0053"]),
        ThreatClass::SystemPromptLeakage => (&["LLM07:2025"], &[], &["AML.T0056"]),
        ThreatClass::UnboundedConsumption => (&["LLM10:2025"], &["T4"], &["AML.T0034"]),
        ThreatClass::AgentIdentitySpoofing => (&[], &["T9"], &[]),
        ThreatClass::LateralMovement => (&["LLM06:2025"], &["T3", "T13"], &[]),
    }
}

fn class_id(class: ThreatClass) -> String {
    serde_json::to_value(class)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Builder state.
struct Builder<'a> {
    d: &'a Deployment,
    /// Check id → control id, to name controls in mitigations.
    controls: BTreeMap<String, String>,
    threats: Vec<Threat>,
}

impl Builder<'_> {
    fn control(&self, check: &str) -> String {
        self.controls
            .get(check)
            .cloned()
            .unwrap_or_else(|| check.to_owned())
    }

    fn threat(
        &mut self,
        class: ThreatClass,
        target: &str,
        scenario: String,
        mitigations: Vec<String>,
        gaps: Vec<String>,
        status: Mitigation,
    ) {
        let (llm, agentic, atlas) = references(class);
        let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        self.threats.push(Threat {
            id: format!("{}:{target}", class_id(class)),
            class,
            target: target.to_owned(),
            scenario,
            owasp_llm: own(llm),
            owasp_agentic: own(agentic),
            mitre_atlas: own(atlas),
            status,
            mitigations,
            gaps,
        });
    }

    fn guard(&self, id: &str) -> bool {
        self.d.engine.policy_ids().iter().any(|p| p == id)
    }
}

/// Status from gaps: none → mitigated, else partly, or unmitigated when `hard`.
fn status(gaps: &[String], hard: bool) -> Mitigation {
    if gaps.is_empty() {
        Mitigation::Mitigated
    } else if hard {
        Mitigation::Unmitigated
    } else {
        Mitigation::PartlyMitigated
    }
}

fn agent_id(a: &str) -> String {
    format!("agent:{a}")
}
fn tool_id(t: &str) -> String {
    format!("tool:{t}")
}

/// The most sensitive data an agent can hold: its readable datasets and tool
/// outputs, capped by its clearance; with the source's name.
fn reachable(d: &Deployment, a: &Agent) -> Option<(Label, String)> {
    let inv = &d.inventory;
    let mut best: Option<(Label, String)> = None;
    let mut consider = |label: Label, name: String| {
        let label = label.min(a.clearance);
        if best.as_ref().is_none_or(|(l, _)| label > *l) {
            best = Some((label, name));
        }
    };
    for ds in &a.grants.datasets {
        if let Some(set) = inv.datasets.get(ds) {
            consider(set.label, format!("`{ds}`"));
        }
    }
    for t in inv.tools.values().filter(|t| a.grants.allows_tool(t)) {
        consider(t.output_label, format!("the output of `{}`", t.id));
    }
    best
}

/// Every label of data an agent can hold (capped by its clearance), each with
/// one source that carries it.
fn holdings(d: &Deployment, a: &Agent) -> BTreeMap<Label, Held> {
    let inv = &d.inventory;
    let mut out: BTreeMap<Label, Held> = BTreeMap::new();
    for ds in &a.grants.datasets {
        if let Some(set) = inv.datasets.get(ds) {
            hold(
                &mut out,
                set.label.min(a.clearance),
                &set.categories,
                || format!("`{ds}`"),
            );
        }
    }
    for t in inv.tools.values().filter(|t| a.grants.allows_tool(t)) {
        hold(
            &mut out,
            t.output_label.min(a.clearance),
            &t.output_categories,
            || format!("the output of `{}`", t.id),
        );
    }
    out
}

/// Data of one level an agent may hold: the first source found, and the
/// categories every source of that level carries (their intersection), so
/// that a sink refusing one of them refuses all of that level's data.
#[derive(Debug, Clone)]
struct Held {
    src: String,
    categories: BTreeSet<Category>,
}

/// Adds a source of `label` data with `categories` to `out`.
fn hold(
    out: &mut BTreeMap<Label, Held>,
    label: Label,
    categories: &BTreeSet<Category>,
    src: impl FnOnce() -> String,
) {
    match out.get_mut(&label) {
        Some(h) => h.categories.retain(|c| categories.contains(c)),
        None => {
            out.insert(
                label,
                Held {
                    src: src(),
                    categories: categories.clone(),
                },
            );
        }
    }
}

/// Whether a sink cleared for `clearance` (and, if it lists them, only
/// `cleared` categories) refuses held data of `label`.
fn refuses(
    clearance: Label,
    cleared: Option<&BTreeSet<Category>>,
    label: Label,
    held: &Held,
) -> bool {
    clearance < label || cleared.is_some_and(|k| !held.categories.is_subset(k))
}

fn granted_tools<'a>(d: &'a Deployment, a: &'a Agent) -> impl Iterator<Item = &'a Tool> + 'a {
    d.inventory
        .tools
        .values()
        .filter(move |t| a.grants.allows_tool(t))
}

/// Derives the threat model of `d`. `catalogue` names the controls that decide
/// each threat.
pub fn derive(d: &Deployment, catalogue: &Catalogue) -> ThreatModel {
    let inv = &d.inventory;
    let controls = catalogue
        .controls
        .iter()
        .filter_map(|c| match &c.assessment {
            Assessment::Automated { check } => Some((check.clone(), c.id.clone())),
            Assessment::Manual { .. } => None,
        })
        .collect();
    let mut b = Builder {
        d,
        controls,
        threats: Vec::new(),
    };

    // Boundaries.
    let org_title = match &inv.organisation {
        Some(o) => format!("Organisation: {o}"),
        None => "Organisation".to_owned(),
    };
    let mut boundaries = vec![
        Boundary {
            id: ORG.into(),
            title: org_title,
            parent: None,
        },
        Boundary {
            id: HUMANS.into(),
            title: "Humans".into(),
            parent: Some(ORG.into()),
        },
        Boundary {
            id: AGENTS.into(),
            title: "Agents".into(),
            parent: Some(ORG.into()),
        },
        Boundary {
            id: EXTERNAL.into(),
            title: "Outside the organisation".into(),
            parent: None,
        },
        Boundary {
            id: UNTRUSTED.into(),
            title: "Untrusted content sources".into(),
            parent: Some(EXTERNAL.into()),
        },
    ];
    for s in &inv.servers {
        boundaries.push(Boundary {
            id: format!("mcp:{s}"),
            title: format!("MCP server {s}"),
            parent: Some(ORG.into()),
        });
    }

    // Elements.
    let mut elements = Vec::new();
    for u in inv.users.values() {
        elements.push(Element {
            id: format!("user:{}", u.id),
            kind: ElementKind::User,
            name: u.id.to_string(),
            boundary: HUMANS.into(),
            label: Some(u.clearance),
            note: u.name.clone().unwrap_or_default(),
        });
    }
    for (id, a) in &inv.agents {
        elements.push(Element {
            id: agent_id(id.as_str()),
            kind: ElementKind::Agent,
            name: id.to_string(),
            boundary: AGENTS.into(),
            label: Some(a.clearance),
            note: if a.state == AgentState::Active {
                a.purpose.clone()
            } else {
                format!("{} ({})", a.purpose, a.state.as_str())
            },
        });
    }
    elements.push(Element {
        id: GATEWAY.into(),
        kind: ElementKind::Gateway,
        name: "zt4ai".into(),
        boundary: ORG.into(),
        label: None,
        note: "decides every tool call, read, send and model call".into(),
    });
    // A server is an element where an agent is granted all of it.
    let whole: BTreeSet<&String> = inv
        .agents
        .values()
        .flat_map(|a| a.grants.servers.iter())
        .collect();
    for s in whole {
        elements.push(Element {
            id: format!("server:{s}"),
            kind: ElementKind::Server,
            name: s.clone(),
            boundary: format!("mcp:{s}"),
            label: None,
            note: "granted whole: every tool on it, including tools added later".into(),
        });
    }
    for t in inv.tools.values() {
        elements.push(Element {
            id: tool_id(&t.id),
            kind: ElementKind::Tool,
            name: t.id.clone(),
            boundary: format!("mcp:{}", t.server),
            label: Some(t.output_label),
            note: t.description.clone().unwrap_or_default(),
        });
    }
    for ds in inv.datasets.values() {
        elements.push(Element {
            id: format!("dataset:{}", ds.id),
            kind: ElementKind::Dataset,
            name: ds.id.clone(),
            boundary: if ds.trusted { ORG } else { UNTRUSTED }.into(),
            label: Some(ds.label),
            note: ds
                .categories
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for m in inv.models.values() {
        elements.push(Element {
            id: format!("model:{}", m.id),
            kind: ElementKind::Model,
            name: m.id.clone(),
            boundary: if m.external { EXTERNAL } else { ORG }.into(),
            label: Some(m.clearance),
            note: m.provider.clone(),
        });
    }
    for x in inv.destinations.values() {
        elements.push(Element {
            id: format!("destination:{}", x.id),
            kind: ElementKind::Destination,
            name: x.id.clone(),
            boundary: if x.external { EXTERNAL } else { ORG }.into(),
            label: Some(x.clearance),
            note: x
                .mail_domains
                .iter()
                .chain(&x.hosts)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    // Flows (deduplicated by id; the label is the highest seen).
    let mut flows: BTreeMap<String, Flow> = BTreeMap::new();
    let mut add = |from: String,
                   to: String,
                   kind: FlowKind,
                   label: Option<Label>,
                   untrusted: bool,
                   crosses: Vec<String>| {
        let id = format!("{from}->{to}");
        let f = flows.entry(id.clone()).or_insert(Flow {
            id,
            from,
            to,
            kind,
            label: None,
            untrusted,
            crosses,
            blocked_by: None,
        });
        f.label = f.label.max(label);
    };
    // For sends and model calls: every label of data that can travel, with a source.
    let mut carried: BTreeMap<String, BTreeMap<Label, Held>> = BTreeMap::new();
    for (id, a) in &inv.agents {
        // A suspended or retired agent can do nothing (`zt4ai.lifecycle.inactive`):
        // it is an element, with no flows until it is resumed.
        if a.state != AgentState::Active {
            continue;
        }
        let held = reachable(d, a).map(|(l, _)| l);
        let holds = holdings(d, a);
        if let Some(owner) = inv.users.get(&a.owner) {
            add(
                format!("user:{}", owner.id),
                agent_id(id.as_str()),
                FlowKind::ActsFor,
                Some(owner.clearance.min(a.clearance)),
                false,
                vec![AGENTS.into()],
            );
        }
        for sub in &a.delegates_to {
            add(
                agent_id(id.as_str()),
                agent_id(sub.as_str()),
                FlowKind::Delegates,
                held,
                false,
                Vec::new(),
            );
        }
        // Calls: one flow to a server granted whole (`crm.*`), one per tool
        // granted on its own; a wildcard grant would otherwise draw thousands.
        for s in &a.grants.servers {
            add(
                agent_id(id.as_str()),
                format!("server:{s}"),
                FlowKind::Calls,
                held,
                false,
                vec![format!("mcp:{s}")],
            );
        }
        for t in granted_tools(d, a) {
            if !a.grants.servers.contains(&t.server) {
                add(
                    agent_id(id.as_str()),
                    tool_id(&t.id),
                    FlowKind::Calls,
                    held,
                    false,
                    vec![format!("mcp:{}", t.server)],
                );
            }
            if !t.output_trusted {
                add(
                    tool_id(&t.id),
                    agent_id(id.as_str()),
                    FlowKind::Returns,
                    Some(t.output_label),
                    true,
                    vec![UNTRUSTED.into(), format!("mcp:{}", t.server)],
                );
            }
            for bnd in &t.bindings {
                match bnd.kind {
                    BindingKind::Dataset => {
                        let writes = bnd.access == zt4ai_core::inventory::Access::Write;
                        let sets = if writes {
                            &a.grants.writable_datasets
                        } else {
                            &a.grants.datasets
                        };
                        for ds in sets {
                            let Some(set) = inv.datasets.get(ds) else {
                                continue;
                            };
                            let de = format!("dataset:{ds}");
                            if writes {
                                // What the agent holds can be written there.
                                let c = carried
                                    .entry(format!("{}->{de}", tool_id(&t.id)))
                                    .or_default();
                                for (l, h) in &holds {
                                    hold(c, *l, &h.categories, || format!("{} via `{id}`", h.src));
                                }
                                add(
                                    tool_id(&t.id),
                                    de,
                                    FlowKind::Writes,
                                    held,
                                    false,
                                    Vec::new(),
                                );
                            } else {
                                add(
                                    de,
                                    tool_id(&t.id),
                                    FlowKind::Reads,
                                    Some(set.label),
                                    false,
                                    Vec::new(),
                                );
                            }
                        }
                    }
                    BindingKind::Destination => {
                        for dest in &a.grants.destinations {
                            let Some(x) = inv.destinations.get(dest) else {
                                continue;
                            };
                            let crosses = if x.external {
                                vec![EXTERNAL.to_owned()]
                            } else {
                                Vec::new()
                            };
                            add(
                                tool_id(&t.id),
                                format!("destination:{dest}"),
                                FlowKind::Sends,
                                held,
                                false,
                                crosses,
                            );
                            let c = carried
                                .entry(format!("{}->destination:{dest}", tool_id(&t.id)))
                                .or_default();
                            for (l, h) in &holds {
                                hold(c, *l, &h.categories, || format!("{} via `{id}`", h.src));
                            }
                        }
                    }
                }
            }
        }
        for m in &a.grants.models {
            let Some(model) = inv.models.get(m) else {
                continue;
            };
            let crosses = if model.external {
                vec![EXTERNAL.to_owned()]
            } else {
                Vec::new()
            };
            add(
                agent_id(id.as_str()),
                format!("model:{m}"),
                FlowKind::Invokes,
                held,
                false,
                crosses,
            );
            let c = carried
                .entry(format!("{}->model:{m}", agent_id(id.as_str())))
                .or_default();
            for (l, h) in &holds {
                hold(c, *l, &h.categories, || h.src.clone());
            }
        }
    }
    // Guards that make a flow impossible for every piece of confidential data
    // that could reach it.
    for f in flows.values_mut() {
        let sensitive: Vec<(Label, &Held)> = carried
            .get(&f.id)
            .map(|c| {
                c.iter()
                    .filter(|(l, _)| **l >= Label::Confidential)
                    .map(|(l, h)| (*l, h))
                    .collect()
            })
            .unwrap_or_default();
        if sensitive.is_empty() {
            continue;
        }
        let (guard, sink) = match f.kind {
            FlowKind::Sends => (
                "zt4ai.flow.send",
                f.to.strip_prefix("destination:")
                    .and_then(|x| inv.destinations.get(x))
                    .map(|x| (x.clearance, x.categories.as_ref())),
            ),
            FlowKind::Invokes => (
                "zt4ai.flow.model",
                f.to.strip_prefix("model:")
                    .and_then(|x| inv.models.get(x))
                    .map(|m| (m.clearance, m.categories.as_ref())),
            ),
            // No write down: a dataset is read later at its label.
            FlowKind::Writes => (
                "zt4ai.flow.write",
                f.to.strip_prefix("dataset:")
                    .and_then(|x| inv.datasets.get(x))
                    .map(|d| (d.label, None)),
            ),
            _ => continue,
        };
        let blocked = sink.is_some_and(|(clearance, cleared)| {
            sensitive
                .iter()
                .all(|(l, h)| refuses(clearance, cleared, *l, h))
        });
        if blocked && b.guard(guard) {
            f.blocked_by = Some(guard.to_owned());
        }
    }

    gateway_threats(&mut b);
    for (id, a) in &inv.agents {
        agent_threats(&mut b, id.as_str(), a);
    }
    for t in inv.tools.values() {
        tool_threats(&mut b, t);
    }
    data_threats(&mut b, &flows);
    model_threats(&mut b);
    flow_threats(&mut b, &flows, &carried);

    let mut threats = b.threats;
    threats.sort_by(|x, y| x.target.cmp(&y.target).then(x.class.cmp(&y.class)));
    threats.dedup_by(|x, y| x.id == y.id);
    ThreatModel {
        organisation: inv.organisation.clone(),
        inventory: d.inventory_file.clone(),
        boundaries,
        elements,
        flows: flows.into_values().collect(),
        threats,
    }
}

fn gateway_threats(b: &mut Builder<'_>) {
    let inv = &b.d.inventory;
    // Users vouched for by the organisation's identity provider.
    let (gaps, scenario) = match &inv.identity.provider {
        Some(p) => (
            Vec::new(),
            format!("someone presents a forged user token; tokens are verified against `{}`", p.issuer),
        ),
        None => (
            vec!["no organisation identity provider: zt4ai's development identity provider vouches for users".to_owned()],
            "anyone who can reach the development identity provider's minting can act as any user".to_owned(),
        ),
    };
    let st = status(&gaps, true);
    b.threat(
        ThreatClass::Spoofing,
        GATEWAY,
        scenario,
        vec![b.control("external-idp")],
        gaps,
        st,
    );
    b.threat(
        ThreatClass::Repudiation,
        GATEWAY,
        "an agent's owner denies that the agent sent a report outside; or an insider edits the record".into(),
        vec![
            "signed, hash-chained audit log of every decision".into(),
            b.control("audit-log-verifies"),
            b.control("audit-checkpoints-signed"),
        ],
        vec!["cutting the log back to an earlier signed state is caught only against checkpoints kept where the server cannot write (`zt4ai audit checkpoint`)".into()],
        Mitigation::PartlyMitigated,
    );
    let slow: Vec<String> = inv
        .mcp_servers
        .values()
        .filter(|s| s.timeout.as_secs() > 30)
        .map(|s| format!("`{}` may hold a call for {} s", s.id, s.timeout.as_secs()))
        .collect();
    let st = status(&slow, false);
    b.threat(
        ThreatClass::DenialOfService,
        GATEWAY,
        "a slow or dead upstream MCP server holds calls and sessions".into(),
        vec![
            b.control("mcp-timeouts"),
            "body size limits and per-server timeouts".into(),
        ],
        slow,
        st,
    );
    // Model tokens can be capped at the LLM gateway; tool calls are not rate-limited.
    let mut gaps = vec!["zt4ai does not rate-limit tool calls".to_owned()];
    let mut mitigations = vec![b.control("risk-thresholds")];
    let served = inv.models.values().filter(|m| m.upstream.is_some()).count();
    let uncapped: Vec<&str> = inv
        .agents
        .keys()
        .map(|id| id.as_str())
        .filter(|id| {
            let budget = inv.llm.budgets.for_agent(id);
            budget.tokens_per_minute.is_none() && budget.tokens_per_day.is_none()
        })
        .collect();
    let capped = served > 0 && uncapped.is_empty();
    if served == 0 {
        gaps.push(
            "no model is served by zt4ai's LLM gateway: its budgets cannot apply, limits rest with the providers"
                .into(),
        );
    } else {
        mitigations.push(b.control("llm-budgets"));
        if !capped {
            gaps.push(format!(
                "no token limit at the LLM gateway for {}",
                uncapped
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    b.threat(
        ThreatClass::UnboundedConsumption,
        GATEWAY,
        "a looping or hijacked agent calls tools and models without limit, running up cost".into(),
        mitigations,
        gaps,
        if capped {
            Mitigation::PartlyMitigated
        } else {
            Mitigation::Unmitigated
        },
    );
}

fn agent_threats(b: &mut Builder<'_>, id: &str, a: &Agent) {
    let d = b.d;
    let inv = &d.inventory;
    if a.state != AgentState::Active {
        return;
    }
    let target = agent_id(id);

    // Agent identity.
    let mut gaps = Vec::new();
    if inv.identity.allow_client_secrets {
        gaps.push("agents may authenticate with shared client secrets".to_owned());
    }
    if inv.identity.token_ttl.as_secs() > 900 {
        gaps.push(format!(
            "delegated tokens live {} s",
            inv.identity.token_ttl.as_secs()
        ));
    }
    if !inv.identity.require_dpop {
        gaps.push("delegated tokens may be bearer tokens (DPoP not required)".to_owned());
    }
    let st = status(&gaps, false);
    b.threat(
        ThreatClass::AgentIdentitySpoofing,
        &target,
        format!("a stolen `{id}` credential or token is replayed to act as `{id}`"),
        vec![
            "delegated, audience-bound tokens; suspension refuses live tokens".into(),
            b.control("client-secrets"),
            b.control("token-lifetime"),
            b.control("sender-constrained-tokens"),
        ],
        gaps,
        st,
    );

    // Excessive agency.
    let raw = d
        .raw
        .agents
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.grants.tools.iter().any(|t| t.contains('*')))
        .unwrap_or(false);
    let destructive: Vec<&str> = granted_tools(d, a)
        .filter(|t| t.destructive)
        .map(|t| t.id.as_str())
        .collect();
    let mut gaps = Vec::new();
    if raw {
        gaps.push(format!("`{id}` is granted tools by wildcard"));
    }
    if !destructive.is_empty() && inv.settings.approvers.is_none() {
        gaps.push("no approver group for the approvals the integrity guards ask for".into());
    }
    let scenario = if destructive.is_empty() {
        format!("`{id}` is talked into using a tool its purpose does not need")
    } else {
        format!(
            "`{id}` is talked into running {} against production data",
            destructive.join(", ")
        )
    };
    let st = status(&gaps, raw && !destructive.is_empty());
    b.threat(
        ThreatClass::ExcessiveAgency,
        &target,
        scenario,
        vec![
            "grants name each tool; authority is the intersection along the actor chain".into(),
            "zt4ai.integrity.tool".into(),
            b.control("wildcard-tool-grants"),
            b.control("destructive-tool-grants"),
        ],
        gaps,
        st,
    );

    // Elevation beyond the owner.
    let mut gaps = Vec::new();
    if let Some(owner) = inv.users.get(&a.owner) {
        if a.clearance > owner.clearance {
            gaps.push(format!(
                "`{id}` is cleared for {} but its owner only for {}",
                a.clearance, owner.clearance
            ));
        }
        let wider = granted_tools(d, a).any(|t| !owner.rights.allows_tool(t))
            || !a.grants.datasets.is_subset(&owner.rights.datasets)
            || !a.grants.destinations.is_subset(&owner.rights.destinations);
        if wider {
            gaps.push(format!(
                "`{id}` holds grants its owner `{}` does not",
                a.owner
            ));
        }
    } else {
        gaps.push(format!("`{id}` has no known owner"));
    }
    let st = status(&gaps, false);
    b.threat(
        ThreatClass::ElevationOfPrivilege,
        &target,
        format!(
            "whoever drives `{id}` gains rights its owner `{}` does not have",
            a.owner
        ),
        vec![
            "each link of the actor chain is evaluated; the request needs every link's permission"
                .into(),
            b.control("agent-grants-within-owner"),
            b.control("agent-clearance-within-owner"),
        ],
        gaps,
        st,
    );

    // Direct prompt injection, through the user's own input.
    let loosened = inv
        .inspection
        .injection_threshold
        .is_some_and(|t| t > INJECTION_THRESHOLD_MAX);
    let mut gaps = vec![
        "detection is probabilistic; the information-flow guards are the deterministic backstop"
            .to_owned(),
    ];
    if loosened {
        gaps.push("the injection threshold is loosened".into());
    }
    b.threat(
        ThreatClass::DirectPromptInjection,
        &target,
        format!("a user (or a hijacked account) jailbreaks `{id}` into acting against policy"),
        vec![
            "zt4ai.inspect.injection".into(),
            "zt4ai.flow.send".into(),
            b.control("injection-threshold"),
        ],
        gaps,
        if loosened {
            Mitigation::Unmitigated
        } else {
            Mitigation::PartlyMitigated
        },
    );

    // Lateral movement through delegation.
    if !a.delegates_to.is_empty() {
        let mut gaps = Vec::new();
        let mut hard = false;
        for sub in &a.delegates_to {
            if let Some(s) = inv.agents.get(sub) {
                if s.delegates_to.iter().any(|x| x.as_str() == id) {
                    gaps.push(format!("`{id}` and `{sub}` delegate to each other"));
                    hard = true;
                }
                let wider = granted_tools(d, s).any(|t| !a.grants.allows_tool(t))
                    || !s.grants.datasets.is_subset(&a.grants.datasets);
                if wider {
                    gaps.push(format!("`{sub}` holds grants `{id}` does not (limited when delegated, not when called directly)"));
                }
            }
        }
        let st = status(&gaps, hard);
        let subs: Vec<&str> = a.delegates_to.iter().map(|x| x.as_str()).collect();
        b.threat(
            ThreatClass::LateralMovement,
            &target,
            format!(
                "a compromised `{id}` uses {} to reach what it may not",
                subs.join(", ")
            ),
            vec![
                "the actor chain's intersection and maximum depth".into(),
                b.control("delegation-within-delegator"),
                b.control("delegation-acyclic"),
            ],
            gaps,
            st,
        );
    }
}

fn tool_threats(b: &mut Builder<'_>, t: &Tool) {
    let d = b.d;
    let inv = &d.inventory;
    let target = tool_id(&t.id);
    let fronted = inv.mcp_servers.contains_key(&t.server);

    // Supply chain: the tool's definition changing under the agent.
    let poisoned = t.description.as_deref().is_some_and(|text| {
        !zt4ai_inspect::injection::InjectionDetector::patterns_only()
            .with_threshold(0.75)
            .scan(text)
            .is_empty()
    });
    let mut gaps = Vec::new();
    if !fronted {
        gaps.push(format!(
            "server `{}` is not fronted by the gateway: its tool definitions are not pinned",
            t.server
        ));
    }
    if poisoned {
        gaps.push("the declared description already reads as a prompt injection".into());
    }
    let st = status(&gaps, true);
    b.threat(
        ThreatClass::SupplyChain,
        &target,
        format!(
            "the `{}` server changes `{}`'s description to carry instructions (a rug pull)",
            t.server, t.name
        ),
        vec![
            "tool definitions pinned at first sight; a change blocks the tool until an admin approves it".into(),
            b.control("tools-behind-gateway"),
            b.control("tool-description-injection"),
        ],
        gaps,
        st,
    );

    // Indirect prompt injection through untrusted output.
    if !t.output_trusted {
        let mut gaps = Vec::new();
        if t.spotlight.is_none() {
            gaps.push("output is not spotlighted".to_owned());
        }
        if inv.settings.approvers.is_none() {
            gaps.push(
                "no approver group to answer the approvals the session's untrusted state asks for"
                    .into(),
            );
        }
        if !fronted {
            gaps.push(
                "output does not pass through the gateway, so it is not inspected or absorbed"
                    .into(),
            );
        }
        let hard = !fronted && t.spotlight.is_none();
        let st = status(&gaps, hard);
        b.threat(
            ThreatClass::IndirectPromptInjection,
            &target,
            format!(
                "content returned by `{}` carries instructions that make the agent send data out or destroy it",
                t.id
            ),
            vec![
                "untrusted output marks the session untrusted; zt4ai.integrity.tool and zt4ai.integrity.egress then require human approval".into(),
                "output inspection (zt4ai.inspect.output)".into(),
                b.control("untrusted-output-spotlight"),
            ],
            gaps,
            st,
        );
    }

    // Model output used as the tool's arguments.
    if t.is_consequential() {
        let bound = !t.bindings.is_empty();
        let gaps = if bound {
            Vec::new()
        } else {
            vec![format!(
                "`{}` binds no argument: policy cannot see what a call touches",
                t.id
            )]
        };
        let st = status(&gaps, true);
        b.threat(
            ThreatClass::ImproperOutputHandling,
            &target,
            format!(
                "model-written arguments to `{}` point it at something the user never meant",
                t.id
            ),
            vec![
                "bound arguments are resolved to resources and decided per call".into(),
                "arguments are inspected (injection, sensitive data)".into(),
                b.control("unbound-consequential-tools"),
            ],
            gaps,
            st,
        );
    }

    // Egress a policy cannot see: an open-world tool without a bound
    // destination, or a server that someone outside runs and the inventory
    // does not name.
    let open = t.open_world
        && !t
            .bindings
            .iter()
            .any(|x| x.kind == BindingKind::Destination);
    let unnamed = inv
        .mcp_servers
        .get(&t.server)
        .and_then(|s| crate::checks::unnamed_operator(inv, s))
        .is_some();
    if open || unnamed {
        let mut mitigations = Vec::new();
        let mut gaps = Vec::new();
        let scenario = if open {
            mitigations.push(
                "each call is checked as reaching the default destination (grants, flow guard)"
                    .into(),
            );
            mitigations.push(b.control("egress-bindings"));
            gaps.push("no destination binding: no policy can tell one target from another".into());
            format!(
                "`{}` reaches outside without a bound destination: data leaves wherever the arguments say",
                t.id
            )
        } else {
            format!(
                "whoever runs server `{}` receives every argument `{}` is given, whatever the call addresses",
                t.server, t.id
            )
        };
        if unnamed {
            mitigations.push(b.control("mcp-server-operators"));
            gaps.push(format!(
                "server `{}` is at no internal address and does not name who runs it (`reaches`): no policy sees that party",
                t.server
            ));
        }
        b.threat(
            ThreatClass::SensitiveInformationDisclosure,
            &target,
            scenario,
            mitigations,
            gaps,
            Mitigation::PartlyMitigated,
        );
    }
}

fn data_threats(b: &mut Builder<'_>, flows: &BTreeMap<String, Flow>) {
    let d = b.d;
    let inv = &d.inventory;
    for ds in inv.datasets.values() {
        let target = format!("dataset:{}", ds.id);
        let sensitive_cats: Vec<&str> = ds
            .categories
            .iter()
            .map(|c| c.as_str())
            .filter(|c| ["pii", "phi", "health", "financial", "payment", "pci"].contains(c))
            .collect();
        if ds.label >= Label::Confidential || !sensitive_cats.is_empty() {
            let mut gaps = Vec::new();
            if !sensitive_cats.is_empty() && ds.label < Label::Confidential {
                gaps.push(format!(
                    "`{}` holds {} but is labelled {}: it may flow wherever {} data may",
                    ds.id,
                    sensitive_cats.join(", "),
                    ds.label,
                    ds.label
                ));
            }
            let st = status(&gaps, true);
            b.threat(
                ThreatClass::InformationDisclosure,
                &target,
                format!(
                    "`{}` ({}) reaches someone not cleared for it",
                    ds.id, ds.label
                ),
                {
                    let mut m = vec![
                        "zt4ai.clearance.dataset".into(),
                        "the session label follows what was read (zt4ai.flow.send, zt4ai.flow.model)"
                            .into(),
                        b.control("pii-dataset-labels"),
                    ];
                    // A refused attempt to send it out stops the agent too.
                    if inv.settings.quarantine.on_exfiltration {
                        m.push(b.control("automatic-quarantine"));
                    }
                    m
                },
                gaps,
                st,
            );
        }
        let writers: BTreeSet<&str> = flows
            .values()
            .filter(|f| f.kind == FlowKind::Writes && f.to == target)
            .map(|f| f.from.as_str())
            .collect();
        if !writers.is_empty() {
            let gaps = if inv.settings.approvers.is_none() {
                vec![
                    "no approver group to answer the approvals writes from untrusted sessions need"
                        .to_owned(),
                ]
            } else {
                Vec::new()
            };
            let st = if gaps.is_empty() {
                Mitigation::PartlyMitigated
            } else {
                Mitigation::Unmitigated
            };
            let mut gaps = gaps;
            gaps.push("a write from a trusted session is not reviewed".into());
            b.threat(
                ThreatClass::DataModelPoisoning,
                &target,
                format!(
                    "a hijacked agent writes false records into `{}` through {}",
                    ds.id,
                    writers
                        .iter()
                        .map(|w| format!("`{}`", w.trim_start_matches("tool:")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![
                    "zt4ai.integrity.egress".into(),
                    b.control("write-sensitive-datasets"),
                ],
                gaps,
                st,
            );
        }
    }
}

fn model_threats(b: &mut Builder<'_>) {
    let d = b.d;
    for m in d.inventory.models.values() {
        let target = format!("model:{}", m.id);
        let (gaps, st) = if m.external {
            (
                vec![format!(
                    "`{}` is served by `{}`: its integrity rests on the provider",
                    m.id, m.provider
                )],
                Mitigation::PartlyMitigated,
            )
        } else if m.attested {
            (Vec::new(), Mitigation::Mitigated)
        } else {
            (
                vec![format!("self-hosted `{}` is not attested", m.id)],
                Mitigation::Unmitigated,
            )
        };
        b.threat(
            ThreatClass::DataModelPoisoning,
            &target,
            format!(
                "a tampered or poisoned `{}` steers the agents that use it",
                m.id
            ),
            vec![b.control("model-attestation")],
            gaps,
            st,
        );
        b.threat(
            ThreatClass::SystemPromptLeakage,
            &target,
            format!(
                "an agent's system prompt, with whatever it embeds, is extracted through `{}`",
                m.id
            ),
            vec![
                "zt4ai.flow.model keeps data above the model's clearance out of its prompts".into(),
            ],
            vec![
                "zt4ai does not see prompts or completions yet (the LLM gateway is a later issue)"
                    .into(),
            ],
            Mitigation::PartlyMitigated,
        );
    }
}

fn flow_threats(
    b: &mut Builder<'_>,
    flows: &BTreeMap<String, Flow>,
    carried: &BTreeMap<String, BTreeMap<Label, Held>>,
) {
    let inv = &b.d.inventory;
    for f in flows.values() {
        let Some(labels) = carried.get(&f.id) else {
            continue;
        };
        let (sink, clearance, cleared, external, guard, check) = match f.kind {
            FlowKind::Sends => {
                let Some(x) =
                    f.to.strip_prefix("destination:")
                        .and_then(|x| inv.destinations.get(x))
                else {
                    continue;
                };
                (
                    format!("destination `{}`", x.id),
                    x.clearance,
                    x.categories.as_ref(),
                    x.external,
                    "zt4ai.flow.send",
                    "external-destination-clearance",
                )
            }
            FlowKind::Invokes => {
                let Some(m) = f.to.strip_prefix("model:").and_then(|x| inv.models.get(x)) else {
                    continue;
                };
                (
                    format!("model `{}`", m.id),
                    m.clearance,
                    m.categories.as_ref(),
                    m.external,
                    "zt4ai.flow.model",
                    "external-model-clearance",
                )
            }
            _ => continue,
        };
        // Confidential data that could travel; the highest first.
        let sensitive: Vec<(Label, &Held)> = labels
            .iter()
            .rev()
            .filter(|(l, _)| **l >= Label::Confidential)
            .map(|(l, h)| (*l, h))
            .collect();
        if !external || sensitive.is_empty() {
            continue;
        }
        let from = f.from.split_once(':').map_or(f.from.as_str(), |(_, n)| n);
        let allowed: Vec<String> = sensitive
            .iter()
            .filter(|(l, h)| !refuses(clearance, cleared, *l, h))
            .map(|(l, h)| format!("{l} data ({})", h.src))
            .collect();
        let (scenario, gaps, st) = if allowed.is_empty() {
            let (top, h) = sensitive[0];
            let src = &h.src;
            let only = match cleared {
                None => String::new(),
                Some(k) => format!(
                    " or of a category other than {}",
                    if k.is_empty() {
                        "none".to_owned()
                    } else {
                        Category::join(k)
                    }
                ),
            };
            (
                format!(
                    "{top} data ({src}) leaves through `{from}` to external {sink}: impossible, {guard} denies any send above {clearance}{only}"
                ),
                Vec::new(),
                Mitigation::Mitigated,
            )
        } else {
            (
                format!(
                    "{} leaves through `{from}` to external {sink}, which is cleared for {clearance}",
                    allowed.join(" and ")
                ),
                vec![format!(
                    "external {sink} is cleared for {clearance}: {guard} lets such data through"
                )],
                Mitigation::Unmitigated,
            )
        };
        b.threat(
            ThreatClass::SensitiveInformationDisclosure,
            &f.id,
            scenario,
            vec![
                guard.to_owned(),
                "zt4ai.inspect.sensitive_egress".into(),
                b.control(check),
            ],
            gaps,
            st,
        );
    }
}

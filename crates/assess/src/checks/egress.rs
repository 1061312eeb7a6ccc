//! Checks: network and egress — destinations, bindings, exfiltration paths.

use zt4ai_core::inventory::{BindingKind, UNKNOWN_DESTINATION};
use zt4ai_core::{Category, Label};

use super::{Check, Deployment};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "egress-bindings",
        about: "open-world tools bind their target argument to a destination",
        run: egress_bindings,
    },
    Check {
        id: "external-destination-clearance",
        about: "external destinations are cleared for public data (internal at most)",
        run: external_clearance,
    },
    Check {
        id: "default-destination",
        about: "unmatched targets fall to a destination cleared for public data only",
        run: default_destination,
    },
    Check {
        id: "broad-destination-patterns",
        about: "no host or mail pattern matches whole top-level domains",
        run: broad_patterns,
    },
    Check {
        id: "overlapping-destinations",
        about: "no pattern sits in two destinations with different clearances",
        run: overlapping,
    },
    Check {
        id: "exfiltration-paths-guarded",
        about: "every path from confidential data to an external sink is closed by the flow guard",
        run: exfiltration_paths,
    },
    Check {
        id: "destructive-open-world",
        about: "tools that are both destructive and open-world are reviewed",
        run: destructive_open_world,
    },
];

/// The baseline guard that stops a send above the destination's clearance.
const FLOW_GUARD: &str = "zt4ai.flow.send";

fn egress_bindings(d: &Deployment) -> Outcome {
    let open: Vec<_> = d
        .inventory
        .tools
        .values()
        .filter(|t| t.open_world)
        .collect();
    let problems: Vec<Evidence> = open
        .iter()
        .filter(|t| !t.bindings.iter().any(|b| b.kind == BindingKind::Destination))
        .map(|t| {
            d.at_entity(
                "tools",
                &t.id,
                "bindings",
                format!(
                    "`{}` reaches beyond the organisation but binds no argument to a destination: zt4ai can only check it as reaching the default destination, whatever its target",
                    t.id
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed(format!(
            "all {} open-world tools bind their target",
            open.len()
        ))
    } else {
        Outcome::failed(format!(
            "{} open-world tools bind no destination",
            problems.len()
        ))
        .with(problems)
    }
}

fn external_clearance(d: &Deployment) -> Outcome {
    let mut failed = false;
    let mut problems = Vec::new();
    for dest in d.inventory.destinations.values().filter(|x| x.external) {
        if dest.clearance < Label::Internal {
            continue;
        }
        // Confidential data of named categories only is a reviewable
        // agreement; of any category, an open door.
        let only = dest.categories.as_ref().map(Category::join);
        if dest.clearance > Label::Internal && only.is_none() {
            failed = true;
        }
        let of = match &only {
            Some(c) if c.is_empty() => " of no category".to_owned(),
            Some(c) => format!(" of categories {c} only"),
            None => String::new(),
        };
        problems.push(d.at_entity(
            "destinations",
            &dest.id,
            "clearance",
            format!(
                "external `{}` is cleared for {} data{of}",
                dest.id, dest.clearance
            ),
        ));
    }
    if problems.is_empty() {
        Outcome::passed("every external destination is cleared for public data only")
    } else if failed {
        Outcome::failed(
            "external destinations are cleared for confidential data: the flow guard lets it go there",
        )
        .with(problems)
    } else {
        Outcome::investigate(format!(
            "{} external destinations are cleared for internal data, or for confidential data of named categories only (a partner with an agreement may be; confirm each)",
            problems.len()
        ))
        .with(problems)
    }
}

fn default_destination(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let id = &inv.default_destination;
    let Some(dest) = inv.destinations.get(id) else {
        return Outcome::failed(format!("the default destination `{id}` is missing"));
    };
    if dest.clearance == Label::Public {
        let how = if id == UNKNOWN_DESTINATION {
            "zt4ai's implicit `unknown` destination".to_owned()
        } else {
            format!("`{id}`")
        };
        Outcome::passed(format!(
            "targets no destination names fall to {how}, cleared for public data"
        ))
    } else {
        Outcome::failed(format!(
            "targets no destination names fall to `{id}`, cleared for {}: any address on the internet may receive it",
            dest.clearance
        ))
        .with(vec![d.at_entity(
            "destinations",
            id,
            "clearance",
            format!("default destination cleared for {}", dest.clearance),
        )])
    }
}

/// Whether a pattern covers a whole top-level domain or everything.
fn too_broad(pattern: &str) -> bool {
    let p = pattern.trim();
    if p == "*" || p == "*.*" || p.is_empty() {
        return true;
    }
    match p.strip_prefix("*.") {
        // `*.com`, `*.co.uk`-like public suffixes are only approximated: one
        // label, or two labels of which the first is at most 3 letters.
        Some(rest) => {
            let labels: Vec<&str> = rest.split('.').collect();
            labels.len() == 1 || (labels.len() == 2 && labels[0].len() <= 3 && labels[1].len() == 2)
        }
        None => !p.contains('.'),
    }
}

fn broad_patterns(d: &Deployment) -> Outcome {
    let mut problems = Vec::new();
    for (i, dest) in d.raw.destinations.iter().enumerate() {
        if dest.clearance == Label::Public {
            continue;
        }
        for (field, list) in [("hosts", &dest.hosts), ("mail_domains", &dest.mail_domains)] {
            for (j, p) in list.iter().enumerate() {
                if too_broad(p) {
                    problems.push(d.at(
                        &format!("destinations[{i}].{field}[{j}]"),
                        format!(
                            "`{p}` makes `{}` (cleared for {}) match addresses anyone can register",
                            dest.id, dest.clearance
                        ),
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Outcome::passed("no destination above public matches a whole top-level domain")
    } else {
        Outcome::failed(format!(
            "{} over-broad patterns on destinations cleared above public",
            problems.len()
        ))
        .with(problems)
    }
}

/// Whether pattern `a` matches everything `b` matches (`*.x.example` covers
/// `y.x.example` and `*.y.x.example`).
fn covers(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match a.strip_prefix("*.") {
        Some(suffix) => {
            let b = b.strip_prefix("*.").unwrap_or(b);
            b.ends_with(&format!(".{suffix}"))
        }
        None => false,
    }
}

fn overlapping(d: &Deployment) -> Outcome {
    let mut problems = Vec::new();
    let dests = &d.raw.destinations;
    for (i, x) in dests.iter().enumerate() {
        for (k, y) in dests.iter().enumerate() {
            if i == k || x.clearance <= y.clearance {
                continue;
            }
            for (field, xs, ys) in [
                ("hosts", &x.hosts, &y.hosts),
                ("mail_domains", &x.mail_domains, &y.mail_domains),
            ] {
                for (j, p) in xs.iter().enumerate() {
                    if let Some(q) = ys.iter().find(|q| covers(q, p) || covers(p, q)) {
                        problems.push(d.at(
                            &format!("destinations[{i}].{field}[{j}]"),
                            format!(
                                "`{p}` in `{}` ({}) overlaps `{q}` in `{}` ({}): which clearance applies depends on match order",
                                x.id, x.clearance, y.id, y.clearance
                            ),
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Outcome::passed("destination patterns do not overlap across clearances")
    } else {
        Outcome::investigate(format!(
            "{} destination patterns overlap across clearances",
            problems.len()
        ))
        .with(problems)
    }
}

/// One path from confidential data an agent can read to an external sink.
struct Path {
    agent: String,
    source: String,
    label: Label,
    sink: String,
    clearance: Label,
}

impl Path {
    /// Whether the flow guard stops it: the sink is cleared below the data.
    fn guarded(&self) -> bool {
        self.clearance < self.label
    }
}

/// Every (agent, confidential label it can hold, external destination it may
/// send to) for agents that have a tool with a destination binding.
fn paths(d: &Deployment) -> Vec<Path> {
    let inv = &d.inventory;
    let mut out = Vec::new();
    for (id, a) in &inv.agents {
        if a.state != zt4ai_core::inventory::AgentState::Active {
            continue;
        }
        let can_send = inv.tools.values().any(|t| {
            a.grants.allows_tool(t)
                && t.bindings
                    .iter()
                    .any(|b| b.kind == BindingKind::Destination)
        });
        if !can_send {
            continue;
        }
        // Each label of data the agent can hold (capped by its clearance), with a source.
        let mut held: std::collections::BTreeMap<Label, String> = std::collections::BTreeMap::new();
        for ds in &a.grants.datasets {
            if let Some(set) = inv.datasets.get(ds) {
                held.entry(set.label.min(a.clearance))
                    .or_insert_with(|| format!("dataset `{ds}`"));
            }
        }
        for t in inv.tools.values().filter(|t| a.grants.allows_tool(t)) {
            held.entry(t.output_label.min(a.clearance))
                .or_insert_with(|| format!("tool `{}` output", t.id));
        }
        for (label, source) in held.range(Label::Confidential..) {
            for dest in &a.grants.destinations {
                if let Some(x) = inv.destinations.get(dest)
                    && x.external
                {
                    out.push(Path {
                        agent: id.to_string(),
                        source: source.clone(),
                        label: *label,
                        sink: dest.clone(),
                        clearance: x.clearance,
                    });
                }
            }
        }
    }
    out
}

fn exfiltration_paths(d: &Deployment) -> Outcome {
    let found = paths(d);
    let guard_loaded = d.engine.policy_ids().iter().any(|p| p == FLOW_GUARD);
    let evidence: Vec<Evidence> = found
        .iter()
        .map(|p| {
            let closed = p.guarded() && guard_loaded;
            Evidence {
                problem: !closed,
                ..d.at_entity(
                    "agents",
                    &p.agent,
                    "grants.destinations",
                    format!(
                        "`{}` can read {} ({}) and send to external `{}` (cleared for {}): {}",
                        p.agent,
                        p.source,
                        p.label,
                        p.sink,
                        p.clearance,
                        if closed {
                            format!("closed by `{FLOW_GUARD}`")
                        } else {
                            "OPEN: the guard lets it through".to_owned()
                        }
                    ),
                )
            }
        })
        .collect();
    let open = evidence.iter().filter(|e| e.problem).count();
    if found.is_empty() {
        Outcome::passed(
            "no agent can both read confidential data and send outside the organisation",
        )
    } else if open == 0 {
        Outcome::passed(format!(
            "{} from confidential data to external sinks, each closed by the baseline guard `{FLOW_GUARD}`, which denies a send above the destination's clearance once the session has read such data",
            super::count(found.len(), "path", "paths")
        ))
        .with(evidence)
    } else {
        Outcome::failed(format!(
            "{open} of {} from confidential data to external sinks are open: the destination is cleared for the data",
            super::count(found.len(), "path", "paths")
        ))
        .with(evidence)
    }
}

fn destructive_open_world(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .inventory
        .tools
        .values()
        .filter(|t| t.destructive && t.open_world)
        .map(|t| {
            d.at_entity(
                "tools",
                &t.id,
                "annotations",
                format!(
                    "`{}` both destroys data and reaches beyond the organisation",
                    t.id
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("no tool is both destructive and open-world")
    } else {
        Outcome::investigate(format!(
            "{} tools are both destructive and open-world",
            problems.len()
        ))
        .with(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::tests::{BASE, load};
    use super::*;
    use crate::Status;

    fn run(id: &str, yaml: &str) -> Outcome {
        (crate::checks::find(id).unwrap().run)(&load(yaml))
    }

    const SEND: &str = "  - server: mail\n    name: send\n    description: Send an email\n    annotations: { read_only: false, open_world: true }\n    bindings: [{ argument: to, resource: destination }]\n";

    #[test]
    fn open_world_tools_need_destination_bindings() {
        let yaml = BASE.replace("datasets:\n  - {", &format!("{SEND}datasets:\n  - {{"));
        assert_eq!(run("egress-bindings", &yaml).status, Status::Passed);
        let yaml = yaml.replace(
            "    bindings: [{ argument: to, resource: destination }]\n",
            "",
        );
        let o = run("egress-bindings", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert!(o.evidence[0].message.contains("mail.send"));
    }

    #[test]
    fn destination_clearances() {
        assert_eq!(
            run("external-destination-clearance", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "  - { id: internet,",
            "  - { id: partner, hosts: [portal.partner.example], clearance: confidential, external: true }\n  - { id: internet,",
        );
        assert_eq!(
            run("external-destination-clearance", &yaml).status,
            Status::Failed
        );
        // Confidential data of named categories only: a partner agreement to
        // review, not an open door.
        let named = yaml.replace(
            "clearance: confidential, external: true",
            "clearance: confidential, categories: [customer], external: true",
        );
        let o = run("external-destination-clearance", &named);
        assert_eq!(o.status, Status::Investigate);
        assert!(
            o.evidence[0]
                .message
                .ends_with("of categories customer only"),
            "{:?}",
            o.evidence
        );
        let yaml = yaml.replace(
            "clearance: confidential, external: true",
            "clearance: internal, external: true",
        );
        assert_eq!(
            run("external-destination-clearance", &yaml).status,
            Status::Investigate
        );
        // The loader itself refuses a default destination cleared above public.
        assert_eq!(run("default-destination", BASE).status, Status::Passed);
    }

    #[test]
    fn broad_and_overlapping_patterns() {
        assert!(too_broad("*"));
        assert!(too_broad("*.com"));
        assert!(too_broad("*.co.uk"));
        assert!(!too_broad("*.acme.example"));
        assert!(!too_broad("acme.example"));
        assert!(covers("*.acme.example", "mail.acme.example"));
        assert!(!covers("*.acme.example", "acme.example"));
        assert_eq!(
            run("broad-destination-patterns", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "mail_domains: [test.example]",
            "mail_domains: [test.example, \"*.com\"]",
        );
        let o = run("broad-destination-patterns", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.evidence[0].field.as_deref(),
            Some("destinations[0].mail_domains[1]")
        );
        assert_eq!(run("overlapping-destinations", BASE).status, Status::Passed);
        let yaml = BASE
            .replace("mail_domains: [test.example]", "mail_domains: [test.example], hosts: [\"*.test.example\"]")
            .replace(
                "  - { id: internet,",
                "  - { id: partner, hosts: [portal.test.example], clearance: internal, external: true }\n  - { id: internet,",
            );
        assert_eq!(
            run("overlapping-destinations", &yaml).status,
            Status::Investigate
        );
    }

    #[test]
    fn exfiltration_paths_are_listed_and_guarded() {
        assert_eq!(
            run("exfiltration-paths-guarded", BASE).status,
            Status::Passed
        );
        let yaml = BASE
            .replace("datasets:\n  - {", &format!("{SEND}datasets:\n  - {{"))
            .replace("tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools", "tools: [crm.query, mail.send], datasets: [customers], destinations: [mail, internet] }\ntools")
            .replace("grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\nusers", "grants: { tools: [crm.query, mail.send], datasets: [customers], destinations: [mail, internet] }\nusers");
        let o = run("exfiltration-paths-guarded", &yaml);
        assert_eq!(o.status, Status::Passed, "{o:?}");
        assert_eq!(o.evidence.len(), 1, "{o:?}");
        assert!(o.evidence[0].message.contains("internet"));
        assert!(!o.evidence[0].problem);
    }

    #[test]
    fn an_external_sink_cleared_for_the_data_is_an_open_path() {
        let yaml = BASE
            .replace("datasets:\n  - {", &format!("{SEND}datasets:\n  - {{"))
            .replace("tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools", "tools: [crm.query, mail.send], datasets: [customers], destinations: [mail, rival] }\ntools")
            .replace("grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\nusers", "grants: { tools: [crm.query, mail.send], datasets: [customers], destinations: [mail, rival] }\nusers")
            .replace(
                "  - { id: internet,",
                "  - { id: rival, mail_domains: [rival.example], clearance: confidential, external: true }\n  - { id: internet,",
            );
        let o = run("exfiltration-paths-guarded", &yaml);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(
            o.evidence
                .iter()
                .any(|e| e.problem && e.message.contains("OPEN") && e.message.contains("rival")),
            "{o:?}"
        );
    }

    #[test]
    fn destructive_open_world_tools() {
        assert_eq!(run("destructive-open-world", BASE).status, Status::Passed);
        let yaml = BASE.replace(
            "annotations: { read_only: false, destructive: true, open_world: false }",
            "annotations: { read_only: false, destructive: true, open_world: true }",
        );
        assert_eq!(
            run("destructive-open-world", &yaml).status,
            Status::Investigate
        );
    }
}

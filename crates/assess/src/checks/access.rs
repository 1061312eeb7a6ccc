//! Checks: access and least privilege — grants, approvals, risk settings.

use zt4ai_core::Label;
use zt4ai_core::inventory::raw::RawGrants;

use super::{Check, Deployment};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "wildcard-tool-grants",
        about: "no agent is granted every tool of a server, or of all servers",
        run: wildcard_tool_grants,
    },
    Check {
        id: "destructive-tool-grants",
        about: "agents granted destructive tools are reviewed",
        run: destructive_tool_grants,
    },
    Check {
        id: "write-sensitive-datasets",
        about: "agents that may write confidential data are reviewed",
        run: write_sensitive,
    },
    Check {
        id: "approver-group",
        about: "a group of human approvers is configured",
        run: approver_group,
    },
    Check {
        id: "approval-ttl",
        about: "human approvals expire soon",
        run: approval_ttl,
    },
    Check {
        id: "risk-thresholds",
        about: "risk thresholds require approval, then deny, early enough",
        run: risk_thresholds,
    },
    Check {
        id: "group-wildcard-grants",
        about: "no group grants every tool",
        run: group_wildcards,
    },
    Check {
        id: "clearance-concentration",
        about: "few users hold the highest clearance",
        run: clearance_concentration,
    },
    Check {
        id: "automatic-quarantine",
        about: "an agent that tries to exfiltrate is quarantined and the SOC is told",
        run: automatic_quarantine,
    },
    Check {
        id: "llm-budgets",
        about: "every agent's model tokens are capped at the LLM gateway",
        run: llm_budgets,
    },
];

const APPROVAL_TTL_PASS: u64 = 3600;
const APPROVAL_TTL_FAIL: u64 = 24 * 3600;
const RISK_HIGH_MAX: u8 = 80;
/// Share of users with the highest clearance above which it is worth a look.
const CONCENTRATION: f64 = 0.25;

/// Indexes of wildcard tool patterns in raw grants.
fn wildcards(g: &RawGrants) -> Vec<(usize, &str)> {
    g.tools
        .iter()
        .enumerate()
        .filter(|(_, t)| t.contains('*'))
        .map(|(i, t)| (i, t.as_str()))
        .collect()
}

fn wildcard_tool_grants(d: &Deployment) -> Outcome {
    let mut problems = Vec::new();
    let mut everything = false;
    for (i, a) in d.raw.agents.iter().enumerate() {
        for (j, pattern) in wildcards(&a.grants) {
            everything |= pattern == "*";
            problems.push(d.at(
                &format!("agents[{i}].grants.tools[{j}]"),
                format!(
                    "`{}` is granted `{pattern}`: every tool added to {} later is granted too",
                    a.id,
                    if pattern == "*" {
                        "any server".to_owned()
                    } else {
                        format!("`{}`", pattern.trim_end_matches(".*"))
                    }
                ),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed("every agent is granted tools one by one")
    } else if everything {
        Outcome::failed(format!(
            "{} wildcard tool grants to agents, one of them every tool",
            problems.len()
        ))
        .with(problems)
    } else {
        Outcome::failed(format!(
            "{} agents are granted whole MCP servers",
            problems.len()
        ))
        .with(problems)
    }
}

fn destructive_tool_grants(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for (id, agent) in &inv.agents {
        let tools: Vec<&str> = inv
            .tools
            .values()
            .filter(|t| t.destructive && agent.grants.allows_tool(t))
            .map(|t| t.id.as_str())
            .collect();
        if !tools.is_empty() {
            problems.push(d.at_entity(
                "agents",
                id.as_str(),
                "grants.tools",
                format!(
                    "`{id}` may run destructive tools: {} (confirm its purpose needs them)",
                    tools.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed("no agent is granted a destructive tool")
    } else {
        Outcome::investigate(format!(
            "{} agents may run destructive tools",
            problems.len()
        ))
        .with(problems)
    }
}

fn write_sensitive(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for (id, agent) in &inv.agents {
        let sets: Vec<String> = agent
            .grants
            .writable_datasets
            .iter()
            .filter_map(|ds| {
                let set = inv.datasets.get(ds)?;
                (set.label >= Label::Confidential).then(|| format!("{ds} ({})", set.label))
            })
            .collect();
        if !sets.is_empty() {
            problems.push(d.at_entity(
                "agents",
                id.as_str(),
                "grants.writable_datasets",
                format!("`{id}` may write {}", sets.join(", ")),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed("no agent may write confidential data")
    } else {
        Outcome::investigate(format!(
            "{} agents may write confidential data",
            problems.len()
        ))
        .with(problems)
    }
}

fn approver_group(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let Some(group) = &inv.settings.approvers else {
        return Outcome::failed(
            "no approver group: nobody is named to grant the human approvals policies ask for",
        )
        .with(vec![d.at("settings", "`settings.approvers` is not set")]);
    };
    let members: Vec<&str> = inv
        .users
        .values()
        .filter(|u| u.groups.iter().any(|g| g == group))
        .map(|u| u.id.as_str())
        .collect();
    if members.is_empty() {
        Outcome::failed(format!("the approver group `{group}` has no members"))
            .with(vec![d.at("settings.approvers", "no user is in this group")])
    } else {
        Outcome::passed(format!(
            "approvals are granted by `{group}` ({} members)",
            members.len()
        ))
        .with(vec![Evidence {
            problem: false,
            ..d.at(
                "settings.approvers",
                format!("members: {}", members.join(", ")),
            )
        }])
    }
}

fn approval_ttl(d: &Deployment) -> Outcome {
    let ttl = d.inventory.settings.approval_ttl.as_secs();
    let ev = d.at(
        "settings.approval_ttl_seconds",
        format!("an approval stays usable for {ttl} s"),
    );
    if ttl <= APPROVAL_TTL_PASS {
        Outcome::passed(format!("approvals expire after {ttl} s")).with(vec![Evidence {
            problem: false,
            ..ev
        }])
    } else if ttl <= APPROVAL_TTL_FAIL {
        Outcome::investigate(format!(
            "approvals stay usable for {ttl} s; the situation a human approved may have changed"
        ))
        .with(vec![ev])
    } else {
        Outcome::failed(format!("approvals stay usable for {ttl} s, over a day")).with(vec![ev])
    }
}

fn risk_thresholds(d: &Deployment) -> Outcome {
    let s = &d.inventory.settings;
    if s.risk_high > RISK_HIGH_MAX {
        Outcome::failed(format!(
            "requests are denied only from risk {} (above {RISK_HIGH_MAX}: a clearly compromised account still acts)",
            s.risk_high
        ))
        .with(vec![d.at("settings.risk_high", format!("risk_high: {}", s.risk_high))])
    } else {
        Outcome::passed(format!(
            "approval from risk {}, denial from {}",
            s.risk_medium, s.risk_high
        ))
    }
}

fn automatic_quarantine(d: &Deployment) -> Outcome {
    let q = &d.inventory.settings.quarantine;
    let mut triggers = Vec::new();
    if q.on_exfiltration {
        triggers.push("a refused send of confidential data".to_owned());
    }
    if let Some((n, within)) = q.denials {
        triggers.push(format!("{n} denials in {} s", within.as_secs()));
    }
    if let Some(r) = q.at_risk {
        triggers.push(format!("risk {r}"));
    }
    if !q.on_exfiltration {
        return Outcome::failed(
            "an agent whose send of confidential data is refused keeps working: `on_exfiltration` is off",
        )
        .with(vec![d.at(
            "settings.quarantine.on_exfiltration",
            "on_exfiltration: false",
        )]);
    }
    match &q.webhook {
        None => Outcome::investigate(format!(
            "agents are quarantined on {}, but no webhook tells anyone: a human must notice the suspension to investigate it",
            triggers.join(", ")
        ))
        .with(vec![d.at("settings", "`settings.quarantine.webhook` is not set")]),
        Some(w) => {
            let origin = url::Url::parse(&w.url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            Outcome::passed(format!(
                "agents are quarantined on {}; notices go to {origin}",
                triggers.join(", ")
            ))
        }
    }
}

fn llm_budgets(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let served = inv.models.values().filter(|m| m.upstream.is_some()).count();
    if served == 0 {
        return Outcome::investigate(
            "no model has an `upstream`: model traffic does not go through zt4ai's LLM gateway, so its budgets cannot apply; token and spend limits must be enforced at the model provider",
        )
        .with(vec![d.at("models", "no model sets `upstream`")]);
    }
    if inv.agents.is_empty() {
        return Outcome::skipped("the inventory declares no agents");
    }
    let budgets = &inv.llm.budgets;
    let uncapped: Vec<String> = inv
        .agents
        .keys()
        .filter_map(|id| {
            let b = budgets.for_agent(id.as_str());
            if b.tokens_per_minute.is_some() || b.tokens_per_day.is_some() {
                None
            } else if b.is_unlimited() {
                Some(format!("`{id}`"))
            } else {
                Some(format!("`{id}` (requests only)"))
            }
        })
        .collect();
    let models = super::count(served, "model", "models");
    if uncapped.is_empty() {
        Outcome::passed(format!(
            "every agent ({}) has a token limit at the LLM gateway, which serves {models}",
            super::count(inv.agents.len(), "agent", "agents")
        ))
    } else {
        Outcome::failed(format!(
            "{} of {} have no token limit at the LLM gateway: a looping or hijacked agent can run up model spend without bound",
            uncapped.len(),
            super::count(inv.agents.len(), "agent", "agents")
        ))
        .with(vec![d.at(
            "llm.budgets",
            format!(
                "no `tokens_per_minute` or `tokens_per_day` for {}",
                uncapped.join(", ")
            ),
        )])
    }
}

fn group_wildcards(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .raw
        .groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            wildcards(&g.grants)
                .into_iter()
                .filter(|(_, p)| *p == "*")
                .map(move |(j, _)| (i, j, g.id.clone()))
        })
        .map(|(i, j, id)| {
            d.at(
                &format!("groups[{i}].grants.tools[{j}]"),
                format!("group `{id}` grants every tool on every server"),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("no group grants every tool")
    } else {
        Outcome::failed(format!("{} groups grant every tool", problems.len())).with(problems)
    }
}

fn clearance_concentration(d: &Deployment) -> Outcome {
    let users = &d.inventory.users;
    if users.is_empty() {
        return Outcome::skipped("the inventory declares no users");
    }
    let top: Vec<&str> = users
        .values()
        .filter(|u| u.clearance == Label::HighlyConfidential)
        .map(|u| u.id.as_str())
        .collect();
    // Precision loss is irrelevant at inventory sizes.
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let share = top.len() as f64 / users.len() as f64;
    if share <= CONCENTRATION || top.len() <= 1 {
        Outcome::passed(format!(
            "{} of {} users hold the highest clearance",
            top.len(),
            users.len()
        ))
    } else {
        Outcome::investigate(format!(
            "{} of {} users ({:.0} %) hold the highest clearance",
            top.len(),
            users.len(),
            share * 100.0
        ))
        .with(
            top.iter()
                .map(|u| {
                    d.at_entity(
                        "users",
                        u,
                        "clearance",
                        format!("`{u}` is highly_confidential"),
                    )
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::tests::{BASE, load};
    use crate::Status;

    fn run(id: &str, yaml: &str) -> crate::Outcome {
        (crate::checks::find(id).unwrap().run)(&load(yaml))
    }

    #[test]
    fn automatic_quarantine_needs_the_exfiltration_trigger_and_a_webhook() {
        let o = run("automatic-quarantine", BASE);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert!(o.summary.contains("no webhook"), "{o:?}");
        let with = |q: &str| format!("{BASE}settings:\n  quarantine:\n{q}");
        let o = run(
            "automatic-quarantine",
            &with("    webhook: { url: \"https://soc.example/hook?token=x\", secret_env: S }\n"),
        );
        assert_eq!(o.status, Status::Passed, "{o:?}");
        assert!(
            o.summary.contains("https://soc.example") && !o.summary.contains("token"),
            "the URL's secrets stay out of reports: {o:?}"
        );
        let o = run(
            "automatic-quarantine",
            &with("    on_exfiltration: false\n"),
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert_eq!(
            o.evidence[0].field.as_deref(),
            Some("settings.quarantine.on_exfiltration")
        );
    }

    #[test]
    fn llm_budgets_need_the_gateway_and_a_token_limit_for_every_agent() {
        // No model is served by the gateway: nothing zt4ai can cap.
        let o = run("llm-budgets", BASE);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert!(o.summary.contains("provider"), "{o:?}");
        let budgets = format!("{BASE}llm:\n  budgets:\n    agent: {{ tokens_per_day: 1000000 }}\n");
        assert_eq!(run("llm-budgets", &budgets).status, Status::Investigate);

        let with_models = |rest: &str| {
            format!(
                "{BASE}models:\n  - id: m\n    provider: self-hosted\n    external: false\n    clearance: confidential\n    upstream: {{ base_url: \"http://127.0.0.1:11434/v1\" }}\n{rest}"
            )
        };
        let o = run(
            "llm-budgets",
            &with_models("llm:\n  budgets:\n    agent: { tokens_per_day: 1000000 }\n"),
        );
        assert_eq!(o.status, Status::Passed, "{o:?}");
        assert!(o.summary.contains("1 agent"), "{o:?}");

        // Request limits alone do not cap spend.
        let o = run(
            "llm-budgets",
            &with_models("llm:\n  budgets:\n    agent: { requests_per_minute: 60 }\n"),
        );
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert_eq!(o.evidence[0].field.as_deref(), Some("llm.budgets"));
        assert!(
            o.evidence[0].message.contains("`a1` (requests only)"),
            "{o:?}"
        );
        let o = run("llm-budgets", &with_models(""));
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(o.evidence[0].message.contains("`a1`"), "{o:?}");

        // A named agent's own limit counts; the others need the default's.
        let o = run(
            "llm-budgets",
            &with_models("llm:\n  budgets:\n    agents: { a1: { tokens_per_minute: 50000 } }\n"),
        );
        assert_eq!(o.status, Status::Passed, "{o:?}");
        let two = with_models(
            "llm:\n  budgets:\n    agents: { a1: { tokens_per_minute: 50000 } }\n",
        )
        .replacen(
            "tools:\n",
            "  - id: b2\n    owner: alice\n    purpose: Drafts replies to customer mail for review\n    clearance: internal\ntools:\n",
            1,
        );
        let o = run("llm-budgets", &two);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(o.summary.starts_with("1 of 2 agents"), "{o:?}");
        assert!(
            o.evidence[0].message.contains("`b2`") && !o.evidence[0].message.contains("`a1`"),
            "{o:?}"
        );
    }

    #[test]
    fn wildcards_are_found_where_written() {
        assert_eq!(run("wildcard-tool-grants", BASE).status, Status::Passed);
        let yaml = BASE.replace(
            "grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools",
            "grants: { tools: [crm.query, \"*\"], datasets: [customers], destinations: [mail] }\ntools",
        );
        let o = run("wildcard-tool-grants", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.evidence[0].field.as_deref(),
            Some("agents[0].grants.tools[1]")
        );
        let yaml = BASE.replace(
            "grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\nusers",
            "grants: { tools: [\"*\"], datasets: [customers], destinations: [mail] }\nusers",
        );
        assert_eq!(run("group-wildcard-grants", &yaml).status, Status::Failed);
        assert_eq!(run("group-wildcard-grants", BASE).status, Status::Passed);
    }

    #[test]
    fn destructive_and_write_grants_are_flagged() {
        assert_eq!(run("destructive-tool-grants", BASE).status, Status::Passed);
        let yaml = BASE.replace("tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools", "tools: [crm.query, crm.delete], datasets: [customers], writable_datasets: [customers], destinations: [mail] }\ntools")
            .replace("grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\nusers", "grants: { tools: [crm.query, crm.delete], datasets: [customers], writable_datasets: [customers], destinations: [mail] }\nusers");
        let o = run("destructive-tool-grants", &yaml);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert!(o.evidence[0].message.contains("crm.delete"));
        assert_eq!(
            run("write-sensitive-datasets", &yaml).status,
            Status::Investigate
        );
        assert_eq!(run("write-sensitive-datasets", BASE).status, Status::Passed);
    }

    #[test]
    fn approvals_and_risk() {
        assert_eq!(run("approver-group", BASE).status, Status::Failed);
        let yaml = format!(
            "{BASE}settings:\n  approvers: staff\n  approval_ttl_seconds: 600\n  risk_medium: 40\n  risk_high: 90\n"
        );
        assert_eq!(run("approver-group", &yaml).status, Status::Passed);
        assert_eq!(run("approval-ttl", &yaml).status, Status::Passed);
        assert_eq!(run("approval-ttl", BASE).status, Status::Passed);
        let o = run("risk-thresholds", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.evidence[0].field.as_deref(), Some("settings.risk_high"));
        let yaml = format!("{BASE}settings:\n  approval_ttl_seconds: 172800\n");
        assert_eq!(run("approval-ttl", &yaml).status, Status::Failed);
    }

    #[test]
    fn clearance_concentration() {
        assert_eq!(run("clearance-concentration", BASE).status, Status::Passed);
        let yaml = BASE
            .replace("    clearance: confidential\n  - id: nobody", "    clearance: highly_confidential\n  - id: nobody\n    clearance: highly_confidential");
        assert_eq!(
            run("clearance-concentration", &yaml).status,
            Status::Investigate
        );
    }
}

//! Checks: identity — agents, owners, tokens, the identity provider, delegation.

use std::collections::{BTreeMap, BTreeSet};

use zt4ai_core::inventory::{AgentState, Grants, JwksSource};

use super::{Check, Deployment};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "agent-owner",
        about: "every agent's owner is a known user who still holds rights",
        run: agent_owner,
    },
    Check {
        id: "agent-grants-within-owner",
        about: "an agent's grants are within its owner's rights",
        run: grants_within_owner,
    },
    Check {
        id: "agent-clearance-within-owner",
        about: "an agent's clearance is not above its owner's",
        run: clearance_within_owner,
    },
    Check {
        id: "agent-purpose",
        about: "every agent has a documented purpose",
        run: agent_purpose,
    },
    Check {
        id: "token-lifetime",
        about: "delegated agent tokens are short-lived",
        run: token_lifetime,
    },
    Check {
        id: "sender-constrained-tokens",
        about: "delegated agent tokens are bound to the agent's key (DPoP)",
        run: sender_constrained_tokens,
    },
    Check {
        id: "clock-skew",
        about: "accepted clock skew is small",
        run: clock_skew,
    },
    Check {
        id: "chain-depth",
        about: "delegation chains are short",
        run: chain_depth,
    },
    Check {
        id: "client-secrets",
        about: "agents prove themselves with keys, not shared secrets",
        run: client_secrets,
    },
    Check {
        id: "external-idp",
        about: "users come from the organisation's identity provider",
        run: external_idp,
    },
    Check {
        id: "idp-jwks-transport",
        about: "the identity provider's keys are fetched over HTTPS or read from a file",
        run: idp_jwks_transport,
    },
    Check {
        id: "delegation-within-delegator",
        about: "a sub-agent's grants are within its delegator's",
        run: delegation_within_delegator,
    },
    Check {
        id: "delegation-acyclic",
        about: "no delegation cycles",
        run: delegation_acyclic,
    },
    Check {
        id: "retired-agents-hold-grants",
        about: "suspended and retired agents hold no grants",
        run: retired_hold_grants,
    },
];

/// Longest accepted delegated-token lifetime that passes, and the one that fails.
const TOKEN_TTL_PASS: u64 = 15 * 60;
const TOKEN_TTL_FAIL: u64 = 60 * 60;
const SKEW_PASS: u64 = 120;
const CHAIN_DEPTH_PASS: usize = 4;
const PURPOSE_MIN: usize = 20;

fn has_grants(g: &Grants) -> bool {
    !(g.tools.is_empty()
        && g.servers.is_empty()
        && g.datasets.is_empty()
        && g.writable_datasets.is_empty()
        && g.destinations.is_empty()
        && g.models.is_empty())
}

fn agent_owner(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for (id, agent) in &inv.agents {
        match inv.users.get(&agent.owner) {
            None => problems.push(d.at_entity(
                "agents",
                id.as_str(),
                "owner",
                format!("`{id}`'s owner `{}` is not a known user", agent.owner),
            )),
            Some(u) if !has_grants(&u.rights) => problems.push(d.at_entity(
                "agents",
                id.as_str(),
                "owner",
                format!(
                    "`{id}`'s owner `{}` holds no rights (no groups, no grants): nobody accountable can use what the agent does",
                    agent.owner
                ),
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Outcome::passed(format!(
            "all {} agents have an owner who holds rights",
            inv.agents.len()
        ))
    } else {
        Outcome::failed(format!(
            "{} agents have no accountable owner",
            problems.len()
        ))
        .with(problems)
    }
}

/// What `inner` holds that `outer` does not, by kind (`tools`, `datasets`, …).
fn excess(inner: &Grants, outer: &Grants, d: &Deployment) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let tools: Vec<String> = inner
        .tools
        .iter()
        .filter(|t| match d.inventory.tools.get(*t) {
            Some(tool) => !outer.allows_tool(tool),
            None => !outer.tools.contains(*t),
        })
        .cloned()
        .chain(
            inner
                .servers
                .iter()
                .filter(|s| !outer.servers.contains(*s))
                .map(|s| format!("{s}.*")),
        )
        .collect();
    if !tools.is_empty() {
        out.insert("tools", tools);
    }
    for (kind, a, b) in [
        ("datasets", &inner.datasets, &outer.datasets),
        (
            "writable_datasets",
            &inner.writable_datasets,
            &outer.writable_datasets,
        ),
        ("destinations", &inner.destinations, &outer.destinations),
        ("models", &inner.models, &outer.models),
    ] {
        let extra: Vec<String> = a.difference(b).cloned().collect();
        if !extra.is_empty() {
            out.insert(kind, extra);
        }
    }
    out
}

fn grants_within_owner(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for (id, agent) in &inv.agents {
        let Some(owner) = inv.users.get(&agent.owner) else {
            continue;
        };
        for (kind, extra) in excess(&agent.grants, &owner.rights, d) {
            problems.push(d.at_entity(
                "agents",
                id.as_str(),
                &format!("grants.{kind}"),
                format!(
                    "`{id}` is granted {kind} its owner `{}` does not hold: {}",
                    agent.owner,
                    extra.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed("every agent's grants are within its owner's rights")
    } else {
        Outcome::failed(format!(
            "{} grants go beyond the owner's rights (they are dead weight at best: authority is the intersection along the chain, but whoever edits the owner's groups next silently widens the agent)",
            problems.len()
        ))
        .with(problems)
    }
}

fn clearance_within_owner(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let problems: Vec<Evidence> = inv
        .agents
        .iter()
        .filter_map(|(id, a)| {
            let owner = inv.users.get(&a.owner)?;
            (a.clearance > owner.clearance).then(|| {
                d.at_entity(
                    "agents",
                    id.as_str(),
                    "clearance",
                    format!(
                        "`{id}` is cleared for {} but its owner `{}` only for {}",
                        a.clearance, a.owner, owner.clearance
                    ),
                )
            })
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("no agent is cleared above its owner")
    } else {
        Outcome::failed(format!(
            "{} agents are cleared above their owners",
            problems.len()
        ))
        .with(problems)
    }
}

fn agent_purpose(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .inventory
        .agents
        .iter()
        .filter(|(_, a)| a.purpose.trim().chars().count() < PURPOSE_MIN)
        .map(|(id, a)| {
            d.at_entity(
                "agents",
                id.as_str(),
                "purpose",
                format!(
                    "`{id}`'s purpose {:?} is too short to review its grants against",
                    a.purpose.trim()
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("every agent has a documented purpose")
    } else {
        Outcome::failed(format!(
            "{} agents have no meaningful purpose (at least {PURPOSE_MIN} characters)",
            problems.len()
        ))
        .with(problems)
    }
}

/// Evidence at an identity setting: the field if written, else the section (or
/// the file's top) with a note that the default applies.
fn identity_setting(d: &Deployment, field: &str, message: String) -> Evidence {
    d.at(&format!("identity.{field}"), message)
}

fn token_lifetime(d: &Deployment) -> Outcome {
    let ttl = d.inventory.identity.token_ttl.as_secs();
    let ev = identity_setting(
        d,
        "token_ttl_seconds",
        format!("delegated agent tokens live {ttl} s"),
    );
    if ttl <= TOKEN_TTL_PASS {
        Outcome::passed(format!(
            "delegated agent tokens live {ttl} s (at most {TOKEN_TTL_PASS} s)"
        ))
        .with(vec![Evidence {
            problem: false,
            ..ev
        }])
    } else if ttl <= TOKEN_TTL_FAIL {
        Outcome::investigate(format!(
            "delegated agent tokens live {ttl} s; a stolen token stays useful that long"
        ))
        .with(vec![ev])
    } else {
        Outcome::failed(format!(
            "delegated agent tokens live {ttl} s, more than {TOKEN_TTL_FAIL} s"
        ))
        .with(vec![ev])
    }
}

fn sender_constrained_tokens(d: &Deployment) -> Outcome {
    if d.inventory.identity.require_dpop {
        Outcome::passed(
            "every delegated token is bound to a key (DPoP): a copied token is useless without it",
        )
    } else {
        Outcome::investigate(
            "delegated tokens may be bearer tokens: whoever copies one out of an agent's runtime, a log or a proxy can use it until it expires",
        )
        .with(vec![identity_setting(
            d,
            "require_dpop",
            "bearer tokens are accepted".into(),
        )])
    }
}

fn clock_skew(d: &Deployment) -> Outcome {
    let skew = d.inventory.identity.clock_skew.as_secs();
    let ev = identity_setting(
        d,
        "clock_skew_seconds",
        format!("tokens are accepted {skew} s outside their validity"),
    );
    if skew <= SKEW_PASS {
        Outcome::passed(format!("accepted clock skew is {skew} s")).with(vec![Evidence {
            problem: false,
            ..ev
        }])
    } else {
        Outcome::failed(format!(
            "accepted clock skew is {skew} s (more than {SKEW_PASS} s stretches every token's life)"
        ))
        .with(vec![ev])
    }
}

fn chain_depth(d: &Deployment) -> Outcome {
    let depth = d.inventory.identity.max_chain_depth;
    let ev = identity_setting(
        d,
        "max_chain_depth",
        format!("actor chains may hold {depth} agents"),
    );
    if depth <= CHAIN_DEPTH_PASS {
        Outcome::passed(format!("actor chains hold at most {depth} agents")).with(vec![Evidence {
            problem: false,
            ..ev
        }])
    } else {
        Outcome::failed(format!(
            "actor chains may hold {depth} agents (more than {CHAIN_DEPTH_PASS} makes who-acted-for-whom hard to follow)"
        ))
        .with(vec![ev])
    }
}

fn client_secrets(d: &Deployment) -> Outcome {
    if d.inventory.identity.allow_client_secrets {
        Outcome::investigate(
            "agents may authenticate with client secrets, which are copied, logged and shared more easily than private keys",
        )
        .with(vec![identity_setting(
            d,
            "allow_client_secrets",
            "client secrets are accepted".into(),
        )])
    } else {
        Outcome::passed("agents authenticate with private-key assertions only")
    }
}

fn external_idp(d: &Deployment) -> Outcome {
    match &d.inventory.identity.provider {
        Some(p) => Outcome::passed(format!("user tokens come from `{}`", p.issuer)),
        None => Outcome::failed(
            "no identity provider is configured: zt4ai's development identity provider vouches for users",
        )
        .with(vec![d.at(
            "identity",
            "no `identity:` section naming the organisation's OIDC issuer",
        )]),
    }
}

pub(crate) fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn idp_jwks_transport(d: &Deployment) -> Outcome {
    let Some(p) = &d.inventory.identity.provider else {
        return Outcome::skipped("no identity provider is configured");
    };
    match &p.jwks {
        JwksSource::File(f) => Outcome::passed(format!("signing keys are read from `{f}`")),
        JwksSource::Url(u) if u.starts_with("https://") => {
            Outcome::passed(format!("signing keys are fetched from `{u}`"))
        }
        JwksSource::Url(u) if is_loopback_url(u) => Outcome::investigate(format!(
            "signing keys are fetched over plain HTTP from `{u}` (loopback: fine for a test, not for production)"
        ))
        .with(vec![d.at("identity.jwks_url", "plain HTTP")]),
        JwksSource::Url(u) => Outcome::failed(format!(
            "signing keys are fetched over plain HTTP from `{u}`: whoever is on the path can mint users"
        ))
        .with(vec![d.at("identity.jwks_url", "plain HTTP")]),
    }
}

fn delegation_within_delegator(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for (id, agent) in &inv.agents {
        for sub in &agent.delegates_to {
            let Some(s) = inv.agents.get(sub) else {
                continue;
            };
            for (kind, extra) in excess(&s.grants, &agent.grants, d) {
                problems.push(d.at_entity(
                    "agents",
                    sub.as_str(),
                    &format!("grants.{kind}"),
                    format!(
                        "sub-agent `{sub}` (delegated to by `{id}`) holds {kind} `{id}` does not: {}",
                        extra.join(", ")
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Outcome::passed("every sub-agent's grants are within its delegator's")
    } else {
        Outcome::investigate(format!(
            "{} sub-agent grants exceed the delegator's; the chain's intersection limits them when delegated, but not when the sub-agent is called directly",
            problems.len()
        ))
        .with(problems)
    }
}

fn delegation_acyclic(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    // Iterative depth-first search; colour 1 = on the path, 2 = done.
    let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
    let mut cycles: BTreeSet<String> = BTreeSet::new();
    for start in inv.agents.keys() {
        if colour.contains_key(start.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(
            start.as_str(),
            inv.agents[start]
                .delegates_to
                .iter()
                .map(|a| a.as_str())
                .collect(),
        )];
        colour.insert(start.as_str(), 1);
        while let Some((node, rest)) = stack.last_mut() {
            let node: &str = node;
            match rest.pop() {
                Some(next) => match colour.get(next) {
                    Some(1) => {
                        cycles.insert(next.to_owned());
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(next, 1);
                        let succ = inv
                            .agents
                            .iter()
                            .find(|(k, _)| k.as_str() == next)
                            .map(|(_, a)| a.delegates_to.iter().map(|x| x.as_str()).collect())
                            .unwrap_or_default();
                        stack.push((next, succ));
                    }
                },
                None => {
                    colour.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
    if cycles.is_empty() {
        Outcome::passed("delegation has no cycles")
    } else {
        Outcome::failed(format!(
            "delegation cycles through {}: agents can hand authority back and forth",
            cycles.iter().cloned().collect::<Vec<_>>().join(", ")
        ))
        .with(
            cycles
                .iter()
                .map(|a| d.at_entity("agents", a, "delegates_to", format!("`{a}` is on a cycle")))
                .collect(),
        )
    }
}

fn retired_hold_grants(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .inventory
        .agents
        .iter()
        .filter(|(_, a)| a.state != AgentState::Active && has_grants(&a.grants))
        .map(|(id, a)| {
            d.at_entity(
                "agents",
                id.as_str(),
                "grants",
                format!(
                    "`{id}` is {} but still holds grants; resuming it restores them unreviewed",
                    a.state.as_str()
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("no suspended or retired agent holds grants")
    } else {
        Outcome::investigate(format!(
            "{} suspended or retired agents still hold grants",
            problems.len()
        ))
        .with(problems)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Status;
    use crate::checks::Options;

    pub(crate) fn load(yaml: &str) -> Deployment {
        Deployment::load(
            yaml,
            "inventory.yaml",
            Vec::new(),
            Options {
                dormant_days: 30,
                now: 1_800_000_000,
            },
        )
        .unwrap()
    }

    pub(crate) const BASE: &str = "\
organisation: Test
groups:
  - id: staff
    grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }
users:
  - id: alice
    groups: [staff]
    clearance: confidential
  - id: nobody
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
    annotations: { read_only: true, open_world: false }
    output: { label: confidential, categories: [pii] }
    bindings: [{ argument: table, resource: dataset }]
  - server: crm
    name: delete
    description: Delete a CRM record
    annotations: { read_only: false, destructive: true, open_world: false }
    bindings: [{ argument: table, resource: dataset, access: write }]
datasets:
  - { id: customers, label: confidential, categories: [pii] }
destinations:
  - { id: mail, mail_domains: [test.example], clearance: confidential, external: false }
  - { id: internet, default: true, clearance: public, external: true }
";

    fn run(id: &str, yaml: &str) -> Outcome {
        (crate::checks::find(id).unwrap().run)(&load(yaml))
    }

    #[test]
    fn owner_without_rights_fails_and_names_the_line() {
        assert_eq!(run("agent-owner", BASE).status, Status::Passed);
        let yaml = BASE.replace("    owner: alice", "    owner: nobody");
        let o = run("agent-owner", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.evidence[0].line, Some(12));
        assert_eq!(o.evidence[0].field.as_deref(), Some("agents[0].owner"));
    }

    #[test]
    fn grants_beyond_the_owner_fail() {
        assert_eq!(
            run("agent-grants-within-owner", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools",
            "grants: { tools: [crm.*], datasets: [customers], destinations: [mail, internet] }\ntools",
        );
        let o = run("agent-grants-within-owner", &yaml);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        let text: Vec<&str> = o.evidence.iter().map(|e| e.message.as_str()).collect();
        assert!(
            text[0].contains("crm.*") || text[1].contains("crm.*"),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("internet")), "{text:?}");
    }

    #[test]
    fn clearance_above_owner_fails() {
        assert_eq!(
            run("agent-clearance-within-owner", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "    clearance: confidential\n    grants",
            "    clearance: highly_confidential\n    grants",
        );
        assert_eq!(
            run("agent-clearance-within-owner", &yaml).status,
            Status::Failed
        );
    }

    #[test]
    fn token_settings_are_graded() {
        assert_eq!(run("token-lifetime", BASE).status, Status::Passed);
        let idp = "identity:\n  issuer: https://idp.test.example\n  audience: zt4ai\n  jwks_file: jwks.json\n";
        let with = |extra: &str| format!("{BASE}{idp}{extra}");
        assert_eq!(
            run("token-lifetime", &with("  token_ttl_seconds: 1800\n")).status,
            Status::Investigate
        );
        let o = run("token-lifetime", &with("  token_ttl_seconds: 86400\n"));
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.evidence[0].field.as_deref(),
            Some("identity.token_ttl_seconds")
        );
        assert_eq!(
            run("clock-skew", &with("  clock_skew_seconds: 250\n")).status,
            Status::Failed
        );
        let o = run("sender-constrained-tokens", &with(""));
        assert_eq!(o.status, Status::Investigate);
        assert_eq!(
            o.evidence[0].field.as_deref(),
            Some("identity.require_dpop")
        );
        assert_eq!(
            run("sender-constrained-tokens", &with("  require_dpop: true\n")).status,
            Status::Passed
        );
        assert_eq!(
            run("chain-depth", &with("  max_chain_depth: 8\n")).status,
            Status::Failed
        );
        assert_eq!(run("client-secrets", BASE).status, Status::Investigate);
        assert_eq!(
            run("client-secrets", &with("  allow_client_secrets: false\n")).status,
            Status::Passed
        );
        assert_eq!(run("external-idp", BASE).status, Status::Failed);
        assert_eq!(run("external-idp", &with("")).status, Status::Passed);
        assert_eq!(run("idp-jwks-transport", BASE).status, Status::Skipped);
        assert_eq!(run("idp-jwks-transport", &with("")).status, Status::Passed);
    }

    #[test]
    fn plain_http_jwks_is_graded_by_host() {
        let idp = |url: &str| {
            format!(
                "{BASE}identity:\n  issuer: https://idp.test.example\n  audience: zt4ai\n  jwks_url: {url}\n"
            )
        };
        assert_eq!(
            run("idp-jwks-transport", &idp("http://127.0.0.1:9/jwks")).status,
            Status::Investigate
        );
        assert_eq!(
            run("idp-jwks-transport", &idp("https://idp.test.example/jwks")).status,
            Status::Passed
        );
        assert!(is_loopback_url("http://localhost:80/x"));
        assert!(is_loopback_url("http://[::1]:80/x"));
        assert!(!is_loopback_url("http://idp.test.example/jwks"));
        assert!(!is_loopback_url("http://127.0.0.1.evil.example/jwks"));
    }

    #[test]
    fn delegation_is_checked() {
        let yaml = BASE.replace(
            "agents:\n",
            "agents:\n  - id: sub\n    owner: alice\n    purpose: A sub-agent that reads the customer table\n    grants: { tools: [crm.query, crm.delete] }\n    delegates_to: [a1]\n",
        )
        .replace(
            "grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\ntools",
            "grants: { tools: [crm.query], datasets: [customers], destinations: [mail] }\n    delegates_to: [sub]\ntools",
        );
        let o = run("delegation-within-delegator", &yaml);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert!(o.evidence[0].message.contains("crm.delete"));
        let o = run("delegation-acyclic", &yaml);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert_eq!(run("delegation-acyclic", BASE).status, Status::Passed);
    }

    #[test]
    fn purpose_and_retired_agents() {
        assert_eq!(run("agent-purpose", BASE).status, Status::Passed);
        let yaml = BASE.replace(
            "Summarises customer accounts for account managers",
            "reports",
        );
        assert_eq!(run("agent-purpose", &yaml).status, Status::Failed);
        assert_eq!(
            run("retired-agents-hold-grants", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "    clearance: confidential\n    grants",
            "    state: suspended\n    clearance: confidential\n    grants",
        );
        assert_eq!(
            run("retired-agents-hold-grants", &yaml).status,
            Status::Investigate
        );
    }
}

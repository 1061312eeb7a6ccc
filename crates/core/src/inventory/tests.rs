use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/acme/inventory.yaml");

fn load(text: &str) -> Result<Inventory, LoadError> {
    Inventory::from_yaml_str(text, "inv.yaml")
}

fn replace_once(text: String, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from}");
    text.replace(from, to)
}

fn only_error(text: &str) -> ConfigError {
    let err = load(text).expect_err("inventory should be rejected");
    assert_eq!(err.errors.len(), 1, "{err}");
    err.errors[0].clone()
}

#[test]
fn example_inventory_resolves() {
    let inv = load(EXAMPLE).unwrap();
    assert_eq!(inv.default_destination, "internet");
    let alice = &inv.users[&UserId::new("alice").unwrap()];
    assert!(
        alice.rights.allows_tool(&inv.tools["crm.update_record"]),
        "crm.* grants the server's tools"
    );
    assert!(alice.rights.datasets.contains("customers"));
    let bob = &inv.users[&UserId::new("bob").unwrap()];
    assert!(!bob.rights.datasets.contains("customers"));
    let web = &inv.tools["web.fetch"];
    assert!(!web.output_trusted && web.spotlight.is_some() && !web.is_consequential());
    assert!(inv.tools["mail.send_email"].is_consequential());
    assert!(inv.categories.iter().any(|c| c.as_str() == "pii"));
}

#[test]
fn destinations_resolve_by_domain_and_default() {
    let inv = load(EXAMPLE).unwrap();
    let (d, _) = inv.resolve_destination("carol@acme.example").unwrap();
    assert_eq!(d.id, "acme-mail");
    let (d, _) = inv
        .resolve_destination("https://wiki.acme.example/page")
        .unwrap();
    assert_eq!(d.id, "acme-mail");
    let (d, _) = inv.resolve_destination("eve@competitor.example").unwrap();
    assert_eq!(d.id, "internet");
    // A look-alike suffix is not a subdomain.
    let (d, _) = inv
        .resolve_destination("https://evilacme.example/")
        .unwrap();
    assert_eq!(d.id, "internet");
    let (d, _) = inv.resolve_destination("x@sub.acme.example").unwrap();
    assert_eq!(
        d.id, "internet",
        "mail_domains has no wildcard for subdomains"
    );
    assert!(inv.resolve_destination("not an address@").is_err());
}

#[test]
fn unknown_field_is_rejected_with_line_and_field() {
    let e = only_error("users:\n  - id: alice\n    clearence: internal\n");
    assert_eq!(e.file, "inv.yaml");
    assert_eq!(e.line, 3);
    assert_eq!(e.field, "users[0].clearence");
    assert!(
        e.message.contains("unknown field `clearence`"),
        "{}",
        e.message
    );
    assert!(e.to_string().starts_with("inv.yaml:3:"), "{e}");
}

#[test]
fn wrong_type_names_the_field() {
    let e = only_error("users:\n  - id: alice\n    clearance: secret\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.field, "users[0].clearance");
    assert!(e.message.contains("secret"), "{}", e.message);
}

#[test]
fn agent_without_known_owner_is_rejected() {
    let e = only_error(
        "users:\n  - id: alice\nagents:\n  - id: a1\n    owner: alise\n    purpose: test\n",
    );
    assert_eq!((e.line, e.field.as_str()), (5, "agents[0].owner"));
    assert!(e.message.contains("unknown user `alise`"), "{}", e.message);
    assert!(e.message.contains("did you mean `alice`?"), "{}", e.message);
    let e = only_error("agents:\n  - id: a1\n    purpose: test\n");
    assert!(e.message.contains("missing field `owner`"), "{}", e.message);
}

#[test]
fn unknown_grant_targets_are_located() {
    let text = "tools:\n  - server: crm\n    name: query\nagents: []\ngroups:\n  - id: g\n    grants:\n      tools: [crm.qeury, nope.*]\n      datasets: [ghost]\n";
    let err = load(text).unwrap_err();
    let fields: Vec<_> = err
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (8, "groups[0].grants.tools[0]"),
            (8, "groups[0].grants.tools[1]"),
            (9, "groups[0].grants.datasets[0]")
        ]
    );
    assert!(err.errors[0].message.contains("did you mean `crm.query`?"));
}

#[test]
fn default_destination_must_be_public_and_external() {
    let e = only_error(
        "destinations:\n  - id: net\n    default: true\n    clearance: internal\n    external: true\n",
    );
    assert_eq!(e.field, "destinations[0].clearance");
    assert_eq!(e.line, 4);
}

#[test]
fn missing_default_destination_is_added_with_lowest_clearance() {
    let inv = load("destinations:\n  - id: corp\n    mail_domains: [corp.example]\n    clearance: confidential\n    external: false\n").unwrap();
    let (d, _) = inv.resolve_destination("x@elsewhere.example").unwrap();
    assert_eq!(d.id, UNKNOWN_DESTINATION);
    assert_eq!(d.clearance, Label::Public);
    assert!(d.external);
}

#[test]
fn duplicate_ids_and_claimed_domains_are_rejected() {
    let err = load("datasets:\n  - {id: a, label: public}\n  - {id: a, label: internal}\ndestinations:\n  - {id: x, mail_domains: [a.example], clearance: public, external: true}\n  - {id: y, mail_domains: [A.example], clearance: internal, external: true}\n").unwrap_err();
    let msgs: Vec<_> = err.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("dataset `a` is declared twice")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("already claimed by destination `x`")),
        "{msgs:?}"
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let e = only_error("users:\n  - id: alice\n   groups: [x\n");
    assert!(e.line >= 2, "{e}");
}

#[test]
fn bound_values_split_recipients_and_reject_bad_types() {
    use crate::request::bound_values;
    let inv = load(EXAMPLE).unwrap();
    let mail = &inv.tools["mail.send_email"];
    let args = serde_json::json!({"to": "a@acme.example, b@evil.example", "cc": ["c@acme.example"], "subject": "x"});
    let vals: Vec<_> = bound_values(mail, &args)
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect();
    assert_eq!(vals, ["a@acme.example", "b@evil.example", "c@acme.example"]);
    assert!(bound_values(mail, &serde_json::json!({"to": 5})).is_err());
    assert!(bound_values(mail, &serde_json::json!({"to": [null]})).is_err());
    assert!(bound_values(mail, &serde_json::json!(["x"])).is_err());
    // `cc` is optional; `to` is not: leaving it out, or empty, is refused.
    assert_eq!(
        bound_values(mail, &serde_json::json!({"to": "a@acme.example"}))
            .unwrap()
            .len(),
        1
    );
    for missing in [
        serde_json::json!({"cc": "c@acme.example"}),
        serde_json::json!({"to": " , "}),
        serde_json::json!({"to": []}),
        serde_json::Value::Null,
    ] {
        let e = bound_values(mail, &missing).unwrap_err();
        assert!(
            matches!(&e, crate::RequestError::MissingArgument { argument, .. } if argument == "to"),
            "{missing}: {e}"
        );
    }
    let query = &inv.tools["crm.query"];
    assert!(bound_values(query, &serde_json::json!({})).is_err());
}

#[test]
fn the_images_a_provider_fetches_are_found_but_not_inline_ones() {
    use crate::request::provider_fetches;
    let prompt = serde_json::json!({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://img.example/a.png?d=x"}},
            {"type": "image_url", "image_url": {"url": " DATA:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": "http://legacy.example/b.png"}
        ]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://odd.example/c"}}]}
    ]});
    assert_eq!(
        provider_fetches(&prompt),
        [
            "https://img.example/a.png?d=x",
            "http://legacy.example/b.png",
            "ftp://odd.example/c"
        ]
    );
    assert!(provider_fetches(&serde_json::Value::Null).is_empty());
}

#[test]
fn unbound_recipients_of_a_sending_tool_are_found() {
    use crate::request::unbound_recipients;
    let inv = load(EXAMPLE).unwrap();
    let mail = &inv.tools["mail.send_email"];
    let args = serde_json::json!({
        "to": "board@acme.example",
        "cc": "c@acme.example",
        "forward_to": "Rival Desk <desk@rival.example>; x@evil.example",
        "sender": "hello, Doe, Jane <jd@rival.example>",
        "notes": "customers:\njane@client.example\njohn@client.example",
        "list": "a@rival.example\nb@rival.example",
        "headers": {"reply-to": ["r@rival.example"]},
        "recipients": [{"email": "n@rival.example"}],
        "subject": "Q3 numbers, as promised",
        "body": "the list is attached; write to ops@acme.example with questions",
        "signature": "Alice <alice@acme>",
        "count": 3
    });
    let mut found: Vec<(String, String)> = unbound_recipients(mail, &args)
        .into_iter()
        .map(|v| (v.argument, v.value))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                "forward_to".into(),
                "Rival Desk <desk@rival.example>".into()
            ),
            ("forward_to".into(), "x@evil.example".into()),
            ("headers.reply-to".into(), "r@rival.example".into()),
            ("list".into(), "a@rival.example".into()),
            ("list".into(), "b@rival.example".into()),
            ("recipients.email".into(), "n@rival.example".into()),
            ("sender".into(), "Jane <jd@rival.example>".into()),
        ]
    );
    // A read-only tool reaches out only where its bound URL says, and a tool
    // that binds no destination is not taken for a sender.
    let fetch = serde_json::json!({"url": "https://acme.example", "contact": "x@evil.example"});
    assert!(unbound_recipients(&inv.tools["web.fetch"], &fetch).is_empty());
    let query = serde_json::json!({"table": "customers", "owner": "x@evil.example"});
    assert!(unbound_recipients(&inv.tools["crm.query"], &query).is_empty());
}

#[test]
fn identity_section_errors_are_located() {
    let e = only_error(
        "identity:\n  issuer: https://idp.example\n  audience: zt4ai\n  jwks_url: http://idp.example/jwks\n",
    );
    assert_eq!((e.line, e.field.as_str()), (4, "identity.jwks_url"));
    assert!(e.message.contains("https, or http on a loopback"), "{e}");
    let e = only_error(
        "identity:\n  issuer: https://idp.example\n  audience: zt4ai\n  jwks_file: k.json\n  algorithms: [RS256, HS256]\n",
    );
    assert_eq!(e.field, "identity.algorithms[1]");
    assert_eq!(e.line, 5);
    let e = only_error(
        "identity:\n  issuer: x\n  audience: y\n  jwks_file: k.json\n  max_chain_depth: 20\n",
    );
    assert_eq!(e.field, "identity.max_chain_depth");
    let e =
        only_error("identity:\n  issuer: x\n  audience: y\n  jwks_file: k.json\n  surprise: 1\n");
    assert!(e.message.contains("unknown field `surprise`"), "{e}");
    let inv = load("identity:\n  issuer: x\n  audience: y\n  jwks_url: http://127.0.0.1:9/jwks\n")
        .unwrap();
    let p = inv.identity.provider.unwrap();
    assert_eq!(p.user_claim, "sub");
    assert!(
        !inv.identity.allow_client_secrets,
        "secrets off with a real IdP"
    );
    assert!(!inv.identity.require_dpop, "bearer tokens by default");
    let base = "identity:\n  issuer: x\n  audience: y\n  jwks_file: k.json\n";
    assert!(
        load(&format!("{base}  require_dpop: true\n"))
            .unwrap()
            .identity
            .require_dpop
    );
    let e = only_error(&format!("{base}  require_dpop: sometimes\n"));
    assert_eq!(
        (e.line, e.field.as_str()),
        (5, "identity.require_dpop"),
        "{e}"
    );
}

#[test]
fn delegation_targets_must_be_agents() {
    let e = only_error(
        "users:\n  - id: u\nagents:\n  - id: a\n    owner: u\n    purpose: p\n    delegates_to: [b, a]\n  - id: b\n    owner: u\n    purpose: p\n",
    );
    assert_eq!(e.field, "agents[0].delegates_to[1]");
    assert!(e.message.contains("itself"), "{e}");
    let inv = load(EXAMPLE).unwrap();
    let ra = &inv.agents[&AgentId::new("report-agent").unwrap()];
    assert!(
        ra.delegates_to
            .contains(&AgentId::new("summariser").unwrap())
    );
}

fn with_mcp(section: &str) -> String {
    EXAMPLE.replace("settings:", &format!("mcp_servers:\n{section}settings:"))
}

#[test]
fn mcp_servers_resolve_http_and_stdio_with_defaults() {
    let inv = load(&with_mcp(
        "  - id: crm\n    url: http://127.0.0.1:9001/mcp\n  - id: mail\n    command: [mail-mcp, --quiet]\n    env: { SMTP_HOST: localhost }\n    prefix: mail__\n    timeout_ms: 500\n",
    ))
    .unwrap();
    let crm = &inv.mcp_servers["crm"];
    assert_eq!(crm.prefix, "crm.");
    assert_eq!(
        crm.timeout,
        std::time::Duration::from_millis(DEFAULT_MCP_TIMEOUT_MS)
    );
    let mail = &inv.mcp_servers["mail"];
    assert_eq!(mail.prefix, "mail__");
    assert_eq!(mail.timeout, std::time::Duration::from_millis(500));
    let McpTransport::Stdio { program, args, env } = &mail.transport else {
        panic!("stdio expected: {mail:?}")
    };
    assert_eq!(
        (program.as_str(), args.as_slice()),
        ("mail-mcp", ["--quiet".to_owned()].as_slice())
    );
    assert_eq!(env["SMTP_HOST"], "localhost");
}

#[test]
fn mcp_server_errors_are_located() {
    let e = only_error(&with_mcp(
        "  - id: crm\n    url: http://127.0.0.1:9001/mcp\n    command: [crm-mcp]\n",
    ));
    assert_eq!(e.field, "mcp_servers[0].command");
    assert!(e.message.contains("not both"), "{e}");
    assert!(e.line > 1, "{e}");
    let e = only_error(&with_mcp("  - id: crm\n"));
    assert!(e.message.contains("needs `url`"), "{e}");
    let e = only_error(&with_mcp("  - id: crm\n    command: []\n"));
    assert_eq!(e.field, "mcp_servers[0].command");
    let e = only_error(&with_mcp(
        "  - id: crm\n    url: http://127.0.0.1:1/mcp\n    prefix: tools\n  - id: mail\n    url: http://127.0.0.1:2/mcp\n    prefix: tools_mail\n",
    ));
    assert_eq!(e.field, "mcp_servers[1].prefix");
    assert!(e.message.contains("ambiguous"), "{e}");
    let e = only_error(&with_mcp(
        "  - id: crm\n    url: http://127.0.0.1:1/mcp\n    timeout_ms: 0\n",
    ));
    assert_eq!(e.field, "mcp_servers[0].timeout_ms");
    let e = only_error(&with_mcp(
        "  - id: crm\n    url: http://127.0.0.1:1/mcp\n    env: { A: b }\n",
    ));
    assert_eq!(e.field, "mcp_servers[0].env");
    let e = only_error(&with_mcp(
        "  - id: crm\n    url: https://crm.vendor.example/mcp\n    reaches: partner-portl\n",
    ));
    assert_eq!(e.field, "mcp_servers[0].reaches");
    assert!(e.message.contains("did you mean `partner-portal`"), "{e}");
    assert!(e.line > 1, "{e}");
    let inv = load(&with_mcp(
        "  - id: crm\n    url: https://crm.vendor.example/mcp\n    reaches: partner-portal\n",
    ))
    .unwrap();
    assert_eq!(
        inv.mcp_servers["crm"].reaches.as_deref(),
        Some("partner-portal")
    );
}

#[test]
fn every_synthetic_tool_call_carries_the_arguments_its_bindings_need() {
    use super::synthetic::{Sizes, generate, requests};
    let sizes = Sizes {
        agents: 100,
        tools: 1000,
        policies: 185,
    };
    let (yaml, _) = generate(sizes);
    let inv = load(&yaml).unwrap();
    let mut calls = 0;
    for r in requests(sizes, 4096, 4) {
        if let crate::Action::CallTool { tool, arguments } = &r.action {
            let t = &inv.tools[tool];
            crate::request::bound_values(t, arguments)
                .unwrap_or_else(|e| panic!("{tool} {arguments}: {e}"));
            calls += 1;
        }
    }
    assert!(calls > 1000, "{calls}");
}

#[test]
fn inspection_section_resolves_with_defaults_and_spotlight_modes() {
    let inv = load(EXAMPLE).unwrap();
    assert_eq!(inv.inspection, Inspection::default());
    assert_eq!(
        inv.tools["web.fetch"].spotlight,
        Some(SpotlightMode::Delimit)
    );
    let text = EXAMPLE
        .replacen(
            "destinations:\n",
            "inspection:\n  injection_threshold: 0.9\n  sensitive_egress: redact\n  dictionaries:\n    - name: customer_name\n      category: customer\n      terms: [Jane Roe, Globex]\n\ndestinations:\n",
            1,
        )
        .replace("spotlight: true", "spotlight: datamark");
    let inv = load(&text).unwrap();
    assert_eq!(inv.inspection.injection_threshold, Some(0.9));
    assert_eq!(inv.inspection.sensitive_egress, SensitiveEgress::Redact);
    let d = &inv.inspection.dictionaries[0];
    assert_eq!(
        (d.name.as_str(), d.category.as_str(), d.label, d.terms.len()),
        ("customer_name", "customer", Label::Confidential, 2)
    );
    assert_eq!(
        inv.tools["web.fetch"].spotlight,
        Some(SpotlightMode::Datamark)
    );
}

#[test]
fn inspection_errors_are_located() {
    let with = |section: &str| {
        EXAMPLE.replacen("destinations:\n", &format!("{section}\ndestinations:\n"), 1)
    };
    let e = only_error(&with("inspection:\n  injection_threshold: 1.5\n"));
    assert_eq!(e.field, "inspection.injection_threshold");
    assert!(e.message.contains("`1.5`"), "{}", e.message);
    let e = only_error(&with(
        "inspection:\n  dictionaries:\n    - name: Customer Names\n      category: customer\n      terms: [a]\n",
    ));
    assert_eq!(e.field, "inspection.dictionaries[0].name");
    let e = only_error(&with(
        "inspection:\n  dictionaries:\n    - name: names\n      category: customer\n      terms: []\n",
    ));
    assert_eq!(e.field, "inspection.dictionaries[0].terms");
    let e = only_error(&with("inspection:\n  sensitive_egress: drop\n"));
    assert!(e.message.contains("drop"), "{}", e.message);
    let e = only_error(&EXAMPLE.replace("spotlight: true", "spotlight: wrap"));
    assert!(
        e.message.contains("`delimit`, `datamark` or `encode`"),
        "{}",
        e.message
    );
    assert!(e.line > 1, "{e}");
}

fn with_settings(extra: &str) -> String {
    EXAMPLE.replacen("settings:\n", &format!("settings:\n{extra}"), 1)
}

#[test]
fn continuous_verification_settings_resolve_with_defaults() {
    let inv = load(EXAMPLE).unwrap();
    let s = &inv.settings;
    assert_eq!(s.risk, verification::RiskSettings::default());
    assert_eq!(s.quarantine, verification::QuarantineSettings::default());
    assert!(s.quarantine.on_exfiltration);
    assert_eq!(s.quarantine.denials.map(|d| d.0), Some(10));
    assert_eq!(s.approval_hold, Duration::ZERO);

    let inv = load(&with_settings(
        "  approval_hold_seconds: 30\n  risk:\n    half_life_seconds: 60\n    weights: { new_tool: 40 }\n  quarantine:\n    denials: false\n    at_risk: 90\n    webhook: { url: \"https://soc.example/hook\", secret_file: hook.secret }\n",
    ))
    .unwrap();
    let s = &inv.settings;
    assert_eq!(s.approval_hold, Duration::from_secs(30));
    assert_eq!(s.risk.weight(verification::Signal::NewTool), 40);
    assert_eq!(
        s.risk.weight(verification::Signal::Injection),
        30,
        "the others keep their defaults"
    );
    assert_eq!(s.risk.half_life, Duration::from_secs(60));
    assert_eq!(s.quarantine.denials, None, "`false` turns the trigger off");
    assert_eq!(s.quarantine.at_risk, Some(90));
    let w = s.quarantine.webhook.as_ref().unwrap();
    assert_eq!(
        w.secret,
        verification::SecretSource::File("hook.secret".into())
    );
    assert_eq!(w.attempts, 5);
    // A quarantine section without `denials` keeps the default trigger.
    let inv = load(&with_settings("  quarantine:\n    at_risk: 90\n")).unwrap();
    assert_eq!(inv.settings.quarantine.denials.map(|d| d.0), Some(10));
}

#[test]
fn continuous_verification_mistakes_are_located_errors() {
    let e = only_error(&with_settings("  risk:\n    weights: { new_tools: 10 }\n"));
    assert_eq!(e.field, "settings.risk.weights.new_tools");
    assert!(e.message.contains("new_tool"), "{}", e.message);
    assert_eq!(e.line, 15, "the `weights` line");
    let e = only_error(&with_settings("  risk:\n    weights: { injection: 130 }\n"));
    assert!(e.message.contains("above 100"), "{}", e.message);
    let e = only_error(&with_settings(
        "  quarantine:\n    webhook: { url: \"https://soc.example/hook\" }\n",
    ));
    assert_eq!(e.field, "settings.quarantine.webhook");
    assert!(e.message.contains("secret_env"), "{}", e.message);
    let e = only_error(&with_settings(
        "  quarantine:\n    webhook: { url: \"ftp://soc.example/\", secret_env: S }\n",
    ));
    assert_eq!(e.field, "settings.quarantine.webhook.url");
    let e = only_error(&with_settings(
        "  quarantine:\n    denials: { count: 0, within_seconds: 60 }\n",
    ));
    assert_eq!(e.field, "settings.quarantine.denials");
    let e = only_error(&with_settings("  risk:\n    half_life_seconds: 0\n"));
    assert_eq!(e.field, "settings.risk.half_life_seconds");
}

#[test]
fn llm_settings_resolve_and_their_mistakes_are_located() {
    let with = |section: &str| {
        EXAMPLE.replacen("destinations:\n", &format!("{section}\ndestinations:\n"), 1)
    };
    let upstream = |u: &str| {
        EXAMPLE.replacen(
            "    attested: true\n",
            &format!("    attested: true\n    upstream: {u}\n"),
            1,
        )
    };
    // Defaults: no limits, proposed tool calls stripped, nothing served.
    let inv = load(EXAMPLE).unwrap();
    assert_eq!(inv.llm.tool_calls, llm::ToolCallMode::Strip);
    assert!(!inv.llm.budgets.any() && !inv.llm.require_attested);
    assert!(inv.models["acme-llm"].upstream.is_none());

    let inv = load(&upstream(
        "{ base_url: \"http://127.0.0.1:9/v1/\", api_key_env: KEY }",
    ))
    .unwrap();
    let up = inv.models["acme-llm"].upstream.clone().unwrap();
    assert_eq!(up.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(
        up.model, "acme-llm",
        "the provider's name defaults to the id"
    );
    assert_eq!(
        up.api_key,
        Some(verification::SecretSource::Env("KEY".into()))
    );
    assert_eq!(
        up.timeout,
        Duration::from_millis(llm::DEFAULT_LLM_TIMEOUT_MS)
    );

    // Named budgets inherit the defaults field by field.
    let inv = load(&with(
        "llm:\n  tool_calls: fail\n  budgets:\n    agent: { requests_per_minute: 10, tokens_per_day: 1000 }\n    agents:\n      report-agent: { tokens_per_day: 5000 }\n",
    ))
    .unwrap();
    assert_eq!(inv.llm.tool_calls, llm::ToolCallMode::Fail);
    let b = inv.llm.budgets.for_agent("report-agent");
    assert_eq!(
        (b.requests_per_minute, b.tokens_per_day),
        (Some(10), Some(5000))
    );
    assert_eq!(
        inv.llm.budgets.for_agent("summariser").tokens_per_day,
        Some(1000)
    );
    assert!(inv.llm.budgets.for_user("alice").is_unlimited());

    let e = only_error(&upstream("{ base_url: \"ftp://x/v1\" }"));
    assert_eq!(e.field, "models[0].upstream.base_url");
    assert!(e.line > 0);
    let e = only_error(&upstream(
        "{ base_url: \"http://x/v1\", api_key_env: A, api_key_file: b }",
    ));
    assert_eq!(e.field, "models[0].upstream");
    assert!(e.message.contains("never written inline"), "{}", e.message);
    let e = only_error(&upstream("{ base_url: \"http://x/v1\", timeout_ms: 0 }"));
    assert_eq!(e.field, "models[0].upstream.timeout_ms");
    let e = only_error(&with(
        "llm:\n  budgets:\n    agents:\n      ghost: { requests_per_day: 1 }\n",
    ));
    assert_eq!(e.field, "llm.budgets.agents.ghost");
    assert!(e.message.contains("no agent `ghost`"), "{}", e.message);
    let e = only_error(&with(
        "llm:\n  budgets:\n    user: { tokens_per_minute: 0 }\n",
    ));
    assert_eq!(e.field, "llm.budgets.user.tokens_per_minute");
    let e = only_error(&with("llm:\n  tool_calls: drop\n"));
    assert!(e.message.contains("drop"), "{}", e.message);
}

#[test]
fn destinations_and_models_may_list_the_categories_they_are_cleared_for() {
    let text = replace_once(
        EXAMPLE.to_owned(),
        "    hosts: [portal.partner.example]\n    clearance: internal\n",
        "    hosts: [portal.partner.example]\n    clearance: internal\n    categories: [customer]\n",
    );
    let text = replace_once(
        text,
        "    external: true\n    clearance: internal\n",
        "    external: true\n    clearance: internal\n    categories: []\n",
    );
    let inv = load(&text).unwrap();
    let names = |c: &Option<BTreeSet<Category>>| {
        c.as_ref()
            .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>())
    };
    assert_eq!(
        names(&inv.destinations["partner-portal"].categories),
        Some(vec!["customer".to_owned()])
    );
    assert_eq!(names(&inv.models["frontier-llm"].categories), Some(vec![]));
    assert_eq!(
        inv.destinations["acme-mail"].categories, None,
        "not listed: any"
    );
    let bad = replace_once(
        EXAMPLE.to_owned(),
        "    hosts: [portal.partner.example]\n    clearance: internal\n",
        "    hosts: [portal.partner.example]\n    clearance: internal\n    categories: [Customer]\n",
    );
    let e = only_error(&bad);
    assert!(e.field.starts_with("destinations[1]"), "{e}");
    assert!(e.message.contains("Customer"), "{e}");
}

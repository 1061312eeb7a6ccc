//! LLM gateway settings: where each model is served, what happens to tool
//! calls a model proposes, and budgets per agent and per user.
//!
//! ```yaml
//! models:
//!   - id: acme-llm
//!     provider: self-hosted
//!     external: false
//!     clearance: confidential
//!     upstream:
//!       base_url: http://127.0.0.1:11434/v1   # OpenAI-compatible API root
//!       model: llama3.1                        # the provider's name; default: the id
//!       api_key_env: ACME_LLM_KEY              # or api_key_file; never inline
//!       timeout_ms: 60000
//! llm:
//!   require_attested: false
//!   tool_calls: strip                # annotate | strip | fail
//!   spotlight: delimit               # untrusted messages, before the model sees them
//!   budgets:
//!     agent: { requests_per_minute: 60, tokens_per_day: 2000000 }
//!     user: { tokens_per_minute: 100000 }
//!     agents: { report-agent: { tokens_per_day: 5000000 } }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::raw::SpotlightMode;
use super::verification::SecretSource;

/// The default time limit of a call to a model provider.
pub const DEFAULT_LLM_TIMEOUT_MS: u64 = 60_000;

/// Where a model is served (as written).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// The OpenAI-compatible API root (`https://api.example/v1`); the gateway
    /// posts to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The provider's name for the model. Default: the model's id.
    #[serde(default)]
    pub model: Option<String>,
    /// The environment variable holding the provider's API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file holding the provider's API key (relative to the inventory file).
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// How long a call may take, in milliseconds. Default 60,000.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Where a model is served, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The API root, without a trailing `/`.
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// The API key's source; `None` sends no key (a local server).
    pub api_key: Option<SecretSource>,
    /// Longest a call may take (for a stream: until the last byte).
    pub timeout: Duration,
}

/// What the gateway does with a tool call a model proposes that policy would
/// not allow (denied, or needing a human approval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallMode {
    /// Pass it on, with the verdict in the response's `zt4ai` extension.
    Annotate,
    /// Remove it from the response (the verdict stays in the `zt4ai`
    /// extension).
    #[default]
    Strip,
    /// Fail the whole call (a stream ends with an error event).
    Fail,
}

impl ToolCallMode {
    /// As written in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallMode::Annotate => "annotate",
            ToolCallMode::Strip => "strip",
            ToolCallMode::Fail => "fail",
        }
    }
}

/// Limits for one agent or user (as written); absent fields are unlimited,
/// or inherit the default for a named agent or user.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Model calls per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Model calls per day (UTC).
    #[serde(default)]
    pub requests_per_day: Option<u64>,
    /// Tokens per day (UTC).
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

/// Budgets (as written).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgets {
    /// Every agent's budget, unless named below.
    #[serde(default)]
    pub agent: Option<RawBudget>,
    /// Every user's budget, unless named below.
    #[serde(default)]
    pub user: Option<RawBudget>,
    /// Budgets of named agents; unset fields inherit `agent`.
    #[serde(default)]
    pub agents: BTreeMap<String, RawBudget>,
    /// Budgets of named users; unset fields inherit `user`.
    #[serde(default)]
    pub users: BTreeMap<String, RawBudget>,
}

/// The `llm` section (as written).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlm {
    /// Deny every model whose artifact is not attested.
    #[serde(default)]
    pub require_attested: bool,
    /// What happens to proposed tool calls that policy would not allow.
    #[serde(default)]
    pub tool_calls: ToolCallMode,
    /// How untrusted messages (tool results, retrieved documents) are marked
    /// before the model sees them. Default: not marked.
    #[serde(default)]
    pub spotlight: Option<SpotlightMode>,
    /// Budgets and rate limits.
    #[serde(default)]
    pub budgets: RawBudgets,
    /// Largest response body accepted from a provider, in bytes. Default 8 MiB.
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
}

/// Limits for one agent or user; `None` is unlimited.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Model calls per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Model calls per UTC day.
    pub requests_per_day: Option<u64>,
    /// Tokens per UTC day.
    pub tokens_per_day: Option<u64>,
}

impl Budget {
    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Budget::default()
    }

    fn over(self, raw: &RawBudget) -> Budget {
        Budget {
            requests_per_minute: raw.requests_per_minute.or(self.requests_per_minute),
            tokens_per_minute: raw.tokens_per_minute.or(self.tokens_per_minute),
            requests_per_day: raw.requests_per_day.or(self.requests_per_day),
            tokens_per_day: raw.tokens_per_day.or(self.tokens_per_day),
        }
    }
}

/// Budgets, resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Budgets {
    /// Every agent's, unless named.
    pub agent: Budget,
    /// Every user's, unless named.
    pub user: Budget,
    /// Named agents' (defaults already applied).
    pub agents: BTreeMap<String, Budget>,
    /// Named users' (defaults already applied).
    pub users: BTreeMap<String, Budget>,
}

impl Budgets {
    /// The budget of agent `id`.
    pub fn for_agent(&self, id: &str) -> Budget {
        self.agents.get(id).copied().unwrap_or(self.agent)
    }

    /// The budget of user `id`.
    pub fn for_user(&self, id: &str) -> Budget {
        self.users.get(id).copied().unwrap_or(self.user)
    }

    /// Whether any limit is set anywhere.
    pub fn any(&self) -> bool {
        !self.agent.is_unlimited()
            || !self.user.is_unlimited()
            || self.agents.values().any(|b| !b.is_unlimited())
            || self.users.values().any(|b| !b.is_unlimited())
    }
}

/// The largest provider response accepted by default.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// LLM gateway settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// Deny every model whose artifact is not attested.
    pub require_attested: bool,
    /// What happens to proposed tool calls policy would not allow.
    pub tool_calls: ToolCallMode,
    /// How untrusted messages are marked; `None`: not marked.
    pub spotlight: Option<SpotlightMode>,
    /// Budgets.
    pub budgets: Budgets,
    /// Largest provider response accepted.
    pub max_response_bytes: usize,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            require_attested: false,
            tool_calls: ToolCallMode::default(),
            spotlight: None,
            budgets: Budgets::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Resolves the `llm` section; `known(kind, id)` says whether an agent
/// (`kind` = `agent`) or user exists; `error(field, message)` reports.
pub(crate) fn settings(
    raw: RawLlm,
    known: &dyn Fn(&str, &str) -> bool,
    error: &mut dyn FnMut(String, String),
) -> LlmSettings {
    let check = |field: String, b: &RawBudget, error: &mut dyn FnMut(String, String)| {
        for (name, v) in [
            ("requests_per_minute", b.requests_per_minute),
            ("tokens_per_minute", b.tokens_per_minute),
            ("requests_per_day", b.requests_per_day),
            ("tokens_per_day", b.tokens_per_day),
        ] {
            if v == Some(0) {
                error(
                    format!("{field}.{name}"),
                    "must be above 0 (leave it out for no limit; suspend the principal to stop it)"
                        .into(),
                );
            }
        }
    };
    let raw_budgets = raw.budgets;
    let agent = raw_budgets.agent.unwrap_or_default();
    let user = raw_budgets.user.unwrap_or_default();
    check("llm.budgets.agent".into(), &agent, error);
    check("llm.budgets.user".into(), &user, error);
    let agent_default = Budget::default().over(&agent);
    let user_default = Budget::default().over(&user);
    let mut budgets = Budgets {
        agent: agent_default,
        user: user_default,
        ..Budgets::default()
    };
    for (id, b) in &raw_budgets.agents {
        let field = format!("llm.budgets.agents.{id}");
        check(field.clone(), b, error);
        if !known("agent", id) {
            error(field, format!("no agent `{id}` is declared"));
        }
        budgets.agents.insert(id.clone(), agent_default.over(b));
    }
    for (id, b) in &raw_budgets.users {
        let field = format!("llm.budgets.users.{id}");
        check(field.clone(), b, error);
        if !known("user", id) {
            error(field, format!("no user `{id}` is declared"));
        }
        budgets.users.insert(id.clone(), user_default.over(b));
    }
    let max_response_bytes = match raw.max_response_bytes {
        Some(0) => {
            error("llm.max_response_bytes".into(), "must be above 0".into());
            DEFAULT_MAX_RESPONSE_BYTES
        }
        Some(n) => n,
        None => DEFAULT_MAX_RESPONSE_BYTES,
    };
    LlmSettings {
        require_attested: raw.require_attested,
        tool_calls: raw.tool_calls,
        spotlight: raw.spotlight,
        budgets,
        max_response_bytes,
    }
}

/// Resolves a model's `upstream`; `at` is the model's field path
/// (`models[0]`), `id` its id.
pub(crate) fn upstream(
    raw: RawUpstream,
    at: &str,
    id: &str,
    error: &mut dyn FnMut(String, String),
) -> Option<Upstream> {
    let ok = url::Url::parse(&raw.base_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok.is_none() {
        error(
            format!("{at}.upstream.base_url"),
            format!(
                "`{}` is not an http(s) URL (the API root, such as `https://api.example/v1`)",
                raw.base_url
            ),
        );
    }
    let api_key = match (raw.api_key_env, raw.api_key_file) {
        (None, None) => None,
        (Some(e), None) if !e.is_empty() => Some(SecretSource::Env(e)),
        (None, Some(f)) if !f.is_empty() => Some(SecretSource::File(f)),
        _ => {
            error(
                format!("{at}.upstream"),
                "name at most one of `api_key_env` and `api_key_file`, not empty: the key is never written inline".into(),
            );
            None
        }
    };
    let timeout_ms = match raw.timeout_ms {
        Some(0) => {
            error(
                format!("{at}.upstream.timeout_ms"),
                "must be above 0".into(),
            );
            DEFAULT_LLM_TIMEOUT_MS
        }
        Some(t) => t,
        None => DEFAULT_LLM_TIMEOUT_MS,
    };
    ok?;
    Some(Upstream {
        base_url: raw.base_url.trim_end_matches('/').to_owned(),
        model: raw
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| id.to_owned()),
        api_key,
        timeout: Duration::from_millis(timeout_ms),
    })
}

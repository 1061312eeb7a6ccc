//! The inventory: everything zt4ai knows about an AI deployment.
//!
//! An inventory is written as YAML ([`raw`] holds the strict serde types) and turned
//! into a resolved [`Inventory`] by [`Inventory::from_yaml_str`]: every reference is
//! checked, grant patterns are expanded, and each user's rights become the union of
//! their groups' grants. Every error names the file, line and field. Nothing
//! downstream sees the raw form.

pub mod llm;
pub mod locate;
pub mod raw;
pub mod synthetic;
mod target;
pub mod verification;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

pub use locate::Locations;
pub use raw::{Access, AgentState, BindingKind, SensitiveEgress, SpotlightMode};
use raw::{RawGrants, RawIdentity, RawInventory};
pub use target::{Target, TargetError};

use crate::ids::{AgentId, UserId};
use crate::label::{Category, Label};

/// One problem in an inventory, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or other source) the inventory came from.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field, as a path such as `agents[1].owner`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: field `{}`: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// An inventory that could not be loaded: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The problems.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Decision settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Risk score from which a request needs human approval.
    pub risk_medium: u8,
    /// Risk score from which a request is denied.
    pub risk_high: u8,
    /// How long a human approval stays usable.
    pub approval_ttl: Duration,
    /// The group whose members may grant human approvals, if one is named.
    pub approvers: Option<String>,
    /// How long the MCP gateway holds a call that needs approval by default.
    pub approval_hold: Duration,
    /// Baselines and risk scoring.
    pub risk: verification::RiskSettings,
    /// Automatic quarantine.
    pub quarantine: verification::QuarantineSettings,
}

/// Content inspection settings, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// Probability from which a text is a prompt injection; `None` uses the
    /// built-in model's operating threshold.
    pub injection_threshold: Option<f32>,
    /// What happens to sensitive data above a destination's clearance in a send.
    pub sensitive_egress: SensitiveEgress,
    /// Custom dictionaries of sensitive terms.
    pub dictionaries: Vec<Dictionary>,
}

/// A custom dictionary of sensitive terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    /// The finding type.
    pub name: String,
    /// The category a match adds.
    pub category: Category,
    /// The label a match carries.
    pub label: Label,
    /// Whether matching is case-sensitive.
    pub case_sensitive: bool,
    /// The terms.
    pub terms: Vec<String>,
}

/// Where user tokens come from, and how delegated agent tokens are issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// The identity provider; `None` runs zt4ai's development identity provider.
    pub provider: Option<IdentityProvider>,
    /// Lifetime of delegated agent tokens.
    pub token_ttl: Duration,
    /// Accepted clock skew.
    pub clock_skew: Duration,
    /// Longest actor chain (agents after the user).
    pub max_chain_depth: usize,
    /// Whether agents may prove themselves with a client secret.
    pub allow_client_secrets: bool,
    /// Whether every delegated token must be bound to the agent's key (DPoP).
    pub require_dpop: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            provider: None,
            token_ttl: Duration::from_secs(900),
            clock_skew: Duration::from_secs(60),
            max_chain_depth: 4,
            allow_client_secrets: true,
            require_dpop: false,
        }
    }
}

/// The organisation's OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    /// Issuer (`iss`) of user tokens.
    pub issuer: String,
    /// Audience (`aud`) user tokens must carry.
    pub audience: String,
    /// Where its signing keys are.
    pub jwks: JwksSource,
    /// Extra CA certificates (PEM file) to trust for an HTTPS JWKS URL.
    pub jwks_ca_file: Option<String>,
    /// Accepted algorithms (JOSE names).
    pub algorithms: Vec<String>,
    /// Claim with the user id.
    pub user_claim: String,
    /// Claim with the groups.
    pub groups_claim: String,
    /// Claim with the account's risk.
    pub risk_claim: String,
}

/// Where an identity provider's JWKS is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file (resolved against the inventory's directory by the loader).
    File(String),
    /// An HTTPS or loopback HTTP URL.
    Url(String),
}

/// The JOSE algorithms zt4ai verifies user tokens with.
pub const USER_TOKEN_ALGORITHMS: [&str; 5] = ["RS256", "RS384", "ES256", "ES384", "EdDSA"];

/// Resolved grants: exact ids, plus whole MCP servers for `server.*` and `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Tool ids (`server.tool`) granted one by one.
    pub tools: BTreeSet<String>,
    /// MCP servers whose every tool is granted (`server.*`; `*` is every server).
    /// Kept whole rather than expanded, so a user whose groups grant a thousand
    /// tools holds a handful of server names.
    pub servers: BTreeSet<String>,
    /// Readable dataset ids.
    pub datasets: BTreeSet<String>,
    /// Writable dataset ids.
    pub writable_datasets: BTreeSet<String>,
    /// Destination ids.
    pub destinations: BTreeSet<String>,
    /// Model ids.
    pub models: BTreeSet<String>,
}

impl Grants {
    /// Whether these grants cover `tool`, one by one or by its server.
    pub fn allows_tool(&self, tool: &Tool) -> bool {
        self.servers.contains(&tool.server) || self.tools.contains(&tool.id)
    }

    fn extend(&mut self, other: &Grants) {
        self.tools.extend(other.tools.iter().cloned());
        self.servers.extend(other.servers.iter().cloned());
        self.datasets.extend(other.datasets.iter().cloned());
        self.writable_datasets
            .extend(other.writable_datasets.iter().cloned());
        self.destinations.extend(other.destinations.iter().cloned());
        self.models.extend(other.models.iter().cloned());
    }
}

/// A group of users.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// What members may use.
    pub grants: Grants,
}

/// A human user.
#[derive(Debug, Clone)]
pub struct User {
    /// User id.
    pub id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Most sensitive data the user may read.
    pub clearance: Label,
    /// Union of the user's own grants and their groups' grants.
    pub rights: Grants,
}

/// A registered AI agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Agent id.
    pub id: AgentId,
    /// Accountable user.
    pub owner: UserId,
    /// What it is for.
    pub purpose: String,
    /// Lifecycle state.
    pub state: AgentState,
    /// Most sensitive data it may read.
    pub clearance: Label,
    /// What it may use.
    pub grants: Grants,
    /// Sub-agents it may hand its delegated token to.
    pub delegates_to: BTreeSet<AgentId>,
}

/// A tool argument bound to a resource.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The argument's path in the call's arguments.
    pub path: Vec<String>,
    /// What it names.
    pub kind: BindingKind,
    /// For datasets: read or write.
    pub access: Access,
    /// Whether a call may leave the argument out.
    pub optional: bool,
}

impl Binding {
    /// The argument path as written (`message.to`).
    pub fn argument(&self) -> String {
        self.path.join(".")
    }
}

/// An MCP tool.
#[derive(Debug, Clone)]
pub struct Tool {
    /// `server.name`.
    pub id: String,
    /// MCP server.
    pub server: String,
    /// Name on the server.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Changes nothing.
    pub read_only: bool,
    /// May destroy or overwrite data.
    pub destructive: bool,
    /// Reaches beyond the organisation.
    pub open_world: bool,
    /// Label of the output.
    pub output_label: Label,
    /// Categories of the output.
    pub output_categories: BTreeSet<Category>,
    /// Whether the output is trusted.
    pub output_trusted: bool,
    /// How untrusted output is spotlighted, if it is.
    pub spotlight: Option<SpotlightMode>,
    /// Arguments that name resources.
    pub bindings: Vec<Binding>,
    /// How long the MCP gateway holds a call that needs approval (`None`: the
    /// settings' default).
    pub approval_hold: Option<Duration>,
}

impl Inventory {
    /// Whether the inventory puts user `user` in group `group`.
    pub fn user_in_group(&self, user: &str, group: &str) -> bool {
        UserId::new(user.to_owned())
            .ok()
            .and_then(|id| self.users.get(&id))
            .is_some_and(|u| u.groups.iter().any(|g| g == group))
    }
}

impl Tool {
    /// Whether calling the tool changes something: destructive or not read-only.
    pub fn is_consequential(&self) -> bool {
        self.destructive || !self.read_only
    }
}

/// A data source.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Dataset id.
    pub id: String,
    /// Sensitivity.
    pub label: Label,
    /// Categories.
    pub categories: BTreeSet<Category>,
    /// Whether its content is trusted.
    pub trusted: bool,
}

/// An LLM endpoint.
#[derive(Debug, Clone)]
pub struct Model {
    /// Model id.
    pub id: String,
    /// Who serves it.
    pub provider: String,
    /// Outside the organisation.
    pub external: bool,
    /// Most sensitive data it may receive.
    pub clearance: Label,
    /// Artifact attested.
    pub attested: bool,
    /// Where the LLM gateway reaches it; `None`: the gateway cannot serve it.
    pub upstream: Option<llm::Upstream>,
    /// The data categories it is cleared for; `None`: any.
    pub categories: Option<BTreeSet<Category>>,
}

/// An egress sink.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Destination id.
    pub id: String,
    /// Mail domain patterns, lowercase.
    pub mail_domains: Vec<String>,
    /// Host patterns, lowercase.
    pub hosts: Vec<String>,
    /// Most sensitive data it may receive.
    pub clearance: Label,
    /// Outside the organisation.
    pub external: bool,
    /// Catches everything no other destination matches.
    pub default: bool,
    /// The data categories it is cleared for; `None`: any (the clearance
    /// alone decides).
    pub categories: Option<BTreeSet<Category>>,
}

/// The id of the destination zt4ai adds when the inventory declares no default.
pub const UNKNOWN_DESTINATION: &str = "unknown";

/// A resolved, checked inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where it was loaded from.
    pub source: String,
    /// Organisation name.
    pub organisation: Option<String>,
    /// Policy directory named in the file, if any (relative to the file).
    pub policies: Option<String>,
    /// Decision settings.
    pub settings: Settings,
    /// Content inspection settings.
    pub inspection: Inspection,
    /// Identity settings.
    pub identity: IdentitySettings,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Users by id.
    pub users: BTreeMap<UserId, User>,
    /// Agents by id.
    pub agents: BTreeMap<AgentId, Agent>,
    /// Tools by `server.name`.
    pub tools: BTreeMap<String, Tool>,
    /// MCP servers named by tools.
    pub servers: BTreeSet<String>,
    /// The upstream MCP servers the gateway fronts, by id.
    pub mcp_servers: BTreeMap<String, McpServer>,
    /// Datasets by id.
    pub datasets: BTreeMap<String, Dataset>,
    /// Models by id.
    pub models: BTreeMap<String, Model>,
    /// Destinations by id.
    pub destinations: BTreeMap<String, Destination>,
    /// The destination for unmatched targets.
    pub default_destination: String,
    /// Every category used anywhere.
    pub categories: BTreeSet<Category>,
    /// LLM gateway settings.
    pub llm: llm::LlmSettings,
}

/// An upstream MCP server the gateway fronts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// The id the tools' `server` fields use.
    pub id: String,
    /// How the gateway reaches it.
    pub transport: McpTransport,
    /// Prefix of its tools on the merged endpoint (`crm.` → `crm.query`).
    pub prefix: String,
    /// Longest a call (or connecting) may take.
    pub timeout: std::time::Duration,
    /// The destination every call's arguments reach besides any they bind
    /// (`reaches`): a server hosted by a third party, or a local one that
    /// forwards to a service. `None`: the organisation's own server.
    pub reaches: Option<String>,
}

/// How the gateway reaches an upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// Streamable HTTP at this URL.
    Http {
        /// `http://…/mcp` or `https://…/mcp`.
        url: String,
    },
    /// A child process speaking MCP over stdin/stdout, supervised by the gateway.
    Stdio {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment (besides `PATH`).
        env: BTreeMap<String, String>,
    },
}

/// The default time limit of an upstream MCP call.
pub const DEFAULT_MCP_TIMEOUT_MS: u64 = 30_000;

impl Inventory {
    /// Parses and resolves an inventory. `source` names the file in error messages.
    pub fn from_yaml_str(text: &str, source: &str) -> Result<Inventory, LoadError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let raw: RawInventory = match serde_path_to_error::deserialize(de) {
            Ok(raw) => raw,
            Err(e) => {
                let field = e.path().to_string();
                let (line, column) = match e.inner().location() {
                    Some(l) => (l.line(), l.column()),
                    None => Locations::index(text).find(&field),
                };
                let message = e.inner().to_string();
                // serde_yaml appends " at line L column C"; the position is reported separately.
                let message = match message.find(" at line ") {
                    Some(i) => message[..i].to_owned(),
                    None => message,
                };
                // serde_yaml may prefix the path, which is reported separately.
                let message = match message.split_once(": ") {
                    Some((prefix, rest)) if !prefix.contains(' ') && field.starts_with(prefix) => {
                        rest.to_owned()
                    }
                    _ => message,
                };
                return Err(LoadError {
                    errors: vec![ConfigError {
                        file: source.to_owned(),
                        line,
                        column,
                        field: if field == "." { String::new() } else { field },
                        message,
                    }],
                });
            }
        };
        let mut r = Resolver {
            source,
            locations: Locations::index(text),
            errors: Vec::new(),
        };
        let inventory = r.resolve(raw);
        if r.errors.is_empty() {
            Ok(inventory)
        } else {
            r.errors.sort_by_key(|e| (e.line, e.column));
            Err(LoadError { errors: r.errors })
        }
    }

    /// Resolves a send target (mail address, URL or host) to the destination it
    /// belongs to; anything unmatched goes to the default destination.
    pub fn resolve_destination(&self, target: &str) -> Result<(&Destination, Target), TargetError> {
        let target = Target::parse(target)?;
        let found = self.destinations.values().find(|d| match &target {
            Target::Mail { domain, .. } => {
                d.mail_domains.iter().any(|p| pattern_matches(p, domain))
            }
            Target::Host { host } => d.hosts.iter().any(|p| pattern_matches(p, host)),
        });
        let dest = match found {
            Some(d) => d,
            // INVARIANT: resolution always inserts the default destination.
            None => self
                .destinations
                .get(&self.default_destination)
                .ok_or(TargetError::NoDefault)?,
        };
        Ok((dest, target))
    }
}

/// `*.example.com` matches `a.example.com` and `a.b.example.com` but not
/// `example.com`; any other pattern matches exactly.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            name.len() > suffix.len() + 1 && name.ends_with(suffix) && {
                let cut = name.len() - suffix.len();
                name.as_bytes()[cut - 1] == b'.'
            }
        }
        None => pattern == name,
    }
}

struct Resolver<'a> {
    source: &'a str,
    locations: Locations,
    errors: Vec<ConfigError>,
}

impl Resolver<'_> {
    fn mcp_servers(
        &mut self,
        raw: Vec<raw::RawMcpServer>,
        servers: &BTreeSet<String>,
        destinations: &BTreeMap<String, Destination>,
    ) -> BTreeMap<String, McpServer> {
        let mut out: BTreeMap<String, McpServer> = BTreeMap::new();
        for (i, m) in raw.into_iter().enumerate() {
            if !servers.contains(&m.id) {
                self.error(
                    format!("mcp_servers[{i}].id"),
                    format!(
                        "no tool is on server `{}`{}",
                        m.id,
                        suggest(&m.id, servers.iter())
                    ),
                );
            }
            let transport = match (m.url, m.command) {
                (Some(url), None) => {
                    match url::Url::parse(&url) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                        Ok(_) => self.error(
                            format!("mcp_servers[{i}].url"),
                            format!("`{url}` must be an http or https URL"),
                        ),
                        Err(e) => {
                            self.error(format!("mcp_servers[{i}].url"), format!("`{url}`: {e}"))
                        }
                    }
                    if !m.env.is_empty() {
                        self.error(
                            format!("mcp_servers[{i}].env"),
                            "`env` is for stdio servers (`command`), not `url`".into(),
                        );
                    }
                    McpTransport::Http { url }
                }
                (None, Some(command)) => {
                    let mut parts = command.into_iter();
                    let program = parts.next().unwrap_or_default();
                    if program.trim().is_empty() {
                        self.error(
                            format!("mcp_servers[{i}].command"),
                            "the command needs a program: `command: [program, arg, …]`".into(),
                        );
                    }
                    McpTransport::Stdio {
                        program,
                        args: parts.collect(),
                        env: m.env,
                    }
                }
                (Some(_), Some(_)) => {
                    self.error(
                        format!("mcp_servers[{i}].command"),
                        "give either `url` (Streamable HTTP) or `command` (stdio), not both".into(),
                    );
                    continue;
                }
                (None, None) => {
                    self.error(
                        format!("mcp_servers[{i}].id"),
                        format!(
                            "server `{}` needs `url` (Streamable HTTP) or `command` (stdio)",
                            m.id
                        ),
                    );
                    continue;
                }
            };
            let prefix = m.prefix.unwrap_or_else(|| format!("{}.", m.id));
            if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
                self.error(
                    format!("mcp_servers[{i}].prefix"),
                    format!("`{prefix}` must be non-empty and without spaces"),
                );
            }
            if let Some(other) = out.values().find(|o| {
                o.prefix.starts_with(prefix.as_str()) || prefix.starts_with(o.prefix.as_str())
            }) {
                self.error(
                    format!("mcp_servers[{i}].prefix"),
                    format!(
                        "`{prefix}` and server `{}`'s `{}` would make tool names ambiguous: neither may start with the other",
                        other.id, other.prefix
                    ),
                );
            }
            let timeout_ms = m.timeout_ms.unwrap_or(DEFAULT_MCP_TIMEOUT_MS);
            if timeout_ms == 0 {
                self.error(
                    format!("mcp_servers[{i}].timeout_ms"),
                    "must be at least 1".into(),
                );
            }
            if let Some(d) = &m.reaches
                && !destinations.contains_key(d)
            {
                self.error(
                    format!("mcp_servers[{i}].reaches"),
                    format!(
                        "unknown destination `{d}`{}",
                        suggest(d, destinations.keys())
                    ),
                );
            }
            let server = McpServer {
                id: m.id.clone(),
                transport,
                prefix,
                timeout: std::time::Duration::from_millis(timeout_ms.max(1)),
                reaches: m.reaches,
            };
            if out.insert(m.id.clone(), server).is_some() {
                self.error(
                    format!("mcp_servers[{i}].id"),
                    format!("server `{}` is declared twice", m.id),
                );
            }
        }
        out
    }

    fn error(&mut self, field: String, message: String) {
        let (line, column) = self.locations.find(&field);
        self.errors.push(ConfigError {
            file: self.source.to_owned(),
            line,
            column,
            field,
            message,
        });
    }

    fn resolve(&mut self, raw: RawInventory) -> Inventory {
        let mut categories = BTreeSet::new();
        let mut problems = Vec::new();
        let mut note = |field: String, message: String| problems.push((field, message));
        let risk = verification::risk(raw.settings.risk, &mut note);
        let quarantine = verification::quarantine(raw.settings.quarantine, &mut note);
        for (field, message) in problems {
            self.error(field, message);
        }
        let settings = Settings {
            risk_medium: raw.settings.risk_medium,
            risk_high: raw.settings.risk_high,
            approval_ttl: Duration::from_secs(raw.settings.approval_ttl_seconds),
            approvers: raw.settings.approvers.clone(),
            approval_hold: Duration::from_secs(raw.settings.approval_hold_seconds),
            risk,
            quarantine,
        };
        if settings.risk_high > 100 {
            self.error(
                "settings.risk_high".into(),
                format!("`{}` is above 100", settings.risk_high),
            );
        }
        if settings.risk_medium >= settings.risk_high {
            self.error(
                "settings.risk_medium".into(),
                format!(
                    "`{}` must be below `risk_high` ({})",
                    settings.risk_medium, settings.risk_high
                ),
            );
        }

        // Resources first: grants refer to them.
        let mut tools = BTreeMap::new();
        let mut servers = BTreeSet::new();
        for (i, t) in raw.tools.into_iter().enumerate() {
            let at = format!("tools[{i}]");
            if !valid_name(&t.server) || t.server.contains('.') {
                self.error(
                    format!("{at}.server"),
                    format!(
                        "invalid server name `{}`, expected letters, digits, `_` or `-`",
                        t.server
                    ),
                );
            }
            if !valid_name(&t.name) && !t.name.contains('.') {
                self.error(
                    format!("{at}.name"),
                    format!("invalid tool name `{}`", t.name),
                );
            }
            let id = format!("{}.{}", t.server, t.name);
            let mut bindings = Vec::new();
            let mut seen = BTreeSet::new();
            for (j, b) in t.bindings.into_iter().enumerate() {
                let path: Vec<String> = b.argument.split('.').map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    self.error(
                        format!("{at}.bindings[{j}].argument"),
                        format!("invalid argument path `{}`", b.argument),
                    );
                }
                if !seen.insert(b.argument.clone()) {
                    self.error(
                        format!("{at}.bindings[{j}].argument"),
                        format!("argument `{}` is bound twice", b.argument),
                    );
                }
                if b.resource == BindingKind::Destination && b.access == Access::Write {
                    self.error(
                        format!("{at}.bindings[{j}].access"),
                        "`access` applies to dataset bindings only".into(),
                    );
                }
                bindings.push(Binding {
                    path,
                    kind: b.resource,
                    access: b.access,
                    optional: b.optional,
                });
            }
            categories.extend(t.output.categories.iter().cloned());
            servers.insert(t.server.clone());
            let read_only = t.annotations.read_only;
            let tool = Tool {
                id: id.clone(),
                server: t.server,
                name: t.name,
                description: t.description,
                read_only,
                destructive: t.annotations.destructive.unwrap_or(!read_only),
                open_world: t.annotations.open_world,
                output_label: t.output.label,
                output_categories: t.output.categories.into_iter().collect(),
                output_trusted: t.output.trusted,
                spotlight: t.output.spotlight,
                bindings,
                approval_hold: t.approval_hold_seconds.map(Duration::from_secs),
            };
            if tools.insert(id.clone(), tool).is_some() {
                self.error(
                    format!("{at}.name"),
                    format!("tool `{id}` is declared twice"),
                );
            }
        }

        let mut datasets = BTreeMap::new();
        for (i, d) in raw.datasets.into_iter().enumerate() {
            self.check_id("datasets", i, &d.id);
            categories.extend(d.categories.iter().cloned());
            let ds = Dataset {
                id: d.id.clone(),
                label: d.label,
                categories: d.categories.into_iter().collect(),
                trusted: d.trusted,
            };
            if datasets.insert(d.id.clone(), ds).is_some() {
                self.error(
                    format!("datasets[{i}].id"),
                    format!("dataset `{}` is declared twice", d.id),
                );
            }
        }

        let mut models = BTreeMap::new();
        for (i, m) in raw.models.into_iter().enumerate() {
            self.check_id("models", i, &m.id);
            let upstream = m.upstream.and_then(|u| {
                llm::upstream(u, &format!("models[{i}]"), &m.id, &mut |f, msg| {
                    self.error(f, msg)
                })
            });
            let model = Model {
                id: m.id.clone(),
                provider: m.provider,
                external: m.external,
                clearance: m.clearance,
                attested: m.attested,
                upstream,
                categories: m.categories.map(|c| c.into_iter().collect()),
            };
            if models.insert(m.id.clone(), model).is_some() {
                self.error(
                    format!("models[{i}].id"),
                    format!("model `{}` is declared twice", m.id),
                );
            }
        }

        let mut destinations = BTreeMap::new();
        let mut default_destination: Option<String> = None;
        let mut claimed: BTreeMap<String, String> = BTreeMap::new();
        for (i, d) in raw.destinations.into_iter().enumerate() {
            self.check_id("destinations", i, &d.id);
            let mut mail_domains = Vec::new();
            for (j, p) in d.mail_domains.iter().enumerate() {
                match normalise_pattern(p) {
                    Ok(p) => mail_domains.push(p),
                    Err(m) => self.error(format!("destinations[{i}].mail_domains[{j}]"), m),
                }
            }
            let mut hosts = Vec::new();
            for (j, p) in d.hosts.iter().enumerate() {
                match normalise_pattern(p) {
                    Ok(p) => hosts.push(p),
                    Err(m) => self.error(format!("destinations[{i}].hosts[{j}]"), m),
                }
            }
            for (kind, list) in [("mail", &mail_domains), ("host", &hosts)] {
                for p in list {
                    if let Some(other) = claimed.insert(format!("{kind}:{p}"), d.id.clone()) {
                        self.error(
                            format!("destinations[{i}]"),
                            format!("`{p}` is already claimed by destination `{other}`"),
                        );
                    }
                }
            }
            if d.default {
                if d.clearance != Label::Public {
                    self.error(
                        format!("destinations[{i}].clearance"),
                        format!(
                            "the default destination receives everything unknown, so its clearance must be `public`, not `{}`",
                            d.clearance
                        ),
                    );
                }
                if !d.external {
                    self.error(
                        format!("destinations[{i}].external"),
                        "the default destination receives everything unknown, so it must be `external: true`".into(),
                    );
                }
                if let Some(prev) = &default_destination {
                    self.error(
                        format!("destinations[{i}].default"),
                        format!("destination `{prev}` is already the default"),
                    );
                }
                default_destination = Some(d.id.clone());
            }
            let dest = Destination {
                id: d.id.clone(),
                mail_domains,
                hosts,
                clearance: d.clearance,
                external: d.external,
                default: d.default,
                categories: d.categories.map(|c| c.into_iter().collect()),
            };
            if destinations.insert(d.id.clone(), dest).is_some() {
                self.error(
                    format!("destinations[{i}].id"),
                    format!("destination `{}` is declared twice", d.id),
                );
            }
        }
        let default_destination = match default_destination {
            Some(d) => d,
            None => {
                if destinations.contains_key(UNKNOWN_DESTINATION) {
                    self.error(
                        "destinations".into(),
                        format!("a destination is named `{UNKNOWN_DESTINATION}` but is not `default: true`; that id is reserved for the default"),
                    );
                }
                destinations.insert(
                    UNKNOWN_DESTINATION.to_owned(),
                    Destination {
                        id: UNKNOWN_DESTINATION.to_owned(),
                        mail_domains: Vec::new(),
                        hosts: Vec::new(),
                        clearance: Label::Public,
                        external: true,
                        default: true,
                        categories: None,
                    },
                );
                UNKNOWN_DESTINATION.to_owned()
            }
        };

        let identity = self.identity(raw.identity);
        let inspection = self.inspection(raw.inspection);
        let mcp_servers = self.mcp_servers(raw.mcp_servers, &servers, &destinations);
        let mut partial = Inventory {
            source: self.source.to_owned(),
            organisation: raw.organisation,
            policies: raw.policies,
            settings,
            inspection,
            identity,
            groups: BTreeMap::new(),
            users: BTreeMap::new(),
            agents: BTreeMap::new(),
            tools,
            servers,
            mcp_servers,
            datasets,
            models,
            destinations,
            default_destination,
            categories,
            llm: llm::LlmSettings::default(),
        };

        for (i, g) in raw.groups.into_iter().enumerate() {
            self.check_id("groups", i, &g.id);
            let grants = self.grants(&format!("groups[{i}].grants"), &g.grants, &partial);
            let group = Group {
                id: g.id.clone(),
                grants,
            };
            if partial.groups.insert(g.id.clone(), group).is_some() {
                self.error(
                    format!("groups[{i}].id"),
                    format!("group `{}` is declared twice", g.id),
                );
            }
        }

        if let Some(g) = &partial.settings.approvers
            && !partial.groups.contains_key(g)
        {
            self.error(
                "settings.approvers".into(),
                format!("unknown group `{g}`{}", suggest(g, partial.groups.keys())),
            );
        }

        for (i, u) in raw.users.into_iter().enumerate() {
            let id = match UserId::new(u.id.clone()) {
                Ok(id) => id,
                Err(e) => {
                    self.error(format!("users[{i}].id"), e.to_string());
                    continue;
                }
            };
            let mut rights = self.grants(&format!("users[{i}].grants"), &u.grants, &partial);
            for (j, g) in u.groups.iter().enumerate() {
                match partial.groups.get(g) {
                    Some(group) => rights.extend(&group.grants),
                    None => self.error(
                        format!("users[{i}].groups[{j}]"),
                        format!("unknown group `{g}`{}", suggest(g, partial.groups.keys())),
                    ),
                }
            }
            let user = User {
                id: id.clone(),
                name: u.name,
                groups: u.groups,
                clearance: u.clearance,
                rights,
            };
            if partial.users.insert(id.clone(), user).is_some() {
                self.error(
                    format!("users[{i}].id"),
                    format!("user `{id}` is declared twice"),
                );
            }
        }

        let mut delegations: Vec<(usize, AgentId, Vec<String>)> = Vec::new();
        for (i, a) in raw.agents.into_iter().enumerate() {
            let id = match AgentId::new(a.id.clone()) {
                Ok(id) => id,
                Err(e) => {
                    self.error(format!("agents[{i}].id"), e.to_string());
                    continue;
                }
            };
            if partial.users.keys().any(|u| u.as_str() == id.as_str()) {
                self.error(
                    format!("agents[{i}].id"),
                    format!("`{id}` is already a user id; agents and users need distinct ids"),
                );
            }
            let owner = match UserId::new(a.owner.clone()) {
                Ok(o) if partial.users.contains_key(&o) => o,
                _ => {
                    self.error(
                        format!("agents[{i}].owner"),
                        format!(
                            "unknown user `{}`: every agent needs an owner declared under `users`{}",
                            a.owner,
                            suggest(&a.owner, partial.users.keys().map(UserId::as_str))
                        ),
                    );
                    continue;
                }
            };
            if a.purpose.trim().is_empty() {
                self.error(format!("agents[{i}].purpose"), "purpose is empty".into());
            }
            let grants = self.grants(&format!("agents[{i}].grants"), &a.grants, &partial);
            let agent = Agent {
                id: id.clone(),
                owner,
                purpose: a.purpose,
                state: a.state,
                clearance: a.clearance,
                grants,
                delegates_to: BTreeSet::new(),
            };
            delegations.push((i, id.clone(), a.delegates_to));
            if partial.agents.insert(id.clone(), agent).is_some() {
                self.error(
                    format!("agents[{i}].id"),
                    format!("agent `{id}` is declared twice"),
                );
            }
        }
        // Sub-agents may be declared after the agents that delegate to them.
        for (i, id, names) in delegations {
            let mut to = BTreeSet::new();
            for (j, name) in names.iter().enumerate() {
                match AgentId::new(name.clone()) {
                    Ok(sub) if sub == id => self.error(
                        format!("agents[{i}].delegates_to[{j}]"),
                        "an agent cannot delegate to itself".into(),
                    ),
                    Ok(sub) if partial.agents.contains_key(&sub) => {
                        to.insert(sub);
                    }
                    _ => self.error(
                        format!("agents[{i}].delegates_to[{j}]"),
                        format!(
                            "unknown agent `{name}`{}",
                            suggest(name, partial.agents.keys().map(AgentId::as_str))
                        ),
                    ),
                }
            }
            if let Some(agent) = partial.agents.get_mut(&id) {
                agent.delegates_to = to;
            }
        }
        let known = |kind: &str, id: &str| match kind {
            "agent" => AgentId::new(id.to_owned()).is_ok_and(|a| partial.agents.contains_key(&a)),
            _ => UserId::new(id.to_owned()).is_ok_and(|u| partial.users.contains_key(&u)),
        };
        let llm = llm::settings(raw.llm, &known, &mut |f, m| self.error(f, m));
        partial.llm = llm;
        partial
    }

    fn inspection(&mut self, raw: raw::RawInspection) -> Inspection {
        if let Some(t) = raw.injection_threshold
            && !(t > 0.0 && t < 1.0)
        {
            self.error(
                "inspection.injection_threshold".to_owned(),
                format!("`{t}` is not a probability strictly between 0 and 1"),
            );
        }
        let mut names = BTreeSet::new();
        let mut dictionaries = Vec::new();
        for (i, d) in raw.dictionaries.into_iter().enumerate() {
            let at = format!("inspection.dictionaries[{i}]");
            if Category::new(&d.name).is_err() {
                self.error(
                    format!("{at}.name"),
                    format!(
                        "invalid dictionary name `{}`, expected 1 to 64 characters of `a-z`, `0-9`, `_` or `-`",
                        d.name
                    ),
                );
            } else if !names.insert(d.name.clone()) {
                self.error(
                    format!("{at}.name"),
                    format!("dictionary `{}` is declared twice", d.name),
                );
            }
            if let Some(j) = d.terms.iter().position(|t| t.trim().is_empty()) {
                self.error(format!("{at}.terms[{j}]"), "a term is empty".to_owned());
            }
            if d.terms.is_empty() {
                self.error(
                    format!("{at}.terms"),
                    "a dictionary needs at least one term".to_owned(),
                );
            }
            dictionaries.push(Dictionary {
                name: d.name,
                category: d.category,
                label: d.label,
                case_sensitive: d.case_sensitive,
                terms: d.terms,
            });
        }
        Inspection {
            injection_threshold: raw.injection_threshold,
            sensitive_egress: raw.sensitive_egress,
            dictionaries,
        }
    }

    fn identity(&mut self, raw: Option<RawIdentity>) -> IdentitySettings {
        let Some(raw) = raw else {
            return IdentitySettings::default();
        };
        let defaults = IdentitySettings::default();
        let mut nonempty = |field: &str, v: &str| {
            if v.trim().is_empty() {
                self.error(format!("identity.{field}"), "must not be empty".into());
            }
        };
        nonempty("issuer", &raw.issuer);
        nonempty("audience", &raw.audience);
        let jwks = match (raw.jwks_file, raw.jwks_url) {
            (Some(f), None) => JwksSource::File(f),
            (None, Some(u)) => {
                match url::Url::parse(&u) {
                    Ok(url)
                        if url.scheme() == "https"
                            || (url.scheme() == "http" && target::is_loopback_url(&url)) => {}
                    Ok(_) => self.error(
                        "identity.jwks_url".into(),
                        format!("`{u}` must be https, or http on a loopback address"),
                    ),
                    Err(e) => self.error("identity.jwks_url".into(), format!("`{u}`: {e}")),
                }
                JwksSource::Url(u)
            }
            (Some(_), Some(_)) => {
                self.error(
                    "identity.jwks_url".into(),
                    "give `jwks_file` or `jwks_url`, not both".into(),
                );
                JwksSource::File(String::new())
            }
            (None, None) => {
                self.error(
                    "identity".into(),
                    "needs `jwks_file` or `jwks_url`: where the issuer's signing keys are".into(),
                );
                JwksSource::File(String::new())
            }
        };
        let algorithms = raw
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into(), "EdDSA".into()]);
        for (j, a) in algorithms.iter().enumerate() {
            if !USER_TOKEN_ALGORITHMS.contains(&a.as_str()) {
                self.error(
                    format!("identity.algorithms[{j}]"),
                    format!(
                        "unsupported algorithm `{a}`, expected one of {}",
                        USER_TOKEN_ALGORITHMS.join(", ")
                    ),
                );
            }
        }
        let ttl = raw.token_ttl_seconds.unwrap_or(900);
        if !(60..=86_400).contains(&ttl) {
            self.error(
                "identity.token_ttl_seconds".into(),
                format!("`{ttl}` is outside 60–86400"),
            );
        }
        let skew = raw.clock_skew_seconds.unwrap_or(60);
        if skew > 300 {
            self.error(
                "identity.clock_skew_seconds".into(),
                format!("`{skew}` is above 300"),
            );
        }
        let depth = raw.max_chain_depth.unwrap_or(defaults.max_chain_depth);
        if !(1..=8).contains(&depth) {
            self.error(
                "identity.max_chain_depth".into(),
                format!("`{depth}` is outside 1–8"),
            );
        }
        IdentitySettings {
            provider: Some(IdentityProvider {
                issuer: raw.issuer,
                audience: raw.audience,
                jwks,
                jwks_ca_file: raw.jwks_ca_file,
                algorithms,
                user_claim: raw.user_claim.unwrap_or_else(|| "sub".into()),
                groups_claim: raw.groups_claim.unwrap_or_else(|| "groups".into()),
                risk_claim: raw.risk_claim.unwrap_or_else(|| "risk".into()),
            }),
            token_ttl: Duration::from_secs(ttl),
            clock_skew: Duration::from_secs(skew),
            max_chain_depth: depth,
            allow_client_secrets: raw.allow_client_secrets.unwrap_or(false),
            require_dpop: raw.require_dpop.unwrap_or(false),
        }
    }

    fn check_id(&mut self, list: &str, i: usize, id: &str) {
        if !valid_name(id) {
            self.error(
                format!("{list}[{i}].id"),
                format!("invalid id `{id}`, expected letters, digits, `.`, `_` or `-`"),
            );
        }
    }

    fn grants(&mut self, at: &str, raw: &RawGrants, inv: &Inventory) -> Grants {
        let mut g = Grants::default();
        for (j, p) in raw.tools.iter().enumerate() {
            let field = format!("{at}.tools[{j}]");
            if p == "*" {
                g.servers.extend(inv.servers.iter().cloned());
            } else if let Some(server) = p.strip_suffix(".*") {
                if inv.servers.contains(server) {
                    g.servers.insert(server.to_owned());
                } else {
                    self.error(
                        field,
                        format!(
                            "unknown server `{server}`{}",
                            suggest(server, inv.servers.iter())
                        ),
                    );
                }
            } else if inv.tools.contains_key(p) {
                g.tools.insert(p.clone());
            } else {
                self.error(
                    field,
                    format!(
                        "unknown tool `{p}`, expected `server.tool`, `server.*` or `*`{}",
                        suggest(p, inv.tools.keys())
                    ),
                );
            }
        }
        let lists: [GrantList<'_>; 4] = [
            (
                "datasets",
                &raw.datasets,
                inv.datasets.keys().collect(),
                &mut g.datasets,
            ),
            (
                "writable_datasets",
                &raw.writable_datasets,
                inv.datasets.keys().collect(),
                &mut g.writable_datasets,
            ),
            (
                "destinations",
                &raw.destinations,
                inv.destinations.keys().collect(),
                &mut g.destinations,
            ),
            (
                "models",
                &raw.models,
                inv.models.keys().collect(),
                &mut g.models,
            ),
        ];
        let mut errors = Vec::new();
        for (kind, wanted, known, out) in lists {
            for (j, p) in wanted.iter().enumerate() {
                if p == "*" {
                    out.extend(known.iter().map(|k| (*k).clone()));
                } else if known.contains(&p) {
                    out.insert(p.clone());
                } else {
                    let singular = kind.trim_end_matches('s').replace('_', " ");
                    errors.push((
                        format!("{at}.{kind}[{j}]"),
                        format!(
                            "unknown {singular} `{p}`{}",
                            suggest(p, known.iter().copied())
                        ),
                    ));
                }
            }
        }
        for (f, m) in errors {
            self.error(f, m);
        }
        g
    }
}

/// One grant kind: its field name, the names asked for, the names known, and where expanded ids go.
type GrantList<'a> = (
    &'a str,
    &'a Vec<String>,
    Vec<&'a String>,
    &'a mut BTreeSet<String>,
);

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn normalise_pattern(p: &str) -> Result<String, String> {
    let lower = p.trim().trim_end_matches('.').to_ascii_lowercase();
    let body = lower.strip_prefix("*.").unwrap_or(&lower);
    let ok = !body.is_empty()
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(lower)
    } else {
        Err(format!(
            "invalid domain pattern `{p}`, expected a host name such as `example.com` or `*.example.com`"
        ))
    }
}

/// ", did you mean `x`?" for the closest known name, if one is close.
fn suggest<'a, S: AsRef<str> + 'a>(wanted: &str, known: impl IntoIterator<Item = S>) -> String {
    let best = known
        .into_iter()
        .map(|k| {
            let k = k.as_ref().to_owned();
            (edit_distance(wanted, &k), k)
        })
        .min();
    match best {
        Some((d, k)) if d <= 2 && d < wanted.len() => format!(", did you mean `{k}`?"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;

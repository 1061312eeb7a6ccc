//! The inventory as written by people: strict serde types, checked only for shape.
//!
//! Every type rejects unknown fields, so a misspelt key is an error rather than a
//! silently ignored setting. Nothing outside this crate sees these types: they are
//! turned into a resolved [`Inventory`](super::Inventory) by
//! [`Inventory::from_yaml_str`](super::Inventory::from_yaml_str), which checks every
//! reference.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::label::{Category, Label};

/// The whole inventory file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    /// The organisation this inventory describes; shown in reports.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Directory of `.cedar` policy files, relative to the inventory file.
    /// Defaults to `policies` beside the inventory when that directory exists.
    #[serde(default)]
    pub policies: Option<String>,
    /// Decision settings.
    #[serde(default)]
    pub settings: RawSettings,
    /// Content inspection settings.
    #[serde(default)]
    pub inspection: RawInspection,
    /// The organisation's identity provider and zt4ai's delegated tokens. Without
    /// it, zt4ai runs its built-in development identity provider.
    #[serde(default)]
    pub identity: Option<RawIdentity>,
    /// Where the MCP servers named by the tools are reached, for the MCP gateway.
    #[serde(default)]
    pub mcp_servers: Vec<RawMcpServer>,
    /// Groups of users; their grants are the rights of their members.
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    /// Human principals, as the identity provider names them.
    #[serde(default)]
    pub users: Vec<RawUser>,
    /// Registered AI agents.
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    /// MCP tools, each on a server.
    #[serde(default)]
    pub tools: Vec<RawTool>,
    /// Data sources with a sensitivity label.
    #[serde(default)]
    pub datasets: Vec<RawDataset>,
    /// LLM endpoints.
    #[serde(default)]
    pub models: Vec<RawModel>,
    /// Egress sinks: mail domains and hosts.
    #[serde(default)]
    pub destinations: Vec<RawDestination>,
    /// The LLM gateway: proposed tool calls, spotlighting, budgets.
    #[serde(default)]
    pub llm: super::llm::RawLlm,
}

/// Identity settings: where user tokens come from and how zt4ai's own delegated
/// agent tokens are issued.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// The OIDC issuer of user tokens (`iss`).
    pub issuer: String,
    /// The audience user tokens must carry (`aud`).
    pub audience: String,
    /// The issuer's JWKS as a file, relative to the inventory file.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// The issuer's JWKS URL (HTTPS, or HTTP on a loopback address).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Extra CA certificates (PEM, relative to the inventory file) to trust for
    /// `jwks_url`, besides the system's, for a private PKI.
    #[serde(default)]
    pub jwks_ca_file: Option<String>,
    /// Accepted signature algorithms for user tokens. Default: RS256, ES256, EdDSA.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Claim holding the zt4ai user id. Default `sub`.
    #[serde(default)]
    pub user_claim: Option<String>,
    /// Claim holding the user's groups. Default `groups`.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Claim holding the IdP's risk assessment of the account (`low`, `medium`,
    /// `high`, or a score 0–100). Default `risk`.
    #[serde(default)]
    pub risk_claim: Option<String>,
    /// Lifetime of delegated agent tokens, in seconds. Default 900.
    #[serde(default)]
    pub token_ttl_seconds: Option<u64>,
    /// Accepted clock skew, in seconds. Default 60.
    #[serde(default)]
    pub clock_skew_seconds: Option<u64>,
    /// Longest actor chain (agents after the user). Default 4.
    #[serde(default)]
    pub max_chain_depth: Option<usize>,
    /// Whether agents may prove themselves with a client secret instead of a signed
    /// assertion. Default false with an identity provider.
    #[serde(default)]
    pub allow_client_secrets: Option<bool>,
    /// Whether every delegated token must be bound to a key with DPoP (RFC 9449):
    /// token requests without a proof, and bearer tokens, are refused. Default false.
    #[serde(default)]
    pub require_dpop: Option<bool>,
}

/// An upstream MCP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcpServer {
    /// The server's name, as the tools' `server` fields use it.
    pub id: String,
    /// Its Streamable HTTP endpoint (`http://…/mcp`). Exactly one of `url` and
    /// `command`.
    #[serde(default)]
    pub url: Option<String>,
    /// A stdio server: the program and its arguments, started and supervised by
    /// the gateway.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment variables for a stdio server (its only environment besides
    /// `PATH`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Prefix of this server's tools on the merged `/mcp` endpoint. Default
    /// `<id>.`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How long a call to this server may take, in milliseconds. Default 30,000.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The destination that whatever is sent to this server reaches: its
    /// operator, for a server hosted by a third party, or the service a local
    /// server is a client of. Unset, the server is the organisation's own.
    #[serde(default)]
    pub reaches: Option<String>,
}

/// Decision settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Risk score (0–100) from which a request needs human approval.
    #[serde(default = "default_medium")]
    pub risk_medium: u8,
    /// Risk score (0–100) from which a request is denied.
    #[serde(default = "default_high")]
    pub risk_high: u8,
    /// How long a human approval stays usable, in seconds.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_seconds: u64,
    /// The group whose members may grant human approvals.
    #[serde(default)]
    pub approvers: Option<String>,
    /// How long the MCP gateway holds a call that needs approval, waiting for
    /// the decision, unless the tool says otherwise; 0 (the default) answers
    /// at once with the approval id.
    #[serde(default)]
    pub approval_hold_seconds: u64,
    /// Behaviour baselines and risk scoring.
    #[serde(default)]
    pub risk: Option<super::verification::RawRisk>,
    /// When an agent is quarantined automatically.
    #[serde(default)]
    pub quarantine: Option<super::verification::RawQuarantine>,
}

/// Content inspection settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInspection {
    /// Probability (0–1) from which a text is reported as a prompt injection.
    /// Defaults to the built-in model's operating threshold.
    #[serde(default)]
    pub injection_threshold: Option<f32>,
    /// What happens when the arguments of a send carry sensitive data above the
    /// destination's clearance: `deny` (the default) or `redact` (the call goes
    /// out with that data replaced).
    #[serde(default)]
    pub sensitive_egress: SensitiveEgress,
    /// Terms that are sensitive in this organisation, such as customer names.
    #[serde(default)]
    pub dictionaries: Vec<RawDictionary>,
}

/// What to do with sensitive data in egress arguments above the destination's clearance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveEgress {
    /// Deny the call.
    #[default]
    Deny,
    /// Let the call go out with the sensitive values replaced.
    Redact,
}

/// A custom dictionary of sensitive terms.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDictionary {
    /// The finding type (`customer_name`), lowercase.
    pub name: String,
    /// The data category a match adds to the session.
    pub category: Category,
    /// The label a match carries. Defaults to `confidential`.
    #[serde(default = "confidential")]
    pub label: Label,
    /// Whether matches are case-sensitive. Defaults to `false`.
    #[serde(default)]
    pub case_sensitive: bool,
    /// The terms; each matches as a whole word.
    pub terms: Vec<String>,
}

fn confidential() -> Label {
    Label::Confidential
}

fn default_medium() -> u8 {
    40
}
fn default_high() -> u8 {
    70
}
fn default_approval_ttl() -> u64 {
    3600
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            risk_medium: default_medium(),
            risk_high: default_high(),
            approval_ttl_seconds: default_approval_ttl(),
            approvers: None,
            approval_hold_seconds: 0,
            risk: None,
            quarantine: None,
        }
    }
}

/// What a principal (a group, a user or an agent) may use.
///
/// Tools are named `server.tool`; `server.*` grants every tool of a server and
/// `*` grants everything of that kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrants {
    /// Tools that may be called.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Datasets that may be read.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Datasets that may be written.
    #[serde(default)]
    pub writable_datasets: Vec<String>,
    /// Destinations that may be sent to.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Models that may be invoked.
    #[serde(default)]
    pub models: Vec<String>,
}

/// A group of users.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Group id, as the identity provider names it.
    pub id: String,
    /// What the group's members may use.
    #[serde(default)]
    pub grants: RawGrants,
}

/// A human user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// User id, as the identity provider names them.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The most sensitive data the user may read. Defaults to `internal`.
    #[serde(default = "default_user_clearance")]
    pub clearance: Label,
    /// Rights of this user beyond those of their groups.
    #[serde(default)]
    pub grants: RawGrants,
}

fn default_user_clearance() -> Label {
    Label::Internal
}

/// Lifecycle state of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// The agent may act, within its grants.
    Active,
    /// The agent may do nothing until resumed.
    Suspended,
    /// The agent may never act again.
    Retired,
}

impl AgentState {
    /// The state's name as used in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Active => "active",
            AgentState::Suspended => "suspended",
            AgentState::Retired => "retired",
        }
    }
}

/// A registered AI agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Agent id.
    pub id: String,
    /// The user accountable for the agent. Required.
    pub owner: String,
    /// What the agent is for, in a sentence.
    pub purpose: String,
    /// Lifecycle state. Defaults to `active`.
    #[serde(default = "default_state")]
    pub state: AgentState,
    /// The most sensitive data the agent may read. Defaults to `internal`.
    #[serde(default = "default_user_clearance")]
    pub clearance: Label,
    /// What the agent may use (never more than the user it acts for: both are checked).
    #[serde(default)]
    pub grants: RawGrants,
    /// Sub-agents this agent may hand its delegated token to.
    #[serde(default)]
    pub delegates_to: Vec<String>,
}

fn default_state() -> AgentState {
    AgentState::Active
}

/// Behaviour hints of an MCP tool, as in MCP's tool annotations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnnotations {
    /// The tool does not change anything. Defaults to `false`.
    #[serde(default)]
    pub read_only: bool,
    /// The tool may destroy or overwrite data. Defaults to `true` unless `read_only`.
    #[serde(default)]
    pub destructive: Option<bool>,
    /// The tool reaches beyond the organisation (web, mail). Defaults to `true`.
    #[serde(default = "yes")]
    pub open_world: bool,
}

fn yes() -> bool {
    true
}

impl Default for RawAnnotations {
    fn default() -> Self {
        // MCP's conservative defaults: a tool is assumed to write, destroy and reach out.
        RawAnnotations {
            read_only: false,
            destructive: None,
            open_world: true,
        }
    }
}

/// The label and trust of what a tool returns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Confidentiality of the output. Defaults to `public`.
    #[serde(default)]
    pub label: Label,
    /// Data categories of the output.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Whether the output can be trusted to carry no instructions. Defaults to `true`.
    #[serde(default = "yes")]
    pub trusted: bool,
    /// Whether untrusted output must be spotlighted (marked as data) before the
    /// agent sees it, and how: `delimit`, `datamark` or `encode`; `true` means
    /// `delimit`.
    #[serde(default, deserialize_with = "spotlight")]
    pub spotlight: Option<SpotlightMode>,
}

/// How untrusted text is marked as data before a model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotlightMode {
    /// Between markers that carry a tag the text cannot forge.
    Delimit,
    /// Between markers, with the text's whitespace replaced by `ˆ`.
    Datamark,
    /// Base64-encoded, between markers.
    Encode,
}

impl SpotlightMode {
    /// The mode's name in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            SpotlightMode::Delimit => "delimit",
            SpotlightMode::Datamark => "datamark",
            SpotlightMode::Encode => "encode",
        }
    }
}

/// `spotlight: true | false | delimit | datamark | encode`.
fn spotlight<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SpotlightMode>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<SpotlightMode>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("`true`, `false`, `delimit`, `datamark` or `encode`")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then_some(SpotlightMode::Delimit))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "delimit" => Ok(Some(SpotlightMode::Delimit)),
                "datamark" => Ok(Some(SpotlightMode::Datamark)),
                "encode" => Ok(Some(SpotlightMode::Encode)),
                other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
            }
        }
    }
    d.deserialize_any(V)
}

impl Default for RawOutput {
    fn default() -> Self {
        RawOutput {
            label: Label::Public,
            categories: Vec::new(),
            trusted: true,
            spotlight: None,
        }
    }
}

/// Which kind of resource a tool argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingKind {
    /// A dataset id (e.g. a table name).
    Dataset,
    /// A mail address, URL or host name.
    Destination,
}

/// How a tool uses a bound dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The tool reads it.
    #[default]
    Read,
    /// The tool writes it.
    Write,
}

/// Maps one tool argument to a resource, so the call is checked against that resource too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    /// Argument name; a dotted path reaches into nested objects (`message.to`).
    pub argument: String,
    /// What the argument names.
    pub resource: BindingKind,
    /// For datasets: whether the tool reads or writes it. Defaults to `read`.
    #[serde(default)]
    pub access: Access,
    /// Whether a call may leave the argument out (a `cc` list). A call that
    /// omits a required one is refused: the upstream's default is not known.
    #[serde(default)]
    pub optional: bool,
}

/// An MCP tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    /// The MCP server that provides the tool (no `.` allowed).
    pub server: String,
    /// The tool's name on that server.
    pub name: String,
    /// What the tool does.
    #[serde(default)]
    pub description: Option<String>,
    /// Behaviour hints.
    #[serde(default)]
    pub annotations: RawAnnotations,
    /// Label and trust of the output.
    #[serde(default)]
    pub output: RawOutput,
    /// Arguments that name resources.
    #[serde(default)]
    pub bindings: Vec<RawBinding>,
    /// How long the MCP gateway holds a call of this tool that needs approval
    /// (overrides `settings.approval_hold_seconds`; 0 answers at once).
    #[serde(default)]
    pub approval_hold_seconds: Option<u64>,
}

/// A data source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// Dataset id (what a bound argument names, e.g. a table).
    pub id: String,
    /// Sensitivity label.
    pub label: Label,
    /// Data categories.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Whether its content can be trusted to carry no instructions. Defaults to `true`.
    #[serde(default = "yes")]
    pub trusted: bool,
}

/// An LLM endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Model id, as agents name it.
    pub id: String,
    /// Who serves it.
    pub provider: String,
    /// Whether it runs outside the organisation.
    pub external: bool,
    /// The most sensitive data it may receive.
    pub clearance: Label,
    /// Whether its artifact is attested.
    #[serde(default)]
    pub attested: bool,
    /// Where the LLM gateway reaches it (an OpenAI-compatible API).
    #[serde(default)]
    pub upstream: Option<super::llm::RawUpstream>,
    /// The data categories it may receive; without it, any (its clearance
    /// alone decides).
    #[serde(default)]
    pub categories: Option<Vec<Category>>,
}

/// An egress sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// Destination id.
    pub id: String,
    /// Mail domains; `*.example.com` matches every subdomain.
    #[serde(default)]
    pub mail_domains: Vec<String>,
    /// URL hosts; `*.example.com` matches every subdomain.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The most sensitive data it may receive.
    pub clearance: Label,
    /// Whether it is outside the organisation.
    pub external: bool,
    /// The destination for everything no other destination matches. At most one;
    /// its clearance must be `public`. Without one, zt4ai adds `unknown`.
    #[serde(default)]
    pub default: bool,
    /// The data categories it may receive; without it, any (its clearance
    /// alone decides).
    #[serde(default)]
    pub categories: Option<Vec<Category>>,
}

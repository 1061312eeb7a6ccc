//! The threat model's data: elements, trust boundaries, flows and threats.

use serde::{Deserialize, Serialize};
use zt4ai_core::Label;

/// What an element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// A human user.
    User,
    /// An AI agent.
    Agent,
    /// zt4ai itself, the enforcement point every agent action crosses.
    Gateway,
    /// An MCP server (a group of tools).
    Server,
    /// An MCP tool.
    Tool,
    /// A dataset.
    Dataset,
    /// An LLM endpoint.
    Model,
    /// An egress sink.
    Destination,
}

/// One element of the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// Unique id, `<kind>:<name>` (`agent:report-agent`, `tool:crm.query`).
    pub id: String,
    /// Kind.
    pub kind: ElementKind,
    /// Name as the inventory spells it.
    pub name: String,
    /// The trust boundary it sits in.
    pub boundary: String,
    /// Its confidentiality label or clearance, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// One line about it (purpose, provider, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A trust boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boundary {
    /// Unique id (`organisation`, `external`, `humans`, `agents`, `untrusted`, `mcp:crm`).
    pub id: String,
    /// Title.
    pub title: String,
    /// The boundary this one sits inside, if any (MCP servers sit in the organisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// What moves along a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// A user's authority delegated to an agent (the agent acts for its owner, or
    /// for any user whose rights cover the call).
    ActsFor,
    /// An agent hands its delegated token to a sub-agent.
    Delegates,
    /// An agent calls a tool (through the gateway).
    Calls,
    /// A tool reads a dataset.
    Reads,
    /// A tool writes a dataset.
    Writes,
    /// A tool returns content to the agent.
    Returns,
    /// An agent invokes a model (prompt and context go to it).
    Invokes,
    /// A tool sends to a destination.
    Sends,
}

/// A flow between two elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Unique id, `<from>-><to>`.
    pub id: String,
    /// Source element id.
    pub from: String,
    /// Target element id.
    pub to: String,
    /// Kind.
    pub kind: FlowKind,
    /// The most sensitive data that can travel along it, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// Whether the data on it is untrusted content.
    #[serde(default)]
    pub untrusted: bool,
    /// Trust boundaries it crosses (ids).
    #[serde(default)]
    pub crosses: Vec<String>,
    /// For a flow the information-flow guards make impossible for the most
    /// sensitive data that could reach it: the guard that stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// Threat classes: STRIDE, and the classes specific to AI systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatClass {
    /// STRIDE: pretending to be someone else.
    Spoofing,
    /// STRIDE: changing data or code.
    Tampering,
    /// STRIDE: denying having acted.
    Repudiation,
    /// STRIDE: data reaching someone not cleared for it.
    InformationDisclosure,
    /// STRIDE: making a component unavailable.
    DenialOfService,
    /// STRIDE: gaining rights one should not have.
    ElevationOfPrivilege,
    /// Instructions from a user that subvert the agent.
    DirectPromptInjection,
    /// Instructions hidden in content the agent reads.
    IndirectPromptInjection,
    /// Sensitive data leaving through the agent.
    SensitiveInformationDisclosure,
    /// An agent able to do more than its purpose needs.
    ExcessiveAgency,
    /// Poisoned data or models.
    DataModelPoisoning,
    /// A compromised model or tool supplier (including a changed tool description).
    SupplyChain,
    /// Model output used as a command without checks.
    ImproperOutputHandling,
    /// The system prompt leaking.
    SystemPromptLeakage,
    /// Runaway use of models and tools.
    UnboundedConsumption,
    /// One agent posing as another.
    AgentIdentitySpoofing,
    /// A compromised agent reaching others' authority.
    LateralMovement,
}

impl ThreatClass {
    /// Name as people read it.
    pub fn title(self) -> &'static str {
        match self {
            ThreatClass::Spoofing => "Spoofing",
            ThreatClass::Tampering => "Tampering",
            ThreatClass::Repudiation => "Repudiation",
            ThreatClass::InformationDisclosure => "Information disclosure",
            ThreatClass::DenialOfService => "Denial of service",
            ThreatClass::ElevationOfPrivilege => "Elevation of privilege",
            ThreatClass::DirectPromptInjection => "Direct prompt injection",
            ThreatClass::IndirectPromptInjection => "Indirect prompt injection",
            ThreatClass::SensitiveInformationDisclosure => "Sensitive information disclosure",
            ThreatClass::ExcessiveAgency => "Excessive agency",
            ThreatClass::DataModelPoisoning => "Data and model poisoning",
            ThreatClass::SupplyChain => "Supply-chain compromise",
            ThreatClass::ImproperOutputHandling => "Improper output handling",
            ThreatClass::SystemPromptLeakage => "System prompt leakage",
            ThreatClass::UnboundedConsumption => "Unbounded consumption",
            ThreatClass::AgentIdentitySpoofing => "Agent identity spoofing",
            ThreatClass::LateralMovement => "Lateral movement between agents",
        }
    }
}

/// Whether the current configuration deals with a threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mitigation {
    /// Nothing in the configuration stops it.
    Unmitigated,
    /// Something reduces it, with gaps (listed).
    PartlyMitigated,
    /// Deterministically stopped, or reduced to what the listed controls accept.
    Mitigated,
}

impl Mitigation {
    /// Name as people read it.
    pub fn title(self) -> &'static str {
        match self {
            Mitigation::Unmitigated => "unmitigated",
            Mitigation::PartlyMitigated => "partly mitigated",
            Mitigation::Mitigated => "mitigated",
        }
    }
}

/// One threat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threat {
    /// Stable id, `<class>:<target>` (`excessive_agency:agent:report-agent`).
    pub id: String,
    /// Class.
    pub class: ThreatClass,
    /// The element or flow id it is about.
    pub target: String,
    /// A short scenario in the deployment's own names.
    pub scenario: String,
    /// OWASP LLM Top 10 2025 ids.
    #[serde(default)]
    pub owasp_llm: Vec<String>,
    /// OWASP agentic threat ids.
    #[serde(default)]
    pub owasp_agentic: Vec<String>,
    /// MITRE ATLAS technique ids.
    #[serde(default)]
    pub mitre_atlas: Vec<String>,
    /// Status under the current configuration.
    pub status: Mitigation,
    /// What decides it: baseline guard ids (`zt4ai.flow.send`), catalogue control
    /// ids (`ZTAI-NE-06`) and inventory settings.
    #[serde(default)]
    pub mitigations: Vec<String>,
    /// What is missing, for partly mitigated and unmitigated threats.
    #[serde(default)]
    pub gaps: Vec<String>,
}

/// The whole threat model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatModel {
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The inventory it was derived from.
    pub inventory: String,
    /// Trust boundaries.
    pub boundaries: Vec<Boundary>,
    /// Elements, by kind then name.
    pub elements: Vec<Element>,
    /// Flows.
    pub flows: Vec<Flow>,
    /// Threats, by target then class.
    pub threats: Vec<Threat>,
}

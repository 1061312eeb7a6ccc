//! The assessment's data: controls, results, scores, the roadmap and the report.
//!
//! Everything here serialises to the JSON report, and the JSON report
//! deserialises back into [`Report`], which is how `--compare` reads an earlier run.

use serde::{Deserialize, Serialize};

/// The pillars of a Zero Trust for AI deployment, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pillar {
    /// Who users and agents are, and how they prove it.
    Identity,
    /// What each identity may do: grants, policies, approvals.
    Access,
    /// Labels, categories, inspection of content.
    Data,
    /// Where data may go: destinations, egress.
    NetworkEgress,
    /// Models, MCP servers and tools as supplied components.
    ModelsSupplyChain,
    /// Audit, telemetry, detection and response.
    ObservabilityResponse,
    /// Ownership, review, separation of duties.
    Governance,
}

impl Pillar {
    /// Every pillar, in report order.
    pub const ALL: [Pillar; 7] = [
        Pillar::Identity,
        Pillar::Access,
        Pillar::Data,
        Pillar::NetworkEgress,
        Pillar::ModelsSupplyChain,
        Pillar::ObservabilityResponse,
        Pillar::Governance,
    ];

    /// The pillar's name as people read it.
    pub fn title(self) -> &'static str {
        match self {
            Pillar::Identity => "Identity",
            Pillar::Access => "Access and least privilege",
            Pillar::Data => "Data",
            Pillar::NetworkEgress => "Network and egress",
            Pillar::ModelsSupplyChain => "Models and supply chain",
            Pillar::ObservabilityResponse => "Observability and response",
            Pillar::Governance => "Governance",
        }
    }

    /// The id used in JSON (`network_egress`).
    pub fn id(self) -> &'static str {
        match self {
            Pillar::Identity => "identity",
            Pillar::Access => "access",
            Pillar::Data => "data",
            Pillar::NetworkEgress => "network_egress",
            Pillar::ModelsSupplyChain => "models_supply_chain",
            Pillar::ObservabilityResponse => "observability_response",
            Pillar::Governance => "governance",
        }
    }
}

/// The Zero Trust principle a control serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principle {
    /// Verify explicitly.
    VerifyExplicitly,
    /// Use least privilege.
    LeastPrivilege,
    /// Assume breach.
    AssumeBreach,
}

/// The lifecycle stage a control applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Data collected and prepared for models and retrieval.
    DataIngestion,
    /// Models trained or fine-tuned.
    Training,
    /// Models, agents and tools deployed.
    Deployment,
    /// Agents acting at run time.
    AgentBehaviour,
}

/// How bad a failed control is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth doing.
    Low,
    /// Should be done.
    Medium,
    /// A real exposure.
    High,
    /// A direct path to the harm zt4ai exists to stop.
    Critical,
}

impl Severity {
    /// Weight in scores.
    pub fn weight(self) -> u32 {
        match self {
            Severity::Low => 1,
            Severity::Medium => 3,
            Severity::High => 6,
            Severity::Critical => 10,
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Low, medium or high (implementation effort, user impact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

/// References from a control to public frameworks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct References {
    /// NIST AI RMF 1.0 subcategories (`GOVERN 1.1`, `MAP 4.1`, `MEASURE 2.7`, `MANAGE 2.4`).
    #[serde(default)]
    pub nist_ai_rmf: Vec<String>,
    /// OWASP Top 10 for LLM Applications 2025 (`LLM01:2025` … `LLM10:2025`).
    #[serde(default)]
    pub owasp_llm: Vec<String>,
    /// OWASP Agentic AI threats (`T1` … `T15`).
    #[serde(default)]
    pub owasp_agentic: Vec<String>,
    /// MITRE ATLAS techniques (`AML.T0051`, `AML.T0051.001`).
    #[serde(default)]
    pub mitre_atlas: Vec<String>,
    /// CISA Zero Trust Maturity Model 2.0 pillars and cross-cutting functions
    /// (`identity`, `devices`, `networks`, `applications_workloads`, `data`,
    /// `visibility_analytics`, `automation_orchestration`, `governance`).
    #[serde(default)]
    pub cisa_ztmm: Vec<String>,
}

/// How a control is assessed. Written `{automated: {check: id}}` or
/// `{manual: {question: "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "RawAssessment")]
pub enum Assessment {
    /// By the named automated check (see [`crate::checks::CHECKS`]).
    Automated {
        /// Check id.
        check: String,
    },
    /// By a person, with this question.
    Manual {
        /// What the assessor must establish.
        question: String,
    },
}

/// The written form of [`Assessment`] (YAML has no map form for enums in serde).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssessment {
    #[serde(default)]
    automated: Option<RawAutomated>,
    #[serde(default)]
    manual: Option<RawManual>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutomated {
    check: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManual {
    question: String,
}

impl TryFrom<RawAssessment> for Assessment {
    type Error = String;

    fn try_from(raw: RawAssessment) -> Result<Self, Self::Error> {
        match (raw.automated, raw.manual) {
            (Some(a), None) => Ok(Assessment::Automated { check: a.check }),
            (None, Some(m)) => Ok(Assessment::Manual {
                question: m.question,
            }),
            _ => Err(
                "expected exactly one of `automated: {check: …}` and `manual: {question: …}`"
                    .into(),
            ),
        }
    }
}

/// One control of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Stable id, `ZTAI-<PILLAR>-<NN>` (`ZTAI-ID-01`).
    pub id: String,
    /// Short title.
    pub title: String,
    /// What the control requires and why, in a few sentences.
    pub description: String,
    /// Pillar.
    pub pillar: Pillar,
    /// Principle served.
    pub principle: Principle,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Group within the pillar (`agent identity`, `delegation`, …).
    pub group: String,
    /// Severity when it fails.
    pub severity: Severity,
    /// Effort to implement.
    pub effort: Level,
    /// Impact on users while implementing.
    pub user_impact: Level,
    /// Framework references.
    #[serde(default)]
    pub references: References,
    /// Automated or manual.
    pub assessment: Assessment,
    /// What to do when it fails.
    pub remediation: String,
    /// Controls that should be in place first (roadmap ordering).
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// The outcome of one control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In place.
    Passed,
    /// Not in place.
    Failed,
    /// Something a person must look at: may be fine, may not.
    Investigate,
    /// Could not be checked here (the reason says why).
    Skipped,
    /// Assessed by a person, not by zt4ai.
    Manual,
}

impl Status {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Investigate => "investigate",
            Status::Skipped => "skipped",
            Status::Manual => "manual",
        }
    }
}

/// Where a result comes from: a place in a file, a live probe, a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was seen.
    pub message: String,
    /// File (inventory, policy file, audit database), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Field path in the inventory (`agents[0].grants.tools[1]`) or policy id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Whether this piece of evidence is a problem (false: supporting context).
    #[serde(default)]
    pub problem: bool,
}

impl Evidence {
    /// A note with no location.
    pub fn note(message: impl Into<String>) -> Evidence {
        Evidence {
            message: message.into(),
            file: None,
            line: None,
            column: None,
            field: None,
            problem: false,
        }
    }
}

/// What an automated check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Passed, failed, investigate or skipped.
    pub status: Status,
    /// One sentence.
    pub summary: String,
    /// Where.
    pub evidence: Vec<Evidence>,
}

impl Outcome {
    /// Passed.
    pub fn passed(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Passed,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    /// Failed.
    pub fn failed(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Failed,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    /// Investigate.
    pub fn investigate(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Investigate,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    /// Skipped, with the reason.
    pub fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Skipped,
            summary: reason.into(),
            evidence: Vec::new(),
        }
    }

    /// Adds evidence.
    pub fn with(mut self, evidence: Vec<Evidence>) -> Outcome {
        self.evidence.extend(evidence);
        self
    }
}

/// One control's result in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
    /// Control id.
    pub control: String,
    /// Title (copied so the report stands alone).
    pub title: String,
    /// Pillar.
    pub pillar: Pillar,
    /// Severity.
    pub severity: Severity,
    /// Outcome.
    pub status: Status,
    /// One sentence (for skipped: the reason; for manual: the question).
    pub summary: String,
    /// Evidence.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// The check that produced it, if automated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// What to do.
    pub remediation: String,
}

/// A pillar's score and maturity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PillarScore {
    /// Pillar.
    pub pillar: Pillar,
    /// 0–100, or `None` when nothing in it was assessed.
    pub score: Option<f64>,
    /// Maturity stage.
    pub maturity: Maturity,
    /// Results by status.
    pub counts: Counts,
}

/// Results by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Investigate.
    pub investigate: usize,
    /// Skipped.
    pub skipped: usize,
    /// Manual.
    pub manual: usize,
}

impl Counts {
    /// Adds one result.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Investigate => self.investigate += 1,
            Status::Skipped => self.skipped += 1,
            Status::Manual => self.manual += 1,
        }
    }
}

/// Maturity stages, in the CISA Zero Trust Maturity Model's sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Maturity {
    /// Static, manual, perimeter thinking.
    Traditional,
    /// Some automation and least privilege, gaps on the critical path.
    Initial,
    /// Most controls automated and enforced.
    Advanced,
    /// Fully automated, just-in-time, continuously verified.
    Optimal,
}

impl Maturity {
    /// Name as people read it.
    pub fn title(self) -> &'static str {
        match self {
            Maturity::Traditional => "Traditional",
            Maturity::Initial => "Initial",
            Maturity::Advanced => "Advanced",
            Maturity::Optimal => "Optimal",
        }
    }
}

/// Phases of the roadmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Find out what is not known yet: manual controls, investigations, skipped checks.
    Assess,
    /// Close critical and high exposures that are cheap to close.
    Foundation,
    /// Put the remaining high and medium controls in place.
    Controls,
    /// Low-severity and costly refinements.
    Optimise,
}

impl Phase {
    /// Name as people read it.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Assess => "Assess",
            Phase::Foundation => "Foundation",
            Phase::Controls => "Controls",
            Phase::Optimise => "Optimise",
        }
    }
}

/// One step of the roadmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoadmapItem {
    /// Phase.
    pub phase: Phase,
    /// Control id.
    pub control: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Effort.
    pub effort: Level,
    /// What to do.
    pub action: String,
    /// Roadmap items (control ids) that come before it.
    #[serde(default)]
    pub after: Vec<String>,
}

/// What was assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Organisation, from the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Inventory file.
    pub inventory: String,
    /// Policy files.
    pub policies: Vec<String>,
    /// Data directory (audit log), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Running gateway, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Sizes: agents, users, tools, datasets, destinations, models, policies.
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// A whole assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Report format version.
    pub format: u32,
    /// zt4ai version that wrote it.
    pub zt4ai_version: String,
    /// Catalogue version.
    pub catalogue_version: String,
    /// When (RFC 3339, UTC); fixed by `--at` for reproducible output.
    pub assessed_at: String,
    /// What was assessed.
    pub target: Target,
    /// Overall score 0–100 (`None` when nothing was assessed).
    pub score: Option<f64>,
    /// Overall maturity (the lowest pillar's).
    pub maturity: Maturity,
    /// Results by status, overall.
    pub counts: Counts,
    /// Per pillar.
    pub pillars: Vec<PillarScore>,
    /// Every control's result, in catalogue order.
    pub results: Vec<ControlResult>,
    /// The plan.
    pub roadmap: Vec<RoadmapItem>,
    /// What changed since an earlier report (`--compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The threat model derived from the same inventory, in brief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_model: Option<ThreatSummary>,
}

/// The threat model in brief, and where the whole document is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatSummary {
    /// The document's file, relative to the report (when written beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Threats in all.
    pub threats: usize,
    /// Unmitigated.
    pub unmitigated: usize,
    /// Partly mitigated.
    pub partly_mitigated: usize,
    /// Mitigated.
    pub mitigated: usize,
    /// The unmitigated threats: class title, target and scenario.
    #[serde(default)]
    pub open: Vec<OpenThreat>,
}

/// One unmitigated threat, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenThreat {
    /// Threat id.
    pub id: String,
    /// Class, as people read it.
    pub class: String,
    /// Scenario.
    pub scenario: String,
}

/// One control whose status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Control id.
    pub control: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Status in the earlier report (`None`: the control is new).
    pub before: Option<Status>,
    /// Status now.
    pub after: Status,
}

/// What changed since an earlier report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// When the earlier report was made.
    pub earlier_assessed_at: String,
    /// Its overall score.
    pub earlier_score: Option<f64>,
    /// Its maturity.
    pub earlier_maturity: Maturity,
    /// Controls that got better (failed → passed, investigate → passed, …).
    pub improved: Vec<Change>,
    /// Controls that got worse.
    pub regressed: Vec<Change>,
    /// Other changes (new controls, skipped ↔ assessed).
    pub other: Vec<Change>,
    /// Per pillar: the earlier and the current score.
    pub pillars: Vec<PillarDelta>,
}

/// A pillar's score before and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PillarDelta {
    /// Pillar.
    pub pillar: Pillar,
    /// Earlier score.
    pub before: Option<f64>,
    /// Current score.
    pub after: Option<f64>,
}

/// The current report format version.
pub const REPORT_FORMAT: u32 = 1;

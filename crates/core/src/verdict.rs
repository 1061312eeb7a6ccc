//! What the pipeline answers: a decision, why, and what the enforcement point must do.

use serde::{Deserialize, Serialize};

use crate::ids::ApprovalId;
use crate::label::SessionLabel;

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Go ahead, honouring the obligations.
    Allow,
    /// Do not do it.
    Deny,
    /// Hold until a human approves; the verdict carries the approval request id.
    RequireApproval,
}

impl Decision {
    /// The decision's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::RequireApproval => "require_approval",
        }
    }
}

/// One reason for a verdict: the policy that decided it and why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The policy id (`zt4ai.flow.send_clearance`), or a built-in id such as
    /// `zt4ai.default_deny` or `zt4ai.request.invalid`.
    pub policy: String,
    /// A sentence for humans.
    pub message: String,
}

/// Something the enforcement point must do when it carries out an allowed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Obligation {
    /// Mark the tool's output as data, not instructions, before the agent sees it.
    Spotlight {
        /// The tool whose output is untrusted.
        tool: String,
        /// How to mark it.
        mode: crate::inventory::SpotlightMode,
    },
    /// Replace a sensitive value in the request's arguments before it goes out.
    Redact {
        /// The argument, as a JSON pointer into the arguments (`/body`).
        argument: String,
        /// First byte of the value in that string.
        start: usize,
        /// One past its last byte.
        end: usize,
        /// What it is (`sensitive.payment_card`).
        finding: String,
    },
}

/// The pipeline's answer to one action request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Allow, deny or require approval.
    pub decision: Decision,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
    /// The ids of the determining policies, sorted.
    pub policies: Vec<String>,
    /// What the enforcement point must do if it goes ahead.
    #[serde(default)]
    pub obligations: Vec<Obligation>,
    /// For `require_approval`: the approval request a human must grant.
    #[serde(default)]
    pub approval: Option<ApprovalId>,
    /// The session's label after this request.
    #[serde(default)]
    pub session: Option<SessionLabel>,
    /// The risk score the decision saw and the signals that make it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskReport>,
}

/// The risk behind a verdict: the score the policies saw, and what makes it up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    /// The score the decision used (0–100): the higher of the session's and
    /// the agent's, plus the reported user risk.
    pub score: u8,
    /// The session's score.
    pub session: u8,
    /// The agent's score (across all its sessions).
    pub agent: u8,
    /// The contributing signals, largest first; their weights add up to the
    /// score before it is capped at 100.
    pub signals: Vec<SignalWeight>,
}

/// One signal's contribution to a risk score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalWeight {
    /// The signal (`new_tool`, `rate_burst`, …).
    pub signal: String,
    /// Risk points it contributes now (decayed since it fired), to one decimal.
    pub weight: f64,
    /// What was seen, for humans.
    pub detail: String,
}

impl Verdict {
    /// A deny with one reason.
    pub fn deny(policy: &str, message: impl Into<String>) -> Verdict {
        Verdict {
            decision: Decision::Deny,
            reasons: vec![Reason {
                policy: policy.to_owned(),
                message: message.into(),
            }],
            policies: vec![policy.to_owned()],
            obligations: Vec::new(),
            approval: None,
            session: None,
            risk: None,
        }
    }

    /// Whether the decision is allow.
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// What an enforcement point tells the agent about a refusal: the
    /// decision, reasons, policies, the approval a human can grant, and the
    /// risk report (no session label: it may name another request's data).
    pub fn explanation(&self) -> serde_json::Value {
        let mut why = serde_json::json!({
            "verdict": self.decision.as_str(),
            "reasons": self.reasons,
            "policies": self.policies,
            "approval": self.approval,
        });
        if let Some(risk) = &self.risk {
            why["risk"] = serde_json::json!(risk);
        }
        why
    }
}

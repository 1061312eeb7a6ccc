//! The one request shape every enforcement point produces.
//!
//! The AuthZEN API, the MCP gateway and the LLM gateway each translate their own
//! protocol into an [`ActionRequest`]; the pipeline never sees HTTP or JSON-RPC.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AgentId, ApprovalId, SessionId, UserId};
use crate::inventory::{Access, BindingKind, Tool};

/// Who is acting: a user, and the agents acting for them, outermost first.
///
/// Authority is the intersection along the chain: a request is allowed only if
/// it is allowed for the user and for every agent in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorChain {
    /// The human the agents act for.
    pub user: UserId,
    /// The agent acting for the user, then any sub-agents it delegated to.
    pub agents: Vec<AgentId>,
}

impl ActorChain {
    /// The agent that is acting now (the innermost), if any.
    pub fn acting_agent(&self) -> Option<&AgentId> {
        self.agents.last()
    }

    /// The chain as text: `alice → report-agent → summariser`.
    pub fn describe(&self) -> String {
        let mut s = self.user.to_string();
        for a in &self.agents {
            s.push_str(" → ");
            s.push_str(a.as_str());
        }
        s
    }
}

/// What the chain wants to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Call an MCP tool with arguments; bound arguments are checked as resources too.
    CallTool {
        /// `server.tool`.
        tool: String,
        /// The call's arguments.
        #[serde(default)]
        arguments: Value,
    },
    /// Read a dataset directly.
    Read {
        /// Dataset id.
        dataset: String,
    },
    /// Write a dataset directly.
    Write {
        /// Dataset id.
        dataset: String,
    },
    /// Send to a mail address, URL or host.
    Send {
        /// The target.
        target: String,
    },
    /// Call a model.
    InvokeModel {
        /// Model id.
        model: String,
        /// What the model would receive (the LLM gateway puts the messages
        /// here as `{"messages": [...]}`, beside the request's other fields):
        /// its strings are inspected as the request's content. When it has
        /// `messages`, its other members are inspected for sensitive data
        /// only. `null` for a bare check.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        prompt: Value,
        /// JSON pointers to the untrusted parts of `prompt` (tool results,
        /// retrieved documents). A prompt injection there does not deny the
        /// call: it makes the session untrusted, as a tool's output would.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        untrusted: Vec<String>,
    },
}

impl Action {
    /// The action's name, as in Cedar and AuthZEN.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CallTool { .. } => "call_tool",
            Action::Read { .. } => "read",
            Action::Write { .. } => "write",
            Action::Send { .. } => "send",
            Action::InvokeModel { .. } => "invoke_model",
        }
    }
}

/// A finding about the request's own content, from an inspector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Finding kind, e.g. `prompt_injection`, `secret`, `pii`.
    pub kind: String,
    /// Where it was found (an argument name or message index).
    #[serde(default)]
    pub location: Option<String>,
    /// For sensitive data: a keyed hash of the value found, never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The kind of finding that the injection guard acts on.
pub const PROMPT_INJECTION: &str = "prompt_injection";

/// The prefix of sensitive-data finding kinds (`sensitive.payment_card`).
pub const SENSITIVE_PREFIX: &str = "sensitive.";

/// One action request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Caller's id for this request, echoed in the verdict and logs.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who is acting.
    pub chain: ActorChain,
    /// The session (task or conversation) the request belongs to.
    pub session: SessionId,
    /// What is to be done.
    pub action: Action,
    /// Risk the caller or the identity provider reports for the user (0–100);
    /// continuous verification adds it to the score as the `user_risk` signal.
    #[serde(default)]
    pub risk: Option<u8>,
    /// Findings about the request's own content.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// A human approval granted for an earlier `require_approval` verdict.
    #[serde(default)]
    pub approval: Option<ApprovalId>,
    /// Ask for a declassification: if the only thing standing in the way is
    /// the session's label, the verdict is `require_approval` for a human to
    /// lower it, instead of a deny.
    #[serde(default)]
    pub declassify: bool,
    /// The task scope of the delegated token the request came with. Set only by an
    /// enforcement point from a verified token, never read from the caller's JSON.
    #[serde(skip)]
    pub scope: Option<crate::Scope>,
}

/// A resource named by one of a tool call's bound arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundValue {
    /// The argument path.
    pub argument: String,
    /// What it names.
    pub kind: BindingKind,
    /// For datasets: read or write.
    pub access: Access,
    /// The value: a dataset id or one send target.
    pub value: String,
}

/// Why a request cannot be evaluated as given (it is then denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A bound argument holds something other than a string or a list of strings.
    #[error(
        "argument `{argument}` of tool `{tool}` must be a string or a list of strings, got {got}"
    )]
    BadArgument {
        /// Tool id.
        tool: String,
        /// Argument path.
        argument: String,
        /// The JSON type found.
        got: &'static str,
    },
    /// A required bound argument is missing or empty: the resource the call
    /// would reach is unknown.
    #[error(
        "argument `{argument}` of tool `{tool}` names the {kind} the call reaches and is required: it is missing or empty"
    )]
    MissingArgument {
        /// Tool id.
        tool: String,
        /// Argument path.
        argument: String,
        /// `dataset` or `destination`.
        kind: &'static str,
    },
    /// The call's arguments are not a JSON object.
    #[error("arguments of tool `{tool}` must be a JSON object, got {got}")]
    NotAnObject {
        /// Tool id.
        tool: String,
        /// The JSON type found.
        got: &'static str,
    },
}

/// The JSON type of `v`, with its article, for error messages (`a string`).
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The mail addresses a call of a tool that sends (one that binds a
/// destination and is not read-only) carries in arguments no binding covers.
/// Strings in the arguments, at any depth, are split as bound destinations
/// are; on a one-line string each part that is wholly a mail address counts,
/// on a longer text only if every part is one. A mail tool whose `bcc` the
/// inventory forgot would otherwise send where no guard looks. Free text that
/// merely mentions an address, and a body that lists some among other lines,
/// are not recipients.
pub fn unbound_recipients(tool: &Tool, arguments: &Value) -> Vec<BoundValue> {
    let mut out = Vec::new();
    if tool.read_only
        || !tool
            .bindings
            .iter()
            .any(|b| b.kind == BindingKind::Destination)
    {
        return out;
    }
    let mut path = Vec::new();
    recipients_in(tool, arguments, &mut path, &mut out);
    out
}

/// The addresses a model provider fetches for a prompt (`{"messages": […]}`,
/// as the LLM gateway builds it): the `url` of each `image_url` part of a
/// message's content, except inline `data:` URLs. The provider reaches each
/// one on the agent's behalf, carrying whatever its path and query hold.
pub fn provider_fetches(prompt: &Value) -> Vec<&str> {
    let parts = prompt
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten();
    parts
        .filter_map(|p| match p.get("image_url") {
            Some(Value::String(url)) => Some(url.as_str()),
            Some(v) => v.get("url").and_then(Value::as_str),
            None => None,
        })
        .filter(|url| {
            !url.trim_start()
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
        })
        .collect()
}

/// Deeper than any tool's arguments go; what lies below is not looked at.
const MAX_ARGUMENT_DEPTH: usize = 16;

fn recipients_in<'a>(
    tool: &Tool,
    v: &'a Value,
    path: &mut Vec<&'a str>,
    out: &mut Vec<BoundValue>,
) {
    if path.len() > MAX_ARGUMENT_DEPTH {
        return;
    }
    let bound = || {
        tool.bindings
            .iter()
            .any(|b| b.path.iter().map(String::as_str).eq(path.iter().copied()))
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k);
                recipients_in(tool, x, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !bound() => {
            for x in items {
                recipients_in(tool, x, path, out);
            }
        }
        Value::String(s) if !path.is_empty() && !bound() => {
            let parts: Vec<&str> = targets(s).collect();
            // On one line, each part that is an address is a recipient
            // (`"hi, x@rival.example"` is no way around it); text over several
            // lines (a body listing contacts) only when every part is one.
            let addresses: Vec<&str> = parts
                .iter()
                .copied()
                .filter(|p| is_mail_address(p))
                .collect();
            if !s.contains(['\n', '\r']) || addresses.len() == parts.len() {
                for p in addresses {
                    out.push(BoundValue {
                        argument: path.join("."),
                        kind: BindingKind::Destination,
                        access: Access::Read,
                        value: p.to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
}

/// Whether `s` is one mail address (`a@b.example` or `Name <a@b.example>`),
/// not a sentence that holds one.
fn is_mail_address(s: &str) -> bool {
    matches!(
        crate::inventory::Target::parse(s),
        Ok(crate::inventory::Target::Mail { address, domain })
            if domain.contains('.') && !address.contains(char::is_whitespace)
    )
}

/// The targets in a destination value: its parts between `,`, `;` and line
/// breaks, trimmed, empty ones dropped.
fn targets(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', ';', '\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The resources a tool call names through its bound arguments.
///
/// Destination arguments are split on `,`, `;` and line breaks, so that
/// `"a@acme.example, b@evil.example"` yields two targets: every recipient is
/// checked, not just the first.
pub fn bound_values(tool: &Tool, arguments: &Value) -> Result<Vec<BoundValue>, RequestError> {
    let mut out = Vec::new();
    if tool.bindings.is_empty() {
        return Ok(out);
    }
    match arguments {
        Value::Object(_) | Value::Null => {}
        other => {
            return Err(RequestError::NotAnObject {
                tool: tool.id.clone(),
                got: json_type(other),
            });
        }
    }
    for b in &tool.bindings {
        let mut v = arguments;
        for seg in &b.path {
            v = match v.get(seg) {
                Some(x) => x,
                None => &Value::Null,
            };
        }
        let mut strings = Vec::new();
        match v {
            Value::Null => {}
            Value::String(s) => strings.push(s.as_str()),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => strings.push(s.as_str()),
                        other => {
                            return Err(RequestError::BadArgument {
                                tool: tool.id.clone(),
                                argument: b.argument(),
                                got: json_type(other),
                            });
                        }
                    }
                }
            }
            other => {
                return Err(RequestError::BadArgument {
                    tool: tool.id.clone(),
                    argument: b.argument(),
                    got: json_type(other),
                });
            }
        }
        let before = out.len();
        for s in strings {
            let parts: Vec<&str> = match b.kind {
                BindingKind::Destination => targets(s).collect(),
                BindingKind::Dataset => vec![s.trim()],
            };
            for p in parts {
                out.push(BoundValue {
                    argument: b.argument(),
                    kind: b.kind,
                    access: b.access,
                    value: p.to_owned(),
                });
            }
        }
        if out.len() == before && !b.optional {
            return Err(RequestError::MissingArgument {
                tool: tool.id.clone(),
                argument: b.argument(),
                kind: match b.kind {
                    BindingKind::Dataset => "dataset",
                    BindingKind::Destination => "destination",
                },
            });
        }
    }
    Ok(out)
}

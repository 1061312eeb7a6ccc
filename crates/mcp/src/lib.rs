//! The MCP gateway: zt4ai as an MCP server to agents and an MCP client to the
//! upstream MCP servers of the inventory, deciding every tool call with the same
//! pipeline as the AuthZEN API.
//!
//! * `tools/list` merges the upstream servers' tools, each name prefixed with its
//!   server's prefix (`crm.query` by default), and shows an agent only the tools
//!   its delegated token's chain may call at all. A per-server endpoint
//!   ([`McpGateway::for_server`]) shows one server's tools under their own names.
//! * Every definition listed is pinned (see [`Pins`]): a tool whose description or
//!   schema changes later, or that carries hidden instructions, is hidden and
//!   refused until an admin approves it.
//! * `tools/call` becomes an [`ActionRequest`]: the argument bindings resolve to
//!   datasets and destinations, the session is the MCP session, and the verdict
//!   decides. Allow forwards the call upstream (spotlighting untrusted output when
//!   the inventory asks); deny and require-approval answer a JSON-RPC error that
//!   says why, carrying the approval id when a human can lift it. A retry presents
//!   the granted approval in `_meta` under [`APPROVAL_META`]; a call may ask for
//!   its session to be declassified with [`DECLASSIFY_META`].
//! * A call that needs an approval can be held instead of refused at once: when
//!   the inventory gives the tool (or all tools) an `approval_hold`, the gateway
//!   waits that long for a human to decide, then goes on as if the agent had
//!   retried with the granted approval, or refuses the call.
//! * `resources/*`, `prompts/*`, completions and unknown methods are denied: the
//!   gateway offers tools only.
//!
//! The transport (the gateway's Streamable HTTP side) authenticates the caller,
//! owns the MCP sessions and checks that each request comes from the principal
//! that opened its session; [`McpGateway`] answers the methods.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, InitializeRequestParams, InitializeResult, ListToolsResult, ProtocolVersion,
    ResourceContents, ServerCapabilities, Tool, ToolAnnotations,
};
use serde_json::json;
use zt4ai_core::inventory::{McpTransport, SpotlightMode};
use zt4ai_core::{Action, ActionRequest, ApprovalId, Decision, McpServer, Obligation, SessionId};
use zt4ai_identity::VerifiedChain;
use zt4ai_pipeline::Pipeline;
use zt4ai_session::PinStatus;

mod client;
mod conn;
mod pins;
mod upstream;

pub use conn::set_reactor;
pub use pins::{Pins, definition, digest, hidden_instructions};
use upstream::upstream_error;
pub use upstream::{UPSTREAM, UpstreamStatus, Upstreams};

/// JSON-RPC error code for a call denied by policy.
pub const DENIED: ErrorCode = ErrorCode(-32001);
/// JSON-RPC error code for a call held for a human approval.
pub const APPROVAL_REQUIRED: ErrorCode = ErrorCode(-32002);

/// The protocol revisions the gateway speaks to agents: those with `initialize`
/// and sessions, newest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The `_meta` key under which a retried `tools/call` presents a granted approval.
pub const APPROVAL_META: &str = "zt4ai/approval";

/// The `_meta` key under which a `tools/call` asks for a declassification
/// (`true`): if the session's label is all that stands in the way, the call
/// needs a human to lower it instead of being denied.
pub const DECLASSIFY_META: &str = "zt4ai/declassify";

/// The reason id of a held call a human denied.
const HUMAN_DENIED: &str = "zt4ai.approval.denied";

/// How often a held call looks whether its approval has been decided.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// What the gateway answers to the MCP methods it serves, whatever the
/// transport; cheap to clone. The transport (the gateway's HTTP side) owns the
/// MCP sessions and checks that a request comes from the principal that opened
/// its session before it asks anything here.
#[derive(Clone)]
pub struct McpGateway {
    core: Arc<Core>,
    /// `Some`: a per-server endpoint, showing that server's tools unprefixed.
    server: Option<String>,
}

struct Core {
    pipeline: Arc<Pipeline>,
    upstreams: Arc<Upstreams>,
    pins: Arc<Pins>,
}

impl std::fmt::Debug for McpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpGateway")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl McpGateway {
    /// The merged endpoint: every upstream's tools, deciding with `pipeline`,
    /// pinning definitions in `pins`.
    pub fn new(pipeline: Arc<Pipeline>, upstreams: Arc<Upstreams>, pins: Arc<Pins>) -> Self {
        McpGateway {
            core: Arc::new(Core {
                pipeline,
                upstreams,
                pins,
            }),
            server: None,
        }
    }

    /// The answer to `initialize`: the gateway's capabilities (tools only) and the
    /// protocol revision: the client's if the gateway speaks it, else the latest
    /// the gateway speaks (the client then decides whether to go on).
    #[must_use]
    pub fn initialize(&self, request: &InitializeRequestParams) -> InitializeResult {
        let version = if PROTOCOL_VERSIONS.contains(&request.protocol_version.as_str()) {
            request.protocol_version.clone()
        } else {
            ProtocolVersion::V_2025_11_25
        };
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("zt4ai", env!("CARGO_PKG_VERSION"))
                    .with_title("zt4ai MCP gateway"),
            )
            .with_protocol_version(version)
    }

    /// `tools/list` for `v`: the upstream servers' tools that `v`'s chain may
    /// call at all and whose pins stand, under the names of this endpoint.
    pub async fn list_tools(&self, v: &VerifiedChain) -> Result<ListToolsResult, ErrorData> {
        let chain = v.actor_chain();
        let mut tools: Vec<Tool> = Vec::new();
        for server in self.servers() {
            // One unreachable upstream must not hide every other server's tools:
            // it is skipped (and logged); calling one of its tools answers -32003.
            let listed = match self.upstream_tools(server).await {
                Ok(l) => l,
                Err(e) if e.code == UPSTREAM => {
                    tracing::warn!(server = %server.id, error = %e.message, "upstream MCP server unavailable; its tools are not listed");
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (mut t, status) in listed {
                let id = format!("{}.{}", server.id, t.name);
                if status.usable()
                    && self
                        .core
                        .pipeline
                        .may_call_tool(&chain, v.scope.as_ref(), &id)
                {
                    t.name = self.exposed(server, &t.name).into();
                    if let Some(declared) = self.core.pipeline.inventory().tools.get(&id) {
                        present(&mut t, declared);
                    }
                    tools.push(t);
                }
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// The same gateway restricted to one upstream server, whose tools keep their
    /// own names; `None` if no such server is configured.
    pub fn for_server(&self, id: &str) -> Option<Self> {
        self.core.upstreams.server(id)?;
        Some(McpGateway {
            core: Arc::clone(&self.core),
            server: Some(id.to_owned()),
        })
    }

    fn servers(&self) -> Vec<&McpServer> {
        match &self.server {
            Some(id) => self.core.upstreams.server(id).into_iter().collect(),
            None => self.core.upstreams.servers().collect(),
        }
    }

    /// The name an agent sees for `tool` of `server` on this endpoint.
    fn exposed(&self, server: &McpServer, tool: &str) -> String {
        match self.server {
            Some(_) => tool.to_owned(),
            None => format!("{}{tool}", server.prefix),
        }
    }

    /// The server and upstream tool name behind a name an agent called.
    fn resolve<'a>(&self, name: &'a str) -> Option<(&McpServer, &'a str)> {
        match &self.server {
            Some(id) => Some((self.core.upstreams.server(id)?, name)),
            None => self.core.upstreams.resolve(name),
        }
    }

    /// Lists `server`'s tools upstream and pins every definition; returns the
    /// tools with where their pins stand.
    async fn upstream_tools(
        &self,
        server: &McpServer,
    ) -> Result<Vec<(Tool, PinStatus)>, ErrorData> {
        let ups = &self.core.upstreams;
        let conn = match ups.conn(&server.id).await {
            Ok(c) => c,
            Err(e) => {
                ups.note(&server.id, Err(("connect", e.message.to_string())));
                return Err(e);
            }
        };
        let listed = match tokio::time::timeout(server.timeout, conn.list_tools()).await {
            Ok(Ok(t)) => {
                ups.note(&server.id, Ok(()));
                t
            }
            Ok(Err(client::Failure::Rpc(e))) => {
                ups.note(&server.id, Ok(()));
                return Err(upstream_error(
                    &server.id,
                    &format!("tools/list failed: {}", e.message),
                ));
            }
            Ok(Err(client::Failure::Broken { short, detail })) => {
                ups.note(&server.id, Err(("broken", short.clone())));
                ups.forget(&server.id).await;
                return Err(upstream::broken_error(
                    &server.id,
                    "tools/list",
                    &short,
                    &detail,
                ));
            }
            Err(_) => {
                ups.note(&server.id, Err(("timeout", "tools/list timed out".into())));
                return Err(upstream_error(&server.id, "tools/list timed out"));
            }
        };
        let pins = Arc::clone(&self.core.pins);
        let id = server.id.clone();
        tokio::task::spawn_blocking(move || {
            listed
                .into_iter()
                .map(|t| {
                    let status = pins.observe(&format!("{id}.{}", t.name), &t)?;
                    Ok((t, status))
                })
                .collect::<Result<Vec<_>, zt4ai_session::StoreError>>()
        })
        .await
        .map_err(|e| ErrorData::internal_error(format!("pinning failed: {e}"), None))?
        .map_err(|e| {
            tracing::error!(error = %e, "tool pins unavailable; the tools are refused");
            ErrorData::internal_error(format!("tool pins unavailable: {e}"), None)
        })
    }

    /// Whether `id` may be used as far as its pin goes; lists the server first if
    /// the gateway has never seen the tool.
    async fn pinned(&self, server: &McpServer, id: &str) -> Result<(), ErrorData> {
        let status = |pins: &Pins| {
            pins.status(id).map_err(|e| {
                tracing::error!(error = %e, "tool pins unavailable; the call is refused");
                ErrorData::internal_error(format!("tool pins unavailable: {e}; denied"), None)
            })
        };
        let mut current = status(&self.core.pins)?;
        if current.is_none() {
            // Rare (first sight of the server's tools), and large: boxed so that
            // every call's future stays small.
            Box::pin(self.upstream_tools(server)).await?;
            current = status(&self.core.pins)?;
        }
        match current {
            Some(PinStatus::Pinned) => Ok(()),
            None => Err(ErrorData::invalid_params(
                format!("unknown tool: `{}` does not offer it", server.id),
                None,
            )),
            Some(s) => Err(ErrorData::new(
                DENIED,
                format!(
                    "`{id}` is blocked: its definition {}; an admin must review and approve it",
                    if s == PinStatus::Changed {
                        "changed since it was first seen"
                    } else {
                        "looks like it carries hidden instructions"
                    }
                ),
                Some(json!({
                    "verdict": "deny",
                    "reasons": [{"code": "zt4ai.mcp.tool_blocked", "message": format!("tool definition {}", s.as_str())}],
                })),
            )),
        }
    }

    /// Decides one `tools/call` of `v` in the information-flow session
    /// `session`, presenting `approval`, and forwards it upstream if allowed.
    /// The MCP handler and the gateway's direct path for `tools/call` both come
    /// here; the caller has checked that `v` owns the MCP session.
    pub async fn call(
        &self,
        v: &VerifiedChain,
        session: String,
        request: CallToolRequestParams,
        approval: Option<ApprovalId>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let Some((server, tool)) = self.resolve(&name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`: no upstream server has that prefix"),
                None,
            ));
        };
        let id = format!("{}.{tool}", server.id);
        let declassify = declassify_in(&request)?;
        self.pinned(server, &id).await?;
        let arguments = serde_json::Value::Object(request.arguments.clone().unwrap_or_default());
        let mut req = ActionRequest {
            request_id: None,
            chain: v.actor_chain(),
            session: SessionId::new(session)
                .map_err(|e| ErrorData::invalid_request(format!("session: {e}"), None))?,
            action: Action::CallTool {
                tool: id.clone(),
                arguments,
            },
            risk: v.risk,
            findings: Vec::new(),
            approval,
            scope: v.scope.clone(),
            declassify,
        };
        // Decided in place, as the AuthZEN API does: a decision takes microseconds
        // (a thread hop to the blocking pool would cost more than it). The call
        // goes upstream only once its audit record is durable.
        let mut verdict = self.core.pipeline.enforce(&req, "mcp").await;
        if verdict.decision == Decision::RequireApproval
            && let Some(approval) = verdict.approval.clone()
            && let Some(hold) = self.hold(&id)
        {
            // Held for a human: once granted, decided again as the agent's
            // retry with the approval would be (which uses the approval up).
            Box::pin(self.await_grant(&name, &approval, hold)).await?;
            req.approval = Some(approval);
            verdict = self.core.pipeline.enforce(&req, "mcp").await;
        }
        if verdict.decision != Decision::Allow {
            return Err(refusal(&name, &verdict));
        }
        let ups = &self.core.upstreams;
        let conn = match ups.conn(&server.id).await {
            Ok(c) => c,
            Err(e) => {
                ups.note(&server.id, Err(("connect", e.message.to_string())));
                return Err(e);
            }
        };
        let mut upstream_req = request;
        upstream_req.name = tool.to_owned().into();
        if let Some(args) = upstream_req.arguments.as_mut()
            && let Err(e) = redact(args, &verdict.obligations)
        {
            tracing::error!(tool = %name, error = %e, "redaction failed; the call is not sent");
            return Err(ErrorData::new(
                DENIED,
                format!(
                    "`{name}`: sensitive data could not be redacted ({e}); the call is not sent"
                ),
                None,
            ));
        }
        // The agent's `_meta` stays here. Nothing inspects it or weighs it
        // against where the call goes, as the arguments are, so passed on it
        // would be a channel around the flow guards (a customer list under any
        // key of `_meta` of an allowed call to an outside server). Approvals and
        // declassifications are zt4ai's business; progress is not relayed.
        upstream_req.meta = None;
        // The upstream call is a client span under the agent's call (the MCP
        // semantic conventions), and the upstream server continues the trace
        // from it: the one `_meta` key sent is the span's `traceparent`. The
        // agent's `tracestate` is not passed on (up to 512 characters of its
        // choosing).
        let span = upstream_span(server, tool);
        if let Some(parent) = zt4ai_telemetry::traceparent(&span) {
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.0.set_traceparent(parent);
            upstream_req.meta = Some(meta);
        }
        // Boxed: the exchange's state is large, and the futures around this one
        // would otherwise copy it each time one is moved into the next.
        let exchange = Box::pin(tracing::Instrument::instrument(
            conn.call_tool(upstream_req),
            span.clone(),
        ));
        let response = match tokio::time::timeout(server.timeout, exchange).await {
            Ok(Ok(r)) => {
                ups.note(&server.id, Ok(()));
                r
            }
            Ok(Err(client::Failure::Rpc(mut e))) => {
                ups.note(&server.id, Ok(()));
                // The upstream's own error, passed on as its error: never in
                // zt4ai's code range, so it cannot pass for a policy verdict.
                if (-32003..=-32001).contains(&e.code.0) {
                    e.code = UPSTREAM;
                }
                e.message = format!("upstream MCP server `{}`: {}", server.id, e.message).into();
                return Err(e);
            }
            Ok(Err(client::Failure::Broken { short, detail })) => {
                ups.note(&server.id, Err(("broken", short.clone())));
                ups.forget(&server.id).await;
                return Err(upstream::broken_error(
                    &server.id,
                    "tools/call",
                    &short,
                    &detail,
                ));
            }
            Err(_) => {
                ups.note(&server.id, Err(("timeout", "tools/call timed out".into())));
                return Err(upstream_error(&server.id, "tools/call timed out"));
            }
        };
        let CallToolResponse::Complete(mut result) = response else {
            return Ok(response);
        };
        // What came back is inspected, and the session changed by it, before
        // the agent sees it: every text the agent's model may read, not only
        // the text blocks (an upstream that puts its payload in structured
        // content or an embedded resource is not a way around the detector).
        let structured = result.structured_content.as_ref().map(json_strings);
        let texts: Vec<&str> = result
            .content
            .iter()
            .filter_map(block_text)
            .chain(structured.as_deref())
            .collect();
        let findings = match self.core.pipeline.absorb_output(&req, "mcp", &texts).await {
            Ok(f) => f,
            Err(v) => return Err(refusal(&name, &v)),
        };
        let injected = findings
            .iter()
            .any(|f| f.kind == zt4ai_pipeline::inspect::FindingKind::PromptInjection);
        let mode = verdict.obligations.iter().find_map(|o| match o {
            Obligation::Spotlight { mode, .. } => Some(*mode),
            _ => None,
        });
        // Output found to carry an injection is spotlighted even from a tool
        // the inventory trusts: the detector has just shown otherwise.
        if let Some(mode) = mode.or(injected.then_some(SpotlightMode::Delimit)) {
            spotlight(&name, &mut result, mode);
        }
        Ok(CallToolResponse::Complete(result))
    }

    /// How long a call of `tool` (`server.tool`) that needs an approval is
    /// held for a human: the tool's own `approval_hold`, else the settings';
    /// `None` when that is zero (the call is refused at once).
    fn hold(&self, tool: &str) -> Option<std::time::Duration> {
        let inventory = self.core.pipeline.inventory();
        let hold = inventory
            .tools
            .get(tool)
            .and_then(|t| t.approval_hold)
            .unwrap_or(inventory.settings.approval_hold);
        (!hold.is_zero()).then_some(hold)
    }

    /// Waits up to `hold` for a human to decide `approval`; `Ok` once it is
    /// granted. A denial, an approval that expires or is used by another
    /// request, no decision in time, or a store that fails is the JSON-RPC
    /// error to answer (the store failing closes the call: nothing is sent).
    async fn await_grant(
        &self,
        name: &str,
        approval: &ApprovalId,
        hold: std::time::Duration,
    ) -> Result<(), ErrorData> {
        use zt4ai_session::ApprovalStatus;
        tracing::info!(tool = %name, approval = %approval, hold_ms = hold.as_millis(), "MCP call held for a human approval");
        let deadline = tokio::time::Instant::now() + hold;
        let data = || Some(json!({ "approval": approval }));
        loop {
            let a = self
                .core
                .pipeline
                .store()
                .approval(approval.as_str())
                .map_err(|e| {
                    tracing::error!(tool = %name, approval = %approval, error = %e, "approval store unavailable; the held call is refused");
                    ErrorData::internal_error(
                        format!("`{name}`: the approval `{approval}` could not be read ({e}); the call is not sent"),
                        data(),
                    )
                })?;
            let by = a.decided_by.as_deref().unwrap_or("-");
            match a.status {
                ApprovalStatus::Granted => {
                    tracing::info!(tool = %name, approval = %approval, by = %by, "held MCP call approved");
                    return Ok(());
                }
                ApprovalStatus::Denied => {
                    tracing::info!(tool = %name, approval = %approval, by = %by, "held MCP call denied by a human");
                    return Err(ErrorData::new(
                        DENIED,
                        format!("`{name}` was denied by `{by}` (approval `{approval}`)"),
                        Some(json!({
                            "verdict": "deny",
                            "reasons": [{"policy": HUMAN_DENIED, "message": format!("approval `{approval}` denied by `{by}`")}],
                            "policies": [HUMAN_DENIED],
                            "approval": approval,
                            "decided_by": a.decided_by,
                        })),
                    ));
                }
                ApprovalStatus::Used => {
                    return Err(ErrorData::new(
                        DENIED,
                        format!(
                            "`{name}`: approval `{approval}` was used by another request; the call is not sent"
                        ),
                        data(),
                    ));
                }
                ApprovalStatus::Pending if zt4ai_core::unix_now() >= a.expires_at => {
                    return Err(ErrorData::new(
                        DENIED,
                        format!(
                            "`{name}`: approval `{approval}` expired before anyone decided it; the call is not sent"
                        ),
                        data(),
                    ));
                }
                ApprovalStatus::Pending => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                tracing::info!(tool = %name, approval = %approval, "no decision within the hold; the approval stays pending");
                return Err(ErrorData::new(
                    APPROVAL_REQUIRED,
                    format!(
                        "`{name}` needs a human approval ({approval}) and none decided within {} s; the approval stays pending: once granted, retry with `_meta.{APPROVAL_META}`",
                        hold.as_secs_f32()
                    ),
                    Some(
                        json!({ "verdict": "require_approval", "approval": approval, "held_ms": hold.as_millis() }),
                    ),
                ));
            }
            tokio::time::sleep(HOLD_POLL.min(deadline - now)).await;
        }
    }
}

/// The JSON-RPC error for a call the verdict does not allow: why, and the
/// approval id when a human can lift it.
fn refusal(name: &str, verdict: &zt4ai_core::Verdict) -> ErrorData {
    let why = verdict.explanation();
    let first = verdict
        .reasons
        .first()
        .map_or(String::new(), |r| format!(": {}", r.message));
    if verdict.decision == Decision::RequireApproval {
        ErrorData::new(
            APPROVAL_REQUIRED,
            format!(
                "`{name}` needs a human approval ({}){first}; once granted, retry with `_meta.{APPROVAL_META}`",
                verdict.approval.as_ref().map_or("-", |a| a.as_str())
            ),
            Some(why),
        )
    } else {
        ErrorData::new(
            DENIED,
            format!("`{name}` denied by zt4ai policy{first}"),
            Some(why),
        )
    }
}

/// The refusal of a request made in another principal's MCP session (and its
/// log line).
pub fn not_the_owner(session: &str) -> ErrorData {
    tracing::warn!(decision = "deny", session = %session, "MCP session used with another principal's token");
    ErrorData::new(
        DENIED,
        "this MCP session belongs to another user or agent chain: open your own session",
        Some(
            json!({"verdict": "deny", "reasons": [{"code": "zt4ai.mcp.session_owner", "message": "MCP session bound to another principal"}]}),
        ),
    )
}

/// The information-flow session of every MCP session opened with the
/// delegated token `v`: its user's and outermost agent's
/// ([`VerifiedChain::flow_session`]), not the MCP session's or the token's.
/// Opening a fresh MCP session, reconnecting after a gateway restart or
/// renewing the token therefore keeps the label the calls have raised.
pub fn flow_session(v: &VerifiedChain) -> String {
    v.flow_session()
}

/// The client span of a `tools/call` of `tool` on `server` (disabled, and
/// free, without a trace exporter).
fn upstream_span(server: &McpServer, tool: &str) -> tracing::Span {
    let transport = match server.transport {
        McpTransport::Http { .. } => "tcp",
        McpTransport::Stdio { .. } => "pipe",
    };
    let span = tracing::debug_span!(target: zt4ai_telemetry::TRACE_TARGET, "tools/call",
        otel.name = format!("tools/call {tool}"),
        otel.kind = "client",
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        zt4ai.mcp.server = %server.id,
        network.transport = transport,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let McpTransport::Http { url } = &server.transport
        && let Ok(uri) = url.parse::<http::Uri>()
    {
        if let Some(host) = uri.host() {
            span.record("server.address", host);
        }
        if let Some(port) = uri.port_u16() {
            span.record("server.port", port);
        }
    }
    span
}

/// The text of a content block that a model reads: a text block, an embedded
/// text resource, a resource link's description.
fn block_text(block: &ContentBlock) -> Option<&str> {
    match block {
        ContentBlock::Text(t) => Some(&t.text),
        ContentBlock::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents { text, .. } => Some(text),
            _ => None,
        },
        ContentBlock::ResourceLink(l) => l.description.as_deref(),
        _ => None,
    }
}

/// Every string of `value` (object keys too), one per line, for inspection.
/// (Parsed JSON is at most 128 levels deep: serde_json's limit.)
fn json_strings(value: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        let push = |s: &str, out: &mut String| {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        };
        match v {
            serde_json::Value::String(s) => push(s, out),
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    push(k, out);
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

/// Marks untrusted tool output as data, not instructions: every text
/// [`block_text`] inspects. Structured content cannot be marked, so it is
/// dropped (the listing drops the output schema of such tools, so clients do
/// not expect it).
fn spotlight(tool: &str, result: &mut CallToolResult, mode: SpotlightMode) {
    result.structured_content = None;
    let mark = |text: &str| zt4ai_pipeline::inspect::spotlight::spotlight(tool, text, mode);
    for block in &mut result.content {
        match block {
            ContentBlock::Text(t) => *block = ContentBlock::text(mark(&t.text)),
            ContentBlock::Resource(r) => {
                if let ResourceContents::TextResourceContents { text, .. } = &mut r.resource {
                    *text = mark(text);
                }
            }
            ContentBlock::ResourceLink(l) => {
                if let Some(d) = &mut l.description {
                    *d = mark(d);
                }
            }
            _ => {}
        }
    }
}

/// Carries out the verdict's redactions in a call's arguments (see
/// [`zt4ai_pipeline::redact`]); fails, so that the call is not sent, if a
/// value is not where the verdict says.
fn redact(
    arguments: &mut serde_json::Map<String, serde_json::Value>,
    obligations: &[Obligation],
) -> Result<(), String> {
    let mut root = serde_json::Value::Object(std::mem::take(arguments));
    let result = zt4ai_pipeline::redact(&mut root, obligations);
    if let serde_json::Value::Object(map) = root {
        *arguments = map;
    }
    result
}

/// Shows a listed tool as the inventory declares it: the inventory's annotations
/// (not the upstream's hints) and, when its output is spotlighted, no output
/// schema (spotlighted results carry text only).
fn present(t: &mut Tool, declared: &zt4ai_core::inventory::Tool) {
    let upstream = t.annotations.take().unwrap_or_default();
    t.annotations = Some(ToolAnnotations::from_raw(
        upstream.title,
        Some(declared.read_only),
        Some(declared.destructive),
        upstream.idempotent_hint,
        Some(declared.open_world),
    ));
    if !declared.output_trusted && declared.spotlight.is_some() {
        t.output_schema = None;
    }
}

/// The refusal of a method the gateway does not offer (and its log line):
/// `resources/*`, `prompts/*` and completions are denied by policy default.
pub fn not_offered(method: &str, v: &VerifiedChain) -> ErrorData {
    let agent = v.agents.last().map_or("-", |a| a.as_str());
    tracing::info!(decision = "deny", method, agent = %agent, "MCP method refused: the gateway offers tools only");
    ErrorData::new(
        DENIED,
        format!("`{method}` is not offered through the zt4ai gateway: denied by default"),
        Some(json!({
            "verdict": "deny",
            "reasons": [{"code": "zt4ai.mcp.method_not_offered", "message": format!("{method} is denied by default")}],
        })),
    )
}

/// The refusal of a method that MCP does not define (`-32601`), also denied.
pub fn unknown_method(method: &str, v: &VerifiedChain) -> ErrorData {
    let e = not_offered(method, v);
    ErrorData::new(ErrorCode::METHOD_NOT_FOUND, e.message, e.data)
}

/// The approval a `tools/call` presents in its params' `_meta`, if any.
pub fn approval_in(request: &CallToolRequestParams) -> Result<Option<ApprovalId>, ErrorData> {
    match request.meta.as_ref().and_then(|m| m.0.0.get(APPROVAL_META)) {
        Some(v) => approval_id(v),
        None => Ok(None),
    }
}

/// Whether a `tools/call` asks for a declassification in its params' `_meta`.
fn declassify_in(request: &CallToolRequestParams) -> Result<bool, ErrorData> {
    match request
        .meta
        .as_ref()
        .and_then(|m| m.0.0.get(DECLASSIFY_META))
    {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ErrorData::invalid_params(
            format!("`_meta.{DECLASSIFY_META}` must be `true` or `false`"),
            None,
        )),
    }
}

fn approval_id(v: &serde_json::Value) -> Result<Option<ApprovalId>, ErrorData> {
    let s = v.as_str().ok_or_else(|| {
        ErrorData::invalid_params(format!("`_meta.{APPROVAL_META}` must be a string"), None)
    })?;
    ApprovalId::new(s.to_owned())
        .map(Some)
        .map_err(|e| ErrorData::invalid_params(format!("`_meta.{APPROVAL_META}`: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(argument: &str, start: usize, end: usize, finding: &str) -> Obligation {
        Obligation::Redact {
            argument: argument.into(),
            start,
            end,
            finding: finding.into(),
        }
    }

    fn args(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn redaction_cuts_each_value_and_merges_overlaps() {
        let body = "card 4111 1111 1111 1111 and key AKIAZ7QXH3LMNB2V4KWP end";
        let mut a = args(json!({"to": "x@y.example", "body": body, "cc": ["a", "token ghp_x"]}));
        let obligations = [
            cut("/body", 33, 53, "sensitive.aws_access_key"),
            cut("/body", 5, 24, "sensitive.payment_card"),
            // Overlaps the card: cut as one, both kinds named.
            cut("/body", 10, 14, "sensitive.phone"),
            cut("/cc/1", 6, 11, "sensitive.github_token"),
            Obligation::Spotlight {
                tool: "t".into(),
                mode: SpotlightMode::Delimit,
            },
        ];
        redact(&mut a, &obligations).unwrap();
        assert_eq!(
            a["body"],
            "card [REDACTED:payment_card,phone] and key [REDACTED:aws_access_key] end"
        );
        assert_eq!(a["cc"][1], "token [REDACTED:github_token]");
        assert_eq!(a["to"], "x@y.example", "other arguments are untouched");
    }

    #[test]
    fn a_redaction_that_cannot_be_applied_fails() {
        let original = args(json!({"body": "héllo", "n": 3}));
        for (o, why) in [
            (cut("/body", 0, 99, "sensitive.x"), "is not in argument"),
            (cut("/body", 2, 3, "sensitive.x"), "is not in argument"),
            (cut("/n", 0, 1, "sensitive.x"), "is not a string"),
            (cut("/missing", 0, 1, "sensitive.x"), "is not a string"),
        ] {
            let mut a = original.clone();
            let e = redact(&mut a, &[o]).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let mut a = original.clone();
        redact(&mut a, &[]).unwrap();
        assert_eq!(a, original);
    }
}

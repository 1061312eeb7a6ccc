//! The upstream MCP servers: Streamable HTTP servers, whose session is opened on
//! first use and again after a failure (see [`crate::client`]), and stdio servers,
//! child processes that the gateway starts, restarts when they exit and stops on
//! shutdown.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResponse, ErrorCode, Tool};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ErrorData, RoleClient, ServiceExt as _};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zt4ai_core::{McpServer, McpTransport};

use crate::client::{Failure, HttpUpstream};

/// JSON-RPC error code for an upstream server that failed or is unreachable.
pub const UPSTREAM: ErrorCode = ErrorCode(-32003);

type Client = RunningService<RoleClient, rmcp::model::ClientConfig>;

/// First wait before restarting a stdio server that exited; doubles up to
/// [`MAX_BACKOFF`] while it keeps exiting within a minute of starting.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stdio server that ran this long before exiting restarts at once.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Environment variables a stdio server inherits from the gateway; everything
/// else (the admin token, cloud credentials…) is withheld unless the inventory
/// sets it in `env`.
const INHERITED_ENV: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

pub(crate) fn upstream_error(server: &str, what: &str) -> ErrorData {
    ErrorData::new(
        UPSTREAM,
        format!("upstream MCP server `{server}`: {what}"),
        None,
    )
}

/// A broken exchange as the agent sees it: what failed, in a few words; the
/// details (transport internals) go to the log only.
pub(crate) fn broken_error(server: &str, what: &str, short: &str, detail: &str) -> ErrorData {
    tracing::warn!(server, error = %detail, "upstream MCP {what} failed");
    upstream_error(server, &format!("{what} failed: {short}"))
}

/// An rmcp client error (stdio servers) as a [`Failure`].
fn failure(e: rmcp::ServiceError) -> Failure {
    if let rmcp::ServiceError::McpError(e) = e {
        return Failure::Rpc(e);
    }
    let short = match &e {
        rmcp::ServiceError::TransportClosed => {
            "the connection closed (the server stopped or crashed)"
        }
        rmcp::ServiceError::Timeout { .. } => "timed out",
        rmcp::ServiceError::Cancelled { .. } => "cancelled",
        rmcp::ServiceError::UnexpectedResponse => "answered with something that is not MCP",
        _ => "the connection failed",
    };
    Failure::Broken {
        short: short.to_owned(),
        detail: e.to_string(),
    }
}

/// A connection to one upstream server.
pub(crate) enum Conn {
    /// A stdio server, through rmcp's client.
    Stdio(Peer<RoleClient>),
    /// A Streamable HTTP server.
    Http(Arc<HttpUpstream>),
}

impl Conn {
    /// `tools/list`, every page.
    pub(crate) async fn list_tools(&self) -> Result<Vec<Tool>, Failure> {
        match self {
            Conn::Stdio(p) => p.list_all_tools().await.map_err(failure),
            Conn::Http(h) => h.list_tools().await,
        }
    }

    /// `tools/call`.
    pub(crate) async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResponse, Failure> {
        match self {
            // Boxed: rmcp's request future is large, and the HTTP path is the
            // one that must stay small.
            Conn::Stdio(p) => Box::pin(p.call_tool_once(params)).await.map_err(failure),
            Conn::Http(h) => h.call_tool(params).await,
        }
    }
}

/// One upstream server and its connection.
struct Upstream {
    server: McpServer,
    /// Streamable HTTP: the client.
    http: Option<Arc<HttpUpstream>>,
    /// Stdio: the current child's peer, published by the supervisor (`None`
    /// while it is (re)starting).
    stdio: watch::Sender<Option<Peer<RoleClient>>>,
    supervisor: std::sync::Mutex<Option<JoinHandle<()>>>,
    starts: AtomicU64,
    /// How the last exchange went: `None` before the first, else the error kind
    /// and message of a failure.
    last: parking_lot::Mutex<Option<Result<(), (&'static str, String)>>>,
}

/// How an upstream server stands, as far as the gateway has seen (`/readyz`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamStatus {
    /// The server's id.
    pub server: String,
    /// `up` (its last exchange worked, or its stdio process runs), `down` (its
    /// last exchange failed) or `unknown` (nothing exchanged yet).
    pub state: &'static str,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The upstream MCP servers of the inventory.
pub struct Upstreams {
    servers: BTreeMap<String, Arc<Upstream>>,
    /// Prefix → server id, for the merged endpoint's tool names.
    prefixes: Vec<(String, String)>,
    shutting_down: Arc<AtomicBool>,
    shutdown: tokio_util::sync::CancellationToken,
    /// The runtime [`Self::supervise_here`] (or [`Self::start`]) ran on:
    /// supervisors run there, whichever runtime a call that (re)starts one
    /// runs on, so that they outlive it.
    home: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Upstreams {
    /// The upstreams of the inventory's `mcp_servers`. Stdio servers start on
    /// [`Self::start`] (or on first use). Fails if the HTTP client cannot be
    /// built (no TLS backend) or a server's URL does not parse.
    pub fn new(servers: impl IntoIterator<Item = McpServer>) -> Result<Self, String> {
        // rustls is built with no default provider: use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One connector (TLS configuration) for every HTTP upstream; each
        // keeps its own idle connections.
        let connector = crate::client::connector()
            .map_err(|e| format!("building the upstream HTTP client: {e}"))?;
        let servers: BTreeMap<String, Arc<Upstream>> = servers
            .into_iter()
            .map(|server| {
                let http = match &server.transport {
                    McpTransport::Http { url } => Some(Arc::new(
                        HttpUpstream::new(url, connector.clone())
                            .map_err(|e| format!("MCP server `{}`: {e}", server.id))?,
                    )),
                    McpTransport::Stdio { .. } => None,
                };
                Ok((
                    server.id.clone(),
                    Arc::new(Upstream {
                        server,
                        http,
                        stdio: watch::channel(None).0,
                        supervisor: std::sync::Mutex::new(None),
                        starts: AtomicU64::new(0),
                        last: parking_lot::Mutex::new(None),
                    }),
                ))
            })
            .collect::<Result<_, String>>()?;
        let mut prefixes: Vec<(String, String)> = servers
            .values()
            .map(|u| (u.server.prefix.clone(), u.server.id.clone()))
            .collect();
        // Longest first: the inventory guarantees no prefix starts another, but a
        // longest-match keeps resolution right even for hand-built configs.
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Ok(Upstreams {
            servers,
            prefixes,
            shutting_down: Arc::new(AtomicBool::new(false)),
            shutdown: tokio_util::sync::CancellationToken::new(),
            home: std::sync::OnceLock::new(),
        })
    }

    /// Makes the runtime this is called on the one stdio servers' supervisors
    /// run on, whichever runtime starts one (a call on a serving thread, see
    /// `zt4ai_gateway::serve_threads`), so that they outlive that runtime. The
    /// first call counts; without any, a supervisor runs where it is started.
    pub fn supervise_here(&self) {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let _ = self.home.set(h);
        }
    }

    /// Starts the stdio servers' supervisors, on this runtime (see
    /// [`Self::supervise_here`]). Must run inside a Tokio runtime.
    pub fn start(&self) {
        self.supervise_here();
        for u in self.servers.values() {
            if matches!(u.server.transport, McpTransport::Stdio { .. }) {
                self.supervise(u);
            }
        }
    }

    /// Stops every stdio server (closing its stdin, then SIGTERM, then SIGKILL) and
    /// closes the HTTP connections. Calls after this fail.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
        for u in self.servers.values() {
            let handle = u.supervisor.lock().ok().and_then(|mut h| h.take());
            if let Some(h) = handle {
                let _ = h.await;
            }
            if let Some(h) = &u.http {
                let _ = tokio::time::timeout(Duration::from_secs(2), h.close()).await;
            }
        }
    }

    /// The configured servers.
    pub fn servers(&self) -> impl Iterator<Item = &McpServer> {
        self.servers.values().map(|u| &u.server)
    }

    /// One configured server.
    pub fn server(&self, id: &str) -> Option<&McpServer> {
        self.servers.get(id).map(|u| &u.server)
    }

    /// The server and upstream tool name behind a merged-endpoint tool name.
    pub fn resolve<'a>(&self, name: &'a str) -> Option<(&McpServer, &'a str)> {
        self.prefixes.iter().find_map(|(prefix, id)| {
            let tool = name.strip_prefix(prefix.as_str())?;
            (!tool.is_empty()).then_some(())?;
            Some((self.server(id)?, tool))
        })
    }

    /// Notes how an exchange with server `id` went; a failure (`kind`:
    /// `connect`, `broken`, `timeout`) is counted in the metrics.
    pub(crate) fn note(&self, id: &str, outcome: Result<(), (&'static str, String)>) {
        if let Err((kind, _)) = &outcome {
            zt4ai_telemetry::metrics().upstream_error(id, kind);
        }
        if let Some(u) = self.servers.get(id) {
            *u.last.lock() = Some(outcome);
        }
    }

    /// How every server stands.
    pub fn status(&self) -> Vec<UpstreamStatus> {
        self.servers
            .values()
            .map(|u| {
                let last = u.last.lock().clone();
                let running = u.http.is_none() && u.stdio.borrow().is_some();
                let (state, error) = match last {
                    Some(Err((kind, message))) => ("down", Some(format!("{kind}: {message}"))),
                    Some(Ok(())) => ("up", None),
                    None if running => ("up", None),
                    None => ("unknown", None),
                };
                UpstreamStatus {
                    server: u.server.id.clone(),
                    state,
                    error,
                }
            })
            .collect()
    }

    /// How many times a stdio server has been started (tests and health).
    pub fn starts(&self, id: &str) -> u64 {
        self.servers
            .get(id)
            .map_or(0, |u| u.starts.load(Ordering::Relaxed))
    }

    /// A connection to `server`.
    pub(crate) async fn conn(&self, id: &str) -> Result<Conn, ErrorData> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(upstream_error(id, "the gateway is shutting down"));
        }
        let u = self
            .servers
            .get(id)
            .ok_or_else(|| upstream_error(id, "not configured (`mcp_servers` in the inventory)"))?;
        match &u.server.transport {
            McpTransport::Http { .. } => u
                .http
                .clone()
                .map(Conn::Http)
                .ok_or_else(|| upstream_error(id, "no HTTP client")),
            McpTransport::Stdio { .. } => {
                self.supervise(u);
                let mut rx = u.stdio.subscribe();
                let ready = tokio::time::timeout(
                    u.server.timeout,
                    rx.wait_for(|p| p.as_ref().is_some_and(|p| !p.is_transport_closed())),
                )
                .await;
                match ready {
                    Ok(Ok(p)) => p
                        .clone()
                        .map(Conn::Stdio)
                        .ok_or_else(|| upstream_error(id, "the server process is not running")),
                    Ok(Err(_)) => Err(upstream_error(id, "the server's supervisor stopped")),
                    Err(_) => Err(upstream_error(
                        id,
                        "the server process did not become ready in time",
                    )),
                }
            }
        }
    }

    /// Drops a failed HTTP session so the next call opens a new one. (A stdio
    /// server's supervisor notices its exit by itself.)
    pub(crate) async fn forget(&self, id: &str) {
        if let Some(u) = self.servers.get(id)
            && let Some(h) = &u.http
        {
            h.forget().await;
        }
    }

    /// Starts `u`'s supervisor if it is not running.
    fn supervise(&self, u: &Arc<Upstream>) {
        let Ok(mut slot) = u.supervisor.lock() else {
            return;
        };
        if slot.as_ref().is_some_and(|h| !h.is_finished()) || self.shutdown.is_cancelled() {
            return;
        }
        let u = Arc::clone(u);
        let stop = self.shutdown.clone();
        let task = supervise(u, stop);
        *slot = Some(match self.home.get() {
            Some(home) => home.spawn(task),
            None => tokio::spawn(task),
        });
    }
}

/// Keeps one stdio server running: starts it, publishes its peer, waits for it
/// to exit, and starts it again after a backoff, until shutdown.
async fn supervise(u: Arc<Upstream>, stop: tokio_util::sync::CancellationToken) {
    let id = u.server.id.clone();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match spawn_stdio(&u.server).await {
            Ok(client) => {
                let n = u.starts.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(server = %id, start = n, "stdio MCP server started");
                u.stdio.send_replace(Some(client.peer().clone()));
                let cancel = client.cancellation_token();
                let waiting = client.waiting();
                tokio::pin!(waiting);
                let quit = tokio::select! {
                    q = &mut waiting => q.map(|r| format!("{r:?}")).unwrap_or_else(|e| e.to_string()),
                    () = stop.cancelled() => {
                        u.stdio.send_replace(None);
                        // Closing the service closes the child's stdin, then sends
                        // SIGTERM and, if need be, SIGKILL.
                        cancel.cancel();
                        let _ = tokio::time::timeout(Duration::from_secs(10), &mut waiting).await;
                        tracing::info!(server = %id, "stdio MCP server stopped (shutdown)");
                        return;
                    }
                };
                u.stdio.send_replace(None);
                tracing::warn!(server = %id, reason = %quit, "stdio MCP server exited; restarting");
            }
            Err(e) => {
                tracing::error!(server = %id, error = %e, "stdio MCP server failed to start");
            }
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Starts a stdio server and completes the MCP handshake with it.
async fn spawn_stdio(server: &McpServer) -> Result<Client, String> {
    let McpTransport::Stdio { program, args, env } = &server.transport else {
        return Err("not a stdio server".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_clear().kill_on_drop(true);
    for k in INHERITED_ENV {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.envs(env);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if let Some(stderr) = stderr {
        // The child's stderr goes to the gateway's log, line by line.
        let id = server.id.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(server = %id, "stdio MCP server: {line}");
            }
        });
    }
    tokio::time::timeout(
        server.timeout,
        rmcp::model::ClientConfig::default().serve(transport),
    )
    .await
    .map_err(|_| "timed out in the MCP handshake".to_owned())?
    .map_err(|e| format!("MCP handshake failed: {e}"))
}

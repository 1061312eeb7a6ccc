//! The `zt4ai` command.

mod assess;
mod audit;
mod demo;
mod load;
mod scan;
mod threat;

// mimalloc: the gateway allocates and frees many small buffers per request
// (JSON, headers, records), where glibc's malloc spent about 13 % of a worker's
// time in the MCP load test (perf, BENCHMARKS.md). Built without transparent
// huge pages (`no_thp`): with them its arenas held about 20 MiB more resident
// memory in the AuthZEN load test, for no measurable speed.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use zt4ai_core::{ActionRequest, Decision, unix_now as now};
use zt4ai_gateway::GatewayConfig;
use zt4ai_pipeline::{Pipeline, SessionStore};

/// zt4ai — Zero Trust for AI agents.
///
/// zt4ai decides every action an AI agent takes (tool calls, reads, sends, model
/// calls) against an inventory of users, agents, tools, data and destinations,
/// tracks what each session has read, and stops confidential data from flowing
/// to sinks that are not cleared for it, even when the agent was talked into it.
///
/// Without --inventory, zt4ai uses its built-in example (Acme Corp: an executive,
/// an analyst, a reporting agent, a CRM, mail and the web).
#[derive(Debug, Parser)]
#[command(name = "zt4ai", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    source: Source,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ZT4AI_LOG_FORMAT")]
    log_format: LogFormat,
    /// Export trace spans (one per request, decision and pipeline stage) over
    /// OTLP/HTTP to this collector (e.g. `http://127.0.0.1:4318`). Default:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` if set, else no traces.
    #[arg(long, global = true, env = "ZT4AI_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where the inventory and policies come from.
#[derive(Debug, clap::Args)]
struct Source {
    /// Inventory YAML file. Default: the built-in example inventory.
    #[arg(long, short, global = true, env = "ZT4AI_INVENTORY")]
    inventory: Option<PathBuf>,
    /// Directory of `.cedar` policy files. Default: the inventory's `policies:`
    /// field, or `policies/` beside the inventory file if it exists.
    #[arg(long, short, global = true, env = "ZT4AI_POLICIES")]
    policies: Option<PathBuf>,
}

/// The server's data directory, for the commands that work on it offline.
#[derive(Debug, clap::Args)]
struct DataDir {
    /// Directory of the server's data: its SQLite database and signing keys.
    #[arg(
        long = "data-dir",
        default_value = "zt4ai-data",
        env = "ZT4AI_DATA_DIR",
        global = true
    )]
    dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the decision server (AuthZEN API) on embedded defaults: SQLite in the data
    /// directory, the built-in example inventory unless --inventory is given.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "ZT4AI_LISTEN")]
        listen: SocketAddr,
        /// Threads that serve HTTP, each running its own event loop; every
        /// connection is served by one of them (1 to 256). Default: one per
        /// CPU.
        #[arg(long, env = "ZT4AI_THREADS",
              value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Directory for the SQLite database (sessions, approvals).
        #[arg(long, default_value = "zt4ai-data", env = "ZT4AI_DATA_DIR")]
        data_dir: PathBuf,
        /// Largest accepted request body in bytes.
        #[arg(long, default_value_t = 256 * 1024)]
        max_body_bytes: usize,
        /// Public base URL for the AuthZEN metadata. Default: http://<listen>.
        #[arg(long)]
        base_url: Option<String>,
        /// Decision-cache entries (policy outcomes memoised per principal, action,
        /// resource and context class); 0 evaluates every decision afresh.
        #[arg(long, default_value_t = 65_536, env = "ZT4AI_DECISION_CACHE")]
        decision_cache: usize,
        /// A `Host` header the MCP endpoints accept besides loopback and the base
        /// URL's host (DNS-rebinding protection); repeatable.
        #[arg(long = "mcp-allowed-host")]
        mcp_allowed_hosts: Vec<String>,
        /// Keep a signed audit checkpoint at least every N records (the head is
        /// re-signed at every commit regardless).
        #[arg(long, default_value_t = 10_000, env = "ZT4AI_AUDIT_CHECKPOINT_RECORDS")]
        audit_checkpoint_records: u64,
        /// Keep a signed audit checkpoint at least every N seconds while records
        /// arrive.
        #[arg(long, default_value_t = 60, env = "ZT4AI_AUDIT_CHECKPOINT_SECONDS")]
        audit_checkpoint_seconds: u64,
        /// The longest an audit record waits for the disk, in milliseconds. Every
        /// record is in the audit journal (a file held by the operating system, so
        /// it survives zt4ai crashing or being killed; each entry authenticated
        /// with a key derived from the log's) before its action proceeds, and in
        /// the signed log within 10 ms; a sync thread puts it on disk within this
        /// time. 0 commits and syncs each record to the log itself before the
        /// action proceeds (survives a power cut; costs a disk sync on every
        /// request's path).
        #[arg(long, default_value_t = 10, env = "ZT4AI_AUDIT_SYNC_MS")]
        audit_sync_ms: u64,
        /// The longest a journaled audit record waits to be moved into the
        /// signed log, in milliseconds (batched with the records around it;
        /// 1 to 60,000). Until then it is in the journal, authenticated, and
        /// survives zt4ai being killed.
        #[arg(long, default_value_t = 10, env = "ZT4AI_AUDIT_DEFER_MS",
              value_parser = clap::value_parser!(u64).range(1..=60_000))]
        audit_defer_ms: u64,
        /// The audit log's origin (first line of its checkpoints, and its key's
        /// name); used when the signing key is first created.
        #[arg(long, default_value = zt4ai_audit::DEFAULT_ORIGIN, env = "ZT4AI_AUDIT_ORIGIN")]
        audit_origin: String,
    },
    /// Validate the inventory and policies; exit 1 with located errors.
    Check,
    /// Decide one request (AuthZEN evaluation JSON, or zt4ai's ActionRequest JSON)
    /// read from FILE or stdin. Exit code: 0 allow, 2 deny, 3 require_approval, 1 error.
    Decide {
        /// Request file; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Use (and update) the sessions in this data directory instead of a fresh,
        /// in-memory store. Do not point it at a directory a running server uses.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect a text for prompt injection and sensitive data, as the gateway
    /// inspects tool arguments and output. Exit code: 0 nothing found, 2 found,
    /// 1 error.
    Scan {
        /// Text file; `-` for stdin.
        file: PathBuf,
        /// Which detectors to run.
        #[arg(long, value_enum, default_value = "all")]
        detector: scan::Detector,
        /// Report injections from this probability (0–1) instead of the
        /// model's operating threshold.
        #[arg(long)]
        threshold: Option<f32>,
        /// Who wrote the text: untrusted content (tool output or arguments,
        /// a page, a document) or the principal's own message to a model,
        /// which is held to the higher threshold the LLM gateway uses for it.
        #[arg(long, value_enum, default_value = "untrusted")]
        from: scan::From,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Assess the deployment's posture against zt4ai's Zero Trust for AI control
    /// catalogue: automated checks on the inventory and policies (and, when
    /// given, the audit log and a running gateway), scores and maturity per
    /// pillar, and a phased roadmap. Exit code: 0 done, 2 --fail-on met, 1 error.
    Assess(assess::Args),
    /// Derive the AI threat model from the inventory and policies: trust
    /// boundaries, the data-flow diagram (Mermaid, Graphviz DOT, SVG), threats
    /// per element and flow (STRIDE and AI-specific classes) with their
    /// mitigation status under the current configuration. Exit code: 0 done,
    /// 2 --fail-on-unmitigated met, 1 error.
    ThreatModel(threat::Args),
    /// Print the Cedar schema generated from the inventory.
    Schema,
    /// Write a synthetic inventory, policies and an AuthZEN request mix (for
    /// benchmarks and load tests) into DIR.
    #[command(hide = true)]
    GenInventory {
        /// Output directory.
        out: PathBuf,
        /// Agents.
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Tools.
        #[arg(long, default_value_t = 1000)]
        tools: usize,
        /// Custom policies (the 16 baseline guards come on top).
        #[arg(long, default_value_t = 185)]
        custom_policies: usize,
        /// Requests in the mix.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Sessions per agent in the mix.
        #[arg(long, default_value_t = 100)]
        sessions_per_agent: usize,
    },
    /// The agent registry: register agents, and suspend, resume or retire them.
    /// Changes reach a running server within a second.
    Agent {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: AgentCommand,
    },
    /// Delegated tokens: revoke one (takes effect within a second).
    Token {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Rotate zt4ai's token-signing key. Tokens signed with the old key stay valid
    /// until they expire; a running server picks the new key up within a second.
    RotateKeys {
        /// Directory of the server's data.
        #[arg(long, default_value = "zt4ai-data", env = "ZT4AI_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// The built-in development identity provider, for running zt4ai without an
    /// organisation IdP: mints user tokens the server accepts when the inventory
    /// has no `identity` section.
    DevIdp {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: DevIdpCommand,
    },
    /// The tamper-evident audit log: verify it, export inclusion proofs, query,
    /// tail and export records (JSON Lines, OCSF).
    Audit {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: audit::AuditCommand,
    },
    /// List, show and decide human approvals for `require_approval` verdicts.
    ///
    /// Works on the local database as the operator: whoever can run this can
    /// write the database anyway, so `--by` is taken at the operator's word. It
    /// must name a user of the inventory (give the server's --inventory); when
    /// the inventory names an approver group (`settings.approvers`) only its
    /// members may decide, and the user a request was made for may never grant
    /// it. The admin API (`POST /admin/v1/approvals/ID/approve`) instead proves
    /// the approver with their own identity-provider token.
    Approvals {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: ApprovalCommand,
    },
    /// MCP tool pins: the definitions the gateway accepts, and the tools blocked
    /// because their definition changed or looks poisoned.
    Tools {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        action: ToolCommand,
    },
    /// Run a demo MCP server (`crm`, `mail`, `web`) matching the built-in example's
    /// tools, on stdio or Streamable HTTP.
    #[command(hide = true)]
    McpDemo {
        /// Which server.
        #[arg(value_enum)]
        server: demo::Demo,
        /// Serve Streamable HTTP at ADDR (`/mcp`) instead of stdio.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Test hook: `crm` exits in the middle of a `query` of this table.
        #[arg(long, hide = true)]
        crash_on: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ToolCommand {
    /// Every tool the gateway has seen, blocked ones first.
    List,
    /// Accept a tool's current definition as its pin, unblocking it.
    Approve {
        /// The tool (`server.tool`).
        tool: String,
        /// Approve only if this is still the definition seen (from `tools list`).
        #[arg(long)]
        digest: Option<String>,
        /// Who is approving it (recorded).
        #[arg(long, env = "USER")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent. Every agent needs an owner, a user of the inventory.
    Register {
        /// Agent id.
        id: String,
        /// The accountable user.
        #[arg(long)]
        owner: String,
        /// What the agent is for.
        #[arg(long)]
        purpose: String,
        /// The agent's public key (a JWK, as JSON text or `@file`), for its signed assertions.
        #[arg(long)]
        public_jwk: Option<String>,
        /// Also issue a client secret (development fallback), printed once.
        #[arg(long)]
        secret: bool,
        /// Who is registering it (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// List registered agents.
    List,
    /// Show an agent and its lifecycle history.
    Show {
        /// Agent id.
        id: String,
    },
    /// Set an agent's credentials: a public JWK, or a new client secret (printed once).
    Credentials {
        /// Agent id.
        id: String,
        /// Public key (JWK JSON text or `@file`).
        #[arg(long)]
        public_jwk: Option<String>,
        /// Issue a new client secret.
        #[arg(long)]
        secret: bool,
        /// Who is changing them (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Suspend an agent: every request with its tokens is refused from now on.
    Suspend {
        /// Agent id.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: Option<String>,
        /// Who (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Resume a suspended agent.
    Resume {
        /// Agent id.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: Option<String>,
        /// Who (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Retire an agent for good.
    Retire {
        /// Agent id.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: Option<String>,
        /// Who (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Revoke a delegated token, given whole or by its `jti`.
    Revoke {
        /// The token, or its `jti`.
        token: String,
        /// Why (recorded).
        #[arg(long)]
        reason: Option<String>,
        /// Who (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Revoke every session of a user (or one IdP session with --sid).
    RevokeUser {
        /// User id.
        user: String,
        /// Only this IdP session.
        #[arg(long)]
        sid: Option<String>,
        /// Who (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Sign delegated tokens directly with the server's key, without an exchange
    /// (load tests; needs the key file): one per line of an AuthZEN request file,
    /// for the chain its subject states.
    #[command(hide = true)]
    Mint {
        /// AuthZEN requests, one JSON object per line.
        #[arg(long)]
        for_requests: PathBuf,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// A distinct token (its own `jti`) for every line, instead of one per
        /// chain.
        #[arg(long)]
        each: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DevIdpCommand {
    /// Print a user token signed by the development identity provider.
    Token {
        /// User id.
        user: String,
        /// Groups claim.
        #[arg(long)]
        groups: Vec<String>,
        /// Risk claim: low, medium, high (or a score 0–100).
        #[arg(long)]
        risk: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ApprovalCommand {
    /// List pending approvals (all with --all).
    List {
        /// Include granted, denied and used approvals.
        #[arg(long)]
        all: bool,
    },
    /// Show every field of one approval: what it is for, who asked, why, and
    /// where it stands.
    Show {
        /// Approval id (`apr_…`).
        id: String,
    },
    /// Approve (grant) an approval: a call the gateway holds for it goes on;
    /// otherwise the agent's retry of that exact request is allowed once. A
    /// declassification lowers the session's label for that one request.
    #[command(visible_alias = "grant")]
    Approve {
        /// Approval id (`apr_…`).
        id: String,
        /// The user approving it: a user of the inventory, in the approver
        /// group if it names one, and not the user the request was made for.
        /// Taken at the operator's word and recorded.
        #[arg(long)]
        by: String,
    },
    /// Deny an approval: a call the gateway holds for it is refused.
    Deny {
        /// Approval id (`apr_…`).
        id: String,
        /// The user denying it: a user of the inventory, in the approver group
        /// if it names one. Taken at the operator's word and recorded.
        #[arg(long)]
        by: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let endpoint = cli
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|e| !e.is_empty());
    let otlp = match init_logging(cli.log_format, endpoint.as_deref()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    };
    if let Some(o) = otlp {
        o.shutdown();
    }
    code
}

/// Logs to stderr (filtered by `ZT4AI_LOG`), and trace spans to an OTLP
/// collector when `endpoint` is given. Returns the exporter to shut down (it
/// flushes the last spans) before exiting.
fn init_logging(
    format: LogFormat,
    endpoint: Option<&str>,
) -> Result<Option<zt4ai_telemetry::Otlp>, String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};
    let filter = EnvFilter::try_from_env("ZT4AI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    };
    let (otel, otlp) = match endpoint {
        Some(url) => {
            let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "zt4ai".into());
            let (layer, otlp) = zt4ai_telemetry::otlp_layer(url, &service)?;
            let targets = tracing_subscriber::filter::Targets::new()
                .with_target(zt4ai_telemetry::TRACE_TARGET, tracing::Level::DEBUG);
            (Some(layer.with_filter(targets)), Some(otlp))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(fmt).with(otel).init();
    Ok(otlp)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check => {
            let loaded = match load::engine(&cli.source) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let inv = loaded.engine.inventory();
            for w in loaded.engine.warnings() {
                println!("warning: {w}");
            }
            println!(
                "ok: {} — {} users, {} groups, {} agents, {} tools, {} datasets, {} models, {} destinations; {} policies ({} baseline guards)",
                loaded.description,
                inv.users.len(),
                inv.groups.len(),
                inv.agents.len(),
                inv.tools.len(),
                inv.datasets.len(),
                inv.models.len(),
                inv.destinations.len(),
                loaded.engine.policy_ids().len(),
                loaded
                    .engine
                    .policy_ids()
                    .iter()
                    .filter(|p| p.starts_with("zt4ai."))
                    .count(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            let loaded = load::engine(&cli.source).map_err(anyhow::Error::msg)?;
            print!("{}", loaded.engine.schema_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Decide {
            file,
            data_dir,
            json,
        } => {
            let loaded = load::engine(&cli.source).map_err(anyhow::Error::msg)?;
            let text = match file.as_deref() {
                None => read_stdin()?,
                Some(p) if p.as_os_str() == "-" => read_stdin()?,
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading `{}`", p.display()))?,
            };
            let req = parse_request(&text)?;
            // Inspected as the server inspects, with the server's finding key
            // when there is one.
            let key = match &data_dir {
                Some(dir) if dir.join(scan::KEY_FILE).exists() => scan::key(dir)?,
                _ => scan::ephemeral_key()?,
            };
            let store = match data_dir {
                Some(dir) => open_store(&dir)?,
                None => SessionStore::open_in_memory()?,
            };
            let inspector = zt4ai_pipeline::inspect::Inspector::from_inventory(
                &loaded.engine.inventory().inspection,
                key,
            )
            .context("loading the content inspector")?;
            let pipeline = Pipeline::new(Arc::new(loaded.engine), Arc::new(store))
                .with_inspector(Arc::new(inspector));
            let v = pipeline.decide(&req);
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", v.decision.as_str());
                for r in &v.reasons {
                    println!("  {}: {}", r.policy, r.message);
                }
                for o in &v.obligations {
                    println!("  obligation: {}", serde_json::to_string(o)?);
                }
                if let Some(a) = &v.approval {
                    println!(
                        "  approval request: {a} (an approver decides it: `zt4ai approvals approve {a} --by <approver>`)"
                    );
                }
            }
            Ok(match v.decision {
                Decision::Allow => ExitCode::SUCCESS,
                Decision::Deny => ExitCode::from(2),
                Decision::RequireApproval => ExitCode::from(3),
            })
        }
        Command::GenInventory {
            out,
            agents,
            tools,
            custom_policies,
            requests,
            sessions_per_agent,
        } => {
            use zt4ai_core::inventory::synthetic;
            let policies = custom_policies;
            let sizes = synthetic::Sizes {
                agents,
                tools,
                policies,
            };
            let (yaml, cedar) = synthetic::generate(sizes);
            std::fs::create_dir_all(out.join("policies"))?;
            std::fs::write(out.join("inventory.yaml"), yaml)?;
            std::fs::write(out.join("policies").join("synthetic.cedar"), cedar)?;
            let mut lines = String::new();
            let mut sessions = std::collections::BTreeSet::new();
            for r in synthetic::requests(sizes, requests, sessions_per_agent) {
                sessions.insert(r.session.clone());
                lines.push_str(&synthetic::to_authzen(&r).to_string());
                lines.push('\n');
            }
            std::fs::write(out.join("requests.jsonl"), lines)?;
            println!(
                "wrote {}: {agents} agents, {tools} tools, {policies} custom policies, {requests} requests over {} sessions",
                out.display(),
                sessions.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { data, action } => {
            let data_dir = data.dir;
            let store = existing_store(&data_dir)?;
            agent_command(&store, &data_dir, action, &cli.source)
        }
        Command::Token { data, action } => {
            let data_dir = data.dir;
            match action {
                TokenCommand::Revoke { token, reason, by } => {
                    let store = existing_store(&data_dir)?;
                    let (jti, exp) = zt4ai_identity::token_id(&token)
                        .unwrap_or_else(|| (token.clone(), now() + 86_400));
                    let new = store.revoke_token(
                        &jti,
                        exp.max(now() + 86_400),
                        &by,
                        reason.as_deref(),
                        now(),
                    )?;
                    audit::record(
                        &data_dir,
                        "token.revoked",
                        &by,
                        &jti,
                        serde_json::json!({ "reason": reason }),
                    )?;
                    println!(
                        "revoked token {jti}{}",
                        if new { "" } else { " (already revoked)" }
                    );
                }
                TokenCommand::RevokeUser { user, sid, by } => {
                    let store = existing_store(&data_dir)?;
                    store.revoke_user_session(&user, sid.as_deref(), &by, now())?;
                    audit::record(
                        &data_dir,
                        "user.revoked",
                        &by,
                        &user,
                        serde_json::json!({ "sid": sid }),
                    )?;
                    println!(
                        "revoked {} of user {user}",
                        sid.map_or("every session".to_owned(), |s| format!("session {s}"))
                    );
                }
                TokenCommand::Mint {
                    for_requests,
                    ttl,
                    each,
                } => {
                    let keys = zt4ai_identity::KeyRing::open(
                        &data_dir.join(zt4ai_identity::SIGNING_KEYS),
                        now(),
                    )?;
                    let text = std::fs::read_to_string(&for_requests)
                        .with_context(|| format!("reading `{}`", for_requests.display()))?;
                    let mut cache = std::collections::HashMap::new();
                    let mut out = String::new();
                    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                        let req = parse_request(line)?;
                        let key = if each {
                            n.to_string()
                        } else {
                            req.chain.describe()
                        };
                        if !cache.contains_key(&key) {
                            let t = now();
                            let agents: Vec<String> =
                                req.chain.agents.iter().map(ToString::to_string).collect();
                            let claims = zt4ai_identity::DelegatedClaims {
                                iss: zt4ai_identity::ISSUER.into(),
                                sub: req.chain.user.to_string(),
                                aud: zt4ai_identity::ISSUER.into(),
                                iat: t,
                                nbf: t,
                                exp: t + ttl,
                                jti: format!("mint-{}", cache.len()),
                                act: zt4ai_identity::Actor::from_chain(&agents)
                                    .context("a request without an agent")?,
                                scope: None,
                                risk: None,
                                sid: None,
                                auth_time: t,
                                cnf: None,
                            };
                            let token = keys.sign(&claims, "at+jwt").map_err(anyhow::Error::msg)?;
                            cache.insert(key.clone(), token);
                        }
                        out.push_str(&cache[&key]);
                        out.push('\n');
                    }
                    print!("{out}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateKeys { data_dir } => {
            let keys =
                zt4ai_identity::KeyRing::open(&data_dir.join(zt4ai_identity::SIGNING_KEYS), now())?;
            // Keep retired keys published for the longest token lifetime plus skew.
            let kid = keys.rotate(now(), 86_400 + 300)?;
            let by = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            audit::record(
                &data_dir,
                "keys.rotated",
                &by,
                &kid,
                serde_json::Value::Null,
            )?;
            println!(
                "new signing key {kid}; tokens signed with the old one stay valid until they expire"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::DevIdp { data, action } => match action {
            DevIdpCommand::Token {
                user,
                groups,
                risk,
                ttl,
            } => {
                let keys = zt4ai_identity::KeyRing::open(
                    &data.dir.join(zt4ai_identity::DEV_IDP_KEYS),
                    now(),
                )?;
                let t = zt4ai_identity::mint_dev_token(
                    &keys,
                    &user,
                    &groups,
                    risk.as_deref(),
                    ttl,
                    now(),
                )
                .map_err(anyhow::Error::msg)?;
                println!("{t}");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Audit { data, action } => audit::run(&data.dir, action),
        Command::Assess(args) => assess::run(&cli.source, args),
        Command::ThreatModel(args) => threat::run(&cli.source, args),
        Command::Scan {
            file,
            detector,
            threshold,
            from,
            json,
            data,
        } => {
            let loaded = load::engine(&cli.source).map_err(anyhow::Error::msg)?;
            // The server's key when there is one, so that digests match its
            // audit records; otherwise a key for this run only.
            let key = if data.dir.join(scan::KEY_FILE).exists() {
                scan::key(&data.dir)?
            } else {
                scan::ephemeral_key()?
            };
            let inspection = &loaded.engine.inventory().inspection;
            scan::run(inspection, key, &file, detector, threshold, from, json)
        }
        Command::Approvals { data, action } => {
            use zt4ai_session::{ApprovalKind, Approver};
            /// The operator's `--by`: a user of the inventory, and whether
            /// they are in its approver group (the group, if it names one).
            fn approver(source: &Source, by: &str) -> Result<(Approver, Option<String>)> {
                let s = load::sources(source).map_err(anyhow::Error::msg)?;
                let inv = zt4ai_core::Inventory::from_yaml_str(&s.text, &s.name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if !zt4ai_core::UserId::new(by.to_owned())
                    .is_ok_and(|id| inv.users.contains_key(&id))
                {
                    bail!(
                        "`{by}` is not a user in the inventory ({}): --by names the human deciding",
                        s.description
                    );
                };
                let group = inv.settings.approvers.clone();
                if group.is_none() {
                    eprintln!(
                        "warning: the inventory names no approver group (`settings.approvers`): any user but the one a request was made for may approve it"
                    );
                }
                let in_group = group.as_ref().is_none_or(|g| inv.user_in_group(by, g));
                let user = by.to_owned();
                Ok((Approver { user, in_group }, group))
            }
            fn time(secs: i64) -> String {
                zt4ai_assess::rfc3339(u64::try_from(secs).unwrap_or(0))
            }
            let data_dir = data.dir;
            let db = data_dir.join(DB_FILE);
            if !db.exists() {
                bail!(
                    "no zt4ai database at `{}` (is --data-dir right?)",
                    db.display()
                );
            }
            let store = open_store(&data_dir)?;
            let grant = matches!(action, ApprovalCommand::Approve { .. });
            match action {
                ApprovalCommand::List { all } => {
                    let list = store.approvals(all)?;
                    if list.is_empty() {
                        println!("no {}approvals", if all { "" } else { "pending " });
                    }
                    for a in list {
                        println!(
                            "{}  {}  {}  for {}  {}",
                            a.id,
                            a.standing(now()),
                            a.kind.as_str(),
                            a.requested_by,
                            a.summary
                        );
                        for r in &a.reasons {
                            println!("    {}: {}", r.policy, r.message);
                        }
                    }
                }
                ApprovalCommand::Show { id } => {
                    let a = store.approval(&id)?;
                    let kind = match a.kind {
                        ApprovalKind::Action => {
                            "action (lifts the policies below for this one request)"
                        }
                        ApprovalKind::Declassification => {
                            "declassification (lowers the session's label for this one request)"
                        }
                    };
                    let none = || "-".to_owned();
                    println!("id:               {}", a.id);
                    println!("kind:             {kind}");
                    println!("status:           {}", a.standing(now()));
                    println!("summary:          {}", a.summary);
                    println!("session:          {}", a.session);
                    println!("requested by:     {}", a.requested_by);
                    println!("chain:            {}", a.chain);
                    println!("action:           {}", a.action);
                    println!("resource:         {}", a.resource);
                    println!(
                        "arguments sha256: {}",
                        a.arguments_sha256.clone().unwrap_or_else(none)
                    );
                    if a.kind == ApprovalKind::Declassification {
                        println!(
                            "lower to:         {}",
                            a.lower_to.map_or_else(none, |l| l.to_string())
                        );
                    }
                    println!(
                        "policies:         {}",
                        if a.policies.is_empty() {
                            none()
                        } else {
                            a.policies.join(", ")
                        }
                    );
                    println!("reasons:");
                    for r in &a.reasons {
                        println!("  {}: {}", r.policy, r.message);
                    }
                    println!("created:          {}", time(a.created_at));
                    println!("expires:          {}", time(a.expires_at));
                    println!(
                        "decided by:       {}",
                        a.decided_by.clone().unwrap_or_else(none)
                    );
                }
                ApprovalCommand::Approve { id, by } | ApprovalCommand::Deny { id, by } => {
                    let (approver, group) = approver(&cli.source, &by)?;
                    let a =
                        store.decide_approval(&id, grant, &approver, group.as_deref(), now())?;
                    let (event, done) = if grant {
                        ("approval.granted", "granted")
                    } else {
                        ("approval.denied", "denied")
                    };
                    let detail = serde_json::json!({
                        "kind": a.kind,
                        "requested_by": a.requested_by,
                        "approver_group": group,
                    });
                    audit::record(&data_dir, event, &by, &id, detail)?;
                    println!("{done} {} by {by}: {}", a.id, a.summary);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::McpDemo {
            server,
            http,
            crash_on,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(demo::run(server, http, crash_on))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { data, action } => {
            let db = data.dir.join(DB_FILE);
            if !db.exists() {
                bail!(
                    "no zt4ai database at `{}` (is --data-dir right?)",
                    db.display()
                );
            }
            let store = open_store(&data.dir)?;
            match action {
                ToolCommand::List => {
                    let pins = store.tool_pins()?;
                    if pins.is_empty() {
                        println!("no tools seen yet");
                    }
                    for p in pins {
                        println!("{}  {}  {}", p.tool, p.status.as_str(), p.seen_digest);
                        if let Some(f) = &p.finding {
                            println!("    finding: {f}");
                            println!("    pinned:  {}", p.definition);
                            println!("    now:     {}", p.seen_definition);
                        }
                    }
                }
                ToolCommand::Approve { tool, digest, by } => {
                    let p = store.approve_tool(&tool, digest.as_deref(), &by, now())?;
                    audit::record(
                        &data.dir,
                        "tool.approved",
                        &by,
                        &tool,
                        serde_json::json!({ "digest": p.digest }),
                    )?;
                    println!("approved {} ({}) by {by}", p.tool, p.digest);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            threads,
            data_dir,
            max_body_bytes,
            base_url,
            decision_cache,
            mcp_allowed_hosts,
            audit_checkpoint_records,
            audit_checkpoint_seconds,
            audit_sync_ms,
            audit_defer_ms,
            audit_origin,
        } => {
            let loaded = load::engine(&cli.source).map_err(anyhow::Error::msg)?;
            loaded.engine.set_cache_capacity(decision_cache);
            let store = Arc::new(open_store(&data_dir)?);
            if audit_checkpoint_records == 0 || audit_checkpoint_seconds == 0 {
                bail!(
                    "--audit-checkpoint-records and --audit-checkpoint-seconds must be at least 1"
                );
            }
            let audit_log = Arc::new(audit::open_log(
                &data_dir,
                &audit_origin,
                zt4ai_audit::AuditConfig {
                    checkpoint_records: audit_checkpoint_records,
                    checkpoint_interval: std::time::Duration::from_secs(audit_checkpoint_seconds),
                    sync: zt4ai_audit::DiskSync::from_millis(audit_sync_ms),
                    // Each record in the journal before its action, in the
                    // signed log within `defer`; with a sync per record, the
                    // commit itself.
                    journal: audit_sync_ms > 0,
                    defer: std::time::Duration::from_millis(audit_defer_ms),
                    ..zt4ai_audit::AuditConfig::default()
                },
            )?);
            audit_log
                .append(&zt4ai_audit::Event::lifecycle(
                    "server.started",
                    "zt4ai",
                    &loaded.description,
                    serde_json::json!({
                        "version": env!("CARGO_PKG_VERSION"),
                        "policies": loaded.engine.policy_ids(),
                    }),
                ))
                .wait()
                .context("recording the server start in the audit log")?;
            let engine = Arc::new(loaded.engine);
            let identity = Arc::new(
                zt4ai_identity::Identity::open(
                    Arc::clone(engine.inventory()),
                    Arc::clone(&store),
                    &data_dir,
                    loaded.dir.as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
            );
            let admin_token = admin_token(&data_dir)?;
            let dev_idp = identity.users().is_dev();
            let mcp_servers = engine.inventory().mcp_servers.clone();
            let mcp = if mcp_servers.is_empty() {
                None
            } else {
                Some(Arc::new(
                    zt4ai_mcp::Upstreams::new(mcp_servers.into_values())
                        .map_err(anyhow::Error::msg)?,
                ))
            };
            let mcp_line = match &mcp {
                Some(m) => format!(
                    "  MCP:       http://{{addr}}/mcp (Streamable HTTP; every upstream's tools), and /mcp/<server> for one of: {}\n",
                    m.servers()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => String::new(),
            };
            let inspector = zt4ai_pipeline::inspect::Inspector::from_inventory(
                &engine.inventory().inspection,
                scan::key(&data_dir)?,
            )
            .context("loading the content inspector")?;
            let settings = &engine.inventory().settings;
            let monitor = Arc::new(
                zt4ai_session::risk::Monitor::load(
                    settings.risk.clone(),
                    settings.quarantine.clone(),
                    &store,
                )
                .context("loading the behaviour baselines")?,
            );
            let notifier = match &settings.quarantine.webhook {
                None => None,
                Some(w) => Some(webhook(w, loaded.dir.as_deref()).map_err(|e| {
                    anyhow::anyhow!("{}: settings.quarantine.webhook: {e}", loaded.description)
                })?),
            };
            // The gateway makes token verification see a quarantine at once;
            // this tells the SOC.
            let quarantined =
                zt4ai_pipeline::QuarantineHook(Arc::new(move |q: &zt4ai_pipeline::Quarantined| {
                    if let Some(n) = &notifier {
                        drop(n.notify("agent.quarantined", serde_json::json!(q)));
                    }
                }));
            let pipeline = Arc::new(
                Pipeline::new(engine, Arc::clone(&store))
                    .with_audit(audit_log)
                    .with_inspector(Arc::new(inspector))
                    .with_monitor(Arc::clone(&monitor))
                    .on_quarantine(quarantined),
            );
            let llm = zt4ai_llm::LlmGateway::new(Arc::clone(&pipeline), loaded.dir.as_deref())
                .map_err(|e| anyhow::anyhow!("LLM gateway: {e}"))?;
            let served = pipeline
                .inventory()
                .models
                .values()
                .filter(|m| m.upstream.is_some())
                .count();
            let threads = threads
                .and_then(|n| std::num::NonZeroUsize::new(n.into()))
                .or_else(|| std::thread::available_parallelism().ok())
                .unwrap_or(std::num::NonZeroUsize::MIN);
            // This runtime accepts connections and runs the background work
            // (upstream supervisors, baseline flushes); requests are served on
            // `threads` threads of their own.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async move {
                identity.load().await.map_err(|e| anyhow::anyhow!("identity provider: {}", e.description))?;
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                let addr = listener.local_addr()?;
                let config = GatewayConfig {
                    max_body_bytes,
                    base_url: base_url.unwrap_or_else(|| format!("http://{addr}")),
                    admin_token: Some(admin_token.0),
                    audit_path: Some(data_dir.join(DB_FILE)),
                    mcp: mcp.clone(),
                    mcp_allowed_hosts,
                    llm: Some(llm),
                    ..GatewayConfig::default()
                };
                if let Some(m) = &mcp {
                    m.start();
                }
                tracing::info!(inventory = %loaded.description, data_dir = %data_dir.display(), "zt4ai ready");
                // One write, errors ignored: a closed stdout must not stop the server.
                let idp = if dev_idp {
                    format!(
                        "development identity provider (user tokens: `zt4ai dev-idp token <user> --data-dir {}`)",
                        data_dir.display()
                    )
                } else {
                    format!("OIDC issuer {}", identity.users().issuer())
                };
                let banner = format!(
                    "zt4ai listening on http://{addr}\n  inventory: {}\n  database:  {}\n  users:     {idp}\n  tokens:    POST http://{addr}/oauth/token (RFC 8693 token exchange)\n  AuthZEN:   POST http://{addr}/access/v1/evaluation (Authorization: Bearer <delegated token>)\n{}  LLM:       POST http://{addr}/v1/chat/completions (OpenAI-compatible; {served} model(s) with an upstream)\n  admin:     http://{addr}/admin/v1/ (token in {})\n  audit:     {}\n",
                    loaded.description,
                    data_dir.join(DB_FILE).display(),
                    mcp_line.replace("{addr}", &addr.to_string()),
                    admin_token.1,
                    if audit_sync_ms == 0 {
                        "every record on disk before its action (--audit-sync-ms 0)".to_owned()
                    } else {
                        format!(
                            "every record in its journal before its action, in the signed log within {audit_defer_ms} ms (--audit-defer-ms), on disk within {audit_sync_ms} ms (--audit-sync-ms)"
                        )
                    },
                );
                {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(banner.as_bytes());
                    let _ = out.flush();
                }
                let flusher = tokio::spawn(flush_baselines(Arc::clone(&monitor), Arc::clone(&store)));
                let served = zt4ai_gateway::serve_threads(listener, pipeline, config, Some(identity), shutdown_signal(), threads).await;
                if let Some(m) = &mcp {
                    m.shutdown().await;
                }
                flusher.abort();
                // What was learned since the last flush.
                if let Err(e) = monitor.flush(&store, now()) {
                    tracing::error!(error = %e, "behaviour baselines could not be saved");
                }
                served?;
                tracing::info!("zt4ai stopped");
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How often the server saves what the behaviour baselines learned.
const BASELINE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Saves the behaviour baselines every [`BASELINE_FLUSH`], so a restart loses
/// at most that much learning.
async fn flush_baselines(
    monitor: Arc<zt4ai_session::risk::Monitor>,
    store: Arc<zt4ai_session::SessionStore>,
) {
    let mut tick = tokio::time::interval(BASELINE_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (m, s) = (Arc::clone(&monitor), Arc::clone(&store));
        match tokio::task::spawn_blocking(move || m.flush(&s, now())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "behaviour baselines could not be saved; retrying")
            }
            Err(e) => tracing::warn!(error = %e, "behaviour baseline flush failed"),
        }
    }
}

/// The quarantine webhook, its secret file resolved against the inventory's
/// directory.
fn webhook(
    w: &zt4ai_core::inventory::verification::Webhook,
    dir: Option<&std::path::Path>,
) -> Result<zt4ai_gateway::notify::Notifier, String> {
    use zt4ai_core::inventory::verification::SecretSource;
    let mut w = w.clone();
    if let (SecretSource::File(f), Some(dir)) = (&w.secret, dir)
        && std::path::Path::new(f).is_relative()
    {
        w.secret = SecretSource::File(dir.join(f).display().to_string());
    }
    zt4ai_gateway::notify::Notifier::new(&w)
}

pub(crate) const DB_FILE: &str = "zt4ai.db";
pub(crate) const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin API's credential: `ZT4AI_ADMIN_TOKEN`, or a random one kept in the
/// data directory (created on first run, readable only by this user). Returns the
/// token and where it comes from.
fn admin_token(dir: &std::path::Path) -> Result<(String, String)> {
    if let Ok(t) = std::env::var("ZT4AI_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_owned(), "$ZT4AI_ADMIN_TOKEN".into()));
    }
    let path = dir.join(ADMIN_TOKEN_FILE);
    let token = secret_file(&path)?;
    Ok((token, path.display().to_string()))
}

/// The secret kept in `path`, created (owner-only, 0600) with a fresh random
/// secret if the file does not exist yet.
pub(crate) fn secret_file(path: &std::path::Path) -> Result<String> {
    if !path.exists() {
        use std::io::Write as _;
        let secret = zt4ai_identity::new_secret()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .with_context(|| format!("creating `{}`", path.display()))?;
        f.write_all(secret.as_bytes())?;
    }
    let secret =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    Ok(secret.trim().to_owned())
}

fn existing_store(data_dir: &std::path::Path) -> Result<SessionStore> {
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        bail!(
            "no zt4ai database at `{}` (is --data-dir right?)",
            db.display()
        );
    }
    open_store(data_dir)
}

fn read_jwk(arg: &str) -> Result<String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading `{path}`"))?,
        None => arg.to_owned(),
    };
    let jwk: zt4ai_identity::Jwk =
        serde_json::from_str(&text).context("--public-jwk is not a JWK")?;
    zt4ai_identity::DecodingKey::from_jwk(&jwk)
        .context("--public-jwk is not a usable public key")?;
    Ok(serde_json::to_string(&jwk)?)
}

fn agent_command(
    store: &SessionStore,
    data_dir: &std::path::Path,
    action: AgentCommand,
    source: &Source,
) -> Result<ExitCode> {
    use zt4ai_core::inventory::AgentState;
    let change = |id: &str, to: AgentState, by: &str, reason: Option<&str>| -> Result<ExitCode> {
        let a = store.set_agent_state(id, to, by, reason, now())?;
        let event = match to {
            AgentState::Suspended => "agent.suspended",
            AgentState::Active => "agent.resumed",
            AgentState::Retired => "agent.retired",
        };
        audit::record(
            data_dir,
            event,
            by,
            id,
            serde_json::json!({ "reason": reason }),
        )?;
        println!("agent {} is now {} (by {by})", a.id, a.state.as_str());
        Ok(ExitCode::SUCCESS)
    };
    match action {
        AgentCommand::Register {
            id,
            owner,
            purpose,
            public_jwk,
            secret,
            by,
        } => {
            let loaded = load::engine(source).map_err(anyhow::Error::msg)?;
            if !loaded
                .engine
                .inventory()
                .users
                .keys()
                .any(|u| u.as_str() == owner)
            {
                bail!("owner `{owner}` is not a user in the inventory");
            }
            let jwk = public_jwk.as_deref().map(read_jwk).transpose()?;
            let secret = secret.then(zt4ai_identity::new_secret).transpose()?;
            let hash = secret.as_deref().map(zt4ai_identity::secret_hash);
            let a = store.register_agent(&zt4ai_session::NewAgent {
                id: &id,
                owner: &owner,
                purpose: &purpose,
                public_jwk: jwk.as_deref(),
                secret_hash: hash.as_deref(),
                by: &by,
                now: now(),
            })?;
            audit::record(
                data_dir,
                "agent.registered",
                &by,
                &id,
                serde_json::json!({ "owner": owner, "purpose": purpose }),
            )?;
            println!("registered agent {} (owner {})", a.id, a.owner);
            if let Some(s) = secret {
                println!("client secret (shown once): {s}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::List => {
            for a in store.agents()? {
                println!(
                    "{:<24} {:<10} owner {:<12} {}{}",
                    a.id,
                    a.state.as_str(),
                    a.owner,
                    if a.public_jwk.is_some() { "key " } else { "" },
                    if a.has_secret { "secret" } else { "" },
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Show { id } => {
            let a = store.agent(&id)?;
            println!("{}", serde_json::to_string_pretty(&a)?);
            for e in store.agent_events(&id)? {
                println!(
                    "  {}  {:<11} by {}{}",
                    e.at,
                    e.event,
                    e.by,
                    e.reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Credentials {
            id,
            public_jwk,
            secret,
            by,
        } => {
            let current = store.agent(&id)?;
            let jwk = match public_jwk.as_deref() {
                Some(j) => Some(read_jwk(j)?),
                None => current.public_jwk,
            };
            let new_secret = secret.then(zt4ai_identity::new_secret).transpose()?;
            let hash = match &new_secret {
                Some(s) => Some(zt4ai_identity::secret_hash(s)),
                None => store.agent_secret_hash(&id)?,
            };
            store.set_agent_credentials(&id, jwk.as_deref(), hash.as_deref(), &by, now())?;
            audit::record(
                data_dir,
                "agent.credentials",
                &by,
                &id,
                serde_json::json!({ "key": jwk.is_some(), "new_secret": new_secret.is_some() }),
            )?;
            println!("credentials of agent {id} updated (by {by})");
            if let Some(s) = new_secret {
                println!("client secret (shown once): {s}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Suspend { id, reason, by } => {
            change(&id, AgentState::Suspended, &by, reason.as_deref())
        }
        AgentCommand::Resume { id, reason, by } => {
            change(&id, AgentState::Active, &by, reason.as_deref())
        }
        AgentCommand::Retire { id, reason, by } => {
            change(&id, AgentState::Retired, &by, reason.as_deref())
        }
    }
}

fn open_store(dir: &std::path::Path) -> Result<SessionStore> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory `{}`", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting permissions of `{}`", dir.display()))?;
    }
    let path = dir.join(DB_FILE);
    SessionStore::open(&path).with_context(|| format!("opening `{}`", path.display()))
}

pub(crate) fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading stdin")?;
    Ok(s)
}

fn parse_request(text: &str) -> Result<ActionRequest> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("the request is not valid JSON")?;
    if value.get("subject").is_some() {
        zt4ai_gateway::authzen_request(&value).map_err(anyhow::Error::msg)
    } else {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("invalid field `{path}`: {}", e.into_inner())
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}

//! The LLM gateway's added latency: `POST /v1/chat/completions` sent straight
//! to a provider stand-in and through zt4ai, side by side in one run.
//!
//! ```sh
//! cargo bench -p zt4ai-gateway --bench llm
//! ```
//!
//! The stand-in (`tests/e2e/llm_standin.rs`, no API key) speaks the OpenAI wire
//! format on loopback. zt4ai runs as `zt4ai serve` runs it: the acme example
//! inventory with model `acme-llm` served by the stand-in, the acme policies, a
//! SQLite session store with the audit log in the same file (every verdict in
//! the audit journal before it is answered, in the log within 10 ms, synced to
//! disk within 10 ms, `serve`'s default; `ZT4AI_AUDIT_JOURNAL=0` answers once
//! committed to the log instead; `ZT4AI_AUDIT_SYNC_MS=0` syncs each commit
//! first, without the journal), content
//! inspection, continuous
//! verification (the behaviour monitor), delegated tokens verified on every
//! request, on `127.0.0.1:0`. The caller is alice → report-agent.
//!
//! Two measurements, each after a warm-up, requests strictly sequential, one
//! kept-alive reqwest client per target, direct and through zt4ai alternating
//! (the order swapped every pair, so that neither side always goes first):
//!
//! 1. **Non-streamed**: one user message of 4 KiB of plain business prose
//!    (nothing the inspector flags), ending in a `[[say:...]]` marker with 1 KiB
//!    more prose, which is the reply. (Not `[[pad:1024]]`: until `172fc34`
//!    the injection model scored 1 KiB of `x` as an injection, score 1.0,
//!    which put the agent's risk at 60 and held its next call for approval.) Wall time from
//!    sending to the last byte of the answer. 3,000 requests per side.
//! 2. **Streamed, time to first token**: `stream: true`, a 1 KiB prompt
//!    asking for a ~200-byte reply in 8-byte chunks 1 ms apart
//!    (`ZT4AI_BENCH_CHUNK_DELAY_MS`; 0 sends them back to back). Wall time from
//!    sending to the first SSE event carrying non-empty `delta.content`
//!    (the stand-in's first event carries only the role, so with a delay each
//!    side includes one timer wait); the rest is drained. 1,000 requests per
//!    side.
//!
//! The gateway serves on one thread per CPU, each with its own runtime, as
//! `zt4ai serve` does (`ZT4AI_BENCH_THREADS=N` for N threads, `0` to serve on
//! the bench's own runtime, as before 2026-12-03). The client and the stand-in
//! run on a tokio runtime with two worker threads. All of them run in this one
//! process and share the machine's cores (two on the machine the figures in
//! BENCHMARKS.md come from); the audit log's writer is a thread of its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark code fails loudly"
)]
#![allow(missing_docs, reason = "bench")]

#[path = "../tests/e2e/llm_standin.rs"]
mod llm_standin;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use zt4ai_core::Inventory;
use zt4ai_gateway::GatewayConfig;
use zt4ai_identity::{Actor, DelegatedClaims, Identity};
use zt4ai_pipeline::{Pipeline, PolicyEngine, PolicySource, SessionStore};

use llm_standin::StandIn;

// The allocator `zt4ai serve` runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");
const ACME: &str = include_str!("../../../examples/acme/policies/acme.cedar");

const WARMUP: usize = 200;
const PLAIN_ITERS: usize = 3_000;
const STREAM_ITERS: usize = 1_000;

/// Plain prose for the prompts: a business report, nothing sensitive.
const REPORT: &str = "The third quarter closed ahead of plan in most regions. Revenue in the \
northern region grew steadily, driven by renewals among mid-sized manufacturing customers and a \
stronger pipeline for the logistics product line. The southern region held flat: two large \
accounts delayed their purchasing decisions until the new budget year, and the team expects \
both to sign early next quarter. Operating costs stayed within the approved budget, although \
travel and contractor spending rose as the migration of the billing platform entered its final \
phase. Customer satisfaction scores improved for the third quarter in a row, and support ticket \
volumes fell after the release of the self-service portal. For the coming quarter the \
leadership team proposes to keep hiring steady, to finish the billing migration before the \
holiday freeze, and to review pricing for the entry-level plan, which has lost ground to \
cheaper competitors. ";

/// The 1 KiB reply the non-streamed requests ask for: plain prose too.
const REPLY: &str = "Summary of the quarterly report. The quarter closed ahead of plan. The northern region grew \
on the strength of renewals from mid-sized manufacturers and a healthier logistics pipeline, \
while the southern region was flat because two large accounts moved their decisions into the \
new budget year; both are expected to sign early next quarter. Costs were within budget, \
with higher travel and contractor spending tied to the final phase of the billing migration. \
Customer satisfaction rose for a third consecutive quarter and support volumes dropped after \
the self-service portal launched. Recommended next steps: keep hiring at the current pace, \
complete the billing migration before the holiday freeze, and review pricing of the \
entry-level plan against lower-priced competitors. Open questions for the board: whether to \
expand the logistics team ahead of demand, and how to phase the pricing change so that \
existing customers are not surprised at renewal time. A detailed breakdown by region is in \
the appendix to this note.";

/// The reply the streamed requests ask for (about 200 bytes).
const STREAM_REPLY: &str = "Hello from the stream: the quarterly summary is ready. Revenue \
grew in most regions, renewals held steady, and the logistics line closed three new accounts. \
The full report follows in the draft for your review.";

fn main() {
    // reqwest is built with rustls and no default crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// The gateway's serving threads: `ZT4AI_BENCH_THREADS`, else one per CPU (as
/// `zt4ai serve`); `None` for `0`, serving on the bench's own runtime.
fn serving_threads() -> Option<std::num::NonZeroUsize> {
    match std::env::var("ZT4AI_BENCH_THREADS") {
        Ok(v) => std::num::NonZeroUsize::new(
            v.parse()
                .expect("ZT4AI_BENCH_THREADS is a number of threads"),
        ),
        Err(_) => Some(std::thread::available_parallelism().unwrap_or(std::num::NonZeroUsize::MIN)),
    }
}

/// A running zt4ai server.
struct Gateway {
    addr: SocketAddr,
    identity: Arc<Identity>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts zt4ai as `zt4ai serve` would, with `acme-llm` served by `standin`.
    async fn start(standin: &StandIn) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path();
        let db = data_dir.join("zt4ai.db");
        let anchor = "    clearance: confidential\n    attested: true\n";
        assert_eq!(
            INVENTORY.matches(anchor).count(),
            1,
            "the example inventory changed"
        );
        let inventory = INVENTORY.replace(
            anchor,
            &format!(
                "{anchor}    upstream: {{ base_url: \"{}\", model: standin }}\n",
                standin.base_url()
            ),
        );
        let inv = Arc::new(Inventory::from_yaml_str(&inventory, "inventory.yaml").unwrap());
        let engine = PolicyEngine::new(
            inv,
            &[PolicySource {
                name: "acme.cedar".into(),
                text: ACME.into(),
            }],
        )
        .unwrap();
        let store = Arc::new(SessionStore::open(&db).unwrap());
        let identity = Arc::new(
            Identity::open(
                Arc::clone(engine.inventory()),
                Arc::clone(&store),
                data_dir,
                Some(data_dir),
            )
            .unwrap(),
        );
        identity.load().await.map_err(|e| e.description).unwrap();
        let key = zt4ai_audit::LogKey::load_or_create(
            &data_dir.join("audit.key"),
            zt4ai_audit::DEFAULT_ORIGIN,
        )
        .unwrap();
        let sync_ms: u64 = std::env::var("ZT4AI_AUDIT_SYNC_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let audit = zt4ai_audit::AuditLog::open(
            &db,
            key,
            zt4ai_audit::AuditConfig {
                sync: zt4ai_audit::DiskSync::from_millis(sync_ms),
                // As `zt4ai serve` runs it: the journal unless every record
                // is synced (`ZT4AI_AUDIT_JOURNAL=0` turns it off, to compare).
                journal: sync_ms > 0
                    && std::env::var("ZT4AI_AUDIT_JOURNAL").map_or(true, |v| v != "0"),
                ..zt4ai_audit::AuditConfig::default()
            },
        )
        .unwrap();
        let inspector = zt4ai_pipeline::inspect::Inspector::from_inventory(
            &engine.inventory().inspection,
            [7; 32],
        )
        .unwrap();
        let settings = &engine.inventory().settings;
        let monitor = Arc::new(
            zt4ai_session::risk::Monitor::load(
                settings.risk.clone(),
                settings.quarantine.clone(),
                &store,
            )
            .unwrap(),
        );
        let pipeline = Arc::new(
            Pipeline::new(Arc::new(engine), store)
                .with_audit(Arc::new(audit))
                .with_inspector(Arc::new(inspector))
                .with_monitor(monitor),
        );
        let llm = zt4ai_llm::LlmGateway::new(Arc::clone(&pipeline), Some(data_dir)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = GatewayConfig {
            base_url: format!("http://{addr}"),
            audit_path: Some(db),
            llm: Some(llm),
            ..GatewayConfig::default()
        };
        let (stop, rx) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = rx.await;
        };
        let identity_ = Some(Arc::clone(&identity));
        // As `zt4ai serve` runs: one serving thread per CPU
        // (`ZT4AI_BENCH_THREADS=0` serves on the bench's own runtime instead).
        let task = match serving_threads() {
            None => tokio::spawn(zt4ai_gateway::serve(
                listener, pipeline, config, identity_, shutdown,
            )),
            Some(threads) => tokio::spawn(zt4ai_gateway::serve_threads(
                listener, pipeline, config, identity_, shutdown, threads,
            )),
        };
        Gateway {
            addr,
            identity,
            stop,
            task,
            _dir: dir,
        }
    }

    /// A delegated token for alice → report-agent, valid for ten minutes.
    fn mint(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.identity
            .sign_claims(&DelegatedClaims {
                iss: zt4ai_identity::ISSUER.into(),
                sub: "alice".into(),
                aud: zt4ai_identity::ISSUER.into(),
                iat: now,
                nbf: now,
                exp: now + 600,
                jti: format!("bench-llm-{now}-{}", rand_suffix()),
                act: Actor::from_chain(&["report-agent".to_owned()]).unwrap(),
                scope: None,
                risk: None,
                sid: None,
                auth_time: now,
                cnf: None,
            })
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Plain prose of exactly `bytes` bytes (cut at a space, padded with spaces).
fn prose(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + REPORT.len());
    while text.len() < bytes {
        text.push_str(REPORT);
    }
    let cut = text[..bytes].rfind(' ').unwrap_or(bytes);
    text.truncate(cut);
    while text.len() < bytes {
        text.push(' ');
    }
    text
}

/// One target: where chat completions go, with what credentials, which model.
struct Target {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Target {
    fn new(url: String, token: Option<String>) -> Target {
        Target {
            client: reqwest::Client::builder().build().unwrap(),
            url,
            token,
        }
    }

    fn request(&self, body: &Bytes) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// A non-streamed request: wall time to the last byte, and the body.
    async fn plain(&self, body: &Bytes) -> (Duration, Bytes) {
        let start = Instant::now();
        let response = self.request(body).send().await.unwrap();
        let status = response.status();
        let answer = response.bytes().await.unwrap();
        let took = start.elapsed();
        assert_eq!(
            status,
            200,
            "{}: {}",
            self.url,
            String::from_utf8_lossy(&answer)
        );
        (took, answer)
    }

    /// A streamed request: time to the first content, time to the end, and
    /// the content streamed.
    async fn stream(&self, body: &Bytes) -> (Duration, Duration, String) {
        let start = Instant::now();
        let mut response = self.request(body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", self.url);
        let mut buffer: Vec<u8> = Vec::with_capacity(8192);
        let mut scanned = 0;
        let mut first = None;
        let mut content = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            buffer.extend_from_slice(&chunk);
            // Every complete event not yet looked at.
            while let Some(end) = find(&buffer[scanned..], b"\n\n") {
                let event = &buffer[scanned..scanned + end];
                scanned += end + 2;
                let Some(data) = event.strip_prefix(b"data: ") else {
                    continue;
                };
                if data == b"[DONE]" {
                    continue;
                }
                let v: Value = serde_json::from_slice(data).unwrap_or_else(|e| {
                    panic!(
                        "{}: bad event {e}: {}",
                        self.url,
                        String::from_utf8_lossy(data)
                    )
                });
                assert!(v.get("error").is_none(), "{}: {v}", self.url);
                let text = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                if !text.is_empty() {
                    if first.is_none() {
                        first = Some(start.elapsed());
                    }
                    content.push_str(text);
                }
            }
        }
        let total = start.elapsed();
        let first = first.unwrap_or_else(|| panic!("{}: no content streamed", self.url));
        (first, total, content)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percentiles of a sample, nearest rank.
struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(sample: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = sample.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Stats {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: ms[ms.len() - 1],
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
        }
    }
}

/// The median of the per-pair differences (through zt4ai − direct), in ms.
fn paired_median(direct: &[Duration], via: &[Duration]) -> f64 {
    let mut d: Vec<f64> = direct
        .iter()
        .zip(via)
        .map(|(a, b)| (b.as_secs_f64() - a.as_secs_f64()) * 1e3)
        .collect();
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

fn command(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model}), {}", command("uname", &["-sr"]))
}

fn commit() -> String {
    let head = command("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !command("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty {
        format!("{head} (with uncommitted changes in the tree)")
    } else {
        head
    }
}

async fn run() {
    let standin = StandIn::start(None).await;
    let gateway = Gateway::start(&standin).await;
    let direct = Target::new(format!("{}/chat/completions", standin.base_url()), None);
    let via = Target::new(
        format!("http://{}/v1/chat/completions", gateway.addr),
        Some(gateway.mint()),
    );

    // Non-streamed, 4 KiB prompt, 1 KiB reply.
    assert_eq!(REPLY.len(), 1024);
    let marker = format!(" [[say:{REPLY}]]");
    let prompt = format!("{}{marker}", prose(4096 - marker.len()));
    assert_eq!(prompt.len(), 4096);
    let body = |model: &str| -> Bytes {
        Bytes::from(
            json!({"model": model, "messages": [{"role": "user", "content": prompt}]}).to_string(),
        )
    };
    let (direct_body, via_body) = (body("standin"), body("acme-llm"));
    for target in [(&direct, &direct_body), (&via, &via_body)] {
        let (_, answer) = target.0.plain(target.1).await;
        let v: Value = serde_json::from_slice(&answer).unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(content, REPLY, "{v}");
    }
    for _ in 0..WARMUP {
        direct.plain(&direct_body).await;
        via.plain(&via_body).await;
    }
    standin.received.lock().clear();
    let mut plain_direct = Vec::with_capacity(PLAIN_ITERS);
    let mut plain_via = Vec::with_capacity(PLAIN_ITERS);
    for i in 0..PLAIN_ITERS {
        if i % 2 == 0 {
            plain_direct.push(direct.plain(&direct_body).await.0);
            plain_via.push(via.plain(&via_body).await.0);
        } else {
            plain_via.push(via.plain(&via_body).await.0);
            plain_direct.push(direct.plain(&direct_body).await.0);
        }
        standin.received.lock().clear();
    }

    // Streamed: time to first token.
    let via = Target::new(via.url.clone(), Some(gateway.mint()));
    // The stand-in's pause between chunks; `ZT4AI_BENCH_CHUNK_DELAY_MS=0`
    // sends them back to back (no timer between the role and the first token).
    let delay: u64 = std::env::var("ZT4AI_BENCH_CHUNK_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let prompt = format!(
        "{} [[say:{STREAM_REPLY}]] [[chunk_delay:{delay}]]",
        prose(1024)
    );
    let body = |model: &str| -> Bytes {
        Bytes::from(
            json!({"model": model, "stream": true, "messages": [{"role": "user", "content": prompt}]})
                .to_string(),
        )
    };
    let (direct_body, via_body) = (body("standin"), body("acme-llm"));
    for target in [(&direct, &direct_body), (&via, &via_body)] {
        let (_, _, content) = target.0.stream(target.1).await;
        assert_eq!(content, STREAM_REPLY);
    }
    for _ in 0..WARMUP {
        direct.stream(&direct_body).await;
        via.stream(&via_body).await;
    }
    standin.received.lock().clear();
    let (mut ttft_direct, mut ttft_via) = (Vec::new(), Vec::new());
    let (mut total_direct, mut total_via) = (Vec::new(), Vec::new());
    for i in 0..STREAM_ITERS {
        let order: [(&Target, &Bytes, bool); 2] = if i % 2 == 0 {
            [(&direct, &direct_body, false), (&via, &via_body, true)]
        } else {
            [(&via, &via_body, true), (&direct, &direct_body, false)]
        };
        for (target, body, through) in order {
            let (first, total, _) = target.stream(body).await;
            if through {
                ttft_via.push(first);
                total_via.push(total);
            } else {
                ttft_direct.push(first);
                total_direct.push(total);
            }
        }
        standin.received.lock().clear();
    }
    gateway.stop().await;
    standin.stop();

    // One measurement: direct, through zt4ai, and what zt4ai added.
    let compare = |direct_name: &str,
                   via_name: &str,
                   added_name: &str,
                   direct: &[Duration],
                   via: &[Duration]| {
        let (d, v) = (Stats::of(direct), Stats::of(via));
        for (name, s) in [(direct_name, &d), (via_name, &v)] {
            println!(
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                s.p50, s.p90, s.p99, s.max, s.mean
            );
        }
        println!(
            "| {added_name} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {:+.3} (median of pairs {:+.3}) |",
            v.p50 - d.p50,
            v.p90 - d.p90,
            v.p99 - d.p99,
            v.max - d.max,
            v.mean - d.mean,
            paired_median(direct, via),
        );
    };
    println!();
    println!("machine: {}", machine());
    println!("rustc: {}", command("rustc", &["--version"]));
    println!("commit: {}", commit());
    println!(
        "tokio: client and stand-in on a multi-threaded runtime, 2 workers; the gateway on {}; all in one process, sharing the cores",
        serving_threads().map_or("that runtime too".to_owned(), |n| format!(
            "{n} serving threads"
        ))
    );
    println!();
    println!(
        "Non-streamed, 4 KiB prompt, 1 KiB reply: {PLAIN_ITERS} requests per side after {WARMUP} warm-up, alternating"
    );
    println!();
    println!("| ms | p50 | p90 | p99 | max | mean |");
    println!("|---|---:|---:|---:|---:|---:|");
    compare(
        "direct to the stand-in",
        "through zt4ai",
        "added by zt4ai",
        &plain_direct,
        &plain_via,
    );
    println!();
    println!(
        "Streamed, 1 KiB prompt, ~200-byte reply in 8-byte chunks {delay} ms apart: {STREAM_ITERS} requests per side after {WARMUP} warm-up, alternating"
    );
    println!();
    println!("| ms | p50 | p90 | p99 | max | mean |");
    println!("|---|---:|---:|---:|---:|---:|");
    compare(
        "time to first token, direct",
        "time to first token, through zt4ai",
        "added to time to first token",
        &ttft_direct,
        &ttft_via,
    );
    compare(
        "whole stream, direct",
        "whole stream, through zt4ai",
        "added to the whole stream",
        &total_direct,
        &total_via,
    );
}

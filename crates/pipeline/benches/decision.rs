//! Decision latency: zt4ai's pipeline against bare Cedar on the same Cedar requests.
//!
//! Inventory: the synthetic one (100 agents, 1,000 tools, 185 custom policies + 18
//! baseline guards = 203). Request mix: `synthetic::requests`, 4,096 requests over
//! 400 sessions, measured in steady state (every session already holds the labels
//! of what it reads; label-raising writes are measured apart as "first touch").
//!
//! Baselines through `Authorizer::is_authorized`:
//! * `cedar_bare_full_set` — one request per chain link and resource, each over all
//!   200 policies: what a plain Cedar integration does;
//! * `cedar_bare_sliced` — exactly the evaluations zt4ai makes when nothing is
//!   cached (the same requests over the same policy parts), so the ratio to it is
//!   zt4ai's own overhead (resolution, session, context, cache, verdict).
//!
//! Run: `taskset -c 0 cargo bench -p zt4ai-pipeline --bench decision`. After
//! criterion, a per-decision percentile table is printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup panics on failure"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use cedar_policy::{Authorizer, PolicySet};
use criterion::Criterion;
use zt4ai_core::inventory::synthetic::{self, Sizes};
use zt4ai_core::{
    Action, ActionRequest, ActorChain, AgentId, Decision, Inventory, SessionId, UserId,
};
use zt4ai_pipeline::{CedarWork, Pipeline, PolicyEngine, PolicySource, SessionStore};

const SIZES: Sizes = Sizes {
    agents: 100,
    tools: 1000,
    policies: 185,
};
const REQUESTS: usize = 4096;

struct Fixture {
    pipeline: Pipeline,
    requests: Vec<ActionRequest>,
    calls: Vec<CedarWork>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let (yaml, cedar) = synthetic::generate(SIZES);
    // The synthetic inventory gives behaviour signals no weight (see
    // `synthetic::generate`): they are computed, the decisions stay the mix's.
    let inv = Arc::new(Inventory::from_yaml_str(&yaml, "synthetic.yaml").unwrap());
    let engine = PolicyEngine::new(
        inv,
        &[PolicySource {
            name: "synthetic.cedar".into(),
            text: cedar,
        }],
    )
    .unwrap();
    // 20 baseline guards + 185 custom.
    assert_eq!(engine.policy_ids().len(), 205, "205 policies in all");
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(&dir.path().join("bench.db")).unwrap();
    let pipeline = Pipeline::new(Arc::new(engine), Arc::new(store));
    let requests = synthetic::requests(SIZES, REQUESTS, 4);
    // Two passes: afterwards every session holds the labels of all it reads.
    for _ in 0..2 {
        for r in &requests {
            pipeline.decide(r);
        }
    }
    let calls = requests
        .iter()
        .map(|r| pipeline.cedar_requests(r).unwrap())
        .collect();
    Fixture {
        pipeline,
        requests,
        calls,
        _dir: dir,
    }
}

fn bare(work: &CedarWork, authorizer: &Authorizer, set: &PolicySet, f: &Fixture) -> usize {
    let entities = f.pipeline.engine().entities();
    let mut allowed = 0;
    for request in &work.plain {
        let r = authorizer.is_authorized(request, set, entities);
        allowed += usize::from(r.decision() == cedar_policy::Decision::Allow);
    }
    allowed
}

fn bare_sliced(work: &CedarWork, authorizer: &Authorizer, f: &Fixture) -> usize {
    let entities = f.pipeline.engine().entities();
    let mut allowed = 0;
    for e in &work.evaluations {
        let r = authorizer.is_authorized(&e.request, &e.set, entities);
        allowed += usize::from(r.decision() == cedar_policy::Decision::Allow);
    }
    allowed
}

fn percentiles(mut ns: Vec<u64>) -> [f64; 5] {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    [at(0.5), at(0.9), at(0.99), at(0.999), mean]
}

fn main() {
    let f = fixture();
    let cached = std::env::var("ZT4AI_BENCH_CACHE").is_ok_and(|v| v == "1");
    if !cached {
        // Cold: every decision evaluates Cedar. Set ZT4AI_BENCH_CACHE=1 for the
        // decision cache as the server runs it.
        f.pipeline.engine().set_cache_capacity(0);
    }
    println!("decision cache: {}", if cached { "on" } else { "off" });
    if let Some(secs) = std::env::var("ZT4AI_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        // Only the pipeline, for a profiler: `ZT4AI_BENCH_PROFILE=20 perf record …`.
        let end = Instant::now() + std::time::Duration::from_secs(secs);
        let mut n = 0usize;
        while Instant::now() < end {
            for r in &f.requests {
                black_box(f.pipeline.decide(r));
            }
            n += f.requests.len();
        }
        println!("{n} decisions");
        return;
    }
    let authorizer = Authorizer::new();
    let full = f.pipeline.engine().policy_set().clone();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group(if cached {
            "decision_100a_1000t_200p_cached"
        } else {
            "decision_100a_1000t_200p"
        });
        let mut i = 0;
        g.bench_function("zt4ai_pipeline", |b| {
            b.iter(|| {
                i = (i + 1) % REQUESTS;
                black_box(f.pipeline.decide(&f.requests[i]))
            })
        });
        // The same, with content inspection of the tool calls' arguments (the
        // synthetic arguments are short: names and addresses).
        let inspecting = Pipeline::new(
            Arc::clone(f.pipeline.engine()),
            Arc::clone(f.pipeline.store()),
        )
        .with_inspector(Arc::new(
            zt4ai_pipeline::inspect::Inspector::from_inventory(
                &f.pipeline.inventory().inspection,
                [7; 32],
            )
            .unwrap(),
        ));
        let mut i = 0;
        g.bench_function("zt4ai_pipeline_inspecting", |b| {
            b.iter(|| {
                i = (i + 1) % REQUESTS;
                black_box(inspecting.decide(&f.requests[i]))
            })
        });
        let mut i = 0;
        g.bench_function("cedar_bare_full_set", |b| {
            b.iter(|| {
                i = (i + 1) % REQUESTS;
                black_box(bare(&f.calls[i], &authorizer, &full, &f))
            })
        });
        let mut i = 0;
        g.bench_function("cedar_bare_sliced", |b| {
            b.iter(|| {
                i = (i + 1) % REQUESTS;
                black_box(bare_sliced(&f.calls[i], &authorizer, &f))
            })
        });
        g.finish();
    }
    c.final_summary();

    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    // Per-decision percentiles, each row in its own loop over the whole mix:
    // 25 passes (102,400 decisions) for zt4ai and the sliced baseline, 5 passes
    // (20,480) for the full-set baseline, which is 30 times slower.
    let passes = 25;
    let mut zt = Vec::with_capacity(passes * REQUESTS);
    let mut decisions = [0usize; 3];
    for _ in 0..passes {
        for r in &f.requests {
            let t = Instant::now();
            let v = black_box(f.pipeline.decide(r));
            zt.push(t.elapsed().as_nanos() as u64);
            decisions[match v.decision {
                Decision::Allow => 0,
                Decision::Deny => 1,
                Decision::RequireApproval => 2,
            }] += 1;
        }
    }
    let mut sliced_ns = Vec::with_capacity(passes * REQUESTS);
    for _ in 0..passes {
        for work in &f.calls {
            let t = Instant::now();
            black_box(bare_sliced(work, &authorizer, &f));
            sliced_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    let mut full_ns = Vec::with_capacity(5 * REQUESTS);
    for _ in 0..5 {
        for work in &f.calls {
            let t = Instant::now();
            black_box(bare(work, &authorizer, &full, &f));
            full_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    let evaluations: usize = f.calls.iter().map(|w| w.evaluations.len()).sum();
    let policies: usize = f
        .calls
        .iter()
        .flat_map(|w| &w.evaluations)
        .map(|e| e.set.policies().count())
        .sum();
    let plain: usize = f.calls.iter().map(|w| w.plain.len()).sum();
    println!();
    println!(
        "per-decision latency, µs ({} decisions; mix: {:.0}% allow, {:.0}% deny, {:.0}% require_approval)",
        zt.len(),
        100.0 * decisions[0] as f64 / zt.len() as f64,
        100.0 * decisions[1] as f64 / zt.len() as f64,
        100.0 * decisions[2] as f64 / zt.len() as f64,
    );
    println!(
        "Cedar work per decision when nothing is cached: zt4ai {:.2} evaluations over {:.1} policies; plain integration {:.2} evaluations over {:.0} policies",
        evaluations as f64 / REQUESTS as f64,
        policies as f64 / REQUESTS as f64,
        plain as f64 / REQUESTS as f64,
        (plain * full.policies().count()) as f64 / REQUESTS as f64,
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "p50", "p90", "p99", "p99.9", "mean"
    );
    let zp = percentiles(zt);
    let fp = percentiles(full_ns);
    let sp = percentiles(sliced_ns);
    for (name, p) in [
        ("zt4ai_pipeline", zp),
        ("cedar_bare_full_set", fp),
        ("cedar_bare_sliced", sp),
    ] {
        println!(
            "{name:<22} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            p[0], p[1], p[2], p[3], p[4]
        );
    }
    println!(
        "overhead ratio (mean): zt4ai / bare full set = {:.2}x, zt4ai / bare sliced = {:.2}x",
        zp[4] / fp[4],
        zp[4] / sp[4]
    );
    // First touch: a decision that raises a session's label, written durably
    // (SQLite WAL, synchronous=FULL) before the verdict returns.
    let mut first = Vec::new();
    for k in 0..300 {
        let r = ActionRequest {
            request_id: None,
            chain: ActorChain {
                user: UserId::new("u0").unwrap(),
                agents: vec![AgentId::new("a0").unwrap()],
            },
            session: SessionId::new(format!("first-touch-{k}")).unwrap(),
            action: Action::Read {
                dataset: "ds1".into(),
            },
            risk: None,
            findings: Vec::new(),
            approval: None,
            scope: None,
            declassify: false,
        };
        let t = Instant::now();
        let v = f.pipeline.decide(&r);
        first.push(t.elapsed().as_nanos() as u64);
        assert_eq!(v.decision, Decision::Allow, "{:?}", v.reasons);
    }
    let (hits, misses) = f.pipeline.engine().cache_stats();
    if cached {
        println!(
            "decision cache hit ratio: {:.1}%",
            100.0 * hits as f64 / (hits + misses).max(1) as f64
        );
    }
    let p = percentiles(first);
    println!(
        "first touch (label raise, durable write), µs: p50 {:.1}  p99 {:.1}  mean {:.1}",
        p[0], p[2], p[4]
    );
    if std::env::var("ZT4AI_BENCH_AUDIT").is_ok_and(|v| v == "1") {
        audit_cost(&f);
    }
}

/// What recording each verdict durably in the audit log adds to a decision
/// (`ZT4AI_BENCH_AUDIT=1`): the same mix through `Pipeline::enforce` with the
/// log in the same SQLite file, one request at a time (each waits for its own
/// sync), then 64 in flight on two worker threads (group commit shares syncs).
fn audit_cost(f: &Fixture) {
    let dir = f._dir.path();
    let key =
        zt4ai_audit::LogKey::load_or_create(&dir.join("audit.key"), zt4ai_audit::DEFAULT_ORIGIN)
            .unwrap();
    let log = Arc::new(
        zt4ai_audit::AuditLog::open(
            &dir.join("bench.db"),
            key,
            zt4ai_audit::AuditConfig::default(),
        )
        .unwrap(),
    );
    let audited = Arc::new(
        Pipeline::new(
            Arc::clone(f.pipeline.engine()),
            Arc::clone(f.pipeline.store()),
        )
        .with_audit(log),
    );
    let plain = Arc::new(Pipeline::new(
        Arc::clone(f.pipeline.engine()),
        Arc::clone(f.pipeline.store()),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = 2_000;
    let mut one = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for (k, p) in [&plain, &audited].into_iter().enumerate() {
        for r in f.requests.iter().cycle().take(n) {
            let t = Instant::now();
            black_box(rt.block_on(p.enforce(r, "bench")));
            one[k].push(t.elapsed().as_nanos() as u64);
        }
    }
    println!();
    println!("audit cost, µs per decision        p50      p90      p99    p99.9     mean");
    for (name, ns) in [
        ("one at a time, no audit log", &one[0]),
        ("one at a time, audited", &one[1]),
    ] {
        let p = percentiles(ns.clone());
        println!(
            "{name:<30} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            p[0], p[1], p[2], p[3], p[4]
        );
    }
    let total = 40_000usize;
    for (name, p) in [
        ("64 in flight, no audit log", &plain),
        ("64 in flight, audited", &audited),
    ] {
        let requests = Arc::new(f.requests.clone());
        let started = Instant::now();
        let lat = rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..64 {
                let (p, requests) = (Arc::clone(p), Arc::clone(&requests));
                tasks.push(tokio::spawn(async move {
                    let mut ns = Vec::new();
                    let mut i = t;
                    while i < total {
                        let s = Instant::now();
                        black_box(p.enforce(&requests[i % requests.len()], "bench").await);
                        ns.push(s.elapsed().as_nanos() as u64);
                        i += 64;
                    }
                    ns
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let secs = started.elapsed().as_secs_f64();
        let p = percentiles(lat);
        println!(
            "{name:<30} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}   {:.0} decisions/s",
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            total as f64 / secs
        );
    }
}

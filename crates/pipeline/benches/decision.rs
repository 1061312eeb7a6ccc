//! Decision latency: zt4ai's pipeline against bare Cedar on the same Cedar requests.
//!
//! Inventory: the synthetic one (100 agents, 1,000 tools, 185 custom policies + 15
//! baseline guards = 200). Request mix: `synthetic::requests`, 4,096 requests over
//! 400 sessions, measured in steady state (every session already holds the labels
//! of what it reads; label-raising writes are measured apart as "first touch").
//!
//! Baselines, on exactly the Cedar requests the pipeline makes for each request
//! (one per chain link and resource):
//! * `cedar_bare_full_set` — `Authorizer::is_authorized` with all 200 policies,
//!   what a plain Cedar integration does;
//! * `cedar_bare_sliced` — the same with the slice zt4ai evaluates, so the ratio
//!   to it is zt4ai's own overhead (resolution, session, context, verdict).
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
use zt4ai_pipeline::{CedarCall, Pipeline, PolicyEngine, PolicySource, SessionStore};

const SIZES: Sizes = Sizes {
    agents: 100,
    tools: 1000,
    policies: 185,
};
const REQUESTS: usize = 4096;

struct Fixture {
    pipeline: Pipeline,
    requests: Vec<ActionRequest>,
    calls: Vec<Vec<CedarCall>>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let (yaml, cedar) = synthetic::generate(SIZES);
    let inv = Arc::new(Inventory::from_yaml_str(&yaml, "synthetic.yaml").unwrap());
    let engine = PolicyEngine::new(
        inv,
        &[PolicySource {
            name: "synthetic.cedar".into(),
            text: cedar,
        }],
    )
    .unwrap();
    assert_eq!(engine.policy_ids().len(), 200, "200 policies in all");
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
        .map(|r| pipeline.cedar_requests(r).unwrap_or_default())
        .collect();
    Fixture {
        pipeline,
        requests,
        calls,
        _dir: dir,
    }
}

fn bare(calls: &[CedarCall], authorizer: &Authorizer, set: &PolicySet, f: &Fixture) -> usize {
    let entities = f.pipeline.engine().entities();
    let mut allowed = 0;
    for c in calls {
        let r = authorizer.is_authorized(&c.request, set, entities);
        allowed += usize::from(r.decision() == cedar_policy::Decision::Allow);
    }
    allowed
}

fn bare_sliced(calls: &[CedarCall], authorizer: &Authorizer, f: &Fixture) -> usize {
    let engine = f.pipeline.engine();
    let entities = engine.entities();
    let mut allowed = 0;
    for c in calls {
        let set = engine.slice(c.principal, c.action).unwrap();
        let r = authorizer.is_authorized(&c.request, set, entities);
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
    // Per-decision percentiles over 25 passes of the mix (102,400 decisions each).
    let passes = 25;
    let mut zt = Vec::with_capacity(passes * REQUESTS);
    let mut full_ns = Vec::with_capacity(passes * REQUESTS);
    let mut sliced_ns = Vec::with_capacity(passes * REQUESTS);
    let mut decisions = [0usize; 3];
    for _ in 0..passes {
        for (r, calls) in f.requests.iter().zip(&f.calls) {
            let t = Instant::now();
            let v = black_box(f.pipeline.decide(r));
            zt.push(t.elapsed().as_nanos() as u64);
            decisions[match v.decision {
                Decision::Allow => 0,
                Decision::Deny => 1,
                Decision::RequireApproval => 2,
            }] += 1;
            let t = Instant::now();
            black_box(bare(calls, &authorizer, &full, &f));
            full_ns.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            black_box(bare_sliced(calls, &authorizer, &f));
            sliced_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    let cedar_calls: usize = f.calls.iter().map(Vec::len).sum();
    println!();
    println!(
        "per-decision latency, µs ({} decisions; mix: {:.0}% allow, {:.0}% deny, {:.0}% require_approval; {:.2} Cedar evaluations per decision)",
        zt.len(),
        100.0 * decisions[0] as f64 / zt.len() as f64,
        100.0 * decisions[1] as f64 / zt.len() as f64,
        100.0 * decisions[2] as f64 / zt.len() as f64,
        cedar_calls as f64 / REQUESTS as f64
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
}

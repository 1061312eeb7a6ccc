//! Assessment time for a large deployment: 1,000 agents, 10,000 tools and 1,000
//! custom policies (target ≤ 10 s), side by side with loading and validating the
//! same inventory and policies (what `zt4ai check` does), the floor any
//! assessment pays.
//!
//! `cargo bench -p zt4ai-assess --bench assess`

#![allow(clippy::unwrap_used, reason = "benchmark set-up panics on failure")]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use zt4ai_assess::report::{html, json, markdown, sarif};
use zt4ai_assess::{Catalogue, Deployment, Options, assess};
use zt4ai_core::Inventory;
use zt4ai_core::inventory::synthetic::{Sizes, generate};
use zt4ai_policy::{PolicyEngine, PolicySource};

fn bench(c: &mut Criterion) {
    let (yaml, cedar) = generate(Sizes {
        agents: 1000,
        tools: 10_000,
        policies: 1000,
    });
    let policies = vec![PolicySource {
        name: "synthetic.cedar".into(),
        text: cedar,
    }];
    let catalogue = Catalogue::builtin().unwrap();
    let options = Options {
        dormant_days: 30,
        now: 1_796_083_200,
    };
    let mut g = c.benchmark_group("assess_1000_agents_10000_tools_1000_policies");
    g.sample_size(10);
    g.bench_function("check (load and validate only)", |b| {
        b.iter(|| {
            let inv = Inventory::from_yaml_str(&yaml, "inventory.yaml").unwrap();
            PolicyEngine::new(Arc::new(inv), &policies).unwrap()
        })
    });
    g.bench_function("assess (load, every check, all four reports)", |b| {
        b.iter(|| {
            let d = Deployment::load(&yaml, "inventory.yaml", policies.clone(), options.clone())
                .unwrap();
            let r = assess(&d, &catalogue, "2026-12-01T00:00:00Z", &mut |_, _, _| {});
            (
                json::render(&r).len(),
                markdown::render(&r).len(),
                sarif::to_string(&r).len(),
                html::render(&r).len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

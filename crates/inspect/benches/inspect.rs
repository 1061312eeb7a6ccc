//! The cost of inspection on typical tool output, tier by tier, and the whole
//! inspector on one 1 KiB text.
//!
//! ```text
//! cargo bench -p zt4ai-inspect --bench inspect
//! ```
//!
//! The p99 of a whole inspection of 1 KiB is measured by the example
//! `inspect_latency` (criterion reports means).

#![allow(clippy::expect_used, missing_docs, reason = "benchmark code")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zt4ai_core::inventory::Inspection;
use zt4ai_inspect::injection::{self, InjectionDetector};
use zt4ai_inspect::{Detectors, Inspector, normalize};

/// Tool output as agents see it: mail, a JSON API answer, log lines, an HTML
/// page and a ticket, in turn.
const SNIPPETS: &[&str] = &[
    "From: maria@acme.example\nTo: team@acme.example\nSubject: Q3 numbers\n\nHi all,\nthe Q3 report is attached. Revenue grew 4% over Q2; the EMEA pipeline is behind plan. Please send comments by Friday and use the template in the wiki.\nThanks, Maria\n",
    "{\"orders\": [{\"id\": 8812, \"status\": \"shipped\", \"items\": [{\"sku\": \"A-19\", \"qty\": 2, \"price\": 19.99}], \"customer\": \"C-1021\", \"note\": \"leave at the door\"}, {\"id\": 8813, \"status\": \"pending\", \"items\": []}], \"next\": \"/v1/orders?page=3\"}\n",
    "2026-11-30T12:00:01Z INFO  request_id=7f3a user=alice action=read resource=crm.customers status=200 latency_ms=12\n2026-11-30T12:00:02Z WARN  request_id=7f3b retrying upstream call attempt=2 backoff_ms=200\n",
    "<html><head><title>Travel policy</title></head><body><h1>Travel policy</h1><p>Book economy class for flights under six hours. Hotels must be booked through the portal.</p><ul><li>Per diem: 60 EUR</li><li>Receipts within 30 days</li></ul></body></html>\n",
    "Ticket OPS-2231: disk usage on db-03 at 91%. Steps taken: rotated logs, removed old snapshots. Next: extend the volume during the maintenance window; ignore the flapping alert on db-02 until then.\n",
];

fn typical(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 512);
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(SNIPPETS[i % SNIPPETS.len()]);
        i += 1;
    }
    s
}

fn tiers(c: &mut Criterion) {
    let text = typical(64 * 1024);
    let detector = InjectionDetector::builtin().expect("model loads");
    let inspector =
        Inspector::from_inventory(&Inspection::default(), [7; 32]).expect("inspector builds");
    let mut g = c.benchmark_group("inspect_64KiB_tool_output");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("normalise (views)", |b| {
        b.iter(|| normalize::views(black_box(&text)))
    });
    g.bench_function("patterns", |b| {
        b.iter(|| injection::pattern_hits(black_box(&text)))
    });
    let detector_model = detector.model().expect("the built-in detector has a model");
    let wins: Vec<_> = injection::windows(&text).collect();
    g.bench_function("model (all windows)", |b| {
        let mut sums = Vec::new();
        b.iter(|| {
            detector_model.window_sums(black_box(&text), &wins, &mut sums);
            sums.len()
        })
    });
    g.bench_function("injection (all tiers)", |b| {
        b.iter(|| detector.scan(black_box(&text)))
    });
    g.bench_function("sensitive", |b| {
        b.iter(|| inspector.inspect(black_box(&text), Detectors::Sensitive))
    });
    g.bench_function("whole inspector", |b| {
        b.iter(|| inspector.inspect(black_box(&text), Detectors::All))
    });
    g.finish();

    let small = typical(1024);
    let small = &small[..cut(&small, 1024)];
    let mut g = c.benchmark_group("inspect_1KiB");
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("whole inspector", |b| {
        b.iter(|| inspector.inspect(black_box(small), Detectors::All))
    });
    g.finish();
}

criterion_group!(benches, tiers);
criterion_main!(benches);

/// The largest char boundary of `s` at or below `n`.
fn cut(s: &str, mut n: usize) -> usize {
    n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

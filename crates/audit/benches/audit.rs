//! Audit log benchmarks: the sustained durable append rate (group commit, every
//! record synced before its receipt resolves), the latency of one durable
//! append on an idle log, and `verify` over a large log.
//!
//! `cargo bench -p zt4ai-audit --bench audit`
//! (ZT4AI_AUDIT_VERIFY_RECORDS: size of the verified log, default 1,000,000;
//! ZT4AI_AUDIT_SYNC_MS: 0, the default here, syncs each commit to disk before
//! its receipt resolves, as the figures in BENCHMARKS.md were measured; N ≥ 1
//! measures `serve`'s default, acknowledged once in the log file and synced
//! within N ms)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark code"
)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zt4ai_audit::{AuditConfig, AuditLog, AuditReader, LogKey};

#[path = "common/sample.rs"]
mod sample;
use sample::event;

fn open(dir: &std::path::Path) -> AuditLog {
    let key = LogKey::load_or_create(&dir.join("audit.key"), zt4ai_audit::DEFAULT_ORIGIN).unwrap();
    let sync_ms = std::env::var("ZT4AI_AUDIT_SYNC_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let config = AuditConfig {
        sync: zt4ai_audit::DiskSync::from_millis(sync_ms),
        ..AuditConfig::default()
    };
    AuditLog::open(&dir.join("zt4ai.db"), key, config).unwrap()
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut g = c.benchmark_group("audit");
    // Many requests in flight (a busy gateway): each record is durable before
    // its receipt resolves; the writer commits whatever is waiting at once.
    const BURST: u64 = 10_000;
    g.throughput(Throughput::Elements(BURST));
    g.sample_size(20);
    g.bench_function("durable_append_10k_in_flight", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let receipts: Vec<_> = (0..BURST).map(|i| log.append(&event(i))).collect();
                for r in receipts {
                    r.wait().unwrap();
                }
                total += start.elapsed();
            }
            total
        });
    });
    // One request at a time on an idle log: the full cost of one sync.
    g.throughput(Throughput::Elements(1));
    g.sample_size(50);
    g.bench_function("durable_append_one_idle", |b| {
        b.iter(|| log.append(&event(1)).wait().unwrap());
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let n: u64 = std::env::var("ZT4AI_AUDIT_VERIFY_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        let start = Instant::now();
        for chunk in 0..n.div_ceil(10_000) {
            let receipts: Vec<_> = (chunk * 10_000..((chunk + 1) * 10_000).min(n))
                .map(|i| log.append(&event(i)))
                .collect();
            for r in receipts {
                r.wait().unwrap();
            }
        }
        eprintln!(
            "wrote {n} records in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let vkey = std::fs::read_to_string(dir.path().join("audit.key.pub")).unwrap();
    let verifier = zt4ai_audit::verifier(&vkey).unwrap();
    let reader = AuditReader::open(&dir.path().join("zt4ai.db")).unwrap();
    let mut g = c.benchmark_group("audit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("verify_{n}_records"), |b| {
        b.iter(|| {
            let r = reader.verify(&verifier, &[]).unwrap();
            assert_eq!(r.records, n);
        });
    });
    g.finish();
}

criterion_group!(benches, append, verify);
criterion_main!(benches);

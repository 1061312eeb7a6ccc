//! The latency of one awaited append under a steady load: records arrive at a
//! fixed rate (as decisions do at a gateway under load) and each is timed from
//! `append` until its receipt resolves. Reports p50, p99, p99.9 and the
//! maximum, and how many appends took longer than 10 ms: the stalls a slow
//! disk operation on the writer's path puts on every request.
//!
//! ```text
//! cargo run --release -p zt4ai-audit --example append_latency [RATE/s] [SECONDS] [DIR]
//! ```
//!
//! Defaults: 2,000 records/s for 30 s, in a new temporary directory (DIR puts
//! the log elsewhere, e.g. on the disk a deployment uses). The log runs with
//! records synced within 10 ms (`ZT4AI_AUDIT_SYNC_MS` overrides it, 0 syncing
//! every commit), answered once committed to the log; with
//! `ZT4AI_AUDIT_JOURNAL=1` answered once in the journal, as `serve` runs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zt4ai_audit::{AuditConfig, AuditLog, LogKey};

#[path = "../benches/common/sample.rs"]
mod sample;
use sample::event;

/// User plus system CPU time of this process so far, from `/proc/self/stat`
/// (0 where there is none).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with the last ')'): utime is
    // the 12th and stime the 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rate: u64 = args.first().map_or(Ok(2000), |a| a.parse())?;
    let secs: u64 = args.get(1).map_or(Ok(30), |a| a.parse())?;
    anyhow::ensure!(
        rate > 0 && secs > 0,
        "usage: append_latency [RATE/s] [SECONDS] [DIR]"
    );
    let tmp = tempfile::tempdir()?;
    let dir = args
        .get(2)
        .map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    let sync_ms = std::env::var("ZT4AI_AUDIT_SYNC_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let key = LogKey::load_or_create(&dir.join("audit.key"), zt4ai_audit::DEFAULT_ORIGIN)?;
    // ZT4AI_AUDIT_JOURNAL=1: answered once in the journal, as `zt4ai serve`
    // runs it (needs a sync interval).
    let journal = std::env::var("ZT4AI_AUDIT_JOURNAL").is_ok_and(|v| v == "1");
    let config = AuditConfig {
        sync: zt4ai_audit::DiskSync::from_millis(sync_ms),
        journal,
        ..AuditConfig::default()
    };
    let log = Arc::new(AuditLog::open(&dir.join("zt4ai.db"), key, config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()?;
    let total = rate * secs;
    let cpu_before = cpu_seconds();
    let latencies = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
            tokio::time::sleep_until(due.into()).await;
            let sent = Instant::now();
            let receipt = log.append(&event(i));
            let tx = tx.clone();
            tokio::spawn(async move {
                let ok = receipt.durable().await.is_ok();
                let _ = tx.send((sent.elapsed(), ok));
            });
        }
        drop(tx);
        let mut out = Vec::with_capacity(total as usize);
        while let Some(x) = rx.recv().await {
            out.push(x);
        }
        anyhow::Ok(out)
    })?;
    let cpu = cpu_seconds() - cpu_before;
    let failed = latencies.iter().filter(|x| !x.1).count();
    let mut l: Vec<Duration> = latencies.into_iter().map(|x| x.0).collect();
    l.sort();
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    let stalls = l.iter().filter(|d| **d > Duration::from_millis(10)).count();
    println!(
        "{total} appends at {rate}/s (sync {sync_ms} ms): p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}; {stalls} over 10 ms; {failed} failed",
        at(0.5),
        at(0.99),
        at(0.999),
        l[l.len() - 1]
    );
    let wal = std::fs::metadata(dir.join("zt4ai.db-wal")).map_or(0, |m| m.len());
    let db = std::fs::metadata(dir.join("zt4ai.db")).map_or(0, |m| m.len());
    println!(
        "database {db} bytes, WAL {wal} bytes; process CPU {:.1} µs per append (Linux only)",
        cpu * 1e6 / total as f64
    );
    Ok(())
}

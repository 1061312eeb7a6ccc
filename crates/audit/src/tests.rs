#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use zt4ai_core::{ActorChain, AgentId, Decision, Reason, UserId};

use super::*;

fn decision(i: u64, agent: &str, d: Decision, policy: &str) -> Event {
    Event::Decision(DecisionEvent {
        time_ms: 1_700_000_000_000 + i64::try_from(i).unwrap(),
        request_id: Some(format!("r{i}")),
        point: "authzen".into(),
        session: format!("s{}", i % 3),
        chain: ActorChain {
            user: UserId::new("alice").unwrap(),
            agents: vec![AgentId::new(agent).unwrap()],
        },
        action: "send".into(),
        resource: "mail:x@rival.example".into(),
        decision: d,
        policies: vec![policy.into()],
        reasons: vec![Reason {
            policy: policy.into(),
            message: "because".into(),
        }],
        findings: Vec::new(),
        label_before: None,
        label_after: None,
        risk: None,
        approval: None,
        arguments_sha256: None,
        risk_signals: Vec::new(),
    })
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    key: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            db: dir.path().join("zt4ai.db"),
            key: dir.path().join("audit.key"),
            _dir: dir,
        }
    }

    fn open(&self, config: AuditConfig) -> AuditLog {
        let key = LogKey::load_or_create(&self.key, DEFAULT_ORIGIN).unwrap();
        AuditLog::open(&self.db, key, config).unwrap()
    }

    fn verifier(&self) -> signed_note::StandardVerifier {
        let key = LogKey::load_or_create(&self.key, DEFAULT_ORIGIN).unwrap();
        verifier(key.verifier_key()).unwrap()
    }

    fn verify(&self) -> Result<VerifyReport, Problem> {
        AuditReader::open(&self.db)
            .unwrap()
            .verify(&self.verifier(), &[])
    }

    fn sql(&self) -> Connection {
        Connection::open(&self.db).unwrap()
    }

    /// Writes `n` records and closes the log.
    fn filled(n: u64, config: AuditConfig) -> Fixture {
        let f = Fixture::new();
        let log = f.open(config);
        // One at a time: a commit each, so checkpoints fall every N records.
        for i in 0..n {
            let r = log.append(&decision(i, "report-agent", Decision::Allow, "p"));
            assert_eq!(r.wait().unwrap(), i);
        }
        drop(log);
        f
    }
}

fn small_checkpoints() -> AuditConfig {
    AuditConfig {
        checkpoint_records: 10,
        ..AuditConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_indexes_and_the_log_verifies() {
    let f = Fixture::new();
    let log = std::sync::Arc::new(f.open(AuditConfig::default()));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = std::sync::Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..50 {
                let ev = decision(t * 100 + i, "report-agent", Decision::Allow, "p");
                got.push(log.append(&ev).durable().await.unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
    let h = log.health();
    assert!(h.ok && h.records == 400 && h.pending == 0, "{h:?}");
    drop(log);
    let report = f.verify().unwrap();
    assert_eq!(report.records, 400);
    assert_eq!(report.head_size, 400);
    assert!(report.checkpoints >= 1, "closing keeps a final checkpoint");
}

#[test]
fn verifying_while_the_server_writes_sees_one_consistent_snapshot() {
    // Without one read transaction, a record committed between reading the
    // signed head and reading the records looks like an unsigned tail.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let f = Fixture::new();
    let log = Arc::new(f.open(AuditConfig::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (log, stop, written) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                log.append(&decision(i, "report-agent", Decision::Allow, "p"))
                    .wait()
                    .unwrap();
                i += 1;
                written.store(i, Ordering::Relaxed);
            }
        })
    };
    // Wait for the writer to be going, however loaded the machine is.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let reader = AuditReader::open(&f.db).unwrap();
    let verifier = f.verifier();
    let before = written.load(Ordering::Relaxed);
    let mut rounds = 0;
    // At least 40 verifications, and on until the writer has committed more
    // records while they ran (bounded by the deadline).
    while rounds < 40
        || (written.load(Ordering::Relaxed) < before + 5 && std::time::Instant::now() < deadline)
    {
        let r = reader.verify(&verifier, &[]).unwrap();
        assert_eq!(r.records, r.head_size);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        written.load(Ordering::Relaxed) >= before + 5 && before > 0,
        "the writer and the reader overlapped"
    );
}

#[test]
fn an_empty_log_is_signed_and_verifies() {
    let f = Fixture::filled(0, AuditConfig::default());
    let r = f.verify().unwrap();
    assert_eq!((r.records, r.head_size), (0, 0));
}

#[test]
fn checkpoints_are_kept_every_n_records_and_at_close() {
    let f = Fixture::new();
    let log = f.open(small_checkpoints());
    for i in 0..35 {
        log.append(&decision(i, "a", Decision::Allow, "p"))
            .wait()
            .unwrap();
    }
    drop(log);
    let sizes: Vec<i64> = f
        .sql()
        .prepare("SELECT size FROM audit_checkpoints ORDER BY size")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sizes, vec![10, 20, 30, 35]);
    assert_eq!(f.verify().unwrap().checkpoints, 4);
}

#[test]
fn a_checkpoint_is_kept_after_the_interval_while_idle() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        checkpoint_interval: Duration::from_millis(200),
        ..AuditConfig::default()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let count = || -> i64 {
        f.sql()
            .query_row("SELECT COUNT(*) FROM audit_checkpoints", [], |r| r.get(0))
            .unwrap()
    };
    let start = std::time::Instant::now();
    while count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(log);
}

#[test]
fn reopening_continues_the_same_tree() {
    let f = Fixture::filled(5, AuditConfig::default());
    let log = f.open(AuditConfig::default());
    assert_eq!(
        log.append(&decision(5, "a", Decision::Deny, "p"))
            .wait()
            .unwrap(),
        5
    );
    drop(log);
    assert_eq!(f.verify().unwrap().records, 6);
}

#[test]
fn two_writers_on_one_file_interleave_without_forking_the_tree() {
    // The CLI appends lifecycle events while the server runs.
    let f = Fixture::new();
    let server = f.open(AuditConfig::default());
    let cli = f.open(AuditConfig::default());
    for i in 0..10 {
        let w = if i % 2 == 0 { &server } else { &cli };
        assert_eq!(
            w.append(&decision(i, "a", Decision::Allow, "p"))
                .wait()
                .unwrap(),
            i
        );
    }
    drop(cli);
    drop(server);
    assert_eq!(f.verify().unwrap().records, 10);
}

#[test]
fn a_store_that_cannot_write_refuses_the_record_and_reports_it() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        busy_timeout: Duration::from_millis(100),
        ..AuditConfig::default()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let blocker = f.sql();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = log
        .append(&decision(1, "a", Decision::Allow, "p"))
        .wait()
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    let h = log.health();
    assert!(!h.ok && h.error.is_some() && h.records == 1, "{h:?}");
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        log.append(&decision(2, "a", Decision::Allow, "p"))
            .wait()
            .unwrap(),
        1,
        "the refused record took no index"
    );
    assert!(log.health().ok);
    drop(log);
    assert_eq!(f.verify().unwrap().records, 2);
}

/// Polls `health` until `done` holds (at most 5 s).
fn until(log: &AuditLog, done: impl Fn(&Health) -> bool) -> Health {
    let started = std::time::Instant::now();
    loop {
        let h = log.health();
        if done(&h) || started.elapsed() > Duration::from_secs(5) {
            return h;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn with_a_sync_interval_a_record_is_readable_once_acknowledged_and_reaches_the_disk_soon_after() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::Within(Duration::from_millis(50)),
        ..AuditConfig::default()
    });
    for i in 0..5 {
        log.append(&decision(i, "a", Decision::Allow, "p"))
            .wait()
            .unwrap();
    }
    // Acknowledged means committed: another connection (another process)
    // reads it at once, before any sync.
    let seen: i64 = f
        .sql()
        .query_row("SELECT COUNT(*) FROM audit_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 5);
    let h = until(&log, |h| h.unsynced == 0);
    assert!(h.ok && h.records == 5 && h.unsynced == 0, "{h:?}");
    drop(log);
    assert_eq!(f.verify().unwrap().records, 5);
}

#[test]
fn with_a_sync_interval_the_sync_thread_moves_the_wal_into_the_database() {
    // The writer never checkpoints (a checkpoint on its path held every
    // request for milliseconds); the sync thread does, so the WAL stays
    // bounded while the log grows well past the threshold.
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::Within(Duration::from_millis(1)),
        ..AuditConfig::default()
    });
    let wal = f.db.with_extension("db-wal");
    let mut largest = 0;
    let mut next = 0u64;
    for _ in 0..60 {
        let receipts: Vec<_> = (next..next + 500)
            .map(|i| log.append(&decision(i, "a", Decision::Allow, "p")))
            .collect();
        next += 500;
        for r in receipts {
            r.wait().unwrap();
        }
        // Let the sync thread finish the round that covers these commits
        // before the next batch: a busy machine may not schedule it within
        // its interval, and the bound is on the WAL a round leaves behind.
        let committed = log.shared.committed.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        while log.shared.rounds_through.load(Ordering::SeqCst) < committed
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let db = std::fs::metadata(&f.db).unwrap().len();
    assert!(
        db > 2 * crate::WAL_CHECKPOINT_BYTES,
        "the records reached the database file: {db} bytes"
    );
    assert!(
        largest < 2 * crate::WAL_CHECKPOINT_BYTES,
        "the WAL grew to {largest} bytes"
    );
    // One checkpoint per 4 MiB of WAL, not one per sync once the WAL file
    // has been that long (SQLite keeps the length when it reuses the file):
    // 199 checkpoints of a few frames each before the WAL was cut back. How
    // many there are depends on how finely a busy machine splits the commits
    // (each commit rewrites pages: 12 to 46 seen), so what is bounded is the
    // WAL each one moves: at least half the threshold's worth of frames.
    let checkpoints = log.shared.checkpoints.load(Ordering::Relaxed);
    let frames = log.shared.checkpoint_frames.load(Ordering::Relaxed);
    let frame = 4096 + 24; // SQLite's default page size plus the frame header
    assert!(checkpoints >= 1, "no checkpoint for {db} bytes");
    assert!(
        frames * frame >= checkpoints * crate::WAL_CHECKPOINT_BYTES / 2,
        "{checkpoints} checkpoints moved only {frames} WAL frames"
    );
    assert!(log.health().ok);
    drop(log);
    assert_eq!(f.verify().unwrap().records, next);
}

#[test]
fn commits_within_one_sync_interval_wake_the_sync_thread_once() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::Within(Duration::from_millis(1000)),
        ..AuditConfig::default()
    });
    // One at a time: a commit each, all inside one interval.
    for i in 0..50 {
        log.append(&decision(i, "a", Decision::Allow, "p"))
            .wait()
            .unwrap();
    }
    let h = until(&log, |h| h.unsynced == 0);
    assert_eq!(h.unsynced, 0, "{h:?}");
    let woken = log.shared.sync_wakeups.load(Ordering::Relaxed);
    // The opening head commit and the first of the 50 may fall in two
    // intervals, and a busy machine may stretch the 50 over a few more; a
    // wake-up per commit would be 51.
    assert!(woken <= 10, "woken {woken} times for 51 commits");
    // A commit after the sync wakes it again, and reaches the disk.
    log.append(&decision(50, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let h = until(&log, |h| h.unsynced == 0 && h.records == 51);
    assert_eq!((h.unsynced, h.records), (0, 51), "{h:?}");
    drop(log);
    assert_eq!(f.verify().unwrap().records, 51);
}

fn records(f: &Fixture) -> i64 {
    f.sql()
        .query_row("SELECT COUNT(*) FROM audit_records", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_deferred_record_rides_with_the_next_awaited_one() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_secs(60),
        ..AuditConfig::default()
    });
    log.append_deferred(&decision(0, "a", Decision::Allow, "output"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(records(&f), 0, "a deferred record waits for company");
    assert_eq!(log.health().pending, 1);
    let index = log
        .append(&decision(1, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    assert_eq!(
        index, 1,
        "committed after the deferred one, in one transaction"
    );
    assert_eq!(records(&f), 2);
    let h = log.health();
    assert!(h.ok && h.pending == 0 && h.records == 2, "{h:?}");
    drop(log);
    assert_eq!(f.verify().unwrap().records, 2);
}

#[test]
fn a_deferred_record_alone_is_committed_when_due_and_when_the_log_closes() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_millis(20),
        ..AuditConfig::default()
    });
    log.append_deferred(&decision(0, "a", Decision::Allow, "output"))
        .unwrap();
    let h = until(&log, |h| h.records == 1);
    assert!(h.ok && h.records == 1 && h.pending == 0, "{h:?}");
    drop(log);
    // Held for a minute, but the log closes first: nothing is lost.
    let log = f.open(AuditConfig {
        defer: Duration::from_secs(60),
        ..AuditConfig::default()
    });
    log.append_deferred(&decision(1, "a", Decision::Allow, "output"))
        .unwrap();
    drop(log);
    assert_eq!(records(&f), 2);
    assert_eq!(f.verify().unwrap().records, 2);
}

#[test]
fn a_due_checkpoint_commits_held_deferred_records() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_secs(60),
        checkpoint_interval: Duration::from_millis(50),
        ..AuditConfig::default()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    log.append_deferred(&decision(1, "a", Decision::Allow, "output"))
        .unwrap();
    // Not held for the minute: the checkpoint due after 50 ms takes it along.
    let h = until(&log, |h| h.records == 2);
    assert!(h.ok && h.records == 2 && h.pending == 0, "{h:?}");
    let kept: i64 = f
        .sql()
        .query_row("SELECT COUNT(*) FROM audit_checkpoints", [], |r| r.get(0))
        .unwrap();
    assert!(kept >= 1);
    drop(log);
}

#[test]
fn syncing_every_commit_leaves_nothing_unsynced() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::EveryCommit,
        ..AuditConfig::default()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let h = log.health();
    assert!(h.ok && h.records == 1 && h.unsynced == 0, "{h:?}");
    assert_eq!(DiskSync::from_millis(0), DiskSync::EveryCommit);
    assert_eq!(
        DiskSync::from_millis(7),
        DiskSync::Within(Duration::from_millis(7))
    );
}

#[test]
fn a_failed_disk_sync_refuses_every_later_record_for_good() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::Within(Duration::from_millis(1)),
        ..AuditConfig::default()
    });
    log.shared.fail_sync.store(true, Ordering::Relaxed);
    // Committed before the sync ran: acknowledged (it is in the file).
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let h = until(&log, |h| !h.ok);
    assert!(!h.ok && h.unsynced == 1, "{h:?}");
    let why = h.error.unwrap();
    assert!(
        why.contains("could not be synced") && why.contains("injected failure"),
        "{why}"
    );
    // The sync error is permanent: records may be lost, so nothing more is
    // acknowledged, even though the store itself would take it.
    for i in 1..3 {
        let err = log
            .append(&decision(i, "a", Decision::Allow, "p"))
            .wait()
            .unwrap_err();
        assert!(err.to_string().contains("could not be synced"), "{err}");
    }
    let h = log.health();
    assert!(!h.ok && h.records == 1, "{h:?}");
}

// --- tampering: each must be detected -------------------------------------

fn problem(f: &Fixture) -> Problem {
    f.verify().expect_err("tampering went unnoticed")
}

#[test]
fn an_edited_record_is_named() {
    let f = Fixture::filled(30, small_checkpoints());
    f.sql()
        .execute(
            "UPDATE audit_records SET body = CAST(replace(body, '\"allow\"', '\"deny\"') AS BLOB) WHERE idx = 17",
            [],
        )
        .unwrap();
    let p = problem(&f);
    assert_eq!(p.index, Some(17), "{p}");
    assert!(p.message.contains("edited"), "{p}");
}

/// Rewrites every record's stored hashes from its (possibly edited) body, as
/// an attacker who knows the format but not the key would.
fn rehash(f: &Fixture) {
    let conn = f.sql();
    let bodies: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT idx, body FROM audit_records ORDER BY idx")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut edge = tree::Edge::default();
    let mut hashes = Vec::new();
    for (idx, body) in bodies {
        edge.append(&body, &mut hashes);
        conn.execute(
            "UPDATE audit_records SET hashes = ?1 WHERE idx = ?2",
            rusqlite::params![hashes, idx],
        )
        .unwrap();
    }
    conn.execute(
        "UPDATE audit_head SET edge = ?1",
        rusqlite::params![edge.to_bytes()],
    )
    .unwrap();
}

#[test]
fn an_edit_with_recomputed_hashes_is_pinned_between_checkpoints() {
    let f = Fixture::filled(30, small_checkpoints());
    f.sql()
        .execute(
            "UPDATE audit_records SET body = CAST(replace(body, 'rival', 'rivel') AS BLOB) WHERE idx = 13",
            [],
        )
        .unwrap();
    rehash(&f);
    let p = problem(&f);
    assert!(p.message.contains("10..20"), "{p}");
}

#[test]
fn a_deleted_record_is_named() {
    let f = Fixture::filled(30, small_checkpoints());
    f.sql()
        .execute("DELETE FROM audit_records WHERE idx = 4", [])
        .unwrap();
    let p = problem(&f);
    assert_eq!(p.index, Some(4), "{p}");
    assert!(p.message.contains("missing"), "{p}");
}

#[test]
fn reordered_records_are_named() {
    let f = Fixture::filled(30, small_checkpoints());
    let conn = f.sql();
    conn.execute_batch(
        "UPDATE audit_records SET idx = -1 WHERE idx = 8;
         UPDATE audit_records SET idx = 8 WHERE idx = 9;
         UPDATE audit_records SET idx = 9 WHERE idx = -1;",
    )
    .unwrap();
    let p = problem(&f);
    assert_eq!(p.index, Some(8), "{p}");
    assert!(p.message.contains("another position"), "{p}");
}

#[test]
fn a_truncated_log_is_detected() {
    let f = Fixture::filled(30, small_checkpoints());
    f.sql()
        .execute("DELETE FROM audit_records WHERE idx >= 25", [])
        .unwrap();
    let p = problem(&f);
    assert_eq!(p.index, Some(25), "{p}");
    assert!(p.message.contains("truncated"), "{p}");
}

#[test]
fn a_forged_appended_record_is_detected() {
    let f = Fixture::filled(30, small_checkpoints());
    let conn = f.sql();
    let body = record::body(
        30,
        &serde_json::to_vec(&decision(30, "a", Decision::Allow, "p")).unwrap(),
    );
    conn.execute(
        "INSERT INTO audit_records (idx, time_ms, kind, body, hashes) VALUES (30, 0, 'decision', ?1, x'')",
        [body],
    )
    .unwrap();
    rehash(&f);
    let p = problem(&f);
    assert_eq!(p.index, Some(30), "{p}");
    assert!(p.message.contains("without the log's key"), "{p}");
}

#[test]
fn a_forged_checkpoint_is_detected() {
    let f = Fixture::filled(30, small_checkpoints());
    // Sign a different root with a key of the same name.
    let other = Fixture::new();
    let thief = LogKey::load_or_create(&other.key, DEFAULT_ORIGIN).unwrap();
    let cp =
        tlog_tiles::Checkpoint::new(DEFAULT_ORIGIN, 20, tlog_tiles::Hash([7; 32]), "").unwrap();
    let mut note = signed_note::Note::new(&cp.to_bytes(), &[]).unwrap();
    note.add_sigs(&[&thief.signer]).unwrap();
    let forged = String::from_utf8(note.to_bytes()).unwrap();
    f.sql()
        .execute(
            "UPDATE audit_checkpoints SET note = ?1 WHERE size = 20",
            [&forged],
        )
        .unwrap();
    let p = problem(&f);
    assert!(p.message.contains("checkpoint at size 20"), "{p}");
    assert!(p.message.contains("signature"), "{p}");
    // An edited root under the original signature fails too.
    let f = Fixture::filled(30, small_checkpoints());
    let conn = f.sql();
    let note: String = conn
        .query_row("SELECT note FROM audit_head", [], |r| r.get(0))
        .unwrap();
    let mut lines: Vec<&str> = note.split('\n').collect();
    lines[1] = "29";
    conn.execute("UPDATE audit_head SET note = ?1", [lines.join("\n")])
        .unwrap();
    assert!(problem(&f).message.contains("signed head"));
}

#[test]
fn a_log_cut_back_to_an_earlier_signed_state_fails_against_a_saved_checkpoint() {
    let f = Fixture::filled(20, small_checkpoints());
    let saved = AuditReader::open(&f.db).unwrap().head().unwrap();
    let conn = f.sql();
    // Cut back to the state at 10 records: delete the rest and put the old
    // checkpoint back as head. Signatures all verify.
    let old: String = conn
        .query_row(
            "SELECT note FROM audit_checkpoints WHERE size = 10",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch(
        "DELETE FROM audit_records WHERE idx >= 10; DELETE FROM audit_checkpoints WHERE size > 10;",
    )
    .unwrap();
    conn.execute("UPDATE audit_head SET note = ?1, size = 10", [old])
        .unwrap();
    assert!(f.verify().is_ok(), "undetectable without an outside copy");
    let p = AuditReader::open(&f.db)
        .unwrap()
        .verify(&f.verifier(), &[saved])
        .unwrap_err();
    assert!(p.message.contains("external checkpoint 1"), "{p}");
    assert!(p.message.contains("truncated"), "{p}");
}

#[test]
fn a_tampered_log_refuses_to_start() {
    let f = Fixture::filled(5, AuditConfig::default());
    f.sql()
        .execute("DELETE FROM audit_records WHERE idx = 4", [])
        .unwrap();
    let key = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(&f.db, key, AuditConfig::default()).unwrap_err();
    assert!(err.to_string().contains("covers 5 records"), "{err}");
}

// --- proofs, queries, export -------------------------------------------------

#[test]
fn an_inclusion_proof_verifies_offline_and_fails_when_altered() {
    let f = Fixture::filled(77, AuditConfig::default());
    let reader = AuditReader::open(&f.db).unwrap();
    let v = f.verifier();
    for i in [0, 1, 31, 64, 76] {
        let proof = reader.prove(i).unwrap();
        let rec = verify_proof(&proof, &v).unwrap();
        assert_eq!(rec.index, i);
        // Through JSON, as the CLI writes it.
        let back: InclusionProof =
            serde_json::from_str(&serde_json::to_string(&proof).unwrap()).unwrap();
        assert_eq!(back, proof);
    }
    let mut proof = reader.prove(31).unwrap();
    proof.record = proof.record.replace("allow", "deny");
    assert!(verify_proof(&proof, &v).is_err());
    let mut proof = reader.prove(31).unwrap();
    proof.index = 30;
    assert!(verify_proof(&proof, &v).is_err());
    let other = Fixture::new();
    let stranger = verifier(
        LogKey::load_or_create(&other.key, "other.example/log")
            .unwrap()
            .verifier_key(),
    )
    .unwrap();
    let p = verify_proof(&reader.prove(5).unwrap(), &stranger).unwrap_err();
    assert!(
        p.message.contains("signature") || p.message.contains("log"),
        "{p}"
    );
    assert!(reader.prove(77).is_err());
}

#[test]
fn queries_filter_by_agent_decision_policy_session_and_time() {
    let f = Fixture::new();
    let log = f.open(AuditConfig::default());
    for i in 0..12u64 {
        let (agent, d, p) = match i % 3 {
            0 => ("report-agent", Decision::Deny, "zt4ai.guard.exfiltration"),
            1 => ("report_agent", Decision::Allow, "allow-crm"),
            _ => ("mail-agent", Decision::Allow, "allow-crm"),
        };
        log.append(&decision(i, agent, d, p)).wait().unwrap();
    }
    log.append(&Event::lifecycle(
        "agent.suspended",
        "cli:root",
        "report-agent",
        serde_json::Value::Null,
    ))
    .wait()
    .unwrap();
    drop(log);
    let r = AuditReader::open(&f.db).unwrap();
    let run = |filter: Filter| {
        let mut out = Vec::new();
        r.query(&filter, |rec| {
            out.push(rec.index);
            true
        })
        .unwrap();
        out
    };
    let agent = |a: &str| Filter {
        agent: Some(a.into()),
        ..Filter::default()
    };
    assert_eq!(run(agent("report-agent")), vec![0, 3, 6, 9, 12]);
    assert_eq!(
        run(agent("report_agent")),
        vec![1, 4, 7, 10],
        "`_` is not a wildcard"
    );
    assert_eq!(
        run(Filter {
            decision: Some("deny".into()),
            policy: Some("zt4ai.guard.exfiltration".into()),
            ..Filter::default()
        }),
        vec![0, 3, 6, 9]
    );
    assert_eq!(
        run(Filter {
            session: Some("s1".into()),
            since_ms: Some(1_700_000_000_004),
            until_ms: Some(1_700_000_000_011),
            ..Filter::default()
        }),
        vec![4, 7, 10]
    );
    assert_eq!(
        run(Filter {
            limit: Some(2),
            newest: true,
            ..Filter::default()
        }),
        vec![11, 12]
    );
    assert_eq!(
        run(Filter {
            kind: Some("lifecycle".into()),
            ..Filter::default()
        }),
        vec![12]
    );
}

#[test]
fn ocsf_events_carry_class_disposition_and_the_whole_record() {
    let f = Fixture::filled(1, AuditConfig::default());
    let rec = AuditReader::open(&f.db).unwrap().record(0).unwrap();
    let deny = Record {
        index: 1,
        event: decision(
            1,
            "report-agent",
            Decision::Deny,
            "zt4ai.guard.exfiltration",
        ),
    };
    for (rec, disposition) in [(rec, 1), (deny, 2)] {
        let ev = export::ocsf(&rec, DEFAULT_ORIGIN);
        assert_eq!(ev["class_uid"], 6003);
        assert_eq!(ev["category_uid"], 6);
        assert_eq!(ev["activity_id"], 1, "send creates");
        assert_eq!(ev["type_uid"], 600_301);
        assert_eq!(ev["disposition_id"], disposition);
        assert_eq!(ev["metadata"]["product"]["name"], "zt4ai");
        assert_eq!(ev["actor"]["user"]["uid"], "alice");
        assert_eq!(ev["unmapped"]["index"], rec.index);
        assert!(ev["time"].as_i64().unwrap() > 0);
    }
}

#[test]
fn the_key_file_is_private_and_keeps_its_name() {
    let f = Fixture::new();
    let k = LogKey::load_or_create(&f.key, "audit.example.org/prod").unwrap();
    assert!(k.verifier_key().starts_with("audit.example.org/prod+"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&f.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = LogKey::load_or_create(&f.key, "ignored").unwrap();
    assert_eq!(again.verifier_key(), k.verifier_key());
    let pubfile = std::fs::read_to_string(format!("{}.pub", f.key.display())).unwrap();
    assert_eq!(pubfile.trim(), k.verifier_key());
    assert!(LogKey::load_or_create(&Path::new(&f.key).with_extension("x"), "bad name").is_err());
    std::fs::write(&f.key, "garbage").unwrap();
    let err = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap_err();
    assert!(err.to_string().contains("audit.key"), "{err}");
}

/// The index a receipt already holds, without waiting.
fn resolved(r: &mut Receipt) -> Option<u64> {
    r.0.as_mut().ok()?.try_recv().ok()?.ok()
}

/// A log (deferred records held for a minute) whose writer holds one
/// deferred record, index 0, appended after an idle spell.
fn holding_one_deferred(f: &Fixture) -> AuditLog {
    let log = f.open(AuditConfig {
        defer: Duration::from_secs(60),
        ..AuditConfig::default()
    });
    std::thread::sleep(2 * crate::INLINE_AFTER_IDLE);
    log.append_deferred(&decision(0, "a", Decision::Allow, "p"))
        .unwrap();
    until_held(&log, 1);
    log
}

/// Waits (up to 5 s) until the writer holds `n` records.
fn until_held(log: &AuditLog, n: usize) {
    let started = std::time::Instant::now();
    while log.state.lock().pending.len() != n && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn after_an_idle_spell_an_append_commits_before_it_returns_with_the_deferred_records() {
    let f = Fixture::new();
    // A deferred record waits with the writer thread...
    let log = holding_one_deferred(&f);
    let held = log.health();
    assert_eq!((held.pending, held.records), (1, 0), "{held:?}");
    std::thread::sleep(2 * crate::INLINE_AFTER_IDLE);
    // ...and goes first in the commit the next awaited record makes on this
    // thread: its receipt is resolved when `append` returns.
    let mut r = log.append(&decision(1, "a", Decision::Allow, "p"));
    assert_eq!(resolved(&mut r), Some(1));
    assert_eq!(log.shared.inline_commits.load(Ordering::Relaxed), 1);
    let h = log.health();
    assert_eq!((h.records, h.pending), (2, 0), "{h:?}");
    drop(log);
    let v = f.verify().unwrap();
    assert_eq!(v.records, 2);
}

#[test]
fn an_append_after_an_idle_spell_does_not_wait_for_another_connections_write_lock() {
    let f = Fixture::new();
    let log = holding_one_deferred(&f);
    // Another process (say the command line) takes the write lock.
    let other = rusqlite::Connection::open(&f.db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(2 * crate::INLINE_AFTER_IDLE);
    // The append returns at once, its record handed to the writer thread
    // (which waits for the lock): not committed, the held record still held.
    let mut r = log.append(&decision(1, "a", Decision::Allow, "p"));
    assert_eq!(resolved(&mut r), None);
    assert_eq!(log.shared.inline_busy.load(Ordering::Relaxed), 1);
    assert_eq!(log.shared.inline_commits.load(Ordering::Relaxed), 0);
    assert_eq!(log.health().records, 0);
    other.execute_batch("COMMIT").unwrap();
    // Once the lock is free both are committed, the held one first.
    assert_eq!(r.wait().unwrap(), 1);
    let h = log.health();
    assert!(h.ok, "{h:?}");
    assert_eq!((h.records, h.pending), (2, 0), "{h:?}");
    // The next append after an idle spell commits on its own thread again.
    std::thread::sleep(2 * crate::INLINE_AFTER_IDLE);
    let mut r = log.append(&decision(2, "a", Decision::Allow, "p"));
    assert_eq!(resolved(&mut r), Some(2));
    assert_eq!(log.shared.inline_commits.load(Ordering::Relaxed), 1);
    drop(log);
    assert_eq!(f.verify().unwrap().records, 3);
}

#[test]
fn with_a_sync_per_commit_appends_never_commit_on_the_callers_thread() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        sync: DiskSync::EveryCommit,
        ..AuditConfig::default()
    });
    for i in 0..5 {
        std::thread::sleep(2 * crate::INLINE_AFTER_IDLE);
        log.append(&decision(i, "a", Decision::Allow, "p"))
            .wait()
            .unwrap();
    }
    assert_eq!(log.shared.inline_commits.load(Ordering::Relaxed), 0);
}

#[test]
fn appends_from_many_threads_mixing_both_paths_get_every_index_once() {
    // Bursts and pauses, so some appends commit on their own thread and some
    // on the writer's, with deferred records in between.
    let f = Fixture::new();
    let log = Arc::new(f.open(AuditConfig {
        defer: Duration::from_millis(2),
        ..AuditConfig::default()
    }));
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut indices = Vec::new();
                for i in 0..200u64 {
                    let n = t * 1000 + i;
                    if i % 3 == 0 {
                        log.append_deferred(&decision(n, "a", Decision::Allow, "p"))
                            .unwrap();
                    } else {
                        indices.push(
                            log.append(&decision(n, "a", Decision::Allow, "p"))
                                .wait()
                                .unwrap(),
                        );
                    }
                    if i % (7 + t) == 0 {
                        std::thread::sleep(Duration::from_micros(300 + 100 * t));
                    }
                }
                indices
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let awaited = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), awaited, "an index was given twice");
    assert!(log.shared.inline_commits.load(Ordering::Relaxed) > 0);
    let log = Arc::into_inner(log).unwrap();
    drop(log);
    let v = f.verify().unwrap();
    assert_eq!(v.records, 1200);
}

#[test]
fn deferred_records_held_without_waking_the_writer_are_still_committed_in_time() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_millis(20),
        ..AuditConfig::default()
    });
    // Right after a commit the writer thread polls, so a deferred record is
    // put straight into its held records (a stalled test thread may miss
    // that window now and then, hence a few rounds).
    let mut n = 0;
    for _ in 0..20 {
        log.append(&decision(n, "a", Decision::Allow, "p"))
            .wait()
            .unwrap();
        log.append_deferred(&decision(n + 1, "a", Decision::Allow, "output"))
            .unwrap();
        n += 2;
        // Nobody wakes the writer for it: its own tick commits it.
        let h = until(&log, |h| h.records == n);
        assert_eq!((h.records, h.pending), (n, 0), "{h:?}");
    }
    assert!(log.shared.held_directly.load(Ordering::Relaxed) > 0);
    drop(log);
    assert_eq!(f.verify().unwrap().records, 40);
}

fn journaled() -> AuditConfig {
    AuditConfig {
        journal: true,
        ..AuditConfig::default()
    }
}

/// The request ids of the stored records, in log order.
fn request_ids(f: &Fixture) -> Vec<String> {
    let mut ids = Vec::new();
    AuditReader::open(&f.db)
        .unwrap()
        .query(&Filter::default(), |r| {
            if let Event::Decision(d) = &r.event {
                ids.push(d.request_id.clone().unwrap());
            }
            true
        })
        .unwrap();
    ids
}

/// The journal's files, oldest first.
fn journal_files(db: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(journal_dir(db))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn journal_seq(f: &Fixture) -> i64 {
    f.sql()
        .query_row("SELECT seq FROM audit_journal", [], |r| r.get(0))
        .unwrap()
}

/// Writes entries to the journal of `f`'s log the way a server does just
/// before it is killed: in the journal, not yet in the log.
fn journal_only(f: &Fixture, taken: u64, from: u64, n: u64) {
    let key = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let (j, _) = journal::Journal::open(&f.db, key.journal, taken).unwrap();
    for i in from..from + n {
        let json = serde_json::to_vec(&decision(i, "a", Decision::Allow, "p")).unwrap();
        j.append(json, |_, _| Ok::<_, String>(())).unwrap();
    }
}

/// A new log and three records only in its journal; the journal's file.
fn three_only_in_the_journal() -> (Fixture, PathBuf) {
    let f = Fixture::new();
    drop(f.open(journaled()));
    journal_only(&f, 0, 0, 3);
    let file = journal_files(&f.db).pop().unwrap();
    (f, file)
}

#[test]
fn with_the_journal_a_record_is_answered_at_once_and_in_the_log_within_the_deferral() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_millis(30),
        ..journaled()
    });
    let started = std::time::Instant::now();
    for i in 0..5 {
        assert_eq!(
            log.append(&decision(i, "a", Decision::Allow, "p"))
                .wait()
                .unwrap(),
            i + 1,
            "a journaled record's receipt carries its journal entry"
        );
    }
    // Answered before any commit: nothing is in the log yet…
    assert!(started.elapsed() < Duration::from_millis(30));
    assert_eq!(records(&f), 0);
    assert_eq!(log.health().pending, 5);
    // …and everything is, in order, once the deferral has passed.
    let h = until(&log, |h| h.records == 5 && h.unsynced == 0);
    assert!(h.ok && h.pending == 0, "{h:?}");
    assert_eq!(journal_seq(&f), 5);
    assert_eq!(request_ids(&f), ["r0", "r1", "r2", "r3", "r4"]);
    // Closed cleanly, the journal is empty.
    drop(log);
    let dir = journal_dir(&f.db);
    let held: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(held, 0, "{dir:?}");
    assert_eq!(f.verify().unwrap().records, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_waits_until_journaled_records_are_in_the_log() {
    let f = Fixture::new();
    let log = f.open(journaled());
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .durable()
        .await
        .unwrap();
    log.append_deferred(&decision(1, "a", Decision::Allow, "p"))
        .unwrap();
    assert!(log.settled(Duration::from_secs(5)).await);
    assert_eq!(records(&f), 2);
}

/// `kill -9` between the journal and the log: the next open puts what was
/// answered into the log before anything else, then the journal goes.
#[test]
fn records_only_in_the_journal_are_recovered_in_order_at_the_next_open() {
    let f = Fixture::new();
    let log = f.open(journaled());
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    drop(log);
    assert_eq!(journal_seq(&f), 1);
    journal_only(&f, 1, 1, 3);

    let log = f.open(journaled());
    assert_eq!(log.health().records, 4, "recovered before the open returns");
    assert_eq!(request_ids(&f), ["r0", "r1", "r2", "r3"]);
    assert_eq!(journal_seq(&f), 4);
    // The log and the journal go on from there.
    assert_eq!(
        log.append(&decision(4, "a", Decision::Allow, "p"))
            .wait()
            .unwrap(),
        5
    );
    drop(log);
    assert_eq!(request_ids(&f), ["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(f.verify().unwrap().records, 5);
    // Nothing is taken twice.
    drop(f.open(journaled()));
    assert_eq!(f.verify().unwrap().records, 5);
}

#[test]
fn an_entry_cut_short_by_the_crash_is_dropped_and_the_rest_recovered() {
    let (f, file) = three_only_in_the_journal();
    let whole = std::fs::read(&file).unwrap();
    let one = whole.len() / 3;
    std::fs::write(&file, &whole[..whole.len() - one / 2]).unwrap();
    let log = f.open(journaled());
    drop(log);
    assert_eq!(request_ids(&f), ["r0", "r1"]);
    assert_eq!(f.verify().unwrap().records, 2);
}

#[test]
fn an_altered_or_missing_journal_entry_refuses_to_start() {
    // An entry edited in place (a decision turned around) fails its tag.
    let (f, file) = three_only_in_the_journal();
    let text = std::fs::read(&file).unwrap();
    let at = text.windows(7).position(|w| w == b"\"allow\"").unwrap();
    let mut edited = text.clone();
    edited[at..at + 6].copy_from_slice(b"\"deny\"");
    edited.remove(at + 6);
    edited.insert(at + 6, b' ');
    std::fs::write(&file, &edited).unwrap();
    let k = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(&f.db, k, journaled()).unwrap_err();
    assert!(
        matches!(err, AuditError::Inconsistent(_)) && err.to_string().contains("fails its check"),
        "{err}"
    );
    assert_eq!(records(&f), 0, "nothing of it was taken in");

    // The first entry gone (entries 2 and 3 left): a gap after the log's last.
    std::fs::write(&file, &text).unwrap();
    let one = text.len() / 3;
    std::fs::write(&file, &text[one..]).unwrap();
    let k = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(&f.db, k, journaled()).unwrap_err();
    assert!(err.to_string().contains("entries are missing"), "{err}");

    // Entries written with another key (a forger without the log's key).
    let g = Fixture::new();
    drop(g.open(journaled()));
    let (j, _) = journal::Journal::open(&g.db, [9; 32], 0).unwrap();
    j.append(
        serde_json::to_vec(&decision(0, "a", Decision::Allow, "p")).unwrap(),
        |_, _| Ok::<_, String>(()),
    )
    .unwrap();
    j.append(
        serde_json::to_vec(&decision(1, "a", Decision::Allow, "p")).unwrap(),
        |_, _| Ok::<_, String>(()),
    )
    .unwrap();
    drop(j);
    let k = LogKey::load_or_create(&g.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(&g.db, k, journaled()).unwrap_err();
    assert!(err.to_string().contains("fails its check"), "{err}");
}

#[test]
fn two_logs_cannot_share_one_journal() {
    let f = Fixture::new();
    let log = f.open(journaled());
    let key = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(&f.db, key, journaled()).unwrap_err();
    assert!(matches!(err, AuditError::JournalInUse(_)), "{err}");
    // A log without the journal (the command line) still writes beside it.
    let cli = f.open(AuditConfig::default());
    cli.append(&decision(9, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    drop(cli);
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    drop(log);
    assert_eq!(request_ids(&f), ["r9", "r0"]);
    assert_eq!(f.verify().unwrap().records, 2);
    // The journal needs an interval sync.
    let key = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let err = AuditLog::open(
        &f.db,
        key,
        AuditConfig {
            sync: DiskSync::EveryCommit,
            ..journaled()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("interval"), "{err}");
}

/// The log's database is locked past the busy timeout: the answered record
/// stays in the journal and is retried, new records are refused meanwhile
/// (fail closed), and once the lock goes everything is in the log in order.
#[test]
fn a_journaled_record_the_log_cannot_take_is_retried_and_later_ones_refused() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        busy_timeout: Duration::from_millis(50),
        defer: Duration::from_millis(5),
        ..journaled()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    until(&log, |h| h.records == 1);
    let blocker = f.sql();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    log.append(&decision(1, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    let h = until(&log, |h| !h.ok);
    assert!(
        !h.ok && h.error.as_deref().unwrap_or("").contains("locked") && h.pending == 1,
        "{h:?}"
    );
    let err = log
        .append(&decision(2, "a", Decision::Allow, "p"))
        .wait()
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    blocker.execute_batch("ROLLBACK").unwrap();
    let h = until(&log, |h| h.ok && h.records == 2);
    assert!(h.ok && h.records == 2 && h.pending == 0, "{h:?}");
    log.append(&decision(3, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    drop(log);
    assert_eq!(request_ids(&f), ["r0", "r1", "r3"]);
    assert_eq!(f.verify().unwrap().records, 3);
}

#[test]
fn full_journal_files_are_retired_and_removed_once_their_records_are_on_disk() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        defer: Duration::from_millis(1),
        sync: DiskSync::Within(Duration::from_millis(1)),
        ..journaled()
    });
    let big = |i: u64| {
        let Event::Decision(mut d) = decision(i, "a", Decision::Allow, "p") else {
            unreachable!()
        };
        d.reasons[0].message = "x".repeat(64 * 1024);
        Event::Decision(d)
    };
    let files = journal_files(&f.db);
    assert_eq!(files.len(), 1, "{files:?}");
    // About 1.3 journal files.
    let n = JOURNAL_ROTATE_BYTES / (64 * 1024) * 13 / 10;
    for i in 0..n {
        log.append(&big(i)).wait().unwrap();
    }
    until(&log, |h| h.records == n && h.unsynced == 0);
    // One more commit after the sync removes what it covers.
    std::thread::sleep(Duration::from_millis(20));
    log.append(&big(n)).wait().unwrap();
    let h = until(&log, |h| h.records == n + 1);
    assert!(h.ok, "{h:?}");
    let now = journal_files(&f.db);
    assert_eq!(now.len(), 1, "{files:?} -> {now:?}");
    assert!(!files.contains(&now[0]), "a new file: {files:?} -> {now:?}");
    drop(log);
    assert_eq!(f.verify().unwrap().records, n + 1);
}

/// A journal write that fails half-way (disk full) refuses its record and
/// leaves no half entry behind: later records are written and recovered
/// whole, and the refused one is nowhere.
#[test]
fn a_failed_journal_write_refuses_the_record_and_leaves_no_half_entry() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        // Nothing moves into the log while the log is open.
        defer: Duration::from_secs(60),
        ..journaled()
    });
    log.append(&decision(0, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    *log.journal.as_ref().unwrap().fail_after.lock() = Some(40);
    let err = log
        .append(&decision(1, "a", Decision::Allow, "p"))
        .wait()
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        log.append(&decision(2, "a", Decision::Allow, "p"))
            .wait()
            .unwrap(),
        2,
        "the refused record took no entry"
    );
    // Read back as after a crash: whole entries only, in order.
    let key = LogKey::load_or_create(&f.key, DEFAULT_ORIGIN).unwrap();
    let taken = 0;
    let files = journal_files(&f.db);
    let mut last = None;
    let mut entries = Vec::new();
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        journal::tests_read(&key.journal, p, &bytes, &mut last, taken, &mut entries).unwrap();
    }
    let ids: Vec<String> = entries
        .iter()
        .map(|e| {
            let ev: Event = serde_json::from_slice(&e.record).unwrap();
            let Event::Decision(d) = ev else { panic!() };
            d.request_id.unwrap()
        })
        .collect();
    assert_eq!(ids, ["r0", "r2"]);
    drop(log);
    assert_eq!(request_ids(&f), ["r0", "r2"]);
}

/// The log cannot take records and the backlog fills: appends are refused
/// (fail closed), none is lost, and all of it moves in once the log can.
#[test]
fn a_full_backlog_refuses_appends_until_the_log_catches_up() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        max_batch: 2,
        busy_timeout: Duration::from_secs(30),
        defer: Duration::from_millis(1),
        ..journaled()
    });
    let blocker = f.sql();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The writer waits for the lock with the first batch; the journal takes
    // up to 4 batches of 2.
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..20 {
        match log.append(&decision(i, "a", Decision::Allow, "p")).wait() {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    assert_eq!(accepted, 8);
    assert!(refused.unwrap().contains("behind its journal"));
    blocker.execute_batch("ROLLBACK").unwrap();
    let h = until(&log, |h| h.records == 8 && h.pending == 0);
    assert!(h.ok, "{h:?}");
    log.append(&decision(99, "a", Decision::Allow, "p"))
        .wait()
        .unwrap();
    drop(log);
    assert_eq!(f.verify().unwrap().records, 9);
}

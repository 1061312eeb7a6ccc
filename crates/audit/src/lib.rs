//! The tamper-evident audit log: step 8 of the pipeline, *record*.
//!
//! Every verdict and every lifecycle event becomes one [`Record`], appended to a
//! Merkle tree with RFC 6962 hashing and stored in SQLite (by default the same
//! file as the sessions). The log's state is signed with Ed25519 as a C2SP
//! [checkpoint](https://c2sp.org/tlog-checkpoint) in the
//! [signed-note](https://c2sp.org/signed-note) format, so tools other than
//! zt4ai can check it.
//!
//! **Durability.** [`AuditLog::append`] hands the record to one writer thread
//! and returns a [`Receipt`]; the receipt resolves once the record is committed.
//! The writer takes everything waiting in one transaction (group commit), so a
//! thousand concurrent appends cost one commit. When the log has been idle (no
//! commit for [`INLINE_AFTER_IDLE`], nothing queued but deferred records) and
//! commits do not wait for the disk ([`DiskSync::Within`]), `append` commits on
//! the caller's thread instead, with whatever deferred records are held: a
//! lone request then pays no hand-off to the writer thread and back (two
//! thread wake-ups), while a busy log still batches on the writer thread. The
//! caller's thread never waits for another connection's write lock: if one is
//! held, the record goes to the writer thread, which waits. An enforcement
//! point carries out an allowed action only after its receipt resolves, and
//! denies if it resolves with an error: the log never fails open.
//!
//! What "committed" means is [`AuditConfig::sync`]:
//! - [`DiskSync::Within`] (the default): the commit is in the log file, that is, the
//!   operating system holds it, so it survives zt4ai crashing or being killed;
//!   a second thread syncs the file to disk within the interval. Only a power
//!   cut or kernel crash inside that interval can lose acknowledged records, and
//!   the log stays consistent and verifiable when it does (SQLite's WAL with
//!   `synchronous=NORMAL`). A sync that fails is permanent: every later append
//!   is refused until zt4ai restarts, because records may be lost. The same
//!   thread also moves the WAL into the database file (a passive SQLite
//!   checkpoint, once the WAL passes [`WAL_CHECKPOINT_BYTES`]), so the copy and
//!   its disk syncs never hold up the writer, and with it every request.
//! - [`DiskSync::EveryCommit`]: the commit is on disk when the receipt resolves
//!   (`synchronous=FULL`): one disk sync per group commit on the request path.
//!
//! **The journal** ([`AuditConfig::journal`], what `zt4ai serve` runs):
//! `append` writes the record to a journal file beside the database (one
//! `write(2)`, each entry authenticated with a key derived from the signing
//! key) and the receipt resolves at once; the writer thread commits it to the
//! log within [`AuditConfig::defer`], batched. A record is in the journal
//! until it is in the log, and [`AuditLog::open`] moves whatever the log lacks
//! into it before anything else, so `kill -9` loses nothing answered. A
//! commit that fails keeps the journaled records and retries them, and every
//! append is refused until one succeeds. See the `journal` module.
//!
//! **No unsigned tail.** Each commit also re-signs the *head*: a checkpoint of
//! the whole tree, replaced in place. Anyone who edits, inserts or appends a
//! record without the key leaves the tree disagreeing with a signature.
//! Besides the head, a checkpoint is kept every `checkpoint_records` records
//! or `checkpoint_interval` (whichever comes first); `verify` checks each, and
//! when the tree disagrees with one, the damage lies between it and the one
//! before.
//!
//! What a signature cannot show is a log cut back to an earlier, correctly
//! signed state (records and head both removed). Against that, copy the
//! checkpoints somewhere the server cannot write (`zt4ai audit checkpoint`), and
//! verify against a copy (`verify --against`).

mod journal;
mod key;
mod read;
mod record;
mod tree;

pub mod export;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use signed_note::Note;
use tlog_tiles::Checkpoint;
use tracing::{error, info, warn};

pub use journal::{ROTATE_BYTES as JOURNAL_ROTATE_BYTES, journal_dir};
pub use key::{DEFAULT_ORIGIN, LogKey, verifier};
pub use read::{AuditReader, Filter, InclusionProof, Problem, VerifyReport, verify_proof};
pub use record::{AuditFinding, DecisionEvent, Event, LifecycleEvent, Record, now_ms};

use tree::Edge;

/// Why the audit log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// SQLite failed (disk full, locked, corrupted…).
    #[error("audit store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer could not commit a batch; every record of it was refused.
    #[error("audit store: {0}")]
    Write(String),
    /// The log has been closed.
    #[error("the audit log is closed")]
    Closed,
    /// The signing key cannot be read or created.
    #[error("audit signing key `{path}`: {message}")]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A verifier key is malformed.
    #[error("not a verifier key (`<name>+<id>+<key>`): {0}")]
    VerifierKey(String),
    /// The stored log is not in a state the writer can continue from.
    #[error("audit log is inconsistent: {0}; run `zt4ai audit verify`")]
    Inconsistent(String),
    /// The database was written by a newer zt4ai.
    #[error("audit schema version {found} is newer than this zt4ai supports ({supported})")]
    Version {
        /// Version in the file.
        found: i64,
        /// Highest version understood.
        supported: i64,
    },
    /// A record or checkpoint asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Another process (a running server) holds the log's journal.
    #[error(
        "the audit journal {} is in use by another zt4ai process: two servers cannot share one audit log",
        .0.display()
    )]
    JournalInUse(std::path::PathBuf),
}

/// How often checkpoints are kept, and how the store waits.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Keep a checkpoint at least every this many records.
    pub checkpoint_records: u64,
    /// Keep a checkpoint at least this often while records arrive.
    pub checkpoint_interval: Duration,
    /// How long a write waits for another writer's lock before failing.
    pub busy_timeout: Duration,
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// The longest a deferred record ([`AuditLog::append_deferred`]) waits
    /// for a commit when no other record comes.
    pub defer: Duration,
    /// When a commit reaches the disk.
    pub sync: DiskSync,
    /// Write each record to the journal ([`journal_dir`]) and answer at once,
    /// moving it into the signed log within [`Self::defer`], instead of
    /// answering once it is committed to the log (see the crate's
    /// documentation). Needs [`DiskSync::Within`]. Off by default; `zt4ai
    /// serve` turns it on.
    pub journal: bool,
}

/// When a committed record reaches the disk (see the crate's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSync {
    /// On disk before the receipt resolves: survives a power cut. One disk sync
    /// per group commit, on the request path.
    EveryCommit,
    /// In the log file (held by the operating system) before the receipt
    /// resolves, and synced to disk at most this long after.
    Within(Duration),
}

impl DiskSync {
    /// The default interval of [`DiskSync::Within`].
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

    /// `0` is [`DiskSync::EveryCommit`], anything else [`DiskSync::Within`] that many
    /// milliseconds.
    pub fn from_millis(ms: u64) -> DiskSync {
        if ms == 0 {
            DiskSync::EveryCommit
        } else {
            DiskSync::Within(Duration::from_millis(ms))
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_records: 10_000,
            checkpoint_interval: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
            max_batch: 16_384,
            defer: Duration::from_millis(10),
            sync: DiskSync::Within(DiskSync::DEFAULT_INTERVAL),
            journal: false,
        }
    }
}

/// The audit log's writer side. Cheap to share (`Arc`); dropping the last handle
/// commits what is queued, keeps a final checkpoint and stops the writer.
pub struct AuditLog {
    tx: Option<mpsc::Sender<Job>>,
    shared: Arc<Shared>,
    /// The writer's state: the writer thread commits under this lock, and so
    /// does [`AuditLog::append`] when it commits on the caller's thread.
    state: Arc<Mutex<Writer>>,
    /// Whether `append` may commit on the caller's thread (only when commits
    /// do not wait for a disk sync).
    inline: bool,
    /// With [`AuditConfig::journal`]: where records go before they are answered.
    journal: Option<Arc<journal::Journal>>,
    /// Wakes the sync thread after a journal write (the writer thread has its
    /// own sender); dropped first on close, so the thread can end.
    sync_tx: Option<mpsc::Sender<()>>,
    /// Most journaled records waiting for the log before appends are refused.
    backlog: u64,
    writer: Option<std::thread::JoinHandle<()>>,
    origin: String,
    verifier: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A record's way to durability: resolves to its index once committed.
#[derive(Debug)]
pub struct Receipt(Result<tokio::sync::oneshot::Receiver<Result<u64, String>>, String>);

impl Receipt {
    /// Waits until the record is durable; its index, or why it is not stored.
    /// With [`AuditConfig::journal`], durable means written to the journal
    /// (it is in the log within [`AuditConfig::defer`]), and the number is
    /// its journal sequence number, not its index in the log.
    pub async fn durable(self) -> Result<u64, AuditError> {
        match self.0 {
            Ok(rx) => match rx.await {
                Ok(r) => r.map_err(AuditError::Write),
                Err(_) => Err(AuditError::Closed),
            },
            Err(e) => Err(AuditError::Write(e)),
        }
    }

    /// [`Self::durable`] for threads outside an async runtime (the CLI); it
    /// must not be called from within one (Tokio's blocking receive panics).
    pub fn wait(self) -> Result<u64, AuditError> {
        match self.0 {
            Ok(rx) => match rx.blocking_recv() {
                Ok(r) => r.map_err(AuditError::Write),
                Err(_) => Err(AuditError::Closed),
            },
            Err(e) => Err(AuditError::Write(e)),
        }
    }
}

/// The state of the log, for health endpoints and metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// Whether the last commit succeeded.
    pub ok: bool,
    /// Records committed.
    pub records: u64,
    /// Records handed to the writer and not yet committed.
    pub pending: u64,
    /// Records committed but not yet known to be on disk (always 0 with
    /// [`DiskSync::EveryCommit`]).
    pub unsynced: u64,
    /// The last commit error, while the log is failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Default)]
struct Shared {
    committed: AtomicU64,
    queued: AtomicU64,
    /// Records known to be on disk.
    synced: AtomicU64,
    /// When the last commit ended ([`clock`]).
    last_commit: AtomicU64,
    /// Set by the writer when it commits and the sync thread has not been
    /// woken since: the thread is woken once per interval at most, not once
    /// per commit.
    dirty: std::sync::atomic::AtomicBool,
    error: Mutex<Option<String>>,
    /// Set when a disk sync failed; never cleared (records may be lost).
    sync_failed: Mutex<Option<String>>,
    /// Test hook: the next sync fails.
    #[cfg(test)]
    fail_sync: std::sync::atomic::AtomicBool,
    /// Test count: messages the sync thread was woken by.
    #[cfg(test)]
    sync_wakeups: AtomicU64,
    /// Test count: checkpoints the sync thread ran.
    #[cfg(test)]
    checkpoints: AtomicU64,
    /// Test count: WAL frames those checkpoints found in the log.
    #[cfg(test)]
    checkpoint_frames: AtomicU64,
    /// Test count: the committed size the sync thread's last finished round
    /// (sync and, when due, checkpoint) started from.
    #[cfg(test)]
    rounds_through: AtomicU64,
    /// Test count: commits made on an appending thread.
    #[cfg(test)]
    inline_commits: AtomicU64,
    /// Test count: inline commits given up because another connection held
    /// the write lock.
    #[cfg(test)]
    inline_busy: AtomicU64,
    /// Test count: deferred records put straight into the writer's held ones.
    #[cfg(test)]
    held_directly: AtomicU64,
    /// The last journal entry in the log ([`AuditConfig::journal`]).
    committed_seq: AtomicU64,
    /// The last journal entry in the log and synced to disk: journal files
    /// up to it may go.
    synced_seq: AtomicU64,
}

impl Shared {
    /// Why the log is failing: a failed disk sync (for good), else the last
    /// commit error (until a commit succeeds).
    fn failing(&self) -> Option<String> {
        (self.sync_failed.lock().clone()).or_else(|| self.error.lock().clone())
    }
}

struct Job {
    event: Vec<u8>,
    meta: Meta,
    /// Who waits for the commit; `None` for a deferred or journaled record.
    reply: Option<tokio::sync::oneshot::Sender<Result<u64, String>>>,
    /// The journal entry that holds it until it is committed.
    seq: Option<u64>,
}

impl Job {
    fn new(
        event: &Event,
        reply: Option<tokio::sync::oneshot::Sender<Result<u64, String>>>,
    ) -> Result<Job, String> {
        let json =
            serde_json::to_vec(event).map_err(|e| format!("cannot encode the record: {e}"))?;
        Ok(Job {
            event: json,
            meta: Meta::of(event),
            reply,
            seq: None,
        })
    }

    /// A record read back from the journal.
    fn recovered(entry: journal::Entry) -> Result<Job, AuditError> {
        let event: Event = serde_json::from_slice(&entry.record).map_err(|e| {
            AuditError::Inconsistent(format!(
                "audit journal entry {} is not a record: {e}",
                entry.seq
            ))
        })?;
        Ok(Job {
            meta: Meta::of(&event),
            event: entry.record,
            reply: None,
            seq: Some(entry.seq),
        })
    }
}

/// Most records the journal holds that are not yet in the log, in
/// [`AuditConfig::max_batch`]es (65,536 records by default); past it, appends
/// are refused (the log is failing or far behind).
pub const JOURNAL_BACKLOG_BATCHES: u64 = 4;

/// The columns a record is filtered by.
struct Meta {
    time_ms: i64,
    kind: &'static str,
    user: Option<String>,
    agents: Option<String>,
    session: Option<String>,
    decision: Option<&'static str>,
    policies: Option<String>,
}

const SCHEMA_VERSION: i64 = 1;

/// Creates the audit tables if they do not exist. Safe to run beside the
/// session store's tables in the same file.
fn schema(conn: &Connection) -> Result<(), AuditError> {
    let version: Option<i64> = conn
        .query_row("SELECT version FROM audit_meta WHERE one = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .or_else(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                Ok(None)
            }
            e => Err(e),
        })?;
    if let Some(found) = version
        && found > SCHEMA_VERSION
    {
        return Err(AuditError::Version {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS audit_meta (
           one INTEGER PRIMARY KEY CHECK (one = 1),
           version INTEGER NOT NULL
         ) STRICT;
         INSERT OR IGNORE INTO audit_meta VALUES (1, 1);
         -- One row per record. `body` is the Merkle leaf; `hashes` are the tree
         -- hashes the record completed (tlog stored-hash order). `agents` and
         -- `policies` are space-delimited (' a b ') for filtering.
         CREATE TABLE IF NOT EXISTS audit_records (
           idx INTEGER PRIMARY KEY,
           time_ms INTEGER NOT NULL,
           kind TEXT NOT NULL,
           user_id TEXT,
           agents TEXT,
           session TEXT,
           decision TEXT,
           policies TEXT,
           body BLOB NOT NULL,
           hashes BLOB NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS audit_checkpoints (
           size INTEGER PRIMARY KEY,
           time_ms INTEGER NOT NULL,
           note TEXT NOT NULL
         ) STRICT;
         -- The last journal entry taken into the log (see `journal`).
         CREATE TABLE IF NOT EXISTS audit_journal (
           one INTEGER PRIMARY KEY CHECK (one = 1),
           seq INTEGER NOT NULL
         ) STRICT;
         -- The signed state after the last commit, replaced at every commit.
         CREATE TABLE IF NOT EXISTS audit_head (
           one INTEGER PRIMARY KEY CHECK (one = 1),
           size INTEGER NOT NULL,
           time_ms INTEGER NOT NULL,
           edge BLOB NOT NULL,
           note TEXT NOT NULL
         ) STRICT;
         COMMIT;",
    )?;
    Ok(())
}

fn open_connection(path: &Path, busy: Duration, sync: DiskSync) -> Result<Connection, AuditError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk when it returns. NORMAL: a commit is in the WAL
    // file when it returns, and the syncer thread (or a checkpoint, which syncs)
    // puts it on disk; WAL with NORMAL stays consistent after a power cut.
    let level = match sync {
        DiskSync::EveryCommit => "FULL",
        DiskSync::Within(_) => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    if let DiskSync::Within(_) = sync {
        // The sync thread checkpoints (see `syncer`); a commit that crossed
        // SQLite's own threshold would copy the WAL into the database and
        // sync both while every request waits on it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // SQLite reuses the WAL file from its start after a checkpoint and
        // keeps its length; with no size limit it is cut to what the new
        // frames fill, so its length says how much waits to be checkpointed.
        conn.pragma_update(None, "journal_size_limit", 0)?;
    }
    Ok(conn)
}

/// SQLite's WAL file of the database at `db`.
fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::path::PathBuf::from(wal)
}

/// How large the WAL grows before the sync thread moves it into the database
/// (SQLite's own default threshold is 1,000 pages, 4 MiB at 4 KiB a page).
pub const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;

/// How long the log must have been without a commit before
/// [`AuditLog::append`] commits on the caller's thread. Under load commits
/// follow each other closely and stay with the writer thread, which batches
/// them; an isolated request commits at once, without waking it.
pub const INLINE_AFTER_IDLE: Duration = Duration::from_micros(250);

/// How long after a commit the writer thread keeps waking every half
/// [`AuditConfig::defer`], so deferred records need not wake it.
const POLL_AFTER_COMMIT: Duration = Duration::from_millis(100);

/// Nanoseconds since the first call: the clock of [`Shared::last_commit`].
fn clock() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl AuditLog {
    /// Opens (creating if needed) the log in the SQLite file at `path`, signing
    /// with `key`, and starts its writer thread. Refuses to start on a log whose
    /// stored state does not match its signed head.
    pub fn open(path: &Path, key: LogKey, config: AuditConfig) -> Result<AuditLog, AuditError> {
        let sync = config.sync;
        let busy = config.busy_timeout;
        if config.journal && sync == DiskSync::EveryCommit {
            return Err(AuditError::Write(
                "the audit journal needs records synced within an interval, not at every commit"
                    .into(),
            ));
        }
        let conn = open_connection(path, busy, sync)?;
        schema(&conn)?;
        let with_journal = config.journal;
        let mut writer = Writer::new(conn, key, config)?;
        // A log without a head (new) gets one now, so even an empty log is signed.
        if writer.head_size.is_none() {
            writer.commit(&[], true)?;
        }
        let shared = Arc::new(Shared::default());
        let journal = if with_journal {
            let taken = writer.journal_seq()?;
            let (journal, entries) = journal::Journal::open(path, writer.key.journal, taken)?;
            let recovered = entries.len();
            let last = writer.take_in(entries)?.unwrap_or(taken);
            if recovered > 0 {
                // On disk before the journal files holding them go.
                sync_file(&wal_path(path), &shared).map_err(|e| {
                    AuditError::Write(format!("cannot sync the recovered records: {e}"))
                })?;
                info!(
                    records = recovered,
                    through = last,
                    "audit records recovered from the journal into the log"
                );
            }
            journal.prune(last);
            shared.committed_seq.store(last, Ordering::Relaxed);
            shared.synced_seq.store(last, Ordering::Relaxed);
            let journal = Arc::new(journal);
            writer.journal = Some(Arc::clone(&journal));
            Some(journal)
        } else {
            None
        };
        let inline = matches!(sync, DiskSync::Within(_)) && journal.is_none();
        let backlog = JOURNAL_BACKLOG_BATCHES.saturating_mul(writer.config.max_batch as u64);
        shared
            .committed
            .store(writer.edge.size(), Ordering::Relaxed);
        shared.synced.store(writer.edge.size(), Ordering::Relaxed);
        shared.last_commit.store(clock(), Ordering::Relaxed);
        let origin = writer.key.origin().to_owned();
        let verifier = writer.key.verifier_key().to_owned();
        let mut sync_tx = None;
        let sync_thread = match sync {
            DiskSync::EveryCommit => None,
            DiskSync::Within(interval) => {
                let wal = wal_path(path);
                let (tx, rx) = mpsc::channel();
                let thread_shared = Arc::clone(&shared);
                // Its own connection, for the checkpoints.
                let db = open_connection(path, busy, sync)?;
                let thread_journal = journal.clone();
                let handle = std::thread::Builder::new()
                    .name("zt4ai-audit-sync".into())
                    .spawn(move || {
                        syncer(
                            &wal,
                            &db,
                            thread_journal.as_deref(),
                            interval,
                            &rx,
                            &thread_shared,
                        );
                    })
                    .map_err(|e| AuditError::Write(format!("cannot start the sync thread: {e}")))?;
                if journal.is_some() {
                    sync_tx = Some(tx.clone());
                }
                writer.syncer = Some(tx);
                Some(handle)
            }
        };
        let state = Arc::new(Mutex::new(writer));
        let (tx, rx) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread_state = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("zt4ai-audit".into())
            .spawn(move || run(&thread_state, &rx, &thread_shared, sync_thread))
            .map_err(|e| AuditError::Write(format!("cannot start the writer thread: {e}")))?;
        Ok(AuditLog {
            tx: Some(tx),
            shared,
            state,
            inline,
            journal,
            sync_tx,
            backlog,
            writer: Some(handle),
            origin,
            verifier,
        })
    }

    /// Queues `event`; the receipt says when it is durable. After an idle
    /// spell the record is committed before this returns (see the crate's
    /// documentation), and the receipt is already resolved.
    pub fn append(&self, event: &Event) -> Receipt {
        if let Some(journal) = &self.journal {
            let (reply, rx) = tokio::sync::oneshot::channel();
            return match self.journal_append(journal, event) {
                Ok(seq) => {
                    let _ = reply.send(Ok(seq));
                    Receipt(Ok(rx))
                }
                Err(e) => Receipt(Err(e)),
            };
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = match Job::new(event, Some(reply)) {
            Ok(job) => job,
            Err(e) => return Receipt(Err(e)),
        };
        match self.commit_here(job) {
            None => Receipt(Ok(rx)),
            Some(job) => match self.queue(job) {
                Ok(()) => Receipt(Ok(rx)),
                Err(e) => Receipt(Err(e)),
            },
        }
    }

    /// Commits `job` on this thread, with the deferred records held, if the
    /// log has been idle and nothing else is queued; hands it back otherwise.
    fn commit_here(&self, job: Job) -> Option<Job> {
        if !self.inline
            || self.tx.is_none()
            || clock().saturating_sub(self.shared.last_commit.load(Ordering::Relaxed))
                < INLINE_AFTER_IDLE.as_nanos() as u64
        {
            return Some(job);
        }
        let Some(mut w) = self.state.try_lock() else {
            return Some(job);
        };
        // Only deferred records the writer holds may go first: a record still
        // in the channel would be committed after this one.
        if self.shared.queued.load(Ordering::SeqCst) != w.pending.len() as u64 {
            return Some(job);
        }
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        w.pending.push(job);
        if !w.commit_pending(&self.shared, false) {
            // Another connection (the command line, the session store) holds
            // the database's write lock: this thread does not wait for it;
            // the writer thread does. Our job went in last.
            let job = w.pending.pop();
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            #[cfg(test)]
            self.shared.inline_busy.fetch_add(1, Ordering::Relaxed);
            return job;
        }
        #[cfg(test)]
        self.shared.inline_commits.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Queues `event` without waiting for it: for records no decision depends
    /// on (an observation that changed nothing). The writer commits it with the
    /// next record something waits for, or within [`AuditConfig::defer`],
    /// whichever comes first, so it costs no commit of its own. A failure to
    /// store it shows in [`Self::health`] and the log, not to the caller.
    pub fn append_deferred(&self, event: &Event) -> Result<(), AuditError> {
        if let Some(journal) = &self.journal {
            return self
                .journal_append(journal, event)
                .map(drop)
                .map_err(AuditError::Write);
        }
        let job = Job::new(event, None).map_err(AuditError::Write)?;
        match self.hold_here(job) {
            None => Ok(()),
            Some(job) => self.queue(job).map_err(AuditError::Write),
        }
    }

    /// Writes `event` to the journal and hands it to the writer as a deferred
    /// record; its journal sequence number once written. Refused while the
    /// log is failing (a commit or disk sync failed) or far behind
    /// ([`JOURNAL_BACKLOG_BATCHES`]): fail closed.
    fn journal_append(&self, journal: &journal::Journal, event: &Event) -> Result<u64, String> {
        if let Some(why) = self.shared.failing() {
            return Err(why);
        }
        let behind = self.shared.queued.load(Ordering::Relaxed);
        if behind >= self.backlog {
            return Err(format!(
                "the audit log is {behind} records behind its journal; refusing more until it catches up"
            ));
        }
        let mut job = Job::new(event, None)?;
        let record = std::mem::take(&mut job.event);
        let seq = journal.append(record, |seq, record| {
            job.event = record;
            job.seq = Some(seq);
            // Still holding the journal: records reach the writer in the
            // order of their sequence numbers.
            match self.hold_here(job) {
                None => Ok(seq),
                Some(job) => self.queue(job).map(|()| seq),
            }
        })?;
        if let Some(tx) = &self.sync_tx
            && !self.shared.dirty.swap(true, Ordering::SeqCst)
        {
            let _ = tx.send(());
        }
        Ok(seq)
    }

    /// Waits (up to `limit`) until every record appended so far is committed
    /// to the log, for readers that must see them: with the journal, records
    /// are answered before they are in the log. True once they are.
    pub async fn settled(&self, limit: Duration) -> bool {
        let Some(journal) = &self.journal else {
            return true;
        };
        let target = journal.last_seq();
        let until = Instant::now() + limit;
        loop {
            if self.shared.committed_seq.load(Ordering::SeqCst) >= target {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Puts a deferred `job` straight into the writer's held records when the
    /// writer thread is polling (records arrived lately, so it wakes every
    /// half [`AuditConfig::defer`] anyway), nothing is queued and no periodic
    /// checkpoint falls due before that wake-up: that saves waking the writer
    /// thread for a record nobody waits for. Hands the job back otherwise.
    fn hold_here(&self, job: Job) -> Option<Job> {
        if self.tx.is_none() {
            return Some(job);
        }
        let Some(mut w) = self.state.try_lock() else {
            return Some(job);
        };
        // Nor when a checkpoint falls due before the writer's next wake-up:
        // its wait may not count on that checkpoint (a commit on an appending
        // thread does not tell it), so it is woken to plan again.
        if !w.polling
            || w.pending.len() >= w.config.max_batch
            || self.shared.queued.load(Ordering::SeqCst) != w.pending.len() as u64
            || w.until_checkpoint_with(1)
                .is_some_and(|d| d < w.config.defer / 2)
        {
            return Some(job);
        }
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        w.pending.push(job);
        // The writer wakes within half the interval and then waits out the
        // rest: committed within `defer`.
        let until = Instant::now() + w.config.defer / 2;
        w.deferred_until.get_or_insert(until);
        #[cfg(test)]
        self.shared.held_directly.fetch_add(1, Ordering::Relaxed);
        None
    }

    fn queue(&self, job: Job) -> Result<(), String> {
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok()) {
            Ok(())
        } else {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            Err("the audit writer has stopped".into())
        }
    }

    /// The log's health: whether writes succeed, how many records it holds.
    pub fn health(&self) -> Health {
        let records = self.shared.committed.load(Ordering::Relaxed);
        let queued = self.shared.queued.load(Ordering::Relaxed);
        let synced = self.shared.synced.load(Ordering::Relaxed);
        let error = self.shared.failing();
        Health {
            ok: error.is_none(),
            records,
            pending: queued,
            unsynced: records.saturating_sub(synced),
            error,
        }
    }

    /// The log's origin (first line of its checkpoints).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key that checks this log's checkpoints.
    pub fn verifier_key(&self) -> &str {
        &self.verifier
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.sync_tx = None;
        self.tx = None;
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        // Everything journaled is in the log and on disk: the journal can go.
        if let Some(journal) = &self.journal
            && self.shared.queued.load(Ordering::SeqCst) == 0
            && self.shared.failing().is_none()
            && self.shared.synced_seq.load(Ordering::SeqCst) >= journal.last_seq()
        {
            journal.clear();
        }
    }
}

impl Meta {
    fn of(event: &Event) -> Meta {
        match event {
            Event::Decision(d) => Meta {
                time_ms: d.time_ms,
                kind: "decision",
                user: Some(d.chain.user.to_string()),
                agents: Some(spaced(d.chain.agents.iter().map(|a| a.as_str()))),
                session: Some(d.session.clone()),
                decision: Some(d.decision.as_str()),
                policies: Some(spaced(d.policies.iter().map(String::as_str))),
            },
            Event::Lifecycle(l) => Meta {
                time_ms: l.time_ms,
                kind: "lifecycle",
                user: None,
                agents: Some(spaced([l.subject.as_str()])),
                session: None,
                decision: None,
                policies: None,
            },
        }
    }
}

/// `' a b '`: every item surrounded by spaces, for `instr(col, ' a ')`.
fn spaced<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut s = String::from(" ");
    for i in items {
        s.push_str(i);
        s.push(' ');
    }
    s
}

/// The writer's state: the only place records are added, by the writer
/// thread or by an appending thread holding its lock.
struct Writer {
    conn: Connection,
    key: LogKey,
    config: AuditConfig,
    edge: Edge,
    head_size: Option<u64>,
    last_checkpoint: u64,
    last_checkpoint_at: Instant,
    /// Records taken from the queue and not yet committed: deferred ones
    /// waiting for a record something waits for.
    pending: Vec<Job>,
    /// When the oldest deferred record in `pending` must be committed.
    deferred_until: Option<Instant>,
    /// Whether the writer thread is waking every half `defer` (records came
    /// lately), so a deferred record can be held without waking it.
    polling: bool,
    /// Wakes the sync thread ([`DiskSync::Within`]).
    syncer: Option<mpsc::Sender<()>>,
    /// Buffers reused for each record's body and tree hashes.
    body: Vec<u8>,
    hashes: Vec<u8>,
    /// The journal, whose files the writer retires and removes.
    journal: Option<Arc<journal::Journal>>,
}

impl Writer {
    fn new(conn: Connection, key: LogKey, config: AuditConfig) -> Result<Writer, AuditError> {
        let mut w = Writer {
            conn,
            key,
            config,
            edge: Edge::default(),
            head_size: None,
            last_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            pending: Vec::new(),
            deferred_until: None,
            polling: false,
            syncer: None,
            body: Vec::with_capacity(4096),
            hashes: Vec::with_capacity(64 * 32),
            journal: None,
        };
        w.reload()?;
        Ok(w)
    }

    /// Reads the head (and checks it against the records) — at start, and when
    /// another process (the CLI) has appended since this writer last wrote.
    fn reload(&mut self) -> Result<(), AuditError> {
        let head: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT size, edge, note FROM audit_head WHERE one = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        // MAX, not COUNT: O(log n). Gaps are `verify`'s business.
        let records: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records",
            [],
            |r| r.get(0),
        )?;
        let Some((size, edge, note)) = head else {
            if records > 0 {
                return Err(AuditError::Inconsistent(format!(
                    "{records} records but no signed head"
                )));
            }
            return Ok(());
        };
        let size = u64::try_from(size).map_err(|_| bad("negative head size"))?;
        if u64::try_from(records).ok() != Some(size) {
            return Err(AuditError::Inconsistent(format!(
                "the signed head covers {size} records but the store holds {records}"
            )));
        }
        let edge = Edge::from_bytes(size, &edge).ok_or_else(|| bad("malformed tree edge"))?;
        let verifier = verifier(self.key.verifier_key())?;
        let cp = read::open_checkpoint(&note, &verifier).map_err(|p| bad(&p.message))?;
        if cp.size() != size || *cp.hash() != edge.root() {
            return Err(bad("the stored tree edge does not match the signed head"));
        }
        self.edge = edge;
        self.head_size = Some(size);
        self.last_checkpoint = self
            .conn
            .query_row("SELECT MAX(size) FROM audit_checkpoints", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0);
        Ok(())
    }

    /// Commits entries read back from the journal, in order and in batches;
    /// the last one's sequence number, if there were any.
    fn take_in(&mut self, entries: Vec<journal::Entry>) -> Result<Option<u64>, AuditError> {
        let last = entries.last().map(|e| e.seq);
        let jobs = entries
            .into_iter()
            .map(Job::recovered)
            .collect::<Result<Vec<_>, _>>()?;
        for batch in jobs.chunks(self.config.max_batch) {
            self.commit(batch, true)?;
        }
        Ok(last)
    }

    /// The last journal entry the log holds (0 for none).
    fn journal_seq(&self) -> Result<u64, AuditError> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT seq FROM audit_journal WHERE one = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Commits `pending` in one transaction and answers everyone waiting:
    /// the index of each record, or the error that refused them all.
    ///
    /// Without `wait`, the commit does not wait for another connection's
    /// write lock: if one holds it, nothing is written or answered, the
    /// records stay pending, and this returns false. True otherwise.
    fn commit_pending(&mut self, shared: &Shared, wait: bool) -> bool {
        let held_until = self.deferred_until.take();
        let batch = std::mem::take(&mut self.pending);
        let n = batch.len() as u64;
        let started = Instant::now();
        // A failed disk sync may have lost committed records: nothing more
        // is acknowledged until an operator has looked (restart and verify).
        let failed = shared.sync_failed.lock().clone();
        let result = match failed {
            Some(why) => Err(AuditError::Write(why)),
            None => self.commit(&batch, wait),
        };
        if !wait && result.as_ref().is_err_and(is_busy) {
            self.pending = batch;
            self.deferred_until = held_until;
            return false;
        }
        zt4ai_telemetry::metrics().audit_commit(batch.len(), started.elapsed());
        match result {
            Ok(first_index) => {
                shared.queued.fetch_sub(n, Ordering::SeqCst);
                shared.committed.store(self.edge.size(), Ordering::SeqCst);
                if let Some(seq) = batch.iter().filter_map(|j| j.seq).max() {
                    shared.committed_seq.store(seq, Ordering::SeqCst);
                }
                match &self.syncer {
                    Some(tx) => {
                        if !shared.dirty.swap(true, Ordering::SeqCst) {
                            let _ = tx.send(());
                        }
                    }
                    None => shared.synced.store(self.edge.size(), Ordering::Relaxed),
                }
                if shared.error.lock().take().is_some() {
                    info!("audit log writes again");
                }
                for (i, job) in (first_index..).zip(batch) {
                    if let Some(reply) = job.reply {
                        let _ = reply.send(Ok(i));
                    }
                }
            }
            Err(e) => {
                let message = e.to_string();
                *shared.error.lock() = Some(message.clone());
                // A journaled record was answered already: it stays, in
                // order, to be tried again (and is in the journal if zt4ai
                // stops first). Every other one is refused.
                let mut kept = Vec::new();
                for job in batch {
                    if job.seq.is_some() {
                        kept.push(job);
                    } else if let Some(reply) = job.reply {
                        let _ = reply.send(Err(message.clone()));
                    }
                }
                if kept.is_empty() {
                    error!(error = %message, records = n, "audit records could not be stored; their requests are denied");
                } else {
                    error!(error = %message, records = kept.len(), "journaled audit records could not be moved into the log; retrying, and denying requests meanwhile");
                }
                shared
                    .queued
                    .fetch_sub(n - kept.len() as u64, Ordering::SeqCst);
                if !kept.is_empty() {
                    self.pending = kept;
                    self.deferred_until = Some(Instant::now() + self.config.defer);
                }
            }
        }
        shared.last_commit.store(clock(), Ordering::Relaxed);
        if let Some(journal) = &self.journal {
            journal.prune(shared.synced_seq.load(Ordering::SeqCst));
        }
        true
    }

    /// How long until a periodic checkpoint is due, if records are waiting for
    /// one: committed since the last, or held (deferred) to be committed.
    fn until_checkpoint(&self) -> Option<Duration> {
        self.until_checkpoint_with(0)
    }

    /// [`Self::until_checkpoint`] with `more` records held besides.
    fn until_checkpoint_with(&self, more: u64) -> Option<Duration> {
        let held = self.pending.len() as u64 + more;
        (self.edge.size() + held > self.last_checkpoint).then(|| {
            self.config
                .checkpoint_interval
                .saturating_sub(self.last_checkpoint_at.elapsed())
        })
    }

    fn commit_checkpoint_only(&mut self) -> Result<u64, AuditError> {
        let force = self.config.checkpoint_interval;
        self.last_checkpoint_at = Instant::now()
            .checked_sub(force)
            .unwrap_or(self.last_checkpoint_at);
        self.commit(&[], true)
    }

    /// Writes `batch` in one transaction with a freshly signed head (and a kept
    /// checkpoint when one is due). On error nothing is written and the
    /// in-memory tree is as before. Returns the first record's index.
    /// Without `wait`, a write lock held by another connection is an
    /// immediate busy error ([`is_busy`]) instead of a wait of up to the
    /// busy timeout.
    fn commit(&mut self, batch: &[Job], wait: bool) -> Result<u64, AuditError> {
        let saved = (self.edge.clone(), self.head_size, self.last_checkpoint);
        if !wait {
            self.conn.busy_timeout(Duration::ZERO)?;
        }
        let r = self.commit_inner(batch);
        if !wait && let Err(e) = self.conn.busy_timeout(self.config.busy_timeout) {
            // Cannot happen (SQLite only stores the timeout); if it did, the
            // writer thread would stop waiting for locks and its commits
            // would fail, which denies and shows in the health check.
            error!(error = %e, "the audit log's busy timeout could not be restored");
        }
        if r.is_err() {
            (self.edge, self.head_size, self.last_checkpoint) = saved;
        }
        r
    }

    fn commit_inner(&mut self, batch: &[Job]) -> Result<u64, AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<i64> = tx
            .prepare_cached("SELECT size FROM audit_head WHERE one = 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        if stored.and_then(|s| u64::try_from(s).ok()) != self.head_size {
            // Someone else (the CLI) appended: continue from their head.
            drop(tx);
            self.reload()?;
            return self.commit_inner(batch);
        }
        let first = self.edge.size();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_records
                   (idx, time_ms, kind, user_id, agents, session, decision, policies, body, hashes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let (body, hashes) = (&mut self.body, &mut self.hashes);
            for job in batch {
                let index = self.edge.size();
                record::body_into(index, &job.event, body);
                self.edge.append(body, hashes);
                let m = &job.meta;
                insert.execute(params![
                    i64::try_from(index).map_err(|_| bad("log full"))?,
                    m.time_ms,
                    m.kind,
                    m.user,
                    m.agents,
                    m.session,
                    m.decision,
                    m.policies,
                    body.as_slice(),
                    hashes.as_slice(),
                ])?;
            }
        }
        if let Some(seq) = batch.iter().filter_map(|j| j.seq).max() {
            tx.prepare_cached("INSERT OR REPLACE INTO audit_journal VALUES (1, ?1)")?
                .execute(params![i64::try_from(seq).unwrap_or(i64::MAX)])?;
        }
        let size = self.edge.size();
        let now = now_ms();
        let note = sign(&self.key, size, self.edge.root())?;
        let due = size >= self.last_checkpoint + self.config.checkpoint_records
            || (size > self.last_checkpoint
                && self.last_checkpoint_at.elapsed() >= self.config.checkpoint_interval);
        if due {
            tx.prepare_cached("INSERT OR REPLACE INTO audit_checkpoints VALUES (?1, ?2, ?3)")?
                .execute(params![i64::try_from(size).unwrap_or(i64::MAX), now, note])?;
        }
        tx.prepare_cached("INSERT OR REPLACE INTO audit_head VALUES (1, ?1, ?2, ?3, ?4)")?
            .execute(params![
                i64::try_from(size).unwrap_or(i64::MAX),
                now,
                self.edge.to_bytes(),
                note
            ])?;
        tx.commit()?;
        self.head_size = Some(size);
        if due {
            self.last_checkpoint = size;
            self.last_checkpoint_at = Instant::now();
        }
        Ok(first)
    }
}

/// Whether `e` is SQLite saying another connection holds a lock.
fn is_busy(e: &AuditError) -> bool {
    matches!(e, AuditError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// The writer thread's loop: takes queued records into the writer's
/// `pending` and commits them, holding deferred ones until a record something
/// waits for arrives or they are due. `sync_thread` (with
/// [`DiskSync::Within`]) is stopped and joined when the log closes.
fn run(
    state: &Mutex<Writer>,
    rx: &mpsc::Receiver<Job>,
    shared: &Shared,
    sync_thread: Option<std::thread::JoinHandle<()>>,
) {
    let mut open = true;
    while open {
        // Wait for a record, for the periodic checkpoint, or until the
        // deferred records already held are due.
        // While records come, it also wakes every half `defer`, so appending
        // threads can hold deferred records without waking it (see
        // `AuditLog::hold_here`).
        let due = {
            let mut w = state.lock();
            let since = clock().saturating_sub(shared.last_commit.load(Ordering::Relaxed));
            w.polling = since < POLL_AFTER_COMMIT.as_nanos() as u64;
            let tick = (w.config.defer / 2).max(Duration::from_micros(100));
            [
                w.until_checkpoint(),
                w.deferred_until
                    .map(|t| t.saturating_duration_since(Instant::now())),
                w.polling.then_some(tick),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        let first = match due {
            Some(d) => match rx.recv_timeout(d) {
                Ok(j) => Some(j),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            },
            None => match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => break,
            },
        };
        let mut w = state.lock();
        w.pending.extend(first);
        while w.pending.len() < w.config.max_batch {
            match rx.try_recv() {
                Ok(j) => w.pending.push(j),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let checkpoint_due = w.until_checkpoint() == Some(Duration::ZERO);
        // An appending thread may have committed what was held meanwhile.
        if w.pending.is_empty() {
            w.deferred_until = None;
            if !checkpoint_due {
                continue;
            }
        }
        // Only deferred records, not yet due, no checkpoint due, and room
        // for more: hold them for the next record something waits for.
        let waited_for = w.pending.iter().any(|j| j.reply.is_some());
        let now = Instant::now();
        if open && !waited_for && !checkpoint_due && w.pending.len() < w.config.max_batch {
            let defer = w.config.defer;
            let until = *w.deferred_until.get_or_insert(now + defer);
            if now < until {
                continue;
            }
        }
        w.commit_pending(shared, true);
    }
    let mut w = state.lock();
    if !w.pending.is_empty() {
        w.commit_pending(shared, true);
    }
    // Closing: a final checkpoint, so a cleanly stopped log ends on one.
    if w.edge.size() > w.last_checkpoint
        && let Err(e) = w.commit_checkpoint_only()
    {
        warn!(error = %e, "no final audit checkpoint");
    }
    match sync_thread {
        Some(handle) => {
            // Hang up: the syncer syncs once more and ends.
            w.syncer = None;
            drop(w);
            let _ = handle.join();
        }
        None => shared.synced.store(w.edge.size(), Ordering::Relaxed),
    }
}

/// The sync thread of [`DiskSync::Within`]: woken by the first commit since its
/// last sync ([`Shared::dirty`]), it waits out `interval` (later commits do not
/// wake it), syncs the WAL file to disk, records the size it covered and, when
/// the WAL is large enough, checkpoints it. Ends, after a last sync, when the
/// writer hangs up. A failed sync is permanent (see [`Shared::sync_failed`]).
fn syncer(
    wal: &Path,
    db: &Connection,
    journal: Option<&journal::Journal>,
    interval: Duration,
    rx: &mpsc::Receiver<()>,
    shared: &Shared,
) {
    let mut open = true;
    while open {
        // Woken by the first commit since the last sync, or by the writer
        // hanging up (then one last sync).
        open = rx.recv().is_ok();
        if open {
            #[cfg(test)]
            shared.sync_wakeups.fetch_add(1, Ordering::Relaxed);
            // No commit sends while the flag is set, so nothing arrives during
            // the interval but the writer hanging up, which ends it early.
            match rx.recv_timeout(interval) {
                Ok(()) => {
                    #[cfg(test)]
                    shared.sync_wakeups.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // Clear the flag before reading the size: a commit after this wakes
        // the thread again, and one before it is in the size.
        shared.dirty.store(false, Ordering::SeqCst);
        let size = shared.committed.load(Ordering::SeqCst);
        let seq = shared.committed_seq.load(Ordering::SeqCst);
        let started = Instant::now();
        // The journal first: what it holds beyond `seq` is not yet in the
        // log, and is on disk only through it.
        match journal
            .map_or(Ok(()), journal::Journal::sync)
            .and_then(|()| sync_file(wal, shared))
            .and_then(|()| {
                shared.synced.fetch_max(size, Ordering::Relaxed);
                shared.synced_seq.fetch_max(seq, Ordering::SeqCst);
                zt4ai_telemetry::metrics().audit_sync(started.elapsed());
                checkpoint(wal, db, shared)
            }) {
            Ok(()) => {
                #[cfg(test)]
                shared.rounds_through.fetch_max(size, Ordering::SeqCst);
            }
            Err(e) => {
                let message = format!(
                    "the audit log could not be synced to disk ({}: {e}); records may be lost, so \
                     every request is denied until zt4ai is restarted and `zt4ai audit verify` \
                     has checked the log",
                    wal.display()
                );
                error!(error = %message, "audit sync failed");
                *shared.sync_failed.lock() = Some(message);
                break;
            }
        }
    }
}

/// Moves the WAL into the database once it has passed
/// [`WAL_CHECKPOINT_BYTES`]: a passive checkpoint, which copies what no
/// reader still needs without waiting for anyone, and syncs the WAL before and
/// the database after. The writer starts the WAL over at its next commit once
/// all of it is in the database. An error is treated as a failed sync: the
/// database file may not hold what SQLite believes it holds.
fn checkpoint(wal: &Path, db: &Connection, shared: &Shared) -> std::io::Result<()> {
    let size = match std::fs::metadata(wal) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if size < WAL_CHECKPOINT_BYTES {
        return Ok(());
    }
    let started = Instant::now();
    let (busy, frames, copied) = db
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| std::io::Error::other(format!("checkpoint of the WAL failed: {e}")))?;
    #[cfg(test)]
    {
        shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        shared
            .checkpoint_frames
            .fetch_add(u64::try_from(frames).unwrap_or(0), Ordering::Relaxed);
    }
    #[cfg(not(test))]
    let _ = shared;
    tracing::debug!(
        wal_bytes = size,
        frames,
        copied,
        busy,
        elapsed_us = started.elapsed().as_micros() as u64,
        "audit WAL checkpointed"
    );
    Ok(())
}

/// Syncs the file at `path` to disk. A missing file has nothing to sync: SQLite
/// removes the WAL only after checkpointing it into the database, which it syncs.
fn sync_file(path: &Path, shared: &Shared) -> std::io::Result<()> {
    #[cfg(test)]
    if shared.fail_sync.swap(false, Ordering::Relaxed) {
        return Err(std::io::Error::other("injected failure"));
    }
    #[cfg(not(test))]
    let _ = shared;
    match std::fs::File::open(path) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The signed checkpoint of a tree of `size` records with root `root`.
fn sign(key: &LogKey, size: u64, root: tlog_tiles::Hash) -> Result<String, AuditError> {
    let cp = Checkpoint::new(key.origin(), size, root, "")
        .map_err(|e| AuditError::Write(format!("cannot form a checkpoint: {e}")))?;
    let mut note = Note::new(&cp.to_bytes(), &[])
        .map_err(|e| AuditError::Write(format!("cannot form a checkpoint: {e}")))?;
    note.add_sigs(&[&key.signer])
        .map_err(|e| AuditError::Write(format!("cannot sign a checkpoint: {e}")))?;
    String::from_utf8(note.to_bytes())
        .map_err(|_| AuditError::Write("checkpoint is not UTF-8".into()))
}

fn bad(message: &str) -> AuditError {
    AuditError::Inconsistent(message.to_owned())
}

#[cfg(test)]
mod tests;

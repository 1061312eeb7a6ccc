//! The SQLite session store and its cache.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use rusqlite::{Connection, OptionalExtension, params};
use zt4ai_core::{AgentId, Category, Integrity, Label, SessionId, SessionLabel, UserId};

/// Why the store could not answer. On the decision path this becomes a deny.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, locked, corrupted…).
    #[error("session store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database holds a value zt4ai does not understand.
    #[error("session store holds an invalid {what} for session `{session}`: `{value}`")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The session.
        session: String,
        /// The value found.
        value: String,
    },
    /// The database was written by a newer zt4ai.
    #[error("session store schema version {found} is newer than this zt4ai supports ({supported})")]
    Version {
        /// Version in the file.
        found: i64,
        /// Highest version understood.
        supported: i64,
    },
}

/// Who a session belongs to: the user and the outermost agent of the chain that
/// first wrote it. Another chain may not use the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    /// The user.
    pub user: UserId,
    /// The outermost agent, if any.
    pub agent: Option<AgentId>,
}

#[derive(Debug, Default)]
struct Entry {
    label: SessionLabel,
    owner: Option<SessionOwner>,
}

const SHARDS: usize = 16;
const SCHEMA_VERSION: i64 = 3;

type Shard = Mutex<HashMap<SessionId, Arc<Mutex<Entry>>>>;

/// The session store: SQLite behind a sharded in-memory cache.
pub struct SessionStore {
    db: Mutex<Connection>,
    shards: Vec<Shard>,
    hasher: std::collections::hash_map::RandomState,
    max_cached_per_shard: usize,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore").finish_non_exhaustive()
    }
}

/// A locked session: requests on the same session wait for each other.
pub struct SessionLock<'a> {
    store: &'a SessionStore,
    id: SessionId,
    guard: parking_lot::ArcMutexGuard<parking_lot::RawMutex, Entry>,
}

/// Brings a version-1 file to version 2: approvals gain their kind, who asked,
/// what exactly they are for, and (for a declassification) the label to lower to.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let has_kind: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('approvals') WHERE name = 'kind'")?
        .exists([])?;
    if !has_kind {
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE approvals ADD COLUMN kind TEXT NOT NULL DEFAULT 'action'
               CHECK (kind IN ('action', 'declassification'));
             ALTER TABLE approvals ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
             ALTER TABLE approvals ADD COLUMN chain TEXT NOT NULL DEFAULT '';
             ALTER TABLE approvals ADD COLUMN action TEXT NOT NULL DEFAULT '';
             ALTER TABLE approvals ADD COLUMN resource TEXT NOT NULL DEFAULT '';
             ALTER TABLE approvals ADD COLUMN arguments_sha256 TEXT;
             ALTER TABLE approvals ADD COLUMN lower_to INTEGER CHECK (lower_to BETWEEN 0 AND 3);
             PRAGMA user_version = 2;
             COMMIT;",
        )?;
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 3 {
        fold_token_sessions(conn)?;
    }
    Ok(())
}

/// Brings a file to version 3: the gateways kept a label per delegated token
/// (sessions `mcp-token-<jti>`), and now keep one per user and outermost agent
/// ([`SessionId::flow`]). Each token's label, integrity, categories and
/// pending approvals are folded into its user's and agent's flow session (the
/// join of them all), in one transaction, so an upgrade sheds nothing.
fn fold_token_sessions(conn: &Connection) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let tokens: Vec<(String, String, Option<String>)> = tx
        .prepare("SELECT id, user_id, agent_id FROM sessions WHERE id LIKE 'mcp-token-%'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (old, user, agent) in tokens {
        let corrupt = |what, value: String| StoreError::Corrupt {
            what,
            session: old.clone(),
            value,
        };
        let user = UserId::new(user.clone()).map_err(|_| corrupt("user", user))?;
        let agent = match agent {
            Some(a) => Some(AgentId::new(a.clone()).map_err(|_| corrupt("agent", a))?),
            None => None,
        };
        let flow = SessionId::flow(&user, agent.as_ref());
        tx.execute(
            "INSERT INTO sessions (id, user_id, agent_id, label, untrusted, created_at, updated_at)
             SELECT ?2, user_id, agent_id, label, untrusted, created_at, updated_at
               FROM sessions WHERE id = ?1
             ON CONFLICT(id) DO UPDATE SET
               label = MAX(label, excluded.label),
               untrusted = MAX(untrusted, excluded.untrusted),
               created_at = MIN(created_at, excluded.created_at),
               updated_at = MAX(updated_at, excluded.updated_at)",
            params![old, flow.as_str()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO session_categories (session_id, category)
             SELECT ?2, category FROM session_categories WHERE session_id = ?1",
            params![old, flow.as_str()],
        )?;
        tx.execute(
            "UPDATE approvals SET session_id = ?2 WHERE session_id = ?1",
            params![old, flow.as_str()],
        )?;
        tx.execute(
            "DELETE FROM session_categories WHERE session_id = ?1",
            [&old],
        )?;
        tx.execute("DELETE FROM sessions WHERE id = ?1", [&old])?;
    }
    tx.pragma_update(None, "user_version", 3)?;
    tx.commit()?;
    Ok(())
}

impl SessionStore {
    /// Opens (creating if needed) the store in a SQLite file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::with_connection(Connection::open(path)?)
    }

    /// Checks that the database answers (for health endpoints).
    pub fn ping(&self) -> Result<(), StoreError> {
        let db = self.db.lock();
        db.query_row("PRAGMA user_version", [], |_| Ok(()))?;
        Ok(())
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets the CLI read and grant approvals while the server runs; FULL sync
        // because a lost label raise would be a fail-open after a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Version {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS sessions (
               id TEXT PRIMARY KEY,
               user_id TEXT NOT NULL,
               agent_id TEXT,
               label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 3),
               untrusted INTEGER NOT NULL CHECK (untrusted IN (0, 1)),
               created_at INTEGER NOT NULL,
               updated_at INTEGER NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS session_categories (
               session_id TEXT NOT NULL REFERENCES sessions(id),
               category TEXT NOT NULL,
               PRIMARY KEY (session_id, category)
             ) STRICT, WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS approvals (
               id TEXT PRIMARY KEY,
               session_id TEXT NOT NULL,
               fingerprint TEXT NOT NULL,
               summary TEXT NOT NULL,
               policies TEXT NOT NULL,
               reasons TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'used')),
               created_at INTEGER NOT NULL,
               expires_at INTEGER NOT NULL,
               decided_by TEXT,
               decided_at INTEGER,
               used_at INTEGER
             ) STRICT;
             CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, created_at);
             -- a held request finds its newest pending approval by session and
             -- request; with `created_at` in the index SQLite (which has no
             -- statistics here) uses it, not approvals_status, which made every
             -- lookup scan all pending approvals. Replaces `approvals_request`.
             DROP INDEX IF EXISTS approvals_request;
             CREATE INDEX IF NOT EXISTS approvals_request_at
               ON approvals(session_id, fingerprint, status, created_at);
             -- the agent registry (see registry.rs); the tables are created here, so a
             -- version-1 file written before the registry existed gains them on open
             CREATE TABLE IF NOT EXISTS agents (
               id TEXT PRIMARY KEY,
               owner TEXT NOT NULL,
               purpose TEXT NOT NULL,
               state TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'retired')),
               public_jwk TEXT,
               secret_hash TEXT,
               created_at INTEGER NOT NULL,
               updated_at INTEGER NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS agent_events (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               agent_id TEXT NOT NULL REFERENCES agents(id),
               event TEXT NOT NULL
                 CHECK (event IN ('registered', 'suspended', 'resumed', 'retired', 'credentials')),
               by TEXT NOT NULL,
               reason TEXT,
               at INTEGER NOT NULL
             ) STRICT;
             CREATE INDEX IF NOT EXISTS agent_events_agent ON agent_events(agent_id, seq);
             -- revocations (see revocation.rs)
             CREATE TABLE IF NOT EXISTS revoked_tokens (
               jti TEXT PRIMARY KEY,
               expires_at INTEGER NOT NULL,
               revoked_at INTEGER NOT NULL,
               by TEXT NOT NULL,
               reason TEXT
             ) STRICT;
             CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens(expires_at);
             CREATE TABLE IF NOT EXISTS revoked_user_sessions (
               user_id TEXT NOT NULL,
               sid TEXT NOT NULL,
               revoked_at INTEGER NOT NULL,
               by TEXT NOT NULL,
               PRIMARY KEY (user_id, sid)
             ) STRICT, WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS used_assertions (
               jti TEXT PRIMARY KEY,
               expires_at INTEGER NOT NULL
             ) STRICT;
             CREATE INDEX IF NOT EXISTS used_assertions_expiry ON used_assertions(expires_at);
             -- MCP tool description pinning (see pins.rs)
             CREATE TABLE IF NOT EXISTS tool_pins (
               tool TEXT PRIMARY KEY,
               digest TEXT NOT NULL,
               definition TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pinned', 'changed', 'suspicious')),
               seen_digest TEXT NOT NULL,
               seen_definition TEXT NOT NULL,
               finding TEXT,
               pinned_at INTEGER NOT NULL,
               changed_at INTEGER,
               approved_by TEXT
             ) STRICT;
             -- tokens of an agent issued up to `before` are refused (quarantine)
             CREATE TABLE IF NOT EXISTS revoked_agents (
               agent_id TEXT PRIMARY KEY,
               before INTEGER NOT NULL,
               revoked_at INTEGER NOT NULL,
               by TEXT NOT NULL,
               reason TEXT
             ) STRICT;
             -- behaviour baselines and risk state (see risk.rs), one JSON document
             -- per agent, user or session
             CREATE TABLE IF NOT EXISTS behaviour (
               subject TEXT PRIMARY KEY,
               state TEXT NOT NULL,
               updated_at INTEGER NOT NULL
             ) STRICT;
             COMMIT;",
        )?;
        migrate(&conn)?;
        Ok(SessionStore {
            db: Mutex::new(conn),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            max_cached_per_shard: 100_000 / SHARDS,
        })
    }

    /// Bounds the cache (sessions beyond it are reloaded from SQLite when used).
    #[must_use]
    pub fn with_cache_capacity(mut self, sessions: usize) -> Self {
        self.max_cached_per_shard = (sessions / SHARDS).max(1);
        self
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        // INVARIANT: SHARDS > 0, so the index is in range.
        &self.shards[(self.hasher.hash_one(id) as usize) % SHARDS]
    }

    /// Locks a session for one request, loading it from SQLite if it is not cached.
    pub fn lock(&self, id: &SessionId) -> Result<SessionLock<'_>, StoreError> {
        let entry = {
            let mut shard = self.shard(id).lock();
            match shard.get(id) {
                Some(e) => Arc::clone(e),
                None => {
                    // Loaded under the shard lock so a stale copy can never be cached.
                    let loaded = Arc::new(Mutex::new(self.load(id)?));
                    if shard.len() >= self.max_cached_per_shard {
                        evict(&mut shard, self.max_cached_per_shard / 2);
                    }
                    shard.insert(id.clone(), Arc::clone(&loaded));
                    loaded
                }
            }
        };
        Ok(SessionLock {
            store: self,
            id: id.clone(),
            guard: entry.lock_arc(),
        })
    }

    fn load(&self, id: &SessionId) -> Result<Entry, StoreError> {
        let db = self.db();
        let row = db
            .prepare_cached(
                "SELECT user_id, agent_id, label, untrusted FROM sessions WHERE id = ?1",
            )?
            .query_row([id.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        let Some((user, agent, label, untrusted)) = row else {
            return Ok(Entry::default());
        };
        let corrupt = |what, value: String| StoreError::Corrupt {
            what,
            session: id.to_string(),
            value,
        };
        let confidentiality =
            Label::from_rank(label).ok_or_else(|| corrupt("label", label.to_string()))?;
        let mut categories = BTreeSet::new();
        let mut stmt =
            db.prepare_cached("SELECT category FROM session_categories WHERE session_id = ?1")?;
        for c in stmt.query_map([id.as_str()], |r| r.get::<_, String>(0))? {
            let c = c?;
            categories.insert(Category::new(&c).map_err(|_| corrupt("category", c.clone()))?);
        }
        let owner = SessionOwner {
            user: UserId::new(user.clone()).map_err(|_| corrupt("user", user))?,
            agent: match agent {
                Some(a) => Some(AgentId::new(a.clone()).map_err(|_| corrupt("agent", a))?),
                None => None,
            },
        };
        Ok(Entry {
            label: SessionLabel {
                confidentiality,
                categories,
                integrity: if untrusted != 0 {
                    Integrity::Untrusted
                } else {
                    Integrity::Trusted
                },
            },
            owner: Some(owner),
        })
    }

    /// The label of session `id`, or `None` if it was never written.
    pub fn label_of(&self, id: &SessionId) -> Result<Option<SessionLabel>, StoreError> {
        let s = self.lock(id)?;
        Ok(s.owner().map(|_| s.label().clone()))
    }

    /// Lowers session `id`'s label as `lowering` says (never raises any part
    /// of it), durably and in the cache, for a human who has decided so
    /// outside any request (the admin API checks who). Returns the label
    /// before and after, or `None` if the session was never written.
    pub fn lower_label(
        &self,
        id: &SessionId,
        lowering: &Lowering,
        now: i64,
    ) -> Result<Option<(SessionLabel, SessionLabel)>, StoreError> {
        let mut s = self.lock(id)?;
        if s.owner().is_none() {
            return Ok(None);
        }
        let before = s.label().clone();
        let after = lowering.apply(&before);
        if after != before {
            let mut db = self.db();
            let tx = db.transaction()?;
            tx.prepare_cached(
                "UPDATE sessions SET label = MIN(label, ?2), untrusted = MIN(untrusted, ?3), updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                id.as_str(),
                after.confidentiality.rank(),
                i64::from(after.integrity == Integrity::Untrusted),
                now,
            ])?;
            {
                let mut del = tx.prepare_cached(
                    "DELETE FROM session_categories WHERE session_id = ?1 AND category = ?2",
                )?;
                for c in before.categories.difference(&after.categories) {
                    del.execute(params![id.as_str(), c.as_str()])?;
                }
            }
            tx.commit()?;
            s.guard.label = after.clone();
        }
        Ok(Some((before, after)))
    }

    /// Number of sessions held in the cache.
    pub fn cached(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// Drops unused entries until at most `keep` remain. An entry in use (its `Arc`
/// is held by a request) is never dropped; SQLite holds every entry's state.
fn evict(shard: &mut HashMap<SessionId, Arc<Mutex<Entry>>>, keep: usize) {
    let mut excess = shard.len().saturating_sub(keep);
    shard.retain(|_, e| {
        if excess > 0 && Arc::strong_count(e) == 1 {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

/// What a human lowers a session's label by ([`SessionStore::lower_label`]):
/// each part only ever goes down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lowering {
    /// The confidentiality at most this afterwards.
    pub to: Option<Label>,
    /// The untrusted mark cleared: a human has judged that what the agent
    /// read carries no instructions it could still follow.
    pub trust: bool,
    /// Categories taken out of the label.
    pub drop: BTreeSet<Category>,
}

impl Lowering {
    /// Whether it lowers nothing at all, whatever the label.
    pub fn is_empty(&self) -> bool {
        self.to.is_none() && !self.trust && self.drop.is_empty()
    }

    /// `label` lowered.
    pub fn apply(&self, label: &SessionLabel) -> SessionLabel {
        SessionLabel {
            confidentiality: self
                .to
                .map_or(label.confidentiality, |to| label.confidentiality.min(to)),
            categories: label.categories.difference(&self.drop).cloned().collect(),
            integrity: if self.trust {
                Integrity::Trusted
            } else {
                label.integrity
            },
        }
    }
}

impl SessionLock<'_> {
    /// The session's current label.
    pub fn label(&self) -> &SessionLabel {
        &self.guard.label
    }

    /// Who the session belongs to, once it has been written.
    pub fn owner(&self) -> Option<&SessionOwner> {
        self.guard.owner.as_ref()
    }

    /// Lowers the session's confidentiality to `to` (never raises it) and uses
    /// up the granted declassification `approval`, in one transaction: the
    /// only way a label goes down. Fails, changing nothing, if the approval is
    /// not granted, is used or has expired. Returns the new label.
    ///
    /// `floor`, another session whose label this one's may not fall below (the
    /// flow session of its user and agent), is lowered to `to` in the same
    /// transaction: otherwise the declassification would change nothing. It is
    /// locked after this one, so it must never be a session whose holder
    /// locks another.
    pub fn declassify(
        &mut self,
        approval: &zt4ai_core::ApprovalId,
        to: Label,
        keep: Option<&BTreeSet<Category>>,
        now: i64,
        floor: Option<&SessionId>,
    ) -> Result<SessionLabel, crate::ApprovalError> {
        let mut lowered = self.guard.label.clone();
        lowered.confidentiality = lowered.confidentiality.min(to);
        if let Some(keep) = keep {
            lowered.categories.retain(|c| keep.contains(c));
        }
        // The floor is locked (and loaded) before the database is taken, and
        // its cached label changed before it is let go: a request on it waits
        // until the two agree.
        let mut floor_lock = match floor {
            Some(f) if f != &self.id => Some(self.store.lock(f)?),
            _ => None,
        };
        {
            let mut db = self.store.db();
            let tx = db.transaction().map_err(StoreError::Sqlite)?;
            let used = tx
                .prepare_cached(
                    "UPDATE approvals SET status = 'used', used_at = ?2
                     WHERE id = ?1 AND kind = 'declassification' AND status = 'granted' AND expires_at > ?2",
                )
                .and_then(|mut s| s.execute(params![approval.as_str(), now]))
                .map_err(StoreError::Sqlite)?;
            if used != 1 {
                return Err(crate::ApprovalError::NotGranted {
                    id: approval.to_string(),
                    status: "used or expired",
                });
            }
            // The categories dropped, from this session and the floor.
            let dropped: BTreeSet<&Category> = match keep {
                None => BTreeSet::new(),
                Some(keep) => self
                    .guard
                    .label
                    .categories
                    .iter()
                    .chain(
                        floor_lock
                            .iter()
                            .flat_map(|f| f.guard.label.categories.iter()),
                    )
                    .filter(|c| !keep.contains(*c))
                    .collect(),
            };
            for id in std::iter::once(&self.id).chain(floor) {
                tx.prepare_cached(
                    "UPDATE sessions SET label = MIN(label, ?2), updated_at = ?3 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), to.rank(), now]))
                .map_err(StoreError::Sqlite)?;
                for c in &dropped {
                    tx.prepare_cached(
                        "DELETE FROM session_categories WHERE session_id = ?1 AND category = ?2",
                    )
                    .and_then(|mut s| s.execute(params![id.as_str(), c.as_str()]))
                    .map_err(StoreError::Sqlite)?;
                }
            }
            tx.commit().map_err(StoreError::Sqlite)?;
        }
        if let Some(f) = &mut floor_lock {
            let l = &mut f.guard.label.confidentiality;
            *l = (*l).min(to);
            if let Some(keep) = keep {
                f.guard.label.categories.retain(|c| keep.contains(c));
            }
        }
        self.guard.label = lowered.clone();
        Ok(lowered)
    }

    /// Raises the label by `read` (join) and makes it durable before returning.
    /// Returns the new label. Does nothing (and writes nothing) if `read` adds nothing.
    pub fn absorb(
        &mut self,
        read: &SessionLabel,
        owner: &SessionOwner,
        now: i64,
    ) -> Result<SessionLabel, StoreError> {
        let joined = self.guard.label.join(read);
        if joined == self.guard.label && self.guard.owner.is_some() {
            return Ok(joined);
        }
        let owner = self.guard.owner.clone().unwrap_or_else(|| owner.clone());
        {
            let mut db = self.store.db();
            let tx = db.transaction()?;
            tx.prepare_cached(
                "INSERT INTO sessions (id, user_id, agent_id, label, untrusted, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT(id) DO UPDATE SET
                   label = MAX(label, excluded.label),
                   untrusted = MAX(untrusted, excluded.untrusted),
                   updated_at = excluded.updated_at",
            )?
            .execute(params![
                self.id.as_str(),
                owner.user.as_str(),
                owner.agent.as_ref().map(AgentId::as_str),
                joined.confidentiality.rank(),
                i64::from(joined.integrity == Integrity::Untrusted),
                now,
            ])?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO session_categories (session_id, category) VALUES (?1, ?2)",
                )?;
                for c in joined.categories.difference(&self.guard.label.categories) {
                    ins.execute(params![self.id.as_str(), c.as_str()])?;
                }
            }
            tx.commit()?;
        }
        self.guard.label = joined.clone();
        self.guard.owner = Some(owner);
        Ok(joined)
    }
}

#[cfg(test)]
mod tests;

//! Revocation records and replay protection.
//!
//! A token is revoked by its `jti` until it would have expired anyway; a user's
//! sessions are revoked one by one (`sid`) or all at once (`*`: every session issued
//! before the revocation); a quarantined agent's tokens are revoked all at once (every
//! token issued to it up to a cut-off). The server keeps all three in memory and
//! reloads them when [`SessionStore::data_version`] shows that another process (the
//! CLI) committed.
//!
//! Agents sign a fresh actor assertion per request; [`SessionStore::use_assertion`]
//! remembers each assertion's `jti` until it expires, so a captured assertion cannot
//! be replayed.

use rusqlite::{TransactionBehavior, params};

use crate::{SessionStore, StoreError};

/// The `sid` that stands for every session of a user issued before the revocation.
pub const ALL_SESSIONS: &str = "*";

impl SessionStore {
    /// Revokes a token until `expires_at` (its own expiry). Returns `false` if it was
    /// already revoked, in which case the first record is kept.
    pub fn revoke_token(
        &self,
        jti: &str,
        expires_at: i64,
        by: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .db()
            .prepare_cached(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at, by, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![jti, expires_at, now, by, reason])?;
        Ok(inserted == 1)
    }

    /// The revoked tokens that have not expired yet, by `jti`.
    pub fn revoked_tokens(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut stmt =
            db.prepare_cached("SELECT jti FROM revoked_tokens WHERE expires_at > ?1 ORDER BY jti")?;
        let rows = stmt.query_map([now], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Revokes one session of a user (`Some(sid)`) or every session issued before
    /// `now` (`None`, stored as [`ALL_SESSIONS`]). Revoking again keeps the latest
    /// time, so a later `*` also covers sessions issued in between.
    pub fn revoke_user_session(
        &self,
        user: &str,
        sid: Option<&str>,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db()
            .prepare_cached(
                "INSERT INTO revoked_user_sessions (user_id, sid, revoked_at, by)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(user_id, sid) DO UPDATE SET
                   revoked_at = MAX(revoked_at, excluded.revoked_at),
                   by = CASE WHEN excluded.revoked_at >= revoked_at THEN excluded.by ELSE by END",
            )?
            .execute(params![user, sid.unwrap_or(ALL_SESSIONS), now, by])?;
        Ok(())
    }

    /// Every user-session revocation as `(user, sid, revoked_at)`, by user and sid;
    /// `sid` is [`ALL_SESSIONS`] for "every session issued before `revoked_at`".
    pub fn revoked_user_sessions(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT user_id, sid, revoked_at FROM revoked_user_sessions ORDER BY user_id, sid",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Revokes every token issued to `agent` at or before `before` (seconds): the
    /// quarantine cut-off, so that resuming the agent later does not revive tokens
    /// it held when it was quarantined. Revoking again keeps the latest cut-off; an
    /// earlier one (a late writer) never moves it back, and the `by`, `reason` and
    /// `revoked_at` of the record that set the cut-off are kept with it.
    pub fn revoke_agent_tokens(
        &self,
        agent: &str,
        before: i64,
        by: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db()
            .prepare_cached(
                "INSERT INTO revoked_agents (agent_id, before, revoked_at, by, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(agent_id) DO UPDATE SET
                   revoked_at = CASE WHEN excluded.before >= before
                                THEN excluded.revoked_at ELSE revoked_at END,
                   by = CASE WHEN excluded.before >= before THEN excluded.by ELSE by END,
                   reason = CASE WHEN excluded.before >= before
                            THEN excluded.reason ELSE reason END,
                   before = MAX(before, excluded.before)",
            )?
            .execute(params![agent, before, now, by, reason])?;
        Ok(())
    }

    /// Every agent token revocation as `(agent, before)`, by agent: tokens of the
    /// agent issued at or before `before` are refused.
    pub fn revoked_agents(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let db = self.db();
        let mut stmt =
            db.prepare_cached("SELECT agent_id, before FROM revoked_agents ORDER BY agent_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records the use of an actor assertion. Returns `true` on its first use and
    /// `false` if the same `jti` was used before and has not expired (a replay).
    /// Expired records are deleted on the way. The caller must refuse assertions
    /// that have already expired: their `jti` is not remembered.
    pub fn use_assertion(&self, jti: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM used_assertions WHERE expires_at <= ?1")?
            .execute([now])?;
        let inserted = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO used_assertions (jti, expires_at) VALUES (?1, ?2)",
            )?
            .execute(params![jti, expires_at])?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    /// Deletes expired token revocations and assertion records; returns how many.
    pub fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tokens = tx
            .prepare_cached("DELETE FROM revoked_tokens WHERE expires_at <= ?1")?
            .execute([now])?;
        let assertions = tx
            .prepare_cached("DELETE FROM used_assertions WHERE expires_at <= ?1")?
            .execute([now])?;
        tx.commit()?;
        Ok(tokens + assertions)
    }

    /// SQLite's `data_version` for this store's connection: it changes when another
    /// connection (another process, such as the CLI) commits, and not for this
    /// store's own writes. Cheap enough to poll before deciding to reload.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .db()
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests;

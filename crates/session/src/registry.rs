//! The agent registry: which agents exist, who owns them, their lifecycle state
//! and the credentials they authenticate with.
//!
//! The inventory file seeds the registry the first time an agent is seen
//! ([`SessionStore::seed_agent`]); after that the registry is authoritative, so a
//! suspension made with the CLI survives a restart with an unchanged inventory.
//! Every change is recorded in an append-only event log ([`AgentEvent`]) in the same
//! transaction as the change itself: there is never a state without its event.
//!
//! Lifecycle: `active` ⇄ `suspended`, and either → `retired`. Retirement is final.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use zt4ai_core::inventory::AgentState;
use zt4ai_core::{AgentId, IdError};

use crate::{SessionStore, StoreError};

/// An agent as the registry holds it. Its secret hash is never exposed here, only
/// whether it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredAgent {
    /// Agent id.
    pub id: String,
    /// The user accountable for the agent.
    pub owner: String,
    /// What the agent is for.
    pub purpose: String,
    /// Lifecycle state (serialised as `active`, `suspended` or `retired`).
    pub state: AgentState,
    /// The JSON Web Key the agent signs its actor assertions with.
    pub public_jwk: Option<String>,
    /// Whether the agent has a client secret (development fallback).
    pub has_secret: bool,
    /// Registered (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

/// One entry of an agent's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentEvent {
    /// Position in the log (increases across all agents).
    pub seq: i64,
    /// Agent id.
    pub agent: String,
    /// `registered`, `suspended`, `resumed`, `retired` or `credentials`.
    pub event: String,
    /// Who made the change.
    pub by: String,
    /// Why, if given.
    pub reason: Option<String>,
    /// When (Unix seconds).
    pub at: i64,
}

/// What registering an agent records.
#[derive(Debug, Clone, Copy)]
pub struct NewAgent<'a> {
    /// Agent id.
    pub id: &'a str,
    /// The user accountable for the agent. Required.
    pub owner: &'a str,
    /// What the agent is for.
    pub purpose: &'a str,
    /// The JSON Web Key the agent signs its actor assertions with.
    pub public_jwk: Option<&'a str>,
    /// Hex SHA-256 of the agent's client secret (development fallback).
    pub secret_hash: Option<&'a str>,
    /// Who registers it.
    pub by: &'a str,
    /// Now (Unix seconds).
    pub now: i64,
}

/// Why a registry operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The owner is empty or blank.
    #[error("an agent must have an owner")]
    EmptyOwner,
    /// The id cannot name an agent.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// An agent with this id exists already.
    #[error("agent `{0}` is already registered")]
    AlreadyRegistered(String),
    /// No agent has this id.
    #[error("no agent `{0}`")]
    NotFound(String),
    /// The agent is retired and cannot change any more.
    #[error("agent `{0}` is retired; retirement is final")]
    Retired(String),
    /// The agent is already in the requested state.
    #[error("agent `{id}` cannot go from {} to {}", .from.as_str(), .to.as_str())]
    InvalidTransition {
        /// Agent id.
        id: String,
        /// Its current state.
        from: AgentState,
        /// The state asked for.
        to: AgentState,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        RegistryError::Store(StoreError::Sqlite(e))
    }
}

/// Parses a state name as stored (`active`, `suspended`, `retired`).
fn parse_state(s: &str) -> Option<AgentState> {
    Some(match s {
        "active" => AgentState::Active,
        "suspended" => AgentState::Suspended,
        "retired" => AgentState::Retired,
        _ => return None,
    })
}

/// A `state` column; an unknown value is a conversion error, hence a store error.
struct StateColumn(AgentState);

impl FromSql for StateColumn {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        parse_state(s)
            .map(StateColumn)
            .ok_or_else(|| FromSqlError::Other(format!("invalid agent state `{s}`").into()))
    }
}

const SELECT_AGENT: &str =
    "SELECT id, owner, purpose, state, public_jwk, secret_hash IS NOT NULL, created_at, updated_at
     FROM agents WHERE id = ?1";

fn row_to_agent(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegisteredAgent> {
    Ok(RegisteredAgent {
        id: r.get(0)?,
        owner: r.get(1)?,
        purpose: r.get(2)?,
        state: r.get::<_, StateColumn>(3)?.0,
        public_jwk: r.get(4)?,
        has_secret: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn load_agent(conn: &Connection, id: &str) -> Result<Option<RegisteredAgent>, StoreError> {
    Ok(conn
        .prepare_cached(SELECT_AGENT)?
        .query_row([id], row_to_agent)
        .optional()?)
}

fn record_event(
    conn: &Connection,
    id: &str,
    event: &str,
    by: &str,
    reason: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agent_events (agent_id, event, by, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, event, by, reason, at])?;
    Ok(())
}

/// Inserts the agent unless its id exists; returns whether it inserted.
fn insert_agent(
    conn: &Connection,
    a: &NewAgent<'_>,
    state: AgentState,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO agents (id, owner, purpose, state, public_jwk, secret_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT(id) DO NOTHING",
        )?
        .execute(params![
            a.id,
            a.owner,
            a.purpose,
            state.as_str(),
            a.public_jwk,
            a.secret_hash,
            a.now,
        ])?;
    Ok(inserted == 1)
}

fn check_new(id: &str, owner: &str) -> Result<(), RegistryError> {
    AgentId::new(id)?;
    if owner.trim().is_empty() {
        return Err(RegistryError::EmptyOwner);
    }
    Ok(())
}

fn set_or_cleared(v: Option<&str>) -> &'static str {
    if v.is_some() { "set" } else { "cleared" }
}

impl SessionStore {
    /// Registers a new, active agent and records who registered it. Refuses an
    /// agent without an owner and an id that is already registered (whatever its
    /// state: a retired id is never reused).
    pub fn register_agent(&self, a: &NewAgent<'_>) -> Result<RegisteredAgent, RegistryError> {
        check_new(a.id, a.owner)?;
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !insert_agent(&tx, a, AgentState::Active)? {
            return Err(RegistryError::AlreadyRegistered(a.id.to_owned()));
        }
        record_event(&tx, a.id, "registered", a.by, None, a.now)?;
        let agent =
            load_agent(&tx, a.id)?.ok_or_else(|| RegistryError::NotFound(a.id.to_owned()))?;
        tx.commit()?;
        Ok(agent)
    }

    /// Adds an agent from the inventory if the registry does not know it yet, in
    /// the inventory's state; returns whether it was added. An agent the registry
    /// knows is never changed: after the first seeding the registry's state wins.
    pub fn seed_agent(
        &self,
        id: &str,
        owner: &str,
        purpose: &str,
        state: AgentState,
        now: i64,
    ) -> Result<bool, RegistryError> {
        check_new(id, owner)?;
        let new = NewAgent {
            id,
            owner,
            purpose,
            public_jwk: None,
            secret_hash: None,
            by: "inventory",
            now,
        };
        let reason = (state != AgentState::Active).then(|| format!("seeded as {}", state.as_str()));
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !insert_agent(&tx, &new, state)? {
            return Ok(false);
        }
        record_event(&tx, id, "registered", new.by, reason.as_deref(), now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Reads one agent.
    pub fn agent(&self, id: &str) -> Result<RegisteredAgent, RegistryError> {
        load_agent(&self.db(), id)?.ok_or_else(|| RegistryError::NotFound(id.to_owned()))
    }

    /// Every registered agent, by id.
    pub fn agents(&self) -> Result<Vec<RegisteredAgent>, RegistryError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, owner, purpose, state, public_jwk, secret_hash IS NOT NULL, created_at, updated_at
             FROM agents ORDER BY id",
        )?;
        let rows = stmt.query_map([], row_to_agent)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Moves an agent through its lifecycle: `active` → `suspended` (event
    /// `suspended`), `suspended` → `active` (`resumed`), either → `retired`
    /// (`retired`). A retired agent cannot change; asking for the current state is
    /// an error, so a second suspension is not silently recorded.
    pub fn set_agent_state(
        &self,
        id: &str,
        to: AgentState,
        by: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<RegisteredAgent, RegistryError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from = load_agent(&tx, id)?
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?
            .state;
        let event = match (from, to) {
            (AgentState::Retired, _) => return Err(RegistryError::Retired(id.to_owned())),
            (AgentState::Active, AgentState::Suspended) => "suspended",
            (AgentState::Suspended, AgentState::Active) => "resumed",
            (AgentState::Active | AgentState::Suspended, AgentState::Retired) => "retired",
            (AgentState::Active, AgentState::Active)
            | (AgentState::Suspended, AgentState::Suspended) => {
                return Err(RegistryError::InvalidTransition {
                    id: id.to_owned(),
                    from,
                    to,
                });
            }
        };
        tx.prepare_cached("UPDATE agents SET state = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, to.as_str(), now])?;
        record_event(&tx, id, event, by, reason, now)?;
        let agent = load_agent(&tx, id)?.ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
        tx.commit()?;
        Ok(agent)
    }

    /// Replaces an agent's credentials (both: `None` clears one) and records who did
    /// it. A retired agent's credentials cannot change.
    pub fn set_agent_credentials(
        &self,
        id: &str,
        public_jwk: Option<&str>,
        secret_hash: Option<&str>,
        by: &str,
        now: i64,
    ) -> Result<RegisteredAgent, RegistryError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = load_agent(&tx, id)?.ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
        if current.state == AgentState::Retired {
            return Err(RegistryError::Retired(id.to_owned()));
        }
        tx.prepare_cached(
            "UPDATE agents SET public_jwk = ?2, secret_hash = ?3, updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![id, public_jwk, secret_hash, now])?;
        // The log says what changed, never the values.
        let reason = format!(
            "public key {}, secret {}",
            set_or_cleared(public_jwk),
            set_or_cleared(secret_hash)
        );
        record_event(&tx, id, "credentials", by, Some(&reason), now)?;
        let agent = load_agent(&tx, id)?.ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
        tx.commit()?;
        Ok(agent)
    }

    /// The hex SHA-256 of an agent's client secret, if it has one.
    pub fn agent_secret_hash(&self, id: &str) -> Result<Option<String>, RegistryError> {
        let row: Option<Option<String>> = self
            .db()
            .prepare_cached("SELECT secret_hash FROM agents WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        row.ok_or_else(|| RegistryError::NotFound(id.to_owned()))
    }

    /// An agent's audit log, oldest first.
    pub fn agent_events(&self, id: &str) -> Result<Vec<AgentEvent>, RegistryError> {
        let db = self.db();
        let known = db
            .prepare_cached("SELECT 1 FROM agents WHERE id = ?1")?
            .exists([id])?;
        if !known {
            return Err(RegistryError::NotFound(id.to_owned()));
        }
        let mut stmt = db.prepare_cached(
            "SELECT seq, agent_id, event, by, reason, at FROM agent_events
             WHERE agent_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(AgentEvent {
                seq: r.get(0)?,
                agent: r.get(1)?,
                event: r.get(2)?,
                by: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every agent's state, by id: what an in-memory cache of the registry reloads.
    pub fn agent_states(&self) -> Result<Vec<(String, AgentState)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT id, state FROM agents ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, StateColumn>(1)?.0))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests;

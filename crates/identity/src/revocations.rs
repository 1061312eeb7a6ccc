//! What has been revoked, held in memory and re-read from the store at most once a
//! second: the kill switch takes effect on the next request after at most a second,
//! at every enforcement point, without a database query per request.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use zt4ai_core::inventory::AgentState;
use zt4ai_session::{SessionStore, StoreError};

/// How stale the in-memory view may be.
pub const MAX_STALENESS: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Revoked {
    tokens: HashSet<String>,
    agents: HashMap<String, AgentState>,
    /// (user, sid or `*`) → revoked at.
    users: HashMap<(String, String), i64>,
    /// agent → tokens issued to it at or before this time are revoked (quarantine).
    agents_before: HashMap<String, i64>,
}

/// The in-memory view of revocations and agent states.
#[derive(Debug)]
pub struct Revocations {
    view: RwLock<Revoked>,
    checked: Mutex<Option<(Instant, i64)>>,
}

impl Revocations {
    /// An empty view; call [`Self::refresh`] before use.
    pub fn new() -> Self {
        Revocations {
            view: RwLock::new(Revoked::default()),
            checked: Mutex::new(None),
        }
    }

    /// Re-reads from the store if the view is older than [`MAX_STALENESS`] and the
    /// database changed, or at once if `force`.
    pub fn refresh(&self, store: &SessionStore, now: i64, force: bool) -> Result<(), StoreError> {
        let mut checked = self.checked.lock();
        if !force && checked.is_some_and(|(at, _)| at.elapsed() < MAX_STALENESS) {
            return Ok(());
        }
        let version = store.data_version()?;
        if !force && checked.is_some_and(|(_, v)| v == version) {
            *checked = Some((Instant::now(), version));
            return Ok(());
        }
        let tokens = store.revoked_tokens(now)?.into_iter().collect();
        let agents = store
            .agent_states()?
            .into_iter()
            .collect::<HashMap<String, AgentState>>();
        let users = store
            .revoked_user_sessions()?
            .into_iter()
            .map(|(u, s, at)| ((u, s), at))
            .collect();
        let agents_before = store.revoked_agents()?.into_iter().collect();
        *self.view.write() = Revoked {
            tokens,
            agents,
            users,
            agents_before,
        };
        *checked = Some((Instant::now(), version));
        Ok(())
    }

    /// Forces a re-read on the next [`Self::refresh`] (after a change made in
    /// this process, which `data_version` does not see).
    pub fn invalidate(&self) {
        *self.checked.lock() = None;
    }

    /// Whether a token id is revoked.
    pub fn token_revoked(&self, jti: &str) -> bool {
        self.view.read().tokens.contains(jti)
    }

    /// The registry's state of an agent; `None` if it is not registered.
    pub fn agent_state(&self, agent: &str) -> Option<AgentState> {
        self.view.read().agents.get(agent).copied()
    }

    /// Whether tokens of `agent` issued at `issued_at` (seconds) are revoked: true
    /// when the agent was quarantined at or after that time. Resuming the agent does
    /// not lift this; only tokens issued after the cut-off are accepted again.
    pub fn agent_tokens_revoked(&self, agent: &str, issued_at: i64) -> bool {
        self.view
            .read()
            .agents_before
            .get(agent)
            .is_some_and(|&before| issued_at <= before)
    }

    /// Whether the user's session `sid`, authenticated at `auth_time`, is revoked.
    pub fn user_session_revoked(&self, user: &str, sid: Option<&str>, auth_time: i64) -> bool {
        let v = self.view.read();
        let at = |s: &str| v.users.get(&(user.to_owned(), s.to_owned())).copied();
        at("*").is_some_and(|t| auth_time <= t) || sid.and_then(at).is_some()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

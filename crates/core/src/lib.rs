//! zt4ai's domain model, with no I/O.
//!
//! Everything the decision pipeline reasons about is defined here as plain data:
//! confidentiality and integrity [labels](label), the [inventory] that describes an
//! AI deployment (users, agents, tools, datasets, models, destinations), the
//! [`ActionRequest`] that every enforcement point produces from its own protocol,
//! and the [`Verdict`] it gets back. Keeping these types free of storage, sockets
//! and clocks is what lets the policy engine and the session store be tested and
//! benchmarked on their own, and lets each enforcement point stay a thin adapter.

pub mod ids;
pub mod inventory;
pub mod label;
pub mod request;
pub mod scope;
pub mod verdict;

pub use ids::{AgentId, ApprovalId, IdError, SessionId, UserId};
pub use inventory::{ConfigError, Inventory, LoadError, McpServer, McpTransport};
pub use label::{Category, Integrity, Label, SessionLabel};
pub use request::{Action, ActionRequest, ActorChain, Finding, RequestError};
pub use scope::{Scope, ScopeKind};
pub use verdict::{Decision, Obligation, Reason, Verdict};

/// Seconds since the Unix epoch, as zt4ai stores and compares times (0 if the
/// clock is before 1970, saturating far in the future).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

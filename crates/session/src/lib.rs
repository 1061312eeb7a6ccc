//! Session state: what each session has read, and the human approvals it holds.
//!
//! This crate is step 2 ("contextualise") and step 7 ("absorb") of the pipeline.
//! A session's [`SessionLabel`] is the high-water mark of everything it has read;
//! it only rises. The embedded store keeps it in SQLite (durable across restarts)
//! with an in-memory cache in front, and serialises requests on one session so a
//! decision always sees the label left by the request before it and no update is
//! ever lost.
//!
//! The SQL itself is monotone (`MAX` on the label, insert-only categories), so the
//! stored label can never be lowered by a late or concurrent writer.
//!
//! The embedded store assumes one serving process per database file: its cache is
//! not invalidated by other processes. Approvals are always read from the database,
//! so the CLI can grant them while the server runs.
//!
//! The same database holds the agent registry and revocations. The registry
//! ([`RegisteredAgent`]) is seeded from the inventory and is authoritative after
//! that: suspending, resuming and retiring an agent, or changing its credentials,
//! is one transaction with its audit event ([`AgentEvent`]), and retirement is
//! final. Revocations cover tokens (by `jti`, until they expire) and user sessions
//! (one `sid`, or every session issued before a time); used actor assertions are
//! remembered until they expire, against replay. The server keeps revocations in
//! memory and reloads them when [`SessionStore::data_version`] shows that another
//! process committed.

mod approvals;
mod pins;
mod registry;
mod revocation;
pub mod risk;
mod store;

pub use approvals::{Approval, ApprovalError, ApprovalKind, ApprovalStatus, Approver, NewApproval};
pub use pins::{PinError, PinStatus, ToolPin};
pub use registry::{AgentEvent, NewAgent, RegisteredAgent, RegistryError};
pub use revocation::ALL_SESSIONS;
pub use store::{Lowering, SessionLock, SessionOwner, SessionStore, StoreError};
pub use zt4ai_core::inventory::AgentState;

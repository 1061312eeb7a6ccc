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

mod approvals;
mod store;

pub use approvals::{Approval, ApprovalError, ApprovalStatus, NewApproval};
pub use store::{SessionLock, SessionOwner, SessionStore, StoreError};

//! MCP tool description pinning.
//!
//! The first definition (description, input schema, annotations) the gateway sees
//! for a tool is pinned by its digest. A later, different definition is a "rug
//! pull": the tool is `changed` and blocked until an admin approves the new
//! definition, which then becomes the pin. A definition that a detector flags as
//! carrying hidden instructions is `suspicious` and blocked the same way from the
//! start. Once blocked, a tool stays blocked even if the upstream reverts: the
//! attempt itself is the finding.

use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use serde::Serialize;

use crate::{SessionStore, StoreError};

/// Where a tool's pin stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinStatus {
    /// The definition seen is the pinned one: the tool may be used.
    Pinned,
    /// The definition changed after it was pinned: blocked until approved.
    Changed,
    /// The definition was flagged by a detector: blocked until approved.
    Suspicious,
}

impl PinStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PinStatus::Pinned => "pinned",
            PinStatus::Changed => "changed",
            PinStatus::Suspicious => "suspicious",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pinned" => Some(PinStatus::Pinned),
            "changed" => Some(PinStatus::Changed),
            "suspicious" => Some(PinStatus::Suspicious),
            _ => None,
        }
    }

    /// Whether the tool may be listed and called.
    pub fn usable(self) -> bool {
        self == PinStatus::Pinned
    }
}

/// A tool's pin record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolPin {
    /// The inventory's tool id (`server.tool`).
    pub tool: String,
    /// Where it stands.
    pub status: PinStatus,
    /// Digest of the pinned definition.
    pub digest: String,
    /// The pinned definition (JSON).
    pub definition: String,
    /// Digest of the definition seen last.
    pub seen_digest: String,
    /// The definition seen last (JSON): what an admin approves.
    pub seen_definition: String,
    /// Why the tool is blocked, if it is.
    pub finding: Option<String>,
    /// When the current pin was set (unix seconds).
    pub pinned_at: i64,
    /// When the definition last changed or was flagged.
    pub changed_at: Option<i64>,
    /// Who approved the current pin, if an admin did.
    pub approved_by: Option<String>,
}

/// Why a pin cannot be approved.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The gateway has never seen this tool.
    #[error("no pinned tool `{0}`")]
    NotFound(String),
    /// The definition changed again since the admin looked at it.
    #[error(
        "tool `{tool}` now has definition {seen}, not {expected}: review the current definition and approve again"
    )]
    Stale {
        /// The tool.
        tool: String,
        /// The digest the admin approved.
        expected: String,
        /// The digest seen now.
        seen: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PinError {
    fn from(e: rusqlite::Error) -> Self {
        PinError::Store(StoreError::Sqlite(e))
    }
}

const COLUMNS: &str = "tool, status, digest, definition, seen_digest, seen_definition, finding, pinned_at, changed_at, approved_by";

fn row_to_pin(r: &rusqlite::Row<'_>) -> rusqlite::Result<ToolPin> {
    let status: String = r.get(1)?;
    Ok(ToolPin {
        tool: r.get(0)?,
        // The CHECK constraint admits only the three names.
        status: PinStatus::parse(&status).unwrap_or(PinStatus::Suspicious),
        digest: r.get(2)?,
        definition: r.get(3)?,
        seen_digest: r.get(4)?,
        seen_definition: r.get(5)?,
        finding: r.get(6)?,
        pinned_at: r.get(7)?,
        changed_at: r.get(8)?,
        approved_by: r.get(9)?,
    })
}

/// One tool's pin, read on `conn` (a connection or an open transaction).
fn read_pin(conn: &rusqlite::Connection, tool: &str) -> rusqlite::Result<Option<ToolPin>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tool_pins WHERE tool = ?1"))?
        .query_row([tool], row_to_pin)
        .optional()
}

impl SessionStore {
    /// Records that the gateway saw `tool` with this definition and returns where
    /// its pin stands. A first sighting pins it (or marks it suspicious when
    /// `flagged` says why); a different definition later marks it changed.
    pub fn observe_tool(
        &self,
        tool: &str,
        digest: &str,
        definition: &str,
        flagged: Option<&str>,
        now: i64,
    ) -> Result<ToolPin, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match read_pin(&tx, tool)? {
            None => {
                let status = if flagged.is_some() {
                    PinStatus::Suspicious
                } else {
                    PinStatus::Pinned
                };
                tx.prepare_cached(
                    "INSERT INTO tool_pins (tool, digest, definition, status, seen_digest, seen_definition, finding, pinned_at, changed_at)
                     VALUES (?1, ?2, ?3, ?4, ?2, ?3, ?5, ?6, CASE WHEN ?5 IS NULL THEN NULL ELSE ?6 END)",
                )?
                .execute(params![tool, digest, definition, status.as_str(), flagged, now])?;
            }
            Some(pin) if pin.seen_digest == digest => return Ok(pin),
            Some(pin) => {
                // A definition different from the last one seen. Differing from
                // the pin is a rug pull (even if it was blocked already); coming
                // back to the pin after a change stays blocked.
                let finding = if digest == pin.digest && pin.status == PinStatus::Pinned {
                    None
                } else {
                    Some(match flagged {
                        Some(why) => format!("definition changed since it was pinned; {why}"),
                        None => "definition changed since it was pinned".to_owned(),
                    })
                };
                let status = match (&finding, pin.status) {
                    (None, s) => s,
                    (Some(_), PinStatus::Suspicious) => PinStatus::Suspicious,
                    (Some(_), _) => PinStatus::Changed,
                };
                tx.prepare_cached(
                    "UPDATE tool_pins SET status = ?2, seen_digest = ?3, seen_definition = ?4,
                       finding = COALESCE(?5, finding), changed_at = ?6 WHERE tool = ?1",
                )?
                .execute(params![
                    tool,
                    status.as_str(),
                    digest,
                    definition,
                    finding,
                    now
                ])?;
            }
        }
        let pin = read_pin(&tx, tool)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        tx.commit()?;
        Ok(pin)
    }

    /// An admin accepts the definition seen last as the tool's pin, unblocking
    /// it. With `expected`, the approval holds only if that is still the
    /// definition seen (the one the admin reviewed).
    pub fn approve_tool(
        &self,
        tool: &str,
        expected: Option<&str>,
        by: &str,
        now: i64,
    ) -> Result<ToolPin, PinError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pin = read_pin(&tx, tool)?.ok_or_else(|| PinError::NotFound(tool.to_owned()))?;
        if let Some(expected) = expected
            && expected != pin.seen_digest
        {
            return Err(PinError::Stale {
                tool: tool.to_owned(),
                expected: expected.to_owned(),
                seen: pin.seen_digest,
            });
        }
        tx.prepare_cached(
            "UPDATE tool_pins SET status = 'pinned', digest = seen_digest, definition = seen_definition,
               finding = NULL, pinned_at = ?2, approved_by = ?3 WHERE tool = ?1",
        )?
        .execute(params![tool, now, by])?;
        let pin = read_pin(&tx, tool)?.ok_or_else(|| PinError::NotFound(tool.to_owned()))?;
        tx.commit()?;
        Ok(pin)
    }

    /// Every pinned tool, blocked ones first.
    pub fn tool_pins(&self) -> Result<Vec<ToolPin>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tool_pins ORDER BY status = 'pinned', tool"
        ))?;
        let rows = stmt.query_map([], row_to_pin)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One tool's pin, if the gateway has seen the tool.
    pub fn tool_pin(&self, tool: &str) -> Result<Option<ToolPin>, StoreError> {
        Ok(read_pin(&self.db(), tool)?)
    }
}

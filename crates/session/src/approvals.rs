//! Human approvals for `require_approval` verdicts.
//!
//! A `require_approval` verdict creates a pending approval that names the session,
//! the exact request (a canonical fingerprint of actor chain and action) and the
//! policies a grant would lift. A human grants or denies it out of band (`zt4ai
//! approvals grant`); the agent retries the same request with the approval id. The
//! grant is then used up: it lifts those policies once, for that request only, and
//! expires after the inventory's `approval_ttl_seconds`. An agent cannot approve
//! itself: approvals exist only in the store, never in the request.
//!
//! Approvals are of two kinds. An [`ApprovalKind::Action`] lifts named policies
//! for one request. An [`ApprovalKind::Declassification`] lowers the session's
//! label to `lower_to` so that one approved send may go out: the label is
//! lowered and the approval used up in one transaction.
//!
//! Separation of duties: the user the agent acts for can never grant a request
//! made on their behalf, and when the inventory names an approver group only
//! its members can decide at all ([`Approver`]).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use zt4ai_core::{ApprovalId, Label, Reason, SessionId};

use crate::{SessionStore, StoreError};

/// State of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a human.
    Pending,
    /// Granted; not yet used.
    Granted,
    /// Refused.
    Denied,
    /// Granted and used by a retried request.
    Used,
}

impl ApprovalStatus {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Granted => "granted",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Used => "used",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ApprovalStatus::Pending,
            "granted" => ApprovalStatus::Granted,
            "denied" => ApprovalStatus::Denied,
            "used" => ApprovalStatus::Used,
            _ => return None,
        })
    }
}

/// What an approval is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Lift named policies for one request.
    Action,
    /// Lower the session's label so one send may go out.
    Declassification,
}

impl ApprovalKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Action => "action",
            ApprovalKind::Declassification => "declassification",
        }
    }
}

/// A human deciding an approval, as proved by the caller (an IdP token at the
/// admin API; the operator's word at the CLI).
#[derive(Debug, Clone)]
pub struct Approver {
    /// The user id.
    pub user: String,
    /// Whether the user is in the inventory's approver group (`true` when the
    /// inventory names none).
    pub in_group: bool,
}

/// What a new approval request records.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// The session.
    pub session: SessionId,
    /// Hash (SHA-256, hex) of the canonical request it is for: actor chain,
    /// action, resource and arguments.
    pub fingerprint: String,
    /// Action or declassification.
    pub kind: ApprovalKind,
    /// The user the agent acts for (who may not grant it).
    pub requested_by: String,
    /// The actor chain, for the approver.
    pub chain: String,
    /// The action (`call_tool`, `send`, …).
    pub action: String,
    /// The resource (tool, dataset, target).
    pub resource: String,
    /// SHA-256 of the canonical arguments, when the request has any.
    pub arguments_sha256: Option<String>,
    /// For a declassification: the label the session is lowered to.
    pub lower_to: Option<Label>,
    /// One line for the approver: who wants to do what.
    pub summary: String,
    /// Policies a grant lifts.
    pub policies: Vec<String>,
    /// Why approval is needed.
    pub reasons: Vec<Reason>,
    /// Creation time (Unix seconds).
    pub now: i64,
    /// Lifetime in seconds.
    pub ttl: i64,
}

/// A stored approval.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Id.
    pub id: String,
    /// Action or declassification.
    pub kind: ApprovalKind,
    /// Session.
    pub session: String,
    /// The user the agent acts for.
    pub requested_by: String,
    /// The actor chain.
    pub chain: String,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// SHA-256 of the canonical arguments.
    pub arguments_sha256: Option<String>,
    /// For a declassification: the label the session is lowered to.
    pub lower_to: Option<Label>,
    /// Who wants to do what.
    pub summary: String,
    /// Policies a grant lifts.
    pub policies: Vec<String>,
    /// Why approval is needed.
    pub reasons: Vec<Reason>,
    /// State.
    pub status: ApprovalStatus,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Expires (Unix seconds).
    pub expires_at: i64,
    /// Who granted or denied it.
    pub decided_by: Option<String>,
    #[serde(skip)]
    fingerprint: String,
}

/// Why an approval cannot be used or decided.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No approval has this id.
    #[error("no approval `{0}`")]
    NotFound(String),
    /// It was not granted (pending, denied or already used).
    #[error("approval `{id}` is {status}, not granted")]
    NotGranted {
        /// Id.
        id: String,
        /// Its state.
        status: &'static str,
    },
    /// It is for another session or another request.
    #[error("approval `{0}` was granted for a different request")]
    Mismatch(String),
    /// It has expired.
    #[error("approval `{0}` has expired")]
    Expired(String),
    /// The approver is the user the request was made for.
    #[error(
        "approval `{id}` is for a request made on behalf of `{user}`, who cannot grant it (separation of duties)"
    )]
    SelfApproval {
        /// Id.
        id: String,
        /// The user.
        user: String,
    },
    /// The approver is not in the approver group.
    #[error("`{user}` is not in the approver group `{group}`")]
    NotApprover {
        /// The user.
        user: String,
        /// The group.
        group: String,
    },
    /// Only pending approvals can be decided.
    #[error("approval `{id}` is already {status}")]
    AlreadyDecided {
        /// Id.
        id: String,
        /// Its state.
        status: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ApprovalError {
    fn from(e: rusqlite::Error) -> Self {
        ApprovalError::Store(StoreError::Sqlite(e))
    }
}

fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt {
        what: "random source",
        session: String::new(),
        value: e.to_string(),
    })?;
    Ok(format!("apr_{}", zt4ai_core::hex(&bytes)))
}

impl Approval {
    /// Whether it can no longer be decided or used because its time is up
    /// (pending or granted past `expires_at`).
    pub fn expired(&self, now: i64) -> bool {
        matches!(
            self.status,
            ApprovalStatus::Pending | ApprovalStatus::Granted
        ) && now >= self.expires_at
    }

    /// Where it stands at `now`: its state, or `expired`.
    pub fn standing(&self, now: i64) -> &'static str {
        if self.expired(now) {
            "expired"
        } else {
            self.status.as_str()
        }
    }
}

/// The newest pending approval of a session for one request (its
/// fingerprint), of one kind, not expired at `?3`.
pub(crate) const PENDING_FOR_REQUEST: &str = "SELECT id FROM approvals WHERE session_id = ?1 AND fingerprint = ?2 AND kind = ?4 AND status = 'pending' AND expires_at > ?3 ORDER BY created_at DESC LIMIT 1";

impl SessionStore {
    /// Records a pending approval and returns its id. An agent that repeats the same
    /// request gets the same pending approval back, not a new one each time.
    pub fn create_approval(&self, a: &NewApproval) -> Result<ApprovalId, StoreError> {
        let existing: Option<String> = self
            .db()
            .prepare_cached(PENDING_FOR_REQUEST)?
            .query_row(
                params![a.session.as_str(), a.fingerprint, a.now, a.kind.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            return ApprovalId::new(id).map_err(|e| StoreError::Corrupt {
                what: "approval id",
                session: a.session.to_string(),
                value: e.to_string(),
            });
        }
        let id = new_id()?;
        let policies = serde_json::to_string(&a.policies).unwrap_or_else(|_| "[]".into());
        let reasons = serde_json::to_string(&a.reasons).unwrap_or_else(|_| "[]".into());
        self.db().prepare_cached(
            "INSERT INTO approvals (id, session_id, fingerprint, summary, policies, reasons, status, created_at, expires_at,
                                    kind, requested_by, chain, action, resource, arguments_sha256, lower_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            id, a.session.as_str(), a.fingerprint, a.summary, policies, reasons, a.now, a.now.saturating_add(a.ttl),
            a.kind.as_str(), a.requested_by, a.chain, a.action, a.resource, a.arguments_sha256,
            a.lower_to.map(Label::rank),
        ])?;
        ApprovalId::new(id.clone()).map_err(|e| StoreError::Corrupt {
            what: "approval id",
            session: a.session.to_string(),
            value: e.to_string(),
        })
    }

    /// Reads one approval.
    pub fn approval(&self, id: &str) -> Result<Approval, ApprovalError> {
        let db = self.db();
        let row = db
            .prepare_cached(
                "SELECT id, session_id, summary, policies, reasons, status, created_at, expires_at, decided_by, fingerprint,
                        kind, requested_by, chain, action, resource, arguments_sha256, lower_to
                 FROM approvals WHERE id = ?1",
            )?
            .query_row([id], row_to_approval)
            .optional()?;
        row.ok_or_else(|| ApprovalError::NotFound(id.to_owned()))
    }

    /// Approvals, newest first; only pending ones unless `all`.
    pub fn approvals(&self, all: bool) -> Result<Vec<Approval>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, session_id, summary, policies, reasons, status, created_at, expires_at, decided_by, fingerprint,
                        kind, requested_by, chain, action, resource, arguments_sha256, lower_to
             FROM approvals WHERE ?1 OR status = 'pending' ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([all], row_to_approval)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A human grants (`true`) or denies (`false`) a pending approval. Only a
    /// member of the approver group may decide (when the inventory names one),
    /// and never the user the request was made for may grant it.
    pub fn decide_approval(
        &self,
        id: &str,
        grant: bool,
        approver: &Approver,
        group: Option<&str>,
        now: i64,
    ) -> Result<Approval, ApprovalError> {
        let current = self.approval(id)?;
        if let Some(group) = group
            && !approver.in_group
        {
            return Err(ApprovalError::NotApprover {
                user: approver.user.clone(),
                group: group.to_owned(),
            });
        }
        if grant && approver.user == current.requested_by {
            return Err(ApprovalError::SelfApproval {
                id: id.to_owned(),
                user: approver.user.clone(),
            });
        }
        if current.status != ApprovalStatus::Pending {
            return Err(ApprovalError::AlreadyDecided {
                id: id.to_owned(),
                status: current.status.as_str(),
            });
        }
        if now >= current.expires_at {
            return Err(ApprovalError::Expired(id.to_owned()));
        }
        let by = approver.user.as_str();
        let status = if grant {
            ApprovalStatus::Granted
        } else {
            ApprovalStatus::Denied
        };
        let changed = self.db().prepare_cached(
            "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, status.as_str(), by, now])?;
        if changed == 0 {
            let again = self.approval(id)?;
            return Err(ApprovalError::AlreadyDecided {
                id: id.to_owned(),
                status: again.status.as_str(),
            });
        }
        self.approval(id)
    }

    /// Checks that a granted approval may be used for this session and request;
    /// returns it (the policies it lifts, or the label it lowers to). Does not
    /// use it up: see [`Self::use_approval`] and [`crate::SessionLock::declassify`].
    pub fn check_approval(
        &self,
        id: &ApprovalId,
        session: &SessionId,
        fingerprint: &str,
        now: i64,
    ) -> Result<Approval, ApprovalError> {
        let a = self.approval(id.as_str())?;
        if a.session != session.as_str() || a.fingerprint != fingerprint {
            return Err(ApprovalError::Mismatch(a.id));
        }
        if a.status != ApprovalStatus::Granted {
            return Err(ApprovalError::NotGranted {
                id: a.id,
                status: a.status.as_str(),
            });
        }
        if now >= a.expires_at {
            return Err(ApprovalError::Expired(a.id));
        }
        Ok(a)
    }

    /// Uses up a granted approval; fails if another request used it first.
    pub fn use_approval(&self, id: &ApprovalId, now: i64) -> Result<(), ApprovalError> {
        let changed = self.db().prepare_cached(
            "UPDATE approvals SET status = 'used', used_at = ?2 WHERE id = ?1 AND status = 'granted' AND expires_at > ?2",
        )?
        .execute(params![id.as_str(), now])?;
        if changed == 1 {
            Ok(())
        } else {
            Err(ApprovalError::NotGranted {
                id: id.to_string(),
                status: "used or expired",
            })
        }
    }
}

fn row_to_approval(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    let policies: String = r.get(3)?;
    let reasons: String = r.get(4)?;
    let status: String = r.get(5)?;
    let kind: String = r.get(10)?;
    let lower_to: Option<i64> = r.get(16)?;
    Ok(Approval {
        id: r.get(0)?,
        // An unknown kind reads as a declassification, which lifts no policy.
        kind: if kind == "action" {
            ApprovalKind::Action
        } else {
            ApprovalKind::Declassification
        },
        session: r.get(1)?,
        requested_by: r.get(11)?,
        chain: r.get(12)?,
        action: r.get(13)?,
        resource: r.get(14)?,
        arguments_sha256: r.get(15)?,
        lower_to: lower_to.and_then(Label::from_rank),
        summary: r.get(2)?,
        policies: serde_json::from_str(&policies).unwrap_or_default(),
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        status: ApprovalStatus::parse(&status).unwrap_or(ApprovalStatus::Denied),
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        decided_by: r.get(8)?,
        fingerprint: r.get(9)?,
    })
}

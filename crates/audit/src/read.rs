//! Reading the log: queries, full verification and inclusion proofs.
//!
//! A reader opens its own read-only connection, so it works beside a running
//! server (SQLite WAL gives it a consistent snapshot per statement batch).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use signed_note::{Note, StandardVerifier, Verifier as _, VerifierList};
use tlog_tiles::{Checkpoint, Hash, HashReader, RecordProof, record_hash, split_stored_hash_index};

use crate::tree::Edge;
use crate::{AuditError, Record, record};

/// A read-only view of the log.
pub struct AuditReader {
    conn: Connection,
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditReader").finish_non_exhaustive()
    }
}

/// Which records a query returns. Every field narrows; none set means all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records whose actor chain includes this agent (or whose lifecycle event
    /// concerns it).
    pub agent: Option<String>,
    /// Records of this user.
    pub user: Option<String>,
    /// Records of this session.
    pub session: Option<String>,
    /// `allow`, `deny` or `require_approval`.
    pub decision: Option<String>,
    /// Records that this policy or guard determined.
    pub policy: Option<String>,
    /// `decision` or `lifecycle`.
    pub kind: Option<String>,
    /// From this time (Unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Until this time (Unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// From this index (inclusive).
    pub from_index: Option<u64>,
    /// At most this many records (the newest when `newest` is set).
    pub limit: Option<u64>,
    /// Return the newest records (still listed oldest first).
    pub newest: bool,
}

/// A problem `verify` found: the first bad record when it can be named, and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{message}", .index.map(|i| format!("record {i}: ")).unwrap_or_default())]
pub struct Problem {
    /// The first record that is wrong, when the damage can be pinned to one.
    pub index: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// What a successful `verify` checked.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The log's origin.
    pub origin: String,
    /// Records checked (all of them).
    pub records: u64,
    /// Kept checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The signed head's tree size (equal to `records`).
    pub head_size: u64,
    /// The root hash at the head (base64).
    pub root: String,
    /// External checkpoints (`--against`) that the log extends.
    pub against: u64,
}

/// A self-contained proof that one record is in the log: the record, a signed
/// checkpoint, and the RFC 6962 audit path between them. Checkable offline with
/// only the verifier key ([`verify_proof`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The record's index.
    pub index: u64,
    /// The record, exactly as stored (its bytes are the Merkle leaf).
    pub record: String,
    /// The size of the tree the proof is against.
    pub tree_size: u64,
    /// The audit path, leaf to root, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) of a tree of `tree_size` records.
    pub checkpoint: String,
}

impl AuditReader {
    /// Opens the log in the SQLite file at `path`, read-only.
    pub fn open(path: &Path) -> Result<AuditReader, AuditError> {
        if !path.exists() {
            return Err(AuditError::NotFound(format!(
                "no audit log at `{}`",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let has: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'audit_head'",
            [],
            |r| r.get(0),
        )?;
        if !has {
            return Err(AuditError::NotFound(format!(
                "`{}` holds no audit log",
                path.display()
            )));
        }
        Ok(AuditReader { conn })
    }

    /// The signed head: the latest checkpoint, covering every record.
    pub fn head(&self) -> Result<String, AuditError> {
        self.conn
            .query_row("SELECT note FROM audit_head WHERE one = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| AuditError::NotFound("the audit log has no signed head".into()))
    }

    /// Record `index`.
    pub fn record(&self, index: u64) -> Result<Record, AuditError> {
        let body: Vec<u8> = self
            .conn
            .query_row(
                "SELECT body FROM audit_records WHERE idx = ?1",
                [sql_index(index)],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| AuditError::NotFound(format!("no audit record {index}")))?;
        parse(index, &body)
    }

    /// Records matching `filter`, oldest first; `each` is called per record and
    /// may stop the scan by returning `false`.
    pub fn query(
        &self,
        filter: &Filter,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        let mut sql = String::from("SELECT idx, body FROM audit_records WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        use rusqlite::types::Value::{Integer, Text};
        if let Some(a) = &filter.agent {
            add(" AND instr(agents, ?) > 0", Text(format!(" {a} ")));
        }
        if let Some(u) = &filter.user {
            add(" AND user_id = ?", Text(u.clone()));
        }
        if let Some(s) = &filter.session {
            add(" AND session = ?", Text(s.clone()));
        }
        if let Some(d) = &filter.decision {
            add(" AND decision = ?", Text(d.clone()));
        }
        if let Some(p) = &filter.policy {
            add(" AND instr(policies, ?) > 0", Text(format!(" {p} ")));
        }
        if let Some(k) = &filter.kind {
            add(" AND kind = ?", Text(k.clone()));
        }
        if let Some(t) = filter.since_ms {
            add(" AND time_ms >= ?", Integer(t));
        }
        if let Some(t) = filter.until_ms {
            add(" AND time_ms < ?", Integer(t));
        }
        if let Some(i) = filter.from_index {
            add(" AND idx >= ?", Integer(sql_index(i)));
        }
        let limit = filter.limit.map(sql_index).unwrap_or(-1);
        let sql = if filter.newest {
            format!("SELECT idx, body FROM ({sql} ORDER BY idx DESC LIMIT {limit}) ORDER BY idx")
        } else {
            format!("{sql} ORDER BY idx LIMIT {limit}")
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let index = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
            let body: Vec<u8> = row.get(1)?;
            if !each(parse(index, &body)?) {
                break;
            }
        }
        Ok(())
    }

    /// Recomputes the whole tree from the records and checks it against every
    /// kept checkpoint, the signed head, and any `against` checkpoints (saved
    /// elsewhere earlier): each signature with `verifier`, each root against the
    /// tree of that size. Every kept checkpoint is a prefix of the same
    /// sequence of leaves, which is what makes successive checkpoints
    /// consistent. Stops at the first problem.
    pub fn verify(
        &self,
        verifier: &StandardVerifier,
        against: &[String],
    ) -> Result<VerifyReport, Problem> {
        let sql = |e: rusqlite::Error| Problem {
            index: None,
            message: format!("cannot read the audit store: {e}"),
        };
        // One read transaction: the head, the checkpoints and the records are
        // read from one snapshot, so a writer committing meanwhile (a running
        // server) cannot make its new records look like an unsigned tail.
        // Dropped (rolled back) on return; nothing is written.
        let _snapshot = self.conn.unchecked_transaction().map_err(sql)?;
        let head_note = self.head().map_err(|e| Problem {
            index: None,
            message: e.to_string(),
        })?;
        let head = open_checkpoint(&head_note, verifier).map_err(|p| Problem {
            message: format!("signed head: {}", p.message),
            ..p
        })?;
        // Every checkpoint to hold the tree against, by size.
        let mut targets: Vec<(u64, Hash, String)> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT size, note FROM audit_checkpoints ORDER BY size")
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql)?;
            for row in rows {
                let (size, note) = row.map_err(sql)?;
                let cp = open_checkpoint(&note, verifier).map_err(|p| Problem {
                    message: format!("checkpoint at size {size}: {}", p.message),
                    ..p
                })?;
                if u64::try_from(size).ok() != Some(cp.size()) {
                    return Err(Problem {
                        index: None,
                        message: format!(
                            "checkpoint stored at size {size} is signed for size {}",
                            cp.size()
                        ),
                    });
                }
                targets.push((cp.size(), *cp.hash(), "kept checkpoint".into()));
            }
        }
        let kept = targets.len() as u64;
        for (i, note) in against.iter().enumerate() {
            let cp = open_checkpoint(note, verifier).map_err(|p| Problem {
                message: format!("external checkpoint {}: {}", i + 1, p.message),
                ..p
            })?;
            targets.push((
                cp.size(),
                *cp.hash(),
                format!("external checkpoint {}", i + 1),
            ));
        }
        targets.push((head.size(), *head.hash(), "signed head".into()));
        targets.sort_by_key(|t| t.0);

        let mut edge = Edge::default();
        let mut hashes = Vec::with_capacity(64 * 32);
        let mut next = targets.iter().peekable();
        let mut good_up_to = 0u64;
        let check = |edge: &Edge, good_up_to: u64, t: &(u64, Hash, String)| {
            if edge.root() == t.1 {
                Ok(())
            } else {
                Err(Problem {
                    index: (t.0 - good_up_to == 1).then_some(good_up_to),
                    message: format!(
                        "the first {} records do not match the {} at size {}: a record in {}..{} \
                         was edited, inserted, removed or reordered",
                        t.0, t.2, t.0, good_up_to, t.0
                    ),
                })
            }
        };
        while let Some(t) = next.next_if(|t| t.0 == 0) {
            check(&edge, 0, t)?;
        }
        let mut stmt = self
            .conn
            .prepare("SELECT idx, body, hashes FROM audit_records ORDER BY idx")
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let expected = edge.size();
            let index = row.get::<_, i64>(0).map_err(sql)?;
            if u64::try_from(index).ok() != Some(expected) {
                return Err(Problem {
                    index: Some(expected),
                    message: format!("missing (the next record present is {index})"),
                });
            }
            let body = row
                .get_ref(1)
                .map_err(sql)?
                .as_blob()
                .map_err(|e| sql(e.into()))?;
            if !body.starts_with(record::body_prefix(expected).as_bytes()) {
                return Err(Problem {
                    index: Some(expected),
                    message: "its content says it belongs at another position (moved or replaced)"
                        .into(),
                });
            }
            let stored = row
                .get_ref(2)
                .map_err(sql)?
                .as_blob()
                .map_err(|e| sql(e.into()))?;
            edge.append(body, &mut hashes);
            if stored != hashes.as_slice() {
                return Err(Problem {
                    index: Some(expected),
                    message: "its content does not match its stored tree hashes (edited)".into(),
                });
            }
            while let Some(t) = next.next_if(|t| t.0 == edge.size()) {
                check(&edge, good_up_to, t)?;
                good_up_to = t.0;
            }
        }
        let records = edge.size();
        if let Some(t) = next.next() {
            return Err(Problem {
                index: Some(records),
                message: format!(
                    "missing: the {} covers {} records but the log ends at {records} (truncated)",
                    t.2, t.0
                ),
            });
        }
        // The kept checkpoints, pairwise, by RFC 9162 consistency proofs read
        // from the (now checked) stored hashes: what an outside verifier holding
        // only two checkpoints would check.
        let mut signed: Vec<&(u64, Hash, String)> = targets
            .iter()
            .filter(|t| t.0 > 0 && t.0 <= records)
            .collect();
        signed.dedup_by_key(|t| t.0);
        for pair in signed.windows(2) {
            let (old, new) = (pair[0], pair[1]);
            let proof = tlog_tiles::prove_tree(new.0, old.0, &DbHashes(&self.conn));
            let ok =
                proof.is_ok_and(|p| tlog_tiles::check_tree(&p, new.0, new.1, old.0, old.1).is_ok());
            if !ok {
                return Err(Problem {
                    index: None,
                    message: format!(
                        "the {} at size {} is not consistent with the {} at size {}",
                        new.2, new.0, old.2, old.0
                    ),
                });
            }
        }
        if records > head.size() {
            return Err(Problem {
                index: Some(head.size()),
                message: format!(
                    "not covered by the signed head (size {}): records {}..{records} were added \
                     without the log's key",
                    head.size(),
                    head.size()
                ),
            });
        }
        Ok(VerifyReport {
            origin: head.origin().to_owned(),
            records,
            checkpoints: kept,
            head_size: head.size(),
            root: STANDARD.encode(head.hash().0),
            against: against.len() as u64,
        })
    }

    /// An inclusion proof of record `index` against the signed head.
    pub fn prove(&self, index: u64) -> Result<InclusionProof, AuditError> {
        let note = self.head()?;
        let size = note_size(&note)?;
        if index >= size {
            return Err(AuditError::NotFound(format!(
                "no audit record {index} (the log has {size})"
            )));
        }
        let body: Vec<u8> = self.conn.query_row(
            "SELECT body FROM audit_records WHERE idx = ?1",
            [sql_index(index)],
            |r| r.get(0),
        )?;
        let proof = tlog_tiles::prove_record(size, index, &DbHashes(&self.conn))
            .map_err(|e| AuditError::Inconsistent(format!("cannot build the proof: {e}")))?;
        Ok(InclusionProof {
            index,
            record: String::from_utf8(body)
                .map_err(|_| AuditError::Inconsistent(format!("record {index} is not UTF-8")))?,
            tree_size: size,
            proof: proof.iter().map(|h| STANDARD.encode(h.0)).collect(),
            checkpoint: note,
        })
    }
}

/// Checks `proof` with only the log's verifier key: the checkpoint's signature,
/// then the audit path from the record's leaf hash to the checkpoint's root.
/// Returns the record.
pub fn verify_proof(
    proof: &InclusionProof,
    verifier: &StandardVerifier,
) -> Result<Record, Problem> {
    let fail = |message: String| Problem {
        index: Some(proof.index),
        message,
    };
    let cp = open_checkpoint(&proof.checkpoint, verifier)?;
    if cp.size() != proof.tree_size {
        return Err(fail(format!(
            "the proof is for a tree of {} records but its checkpoint is for {}",
            proof.tree_size,
            cp.size()
        )));
    }
    let path: RecordProof = proof
        .proof
        .iter()
        .map(|h| {
            STANDARD
                .decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(Hash)
                .ok_or_else(|| fail(format!("`{h}` is not a base64 SHA-256 hash")))
        })
        .collect::<Result<_, _>>()?;
    tlog_tiles::check_record(
        &path,
        cp.size(),
        *cp.hash(),
        proof.index,
        record_hash(proof.record.as_bytes()),
    )
    .map_err(|e| fail(format!("the record is not in the signed tree: {e}")))?;
    parse(proof.index, proof.record.as_bytes()).map_err(|e| fail(e.to_string()))
}

/// Verifies a signed checkpoint note with `verifier` and parses it.
pub(crate) fn open_checkpoint(
    note: &str,
    verifier: &StandardVerifier,
) -> Result<Checkpoint, Problem> {
    let fail = |message: String| Problem {
        index: None,
        message,
    };
    let parsed =
        Note::from_bytes(note.as_bytes()).map_err(|e| fail(format!("not a signed note: {e}")))?;
    let list = VerifierList::new(vec![Box::new(verifier.clone())]);
    parsed
        .verify(&list)
        .map_err(|e| fail(format!("signature does not verify with the log's key: {e}")))?;
    let cp = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| fail(format!("not a checkpoint: {e}")))?;
    if cp.origin() != verifier.name() {
        return Err(fail(format!(
            "checkpoint of log `{}`, not `{}`",
            cp.origin(),
            verifier.name()
        )));
    }
    Ok(cp)
}

fn note_size(note: &str) -> Result<u64, AuditError> {
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| AuditError::Inconsistent("the signed head is not a checkpoint".into()))
}

fn parse(index: u64, body: &[u8]) -> Result<Record, AuditError> {
    serde_json::from_slice(body)
        .map_err(|e| AuditError::Inconsistent(format!("record {index} cannot be read: {e}")))
}

fn sql_index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Tree hashes read from the records they were stored with: hash `(level, k)`
/// was completed by record `(k + 1)·2^level − 1`, at position `level` of its
/// `hashes` column.
struct DbHashes<'a>(&'a Connection);

impl HashReader for DbHashes<'_> {
    // INVARIANT: one hash per index, or an error. tlog's provers assert on the
    // length; reading a missing or short row is an error, never a short list.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT hashes FROM audit_records WHERE idx = ?1")
            .map_err(|_| tlog_tiles::Error::IndexesNotInTree)?;
        indexes
            .iter()
            .map(|&i| {
                let (level, k) = split_stored_hash_index(i);
                let n = ((k + 1) << level) - 1;
                let blob: Vec<u8> = stmt
                    .query_row(params![sql_index(n)], |r| r.get(0))
                    .map_err(|_| tlog_tiles::Error::IndexesNotInTree)?;
                let at = usize::from(level) * 32;
                blob.get(at..at + 32)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(Hash)
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

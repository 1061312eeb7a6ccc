//! Checks on the audit log in the deployment's data directory.
//!
//! `zt4ai serve` keeps the log in the data directory's database
//! ([`DB_FILE`]), signs its checkpoints with [`KEY_FILE`] and writes the public
//! half beside it ([`VERIFIER_FILE`]). [`read`] looks at all of it once, before
//! the checks run: it verifies the log from its first record, checks the signed
//! head, and streams the decisions of the last `dormant_days` days into
//! per-agent counts (memory bounded by the number of agents, never by the
//! number of records). It never fails: what went wrong is kept in the facts, and
//! the checks report it.
//!
//! A key found in the data directory is only as trustworthy as the directory:
//! whoever can rewrite the log there can usually rewrite the key too. The checks
//! say so, and what an auditor should do about it: keep the verifier key and
//! the checkpoints (`zt4ai audit checkpoint`) where the server cannot write, and
//! verify against them (`zt4ai audit verify --key … --against …`).

use std::collections::BTreeMap;
use std::path::Path;

use zt4ai_audit::{AuditReader, Event, Filter};
use zt4ai_core::Decision;
use zt4ai_core::inventory::AgentState;

use super::{Check, Deployment, count};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "audit-log-present",
        about: "the data directory holds an audit log",
        run: log_present,
    },
    Check {
        id: "audit-log-verifies",
        about: "the audit log verifies from its first record: tree, records and every kept checkpoint",
        run: log_verifies,
    },
    Check {
        id: "audit-checkpoints-signed",
        about: "the signed head verifies with the log's verifier key",
        run: checkpoints_signed,
    },
    Check {
        id: "dormant-agents",
        about: "active agents have made requests recently",
        run: dormant_agents,
    },
    Check {
        id: "repeated-denials",
        about: "no agent is denied again and again",
        run: repeated_denials,
    },
];

/// The database file `zt4ai serve` keeps in its data directory (sessions,
/// registry and the audit log).
pub const DB_FILE: &str = "zt4ai.db";
/// The checkpoint signing key in the data directory.
pub const KEY_FILE: &str = "audit.key";
/// The verifier key `zt4ai serve` writes beside the signing key.
pub const VERIFIER_FILE: &str = "audit.key.pub";

/// An agent denied this often in the window is worth a look.
pub const DENIALS: u64 = 10;
/// Or one denied at least half the time, over at least this many requests.
pub const DENIAL_RATIO_MIN_REQUESTS: u64 = 10;

/// Records read per query while counting activity.
const PAGE: u64 = 10_000;
/// Most distinct agents counted; more are noted, not kept.
const MAX_AGENTS: usize = 100_000;
const DAY_MS: i64 = 86_400_000;

/// What the audit log says (read once, before the checks run).
#[derive(Debug, Clone, Default)]
pub struct AuditFacts {
    /// The audit database, as shown in evidence.
    pub database: String,
    /// Whether the log is there and opens.
    pub log: LogState,
    /// The verifier key the log was checked with.
    pub key: KeyFacts,
    /// The full verification: `None` when it could not be attempted (no log,
    /// no key), else what the verifier said.
    pub verified: Option<Result<Verified, String>>,
    /// The signed head: `None` when there is no log, else the head or why it
    /// cannot be read.
    pub head: Option<Result<Head, String>>,
    /// Decisions in the window, per agent: `None` when there is no log, else
    /// the counts or why they could not be read.
    pub activity: Option<Result<Activity, String>>,
}

/// Whether the log is there and opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogState {
    /// No database, or a database without an audit log.
    #[default]
    Missing,
    /// There, but it cannot be opened (the message says why).
    Unreadable(String),
    /// There and open.
    Present,
}

/// Where the verifier key came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeySource {
    /// No key in the data directory.
    #[default]
    None,
    /// The verifier key `zt4ai serve` writes ([`VERIFIER_FILE`]).
    VerifierFile,
    /// Derived from the signing key itself ([`KEY_FILE`]), the verifier key
    /// being absent: it checks that the log is consistent with the key the
    /// server signs with, and no more.
    SignerFile,
}

/// The verifier key the log was checked with.
#[derive(Debug, Clone, Default)]
pub struct KeyFacts {
    /// Where it came from.
    pub source: KeySource,
    /// The key (`<name>+<id>+<key>`), when one was found.
    pub verifier: Option<String>,
    /// Key files that are there but unusable, or that disagree.
    pub problems: Vec<String>,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The log's origin.
    pub origin: String,
    /// Records checked (all of them).
    pub records: u64,
    /// Kept checkpoints checked.
    pub checkpoints: u64,
    /// Root hash at the signed head (base64).
    pub root: String,
}

/// The signed head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The origin it names.
    pub origin: String,
    /// The tree size it signs.
    pub size: u64,
    /// Whether its signature verifies with the key (`None`: no key to check it with).
    pub signature: Option<Result<(), String>>,
}

/// Decisions in the window, per agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// The window, in days before `now`.
    pub window_days: u64,
    /// Its start (Unix ms).
    pub since_ms: i64,
    /// "Now" (Unix ms).
    pub now_ms: i64,
    /// Time of the log's oldest record (Unix ms), if it has any: when it is
    /// after `since_ms`, the log does not cover the whole window.
    pub oldest_ms: Option<i64>,
    /// Decisions in the window.
    pub decisions: u64,
    /// Per agent that appears in an actor chain.
    pub agents: BTreeMap<String, AgentActivity>,
    /// More than [`MAX_AGENTS`] distinct agents: the rest were not counted.
    pub truncated: bool,
}

/// One agent's decisions in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentActivity {
    /// Decisions whose actor chain includes the agent.
    pub requests: u64,
    /// Of which denied.
    pub denials: u64,
    /// The latest one (Unix ms).
    pub last_ms: i64,
}

impl AgentActivity {
    /// Whether this is the repeated-denials pattern: at least [`DENIALS`]
    /// denials, or at least half of at least [`DENIAL_RATIO_MIN_REQUESTS`].
    pub fn denied_repeatedly(&self) -> bool {
        self.denials >= DENIALS
            || (self.requests >= DENIAL_RATIO_MIN_REQUESTS
                && self.denials.saturating_mul(2) >= self.requests)
    }
}

/// Reads what the checks need from the log in `data_dir`: verification, the
/// signed head, and per-agent activity over the last `dormant_days` days before
/// `now` (Unix seconds). Never fails; problems are recorded in the facts.
pub fn read(data_dir: &Path, now: u64, dormant_days: u64) -> AuditFacts {
    let db = data_dir.join(DB_FILE);
    let mut facts = AuditFacts {
        database: db.display().to_string(),
        key: find_key(data_dir),
        ..AuditFacts::default()
    };
    if !db.exists() {
        return facts;
    }
    let reader = match AuditReader::open(&db) {
        Ok(r) => r,
        Err(zt4ai_audit::AuditError::NotFound(_)) => return facts,
        Err(e) => {
            facts.log = LogState::Unreadable(e.to_string());
            return facts;
        }
    };
    facts.log = LogState::Present;
    let verifier = facts
        .key
        .verifier
        .as_deref()
        .map(|k| zt4ai_audit::verifier(k).map_err(|e| e.to_string()));
    facts.head = Some(head(&reader, verifier.as_ref()));
    facts.verified = match &verifier {
        Some(Ok(v)) => Some(verify(&reader, v)),
        Some(Err(e)) => Some(Err(format!("the verifier key is unusable: {e}"))),
        None => None,
    };
    facts.activity = Some(activity(&reader, now, dormant_days));
    facts
}

/// The whole log, verified with `verifier` (from one snapshot, so a server
/// writing meanwhile does not disturb it).
fn verify(
    reader: &AuditReader,
    verifier: &signed_note::StandardVerifier,
) -> Result<Verified, String> {
    reader
        .verify(verifier, &[])
        .map(|r| Verified {
            origin: r.origin,
            records: r.records,
            checkpoints: r.checkpoints,
            root: r.root,
        })
        .map_err(|p| p.to_string())
}

/// The verifier key beside the log: the `.pub` file, else derived from the
/// signing key.
fn find_key(data_dir: &Path) -> KeyFacts {
    let mut facts = KeyFacts::default();
    let pub_path = data_dir.join(VERIFIER_FILE);
    let key_path = data_dir.join(KEY_FILE);
    let from_pub = match std::fs::read_to_string(&pub_path) {
        Ok(text) => match zt4ai_audit::verifier(&text) {
            Ok(_) => Some(text.trim().to_owned()),
            Err(e) => {
                facts
                    .problems
                    .push(format!("`{}`: {e}", pub_path.display()));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            facts
                .problems
                .push(format!("`{}`: {e}", pub_path.display()));
            None
        }
    };
    let from_signer = match std::fs::read_to_string(&key_path) {
        Ok(text) => match zt4ai_audit::LogKey::from_signer_key(text.trim()) {
            Ok(k) => Some(k.verifier_key().to_owned()),
            Err(e) => {
                facts
                    .problems
                    .push(format!("`{}`: {e}", key_path.display()));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            facts
                .problems
                .push(format!("`{}`: {e}", key_path.display()));
            None
        }
    };
    if let (Some(p), Some(s)) = (&from_pub, &from_signer)
        && p != s
    {
        facts.problems.push(format!(
            "`{}` is not the public half of `{}`: one of them was replaced",
            pub_path.display(),
            key_path.display()
        ));
    }
    match (from_pub, from_signer) {
        (Some(k), _) => {
            facts.source = KeySource::VerifierFile;
            facts.verifier = Some(k);
        }
        (None, Some(k)) => {
            facts.source = KeySource::SignerFile;
            facts.verifier = Some(k);
        }
        (None, None) => {}
    }
    facts
}

/// The signed head, and whether its signature verifies with `verifier`.
fn head(
    reader: &AuditReader,
    verifier: Option<&Result<signed_note::StandardVerifier, String>>,
) -> Result<Head, String> {
    let note = reader.head().map_err(|e| e.to_string())?;
    let mut lines = note.lines();
    let origin = lines.next().unwrap_or_default().to_owned();
    let size = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(|| "the signed head is not a checkpoint".to_owned())?;
    let signature = verifier.map(|v| match v {
        Ok(v) => check_signature(&note, v),
        Err(e) => Err(format!("the verifier key is unusable: {e}")),
    });
    Ok(Head {
        origin,
        size,
        signature,
    })
}

/// Whether a signed note carries a valid signature by `verifier`, for its origin.
fn check_signature(note: &str, verifier: &signed_note::StandardVerifier) -> Result<(), String> {
    use signed_note::Verifier as _;
    let name = verifier.name().to_owned();
    let parsed = signed_note::Note::from_bytes(note.as_bytes())
        .map_err(|e| format!("the signed head is not a signed note: {e}"))?;
    let list = signed_note::VerifierList::new(vec![Box::new(verifier.clone())]);
    parsed
        .verify(&list)
        .map_err(|e| format!("the signed head's signature does not verify with `{name}`: {e}"))?;
    let origin = String::from_utf8_lossy(parsed.text())
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if origin != name {
        return Err(format!(
            "the signed head is of log `{origin}`, not `{name}`"
        ));
    }
    Ok(())
}

/// Decisions of the last `days` days before `now`, per agent, read page by
/// page (each page one short query; one record in memory at a time).
fn activity(reader: &AuditReader, now: u64, days: u64) -> Result<Activity, String> {
    let now_ms = i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000);
    let span = i64::try_from(days)
        .unwrap_or(i64::MAX)
        .saturating_mul(DAY_MS);
    let mut a = Activity {
        window_days: days,
        since_ms: now_ms.saturating_sub(span),
        now_ms,
        ..Activity::default()
    };
    let oldest = Filter {
        limit: Some(1),
        ..Filter::default()
    };
    reader
        .query(&oldest, |r| {
            a.oldest_ms = Some(r.event.time_ms());
            false
        })
        .map_err(|e| e.to_string())?;
    let mut from = 0u64;
    loop {
        let page = Filter {
            kind: Some("decision".into()),
            since_ms: Some(a.since_ms),
            from_index: Some(from),
            limit: Some(PAGE),
            ..Filter::default()
        };
        let mut seen = 0u64;
        let mut last = None;
        reader
            .query(&page, |r| {
                seen += 1;
                last = Some(r.index);
                if let Event::Decision(d) = &r.event {
                    a.decisions += 1;
                    let denied = d.decision == Decision::Deny;
                    for agent in &d.chain.agents {
                        let known = a.agents.contains_key(agent.as_str());
                        if !known && a.agents.len() >= MAX_AGENTS {
                            a.truncated = true;
                            continue;
                        }
                        let e = a.agents.entry(agent.as_str().to_owned()).or_default();
                        e.requests += 1;
                        e.denials += u64::from(denied);
                        e.last_ms = e.last_ms.max(d.time_ms);
                    }
                }
                true
            })
            .map_err(|e| e.to_string())?;
        match last {
            Some(i) if seen == PAGE => from = i.saturating_add(1),
            _ => break,
        }
    }
    Ok(a)
}

// --- Checks ------------------------------------------------------------------

const NO_DATA_DIR: &str = "no data directory given (--data-dir)";

fn facts(d: &Deployment) -> Result<&AuditFacts, Outcome> {
    d.audit
        .as_ref()
        .ok_or_else(|| Outcome::skipped(NO_DATA_DIR))
}

/// The facts of a log that is there; skipped (with why) otherwise: the absence
/// is `audit-log-present`'s finding.
fn present(d: &Deployment) -> Result<&AuditFacts, Outcome> {
    let f = facts(d)?;
    match &f.log {
        LogState::Present => Ok(f),
        LogState::Missing => Err(Outcome::skipped(format!(
            "no audit log at `{}` (see audit-log-present)",
            f.database
        ))),
        LogState::Unreadable(e) => Err(Outcome::skipped(format!(
            "the audit log at `{}` cannot be read: {e} (see audit-log-present)",
            f.database
        ))),
    }
}

/// Evidence at the audit database.
fn at_db(f: &AuditFacts, message: impl Into<String>) -> Evidence {
    Evidence {
        file: Some(f.database.clone()),
        problem: true,
        ..Evidence::note(message)
    }
}

fn note_db(f: &AuditFacts, message: impl Into<String>) -> Evidence {
    Evidence {
        problem: false,
        ..at_db(f, message)
    }
}

const KEEP_ELSEWHERE: &str = "keep the verifier key and the signed checkpoints (`zt4ai audit checkpoint`) \
     where the server cannot write, and verify against them \
     (`zt4ai audit verify --key <copy> --against <checkpoint>`): a key beside the log proves \
     nothing against whoever can rewrite both";

/// The log exists in the data directory and opens.
fn log_present(d: &Deployment) -> Outcome {
    let f = match facts(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    match &f.log {
        LogState::Present => {
            let size = match &f.head {
                Some(Ok(h)) => format!(", {} records under its signed head", h.size),
                _ => String::new(),
            };
            Outcome::passed(format!("the audit log is at `{}`", f.database))
                .with(vec![note_db(f, format!("audit log found{size}"))])
        }
        LogState::Missing => Outcome::failed(format!(
            "there is no audit log at `{}`: nothing the agents did can be reviewed",
            f.database
        ))
        .with(vec![at_db(
            f,
            "no audit log (is --data-dir the server's data directory?)",
        )]),
        LogState::Unreadable(e) => Outcome::failed(format!(
            "the audit log at `{}` cannot be opened",
            f.database
        ))
        .with(vec![at_db(f, e.clone())]),
    }
}

/// The whole log verifies from its first record with the key found beside it.
fn log_verifies(d: &Deployment) -> Outcome {
    let f = match present(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let key_notes: Vec<Evidence> = f.key.problems.iter().map(|p| at_db(f, p.clone())).collect();
    match &f.verified {
        None => Outcome::investigate(format!(
            "the audit log cannot be verified here: there is no verifier key ({VERIFIER_FILE}) or signing key ({KEY_FILE}) in the data directory; \
             verify it with `zt4ai audit verify --key <verifier key>`"
        ))
        .with(key_notes),
        Some(Err(problem)) => Outcome::failed(format!(
            "the audit log does not verify: {problem}"
        ))
        .with(vec![at_db(f, problem.clone())])
        .with(key_notes),
        Some(Ok(v)) => {
            let mut evidence = vec![note_db(
                f,
                format!(
                    "{} records of log `{}` verified against {} kept checkpoints and the signed head (root {})",
                    v.records, v.origin, v.checkpoints, v.root
                ),
            )];
            if f.key.source == KeySource::SignerFile {
                evidence.push(note_db(
                    f,
                    format!("checked with a key derived from the signing key ({KEY_FILE}); {VERIFIER_FILE} is missing"),
                ));
            }
            if key_notes.is_empty() {
                Outcome::passed(format!(
                    "all {} records and {} kept checkpoints verify",
                    v.records, v.checkpoints
                ))
                .with(evidence)
            } else {
                Outcome::investigate(format!(
                    "the log verifies ({} records), but its key files disagree",
                    v.records
                ))
                .with(key_notes)
                .with(evidence)
            }
        }
    }
}

/// The signed head verifies with the verifier key found in the data directory;
/// investigate when only a key derived from the signing key (or none) is there.
fn checkpoints_signed(d: &Deployment) -> Outcome {
    let f = match present(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let head = match &f.head {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Outcome::failed(format!("the audit log has no readable signed head: {e}"))
                .with(vec![at_db(f, e.clone())]);
        }
        None => return Outcome::failed("the audit log has no signed head"),
    };
    let key_notes: Vec<Evidence> = f.key.problems.iter().map(|p| at_db(f, p.clone())).collect();
    match (&head.signature, f.key.source) {
        (None, _) | (_, KeySource::None) => Outcome::investigate(format!(
            "the signed head (size {}) cannot be checked: no verifier key in the data directory; {KEEP_ELSEWHERE}",
            head.size
        ))
        .with(key_notes),
        (Some(Err(e)), _) => Outcome::failed(format!(
            "the signed head does not verify with the log's key: {e}"
        ))
        .with(vec![at_db(f, e.clone())])
        .with(key_notes),
        (Some(Ok(())), KeySource::SignerFile) => Outcome::investigate(format!(
            "the signed head (size {}) verifies only with a key derived from the signing key beside the log ({VERIFIER_FILE} is missing); {KEEP_ELSEWHERE}",
            head.size
        ))
        .with(key_notes),
        (Some(Ok(())), KeySource::VerifierFile) if !key_notes.is_empty() => {
            Outcome::investigate(format!(
                "the signed head (size {}) verifies with {VERIFIER_FILE}, but the key files disagree",
                head.size
            ))
            .with(key_notes)
        }
        (Some(Ok(())), KeySource::VerifierFile) => Outcome::passed(format!(
            "the signed head (size {}) of log `{}` verifies with the log's verifier key",
            head.size, head.origin
        ))
        .with(vec![
            note_db(
                f,
                format!(
                    "verifier key: {}",
                    f.key.verifier.as_deref().unwrap_or_default()
                ),
            ),
            Evidence::note(format!("for assurance beyond this directory: {KEEP_ELSEWHERE}")),
        ]),
    }
}

fn activity_of(d: &Deployment) -> Result<(&AuditFacts, &Activity), Outcome> {
    let f = present(d)?;
    match &f.activity {
        Some(Ok(a)) => Ok((f, a)),
        Some(Err(e)) => Err(Outcome::failed(format!(
            "the audit log's records cannot be read: {e}"
        ))
        .with(vec![at_db(f, e.clone())])),
        None => Err(Outcome::skipped("the audit log's records were not read")),
    }
}

/// Active inventory agents with no decision in the last
/// `options.dormant_days` days: failed when the log covers the whole window,
/// investigate when it is younger (or the facts cover a shorter window).
fn dormant_agents(d: &Deployment) -> Outcome {
    let (f, a) = match activity_of(d) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let days = d.options.dormant_days.min(a.window_days);
    let since = a.now_ms.saturating_sub(
        i64::try_from(days)
            .unwrap_or(i64::MAX)
            .saturating_mul(DAY_MS),
    );
    let active: Vec<&str> = d
        .raw
        .agents
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| {
            d.inventory
                .agents
                .iter()
                .any(|(k, v)| k.as_str() == *id && v.state == AgentState::Active)
        })
        .collect();
    let dormant: Vec<&str> = active
        .iter()
        .copied()
        .filter(|id| a.agents.get(*id).is_none_or(|x| x.last_ms < since))
        .collect();
    if dormant.is_empty() {
        return Outcome::passed(format!(
            "every active agent made requests in the last {days} days ({} checked)",
            active.len()
        ))
        .with(vec![note_db(
            f,
            format!(
                "{} decisions in the last {} days",
                a.decisions, a.window_days
            ),
        )]);
    }
    let evidence: Vec<Evidence> = dormant
        .iter()
        .map(|id| {
            let last = match a.agents.get(*id) {
                Some(x) if x.requests > 0 => format!(
                    " (its last request was {} days ago)",
                    a.now_ms.saturating_sub(x.last_ms) / DAY_MS
                ),
                _ => String::new(),
            };
            d.at_entity(
                "agents",
                id,
                "",
                format!(
                    "`{id}` is active but made no request through zt4ai in the last {days} days{last}: suspend or retire it if it is no longer used"
                ),
            )
        })
        .collect();
    let mut caveats = Vec::new();
    let covered = a.oldest_ms.is_some_and(|o| o <= since);
    if !covered {
        caveats.push(note_db(
            f,
            "the audit log does not reach back over the whole window: the agents may be newer than it, or it was reset",
        ));
    }
    if days < d.options.dormant_days {
        caveats.push(note_db(
            f,
            format!("the log was read for the last {} days only", a.window_days),
        ));
    }
    if a.truncated {
        caveats.push(note_db(
            f,
            format!("more than {MAX_AGENTS} agents appear in the window; some were not counted"),
        ));
    }
    let summary = format!(
        "{} of {} active agents made no request in the last {days} days: standing privilege nobody uses",
        dormant.len(),
        active.len()
    );
    if caveats.is_empty() {
        Outcome::failed(summary).with(evidence)
    } else {
        Outcome::investigate(summary).with(evidence).with(caveats)
    }
}

/// Agents denied at least [`DENIALS`] times in the window, or at least half the
/// time over at least [`DENIAL_RATIO_MIN_REQUESTS`] requests: a misconfigured
/// agent, or one being steered into things it may not do.
fn repeated_denials(d: &Deployment) -> Outcome {
    let (f, a) = match activity_of(d) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut flagged: Vec<(&String, &AgentActivity)> = a
        .agents
        .iter()
        .filter(|(_, x)| x.denied_repeatedly())
        .collect();
    flagged.sort_by(|x, y| y.1.denials.cmp(&x.1.denials).then(x.0.cmp(y.0)));
    if flagged.is_empty() {
        return Outcome::passed(format!(
            "no agent was denied repeatedly in the last {} days",
            a.window_days
        ))
        .with(vec![note_db(
            f,
            format!(
                "{} decisions by {} agents in the window",
                a.decisions,
                a.agents.len()
            ),
        )]);
    }
    let evidence: Vec<Evidence> = flagged
        .iter()
        .map(|(id, x)| {
            let pct = x.denials.saturating_mul(100) / x.requests.max(1);
            d.at_entity(
                "agents",
                id,
                "",
                format!(
                    "`{id}` was denied {} of {} requests ({pct} %) in the last {} days: find out why (`zt4ai audit query --agent {id} --verdict deny`)",
                    x.denials, x.requests, a.window_days
                ),
            )
        })
        .collect();
    Outcome::investigate(format!(
        "{} denied repeatedly in the last {} days",
        count(flagged.len(), "agent was", "agents were"),
        a.window_days
    ))
    .with(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use crate::checks::Options;
    use zt4ai_audit::{AuditConfig, AuditLog, DecisionEvent, LogKey};
    use zt4ai_core::{ActorChain, AgentId, UserId};

    /// 2027-01-15T08:00:00Z.
    const NOW: u64 = 1_800_000_000;
    const DAY: i64 = 86_400_000;
    const NOW_MS: i64 = NOW as i64 * 1000;

    const INVENTORY: &str = "\
organisation: Test
users:
  - id: alice
    grants: { datasets: [customers] }
agents:
  - id: busy
    owner: alice
    purpose: Reads customer records all day long for the account team
    grants: { datasets: [customers] }
  - id: idle
    owner: alice
    purpose: Was meant to summarise customers, nobody uses it any more
    grants: { datasets: [customers] }
  - id: parked
    owner: alice
    purpose: Suspended while its owner is away, holds no grants now
    state: suspended
datasets:
  - { id: customers, label: internal }
";

    fn deployment(facts: Option<AuditFacts>) -> Deployment {
        let mut d = Deployment::load(
            INVENTORY,
            "inventory.yaml",
            Vec::new(),
            Options {
                dormant_days: 30,
                now: NOW,
            },
        )
        .unwrap();
        d.audit = facts;
        d
    }

    fn decision(t: i64, agent: &str, decision: Decision) -> Event {
        Event::Decision(DecisionEvent {
            time_ms: t,
            request_id: None,
            point: "authzen".into(),
            session: "s1".into(),
            chain: ActorChain {
                user: UserId::new("alice").unwrap(),
                agents: vec![AgentId::new(agent).unwrap()],
            },
            action: "read".into(),
            resource: "customers".into(),
            decision,
            policies: Vec::new(),
            reasons: Vec::new(),
            findings: Vec::new(),
            label_before: None,
            label_after: None,
            risk: None,
            approval: None,
            arguments_sha256: None,
            risk_signals: Vec::new(),
        })
    }

    /// A log as `zt4ai serve` writes it: the database and key files in `dir`.
    fn write_log(dir: &Path, events: &[Event]) {
        let key = LogKey::load_or_create(&dir.join(KEY_FILE), zt4ai_audit::DEFAULT_ORIGIN).unwrap();
        let log = AuditLog::open(
            &dir.join(DB_FILE),
            key,
            AuditConfig {
                checkpoint_records: 7,
                ..AuditConfig::default()
            },
        )
        .unwrap();
        for e in events {
            log.append(e).wait().unwrap();
        }
    }

    fn run(id: &str, d: &Deployment) -> Outcome {
        let check = CHECKS.iter().find(|c| c.id == id).unwrap();
        (check.run)(d)
    }

    fn busy_log() -> Vec<Event> {
        let mut events = vec![Event::lifecycle(
            "server.started",
            "zt4ai",
            "zt4ai",
            serde_json::Value::Null,
        )];
        // Old enough that the log covers the whole window.
        events.insert(0, decision(NOW_MS - 90 * DAY, "idle", Decision::Allow));
        for i in 0..25 {
            events.push(decision(NOW_MS - DAY + i, "busy", Decision::Allow));
        }
        events
    }

    #[test]
    fn every_check_is_skipped_without_a_data_directory() {
        let d = deployment(None);
        for c in CHECKS {
            let o = (c.run)(&d);
            assert_eq!(o.status, Status::Skipped, "{}", c.id);
            assert_eq!(o.summary, NO_DATA_DIR);
        }
    }

    #[test]
    fn missing_log_fails_presence_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        assert_eq!(run("audit-log-present", &d).status, Status::Failed);
        for id in [
            "audit-log-verifies",
            "audit-checkpoints-signed",
            "dormant-agents",
        ] {
            assert_eq!(run(id, &d).status, Status::Skipped, "{id}");
        }
    }

    #[test]
    fn a_sound_log_passes_and_an_unused_agent_is_dormant() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &busy_log());
        let facts = read(dir.path(), NOW, 30);
        assert_eq!(facts.key.source, KeySource::VerifierFile);
        let v = facts.verified.clone().unwrap().unwrap();
        assert_eq!(v.records, 27);
        assert!(v.checkpoints >= 3, "{v:?}");
        let a = facts.activity.clone().unwrap().unwrap();
        assert_eq!(a.agents["busy"].requests, 25);
        assert!(!a.agents.contains_key("idle"), "outside the window");
        let d = deployment(Some(facts));
        for id in [
            "audit-log-present",
            "audit-log-verifies",
            "audit-checkpoints-signed",
            "repeated-denials",
        ] {
            let o = run(id, &d);
            assert_eq!(o.status, Status::Passed, "{id}: {o:?}");
        }
        let o = run("dormant-agents", &d);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        let p: Vec<&Evidence> = o.evidence.iter().filter(|e| e.problem).collect();
        assert_eq!(p.len(), 1, "the suspended agent is not dormant: {o:?}");
        assert_eq!(p[0].field.as_deref(), Some("agents[1]"));
        assert_eq!(p[0].file.as_deref(), Some("inventory.yaml"));
        assert_eq!(p[0].line, Some(10));
    }

    #[test]
    fn dormancy_in_a_log_younger_than_the_window_is_investigated() {
        let dir = tempfile::tempdir().unwrap();
        write_log(
            dir.path(),
            &[decision(NOW_MS - DAY, "busy", Decision::Allow)],
        );
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        let o = run("dormant-agents", &d);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
    }

    #[test]
    fn repeated_denials_are_investigated_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut events = busy_log();
        // Ten denials: flagged by count.
        for i in 0..10 {
            events.push(decision(NOW_MS - 2 * DAY + i, "idle", Decision::Deny));
        }
        write_log(dir.path(), &events);
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        let o = run("repeated-denials", &d);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert_eq!(o.evidence.len(), 1);
        assert!(o.evidence[0].message.contains("denied 10 of 10"), "{o:?}");
        assert_eq!(o.evidence[0].field.as_deref(), Some("agents[1]"));
        // Nine of twelve: flagged by ratio; four of twelve is not.
        let x = AgentActivity {
            requests: 12,
            denials: 9,
            last_ms: 0,
        };
        assert!(x.denied_repeatedly());
        assert!(!AgentActivity { denials: 4, ..x }.denied_repeatedly());
        assert!(
            !AgentActivity {
                requests: 8,
                denials: 8,
                last_ms: 0
            }
            .denied_repeatedly()
        );
    }

    #[test]
    fn a_tampered_record_fails_verification_with_the_verifiers_message() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &busy_log());
        // Someone with write access to the file edits record 5 (one of `busy`'s).
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let n = conn
            .execute(
                "UPDATE audit_records SET body = CAST(replace(CAST(body AS TEXT), 'busy', 'Busy') AS BLOB) WHERE idx = 5",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
        drop(conn);
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        let o = run("audit-log-verifies", &d);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(o.summary.contains("record 5"), "{}", o.summary);
        // The head itself is still correctly signed.
        assert_eq!(run("audit-checkpoints-signed", &d).status, Status::Passed);
    }

    #[test]
    fn key_derived_from_the_signer_is_investigated_and_no_key_at_all_too() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &busy_log());
        std::fs::remove_file(dir.path().join(VERIFIER_FILE)).unwrap();
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        assert_eq!(d.audit.as_ref().unwrap().key.source, KeySource::SignerFile);
        assert_eq!(run("audit-log-verifies", &d).status, Status::Passed);
        let o = run("audit-checkpoints-signed", &d);
        assert_eq!(o.status, Status::Investigate, "{o:?}");
        assert!(
            o.summary.contains("where the server cannot write"),
            "{}",
            o.summary
        );

        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        assert_eq!(run("audit-log-verifies", &d).status, Status::Investigate);
        assert_eq!(
            run("audit-checkpoints-signed", &d).status,
            Status::Investigate
        );
    }

    #[test]
    fn a_head_signed_by_another_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &busy_log());
        // Someone else's key of the same name, put where the verifier key was.
        let other = tempfile::tempdir().unwrap();
        let key = LogKey::load_or_create(&other.path().join(KEY_FILE), zt4ai_audit::DEFAULT_ORIGIN)
            .unwrap();
        std::fs::write(dir.path().join(VERIFIER_FILE), key.verifier_key()).unwrap();
        let d = deployment(Some(read(dir.path(), NOW, 30)));
        let o = run("audit-checkpoints-signed", &d);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert_eq!(run("audit-log-verifies", &d).status, Status::Failed);
        assert!(
            d.audit.as_ref().unwrap().key.problems[0].contains("not the public half"),
            "{:?}",
            d.audit.as_ref().unwrap().key
        );
    }
}

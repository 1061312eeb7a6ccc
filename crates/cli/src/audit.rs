//! `zt4ai audit …`: verify the log, export proofs, query and export records; and
//! the audit records of the commands that change who may do what.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use zt4ai_audit::{
    AuditConfig, AuditLog, AuditReader, Event, Filter, InclusionProof, LogKey, Record,
};

use crate::DB_FILE;

/// The checkpoint signing key's file in the data directory.
pub(crate) const AUDIT_KEY: &str = "audit.key";

/// `zt4ai audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the whole Merkle tree and check every checkpoint's signature
    /// and root; names the first bad record. Exit 0 when the log is intact, 2
    /// when it is not.
    Verify {
        /// Verifier key (`<name>+<id>+<key>`), or a file holding it. Default: the
        /// key beside the data (`audit.key.pub`); for real assurance, give a
        /// copy kept where the server cannot write.
        #[arg(long)]
        key: Option<String>,
        /// A checkpoint saved earlier (`zt4ai audit checkpoint`) that the log
        /// must still extend; catches a log cut back to an older signed state.
        /// Repeatable.
        #[arg(long)]
        against: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the signed head (the latest checkpoint, C2SP signed-note format),
    /// to keep outside the server for `verify --against`.
    Checkpoint,
    /// Print the log's verifier key.
    Key,
    /// Export an inclusion proof of record INDEX (JSON): the record, the signed
    /// checkpoint and the audit path; checkable offline with `verify-proof`.
    Proof {
        /// The record's index.
        index: u64,
    },
    /// Check an inclusion proof offline, with only the verifier key.
    VerifyProof {
        /// The proof file (`-` for stdin).
        file: PathBuf,
        /// Verifier key (`<name>+<id>+<key>`), or a file holding it.
        #[arg(long)]
        key: String,
    },
    /// The newest records.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Records matching the filters, oldest first.
    Query {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Export records for a SIEM: JSON Lines of zt4ai records, or OCSF API
    /// Activity events.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[command(flatten)]
        filter: FilterArgs,
        /// Write to FILE instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    /// zt4ai's records, one JSON object per line.
    Jsonl,
    /// OCSF 1.3 API Activity events (class 6003), one per line.
    Ocsf,
}

/// Record filters.
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Records whose actor chain includes AGENT (or lifecycle events about it).
    #[arg(long)]
    agent: Option<String>,
    /// Records of USER.
    #[arg(long)]
    user: Option<String>,
    /// Records of SESSION.
    #[arg(long)]
    session: Option<String>,
    /// `allow`, `deny` or `require_approval`.
    #[arg(long)]
    verdict: Option<String>,
    /// Records that this policy or guard id determined.
    #[arg(long, alias = "policy")]
    guard: Option<String>,
    /// `decision` or `lifecycle`.
    #[arg(long)]
    kind: Option<String>,
    /// From this time: Unix seconds, RFC 3339 (`2026-12-01T10:00:00Z`), or an
    /// age (`30s`, `15m`, `2h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Until this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// From this record index.
    #[arg(long)]
    from: Option<u64>,
}

impl FilterArgs {
    fn to_filter(&self) -> Result<Filter> {
        if let Some(v) = &self.verdict
            && !["allow", "deny", "require_approval"].contains(&v.as_str())
        {
            bail!("--verdict must be `allow`, `deny` or `require_approval`, not `{v}`");
        }
        if let Some(k) = &self.kind
            && !["decision", "lifecycle"].contains(&k.as_str())
        {
            bail!("--kind must be `decision` or `lifecycle`, not `{k}`");
        }
        Ok(Filter {
            agent: self.agent.clone(),
            user: self.user.clone(),
            session: self.session.clone(),
            decision: self.verdict.clone(),
            policy: self.guard.clone(),
            kind: self.kind.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|t| time_ms(t, "--since"))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|t| time_ms(t, "--until"))
                .transpose()?,
            from_index: self.from,
            limit: None,
            newest: false,
        })
    }
}

/// Runs `zt4ai audit …` on the log in `data_dir`.
pub(crate) fn run(data_dir: &Path, action: AuditCommand) -> Result<ExitCode> {
    let db = data_dir.join(DB_FILE);
    recover_journal(data_dir, &db);
    let reader = || {
        AuditReader::open(&db)
            .with_context(|| format!("(is --data-dir `{}` right?)", data_dir.display()))
    };
    match action {
        AuditCommand::Verify { key, against, json } => {
            let vkey = match key {
                Some(k) => key_text(&k)?,
                None => std::fs::read_to_string(pub_key(data_dir)).with_context(|| {
                    format!("reading the verifier key `{}`", pub_key(data_dir).display())
                })?,
            };
            let verifier = zt4ai_audit::verifier(&vkey)?;
            let saved = against
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading `{}`", p.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let started = std::time::Instant::now();
            match reader()?.verify(&verifier, &saved) {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::json!({ "ok": true, "report": r }));
                    } else {
                        println!(
                            "ok: {} records of log `{}` verified against {} kept checkpoints{} and the signed head (root {}) in {:.2} s",
                            r.records,
                            r.origin,
                            r.checkpoints,
                            if r.against > 0 {
                                format!(", {} saved ones", r.against)
                            } else {
                                String::new()
                            },
                            r.root,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(p) => {
                    if json {
                        println!("{}", serde_json::json!({ "ok": false, "problem": p }));
                    } else {
                        println!("FAILED: {p}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
        AuditCommand::Checkpoint => {
            print!("{}", reader()?.head()?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Key => {
            print!(
                "{}",
                std::fs::read_to_string(pub_key(data_dir))
                    .with_context(|| format!("reading `{}`", pub_key(data_dir).display()))?
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Proof { index } => {
            let proof = reader()?.prove(index)?;
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyProof { file, key } => {
            let text = if file.as_os_str() == "-" {
                crate::read_stdin()?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading `{}`", file.display()))?
            };
            let proof: InclusionProof = serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not a zt4ai inclusion proof", file.display()))?;
            let verifier = zt4ai_audit::verifier(&key_text(&key)?)?;
            match zt4ai_audit::verify_proof(&proof, &verifier) {
                Ok(r) => {
                    println!(
                        "ok: record {} is in the log of {} records signed by `{}`",
                        r.index,
                        proof.tree_size,
                        origin_of(&proof.checkpoint)
                    );
                    println!("{}", line(&r));
                    Ok(ExitCode::SUCCESS)
                }
                Err(p) => {
                    println!("FAILED: {p}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        AuditCommand::Tail {
            lines,
            filter,
            json,
        } => {
            let mut f = filter.to_filter()?;
            f.limit = Some(lines);
            f.newest = true;
            print_records(&reader()?, &f, json)
        }
        AuditCommand::Query {
            filter,
            limit,
            json,
        } => {
            let mut f = filter.to_filter()?;
            f.limit = limit;
            print_records(&reader()?, &f, json)
        }
        AuditCommand::Export {
            format,
            filter,
            output,
        } => {
            use std::io::Write as _;
            let f = filter.to_filter()?;
            let r = reader()?;
            let origin = origin_of(&r.head()?);
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating `{}`", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut failed = None;
            let mut count = 0u64;
            r.query(&f, |rec| {
                let line = match format {
                    ExportFormat::Jsonl => serde_json::to_string(&rec),
                    ExportFormat::Ocsf => {
                        serde_json::to_string(&zt4ai_audit::export::ocsf(&rec, &origin))
                    }
                };
                let written = line
                    .map_err(anyhow::Error::from)
                    .and_then(|l| writeln!(out, "{l}").map_err(anyhow::Error::from));
                count += 1;
                match written {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e.context("writing the export"));
            }
            out.flush().context("writing the export")?;
            if let Some(p) = output {
                eprintln!("exported {count} records to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_records(reader: &AuditReader, filter: &Filter, json: bool) -> Result<ExitCode> {
    let mut failed = None;
    reader.query(filter, |rec| {
        if json {
            match serde_json::to_string(&rec) {
                Ok(l) => println!("{l}"),
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
        } else {
            println!("{}", line(&rec));
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// One record as a line of text.
fn line(rec: &Record) -> String {
    match &rec.event {
        Event::Decision(d) => format!(
            "#{:<6} {} {:<16} {:<9} {} `{}` by {} session {}{}",
            rec.index,
            rfc3339(d.time_ms),
            d.decision.as_str(),
            d.action,
            d.point,
            d.resource,
            d.chain.describe(),
            d.session,
            if d.policies.is_empty() {
                String::new()
            } else {
                format!(" [{}]", d.policies.join(", "))
            }
        ),
        Event::Lifecycle(l) => format!(
            "#{:<6} {} {:<16} {} by {}",
            rec.index,
            rfc3339(l.time_ms),
            l.event,
            l.subject,
            l.actor
        ),
    }
}

/// Moves records a stopped server left in the audit journal (answered, not
/// yet in the log: it was killed) into the log, so what the command reads is
/// whole. Nothing to do while a server runs (it holds the journal and moves
/// them itself) or when the journal is empty. A failure is a warning: the
/// command goes on with the log as it is, and `verify` reports what is wrong.
fn recover_journal(data_dir: &Path, db: &Path) {
    let dir = zt4ai_audit::journal_dir(db);
    let waiting = std::fs::read_dir(&dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == "log")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    });
    let key_path = data_dir.join(AUDIT_KEY);
    if !waiting || !key_path.exists() {
        return;
    }
    let opened = LogKey::load_or_create(&key_path, zt4ai_audit::DEFAULT_ORIGIN).and_then(|key| {
        AuditLog::open(
            db,
            key,
            AuditConfig {
                journal: true,
                ..AuditConfig::default()
            },
        )
    });
    match opened {
        Ok(log) => drop(log),
        Err(zt4ai_audit::AuditError::JournalInUse(_)) => {}
        Err(e) => eprintln!(
            "warning: records in the audit journal `{}` could not be moved into the log: {e}",
            dir.display()
        ),
    }
}

/// Opens the log in `data_dir` for writing (creating the key if needed).
pub(crate) fn open_log(data_dir: &Path, origin: &str, config: AuditConfig) -> Result<AuditLog> {
    let key_path = data_dir.join(AUDIT_KEY);
    let key = LogKey::load_or_create(&key_path, origin)?;
    let db = data_dir.join(DB_FILE);
    AuditLog::open(&db, key, config)
        .with_context(|| format!("opening the audit log in `{}`", db.display()))
}

/// Records a change made from the command line. The change is made already;
/// if it cannot be recorded, the command fails and says so.
pub(crate) fn record(
    data_dir: &Path,
    event: &str,
    by: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<()> {
    let log = open_log(
        data_dir,
        zt4ai_audit::DEFAULT_ORIGIN,
        AuditConfig::default(),
    )?;
    let actor = format!("cli:{by}");
    log.append(&Event::lifecycle(event, &actor, subject, detail))
        .wait()
        .with_context(|| {
            format!("the change was made but the audit log could not record it ({event} {subject})")
        })?;
    Ok(())
}

fn pub_key(data_dir: &Path) -> PathBuf {
    data_dir.join(format!("{AUDIT_KEY}.pub"))
}

/// A verifier key given inline or as a file.
fn key_text(arg: &str) -> Result<String> {
    if arg.contains('+') && !Path::new(arg).exists() {
        return Ok(arg.to_owned());
    }
    std::fs::read_to_string(arg).with_context(|| format!("reading the verifier key `{arg}`"))
}

fn origin_of(note: &str) -> String {
    note.lines().next().unwrap_or_default().to_owned()
}

/// Unix ms from Unix seconds, RFC 3339 UTC, or an age before now.
fn time_ms(arg: &str, flag: &str) -> Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "{flag} `{arg}`: give Unix seconds, RFC 3339 (`2026-12-01T10:00:00Z`) or an age (`15m`, `2h`, `7d`)"
        )
    };
    if let Ok(s) = arg.parse::<i64>() {
        return Ok(s.saturating_mul(1000));
    }
    if let Some(unit) = arg.chars().last().filter(|c| "smhd".contains(*c)) {
        let n: i64 = arg[..arg.len() - 1].parse().map_err(|_| bad())?;
        let secs = match unit {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            _ => n * 86_400,
        };
        return Ok(zt4ai_audit::now_ms() - secs.saturating_mul(1000));
    }
    parse_rfc3339(arg).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only) to Unix ms.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    Some(((days_from_civil(y, m, day) * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic: 400-year
/// cycles of 146,097 days, with the year starting in March).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SS.fffZ`.
fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_round_trip() {
        for ms in [0, 1_764_633_600_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(ms)), Some(ms), "{ms}");
        }
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::parse_rfc3339("2026-12-01T10:00:00Z"),
            Some(1_796_119_200_000)
        );
        assert!(super::parse_rfc3339("2026-13-01T10:00:00Z").is_none());
        assert!(super::time_ms("yesterday", "--since").is_err());
        assert_eq!(
            super::time_ms("1700000000", "--since").ok(),
            Some(1_700_000_000_000)
        );
    }
}

//! The audit journal: where a record is written before its request is
//! answered, when [`AuditConfig::journal`](crate::AuditConfig::journal) is on.
//!
//! Appending to the signed log (a SQLite transaction, the Merkle tree, a
//! signed head) costs about 0.1 ms; writing one entry to a file the process
//! owns costs a few microseconds. With the journal, a request waits only for
//! its record to be written here (one `write(2)`, held by the operating
//! system from then on, like a commit with `synchronous=NORMAL`), and the
//! writer thread moves it into the log within
//! [`AuditConfig::defer`](crate::AuditConfig::defer), batched with the
//! records around it. A record is in the journal until it is in the log, so
//! `kill -9` loses nothing that was answered: the next open moves what the
//! log lacks into it before anything else.
//!
//! Each entry is authenticated with a key derived from the log's signing
//! key (HMAC-SHA-256, truncated to 128 bits) over its sequence number and
//! contents, so the journal is tamper-evident from the moment of writing, not
//! only once the record is in the signed log. Sequence numbers run without
//! gaps; the log stores the last one it took in (`audit_journal`), in the
//! same transaction as the records.
//!
//! On disk: a directory `<database>-audit-journal` holding `lock` (an
//! exclusive lock while a log writes to it: two servers cannot share one log)
//! and files `<generation>.log`, each a run of entries:
//! `length (u32 LE) | sequence (u64 LE) | record (JSON) | tag (16 bytes)`.
//! The writer starts a new file once the current one passes
//! [`ROTATE_BYTES`] and removes a file once every entry in it is in the log
//! and synced to disk.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use tracing::warn;

use crate::AuditError;

/// A journal file is retired once it passes this size.
pub const ROTATE_BYTES: u64 = 4 << 20;
const HEADER: usize = 12;
const TAG: usize = 16;
/// Larger than any record zt4ai writes; a length beyond it is damage.
const MAX_RECORD: usize = 64 << 20;

/// The journal of one log (see the module's documentation).
pub(crate) struct Journal {
    dir: PathBuf,
    key: [u8; 32],
    /// Held (with its exclusive lock) for as long as the journal is open.
    _lock: File,
    inner: Mutex<Inner>,
    /// Test hook: the next write stops after this many bytes and fails.
    #[cfg(test)]
    pub fail_after: Mutex<Option<usize>>,
}

struct Inner {
    file: Arc<File>,
    path: PathBuf,
    generation: u64,
    /// Bytes in `file`: where an entry that fails half-written is cut back to.
    len: u64,
    next_seq: u64,
    /// Why nothing more can be written (a failed write could not be undone).
    broken: Option<String>,
    /// Files no longer written to, with the last sequence number in each.
    retired: Vec<(PathBuf, u64)>,
    buf: Vec<u8>,
}

/// An entry read back at open.
pub(crate) struct Entry {
    pub seq: u64,
    pub record: Vec<u8>,
}

/// The directory of the journal of the log in the database at `db`.
pub fn journal_dir(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-audit-journal");
    PathBuf::from(p)
}

impl Journal {
    /// Opens the journal beside `db`, taking its lock, and reads back every
    /// entry after `taken` (the last sequence number the log holds). The
    /// entries are returned in order, for the caller to put in the log, after
    /// which [`Journal::prune`] removes the files they came from.
    pub fn open(db: &Path, key: [u8; 32], taken: u64) -> Result<(Journal, Vec<Entry>), AuditError> {
        let dir = journal_dir(db);
        let io = |what: &str, e: std::io::Error| {
            AuditError::Write(format!("audit journal {}: {what}: {e}", dir.display()))
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| io("cannot create it", e))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(|e| io("cannot open its lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::JournalInUse(dir));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock it", e)),
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io("cannot list it", e))? {
            let entry = entry.map_err(|e| io("cannot list it", e))?;
            let name = entry.file_name();
            let Some(generation) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            files.push((generation, entry.path()));
        }
        files.sort();
        let mut entries = Vec::new();
        let mut last: Option<u64> = None;
        let count = files.len();
        for (i, (_, path)) in files.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| io("cannot read a file", e))?;
            read_entries(
                &key,
                path,
                &bytes,
                i + 1 == count,
                &mut last,
                taken,
                &mut entries,
            )?;
        }
        if let Some(first) = entries.first()
            && first.seq != taken + 1
        {
            return Err(AuditError::Inconsistent(format!(
                "the audit journal {} starts at entry {} but the log holds entries up to {taken}: \
                 entries are missing (if the database was replaced on purpose, move the journal \
                 directory away; it holds answered records the new log lacks)",
                dir.display(),
                first.seq
            )));
        }
        let generation = files.last().map_or(1, |(g, _)| g + 1);
        let next_seq = last.unwrap_or(0).max(taken) + 1;
        let (file, path) = create(&dir, generation).map_err(|e| io("cannot create a file", e))?;
        let retired = files.into_iter().map(|(_, p)| (p, next_seq - 1)).collect();
        let journal = Journal {
            #[cfg(test)]
            fail_after: Mutex::new(None),
            dir,
            key,
            _lock: lock,
            inner: Mutex::new(Inner {
                file: Arc::new(file),
                path,
                generation,
                len: 0,
                next_seq,
                broken: None,
                retired,
                buf: Vec::with_capacity(4096),
            }),
        };
        Ok((journal, entries))
    }

    /// Writes `record` as the next entry and, still holding the journal (so
    /// the order entries are handed on in is the order they are written
    /// in), calls `then` with its sequence number and the record. An entry
    /// that fails half-written is cut off again; if that fails too, the
    /// journal refuses everything after.
    pub fn append<T>(
        &self,
        record: Vec<u8>,
        then: impl FnOnce(u64, Vec<u8>) -> Result<T, String>,
    ) -> Result<T, String> {
        let digest: [u8; 32] = Sha256::digest(&record).into();
        let mut g = self.inner.lock();
        if let Some(why) = &g.broken {
            return Err(why.clone());
        }
        let seq = g.next_seq;
        let len = u32::try_from(record.len())
            .ok()
            .filter(|&n| (n as usize) <= MAX_RECORD)
            .ok_or("the audit record is too large for the journal")?;
        let Inner { buf, file, .. } = &mut *g;
        buf.clear();
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&record);
        let tag = tag(&self.key, seq, len, &digest);
        buf.extend_from_slice(&tag);
        #[cfg(test)]
        let failing = self.fail_after.lock().take();
        #[cfg(not(test))]
        let failing: Option<usize> = None;
        let written = match failing {
            None => (&**file).write_all(buf),
            Some(n) => (&**file)
                .write_all(&buf[..n.min(buf.len())])
                .and(Err(std::io::Error::other("injected failure"))),
        };
        match written {
            Ok(()) => {
                g.len += g.buf.len() as u64;
                g.next_seq += 1;
                then(seq, record)
            }
            Err(e) => {
                let why = format!("cannot write the audit journal {}: {e}", g.path.display());
                let len = g.len;
                if let Err(e) = g.file.set_len(len) {
                    g.broken = Some(format!(
                        "{why}; the half-written entry could not be cut off ({e}), so nothing \
                         more is written until zt4ai restarts"
                    ));
                }
                Err(why)
            }
        }
    }

    /// Syncs the file being written to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let file = Arc::clone(&self.inner.lock().file);
        file.sync_data()
    }

    /// The last sequence number written.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().next_seq - 1
    }

    /// Starts a new file when the current one has passed [`ROTATE_BYTES`]
    /// (the old one synced first), and removes retired files whose every
    /// entry is at or below `safe` (in the log and on disk). Called by the
    /// writer thread after a commit, never on a request's path.
    pub fn prune(&self, safe: u64) {
        let rotate = {
            let g = self.inner.lock();
            (g.len >= ROTATE_BYTES).then_some(g.generation + 1)
        };
        if let Some(generation) = rotate {
            match create(&self.dir, generation) {
                Ok((file, path)) => {
                    let old = {
                        let mut g = self.inner.lock();
                        let old = (
                            std::mem::replace(&mut g.file, Arc::new(file)),
                            std::mem::replace(&mut g.path, path),
                        );
                        g.generation = generation;
                        g.len = 0;
                        let last = g.next_seq - 1;
                        g.retired.push((old.1.clone(), last));
                        old
                    };
                    if let Err(e) = old.0.sync_data() {
                        warn!(file = %old.1.display(), error = %e, "audit journal file not synced");
                    }
                }
                Err(e) => {
                    warn!(dir = %self.dir.display(), error = %e, "no new audit journal file; the current one grows");
                }
            }
        }
        let done: Vec<PathBuf> = {
            let mut g = self.inner.lock();
            let (done, kept) = std::mem::take(&mut g.retired)
                .into_iter()
                .partition(|(_, last)| *last <= safe);
            g.retired = kept;
            done.into_iter().map(|(p, _)| p).collect()
        };
        for path in done {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(file = %path.display(), error = %e, "audit journal file not removed");
            }
        }
    }

    /// Empties the journal once everything in it is in the log and on disk
    /// (a clean close): the current file is cut to nothing, retired ones go.
    pub fn clear(&self) {
        self.prune(u64::MAX);
        let mut g = self.inner.lock();
        if g.len > 0 {
            match g.file.set_len(0) {
                Ok(()) => g.len = 0,
                Err(e) => {
                    warn!(file = %g.path.display(), error = %e, "audit journal file not emptied");
                }
            }
        }
    }
}

/// [`read_entries`] of the newest file, for the crate's tests.
#[cfg(test)]
pub(crate) fn tests_read(
    key: &[u8; 32],
    path: &Path,
    bytes: &[u8],
    last: &mut Option<u64>,
    taken: u64,
    out: &mut Vec<Entry>,
) -> Result<(), AuditError> {
    read_entries(key, path, bytes, false, last, taken, out)
}

fn tag(key: &[u8; 32], seq: u64, len: u32, digest: &[u8; 32]) -> [u8; TAG] {
    // A key shorter than SHA-256's block is padded with zeros (RFC 2104):
    // the same MAC as the 32-byte key, through the constructor that cannot fail.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(&seq.to_le_bytes());
    mac.update(&len.to_le_bytes());
    mac.update(digest);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG];
    out.copy_from_slice(&full[..TAG]);
    out
}

/// Reads the entries of one file, checking each one's tag and that sequence
/// numbers run on from `last`, and keeps those after `taken`. Damage at the
/// very end of the newest file is an entry the process died writing, or one
/// a power cut lost half of (its request was never answered, or answered
/// inside the sync interval the log's durability allows): it is dropped with
/// a warning. Damage anywhere else is an error.
fn read_entries(
    key: &[u8; 32],
    path: &Path,
    bytes: &[u8],
    newest: bool,
    last: &mut Option<u64>,
    taken: u64,
    out: &mut Vec<Entry>,
) -> Result<(), AuditError> {
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let entry = parse(key, rest);
        let damaged = |what: &str| {
            AuditError::Inconsistent(format!(
                "audit journal {} at byte {at}: {what}",
                path.display()
            ))
        };
        match entry {
            Some((seq, record, used)) => {
                if let Some(prev) = *last
                    && seq != prev + 1
                {
                    return Err(damaged(&format!(
                        "entry {seq} follows entry {prev}: entries are missing or out of order"
                    )));
                }
                *last = Some(seq);
                if seq > taken {
                    out.push(Entry {
                        seq,
                        record: record.to_vec(),
                    });
                }
                at += used;
            }
            None => {
                // An entry that fits the rest of the file exactly, or runs
                // past its end, is the last one written.
                let claimed = rest
                    .get(..4)
                    .map(|l| u32::from_le_bytes(l.try_into().unwrap_or([0; 4])) as usize);
                let at_end =
                    claimed.is_none_or(|n| n > MAX_RECORD || HEADER + n + TAG >= rest.len());
                if newest && at_end {
                    warn!(
                        file = %path.display(),
                        byte = at,
                        bytes = rest.len(),
                        "the last audit journal entry is incomplete or damaged and is dropped \
                         (written when the process stopped)"
                    );
                    return Ok(());
                }
                return Err(damaged("an entry fails its check (altered or damaged)"));
            }
        }
    }
    Ok(())
}

/// One entry at the start of `bytes`: its sequence number, record and length,
/// if it is whole and its tag checks.
fn parse<'a>(key: &[u8; 32], bytes: &'a [u8]) -> Option<(u64, &'a [u8], usize)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let n = len as usize;
    if n > MAX_RECORD {
        return None;
    }
    let seq = u64::from_le_bytes(bytes.get(4..HEADER)?.try_into().ok()?);
    let record = bytes.get(HEADER..HEADER + n)?;
    let stored = bytes.get(HEADER + n..HEADER + n + TAG)?;
    let digest: [u8; 32] = Sha256::digest(record).into();
    let expected = tag(key, seq, len, &digest);
    // Constant time: a forger learns nothing from how long a check takes.
    let mut diff = 0u8;
    for (a, b) in expected.iter().zip(stored) {
        diff |= a ^ b;
    }
    (diff == 0).then_some((seq, record, HEADER + n + TAG))
}

/// Creates (or, if an earlier run left it holding nothing, reuses) the file of
/// `generation`, and syncs the directory so the file survives a power cut.
fn create(dir: &Path, generation: u64) -> std::io::Result<(File, PathBuf)> {
    let path = dir.join(format!("{generation:020}.log"));
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let file = opts.open(&path)?;
    file.set_len(0)?;
    File::open(dir)?.sync_all()?;
    Ok((file, path))
}

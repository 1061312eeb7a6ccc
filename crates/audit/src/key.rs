//! The checkpoint signing key: an Ed25519 key in the C2SP signed-note key format
//! (`PRIVATE+KEY+<name>+<id>+<key>`), kept in a file only the server's user can
//! read. Its public half, the verifier key (`<name>+<id>+<key>`), is what anyone
//! checking the log or a proof needs, and nothing else.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signed_note::{Signer as _, StandardSigner, StandardVerifier};

use crate::AuditError;

/// The log's origin and key name when none is given: the first line of every
/// checkpoint.
pub const DEFAULT_ORIGIN: &str = "zt4ai.local/audit";

/// The checkpoint signer, with its verifier key.
pub struct LogKey {
    pub(crate) signer: StandardSigner,
    verifier: String,
    /// The key that authenticates the journal's entries (see `journal`),
    /// derived from the signing key: whoever cannot sign checkpoints cannot
    /// forge a journal entry either.
    pub(crate) journal: [u8; 32],
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// Reads the signer key at `path`, or creates one named `origin` there (mode
    /// 0600) if the file does not exist. The verifier key is written beside it
    /// (`<path>.pub`).
    pub fn load_or_create(path: &Path, origin: &str) -> Result<LogKey, AuditError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_signer_key(text.trim()).map_err(|e| AuditError::Key {
                path: path.to_owned(),
                message: e,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path, origin),
            Err(e) => Err(AuditError::Key {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// A key from its signer key text.
    pub fn from_signer_key(text: &str) -> Result<LogKey, String> {
        let signer = StandardSigner::new(text).map_err(|e| format!("not a signer key: {e}"))?;
        // The key is the fifth field; base64 may itself hold `+`.
        let seed = text
            .splitn(5, '+')
            .nth(4)
            .and_then(|k| STANDARD.decode(k).ok())
            .ok_or("not a signer key")?;
        let secret: [u8; 32] = seed
            .get(1..)
            .and_then(|s| s.try_into().ok())
            .ok_or("not an Ed25519 signer key")?;
        let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        let verifier = signed_note::new_ed25519_verifier_key(signer.name(), &public);
        let journal = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(b"zt4ai audit journal key v1\0");
            h.update(secret);
            h.finalize().into()
        };
        Ok(LogKey {
            signer,
            verifier,
            journal,
        })
    }

    fn create(path: &Path, origin: &str) -> Result<LogKey, AuditError> {
        let err = |message: String| AuditError::Key {
            path: path.to_owned(),
            message,
        };
        if !signed_note::is_key_name_valid(origin) {
            return Err(err(format!(
                "`{origin}` cannot name a log: it must be non-empty, without spaces or `+`"
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| err(format!("no randomness: {e}")))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        let mut encoded = vec![1u8];
        encoded.extend_from_slice(public.as_bytes());
        let id = signed_note::key_id(origin, &encoded);
        let mut private = vec![1u8];
        private.extend_from_slice(&secret);
        let text = format!(
            "PRIVATE+KEY+{origin}+{id:08x}+{}\n",
            STANDARD.encode(private)
        );
        write_private(path, text.as_bytes()).map_err(|e| err(e.to_string()))?;
        let key = Self::from_signer_key(text.trim()).map_err(err)?;
        std::fs::write(pub_path(path), format!("{}\n", key.verifier))
            .map_err(|e| err(format!("writing the verifier key: {e}")))?;
        Ok(key)
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key text (`<name>+<id>+<key>`), for anyone checking the log.
    pub fn verifier_key(&self) -> &str {
        &self.verifier
    }
}

/// A verifier from its key text.
pub fn verifier(text: &str) -> Result<StandardVerifier, AuditError> {
    StandardVerifier::new(text.trim()).map_err(|e| AuditError::VerifierKey(e.to_string()))
}

fn pub_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

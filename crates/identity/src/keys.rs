//! zt4ai's own Ed25519 signing keys, in a file only the server's user can read.
//!
//! The file holds every key still needed: the active one, which signs, and keys
//! retired by a rotation, which stay published in the JWKS until every token they
//! signed has expired. A rotation therefore never invalidates a live token. The
//! server re-reads the file when it changes (at most once a second), so
//! `zt4ai keys rotate` takes effect without a restart.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("key file `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file's content is not a zt4ai key file.
    #[error("key file `{path}` is invalid: {what}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The random source failed.
    #[error("random source: {0}")]
    Random(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    kid: String,
    created_at: i64,
    #[serde(default)]
    retired_at: Option<i64>,
    /// The 32-byte Ed25519 seed, base64url.
    seed: String,
}

struct Key {
    stored: StoredKey,
    x: String,
    signing: EncodingKey,
    decoding: DecodingKey,
    /// Decompressed once: verifying a token then costs one signature check.
    verifying: ed25519_dalek::VerifyingKey,
}

impl Key {
    fn from_stored(stored: StoredKey, path: &str) -> Result<Key, KeyError> {
        let invalid = |what: String| KeyError::Invalid {
            path: path.to_owned(),
            what,
        };
        let seed: [u8; 32] = B64
            .decode(&stored.seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                invalid(format!(
                    "key `{}`: seed is not 32 base64url bytes",
                    stored.kid
                ))
            })?;
        let verifying = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let public = verifying.to_bytes();
        let x = B64.encode(public);
        // PKCS#8 v1 for an Ed25519 private key (RFC 8410): a fixed prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let signing = EncodingKey::from_ed_der(&der);
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|e| invalid(format!("key `{}`: {e}", stored.kid)))?;
        Ok(Key {
            stored,
            x,
            signing,
            decoding,
            verifying,
        })
    }
}

struct Loaded {
    keys: Vec<Key>,
    modified: Option<SystemTime>,
}

impl Loaded {
    /// The key that signs: the newest one not retired.
    fn active(&self) -> Option<&Key> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.stored.retired_at.is_none())
    }
}

/// A set of Ed25519 signing keys backed by a file.
pub struct KeyRing {
    path: PathBuf,
    loaded: RwLock<Loaded>,
    checked: Mutex<Instant>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn new_key(now: i64) -> Result<StoredKey, KeyError> {
    let seed: [u8; 32] = random_bytes()?;
    let id: [u8; 8] = random_bytes()?;
    Ok(StoredKey {
        kid: B64.encode(id),
        created_at: now,
        retired_at: None,
        seed: B64.encode(seed),
    })
}

impl KeyRing {
    /// Opens the key file at `path`, creating it with one new key (and its
    /// directory, readable only by this user) if it does not exist.
    pub fn open(path: &Path, now: i64) -> Result<KeyRing, KeyError> {
        let ring = KeyRing {
            path: path.to_owned(),
            loaded: RwLock::new(Loaded {
                keys: Vec::new(),
                modified: None,
            }),
            checked: Mutex::new(Instant::now()),
        };
        if !path.exists() {
            ring.write(&KeyFile {
                keys: vec![new_key(now)?],
            })?;
        }
        ring.reload()?;
        Ok(ring)
    }

    fn io(&self, source: std::io::Error) -> KeyError {
        KeyError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn write(&self, file: &KeyFile) -> Result<(), KeyError> {
        use std::io::Write as _;
        #[cfg(unix)]
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        if let Some(dir) = self.path.parent() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            b.mode(0o700);
            b.create(dir).map_err(|e| self.io(e))?;
        }
        let text = serde_json::to_vec_pretty(file).map_err(|e| KeyError::Invalid {
            path: self.path.display().to_string(),
            what: e.to_string(),
        })?;
        // Write beside, then rename: a crash leaves the old file or the new one.
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&tmp).map_err(|e| self.io(e))?;
        f.write_all(&text).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    fn read(&self) -> Result<(KeyFile, Option<SystemTime>), KeyError> {
        let text = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let file: KeyFile = serde_json::from_slice(&text).map_err(|e| KeyError::Invalid {
            path: self.path.display().to_string(),
            what: e.to_string(),
        })?;
        Ok((file, modified))
    }

    /// Re-reads the file.
    pub fn reload(&self) -> Result<(), KeyError> {
        let (file, modified) = self.read()?;
        let path = self.path.display().to_string();
        let keys = file
            .keys
            .into_iter()
            .map(|k| Key::from_stored(k, &path))
            .collect::<Result<Vec<_>, _>>()?;
        if !keys.iter().any(|k| k.stored.retired_at.is_none()) {
            return Err(KeyError::Invalid {
                path,
                what: "no active key".into(),
            });
        }
        *self.loaded.write() = Loaded { keys, modified };
        Ok(())
    }

    /// Re-reads the file if it changed, at most once a second.
    pub fn refresh(&self) {
        {
            let mut checked = self.checked.lock();
            if checked.elapsed().as_millis() < 1000 {
                return;
            }
            *checked = Instant::now();
        }
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified != self.loaded.read().modified
            && let Err(e) = self.reload()
        {
            tracing::error!(error = %e, "could not reload signing keys; keeping the loaded ones");
        }
    }

    /// Signs `claims` as a JWT with the active key.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, String> {
        let loaded = self.loaded.read();
        let key = loaded.active().ok_or("no active signing key")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.stored.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &key.signing).map_err(|e| e.to_string())
    }

    /// Something of the key `kid`, re-reading the file once if it is unknown (a
    /// key rotated in by another process).
    fn with_key<T>(&self, kid: &str, f: impl Fn(&Key) -> T) -> Option<T> {
        let find = |l: &Loaded| l.keys.iter().find(|k| k.stored.kid == kid).map(&f);
        if let Some(t) = find(&self.loaded.read()) {
            return Some(t);
        }
        self.refresh();
        find(&self.loaded.read())
    }

    /// The verification key for `kid`, re-reading the file once if it is unknown.
    pub fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.with_key(kid, |k| k.decoding.clone())
    }

    /// Verifies a compact JWS signed by one of these keys and returns its decoded
    /// payload. Only EdDSA, only these keys, strict Ed25519 verification (no
    /// malleable signatures, no weak keys).
    ///
    /// zt4ai's own tokens are checked here rather than through `jsonwebtoken`,
    /// which decompresses the public key on every verification; with the key
    /// decompressed once, a cold verification is about a tenth cheaper (see
    /// BENCHMARKS.md). Everything else (user tokens, agent assertions, signing)
    /// goes through `jsonwebtoken`.
    pub fn verify_compact(&self, token: &str) -> Result<Vec<u8>, String> {
        #[derive(Deserialize)]
        struct JwsHeader {
            alg: String,
            #[serde(default)]
            kid: Option<String>,
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (expected three dot-separated parts)".into());
        };
        let header = B64
            .decode(h)
            .map_err(|_| "not a JWT (the header is not base64url)".to_owned())?;
        let header: JwsHeader =
            serde_json::from_slice(&header).map_err(|e| format!("not a JWT (header: {e})"))?;
        if header.alg != "EdDSA" {
            return Err(format!(
                "algorithm `{}` is not accepted; zt4ai signs with EdDSA",
                header.alg
            ));
        }
        let kid = header.kid.ok_or("no `kid` in the token header")?;
        let key = self
            .with_key(&kid, |k| k.verifying)
            .ok_or_else(|| format!("signed with key `{kid}`, which zt4ai does not have"))?;
        let sig: [u8; 64] = B64
            .decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("signature does not verify")?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        key.verify_strict(signed, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| "signature does not verify".to_owned())?;
        B64.decode(p)
            .map_err(|_| "malformed (the payload is not base64url)".to_owned())
    }

    /// Whether `kid` names one of these keys.
    pub fn has(&self, kid: &str) -> bool {
        self.loaded.read().keys.iter().any(|k| k.stored.kid == kid)
    }

    /// The kid of the active key.
    pub fn active_kid(&self) -> Option<String> {
        self.loaded.read().active().map(|k| k.stored.kid.clone())
    }

    /// The public keys as a JWKS document: the active key and keys retired less
    /// than `keep` seconds ago.
    pub fn jwks(&self, now: i64, keep: i64) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .loaded
            .read()
            .keys
            .iter()
            .filter(|k| k.stored.retired_at.is_none_or(|r| r + keep > now))
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": k.x,
                    "kid": k.stored.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Makes a new active key; the old one is retired but stays published for
    /// `keep` seconds; keys retired longer ago are dropped. Returns the new kid.
    pub fn rotate(&self, now: i64, keep: i64) -> Result<String, KeyError> {
        let (mut file, _) = self.read()?;
        for k in &mut file.keys {
            if k.retired_at.is_none() {
                k.retired_at = Some(now);
            }
        }
        file.keys
            .retain(|k| k.retired_at.is_none_or(|r| r + keep > now));
        let key = new_key(now)?;
        let kid = key.kid.clone();
        file.keys.push(key);
        self.write(&file)?;
        self.reload()?;
        Ok(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_signs_and_verifies_and_rotation_keeps_old_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.json");
        let ring = KeyRing::open(&path, 1000).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key file readable only by its owner");
        }
        let old = ring.active_kid().unwrap();
        let token = ring.sign(&serde_json::json!({"sub": "x"}), "JWT").unwrap();
        let new = ring.rotate(2000, 900).unwrap();
        assert_ne!(old, new);
        assert!(
            ring.decoding_key(&old).is_some(),
            "retired key still verifies"
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(old.as_str()));
        let jwks = ring.jwks(2100, 900);
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(ring.jwks(2900, 900)["keys"].as_array().unwrap().len(), 1);
        // A second rotation after the keep window drops the first key.
        ring.rotate(3000, 900).unwrap();
        assert!(!ring.has(&old));
        // Reopening reads the same keys.
        let again = KeyRing::open(&path, 4000).unwrap();
        assert_eq!(again.active_kid(), ring.active_kid());
    }
}

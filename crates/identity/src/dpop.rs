//! Sender-constrained delegated tokens: OAuth 2.0 Demonstrating Proof of
//! Possession (DPoP, RFC 9449).
//!
//! An agent that asks for its delegated token with a `DPoP` proof gets a token
//! bound to the proof's key (`cnf.jkt`, the key's RFC 7638 thumbprint). Every
//! request that presents a bound token must then carry a fresh proof signed by
//! that key, for that request's method and URL and for that token (`ath`), so a
//! token copied out of the agent's runtime, a log or a proxy is useless without
//! the private key. Proofs are single-use: each `jti` is remembered until the
//! proof's `iat` is too old to be accepted anyway.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::Digest as _;

use crate::AuthError;

/// The proof algorithms accepted, as `algs` in challenges and
/// `dpop_signing_alg_values_supported` in metadata.
pub const DPOP_ALGS: [&str; 4] = ["EdDSA", "ES256", "RS256", "PS256"];

/// How old a proof may be (seconds after its `iat`, plus the clock skew).
pub(crate) const PROOF_MAX_AGE: i64 = 60;

/// Default bound of the replay cache (proof ids remembered at once).
pub(crate) const REPLAY_CAPACITY: usize = 1 << 20;

/// Members of a JWK that belong to a private key (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must be for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofTarget<'a> {
    /// The HTTP method of the request (`htm`).
    pub(crate) method: &'a str,
    /// The URL the client addressed, as the gateway is reached (`htu`; query and
    /// fragment are ignored on both sides).
    pub(crate) url: &'a str,
    /// The access token the request presents, whose hash the proof must carry
    /// (`ath`); `None` at the token endpoint.
    pub(crate) access_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
}

/// The error for a proof that is not acceptable, with the status the place
/// it was presented answers with (400 at the token endpoint, 401 elsewhere).
fn invalid(status: u16, what: impl Into<String>) -> AuthError {
    AuthError::new(status, "invalid_dpop_proof", what.into())
}

/// Proof ids seen and still within their acceptance window.
pub(crate) struct Replay {
    seen: Mutex<Seen>,
    capacity: usize,
}

struct Seen {
    /// Proof id (a hash of the key's thumbprint and the `jti`) → until when it
    /// is kept (Unix seconds).
    ids: HashMap<u128, i64>,
    /// When expired ids were last swept out (at most once a second, so a full
    /// cache of live ids does not cost a scan per request).
    swept: i64,
}

impl Replay {
    pub(crate) fn new(capacity: usize) -> Replay {
        Replay {
            seen: Mutex::new(Seen {
                ids: HashMap::new(),
                swept: i64::MIN,
            }),
            capacity,
        }
    }

    /// Records a proof id until `until`; false if it was already used. When the
    /// cache is full of live ids the proof is refused (fail closed): a proof
    /// that cannot be remembered could be replayed.
    fn first_use(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<bool, String> {
        let mut h = sha2::Sha256::new();
        h.update(jkt.as_bytes());
        h.update([0]);
        h.update(jti.as_bytes());
        let d = h.finalize();
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        let key = u128::from_le_bytes(k);
        let mut seen = self.seen.lock();
        if let Some(&t) = seen.ids.get(&key)
            && t >= now
        {
            return Ok(false);
        }
        if seen.ids.len() >= self.capacity && seen.swept < now {
            seen.ids.retain(|_, t| *t >= now);
            seen.swept = now;
        }
        if seen.ids.len() >= self.capacity {
            return Err(format!(
                "more than {} proofs are live at once; retry shortly",
                self.capacity
            ));
        }
        seen.ids.insert(key, until);
        Ok(true)
    }
}

/// A value from the proof, as an error message quotes it: at most 128
/// characters, since the proof is the caller's text.
fn shown(v: &str) -> String {
    v.chars().take(128).collect()
}

/// The hash of an access token a proof carries (`ath`): base64url of the
/// token's SHA-256.
pub fn token_hash(token: &str) -> String {
    B64.encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Whether `alg` and the key's type go together, and the key is one zt4ai
/// accepts (Ed25519, P-256, RSA).
fn key_fits(alg: Algorithm, jwk: &Jwk) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    }
}

/// Normalises a URL for comparison (RFC 9449 §4.3 step 9): scheme and host
/// lowercase, default port dropped, query and fragment removed.
fn normal_url(u: &str) -> Option<String> {
    let mut url = url::Url::parse(u).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// Verifies a DPoP proof for `target` at time `now` (with `skew` seconds of
/// clock skew), and returns the thumbprint of its key. `status` is what a
/// refusal answers with.
pub(crate) fn verify_proof(
    proof: &str,
    target: &ProofTarget<'_>,
    replay: &Replay,
    now: i64,
    skew: i64,
    status: u16,
) -> Result<String, AuthError> {
    let bad = |what: String| invalid(status, what);
    // Each part is decoded once: the header as JSON (to see every member of
    // its `jwk`) and as a `Header`, the signature over the signing input, then
    // the claims.
    let not_jwt = || bad("the DPoP proof is not a compact JWT (`header.claims.signature`)".into());
    let (input, signature) = proof.rsplit_once('.').ok_or_else(not_jwt)?;
    let (head, payload) = input.split_once('.').ok_or_else(not_jwt)?;
    let json = |part: &str, what: &str| {
        B64.decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or_else(|| bad(format!("the DPoP proof's {what} is not base64url JSON")))
    };
    let raw = json(head, "header")?;
    let header: jsonwebtoken::Header = serde_json::from_value(raw.clone())
        .map_err(|e| bad(format!("the DPoP proof's header: {e}")))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(bad("the DPoP proof's `typ` must be `dpop+jwt`".into()));
    }
    if !matches!(
        header.alg,
        Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256
    ) {
        return Err(bad(format!(
            "DPoP proof algorithm {:?} is not accepted (accepted: {})",
            header.alg,
            DPOP_ALGS.join(", ")
        )));
    }
    let Some(jwk) = header.jwk.as_ref() else {
        return Err(bad("the DPoP proof's header has no `jwk`".into()));
    };
    // The parsed key drops unknown members: the raw header shows whether a
    // private key travels in it.
    if let Some(m) = PRIVATE_MEMBERS
        .iter()
        .find(|m| raw.get("jwk").and_then(|j| j.get(**m)).is_some())
    {
        return Err(bad(format!(
            "the DPoP proof's `jwk` carries a private key member (`{m}`)"
        )));
    }
    if !key_fits(header.alg, jwk) {
        return Err(bad(format!(
            "the DPoP proof's `jwk` is not a key for {:?} (Ed25519 for EdDSA, P-256 for ES256, RSA for RS256 and PS256)",
            header.alg
        )));
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| bad(format!("the DPoP proof's `jwk` is unusable: {e}")))?;
    let verified = jsonwebtoken::crypto::verify(signature, input.as_bytes(), &key, header.alg)
        .map_err(|e| bad(format!("DPoP proof: {}", crate::jwt_error(&e))))?;
    if !verified {
        return Err(bad("DPoP proof: signature does not verify".into()));
    }
    let claims: ProofClaims = serde_json::from_value(json(payload, "claims")?)
        .map_err(|e| bad(format!("the DPoP proof's claims: {e}")))?;
    if claims.htm != target.method {
        return Err(bad(format!(
            "the DPoP proof is for `{}`, this request is `{}`",
            shown(&claims.htm),
            target.method
        )));
    }
    let expected = normal_url(target.url)
        .ok_or_else(|| AuthError::unavailable(format!("invalid own URL `{}`", target.url)))?;
    if normal_url(&claims.htu).as_deref() != Some(expected.as_str()) {
        return Err(bad(format!(
            "the DPoP proof is for `{}`, this request is for `{expected}`",
            shown(&claims.htu)
        )));
    }
    if claims.iat > now + skew {
        return Err(bad("the DPoP proof is issued in the future".into()));
    }
    if claims.iat < now - PROOF_MAX_AGE - skew {
        return Err(bad(format!(
            "the DPoP proof is older than {PROOF_MAX_AGE} s; make a new one for each request"
        )));
    }
    match (target.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), Some(_)) => {
            return Err(bad(
                "the DPoP proof's `ath` is not the hash of the presented token".into(),
            ));
        }
        (Some(_), None) => {
            return Err(bad(
                "the DPoP proof has no `ath` (the hash of the access token)".into(),
            ));
        }
        (None, _) => {}
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(bad("the DPoP proof's `jti` must be 1–256 characters".into()));
    }
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256);
    let first = replay
        .first_use(
            &jkt,
            &claims.jti,
            claims.iat + PROOF_MAX_AGE + 2 * skew,
            now,
        )
        .map_err(AuthError::unavailable)?;
    if !first {
        return Err(bad(format!(
            "the DPoP proof `{}` was already used; make a new one for each request",
            shown(&claims.jti)
        )));
    }
    Ok(jkt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_replay_cache_refuses_until_ids_expire_and_never_forgets_a_live_one() {
        let r = Replay::new(2);
        assert_eq!(r.first_use("k", "a", 100, 10), Ok(true));
        assert_eq!(r.first_use("k", "a", 100, 10), Ok(false));
        assert_eq!(r.first_use("other-key", "a", 100, 10), Ok(true));
        // Full of live ids: refused, not forgotten.
        assert!(r.first_use("k", "b", 100, 10).is_err());
        assert_eq!(r.first_use("k", "a", 100, 50), Ok(false));
        // Once they have expired, swept out and accepted again.
        assert_eq!(r.first_use("k", "b", 300, 101), Ok(true));
        assert_eq!(r.first_use("k", "b", 300, 102), Ok(false));
    }
}

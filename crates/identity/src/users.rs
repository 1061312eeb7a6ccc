//! User tokens from the organisation's identity provider.
//!
//! The verifier checks an OIDC-style JWT against the issuer's JWKS (from a file or
//! a URL), cached and refreshed: on a `kid` it does not know (the IdP rotated its
//! keys) it re-reads the JWKS, at most once every few seconds so a flood of bad
//! tokens cannot turn into a flood of fetches (one every two seconds at most), and it re-reads it every ten
//! minutes regardless. Without a configured provider, zt4ai's built-in
//! development identity provider signs user tokens with a key in the data
//! directory (`zt4ai dev-idp token`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde_json::Value;
use zt4ai_core::inventory::{IdentityProvider, Settings};

use crate::keys::KeyRing;
use crate::{AuthError, jwt_error};

/// Issuer name of the development identity provider.
pub const DEV_ISSUER: &str = "zt4ai-dev-idp";
/// Audience of development user tokens.
pub const DEV_AUDIENCE: &str = "zt4ai";
const MIN_REFETCH: Duration = Duration::from_secs(2);
const MAX_AGE: Duration = Duration::from_secs(600);

/// A user proved by a token from the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The zt4ai user id.
    pub id: String,
    /// Groups the IdP says the user is in.
    pub groups: Vec<String>,
    /// The IdP's risk score for the account (0–100), if it gives one.
    pub risk: Option<u8>,
    /// The IdP session id (`sid`), if any.
    pub sid: Option<String>,
    /// When the token was issued.
    pub issued_at: i64,
}

struct Cached {
    set: JwkSet,
    fetched: Instant,
}

/// Where the JWKS comes from.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// A file.
    File(PathBuf),
    /// A URL.
    Url(String),
}

struct Oidc {
    provider: IdentityProvider,
    location: JwksLocation,
    cache: RwLock<Option<Cached>>,
    refetch: tokio::sync::Mutex<()>,
    http: reqwest::Client,
}

enum Source {
    Oidc(Box<Oidc>),
    Dev(KeyRing),
}

/// Verifies user tokens.
pub struct UserVerifier {
    source: Source,
    skew: u64,
    risk_medium: u8,
    risk_high: u8,
}

impl std::fmt::Debug for UserVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserVerifier").finish_non_exhaustive()
    }
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl UserVerifier {
    /// A verifier for an OIDC identity provider; `ca` adds trusted roots (PEM) for
    /// an HTTPS JWKS URL, besides the system's.
    pub fn oidc(
        provider: IdentityProvider,
        location: JwksLocation,
        ca: Option<&std::path::Path>,
        skew: u64,
        settings: &Settings,
    ) -> Result<UserVerifier, String> {
        // One TLS implementation for the process: rustls with ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .https_only(matches!(&location, JwksLocation::Url(u) if u.starts_with("https:")));
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("identity.jwks_ca_file `{}`: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("identity.jwks_ca_file `{}`: {e}", path.display()))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("HTTP client for the JWKS: {e}"))?;
        Ok(UserVerifier {
            source: Source::Oidc(Box::new(Oidc {
                provider,
                location,
                cache: RwLock::new(None),
                refetch: tokio::sync::Mutex::new(()),
                http,
            })),
            skew,
            risk_medium: settings.risk_medium,
            risk_high: settings.risk_high,
        })
    }

    /// The development identity provider, with its key ring.
    pub fn dev(keys: KeyRing, skew: u64, settings: &Settings) -> UserVerifier {
        UserVerifier {
            source: Source::Dev(keys),
            skew,
            risk_medium: settings.risk_medium,
            risk_high: settings.risk_high,
        }
    }

    /// Whether this is the development identity provider.
    pub fn is_dev(&self) -> bool {
        matches!(self.source, Source::Dev(_))
    }

    /// The issuer user tokens must come from.
    pub fn issuer(&self) -> &str {
        match &self.source {
            Source::Oidc(o) => &o.provider.issuer,
            Source::Dev(_) => DEV_ISSUER,
        }
    }

    /// Loads the JWKS now (at startup), so a misconfiguration shows at once.
    pub async fn load(&self) -> Result<(), AuthError> {
        if let Source::Oidc(_) = &self.source {
            self.fetch().await?;
        }
        Ok(())
    }

    async fn fetch(&self) -> Result<(), AuthError> {
        let Source::Oidc(o) = &self.source else {
            return Ok(());
        };
        let (location, cache, http) = (&o.location, &o.cache, &o.http);
        let text = match location {
            JwksLocation::File(path) => std::fs::read_to_string(path).map_err(|e| {
                AuthError::unavailable(format!(
                    "cannot read the identity provider's JWKS `{}`: {e}",
                    path.display()
                ))
            })?,
            JwksLocation::Url(url) => {
                let resp = http.get(url).send().await.map_err(|e| {
                    AuthError::unavailable(format!(
                        "cannot fetch the identity provider's JWKS: {e}"
                    ))
                })?;
                if !resp.status().is_success() {
                    return Err(AuthError::unavailable(format!(
                        "the identity provider's JWKS answered {}",
                        resp.status()
                    )));
                }
                resp.text().await.map_err(|e| {
                    AuthError::unavailable(format!("cannot read the identity provider's JWKS: {e}"))
                })?
            }
        };
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
            AuthError::unavailable(format!("the identity provider's JWKS is invalid: {e}"))
        })?;
        *cache.write() = Some(Cached {
            set,
            fetched: Instant::now(),
        });
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let Source::Oidc(o) = &self.source else {
            return Err(AuthError::invalid_token("no identity provider"));
        };
        let (cache, refetch) = (&o.cache, &o.refetch);
        let lookup = |c: &Option<Cached>| {
            c.as_ref()
                .and_then(|c| c.set.find(kid))
                .map(DecodingKey::from_jwk)
        };
        let (found, stale, age) = {
            let c = cache.read();
            let age = c.as_ref().map(|c| c.fetched.elapsed());
            (lookup(&c), age.is_none_or(|a| a > MAX_AGE), age)
        };
        if let Some(Ok(k)) = found
            && !stale
        {
            return Ok(k);
        }
        // Unknown kid or stale set: re-read, one request at a time and not too often.
        {
            let _one = refetch.lock().await;
            let fresh_age = cache.read().as_ref().map(|c| c.fetched.elapsed());
            let someone_else_fetched =
                fresh_age < age || fresh_age.is_some_and(|a| a < MIN_REFETCH);
            if !someone_else_fetched && let Err(e) = self.fetch().await {
                // Keep using the cached set if the IdP is briefly unreachable.
                if cache.read().is_none() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "identity provider JWKS refresh failed; using the cached keys");
            }
        }
        match lookup(&cache.read()) {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(AuthError::invalid_token(format!(
                "the identity provider's key `{kid}` is unusable: {e}"
            ))),
            None => Err(AuthError::invalid_token(format!(
                "signed with key `{kid}`, which the identity provider does not publish"
            ))),
        }
    }

    /// Verifies a user token and maps its claims.
    pub async fn verify(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::invalid_token(format!("not a JWT: {}", jwt_error(&e))))?;
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| AuthError::invalid_token("the user token has no `kid`"))?;
        let (key, algorithms, issuer, audience, claims) = match &self.source {
            Source::Oidc(o) => {
                let provider = &o.provider;
                let algs: Vec<Algorithm> =
                    provider.algorithms.iter().filter_map(|a| parse_alg(a)).collect();
                (
                    self.key(&kid).await?,
                    algs,
                    provider.issuer.clone(),
                    provider.audience.clone(),
                    (
                        provider.user_claim.clone(),
                        provider.groups_claim.clone(),
                        provider.risk_claim.clone(),
                    ),
                )
            }
            Source::Dev(keys) => (
                keys.decoding_key(&kid).ok_or_else(|| {
                    AuthError::invalid_token(format!(
                        "signed with key `{kid}`, which the development identity provider does not have"
                    ))
                })?,
                vec![Algorithm::EdDSA],
                DEV_ISSUER.to_owned(),
                DEV_AUDIENCE.to_owned(),
                ("sub".to_owned(), "groups".to_owned(), "risk".to_owned()),
            ),
        };
        if !algorithms.contains(&header.alg) {
            return Err(AuthError::invalid_token(format!(
                "algorithm {:?} is not accepted for user tokens",
                header.alg
            )));
        }
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = self.skew;
        v.validate_nbf = true;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &v)
            .map_err(|e| AuthError::invalid_token(format!("user token: {}", jwt_error(&e))))?;
        let c = data.claims;
        let (user_claim, groups_claim, risk_claim) = claims;
        let id = c
            .get(&user_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                AuthError::invalid_token(format!("the user token has no `{user_claim}` claim"))
            })?
            .to_owned();
        let groups = match c.get(&groups_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let risk = match c.get(&risk_claim) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().map_or(100, |n| n.min(100)) as u8),
            Some(Value::String(s)) => Some(match s.to_ascii_lowercase().as_str() {
                "none" | "low" => 0,
                "medium" => self.risk_medium,
                "high" | "compromised" => self.risk_high.max(1),
                other => {
                    return Err(AuthError::invalid_token(format!(
                        "`{risk_claim}` claim `{other}` is not low, medium, high or a score"
                    )));
                }
            }),
            Some(_) => {
                return Err(AuthError::invalid_token(format!(
                    "`{risk_claim}` claim must be a string or a number"
                )));
            }
        };
        Ok(UserIdentity {
            id,
            groups,
            risk,
            sid: c.get("sid").and_then(Value::as_str).map(str::to_owned),
            issued_at: c.get("iat").and_then(Value::as_i64).unwrap_or(0),
        })
    }
}

/// Mints a development user token (the `zt4ai dev-idp token` command).
pub fn mint_dev_token(
    keys: &KeyRing,
    user: &str,
    groups: &[String],
    risk: Option<&str>,
    ttl: i64,
    now: i64,
) -> Result<String, String> {
    let sid: [u8; 8] = crate::keys::random_bytes().map_err(|e| e.to_string())?;
    let mut claims = serde_json::json!({
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": user,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "sid": zt4ai_core::hex(&sid),
    });
    if !groups.is_empty() {
        claims["groups"] = serde_json::json!(groups);
    }
    if let Some(r) = risk {
        claims["risk"] = serde_json::json!(r);
    }
    keys.sign(&claims, "JWT")
}

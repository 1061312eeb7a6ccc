//! Identity: who is asking, proved on every request.
//!
//! * **Users** prove themselves with a token from the organisation's identity
//!   provider (an OIDC JWT checked against the issuer's JWKS), or, when none is
//!   configured, from zt4ai's built-in development identity provider.
//! * **Agents** prove themselves to the token endpoint with an assertion signed by
//!   their registered key (or, for development, a client secret), and exchange the
//!   user's token for a short-lived **delegated token** (OAuth 2.0 Token Exchange,
//!   RFC 8693): `sub` is the user, nested `act` claims name the actor chain, and an
//!   optional task scope narrows what the token may touch. A sub-agent exchanges
//!   its parent's delegated token the same way and can never get more than it.
//! * **Every request** to an enforcement point carries a delegated token, verified
//!   here: signature (EdDSA, zt4ai's own keys), expiry and not-before within the
//!   allowed skew, issuer, audience, chain depth, and revocation — a revoked token,
//!   a suspended or retired agent anywhere in the chain, a token issued to an agent
//!   before it was quarantined (even once the agent is resumed), a revoked user
//!   session. Revocations are re-read at most once a second (the kill switch).

mod claims;
mod dpop;
mod keys;
mod revocations;
mod users;

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zt4ai_core::inventory::{AgentState, JwksSource};
use zt4ai_core::{AgentId, Inventory, SessionId, UserId, unix_now};
use zt4ai_session::SessionStore;

pub use claims::{Actor, Confirmation, DelegatedClaims};
use dpop::ProofTarget;
pub use dpop::{DPOP_ALGS, token_hash};
pub use jsonwebtoken::DecodingKey;
pub use jsonwebtoken::jwk::Jwk;
pub use keys::{KeyError, KeyRing};
pub use revocations::{MAX_STALENESS, Revocations};
pub use users::{
    DEV_AUDIENCE, DEV_ISSUER, JwksLocation, UserIdentity, UserVerifier, mint_dev_token,
};
pub use zt4ai_core::{Scope, ScopeKind};

/// RFC 8693 grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of a JWT.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 token type of an access token.
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type of an OIDC ID token.
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The `iss` and `aud` of zt4ai's delegated tokens, and the `aud` agents' assertions carry.
pub const ISSUER: &str = "zt4ai";
/// Longest lifetime of an agent's signed assertion.
pub const MAX_ASSERTION_SECONDS: i64 = 300;
/// Signing key file, under the data directory.
pub const SIGNING_KEYS: &str = "keys/signing.json";
/// Development identity provider key file, under the data directory.
pub const DEV_IDP_KEYS: &str = "keys/dev-idp.json";

/// Why a token or an exchange was refused: an OAuth error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct AuthError {
    /// HTTP status to answer with.
    pub status: u16,
    /// OAuth / bearer-token error code (`invalid_token`, `invalid_grant`…).
    pub code: &'static str,
    /// What is wrong.
    pub description: String,
}

impl AuthError {
    fn new(status: u16, code: &'static str, d: impl Into<String>) -> Self {
        AuthError {
            status,
            code,
            description: d.into(),
        }
    }
    /// The bearer token is missing, malformed, expired, revoked or not for us (401).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(401, "invalid_token", d)
    }
    /// A malformed token request (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", d)
    }
    /// The subject token is not acceptable (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", d)
    }
    /// The agent could not be authenticated (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", d)
    }
    /// The requested scope is wider than allowed (400).
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_scope", d)
    }
    /// A dependency (store, IdP) is unavailable: fail closed (503).
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new(503, "temporarily_unavailable", d)
    }
}

/// A request refused at an enforcement point, with the actor chain of its
/// token when the token itself was genuine and only its proof of possession
/// failed: someone holds that chain's token, which the audit log should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub error: AuthError,
    /// The chain the (genuine) token proves, if it got that far.
    pub holder: Option<Box<VerifiedChain>>,
}

impl From<AuthError> for Refused {
    fn from(error: AuthError) -> Self {
        Refused {
            error,
            holder: None,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::ops::Deref for Refused {
    type Target = AuthError;
    fn deref(&self) -> &AuthError {
        &self.error
    }
}

/// A sentence for a `jsonwebtoken` error.
pub(crate) fn jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet (nbf is in the future)".into(),
        K::InvalidSignature => "signature does not verify".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidSubject => "wrong subject".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not accepted".into(),
        K::MissingRequiredClaim(c) => format!("missing `{c}` claim"),
        K::MissingAlgorithm => "no algorithm".into(),
        _ => format!("malformed ({e})"),
    }
}

/// A verified delegated token: the actor chain it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The user.
    pub user: UserId,
    /// The agents, first delegate first, current actor last.
    pub agents: Vec<AgentId>,
    /// The task scope, if the token has one.
    pub scope: Option<Scope>,
    /// The IdP's risk score for the user's account.
    pub risk: Option<u8>,
    /// Token id.
    pub jti: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

impl VerifiedChain {
    /// The actor chain the token proves: its user and agents.
    pub fn actor_chain(&self) -> zt4ai_core::ActorChain {
        zt4ai_core::ActorChain {
            user: self.user.clone(),
            agents: self.agents.clone(),
        }
    }

    /// The information-flow session of everything done with this token
    /// through the MCP gateway and the LLM gateway: its user's and outermost
    /// agent's ([`SessionId::flow`]), shared with every other token of the
    /// two, so that renewing a token, exchanging a new one or handing work to
    /// a sub-agent sheds nothing.
    pub fn flow_session(&self) -> String {
        SessionId::flow(&self.user, self.agents.first()).into()
    }
}

/// A token-exchange request (RFC 8693 §2.1), as posted to `/oauth/token`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ExchangeRequest {
    /// Must be [`TOKEN_EXCHANGE`].
    #[serde(default)]
    pub grant_type: String,
    /// The user's token, or the parent agent's delegated token.
    #[serde(default)]
    pub subject_token: String,
    /// Its type.
    #[serde(default)]
    pub subject_token_type: String,
    /// The agent's signed assertion.
    #[serde(default)]
    pub actor_token: Option<String>,
    /// Its type ([`TOKEN_TYPE_JWT`]).
    #[serde(default)]
    pub actor_token_type: Option<String>,
    /// Task scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// Requested audience; only zt4ai itself.
    #[serde(default)]
    pub audience: Option<String>,
    /// Requested token type; only access tokens.
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// Development fallback: the agent id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Development fallback: the agent's secret.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The request's `DPoP` proof and the token endpoint's URL as the client
    /// reached it: the delegated token is then bound to the proof's key. From
    /// the request's header, never from its form.
    #[serde(skip)]
    pub dpop: Option<DpopProof>,
}

/// A `DPoP` header and the URL it must be for.
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// The proof (a compact JWT).
    pub proof: String,
    /// The URL of the endpoint the request reached.
    pub url: String,
}

/// How a request presents its delegated token.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>`, with the request's `DPoP` proof if it had one.
    Dpop {
        /// The token.
        token: &'a str,
        /// The proof.
        proof: Option<&'a str>,
    },
}

/// A token-exchange response (RFC 8693 §2.2.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeResponse {
    /// The delegated token.
    pub access_token: String,
    /// Always [`TOKEN_TYPE_ACCESS`].
    pub issued_token_type: String,
    /// `DPoP` for a token bound to the proof's key, `Bearer` otherwise.
    pub token_type: String,
    /// Seconds until expiry.
    pub expires_in: i64,
    /// The granted scope, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Hex SHA-256 of an agent's client secret, as the registry stores it.
pub fn secret_hash(secret: &str) -> String {
    zt4ai_core::hex(&sha2::Sha256::digest(secret.as_bytes()))
}

/// A new random client secret (development fallback for agents).
pub fn new_secret() -> Result<String, KeyError> {
    let b: [u8; 24] = keys::random_bytes()?;
    Ok(format!("zs_{}", zt4ai_core::hex(&b)))
}

/// The id and expiry of a delegated token, read without verifying it (to revoke
/// a token: revoking a forged one does no harm).
pub fn token_id(token: &str) -> Option<(String, i64)> {
    let v = unverified_claims(token)?;
    Some((v.get("jti")?.as_str()?.to_owned(), v.get("exp")?.as_i64()?))
}

/// A JWT's claims, read without checking anything: only to find which key would
/// verify it, or to name it for revocation.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn new_jti() -> Result<String, AuthError> {
    let b: [u8; 16] = keys::random_bytes().map_err(|e| AuthError::unavailable(e.to_string()))?;
    Ok(zt4ai_core::hex(&b))
}

/// A token whose signature and claims have been checked.
struct Checked {
    claims: DelegatedClaims,
    user: UserId,
    agents: Vec<AgentId>,
    scope: Option<Scope>,
}

struct TokenCache {
    map: std::collections::HashMap<String, Arc<Checked>>,
    capacity: usize,
}

/// Default bound of the verified-token cache.
pub const TOKEN_CACHE: usize = 16_384;

/// zt4ai's identity service: issues and verifies delegated tokens.
pub struct Identity {
    verified: parking_lot::Mutex<TokenCache>,
    inventory: Arc<Inventory>,
    store: Arc<SessionStore>,
    keys: KeyRing,
    users: UserVerifier,
    revocations: Revocations,
    ttl: i64,
    skew: i64,
    max_depth: usize,
    allow_secrets: bool,
    require_dpop: bool,
    replay: dpop::Replay,
    clock: fn() -> i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// Opens the identity service: signing keys in `data_dir` (created on first
    /// run), the user-token verifier (the inventory's identity provider, JWKS files
    /// resolved against `inventory_dir`, or the development one), and the agent
    /// registry seeded with the inventory's agents.
    pub fn open(
        inventory: Arc<Inventory>,
        store: Arc<SessionStore>,
        data_dir: &Path,
        inventory_dir: Option<&Path>,
    ) -> Result<Identity, String> {
        let now = unix_now();
        let keys = KeyRing::open(&data_dir.join(SIGNING_KEYS), now).map_err(|e| e.to_string())?;
        let settings = &inventory.identity;
        let skew = settings.clock_skew.as_secs();
        let users = match &settings.provider {
            Some(p) => {
                let location = match &p.jwks {
                    JwksSource::File(f) => JwksLocation::File(match inventory_dir {
                        Some(dir) => dir.join(f),
                        None => f.into(),
                    }),
                    JwksSource::Url(u) => JwksLocation::Url(u.clone()),
                };
                let ca = p.jwks_ca_file.as_ref().map(|f| match inventory_dir {
                    Some(dir) => dir.join(f),
                    None => f.into(),
                });
                UserVerifier::oidc(
                    p.clone(),
                    location,
                    ca.as_deref(),
                    skew,
                    &inventory.settings,
                )?
            }
            None => UserVerifier::dev(
                KeyRing::open(&data_dir.join(DEV_IDP_KEYS), now).map_err(|e| e.to_string())?,
                skew,
                &inventory.settings,
            ),
        };
        for a in inventory.agents.values() {
            store
                .seed_agent(a.id.as_str(), a.owner.as_str(), &a.purpose, a.state, now)
                .map_err(|e| format!("seeding the agent registry: {e}"))?;
        }
        let identity = Identity {
            ttl: i64::try_from(settings.token_ttl.as_secs()).unwrap_or(900),
            skew: i64::try_from(skew).unwrap_or(60),
            max_depth: settings.max_chain_depth,
            allow_secrets: settings.allow_client_secrets,
            require_dpop: settings.require_dpop,
            replay: dpop::Replay::new(dpop::REPLAY_CAPACITY),
            inventory,
            store,
            keys,
            users,
            revocations: Revocations::new(),
            clock: unix_now,
            verified: parking_lot::Mutex::new(TokenCache {
                map: std::collections::HashMap::new(),
                capacity: TOKEN_CACHE,
            }),
        };
        identity
            .revocations
            .refresh(&identity.store, now, true)
            .map_err(|e| e.to_string())?;
        Ok(identity)
    }

    /// Replaces the clock (Unix seconds), for tests.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Loads what must be loaded before serving (the IdP's JWKS).
    pub async fn load(&self) -> Result<(), AuthError> {
        self.users.load().await
    }

    /// The user-token verifier.
    pub fn users(&self) -> &UserVerifier {
        &self.users
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The store.
    pub fn store(&self) -> &Arc<SessionStore> {
        &self.store
    }

    /// Whether agents may authenticate with a client secret.
    pub fn allows_secrets(&self) -> bool {
        self.allow_secrets
    }

    /// The inventory.
    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// Delegated-token lifetime in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The public keys of zt4ai's delegated tokens.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.refresh();
        self.keys.jwks((self.clock)(), self.ttl + self.skew)
    }

    /// Call after changing the registry or revocations in this process.
    pub fn changed(&self) {
        self.revocations.invalidate();
    }

    /// Whether the IdP session a verified user token belongs to has been
    /// revoked (one `sid`, or every session of the user up to a time): for
    /// endpoints that accept user tokens directly, such as an approver's.
    pub fn user_revoked(&self, user: &UserIdentity) -> Result<bool, AuthError> {
        self.fresh((self.clock)())?;
        Ok(self
            .revocations
            .user_session_revoked(&user.id, user.sid.as_deref(), user.issued_at))
    }

    fn fresh(&self, now: i64) -> Result<(), AuthError> {
        self.revocations
            .refresh(&self.store, now, false)
            .map_err(|e| AuthError::unavailable(format!("revocation list unavailable: {e}")))
    }

    fn active_agent(&self, agent: &str) -> Result<(), AuthError> {
        match self.revocations.agent_state(agent) {
            Some(AgentState::Active) => Ok(()),
            Some(state) => Err(AuthError::invalid_token(format!(
                "agent `{agent}` is {}",
                state.as_str()
            ))),
            None => Err(AuthError::invalid_token(format!(
                "agent `{agent}` is not registered"
            ))),
        }
    }

    /// Verifies a delegated token, without the proof of possession a bound
    /// token needs at an enforcement point ([`Self::verify_request`]).
    pub fn verify(&self, token: &str) -> Result<VerifiedChain, AuthError> {
        self.verify_checked(token).map(|(v, _)| v)
    }

    /// Whether every delegated token must be bound to a key (DPoP).
    pub fn requires_dpop(&self) -> bool {
        self.require_dpop
    }

    /// Verifies the delegated token a request to an enforcement point presents,
    /// with its proof of possession when the token is bound to a key: `method`
    /// and `url` are the request's, as the client addressed it (read only when
    /// a proof is checked).
    pub fn verify_request(
        &self,
        presented: Presented<'_>,
        method: &str,
        url: &str,
    ) -> Result<VerifiedChain, Refused> {
        let token = match presented {
            Presented::Bearer(t) | Presented::Dpop { token: t, .. } => t,
        };
        let (chain, checked) = self.verify_checked(token)?;
        self.possession(presented, token, &checked, method, url)
            .map_err(|error| Refused {
                error,
                holder: Some(Box::new(chain.clone())),
            })?;
        Ok(chain)
    }

    /// Whether a verified token is presented as it must be: a bound one with a
    /// valid proof by its key for this request, an unbound one as a bearer
    /// token where the deployment allows them.
    fn possession(
        &self,
        presented: Presented<'_>,
        token: &str,
        checked: &Checked,
        method: &str,
        url: &str,
    ) -> Result<(), AuthError> {
        let proof = match (&checked.claims.cnf, presented) {
            (Some(cnf), Presented::Dpop { proof, .. }) => {
                proof.map(|p| (cnf, p)).ok_or_else(|| {
                    AuthError::new(
                        401,
                        "invalid_dpop_proof",
                        "the request has no `DPoP` proof for its DPoP-bound token",
                    )
                })?
            }
            (Some(_), Presented::Bearer(_)) => {
                return Err(AuthError::invalid_token(
                    "the token is bound to a key: present it as `Authorization: DPoP <token>` with a `DPoP` proof",
                ));
            }
            (None, Presented::Dpop { .. }) => {
                return Err(AuthError::invalid_token(
                    "the token is not bound to a key: it cannot be presented with the DPoP scheme",
                ));
            }
            (None, Presented::Bearer(_)) if self.require_dpop => {
                return Err(AuthError::invalid_token(
                    "this deployment accepts only DPoP-bound tokens; exchange a new token with a `DPoP` proof",
                ));
            }
            (None, Presented::Bearer(_)) => return Ok(()),
        };
        let (cnf, proof) = proof;
        let target = ProofTarget {
            method,
            url,
            access_token: Some(token),
        };
        let now = (self.clock)();
        let jkt = dpop::verify_proof(proof, &target, &self.replay, now, self.skew, 401)?;
        if jkt != cnf.jkt {
            return Err(AuthError::new(
                401,
                "invalid_dpop_proof",
                "the DPoP proof is signed by a key other than the one the token is bound to",
            ));
        }
        Ok(())
    }

    /// [`Self::verify`], with the token's checked claims.
    fn verify_checked(&self, token: &str) -> Result<(VerifiedChain, Arc<Checked>), AuthError> {
        let now = (self.clock)();
        let checked = self.checked(token, now)?;
        self.fresh(now)?;
        let claims = &checked.claims;
        // Revocation is checked on every request, cached token or not.
        if self.revocations.token_revoked(&claims.jti) {
            return Err(AuthError::invalid_token(format!(
                "token `{}` has been revoked",
                claims.jti
            )));
        }
        for a in &checked.agents {
            self.active_agent(a.as_str())?;
            // Quarantine revokes every token the agent held: resuming it later
            // does not revive them, only tokens issued after the cut-off count.
            if self
                .revocations
                .agent_tokens_revoked(a.as_str(), claims.iat)
            {
                return Err(AuthError::invalid_token(format!(
                    "tokens of agent `{a}` issued before it was quarantined are revoked"
                )));
            }
        }
        if self.revocations.user_session_revoked(
            &claims.sub,
            claims.sid.as_deref(),
            claims.auth_time,
        ) {
            return Err(AuthError::invalid_token(format!(
                "the session of user `{}` has been revoked",
                claims.sub
            )));
        }
        let chain = VerifiedChain {
            user: checked.user.clone(),
            agents: checked.agents.clone(),
            scope: checked.scope.clone(),
            risk: claims.risk,
            jti: claims.jti.clone(),
            exp: claims.exp,
        };
        Ok((chain, checked))
    }

    /// Bounds the cache of tokens whose signature and claims have been checked
    /// (0 checks every token afresh).
    pub fn set_token_cache(&self, entries: usize) {
        let mut c = self.verified.lock();
        c.capacity = entries;
        c.map.clear();
    }

    /// The signature, claims and chain of a token: checked once per token, then
    /// from the cache while it has not expired. A token is cached under its exact
    /// bytes, so a cached entry is exactly what verification would give again.
    fn checked(&self, token: &str, now: i64) -> Result<Arc<Checked>, AuthError> {
        if let Some(c) = self.verified.lock().map.get(token).cloned() {
            if now > c.claims.exp + self.skew {
                return Err(AuthError::invalid_token("delegated token: expired"));
            }
            return Ok(c);
        }
        let claims = self.decode_delegated(token)?;
        let chain = claims.act.chain();
        if chain.len() > self.max_depth {
            return Err(AuthError::invalid_token(format!(
                "actor chain of {} agents is longer than the limit of {}",
                chain.len(),
                self.max_depth
            )));
        }
        let user = UserId::new(claims.sub.clone())
            .map_err(|e| AuthError::invalid_token(format!("`sub`: {e}")))?;
        let agents = chain
            .iter()
            .map(|a| AgentId::new(a.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuthError::invalid_token(format!("`act`: {e}")))?;
        let scope = match &claims.scope {
            Some(s) => Some(
                Scope::parse(s, &self.inventory)
                    .map_err(|e| AuthError::invalid_token(format!("`scope`: {e}")))?,
            ),
            None => None,
        };
        let checked = Arc::new(Checked {
            claims,
            user,
            agents,
            scope,
        });
        let mut cache = self.verified.lock();
        if cache.capacity > 0 {
            if cache.map.len() >= cache.capacity {
                cache.map.clear();
            }
            cache.map.insert(token.to_owned(), Arc::clone(&checked));
        }
        Ok(checked)
    }

    /// Checks signature, algorithm, issuer, audience and times of a delegated token.
    fn decode_delegated(&self, token: &str) -> Result<DelegatedClaims, AuthError> {
        let payload = self
            .keys
            .verify_compact(token)
            .map_err(|e| AuthError::invalid_token(format!("delegated token: {e}")))?;
        let c: DelegatedClaims = serde_json::from_slice(&payload).map_err(|e| {
            AuthError::invalid_token(format!("delegated token: malformed claims ({e})"))
        })?;
        if c.iss != ISSUER {
            return Err(AuthError::invalid_token("delegated token: wrong issuer"));
        }
        if c.aud != ISSUER {
            return Err(AuthError::invalid_token("delegated token: wrong audience"));
        }
        let now = (self.clock)();
        if now > c.exp.saturating_add(self.skew) {
            return Err(AuthError::invalid_token("delegated token: expired"));
        }
        if c.nbf > now.saturating_add(self.skew) {
            return Err(AuthError::invalid_token(
                "delegated token: not valid yet (nbf is in the future)",
            ));
        }
        Ok(c)
    }

    /// Authenticates the agent making a token request: its signed assertion, or
    /// (if allowed) its client secret. Returns the agent id.
    fn authenticate_agent(&self, req: &ExchangeRequest, now: i64) -> Result<String, AuthError> {
        if let Some(assertion) = &req.actor_token {
            if req.actor_token_type.as_deref() != Some(TOKEN_TYPE_JWT) {
                return Err(AuthError::invalid_request(format!(
                    "`actor_token_type` must be `{TOKEN_TYPE_JWT}`"
                )));
            }
            return self.verify_assertion(assertion, now);
        }
        match (&req.client_id, &req.client_secret) {
            (Some(id), Some(secret)) if self.allow_secrets => {
                let stored = self
                    .store
                    .agent_secret_hash(id)
                    .map_err(|e| AuthError::invalid_client(e.to_string()))?;
                match stored {
                    Some(h) if h == secret_hash(secret) => Ok(id.clone()),
                    _ => Err(AuthError::invalid_client(format!(
                        "wrong client secret for agent `{id}`"
                    ))),
                }
            }
            (Some(_), Some(_)) => Err(AuthError::invalid_client(
                "client secrets are not accepted; sign an actor assertion with the agent's key",
            )),
            _ => Err(AuthError::invalid_client(
                "no `actor_token`: the agent must prove itself with an assertion signed by its registered key",
            )),
        }
    }

    fn verify_assertion(&self, assertion: &str, now: i64) -> Result<String, AuthError> {
        #[derive(Deserialize)]
        struct Assertion {
            iss: String,
            sub: String,
            exp: i64,
            #[serde(default)]
            iat: Option<i64>,
            jti: String,
        }
        let header = jsonwebtoken::decode_header(assertion).map_err(|e| {
            AuthError::invalid_client(format!("actor token is not a JWT: {}", jwt_error(&e)))
        })?;
        // Read the claimed agent first, to find its key; nothing is trusted until
        // the signature verifies with that key.
        let unverified = unverified_claims(assertion)
            .and_then(|v| v.get("sub").and_then(|s| s.as_str()).map(str::to_owned))
            .ok_or_else(|| AuthError::invalid_client("actor token has no `sub`"))?;
        let agent = self
            .store
            .agent(&unverified)
            .map_err(|e| AuthError::invalid_client(e.to_string()))?;
        let jwk_text = agent.public_jwk.ok_or_else(|| {
            AuthError::invalid_client(format!("agent `{unverified}` has no registered key"))
        })?;
        let jwk: Jwk = serde_json::from_str(&jwk_text).map_err(|e| {
            AuthError::invalid_client(format!("agent `{unverified}` has an invalid key: {e}"))
        })?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| {
            AuthError::invalid_client(format!("agent `{unverified}` has an unusable key: {e}"))
        })?;
        if !matches!(
            header.alg,
            Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256
        ) {
            return Err(AuthError::invalid_client(format!(
                "actor token algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut v = Validation::new(header.alg);
        v.leeway = u64::try_from(self.skew).unwrap_or(60);
        v.set_audience(&[ISSUER]);
        v.set_issuer(&[unverified.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "jti"]);
        let a = jsonwebtoken::decode::<Assertion>(assertion, &key, &v)
            .map_err(|e| AuthError::invalid_client(format!("actor token: {}", jwt_error(&e))))?
            .claims;
        if a.iss != a.sub {
            return Err(AuthError::invalid_client(
                "actor token `iss` and `sub` differ",
            ));
        }
        if a.exp - a.iat.unwrap_or(now).min(now) > MAX_ASSERTION_SECONDS {
            return Err(AuthError::invalid_client(format!(
                "actor token lives longer than {MAX_ASSERTION_SECONDS} s"
            )));
        }
        let first = self
            .store
            .use_assertion(&a.jti, a.exp, now)
            .map_err(|e| AuthError::unavailable(e.to_string()))?;
        if !first {
            return Err(AuthError::invalid_client(format!(
                "actor token `{}` was already used",
                a.jti
            )));
        }
        Ok(a.sub)
    }

    /// OAuth 2.0 Token Exchange: the subject token (a user's, or a parent agent's
    /// delegated token) for a delegated token naming the authenticated agent as
    /// the current actor.
    pub async fn exchange(&self, req: &ExchangeRequest) -> Result<ExchangeResponse, AuthError> {
        let now = (self.clock)();
        if req.grant_type != TOKEN_EXCHANGE {
            return Err(AuthError::new(
                400,
                "unsupported_grant_type",
                format!("`grant_type` must be `{TOKEN_EXCHANGE}`"),
            ));
        }
        if req.subject_token.is_empty() {
            return Err(AuthError::invalid_request("`subject_token` is required"));
        }
        if !matches!(
            req.subject_token_type.as_str(),
            TOKEN_TYPE_JWT | TOKEN_TYPE_ACCESS | TOKEN_TYPE_ID
        ) {
            return Err(AuthError::invalid_request(format!(
                "`subject_token_type` must be `{TOKEN_TYPE_JWT}`, `{TOKEN_TYPE_ACCESS}` or `{TOKEN_TYPE_ID}`"
            )));
        }
        if let Some(aud) = &req.audience
            && aud != ISSUER
        {
            return Err(AuthError::new(
                400,
                "invalid_target",
                format!("zt4ai issues tokens only for audience `{ISSUER}`"),
            ));
        }
        if let Some(t) = &req.requested_token_type
            && t != TOKEN_TYPE_ACCESS
            && t != TOKEN_TYPE_JWT
        {
            return Err(AuthError::invalid_request(format!(
                "`requested_token_type` must be `{TOKEN_TYPE_ACCESS}`"
            )));
        }
        let jkt = match &req.dpop {
            Some(d) => {
                let target = ProofTarget {
                    method: "POST",
                    url: &d.url,
                    access_token: None,
                };
                Some(dpop::verify_proof(
                    &d.proof,
                    &target,
                    &self.replay,
                    now,
                    self.skew,
                    400,
                )?)
            }
            None if self.require_dpop => {
                return Err(AuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "this deployment issues only DPoP-bound tokens: send a `DPoP` proof with the request",
                ));
            }
            None => None,
        };
        let actor = self.authenticate_agent(req, now)?;
        self.fresh(now)?;
        self.active_agent(&actor)
            .map_err(|e| AuthError::invalid_client(e.description))?;
        let actor_id =
            AgentId::new(actor.clone()).map_err(|e| AuthError::invalid_client(e.to_string()))?;
        let inv = &self.inventory;

        // The subject: a parent agent's delegated token (ours), or a user's token.
        let ours = jsonwebtoken::decode_header(&req.subject_token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|kid| self.keys.has(&kid));
        let (user, mut chain, parent_scope, risk, sid, auth_time) = if ours {
            let (parent, checked) = self.verify_checked(&req.subject_token).map_err(|e| {
                AuthError::invalid_grant(format!("subject token: {}", e.description))
            })?;
            let Some(last) = parent.agents.last() else {
                return Err(AuthError::invalid_grant("subject token names no agent"));
            };
            // A binding is never shed along the chain.
            if checked.claims.cnf.is_some() && jkt.is_none() {
                return Err(AuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "the subject token is bound to a key (DPoP): the token exchanged for it must be bound too; send a `DPoP` proof",
                ));
            }
            let may = inv
                .agents
                .get(last)
                .is_some_and(|a| a.delegates_to.contains(&actor_id));
            if !may {
                return Err(AuthError::invalid_grant(format!(
                    "agent `{last}` may not delegate to `{actor}` (not in its `delegates_to`)"
                )));
            }
            (
                parent.user.to_string(),
                parent
                    .agents
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                parent.scope,
                parent.risk,
                checked.claims.sid.clone(),
                checked.claims.auth_time,
            )
        } else {
            let u = self.users.verify(&req.subject_token).await.map_err(|e| {
                if e.status == 503 {
                    e
                } else {
                    AuthError::invalid_grant(format!("subject token: {}", e.description))
                }
            })?;
            if self
                .revocations
                .user_session_revoked(&u.id, u.sid.as_deref(), u.issued_at)
            {
                return Err(AuthError::invalid_grant(format!(
                    "the session of user `{}` has been revoked",
                    u.id
                )));
            }
            (u.id, Vec::new(), None, u.risk, u.sid, u.issued_at)
        };
        let user_id = UserId::new(user.clone())
            .map_err(|e| AuthError::invalid_grant(format!("user: {e}")))?;
        let Some(user_rec) = inv.users.get(&user_id) else {
            return Err(AuthError::invalid_grant(format!(
                "user `{user}` is not in the inventory"
            )));
        };
        if chain.iter().any(|a| a == &actor) {
            return Err(AuthError::invalid_grant(format!(
                "agent `{actor}` is already in the actor chain"
            )));
        }
        chain.push(actor.clone());
        if chain.len() > self.max_depth {
            return Err(AuthError::invalid_grant(format!(
                "the actor chain would be {} agents long; the limit is {}",
                chain.len(),
                self.max_depth
            )));
        }

        // Scope: only ever narrower.
        let scope = match (&req.scope, &parent_scope) {
            (Some(text), _) if !text.trim().is_empty() => {
                let mut s = Scope::parse(text, inv).map_err(AuthError::invalid_scope)?;
                if let Some(parent) = &parent_scope {
                    s = s.inherit(parent);
                }
                if let Some(item) = s.outside(&user_rec.rights, inv) {
                    return Err(AuthError::invalid_scope(format!(
                        "`{item}` is beyond the rights of user `{user}`"
                    )));
                }
                for a in &chain {
                    let grants = AgentId::new(a.clone())
                        .ok()
                        .and_then(|id| inv.agents.get(&id))
                        .map(|a| &a.grants);
                    match grants.map(|g| s.outside(g, inv)) {
                        Some(None) => {}
                        Some(Some(item)) => {
                            return Err(AuthError::invalid_scope(format!(
                                "`{item}` is beyond the grants of agent `{a}`"
                            )));
                        }
                        None => {
                            return Err(AuthError::invalid_scope(format!(
                                "agent `{a}` has no grants in the inventory"
                            )));
                        }
                    }
                }
                if let Some(parent) = &parent_scope
                    && let Some(item) = s.not_within(parent, inv)
                {
                    return Err(AuthError::invalid_scope(format!(
                        "`{item}` is wider than the parent agent's scope"
                    )));
                }
                Some(s)
            }
            // No scope asked: a sub-agent inherits its parent's.
            _ => parent_scope,
        };
        let claims = DelegatedClaims {
            iss: ISSUER.into(),
            sub: user,
            aud: ISSUER.into(),
            iat: now,
            nbf: now,
            exp: now + self.ttl,
            jti: new_jti()?,
            act: Actor::from_chain(&chain)
                .ok_or_else(|| AuthError::invalid_grant("empty actor chain"))?,
            scope: scope.as_ref().map(ToString::to_string),
            risk,
            sid,
            auth_time,
            cnf: jkt.map(|jkt| Confirmation { jkt }),
        };
        let token = self
            .keys
            .sign(&claims, "at+jwt")
            .map_err(AuthError::unavailable)?;
        tracing::info!(user = %claims.sub, chain = %chain.join(" → "), jti = %claims.jti,
            scope = claims.scope.as_deref().unwrap_or("-"), "delegated token issued");
        Ok(ExchangeResponse {
            access_token: token,
            issued_token_type: TOKEN_TYPE_ACCESS.into(),
            token_type: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            }
            .into(),
            expires_in: self.ttl,
            scope: claims.scope,
        })
    }

    /// Revokes a delegated token (given whole, or by id with its expiry).
    pub fn revoke_token(
        &self,
        jti: &str,
        exp: i64,
        by: &str,
        reason: Option<&str>,
    ) -> Result<bool, AuthError> {
        let now = (self.clock)();
        let r = self
            .store
            .revoke_token(jti, exp.max(now + self.ttl + self.skew), by, reason, now)
            .map_err(|e| AuthError::unavailable(e.to_string()))?;
        self.changed();
        Ok(r)
    }

    /// Rotates the signing key; tokens signed with the old one stay valid until
    /// they expire. Returns the new key id.
    pub fn rotate_keys(&self) -> Result<String, String> {
        self.keys
            .rotate((self.clock)(), self.ttl + self.skew)
            .map_err(|e| e.to_string())
    }

    /// Signs claims with zt4ai's active key (tests and tools that need a
    /// delegated token with particular claims).
    pub fn sign_claims(&self, claims: &DelegatedClaims) -> Result<String, String> {
        self.keys.sign(claims, "at+jwt")
    }
}

#[cfg(test)]
mod tests;

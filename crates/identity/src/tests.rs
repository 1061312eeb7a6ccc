use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{EncodingKey, Header};
use zt4ai_session::NewAgent;

use super::*;

const INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");

struct Fixture {
    identity: Identity,
    dev: KeyRing,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::from_yaml_str(INVENTORY, "inventory.yaml").unwrap());
    let store = Arc::new(SessionStore::open(&dir.path().join("zt4ai.db")).unwrap());
    let identity = Identity::open(inv, store, dir.path(), None).unwrap();
    let dev = KeyRing::open(&dir.path().join(DEV_IDP_KEYS), 0).unwrap();
    Fixture {
        identity,
        dev,
        _dir: dir,
    }
}

fn user_token(f: &Fixture, user: &str, risk: Option<&str>) -> String {
    mint_dev_token(&f.dev, user, &[], risk, 600, unix_now()).unwrap()
}

/// An agent key pair: the JWK to register and the key to sign assertions with.
fn agent_key() -> (String, EncodingKey) {
    let seed: [u8; 32] = keys::random_bytes().unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public), "alg": "EdDSA"});
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    (jwk.to_string(), EncodingKey::from_ed_der(&der))
}

fn assertion(agent: &str, key: &EncodingKey, lifetime: i64) -> String {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": agent, "sub": agent, "aud": ISSUER,
        "iat": now, "exp": now + lifetime, "jti": new_jti().unwrap(),
    });
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key).unwrap()
}

fn with_secret(f: &Fixture, agent: &str) -> String {
    let secret = new_secret().unwrap();
    f.identity
        .store()
        .set_agent_credentials(agent, None, Some(&secret_hash(&secret)), "test", unix_now())
        .unwrap();
    secret
}

fn exchange_req(subject: &str, agent: &str, secret: &str, scope: Option<&str>) -> ExchangeRequest {
    ExchangeRequest {
        grant_type: TOKEN_EXCHANGE.into(),
        subject_token: subject.into(),
        subject_token_type: TOKEN_TYPE_JWT.into(),
        client_id: Some(agent.into()),
        client_secret: Some(secret.into()),
        scope: scope.map(str::to_owned),
        ..ExchangeRequest::default()
    }
}

fn block<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

#[test]
fn user_token_exchanged_for_a_delegated_token_that_verifies() {
    let f = fixture();
    let secret = with_secret(&f, "report-agent");
    let t = block(f.identity.exchange(&exchange_req(
        &user_token(&f, "alice", Some("high")),
        "report-agent",
        &secret,
        None,
    )))
    .unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 900);
    let v = f.identity.verify(&t.access_token).unwrap();
    assert_eq!(v.user.as_str(), "alice");
    assert_eq!(v.agents, vec![AgentId::new("report-agent").unwrap()]);
    assert_eq!(
        v.risk,
        Some(70),
        "the IdP's `high` maps to the high threshold"
    );
    let header = jsonwebtoken::decode_header(&t.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
}

#[test]
fn signed_assertion_authenticates_and_cannot_be_replayed() {
    let f = fixture();
    let (jwk, key) = agent_key();
    f.identity
        .store()
        .set_agent_credentials("report-agent", Some(&jwk), None, "test", unix_now())
        .unwrap();
    let a = assertion("report-agent", &key, 60);
    let req = ExchangeRequest {
        grant_type: TOKEN_EXCHANGE.into(),
        subject_token: user_token(&f, "alice", None),
        subject_token_type: TOKEN_TYPE_JWT.into(),
        actor_token: Some(a.clone()),
        actor_token_type: Some(TOKEN_TYPE_JWT.into()),
        ..ExchangeRequest::default()
    };
    assert!(block(f.identity.exchange(&req)).is_ok());
    let e = block(f.identity.exchange(&req)).unwrap_err();
    assert_eq!(e.code, "invalid_client");
    assert!(e.description.contains("already used"), "{e}");
    // Signed by another key: refused.
    let (_, other) = agent_key();
    let forged = ExchangeRequest {
        actor_token: Some(assertion("report-agent", &other, 60)),
        ..req.clone()
    };
    let e = block(f.identity.exchange(&forged)).unwrap_err();
    assert!(e.description.contains("signature"), "{e}");
    // Too long-lived.
    let long = ExchangeRequest {
        actor_token: Some(assertion("report-agent", &key, 3600)),
        ..req
    };
    assert_eq!(
        block(f.identity.exchange(&long)).unwrap_err().code,
        "invalid_client"
    );
}

#[test]
fn sub_agent_narrows_scope_and_cannot_widen_it() {
    let f = fixture();
    let parent_secret = with_secret(&f, "report-agent");
    let child_secret = with_secret(&f, "summariser");
    let parent = block(f.identity.exchange(&exchange_req(
        &user_token(&f, "alice", None),
        "report-agent",
        &parent_secret,
        Some("tool:web.fetch tool:crm.query dataset:handbook"),
    )))
    .unwrap();
    // Narrower: fine, and the chain is alice → report-agent → summariser.
    let child = block(f.identity.exchange(&ExchangeRequest {
        subject_token_type: TOKEN_TYPE_ACCESS.into(),
        ..exchange_req(
            &parent.access_token,
            "summariser",
            &child_secret,
            Some("tool:web.fetch dataset:handbook"),
        )
    }))
    .unwrap();
    let v = f.identity.verify(&child.access_token).unwrap();
    assert_eq!(
        v.agents.iter().map(AgentId::as_str).collect::<Vec<_>>(),
        ["report-agent", "summariser"]
    );
    let s = v.scope.unwrap();
    let inv = &f.identity.inventory;
    assert!(s.allows(ScopeKind::Tool, "web.fetch", inv));
    assert!(!s.allows(ScopeKind::Tool, "crm.query", inv));
    // Wider than the parent: refused.
    let e = block(f.identity.exchange(&exchange_req(
        &parent.access_token,
        "summariser",
        &child_secret,
        Some("tool:wiki.search"),
    )))
    .unwrap_err();
    assert_eq!(e.code, "invalid_scope", "{e}");
    // Beyond the agent's own grants: refused.
    let e = block(f.identity.exchange(&exchange_req(
        &user_token(&f, "alice", None),
        "report-agent",
        &parent_secret,
        Some("tool:wiki.search"),
    )))
    .unwrap_err();
    assert!(
        e.description.contains("grants of agent `report-agent`"),
        "{e}"
    );
    // No scope asked: the sub-agent inherits the parent's.
    let inherited = block(f.identity.exchange(&exchange_req(
        &parent.access_token,
        "summariser",
        &child_secret,
        None,
    )))
    .unwrap();
    assert_eq!(inherited.scope, parent.scope);
    // An agent not in the parent's `delegates_to` cannot take the token.
    let bot_secret = with_secret(&f, "legacy-bot");
    let e = block(f.identity.exchange(&exchange_req(
        &parent.access_token,
        "legacy-bot",
        &bot_secret,
        None,
    )))
    .unwrap_err();
    assert_eq!(
        e.code, "invalid_client",
        "suspended agents are refused first: {e}"
    );
}

fn delegated(f: &Fixture, now: i64, tweak: impl FnOnce(&mut DelegatedClaims)) -> String {
    let mut c = DelegatedClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: ISSUER.into(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: new_jti().unwrap(),
        act: Actor::from_chain(&["report-agent".to_owned()]).unwrap(),
        scope: None,
        risk: None,
        sid: None,
        auth_time: now,
        cnf: None,
    };
    tweak(&mut c);
    f.identity.sign_claims(&c).unwrap()
}

#[test]
fn bad_tokens_are_refused_with_the_reason() {
    let f = fixture();
    let now = unix_now();
    let ok = delegated(&f, now, |_| {});
    assert!(f.identity.verify(&ok).is_ok());
    let cases: Vec<(String, &str)> = vec![
        (delegated(&f, now - 3600, |_| {}), "expired"),
        (delegated(&f, now, |c| c.nbf = now + 3600), "not valid yet"),
        (
            delegated(&f, now, |c| c.aud = "someone-else".into()),
            "audience",
        ),
        (delegated(&f, now, |c| c.iss = "evil".into()), "issuer"),
        (
            delegated(&f, now, |c| {
                c.act = Actor::from_chain(&["legacy-bot".to_owned()]).unwrap();
            }),
            "suspended",
        ),
        (
            delegated(&f, now, |c| {
                c.act = Actor::from_chain(&["ghost".to_owned()]).unwrap();
            }),
            "not registered",
        ),
        (
            delegated(&f, now, |c| {
                let chain: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
                c.act = Actor::from_chain(&chain).unwrap();
            }),
            "longer than the limit",
        ),
    ];
    for (token, why) in cases {
        let e = f.identity.verify(&token).unwrap_err();
        assert_eq!(e.code, "invalid_token");
        assert!(e.description.contains(why), "{why}: {e}");
    }
    // Forged: the signature of another token on these claims.
    let mut parts: Vec<&str> = ok.split('.').collect();
    let other = delegated(&f, now, |c| c.sub = "bob".into());
    let sig = other.split('.').nth(2).unwrap();
    parts[2] = sig;
    let e = f.identity.verify(&parts.join(".")).unwrap_err();
    assert!(e.description.contains("signature"), "{e}");
    // alg: none, unsigned.
    let none_header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = ok.split('.').nth(1).unwrap();
    let e = f
        .identity
        .verify(&format!("{none_header}.{body}."))
        .unwrap_err();
    assert_eq!(e.code, "invalid_token", "{e}");
    // A user token is not a delegated token.
    let e = f
        .identity
        .verify(&user_token(&f, "alice", None))
        .unwrap_err();
    assert!(e.description.contains("zt4ai does not have"), "{e}");
}

#[test]
fn revocation_and_suspension_take_effect_at_once_in_process() {
    let f = fixture();
    let now = unix_now();
    let token = delegated(&f, now, |_| {});
    let v = f.identity.verify(&token).unwrap();
    assert!(
        f.identity
            .revoke_token(&v.jti, v.exp, "test", Some("leaked"))
            .unwrap()
    );
    let e = f.identity.verify(&token).unwrap_err();
    assert!(e.description.contains("revoked"), "{e}");

    let token = delegated(&f, now, |_| {});
    f.identity
        .store()
        .set_agent_state("report-agent", AgentState::Suspended, "test", None, now)
        .unwrap();
    f.identity.changed();
    assert!(
        f.identity
            .verify(&token)
            .unwrap_err()
            .description
            .contains("suspended")
    );
    f.identity
        .store()
        .set_agent_state("report-agent", AgentState::Active, "test", None, now)
        .unwrap();
    f.identity.changed();
    assert!(f.identity.verify(&token).is_ok());
    f.identity
        .store()
        .set_agent_state("report-agent", AgentState::Retired, "test", None, now)
        .unwrap();
    f.identity.changed();
    assert!(
        f.identity
            .verify(&token)
            .unwrap_err()
            .description
            .contains("retired")
    );
}

#[test]
fn quarantine_revokes_earlier_tokens_even_after_the_agent_is_resumed() {
    let f = fixture();
    let secret = with_secret(&f, "report-agent");
    let issued = block(f.identity.exchange(&exchange_req(
        &user_token(&f, "alice", None),
        "report-agent",
        &secret,
        None,
    )))
    .unwrap();
    let token = issued.access_token;
    assert!(f.identity.verify(&token).is_ok());
    // A sub-agent's token carries the quarantined agent in its chain.
    let child = delegated(&f, unix_now(), |c| {
        c.act = Actor::from_chain(&["report-agent".to_owned(), "summariser".to_owned()]).unwrap();
    });
    let unrelated = delegated(&f, unix_now(), |c| {
        c.act = Actor::from_chain(&["summariser".to_owned()]).unwrap();
    });

    // Quarantine: suspend, and revoke every token issued so far.
    let before = unix_now();
    let store = f.identity.store();
    store
        .set_agent_state(
            "report-agent",
            AgentState::Suspended,
            "pipeline",
            None,
            before,
        )
        .unwrap();
    store
        .revoke_agent_tokens(
            "report-agent",
            before,
            "pipeline",
            Some("exfiltration"),
            before,
        )
        .unwrap();
    f.identity.changed();
    assert!(f.identity.verify(&token).is_err());

    // A human resumes the agent: its old tokens stay dead, a new one works.
    store
        .set_agent_state("report-agent", AgentState::Active, "bob", None, before)
        .unwrap();
    f.identity.changed();
    for t in [&token, &child] {
        let e = f.identity.verify(t).unwrap_err();
        assert_eq!(e.code, "invalid_token");
        assert!(
            e.description
                .contains("tokens of agent `report-agent` issued before it was quarantined"),
            "{e}"
        );
    }
    let fresh = delegated(&f, unix_now(), |c| c.iat = before + 1);
    assert_eq!(
        f.identity.verify(&fresh).unwrap().agents,
        [AgentId::new("report-agent").unwrap()]
    );
    assert!(f.identity.verify(&unrelated).is_ok());
}

#[test]
fn revoked_user_session_stops_its_tokens() {
    let f = fixture();
    let now = unix_now();
    let token = delegated(&f, now, |c| c.sid = Some("s1".into()));
    let other = delegated(&f, now, |c| c.sid = Some("s2".into()));
    f.identity
        .store()
        .revoke_user_session("alice", Some("s1"), "test", now)
        .unwrap();
    f.identity.changed();
    assert!(
        f.identity
            .verify(&token)
            .unwrap_err()
            .description
            .contains("session")
    );
    assert!(f.identity.verify(&other).is_ok());
}

#[test]
fn registering_requires_an_owner() {
    let f = fixture();
    let e = f
        .identity
        .store()
        .register_agent(&NewAgent {
            id: "new-agent",
            owner: " ",
            purpose: "x",
            public_jwk: None,
            secret_hash: None,
            by: "test",
            now: 0,
        })
        .unwrap_err();
    assert!(e.to_string().contains("owner"), "{e}");
}

static OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn shifted() -> i64 {
    unix_now() + OFFSET.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn a_cached_token_still_expires_and_is_still_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::from_yaml_str(INVENTORY, "inventory.yaml").unwrap());
    let store = Arc::new(SessionStore::open(&dir.path().join("zt4ai.db")).unwrap());
    let identity = Identity::open(inv, store, dir.path(), None)
        .unwrap()
        .with_clock(shifted);
    let f = Fixture {
        identity,
        dev: KeyRing::open(&dir.path().join(DEV_IDP_KEYS), 0).unwrap(),
        _dir: dir,
    };
    let now = unix_now();
    let token = delegated(&f, now, |c| c.exp = now + 120);
    assert!(f.identity.verify(&token).is_ok());
    assert!(f.identity.verify(&token).is_ok(), "from the cache");
    OFFSET.store(3600, std::sync::atomic::Ordering::Relaxed);
    let e = f.identity.verify(&token).unwrap_err();
    OFFSET.store(0, std::sync::atomic::Ordering::Relaxed);
    assert!(e.description.contains("expired"), "{e}");
    let v = f.identity.verify(&token).unwrap();
    f.identity
        .revoke_token(&v.jti, v.exp, "test", None)
        .unwrap();
    assert!(
        f.identity
            .verify(&token)
            .unwrap_err()
            .description
            .contains("revoked")
    );
}

/// Any change to a valid token's bytes is refused, and no input panics.
#[test]
fn tampered_and_random_tokens_are_refused_without_panicking() {
    let f = fixture();
    let token = delegated(&f, unix_now(), |_| {});
    assert!(f.identity.verify(&token).is_ok());
    f.identity.set_token_cache(0);
    let bytes = token.as_bytes();
    // Flip one character at a time across the whole token (every 3rd position keeps
    // the test fast; header, payload and signature are all covered).
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for i in (0..bytes.len()).step_by(3) {
        if bytes[i] == b'.' {
            continue;
        }
        let mut t = bytes.to_vec();
        t[i] =
            alphabet[(alphabet.iter().position(|&c| c == t[i]).unwrap_or(0) + 7) % alphabet.len()];
        let t = String::from_utf8(t).unwrap();
        // A change in the last character may only touch the signature's padding
        // bits, which base64url decoding ignores; everything else must fail.
        if let Ok(v) = f.identity.verify(&t) {
            assert_eq!(
                i,
                bytes.len() - 1,
                "tampered token accepted at byte {i}: {v:?}"
            );
        }
    }
    // Random garbage, including dots and non-ASCII.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        let len = (x % 300) as usize;
        let mut s = String::new();
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = match x % 10 {
                0 => '.',
                1 => 'é',
                _ => alphabet[(x >> 8) as usize % alphabet.len()] as char,
            };
            s.push(c);
        }
        assert!(f.identity.verify(&s).is_err());
    }
}

/// A DPoP key: its seed, public JWK and signing key.
fn dpop_key() -> ([u8; 32], serde_json::Value, EncodingKey) {
    let seed: [u8; 32] = keys::random_bytes().unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public)});
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    (seed, jwk, EncodingKey::from_ed_der(&der))
}

/// A compact JWS over exactly this header and these claims, signed with `seed`.
fn sign_raw(header: &serde_json::Value, claims: &serde_json::Value, seed: &[u8; 32]) -> String {
    use ed25519_dalek::Signer as _;
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = ed25519_dalek::SigningKey::from_bytes(seed).sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

const TOKEN_URL: &str = "http://127.0.0.1:8080/oauth/token";
const MCP_URL: &str = "http://127.0.0.1:8080/mcp";

fn proof_claims(htm: &str, htu: &str, token: Option<&str>, iat: i64) -> serde_json::Value {
    let mut c = serde_json::json!({"jti": new_jti().unwrap(), "htm": htm, "htu": htu, "iat": iat});
    if let Some(t) = token {
        c["ath"] = token_hash(t).into();
    }
    c
}

fn proof(
    key: &([u8; 32], serde_json::Value, EncodingKey),
    htm: &str,
    htu: &str,
    token: Option<&str>,
) -> String {
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.1});
    sign_raw(&header, &proof_claims(htm, htu, token, unix_now()), &key.0)
}

fn dpop_exchange(
    f: &Fixture,
    key: Option<&([u8; 32], serde_json::Value, EncodingKey)>,
) -> Result<ExchangeResponse, AuthError> {
    let secret = with_secret(f, "report-agent");
    let mut req = exchange_req(&user_token(f, "alice", None), "report-agent", &secret, None);
    req.dpop = key.map(|k| DpopProof {
        proof: proof(k, "POST", TOKEN_URL, None),
        url: TOKEN_URL.into(),
    });
    block(f.identity.exchange(&req))
}

#[test]
fn a_token_exchanged_with_a_proof_is_bound_and_needs_a_fresh_proof_on_every_request() {
    let f = fixture();
    let key = dpop_key();
    let t = dpop_exchange(&f, Some(&key)).unwrap();
    assert_eq!(t.token_type, "DPoP");
    let token = t.access_token.as_str();
    let claims = unverified_claims(token).unwrap();
    let jwk: Jwk = serde_json::from_value(key.1.clone()).unwrap();
    assert_eq!(
        claims["cnf"]["jkt"],
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
    );

    let with = |p: Option<&str>| {
        f.identity
            .verify_request(Presented::Dpop { token, proof: p }, "POST", MCP_URL)
    };
    let ok = proof(&key, "POST", MCP_URL, Some(token));
    let v = with(Some(&ok)).unwrap();
    assert_eq!(v.user.as_str(), "alice");
    // The same proof twice: a replay.
    let e = with(Some(&ok)).unwrap_err();
    assert_eq!(e.code, "invalid_dpop_proof");
    assert!(e.description.contains("already used"), "{e}");
    // As a bearer token, or without a proof: refused.
    let e = f
        .identity
        .verify_request(Presented::Bearer(token), "POST", MCP_URL)
        .unwrap_err();
    assert_eq!((e.status, e.code), (401, "invalid_token"));
    assert!(e.description.contains("bound to a key"), "{e}");
    assert_eq!(with(None).unwrap_err().code, "invalid_dpop_proof");
    // A thief with the token and a key of their own.
    let thief = dpop_key();
    let e = with(Some(&proof(&thief, "POST", MCP_URL, Some(token)))).unwrap_err();
    assert!(e.description.contains("other than"), "{e}");
    // The token was genuine: the refusal names whose it is, for the audit log.
    assert_eq!(e.holder.as_ref().map(|h| h.user.as_str()), Some("alice"));
    let forged = f
        .identity
        .verify_request(Presented::Bearer("not.a.token"), "POST", MCP_URL)
        .unwrap_err();
    assert_eq!(forged.holder, None);
    // A proof for another request, another token or another time.
    let cases = [
        (proof(&key, "GET", MCP_URL, Some(token)), "is for `GET`"),
        (
            proof(
                &key,
                "POST",
                "http://127.0.0.1:8080/v1/chat/completions",
                Some(token),
            ),
            "this request is for",
        ),
        (
            proof(&key, "POST", MCP_URL, Some("another.token.here")),
            "`ath`",
        ),
        (proof(&key, "POST", MCP_URL, None), "no `ath`"),
        (
            sign_raw(
                &serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.1}),
                &proof_claims("POST", MCP_URL, Some(token), unix_now() - 600),
                &key.0,
            ),
            "older than",
        ),
        (
            sign_raw(
                &serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.1}),
                &proof_claims("POST", MCP_URL, Some(token), unix_now() + 600),
                &key.0,
            ),
            "in the future",
        ),
    ];
    for (p, why) in cases {
        let e = with(Some(&p)).unwrap_err();
        assert_eq!((e.status, e.code), (401, "invalid_dpop_proof"), "{why}");
        assert!(e.description.contains(why), "{why}: {e}");
    }
    // The URL is compared normalised, without its query.
    let p = proof(&key, "POST", "HTTP://127.0.0.1:8080/mcp?x=1", Some(token));
    assert!(with(Some(&p)).is_ok());
}

#[test]
fn proofs_that_are_not_proofs_of_a_public_key_are_refused() {
    let f = fixture();
    let key = dpop_key();
    let claims = proof_claims("POST", TOKEN_URL, None, unix_now());
    let mut private = key.1.clone();
    private["d"] = B64.encode(key.0).into();
    let cases = [
        (
            serde_json::json!({"typ": "JWT", "alg": "EdDSA", "jwk": key.1}),
            "`typ`",
        ),
        (
            serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.1}),
            "not accepted",
        ),
        (
            serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA"}),
            "no `jwk`",
        ),
        (
            serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private}),
            "private key",
        ),
        (
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.1}),
            "is not a key for",
        ),
        (
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256",
                "jwk": {"kty": "EC", "crv": "Ed25519", "x": key.1["x"], "y": key.1["x"]}}),
            "is not a key for",
        ),
    ];
    // Report agent for Alice, with exactly this proof.
    let exchange = |proof: String| {
        let secret = with_secret(&f, "report-agent");
        let mut req = exchange_req(
            &user_token(&f, "alice", None),
            "report-agent",
            &secret,
            None,
        );
        req.dpop = Some(DpopProof {
            proof,
            url: TOKEN_URL.into(),
        });
        block(f.identity.exchange(&req))
    };
    for (header, why) in cases {
        let e = exchange(sign_raw(&header, &claims, &key.0)).unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_dpop_proof"), "{why}");
        assert!(e.description.contains(why), "{why}: {e}");
    }
    // A signature by another key than the one in the header.
    let other = dpop_key();
    let e = exchange(sign_raw(
        &serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.1}),
        &claims,
        &other.0,
    ))
    .unwrap_err();
    assert!(e.description.contains("signature"), "{e}");
}

#[test]
fn a_bound_token_is_only_exchanged_for_a_bound_one() {
    let f = fixture();
    let key = dpop_key();
    let parent = dpop_exchange(&f, Some(&key)).unwrap().access_token;
    let secret = with_secret(&f, "summariser");
    let req = ExchangeRequest {
        subject_token_type: TOKEN_TYPE_ACCESS.into(),
        ..exchange_req(&parent, "summariser", &secret, None)
    };
    let e = block(f.identity.exchange(&req)).unwrap_err();
    assert_eq!((e.status, e.code), (400, "invalid_dpop_proof"));
    assert!(e.description.contains("must be bound too"), "{e}");
    let child_key = dpop_key();
    let req = ExchangeRequest {
        dpop: Some(DpopProof {
            proof: proof(&child_key, "POST", TOKEN_URL, None),
            url: TOKEN_URL.into(),
        }),
        ..req
    };
    let child = block(f.identity.exchange(&req)).unwrap();
    assert_eq!(child.token_type, "DPoP");
    let token = child.access_token.as_str();
    let p = proof(&child_key, "POST", MCP_URL, Some(token));
    let v = f
        .identity
        .verify_request(
            Presented::Dpop {
                token,
                proof: Some(&p),
            },
            "POST",
            MCP_URL,
        )
        .unwrap();
    assert_eq!(v.agents.len(), 2);
}

#[test]
fn a_deployment_that_requires_dpop_issues_and_accepts_only_bound_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::from_yaml_str(INVENTORY, "inventory.yaml").unwrap();
    let store = Arc::new(SessionStore::open(&dir.path().join("zt4ai.db")).unwrap());
    // A bearer token issued before the requirement.
    let open = Identity::open(Arc::new(inv.clone()), Arc::clone(&store), dir.path(), None).unwrap();
    let f0 = Fixture {
        identity: open,
        dev: KeyRing::open(&dir.path().join(DEV_IDP_KEYS), 0).unwrap(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let bearer = dpop_exchange(&f0, None).unwrap().access_token;
    assert!(
        f0.identity
            .verify_request(Presented::Bearer(&bearer), "POST", MCP_URL)
            .is_ok()
    );
    inv.identity.require_dpop = true;
    let strict = Identity::open(Arc::new(inv), store, dir.path(), None).unwrap();
    let f = Fixture {
        identity: strict,
        dev: KeyRing::open(&dir.path().join(DEV_IDP_KEYS), 0).unwrap(),
        _dir: dir,
    };
    let e = f
        .identity
        .verify_request(Presented::Bearer(&bearer), "POST", MCP_URL)
        .unwrap_err();
    assert!(e.description.contains("only DPoP-bound"), "{e}");
    let e = dpop_exchange(&f, None).unwrap_err();
    assert_eq!((e.status, e.code), (400, "invalid_dpop_proof"));
    let key = dpop_key();
    assert_eq!(dpop_exchange(&f, Some(&key)).unwrap().token_type, "DPoP");
}

//! Identity end to end: user tokens, token exchange, delegated tokens on every
//! request, revocation and the kill switch, over real HTTP on loopback.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use zt4ai_core::inventory::AgentState;
use zt4ai_gateway::GatewayConfig;
use zt4ai_identity::{
    DEV_IDP_KEYS, ISSUER, KeyRing, TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT,
    mint_dev_token,
};
use zt4ai_pipeline::SessionStore;

use super::{ADMIN_TOKEN, Server, call, exec, policies, unix_now, verdict};

/// An Ed25519 key pair: its public JWK and a signing key.
fn keypair(kid: Option<&str>) -> (Value, EncodingKey) {
    let mut seed = [0u8; 32];
    getrandom(&mut seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let mut jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public), "alg": "EdDSA", "use": "sig"});
    if let Some(k) = kid {
        jwk["kid"] = json!(k);
    }
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    (jwk, EncodingKey::from_ed_der(&der))
}

fn getrandom(buf: &mut [u8]) {
    getrandom::fill(buf).unwrap();
}

fn assertion(agent: &str, key: &EncodingKey) -> String {
    let now = unix_now();
    let claims = json!({"iss": agent, "sub": agent, "aud": ISSUER, "iat": now, "exp": now + 60,
        "jti": format!("{agent}-{}", super::rand_suffix())});
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key).unwrap()
}

fn user_token(dir: &std::path::Path, user: &str, risk: Option<&str>) -> String {
    let keys = KeyRing::open(&dir.join(DEV_IDP_KEYS), unix_now()).unwrap();
    mint_dev_token(&keys, user, &[], risk, 600, unix_now()).unwrap()
}

impl Server {
    async fn exchange(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Gives `agent` a new client secret (development fallback) and returns it.
    fn with_secret(&self, agent: &str) -> String {
        let secret = zt4ai_identity::new_secret().unwrap();
        self.identity
            .store()
            .set_agent_credentials(
                agent,
                None,
                Some(&zt4ai_identity::secret_hash(&secret)),
                "test",
                unix_now(),
            )
            .unwrap();
        secret
    }

    /// Gives `agent` a key pair and returns the signing half.
    fn enrol(&self, agent: &str) -> EncodingKey {
        let (jwk, key) = keypair(None);
        self.identity
            .store()
            .set_agent_credentials(agent, Some(&jwk.to_string()), None, "test", unix_now())
            .unwrap();
        key
    }

    async fn delegated(
        &self,
        subject: &str,
        agent: &str,
        key: &EncodingKey,
        scope: Option<&str>,
    ) -> (u16, Value) {
        let a = assertion(agent, key);
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("actor_token", a.as_str()),
            ("actor_token_type", TOKEN_TYPE_JWT),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.exchange(&form).await
    }

    async fn evaluate_with(&self, token: &str, body: Value) -> (u16, Value, Option<String>) {
        let r = self
            .client
            .post(self.url("/access/v1/evaluation"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let www = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, r.json().await.unwrap(), www)
    }
}

fn read(dataset: &str, session: &str) -> Value {
    json!({"subject": exec(), "action": {"name": "read"},
        "resource": {"type": "dataset", "id": dataset}, "context": {"session": session}})
}

#[tokio::test]
async fn user_token_exchanged_then_used_for_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let key = s.enrol("report-agent");
    let (st, t) = s
        .delegated(
            &user_token(dir.path(), "alice", None),
            "report-agent",
            &key,
            None,
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["issued_token_type"], TOKEN_TYPE_ACCESS);
    assert_eq!(t["token_type"], "Bearer");
    let token = t["access_token"].as_str().unwrap();
    // The subject need not repeat the user: the token proves it.
    let body = json!({"subject": {"type": "agent", "id": "report-agent"}, "action": {"name": "read"},
        "resource": {"type": "dataset", "id": "customers"}, "context": {"session": "flow"}});
    let (st, v, _) = s.evaluate_with(token, body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(verdict(&v), "allow", "{v}");
    // JWKS and metadata are published.
    let jwks = s.get_json("/.well-known/jwks.json", None).await.1;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    let meta = s
        .get_json("/.well-known/oauth-authorization-server", None)
        .await
        .1;
    assert_eq!(meta["token_endpoint"], s.url("/oauth/token"));
    assert_eq!(meta["grant_types_supported"][0], TOKEN_EXCHANGE);
    s.stop().await;
}

#[tokio::test]
async fn motivating_case_with_real_credentials_and_a_compromised_account() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let key = s.enrol("report-agent");
    // Before the IdP notices: the agent reads the customer table for alice.
    let (_, t) = s
        .delegated(
            &user_token(dir.path(), "alice", None),
            "report-agent",
            &key,
            None,
        )
        .await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    let (_, v, _) = s
        .evaluate_with(
            &token,
            call(exec(), "crm.query", json!({"table": "customers"}), "exfil"),
        )
        .await;
    assert_eq!(verdict(&v), "allow", "{v}");
    // The IdP marks the account compromised; the next token carries it.
    let (st, t) = s
        .delegated(
            &user_token(dir.path(), "alice", Some("high")),
            "report-agent",
            &key,
            None,
        )
        .await;
    assert_eq!(st, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    let send = call(
        exec(),
        "mail.send_email",
        json!({"to": "ceo@competitor.example", "body": "…"}),
        "exfil",
    );
    let (_, v, _) = s.evaluate_with(token, send).await;
    assert_eq!(verdict(&v), "deny", "{v}");
    let p = policies(&v);
    assert!(p.contains(&"zt4ai.risk.high".to_owned()), "{p:?}");
    assert!(p.contains(&"zt4ai.flow.send".to_owned()), "{p:?}");
    s.stop().await;
}

#[tokio::test]
async fn sub_agent_delegation_narrows_and_cannot_widen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let parent_key = s.enrol("report-agent");
    let child_key = s.enrol("summariser");
    let (st, parent) = s
        .delegated(
            &user_token(dir.path(), "alice", None),
            "report-agent",
            &parent_key,
            Some("tool:web.fetch tool:crm.query dataset:handbook"),
        )
        .await;
    assert_eq!(st, 200, "{parent}");
    let parent_token = parent["access_token"].as_str().unwrap();
    let (st, child) = s
        .delegated(
            parent_token,
            "summariser",
            &child_key,
            Some("tool:web.fetch"),
        )
        .await;
    assert_eq!(st, 200, "{child}");
    let child_token = child["access_token"].as_str().unwrap();
    let subject =
        json!({"type": "agent", "id": "summariser", "properties": {"via": ["report-agent"]}});
    // The dataset restriction is inherited from the parent's scope.
    let (_, v, _) = s
        .evaluate_with(
            child_token,
            json!({"subject": subject.clone(), "action": {"name": "read"},
            "resource": {"type": "dataset", "id": "handbook"}, "context": {"session": "sub"}}),
        )
        .await;
    assert_eq!(verdict(&v), "allow", "{v}");
    // Within the grants but outside the token's scope.
    let (_, v, _) = s
        .evaluate_with(
            child_token,
            call(subject, "wiki.search", json!({"q": "x"}), "sub"),
        )
        .await;
    assert_eq!(verdict(&v), "deny", "{v}");
    assert_eq!(policies(&v), ["zt4ai.identity.scope"]);
    // Asking for more than the parent has: refused.
    let (st, e) = s
        .delegated(
            parent_token,
            "summariser",
            &child_key,
            Some("tool:wiki.search"),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(e["error"], "invalid_scope");
    s.stop().await;
}

#[tokio::test]
async fn bad_credentials_get_401_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let body = read("handbook", "bad");
    // No token.
    let (st, v) = s
        .post_with("/access/v1/evaluation", body.to_string(), None)
        .await;
    assert_eq!(st, 401, "{v}");
    let good = s.mint("alice", &["report-agent"]);
    let (st, _, _) = s.evaluate_with(&good, body.clone()).await;
    assert_eq!(st, 200);
    // Forged: another key's signature.
    let (_, other) = keypair(None);
    let claims: Value =
        serde_json::from_slice(&B64.decode(good.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = jsonwebtoken::decode_header(&good).unwrap().kid;
    let forged = jsonwebtoken::encode(&h, &claims, &other).unwrap();
    // alg: none.
    let none = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        good.split('.').nth(1).unwrap()
    );
    // Expired, not yet valid, wrong audience.
    let now = unix_now();
    let tweak = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        let c: zt4ai_identity::DelegatedClaims = serde_json::from_value(c).unwrap();
        s.identity.sign_claims(&c).unwrap()
    };
    let expired = tweak(&|c| {
        c["iat"] = json!(now - 7200);
        c["nbf"] = json!(now - 7200);
        c["exp"] = json!(now - 3600);
    });
    let early = tweak(&|c| c["nbf"] = json!(now + 3600));
    let wrong_aud = tweak(&|c| c["aud"] = json!("another-service"));
    let user_tok = user_token(dir.path(), "alice", None);
    for (token, why) in [
        (forged.as_str(), "signature"),
        (none.as_str(), "algorithm `none` is not accepted"),
        (expired.as_str(), "expired"),
        (early.as_str(), "not valid yet"),
        (wrong_aud.as_str(), "audience"),
        (user_tok.as_str(), "zt4ai does not have"),
        ("garbage", "not a JWT"),
    ] {
        let (st, v, www) = s.evaluate_with(token, body.clone()).await;
        assert_eq!(st, 401, "{why}: {v}");
        assert_eq!(v["error"], "invalid_token");
        let www = www.expect("WWW-Authenticate");
        assert!(
            www.starts_with("Bearer realm=\"zt4ai\", error=\"invalid_token\""),
            "{www}"
        );
        assert!(www.contains(why), "{why}: {www}");
    }
    // Agent A's token presented as agent B: refused, with the reason.
    let (st, v, _) = s
        .evaluate_with(&good, json!({"subject": {"type": "agent", "id": "summariser", "properties": {"user": "alice"}},
            "action": {"name": "read"}, "resource": {"type": "dataset", "id": "handbook"}, "context": {"session": "b"}}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(verdict(&v), "deny");
    assert_eq!(policies(&v), ["zt4ai.identity.mismatch"]);
    // Another user's name on the token's chain: refused too.
    let (_, v, _) = s
        .evaluate_with(&good, json!({"subject": {"type": "agent", "id": "report-agent", "properties": {"user": "bob"}},
            "action": {"name": "read"}, "resource": {"type": "dataset", "id": "handbook"}, "context": {"session": "b"}}))
        .await;
    assert_eq!(policies(&v), ["zt4ai.identity.mismatch"]);
    // Exchange errors: wrong grant type, no agent proof, replayed assertion.
    let (st, e) = s.exchange(&[("grant_type", "password")]).await;
    assert_eq!(
        (st, e["error"].as_str().unwrap()),
        (400, "unsupported_grant_type")
    );
    let (st, e) = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &user_tok),
            ("subject_token_type", TOKEN_TYPE_JWT),
        ])
        .await;
    assert_eq!((st, e["error"].as_str().unwrap()), (401, "invalid_client"));
    s.stop().await;
}

#[tokio::test]
async fn revocation_suspension_and_retirement_stop_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let body = read("handbook", "rev");
    let token = s.mint("alice", &["report-agent"]);
    assert_eq!(s.evaluate_with(&token, body.clone()).await.0, 200);
    // Revoke the token through the admin API: refused, and stays refused (no replay).
    let (st, v) = s
        .admin(
            "/admin/v1/tokens/revoke",
            json!({"token": token, "by": "carol", "reason": "leaked"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for _ in 0..2 {
        let (st, v, _) = s.evaluate_with(&token, body.clone()).await;
        assert_eq!(st, 401);
        assert!(
            v["error_description"].as_str().unwrap().contains("revoked"),
            "{v}"
        );
    }
    // Suspend, resume, retire.
    let token = s.mint("alice", &["report-agent"]);
    let (st, _) = s
        .admin(
            "/admin/v1/agents/report-agent/suspend",
            json!({"by": "carol", "reason": "incident"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v, _) = s.evaluate_with(&token, body.clone()).await;
    assert_eq!(st, 401);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{v}"
    );
    let (st, _) = s
        .admin(
            "/admin/v1/agents/report-agent/resume",
            json!({"by": "carol"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.evaluate_with(&token, body.clone()).await.0, 200);
    let (st, _) = s
        .admin(
            "/admin/v1/agents/report-agent/retire",
            json!({"by": "carol"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v, _) = s.evaluate_with(&token, body.clone()).await;
    assert_eq!(st, 401);
    assert!(
        v["error_description"].as_str().unwrap().contains("retired"),
        "{v}"
    );
    let (st, v) = s
        .admin("/admin/v1/agents/report-agent/resume", json!({}))
        .await;
    assert_eq!(st, 409, "retirement is final: {v}");
    // Every change is recorded with who made it.
    let v = s
        .get_json("/admin/v1/agents/report-agent", Some(ADMIN_TOKEN))
        .await
        .1;
    let events: Vec<(String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        events.contains(&("suspended".into(), "carol".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("retired".into(), "carol".into())),
        "{events:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn admin_api_needs_its_credential_and_an_owner() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let r = s
        .client
        .get(s.url("/admin/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(s.url("/admin/v1/agents"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (st, v) = s
        .admin(
            "/admin/v1/agents",
            json!({"id": "new-bot", "owner": "", "purpose": "x"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("owner"), "{v}");
    let (st, v) = s
        .admin(
            "/admin/v1/agents",
            json!({"id": "new-bot", "owner": "mallory", "purpose": "x"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.admin("/admin/v1/agents", json!({"id": "new-bot", "owner": "bob", "purpose": "triage", "secret": true, "by": "carol"})).await;
    assert_eq!(st, 201, "{v}");
    assert!(v["client_secret"].as_str().unwrap().starts_with("zs_"));
    let (st, _) = s
        .admin(
            "/admin/v1/agents",
            json!({"id": "new-bot", "owner": "bob", "purpose": "again"}),
        )
        .await;
    assert_eq!(st, 409);
    // Key rotation: tokens signed before it stay valid.
    let before = s.mint("alice", &["report-agent"]);
    let (st, v) = s.admin("/admin/v1/keys/rotate", json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        s.evaluate_with(&before, read("handbook", "rot")).await.0,
        200
    );
    let jwks = s.get_json("/.well-known/jwks.json", None).await.1;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    s.stop().await;
}

/// The kill switch: an agent suspended from another process (the CLI) is refused
/// within about a second, while requests keep coming.
#[tokio::test]
async fn kill_switch_from_another_process_takes_effect_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    let s = Server::start(&db).await;
    let token = s.mint("alice", &["report-agent"]);
    let body = read("handbook", "kill");
    for _ in 0..5 {
        assert_eq!(s.evaluate_with(&token, body.clone()).await.0, 200);
    }
    // Another connection, as `zt4ai agent suspend` would open.
    let cli = SessionStore::open(&db).unwrap();
    cli.set_agent_state(
        "report-agent",
        AgentState::Suspended,
        "carol",
        Some("kill switch"),
        unix_now(),
    )
    .unwrap();
    let at = Instant::now();
    loop {
        let (st, _, _) = s.evaluate_with(&token, body.clone()).await;
        if st == 401 {
            break;
        }
        assert!(
            at.elapsed() < Duration::from_millis(1500),
            "still allowed after {:?}",
            at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        at.elapsed() <= Duration::from_millis(1200),
        "{:?}",
        at.elapsed()
    );
    s.stop().await;
}

/// An organisation IdP whose JWKS is served over HTTP on loopback, rotating its key.
#[tokio::test]
async fn oidc_issuer_with_a_jwks_url_and_key_rotation() {
    use std::sync::{Arc, Mutex};
    let jwks = Arc::new(Mutex::new(json!({"keys": []})));
    let (jwk1, key1) = keypair(Some("k1"));
    jwks.lock().unwrap()["keys"] = json!([jwk1]);
    let served = Arc::clone(&jwks);
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let v = served.lock().unwrap().clone();
            async move { axum::Json(v) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let inventory = super::INVENTORY.replace(
        "settings:",
        &format!(
            "identity:\n  issuer: https://idp.acme.example\n  audience: zt4ai\n  jwks_url: http://{idp}/jwks\n  risk_claim: acme_risk\n  allow_client_secrets: true\nsettings:"
        ),
    );
    assert!(
        inventory.contains("jwks_url"),
        "the example has a settings section"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_full(
        &dir.path().join("z.db"),
        GatewayConfig::default(),
        &inventory,
    )
    .await;
    let secret = s.with_secret("report-agent");
    let idp_token = |kid: &str, key: &EncodingKey, extra: Value| {
        let now = unix_now();
        let mut c = json!({"iss": "https://idp.acme.example", "aud": "zt4ai", "sub": "alice",
            "iat": now, "exp": now + 300});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &c, key).unwrap()
    };
    let exchange = |t: String| {
        let secret = secret.clone();
        let s = &s;
        async move {
            s.exchange(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &t),
                ("subject_token_type", TOKEN_TYPE_JWT),
                ("client_id", "report-agent"),
                ("client_secret", &secret),
            ])
            .await
        }
    };
    let (st, v) = exchange(idp_token("k1", &key1, json!({"acme_risk": "medium"}))).await;
    assert_eq!(st, 200, "{v}");
    let v = s
        .identity
        .verify(v["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(v.risk, Some(40), "medium maps to the medium threshold");
    // Wrong issuer and wrong audience are refused.
    let mut bad = idp_token("k1", &key1, json!({"iss": "https://evil.example"}));
    let (st, v) = exchange(bad).await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_grant"),
        "{v}"
    );
    bad = idp_token("k1", &key1, json!({"aud": "other"}));
    assert_eq!(exchange(bad).await.0, 400);
    // The IdP rotates to k2: a token with the new kid makes zt4ai re-read the JWKS.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (jwk2, key2) = keypair(Some("k2"));
    jwks.lock().unwrap()["keys"] = json!([jwk2]);
    let (st, v) = exchange(idp_token("k2", &key2, json!({}))).await;
    assert_eq!(st, 200, "{v}");
    // A key the IdP never published.
    let (_, key3) = keypair(Some("k3"));
    let (st, v) = exchange(idp_token("k3", &key3, json!({}))).await;
    assert_eq!(st, 400);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("does not publish"),
        "{v}"
    );
    s.stop().await;
}

/// An IdP whose JWKS is served over HTTPS with a certificate from a private CA,
/// trusted through `jwks_ca_file`; without that CA the server refuses to start.
#[tokio::test]
async fn oidc_jwks_over_https_with_a_private_ca() {
    use std::sync::Arc;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A private CA and a certificate for localhost.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "zt4ai test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&srv_key, &ca)
        .unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![srv.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(srv_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    // The IdP: its JWKS over HTTPS.
    let (jwk, key) = keypair(Some("tls-k1"));
    let jwks = json!({"keys": [jwk]});
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let v = jwks.clone();
            async move { axum::Json(v) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let identity = format!(
        "identity:\n  issuer: https://idp.acme.example\n  audience: zt4ai\n  jwks_url: https://localhost:{port}/jwks\n  jwks_ca_file: ca.pem\n  allow_client_secrets: true\nsettings:"
    );
    let inventory = super::INVENTORY.replace("settings:", &identity);
    // Without the CA file the JWKS cannot be read: startup fails, naming it.
    let missing = Server::try_start(&dir.path().join("a.db"), &inventory).await;
    let Err(e) = missing else {
        panic!("started without its CA file")
    };
    assert!(e.contains("jwks_ca_file"), "{e}");
    // An untrusted certificate (the CA file holds another CA): startup fails.
    let other = rcgen::CertifiedIssuer::self_signed(
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap(),
        rcgen::KeyPair::generate().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.pem"), other.pem()).unwrap();
    let untrusted = Server::try_start(&dir.path().join("b.db"), &inventory).await;
    let Err(e) = untrusted else {
        panic!("trusted a certificate from an unknown CA")
    };
    assert!(e.contains("cannot fetch"), "{e}");
    // With the private CA: user tokens verify against the JWKS fetched over TLS.
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let s = match Server::try_start(&dir.path().join("c.db"), &inventory).await {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let secret = s.with_secret("report-agent");
    let now = unix_now();
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("tls-k1".into());
    let user = jsonwebtoken::encode(
        &h,
        &json!({"iss": "https://idp.acme.example", "aud": "zt4ai", "sub": "alice", "iat": now, "exp": now + 300}),
        &key,
    )
    .unwrap();
    let (st, v) = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &user),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("client_id", "report-agent"),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn token_endpoint_rejects_bad_requests_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        &dir.path().join("z.db"),
        GatewayConfig {
            max_body_bytes: 4096,
            ..GatewayConfig::default()
        },
    )
    .await;
    // JSON instead of a form.
    let r = s
        .client
        .post(s.url("/oauth/token"))
        .json(&json!({"grant_type": TOKEN_EXCHANGE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    // Oversized.
    let big = "x".repeat(10_000);
    let (st, _) = s
        .exchange(&[("grant_type", TOKEN_EXCHANGE), ("subject_token", &big)])
        .await;
    assert_eq!(st, 413);
    // Missing subject token, unknown subject token type, foreign audience.
    let (st, v) = s.exchange(&[("grant_type", TOKEN_EXCHANGE)]).await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_request"),
        "{v}"
    );
    let (st, v) = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", "x"),
            ("subject_token_type", "saml"),
        ])
        .await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_request"),
        "{v}"
    );
    let (st, v) = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", "x"),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("audience", "https://elsewhere.example"),
        ])
        .await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_target"),
        "{v}"
    );
    // Malformed HTTP Basic credentials.
    let r = s
        .client
        .post(s.url("/oauth/token"))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", TOKEN_EXCHANGE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // A good client secret but a forged user token.
    let secret = s.with_secret("report-agent");
    let forged = {
        let (_, k) = keypair(None);
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("made-up".into());
        jsonwebtoken::encode(&h, &json!({"iss": DEV_ISSUER_NAME, "aud": "zt4ai", "sub": "alice", "exp": unix_now() + 60}), &k).unwrap()
    };
    let (st, v) = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &forged),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("client_id", "report-agent"),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_grant"),
        "{v}"
    );
    s.stop().await;
}

const DEV_ISSUER_NAME: &str = zt4ai_identity::DEV_ISSUER;

/// A client's DPoP key (RFC 9449): an Ed25519 key whose proofs carry its
/// public half.
pub(crate) struct DpopKey {
    seed: [u8; 32],
    jwk: Value,
}

impl DpopKey {
    pub(crate) fn new() -> DpopKey {
        let mut seed = [0u8; 32];
        getrandom(&mut seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        DpopKey {
            seed,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public)}),
        }
    }

    /// A fresh proof for `htm` `htu`, bound to `token` if given.
    pub(crate) fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        use ed25519_dalek::Signer as _;
        let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk});
        let mut claims = json!({"jti": format!("p-{}", super::rand_suffix()), "htm": htm,
            "htu": htu, "iat": unix_now()});
        if let Some(t) = token {
            claims["ath"] = json!(zt4ai_identity::token_hash(t));
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = ed25519_dalek::SigningKey::from_bytes(&self.seed).sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

/// A delegated token for the report agent acting for Alice, bound to `key`:
/// the agent proves itself with its registered key and sends a DPoP proof.
pub(crate) async fn dpop_token(s: &Server, dir: &std::path::Path, key: &DpopKey) -> String {
    let agent_key = s.enrol("report-agent");
    let subject = user_token(dir, "alice", None);
    let a = assertion("report-agent", &agent_key);
    let r = s
        .client
        .post(s.url("/oauth/token"))
        .header("DPoP", key.proof("POST", &s.url("/oauth/token"), None))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject.as_str()),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("actor_token", a.as_str()),
            ("actor_token_type", TOKEN_TYPE_JWT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP", "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

/// The `WWW-Authenticate` challenges of a response, joined.
fn challenges(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn a_dpop_bound_token_is_useless_without_the_agents_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let key = DpopKey::new();
    let token = dpop_token(&s, dir.path(), &key).await;
    let url = s.url("/access/v1/evaluation");
    let body = json!({"subject": {"type": "agent", "id": "report-agent"}, "action": {"name": "read"},
        "resource": {"type": "dataset", "id": "customers"}, "context": {"session": "flow"}});
    let send = |auth: String, proofs: Vec<String>| {
        let mut r = s
            .client
            .post(&url)
            .header("authorization", auth)
            .json(&body);
        for p in proofs {
            r = r.header("DPoP", p);
        }
        r.send()
    };

    // The agent, with a fresh proof: decided.
    let proof = key.proof("POST", &url, Some(&token));
    let r = send(format!("DPoP {token}"), vec![proof.clone()])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(verdict(&v), "allow", "{v}");

    // Whoever copies the token (and even a proof) gets nothing.
    let refused = [
        (
            format!("DPoP {token}"),
            vec![proof],
            "DPoP realm",
            "already used",
        ),
        (
            format!("Bearer {token}"),
            vec![],
            "Bearer realm",
            "bound to a key",
        ),
        (
            format!("DPoP {token}"),
            vec![DpopKey::new().proof("POST", &url, Some(&token))],
            "DPoP realm",
            "other than",
        ),
        (
            format!("DPoP {token}"),
            vec![key.proof("POST", &s.url("/access/v1/evaluations"), Some(&token))],
            "DPoP realm",
            "this request is for",
        ),
        (
            format!("DPoP {token}"),
            vec![
                key.proof("POST", &url, Some(&token)),
                key.proof("POST", &url, Some(&token)),
            ],
            "DPoP realm",
            "more than one",
        ),
    ];
    for (auth, proofs, scheme, why) in refused {
        let r = send(auth, proofs).await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        let www = challenges(&r);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error_description"].as_str().unwrap().contains(why),
            "{why}: {v}"
        );
        // The error is on the scheme it concerns; both schemes are offered.
        let on = www.split(" | ").find(|c| c.starts_with(scheme)).unwrap();
        assert!(on.contains("error=\""), "{why}: {www}");
        assert!(www.contains("algs=\"EdDSA ES256 RS256 PS256\""), "{www}");
    }

    let meta = s
        .get_json("/.well-known/oauth-authorization-server", None)
        .await
        .1;
    assert_eq!(meta["dpop_signing_alg_values_supported"][0], "EdDSA");
    s.stop().await;

    // Each refusal of the genuine token is in the audit log under its chain
    // (the two-header one never got as far as the token).
    let reader = zt4ai_audit::AuditReader::open(&dir.path().join("z.db")).unwrap();
    let filter = zt4ai_audit::Filter {
        policy: Some("zt4ai.identity.possession".into()),
        ..zt4ai_audit::Filter::default()
    };
    let mut records = Vec::new();
    reader
        .query(&filter, |r| {
            records.push(serde_json::to_value(&r).unwrap());
            true
        })
        .unwrap();
    assert_eq!(records.len(), 4, "{records:#?}");
    let jti = zt4ai_identity::token_id(&token).unwrap().0;
    for r in &records {
        assert_eq!(r["decision"], "deny");
        assert_eq!(r["point"], "authzen");
        assert_eq!(r["resource"], "/access/v1/evaluation");
        assert_eq!(r["chain"]["agents"], json!(["report-agent"]), "{r}");
        let message = r["reasons"][0]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("token `{jti}`: ")), "{r}");
    }
}

/// An independent OAuth client (requests-oauth2client, from PyPI) exchanges a
/// token bound to a key it generates and uses it with its own proofs: ES256,
/// the library's default, and EdDSA.
#[tokio::test]
async fn a_third_party_dpop_client_exchanges_and_uses_a_bound_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let secret = s.with_secret("report-agent");
    for alg in ["ES256", "EdDSA"] {
        let report = super::interop(
            "dpop_client.py",
            vec![
                s.url(""),
                user_token(dir.path(), "alice", None),
                "report-agent".into(),
                secret.clone(),
                alg.into(),
            ],
        )
        .await;
        assert_eq!(report["token_type"], "DPoP", "{alg}: {report}");
        assert_eq!(report["cnf_jkt"], report["key_jkt"], "{alg}: {report}");
        for call in report["calls"].as_array().unwrap() {
            assert_eq!(call["status"], 200, "{alg}: {report}");
            assert_eq!(verdict(&call["body"]), "allow", "{alg}: {report}");
        }
        assert_eq!(report["as_bearer"]["status"], 401, "{alg}: {report}");
    }
    s.stop().await;
}

//! Delegated-token verification, in-process: signature (Ed25519), claims (issuer,
//! audience, times, chain) and the revocation lookup (revoked `jti`, every agent's
//! lifecycle state, the user's sessions), as every AuthZEN request pays it.
//!
//! * `verify_cold` — the verified-token cache off: every call checks the signature;
//! * `verify_cached` — as the server runs: a token seen before skips the signature
//!   (it is cached under its exact bytes) but is still checked for expiry and
//!   revocation on every call.
//!
//! * `request_bearer` — [`Identity::verify_request`] of a bearer token, cached;
//! * `request_dpop` — the same for a token bound to a key (DPoP), cached, with a
//!   fresh proof each call (made outside the timing): the proof's signature,
//!   its claims, the thumbprint and the replay check on top.
//!
//! Run: `taskset -c 0 cargo bench -p zt4ai-identity --bench verify`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmark setup panics on failure"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::Criterion;
use ed25519_dalek::Signer as _;
use zt4ai_core::Inventory;
use zt4ai_identity::{Actor, Confirmation, DelegatedClaims, ISSUER, Identity, Presented};
use zt4ai_session::SessionStore;

const INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn percentiles(mut ns: Vec<u64>) -> [f64; 4] {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    [at(0.5), at(0.99), at(0.999), mean]
}

const URL: &str = "http://127.0.0.1:8080/mcp";

/// A client's DPoP key and its proofs.
struct Prover {
    key: ed25519_dalek::SigningKey,
    jwk: serde_json::Value,
    n: std::cell::Cell<u64>,
}

impl Prover {
    fn new() -> Prover {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
            "x": B64.encode(key.verifying_key().to_bytes())});
        Prover {
            key,
            jwk,
            n: std::cell::Cell::new(0),
        }
    }

    fn jkt(&self) -> String {
        serde_json::from_value::<zt4ai_identity::Jwk>(self.jwk.clone())
            .unwrap()
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
    }

    fn proof(&self, token: &str) -> String {
        self.n.set(self.n.get() + 1);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk});
        let claims = serde_json::json!({"jti": format!("p{}", self.n.get()), "htm": "POST",
            "htu": URL, "iat": now(), "ath": zt4ai_identity::token_hash(token)});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::from_yaml_str(INVENTORY, "inventory.yaml").unwrap());
    let store = Arc::new(SessionStore::open(&dir.path().join("zt4ai.db")).unwrap());
    let identity = Identity::open(inv, store, dir.path(), None).unwrap();
    // Some revocations on record, as a running server would have.
    for i in 0..1000 {
        identity
            .revoke_token(&format!("old-{i}"), now() + 3600, "bench", None)
            .unwrap();
    }
    let t = now();
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            identity
                .sign_claims(&DelegatedClaims {
                    iss: ISSUER.into(),
                    sub: "alice".into(),
                    aud: ISSUER.into(),
                    iat: t,
                    nbf: t,
                    exp: t + 3600,
                    jti: format!("bench-{i}"),
                    act: Actor::from_chain(&["report-agent".to_owned(), "summariser".to_owned()])
                        .unwrap(),
                    scope: Some("tool:web.fetch tool:crm.query dataset:handbook".into()),
                    risk: None,
                    sid: Some("s1".into()),
                    auth_time: t,
                    cnf: None,
                })
                .unwrap()
        })
        .collect();
    assert!(identity.verify(&tokens[0]).is_ok());
    let prover = Prover::new();
    let bound = |i: usize| {
        identity
            .sign_claims(&DelegatedClaims {
                jti: format!("bound-{i}"),
                cnf: Some(Confirmation { jkt: prover.jkt() }),
                ..jsonwebtoken::dangerous::insecure_decode::<DelegatedClaims>(&tokens[i])
                    .unwrap()
                    .claims
            })
            .unwrap()
    };
    let bound: Vec<String> = (0..tokens.len()).map(bound).collect();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("delegated_token");
        identity.set_token_cache(0);
        let mut i = 0;
        g.bench_function("verify_cold", |b| {
            b.iter(|| {
                i = (i + 1) % tokens.len();
                black_box(identity.verify(&tokens[i]).unwrap())
            })
        });
        identity.set_token_cache(zt4ai_identity::TOKEN_CACHE);
        let mut i = 0;
        g.bench_function("verify_cached", |b| {
            b.iter(|| {
                i = (i + 1) % tokens.len();
                black_box(identity.verify(&tokens[i]).unwrap())
            })
        });
        let mut i = 0;
        g.bench_function("request_bearer", |b| {
            b.iter(|| {
                i = (i + 1) % tokens.len();
                black_box(
                    identity
                        .verify_request(Presented::Bearer(&tokens[i]), "POST", URL)
                        .unwrap(),
                )
            })
        });
        let mut i = 0;
        g.bench_function("request_dpop", |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % bound.len();
                    (i, prover.proof(&bound[i]))
                },
                |(i, p)| {
                    let presented = Presented::Dpop {
                        token: &bound[i],
                        proof: Some(&p),
                    };
                    black_box(identity.verify_request(presented, "POST", URL).unwrap())
                },
                criterion::BatchSize::SmallInput,
            )
        });
        g.finish();
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!();
    println!("per-call latency, µs (20,000 calls each)");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8}",
        "", "p50", "p99", "p99.9", "mean"
    );
    for (name, cache) in [
        ("verify_cold", 0),
        ("verify_cached", zt4ai_identity::TOKEN_CACHE),
    ] {
        identity.set_token_cache(cache);
        let mut ns = Vec::with_capacity(20_000);
        for k in 0..20_000 {
            let tok = &tokens[k % tokens.len()];
            let start = Instant::now();
            black_box(identity.verify(tok).unwrap());
            ns.push(start.elapsed().as_nanos() as u64);
        }
        let p = percentiles(ns);
        println!(
            "{name:<16} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            p[0], p[1], p[2], p[3]
        );
    }
    identity.set_token_cache(zt4ai_identity::TOKEN_CACHE);
    for name in ["request_bearer", "request_dpop"] {
        let mut ns = Vec::with_capacity(20_000);
        for k in 0..20_000 {
            let i = k % tokens.len();
            let proof = (name == "request_dpop").then(|| prover.proof(&bound[i]));
            let presented = match &proof {
                Some(p) => Presented::Dpop {
                    token: &bound[i],
                    proof: Some(p),
                },
                None => Presented::Bearer(&tokens[i]),
            };
            let start = Instant::now();
            black_box(identity.verify_request(presented, "POST", URL).unwrap());
            ns.push(start.elapsed().as_nanos() as u64);
        }
        let p = percentiles(ns);
        println!(
            "{name:<16} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            p[0], p[1], p[2], p[3]
        );
    }
}

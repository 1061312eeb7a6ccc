//! zt4ai's domain model, with no I/O.
//!
//! Everything the decision pipeline reasons about is defined here as plain data:
//! confidentiality and integrity [labels](label), the [inventory] that describes an
//! AI deployment (users, agents, tools, datasets, models, destinations), the
//! [`ActionRequest`] that every enforcement point produces from its own protocol,
//! and the [`Verdict`] it gets back. Keeping these types free of storage, sockets
//! and clocks is what lets the policy engine and the session store be tested and
//! benchmarked on their own, and lets each enforcement point stay a thin adapter.

pub mod ids;
pub mod inventory;
pub mod label;
pub mod request;
pub mod scope;
pub mod verdict;

pub use ids::{AgentId, ApprovalId, IdError, SessionId, UserId};
pub use inventory::{ConfigError, Inventory, LoadError, McpServer, McpTransport};
pub use label::{Category, Integrity, Label, SessionLabel};
pub use request::{Action, ActionRequest, ActorChain, Finding, RequestError, json_type};
pub use scope::{Scope, ScopeKind};
pub use verdict::{Decision, Obligation, Reason, RiskReport, SignalWeight, Verdict};

/// Seconds since the Unix epoch, as zt4ai stores and compares times (0 if the
/// clock is before 1970, saturating far in the future).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `bytes` in lower-case hexadecimal (how zt4ai writes digests, ids and
/// secrets).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// JSON text with every object's keys sorted, so that equal values give equal
/// text whatever order their keys came in. (`serde_json` keeps insertion order
/// here: a dependency turns on its `preserve_order` feature.)
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

#[cfg(test)]
mod canonical_tests {
    #[test]
    fn canonical_json_ignores_key_order_at_every_depth() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":[{"q":1,"p":2}]},"a":0}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":0,"b":{"x":[{"p":2,"q":1}],"y":1}}"#).unwrap();
        assert_eq!(super::canonical_json(&a), super::canonical_json(&b));
        assert_eq!(
            super::canonical_json(&a),
            r#"{"a":0,"b":{"x":[{"p":2,"q":1}],"y":1}}"#
        );
    }
}

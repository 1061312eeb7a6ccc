//! The claims of zt4ai's delegated agent tokens.

use serde::{Deserialize, Serialize};

/// An actor in the `act` claim (RFC 8693 §4.1): the current actor, with the
/// actors before it nested inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The agent id.
    pub sub: String,
    /// The actor that delegated to this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// Builds the nested claim from agents in chain order (the first agent the
    /// user delegated to first, the current actor last).
    pub fn from_chain(agents: &[String]) -> Option<Actor> {
        let mut act: Option<Actor> = None;
        for a in agents {
            act = Some(Actor {
                sub: a.clone(),
                act: act.map(Box::new),
            });
        }
        act
    }

    /// The agents in chain order (first delegate first, current actor last).
    pub fn chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            out.push(a.sub.clone());
            at = a.act.as_deref();
        }
        out.reverse();
        out
    }
}

/// The claims of a delegated agent token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedClaims {
    /// zt4ai's issuer name.
    pub iss: String,
    /// The user the agents act for.
    pub sub: String,
    /// The audience (zt4ai's enforcement points).
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// Token id, for revocation.
    pub jti: String,
    /// The actor chain.
    pub act: Actor,
    /// The task scope, space-separated (`tool:crm.query dataset:customers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The identity provider's risk score for the user's account (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<u8>,
    /// The user's IdP session (`sid`), for revoking a user session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user's own token was issued, for revoking earlier sessions.
    pub auth_time: i64,
    /// The key the token is bound to (DPoP, RFC 9449 §6.1), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The confirmation claim (RFC 7800) of a sender-constrained token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The SHA-256 JWK thumbprint (RFC 7638) of the key proofs must be signed with.
    pub jkt: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_nests_with_the_current_actor_outermost() {
        let chain = vec!["report-agent".to_owned(), "summariser".to_owned()];
        let act = Actor::from_chain(&chain).unwrap();
        assert_eq!(act.sub, "summariser");
        assert_eq!(act.act.as_ref().unwrap().sub, "report-agent");
        assert_eq!(act.chain(), chain);
        let json = serde_json::to_value(&act).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sub": "summariser", "act": {"sub": "report-agent"}})
        );
    }
}

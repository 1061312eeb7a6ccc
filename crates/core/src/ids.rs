//! Identifier newtypes, so that an agent id cannot be passed where a user id is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("{kind} id is empty")]
    Empty {
        /// Which kind of identifier.
        kind: &'static str,
    },
    /// The identifier is longer than allowed.
    #[error("{kind} id `{prefix}…` is longer than {max} bytes")]
    TooLong {
        /// Which kind of identifier.
        kind: &'static str,
        /// The first characters of the identifier.
        prefix: String,
        /// The limit.
        max: usize,
    },
    /// The identifier contains a control character.
    #[error("{kind} id `{id}` contains a control character")]
    Control {
        /// Which kind of identifier.
        kind: &'static str,
        /// The identifier, with control characters escaped.
        id: String,
    },
}

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

fn check(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        let prefix: String = s.chars().take(32).collect();
        return Err(IdError::TooLong {
            kind,
            prefix,
            max: MAX_ID_LEN,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(IdError::Control {
            kind,
            id: s.escape_default().to_string(),
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an identifier: non-empty, at most 256 bytes, no control characters.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                check($kind, &id)?;
                Ok(Self(id))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A human user, as the organisation's identity provider names them.
    UserId,
    "user"
);
id_type!(
    /// A registered AI agent.
    AgentId,
    "agent"
);
id_type!(
    /// One task or conversation: the unit of information-flow tracking.
    SessionId,
    "session"
);
impl SessionId {
    /// The information-flow session of everything `user`'s outermost agent
    /// `agent` does through the gateways (MCP and LLM), whatever token it
    /// presents: `flow-` and 32 hex digits of a SHA-256 of the two ids.
    ///
    /// Not the token: an agent keeps what it read in its context when its
    /// token is renewed, so a label kept per token would be shed every time
    /// one expires, or at will by exchanging a new one. Not the whole chain:
    /// a sub-agent works on what its parent hands it and hands back what it
    /// reads. The label of a flow session goes down only by a declassification
    /// a human grants, as any session's does.
    pub fn flow(user: &UserId, agent: Option<&AgentId>) -> SessionId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // The user's length first, so that no two pairs hash the same bytes.
        h.update((user.0.len() as u64).to_be_bytes());
        h.update(user.0.as_bytes());
        if let Some(agent) = agent {
            h.update(agent.0.as_bytes());
        }
        let digest = h.finalize();
        // `flow-` and 32 hex digits: a valid id, by construction.
        SessionId(format!("flow-{}", crate::hex(&digest[..16])))
    }
}

id_type!(
    /// A pending or granted human approval.
    ApprovalId,
    "approval"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(AgentId::new("report-agent").is_ok());
        assert_eq!(SessionId::new(""), Err(IdError::Empty { kind: "session" }));
        assert!(matches!(UserId::new("a\nb"), Err(IdError::Control { .. })));
        assert!(matches!(
            UserId::new("x".repeat(300)),
            Err(IdError::TooLong { .. })
        ));
        let parsed: Result<AgentId, _> = serde_json::from_str("\"\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn a_flow_session_is_one_per_user_and_outermost_agent() {
        let id = |s: &str| UserId::new(s).unwrap();
        let agent = |s: &str| AgentId::new(s).unwrap();
        let f = SessionId::flow(&id("alice"), Some(&agent("report-agent")));
        assert_eq!(
            f,
            SessionId::flow(&id("alice"), Some(&agent("report-agent")))
        );
        assert!(SessionId::new(f.as_str()).is_ok());
        assert_eq!(f.as_str().len(), "flow-".len() + 32);
        // Another user, another agent, no agent: each its own.
        let others = [
            SessionId::flow(&id("bob"), Some(&agent("report-agent"))),
            SessionId::flow(&id("alice"), Some(&agent("summariser"))),
            SessionId::flow(&id("alice"), None),
            // The same bytes split differently between the two ids.
            SessionId::flow(&id("alicer"), Some(&agent("eport-agent"))),
        ];
        for o in &others {
            assert_ne!(&f, o);
        }
    }
}

use super::*;

fn new_agent(id: &str) -> NewAgent<'_> {
    NewAgent {
        id,
        owner: "alice",
        purpose: "writes the weekly report",
        public_jwk: Some(r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#),
        secret_hash: None,
        by: "admin",
        now: 100,
    }
}

fn events(store: &SessionStore, id: &str) -> Vec<(String, String, Option<String>, i64)> {
    store
        .agent_events(id)
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(e.agent, id);
            (e.event, e.by, e.reason, e.at)
        })
        .collect()
}

#[test]
fn registration_requires_an_owner() {
    let store = SessionStore::open_in_memory().unwrap();
    for owner in ["", "  \t"] {
        let a = NewAgent {
            owner,
            ..new_agent("report-agent")
        };
        assert!(matches!(
            store.register_agent(&a),
            Err(RegistryError::EmptyOwner)
        ));
    }
    assert!(matches!(
        store.register_agent(&new_agent("")),
        Err(RegistryError::InvalidId(_))
    ));
    // Nothing was written, not even an event.
    assert!(store.agents().unwrap().is_empty());
    assert!(matches!(
        store.agent_events("report-agent"),
        Err(RegistryError::NotFound(_))
    ));
}

#[test]
fn registration_records_the_agent_and_its_event() {
    let store = SessionStore::open_in_memory().unwrap();
    let a = store.register_agent(&new_agent("report-agent")).unwrap();
    assert_eq!(
        a,
        RegisteredAgent {
            id: "report-agent".into(),
            owner: "alice".into(),
            purpose: "writes the weekly report".into(),
            state: AgentState::Active,
            public_jwk: Some(r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#.into()),
            has_secret: false,
            created_at: 100,
            updated_at: 100,
        }
    );
    assert_eq!(store.agent("report-agent").unwrap(), a);
    assert_eq!(
        events(&store, "report-agent"),
        vec![("registered".into(), "admin".into(), None, 100)]
    );
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["state"], "active");
    assert_eq!(json["has_secret"], false);
    assert!(json.get("secret_hash").is_none());
}

#[test]
fn duplicate_id_is_rejected_without_a_partial_write() {
    let store = SessionStore::open_in_memory().unwrap();
    store.register_agent(&new_agent("report-agent")).unwrap();
    let again = NewAgent {
        owner: "mallory",
        now: 200,
        ..new_agent("report-agent")
    };
    assert!(matches!(
        store.register_agent(&again),
        Err(RegistryError::AlreadyRegistered(id)) if id == "report-agent"
    ));
    assert_eq!(store.agent("report-agent").unwrap().owner, "alice");
    assert_eq!(events(&store, "report-agent").len(), 1);
}

#[test]
fn every_lifecycle_transition_is_recorded_with_who_did_it() {
    let store = SessionStore::open_in_memory().unwrap();
    store.register_agent(&new_agent("a")).unwrap();
    let s = store
        .set_agent_state("a", AgentState::Suspended, "bob", Some("leaking"), 110)
        .unwrap();
    assert_eq!(s.state, AgentState::Suspended);
    assert_eq!(s.updated_at, 110);
    assert_eq!(s.created_at, 100);
    let s = store
        .set_agent_state("a", AgentState::Active, "carol", None, 120)
        .unwrap();
    assert_eq!(s.state, AgentState::Active);
    let s = store
        .set_agent_state("a", AgentState::Retired, "dave", Some("project over"), 130)
        .unwrap();
    assert_eq!(s.state, AgentState::Retired);
    assert_eq!(
        events(&store, "a"),
        vec![
            ("registered".into(), "admin".into(), None, 100),
            (
                "suspended".into(),
                "bob".into(),
                Some("leaking".into()),
                110
            ),
            ("resumed".into(), "carol".into(), None, 120),
            (
                "retired".into(),
                "dave".into(),
                Some("project over".into()),
                130
            ),
        ]
    );

    // A suspended agent can be retired directly too.
    store.register_agent(&new_agent("b")).unwrap();
    store
        .set_agent_state("b", AgentState::Suspended, "bob", None, 110)
        .unwrap();
    store
        .set_agent_state("b", AgentState::Retired, "bob", None, 111)
        .unwrap();
    let kinds: Vec<_> = events(&store, "b").into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["registered", "suspended", "retired"]);
    assert_eq!(
        store.agent_states().unwrap(),
        vec![
            ("a".to_owned(), AgentState::Retired),
            ("b".to_owned(), AgentState::Retired)
        ]
    );
}

#[test]
fn retirement_is_final() {
    let store = SessionStore::open_in_memory().unwrap();
    store.register_agent(&new_agent("a")).unwrap();
    store
        .set_agent_state("a", AgentState::Retired, "bob", None, 110)
        .unwrap();
    for to in [
        AgentState::Active,
        AgentState::Suspended,
        AgentState::Retired,
    ] {
        assert!(matches!(
            store.set_agent_state("a", to, "bob", None, 120),
            Err(RegistryError::Retired(id)) if id == "a"
        ));
    }
    assert!(matches!(
        store.set_agent_credentials("a", None, Some("00ff"), "bob", 120),
        Err(RegistryError::Retired(_))
    ));
    // The retired id cannot be registered again.
    assert!(matches!(
        store.register_agent(&new_agent("a")),
        Err(RegistryError::AlreadyRegistered(_))
    ));
    assert_eq!(store.agent("a").unwrap().state, AgentState::Retired);
    assert_eq!(events(&store, "a").len(), 2);
}

#[test]
fn same_state_transition_is_an_error() {
    let store = SessionStore::open_in_memory().unwrap();
    store.register_agent(&new_agent("a")).unwrap();
    assert!(matches!(
        store.set_agent_state("a", AgentState::Active, "bob", None, 110),
        Err(RegistryError::InvalidTransition {
            from: AgentState::Active,
            to: AgentState::Active,
            ..
        })
    ));
    store
        .set_agent_state("a", AgentState::Suspended, "bob", None, 110)
        .unwrap();
    let err = store
        .set_agent_state("a", AgentState::Suspended, "bob", None, 120)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent `a` cannot go from suspended to suspended"
    );
    assert_eq!(events(&store, "a").len(), 2);
    assert!(matches!(
        store.set_agent_state("nobody", AgentState::Suspended, "bob", None, 120),
        Err(RegistryError::NotFound(_))
    ));
}

#[test]
fn credentials_are_replaced_and_logged_without_their_values() {
    let store = SessionStore::open_in_memory().unwrap();
    store.register_agent(&new_agent("a")).unwrap();
    assert_eq!(store.agent_secret_hash("a").unwrap(), None);
    let a = store
        .set_agent_credentials("a", None, Some("abcd"), "bob", 110)
        .unwrap();
    assert_eq!(a.public_jwk, None);
    assert!(a.has_secret);
    assert_eq!(a.updated_at, 110);
    assert_eq!(
        store.agent_secret_hash("a").unwrap().as_deref(),
        Some("abcd")
    );
    let (event, by, reason, at) = events(&store, "a").pop().unwrap();
    assert_eq!(
        (event.as_str(), by.as_str(), at),
        ("credentials", "bob", 110)
    );
    let reason = reason.unwrap();
    assert!(!reason.contains("abcd"), "{reason}");
    assert!(matches!(
        store.agent_secret_hash("nobody"),
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        store.set_agent_credentials("nobody", None, None, "bob", 110),
        Err(RegistryError::NotFound(_))
    ));
}

#[test]
fn seed_agent_never_overwrites_the_registry() {
    let store = SessionStore::open_in_memory().unwrap();
    assert!(
        store
            .seed_agent("a", "alice", "reports", AgentState::Active, 100)
            .unwrap()
    );
    store
        .set_agent_state("a", AgentState::Suspended, "bob", None, 110)
        .unwrap();
    // The inventory still says active: the registry's suspension stands.
    assert!(
        !store
            .seed_agent("a", "someone-else", "other", AgentState::Active, 120)
            .unwrap()
    );
    let a = store.agent("a").unwrap();
    assert_eq!(a.state, AgentState::Suspended);
    assert_eq!(a.owner, "alice");
    assert_eq!(
        events(&store, "a"),
        vec![
            ("registered".into(), "inventory".into(), None, 100),
            ("suspended".into(), "bob".into(), None, 110),
        ]
    );
    // An agent the inventory declares suspended starts suspended.
    assert!(
        store
            .seed_agent("b", "alice", "reports", AgentState::Suspended, 100)
            .unwrap()
    );
    assert_eq!(store.agent("b").unwrap().state, AgentState::Suspended);
    assert!(matches!(
        store.seed_agent("c", " ", "reports", AgentState::Active, 100),
        Err(RegistryError::EmptyOwner)
    ));
    let ids: Vec<_> = store.agents().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    {
        let store = SessionStore::open(&path).unwrap();
        store
            .seed_agent("a", "alice", "reports", AgentState::Active, 100)
            .unwrap();
        store
            .set_agent_state("a", AgentState::Suspended, "bob", Some("audit"), 110)
            .unwrap();
        store
            .set_agent_credentials("a", Some("{}"), Some("beef"), "bob", 120)
            .unwrap();
    }
    let store = SessionStore::open(&path).unwrap();
    // Seeding again on restart changes nothing.
    assert!(
        !store
            .seed_agent("a", "alice", "reports", AgentState::Active, 200)
            .unwrap()
    );
    let a = store.agent("a").unwrap();
    assert_eq!(a.state, AgentState::Suspended);
    assert_eq!(a.public_jwk.as_deref(), Some("{}"));
    assert_eq!(
        store.agent_secret_hash("a").unwrap().as_deref(),
        Some("beef")
    );
    assert_eq!(
        store.agent_states().unwrap(),
        vec![("a".to_owned(), AgentState::Suspended)]
    );
    let kinds: Vec<_> = events(&store, "a").into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["registered", "suspended", "credentials"]);
}

#[test]
fn a_version_1_database_without_the_registry_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, agent_id TEXT,
               label INTEGER NOT NULL, untrusted INTEGER NOT NULL,
               created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SessionStore::open(&path).unwrap();
    store.register_agent(&new_agent("a")).unwrap();
    assert!(store.revoke_token("t1", 200, "bob", None, 100).unwrap());
}

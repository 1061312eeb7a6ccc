use super::*;

#[test]
fn revoke_token_is_idempotent_and_listed_until_expiry() {
    let store = SessionStore::open_in_memory().unwrap();
    assert!(
        store
            .revoke_token("t1", 200, "bob", Some("leaked"), 100)
            .unwrap()
    );
    assert!(!store.revoke_token("t1", 999, "carol", None, 150).unwrap());
    assert!(store.revoke_token("t0", 300, "bob", None, 100).unwrap());
    assert_eq!(store.revoked_tokens(100).unwrap(), ["t0", "t1"]);
    assert_eq!(store.revoked_tokens(199).unwrap(), ["t0", "t1"]);
    // The second revocation did not extend the first one's expiry.
    assert_eq!(store.revoked_tokens(200).unwrap(), ["t0"]);
    assert!(store.revoked_tokens(300).unwrap().is_empty());
}

#[test]
fn purge_expired_drops_only_expired_records() {
    let store = SessionStore::open_in_memory().unwrap();
    store.revoke_token("t1", 200, "bob", None, 100).unwrap();
    store.revoke_token("t2", 400, "bob", None, 100).unwrap();
    assert!(store.use_assertion("a1", 200, 100).unwrap());
    assert!(store.use_assertion("a2", 400, 100).unwrap());
    assert_eq!(store.purge_expired(300).unwrap(), 2);
    assert_eq!(store.purge_expired(300).unwrap(), 0);
    assert_eq!(store.revoked_tokens(300).unwrap(), ["t2"]);
    assert!(!store.use_assertion("a2", 400, 300).unwrap());
    // A purged token revocation may be recorded again.
    assert!(store.revoke_token("t1", 500, "bob", None, 300).unwrap());
}

#[test]
fn user_sessions_are_revoked_one_by_one_or_all_at_once() {
    let store = SessionStore::open_in_memory().unwrap();
    store
        .revoke_user_session("alice", Some("s1"), "bob", 100)
        .unwrap();
    store
        .revoke_user_session("alice", None, "bob", 200)
        .unwrap();
    store
        .revoke_user_session("carol", Some("s9"), "bob", 150)
        .unwrap();
    assert_eq!(
        store.revoked_user_sessions().unwrap(),
        vec![
            ("alice".to_owned(), ALL_SESSIONS.to_owned(), 200),
            ("alice".to_owned(), "s1".to_owned(), 100),
            ("carol".to_owned(), "s9".to_owned(), 150),
        ]
    );
    // A later '*' moves the cut-off forward; an earlier one (a late writer) does not
    // move it back.
    store
        .revoke_user_session("alice", None, "bob", 300)
        .unwrap();
    store
        .revoke_user_session("alice", None, "eve", 250)
        .unwrap();
    let all: Vec<_> = store
        .revoked_user_sessions()
        .unwrap()
        .into_iter()
        .filter(|(u, s, _)| u == "alice" && s == ALL_SESSIONS)
        .collect();
    assert_eq!(all, [("alice".to_owned(), "*".to_owned(), 300)]);
    let by: String = store
        .db()
        .query_row(
            "SELECT by FROM revoked_user_sessions WHERE user_id = 'alice' AND sid = '*'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by, "bob");
}

#[test]
fn use_assertion_detects_replay_and_allows_reuse_after_expiry() {
    let store = SessionStore::open_in_memory().unwrap();
    assert!(store.use_assertion("j1", 160, 100).unwrap());
    assert!(!store.use_assertion("j1", 160, 101).unwrap());
    assert!(!store.use_assertion("j1", 160, 159).unwrap());
    assert!(store.use_assertion("j2", 170, 101).unwrap());
    // Once expired the record is gone (the caller refuses expired assertions, so a
    // reused jti here is a new assertion).
    assert!(store.use_assertion("j1", 260, 160).unwrap());
    assert!(!store.use_assertion("j1", 260, 161).unwrap());
    let rows: i64 = store
        .db()
        .query_row("SELECT COUNT(*) FROM used_assertions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    {
        let store = SessionStore::open(&path).unwrap();
        store.revoke_token("t1", 200, "bob", None, 100).unwrap();
        store
            .revoke_user_session("alice", None, "bob", 100)
            .unwrap();
        store.use_assertion("j1", 200, 100).unwrap();
    }
    let store = SessionStore::open(&path).unwrap();
    assert_eq!(store.revoked_tokens(150).unwrap(), ["t1"]);
    assert_eq!(store.revoked_user_sessions().unwrap().len(), 1);
    assert!(!store.use_assertion("j1", 200, 150).unwrap());
}

#[test]
fn data_version_changes_when_another_connection_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let server = SessionStore::open(&path).unwrap();
    let v0 = server.data_version().unwrap();
    // The store's own writes do not change it.
    server
        .revoke_token("own", 200, "server", None, 100)
        .unwrap();
    assert_eq!(server.data_version().unwrap(), v0);

    let cli = SessionStore::open(&path).unwrap();
    assert!(cli.revoke_token("t1", 200, "bob", None, 100).unwrap());
    let v1 = server.data_version().unwrap();
    assert_ne!(v1, v0);
    assert_eq!(server.revoked_tokens(100).unwrap(), ["own", "t1"]);
    // No further commit, no further change.
    assert_eq!(server.data_version().unwrap(), v1);
    cli.revoke_user_session("alice", Some("s1"), "bob", 110)
        .unwrap();
    assert_ne!(server.data_version().unwrap(), v1);
}

#[test]
fn agent_token_revocation_only_moves_forward() {
    let store = SessionStore::open_in_memory().unwrap();
    assert!(store.revoked_agents().unwrap().is_empty());
    store
        .revoke_agent_tokens("triage", 100, "pipeline", Some("exfiltration"), 100)
        .unwrap();
    store
        .revoke_agent_tokens("billing", 150, "bob", None, 150)
        .unwrap();
    assert_eq!(
        store.revoked_agents().unwrap(),
        [("billing".to_owned(), 150), ("triage".to_owned(), 100)]
    );
    // A later cut-off moves it forward and takes over who and why; an earlier one (a
    // late writer) changes nothing.
    store
        .revoke_agent_tokens("triage", 300, "bob", Some("again"), 300)
        .unwrap();
    store
        .revoke_agent_tokens("triage", 200, "eve", None, 310)
        .unwrap();
    assert_eq!(
        store.revoked_agents().unwrap(),
        [("billing".to_owned(), 150), ("triage".to_owned(), 300)]
    );
    let row: (String, Option<String>, i64) = store
        .db()
        .query_row(
            "SELECT by, reason, revoked_at FROM revoked_agents WHERE agent_id = 'triage'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, ("bob".to_owned(), Some("again".to_owned()), 300));
}

#[test]
fn agent_token_revocations_survive_a_restart_and_bump_data_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let server = SessionStore::open(&path).unwrap();
    let v0 = server.data_version().unwrap();
    {
        let cli = SessionStore::open(&path).unwrap();
        cli.revoke_agent_tokens("triage", 100, "bob", None, 100)
            .unwrap();
    }
    assert_ne!(server.data_version().unwrap(), v0);
    assert_eq!(
        server.revoked_agents().unwrap(),
        [("triage".to_owned(), 100)]
    );
    drop(server);
    let store = SessionStore::open(&path).unwrap();
    assert_eq!(
        store.revoked_agents().unwrap(),
        [("triage".to_owned(), 100)]
    );
}

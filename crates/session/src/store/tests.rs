use std::sync::Arc;

use zt4ai_core::{Category, Integrity, Label, SessionId, SessionLabel, UserId};

use super::*;
use crate::{ApprovalError, ApprovalStatus, NewApproval};

fn owner() -> SessionOwner {
    SessionOwner {
        user: UserId::new("alice").unwrap(),
        agent: Some(AgentId::new("report-agent").unwrap()),
    }
}

fn read(label: Label, cats: &[&str], untrusted: bool) -> SessionLabel {
    SessionLabel {
        confidentiality: label,
        categories: cats.iter().map(|c| Category::new(c).unwrap()).collect(),
        integrity: if untrusted {
            Integrity::Untrusted
        } else {
            Integrity::Trusted
        },
    }
}

#[test]
fn labels_survive_a_restart_and_never_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let sid = SessionId::new("s1").unwrap();
    {
        let store = SessionStore::open(&path).unwrap();
        let mut s = store.lock(&sid).unwrap();
        assert_eq!(s.label(), &SessionLabel::default());
        s.absorb(
            &read(Label::Confidential, &["pii", "customer"], false),
            &owner(),
            1,
        )
        .unwrap();
        // A later, lower read does not lower anything.
        let l = s
            .absorb(&read(Label::Public, &[], true), &owner(), 2)
            .unwrap();
        assert_eq!(l.confidentiality, Label::Confidential);
        assert_eq!(l.integrity, Integrity::Untrusted);
    }
    let store = SessionStore::open(&path).unwrap();
    let s = store.lock(&sid).unwrap();
    assert_eq!(
        s.label(),
        &read(Label::Confidential, &["customer", "pii"], true)
    );
    assert_eq!(s.owner(), Some(&owner()));
}

/// A human's lowering takes each part only down, as asked and no further,
/// durably; a lowering of a session never written finds nothing.
#[test]
fn a_lowering_lowers_only_what_it_names_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let sid = SessionId::new("s1").unwrap();
    let cat = |c: &str| Category::new(c).unwrap();
    {
        let store = SessionStore::open(&path).unwrap();
        let none = Lowering {
            trust: true,
            ..Lowering::default()
        };
        assert!(store.lower_label(&sid, &none, 1).unwrap().is_none());
        store
            .lock(&sid)
            .unwrap()
            .absorb(
                &read(Label::Confidential, &["pii", "customer"], true),
                &owner(),
                1,
            )
            .unwrap();
        // `to` above the label does not raise it; a category it lacks is no error.
        let (before, after) = store
            .lower_label(
                &sid,
                &Lowering {
                    to: Some(Label::HighlyConfidential),
                    trust: false,
                    drop: [cat("pii"), cat("financial")].into(),
                },
                2,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            before,
            read(Label::Confidential, &["customer", "pii"], true)
        );
        assert_eq!(after, read(Label::Confidential, &["customer"], true));
        let (_, after) = store
            .lower_label(
                &sid,
                &Lowering {
                    trust: true,
                    ..Lowering::default()
                },
                3,
            )
            .unwrap()
            .unwrap();
        assert_eq!(after, read(Label::Confidential, &["customer"], false));
        assert_eq!(store.label_of(&sid).unwrap(), Some(after));
    }
    let store = SessionStore::open(&path).unwrap();
    assert_eq!(
        store.label_of(&sid).unwrap(),
        Some(read(Label::Confidential, &["customer"], false))
    );
    // Reading again raises it again: a lowering is not an exemption.
    let l = store
        .lock(&sid)
        .unwrap()
        .absorb(&read(Label::Public, &["pii"], true), &owner(), 4)
        .unwrap();
    assert_eq!(l, read(Label::Confidential, &["customer", "pii"], true));
}

/// A version-2 file kept a label per delegated token; opening it folds each
/// token's label, categories and approvals into its user's and agent's flow
/// session, and leaves sessions of other kinds alone.
#[test]
fn token_sessions_of_a_version_2_file_fold_into_flow_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let tokens = ["mcp-token-a", "mcp-token-b"].map(|s| SessionId::new(s).unwrap());
    let other = SessionId::new("authzen-task-1").unwrap();
    {
        let store = SessionStore::open(&path).unwrap();
        let reads = [
            read(Label::Confidential, &["customer"], false),
            read(Label::Internal, &["pii"], true),
        ];
        for (t, r) in tokens.iter().zip(&reads) {
            store.lock(t).unwrap().absorb(r, &owner(), 5).unwrap();
        }
        let bob = SessionOwner {
            user: UserId::new("bob").unwrap(),
            agent: Some(AgentId::new("report-agent").unwrap()),
        };
        store
            .lock(&SessionId::new("mcp-token-c").unwrap())
            .unwrap()
            .absorb(&read(Label::Internal, &[], false), &bob, 5)
            .unwrap();
        store
            .lock(&other)
            .unwrap()
            .absorb(&read(Label::HighlyConfidential, &[], false), &owner(), 5)
            .unwrap();
        let id = store
            .create_approval(&approval_for(&tokens[0], "f1"))
            .unwrap();
        let db = store.db();
        db.pragma_update(None, "user_version", 2).unwrap();
        drop(db);
        assert!(id.as_str().starts_with("apr_"), "{id}");
    }
    let store = SessionStore::open(&path).unwrap();
    let alice = SessionId::flow(
        &UserId::new("alice").unwrap(),
        Some(&AgentId::new("report-agent").unwrap()),
    );
    assert_eq!(
        store.lock(&alice).unwrap().label(),
        &read(Label::Confidential, &["customer", "pii"], true)
    );
    assert_eq!(store.lock(&alice).unwrap().owner(), Some(&owner()));
    let bob = SessionId::flow(
        &UserId::new("bob").unwrap(),
        Some(&AgentId::new("report-agent").unwrap()),
    );
    assert_eq!(
        store.lock(&bob).unwrap().label().confidentiality,
        Label::Internal
    );
    // The token sessions are gone; the other session is as it was.
    for t in &tokens {
        assert_eq!(store.lock(t).unwrap().owner(), None);
    }
    assert_eq!(
        store.lock(&other).unwrap().label().confidentiality,
        Label::HighlyConfidential
    );
    // The pending approval moved with its session.
    let db = store.db();
    let moved: String = db
        .query_row("SELECT session_id FROM approvals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(moved, alice.as_str());
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn concurrent_absorbs_on_one_session_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt4ai.db");
    let store = Arc::new(SessionStore::open(&path).unwrap());
    let sid = SessionId::new("shared").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let sid = sid.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let cat = format!("c{i}-{j}");
                    let mut s = store.lock(&sid).unwrap();
                    let label = if i == 3 && j == 7 {
                        Label::HighlyConfidential
                    } else {
                        Label::Internal
                    };
                    s.absorb(&read(label, &[&cat], false), &owner(), 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let check = |store: &SessionStore| {
        let s = store.lock(&sid).unwrap();
        assert_eq!(s.label().categories.len(), 80);
        assert_eq!(s.label().confidentiality, Label::HighlyConfidential);
    };
    check(&store);
    drop(store);
    check(&SessionStore::open(&path).unwrap());
}

#[test]
fn eviction_reloads_from_sqlite() {
    let store = SessionStore::open_in_memory()
        .unwrap()
        .with_cache_capacity(16);
    for i in 0..200 {
        let sid = SessionId::new(format!("s{i}")).unwrap();
        let mut s = store.lock(&sid).unwrap();
        s.absorb(&read(Label::Internal, &["pii"], false), &owner(), 1)
            .unwrap();
    }
    assert!(store.cached() <= 32, "cache is bounded: {}", store.cached());
    let s = store.lock(&SessionId::new("s0").unwrap()).unwrap();
    assert_eq!(s.label().confidentiality, Label::Internal);
}

fn approval_for(sid: &SessionId, fingerprint: &str) -> NewApproval {
    NewApproval {
        session: sid.clone(),
        fingerprint: fingerprint.into(),
        kind: crate::ApprovalKind::Action,
        requested_by: "alice".into(),
        chain: "alice → report-agent".into(),
        action: "call_tool".into(),
        resource: "files.delete_file".into(),
        arguments_sha256: Some("ab".repeat(32)),
        lower_to: None,
        summary: "alice → report-agent: call_tool files.delete_file".into(),
        policies: vec!["zt4ai.integrity.tool".into()],
        reasons: vec![],
        now: 100,
        ttl: 60,
    }
}

fn approver(user: &str, in_group: bool) -> crate::Approver {
    crate::Approver {
        user: user.into(),
        in_group,
    }
}

#[test]
fn a_pending_approval_cannot_be_granted_after_it_expires() {
    let store = SessionStore::open_in_memory().unwrap();
    let id = store
        .create_approval(&approval_for(&SessionId::new("s").unwrap(), "fp"))
        .unwrap();
    assert!(matches!(
        store.decide_approval(id.as_str(), true, &approver("carol", true), None, 160),
        Err(ApprovalError::Expired(_))
    ));
}

#[test]
fn a_declassification_lowers_the_label_once_and_only_when_granted() {
    let store = SessionStore::open_in_memory().unwrap();
    let sid = SessionId::new("s").unwrap();
    let owner = SessionOwner {
        user: zt4ai_core::UserId::new("alice").unwrap(),
        agent: None,
    };
    let confidential = SessionLabel {
        confidentiality: Label::Confidential,
        ..SessionLabel::default()
    };
    // The floor (the flow session of the user and agent) is raised alike,
    // and must come down with it, or the declassification changes nothing.
    let floor = SessionId::new("floor").unwrap();
    for id in [&sid, &floor] {
        store
            .lock(id)
            .unwrap()
            .absorb(&confidential, &owner, 100)
            .unwrap();
    }
    let mut new = approval_for(&sid, "send");
    new.kind = crate::ApprovalKind::Declassification;
    new.policies = vec![];
    new.lower_to = Some(Label::Internal);
    let id = store.create_approval(&new).unwrap();
    let mut s = store.lock(&sid).unwrap();
    assert!(
        s.declassify(&id, Label::Internal, None, 101, Some(&floor))
            .is_err(),
        "not granted yet"
    );
    assert_eq!(s.label().confidentiality, Label::Confidential);
    drop(s);
    assert_eq!(
        store.lock(&floor).unwrap().label().confidentiality,
        Label::Confidential
    );
    store
        .decide_approval(id.as_str(), true, &approver("carol", true), None, 101)
        .unwrap();
    let a = store.check_approval(&id, &sid, "send", 102).unwrap();
    assert_eq!(a.kind, crate::ApprovalKind::Declassification);
    assert_eq!(a.lower_to, Some(Label::Internal));
    let mut s = store.lock(&sid).unwrap();
    assert_eq!(
        s.declassify(&id, Label::Internal, None, 102, Some(&floor))
            .unwrap()
            .confidentiality,
        Label::Internal
    );
    assert!(
        s.declassify(&id, Label::Public, None, 103, Some(&floor))
            .is_err(),
        "single use"
    );
    drop(s);
    // The floor came down in the cache and in SQLite.
    assert_eq!(
        store.lock(&floor).unwrap().label().confidentiality,
        Label::Internal
    );
    let stored: i64 = store
        .db()
        .query_row("SELECT label FROM sessions WHERE id = 'floor'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, Label::Internal.rank());
    // The approval is used up with the lowering.
    assert_eq!(
        store.approval(id.as_str()).unwrap().status,
        ApprovalStatus::Used
    );
    // An action approval cannot be used as a declassification.
    let other = store.create_approval(&approval_for(&sid, "x")).unwrap();
    store
        .decide_approval(other.as_str(), true, &approver("carol", true), None, 103)
        .unwrap();
    assert!(
        store
            .lock(&sid)
            .unwrap()
            .declassify(&other, Label::Public, None, 104, None)
            .is_err()
    );
}

#[test]
fn approvals_are_single_use_bound_and_expire() {
    let store = SessionStore::open_in_memory().unwrap();
    let sid = SessionId::new("s").unwrap();
    let new = approval_for(&sid, "fp");
    let id = store.create_approval(&new).unwrap();
    assert_eq!(
        store.create_approval(&new).unwrap(),
        id,
        "a repeated request reuses its pending approval"
    );
    assert!(matches!(
        store.check_approval(&id, &sid, "fp", 101),
        Err(ApprovalError::NotGranted { .. })
    ));
    assert_eq!(store.approvals(false).unwrap().len(), 1);
    // The user the agent acts for cannot grant it, nor can anyone outside the
    // approver group; nothing is changed by either attempt.
    assert!(matches!(
        store.decide_approval(
            id.as_str(),
            true,
            &approver("alice", true),
            Some("secops"),
            102
        ),
        Err(ApprovalError::SelfApproval { .. })
    ));
    assert!(matches!(
        store.decide_approval(
            id.as_str(),
            true,
            &approver("mallory", false),
            Some("secops"),
            102
        ),
        Err(ApprovalError::NotApprover { .. })
    ));
    assert_eq!(
        store.approval(id.as_str()).unwrap().status,
        ApprovalStatus::Pending
    );
    let a = store
        .decide_approval(
            id.as_str(),
            true,
            &approver("carol", true),
            Some("secops"),
            102,
        )
        .unwrap();
    assert_eq!(a.decided_by.as_deref(), Some("carol"));
    assert_eq!(a.requested_by, "alice");
    assert!(matches!(
        store.decide_approval(id.as_str(), false, &approver("carol", true), None, 102),
        Err(ApprovalError::AlreadyDecided { .. })
    ));
    assert!(matches!(
        store.check_approval(&id, &sid, "other", 103),
        Err(ApprovalError::Mismatch(_))
    ));
    assert!(matches!(
        store.check_approval(&id, &SessionId::new("t").unwrap(), "fp", 103),
        Err(ApprovalError::Mismatch(_))
    ));
    assert!(matches!(
        store.check_approval(&id, &sid, "fp", 160),
        Err(ApprovalError::Expired(_))
    ));
    assert_eq!(
        store.check_approval(&id, &sid, "fp", 103).unwrap().policies,
        ["zt4ai.integrity.tool"]
    );
    store.use_approval(&id, 104).unwrap();
    assert!(store.use_approval(&id, 105).is_err(), "single use");
    assert!(matches!(
        store.check_approval(&id, &sid, "fp", 105),
        Err(ApprovalError::NotGranted { .. })
    ));
    assert!(matches!(
        store.approval("apr_nope"),
        Err(ApprovalError::NotFound(_))
    ));
}

#[test]
fn tool_pins_block_changes_until_approved_and_stay_blocked_on_revert() {
    let s = SessionStore::open_in_memory().unwrap();
    let p = s
        .observe_tool("web.fetch", "d1", "{\"v\":1}", None, 10)
        .unwrap();
    assert_eq!(p.status, crate::PinStatus::Pinned);
    // Seen again unchanged: still pinned.
    assert_eq!(
        s.observe_tool("web.fetch", "d1", "{\"v\":1}", None, 11)
            .unwrap()
            .status,
        crate::PinStatus::Pinned
    );
    // A rug pull.
    let p = s
        .observe_tool("web.fetch", "d2", "{\"v\":2}", None, 12)
        .unwrap();
    assert_eq!(p.status, crate::PinStatus::Changed);
    assert_eq!((p.digest.as_str(), p.seen_digest.as_str()), ("d1", "d2"));
    assert!(p.finding.is_some());
    // Reverting does not unblock it: the attempt is the finding.
    let p = s
        .observe_tool("web.fetch", "d1", "{\"v\":1}", None, 13)
        .unwrap();
    assert_eq!(p.status, crate::PinStatus::Changed);
    // Approving a stale digest fails; approving the one seen pins it.
    s.observe_tool("web.fetch", "d2", "{\"v\":2}", None, 14)
        .unwrap();
    assert!(matches!(
        s.approve_tool("web.fetch", Some("d1"), "admin", 15),
        Err(crate::PinError::Stale { .. })
    ));
    let p = s
        .approve_tool("web.fetch", Some("d2"), "admin", 15)
        .unwrap();
    assert_eq!(
        (p.status, p.digest.as_str(), p.approved_by.as_deref()),
        (crate::PinStatus::Pinned, "d2", Some("admin"))
    );
    assert!(p.finding.is_none());
    assert!(matches!(
        s.approve_tool("nope", None, "a", 1),
        Err(crate::PinError::NotFound(_))
    ));
    // A flagged first sighting is suspicious; blocked tools list first.
    let p = s
        .observe_tool("a.b", "x", "{}", Some("hidden text"), 16)
        .unwrap();
    assert_eq!(p.status, crate::PinStatus::Suspicious);
    assert_eq!(s.tool_pins().unwrap()[0].tool, "a.b");
}

/// A held request's lookup of its pending approval uses the index on session
/// and request, not a scan of every pending approval (which SQLite chose,
/// having no statistics, while the index lacked `created_at`).
#[test]
fn finding_a_pending_approval_does_not_scan_them_all() {
    let store = SessionStore::open_in_memory().unwrap();
    let db = store.db();
    let plan: Vec<String> = db
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            crate::approvals::PENDING_FOR_REQUEST
        ))
        .unwrap()
        .query_map(params!["s", "f", 0, "action"], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        plan,
        [
            "SEARCH approvals USING INDEX approvals_request_at (session_id=? AND fingerprint=? AND status=?)"
        ]
    );
}

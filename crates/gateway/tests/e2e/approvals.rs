//! Human approvals end to end: the MCP gateway holding a call until a human
//! decides, the admin API proving who decides (separation of duties, the
//! approver group), and declassification asked for over AuthZEN and MCP.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zt4ai_gateway::GatewayConfig;
use zt4ai_identity::{DEV_IDP_KEYS, KeyRing, mint_dev_token};

use super::mcp::{Files, Mailer, Web, call, client_with, rpc_error, serve_upstream, text};
use super::{ADMIN_TOKEN, INVENTORY, Server, exec, policies, unix_now, verdict};

/// A user token from the development identity provider of the server whose
/// data directory is `dir`, claiming `groups`.
pub(crate) fn user_token(dir: &Path, user: &str, groups: &[&str]) -> String {
    let keys = KeyRing::open(&dir.join(DEV_IDP_KEYS), unix_now()).unwrap();
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    mint_dev_token(&keys, user, &groups, None, 600, unix_now()).unwrap()
}

impl Server {
    /// `POST /admin/v1/approvals/{id}/{op}` with the admin token and, when
    /// given, the approver's user token.
    pub(crate) async fn decide(
        &self,
        id: &str,
        op: &str,
        approver: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .post(self.url(&format!("/admin/v1/approvals/{id}/{op}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        if let Some(t) = approver {
            r = r.header("x-zt4ai-approver-token", t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// The id of the newest pending approval, once there is one (polled, for
    /// at most ten seconds).
    async fn pending_approval(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (st, v) = self
                .get_json("/admin/v1/approvals", Some(ADMIN_TOKEN))
                .await;
            assert_eq!(st, 200, "{v}");
            if let Some(id) = v["approvals"][0]["id"].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no approval became pending");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /admin/v1/approvals/{id}`.
    async fn approval(&self, id: &str) -> Value {
        let (st, v) = self
            .get_json(&format!("/admin/v1/approvals/{id}"), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }
}

/// The example inventory with an approver group, `secops` (Sam is in it,
/// Carol is not), `mcp_servers` before its settings, calls held `hold`
/// seconds by default, and `files.delete_file` held `delete_hold` seconds.
fn inventory(mcp_servers: &str, hold: u64, delete_hold: Option<u64>) -> String {
    let mut inv = super::replace_once(
        INVENTORY.to_owned(),
        "\nsettings:\n",
        &format!(
            "\n{mcp_servers}settings:\n  approvers: secops\n  approval_hold_seconds: {hold}\n"
        ),
    );
    inv = super::replace_once(inv, "\ngroups:\n", "\ngroups:\n  - id: secops\n");
    inv = super::replace_once(
        inv,
        "\nusers:\n",
        "\nusers:\n  - id: sam\n    groups: [secops]\n  - id: carol\n    groups: [analysts]\n",
    );
    if let Some(h) = delete_hold {
        let line = "    description: Delete a file from the shared drive\n";
        inv = super::replace_once(
            inv,
            line,
            &format!("{line}    approval_hold_seconds: {h}\n"),
        );
    }
    inv
}

/// A gateway on `inventory`, whose MCP upstreams are its `mcp_servers`.
async fn gateway(inventory: &str) -> (Server, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let inv = zt4ai_core::Inventory::from_yaml_str(inventory, "inventory.yaml").unwrap();
    let upstreams = Arc::new(zt4ai_mcp::Upstreams::new(inv.mcp_servers.into_values()).unwrap());
    upstreams.start();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_full(
        &dir.path().join("z.db"),
        GatewayConfig {
            mcp: Some(upstreams),
            ..GatewayConfig::default()
        },
        inventory,
    )
    .await;
    (s, dir)
}

/// A web server and a file share upstream (the share records what it
/// deletes), and a gateway holding calls `hold` seconds (`files.delete_file`:
/// `delete_hold`).
async fn web_and_files(
    hold: u64,
    delete_hold: Option<u64>,
) -> (Server, tempfile::TempDir, Arc<Mutex<Vec<String>>>) {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let web = serve_upstream(Web::new()).await;
    let files = serve_upstream(Files::new(Arc::clone(&deleted))).await;
    let servers = format!(
        "mcp_servers:\n  - id: web\n    url: {web}\n  - id: files\n    url: {files}\n    timeout_ms: 5000\n"
    );
    let (s, dir) = gateway(&inventory(&servers, hold, delete_hold)).await;
    (s, dir, deleted)
}

type Client = rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>;

/// The report agent for Alice, its session made untrusted by a fetched page:
/// a destructive call now needs a human.
async fn untrusted_report_agent(s: &Server) -> Client {
    let client = client_with(s, "/mcp", s.mint("alice", &["report-agent"])).await;
    client
        .call_tool(call("web.fetch", json!({"url": "https://evil.example/"})))
        .await
        .unwrap();
    client
}

type Held = tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>;

/// Starts `files.delete_file` on `client` in a task of its own; returns the
/// task and, once it is held, its approval id.
async fn held_delete(s: &Server, client: &Client) -> (Held, String) {
    let peer = client.peer().clone();
    let task = tokio::spawn(async move {
        peer.call_tool(call("files.delete_file", json!({"path": "/share/q3.xlsx"})))
            .await
    });
    let id = s.pending_approval().await;
    assert!(!task.is_finished(), "the call is held, not answered");
    (task, id)
}

/// The held call's outcome, waited for at most ten seconds.
async fn outcome(task: Held) -> Result<rmcp::model::CallToolResult, rmcp::ServiceError> {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the held call ends once the approval is decided")
        .unwrap()
}

#[tokio::test]
async fn a_held_mcp_call_goes_through_once_an_approver_grants_it() {
    let (s, dir, deleted) = web_and_files(30, None).await;
    let client = untrusted_report_agent(&s).await;
    let (task, id) = held_delete(&s, &client).await;
    assert!(deleted.lock().unwrap().is_empty(), "nothing deleted yet");
    let v = s.approval(&id).await;
    assert_eq!(v["approval"]["kind"], "action", "{v}");
    assert_eq!(v["approval"]["requested_by"], "alice");
    assert_eq!(v["approval"]["resource"], "files.delete_file");
    assert_eq!(v["expired"], false);

    // Sam, in the approver group, grants it with his own IdP token.
    let sam = user_token(dir.path(), "sam", &[]);
    let (st, v) = s.decide(&id, "approve", Some(&sam), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["approval"]["decided_by"], "sam");

    let r = outcome(task).await.unwrap();
    assert!(text(&r).contains("deleted /share/q3.xlsx"), "{r:?}");
    assert_eq!(*deleted.lock().unwrap(), ["/share/q3.xlsx"]);
    // The held call used the approval up.
    assert_eq!(s.approval(&id).await["approval"]["status"], "used");
    client.cancel().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_held_mcp_call_denied_by_an_approver_fails_cleanly() {
    let (s, dir, deleted) = web_and_files(30, None).await;
    let client = untrusted_report_agent(&s).await;
    let (task, id) = held_delete(&s, &client).await;
    let sam = user_token(dir.path(), "sam", &[]);
    let (st, v) = s.decide(&id, "deny", Some(&sam), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["approval"]["status"], "denied");

    let e = rpc_error(outcome(task).await.unwrap_err());
    assert_eq!(e.code, zt4ai_mcp::DENIED, "{}", e.message);
    assert!(e.message.contains("denied by `sam`"), "{}", e.message);
    assert_eq!(e.data.unwrap()["approval"], id.as_str());
    assert!(deleted.lock().unwrap().is_empty(), "nothing was deleted");
    // The session goes on: the next call is answered.
    client
        .call_tool(call("web.fetch", json!({"url": "https://news.example/"})))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_held_mcp_call_times_out_and_its_approval_stays_pending() {
    // Held 30 s by default, but the tool's own hold (1 s) wins.
    let (s, dir, deleted) = web_and_files(30, Some(1)).await;
    let client = untrusted_report_agent(&s).await;
    let started = Instant::now();
    let delete = call("files.delete_file", json!({"path": "/share/q3.xlsx"}));
    let e = rpc_error(client.call_tool(delete.clone()).await.unwrap_err());
    let held = started.elapsed();
    assert!(
        held >= Duration::from_secs(1) && held < Duration::from_secs(10),
        "{held:?}"
    );
    assert_eq!(e.code, zt4ai_mcp::APPROVAL_REQUIRED, "{}", e.message);
    assert!(e.message.contains("stays pending"), "{}", e.message);
    assert!(
        e.message.contains(zt4ai_mcp::APPROVAL_META),
        "{}",
        e.message
    );
    let id = e.data.unwrap()["approval"].as_str().unwrap().to_owned();
    let v = s.approval(&id).await;
    assert_eq!(v["approval"]["status"], "pending", "{v}");
    assert!(deleted.lock().unwrap().is_empty());

    // Granted later, the agent's retry with the approval goes through.
    let sam = user_token(dir.path(), "sam", &[]);
    let (st, v) = s.decide(&id, "grant", Some(&sam), json!({})).await;
    assert_eq!(st, 200, "{v}");
    let r = client
        .call_tool(super::mcp::with_approval(delete, &id))
        .await
        .unwrap();
    assert!(text(&r).contains("deleted"), "{r:?}");
    client.cancel().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_declassification_asked_over_mcp_is_held_until_an_approver_grants_it() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let crm = serve_upstream(super::mcp::Crm::new()).await;
    let mail = serve_upstream(Mailer::new(Arc::clone(&sent))).await;
    let servers =
        format!("mcp_servers:\n  - id: crm\n    url: {crm}\n  - id: mail\n    url: {mail}\n");
    let (s, dir) = gateway(&inventory(&servers, 30, None)).await;
    let client = client_with(&s, "/mcp", s.mint("alice", &["report-agent"])).await;
    client
        .call_tool(call("crm.query", json!({"table": "customers"})))
        .await
        .unwrap();
    let send = call(
        "mail.send_email",
        json!({"to": "partner@rival.example", "body": "the list"}),
    );
    // Asking for a declassification (a plain attempt would be denied, and as
    // an exfiltration attempt quarantine the agent): held for a human.
    let mut asked = send.clone();
    let meta = json!({ zt4ai_mcp::DECLASSIFY_META: true });
    asked.meta = Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
        meta.as_object().unwrap().clone(),
    )));
    let peer = client.peer().clone();
    let task = tokio::spawn(async move { peer.call_tool(asked).await });
    let id = s.pending_approval().await;
    assert!(!task.is_finished(), "the call is held");
    let v = s.approval(&id).await;
    assert_eq!(v["approval"]["kind"], "declassification", "{v}");
    assert_eq!(v["approval"]["lower_to"], "public", "{v}");
    let sam = user_token(dir.path(), "sam", &[]);
    let (st, v) = s.decide(&id, "approve", Some(&sam), json!({})).await;
    assert_eq!(st, 200, "{v}");
    let r = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(text(&r).contains("sent"), "{r:?}");
    assert_eq!(*sent.lock().unwrap(), ["partner@rival.example"]);

    // A `_meta` value that is not a boolean is refused.
    let mut bad = send;
    let meta = json!({ zt4ai_mcp::DECLASSIFY_META: "yes" });
    bad.meta = Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
        meta.as_object().unwrap().clone(),
    )));
    let e = rpc_error(client.call_tool(bad).await.unwrap_err());
    assert!(
        e.message.contains(zt4ai_mcp::DECLASSIFY_META),
        "{}",
        e.message
    );
    client.cancel().await.unwrap();
    s.stop().await;
}

/// A require-approval verdict over AuthZEN; returns the approval id.
async fn pending_over_authzen(s: &Server) -> String {
    let v = s
        .evaluate(super::call(
            exec(),
            "web.fetch",
            json!({"url": "https://blog.example/post"}),
            "triage",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");
    let v = s
        .evaluate(super::call(
            exec(),
            "files.delete_file",
            json!({"path": "/shared/q3.xlsx"}),
            "triage",
        ))
        .await;
    assert_eq!(verdict(&v), "require_approval", "{v}");
    v["context"]["approval"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_admin_api_proves_the_approver_and_enforces_separation_of_duties() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_full(
        &dir.path().join("z.db"),
        GatewayConfig::default(),
        &inventory("", 0, None),
    )
    .await;
    let id = pending_over_authzen(&s).await;
    let token = |user: &str, groups: &[&str]| user_token(dir.path(), user, groups);

    // No approver token, or a bad one: 401.
    let (st, v) = s.decide(&id, "approve", None, json!({})).await;
    assert_eq!(st, 401, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("x-zt4ai-approver-token"),
        "{v}"
    );
    let (st, v) = s.decide(&id, "approve", Some("not-a-jwt"), json!({})).await;
    assert_eq!(st, 401, "{v}");
    // A delegated (agent) token is not a user token.
    let agent = s.mint("sam", &["report-agent"]);
    let (st, v) = s.decide(&id, "approve", Some(&agent), json!({})).await;
    assert_eq!(st, 401, "{v}");

    // The user the agent acts for may not grant it, even when the IdP puts her
    // in the approver group.
    let alice = token("alice", &["secops"]);
    let (st, v) = s.decide(&id, "approve", Some(&alice), json!({})).await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["error"], "separation_of_duties", "{v}");
    // A user outside the approver group may not decide at all.
    let carol = token("carol", &[]);
    for op in ["approve", "deny"] {
        let (st, v) = s.decide(&id, op, Some(&carol), json!({})).await;
        assert_eq!(st, 403, "{v}");
        assert_eq!(v["error"], "not_approver", "{v}");
    }
    // The approver is the token's user, never a name in the body.
    let sam = token("sam", &[]);
    let (st, v) = s
        .decide(&id, "approve", Some(&sam), json!({"by": "sam"}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("`by`"), "{v}");
    // Nothing so far decided it.
    assert_eq!(s.approval(&id).await["approval"]["status"], "pending");

    // Membership the IdP asserts counts too: Carol, in `secops` by her token.
    let carol_secops = token("carol", &["secops"]);
    let (st, v) = s.decide(&id, "grant", Some(&carol_secops), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["approval"]["decided_by"], "carol");
    let (st, v) = s.decide(&id, "deny", Some(&sam), json!({})).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"], "already_decided");
    let (st, _) = s.decide("apr_nope", "approve", Some(&sam), json!({})).await;
    assert_eq!(st, 404);
    let (st, _) = s
        .get_json("/admin/v1/approvals/apr_nope", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(st, 404);
    // The admin token is still required.
    let r = s
        .client
        .post(s.url(&format!("/admin/v1/approvals/{id}/deny")))
        .header("x-zt4ai-approver-token", &sam)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The retried request goes through with Carol's grant.
    let mut retry = super::call(
        exec(),
        "files.delete_file",
        json!({"path": "/shared/q3.xlsx"}),
        "triage",
    );
    retry["context"]["approval"] = json!(id);
    let v = s.evaluate(retry).await;
    assert_eq!(v["decision"], true, "{v}");

    // A gateway without identity cannot prove an approver: 501.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = zt4ai_gateway::router(
        Arc::clone(&s.pipeline),
        GatewayConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            ..GatewayConfig::default()
        },
        None,
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let r = s
        .client
        .post(format!("http://{addr}/admin/v1/approvals/{id}/deny"))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-zt4ai-approver-token", &sam)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("without identity"),
        "{v}"
    );
    server.abort();
    s.stop().await;
}

#[tokio::test]
async fn authzen_asks_for_a_declassification_and_reports_the_risk() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_full(
        &dir.path().join("z.db"),
        GatewayConfig::default(),
        &inventory("", 0, None),
    )
    .await;
    let read = super::call(exec(), "crm.query", json!({"table": "customers"}), "q3");
    let v = s.evaluate(read).await;
    assert_eq!(v["decision"], true, "{v}");
    // The risk behind the decision comes back with it.
    let risk = &v["context"]["risk"];
    assert!(risk["score"].is_u64(), "{v}");
    assert!(risk["session"].is_u64() && risk["agent"].is_u64(), "{v}");
    assert!(risk["signals"].is_array(), "{v}");

    let mut send = super::call(
        exec(),
        "mail.send_email",
        json!({"to": "partner@rival.example", "body": "the list"}),
        "q3",
    );
    send["context"]["declassify"] = json!(true);
    let v = s.evaluate(send.clone()).await;
    assert_eq!(verdict(&v), "require_approval", "{v}");
    assert_eq!(policies(&v), ["zt4ai.approval.declassification"]);
    let id = v["context"]["approval"].as_str().unwrap().to_owned();
    let a = s.approval(&id).await;
    assert_eq!(a["approval"]["kind"], "declassification", "{a}");

    // Not a boolean: 400, naming the field.
    let token = s.mint("alice", &["report-agent"]);
    let mut one = send.clone();
    one["context"]["declassify"] = json!("yes");
    let mut second = send.clone();
    second["context"]["declassify"] = json!(1);
    let many = json!({ "evaluations": [send, second] });
    for (path, body, field) in [
        ("/access/v1/evaluation", one, "`context.declassify`"),
        (
            "/access/v1/evaluations",
            many,
            "`evaluations[1].context.declassify`",
        ),
    ] {
        let (st, v) = s.post_with(path, body.to_string(), Some(&token)).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["message"].as_str().unwrap().contains(field), "{v}");
    }
    s.stop().await;
}

/// `POST /admin/v1/labels/{user}/report-agent/lower` with `body`, as the
/// admin and, when given, with the approver's user token: (status, JSON).
async fn lower_label(s: &Server, user: &str, approver: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = s
        .client
        .post(s.url(&format!("/admin/v1/labels/{user}/report-agent/lower")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body);
    if let Some(t) = approver {
        r = r.header("x-zt4ai-approver-token", t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

/// What a user's agent has read stays with the two across sessions; the admin
/// API shows it, and a human (proved as for approvals, never the user) can
/// lower it for later requests. The change is in the audit log.
#[tokio::test]
async fn a_human_lowers_the_label_of_what_an_agent_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    let s = Server::start_full(&db, GatewayConfig::default(), &inventory("", 0, None)).await;
    let token = |user: &str, groups: &[&str]| user_token(dir.path(), user, groups);
    let label = async |user: &str| {
        s.get_json(
            &format!("/admin/v1/labels/{user}/report-agent"),
            Some(ADMIN_TOKEN),
        )
        .await
    };
    let (st, v) = label("alice").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["recorded"].clone(), v["label"]["confidentiality"].clone()),
        (json!(false), json!("public"))
    );

    let v = s
        .evaluate(super::call(
            exec(),
            "crm.query",
            json!({"table": "customers"}),
            "task-1",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");
    let (_, v) = label("alice").await;
    assert_eq!(v["recorded"], true, "{v}");
    assert_eq!(v["label"]["confidentiality"], "confidential", "{v}");
    assert!(v["session"].as_str().unwrap().starts_with("flow-"), "{v}");
    // Bob's report agent has read nothing.
    assert_eq!(label("bob").await.1["recorded"], false);

    let to_public = json!({"to": "public", "reason": "the extract was reviewed"});
    let (st, v) = lower_label(&s, "alice", None, to_public.clone()).await;
    assert_eq!(st, 401, "{v}");
    let (st, v) = lower_label(
        &s,
        "alice",
        Some(&token("alice", &["secops"])),
        to_public.clone(),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("separation_of_duties")),
        "{v}"
    );
    let (st, v) = lower_label(&s, "alice", Some(&token("carol", &[])), to_public.clone()).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("not_approver")),
        "{v}"
    );
    let sam = token("sam", &[]);
    let (st, v) = lower_label(&s, "alice", Some(&sam), json!({"to": "secret"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = lower_label(&s, "alice", Some(&sam), json!({})).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("nothing to lower"),
        "{v}"
    );
    let (st, v) = lower_label(
        &s,
        "alice",
        Some(&sam),
        json!({"trust": false, "drop_categories": []}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = lower_label(
        &s,
        "alice",
        Some(&sam),
        json!({"drop_categories": ["pii", ""]}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("drop_categories[1]"),
        "{v}"
    );
    let (st, v) = lower_label(&s, "bob", Some(&sam), to_public.clone()).await;
    assert_eq!(st, 404, "{v}");
    // Nothing so far lowered it.
    assert_eq!(
        label("alice").await.1["label"]["confidentiality"],
        "confidential"
    );

    let mut to_public_no_pii = to_public.clone();
    to_public_no_pii["drop_categories"] = json!(["pii"]);
    let (st, v) = lower_label(&s, "alice", Some(&sam), to_public_no_pii).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["before"]["confidentiality"], "confidential", "{v}");
    assert_eq!(v["before"]["categories"], json!(["customer", "pii"]), "{v}");
    assert_eq!(v["label"]["confidentiality"], "public", "{v}");
    assert_eq!(v["label"]["categories"], json!(["customer"]), "{v}");
    let (_, v) = label("alice").await;
    assert_eq!(v["label"]["confidentiality"], "public", "{v}");
    assert_eq!(v["label"]["categories"], json!(["customer"]), "{v}");
    let v = s
        .evaluate(super::call(
            exec(),
            "mail.send_email",
            json!({"to": "buyer@partner.example", "body": "the reviewed extract"}),
            "task-2",
        ))
        .await;
    assert_eq!(verdict(&v), "allow", "{v}");
    s.stop().await;

    let reader = zt4ai_audit::AuditReader::open(&db).unwrap();
    let mut lowered = Vec::new();
    reader
        .query(&zt4ai_audit::Filter::default(), |r| {
            let r = serde_json::to_value(&r).unwrap();
            if r["event"] == "label.lowered" {
                lowered.push(r);
            }
            true
        })
        .unwrap();
    assert_eq!(lowered.len(), 1, "{lowered:?}");
    assert_eq!(lowered[0]["actor"], "admin-api:sam", "{lowered:?}");
    assert_eq!(lowered[0]["detail"]["to"], "public", "{lowered:?}");
    assert_eq!(
        lowered[0]["detail"]["after"]["categories"],
        json!(["customer"]),
        "{lowered:?}"
    );
    assert_eq!(lowered[0]["detail"]["reason"], "the extract was reviewed");
}

/// A fetched page leaves its untrusted mark on what Alice's report agent
/// carries, in every later MCP session and token of the two, so a destructive
/// call needs a human each time, until a human who has looked clears the mark.
/// The lowering survives a restart.
#[tokio::test]
async fn a_human_clears_the_untrusted_mark_an_agent_carries() {
    let (s, dir, deleted) = web_and_files(0, None).await;
    untrusted_report_agent(&s).await.cancel().await.unwrap();
    let delete = call("files.delete_file", json!({"path": "/share/q3.xlsx"}));
    // Another token, another MCP session: still untrusted.
    let client = client_with(&s, "/mcp", s.mint("alice", &["report-agent"])).await;
    let e = rpc_error(client.call_tool(delete.clone()).await.unwrap_err());
    assert_eq!(e.code, zt4ai_mcp::APPROVAL_REQUIRED, "{}", e.message);
    let (st, v) = s
        .get_json("/admin/v1/labels/alice/report-agent", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["label"]["integrity"], "untrusted", "{v}");

    let sam = user_token(dir.path(), "sam", &[]);
    let (st, v) = lower_label(
        &s,
        "alice",
        Some(&sam),
        json!({"trust": true, "reason": "the page was a news article"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["before"]["integrity"], "untrusted", "{v}");
    assert_eq!(v["label"]["integrity"], "trusted", "{v}");
    // Nothing else was lowered.
    assert_eq!(
        v["label"]["confidentiality"],
        v["before"]["confidentiality"]
    );

    let r = client.call_tool(delete).await.unwrap();
    assert!(text(&r).contains("deleted /share/q3.xlsx"), "{r:?}");
    assert_eq!(*deleted.lock().unwrap(), ["/share/q3.xlsx"]);
    client.cancel().await.unwrap();
    s.stop().await;

    // Durable: the store, opened again, has the mark cleared.
    let store = zt4ai_session::SessionStore::open(&dir.path().join("z.db")).unwrap();
    let flow = zt4ai_core::SessionId::flow(
        &zt4ai_core::UserId::new("alice").unwrap(),
        Some(&zt4ai_core::AgentId::new("report-agent").unwrap()),
    );
    let l = store.label_of(&flow).unwrap().unwrap();
    assert_eq!(l.integrity, zt4ai_core::Integrity::Trusted, "{l:?}");
}

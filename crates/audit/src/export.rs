//! Records as a SIEM takes them: OCSF events.
//!
//! Each record becomes one OCSF (schema 1.3.0) **API Activity** event (class
//! 6003, category 6, Application Activity) with the `security_control` profile:
//! `disposition_id`/`action_id` say whether zt4ai let the action through, and
//! `actor.authorizations` names the determining policies. The full zt4ai record
//! rides along under `unmapped`, so nothing is lost in translation.

use serde_json::{Value, json};

use crate::{Event, Record};
use zt4ai_core::Decision;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF API Activity event for `record` of the log named `origin`.
pub fn ocsf(record: &Record, origin: &str) -> Value {
    let (activity_id, activity_name) = match &record.event {
        Event::Decision(d) => activity_of(&d.action),
        Event::Lifecycle(l) => activity_of(&l.event),
    };
    let mut ev = json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 6003 * 100 + activity_id,
        "time": record.event.time_ms(),
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["security_control"],
            "uid": format!("{origin}/{}", record.index),
            "log_name": origin,
            "product": {
                "name": "zt4ai",
                "vendor_name": "zt4ai",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "unmapped": record,
    });
    match &record.event {
        Event::Decision(d) => {
            let (status_id, status, disposition_id, disposition, action_id, severity_id) =
                match d.decision {
                    Decision::Allow => (1, "Success", 1, "Allowed", 1, 1),
                    Decision::Deny => (2, "Failure", 2, "Blocked", 2, 3),
                    Decision::RequireApproval => (99, "Other", 99, "Pending approval", 99, 2),
                };
            ev["status_id"] = json!(status_id);
            ev["status"] = json!(status);
            ev["disposition_id"] = json!(disposition_id);
            ev["disposition"] = json!(disposition);
            ev["action_id"] = json!(action_id);
            ev["severity_id"] = json!(severity_id);
            ev["message"] = json!(d.reasons.first().map_or("", |r| r.message.as_str()));
            ev["actor"] = json!({
                "user": { "uid": d.chain.user, "name": d.chain.user },
                "session": { "uid": d.session },
                "app_name": d.chain.agents.last(),
                "authorizations": d.policies.iter().map(|p| json!({
                    "decision": d.decision.as_str(),
                    "policy": { "uid": p, "name": p },
                })).collect::<Vec<_>>(),
            });
            ev["api"] = json!({
                "operation": d.action,
                "service": { "name": format!("zt4ai {}", d.point) },
                "request": { "uid": d.request_id },
            });
            ev["resources"] = json!([{ "uid": d.resource, "type": d.action }]);
            ev["src_endpoint"] = json!({ "svc_name": d.point });
        }
        Event::Lifecycle(l) => {
            ev["status_id"] = json!(1);
            ev["status"] = json!("Success");
            ev["severity_id"] = json!(1);
            ev["message"] = json!(format!("{} {}", l.event, l.subject));
            ev["actor"] =
                json!({ "user": { "uid": l.actor, "name": l.actor }, "app_name": "zt4ai" });
            ev["api"] = json!({ "operation": l.event, "service": { "name": "zt4ai admin" } });
            ev["resources"] = json!([{ "uid": l.subject }]);
            ev["src_endpoint"] = json!({ "svc_name": "admin" });
        }
    }
    ev
}

/// OCSF API Activity `activity_id` for a zt4ai action or lifecycle event.
fn activity_of(action: &str) -> (u64, &'static str) {
    let last = action.rsplit('.').next().unwrap_or(action);
    match last {
        "read" | "fetch" => (2, "Read"),
        "write" | "suspended" | "resumed" | "granted" | "denied" | "approved" | "rotated" => {
            (3, "Update")
        }
        "send" | "registered" | "started" => (1, "Create"),
        "retired" | "revoked" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

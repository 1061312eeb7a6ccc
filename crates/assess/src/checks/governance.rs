//! Checks: governance — ownership, the organisation's own policies, separation
//! of duties.

use super::{Check, Deployment};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "organisation-named",
        about: "the inventory names the organisation",
        run: organisation_named,
    },
    Check {
        id: "custom-policies-present",
        about: "the organisation has its own policies beyond the baseline",
        run: custom_policies,
    },
    Check {
        id: "approver-separation",
        about: "approvers do not approve for agents they own",
        run: approver_separation,
    },
];

fn organisation_named(d: &Deployment) -> Outcome {
    match d.inventory.organisation.as_deref().map(str::trim) {
        Some(o) if !o.is_empty() => Outcome::passed(format!("the inventory belongs to {o}")),
        _ => Outcome::failed("the inventory does not name the organisation it describes")
            .with(vec![d.at("", "no `organisation:` field")]),
    }
}

fn custom_policies(d: &Deployment) -> Outcome {
    let n = d.custom_policy_count();
    if n == 0 {
        Outcome::investigate(
            "only the baseline guards decide: nothing expresses this organisation's own rules (who may use destructive tools, which data may reach which model)",
        )
    } else {
        Outcome::passed(format!(
            "{n} policies of the organisation's own in {} files",
            d.policies.len()
        ))
    }
}

fn approver_separation(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let Some(group) = &inv.settings.approvers else {
        return Outcome::skipped("no approver group is configured");
    };
    let mut problems: Vec<Evidence> = Vec::new();
    for u in inv
        .users
        .values()
        .filter(|u| u.groups.iter().any(|g| g == group))
    {
        let owned: Vec<&str> = inv
            .agents
            .iter()
            .filter(|(_, a)| a.owner == u.id)
            .map(|(id, _)| id.as_str())
            .collect();
        if !owned.is_empty() {
            problems.push(d.at_entity(
                "users",
                u.id.as_str(),
                "groups",
                format!(
                    "approver `{}` owns {}: an owner approving their own agent's requests is no separation of duties",
                    u.id,
                    owned.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed(format!("no member of `{group}` owns an agent"))
    } else {
        Outcome::investigate(format!(
            "{} approvers own agents whose requests they could approve",
            problems.len()
        ))
        .with(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::tests::{BASE, load};
    use crate::Status;

    fn run(id: &str, yaml: &str) -> crate::Outcome {
        (crate::checks::find(id).unwrap().run)(&load(yaml))
    }

    #[test]
    fn governance() {
        assert_eq!(run("organisation-named", BASE).status, Status::Passed);
        assert_eq!(
            run(
                "organisation-named",
                &BASE.replace("organisation: Test\n", "")
            )
            .status,
            Status::Failed
        );
        assert_eq!(
            run("custom-policies-present", BASE).status,
            Status::Investigate
        );
        // A commented-out policy is not a policy.
        let d = crate::Deployment::load(
            BASE,
            "inventory.yaml",
            vec![zt4ai_policy::PolicySource {
                name: "p.cedar".into(),
                text: "// @id(\"x.old\") forbid (principal, action, resource);\n".into(),
            }],
            crate::Options {
                dormant_days: 30,
                now: 1_800_000_000,
            },
        )
        .unwrap();
        assert_eq!(d.custom_policy_count(), 0);
        assert_eq!(
            (crate::checks::find("custom-policies-present").unwrap().run)(&d).status,
            Status::Investigate
        );
        assert_eq!(run("approver-separation", BASE).status, Status::Skipped);
        let yaml = format!("{BASE}settings:\n  approvers: staff\n");
        let o = run("approver-separation", &yaml);
        assert_eq!(o.status, Status::Investigate);
        assert_eq!(o.evidence[0].field.as_deref(), Some("users[0].groups"));
    }
}

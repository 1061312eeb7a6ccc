//! Checks: data — labels, categories, untrusted content, inspection settings.

use zt4ai_core::Label;
use zt4ai_core::inventory::BindingKind;

use super::{Check, Deployment};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "pii-dataset-labels",
        about: "datasets holding personal, financial or health data are labelled confidential or above",
        run: pii_labels,
    },
    Check {
        id: "untrusted-output-spotlight",
        about: "tools whose output is untrusted spotlight it",
        run: untrusted_spotlight,
    },
    Check {
        id: "injection-threshold",
        about: "prompt-injection detection is not loosened",
        run: injection_threshold,
    },
    Check {
        id: "custom-dictionaries",
        about: "custom dictionaries of sensitive terms are configured",
        run: dictionaries,
    },
    Check {
        id: "unbound-consequential-tools",
        about: "tools that change things bind the arguments that say what they touch",
        run: unbound_consequential,
    },
    Check {
        id: "restricted-data-reachable",
        about: "highly confidential datasets readable by agents are reviewed",
        run: restricted_reachable,
    },
];

/// Categories that mean regulated personal or financial data.
const SENSITIVE_CATEGORIES: [&str; 8] = [
    "pii",
    "phi",
    "health",
    "financial",
    "payment",
    "pci",
    "credentials",
    "secret",
];

/// Threshold above which injection detection counts as loosened: the built-in
/// model's operating point is about 0.77; above 0.9 most real injections pass.
const INJECTION_THRESHOLD_MAX: f32 = 0.9;

fn pii_labels(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .inventory
        .datasets
        .values()
        .filter_map(|ds| {
            let cats: Vec<&str> = ds
                .categories
                .iter()
                .map(|c| c.as_str())
                .filter(|c| SENSITIVE_CATEGORIES.contains(c))
                .collect();
            (!cats.is_empty() && ds.label < Label::Confidential).then(|| {
                d.at_entity(
                    "datasets",
                    &ds.id,
                    "label",
                    format!(
                        "`{}` holds {} but is labelled {}: it may flow wherever {} data may",
                        ds.id,
                        cats.join(", "),
                        ds.label,
                        ds.label
                    ),
                )
            })
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed(
            "every dataset with personal, financial or health data is confidential or above",
        )
    } else {
        Outcome::failed(format!(
            "{} datasets with regulated data are labelled too low",
            problems.len()
        ))
        .with(problems)
    }
}

fn untrusted_spotlight(d: &Deployment) -> Outcome {
    let untrusted: Vec<_> = d
        .inventory
        .tools
        .values()
        .filter(|t| !t.output_trusted)
        .collect();
    if untrusted.is_empty() {
        return Outcome::passed("no tool is declared to return untrusted output");
    }
    let problems: Vec<Evidence> = untrusted
        .iter()
        .filter(|t| t.spotlight.is_none())
        .map(|t| {
            d.at_entity(
                "tools",
                &t.id,
                "output",
                format!(
                    "`{}` returns untrusted text without `spotlight`: the agent's model reads it like instructions",
                    t.id
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed(format!(
            "all {} tools with untrusted output spotlight it",
            untrusted.len()
        ))
    } else {
        Outcome::failed(format!(
            "{} of {} tools with untrusted output do not spotlight it",
            problems.len(),
            untrusted.len()
        ))
        .with(problems)
    }
}

fn injection_threshold(d: &Deployment) -> Outcome {
    match d.inventory.inspection.injection_threshold {
        None => Outcome::passed(
            "prompt-injection detection uses the built-in model's operating threshold",
        ),
        Some(t) if t <= INJECTION_THRESHOLD_MAX => {
            Outcome::passed(format!("prompt-injection threshold is {t}"))
        }
        Some(t) => Outcome::failed(format!(
            "the prompt-injection threshold is {t}: most injections score below it and pass"
        ))
        .with(vec![d.at(
            "inspection.injection_threshold",
            format!("injection_threshold: {t}"),
        )]),
    }
}

fn dictionaries(d: &Deployment) -> Outcome {
    let dicts = &d.inventory.inspection.dictionaries;
    if dicts.iter().any(|x| !x.terms.is_empty()) {
        let terms: usize = dicts.iter().map(|x| x.terms.len()).sum();
        Outcome::passed(format!(
            "{} custom dictionaries, {terms} terms",
            dicts.len()
        ))
    } else {
        Outcome::investigate(
            "no custom dictionaries: the organisation's own sensitive names (customers, projects) are not recognised in content",
        )
        .with(vec![d.at(
            "inspection",
            "no `inspection.dictionaries`",
        )])
    }
}

fn unbound_consequential(d: &Deployment) -> Outcome {
    let problems: Vec<Evidence> = d
        .inventory
        .tools
        .values()
        .filter(|t| {
            t.is_consequential()
                && !t.open_world
                && !t.bindings.iter().any(|b| b.kind == BindingKind::Dataset)
        })
        .map(|t| {
            d.at_entity(
                "tools",
                &t.id,
                "bindings",
                format!(
                    "`{}` changes things but binds no argument to a dataset: policy cannot see what a call touches",
                    t.id
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Outcome::passed("every tool that changes data says which dataset a call touches")
    } else {
        Outcome::investigate(format!(
            "{} consequential tools have no dataset binding",
            problems.len()
        ))
        .with(problems)
    }
}

fn restricted_reachable(d: &Deployment) -> Outcome {
    let inv = &d.inventory;
    let mut problems = Vec::new();
    for ds in inv
        .datasets
        .values()
        .filter(|ds| ds.label == Label::HighlyConfidential)
    {
        let agents: Vec<&str> = inv
            .agents
            .iter()
            .filter(|(_, a)| {
                a.grants.datasets.contains(&ds.id) && a.clearance >= Label::HighlyConfidential
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if !agents.is_empty() {
            problems.push(d.at_entity(
                "datasets",
                &ds.id,
                "",
                format!(
                    "highly confidential `{}` is readable by {}",
                    ds.id,
                    agents.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        Outcome::passed("no agent can read highly confidential data")
    } else {
        Outcome::investigate(format!(
            "{} highly confidential datasets are readable by agents",
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
    fn pii_labelled_low_fails() {
        assert_eq!(run("pii-dataset-labels", BASE).status, Status::Passed);
        let yaml = BASE.replace(
            "{ id: customers, label: confidential, categories: [pii] }",
            "{ id: customers, label: internal, categories: [pii] }",
        );
        let o = run("pii-dataset-labels", &yaml);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.evidence[0].field.as_deref(), Some("datasets[0].label"));
    }

    #[test]
    fn untrusted_output_needs_spotlight() {
        assert_eq!(
            run("untrusted-output-spotlight", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "output: { label: confidential, categories: [pii] }",
            "output: { label: confidential, categories: [pii], trusted: false }",
        );
        assert_eq!(
            run("untrusted-output-spotlight", &yaml).status,
            Status::Failed
        );
        let yaml = BASE.replace(
            "output: { label: confidential, categories: [pii] }",
            "output: { label: confidential, categories: [pii], trusted: false, spotlight: datamark }",
        );
        assert_eq!(
            run("untrusted-output-spotlight", &yaml).status,
            Status::Passed
        );
    }

    #[test]
    fn inspection_settings() {
        assert_eq!(run("injection-threshold", BASE).status, Status::Passed);
        let yaml = format!("{BASE}inspection:\n  injection_threshold: 0.97\n");
        assert_eq!(run("injection-threshold", &yaml).status, Status::Failed);
        assert_eq!(run("custom-dictionaries", BASE).status, Status::Investigate);
        let yaml = format!(
            "{BASE}inspection:\n  dictionaries:\n    - name: customer_names\n      category: customer\n      label: confidential\n      terms: [Globex]\n"
        );
        assert_eq!(run("custom-dictionaries", &yaml).status, Status::Passed);
    }

    #[test]
    fn consequential_tools_without_bindings() {
        assert_eq!(
            run("unbound-consequential-tools", BASE).status,
            Status::Passed
        );
        let yaml = BASE.replace(
            "    bindings: [{ argument: table, resource: dataset, access: write }]\n",
            "",
        );
        let o = run("unbound-consequential-tools", &yaml);
        assert_eq!(o.status, Status::Investigate);
        assert!(o.evidence[0].message.contains("crm.delete"));
    }

    #[test]
    fn restricted_data() {
        assert_eq!(
            run("restricted-data-reachable", BASE).status,
            Status::Passed
        );
        let yaml = BASE
            .replace(
                "{ id: customers, label: confidential",
                "{ id: customers, label: highly_confidential",
            )
            .replace(
                "    clearance: confidential\n    grants",
                "    clearance: highly_confidential\n    grants",
            )
            .replace(
                "    clearance: confidential\n  - id: nobody",
                "    clearance: highly_confidential\n  - id: nobody",
            );
        assert_eq!(
            run("restricted-data-reachable", &yaml).status,
            Status::Investigate
        );
    }
}

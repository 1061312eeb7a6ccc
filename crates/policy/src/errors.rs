//! Loading policy files, and errors located in them.

use std::collections::HashMap;
use std::fmt;

use cedar_policy::{PolicyId, PolicySet, ValidationError};
use miette::Diagnostic;

use crate::{Meta, PolicySource, RESERVED_PREFIX};

/// One problem with the policies, located where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A file does not parse as Cedar.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Cedar's message.
        message: String,
    },
    /// A policy has no `@id` annotation, or a bad one.
    #[error("{file}:{line}:1: {message}")]
    Id {
        /// File name.
        file: String,
        /// 1-based line where the policy starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A policy does not validate against the schema generated from the inventory.
    #[error(
        "{file}:{line}:{column}: policy `{policy}` does not validate against the inventory's schema: {message}"
    )]
    Validation {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Policy id.
        policy: String,
        /// The validator's message and help.
        message: String,
    },
    /// Something zt4ai built itself is wrong (a bug, reported rather than panicking).
    #[error("internal error: {what}")]
    Internal {
        /// What failed.
        what: String,
    },
}

/// Every problem found while loading policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub(crate) fn one(e: PolicyError) -> Self {
        PolicyErrors(vec![e])
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, column)
}

fn first_label_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn with_help(d: &dyn Diagnostic, message: String) -> String {
    match d.help() {
        Some(h) => format!("{message} (help: {h})"),
        None => message,
    }
}

/// Parsed policies: the set, each policy's metadata, and the index of the source each came from.
pub(crate) type Parsed = (PolicySet, HashMap<String, Meta>, HashMap<String, usize>);

/// Parses every source; each policy gets its `@id` as its Cedar policy id.
pub(crate) fn parse_all(sources: &[PolicySource]) -> Result<Parsed, super::PolicyErrors> {
    let mut errors = Vec::new();
    let mut set = PolicySet::new();
    let mut meta = HashMap::new();
    let mut origins: HashMap<String, usize> = HashMap::new();
    for (index, src) in sources.iter().enumerate() {
        let parsed = match src.text.parse::<PolicySet>() {
            Ok(p) => p,
            Err(e) => {
                let (line, column) =
                    first_label_offset(&e).map_or((1, 1), |o| line_col(&src.text, o));
                errors.push(PolicyError::Parse {
                    file: src.name.clone(),
                    line,
                    column,
                    message: with_help(&e, e.to_string()),
                });
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            errors.push(PolicyError::Id {
                file: src.name.clone(),
                line: 1,
                message: "policy templates are not supported; write static policies".into(),
            });
        }
        // Cedar numbers policies policy0, policy1, … in file order.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        let mut search_from = 0;
        for p in policies {
            let text = p.to_string();
            let line = match src.text[search_from..].find(text.trim()) {
                Some(i) => {
                    search_from += i;
                    line_col(&src.text, search_from).0
                }
                None => 1,
            };
            let Some(id) = p.annotation("id").map(str::to_owned) else {
                errors.push(PolicyError::Id {
                    file: src.name.clone(),
                    line,
                    message:
                        "policy has no `@id(\"…\")` annotation; every policy needs a stable id"
                            .into(),
                });
                continue;
            };
            let valid = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                errors.push(PolicyError::Id {
                    file: src.name.clone(),
                    line,
                    message: format!(
                        "invalid policy id `{id}`, expected letters, digits, `.`, `_` or `-`"
                    ),
                });
                continue;
            }
            let is_baseline = index == 0;
            if !is_baseline && id.starts_with(RESERVED_PREFIX) {
                errors.push(PolicyError::Id {
                    file: src.name.clone(),
                    line,
                    message: format!("policy id `{id}` uses the prefix `{RESERVED_PREFIX}`, which is reserved for zt4ai's baseline guards"),
                });
                continue;
            }
            if let Some(prev) = origins.get(&id) {
                errors.push(PolicyError::Id {
                    file: src.name.clone(),
                    line,
                    message: format!(
                        "policy id `{id}` is already used in `{}`",
                        sources[*prev].name
                    ),
                });
                continue;
            }
            let approvable = match p.annotation("approval") {
                None => false,
                Some("human") => true,
                Some(other) => {
                    errors.push(PolicyError::Id {
                        file: src.name.clone(),
                        line,
                        message: format!("policy `{id}`: unknown `@approval(\"{other}\")`, expected `@approval(\"human\")`"),
                    });
                    continue;
                }
            };
            let permit = p.effect() == cedar_policy::Effect::Permit;
            if approvable && permit {
                errors.push(PolicyError::Id {
                    file: src.name.clone(),
                    line,
                    message: format!(
                        "policy `{id}`: `@approval` applies to `forbid` policies only"
                    ),
                });
                continue;
            }
            let renamed = p.new_id(PolicyId::new(&id));
            if let Err(e) = set.add(renamed) {
                errors.push(PolicyError::Internal {
                    what: format!("adding `{id}`: {e}"),
                });
                continue;
            }
            origins.insert(id.clone(), index);
            meta.insert(
                id,
                Meta {
                    reason: p.annotation("reason").map(str::to_owned),
                    approvable,
                    permit,
                },
            );
        }
    }
    if errors.is_empty() {
        Ok((set, meta, origins))
    } else {
        Err(super::PolicyErrors(errors))
    }
}

/// Locates a validation error in the file its policy came from.
pub(crate) fn validation_error(
    e: &ValidationError,
    origins: &HashMap<String, usize>,
    sources: &[PolicySource],
) -> PolicyError {
    let policy = e.policy_id().to_string();
    let src = origins.get(&policy).and_then(|i| sources.get(*i));
    let (file, line, column) = match src {
        Some(src) => {
            let (l, c) = first_label_offset(e).map_or((1, 1), |o| line_col(&src.text, o));
            (src.name.clone(), l, c)
        }
        None => ("<unknown>".to_owned(), 1, 1),
    };
    PolicyError::Validation {
        file,
        line,
        column,
        policy,
        message: with_help(e, e.to_string()),
    }
}

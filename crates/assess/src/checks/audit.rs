//! Checks on the audit log in the deployment's data directory.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

/// What the audit log says (read once, before the checks run).
#[derive(Debug, Clone, Default)]
pub struct AuditFacts {}

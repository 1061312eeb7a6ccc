//! Checks against a running gateway, through its HTTP API.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

/// What the running gateway answered (probed once, before the checks run).
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {}

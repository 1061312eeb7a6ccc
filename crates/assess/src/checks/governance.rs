//! Checks: governance.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

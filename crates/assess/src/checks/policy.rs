//! Checks: policy.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

//! Checks: supply.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

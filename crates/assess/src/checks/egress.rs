//! Checks: egress.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

//! Checks: access.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

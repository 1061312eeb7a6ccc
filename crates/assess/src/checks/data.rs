//! Checks: data.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

//! Checks: identity.

use super::Check;

pub(crate) const CHECKS: &[Check] = &[];

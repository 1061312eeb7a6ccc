//! Assessment tests.

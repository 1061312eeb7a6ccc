//! Scores and maturity.

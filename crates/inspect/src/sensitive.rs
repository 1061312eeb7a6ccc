//! Sensitive-data detectors. STUB (to be replaced).

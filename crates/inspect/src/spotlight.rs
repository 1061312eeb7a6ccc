//! Spotlighting. STUB.

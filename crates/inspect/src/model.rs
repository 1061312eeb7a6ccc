//! Learned linear model. STUB.

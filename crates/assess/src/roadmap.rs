//! The roadmap.

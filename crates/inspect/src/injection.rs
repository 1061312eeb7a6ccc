//! Prompt-injection detector. STUB.

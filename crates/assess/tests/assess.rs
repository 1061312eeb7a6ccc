//! Assessment tests: the catalogue, the checks, golden reports, SARIF against the
//! 2.1.0 schema, the HTML report in headless Chromium, live checks against a real
//! gateway on loopback.

#[path = "assess/catalogue.rs"]
mod catalogue;

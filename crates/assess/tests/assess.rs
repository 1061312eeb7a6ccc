//! Assessment tests: the catalogue, the checks, golden reports, SARIF against the
//! 2.1.0 schema, the HTML report in headless Chromium, live checks against a real
//! gateway on loopback, the threat-model diagram through Graphviz.

#[path = "assess/catalogue.rs"]
mod catalogue;
#[path = "assess/golden.rs"]
mod golden;
#[path = "assess/html.rs"]
mod html;
#[path = "assess/live.rs"]
mod live;
#[path = "assess/policy.rs"]
mod policy;
#[path = "assess/sarif.rs"]
mod sarif;
#[path = "assess/threat.rs"]
mod threat;
#[path = "assess/threat_render.rs"]
mod threat_render;

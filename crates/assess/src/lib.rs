//! zt4ai posture assessment.
//!
//! Where does an AI deployment stand against Zero Trust for AI, and what should be
//! done next? This crate answers with a [control catalogue](catalogue) kept as
//! data, [automated checks](checks) against the inventory, the policies, the audit
//! log and a running gateway, [scores and maturity](score) per pillar, a phased
//! [roadmap], and [reports](report) as JSON, Markdown, SARIF 2.1.0 and a
//! self-contained HTML page.

pub mod catalogue;
pub mod checks;
pub mod model;
pub mod report;
pub mod roadmap;
pub mod score;

pub use catalogue::{Catalogue, CatalogueError};
pub use checks::{Check, Deployment, LoadError, Options};
pub use model::*;

//! Reports: JSON, Markdown, SARIF 2.1.0 and a self-contained HTML page.
pub mod compare;
pub mod html;
pub mod json;
pub mod markdown;
pub mod sarif;

//! AI threat modelling from the inventory.
//!
//! [`derive`](derive::derive) builds a [`ThreatModel`](model::ThreatModel) from
//! the same inventory and policies the gateway enforces: the elements (users,
//! agents, the gateway, tools in their MCP servers, datasets, models,
//! destinations), the flows between them (who may call what, what data can reach
//! which sink under the grants and bindings), the trust boundaries those flows
//! cross, and the threats per element and flow — STRIDE and the classes specific
//! to AI systems — each with its status under the current configuration and what
//! decides it. [`render`] writes it as Mermaid, Graphviz DOT (and SVG when
//! Graphviz is installed), Markdown and JSON.

pub mod derive;
pub mod model;
pub mod render;

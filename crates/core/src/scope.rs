//! Task scopes: what a delegated token may be used for, within the grants.
//!
//! A scope is a space-separated list of `tool:<server>.<name>`, `tool:<server>.*`,
//! `dataset:<id>`, `destination:<id>` and `model:<id>`. It restricts only the kinds
//! it names: a scope that lists tools but no datasets leaves datasets to the
//! grants. A scope can only narrow: every item must be within the grants of the
//! user and of every agent of the chain, and a sub-agent's scope within its
//! parent's.

use std::collections::BTreeSet;
use std::fmt;

use crate::Inventory;
use crate::inventory::Grants;

/// A parsed task scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    tools: BTreeSet<String>,
    servers: BTreeSet<String>,
    datasets: BTreeSet<String>,
    destinations: BTreeSet<String>,
    models: BTreeSet<String>,
}

/// The kinds of resource a scope can restrict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// An MCP tool (`server.name`).
    Tool,
    /// A dataset, read or written.
    Dataset,
    /// A destination, sent to or fetched from.
    Destination,
    /// A model.
    Model,
}

impl Scope {
    /// Parses a scope string against the inventory.
    pub fn parse(text: &str, inv: &Inventory) -> Result<Scope, String> {
        let mut s = Scope::default();
        for item in text.split_whitespace() {
            let (kind, id) = item
                .split_once(':')
                .ok_or_else(|| format!("scope item `{item}` is not `kind:id`"))?;
            let known = match kind {
                "tool" => match id.strip_suffix(".*") {
                    Some(server) => {
                        let ok = inv.servers.contains(server);
                        s.servers.insert(server.to_owned());
                        ok
                    }
                    None => {
                        s.tools.insert(id.to_owned());
                        inv.tools.contains_key(id)
                    }
                },
                "dataset" => {
                    s.datasets.insert(id.to_owned());
                    inv.datasets.contains_key(id)
                }
                "destination" => {
                    s.destinations.insert(id.to_owned());
                    inv.destinations.contains_key(id)
                }
                "model" => {
                    s.models.insert(id.to_owned());
                    inv.models.contains_key(id)
                }
                _ => {
                    return Err(format!(
                        "scope item `{item}`: unknown kind `{kind}`, expected tool, dataset, destination or model"
                    ));
                }
            };
            if !known {
                return Err(format!(
                    "scope item `{item}`: no such {kind} in the inventory"
                ));
            }
        }
        Ok(s)
    }

    /// Whether the scope names nothing.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.servers.is_empty()
            && self.datasets.is_empty()
            && self.destinations.is_empty()
            && self.models.is_empty()
    }

    /// Whether the scope lets the token touch `id` of `kind`.
    pub fn allows(&self, kind: ScopeKind, id: &str, inv: &Inventory) -> bool {
        match kind {
            ScopeKind::Tool => {
                (self.tools.is_empty() && self.servers.is_empty())
                    || self.tools.contains(id)
                    || inv
                        .tools
                        .get(id)
                        .is_some_and(|t| self.servers.contains(&t.server))
            }
            ScopeKind::Dataset => self.datasets.is_empty() || self.datasets.contains(id),
            ScopeKind::Destination => {
                self.destinations.is_empty() || self.destinations.contains(id)
            }
            ScopeKind::Model => self.models.is_empty() || self.models.contains(id),
        }
    }

    /// The first item not within `grants`, if any.
    pub fn outside(&self, grants: &Grants, inv: &Inventory) -> Option<String> {
        for t in &self.tools {
            if !inv
                .tools
                .get(t)
                .is_some_and(|tool| grants.allows_tool(tool))
            {
                return Some(format!("tool:{t}"));
            }
        }
        for s in &self.servers {
            if !grants.servers.contains(s) {
                return Some(format!("tool:{s}.*"));
            }
        }
        for d in &self.datasets {
            if !grants.datasets.contains(d) && !grants.writable_datasets.contains(d) {
                return Some(format!("dataset:{d}"));
            }
        }
        for d in &self.destinations {
            if !grants.destinations.contains(d) {
                return Some(format!("destination:{d}"));
            }
        }
        for m in &self.models {
            if !grants.models.contains(m) {
                return Some(format!("model:{m}"));
            }
        }
        None
    }

    /// This scope, taking the parent's items for every kind the parent restricts
    /// and this one does not name: a sub-agent never escapes a restriction by
    /// leaving a kind out.
    #[must_use]
    pub fn inherit(mut self, parent: &Scope) -> Scope {
        if self.tools.is_empty() && self.servers.is_empty() {
            self.tools.clone_from(&parent.tools);
            self.servers.clone_from(&parent.servers);
        }
        if self.datasets.is_empty() {
            self.datasets.clone_from(&parent.datasets);
        }
        if self.destinations.is_empty() {
            self.destinations.clone_from(&parent.destinations);
        }
        if self.models.is_empty() {
            self.models.clone_from(&parent.models);
        }
        self
    }

    /// The first item of `self` that `parent` does not allow, if any.
    pub fn not_within(&self, parent: &Scope, inv: &Inventory) -> Option<String> {
        for t in &self.tools {
            if !parent.allows(ScopeKind::Tool, t, inv) {
                return Some(format!("tool:{t}"));
            }
        }
        for s in &self.servers {
            let covered = parent.servers.contains(s)
                || inv
                    .tools
                    .values()
                    .filter(|t| &t.server == s)
                    .all(|t| parent.allows(ScopeKind::Tool, &t.id, inv));
            if !covered {
                return Some(format!("tool:{s}.*"));
            }
        }
        for d in &self.datasets {
            if !parent.allows(ScopeKind::Dataset, d, inv) {
                return Some(format!("dataset:{d}"));
            }
        }
        for d in &self.destinations {
            if !parent.allows(ScopeKind::Destination, d, inv) {
                return Some(format!("destination:{d}"));
            }
        }
        for m in &self.models {
            if !parent.allows(ScopeKind::Model, m, inv) {
                return Some(format!("model:{m}"));
            }
        }
        None
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self
            .tools
            .iter()
            .map(|t| format!("tool:{t}"))
            .chain(self.servers.iter().map(|s| format!("tool:{s}.*")))
            .chain(self.datasets.iter().map(|d| format!("dataset:{d}")))
            .chain(self.destinations.iter().map(|d| format!("destination:{d}")))
            .chain(self.models.iter().map(|m| format!("model:{m}")));
        let v: Vec<String> = items.collect();
        f.write_str(&v.join(" "))
    }
}

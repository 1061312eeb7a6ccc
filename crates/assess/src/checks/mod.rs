//! The automated checks, and the deployment they look at.
//!
//! A check is a plain function from a [`Deployment`] to an [`Outcome`]. Anything
//! slow or fallible (reading the audit log, probing a running gateway) happens once,
//! before the checks run, and is stored in the deployment; a check never does I/O.
//! A check that cannot run here (no audit log given, no gateway given) says
//! [`Status::Skipped`](crate::Status::Skipped) with the reason.

mod access;
pub mod audit;
mod data;
mod egress;
mod governance;
mod identity;
pub mod live;
mod policy;
mod supply;

pub(crate) use supply::unnamed_operator;

use std::collections::HashMap;
use std::sync::Arc;

use zt4ai_core::Inventory;
use zt4ai_core::inventory::Locations;
use zt4ai_core::inventory::raw::RawInventory;
use zt4ai_policy::{PolicyEngine, PolicySource};

use crate::model::{Evidence, Outcome};

/// An automated check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Id, as controls name it (`agent-grants-within-owner`).
    pub id: &'static str,
    /// What it looks at, in one line.
    pub about: &'static str,
    /// The check.
    pub run: fn(&Deployment) -> Outcome,
}

/// Every check, by module.
pub fn all() -> impl Iterator<Item = &'static Check> {
    [
        identity::CHECKS,
        access::CHECKS,
        data::CHECKS,
        egress::CHECKS,
        supply::CHECKS,
        governance::CHECKS,
        policy::CHECKS,
        audit::CHECKS,
        live::CHECKS,
    ]
    .into_iter()
    .flatten()
}

/// The check with this id.
pub fn find(id: &str) -> Option<&'static Check> {
    all().find(|c| c.id == id)
}

/// `1 permit`, `3 permits`: a count with its noun, for summaries.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Settings of an assessment run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Agents with no audited activity for this many days are dormant.
    pub dormant_days: u64,
    /// "Now", in seconds since the Unix epoch (fixed in tests for reproducible output).
    pub now: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dormant_days: 30,
            now: u64::try_from(zt4ai_core::unix_now()).unwrap_or(0),
        }
    }
}

/// Everything the checks look at.
pub struct Deployment {
    /// The resolved inventory.
    pub inventory: Arc<Inventory>,
    /// The inventory file's name as reported in evidence.
    pub inventory_file: String,
    /// Positions of inventory paths.
    pub locations: Locations,
    /// The inventory as written, for file order and the fields resolution drops.
    pub raw: RawInventory,
    /// The deployment's own policy files (not the baseline).
    pub policies: Vec<PolicySource>,
    /// The policy engine built from both (they validated).
    pub engine: PolicyEngine,
    /// What the audit log says, if a data directory was given.
    pub audit: Option<audit::AuditFacts>,
    /// What a running gateway answered, if one was given.
    pub live: Option<live::LiveFacts>,
    /// Run settings.
    pub options: Options,
    /// The data directory the audit facts came from, as given.
    pub data_dir: Option<String>,
    /// The gateway the live facts came from.
    pub gateway: Option<String>,
    index: Index,
}

/// Positions in file order of each entity, by id.
#[derive(Debug, Default)]
struct Index {
    agents: HashMap<String, usize>,
    users: HashMap<String, usize>,
    groups: HashMap<String, usize>,
    tools: HashMap<String, usize>,
    datasets: HashMap<String, usize>,
    models: HashMap<String, usize>,
    destinations: HashMap<String, usize>,
    mcp_servers: HashMap<String, usize>,
}

/// Why a deployment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The inventory does not load (located errors).
    #[error("{0}")]
    Inventory(String),
    /// The policies do not load (located errors).
    #[error("{0}")]
    Policies(String),
}

impl Deployment {
    /// Loads and validates the inventory text and the deployment's policies. The
    /// audit and live facts are added afterwards ([`Deployment::audit`],
    /// [`Deployment::live`]).
    pub fn load(
        inventory_text: &str,
        inventory_file: &str,
        policies: Vec<PolicySource>,
        options: Options,
    ) -> Result<Deployment, LoadError> {
        let inventory = Inventory::from_yaml_str(inventory_text, inventory_file)
            .map_err(|e| LoadError::Inventory(e.to_string()))?;
        // It resolved, so it parses.
        let raw: RawInventory = serde_yaml_ng::from_str(inventory_text)
            .map_err(|e| LoadError::Inventory(format!("{inventory_file}: {e}")))?;
        let inventory = Arc::new(inventory);
        let engine = PolicyEngine::new(Arc::clone(&inventory), &policies)
            .map_err(|e| LoadError::Policies(e.to_string()))?;
        let positions = |ids: Vec<String>| -> HashMap<String, usize> {
            ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect()
        };
        let index = Index {
            agents: positions(raw.agents.iter().map(|a| a.id.clone()).collect()),
            users: positions(raw.users.iter().map(|u| u.id.clone()).collect()),
            groups: positions(raw.groups.iter().map(|g| g.id.clone()).collect()),
            tools: positions(
                raw.tools
                    .iter()
                    .map(|t| format!("{}.{}", t.server, t.name))
                    .collect(),
            ),
            datasets: positions(raw.datasets.iter().map(|d| d.id.clone()).collect()),
            models: positions(raw.models.iter().map(|m| m.id.clone()).collect()),
            destinations: positions(raw.destinations.iter().map(|d| d.id.clone()).collect()),
            mcp_servers: positions(raw.mcp_servers.iter().map(|m| m.id.clone()).collect()),
        };
        Ok(Deployment {
            locations: Locations::index(inventory_text),
            inventory,
            inventory_file: inventory_file.to_owned(),
            raw,
            policies,
            engine,
            audit: None,
            live: None,
            options,
            data_dir: None,
            gateway: None,
            index,
        })
    }

    /// How many of the deployment's own policies the engine loaded (parsed, so a
    /// commented-out policy does not count; the baseline guards are not counted).
    pub fn custom_policy_count(&self) -> usize {
        self.engine
            .policy_ids()
            .iter()
            .filter(|id| !id.starts_with(zt4ai_policy::RESERVED_PREFIX))
            .count()
    }

    /// Evidence at an inventory path (`agents[0].grants.tools`), with its line.
    pub fn at(&self, field: &str, message: impl Into<String>) -> Evidence {
        let (line, column) = self.locations.find(field);
        Evidence {
            message: message.into(),
            file: Some(self.inventory_file.clone()),
            line: Some(line),
            column: Some(column),
            field: Some(field.to_owned()),
            problem: true,
        }
    }

    /// The inventory path of an entity (`agents[2]`), by kind and id; the kinds
    /// are the inventory's section names. `None` for an entity the file does not
    /// declare (the implicit `unknown` destination).
    pub fn path_of(&self, section: &str, id: &str) -> Option<String> {
        let map = match section {
            "agents" => &self.index.agents,
            "users" => &self.index.users,
            "groups" => &self.index.groups,
            "tools" => &self.index.tools,
            "datasets" => &self.index.datasets,
            "models" => &self.index.models,
            "destinations" => &self.index.destinations,
            "mcp_servers" => &self.index.mcp_servers,
            _ => return None,
        };
        map.get(id).map(|i| format!("{section}[{i}]"))
    }

    /// Evidence at a field of an entity (`("agents", "report-agent", "grants.tools")`);
    /// the whole file when the entity is not declared in it.
    pub fn at_entity(
        &self,
        section: &str,
        id: &str,
        field: &str,
        message: impl Into<String>,
    ) -> Evidence {
        match self.path_of(section, id) {
            Some(p) if field.is_empty() => self.at(&p, message),
            Some(p) => self.at(&format!("{p}.{field}"), message),
            None => self.at(section, message),
        }
    }
}

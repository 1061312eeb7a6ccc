//! Loading the inventory and policies from files, or the built-in example.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zt4ai_core::Inventory;
use zt4ai_pipeline::{PolicyEngine, PolicySource};

use crate::Source;

/// The built-in example inventory (Acme Corp, the motivating case).
pub const EXAMPLE_INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");
/// The built-in example's own policies.
pub const EXAMPLE_POLICIES: &str = include_str!("../../../examples/acme/policies/acme.cedar");

pub struct Loaded {
    pub engine: PolicyEngine,
    pub description: String,
    /// The inventory file's directory (relative paths in it resolve against it).
    pub dir: Option<PathBuf>,
}

/// Loads and validates; the error is the full, located message.
pub fn engine(source: &Source) -> Result<Loaded, String> {
    let (inventory, policies, description, dir_of) = match &source.inventory {
        None => {
            let inv =
                Inventory::from_yaml_str(EXAMPLE_INVENTORY, "<built-in example>/inventory.yaml")
                    .map_err(|e| e.to_string())?;
            let policies = match &source.policies {
                Some(dir) => read_dir(dir)?,
                None => vec![PolicySource {
                    name: "<built-in example>/policies/acme.cedar".into(),
                    text: EXAMPLE_POLICIES.into(),
                }],
            };
            (
                inv,
                policies,
                "built-in example (Acme Corp)".to_owned(),
                None,
            )
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read the inventory: {e}", path.display()))?;
            let inv = Inventory::from_yaml_str(&text, &path.display().to_string())
                .map_err(|e| e.to_string())?;
            let base = path.parent().unwrap_or(Path::new("."));
            let dir: Option<PathBuf> = match (&source.policies, &inv.policies) {
                (Some(dir), _) => Some(dir.clone()),
                (None, Some(rel)) => Some(base.join(rel)),
                (None, None) => Some(base.join("policies")).filter(|d| d.is_dir()),
            };
            let policies = match dir {
                Some(d) => read_dir(&d)?,
                None => Vec::new(),
            };
            (
                inv,
                policies,
                path.display().to_string(),
                Some(base.to_path_buf()),
            )
        }
    };
    let engine = PolicyEngine::new(Arc::new(inventory), &policies).map_err(|e| e.to_string())?;
    Ok(Loaded {
        engine,
        description,
        dir: dir_of,
    })
}

fn read_dir(dir: &Path) -> Result<Vec<PolicySource>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read the policy directory: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            Ok(PolicySource {
                name: p.display().to_string(),
                text,
            })
        })
        .collect()
}

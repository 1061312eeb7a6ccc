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

/// The inventory's text and name, and the deployment's own policy files, read
/// but not yet checked.
pub struct Sources {
    pub text: String,
    pub name: String,
    pub policies: Vec<PolicySource>,
    pub description: String,
    /// The inventory file's directory (relative paths in it resolve against it).
    pub dir: Option<PathBuf>,
}

/// Reads the inventory and the policies it names (or the built-in example).
pub fn sources(source: &Source) -> Result<Sources, String> {
    match &source.inventory {
        None => {
            let policies = match &source.policies {
                Some(dir) => read_dir(dir)?,
                None => vec![PolicySource {
                    name: "<built-in example>/policies/acme.cedar".into(),
                    text: EXAMPLE_POLICIES.into(),
                }],
            };
            Ok(Sources {
                text: EXAMPLE_INVENTORY.to_owned(),
                name: "<built-in example>/inventory.yaml".to_owned(),
                policies,
                description: "built-in example (Acme Corp)".to_owned(),
                dir: None,
            })
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read the inventory: {e}", path.display()))?;
            let name = path.display().to_string();
            // The `policies:` field is needed before the policies are read; a
            // broken inventory is reported in full by the caller's load.
            let inv = Inventory::from_yaml_str(&text, &name).map_err(|e| e.to_string())?;
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
            Ok(Sources {
                text,
                description: name.clone(),
                name,
                policies,
                dir: Some(base.to_path_buf()),
            })
        }
    }
}

/// Loads and validates; the error is the full, located message.
pub fn engine(source: &Source) -> Result<Loaded, String> {
    let s = sources(source)?;
    let inventory = Inventory::from_yaml_str(&s.text, &s.name).map_err(|e| e.to_string())?;
    let engine = PolicyEngine::new(Arc::new(inventory), &s.policies).map_err(|e| e.to_string())?;
    Ok(Loaded {
        engine,
        description: s.description,
        dir: s.dir,
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

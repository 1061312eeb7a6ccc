//! The inventory as Cedar entities.
//!
//! Entities are built once per inventory, not per request: everything that varies
//! per request (the session's label, risk, findings) travels in the context. That
//! keeps a decision to policy evaluation alone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use zt4ai_core::inventory::Grants;
use zt4ai_core::{Category, Inventory};

use crate::PolicyError;

/// Builds an entity uid from a type name and an id.
pub(crate) fn uid(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let t = EntityTypeName::from_str(type_name).map_err(|e| PolicyError::Internal {
        what: format!("entity type `{type_name}`: {e}"),
    })?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn long(v: i64) -> RestrictedExpression {
    RestrictedExpression::new_long(v)
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn refs(type_name: &str, ids: &BTreeSet<String>) -> Result<RestrictedExpression, PolicyError> {
    let items = ids
        .iter()
        .map(|id| uid(type_name, id).map(RestrictedExpression::new_entity_uid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RestrictedExpression::new_set(items))
}

fn strings(cats: &BTreeSet<Category>) -> RestrictedExpression {
    RestrictedExpression::new_set(cats.iter().map(|c| string(c.as_str())))
}

fn grant_attrs(
    attrs: &mut HashMap<String, RestrictedExpression>,
    g: &Grants,
) -> Result<(), PolicyError> {
    attrs.insert("tools".into(), refs("Tool", &g.tools)?);
    attrs.insert("servers".into(), refs("Server", &g.servers)?);
    attrs.insert("datasets".into(), refs("Dataset", &g.datasets)?);
    attrs.insert(
        "writable_datasets".into(),
        refs("Dataset", &g.writable_datasets)?,
    );
    attrs.insert("destinations".into(), refs("Destination", &g.destinations)?);
    attrs.insert("models".into(), refs("Model", &g.models)?);
    Ok(())
}

fn entity(
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, PolicyError> {
    let name = uid.to_string();
    Entity::new(uid, attrs, parents).map_err(|e| PolicyError::Internal {
        what: format!("entity {name}: {e}"),
    })
}

/// Every entity the inventory describes.
pub(crate) fn build(inv: &Inventory) -> Result<Vec<Entity>, PolicyError> {
    let mut out = Vec::new();
    for g in inv.groups.keys() {
        out.push(Entity::new_no_attrs(uid("Group", g)?, HashSet::new()));
    }
    for s in &inv.servers {
        out.push(Entity::new_no_attrs(uid("Server", s)?, HashSet::new()));
    }
    for u in inv.users.values() {
        let mut attrs = HashMap::new();
        attrs.insert(
            "name".into(),
            string(u.name.as_deref().unwrap_or(u.id.as_str())),
        );
        attrs.insert("clearance".into(), long(u.clearance.rank()));
        grant_attrs(&mut attrs, &u.rights)?;
        let parents = u
            .groups
            .iter()
            .map(|g| uid("Group", g))
            .collect::<Result<HashSet<_>, _>>()?;
        out.push(entity(uid("User", u.id.as_str())?, attrs, parents)?);
    }
    for a in inv.agents.values() {
        let mut attrs = HashMap::new();
        attrs.insert(
            "owner".into(),
            RestrictedExpression::new_entity_uid(uid("User", a.owner.as_str())?),
        );
        attrs.insert("purpose".into(), string(&a.purpose));
        attrs.insert("state".into(), string(a.state.as_str()));
        attrs.insert("clearance".into(), long(a.clearance.rank()));
        grant_attrs(&mut attrs, &a.grants)?;
        out.push(entity(uid("Agent", a.id.as_str())?, attrs, HashSet::new())?);
    }
    for t in inv.tools.values() {
        let mut attrs = HashMap::new();
        attrs.insert("name".into(), string(&t.name));
        attrs.insert(
            "read_only".into(),
            RestrictedExpression::new_bool(t.read_only),
        );
        attrs.insert(
            "destructive".into(),
            RestrictedExpression::new_bool(t.destructive),
        );
        attrs.insert(
            "open_world".into(),
            RestrictedExpression::new_bool(t.open_world),
        );
        attrs.insert("output_label".into(), long(t.output_label.rank()));
        attrs.insert("output_categories".into(), strings(&t.output_categories));
        attrs.insert(
            "output_trusted".into(),
            RestrictedExpression::new_bool(t.output_trusted),
        );
        let parents = HashSet::from([uid("Server", &t.server)?]);
        out.push(entity(uid("Tool", &t.id)?, attrs, parents)?);
    }
    for d in inv.datasets.values() {
        let mut attrs = HashMap::new();
        attrs.insert("label".into(), long(d.label.rank()));
        attrs.insert("categories".into(), strings(&d.categories));
        attrs.insert("trusted".into(), RestrictedExpression::new_bool(d.trusted));
        out.push(entity(uid("Dataset", &d.id)?, attrs, HashSet::new())?);
    }
    for m in inv.models.values() {
        let mut attrs = HashMap::new();
        attrs.insert("provider".into(), string(&m.provider));
        attrs.insert(
            "external".into(),
            RestrictedExpression::new_bool(m.external),
        );
        attrs.insert("clearance".into(), long(m.clearance.rank()));
        attrs.insert(
            "attested".into(),
            RestrictedExpression::new_bool(m.attested),
        );
        attrs.insert(
            "attestation_required".into(),
            RestrictedExpression::new_bool(inv.llm.require_attested),
        );
        if let Some(c) = &m.categories {
            attrs.insert("categories".into(), strings(c));
        }
        out.push(entity(uid("Model", &m.id)?, attrs, HashSet::new())?);
    }
    for d in inv.destinations.values() {
        let mut attrs = HashMap::new();
        attrs.insert("clearance".into(), long(d.clearance.rank()));
        attrs.insert(
            "external".into(),
            RestrictedExpression::new_bool(d.external),
        );
        if let Some(c) = &d.categories {
            attrs.insert("categories".into(), strings(c));
        }
        out.push(entity(uid("Destination", &d.id)?, attrs, HashSet::new())?);
    }
    Ok(out)
}

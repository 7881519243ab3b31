//! The mirror: every WindFlow object as rows of the seed's schema, with an audit trail.
//!
//! A kind says which objects it references and how its rows look (`kinds::Kind`); the rest is
//! shared: references are dereferenced from the controllers' caches (`kinds::Index`),
//! rows are built purely (`kinds::prepare`), and one statement writes the row, its join rows and
//! the audit row in one transaction ([`store::write`]).

pub mod actor;
pub mod identity;
pub mod sql;
pub mod store;
pub mod tenants;
pub mod views;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::FIELD_MANAGER;
use crate::provision::cache::LAST_APPLIED;

use self::actor::Actor;

/// One kind as the mirror knows it: plain strings the registry gives (`kinds::KindId::entity`),
/// so that the mirror never imports the kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    /// The kind's name, as audit rows and messages show it.
    pub kind: &'static str,
    /// The seed table holding its rows.
    pub table: &'static str,
    /// Its rows belong to an organization: every namespaced kind's do, no cluster-scoped kind's.
    pub tenant: bool,
}

/// A spec the database would refuse, or that breaks a rule the schema cannot express. The
/// object waits for a change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A join table filled from a list in the spec: rows are keyed by `owner` (the object's id)
/// and `key`; `values` are updated in place.
#[derive(Debug, PartialEq, Eq)]
pub struct JoinTable {
    pub table: &'static str,
    pub owner: &'static str,
    pub key: &'static [&'static str],
    pub values: &'static [&'static str],
}

/// The rows of one join table for one owner.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinRows {
    pub table: &'static JoinTable,
    pub rows: Vec<Map<String, Value>>,
}

/// What one reconcile writes: the entity row and all its join rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub row: Map<String, Value>,
    pub joins: Vec<JoinRows>,
}

/// A status field that mirrors a seed column the controller owns, with the seed's default.
#[derive(Debug)]
pub struct StatusColumn {
    pub field: &'static str,
    pub column: &'static str,
    pub default: Option<&'static str>,
}

/// Everything one write needs: rows with ids and bookkeeping, and the audit metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub entity: Entity,
    pub id: Uuid,
    pub resource_version: i64,
    /// The object's status says its row is written; if not, the write tries the leaner create
    /// first ([`sql::Write`]).
    pub row_recorded: bool,
    pub rows: Rows,
    pub audit: AuditRow,
}

/// The object's status as JSON (`null` when it has none).
pub fn current_status<K: Serialize>(obj: &K) -> Value {
    serde_json::to_value(obj).ok().and_then(|mut v| v.get_mut("status").map(Value::take)).unwrap_or(Value::Null)
}

/// The audit row's fixed part: who and what.
///
/// The audit row of a write or delete of `obj`. `requester` is who admission recorded
/// ([`crate::mirror::actor`]), the last change's or the deleter, with the row of the User their
/// login names, dereferenced by the caller; the manager of the last change is the tool they
/// used. The write statement names them for a new row or a new generation (a spec they
/// changed), and `operator` for any other write, which records what the operator observed.
pub fn audit_metadata<K: Resource>(
    obj: &K,
    kind: &str,
    id: Uuid,
    organization: Option<Uuid>,
    resource_version: i64,
    operator: Option<&str>,
    requester: Option<(Actor, Option<Uuid>)>,
) -> AuditRow {
    let meta = obj.meta();
    let manager = last_change(meta).and_then(|entry| entry.manager.clone());
    let object = AuditedObject { kind, id, namespace: meta.namespace.as_deref(), name: &obj.name_any() };
    let mut row = audit_row(&object, manager.as_deref(), organization, resource_version);
    if let Some((acted, user)) = requester {
        row.kubernetes_username = Some(acted.username);
        row.kubernetes_groups = acted.groups;
        row.user_id = user;
    }
    row.operator = operator.map(str::to_owned);
    row
}

/// The `managedFields` entry of the last change anyone but the operator made, not through a
/// subresource: its manager is the tool an audit row names.
fn last_change(meta: &ObjectMeta) -> Option<&ManagedFieldsEntry> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.is_none() && entry.manager.as_deref() != Some(FIELD_MANAGER))
        .max_by_key(|entry| entry.time.as_ref().map(|t| t.0))
}

/// Drops what the operator's caches need not hold of an object: every `managedFields` entry
/// but the manager and time of the last change (all [`audit_metadata`] reads), and the copy of
/// the object `kubectl apply` keeps in an annotation. They are most of an object's size in the
/// caches.
pub fn trim_metadata(metadata: &mut ObjectMeta) {
    let kept = last_change(metadata).map(|entry| ManagedFieldsEntry {
        manager: entry.manager.clone(),
        time: entry.time.clone(),
        ..Default::default()
    });
    metadata.managed_fields = kept.map(|entry| vec![entry]);
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// What an audit row is about.
pub struct AuditedObject<'a> {
    pub kind: &'a str,
    pub id: Uuid,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// An audit row's fixed part for `object`, changed by `actor`.
pub fn audit_row(
    object: &AuditedObject,
    actor: Option<&str>,
    organization: Option<Uuid>,
    resource_version: i64,
) -> AuditRow {
    AuditRow {
        organization_id: organization,
        actor: actor.map(str::to_owned),
        resource_type: object.kind.to_owned(),
        resource_id: object.id,
        resource_namespace: object.namespace.map(str::to_owned),
        resource_name: object.name.to_owned(),
        resource_version,
        kubernetes_username: None,
        kubernetes_groups: vec![],
        user_id: None,
        operator: None,
    }
}

/// An `audit_logs` row's fixed part; the statement adds the action and the diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub organization_id: Option<Uuid>,
    pub actor: Option<String>,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub resource_namespace: Option<String>,
    pub resource_name: String,
    pub resource_version: i64,
    /// Who asked, as the API server authenticated them.
    pub kubernetes_username: Option<String>,
    pub kubernetes_groups: Vec<String>,
    /// The requester's User row, when their login names a User whose row is written.
    pub user_id: Option<Uuid>,
    /// The operator's Kubernetes username, for the writes it makes itself; not a column.
    pub operator: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    /// The caches keep only the last change's manager and time, and no copy of the last
    /// `kubectl apply`; the audit row's actor is the same without the rest.
    #[test]
    fn trimming_keeps_the_actor_and_the_annotations_read() {
        // Any object: the mirror knows no kind.
        let object: ConfigMap = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "critical",
              "annotations": { LAST_APPLIED: "{\"data\":{\"color\":\"#ff0000\"}}", actor::CHANGED_BY: "{}" },
              "managedFields": [
                { "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                  "time": "2026-12-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": { "f:data": { "f:color": {} } } },
                { "manager": "argocd-controller", "operation": "Apply", "apiVersion": "v1",
                  "time": "2026-12-02T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": { "f:data": { "f:size": {} } } },
                { "manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1",
                  "time": "2026-12-03T00:00:00Z", "fieldsType": "FieldsV1", "subresource": "status",
                  "fieldsV1": { "f:status": {} } },
            ] },
            "data": { "color": "#ff0000" },
        }))
        .expect("a config map");
        let id = Uuid::nil();
        let before = audit_metadata(&object, "ConfigMap", id, None, 7, None, None);
        let mut trimmed = object.clone();
        trim_metadata(&mut trimmed.metadata);
        let entries = trimmed.metadata.managed_fields.as_deref().unwrap_or_default();
        assert_eq!(entries.len(), 1, "the last change's only");
        assert_eq!(entries[0].manager.as_deref(), Some("argocd-controller"));
        assert_eq!(entries[0].fields_v1, None);
        assert_eq!(trimmed.annotations().keys().collect::<Vec<_>>(), [actor::CHANGED_BY]);
        let after = audit_metadata(&trimmed, "ConfigMap", id, None, 7, None, None);
        assert_eq!(after.actor.as_deref(), Some("argocd-controller"));
        assert_eq!(after, before);
    }
}

//! What the kinds share: the glue from a kind to the mirror's rows ([`prepare`]) and to the
//! provider's children ([`children`]), and small helpers their builders use.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::common::{NetworkAttachment, ObjectRef, Reference, Resolved};
use super::{Gathered, Kind, KindId, cluster_scoped};
use crate::free_form::FreeForm;
use crate::mirror::actor::Actor;
use crate::mirror::{Invalid, JoinRows, JoinTable, Prepared, StatusColumn, audit_metadata};
use crate::provision::children::ChildSet;
use crate::provision::{self, Placed, ProvisionError, labels};
use crate::reason::Reason;

/// Roles that may change what an organization runs.
pub const ROLES_THAT_DEPLOY: &[&str] = &["owner", "admin", "member"];
/// Every role.
pub const ANY_ROLE: &[&str] = &["owner", "admin", "member", "viewer"];
/// The `hashed_password` of a user without a password: no hash matches it.
pub const LOCKED_PASSWORD: &str = "!locked";

/// Why an object cannot be prepared for the mirror.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("the object has no uid yet")]
    NoUid,
    #[error("resourceVersion {0:?} is not a number")]
    ResourceVersion(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// The columns every row carries besides its kind's own.
#[derive(Serialize)]
struct Bookkeeping<'a> {
    id: Uuid,
    /// Only tenant tables have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<Uuid>,
    k8s_namespace: Option<&'a str>,
    k8s_name: &'a str,
    k8s_resource_version: i64,
    k8s_generation: Option<i64>,
    /// The object's creation, not the row's: a row rebuilt by `resync` keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a Time>,
}

/// Pure: the rows an object writes, given what its references resolved to.
pub fn prepare<K: Kind>(obj: &K, resolved: &Resolved) -> Result<Prepared, PrepareError> {
    let meta = obj.meta();
    let id = meta.uid.as_deref().and_then(|uid| Uuid::parse_str(uid).ok()).ok_or(PrepareError::NoUid)?;
    let version_text = meta.resource_version.clone().unwrap_or_default();
    let resource_version: i64 =
        version_text.parse().map_err(|_| PrepareError::ResourceVersion(version_text.clone()))?;
    let tenant = if cluster_scoped::<K>() { None } else { resolved.organization };

    let mut rows = obj.rows(resolved)?;
    // Serializing the whole object to read its status costs more than the rest of the build:
    // only for kinds that mirror status fields.
    let status = if K::STATUS_COLUMNS.is_empty() { Value::Null } else { crate::mirror::current_status(obj) };
    for column in K::STATUS_COLUMNS {
        let value = status.get(column.field).cloned().filter(|v| !v.is_null());
        rows.row.insert(column.column.into(), value.unwrap_or_else(|| Value::from(column.default)));
    }
    let name = obj.name_any();
    rows.row.extend(columns(&Bookkeeping {
        id,
        organization_id: tenant,
        k8s_namespace: meta.namespace.as_deref(),
        k8s_name: &name,
        k8s_resource_version: resource_version,
        k8s_generation: meta.generation,
        created_at: meta.creation_timestamp.as_ref(),
    })?);
    for join in &mut rows.joins {
        for row in &mut join.rows {
            row.insert(join.table.owner.into(), Value::from(id.to_string()));
            if let Some(organization) = tenant {
                row.insert("organization_id".into(), Value::from(organization.to_string()));
            }
        }
    }

    let operator = resolved.operator.as_deref();
    let requester = Actor::acting_on(obj.meta()).map(|acted| (acted, resolved.requester));
    let audit = audit_metadata(obj, K::ID.entity().kind, id, tenant, resource_version, operator, requester);
    Ok(Prepared { entity: K::ID.entity(), id, resource_version, row_recorded: obj.is_mirrored(), rows, audit })
}

/// Where the children of `obj` land ([`Index::placement`](super::Index::placement)).
pub fn place<K: Kind>(obj: &K, index: &super::Index) -> provision::Result<provision::Placement> {
    index.placement(obj)
}

/// The children of `obj` placed by `placement`, each on every one of its clusters, with labels
/// and, on the management cluster, owner references: what `render` prints and the operator
/// applies.
pub fn children<K: Kind>(
    obj: &K,
    placement: &provision::Placement,
    inputs: &super::Inputs,
) -> provision::Result<Vec<Placed>> {
    if K::CHILD_TYPES.is_empty() {
        return Ok(vec![]);
    }
    let owner_namespace = obj.namespace();
    if let Some(beyond) =
        owner_namespace.as_deref().and_then(|ns| inputs.index.beyond_quota(ns, K::ID, &obj.name_any()))
    {
        return Err(ProvisionError::QuotaExceeded(beyond));
    }
    let owner_reference = obj.controller_owner_ref(&());
    let mut placed = vec![];
    for mut desired in obj.desired(placement, inputs)? {
        let labels = desired.metadata_mut().labels.get_or_insert_default();
        labels.insert(labels::ORGANIZATION.into(), placement.organization.clone());
        if let Some(environment) = &placement.environment {
            labels.insert(labels::ENVIRONMENT.into(), environment.clone());
        }
        labels.insert(labels::OWNER_KIND.into(), K::kind(&()).into_owned());
        labels.insert(labels::OWNER_NAME.into(), obj.name_any());
        if let Some(namespace) = &owner_namespace {
            labels.insert(labels::OWNER_NAMESPACE.into(), namespace.clone());
        }
        if let Some(uid) = obj.uid() {
            labels.insert(labels::OWNER_UID.into(), uid);
        }
        labels.insert(labels::MANAGED_BY.into(), "windflow".into());
        let child = desired
            .object()
            .map_err(|e| ProvisionError::invalid("spec", format!("cannot build a child object: {e}")))?;
        for cluster in &placement.clusters {
            let mut object = child.clone();
            // Owner references cannot cross namespaces nor clusters: a namespaced owner owns
            // only the children in its own namespace of its own cluster; the others are found
            // and deleted by label.
            let same_namespace = owner_namespace.is_none() || object.metadata.namespace == owner_namespace;
            if let (Some(owner), true, true) = (&owner_reference, same_namespace, cluster.is_management()) {
                object.metadata.owner_references = Some(vec![owner.clone()]);
            }
            placed.push(Placed { cluster: cluster.clone(), object });
        }
    }
    Ok(placed)
}

/// `spec.elementRef`.
pub fn element(reference: &ObjectRef) -> Reference {
    Reference::new(KindId::Element, &reference.name, "spec.elementRef")
}

/// `spec.tags[]`.
pub fn tags(names: &[String]) -> impl Iterator<Item = Reference> + '_ {
    names.iter().enumerate().map(|(i, name)| Reference::new(KindId::Tag, name, format!("spec.tags[{i}]")))
}

/// The rows of a `*_tags` table.
pub fn tag_rows(table: &'static JoinTable, names: &[String], resolved: &Resolved) -> Result<JoinRows, Invalid> {
    linked(table, tags(names).map(|tag| (tag, Link {})), resolved)
}

/// A `*_tags` join table.
pub const fn tag_table(table: &'static str, owner: &'static str) -> JoinTable {
    JoinTable { table, owner, key: &["tag_id"], values: &[] }
}

/// A join row that holds nothing but the ids it joins.
#[derive(Serialize)]
pub struct Link {}

/// A join row that attaches to a network, at an address.
#[derive(Serialize)]
pub struct Attachment<'a> {
    pub ip_address: Option<&'a str>,
}

/// Rows of a join table, one per referenced object: its id goes to the table's first key
/// column, beside the columns of `E`.
pub fn linked<E: Serialize>(
    table: &'static JoinTable,
    links: impl Iterator<Item = (Reference, E)>,
    resolved: &Resolved,
) -> Result<JoinRows, Invalid> {
    join_rows(table, links, |reference| resolved.id(reference))
}

/// Rows of a join table of users, each checked to be a member of the organization.
pub fn members(
    table: &'static JoinTable,
    users: impl Iterator<Item = Reference>,
    resolved: &Resolved,
) -> Result<JoinRows, Invalid> {
    join_rows(table, users.map(|user| (user, Link {})), |user| resolved.member(user, ANY_ROLE))
}

fn join_rows<E: Serialize>(
    table: &'static JoinTable,
    links: impl Iterator<Item = (Reference, E)>,
    id: impl Fn(&Reference) -> Result<Uuid, Invalid>,
) -> Result<JoinRows, Invalid> {
    let key = table.key.first().copied().unwrap_or_default();
    let rows = links
        .map(|(reference, extra)| {
            let mut row = columns(&extra)?;
            row.insert(key.to_owned(), Value::from(id(&reference)?.to_string()));
            Ok(row)
        })
        .collect::<Result<_, Invalid>>()?;
    Ok(JoinRows { table, rows })
}

/// Rows of a join table from typed rows.
pub fn typed_rows<R: Serialize>(table: &'static JoinTable, rows: &[R]) -> Result<JoinRows, Invalid> {
    Ok(JoinRows { table, rows: rows.iter().map(columns).collect::<Result<_, Invalid>>()? })
}

/// `spec.volumes[]`, as names.
pub fn volumes(names: &[String]) -> impl Iterator<Item = (Reference, Link)> + '_ {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| (Reference::new(KindId::Volume, name, format!("spec.volumes[{i}]")), Link {}))
}

/// `spec.networks[]`, as attachments with an address.
pub fn networks(attachments: &[NetworkAttachment]) -> impl Iterator<Item = (Reference, Attachment<'_>)> + '_ {
    attachments.iter().enumerate().map(|(i, a)| {
        (
            Reference::new(KindId::Network, &a.network, format!("spec.networks[{i}].network")),
            Attachment { ip_address: a.ip_address.as_deref() },
        )
    })
}

/// The seed status `phase`, mirrored to `column`.
/// `status.placement`, where the object's Kubernetes objects run, in the `placement` column.
pub const PLACEMENT_COLUMN: StatusColumn = StatusColumn { field: "placement", column: "placement", default: None };

pub const fn phase_column(column: &'static str, default: &'static str) -> StatusColumn {
    StatusColumn { field: "phase", column, default: Some(default) }
}

/// The annotation by which users put an Element or a PhysicalHost in maintenance.
pub const MAINTENANCE_ANNOTATION: &str = "windflow.io/maintenance";

pub fn in_maintenance(obj: &impl ResourceExt) -> bool {
    obj.annotations().get(MAINTENANCE_ANNOTATION).is_some_and(|v| v == "true")
}

/// Reasons that need users to act, not time to pass.
const BROKEN: &[Reason] = &[
    Reason::InvalidSpec,
    Reason::Conflict,
    Reason::NamespaceConflict,
    Reason::ProviderNotInstalled,
    Reason::DependentFailed,
];

/// How an object stands, as its `Ready` condition says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Ready, at its current generation.
    Ready,
    /// Not ready for a reason users must fix (an invalid spec, a conflict, a missing provider).
    Broken,
    /// Not ready yet, or not reconciled since its last change.
    Pending,
}

pub fn standing<K: Kind>(obj: &K) -> Standing {
    let Some(status) = obj.common_status() else { return Standing::Pending };
    let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready") else { return Standing::Pending };
    if ready.status == "False" && BROKEN.iter().any(|r| r.as_str() == ready.reason) {
        Standing::Broken
    } else if ready.status == "True" && status.observed_generation == obj.meta().generation {
        Standing::Ready
    } else {
        Standing::Pending
    }
}

/// The objects of `K` that reference `parent` and are not being deleted, named ("Volume
/// uploads") with how they stand: what a gathering object (an Element, a Stack) follows.
pub fn standings<K: super::Indexed, P: Kind>(index: &super::Index, parent: &P) -> Vec<(String, Standing)> {
    let live = index.live_children::<K, P>(parent);
    live.iter().map(|obj| (format!("{} {}", K::ID, obj.name_any()), standing(obj.as_ref()))).collect()
}

/// Why a gathering object is not all Ready: the first of `named` that is broken (a fault) or,
/// failing that, the first that is not Ready yet (work under way).
pub fn first_unready(named: &[(String, Standing)]) -> Option<Gathered> {
    let first = |which| named.iter().find(|(_, standing)| *standing == which).map(|(name, _)| name.clone());
    first(Standing::Broken)
        .map(|name| Gathered::Broken(format!("{name} needs users to act (its Ready condition says why)")))
        .or_else(|| first(Standing::Pending).map(|name| Gathered::Pending(format!("{name} is not Ready yet"))))
}

/// The applied children of `kind`, as the API server returned them.
pub fn applied_of<'a>(applied: &'a [DynamicObject], kind: &'a str) -> impl Iterator<Item = &'a DynamicObject> {
    applied.iter().filter(move |child| child.types.as_ref().is_some_and(|t| t.kind == kind))
}

/// The first applied child of `kind`, and the text at `pointer` in it (`/status/phase`).
pub fn applied_text<'a>(applied: &'a [DynamicObject], kind: &'a str, pointer: &str) -> Option<&'a str> {
    applied_of(applied, kind).next()?.data.pointer(pointer).and_then(Value::as_str)
}

/// The first applied child of `kind` whose condition `condition` is not True, described: what
/// a kind still waits for (`Available` workloads, `Ready` certificates and machines).
pub fn without_condition(applied: &[DynamicObject], kind: &str, condition: &str) -> Option<String> {
    applied_of(applied, kind).find_map(|child| {
        let conditions = child.data.pointer("/status/conditions").and_then(Value::as_array);
        let found = conditions.into_iter().flatten().find(|c| c["type"] == condition);
        let state = found.and_then(|c| c["status"].as_str()).unwrap_or("not reported yet");
        let why = found.and_then(|c| c["message"].as_str()).filter(|m| !m.is_empty());
        (state != "True").then(|| {
            let what = crate::describe(kind, child.namespace().as_deref(), &child.name_any());
            let why = why.map(|why| format!(": {why}")).unwrap_or_default();
            format!("{what} is not {condition} yet ({condition}: {state}){why}")
        })
    })
}

/// A Kubernetes quantity in decimal gigabytes, as the seed counts them (`10` → `10G`).
pub fn gigabytes(size: f64) -> String {
    format!("{size}G")
}

/// A free-form field as a string, if it is one.
pub fn text<'a>(form: &'a FreeForm, key: &str) -> Option<&'a str> {
    form.0.get(key).and_then(Value::as_str)
}

/// A typed row as the columns the mirror writes.
pub fn columns(row: &impl serde::Serialize) -> Result<Map<String, Value>, Invalid> {
    match serde_json::to_value(row) {
        Ok(Value::Object(columns)) => Ok(columns),
        Ok(other) => Err(Invalid(format!("a row must be an object of columns, not {other}"))),
        Err(error) => Err(Invalid(format!("cannot write the row: {error}"))),
    }
}

/// The metadata of a child named `name`, in `namespace` when it has one.
pub fn metadata(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: namespace.map(str::to_owned), ..ObjectMeta::default() }
}

/// Free-form quantities (strings or numbers) under `field`, keyed by `key_of` their key.
pub fn quantities(
    field: &str,
    given: &Map<String, Value>,
    key_of: impl Fn(&str) -> String,
) -> provision::Result<BTreeMap<String, Quantity>> {
    given
        .iter()
        .map(|(key, value)| {
            let key = key_of(key);
            let quantity = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ProvisionError::invalid(
                        &format!("{field}.{key}"),
                        "a quantity is a string or a number",
                    ));
                }
            };
            Ok((key, Quantity(quantity)))
        })
        .collect()
}

//! The mirror: every WindFlow object as rows of the seed's schema, with an audit trail.
//!
//! A kind says which objects it references and how its rows look ([`Mirrored`]); the rest is
//! shared: references are dereferenced from the controllers' caches (`reconcile::catalog`),
//! rows are built purely ([`prepare`]), and one statement writes the row, its join rows and the
//! audit row in one transaction ([`store::write`]).

pub mod kinds;
pub mod sql;
pub mod store;
pub mod views;

use std::collections::HashMap;
use std::fmt;

use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::FIELD_MANAGER;
use crate::api::common::HasCommonStatus;

/// Every mirrored kind, as a target of references and a row of the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Organization,
    User,
    Tag,
    Function,
    Group,
    Policy,
    Environment,
    Element,
    ContainerCluster,
    ContainerNode,
    VM,
    PhysicalHost,
    Network,
    Volume,
    Gateway,
    Domain,
    DnsRecord,
    DnssecKey,
    Stack,
    Application,
    Deployment,
}

impl Target {
    /// The seed table holding the kind's rows.
    pub fn table(self) -> &'static str {
        match self {
            Self::Organization => "organizations",
            Self::User => "users",
            Self::Tag => "tags",
            Self::Function => "functions",
            Self::Group => "groups",
            Self::Policy => "policies",
            Self::Environment => "environments",
            Self::Element => "elements",
            Self::ContainerCluster => "container_clusters",
            Self::ContainerNode => "container_nodes",
            Self::VM => "vms",
            Self::PhysicalHost => "physical_hosts",
            Self::Network => "networks",
            Self::Volume => "volumes",
            Self::Gateway => "gateways",
            Self::Domain => "domains",
            Self::DnsRecord => "dns_records",
            Self::DnssecKey => "dnssec_keys",
            Self::Stack => "stacks",
            Self::Application => "applications",
            Self::Deployment => "deployments",
        }
    }

    /// Cluster-scoped kinds are referenced without a namespace and belong to no organization.
    pub fn cluster_scoped(self) -> bool {
        matches!(self, Self::Organization | Self::User | Self::Tag | Self::Function)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A reference an object makes to another, by name; `field` names it for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub target: Target,
    pub name: String,
    pub field: String,
}

impl Reference {
    pub fn new(target: Target, name: &str, field: impl Into<String>) -> Self {
        Self { target, name: name.to_owned(), field: field.into() }
    }
}

/// What builds read of a referenced object: its row's id (the object's uid) and the few
/// fields that rules about references need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    pub id: Uuid,
    /// An Element's type.
    pub element_type: Option<String>,
    /// The Stack an Application belongs to.
    pub stack_id: Option<Uuid>,
    /// A User's role in the referring object's organization, if a member.
    pub organization_role: Option<String>,
}

/// What the dereference step found: the tenant organization, and every referenced object
/// that exists (the controllers' caches; see `reconcile::catalog`).
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// The organization owning the object's namespace (namespaced kinds only).
    pub organization: Option<Uuid>,
    /// That organization's name.
    pub organization_name: Option<String>,
    /// The password hash read from a User's Secret.
    pub password_hash: Option<String>,
    found: HashMap<(Target, String), Referenced>,
}

impl Resolved {
    pub fn insert(&mut self, target: Target, name: impl Into<String>, found: Referenced) {
        self.found.insert((target, name.into()), found);
    }

    /// What builds read of the referenced object.
    pub fn get(&self, reference: &Reference) -> Result<&Referenced, Invalid> {
        self.found.get(&(reference.target, reference.name.clone())).ok_or_else(|| {
            Invalid(format!("{}: {} {:?} does not exist", reference.field, reference.target, reference.name))
        })
    }

    /// The referenced row's id.
    pub fn id(&self, reference: &Reference) -> Result<Uuid, Invalid> {
        Ok(self.get(reference)?.id)
    }

    /// The ids of every resolved reference, with the reference, for finding which row is missing.
    pub fn ids<'a>(&self, references: &'a [Reference]) -> Vec<(&'a Reference, Uuid)> {
        references.iter().filter_map(|r| self.id(r).ok().map(|id| (r, id))).collect()
    }

    /// References that are not mirrored yet: the object waits for them.
    pub fn missing<'a>(&self, references: &'a [Reference]) -> Vec<&'a Reference> {
        references.iter().filter(|r| !self.found.contains_key(&(r.target, r.name.clone()))).collect()
    }

    /// The referenced Element's id, after checking that it is of the type the kind needs.
    pub fn element_of_type(&self, reference: &Reference, element_type: &str) -> Result<Uuid, Invalid> {
        let found = self.get(reference)?.element_type.as_deref();
        if found != Some(element_type) {
            return Err(Invalid(format!(
                "{}: Element {:?} is of type {}, this kind needs an element of type {element_type}",
                reference.field,
                reference.name,
                found.unwrap_or("unknown"),
            )));
        }
        self.id(reference)
    }

    /// The referenced User's id, after checking that the user is a member of the object's
    /// organization with one of `roles`.
    pub fn member(&self, reference: &Reference, roles: &[&str]) -> Result<Uuid, Invalid> {
        let role = self.get(reference)?.organization_role.as_deref();
        match role {
            Some(role) if roles.contains(&role) => self.id(reference),
            Some(role) => Err(Invalid(format!(
                "{}: User {:?} is a {role} of the organization; this needs one of {}",
                reference.field,
                reference.name,
                roles.join(", ")
            ))),
            None => Err(Invalid(format!(
                "{}: User {:?} is not a member of the organization",
                reference.field, reference.name
            ))),
        }
    }
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

/// What the mirror needs from a kind. Implementations are pure.
pub trait Mirrored:
    Resource<DynamicType = ()> + HasCommonStatus + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    const TARGET: Target;
    /// Status fields that mirror seed columns.
    const STATUS_COLUMNS: &'static [StatusColumn] = &[];

    /// The objects this one references by name.
    fn references(&self) -> Vec<Reference>;

    /// Validates the spec against what it references and builds the kind's own columns and
    /// join rows (ids, organization and bookkeeping are added by [`prepare`]).
    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid>;

    /// The Secret holding the object's password hash, if it has one.
    fn password_secret(&self) -> Option<(&str, &str, &str)> {
        None
    }
}

/// Everything one write needs: rows with ids and bookkeeping, and the audit metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub target: Target,
    pub id: Uuid,
    pub resource_version: i64,
    /// The object's status says its row is written; if not, the write tries the leaner create
    /// first ([`sql::Write`]).
    pub row_recorded: bool,
    pub rows: Rows,
    pub audit: Map<String, Value>,
}

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

/// The object's status as JSON (`null` when it has none).
pub fn current_status<K: Serialize>(obj: &K) -> Value {
    serde_json::to_value(obj).ok().and_then(|mut v| v.get_mut("status").map(Value::take)).unwrap_or(Value::Null)
}

/// Pure: the rows an object writes, given what its references resolved to.
pub fn prepare<K: Mirrored>(obj: &K, resolved: &Resolved) -> Result<Prepared, PrepareError> {
    let meta = obj.meta();
    let id = meta.uid.as_deref().and_then(|uid| Uuid::parse_str(uid).ok()).ok_or(PrepareError::NoUid)?;
    let version_text = meta.resource_version.clone().unwrap_or_default();
    let resource_version: i64 =
        version_text.parse().map_err(|_| PrepareError::ResourceVersion(version_text.clone()))?;
    let tenant = if K::TARGET.cluster_scoped() { None } else { resolved.organization };

    let mut rows = obj.build(resolved)?;
    // Serializing the whole object to read its status costs more than the rest of the build:
    // only for kinds that mirror status fields.
    let status = if K::STATUS_COLUMNS.is_empty() { Value::Null } else { current_status(obj) };
    for column in K::STATUS_COLUMNS {
        let value = status.get(column.field).cloned().filter(|v| !v.is_null());
        rows.row.insert(column.column.into(), value.unwrap_or_else(|| json!(column.default)));
    }
    rows.row.insert("id".into(), json!(id));
    if let Some(organization) = tenant {
        rows.row.insert("organization_id".into(), json!(organization));
    }
    rows.row.insert("k8s_namespace".into(), json!(meta.namespace));
    rows.row.insert("k8s_name".into(), json!(obj.name_any()));
    rows.row.insert("k8s_resource_version".into(), json!(resource_version));
    rows.row.insert("k8s_generation".into(), json!(meta.generation));
    for join in &mut rows.joins {
        for row in &mut join.rows {
            row.insert(join.table.owner.into(), json!(id));
            if let Some(organization) = tenant {
                row.insert("organization_id".into(), json!(organization));
            }
        }
    }

    let audit = audit_metadata(obj, K::TARGET, id, tenant, resource_version);
    Ok(Prepared { target: K::TARGET, id, resource_version, row_recorded: obj.is_mirrored(), rows, audit })
}

/// The audit row's fixed part: who and what. The actor is the last field manager that changed
/// the spec, the closest Kubernetes gets to "who".
pub fn audit_metadata<K: Resource>(
    obj: &K,
    target: Target,
    id: Uuid,
    organization: Option<Uuid>,
    resource_version: i64,
) -> Map<String, Value> {
    let meta = obj.meta();
    let actor = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.is_none() && entry.manager.as_deref() != Some(FIELD_MANAGER))
        .max_by_key(|entry| entry.time.as_ref().map(|t| t.0))
        .and_then(|entry| entry.manager.clone());
    let object = AuditedObject { target, id, namespace: meta.namespace.as_deref(), name: &obj.name_any() };
    audit_row(&object, actor.as_deref(), organization, resource_version)
}

/// What an audit row is about.
pub struct AuditedObject<'a> {
    pub target: Target,
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
) -> Map<String, Value> {
    Map::from_iter([
        ("organization_id".to_owned(), json!(organization)),
        ("actor".to_owned(), json!(actor)),
        ("resource_type".to_owned(), json!(object.target.to_string())),
        ("resource_id".to_owned(), json!(object.id)),
        ("resource_namespace".to_owned(), json!(object.namespace)),
        ("resource_name".to_owned(), json!(object.name)),
        ("resource_version".to_owned(), json!(resource_version)),
    ])
}

//! Types every WindFlow kind shares: references, conditions and status.

use std::collections::HashMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::KindId;
use crate::mirror::Invalid;

/// The API group of every WindFlow kind.
pub const GROUP: &str = "windflow.io";

/// A reference to another WindFlow object by name. Namespaced targets are looked up in the
/// referring object's namespace: references never cross namespaces, so never cross tenants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct ObjectRef {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl ObjectRef {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// A kind's status, typed: what every kind reports ([`CommonStatus`]) and the seed fields of its
/// own. What a reconcile observes is one too, holding only the fields it observed.
pub trait KindStatus:
    Serialize + DeserializeOwned + Default + Clone + fmt::Debug + PartialEq + Send + Sync + 'static
{
    fn common(&self) -> &CommonStatus;
    fn common_mut(&mut self) -> &mut CommonStatus;

    /// This status with the fields `observed` holds replacing its own: those it serializes
    /// (options that are set, lists that are not empty), field by field at the top level.
    fn overlaid(&self, observed: &Self) -> Self {
        let fields = |status: &Self| match serde_json::to_value(status) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        let mut merged = fields(self);
        merged.extend(fields(observed));
        // Both are values of this type, and so is every field of the two.
        serde_json::from_value(Value::Object(merged)).unwrap_or_else(|_| observed.clone())
    }
}

impl KindStatus for CommonStatus {
    fn common(&self) -> &CommonStatus {
        self
    }

    fn common_mut(&mut self) -> &mut CommonStatus {
        self
    }
}

/// The status every WindFlow kind carries; kinds with a seed status column add it beside.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the object is mirrored and what it asks for exists) and `Synced` (the last
    /// reconcile wrote the database), with the reason when they are not true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The organization the object belongs to, as resolved from its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The `metadata.resourceVersion` of the spec the database row holds: set when the row is
    /// first written and when the spec changes (a new generation), not on status-only changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrored_resource_version: Option<String>,
    /// Where the Kubernetes objects this object provisions run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
}

/// Where an object's Kubernetes objects run, as the operator decided it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// The clusters, comma-separated: ContainerClusters of this namespace by name, and
    /// `(management)` for the cluster the operator runs in.
    pub cluster: String,
    /// The namespace they run in on those clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `#[serde(default = "yes")]`: a flag that is on unless turned off.
pub fn yes() -> bool {
    true
}

/// A connection to a Network, with an optional fixed address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttachment {
    /// Name of the Network.
    #[schemars(length(min = 1, max = 100))]
    pub network: String,
    /// Address on that network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
}

/// A reference an object makes to another, by name; `field` names it for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub kind: KindId,
    pub name: String,
    pub field: String,
}

impl Reference {
    pub fn new(kind: KindId, name: &str, field: impl Into<String>) -> Self {
        Self { kind, name: name.to_owned(), field: field.into() }
    }

    /// The namespace the referenced object is looked up in: references never leave the
    /// referring object's namespace, and cluster-scoped targets have none.
    pub fn scope<'a>(&self, referrer_namespace: Option<&'a str>) -> Option<&'a str> {
        if self.kind.cluster_scoped() { None } else { referrer_namespace }
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
    /// A User administers the whole platform.
    pub superadmin: bool,
}

/// What the dereference step found: the tenant organization, and every referenced object
/// that exists (the controllers' caches; see `kinds::Index`).
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// The organization owning the object's namespace (namespaced kinds only).
    pub organization: Option<Uuid>,
    /// That organization's name.
    pub organization_name: Option<String>,
    /// The password hash read from a User's Secret.
    pub password_hash: Option<String>,
    /// The operator's Kubernetes username, for the audit of its own changes.
    pub operator: Option<String>,
    /// The row of the User who requested the object's latest change
    /// ([`Index::requester`](super::Index::requester)).
    pub requester: Option<Uuid>,
    found: HashMap<(KindId, String), Referenced>,
}

impl Resolved {
    pub fn insert(&mut self, kind: KindId, name: impl Into<String>, found: Referenced) {
        self.found.insert((kind, name.into()), found);
    }

    /// What builds read of the referenced object.
    pub fn get(&self, reference: &Reference) -> Result<&Referenced, Invalid> {
        self.found.get(&(reference.kind, reference.name.clone())).ok_or_else(|| {
            Invalid(format!("{}: {} {:?} does not exist", reference.field, reference.kind, reference.name))
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
        references.iter().filter(|r| !self.found.contains_key(&(r.kind, r.name.clone()))).collect()
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

    /// The id of the User who triggers a rollout: a superadmin, who may deploy in every
    /// organization, or a member with one of `roles`.
    pub fn deployer(&self, reference: &Reference, roles: &[&str]) -> Result<Uuid, Invalid> {
        if self.get(reference)?.superadmin {
            return self.id(reference);
        }
        self.member(reference, roles)
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

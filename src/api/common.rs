//! Types every WindFlow kind shares: references, free-form settings, conditions and status.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The API group of every WindFlow kind.
pub const GROUP: &str = "windflow.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

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

/// A free-form JSON object (a JSONB column of the seed). Any keys are kept.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FreeForm(pub Map<String, Value>);

impl FreeForm {
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

impl JsonSchema for FreeForm {
    fn schema_name() -> Cow<'static, str> {
        "FreeForm".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// A free-form JSON list (a JSONB column of the seed whose default is `[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FreeFormList(pub Vec<Value>);

impl JsonSchema for FreeFormList {
    fn schema_name() -> Cow<'static, str> {
        "FreeFormList".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": { "x-kubernetes-preserve-unknown-fields": true },
        })
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

/// What deleting a WindFlow object does to the Kubernetes objects it provisioned.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// They are deleted with it.
    #[default]
    Delete,
    /// They stay, no longer owned nor labeled as its children.
    Orphan,
}

/// Why a condition or a rollout is what it is: the reasons users read in `kubectl describe`,
/// and the ones the controller decides by. Serialized and shown as its name.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema, strum::Display, strum::IntoStaticStr,
)]
pub enum Reason {
    /// The database row holds the object.
    Mirrored,
    /// Mirrored, and every child it asks for applied.
    Provisioned,
    ProviderNotInstalled,
    /// The API server could not be reached or refused the operator (RBAC) while provisioning.
    ProviderUnavailable,
    /// An existing cluster or engine does not answer its health check.
    Unreachable,
    /// The workload cluster the object's children run on does not answer.
    ClusterUnreachable,
    WaitingForDependency,
    NoOrganization,
    InvalidSpec,
    /// The object is no valid object of its kind (its CRD let it through, an older or looser
    /// schema): skipped until it is fixed.
    InvalidObject,
    Conflict,
    /// The namespace an Organization or Environment would provision exists and is not its own.
    NamespaceConflict,
    /// An object this one gathers (on an Element, in a Stack) needs users to act.
    DependentFailed,
    DatabaseUnavailable,
    /// The operator's watches have not listed every kind yet: nothing can be dereferenced.
    CachesNotSynced,
    Paused,
    StillReferenced,
    /// A rollout waits for the one before it.
    Queued,
    Progressing,
    Completed,
    StackNotDeployable,
    /// The stack is still draft or validating: the rollout waits for it, up to its deadline.
    WaitingForStack,
    InvalidRollout,
    /// The rollout's requester or its `triggeredBy` may not deploy the stack.
    NotAuthorized,
    HealthCheckFailed,
    Cancelled,
    RolledBack,
}

impl Reason {
    /// The reason as conditions and Events spell it: its name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

//! What tenants deploy: stacks of applications, and deployments that roll them out.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, DeletionPolicy, FreeForm, ObjectRef};

/// A logical group of services on an element (table `stacks`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Stack",
    namespaced,
    category = "windflow",
    shortname = "wfstack",
    status = "StackStatus",
    printcolumn(name = "Element", type_ = "string", json_path = ".spec.elementRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a stack name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct StackSpec {
    /// What the stack is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Element the stack runs on. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// The kubernetes ContainerCluster (same namespace) its applications run on. Unset: the
    /// only kubernetes ContainerCluster of its element, else the management cluster. Changing
    /// it moves the applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cluster_ref: Option<ObjectRef>,
    /// The template the stack was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub template_id: Option<String>,
    /// Stack configuration (free-form).
    #[serde(default)]
    pub configuration: FreeForm,
    /// Whether the configuration was optimized by a language model.
    #[serde(default)]
    pub llm_optimized: bool,
    /// Version of that optimization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub llm_optimization_version: Option<String>,
    /// The workflow attached to the stack (a UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "uuid"))]
    pub workflow_id: Option<String>,
}

/// Status of a Stack.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `stacks.status`: draft, validating, ready, deploying, deployed, error, archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<StackPhase>,
    /// When the stack was last deployed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployed_at: Option<String>,
}

seed_values! {
    /// The values of `StackStatus.phase`: the seed's check on the column it mirrors.
    StackPhase { Draft, Validating, Ready, Deploying, Deployed, Error, Archived }
}

/// A deployable application of a stack (tables `applications`, `volume_applications`,
/// `network_applications`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Application",
    namespaced,
    category = "windflow",
    shortname = "wfapp",
    status = "ApplicationStatus",
    printcolumn(name = "Stack", type_ = "string", json_path = ".spec.stackRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.applicationType"),
    printcolumn(name = "Deployment", type_ = "string", json_path = ".status.deploymentStatus"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("an application name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the application does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Stack the application belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("stackRef is immutable"))]
    pub stack_ref: ObjectRef,
    /// How the application runs (seed `app_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("applicationType is immutable"))]
    pub application_type: ApplicationType,
    /// Plugin that deploys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub plugin_name: Option<String>,
    /// Plugin version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub plugin_version: Option<String>,
    /// Deployment configuration (free-form: image, replicas, ports, env...).
    #[serde(default)]
    pub deployment_config: FreeForm,
    /// Resources allocated to the application (free-form).
    #[serde(default)]
    pub allocated_resources: FreeForm,
    /// Volumes mounted into the application.
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.mountPath == m.mountPath))").message("each mountPath is used once"))]
    pub volumes: Vec<VolumeMount>,
    /// Networks the application is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.network == m.network))").message("a network is listed once"))]
    pub networks: Vec<ApplicationNetwork>,
}

/// Seed `app_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    Container,
    Vm,
    Physical,
}

/// A Volume mounted into an application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Name of the Volume.
    #[schemars(length(min = 1, max = 100))]
    pub volume: String,
    /// Absolute path where the volume is mounted.
    #[schemars(length(min = 1, max = 255), regex(pattern = "^/"))]
    pub mount_path: String,
    /// Mount options (free-form).
    #[serde(default)]
    pub mount_options: FreeForm,
}

/// A Network an application is connected to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationNetwork {
    /// Name of the Network.
    #[schemars(length(min = 1, max = 100))]
    pub network: String,
    /// Fixed address on that network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// Connection settings (free-form).
    #[serde(default)]
    pub connection_config: FreeForm,
}

/// Status of an Application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `applications.deployment_status`: pending (never rolled out by a Deployment),
    /// deploying or updating (a rollout runs), deployed, failed (the last rollout failed and the
    /// previous release runs again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<ApplicationDeploymentStatus>,
    /// The release the application runs, once a Deployment has rolled one out. Until then it
    /// runs its own `deploymentConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ApplicationRelease>,
}

seed_values! {
    /// The values of `ApplicationStatus.deployment_status`: the seed's check on the column it mirrors.
    ApplicationDeploymentStatus { Pending, Deploying, Deployed, Failed, Stopped, Scaling, Updating }
}

/// What a completed Deployment rolled out to an application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRelease {
    /// The Deployment that rolled it out.
    pub deployment: String,
    /// The `windflow.io/revision` label of its pods.
    pub revision: String,
    /// The deployment configuration rolled out.
    pub config: FreeForm,
    /// When that rollout completed (RFC 3339).
    pub deployed_at: String,
}

/// A rollout of a Stack, or of one of its Applications, triggered by a User (tables
/// `deployments`, `deployment_events`, `deployment_logs`). Short name `wfdeploy`, since
/// `deploy` belongs to apps/v1 Deployment.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Deployment",
    namespaced,
    category = "windflow",
    shortname = "wfdeploy",
    status = "DeploymentStatus",
    printcolumn(name = "Stack", type_ = "string", json_path = ".spec.stackRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.deploymentType"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "By", type_ = "string", json_path = ".spec.triggeredBy"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(STARTED_SPEC_IS_IMMUTABLE).message("the spec of a started Deployment is immutable, except cancel")
)]
#[x_kube(validation = Rule::new("(self.deploymentType == 'rollback') == has(self.parentDeploymentRef)").message("parentDeploymentRef is set for rollback deployments, and only for them"))]
#[x_kube(validation = Rule::new("self.stackRef == oldSelf.stackRef && self.deploymentType == oldSelf.deploymentType && self.triggeredBy == oldSelf.triggeredBy").message("stackRef, deploymentType and triggeredBy are immutable"))]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// The Stack to roll out.
    pub stack_ref: ObjectRef,
    /// Roll out only this Application of the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_ref: Option<ObjectRef>,
    /// Strategy (seed `deployment_type_check`).
    #[serde(default)]
    pub deployment_type: DeploymentType,
    /// Configuration used by the rollout (free-form). Read by the strategies: `maxSurge` and
    /// `maxUnavailable` (a count or "N%", default 25%), `progressDeadlineSeconds` (default 600),
    /// `canaryWeight` (percent of the replicas, 1-99, default 20), `analysisSeconds` (how long a
    /// ready canary is watched, default 60), `autoPromote` (default true; false waits for the
    /// annotation windflow.io/promote=true), `startDeadlineSeconds` (how long after its creation
    /// the rollout waits for a draft or validating stack to become ready, default 600).
    #[serde(default)]
    #[schemars(schema_with = "rollout_settings_schema")]
    pub deployment_config: FreeForm,
    /// Version label of the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub deployment_version: Option<String>,
    /// Name of the User who asks for the rollout: a member of the organization with role
    /// owner, admin or member who holds, through an active Policy, a Function that may create
    /// deployments.windflow.io on the stack's environment and element; or a superadmin.
    /// Admission checks it, and that its creator names their own User unless they are a
    /// superadmin or in a platform group.
    #[schemars(length(min = 3, max = 50))]
    pub triggered_by: String,
    /// The Deployment a rollback returns to: a completed one, whose recorded configuration is
    /// rolled out again. It becomes `rolled_back` when the rollback completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_deployment_ref: Option<ObjectRef>,
    /// Stops the rollout: a pending or running Deployment ends `cancelled` and its applications
    /// return to the release they ran before. Cannot be undone.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self || !oldSelf").message("a cancelled Deployment stays cancelled"))]
    pub cancel: bool,
}

/// `deploymentConfig`: free-form, with the settings the strategies read typed, so that the API
/// server checks their ranges. (CEL rules over an untyped object do not compile where the API
/// server checks the field's default.)
fn rollout_settings_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let count_or_percent = serde_json::json!({ "x-kubernetes-int-or-string": true });
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "maxSurge": count_or_percent,
            "maxUnavailable": count_or_percent,
            "progressDeadlineSeconds": { "type": "integer", "minimum": 10, "maximum": 86400 },
            "startDeadlineSeconds": { "type": "integer", "minimum": 0, "maximum": 86400 },
            "canaryWeight": { "type": "integer", "minimum": 1, "maximum": 99 },
            "analysisSeconds": { "type": "integer", "minimum": 0, "maximum": 86400 },
            "autoPromote": { "type": "boolean" },
        },
    })
}

/// Once `status.phase` has left pending, only `spec.cancel` may change.
const STARTED_SPEC_IS_IMMUTABLE: &str = "!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'pending' || (\
    self.spec.deploymentConfig == oldSelf.spec.deploymentConfig \
    && has(self.spec.applicationRef) == has(oldSelf.spec.applicationRef) \
    && (!has(self.spec.applicationRef) || self.spec.applicationRef == oldSelf.spec.applicationRef) \
    && has(self.spec.deploymentVersion) == has(oldSelf.spec.deploymentVersion) \
    && (!has(self.spec.deploymentVersion) || self.spec.deploymentVersion == oldSelf.spec.deploymentVersion) \
    && has(self.spec.parentDeploymentRef) == has(oldSelf.spec.parentDeploymentRef) \
    && (!has(self.spec.parentDeploymentRef) || self.spec.parentDeploymentRef == oldSelf.spec.parentDeploymentRef))";

/// Seed `deployment_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentType {
    #[default]
    Standard,
    BlueGreen,
    Canary,
    Rolling,
    Rollback,
}

/// Status of a Deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `deployments.status`: pending, running, completed, failed, cancelled, rolled_back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeploymentPhase>,
    /// When the rollout started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the rollout ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Per application: what this rollout deploys and how far it got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub applications: Vec<ApplicationRollout>,
    /// What the rollout waits for, or why it ended as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

seed_values! {
    /// The values of `DeploymentStatus.phase`: the seed's check on the column it mirrors.
    DeploymentPhase { Pending, Running, Completed, Failed, Cancelled, RolledBack }
}

impl DeploymentPhase {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// The label that carries a release's revision on the pods of its workloads.
pub const REVISION_LABEL: &str = "windflow.io/revision";

/// One application's part of a rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRollout {
    /// The Application.
    pub name: String,
    /// The `windflow.io/revision` label of the pods this rollout brings: a hash of `config`.
    pub revision: String,
    /// The application's deployment configuration as this rollout deploys it, recorded when the
    /// rollout started (for a rollback, the parent's).
    pub config: FreeForm,
    /// How far the application got.
    pub stage: RolloutStage,
    /// When the stage began (RFC 3339).
    pub since: String,
    /// What the stage waits for, or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where an application is in its rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub enum RolloutStage {
    /// standard, rolling, rollback: the workload rolls to the new revision.
    Progressing,
    /// blue_green: a preview workload of the new revision starts beside the live one.
    Preview,
    /// blue_green: the Service serves the new revision; the live workload rolls to it.
    Switched,
    /// canary: a canary workload takes a share of the replicas.
    Canary,
    /// canary: the canary is ready and watched for the analysis period.
    Analysis,
    /// canary: promoted; the main workload rolls to the new revision.
    Promoting,
    /// The application runs the new revision.
    Done,
    /// The new revision did not become ready; the previous release runs again.
    Failed,
}

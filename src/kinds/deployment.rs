//! Deployment: a rollout of a Stack (or one Application) by a User; the rollout itself is
//! `reconcile::deployment` and `deploy`.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::shared::{ROLES_THAT_DEPLOY, columns};
use super::{Kind, KindId};
use crate::deploy::{ApplicationRollout, DeploymentPhase, DeploymentType};
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows};
use crate::provision::Result;
use crate::provision::children::NoChildren;

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
    /// A failed rollout's newer rollout of the same stack (and application) that completed:
    /// the failure is history, no longer the stack's latest word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

kind_status!(DeploymentStatus);

/// A `deployments` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct DeploymentRow<'a> {
    stack_id: Uuid,
    application_id: Option<Uuid>,
    deployment_version: Option<&'a str>,
    deployment_type: &'a DeploymentType,
    deployment_config: &'a FreeForm,
    triggered_by: Uuid,
    parent_deployment_id: Option<Uuid>,
}

/// The rollout owns `status`, `started_at`, `completed_at` and `result`, written with its steps
/// (`crate::events`): the mirror leaves them alone.
impl Kind for Deployment {
    const ID: KindId = KindId::Deployment;
    const TABLE: &'static str = "deployments";
    type Children = NoChildren;

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        [
            Some(Reference::new(KindId::Stack, &spec.stack_ref.name, "spec.stackRef")),
            spec.application_ref.as_ref().map(|a| Reference::new(KindId::Application, &a.name, "spec.applicationRef")),
            Some(Reference::new(KindId::User, &spec.triggered_by, "spec.triggeredBy")),
            spec.parent_deployment_ref
                .as_ref()
                .map(|p| Reference::new(KindId::Deployment, &p.name, "spec.parentDeploymentRef")),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The failed rollouts it makes history once it completed.
    fn followers(&self, index: &super::Index) -> Vec<(KindId, String)> {
        let superseded = super::release::superseding(self, index);
        superseded.into_iter().map(|name| (KindId::Deployment, name)).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = resolved.id(&Reference::new(KindId::Stack, &spec.stack_ref.name, "spec.stackRef"))?;
        let application = match &spec.application_ref {
            Some(a) => {
                let reference = Reference::new(KindId::Application, &a.name, "spec.applicationRef");
                if resolved.get(&reference)?.stack_id != Some(stack) {
                    return Err(Invalid(format!(
                        "spec.applicationRef: Application {:?} is not part of Stack {:?}",
                        a.name, spec.stack_ref.name
                    )));
                }
                Some(resolved.id(&reference)?)
            }
            None => None,
        };
        let parent = spec
            .parent_deployment_ref
            .as_ref()
            .map(|p| resolved.id(&Reference::new(KindId::Deployment, &p.name, "spec.parentDeploymentRef")))
            .transpose()?;
        let user = Reference::new(KindId::User, &spec.triggered_by, "spec.triggeredBy");
        Ok(Rows {
            row: columns(&DeploymentRow {
                stack_id: stack,
                application_id: application,
                deployment_version: spec.deployment_version.as_deref(),
                deployment_type: &spec.deployment_type,
                deployment_config: &spec.deployment_config,
                triggered_by: resolved.deployer(&user, ROLES_THAT_DEPLOY)?,
                parent_deployment_id: parent,
            })?,
            joins: vec![],
        })
    }
}

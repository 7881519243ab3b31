//! Stack: applications rolled out together; its phase follows them and their rollouts.

use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::shared::{PLACEMENT_COLUMN, columns, element, first_unready, phase_column, standings};
use super::{Application, Deployment, Gathered, Index, Inputs, Kind, KindId};
use crate::deploy::{DeploymentPhase, Readiness, StackState};
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::children::NoChildren;
use crate::provision::{Anchor, Result};

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
    /// Archives the stack: its records stay, its applications' workloads go (each
    /// `stopped`), and it takes no rollout (`archived`) until this is unset.
    #[serde(default)]
    pub archived: bool,
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

kind_status!(StackStatus);

seed_values! {
    /// The values of `StackStatus.phase`: the seed's check on the column it mirrors.
    StackPhase { Draft, Validating, Ready, Deploying, Deployed, Error, Archived }
}

impl StackPhase {
    /// The phase as a rollout weighs it.
    pub fn for_rollout(self) -> StackState {
        let readiness = match self {
            Self::Ready | Self::Deployed => Readiness::Deployable,
            Self::Draft | Self::Validating => Readiness::ComingUp,
            Self::Deploying | Self::Error | Self::Archived => Readiness::NotDeployable,
        };
        StackState { phase: self.into(), readiness }
    }
}

/// A `stacks` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct StackRow<'a> {
    name: String,
    description: Option<&'a str>,
    element_id: Uuid,
    template_id: Option<&'a str>,
    configuration: &'a FreeForm,
    llm_optimized: bool,
    llm_optimization_version: Option<&'a str>,
    workflow_id: Option<&'a str>,
}

impl Kind for Stack {
    const ID: KindId = KindId::Stack;
    const TABLE: &'static str = "stacks";
    type Children = NoChildren;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "draft"),
        StatusColumn { field: "lastDeployedAt", column: "last_deployed_at", default: None },
        PLACEMENT_COLUMN,
    ];

    const OBSERVES_OTHERS: bool = true;

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&StackRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                element_id: resolved.id(&element(&spec.element_ref))?,
                template_id: spec.template_id.as_deref(),
                configuration: &spec.configuration,
                llm_optimized: spec.llm_optimized,
                llm_optimization_version: spec.llm_optimization_version.as_deref(),
                workflow_id: spec.workflow_id.as_deref(),
            })?,
            joins: vec![],
        })
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn container_cluster(&self) -> Option<&str> {
        self.spec.container_cluster_ref.as_ref().map(|named| named.name.as_str())
    }

    /// Its rollouts that have not started: they wait for it to be ready, or for the one
    /// running to finish, which its phase tells. Its applications, which run nothing while it
    /// is archived.
    fn awaiting_status(&self, index: &Index) -> Vec<(KindId, String)> {
        let rollouts = index.live_children::<Deployment, _>(self);
        let pending = rollouts.iter().filter(|rollout| super::release::phase_of(rollout) == DeploymentPhase::Pending);
        let applications = index.live_children::<Application, _>(self);
        (pending.map(|rollout| (KindId::Deployment, rollout.name_any())))
            .chain(applications.iter().map(|app| (KindId::Application, app.name_any())))
            .collect()
    }

    fn observe(&self, _: &[DynamicObject], inputs: &Inputs) -> StackStatus {
        super::release::stack_status(self, inputs.index)
    }

    /// A stack works while its applications do (one that needs users is its fault too). A
    /// running rollout is not work under way for its Ready: its applications serve the release
    /// they ran until each is replaced, and stay Ready meanwhile; the phase (`deploying`) and
    /// the Deployment's own status tell of the rollout, and its Element stays `active`.
    fn gathered(&self, inputs: &Inputs) -> Option<Gathered> {
        first_unready(&standings::<Application, _>(inputs.index, self))
    }
}

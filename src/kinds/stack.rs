//! Stack: applications rolled out together; its phase follows them and their rollouts.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::shared::{PLACEMENT_COLUMN, columns, element, first_unready, phase_column, standings};
use super::{Application, Deployment, Gathered, Inputs, Kind, KindId};
use crate::api::apps::DeploymentPhase;
use crate::api::common::{CommonStatus, FreeForm};
use crate::mirror::{Invalid, Reference, Resolved, Rows, StatusColumn};
use crate::provision::{Anchor, Result};

pub use crate::api::apps::Stack;

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
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "draft"),
        StatusColumn { field: "lastDeployedAt", column: "last_deployed_at", default: None },
        PLACEMENT_COLUMN,
    ];

    const OBSERVES_OTHERS: bool = true;

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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

    fn observe(&self, _: &[DynamicObject], inputs: &Inputs) -> Map<String, Value> {
        super::release::stack_status(self, inputs.index)
    }

    /// A stack works while its applications do (one that needs users is its fault too); a
    /// running rollout is work under way.
    fn gathered(&self, inputs: &Inputs) -> Option<Gathered> {
        let unready = first_unready(&standings::<Application, _>(inputs.index, self));
        if let Some(broken @ Gathered::Broken(_)) = unready {
            return Some(broken);
        }
        let rollouts = inputs.index.live_children::<Deployment, _>(self);
        let running =
            rollouts.iter().find(|d| d.status.as_ref().and_then(|s| s.phase) == Some(DeploymentPhase::Running));
        running.map(|rollout| Gathered::Pending(format!("rollout {} is running", rollout.name_any()))).or(unready)
    }
}

//! Deployment: a rollout of a Stack (or one Application) by a User; the rollout itself is
//! `reconcile::deployment` and `deploy`.

use serde::Serialize;
use uuid::Uuid;

use super::shared::{ROLES_THAT_DEPLOY, columns};
use super::{Kind, KindId};
use crate::api::apps::DeploymentType;
use crate::api::common::{CommonStatus, FreeForm};
use crate::mirror::{Invalid, Reference, Resolved, Rows};
use crate::provision::Result;

pub use crate::api::apps::Deployment;

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

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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

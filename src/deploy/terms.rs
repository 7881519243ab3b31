//! The rollout's terms: the Deployment kind writes its spec and status in them, the state
//! machine decides in them.

use serde::{Deserialize, Serialize};

use crate::free_form::FreeForm;

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

/// A stack as a rollout weighs it: the phase users read, and what that means for the rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackState {
    pub phase: &'static str,
    pub readiness: Readiness,
}

/// Whether a stack can take a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready or deployed.
    Deployable,
    /// Still draft or validating: the rollout waits for it, up to its start deadline.
    ComingUp,
    /// Anything else: the rollout fails.
    NotDeployable,
}

/// How an application takes a new release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Container workloads, which the strategies shape.
    Container,
    /// Taken at once, as is: a VM takes its new configuration, and a physical application is
    /// not run by WindFlow. Holds the application type's name, for messages.
    AsIs(&'static str),
}

//! The reasons of conditions and rollouts, shared by every floor that decides one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

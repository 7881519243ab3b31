//! The reasons of conditions and rollouts, shared by every floor that decides one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a condition or a rollout is what it is: the reasons users read in `kubectl describe`,
/// and the ones the controller decides by. Serialized and shown as its name.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    JsonSchema,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
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
    /// The stack's Organization or Environment is inactive: it takes no rollout.
    Suspended,
    /// The object would take its organization beyond a quota: nothing is provisioned for it.
    QuotaExceeded,
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

    /// What users wait for rather than fix: a dependency, the organization, children applied
    /// but not working yet, a rollout queued or waiting for its stack, caches still listing.
    /// Argo CD's health check calls it Progressing (`charts/windflow/argocd/health.lua`, kept
    /// the same by a test), and an object that has never been Ready announces no Warning for it.
    pub fn is_under_way(self) -> bool {
        matches!(
            self,
            Self::WaitingForDependency
                | Self::NoOrganization
                | Self::Progressing
                | Self::Queued
                | Self::WaitingForStack
                | Self::CachesNotSynced
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_cds_health_check_waits_for_the_reasons_under_way() {
        let script = include_str!("../charts/windflow/argocd/health.lua");
        let table =
            script.split("local waiting = {").nth(1).and_then(|rest| rest.split('}').next()).expect("the table");
        let mut waited: Vec<&str> =
            table.split(',').filter_map(|entry| entry.split('=').next()).map(str::trim).collect();
        waited.retain(|name| !name.is_empty());
        waited.sort_unstable();
        let mut under_way: Vec<&str> = <Reason as strum::IntoEnumIterator>::iter()
            .filter(|reason| reason.is_under_way())
            .map(Reason::as_str)
            .collect();
        under_way.sort_unstable();
        assert_eq!(waited, under_way);
    }
}

//! Who acted on a WindFlow object, as the admission webhook records it: creators and changers
//! in the object's annotations (it overwrites whatever a client sends), deleters in the
//! database (`deletion_requests`), where no client writes. The mirror reads them into the
//! audit rows, and a rollout's authorization reads its creator.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The requester of the object's creation; kept through every later change.
pub const CREATED_BY: &str = "windflow.io/created-by";
/// The requester of the object's latest change (create or update).
pub const CHANGED_BY: &str = "windflow.io/changed-by";
/// Where admission once recorded deleters: removed from whatever a client sends, and never read.
pub const DELETED_BY: &str = "windflow.io/deleted-by";

/// A requester as the API server authenticated it, and the WindFlow login it maps to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The Kubernetes username.
    pub username: String,
    /// The Kubernetes groups that matter: every group but the `system:` ones everybody has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The name matched against a User's name or email, after the configured mapping; none
    /// when the mapping leaves nothing (a component of the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

impl Actor {
    /// The actor recorded under `key` in `annotations`; none if absent or not one (only
    /// admission writes these, so a bad value means admission was bypassed).
    pub fn recorded(annotations: &BTreeMap<String, String>, key: &str) -> Option<Self> {
        serde_json::from_str(annotations.get(key)?).ok()
    }

    /// The requester of the object's latest change, which an audit row of a write names; none
    /// once it is being deleted: its deleter is recorded in the database, not on the object.
    pub fn acting_on(meta: &ObjectMeta) -> Option<Self> {
        if meta.deletion_timestamp.is_some() {
            return None;
        }
        Self::recorded(meta.annotations.as_ref()?, CHANGED_BY)
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

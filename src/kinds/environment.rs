//! Environment → workload namespace, quota, limits, default deny.

use serde_json::{Map, Value, json};

use serde::Serialize;

use super::shared::*;
use super::{Kind, KindId};
use crate::api::common::*;
use crate::api::tenancy::*;
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows};
use crate::provision::ChildType;
use crate::provision::types::*;
use crate::provision::{Anchor, Inputs, Placement, ProvisionError, Result};
use kube::Resource;

pub use crate::api::tenancy::Environment;

pub static ENVIRONMENT_TAGS: JoinTable = tag_table("environment_tags", "environment_id");

/// A `environments` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct EnvironmentRow<'a> {
    name: String,
    description: Option<&'a str>,
    environment_type: &'a EnvironmentType,
    is_active: bool,
    configuration: &'a FreeForm,
    resource_limits: &'a FreeForm,
}

impl Kind for Environment {
    const ID: KindId = KindId::Environment;
    const TABLE: &'static str = "environments";
    const CHILD_TYPES: &'static [ChildType] = &[NAMESPACE, RESOURCE_QUOTA, LIMIT_RANGE, NETWORK_POLICY];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

    fn references(&self) -> Vec<Reference> {
        tags(&self.spec.tags).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&EnvironmentRow {
                name: name_of(self),
                description: spec.description.as_deref(),
                environment_type: &spec.environment_type,
                is_active: spec.is_active,
                configuration: &spec.configuration,
                resource_limits: &spec.resource_limits,
            })?,
            joins: vec![tag_rows(&ENVIRONMENT_TAGS, &spec.tags, resolved)?],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Environment(self.meta().name.as_deref().unwrap_or_default())
    }

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        let mut children = vec![NAMESPACE.object(None, namespace, json!({}))];
        let hard = quota(&self.spec.resource_limits.0)?;
        if !hard.is_empty() {
            children.push(RESOURCE_QUOTA.object(Some(namespace), "windflow", json!({ "spec": { "hard": hard } })));
        }
        // With a quota on cpu or memory, pods without requests are refused: give them defaults.
        let defaults = &self.spec.configuration.0;
        let limit = defaults.get("defaultLimits").cloned().unwrap_or(json!({ "cpu": "500m", "memory": "512Mi" }));
        let request = defaults.get("defaultRequests").cloned().unwrap_or(json!({ "cpu": "100m", "memory": "128Mi" }));
        children.push(LIMIT_RANGE.object(
            Some(namespace),
            "windflow",
            json!({ "spec": { "limits": [{ "type": "Container", "default": limit, "defaultRequest": request }] } }),
        ));
        // Nothing reaches the environment's pods unless a Network lets it; they may still
        // resolve names.
        children.push(NETWORK_POLICY.object(
            Some(namespace),
            "windflow-default-deny",
            json!({ "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [{ "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] }],
            } }),
        ));
        children[0]["metadata"]["labels"] = json!({ ENVIRONMENT_TYPE: self.spec.environment_type });
        Ok(children)
    }
}

/// On a workload namespace: production, staging, development…
const ENVIRONMENT_TYPE: &str = "windflow.io/environment-type";

/// ResourceQuota `hard` from `resourceLimits`: `cpu`, `memory`, `storage` and `pods` are short
/// for `limits.cpu`, `limits.memory`, `requests.storage` and `pods`; any quota key passes as is.
fn quota(limits: &Map<String, Value>) -> Result<Map<String, Value>> {
    limits
        .iter()
        .map(|(key, value)| {
            let key = match key.as_str() {
                "cpu" => "limits.cpu",
                "memory" => "limits.memory",
                "storage" => "requests.storage",
                other => other,
            };
            let quantity = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ProvisionError::invalid(
                        &format!("spec.resourceLimits.{key}"),
                        "a quantity is a string or a number",
                    ));
                }
            };
            Ok((key.to_owned(), Value::String(quantity)))
        })
        .collect()
}

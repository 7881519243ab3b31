//! Organization → tenant namespace; Environment → workload namespace, quota, limits, default deny.

use kube::Resource;
use serde_json::{Map, Value, json};

use super::types::{LIMIT_RANGE, NAMESPACE, NETWORK_POLICY, RESOURCE_QUOTA};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, tenant_namespace};
use crate::api::{Environment, Organization};

/// On a workload namespace: production, staging, development…
const ENVIRONMENT_TYPE: &str = "windflow.io/environment-type";

impl Provisioned for Organization {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Organization
    }

    /// The tenant namespace, created or adopted (server-side apply only adds the labels to an
    /// existing one).
    fn desired(&self, _: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        Ok(vec![NAMESPACE.object(None, &tenant_namespace(self), json!({}))])
    }
}

impl Provisioned for Environment {
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

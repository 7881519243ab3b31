//! Environment → workload namespace, quota, limits, default deny.

use kube::{CustomResource, KubeSchema, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::common::{CommonStatus, Reference, Resolved, yes};
use super::shared::{PLACEMENT_COLUMN, columns, metadata, quantities, tag_rows, tag_table, tags};
use super::{Index, Inputs, Kind, KindId, Policy};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::{Anchor, DeletionPolicy, Placement, ProvisionError, Result};

/// A deployment environment of an organization (tables `environments`, `environment_tags`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    category = "windflow",
    shortname = "wfenv",
    status = "CommonStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.environmentType"),
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.isActive"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("an environment name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the environment is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kind of environment (seed `env_type_check`).
    #[serde(default)]
    pub environment_type: EnvironmentType,
    /// `false` suspends the environment: its objects and rows are kept, its workloads run no
    /// pod (VMs halted), its stacks take no rollout, and it is left out of the resource views.
    /// `true` again restores all of it.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Environment-specific configuration (free-form).
    #[serde(default)]
    pub configuration: FreeForm,
    /// Resource limits, such as `{"cpu": "8", "memory": "16Gi"}` (free-form).
    #[serde(default)]
    pub resource_limits: FreeForm,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Seed `env_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentType {
    #[default]
    Development,
    Testing,
    Staging,
    Production,
    DisasterRecovery,
}

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
    const STATUS_COLUMNS: &'static [StatusColumn] = &[PLACEMENT_COLUMN];
    type Children = EnvironmentChild;

    fn references(&self) -> Vec<Reference> {
        tags(&self.spec.tags).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&EnvironmentRow {
                name: self.name_any(),
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

    /// The Policies of its namespace: their Roles go to every environment's namespace, so an
    /// environment that comes, moves or goes changes them.
    fn followers(&self, index: &Index) -> Vec<(KindId, String)> {
        let policies = index.all::<Policy>(self.namespace().as_deref());
        policies.iter().map(|policy| (KindId::Policy, policy.name_any())).collect()
    }

    /// Its workloads, which run only while it is active.
    fn governed(&self, index: &Index) -> Vec<(KindId, String, String)> {
        index.workloads_in(&self.namespace().unwrap_or_default(), Some(&self.name_any()))
    }

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<EnvironmentChild>> {
        let namespace = placement.workload_namespace();
        let environment_type = serde_json::to_value(self.spec.environment_type).ok();
        let labels = environment_type
            .as_ref()
            .and_then(Value::as_str)
            .map(|environment_type| BTreeMap::from([(ENVIRONMENT_TYPE.to_owned(), environment_type.to_owned())]));
        let mut children: Vec<EnvironmentChild> = vec![
            Namespace { metadata: ObjectMeta { labels, ..metadata(None, namespace) }, ..Namespace::default() }.into(),
        ];
        let hard = quantities("spec.resourceLimits", &self.spec.resource_limits.0, quota_key)?;
        if !hard.is_empty() {
            children.push(
                ResourceQuota {
                    metadata: metadata(Some(namespace), "windflow"),
                    spec: Some(ResourceQuotaSpec { hard: Some(hard), ..ResourceQuotaSpec::default() }),
                    ..ResourceQuota::default()
                }
                .into(),
            );
        }
        // With a quota on cpu or memory, pods without requests are refused: give them defaults.
        let defaults = &self.spec.configuration.0;
        let container_default = |field: &str, cpu: &str, memory: &str| match defaults.get(field) {
            Some(Value::Object(given)) => quantities(&format!("spec.configuration.{field}"), given, str::to_owned),
            Some(_) => Err(ProvisionError::invalid(&format!("spec.configuration.{field}"), "an object of quantities")),
            None => Ok(BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpu.to_owned())),
                ("memory".to_owned(), Quantity(memory.to_owned())),
            ])),
        };
        children.push(EnvironmentChild::LimitRange(LimitRange {
            metadata: metadata(Some(namespace), "windflow"),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".into(),
                    default: Some(container_default("defaultLimits", "500m", "512Mi")?),
                    default_request: Some(container_default("defaultRequests", "100m", "128Mi")?),
                    ..LimitRangeItem::default()
                }],
            }),
        }));
        // Nothing reaches the environment's pods unless a Network lets it; they may still
        // resolve names.
        let dns = |protocol: &str| NetworkPolicyPort {
            protocol: Some(protocol.to_owned()),
            port: Some(IntOrString::Int(53)),
            ..NetworkPolicyPort::default()
        };
        children.push(EnvironmentChild::NetworkPolicy(NetworkPolicy {
            metadata: metadata(Some(namespace), "windflow-default-deny"),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    ports: Some(vec![dns("UDP"), dns("TCP")]),
                    ..NetworkPolicyEgressRule::default()
                }]),
                ..NetworkPolicySpec::default()
            }),
        }));
        Ok(children)
    }
}

child_set! {
    /// What an Environment provisions: its workload namespace, the namespace's quota and
    /// container defaults, and the policy that denies what no Network allows.
    EnvironmentChild { Namespace, ResourceQuota, LimitRange, NetworkPolicy }
}

/// On a workload namespace: production, staging, development…
const ENVIRONMENT_TYPE: &str = "windflow.io/environment-type";

/// A ResourceQuota `hard` key from a `resourceLimits` key: `cpu`, `memory` and `storage` are
/// short for `limits.cpu`, `limits.memory` and `requests.storage`; any quota key passes as is.
fn quota_key(key: &str) -> String {
    match key {
        "cpu" => "limits.cpu",
        "memory" => "limits.memory",
        "storage" => "requests.storage",
        other => other,
    }
    .to_owned()
}

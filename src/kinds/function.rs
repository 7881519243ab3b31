//! Function: a named permission and the Kubernetes verbs it grants.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Reference, Resolved};
use super::shared::columns;
use super::{Kind, KindId};
use crate::mirror::{Invalid, Rows};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// A named permission, such as `stack.deploy`, and the Kubernetes access it grants
/// (table `functions`). Policies' rules grant functions.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Function",
    category = "windflow",
    shortname = "wffn",
    status = "CommonStatus",
    printcolumn(name = "Category", type_ = "string", json_path = ".spec.category"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100 && self.metadata.name.contains('.')").message("a function name is dotted, like stack.deploy, with at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// What the function allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A grouping for display, such as `deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub category: Option<String>,
    /// The Kubernetes access the function grants.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// Kubernetes access: verbs on resources of API groups, as in an RBAC rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// API groups (`""` is the core group).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources, such as `deployments`.
    #[schemars(length(min = 1))]
    pub resources: Vec<String>,
    /// Verbs.
    #[schemars(length(min = 1))]
    pub verbs: Vec<Verb>,
}

/// A Kubernetes API verb.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Deletecollection,
}

/// A `functions` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct FunctionRow<'a> {
    name: String,
    description: Option<&'a str>,
    category: Option<&'a str>,
    permissions: &'a Vec<Grant>,
}

/// One permission: an API group, a resource and a verb, each possibly `*`.
pub type Permission = (String, String, String);

impl Function {
    /// Its grants as RBAC rules.
    pub fn rbac_rules(&self) -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
        self.spec
            .grants
            .iter()
            .map(|grant| k8s_openapi::api::rbac::v1::PolicyRule {
                api_groups: Some(grant.api_groups.clone()),
                resources: Some(grant.resources.clone()),
                verbs: grant.verbs.iter().map(Verb::name).collect(),
                ..Default::default()
            })
            .collect()
    }

    /// What its grants allow, one permission at a time: what its granter must hold.
    pub fn permissions(&self) -> std::collections::BTreeSet<Permission> {
        let mut permissions = std::collections::BTreeSet::new();
        for grant in &self.spec.grants {
            for group in &grant.api_groups {
                for resource in &grant.resources {
                    permissions.extend(grant.verbs.iter().map(|verb| (group.clone(), resource.clone(), verb.name())));
                }
            }
        }
        permissions
    }
}

impl Verb {
    /// The verb as RBAC names it (serde's lower-case name).
    pub fn name(&self) -> String {
        serde_json::to_value(self).ok().and_then(|verb| verb.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

impl Kind for Function {
    const ID: KindId = KindId::Function;
    const TABLE: &'static str = "functions";
    type Children = NoChildren;

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn rows(&self, _: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&FunctionRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                category: spec.category.as_deref(),
                permissions: &spec.grants,
            })?,
            joins: vec![],
        })
    }
}

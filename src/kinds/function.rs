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

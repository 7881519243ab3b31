//! Tag: a label users put on users, groups, policies, environments and elements.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Reference, Resolved};
use super::shared::columns;
use super::{Kind, KindId};
use crate::mirror::{Invalid, Rows};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// A label applied to users, groups, policies, environments and elements (table `tags`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Tag",
    category = "windflow",
    shortname = "wftag",
    status = "CommonStatus",
    printcolumn(name = "Color", type_ = "string", json_path = ".spec.color"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 63").message("a tag name has at most 63 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct TagSpec {
    /// What the tag means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Display color, `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub color: Option<String>,
}

/// A `tags` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct TagRow<'a> {
    name: String,
    description: Option<&'a str>,
    color: Option<&'a str>,
}

impl Kind for Tag {
    const ID: KindId = KindId::Tag;
    const TABLE: &'static str = "tags";
    type Children = NoChildren;

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn rows(&self, _: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&TagRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                color: spec.color.as_deref(),
            })?,
            joins: vec![],
        })
    }
}

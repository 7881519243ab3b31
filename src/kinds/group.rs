//! Group: users of one organization, mirrored with their tags.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Reference, Resolved};
use super::shared::{columns, members, tag_rows, tag_table, tags};
use super::{Kind, KindId};
use crate::mirror::{Invalid, JoinTable, Rows};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// Users of one organization grouped together (tables `groups`, `user_groups`, `group_tags`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Group",
    namespaced,
    category = "windflow",
    shortname = "wfgroup",
    status = "CommonStatus",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) >= 2 && size(self.metadata.name) <= 100").message("a group name has 2 to 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    /// What the group is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of Users, each a member of the group's organization.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 3, max = 50)))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n == m))").message("a user is listed once"))]
    pub members: Vec<String>,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

pub static USER_GROUPS: JoinTable =
    JoinTable { table: "user_groups", owner: "group_id", key: &["user_id"], values: &[] };
pub static GROUP_TAGS: JoinTable = tag_table("group_tags", "group_id");

/// A `groups` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct GroupRow<'a> {
    name: String,
    description: Option<&'a str>,
}

impl Kind for Group {
    const ID: KindId = KindId::Group;
    const TABLE: &'static str = "groups";
    type Children = NoChildren;

    fn references(&self) -> Vec<Reference> {
        self.spec
            .members
            .iter()
            .enumerate()
            .map(|(i, user)| Reference::new(KindId::User, user, format!("spec.members[{i}]")))
            .chain(tags(&self.spec.tags))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let users = self.references().into_iter().filter(|r| r.kind == KindId::User);
        Ok(Rows {
            row: columns(&GroupRow { name: self.name_any(), description: spec.description.as_deref() })?,
            joins: vec![members(&USER_GROUPS, users, resolved)?, tag_rows(&GROUP_TAGS, &self.spec.tags, resolved)?],
        })
    }
}

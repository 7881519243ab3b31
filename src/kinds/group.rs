//! Group: users of one organization, mirrored with their tags.

use kube::ResourceExt;
use serde::Serialize;

use super::shared::{columns, members, tag_rows, tag_table, tags};
use super::{Kind, KindId};
use crate::api::common::CommonStatus;
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows};
use crate::provision::Result;

pub use crate::api::tenancy::Group;

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

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

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

//! Tag: a label users put on users, groups, policies, environments and elements.

use kube::ResourceExt;
use serde::Serialize;

use super::shared::columns;
use super::{Kind, KindId};
use crate::api::common::CommonStatus;
use crate::mirror::{Invalid, Reference, Resolved, Rows};
use crate::provision::Result;

pub use crate::api::tenancy::Tag;

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

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

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

//! Function: a named permission and the Kubernetes verbs it grants.

use kube::ResourceExt;
use serde::Serialize;

use super::shared::columns;
use super::{Kind, KindId};
use crate::api::common::CommonStatus;
use crate::api::tenancy::Grant;
use crate::mirror::{Invalid, Reference, Resolved, Rows};
use crate::provision::Result;

pub use crate::api::tenancy::Function;

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

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

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

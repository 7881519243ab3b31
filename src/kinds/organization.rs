//! Organization → its tenant namespace; members become `user_organizations` rows.

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use super::shared::{columns, linked, metadata, typed};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy, FreeForm, FreeFormList};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows};
use crate::provision::ChildType;
use crate::provision::types::NAMESPACE;
use crate::provision::{Anchor, Placement, Result, tenant_namespace};

pub use crate::api::tenancy::Organization;

pub static USER_ORGANIZATIONS: JoinTable = JoinTable {
    table: "user_organizations",
    owner: "organization_id",
    key: &["user_id"],
    values: &["role", "is_default", "permissions"],
};

/// A `organizations` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct OrganizationRow<'a> {
    name: &'a str,
    description: Option<&'a str>,
    is_active: bool,
    settings: &'a FreeForm,
    quotas: &'a FreeForm,
    billing_info: &'a FreeForm,
    tenant_namespace: &'a str,
}

/// A `user_organizations` row's own columns.
#[derive(Serialize)]
struct Membership<'a> {
    role: &'a str,
    is_default: bool,
    permissions: &'a FreeFormList,
}

impl Kind for Organization {
    const ID: KindId = KindId::Organization;
    const TABLE: &'static str = "organizations";
    const CHILD_TYPES: &'static [ChildType] = &[NAMESPACE];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        self.spec
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Reference::new(KindId::User, &m.user, format!("spec.members[{i}].user")))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let name = self.name_any();
        let members = self.references().into_iter().zip(&spec.members).map(|(user, m)| {
            (user, Membership { role: m.role.as_str(), is_default: m.is_default, permissions: &m.permissions })
        });
        Ok(Rows {
            row: columns(&OrganizationRow {
                name: &name,
                description: spec.description.as_deref(),
                is_active: spec.is_active,
                settings: &spec.settings,
                quotas: &spec.quotas,
                billing_info: &spec.billing_info,
                tenant_namespace: spec.namespace.as_deref().unwrap_or(&name),
            })?,
            joins: vec![linked(&USER_ORGANIZATIONS, members, resolved)?],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Organization
    }

    /// The tenant namespace: created, or taken only when it is already this organization's
    /// (or handed over with `windflow.io/adopt`); any other is a `NamespaceConflict`.
    fn desired(&self, _: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        Ok(vec![typed(&Namespace { metadata: metadata(None, &tenant_namespace(self)), ..Namespace::default() })?])
    }
}

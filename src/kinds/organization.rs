//! Organization → its tenant namespace; members become `user_organizations` rows.

use k8s_openapi::api::core::v1::Namespace;
use kube::{CustomResource, KubeSchema, Resource, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Reference, Resolved, yes};
use super::quota::Quotas;
use super::shared::{columns, linked, metadata};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::{FreeForm, FreeFormList};
use crate::mirror::views::OrganizationResources;
use crate::mirror::{Invalid, JoinTable, Rows};
use crate::provision::{Anchor, DeletionPolicy, Placement, Result};

/// A tenant of the platform (seed table `organizations`, members in `user_organizations`). It
/// owns a tenant namespace; namespaced WindFlow objects live there.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Organization",
    category = "windflow",
    shortname = "wforg",
    status = "OrganizationStatus",
    printcolumn(name = "Namespace", type_ = "string", json_path = ".spec.namespace"),
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.isActive"),
    printcolumn(name = "Stacks", type_ = "integer", json_path = ".status.resources.stacks", priority = 1),
    printcolumn(name = "Running", type_ = "integer", json_path = ".status.resources.activeDeployments", priority = 1),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) >= 2 && size(self.metadata.name) <= 100").message("an organization name has 2 to 100 characters")
)]
#[x_kube(validation = Rule::new("has(self.__namespace__) == has(oldSelf.__namespace__)").message("namespace is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the organization is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `false` suspends the organization: its objects and rows are kept, its workloads run no
    /// pod (VMs halted), its stacks take no rollout, its database login cannot log in, and it
    /// is left out of the resource views. `true` again restores all of it.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// The tenant namespace; defaults to the organization's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("namespace is immutable"))]
    pub namespace: Option<String>,
    /// Organization-wide settings (free-form).
    #[serde(default)]
    pub settings: FreeForm,
    /// What the organization may hold (see the README's "Quotas"): enforced at `kubectl apply`,
    /// and by the operator for what got past (`QuotaExceeded`).
    #[serde(default)]
    pub quotas: Quotas,
    /// Billing metadata (free-form).
    #[serde(default)]
    pub billing_info: FreeForm,
    /// Users who belong to the organization, each with a role.
    #[serde(default)]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.user == m.user))").message("a user is listed once"))]
    #[x_kube(validation = Rule::new("self.filter(m, m.isDefault).size() <= 1").message("at most one member is the default"))]
    pub members: Vec<Member>,
}

/// Status of an Organization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// What the organization runs, from the materialized view `organization_resources`
    /// (refreshed a few seconds after changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<OrganizationResources>,
    /// What its objects within its quotas use, with the keys of `spec.quotas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Quotas>,
}

kind_status!(OrganizationStatus);

/// A user's membership of an organization.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Name of the User.
    #[schemars(length(min = 3, max = 50))]
    pub user: String,
    /// What the user may do in the organization.
    #[serde(default)]
    pub role: MemberRole,
    /// Whether this is the organization the user lands in.
    #[serde(default)]
    pub is_default: bool,
    /// Organization-specific permissions (free-form list).
    #[serde(default)]
    pub permissions: FreeFormList,
}

/// A member's role (seed `user_org_role_check`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Admin,
    #[default]
    Member,
    Viewer,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }
}

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
    quotas: &'a Quotas,
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

/// The organization whose tenant namespace is `namespace`. Should two claim it, the older one:
/// the database lets only the first owner have it. The one rule of the mirror, provisioning and
/// `render`.
pub fn tenant_of<O: std::ops::Deref<Target = Organization>>(
    organizations: impl IntoIterator<Item = O>,
    namespace: &str,
) -> Option<O> {
    organizations.into_iter().filter(|org| tenant_namespace(org) == namespace).min_by(|a, b| {
        (a.meta().creation_timestamp.as_ref(), &a.meta().name)
            .cmp(&(b.meta().creation_timestamp.as_ref(), &b.meta().name))
    })
}

/// The tenant namespace of an organization: `spec.namespace`, else its name.
pub fn tenant_namespace(org: &Organization) -> String {
    org.spec.namespace.clone().unwrap_or_else(|| org.name_any())
}

child_set! {
    /// What an Organization provisions: its tenant namespace.
    OrganizationChild { Namespace }
}

impl Kind for Organization {
    const ID: KindId = KindId::Organization;
    const TABLE: &'static str = "organizations";
    type Children = OrganizationChild;

    /// Its tenant's workloads, which run only while it is active, and the objects beyond its
    /// quotas, which may fit new ones.
    fn governed(&self, index: &super::Index) -> Vec<(KindId, String, String)> {
        let namespace = tenant_namespace(self);
        let mut governed = index.workloads_in(&namespace, None);
        governed
            .extend(index.quotas(&namespace).beyond.into_keys().map(|(kind, name)| (kind, name, namespace.clone())));
        governed
    }

    /// What its objects within its quotas use.
    fn observe_others(&self, inputs: &Inputs) -> OrganizationStatus {
        OrganizationStatus { usage: Some(super::quota::usage(self, inputs.index)), ..Default::default() }
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
    fn desired(&self, _: &Placement, _: &Inputs) -> Result<Vec<OrganizationChild>> {
        Ok(vec![Namespace { metadata: metadata(None, &tenant_namespace(self)), ..Namespace::default() }.into()])
    }
}

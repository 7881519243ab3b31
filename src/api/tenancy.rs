//! Who uses WindFlow and what they may do: organizations, users, groups, tags, functions,
//! policies, and the environments an organization deploys to.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, DeletionPolicy, FreeForm, FreeFormList};

fn yes() -> bool {
    true
}

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
    /// An inactive organization keeps its objects but is left out of the resource views.
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
    /// Quotas (free-form).
    #[serde(default)]
    pub quotas: FreeForm,
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
}

/// The counts of `organization_resources`: active environments and elements, and what they hold.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationResources {
    pub environments: i64,
    pub elements: i64,
    pub stacks: i64,
    pub applications: i64,
    /// Deployments in phase running.
    pub active_deployments: i64,
    /// Total size of the volumes, in GB.
    pub storage_gb: f64,
    pub clusters: i64,
    pub vms: i64,
}

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

/// A person who uses WindFlow (seed table `users`). The user name is the object's name. No
/// secret is kept in the object: a password hash, if any, comes from a referenced Secret.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "User",
    category = "windflow",
    shortname = "wfuser",
    status = "CommonStatus",
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.isActive"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) >= 3 && size(self.metadata.name) <= 50").message("a user name has 3 to 50 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// E-mail address, unique across users.
    #[schemars(length(max = 255), regex(pattern = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"))]
    pub email: String,
    /// The Secret key holding the password hash. Without it the account has no password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Whether the user administers the whole platform.
    #[serde(default)]
    pub is_superadmin: bool,
    /// An inactive user cannot act.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Whether the e-mail address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Profile (free-form).
    #[serde(default)]
    pub profile: FreeForm,
    /// Preferences (free-form).
    #[serde(default)]
    pub preferences: FreeForm,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A key of a Secret in a given namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Secret namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Key within the Secret.
    #[serde(default = "password_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn password_key() -> String {
    "password".into()
}

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

/// Rules granting functions to users and groups (tables `policies`, `rules`, `policy_users`,
/// `policy_groups`, `policy_tags`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Policy",
    namespaced,
    category = "windflow",
    shortname = "wfpolicy",
    status = "CommonStatus",
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.isActive"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) >= 2 && size(self.metadata.name) <= 100").message("a policy name has 2 to 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the policy grants and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An inactive policy grants nothing.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// The functions granted, each optionally limited to an environment or an element.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// Who the policy applies to.
    #[serde(default)]
    pub subjects: Subjects,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One granted function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Name of the Function granted.
    #[schemars(length(min = 1, max = 100))]
    pub function: String,
    /// Limits the rule to this Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Limits the rule to this Element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// Extra conditions (free-form).
    #[serde(default)]
    pub conditions: FreeForm,
}

/// Users and groups a policy applies to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subjects {
    /// Names of Users, members of the policy's organization.
    #[serde(default)]
    pub users: Vec<String>,
    /// Names of Groups in the policy's namespace.
    #[serde(default)]
    pub groups: Vec<String>,
}

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
    /// An inactive environment is left out of the resource views.
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

//! User: a person of the platform, mirrored; a password hash comes from a Secret.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Reference, Resolved, yes};
use super::shared::{LOCKED_PASSWORD, columns, tag_rows, tag_table, tags};
use super::{Kind, KindId};
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows};
use crate::provision::Result;
use crate::provision::children::NoChildren;

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

pub static USER_TAGS: JoinTable = tag_table("user_tags", "user_id");

impl User {
    /// Whether `email` is this User's, in any case: a login names a User by name or by email.
    pub fn has_email(&self, email: &str) -> bool {
        self.spec.email.eq_ignore_ascii_case(email)
    }
}

/// A `users` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct UserRow<'a> {
    username: String,
    email: &'a String,
    hashed_password: &'a str,
    is_superadmin: bool,
    is_active: bool,
    email_verified: bool,
    profile: &'a FreeForm,
    preferences: &'a FreeForm,
}

impl Kind for User {
    const ID: KindId = KindId::User;
    const TABLE: &'static str = "users";
    type Children = NoChildren;

    fn references(&self) -> Vec<Reference> {
        tags(&self.spec.tags).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&UserRow {
                username: self.name_any(),
                email: &spec.email,
                hashed_password: resolved.password_hash.as_deref().unwrap_or(LOCKED_PASSWORD),
                is_superadmin: spec.is_superadmin,
                is_active: spec.is_active,
                email_verified: spec.email_verified,
                profile: &spec.profile,
                preferences: &spec.preferences,
            })?,
            joins: vec![tag_rows(&USER_TAGS, &spec.tags, resolved)?],
        })
    }

    fn password_secret(&self) -> Option<(&str, &str, &str)> {
        self.spec.password_secret_ref.as_ref().map(|s| (s.namespace.as_str(), s.name.as_str(), s.key.as_str()))
    }
}

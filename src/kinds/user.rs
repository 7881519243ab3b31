//! User: a person of the platform, mirrored; a password hash comes from a Secret.

use kube::ResourceExt;
use serde::Serialize;

use super::shared::{LOCKED_PASSWORD, columns, tag_rows, tag_table, tags};
use super::{Kind, KindId};
use crate::api::common::{CommonStatus, FreeForm};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows};
use crate::provision::Result;

pub use crate::api::tenancy::User;

pub static USER_TAGS: JoinTable = tag_table("user_tags", "user_id");

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

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

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

//! Tenant logins: one PostgreSQL login role per organization, to which row-level security
//! (migration 0010) gives that organization's rows and nothing else.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgPool;
use uuid::Uuid;

use super::store::{Result, StoreError};

/// The login of `organization`, made if missing with `password`; with `rotate`, an existing
/// one takes `password` too. Returns the role's name.
pub async fn ensure(pool: &PgPool, organization: Uuid, password: &str, rotate: bool) -> Result<String> {
    sqlx::query_scalar("SELECT windflow_tenant_login($1, $2, $3)::text")
        .bind(organization)
        .bind(password)
        .bind(rotate)
        .fetch_one(pool)
        .await
        .map_err(StoreError::Unavailable)
}

/// Lets the login of `organization` log in, or not (NOLOGIN, while it is suspended); only a
/// change is written.
pub async fn allow_login(pool: &PgPool, organization: Uuid, allowed: bool) -> Result<()> {
    sqlx::query("SELECT windflow_tenant_login_allowed($1, $2)")
        .bind(organization)
        .bind(allowed)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::Unavailable)
}

/// Drops the login of `organization`; nothing to do when there is none.
pub async fn drop_login(pool: &PgPool, organization: Uuid) -> Result<()> {
    sqlx::query("SELECT windflow_drop_tenant_login($1)")
        .bind(organization)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::Unavailable)
}

/// A new password: 24 random bytes, URL-safe base64 (nothing to quote in a URI).
pub fn new_password() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 24];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

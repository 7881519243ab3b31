//! The Organization's lifecycle: its namespace, its counts from the view
//! `organization_resources`, and its tenant's database login with the Secret that carries it.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};
use uuid::Uuid;

use super::provisioning::provision;
use super::status::Report;
use super::{Context, Error, Lifecycle, Result};
use crate::FIELD_MANAGER;
use crate::kinds::Organization;
use crate::kinds::organization::{OrganizationStatus, tenant_namespace};
use crate::mirror::tenants;
use crate::provision::{TenantDatabase, labels};

/// The Secret in the tenant namespace that carries the organization's database login, with
/// the keys CloudNativePG's application Secrets have.
pub const DATABASE_SECRET: &str = "windflow-database";

/// An organization provisions its namespace, shows its counts from the view
/// `organization_resources` (a database fault leaves the last ones shown), and keeps its
/// tenant's login and Secret.
pub struct Tenant;

impl Lifecycle<Organization> for Tenant {
    fn progress<'a>(
        obj: &'a Organization,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<(Report<OrganizationStatus>, Action)>> {
        Box::pin(async move {
            let (mut report, action) = provision(obj, ctx).await?;
            let id = organization_id(obj);
            // The login's Secret lands in the namespace once it is the organization's.
            let edition = LoginChecks::edition(obj);
            if let (true, Some(database)) = (report.ready.ok, &ctx.config.tenant_database)
                && ctx.logins.due(id, edition, Instant::now())
            {
                login(obj, id, ctx, database).await?;
                ctx.logins.checked(id, edition, Instant::now());
            }
            match crate::mirror::views::organization_resources(&ctx.pool, id).await {
                Ok(Some(resources)) => report.observed.resources = Some(resources),
                Ok(None) => {}
                Err(error) => warn!(%error, "could not read the organization's resource counts"),
            }
            Ok((report, action))
        })
    }

    /// The login goes before the row (its mapping would go with the row, the role would not).
    fn retire<'a>(obj: &'a Organization, ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let id = organization_id(obj);
            tenants::drop_login(&ctx.pool, id).await?;
            ctx.logins.forget(id);
            Ok(())
        })
    }
}

/// When each organization's login was last checked (its Secret read, its role kept), and at
/// which edition of the object (its spec, labels and annotations). Its counts move with every
/// object of the tenant, and each move reconciles it: the login is checked again when users
/// change the object, else once [`LoginChecks::RECHECK`] has passed (at the next resync, within
/// 10 minutes), not at every count.
#[derive(Debug, Default)]
pub struct LoginChecks(Mutex<HashMap<Uuid, (u64, Instant)>>);

impl LoginChecks {
    pub const RECHECK: Duration = Duration::from_secs(5 * 60);

    /// What users last changed of the organization: its generation, labels and annotations.
    pub fn edition(org: &Organization) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        (org.meta().generation, org.labels(), org.annotations()).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether the login of `organization`, now at `edition`, is to be checked at `now`.
    pub fn due(&self, organization: Uuid, edition: u64, now: Instant) -> bool {
        let checks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        checks.get(&organization).is_none_or(|(checked_edition, at)| {
            *checked_edition != edition || now.saturating_duration_since(*at) >= Self::RECHECK
        })
    }

    pub fn checked(&self, organization: Uuid, edition: u64, now: Instant) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(organization, (edition, now));
    }

    pub fn forget(&self, organization: Uuid) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&organization);
    }
}

fn organization_id(obj: &Organization) -> Uuid {
    obj.uid().and_then(|uid| uid.parse().ok()).unwrap_or_default()
}

/// Keeps the organization's login: its password is the Secret's; a Secret that is missing or
/// has no password (deleted to rotate it) gets a new one, set on the role first. It logs in
/// only while the organization is active.
async fn login(org: &Organization, id: Uuid, ctx: &Context, database: &TenantDatabase) -> Result<()> {
    let namespace = tenant_namespace(org);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets.get_opt(DATABASE_SECRET).await?;
    let kept = existing
        .as_ref()
        .and_then(|secret| secret.data.as_ref()?.get("password"))
        .map(|password| String::from_utf8_lossy(&password.0).into_owned());
    let (password, rotate) = match kept {
        Some(password) => (password, false),
        None => {
            (tenants::new_password().map_err(|_| Error::Provisioning("no randomness for a password".into()))?, true)
        }
    };
    let role = tenants::ensure(&ctx.pool, id, &password, rotate).await?;
    // A suspended organization keeps its login and its Secret; neither logs in.
    tenants::allow_login(&ctx.pool, id, org.spec.is_active).await?;
    if !rotate {
        return Ok(());
    }
    let secret = credentials(org, &namespace, &role, &password, database);
    secrets.patch(DATABASE_SECRET, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret)).await?;
    info!(%role, %namespace, "tenant database login written");
    Ok(())
}

/// The Secret of a login, owned by the organization (deleted with it).
fn credentials(org: &Organization, namespace: &str, role: &str, password: &str, db: &TenantDatabase) -> Secret {
    let uri = format!("postgresql://{role}:{password}@{}:{}/{}", db.host, db.port, db.dbname);
    let data = [
        ("host", db.host.clone()),
        ("port", db.port.to_string()),
        ("dbname", db.dbname.clone()),
        ("user", role.to_owned()),
        ("password", password.to_owned()),
        ("uri", uri),
    ];
    let name = org.name_any();
    Secret {
        metadata: ObjectMeta {
            name: Some(DATABASE_SECRET.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_owned(), "windflow".to_owned()),
                (labels::ORGANIZATION.to_owned(), name.clone()),
                (labels::OWNER_KIND.to_owned(), "Organization".to_owned()),
                (labels::OWNER_NAME.to_owned(), name),
                (labels::OWNER_UID.to_owned(), org.uid().unwrap_or_default()),
            ])),
            owner_references: org.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(data.into_iter().map(|(key, value)| (key.to_owned(), ByteString(value.into_bytes()))).collect()),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_checked_again_when_its_spec_changes_or_after_a_while() {
        let checks = LoginChecks::default();
        let org = |generation: i64, annotations: serde_json::Value| -> Organization {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "windflow.io/v1alpha1", "kind": "Organization",
                "metadata": { "name": "acme", "generation": generation, "annotations": annotations },
                "spec": { "name": "ACME" },
            }))
            .expect("an Organization")
        };
        let first = LoginChecks::edition(&org(1, serde_json::json!({})));
        assert_eq!(first, LoginChecks::edition(&org(1, serde_json::json!({}))), "the same edition");
        let (acme, globex, start) = (Uuid::from_u128(1), Uuid::from_u128(2), Instant::now());
        assert!(checks.due(acme, first, start), "never checked");
        checks.checked(acme, first, start);
        assert!(!checks.due(acme, first, start + Duration::from_secs(30)), "its counts moved only");
        assert!(checks.due(globex, first, start), "another organization");
        let edited = LoginChecks::edition(&org(2, serde_json::json!({})));
        let touched = LoginChecks::edition(&org(1, serde_json::json!({ "example.org/touched": "rotate" })));
        assert!(checks.due(acme, edited, start + Duration::from_secs(30)), "its spec changed");
        assert!(checks.due(acme, touched, start + Duration::from_secs(30)), "its annotations changed");
        assert!(checks.due(acme, first, start + LoginChecks::RECHECK), "a while later");
        checks.forget(acme);
        assert!(checks.due(acme, first, start), "deleted, made again");
    }
}

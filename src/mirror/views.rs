//! The seed's materialized views: refreshed after changes, read for an Organization's status.

use sqlx::PgPool;
use uuid::Uuid;

use crate::api::tenancy::OrganizationResources;

/// A row of `organization_resources`, in the order `organization_resources` selects it.
type Counts = (i64, i64, i64, i64, i64, Option<f64>, i64, i64);

/// Refreshes both views without locking out readers (each has the unique index that needs).
pub async fn refresh(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("REFRESH MATERIALIZED VIEW CONCURRENTLY active_deployments").execute(pool).await?;
    sqlx::query("REFRESH MATERIALIZED VIEW CONCURRENTLY organization_resources").execute(pool).await?;
    Ok(())
}

/// An organization's counts as of the last refresh; `None` before its first.
pub async fn organization_resources(
    pool: &PgPool,
    organization: Uuid,
) -> Result<Option<OrganizationResources>, sqlx::Error> {
    let row: Option<Counts> = sqlx::query_as(
        "SELECT environment_count, element_count, stack_count, application_count, active_deployments, \
                total_storage_gb::float8, cluster_count, vm_count \
         FROM organization_resources WHERE organization_id = $1",
    )
    .bind(organization)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(environments, elements, stacks, applications, active_deployments, storage, clusters, vms)| {
        OrganizationResources {
            environments,
            elements,
            stacks,
            applications,
            active_deployments,
            storage_gb: storage.unwrap_or_default(),
            clusters,
            vms,
        }
    }))
}

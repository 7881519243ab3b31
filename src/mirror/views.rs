//! The seed's materialized views: refreshed after changes, read for an Organization's status.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use serde::{Deserialize, Serialize};

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

/// Refreshes both views without locking out readers (each has the unique index that needs),
/// as their owner: the runtime role owns nothing (migration 0015).
pub async fn refresh(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT windflow_refresh_views()").execute(pool).await?;
    Ok(())
}

const COUNTS: &str = "SELECT organization_id, environment_count, element_count, stack_count, application_count, \
     active_deployments, total_storage_gb::float8, cluster_count, vm_count FROM organization_resources";

/// A row of `organization_resources`, in the order [`COUNTS`] selects it.
type Row = (Uuid, i64, i64, i64, i64, i64, Option<f64>, i64, i64);

fn resources(
    (_, environments, elements, stacks, applications, active_deployments, storage, clusters, vms): Row,
) -> OrganizationResources {
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
}

/// An organization's counts as of the last refresh; `None` before its first.
pub async fn organization_resources(
    pool: &PgPool,
    organization: Uuid,
) -> Result<Option<OrganizationResources>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!("{COUNTS} WHERE organization_id = $1")))
        .bind(organization)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(resources))
}

/// Every organization's counts as of the last refresh.
pub async fn all_organization_resources(pool: &PgPool) -> Result<HashMap<Uuid, OrganizationResources>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(COUNTS).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|row| (row.0, resources(row))).collect())
}

//! A rollout's steps, both ways: `deployment_events` and `deployment_logs` rows written in the
//! transaction that records the state they report, then Kubernetes Events published from those
//! rows (an outbox), each under a name derived from its row so that it is created once.

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::Reporter;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::deploy::{Rollout, Step, Transition};
use crate::kinds::deployment::Deployment;

/// What went wrong recording or publishing steps; every kind of it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the row of deployment {0} is not written yet")]
    RowMissing(Uuid),
    #[error("the recorded rollout of deployment {0} changed meanwhile; it is read again")]
    Stale(Uuid),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The recorded rollout of a deployment row; `None` before its first step.
pub async fn load(pool: &PgPool, id: Uuid) -> Result<Option<Rollout>> {
    let row: Option<Option<Json<Rollout>>> =
        sqlx::query_scalar("SELECT result -> 'rollout' FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    match row {
        Some(rollout) => Ok(rollout.map(|Json(rollout)| rollout)),
        None => Err(Error::RowMissing(id)),
    }
}

/// Records a transition: the deployment's status columns and recorded state, its steps' event
/// and log rows, and a rolled-back parent, in one statement (one transaction). It applies only
/// over the state it was computed from (`before`): a concurrent writer makes it a conflict.
/// Returns how many event rows were new.
pub async fn record(
    pool: &PgPool,
    id: Uuid,
    before: Option<&Rollout>,
    transition: &Transition,
    parent: Option<Uuid>,
) -> Result<i64> {
    let rollout = &transition.rollout;
    let events: Vec<Value> = transition.steps.iter().map(event_row).collect();
    let logs: Vec<Value> = transition.steps.iter().map(log_row).collect();
    let parent = parent.filter(|_| transition.rolls_back_parent);
    let row: (bool, i64) = sqlx::query_as(RECORD)
        .bind(id)
        .bind(rollout.phase.as_str())
        .bind(rollout.started_at.map(|t| t.to_string()))
        .bind(rollout.completed_at.map(|t| t.to_string()))
        .bind(Json(rollout))
        .bind(before.map(Json))
        .bind(Json(&events))
        .bind(Json(&logs))
        .bind(parent)
        .bind(format!("rolled back by deployment {id}"))
        .fetch_one(pool)
        .await?;
    match row {
        (true, events) => Ok(events),
        (false, _) => Err(Error::Stale(id)),
    }
}

fn event_row(step: &Step) -> Value {
    let mut data = step.data.clone();
    data["reason"] = json!(step.reason);
    json!({ "step": step.key, "event_type": step.event_type, "level": step.level.as_str(),
            "message": step.message, "event_data": data })
}

fn log_row(step: &Step) -> Value {
    json!({ "step": step.key, "level": step.level.as_str(),
            "source": step.application.as_deref().unwrap_or("rollout"), "message": step.message })
}

/// `$1` id, `$2` status, `$3` started_at, `$4` completed_at, `$5` the new rollout, `$6` the one
/// it was computed from, `$7` event rows, `$8` log rows, `$9` the parent to mark rolled back,
/// `$10` the parent's message. Events take `clock_timestamp()`, so they sort in step order.
const RECORD: &str = "\
WITH up AS (
    UPDATE deployments d SET status = $2,
        started_at = coalesce($3::timestamptz, d.started_at),
        completed_at = $4::timestamptz,
        result = coalesce(d.result, '{}'::jsonb) || jsonb_build_object('rollout', $5::jsonb)
    WHERE d.id = $1 AND (d.result -> 'rollout') IS NOT DISTINCT FROM $6::jsonb
    RETURNING d.id, d.organization_id),
events AS (
    INSERT INTO deployment_events (deployment_id, step, event_type, level, message, event_data, occurred_at, organization_id)
    SELECT up.id, e.step, e.event_type, e.level, e.message, coalesce(e.event_data, '{}'), clock_timestamp(), up.organization_id
    FROM up, jsonb_populate_recordset(NULL::deployment_events, $7) e
    ON CONFLICT (deployment_id, step) DO NOTHING
    RETURNING 1),
logs AS (
    INSERT INTO deployment_logs (deployment_id, step, level, source, message, logged_at, organization_id)
    SELECT up.id, l.step, l.level, l.source, l.message, clock_timestamp(), up.organization_id
    FROM up, jsonb_populate_recordset(NULL::deployment_logs, $8) l
    ON CONFLICT (deployment_id, step) DO NOTHING
    RETURNING 1),
parent AS (
    UPDATE deployments p SET status = 'rolled_back',
        result = jsonb_set(p.result, '{rollout,phase}', '\"rolled_back\"')
    WHERE p.id = $9 AND p.status = 'completed' AND EXISTS (SELECT 1 FROM up)
    RETURNING p.id, p.organization_id),
parent_event AS (
    INSERT INTO deployment_events (deployment_id, step, event_type, level, message, event_data, occurred_at, organization_id)
    SELECT p.id, 'rolled-back/' || $1::text, 'deployment.rolled_back', 'warning', $10,
           jsonb_build_object('reason', 'RolledBack', 'rollback', $1::text), clock_timestamp(), p.organization_id
    FROM parent p
    ON CONFLICT (deployment_id, step) DO NOTHING
    RETURNING 1),
parent_log AS (
    INSERT INTO deployment_logs (deployment_id, step, level, source, message, logged_at, organization_id)
    SELECT p.id, 'rolled-back/' || $1::text, 'warning', 'rollout', $10, clock_timestamp(), p.organization_id
    FROM parent p
    ON CONFLICT (deployment_id, step) DO NOTHING
    RETURNING 1)
SELECT EXISTS (SELECT 1 FROM up), (SELECT count(*) FROM events)";

/// An event row whose Kubernetes Event is not known to exist yet.
#[derive(Debug, sqlx::FromRow)]
struct Unpublished {
    id: Uuid,
    level: String,
    reason: Option<String>,
    message: Option<String>,
    occurred_at: chrono::DateTime<chrono::Utc>,
}

/// Publishes the Kubernetes Event of every event row of `deployment` that has none yet, in
/// order, and marks each. A name taken already means a previous attempt created it. Rows left
/// unpublished by a failure are published on the next reconcile.
pub async fn publish(
    pool: &PgPool,
    client: &Client,
    reporter: &Reporter,
    deployment: &Deployment,
    id: Uuid,
) -> Result<usize> {
    let rows: Vec<Unpublished> = sqlx::query_as(
        "SELECT id, level, event_data ->> 'reason' AS reason, message, occurred_at FROM deployment_events \
         WHERE deployment_id = $1 AND published_at IS NULL ORDER BY occurred_at, id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let namespace = deployment.namespace().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    for row in &rows {
        let event = kubernetes_event(deployment, reporter, row);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
        sqlx::query("UPDATE deployment_events SET published_at = now() WHERE id = $1")
            .bind(row.id)
            .execute(pool)
            .await?;
    }
    Ok(rows.len())
}

/// The name of an event row's Kubernetes Event: the deployment's name and the row's id.
pub fn event_name(deployment: &str, row: Uuid) -> String {
    let prefix: String = deployment.chars().take(200).collect();
    format!("{prefix}.{}", row.simple())
}

fn kubernetes_event(deployment: &Deployment, reporter: &Reporter, row: &Unpublished) -> Event {
    let at = Timestamp::from_microsecond(row.occurred_at.timestamp_micros()).unwrap_or_else(|_| Timestamp::now());
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&deployment.name_any(), row.id)),
            namespace: deployment.namespace(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(at)),
        action: Some("Rollout".into()),
        reason: Some(row.reason.clone().unwrap_or_else(|| "Rollout".into())),
        note: row.message.as_ref().map(|m| m.chars().take(1000).collect()),
        type_: Some(if row.level == "info" { "Normal" } else { "Warning" }.into()),
        regarding: Some(deployment.object_ref(&())),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone().unwrap_or_else(|| reporter.controller.clone())),
        ..Event::default()
    }
}

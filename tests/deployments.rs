//! Rollout steps in a real PostgreSQL: event and log rows written with the state they report,
//! once, across a simulated restart; a rollback marks its parent; the views count rollouts.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::*;
use uuid::Uuid;
use windflow::deploy::{self, DeploymentPhase, DeploymentType, Facts, Health, RolloutTarget, Runtime, Workloads};
use windflow::events;
use windflow::free_form::FreeForm;
use windflow::kinds::stack::StackPhase;
use windflow::mirror::views;

fn target() -> RolloutTarget {
    let config: FreeForm = serde_json::from_value(json!({ "image": "ghcr.io/acme/storefront:1.5.0" })).expect("config");
    RolloutTarget { name: "storefront".into(), runtime: Runtime::Container, revision: "abc".into(), config }
}

fn facts(strategy: DeploymentType, workloads: &BTreeMap<String, Workloads>) -> Facts<'_> {
    Facts {
        strategy,
        stack: ("shop", StackPhase::Deployed.for_rollout()),
        queued_behind: None,
        suspended: None,
        targets: Ok(vec![target()]),
        analysis: Duration::ZERO,
        auto_promote: true,
        promote: false,
        created: None,
        start_deadline: Duration::ZERO,
        cancel: false,
        workloads,
        now: "2026-11-25T10:00:00Z".parse().expect("time"),
    }
}

fn ready() -> BTreeMap<String, Workloads> {
    BTreeMap::from([("storefront".to_owned(), Workloads { main: Health::Ready, side: Health::Ready })])
}

/// The platform mirrored, and the mirrored row id of a new Deployment `name` of stack shop.
async fn deployment(cluster: &mut Cluster<'_>, name: &str, extra: Value) -> Uuid {
    let id = Uuid::new_v4();
    let mut spec = json!({ "stackRef": { "name": "shop" }, "deploymentType": "rolling", "triggeredBy": "alice" });
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, extra) {
        spec.extend(extra);
    }
    let doc = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "acme", "uid": id.to_string(), "resourceVersion": "1", "generation": 1 },
        "spec": spec });
    assert!(matches!(cluster.mirror(&doc).await, windflow::reconcile::Outcome::Mirrored(_)));
    id
}

async fn steps(pool: &PgPool, id: Uuid) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT step, event_type, level FROM deployment_events WHERE deployment_id = $1 ORDER BY occurred_at",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("events")
}

async fn logs(pool: &PgPool, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as("SELECT source, message FROM deployment_logs WHERE deployment_id = $1 ORDER BY logged_at")
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("logs")
}

#[tokio::test]
async fn steps_are_recorded_with_their_state_once_across_a_restart() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    cluster.converge(&platform()).await;
    let id = deployment(&mut cluster, "shop-1-5-0", json!({})).await;
    let none = BTreeMap::new();

    // First reconcile: created, started, applied, with the row's status, in one transaction.
    assert_eq!(events::load(&db.pool, id).await.expect("load"), None);
    let started = deploy::advance(None, &facts(DeploymentType::Rolling, &none));
    assert_eq!(events::record(&db.pool, id, None, &started, None).await.expect("recorded"), 3);
    let (status, started_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, started_at FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("row");
    assert_eq!(status, "running");
    assert_eq!(started_at.map(|t| t.to_rfc3339()), Some("2026-11-25T10:00:00+00:00".into()));
    let recorded: Vec<String> = steps(&db.pool, id).await.into_iter().map(|s| s.0).collect();
    assert_eq!(recorded, ["created", "started", "applied/storefront"]);
    assert_eq!(logs(&db.pool, id).await.len(), 3);

    // A replica that computed the same step from the same state, after the first wrote it
    // (a restart that never saw the commit): refused, nothing written twice.
    let stale = events::record(&db.pool, id, None, &started, None).await;
    assert!(matches!(stale, Err(events::Error::Stale(_))), "{stale:?}");
    assert_eq!(steps(&db.pool, id).await.len(), 3);

    // After a restart the state is read back: the same facts take no step again.
    let loaded = events::load(&db.pool, id).await.expect("load").expect("recorded");
    assert_eq!(loaded, started.rollout);
    let again = deploy::advance(Some(&loaded), &facts(DeploymentType::Rolling, &none));
    assert!(again.steps.is_empty());
    assert_eq!(again.rollout.phase, DeploymentPhase::Running);
    assert_eq!(events::record(&db.pool, id, Some(&loaded), &again, None).await.expect("state only"), 0);
    let loaded = again.rollout;

    // The workload is ready: health check passed and completed, each once.
    let workloads = ready();
    let done = deploy::advance(Some(&loaded), &facts(DeploymentType::Rolling, &workloads));
    assert_eq!(events::record(&db.pool, id, Some(&loaded), &done, None).await.expect("recorded"), 2);
    let all = steps(&db.pool, id).await;
    let types: Vec<&str> = all.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        types,
        [
            "deployment.created",
            "deployment.started",
            "application.applied",
            "health_check.passed",
            "deployment.completed"
        ]
    );
    let (status, completed): (String, bool) =
        sqlx::query_as("SELECT status, completed_at IS NOT NULL FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("row");
    assert_eq!((status.as_str(), completed), ("completed", true));
    let log = logs(&db.pool, id).await;
    assert_eq!(log[3].0, "storefront");
    assert!(log[4].1.contains("storefront run the new revision"), "{:?}", log[4]);
}

#[tokio::test]
async fn a_completed_rollback_marks_its_parent_rolled_back_in_the_same_transaction() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    cluster.converge(&platform()).await;
    let none = BTreeMap::new();
    let workloads = ready();
    let parent = deployment(&mut cluster, "shop-1", json!({})).await;
    let started = deploy::advance(None, &facts(DeploymentType::Rolling, &none));
    events::record(&db.pool, parent, None, &started, None).await.expect("parent started");
    let done = deploy::advance(Some(&started.rollout), &facts(DeploymentType::Rolling, &workloads));
    events::record(&db.pool, parent, Some(&started.rollout), &done, None).await.expect("parent completed");

    let rollback = deployment(
        &mut cluster,
        "shop-1-rollback",
        json!({ "deploymentType": "rollback", "parentDeploymentRef": { "name": "shop-1" } }),
    )
    .await;
    let started = deploy::advance(None, &facts(DeploymentType::Rollback, &none));
    // A parent is marked only when the rollback completes.
    events::record(&db.pool, rollback, None, &started, Some(parent)).await.expect("rollback started");
    let parent_status = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT status, result -> 'rollout' ->> 'phase' FROM deployments WHERE id = $1",
        )
        .bind(parent)
        .fetch_one(&db.pool)
        .await
        .expect("parent")
    };
    assert_eq!(parent_status().await, ("completed".into(), "completed".into()));
    let done = deploy::advance(Some(&started.rollout), &facts(DeploymentType::Rollback, &workloads));
    assert!(done.rolls_back_parent);
    events::record(&db.pool, rollback, Some(&started.rollout), &done, Some(parent)).await.expect("rolled back");
    assert_eq!(parent_status().await, ("rolled_back".into(), "rolled_back".into()));
    let parent_steps = steps(&db.pool, parent).await;
    let last = parent_steps.last().expect("a step");
    assert_eq!((last.1.as_str(), last.2.as_str()), ("deployment.rolled_back", "warning"));
    let loaded = events::load(&db.pool, parent).await.expect("load").expect("recorded");
    assert_eq!(loaded.phase, DeploymentPhase::RolledBack);
}

#[tokio::test]
async fn the_views_count_a_running_rollout_after_a_refresh() {
    let db = database().await;
    // As the operator reports them once mirrored: the views count active elements only.
    let platform: Vec<Value> = platform()
        .into_iter()
        .map(|mut doc| {
            if doc["kind"] == "Element" {
                doc["status"] = json!({ "phase": "active" });
            }
            // As the operator writes it while a rollout runs.
            if doc["kind"] == "Stack" {
                doc["status"] = json!({ "phase": "deploying" });
            }
            doc
        })
        .collect();
    let mut cluster = Cluster::new(&db.pool);
    cluster.converge(&platform).await;
    let organization: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE k8s_name = 'acme'")
        .fetch_one(&db.pool)
        .await
        .expect("organization");
    let id = deployment(&mut cluster, "shop-2", json!({})).await;
    let started = deploy::advance(None, &facts(DeploymentType::Rolling, &BTreeMap::new()));
    events::record(&db.pool, id, None, &started, None).await.expect("started");
    // Until refreshed, the view holds nothing.
    assert_eq!(views::organization_resources(&db.pool, organization).await.expect("read"), None);
    views::refresh(&db.pool).await.expect("refreshed");
    let counts = views::organization_resources(&db.pool, organization).await.expect("read").expect("counted");
    assert_eq!((counts.stacks, counts.applications, counts.active_deployments), (1, 3, 1));
    assert!(counts.environments >= 1 && counts.storage_gb > 0.0, "{counts:?}");
    // The running rollout is listed, with where it runs, beside the sample's rollout not
    // started yet; ended, it is not.
    let listed = || async {
        let rows: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(
            "SELECT id, status, stack_name, environment_name, organization_name FROM active_deployments
             WHERE organization_id = $1 ORDER BY status",
        )
        .bind(organization)
        .fetch_all(&db.pool)
        .await
        .expect("active_deployments");
        rows.into_iter()
            .map(|(row, status, stack, environment, org)| (row == id, status, stack, environment, org))
            .collect::<Vec<_>>()
    };
    let at = |this: bool, status: &str| {
        (this, status.to_owned(), "shop".to_owned(), "production".to_owned(), "acme".to_owned())
    };
    assert_eq!(listed().await, [at(false, "pending"), at(true, "running")]);
    sqlx::query("UPDATE deployments SET status = 'completed' WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("ended");
    views::refresh(&db.pool).await.expect("refreshed");
    assert_eq!(listed().await, [at(false, "pending")]);
    let counts = views::organization_resources(&db.pool, organization).await.expect("read").expect("counted");
    assert_eq!(counts.active_deployments, 0, "{counts:?}");
}

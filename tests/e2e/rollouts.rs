//! Every rollout strategy end to end on the sample platform, through the workload cluster's
//! kwok pods: a canary held for promotion (listed meanwhile by `active_deployments` and counted
//! by the organization), promoted; a blue-green; a rollback of it; and a rollout that fails
//! (the stack archived), Degraded for Argo CD while it is the stack's latest word and history
//! once a newer one completed. Each rollout's steps are `deployment_events` rows and Events,
//! once each.

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::install::{eventually, start_operator};
use crate::platform::{
    apply_examples, expected_without_providers, scenario, steps_are_published_once, wait_for_sample,
};
use crate::resource_of;
use crate::support::argocd::health;

const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
const WITHIN: Duration = Duration::from_secs(180);

/// Creates the rollout `name` of the stack shop with `spec` (merged over the stack's).
async fn roll_out(rollouts: &Api<DynamicObject>, name: &str, spec: Value) {
    let mut full = json!({ "stackRef": { "name": "shop" }, "triggeredBy": "alice" });
    if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), spec) {
        full.extend(extra);
    }
    let rollout: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "acme" }, "spec": full }))
    .expect("a Deployment");
    rollouts.create(&PostParams::default(), &rollout).await.unwrap_or_else(|e| panic!("create {name}: {e}"));
}

/// Rollout `name` once its phase is `phase`, and its stage of storefront `stage` if named.
async fn reaches(rollouts: &Api<DynamicObject>, name: &str, phase: &str, stage: Option<&str>) -> DynamicObject {
    let found = std::sync::Mutex::new(None);
    eventually(&format!("{name} is {phase} {stage:?}"), WITHIN, || async {
        let rollout = rollouts.get(name).await.map_err(|e| e.to_string())?;
        let status = &rollout.data["status"];
        let staged = status["applications"].as_array().and_then(|apps| apps.first()).map(|app| app["stage"].clone());
        let stage_ok = stage.is_none_or(|stage| staged.as_ref().is_some_and(|s| s == stage));
        if status["phase"] == phase && stage_ok {
            *found.lock().expect("lock") = Some(rollout);
            return Ok(());
        }
        Err(format!("{} {:?}: {}", status["phase"], staged, status["message"]))
    })
    .await;
    found.into_inner().expect("lock").expect("found")
}

/// The rollouts `active_deployments` lists for acme, by name.
async fn listed(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT d.k8s_name FROM active_deployments a JOIN deployments d ON d.id = a.id \
         WHERE a.organization_name = 'acme' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("active_deployments")
}

#[tokio::test]
async fn every_strategy_rolls_out_through_kwoks_pods_and_a_failure_is_degraded_until_superseded() {
    let scenario = scenario().await;
    let (plane, client, pool) = (scenario.plane, &scenario.client, &scenario.db.pool);
    let _operator = start_operator(plane, &scenario.kubeconfig, &scenario.db.runtime_url, "windflow-0");
    apply_examples(plane);
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;
    let rollouts = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Deployment"));
    reaches(&rollouts, "shop-1-4-2", "completed", None).await;

    // A canary held for promotion: running, listed and counted; promoted, it completes.
    let canary = json!({ "applicationRef": { "name": "storefront" }, "deploymentType": "canary",
        "deploymentConfig": { "canaryWeight": 50, "analysisSeconds": 1, "autoPromote": false } });
    roll_out(&rollouts, "canary", canary).await;
    reaches(&rollouts, "canary", "running", Some("Analysis")).await;
    eventually("the canary is listed and counted", WITHIN, || async {
        let organizations = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Organization"));
        let counted = organizations.get("acme").await.map_err(|e| e.to_string())?.data["status"]["resources"]
            ["activeDeployments"]
            .clone();
        let names = listed(pool).await;
        (names == ["canary"] && counted == 1).then_some(()).ok_or(format!("listed {names:?}, counted {counted}"))
    })
    .await;
    let promote = json!({ "metadata": { "annotations": { "windflow.io/promote": "true" } } });
    rollouts.patch("canary", &PatchParams::default(), &Patch::Merge(promote)).await.expect("promote");
    let done = reaches(&rollouts, "canary", "completed", None).await;
    steps_are_published_once(client, pool, &done).await;
    eventually("the canary is listed no more", WITHIN, || async {
        let names = listed(pool).await;
        names.is_empty().then_some(()).ok_or(format!("{names:?}"))
    })
    .await;

    // Blue-green, then its rollback.
    roll_out(
        &rollouts,
        "blue-green",
        json!({ "applicationRef": { "name": "storefront" }, "deploymentType": "blue_green" }),
    )
    .await;
    let done = reaches(&rollouts, "blue-green", "completed", None).await;
    steps_are_published_once(client, pool, &done).await;
    let rollback = json!({ "applicationRef": { "name": "storefront" }, "deploymentType": "rollback",
        "parentDeploymentRef": { "name": "blue-green" } });
    roll_out(&rollouts, "back", rollback).await;
    let done = reaches(&rollouts, "back", "completed", None).await;
    steps_are_published_once(client, pool, &done).await;
    reaches(&rollouts, "blue-green", "rolled_back", None).await;

    // A rollout that fails (its stack archived) is Degraded while it is the stack's latest word;
    // a newer rollout that completes makes it history.
    let stacks = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Stack"));
    let archive = |archived: bool| Patch::Merge(json!({ "spec": { "archived": archived } }));
    stacks.patch("shop", &PatchParams::default(), &archive(true)).await.expect("archive");
    eventually("the shop is archived", WITHIN, || async {
        let phase = stacks.get("shop").await.map_err(|e| e.to_string())?.data["status"]["phase"].clone();
        (phase == "archived").then_some(()).ok_or(phase.to_string())
    })
    .await;
    roll_out(&rollouts, "refused", json!({ "deploymentType": "rolling" })).await;
    let failed = reaches(&rollouts, "refused", "failed", None).await;
    let (verdict, message) = health(&serde_json::to_value(&failed).expect("json"));
    assert_eq!(verdict, "Degraded", "{message}");
    stacks.patch("shop", &PatchParams::default(), &archive(false)).await.expect("restore");
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;
    roll_out(&rollouts, "again", json!({ "deploymentType": "rolling" })).await;
    reaches(&rollouts, "again", "completed", None).await;
    eventually("the failure is history", WITHIN, || async {
        let failed = rollouts.get("refused").await.map_err(|e| e.to_string())?;
        let superseded = failed.data["status"]["supersededBy"].clone();
        let (verdict, _) = health(&serde_json::to_value(&failed).expect("json"));
        (superseded == "again" && verdict == "Healthy").then_some(()).ok_or(format!("{superseded} {verdict}"))
    })
    .await;
}

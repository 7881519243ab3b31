//! An application's life after its rollouts, on the sample platform: autoscaled by a
//! HorizontalPodAutoscaler that the workload cluster's own controller drives (`scaling` while
//! its pods are on their way), stopped (its workload kept with no pod), its stack archived (no
//! workload, records kept) and restored; then its Environment and its Organization suspended
//! (no pod, no rollout, no database login) and reactivated; its organization's quotas held; and
//! the faults of the sample's objects in their seed status columns. Each step is read where
//! users read it: the object's status, the workload cluster, and the rows.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment as Workload;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::install::eventually;
use crate::platform::{expected_without_providers, patch_spec, readiness, sample_running, scenario, wait_for_sample};
use crate::resource_of;

const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
const WITHIN: Duration = Duration::from_secs(120);

/// The `applications` row of `name`: its seed status and the spec columns of this test.
async fn application_row(pool: &PgPool, name: &str) -> (String, bool, Option<Value>) {
    sqlx::query_as("SELECT deployment_status, stopped, autoscaling FROM applications WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("the application's row")
}

/// The `deploymentStatus` of Application `name` and its row's, once both say `wanted`.
async fn status_reaches(apps: &Api<DynamicObject>, pool: &PgPool, name: &str, wanted: &str) {
    eventually(&format!("{name} is {wanted}"), WITHIN, || async {
        let app = apps.get(name).await.map_err(|e| e.to_string())?;
        let status = app.data["status"]["deploymentStatus"].as_str().unwrap_or_default().to_owned();
        let (row, _, _) = application_row(pool, name).await;
        (status == wanted && row == wanted).then_some(()).ok_or(format!("status {status}, row {row}"))
    })
    .await;
}

#[tokio::test]
async fn an_application_autoscales_stops_and_its_stack_archives_and_comes_back() {
    let scenario = scenario().await;
    let (client, workload, pool) = (&scenario.client, &scenario.workload, &scenario.db.pool);
    let _operator = sample_running(&scenario, CONVERGE_WITHIN).await;
    // What cannot be provisioned here (no Multus, cert-manager nor ExternalDNS) is a fault its
    // seed status column says too, where SQL users look.
    for (table, name) in
        [("networks", "backend"), ("gateways", "public"), ("domains", "acme-example"), ("dns_records", "www")]
    {
        eventually(&format!("{table} {name} is error"), WITHIN, || async {
            let status: String =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT status FROM {table} WHERE k8s_name = $1")))
                    .bind(name)
                    .fetch_one(pool)
                    .await
                    .map_err(|e| e.to_string())?;
            (status == "error").then_some(()).ok_or(status)
        })
        .await;
    }
    let apps = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Application"));
    let workloads: Api<Workload> = Api::namespaced(workload.clone(), "acme-production");
    let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(workload.clone(), "acme-production");

    // Autoscaled: the autoscaler holds four pods that cannot all run (each asks for 20 CPUs;
    // the environment's quota grants 16, a node has 32), so the application stays `scaling`.
    let busy = json!({ "minReplicas": 4, "maxReplicas": 4, "targetCPUUtilization": 60 });
    patch_spec(&apps, "api", json!({ "autoscaling": busy, "allocatedResources": { "cpu": "20" } })).await;
    eventually("api's autoscaler", WITHIN, || async {
        autoscalers.get_opt("api").await.map_err(|e| e.to_string())?.map(|_| ()).ok_or("absent".into())
    })
    .await;
    eventually("the autoscaler sizes api", WITHIN, || async {
        let api = workloads.get("api").await.map_err(|e| e.to_string())?;
        let replicas = api.spec.replicas;
        (replicas == Some(4)).then_some(()).ok_or(format!("{replicas:?} replicas"))
    })
    .await;
    status_reaches(&apps, pool, "api", "scaling").await;
    let (_, stopped, autoscaling) = application_row(pool, "api").await;
    assert_eq!((stopped, autoscaling), (false, Some(busy)), "the spec's columns");
    // Bounds its pods fit: the autoscaler brings it down, and it is no longer scaling.
    let fitting = json!({ "minReplicas": 1, "maxReplicas": 1, "targetCPUUtilization": 60 });
    patch_spec(&apps, "api", json!({ "autoscaling": fitting, "allocatedResources": { "cpu": "100m" } })).await;
    eventually("api settles at one pod", WITHIN, || async {
        let api = apps.get("api").await.map_err(|e| e.to_string())?;
        let status = api.data["status"]["deploymentStatus"].as_str().unwrap_or_default().to_owned();
        let ready = workloads.get("api").await.map_err(|e| e.to_string())?.status.and_then(|s| s.ready_replicas);
        (ready == Some(1) && status != "scaling").then_some(()).ok_or(format!("{status}, {ready:?} ready"))
    })
    .await;

    // Stopped: the workload stays with no pod, the autoscaler goes (it would start it again).
    patch_spec(&apps, "api", json!({ "stopped": true })).await;
    status_reaches(&apps, pool, "api", "stopped").await;
    eventually("api has no pod and no autoscaler", WITHIN, || async {
        let api = workloads.get("api").await.map_err(|e| e.to_string())?;
        let replicas = api.spec.replicas;
        let autoscaler = autoscalers.get_opt("api").await.map_err(|e| e.to_string())?;
        (replicas == Some(0) && autoscaler.is_none())
            .then_some(())
            .ok_or(format!("{replicas:?} replicas, autoscaler: {}", autoscaler.is_some()))
    })
    .await;
    assert!(application_row(pool, "api").await.1, "the row says stopped");
    patch_spec(&apps, "api", json!({ "stopped": false, "autoscaling": null })).await;
    eventually("api runs again", WITHIN, || async {
        let api = workloads.get("api").await.map_err(|e| e.to_string())?;
        let ready = api.status.and_then(|s| s.ready_replicas);
        (ready == Some(2)).then_some(()).ok_or(format!("{ready:?} ready"))
    })
    .await;

    // Archived: the stack's records stay, its workloads go; restored, they come back.
    let stacks = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Stack"));
    patch_spec(&stacks, "shop", json!({ "archived": true })).await;
    eventually("the shop is archived and runs nothing", WITHIN, || async {
        let shop = stacks.get("shop").await.map_err(|e| e.to_string())?;
        let phase = shop.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
        let row: String = sqlx::query_scalar("SELECT status FROM stacks WHERE name = 'shop'")
            .fetch_one(pool)
            .await
            .map_err(|e| e.to_string())?;
        let left: Vec<String> = (workloads.list(&Default::default()).await.map_err(|e| e.to_string())?.items)
            .into_iter()
            .filter_map(|w| w.metadata.name)
            .collect();
        (phase == "archived" && row == "archived" && left.is_empty())
            .then_some(())
            .ok_or(format!("phase {phase}, row {row}, workloads {left:?}"))
    })
    .await;
    for name in ["api", "postgres"] {
        status_reaches(&apps, pool, name, "stopped").await;
    }
    patch_spec(&stacks, "shop", json!({ "archived": false })).await;
    eventually("the shop's workloads are back", WITHIN, || async {
        let names: Vec<String> = (workloads.list(&Default::default()).await.map_err(|e| e.to_string())?.items)
            .into_iter()
            .filter_map(|w| w.metadata.name)
            .collect();
        (names.contains(&"api".to_owned()) && names.contains(&"postgres".to_owned()))
            .then_some(())
            .ok_or(format!("{names:?}"))
    })
    .await;
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;

    // Suspended: the production environment, then the whole organization.
    let environments = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Environment"));
    let organizations = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Organization"));
    patch_spec(&environments, "production", json!({ "isActive": false })).await;
    suspended(&apps, &workloads, pool).await;
    // A rollout of a suspended tenant fails before it starts, saying why.
    let rollouts = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Deployment"));
    let rollout: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
        "metadata": { "name": "while-suspended", "namespace": "acme" },
        "spec": { "stackRef": { "name": "shop" }, "deploymentType": "rolling", "triggeredBy": "alice" } }))
    .expect("a Deployment");
    rollouts.create(&PostParams::default(), &rollout).await.expect("create the rollout");
    eventually("the rollout fails as suspended", WITHIN, || async {
        let rollout = rollouts.get("while-suspended").await.map_err(|e| e.to_string())?;
        let phase = rollout.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
        let (_, reason) = readiness(&rollout);
        let message = rollout.data["status"]["message"].as_str().unwrap_or_default().to_owned();
        (phase == "failed" && reason == "Suspended")
            .then_some(())
            .ok_or(format!("{phase} {reason} {message} {}", rollout.data["status"]))
    })
    .await;
    patch_spec(&environments, "production", json!({ "isActive": true })).await;
    running_again(&workloads).await;

    // The organization: its workloads too, and its database login, which it keeps.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "acme");
    let uri = eventually_uri(&secrets).await;
    sqlx::PgPool::connect(&uri).await.expect("the tenant logs in").close().await;
    patch_spec(&organizations, "acme", json!({ "isActive": false })).await;
    suspended(&apps, &workloads, pool).await;
    eventually("the tenant's login is refused", WITHIN, || async {
        match sqlx::PgPool::connect(&uri).await {
            Err(error) if error.to_string().contains("not permitted to log in") => Ok(()),
            Err(error) => Err(error.to_string()),
            Ok(_) => Err("it logged in".into()),
        }
    })
    .await;
    patch_spec(&organizations, "acme", json!({ "isActive": true })).await;
    running_again(&workloads).await;
    eventually("the tenant logs in again, with the same password", WITHIN, || async {
        sqlx::PgPool::connect(&uri).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(eventually_uri(&secrets).await, uri, "the login was kept, not made again");
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;

    // Quotas, without the webhook: the operator holds back what is beyond them (the three
    // applications were created in one apply; the same second is weighed by name), and the
    // organization shows what is used within them.
    patch_spec(&organizations, "acme", json!({ "quotas": { "applications": 2 } })).await;
    let storefront_held = "Organization acme's quota applications is 2: with this Application it would use 3";
    eventually("storefront is beyond the quota", WITHIN, || async {
        let app = apps.get("storefront").await.map_err(|e| e.to_string())?;
        let acme = organizations.get("acme").await.map_err(|e| e.to_string())?;
        let message = app.data["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
            .map(|ready| format!("{} {}", ready["reason"], ready["message"]))
            .unwrap_or_default();
        let used = &acme.data["status"]["usage"]["applications"];
        (message.contains("QuotaExceeded") && message.contains(storefront_held) && *used == 2)
            .then_some(())
            .ok_or(format!("storefront: {message}; acme uses {used}"))
    })
    .await;
    patch_spec(&organizations, "acme", json!({ "quotas": null })).await;
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;
}

/// The tenant's database URI, from its Secret.
async fn eventually_uri(secrets: &Api<Secret>) -> String {
    let uri = std::sync::Mutex::new(String::new());
    eventually("the tenant's database Secret", WITHIN, || async {
        let secret = secrets.get_opt("windflow-database").await.map_err(|e| e.to_string())?.ok_or("absent")?;
        let data = secret.data.unwrap_or_default();
        let found = data.get("uri").ok_or("no uri")?;
        *uri.lock().expect("lock") = String::from_utf8_lossy(&found.0).into_owned();
        Ok(())
    })
    .await;
    uri.into_inner().expect("lock")
}

/// The shop's applications keep their workloads with no pod, and say `stopped`.
async fn suspended(apps: &Api<DynamicObject>, workloads: &Api<Workload>, pool: &PgPool) {
    for name in ["api", "postgres"] {
        status_reaches(apps, pool, name, "stopped").await;
        eventually(&format!("{name} has no pod"), WITHIN, || async {
            let replicas = workloads.get(name).await.map_err(|e| e.to_string())?.spec.replicas;
            (replicas == Some(0)).then_some(()).ok_or(format!("{replicas:?} replicas"))
        })
        .await;
    }
}

/// The shop's applications run their pods again.
async fn running_again(workloads: &Api<Workload>) {
    for (name, pods) in [("api", 2), ("postgres", 1)] {
        eventually(&format!("{name} runs again"), WITHIN, || async {
            let ready = workloads.get(name).await.map_err(|e| e.to_string())?.status.and_then(|s| s.ready_replicas);
            (ready == Some(pods)).then_some(()).ok_or(format!("{ready:?} ready"))
        })
        .await;
    }
}

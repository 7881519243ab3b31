//! Two operator processes elect a leader on the chart's real Lease; the leader is SIGKILLed in
//! the middle of converging the sample platform. The standby takes over within the lease
//! duration plus one renewal, and afterwards nothing is missing or recorded twice.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, DynamicObject};

use crate::install::{LEASE_DURATION, RELEASE_NAMESPACE, eventually, start_operator, windflow};
use crate::platform::{
    Scenario, apply_examples, delete_examples, expected_without_providers, scenario, steps_are_published_once,
    wait_for_sample,
};

/// The chart's Lease the replicas elect a leader on.
pub const LEASE: &str = "windflow-operator";

/// Waits until `identity` holds the operators' Lease; returns how long it took.
pub async fn held_by(client: &Client, identity: &str) -> Duration {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    eventually(&format!("{identity} holds the lease"), Duration::from_secs(60), || {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt(LEASE).await.map_err(|e| e.to_string())?;
            let holder = lease.and_then(|lease| lease.spec?.holder_identity);
            (holder.as_deref() == Some(identity)).then_some(()).ok_or(format!("held by {holder:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn the_standby_takes_over_from_a_killed_leader_and_nothing_is_lost_or_doubled() {
    let Scenario { plane, kubeconfig, db, client, workload, .. } = &scenario().await;
    let (plane, kubeconfig) = (*plane, kubeconfig.as_path());
    let mut first = start_operator(plane, kubeconfig, &db.runtime_url, "windflow-a");
    held_by(client, "windflow-a").await;
    let second = start_operator(plane, kubeconfig, &db.runtime_url, "windflow-b");

    // Mid-convergence: the platform is applied, and the leader dies a moment later.
    let apply = tokio::task::spawn_blocking(move || apply_examples(plane));
    tokio::time::sleep(Duration::from_secs(3)).await;
    first.kill();
    let killed = Instant::now();
    let took_over = held_by(client, "windflow-b").await;
    let renewal = LEASE_DURATION / 3;
    eprintln!("the standby took the lease {:?} after the leader was killed", killed.elapsed());
    assert!(
        took_over <= LEASE_DURATION + renewal + Duration::from_secs(1),
        "taken over in {took_over:?}, more than the lease duration {LEASE_DURATION:?} plus a renewal {renewal:?}"
    );
    apply.await.expect("kubectl apply");
    wait_for_sample(client, &expected_without_providers(), Duration::from_secs(180)).await;

    // Nothing doubled: one create audit row per object, one event row per rollout step, one
    // Kubernetes Event per event row.
    let doubled: Vec<(String, i64)> = sqlx::query_as(
        "SELECT resource_type || ' ' || resource_id, count(*) FROM audit_logs WHERE action = 'create' \
         GROUP BY resource_type, resource_id HAVING count(*) > 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("audit rows");
    assert_eq!(doubled, vec![], "objects created once are audited once");
    let deployments = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &crate::resource_of("Deployment"));
    let rollout = deployments.get("shop-1-4-2").await.expect("the rollout");
    steps_are_published_once(client, &db.pool, &rollout).await;
    let audited: i64 = sqlx::query_scalar("SELECT count(DISTINCT resource_id) FROM audit_logs WHERE action = 'create'")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(audited as usize, crate::platform::sample().len(), "every object has its create audit row");
    let (clean, report) = windflow("check", kubeconfig, &db.url);
    assert!(clean, "windflow check after the failover: {report}");

    delete_examples(plane, client, workload).await;
    drop(second);
}

//! Two operator processes elect a leader on the chart's real Lease; the leader is SIGKILLed in
//! the middle of converging the sample platform. The standby takes over within the lease
//! duration plus one renewal, and afterwards nothing is missing or recorded twice.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, DynamicObject};

use crate::controlplane::control_plane;
use crate::install::{LEASE_DURATION, RELEASE_NAMESPACE, eventually, install_chart, reset, start_operator, windflow};
use crate::platform::{
    apply_examples, delete_examples, expected_without_providers, steps_are_published_once, wait_for_sample,
};
use crate::{exclusive, install_crds};

const LEASE: &str = "windflow-operator";

async fn holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    leases.get_opt(LEASE).await.ok().flatten()?.spec?.holder_identity
}

#[tokio::test]
async fn the_standby_takes_over_from_a_killed_leader_and_nothing_is_lost_or_doubled() {
    let _turn = exclusive().await;
    let plane = control_plane().await;
    install_crds(plane);
    reset(plane).await;
    let kubeconfig = install_chart(plane).await;
    let db = crate::support::database().await;
    let client = plane.client().await;

    let mut first = start_operator(plane, &kubeconfig, &db.url, "windflow-a");
    eventually("windflow-a holds the lease", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let holder = holder(&client).await;
            (holder.as_deref() == Some("windflow-a")).then_some(()).ok_or(format!("held by {holder:?}"))
        }
    })
    .await;
    let second = start_operator(plane, &kubeconfig, &db.url, "windflow-b");

    // Mid-convergence: the platform is applied, and the leader dies a moment later.
    let apply = tokio::task::spawn_blocking(move || apply_examples(plane));
    tokio::time::sleep(Duration::from_secs(3)).await;
    first.kill();
    let killed = Instant::now();
    let took_over = eventually("windflow-b takes the lease", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let holder = holder(&client).await;
            (holder.as_deref() == Some("windflow-b")).then_some(()).ok_or(format!("held by {holder:?}"))
        }
    })
    .await;
    let renewal = LEASE_DURATION / 3;
    eprintln!("the standby took the lease {:?} after the leader was killed", killed.elapsed());
    assert!(
        took_over <= LEASE_DURATION + renewal + Duration::from_secs(1),
        "taken over in {took_over:?}, more than the lease duration {LEASE_DURATION:?} plus a renewal {renewal:?}"
    );
    apply.await.expect("kubectl apply");
    wait_for_sample(&client, &expected_without_providers(), Duration::from_secs(180)).await;

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
    steps_are_published_once(&client, &db.pool, &rollout).await;
    let audited: i64 = sqlx::query_scalar("SELECT count(DISTINCT resource_id) FROM audit_logs WHERE action = 'create'")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(audited as usize, crate::platform::sample().len(), "every object has its create audit row");
    let (clean, report) = windflow("check", &kubeconfig, &db.url);
    assert!(clean, "windflow check after the failover: {report}");

    delete_examples(plane, &client).await;
    drop(second);
}

//! Where things run, on two real control planes: a stack placed on an existing cluster given by
//! a tenant's kubeconfig, moved to another cluster, and another tenant refused its cluster.
//! (The sample's Cluster API path runs in `platform.rs`.)

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment as Workload;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::install::{api_writes, eventually, get, settle, start_operator_with_metrics_and};
use crate::platform::{
    Scenario, apply_examples, delete_examples, expected_without_providers, readiness, scenario, wait_for_sample,
};
use crate::{api_for, resource_of};

const WITHIN: Duration = Duration::from_secs(180);

/// The Applications' workloads `client` holds in acme-production, with how many are Available.
async fn workloads_on(client: &Client) -> (Vec<String>, usize) {
    let api: Api<Workload> = Api::namespaced(client.clone(), "acme-production");
    let owned = ListParams::default().labels("windflow.io/owner-kind=Application");
    let list = api.list(&owned).await.map(|list| list.items).unwrap_or_default();
    let available = list
        .iter()
        .filter(|w| {
            let conditions = w.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            conditions.iter().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
        })
        .count();
    let mut names: Vec<String> = list.iter().map(ResourceExt::name_any).collect();
    names.sort();
    (names, available)
}

/// Waits until the WindFlow object `kind`/`name` of acme is Ready=False for `reason`, with
/// `message` in its message.
async fn refused(client: &Client, kind: &str, name: &str, reason: &str, message: &str) {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of(kind));
    eventually(&format!("{kind} {name} is {reason}"), Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let obj = api.get(name).await.map_err(|e| e.to_string())?;
            let (status, why) = readiness(&obj);
            let text = obj.data["status"]["conditions"].to_string();
            (status == "False" && why == reason && text.contains(message))
                .then_some(())
                .ok_or(format!("Ready={status} {why}: {text}"))
        }
    })
    .await;
}

#[tokio::test]
async fn a_stack_moves_to_an_existing_cluster_it_names_and_no_tenant_borrows_another_s_cluster() {
    let Scenario { plane, kubeconfig, db, client, workload: main, .. } = &scenario().await;
    // Heartbeats are written at most hourly here, so that the idle window below holds none.
    let (operator, metrics) = start_operator_with_metrics_and(
        plane,
        kubeconfig,
        &db.runtime_url,
        "windflow-0",
        &[("WINDFLOW_HEARTBEAT_INTERVAL_SECONDS", "3600")],
    );
    apply_examples(plane);
    wait_for_sample(client, &expected_without_providers(), WITHIN).await;
    let three = vec!["api".to_owned(), "postgres".to_owned(), "storefront".to_owned()];
    assert_eq!(workloads_on(main).await, (three.clone(), 3), "the stack runs on main");
    assert_eq!(workloads_on(client).await.0, Vec::<String>::new(), "and nothing of it on the management cluster");

    // main stops answering (its API server frozen, connections left open): what runs there
    // says so within a minute, the rest is unaffected; resumed, it converges with no one acting.
    let main_plane = crate::controlplane::workload_plane().await;
    main_plane.freeze_apiserver(true);
    let frozen = std::time::Instant::now();
    for (kind, name) in [("Application", "api"), ("Stack", "shop"), ("Volume", "pgdata")] {
        refused(client, kind, name, "ClusterUnreachable", "ContainerCluster acme/main").await;
    }
    let noticed = frozen.elapsed();
    assert!(noticed <= Duration::from_secs(60), "ClusterUnreachable after {noticed:?}");
    eprintln!("objects on the stopped cluster said so in {noticed:?}");
    let staging = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Environment"));
    assert_eq!(readiness(&staging.get("staging").await.expect("staging")).0, "True", "the rest is unaffected");
    // Deleted meanwhile, the gateway waits for main, and says so; main back, it goes.
    let gateways = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Gateway"));
    gateways.delete("public", &Default::default()).await.expect("delete the gateway");
    refused(client, "Gateway", "public", "ClusterUnreachable", "deleting: the children on ContainerCluster acme/main")
        .await;
    main_plane.freeze_apiserver(false);
    eventually("the gateway is deleted once main answers", WITHIN, || {
        let gateways = gateways.clone();
        async move {
            let left = gateways.get_opt("public").await.map_err(|e| e.to_string())?;
            left.map_or(Ok(()), |gateway| Err(format!("still there: {}", gateway.data["status"])))
        }
    })
    .await;
    apply_examples(plane);
    let took = wait_for_sample(client, &expected_without_providers(), WITHIN).await;
    eprintln!("converged again {took:?} after the cluster came back");

    add_edge_cluster(plane, client).await;

    // Two kubernetes clusters on the stack's element, and the stack names none: refused,
    // naming both, rather than guessed.
    refused(client, "Stack", "shop", "InvalidSpec", "holds several kubernetes ContainerClusters (edge, main)").await;

    // Named, the stack moves, with the VM that shares its volume; the new copies work before
    // the old ones go. Its claims bind on edge.
    crate::controlplane::add_fresh_volumes(client, 2).await;
    let by_hand = PatchParams::default();
    let to_edge = json!({ "spec": { "containerClusterRef": { "name": "edge" } } });
    for (kind, name) in [("Stack", "shop"), ("VM", "legacy-erp")] {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of(kind));
        api.patch(name, &by_hand, &Patch::Merge(to_edge.clone())).await.expect("named");
    }
    let took = eventually("the applications run on edge and left main", WITHIN, || async {
        let (on_edge, on_main) = (workloads_on(client).await, workloads_on(main).await);
        (on_edge == (three.clone(), 3) && on_main.0.is_empty())
            .then_some(())
            .ok_or(format!("edge {on_edge:?}, main {on_main:?}"))
    })
    .await;
    eprintln!("the stack moved in {took:?}");
    let stacks = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Stack"));
    eventually("the stack says where it runs", Duration::from_secs(30), || async {
        let shop = stacks.get("shop").await.map_err(|e| e.to_string())?;
        let cluster = shop.data["status"]["placement"]["cluster"].clone();
        (cluster == "edge").then_some(()).ok_or(format!("{cluster}"))
    })
    .await;
    probed_and_quiet(client, db, &metrics).await;

    // Another tenant cannot name acme's cluster: references stay in their namespace.
    let globex = "apiVersion: windflow.io/v1alpha1\nkind: Organization\nmetadata: { name: globex }\n\
                  spec: { members: [{ user: alice, role: owner }] }\n---\n\
                  apiVersion: windflow.io/v1alpha1\nkind: Environment\nmetadata: { name: prod, namespace: globex }\n\
                  spec: { environmentType: production }\n---\n\
                  apiVersion: windflow.io/v1alpha1\nkind: Element\nmetadata: { name: k8s, namespace: globex }\n\
                  spec: { environmentRef: { name: prod }, elementType: container_cluster }\n---\n\
                  apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: grab, namespace: globex }\n\
                  spec: { elementRef: { name: k8s }, containerClusterRef: { name: main } }\n";
    let file = plane.dir.join("globex.yaml");
    std::fs::write(&file, globex).expect("write");
    eventually("globex applied", Duration::from_secs(60), || async {
        let mut apply = plane.kubectl();
        apply.args(["apply", "-f"]).arg(&file);
        let output = apply.output().map_err(|e| e.to_string())?;
        output.status.success().then_some(()).ok_or(crate::controlplane::both(&output))
    })
    .await;
    let grab = Api::<DynamicObject>::namespaced_with(client.clone(), "globex", &resource_of("Stack"));
    eventually("globex's stack waits for a cluster of its own", Duration::from_secs(60), || async {
        let obj = grab.get("grab").await.map_err(|e| e.to_string())?;
        let (status, reason) = readiness(&obj);
        let text = obj.data["status"]["conditions"].to_string();
        (status == "False"
            && reason == "WaitingForDependency"
            && text.contains("ContainerCluster globex/main does not exist"))
        .then_some(())
        .ok_or(format!("Ready={status} {reason}: {text}"))
    })
    .await;

    let mut delete = plane.kubectl();
    delete.args(["delete", "--wait=true", "--timeout=120s", "-f"]).arg(&file);
    crate::controlplane::run(delete);
    let clusters = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("ContainerCluster"));
    clusters.delete("edge", &Default::default()).await.expect("delete edge");
    delete_examples(plane, client, main).await;
    assert_eq!(workloads_on(client).await.0, Vec::<String>::new(), "nothing left on edge");
    drop(operator);
}

/// The existing cluster `edge` is health-checked every minute; with nothing changed, a check
/// writes nothing: no status, no ContainerNode, no row. Its ContainerNodes have one writer, the
/// operator's field manager, for their spec and their status alike.
async fn probed_and_quiet(client: &Client, db: &crate::support::TestDb, metrics: &str) {
    let nodes = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("ContainerNode"));
    let found = std::sync::Mutex::new(vec![]);
    eventually("edge's nodes are reported as ContainerNodes", Duration::from_secs(90), || async {
        let listed = nodes.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let edge: Vec<DynamicObject> =
            listed.items.into_iter().filter(|node| node.name_any().starts_with("edge-")).collect();
        if edge.is_empty() {
            return Err("none yet".to_owned());
        }
        *found.lock().expect("lock") = edge;
        Ok(())
    })
    .await;
    let edge_nodes = found.into_inner().expect("lock");
    for node in &edge_nodes {
        let managers: std::collections::BTreeSet<String> =
            node.managed_fields().iter().filter_map(|entry| entry.manager.clone()).collect();
        assert_eq!(
            managers.into_iter().collect::<Vec<_>>(),
            [windflow::FIELD_MANAGER],
            "{} has one writer",
            node.name_any()
        );
    }
    settle(metrics, 1, WITHIN).await;
    // Idle backends report the rows they wrote within 10 s (PGSTAT_IDLE_INTERVAL).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = get(metrics, "/metrics");
    let writes_before = api_writes(&before).iter().map(|(_, count)| count).sum::<f64>();
    let rows_before = crate::support::rows_changed(&db.pool).await;
    // Past one health check (every 60 s), and the 10 s in which what it wrote would be reported.
    tokio::time::sleep(Duration::from_secs(75)).await;
    let text = get(metrics, "/metrics");
    let writes = api_writes(&text).iter().map(|(_, count)| count).sum::<f64>();
    assert!(probes(&text) > probes(&before), "edge was health-checked in the window");
    assert_eq!(writes, writes_before, "API writes while edge was only checked: {:?}", api_writes(&text));
    assert_eq!(crate::support::rows_changed(&db.pool).await, rows_before, "rows written while edge was only checked");
}

/// The requests of the operator's health checks, as its metrics count them.
fn probes(exposition: &str) -> f64 {
    crate::install::samples(exposition, "windflow_api_requests_total")
        .iter()
        .filter(|(labels, _)| labels.contains("cluster=\"probe "))
        .map(|(_, count)| count)
        .sum()
}

/// An existing cluster `edge` on acme's element `k8s`, given by the tenant's kubeconfig Secret:
/// here the management control plane itself, reached as any other cluster would be (inline
/// credentials, its own address).
pub async fn add_edge_cluster(plane: &crate::controlplane::ControlPlane, client: &Client) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "acme");
    let kubeconfig_text = std::fs::read(&plane.kubeconfig).expect("a kubeconfig");
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("edge-kubeconfig".into()), ..Default::default() },
        data: Some([("value".to_owned(), ByteString(kubeconfig_text))].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await.expect("the tenant's kubeconfig");
    let edge: Value = json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "ContainerCluster",
        "metadata": { "name": "edge", "namespace": "acme" },
        "spec": { "elementRef": { "name": "k8s" }, "clusterMode": "kubernetes",
                  "clusterConfig": { "kubeconfigSecret": "edge-kubeconfig" } },
    });
    let (clusters, _) = api_for(client, &edge);
    clusters.create(&PostParams::default(), &serde_json::from_value(edge.clone()).expect("edge")).await.expect("edge");
}

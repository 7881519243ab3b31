//! A volume's scheduled backups and an element's monitoring, on the sample platform: first
//! where neither the CSI snapshot API nor the Prometheus Operator is served (each object that
//! asks for them says `ProviderNotInstalled`), then with their CRDs installed from the
//! projects' own Go modules (`e2e/controlplane/thirdparty.txt`). No controller runs behind
//! those CRDs here: WindFlow's VolumeSnapshots are made and kept on schedule, but no snapshot
//! controller takes them (`readyToUse` stays false), and no Prometheus reads the monitors.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::controlplane::{ControlPlane, run, workload_plane};
use crate::install::{established, eventually};
use crate::platform::{patch_spec, readiness, resource_of_child, sample_running, scenario};
use crate::resource_of;

const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
/// A type installed is seen by discovery and the objects waiting for it within two rechecks.
const PROVIDED_WITHIN: Duration = Duration::from_secs(200);
const WITHIN: Duration = Duration::from_secs(120);

const SNAPSHOT_CRDS: &[&str] = &[
    "snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
    "snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
    "snapshot.storage.k8s.io_volumesnapshots.yaml",
];
const MONITORING_CRDS: &[&str] =
    &["monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_podmonitors.yaml"];

fn crd_files(plane: &ControlPlane, files: &[&str]) -> Vec<PathBuf> {
    files.iter().map(|file| plane.bin.join("thirdparty").join(file)).collect()
}

/// Installs (or removes) the CRDs of `files` on `plane`.
async fn crds(plane: &ControlPlane, files: &[PathBuf], install: bool) {
    for file in files {
        let mut kubectl = plane.kubectl();
        if install {
            kubectl.args(["apply", "--server-side", "--force-conflicts", "-f"]).arg(file);
        } else {
            kubectl.args(["delete", "--wait=true", "--ignore-not-found", "-f"]).arg(file);
        }
        run(kubectl);
    }
    if install {
        let names = files.iter().map(|file| {
            let text = std::fs::read_to_string(file).expect("a CRD file");
            let crd: Value = serde_yaml::from_str(&text).expect("a CRD");
            crd["metadata"]["name"].as_str().expect("named").to_owned()
        });
        established(plane, names).await;
    }
}

/// Waits until `name`'s Ready condition has `reason` and its message holds `says`.
async fn reports(api: &Api<DynamicObject>, name: &str, reason: &str, says: &str, within: Duration) {
    eventually(&format!("{name} is {reason}"), within, || async {
        let obj = api.get(name).await.map_err(|e| e.to_string())?;
        let (_, held) = readiness(&obj);
        let message = obj.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        (held == reason && message.contains(says)).then_some(()).ok_or(format!("{held}: {message}"))
    })
    .await;
}

/// The names `api` holds, sorted.
async fn names(api: &Api<DynamicObject>) -> Vec<String> {
    let mut names: Vec<String> =
        api.list(&ListParams::default()).await.expect("list").items.iter().map(ResourceExt::name_any).collect();
    names.sort();
    names
}

/// Waits until `api` holds exactly `wanted`.
async fn holds(api: &Api<DynamicObject>, what: &str, wanted: &[&str]) {
    eventually(what, WITHIN, || async {
        let held = names(api).await;
        (held == wanted).then_some(()).ok_or(format!("{held:?}"))
    })
    .await;
}

async fn volume_row(pool: &PgPool, name: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, backup_schedule FROM volumes WHERE k8s_name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("the volume's row")
}

#[tokio::test]
async fn volumes_are_backed_up_on_schedule_and_applications_scraped_where_the_apis_are_served() {
    let scenario = scenario().await;
    let (plane, client, workload, pool) = (scenario.plane, &scenario.client, &scenario.workload, &scenario.db.pool);
    let _operator = sample_running(&scenario, CONVERGE_WITHIN).await;
    let volumes = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Volume"));
    let elements = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Element"));
    let apps = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Application"));

    // Asked for where nothing serves them: every minute's backup (two kept), the applications
    // on the k8s element scraped, and a volume restored from a snapshot.
    patch_spec(&volumes, "uploads", json!({ "backupSchedule": "* * * * *", "backupRetention": 2 })).await;
    patch_spec(&elements, "k8s", json!({ "monitoringConfig": { "enabled": true, "labels": { "release": "kube" } } }))
        .await;
    let restored = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Volume",
        "metadata": { "name": "restored", "namespace": "acme" },
        "spec": { "elementRef": { "name": "storage" }, "volumeType": "nfs", "sizeGb": 20,
                  "restoreFrom": { "snapshot": "uploads-first" } } });
    let restored: DynamicObject = serde_json::from_value(restored).expect("a Volume");
    volumes.create(&PostParams::default(), &restored).await.expect("create the restored volume");
    reports(&volumes, "uploads", "ProviderNotInstalled", "the CSI snapshot API", WITHIN).await;
    reports(&apps, "storefront", "ProviderNotInstalled", "the Prometheus Operator", WITHIN).await;
    reports(&volumes, "restored", "ProviderNotInstalled", "restoring from snapshot \"uploads-first\"", WITHIN).await;
    // SQL users see the fault too, and the schedule asked for.
    eventually("uploads' row says error", WITHIN, || async {
        let row = volume_row(pool, "uploads").await;
        (row == ("error".to_owned(), Some("* * * * *".to_owned()))).then_some(()).ok_or(format!("{row:?}"))
    })
    .await;
    // The claims already made are kept meanwhile.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(workload.clone(), "acme-production");
    assert!(claims.get_opt("uploads").await.expect("get").is_some(), "uploads' claim is kept");

    // The APIs installed: where the sample's volumes and applications run (the workload
    // cluster), and where the restored volume, which nothing mounts, runs (the management one).
    let workload_plane = workload_plane().await;
    let snapshot_crds = crd_files(plane, SNAPSHOT_CRDS);
    let monitoring_crds = crd_files(plane, MONITORING_CRDS);
    crds(workload_plane, &snapshot_crds, true).await;
    crds(workload_plane, &monitoring_crds, true).await;
    crds(plane, &snapshot_crds, true).await;

    let snapshots = Api::<DynamicObject>::namespaced_with(
        workload.clone(),
        "acme-production",
        &resource_of_child("VolumeSnapshot"),
    );
    eventually("uploads' first backup", PROVIDED_WITHIN, || async {
        let held = names(&snapshots).await;
        (!held.is_empty()).then_some(()).ok_or("none yet".to_owned())
    })
    .await;
    let first = names(&snapshots).await.remove(0);
    let snapshot = snapshots.get(&first).await.expect("the snapshot");
    assert!(first.starts_with("uploads-") && first.len() == "uploads-".len() + 12, "named by its minute: {first}");
    assert_eq!(snapshot.data["spec"], json!({ "source": { "persistentVolumeClaimName": "uploads" } }));
    assert_eq!(snapshot.labels().get("windflow.io/owner-name").map(String::as_str), Some("uploads"));
    reports(&volumes, "uploads", "Provisioned", "", WITHIN).await;

    // A minute later, a second; the status lists both, newest first, none ready to use (no
    // snapshot controller here).
    eventually("uploads' second backup", WITHIN, || async {
        let volume = volumes.get("uploads").await.map_err(|e| e.to_string())?;
        let kept = volume.data["status"]["backups"]["snapshots"].as_array().cloned().unwrap_or_default();
        (kept.len() == 2).then_some(()).ok_or(format!("{}", volume.data["status"]["backups"]))
    })
    .await;
    let volume = volumes.get("uploads").await.expect("uploads");
    let backups = &volume.data["status"]["backups"];
    let second = backups["lastBackup"].as_str().expect("a last backup").to_owned();
    assert!(second > first, "{backups}");
    assert_eq!(backups["snapshots"][0]["name"], second.as_str());
    assert_eq!(backups["snapshots"][1]["name"], first.as_str());
    assert_eq!(backups["snapshots"][1]["readyToUse"], false);
    assert!(
        backups["nextBackupTime"]
            .as_str()
            .is_some_and(|next| *next > *backups["lastBackupTime"].as_str().unwrap_or_default())
    );

    // Retention lowered: the oldest goes at once. Backups turned off: nothing new is made, the
    // kept one stays.
    patch_spec(&volumes, "uploads", json!({ "backupRetention": 1 })).await;
    eventually("one snapshot kept", WITHIN, || async {
        let held = names(&snapshots).await;
        (held.len() == 1 && held[0] > first).then_some(()).ok_or(format!("{held:?}"))
    })
    .await;
    patch_spec(&volumes, "uploads", json!({ "backupEnabled": false })).await;
    eventually("backups off", WITHIN, || async {
        let volume = volumes.get("uploads").await.map_err(|e| e.to_string())?;
        let backups = &volume.data["status"]["backups"];
        (backups["nextBackupTime"].is_null() && backups["snapshots"].as_array().map(Vec::len) == Some(1))
            .then_some(())
            .ok_or(format!("{backups}"))
    })
    .await;

    // The restored volume's claim starts from the snapshot it names (on the management
    // cluster, where it runs; no snapshot controller fills it here, so it waits).
    let management_claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "acme-production");
    eventually("the restored claim", PROVIDED_WITHIN, || async {
        let claim = management_claims.get_opt("restored").await.map_err(|e| e.to_string())?.ok_or("absent")?;
        let source = claim.spec.and_then(|spec| spec.data_source).ok_or("no dataSource")?;
        (source.kind == "VolumeSnapshot" && source.name == "uploads-first").then_some(()).ok_or(format!("{source:?}"))
    })
    .await;
    // Where a volume starts from is said once: it cannot be dropped or changed.
    for change in [json!(null), json!({ "snapshot": "uploads-other" })] {
        let patch = Patch::Merge(json!({ "spec": { "restoreFrom": change } }));
        let refused = volumes.patch("restored", &PatchParams::default(), &patch).await.expect_err("immutable");
        assert!(refused.to_string().contains("restoreFrom"), "{refused}");
    }

    // Monitoring: a ServiceMonitor for each application with a port, labelled for the
    // Prometheus that selects them; then PodMonitors instead; then none.
    let service_monitors = Api::<DynamicObject>::namespaced_with(
        workload.clone(),
        "acme-production",
        &resource_of_child("ServiceMonitor"),
    );
    let pod_monitors =
        Api::<DynamicObject>::namespaced_with(workload.clone(), "acme-production", &resource_of_child("PodMonitor"));
    let scraped = ["api", "postgres", "storefront"];
    eventually("the applications' ServiceMonitors", PROVIDED_WITHIN, || async {
        let held = names(&service_monitors).await;
        (held == scraped).then_some(()).ok_or(format!("{held:?}"))
    })
    .await;
    let storefront = service_monitors.get("storefront").await.expect("storefront's monitor");
    assert_eq!(storefront.labels().get("release").map(String::as_str), Some("kube"));
    assert_eq!(storefront.data["spec"]["endpoints"], json!([{ "port": "http", "path": "/metrics" }]));
    reports(&apps, "storefront", "Provisioned", "", WITHIN).await;
    patch_spec(&elements, "k8s", json!({ "monitoringConfig": { "monitor": "pod", "interval": "15s" } })).await;
    holds(&pod_monitors, "PodMonitors", &scraped).await;
    holds(&service_monitors, "no ServiceMonitor", &[]).await;
    let postgres = pod_monitors.get("postgres").await.expect("postgres' monitor");
    assert_eq!(
        postgres.data["spec"]["podMetricsEndpoints"],
        json!([{ "port": "postgres", "path": "/metrics", "interval": "15s" }])
    );
    let row: Value = sqlx::query_scalar("SELECT monitoring_config FROM elements WHERE k8s_name = 'k8s'")
        .fetch_one(pool)
        .await
        .expect("the element's row");
    assert_eq!(row, json!({ "enabled": true, "monitor": "pod", "interval": "15s", "labels": { "release": "kube" } }));
    patch_spec(&elements, "k8s", json!({ "monitoringConfig": { "enabled": false } })).await;
    holds(&pod_monitors, "no PodMonitor", &[]).await;

    // The other scenarios run without these APIs.
    crds(workload_plane, &snapshot_crds, false).await;
    crds(workload_plane, &monitoring_crds, false).await;
    crds(plane, &snapshot_crds, false).await;
}

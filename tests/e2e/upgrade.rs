//! `helm upgrade` from the previous chart version (0.1.0, packaged as it landed:
//! `tests/fixtures/windflow-chart-0.1.0.tgz`) to this one, with the sample platform running:
//! its pre-upgrade hook applies the new CRDs, objects stay Ready, nothing is lost, and the new
//! fields are served.
//!
//! kwok runs no container: it completes the hook Job's pod as it completes any Job's. The Job's
//! command (`windflow crds --apply`) is run here, with a token of the hook's own ServiceAccount
//! and its grant as the chart renders them, as its container would.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};

use crate::controlplane::{both, run};
use crate::install::{CHART, RELEASE_NAMESPACE, service_account_kubeconfig, windflow};
use crate::platform::{
    expected_without_providers, patch_spec, sample_running, scenario_installed_from, wait_for_sample,
};
use crate::resource_of;
use crate::support::helm;

const PREVIOUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/windflow-chart-0.1.0.tgz");
const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
/// A field this chart's Volume CRD serves and the previous one did not.
const NEW_FIELD: &str = "backupRetention";

async fn volume_serves_the_new_field(crds: &Api<CustomResourceDefinition>) -> bool {
    let crd = crds.get("volumes.windflow.io").await.expect("the Volume CRD");
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("a schema");
    schema.pointer(&format!("/openAPIV3Schema/properties/spec/properties/{NEW_FIELD}")).is_some()
}

#[tokio::test]
async fn an_upgrade_from_the_previous_chart_keeps_everything_and_serves_the_new_fields() {
    // The previous chart's CRDs, as its install left them (the turn served this chart's).
    let scenario = scenario_installed_from(PREVIOUS, &["--skip-crds"]).await;
    let (plane, client, pool) = (scenario.plane, &scenario.client, &scenario.db.pool);
    let mut previous_crds = helm();
    previous_crds.args(["show", "crds", PREVIOUS]);
    let previous_crds = previous_crds.output().expect("helm runs");
    let file = plane.dir.join("previous-crds.yaml");
    std::fs::write(&file, &previous_crds.stdout).expect("write");
    let mut downgrade = plane.kubectl();
    downgrade.args(["apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-f"]).arg(&file);
    run(downgrade);
    let _operator = sample_running(&scenario, CONVERGE_WITHIN).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(!volume_serves_the_new_field(&crds).await, "the previous chart's CRDs lack {NEW_FIELD}");
    let audit_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_logs").fetch_one(pool).await.expect("audit rows")
    };
    let audited = audit_rows().await;

    // The hook's ServiceAccount and grant, as this chart renders them, and its command with
    // them: it may apply WindFlow's CRDs, and no other.
    let mut render = helm();
    render.args(["template", "windflow", CHART, "--namespace", RELEASE_NAMESPACE]).args([
        "--set",
        "database.url=postgres://x",
        "--show-only",
        "templates/crds-upgrade.yaml",
    ]);
    let rendered = String::from_utf8(render.output().expect("helm runs").stdout).expect("text");
    let grant: Vec<Value> =
        crate::support::documents(&rendered).into_iter().filter(|doc| doc["kind"] != "Job").collect();
    assert_eq!(grant.len(), 3, "{rendered}");
    let file = plane.dir.join("crds-hook.yaml");
    std::fs::write(
        &file,
        grant.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect::<Vec<_>>().join("---\n"),
    )
    .expect("write");
    let mut apply = plane.kubectl();
    apply.args(["apply", "-f"]).arg(&file);
    run(apply);
    let hook = service_account_kubeconfig(plane, "windflow-crds", "crds-hook.kubeconfig").await;
    let mut can = plane.kubectl();
    can.arg("--kubeconfig").arg(&hook).args([
        "auth",
        "can-i",
        "patch",
        "customresourcedefinitions/clusters.cluster.x-k8s.io",
    ]);
    let answer = can.output().expect("kubectl runs");
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "no", "{}", both(&answer));
    let applied =
        Command::new(env!("CARGO_BIN_EXE_windflow")).args(["crds", "--apply"]).env("KUBECONFIG", &hook).output();
    let applied = applied.expect("windflow runs");
    assert!(applied.status.success(), "windflow crds --apply: {}", both(&applied));

    // The upgrade itself: its hook Job (played by kwok) and the new release.
    let mut upgrade = helm();
    upgrade
        .args(["upgrade", "windflow", CHART, "--namespace", RELEASE_NAMESPACE, "--reset-then-reuse-values", "--wait"])
        .args(["--timeout", "3m", "--kubeconfig"])
        .arg(&plane.kubeconfig);
    run(upgrade);
    let mut history = helm();
    history
        .args(["history", "windflow", "--namespace", RELEASE_NAMESPACE, "--output", "json", "--kubeconfig"])
        .arg(&plane.kubeconfig);
    let history: Value = serde_json::from_slice(&history.output().expect("helm runs").stdout).expect("JSON");
    let charts: Vec<&str> = history.as_array().expect("revisions").iter().filter_map(|r| r["chart"].as_str()).collect();
    // Earlier scenarios of the suite installed this chart into the same release first.
    assert_eq!(charts[charts.len().saturating_sub(2)..], ["windflow-0.1.0", "windflow-0.2.0"], "{charts:?}");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    assert!(accounts.get_opt("windflow-crds").await.expect("get").is_none(), "the hook's account is gone with it");

    // The new fields are served and kept; every object is still Ready and mirrored, and no
    // audit row went.
    assert!(volume_serves_the_new_field(&crds).await, "the upgrade serves {NEW_FIELD}");
    let volumes = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Volume"));
    patch_spec(&volumes, "uploads", json!({ NEW_FIELD: 3 })).await;
    assert_eq!(volumes.get("uploads").await.expect("uploads").data["spec"][NEW_FIELD], 3);
    wait_for_sample(client, &expected_without_providers(), CONVERGE_WITHIN).await;
    let (clean, report) = windflow("check", &scenario.kubeconfig, &scenario.db.url);
    assert!(clean, "windflow check after the upgrade: {report}");
    assert!(audit_rows().await >= audited, "no audit row is lost");
}

//! WindFlow end to end on a real control plane (see `controlplane.rs`): the CRDs as the API
//! server serves them, the chart installed as users install it, the operator running with the
//! chart's ServiceAccount, and the sample platform applied, changed, deleted and failed over.
//!
//! The tests of this binary share one control plane and take turns (`turn`): operators
//! watch the whole cluster, so two scenarios at once would reconcile each other's objects.

#[path = "../support/mod.rs"]
mod support;

mod admission;
mod backups;
mod churn;
mod controlplane;
mod crds;
mod destinations;
mod failover;
mod fence;
mod install;
mod invalid;
mod lifecycle;
mod missing_crd;
mod orders;
mod placement;
mod platform;
mod rollouts;
mod thirdparty;
mod upgrade;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use controlplane::run;

static TURN: Mutex<()> = Mutex::const_new(());

/// This test's turn on the shared control plane, with the CRDs served and no admission webhook
/// an earlier scenario left: its webhook is gone with its operator, and depending on the
/// failure policies that scenario last set, it would refuse every change or every delete of a
/// WindFlow object to whoever comes next.
pub async fn turn() -> (MutexGuard<'static, ()>, &'static controlplane::ControlPlane) {
    let turn = TURN.lock().await;
    let plane = controlplane::control_plane().await;
    // The sample's ContainerCluster is a Cluster API cluster: its API is served, as where users
    // run Cluster API, and the scenarios that run the sample play its controllers. Installed
    // before WindFlow's CRDs: a CRD installed after them delays what the API server publishes
    // of theirs, and `kubectl explain` right after would not find them.
    install::install_cluster_api(plane).await;
    install_crds(plane).await;
    install::remove_webhooks(plane).await;
    (turn, plane)
}

/// The API of a WindFlow manifest's kind, in its namespace (or cluster-wide), and its name.
pub fn api_for(client: &Client, doc: &Value) -> (Api<DynamicObject>, String) {
    let kind = doc["kind"].as_str().expect("kind");
    let resource = resource_of(kind);
    let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
    let api = match doc["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    (api, name)
}

/// Where the WindFlow kind `kind` is served.
pub fn resource_of(kind: &str) -> ApiResource {
    let mut resources = windflow::kinds::KindId::ALL.iter().map(|kind| kind.api_resource());
    resources.find(|resource| resource.kind == kind).expect("a WindFlow kind")
}

/// Applies the CRDs as users do and waits until the API server serves them.
pub async fn install_crds(plane: &controlplane::ControlPlane) {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    let mut apply = plane.kubectl();
    apply.args(["apply", "-f", crds]);
    run(apply);
    let names = windflow::kinds::crds().into_iter().map(|crd| crd.name_any());
    established(plane, names).await;
}

pub use install::established;

//! End to end on a real cluster, for users with kind or k3d (there is none where CI runs):
//!
//! ```sh
//! kind create cluster
//! WINDFLOW_TEST_KUBECONFIG=~/.kube/config cargo test --test cluster -- --ignored
//! ```
//!
//! It applies the CRDs and the sample platform, runs the `windflow` binary against a throwaway
//! PostgreSQL, waits until the objects that need no third-party API are Ready, checks what
//! they provisioned and that `windflow check` finds nothing, then deletes the sample.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use support::*;

const KUBECONFIG: &str = "WINDFLOW_TEST_KUBECONFIG";

async fn client(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("a kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("a client")
}

fn api_for(client: &Client, doc: &Value) -> (Api<DynamicObject>, String) {
    let kind = doc["kind"].as_str().expect("kind");
    let crd = windflow::api::crds().into_iter().find(|crd| crd.spec.names.kind == kind).expect("a WindFlow kind");
    let resource = windflow::api::api_resource(&crd);
    let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
    let api = match doc["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    (api, name)
}

/// The operator, until dropped.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_ready(obj: &DynamicObject) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster: set WINDFLOW_TEST_KUBECONFIG and run with --ignored"]
async fn the_sample_platform_is_mirrored_and_provisioned_on_a_real_cluster() {
    let path = std::env::var(KUBECONFIG).unwrap_or_else(|_| panic!("{KUBECONFIG} names the cluster's kubeconfig"));
    let client = client(&path).await;
    let apply = PatchParams::apply("windflow-e2e").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in windflow::api::crds() {
        let name = crd.metadata.name.clone().expect("name");
        crds.patch(&name, &apply, &Patch::Apply(&crd)).await.expect("CRD applied");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    let db = database().await;
    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_windflow"))
            .arg("run")
            .env("KUBECONFIG", &path)
            .env("DATABASE_URL", &db.url)
            .env("WINDFLOW_PROBE_ADDRESS", "127.0.0.1:0")
            .stdout(Stdio::null())
            .spawn()
            .expect("the operator starts"),
    );

    let sample = documents(include_str!("../examples/platform.yaml"));
    for doc in &sample {
        let (api, name) = api_for(&client, doc);
        let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("an object");
        // The tenant namespace appears once its Organization is provisioned: retry until then.
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(error) = api.patch(&name, &apply, &Patch::Apply(&obj)).await {
            assert!(Instant::now() < deadline, "{name}: {error}");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    // Kinds whose children need only core APIs become Ready on any cluster.
    let core_only = ["Organization", "User", "Tag", "Function", "Group", "Policy", "Environment", "Element", "Volume"];
    let deadline = Instant::now() + Duration::from_secs(120);
    for doc in sample.iter().filter(|d| core_only.contains(&d["kind"].as_str().unwrap_or_default())) {
        let (api, name) = api_for(&client, doc);
        loop {
            let obj = api.get(&name).await.expect("the object");
            if is_ready(&obj) {
                break;
            }
            assert!(Instant::now() < deadline, "{name} not Ready: {}", obj.data["status"]);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "acme-production");
    assert!(claims.get_opt("pgdata").await.expect("claims").is_some(), "the pgdata Volume's claim");

    let check = Command::new(env!("CARGO_BIN_EXE_windflow"))
        .arg("check")
        .env("KUBECONFIG", &path)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("windflow check runs");
    assert!(check.status.success(), "check: {}", String::from_utf8_lossy(&check.stdout));

    for doc in sample.iter().rev() {
        let (api, name) = api_for(&client, doc);
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

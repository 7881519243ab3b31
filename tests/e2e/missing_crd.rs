//! The operator started before one of its CRDs is installed says which one is missing, and
//! starts its controllers once it is served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::json;

use crate::install::{eventually, start_operator};
use crate::platform::{Scenario, readiness, scenario};
use crate::{install_crds, resource_of};

const MISSING: &str = "dnsseckeys.windflow.io";

#[tokio::test]
async fn a_missing_crd_is_named_and_the_controllers_start_once_it_is_served() {
    let Scenario { plane, kubeconfig, db, client, .. } = &scenario().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete(MISSING, &DeleteParams::default()).await.expect("delete a CRD");
    eventually("the CRD is gone", Duration::from_secs(30), || {
        let crds = crds.clone();
        async move { crds.get_opt(MISSING).await.map_err(|e| e.to_string())?.map_or(Ok(()), |_| Err("still there".into())) }
    })
    .await;

    let operator = start_operator(plane, kubeconfig, &db.url, "windflow-0");
    eventually("the operator names the missing CRD", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
        async move {
            let named = log.contains("WindFlow CRDs are not installed") && log.contains(MISSING);
            named.then_some(()).ok_or("not yet".to_owned())
        }
    })
    .await;
    let log = std::fs::read_to_string(&operator.log).expect("the operator's log");
    assert!(!log.contains("starting controllers"), "no controller starts while a kind is not served");

    install_crds(plane).await;
    let tags: Api<DynamicObject> = Api::all_with(client.clone(), &resource_of("Tag"));
    let tag: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "Tag",
        "metadata": { "name": "e2e-after-crds" }, "spec": { "color": "#123456" },
    }))
    .expect("object");
    tags.create(&PostParams::default(), &tag).await.expect("create a tag");
    let took = eventually("the tag is Ready once every CRD is served", Duration::from_secs(60), || {
        let tags = tags.clone();
        async move {
            let (status, reason) = readiness(&tags.get("e2e-after-crds").await.map_err(|e| e.to_string())?);
            (status == "True").then_some(()).ok_or(format!("Ready={status} {reason}"))
        }
    })
    .await;
    eprintln!("controllers started and reconciled within {took:?} of the CRD's return");
    tags.delete("e2e-after-crds", &DeleteParams::default()).await.expect("delete the tag");
}

//! The operator started before one of its CRDs is installed says which one is missing, and
//! starts its controllers once it is served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::json;

use crate::install::{eventually, start_operator};
use crate::platform::{Scenario, gone, ready, scenario, tag};
use crate::{install_crds, resource_of};

const MISSING: &str = "dnsseckeys.windflow.io";

#[tokio::test]
async fn a_missing_crd_is_named_and_the_controllers_start_once_it_is_served() {
    let Scenario { plane, kubeconfig, db, client, .. } = &scenario().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete(MISSING, &DeleteParams::default()).await.expect("delete a CRD");
    gone(&crds, MISSING, Duration::from_secs(30)).await;

    let operator = start_operator(plane, kubeconfig, &db.runtime_url, "windflow-0");
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
    tags.create(&PostParams::default(), &tag("e2e-after-crds", json!("#123456"))).await.expect("create a tag");
    let took = ready(&tags, "e2e-after-crds", Duration::from_secs(60)).await;
    eprintln!("controllers started and reconciled within {took:?} of the CRD's return");
    tags.delete("e2e-after-crds", &DeleteParams::default()).await.expect("delete the tag");
}

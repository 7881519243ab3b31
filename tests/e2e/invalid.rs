//! An object that is no valid object of its kind reaches the operator when its CRD lets it
//! through (an older or looser schema). It is reported, by an Event and a log line naming it,
//! and skipped; every other object of its kind is reconciled as before, whether the bad one
//! was there at the first list or came later.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::json;

use crate::install::{eventually, start_operator};
use crate::platform::{Scenario, gone, readiness, ready, scenario, tag};
use crate::resource_of;

const TAGS: &str = "tags.windflow.io";

#[tokio::test]
async fn an_invalid_object_is_reported_and_skipped_and_its_kind_goes_on() {
    let Scenario { plane, kubeconfig, db, client, .. } = &scenario().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let tags: Api<DynamicObject> = Api::all_with(client.clone(), &resource_of("Tag"));

    // A looser Tag CRD: its spec keeps whatever it is given.
    let strict = crds.get(TAGS).await.expect("the Tag CRD");
    let mut loose = serde_json::to_value(&strict).expect("json");
    loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] =
        json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let loose: CustomResourceDefinition = serde_json::from_value(loose).expect("a CRD");
    crds.replace(TAGS, &PostParams::default(), &loose).await.expect("loosen the Tag CRD");

    // There before the operator's first list: `color` is a number, not the text a Tag holds.
    let broken = tag("e2e-broken", json!(42));
    eventually("the loose schema admits the broken tag", Duration::from_secs(20), || {
        let (tags, broken) = (tags.clone(), broken.clone());
        async move { tags.create(&PostParams::default(), &broken).await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await;

    let operator = start_operator(plane, kubeconfig, &db.runtime_url, "windflow-0");
    let fine = tag("e2e-fine", json!("#00ff00"));
    tags.create(&PostParams::default(), &fine).await.expect("create the valid tag");
    let took = ready(&tags, "e2e-fine", Duration::from_secs(60)).await;
    eprintln!("the valid tag was Ready {took:?} after its create, beside an invalid one");

    let events: Api<Event> = Api::all(client.clone());
    eventually("an InvalidObject Event on the broken tag", Duration::from_secs(30), || {
        let events = events.clone();
        async move {
            let all = events.list(&Default::default()).await.map_err(|e| e.to_string())?;
            let named = all.items.iter().any(|event| {
                event.reason.as_deref() == Some("InvalidObject")
                    && event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("e2e-broken")
                    && event.note.as_deref().is_some_and(|note| note.contains("not a valid Tag"))
            });
            named.then_some(()).ok_or("no such Event yet".to_owned())
        }
    })
    .await;
    let log = std::fs::read_to_string(&operator.log).expect("the operator's log");
    assert!(
        log.contains("object skipped") && log.contains("e2e-broken"),
        "the log names it: {}",
        operator.log.display()
    );
    let broken_now = tags.get("e2e-broken").await.expect("the broken tag");
    assert_eq!(readiness(&broken_now), (String::new(), String::new()), "nothing acted on the broken tag");

    // Put things back: the broken tag goes (nothing holds it), the CRD becomes strict again.
    tags.delete("e2e-broken", &DeleteParams::default()).await.expect("delete the broken tag");
    gone(&tags, "e2e-broken", Duration::from_secs(30)).await;
    let mut restored = strict.clone();
    restored.metadata.resource_version = crds.get(TAGS).await.expect("the Tag CRD").metadata.resource_version;
    crds.replace(TAGS, &PostParams::default(), &restored).await.expect("restore the Tag CRD");
    tags.delete("e2e-fine", &DeleteParams::default()).await.expect("delete the valid tag");
    gone(&tags, "e2e-fine", Duration::from_secs(60)).await;
}
